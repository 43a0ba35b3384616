//! The fold: `evolve(&mut state, &event)` applies one event. It never fails and
//! never refuses — events are facts. It keeps every index of
//! [`Organization`] consistent; its cost is that of the entities the event names.
//!
//! [`evolve_owned`] is the same fold taking the event by value: the strings
//! and collections it carries (emails, names, token hashes, grants) move into
//! the state instead of being copied. A replay, which decodes each event only
//! to fold it, uses it; `evolve` is `evolve_owned` of a copy.
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

/// Moves the fields `p` carries into `profile`, then clears those it names.
fn apply_personal(profile: &mut Profile, p: PersonalData) {
    if p.name.is_some() {
        profile.name = p.name;
    }
    if let Some(v) = p.email {
        profile.email = v;
    }
    if p.mobile.is_some() {
        profile.mobile = p.mobile;
    }
    if p.job_title.is_some() {
        profile.job_title = p.job_title;
    }
    if p.picture.is_some() {
        profile.picture = p.picture;
    }
    if p.external_id.is_some() {
        profile.external_id = p.external_id;
    }
    if p.sign_in_name.is_some() {
        profile.sign_in_name = p.sign_in_name;
    }
    for f in p.cleared {
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

/// The user `id`, for the event being folded to change: every change to a
/// user's record goes through here, which stamps it with the event's version
/// ([`User::changed_version`]) in the look-up the change needs anyway.
fn user_mut(state: &mut Organization, id: UserId) -> Option<&mut User> {
    let version = state.version;
    let user = state.users.get_mut(&id)?;
    user.changed_version = version;
    Some(user)
}

/// Adds a user created by the event being folded: stamped with its version
/// as created and changed, indexed by email (R-USR-01) and sign-in name
/// (R-USR-03) from the record in hand.
fn insert_user(state: &mut Organization, mut user: User) {
    let id = user.id;
    user.created_version = state.version;
    user.changed_version = state.version;
    if let Some(p) = &user.profile {
        index_email(state, &p.email, id);
        if let Some(name) = &p.sign_in_name {
            state
                .sign_in_index
                .insert(crate::validate::sign_in_key(name), id);
        }
    }
    state.users.insert(id, Box::new(user));
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

/// Whether folding `p` into a profile can change its sign-in name: only
/// then do the sign-in index's keys need computing (R-USR-03).
fn names_sign_in(p: &PersonalData) -> bool {
    p.sign_in_name.is_some() || p.cleared.contains(&ProfileField::SignInName)
}

/// Moves `user`'s entry in the sign-in index (R-USR-03) from the name their
/// profile held (`before`) to the one it holds (`after`). Only the user's
/// own entry moves: decide never lets a name be taken twice.
fn reindex_sign_in(
    state: &mut Organization,
    user: UserId,
    before: Option<&str>,
    after: Option<&str>,
) {
    let before = before.map(crate::validate::sign_in_key);
    let after = after.map(crate::validate::sign_in_key);
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

/// Folds personal data into `user`'s existing profile, then `then` into
/// their record, in one look-up; keeps the email (R-USR-01) and sign-in
/// (R-USR-03) indexes in step, computing keys only for the fields the event
/// carries.
fn update_user(
    state: &mut Organization,
    user: UserId,
    personal: PersonalData,
    then: impl FnOnce(&mut User),
) {
    let Some(u) = user_mut(state, user) else {
        return;
    };
    let mut emails = None;
    let mut sign_ins = None;
    if let Some(p) = u.profile.as_mut() {
        let email_before = personal
            .email
            .as_ref()
            .map(|_| crate::validate::email_key(&p.email));
        let sign_in_before = names_sign_in(&personal).then(|| p.sign_in_name.clone());
        apply_personal(p, personal);
        emails = email_before.map(|before| (before, crate::validate::email_key(&p.email)));
        sign_ins = sign_in_before.map(|before| (before, p.sign_in_name.clone()));
    }
    then(u);
    if let Some((before, after)) = emails {
        if before != after {
            if state.email_index.get(&before) == Some(&user) {
                state.email_index.remove(&before);
            }
            index_email(state, &after, user);
        }
    }
    if let Some((before, after)) = sign_ins {
        reindex_sign_in(state, user, before.as_deref(), after.as_deref());
    }
}

fn new_user_from_personal(id: UserId, status: UserStatus, mut p: PersonalData) -> User {
    let mut profile = Profile::with_email(p.email.take().unwrap_or_default());
    apply_personal(&mut profile, p);
    User::new(id, status, profile)
}

fn grant_access(state: &mut Organization, user: UserId, account: AccountId, role: RoleId) {
    if let Some(u) = user_mut(state, user) {
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
        if let Some(u) = user_mut(state, user) {
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
    if let Some(u) = user_mut(state, from) {
        u.work.remove(&item);
    }
    if let Some(u) = user_mut(state, to) {
        u.work.insert(item);
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
    state.token_index.insert(&inv.token_hash, inv.id);
    state.expiry_index.insert((inv.expires_at, inv.id));
    state.invitations.insert(inv.id, inv);
}

/// Applies one event to the state: [`evolve_owned`] of a copy of it.
///
/// ```
/// use switchboard_core::{evolve, Organization, OrgId, UserId, Event};
/// use switchboard_core::ids::AccountId;
/// use switchboard_core::event::PersonalData;
/// # fn id(n: u128) -> uuid::Uuid { uuid::Uuid::from_u128(n) }
/// let mut state = Organization::empty(OrgId::from_uuid(id(1)));
/// let owner = UserId::from_uuid(id(2));
/// evolve(&mut state, &Event::OrganizationCreated {
///     name: "Acme".into(),
///     policies: Default::default(),
///     root_account: AccountId::from_uuid(id(3)),
///     root_account_name: "Acme".into(),
///     owner,
///     owner_personal: PersonalData { email: Some("ada@acme.test".into()), ..Default::default() },
/// });
/// assert_eq!(state.version, 1);
/// assert_eq!(state.primary_owner, Some(owner));
/// ```
pub fn evolve(state: &mut Organization, event: &Event) {
    evolve_owned(state, event.clone());
}

/// Applies one event to the state, moving what it carries into it: the
/// fold for an event that is not needed afterwards (a replay's, a
/// snapshot's tail). Same result as [`evolve`], without copying its strings.
///
/// ```
/// use switchboard_core::{evolve, evolve_owned, fold, Organization, OrgId, UserId, Event};
/// use switchboard_core::ids::AccountId;
/// use switchboard_core::event::PersonalData;
/// # fn id(n: u128) -> uuid::Uuid { uuid::Uuid::from_u128(n) }
/// let org = OrgId::from_uuid(id(1));
/// let created = Event::OrganizationCreated {
///     name: "Acme".into(),
///     policies: Default::default(),
///     root_account: AccountId::from_uuid(id(3)),
///     root_account_name: "Acme".into(),
///     owner: UserId::from_uuid(id(2)),
///     owner_personal: PersonalData { email: Some("ada@acme.test".into()), ..Default::default() },
/// };
/// let by_reference = fold(org, [&created]);
/// let mut by_value = Organization::empty(org);
/// evolve_owned(&mut by_value, created);
/// assert_eq!(by_value, by_reference);
/// ```
pub fn evolve_owned(state: &mut Organization, event: Event) {
    state.version += 1;
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
}

#[cfg(all(test, feature = "proptest"))]
mod tests {
    use super::*;

    /// The record of a user without its version stamps, to compare what an
    /// event changed.
    fn unstamped(u: &User) -> User {
        let mut u = u.clone();
        u.created_version = 0;
        u.changed_version = 0;
        u
    }

    proptest::proptest! {
        #![proptest_config(proptest::prelude::ProptestConfig::with_cases(64))]
        /// Per-user versions (`User::changed_version`, what a SCIM
        /// `If-Match` compares): after every event of any generated history,
        /// a user whose record changed, or whom the event names, carries the
        /// event's version; nobody else's stamp moves; a new user is created
        /// at it.
        #[test]
        fn every_user_an_event_changes_or_names_is_stamped(
            h in crate::strategies::arb_history(40)
        ) {
            let mut state = Organization::empty(h.org_id);
            for recorded in &h.events {
                let event = recorded.event.clone();
                let before = state.clone();
                evolve_owned(&mut state, event.clone());
                let version = state.version;
                let mut named: Vec<UserId> = event.user_pair().into_iter().flatten().collect();
                if let Event::InvitationRevoked { invitation } | Event::InvitationExpired { invitation } = &event {
                    named.extend(before.invitations.get(invitation).and_then(|i| i.user));
                }
                for (id, after) in &state.users {
                    match before.users.get(id) {
                        None => {
                            proptest::prop_assert_eq!(after.created_version, version);
                            proptest::prop_assert_eq!(after.changed_version, version);
                        }
                        Some(was) => {
                            proptest::prop_assert_eq!(after.created_version, was.created_version);
                            let changed = unstamped(was) != unstamped(after) || named.contains(id);
                            let expected = if changed { version } else { was.changed_version };
                            proptest::prop_assert_eq!(
                                after.changed_version, expected,
                                "{} at version {}", event.event_type(), version
                            );
                        }
                    }
                }
            }
        }
    }
}
