//! Folds the events of deactivation, reactivation and deletion (decided in `decide/lifecycle.rs`).

use super::*;

/// Applies one event of this area; `evolve` routes only these here.
pub(super) fn apply(state: &mut Organization, event: Event) {
    match event {
        Event::UserDeactivated { user, .. } => {
            if let Some(u) = user_mut(state, user) {
                u.devices.clear();
                u.status = UserStatus::Deactivated;
                u.password_reset = None;
            }
        }
        Event::UserReactivated { user } => {
            if let Some(u) = user_mut(state, user) {
                u.status = UserStatus::Active;
            }
        }
        Event::UserDeleted { user, .. } => {
            let Some(u) = user_mut(state, user) else {
                return;
            };
            u.devices.clear();
            u.status = UserStatus::Deleted;
            u.password_reset = None;
            let erased = u.profile.take();
            let accounts: Vec<AccountId> = std::mem::take(&mut u.memberships).into_keys().collect();
            u.agency_admin = false;
            let leader = u.reports_to.take();
            if let Some(p) = erased {
                let key = crate::validate::email_key(&p.email);
                if state.email_index.get(&key) == Some(&user) {
                    state.email_index.remove(&key);
                }
                if let Some(name) = &p.sign_in_name {
                    let key = crate::validate::sign_in_key(name);
                    if state.sign_in_index.get(&key) == Some(&user) {
                        state.sign_in_index.remove(&key);
                    }
                }
            }
            for a in accounts {
                if let Some(acc) = state.accounts.get_mut(&a) {
                    acc.members.remove(&user);
                }
            }
            if let Some(l) = leader.and_then(|l| user_mut(state, l)) {
                l.direct_reports.remove(&user);
            }
            state.agency_admin_index.remove(&user);
        }
        Event::MeetingCancelled { item } => {
            if let Some(w) = state.work_items.get_mut(&item) {
                w.cancelled = true;
            }
        }
        other => debug_assert!(
            false,
            "{} is not folded in evolve/lifecycle.rs",
            other.event_type()
        ),
    }
}
