//! Folds the events of profile edits, signing out and password resets (decided in `decide/profile.rs`).

use super::*;

/// Applies one event of this area; `evolve` routes only these here.
pub(super) fn apply(state: &mut Organization, event: &Event) {
    match event {
        Event::ProfileUpdated {
            user,
            personal,
            default_country,
            notifications,
        } => {
            let sign_in_before = sign_in_of(state, *user);
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
                state.email_index.remove(&old_key);
                index_email(state, &new_key, *user);
            }
            reindex_sign_in(state, *user, sign_in_before);
        }
        Event::DeviceSignedOut { user, device } => {
            if let Some(u) = state.users.get_mut(user) {
                u.devices.remove(device);
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
        other => debug_assert!(
            false,
            "{} is not folded in evolve/profile.rs",
            other.event_type()
        ),
    }
}
