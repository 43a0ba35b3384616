//! The fold: `evolve(&mut state, &event)` applies one event. It never fails and
//! never refuses — events are facts. It keeps every index of
//! [`Organization`] consistent; its cost is that of the entities the event names.
//!
//! One file per area, mirroring `decide/`: `evolve` routes each event to the
//! `apply` of its area; the helpers shared by several areas live here.

use crate::event::{Event, PersonalData};
use crate::ids::*;
use crate::model::*;
use std::collections::BTreeSet;

mod access;
mod invitations;
mod lifecycle;
mod numbers;
mod organization;
mod profile;
mod teams;
mod work;

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
    if let Some(v) = &p.external_id {
        profile.external_id = Some(v.clone());
    }
    if let Some(v) = &p.sign_in_name {
        profile.sign_in_name = Some(v.clone());
    }
    for f in &p.cleared {
        match f {
            ProfileField::Name => profile.name = None,
            ProfileField::Mobile => profile.mobile = None,
            ProfileField::DefaultCountry => profile.default_country = None,
            ProfileField::JobTitle => profile.job_title = None,
            ProfileField::Picture => profile.picture = None,
            ProfileField::ExternalId => profile.external_id = None,
            ProfileField::SignInName => profile.sign_in_name = None,
            // The email is required; it is never cleared, only replaced.
            ProfileField::Email => {}
        }
    }
}

fn refresh_orphan(state: &mut Organization, number: &PhoneNumber) {
    let orphaned = state.numbers.get(number).is_some_and(Number::is_orphaned);
    if orphaned {
        state.orphaned_index.insert(number.clone());
    } else {
        state.orphaned_index.remove(number);
    }
}

/// Stamps the users an event is about with the organization's version: the
/// version that created them the first time, the last that changed them
/// always.
fn stamp_users(state: &mut Organization, event: &Event, invitee: Option<UserId>) {
    let [a, b] = event.user_pair();
    let version = state.version;
    for id in [a, b, invitee].into_iter().flatten() {
        if let Some(u) = state.users.get_mut(&id) {
            if u.created_version == 0 {
                u.created_version = version;
            }
            u.changed_version = version;
        }
    }
}

/// Indexes `user` under `email` (R-USR-01). An empty email — erased, its
/// key shredded (R-LIFE-06), or never given (R-USR-04) — names nobody and
/// is not indexed; the snapshot reader does the same.
fn index_email(state: &mut Organization, email: &str, user: UserId) {
    let key = crate::validate::email_key(email);
    if !key.is_empty() {
        state.email_index.insert(key, user);
    }
}

/// Keeps the sign-in index (R-USR-03) in step with a user's profile after an
/// event changed it; `before` is the sign-in name the profile held before.
/// Only the user's own entry moves: decide never lets a name be taken twice.
fn reindex_sign_in(state: &mut Organization, user: UserId, before: Option<String>) {
    let after = state
        .users
        .get(&user)
        .and_then(|u| u.profile.as_ref())
        .and_then(|p| p.sign_in_name.as_deref())
        .map(crate::validate::sign_in_key);
    let before = before.as_deref().map(crate::validate::sign_in_key);
    if before == after {
        return;
    }
    if let Some(k) = before {
        if state.sign_in_index.get(&k) == Some(&user) {
            state.sign_in_index.remove(&k);
        }
    }
    if let Some(k) = after {
        state.sign_in_index.insert(k, user);
    }
}

/// The sign-in name a user's profile holds now, to hand to
/// [`reindex_sign_in`] after the event.
fn sign_in_of(state: &Organization, user: UserId) -> Option<String> {
    state
        .users
        .get(&user)
        .and_then(|u| u.profile.as_ref())
        .and_then(|p| p.sign_in_name.clone())
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
        state.agency_admin_index.insert(user);
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
            state.expiry_index.remove(&(i.expires_at, id));
        }
        i.status = status;
    }
}

fn insert_invitation(state: &mut Organization, inv: Invitation) {
    state.token_index.insert(inv.token_hash.clone(), inv.id);
    state.expiry_index.insert((inv.expires_at, inv.id));
    state.invitations.insert(inv.id, inv);
}

/// Applies one event to the state.
pub fn evolve(state: &mut Organization, event: &Event) {
    state.version += 1;
    // Before the event: a revocation or an expiry names the invitation,
    // whose user must be found while it still points at them.
    let invitee = match event {
        Event::InvitationRevoked { invitation } | Event::InvitationExpired { invitation } => {
            state.invitations.get(invitation).and_then(|i| i.user)
        }
        _ => None,
    };
    // Exhaustive: a new event does not compile until it is routed.
    match event {
        Event::OrganizationCreated { .. }
        | Event::PoliciesChanged { .. }
        | Event::PrimaryOwnershipTransferred { .. }
        | Event::AccountCreated { .. }
        | Event::RoleDefined { .. } => organization::apply(state, event),
        Event::AgencyAdminGranted { .. }
        | Event::AgencyAdminRevoked { .. }
        | Event::AccessGranted { .. }
        | Event::RoleChanged { .. }
        | Event::AccessRemoved { .. } => access::apply(state, event),
        Event::UserInvited { .. }
        | Event::UserProvisioned { .. }
        | Event::InvitationLinkCreated { .. }
        | Event::UserReinvited { .. }
        | Event::InvitationAccepted { .. }
        | Event::InvitationRevoked { .. }
        | Event::InvitationExpired { .. }
        | Event::DeviceSignedIn { .. }
        | Event::UserActivated { .. } => invitations::apply(state, event),
        Event::ProfileUpdated { .. }
        | Event::DeviceSignedOut { .. }
        | Event::PasswordResetIssued { .. } => profile::apply(state, event),
        Event::UserDeactivated { .. }
        | Event::UserReactivated { .. }
        | Event::UserDeleted { .. }
        | Event::MeetingCancelled { .. } => lifecycle::apply(state, event),
        Event::NumberAdded { .. }
        | Event::NumberAssigned { .. }
        | Event::NumberUnassigned { .. }
        | Event::NumberForwarded { .. }
        | Event::NumberForwardingStopped { .. }
        | Event::NumberReleased { .. } => numbers::apply(state, event),
        Event::ReportingLineChanged { .. } => teams::apply(state, event),
        Event::WorkItemCreated { .. } | Event::WorkTransferred { .. } => work::apply(state, event),
    }
    stamp_users(state, event, invitee);
}
