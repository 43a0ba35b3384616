//! Folds the events of profile edits, signing out and password resets (decided in `decide/profile.rs`).

use super::*;

/// Applies one event of this area; `evolve` routes only these here.
pub(super) fn apply(state: &mut Organization, event: Event) {
    match event {
        Event::ProfileUpdated {
            user,
            personal,
            default_country,
            notifications,
        } => {
            update_user(state, user, personal, move |u| {
                let Some(p) = u.profile.as_mut() else {
                    return;
                };
                if default_country.is_some() {
                    p.default_country = default_country;
                }
                if let Some(n) = notifications {
                    p.notifications = n;
                }
            });
        }
        Event::DeviceSignedOut { user, device } => {
            if let Some(u) = user_mut(state, user) {
                u.devices.remove(&device);
            }
        }
        Event::PasswordResetIssued {
            user,
            token_hash,
            expires_at,
        } => {
            if let Some(u) = user_mut(state, user) {
                u.password_reset = Some(PasswordReset {
                    token_hash,
                    expires_at,
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
