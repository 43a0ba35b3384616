//! The ids of the rules of `RULES.md` as a type: [`RuleId`].
//!
//! Every [`Blocker`](crate::Blocker) names the rule it enforces
//! ([`Blocker::rule`](crate::Blocker::rule)); a caller matches on the variant
//! rather than on text, and prints or parses the stable id (`R-NUM-02`).

use serde::{Deserialize, Deserializer, Serialize, Serializer};
use std::fmt;
use std::str::FromStr;

macro_rules! rule_ids {
    ($( $(#[$doc:meta])* $variant:ident = $id:literal, )*) => {
        /// The id of a rule of `RULES.md`, plus two markers for refusals
        /// that are not business rules ([`RuleId::Limit`], [`RuleId::Input`]).
        ///
        /// `Display`, [`as_str`](RuleId::as_str) and serde use the stable id;
        /// [`FromStr`] reads it back. New rules add variants, so the enum is
        /// `#[non_exhaustive]`: match with a wildcard arm.
        ///
        /// ```
        /// use switchboard_core::RuleId;
        ///
        /// let rule: RuleId = "R-NUM-02".parse().unwrap();
        /// assert_eq!(rule, RuleId::NumbersBlockDeletion);
        /// assert_eq!(rule.to_string(), "R-NUM-02");
        /// assert_eq!(serde_json::to_string(&rule).unwrap(), "\"R-NUM-02\"");
        /// assert!("R-NUM-99".parse::<RuleId>().is_err());
        /// ```
        #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
        #[non_exhaustive]
        pub enum RuleId {
            $( $(#[$doc])* $variant, )*
        }

        impl RuleId {
            /// Every id, in the order of `RULES.md`.
            pub const ALL: &'static [RuleId] = &[$(RuleId::$variant,)*];

            /// The stable id, e.g. `"R-NUM-02"`.
            ///
            /// ```
            /// assert_eq!(switchboard_core::RuleId::UniqueEmail.as_str(), "R-USR-01");
            /// ```
            pub const fn as_str(self) -> &'static str {
                match self {
                    $(RuleId::$variant => $id,)*
                }
            }
        }

        impl FromStr for RuleId {
            type Err = UnknownRuleId;

            fn from_str(s: &str) -> Result<Self, Self::Err> {
                match s {
                    $($id => Ok(RuleId::$variant),)*
                    _ => Err(UnknownRuleId(s.chars().take(32).collect())),
                }
            }
        }
    };
}

rule_ids! {
    /// R-INV-01: one command invites several people from one list of
    /// addresses, and every bad address is reported.
    InviteMany = "R-INV-01",
    /// R-INV-02: an invitation grants a role on accounts and, optionally, the
    /// agency administrator grant and clients to take over.
    InvitationGrant = "R-INV-02",
    /// R-INV-03: invitations go out by email or link; accepting takes the
    /// secret token, and the log holds only its hash.
    InvitationToken = "R-INV-03",
    /// R-INV-04: an invitee stays `Invited` until they have accepted,
    /// completed their profile and signed in.
    InviteeActivation = "R-INV-04",
    /// R-INV-05: an invitation lapses after the organization's TTL; a
    /// re-invitation issues a new token and deadline.
    InvitationExpiry = "R-INV-05",
    /// R-INV-06: an address already used in the organization cannot be
    /// invited again; the refusal names that user.
    InviteExistingEmail = "R-INV-06",
    /// R-INV-07: a pending invitation may be revoked; a revoked or superseded
    /// one admits nobody.
    InvitationRevocation = "R-INV-07",
    /// R-USR-01: no two users of an organization share an email address,
    /// whatever the letter case.
    UniqueEmail = "R-USR-01",
    /// R-USR-02: mobiles are valid E.164 numbers and default sending
    /// countries ISO 3166-1 alpha-2 codes.
    MobileAndCountry = "R-USR-02",
    /// R-USR-03: a sign-in name belongs to one user: no two users share one,
    /// and none is another user's email address, whatever the letter case.
    UniqueSignInName = "R-USR-03",
    /// R-USR-04: an identity provider provisions a user without an
    /// invitation: active at once, with a sign-in name, an email or both.
    Provisioning = "R-USR-04",
    /// R-MEM-01: an administrator raises or lowers a user's role on an
    /// account the user is a member of.
    ChangeRole = "R-MEM-01",
    /// R-MEM-02: an existing user can be given more accounts, with a role for
    /// each.
    GrantAccounts = "R-MEM-02",
    /// R-MEM-03: taking a user off one account keeps their other accounts.
    RemoveFromAccount = "R-MEM-03",
    /// R-MEM-04: one command takes a user off several sub-accounts.
    RemoveFromSeveralAccounts = "R-MEM-04",
    /// R-MEM-05: the agency administrator grant is removed from all accounts
    /// at once or not at all.
    AgencyAdministratorAllOrNothing = "R-MEM-05",
    /// R-MEM-06: a removal from many accounts is stored in one append.
    AtomicRemoval = "R-MEM-06",
    /// R-AUTH-01: managing users needs `ManageUsers` on every account
    /// concerned, or the agency administrator grant.
    ManageUsersRequired = "R-AUTH-01",
    /// R-AUTH-02: profile details are edited by the user alone (`SelfOnly`),
    /// or also by `ManageUsers` holders (`SelfOrAdmin`).
    ProfileSelfEdit = "R-AUTH-02",
    /// R-AUTH-03: job title, picture and the administrator toggle are
    /// managed by administrators.
    AdminManagedFields = "R-AUTH-03",
    /// R-AUTH-04: every command names its actor, and every event records it.
    ActorRecorded = "R-AUTH-04",
    /// R-NUM-01: a number sits in one account and has at most one assignee,
    /// active and with access to that account.
    NumberAssignee = "R-NUM-01",
    /// R-NUM-02: a user who still holds numbers cannot be deleted; unassign
    /// them first.
    NumbersBlockDeletion = "R-NUM-02",
    /// R-NUM-03: an unassigned number is orphaned until it is forwarded or
    /// released.
    OrphanedNumber = "R-NUM-03",
    /// R-NUM-04: a number forwards only to an active user who reaches its
    /// account.
    ForwardToActiveUser = "R-NUM-04",
    /// R-NUM-05: a user numbers forward to can be neither deactivated nor
    /// deleted unless the command redirects them.
    ForwardTargetProtected = "R-NUM-05",
    /// R-NUM-06: a number is normalised to E.164 and exists once in the whole
    /// store.
    UniqueNumber = "R-NUM-06",
    /// R-TEAM-01: leaders hold `ManageTeam`, users have at most one leader,
    /// and reporting lines never loop.
    ReportingLine = "R-TEAM-01",
    /// R-TEAM-02: a leader's direct reports get a new leader before the
    /// leader is deactivated.
    ReassignReports = "R-TEAM-02",
    /// R-WORK-01: another active user can take over the work a user owns.
    TransferWork = "R-WORK-01",
    /// R-WORK-02: clients are handed over to other active users, each to the
    /// owner chosen for it.
    ReassignClients = "R-WORK-02",
    /// R-LIFE-01: deactivation ends every device session and refuses sign-in.
    DeactivationEndsAccess = "R-LIFE-01",
    /// R-LIFE-02: deactivation can be undone by reactivating.
    Reactivation = "R-LIFE-02",
    /// R-LIFE-03: the primary owner cannot be deactivated, deleted, demoted
    /// or removed until ownership is transferred.
    PrimaryOwnerProtected = "R-LIFE-03",
    /// R-LIFE-04: under `RequireCompleteProfile`, a user with an incomplete
    /// profile is neither deactivated nor reactivated.
    CompleteProfileRequired = "R-LIFE-04",
    /// R-LIFE-05: deletion needs an explicit acknowledgement of its
    /// consequences.
    DeletionAcknowledged = "R-LIFE-05",
    /// R-LIFE-06: deletion makes the user's personal data unreadable
    /// everywhere; a deleted user is changed no more.
    PersonalDataErased = "R-LIFE-06",
    /// R-LIFE-07: only active users get a password reset; the log keeps the
    /// token's hash only.
    PasswordReset = "R-LIFE-07",
    /// R-LIFE-08: users review their device sessions and end any of them.
    DeviceSessions = "R-LIFE-08",
    /// R-LIFE-09: nobody deactivates, deletes or removes themselves.
    NoSelfRemoval = "R-LIFE-09",
    /// R-BULK-01: a CSV spreadsheet changes many users in one run, every row
    /// validated and reported.
    BulkSpreadsheet = "R-BULK-01",
    /// R-BULK-02: a row that would deactivate a `ManageTeam` holder is
    /// reported, not applied.
    BulkSkipsTeamManagers = "R-BULK-02",
    /// R-BULK-03: one invalid row stops the whole run unless it runs in
    /// partial mode.
    BulkAllOrNothing = "R-BULK-03",
    /// R-OFF-01: a whole offboarding is one command whose ordered steps land
    /// together.
    OffboardInOneCommand = "R-OFF-01",
    /// R-OFF-02: any command can be tried as a dry run, which lists every
    /// blocker and records nothing.
    DryRun = "R-OFF-02",
    /// `LIMIT`: not a business rule; an input breaks a bound (length, count,
    /// work per command).
    Limit = "LIMIT",
    /// `INPUT`: not a business rule; the command refers to something that
    /// does not exist or cannot be (re)defined.
    Input = "INPUT",
}

impl fmt::Display for RuleId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Ids sort as their text does (`R-AUTH-01` < `R-INV-01` < `R-NUM-02`).
impl Ord for RuleId {
    fn cmp(&self, other: &Self) -> std::cmp::Ordering {
        self.as_str().cmp(other.as_str())
    }
}

impl PartialOrd for RuleId {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}

impl PartialEq<str> for RuleId {
    fn eq(&self, other: &str) -> bool {
        self.as_str() == other
    }
}

impl PartialEq<&str> for RuleId {
    fn eq(&self, other: &&str) -> bool {
        self.as_str() == *other
    }
}

impl Serialize for RuleId {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(self.as_str())
    }
}

impl<'de> Deserialize<'de> for RuleId {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let s = std::borrow::Cow::<'de, str>::deserialize(deserializer)?;
        s.parse().map_err(serde::de::Error::custom)
    }
}

/// A string that is no rule id of this version of the library.
///
/// ```
/// let err = "R-XYZ-01".parse::<switchboard_core::RuleId>().unwrap_err();
/// assert_eq!(err.to_string(), "unknown rule id `R-XYZ-01`");
/// ```
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("unknown rule id `{0}`")]
pub struct UnknownRuleId(String);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_id_round_trips_through_display_fromstr_and_serde() {
        for &rule in RuleId::ALL {
            assert_eq!(rule.to_string().parse::<RuleId>(), Ok(rule));
            let json = serde_json::to_string(&rule).unwrap();
            assert_eq!(json, format!("\"{}\"", rule.as_str()));
            assert_eq!(serde_json::from_str::<RuleId>(&json).unwrap(), rule);
        }
        assert!(serde_json::from_str::<RuleId>("\"R-NOPE-01\"").is_err());
    }
}
