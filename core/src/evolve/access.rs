//! Folds the events of memberships, roles on accounts and the agency administrator grant (decided in `decide/access.rs`).

use super::*;

/// Applies one event of this area; `evolve` routes only these here.
pub(super) fn apply(state: &mut Organization, event: Event) {
    match event {
        Event::AgencyAdminGranted { user } => {
            if let Some(u) = user_mut(state, user) {
                u.agency_admin = true;
            }
            state.agency_admin_index.insert(user);
        }
        Event::AgencyAdminRevoked { user } => {
            if let Some(u) = user_mut(state, user) {
                u.agency_admin = false;
            }
            state.agency_admin_index.remove(&user);
        }
        Event::AccessGranted {
            user,
            account,
            role,
        } => grant_access(state, user, account, role),
        Event::RoleChanged {
            user, account, to, ..
        } => {
            if let Some(u) = user_mut(state, user) {
                u.memberships.insert(account, to);
            }
        }
        Event::AccessRemoved { user, account } => {
            if let Some(u) = user_mut(state, user) {
                u.memberships.remove(&account);
            }
            if let Some(a) = state.accounts.get_mut(&account) {
                a.members.remove(&user);
            }
        }
        other => debug_assert!(
            false,
            "{} is not folded in evolve/access.rs",
            other.event_type()
        ),
    }
}
