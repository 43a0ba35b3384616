//! Queries the seeds' screens need, answered from state. Queries may walk
//! what they list; commands never do.

use crate::ids::*;
use crate::model::*;
use chrono::{DateTime, Utc};
use std::collections::BTreeMap;

/// How a user reaches an account.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum AccessVia {
    /// A membership with this role.
    Role(RoleId),
    /// The agency administrator grant.
    AgencyAdministrator,
}

impl std::fmt::Display for AccessVia {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            AccessVia::Role(role) => write!(f, "as {role}"),
            AccessVia::AgencyAdministrator => f.write_str("as agency administrator"),
        }
    }
}

impl Organization {
    /// Users with a status, in id order (R-LIFE-02: list deactivated users).
    pub fn users_with_status(&self, status: UserStatus) -> Vec<&User> {
        self.users
            .values()
            .map(|u| &**u)
            .filter(|u| u.status == status)
            .collect()
    }

    /// Users whose name or email contains `text` (case-insensitive), optionally
    /// of one status (R-LIFE-02: search by status). Deleted users have no
    /// name or email to match.
    pub fn search_users(&self, text: &str, status: Option<UserStatus>) -> Vec<&User> {
        let needle = text.trim().to_lowercase();
        self.users
            .values()
            .map(|u| &**u)
            .filter(|u| status.is_none_or(|s| u.status == s))
            .filter(|u| {
                u.profile.as_ref().is_some_and(|p| {
                    p.email.to_lowercase().contains(&needle)
                        || p.name
                            .as_ref()
                            .is_some_and(|n| n.to_lowercase().contains(&needle))
                })
            })
            .collect()
    }

    /// Active users with no number assigned ("Unassigned Users", seed 000).
    pub fn unassigned_users(&self) -> Vec<&User> {
        self.users
            .values()
            .map(|u| &**u)
            .filter(|u| u.is_active() && u.assigned_numbers.is_empty())
            .collect()
    }

    /// Numbers assigned once, now neither assigned nor forwarded (R-NUM-03).
    pub fn orphaned_numbers(&self) -> Vec<&Number> {
        self.orphaned_index
            .iter()
            .filter_map(|n| self.numbers.get(n))
            .collect()
    }

    /// A user's accounts and roles; an agency administrator reaches every account.
    pub fn access_of(&self, user: UserId) -> Vec<(AccountId, AccessVia)> {
        let Some(u) = self.users.get(&user) else {
            return Vec::new();
        };
        if u.agency_admin {
            return self
                .accounts
                .keys()
                .map(|a| (*a, AccessVia::AgencyAdministrator))
                .collect();
        }
        u.memberships
            .iter()
            .map(|(a, r)| (*a, AccessVia::Role(r.clone())))
            .collect()
    }

    /// Who can access an account: its members and every agency administrator.
    pub fn who_can_access(&self, account: AccountId) -> Vec<(UserId, AccessVia)> {
        let Some(a) = self.accounts.get(&account) else {
            return Vec::new();
        };
        let mut out: Vec<(UserId, AccessVia)> = a
            .members
            .iter()
            .filter_map(|u| {
                self.users
                    .get(u)
                    .and_then(|user| user.memberships.get(&account))
                    .map(|r| (*u, AccessVia::Role(r.clone())))
            })
            .collect();
        out.extend(
            self.agency_admin_index
                .iter()
                .filter(|u| !a.members.contains(u))
                .map(|u| (*u, AccessVia::AgencyAdministrator)),
        );
        out
    }

    /// A leader's direct reports.
    pub fn direct_reports(&self, leader: UserId) -> Vec<&User> {
        self.users
            .get(&leader)
            .map(|l| {
                l.direct_reports
                    .iter()
                    .filter_map(|r| self.users.get(r).map(|u| &**u))
                    .collect()
            })
            .unwrap_or_default()
    }

    /// Invitations pending at `now`.
    pub fn pending_invitations(&self, now: DateTime<Utc>) -> Vec<&Invitation> {
        self.invitations
            .values()
            .filter(|i| i.status_at(now) == InvitationStatus::Pending)
            .collect()
    }

    /// Invitations expired at `now` (recorded as expired, or lapsed).
    pub fn expired_invitations(&self, now: DateTime<Utc>) -> Vec<&Invitation> {
        self.invitations
            .values()
            .filter(|i| i.status_at(now) == InvitationStatus::Expired)
            .collect()
    }

    /// A user's signed-in devices (R-LIFE-08).
    pub fn devices_of(&self, user: UserId) -> Vec<&DeviceSession> {
        self.users
            .get(&user)
            .map(|u| u.devices.values().collect())
            .unwrap_or_default()
    }

    /// A user's work, by kind (R-WORK-01).
    pub fn work_by_kind(&self, user: UserId) -> BTreeMap<WorkKind, Vec<&WorkItem>> {
        let mut out: BTreeMap<WorkKind, Vec<&WorkItem>> = BTreeMap::new();
        if let Some(u) = self.users.get(&user) {
            for w in u.work.iter().filter_map(|w| self.work_items.get(w)) {
                out.entry(w.kind).or_default().push(w);
            }
        }
        out
    }
}
