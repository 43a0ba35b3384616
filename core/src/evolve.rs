//! The fold: `evolve(&mut state, &event)` applies one event. It never fails and
//! never refuses — events are facts. It keeps every index of
//! [`Organization`] consistent; its cost is that of the entities the event names.

use crate::event::{Event, PersonalData};
use crate::ids::*;
use crate::model::*;
use std::collections::BTreeSet;

/// Folds a sequence of events into a fresh state of organization `id`.
pub fn fold<'a>(id: OrgId, events: impl IntoIterator<Item = &'a Event>) -> Organization {
    let mut state = Organization::empty(id);
    for e in events {
        evolve(&mut state, e);
    }
    state
}

pub(crate) fn apply_personal(profile: &mut Profile, p: &PersonalData) {
    if let Some(v) = &p.name {
        profile.name = Some(v.clone());
    }
    if let Some(v) = &p.email {
        profile.email = v.clone();
    }
    if let Some(v) = &p.mobile {
        profile.mobile = Some(v.clone());
    }
    if let Some(v) = &p.job_title {
        profile.job_title = Some(v.clone());
    }
    if let Some(v) = &p.picture {
        profile.picture = Some(v.clone());
    }
    for f in &p.cleared {
        match f {
            ProfileField::Name => profile.name = None,
            ProfileField::Mobile => profile.mobile = None,
            ProfileField::DefaultCountry => profile.default_country = None,
            ProfileField::JobTitle => profile.job_title = None,
            ProfileField::Picture => profile.picture = None,
            // The email is required; it is never cleared, only replaced.
            ProfileField::Email => {}
        }
    }
}

fn refresh_orphan(state: &mut Organization, number: &PhoneNumber) {
    let orphaned = state.numbers.get(number).is_some_and(Number::is_orphaned);
    if orphaned {
        state.orphaned_numbers.insert(number.clone());
    } else {
        state.orphaned_numbers.remove(number);
    }
}

fn new_user_from_personal(id: UserId, status: UserStatus, p: &PersonalData) -> User {
    let mut profile = Profile::with_email(p.email.clone().unwrap_or_default());
    apply_personal(&mut profile, p);
    User::new(id, status, profile)
}

fn grant_access(state: &mut Organization, user: UserId, account: AccountId, role: RoleId) {
    if let Some(u) = state.users.get_mut(&user) {
        u.memberships.insert(account, role);
    }
    if let Some(a) = state.accounts.get_mut(&account) {
        a.members.insert(user);
    }
}

fn apply_grant(state: &mut Organization, user: UserId, grant: &Grant) {
    for a in &grant.accounts {
        grant_access(state, user, *a, grant.role.clone());
    }
    if grant.agency_admin {
        if let Some(u) = state.users.get_mut(&user) {
            u.agency_admin = true;
        }
        state.agency_admins.insert(user);
    }
    for c in &grant.clients {
        move_work(state, *c, user);
    }
}

fn move_work(state: &mut Organization, item: WorkItemId, to: UserId) {
    let Some(w) = state.work_items.get_mut(&item) else {
        return;
    };
    let from = std::mem::replace(&mut w.owner, to);
    if let Some(u) = state.users.get_mut(&from) {
        u.work.remove(&item);
    }
    if let Some(u) = state.users.get_mut(&to) {
        u.work.insert(item);
    }
}

fn end_sessions(state: &mut Organization, user: UserId) {
    if let Some(u) = state.users.get_mut(&user) {
        u.devices.clear();
    }
}

fn set_invitation_status(state: &mut Organization, id: InvitationId, status: InvitationStatus) {
    if let Some(i) = state.invitations.get_mut(&id) {
        if i.status == InvitationStatus::Pending {
            state.pending_invitations.remove(&(i.expires_at, id));
        }
        i.status = status;
    }
}

fn insert_invitation(state: &mut Organization, inv: Invitation) {
    state
        .invitation_by_token
        .insert(inv.token_hash.clone(), inv.id);
    state.pending_invitations.insert((inv.expires_at, inv.id));
    state.invitations.insert(inv.id, inv);
}

/// Applies one event to the state.
pub fn evolve(state: &mut Organization, event: &Event) {
    state.version += 1;
    match event {
        Event::OrganizationCreated {
            name,
            policies,
            root_account,
            root_account_name,
            owner,
            owner_personal,
        } => {
            state.created = true;
            state.name = name.clone();
            state.policies = policies.clone();
            state.root_account = Some(*root_account);
            state.primary_owner = Some(*owner);
            for r in built_in_roles() {
                state.roles.insert(r.id.clone(), r);
            }
            state.accounts.insert(
                *root_account,
                Account {
                    id: *root_account,
                    name: root_account_name.clone(),
                    parent: None,
                    children: BTreeSet::new(),
                    members: BTreeSet::new(),
                },
            );
            let mut user = new_user_from_personal(*owner, UserStatus::Active, owner_personal);
            user.agency_admin = true;
            state.user_by_email.insert(
                crate::validate::email_key(&owner_personal.email.clone().unwrap_or_default()),
                *owner,
            );
            state.users.insert(*owner, user);
            state.agency_admins.insert(*owner);
            grant_access(state, *owner, *root_account, RoleId::new(RoleId::OWNER));
        }
        Event::PoliciesChanged { policies } => state.policies = policies.clone(),
        Event::PrimaryOwnershipTransferred { to, .. } => state.primary_owner = Some(*to),
        Event::AccountCreated {
            account,
            name,
            parent,
        } => {
            state.accounts.insert(
                *account,
                Account {
                    id: *account,
                    name: name.clone(),
                    parent: Some(*parent),
                    children: BTreeSet::new(),
                    members: BTreeSet::new(),
                },
            );
            if let Some(p) = state.accounts.get_mut(parent) {
                p.children.insert(*account);
            }
        }
        Event::RoleDefined { role } => {
            state.roles.insert(role.id.clone(), role.clone());
        }
        Event::UserInvited {
            user,
            invitation,
            personal,
            grant,
            token_hash,
            expires_at,
        } => {
            let mut u = new_user_from_personal(*user, UserStatus::Invited, personal);
            u.invitation = Some(*invitation);
            if let Some(p) = &u.profile {
                state
                    .user_by_email
                    .insert(crate::validate::email_key(&p.email), *user);
            }
            state.users.insert(*user, u);
            insert_invitation(
                state,
                Invitation {
                    id: *invitation,
                    delivery: Delivery::Email,
                    user: Some(*user),
                    grant: grant.clone(),
                    token_hash: token_hash.clone(),
                    expires_at: *expires_at,
                    status: InvitationStatus::Pending,
                },
            );
        }
        Event::InvitationLinkCreated {
            invitation,
            grant,
            token_hash,
            expires_at,
        } => {
            insert_invitation(
                state,
                Invitation {
                    id: *invitation,
                    delivery: Delivery::Link,
                    user: None,
                    grant: grant.clone(),
                    token_hash: token_hash.clone(),
                    expires_at: *expires_at,
                    status: InvitationStatus::Pending,
                },
            );
        }
        Event::UserReinvited {
            user,
            previous,
            invitation,
            token_hash,
            expires_at,
        } => {
            set_invitation_status(state, *previous, InvitationStatus::Superseded);
            let old = state
                .invitations
                .get(previous)
                .map(|i| (i.grant.clone(), i.delivery));
            if let Some((grant, delivery)) = old {
                insert_invitation(
                    state,
                    Invitation {
                        id: *invitation,
                        delivery,
                        user: Some(*user),
                        grant,
                        token_hash: token_hash.clone(),
                        expires_at: *expires_at,
                        status: InvitationStatus::Pending,
                    },
                );
            }
            if let Some(u) = state.users.get_mut(user) {
                u.invitation = Some(*invitation);
            }
        }
        Event::InvitationAccepted {
            invitation,
            user,
            new_user,
            personal,
            default_country,
        } => {
            if *new_user {
                let u = new_user_from_personal(*user, UserStatus::Invited, personal);
                if let Some(p) = &u.profile {
                    state
                        .user_by_email
                        .insert(crate::validate::email_key(&p.email), *user);
                }
                state.users.insert(*user, u);
            } else if let Some(p) = state.users.get_mut(user).and_then(|u| u.profile.as_mut()) {
                apply_personal(p, personal);
            }
            if let Some(u) = state.users.get_mut(user) {
                if let Some(p) = u.profile.as_mut() {
                    if default_country.is_some() {
                        p.default_country = default_country.clone();
                    }
                }
                u.invitation = Some(*invitation);
                u.invitation_accepted = true;
            }
            set_invitation_status(state, *invitation, InvitationStatus::Accepted);
            let grant = state.invitations.get_mut(invitation).map(|i| {
                i.user = Some(*user);
                i.grant.clone()
            });
            if let Some(g) = grant {
                apply_grant(state, *user, &g);
            }
        }
        Event::InvitationRevoked { invitation } => {
            set_invitation_status(state, *invitation, InvitationStatus::Revoked)
        }
        Event::InvitationExpired { invitation } => {
            set_invitation_status(state, *invitation, InvitationStatus::Expired)
        }
        Event::DeviceSignedIn {
            user,
            device,
            name,
            at,
        } => {
            if let Some(u) = state.users.get_mut(user) {
                u.devices.insert(
                    *device,
                    DeviceSession {
                        id: *device,
                        name: name.clone(),
                        signed_in_at: *at,
                    },
                );
            }
        }
        Event::UserActivated { user } => {
            if let Some(u) = state.users.get_mut(user) {
                u.status = UserStatus::Active;
            }
        }
        Event::DeviceSignedOut { user, device } => {
            if let Some(u) = state.users.get_mut(user) {
                u.devices.remove(device);
            }
        }
        Event::ProfileUpdated {
            user,
            personal,
            default_country,
            notifications,
        } => {
            let Some(u) = state.users.get_mut(user) else {
                return;
            };
            let Some(p) = u.profile.as_mut() else {
                return;
            };
            let old_key = crate::validate::email_key(&p.email);
            apply_personal(p, personal);
            if let Some(c) = default_country {
                p.default_country = Some(c.clone());
            }
            if let Some(n) = notifications {
                p.notifications = n.clone();
            }
            let new_key = crate::validate::email_key(&p.email);
            if new_key != old_key {
                state.user_by_email.remove(&old_key);
                state.user_by_email.insert(new_key, *user);
            }
        }
        Event::AgencyAdminGranted { user } => {
            if let Some(u) = state.users.get_mut(user) {
                u.agency_admin = true;
            }
            state.agency_admins.insert(*user);
        }
        Event::AgencyAdminRevoked { user } => {
            if let Some(u) = state.users.get_mut(user) {
                u.agency_admin = false;
            }
            state.agency_admins.remove(user);
        }
        Event::AccessGranted {
            user,
            account,
            role,
        } => grant_access(state, *user, *account, role.clone()),
        Event::RoleChanged {
            user, account, to, ..
        } => {
            if let Some(u) = state.users.get_mut(user) {
                u.memberships.insert(*account, to.clone());
            }
        }
        Event::AccessRemoved { user, account } => {
            if let Some(u) = state.users.get_mut(user) {
                u.memberships.remove(account);
            }
            if let Some(a) = state.accounts.get_mut(account) {
                a.members.remove(user);
            }
        }
        Event::NumberAdded { number, account } => {
            state.numbers.insert(
                number.clone(),
                Number {
                    number: number.clone(),
                    account: *account,
                    assigned_to: None,
                    forwarded_to: None,
                    ever_assigned: false,
                },
            );
        }
        Event::NumberAssigned { number, user } => {
            if let Some(n) = state.numbers.get_mut(number) {
                n.assigned_to = Some(*user);
                n.ever_assigned = true;
            }
            if let Some(u) = state.users.get_mut(user) {
                u.assigned_numbers.insert(number.clone());
            }
            refresh_orphan(state, number);
        }
        Event::NumberUnassigned { number, user } => {
            if let Some(n) = state.numbers.get_mut(number) {
                n.assigned_to = None;
            }
            if let Some(u) = state.users.get_mut(user) {
                u.assigned_numbers.remove(number);
            }
            refresh_orphan(state, number);
        }
        Event::NumberForwarded { number, to } => {
            let previous = state
                .numbers
                .get_mut(number)
                .and_then(|n| n.forwarded_to.replace(*to));
            if let Some(p) = previous.and_then(|p| state.users.get_mut(&p)) {
                p.forwarded_numbers.remove(number);
            }
            if let Some(u) = state.users.get_mut(to) {
                u.forwarded_numbers.insert(number.clone());
            }
            refresh_orphan(state, number);
        }
        Event::NumberForwardingStopped { number } => {
            let previous = state
                .numbers
                .get_mut(number)
                .and_then(|n| n.forwarded_to.take());
            if let Some(p) = previous.and_then(|p| state.users.get_mut(&p)) {
                p.forwarded_numbers.remove(number);
            }
            refresh_orphan(state, number);
        }
        Event::NumberReleased { number } => {
            if let Some(n) = state.numbers.remove(number) {
                for u in [n.assigned_to, n.forwarded_to].into_iter().flatten() {
                    if let Some(u) = state.users.get_mut(&u) {
                        u.assigned_numbers.remove(number);
                        u.forwarded_numbers.remove(number);
                    }
                }
            }
            state.orphaned_numbers.remove(number);
        }
        Event::ReportingLineChanged { user, leader } => {
            let previous = state
                .users
                .get_mut(user)
                .and_then(|u| std::mem::replace(&mut u.reports_to, *leader));
            if let Some(p) = previous.and_then(|p| state.users.get_mut(&p)) {
                p.direct_reports.remove(user);
            }
            if let Some(l) = leader.and_then(|l| state.users.get_mut(&l)) {
                l.direct_reports.insert(*user);
            }
        }
        Event::WorkItemCreated {
            item,
            kind,
            title,
            owner,
        } => {
            state.work_items.insert(
                *item,
                WorkItem {
                    id: *item,
                    kind: *kind,
                    title: title.clone(),
                    owner: *owner,
                    cancelled: false,
                },
            );
            if let Some(u) = state.users.get_mut(owner) {
                u.work.insert(*item);
            }
        }
        Event::WorkTransferred { item, to, .. } => move_work(state, *item, *to),
        Event::MeetingCancelled { item } => {
            if let Some(w) = state.work_items.get_mut(item) {
                w.cancelled = true;
            }
        }
        Event::PasswordResetIssued {
            user,
            token_hash,
            expires_at,
        } => {
            if let Some(u) = state.users.get_mut(user) {
                u.password_reset = Some(PasswordReset {
                    token_hash: token_hash.clone(),
                    expires_at: *expires_at,
                });
            }
        }
        Event::UserDeactivated { user, .. } => {
            end_sessions(state, *user);
            if let Some(u) = state.users.get_mut(user) {
                u.status = UserStatus::Deactivated;
                u.password_reset = None;
            }
        }
        Event::UserReactivated { user } => {
            if let Some(u) = state.users.get_mut(user) {
                u.status = UserStatus::Active;
            }
        }
        Event::UserDeleted { user, .. } => {
            end_sessions(state, *user);
            let Some(u) = state.users.get_mut(user) else {
                return;
            };
            u.status = UserStatus::Deleted;
            u.password_reset = None;
            let erased = u.profile.take();
            let accounts: Vec<AccountId> = std::mem::take(&mut u.memberships).into_keys().collect();
            u.agency_admin = false;
            let leader = u.reports_to.take();
            if let Some(p) = erased {
                let key = crate::validate::email_key(&p.email);
                if state.user_by_email.get(&key) == Some(user) {
                    state.user_by_email.remove(&key);
                }
            }
            for a in accounts {
                if let Some(acc) = state.accounts.get_mut(&a) {
                    acc.members.remove(user);
                }
            }
            if let Some(l) = leader.and_then(|l| state.users.get_mut(&l)) {
                l.direct_reports.remove(user);
            }
            state.agency_admins.remove(user);
        }
    }
}
