//! Folds the events of invitations, their acceptance and the first sign-in (decided in `decide/invitations.rs`).

use super::*;

/// Applies one event of this area; `evolve` routes only these here.
pub(super) fn apply(state: &mut Organization, event: Event) {
    match event {
        Event::UserInvited {
            user,
            invitation,
            personal,
            grant,
            token_hash,
            expires_at,
        } => {
            let mut u = new_user_from_personal(user, UserStatus::Invited, personal);
            u.invitation = Some(invitation);
            insert_user(state, u);
            insert_invitation(
                state,
                Invitation {
                    id: invitation,
                    delivery: Delivery::Email,
                    user: Some(user),
                    grant,
                    token_hash,
                    expires_at,
                    status: InvitationStatus::Pending,
                },
            );
        }
        Event::UserProvisioned {
            user,
            personal,
            default_country,
            grant,
        } => {
            let mut u = new_user_from_personal(user, UserStatus::Active, personal);
            if let Some(p) = u.profile.as_mut() {
                p.default_country = default_country;
            }
            insert_user(state, u);
            apply_grant(state, user, &grant);
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
                    id: invitation,
                    delivery: Delivery::Link,
                    user: None,
                    grant,
                    token_hash,
                    expires_at,
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
            set_invitation_status(state, previous, InvitationStatus::Superseded);
            let old = state
                .invitations
                .get(&previous)
                .map(|i| (i.grant.clone(), i.delivery));
            if let Some((grant, delivery)) = old {
                insert_invitation(
                    state,
                    Invitation {
                        id: invitation,
                        delivery,
                        user: Some(user),
                        grant,
                        token_hash,
                        expires_at,
                        status: InvitationStatus::Pending,
                    },
                );
            }
            if let Some(u) = user_mut(state, user) {
                u.invitation = Some(invitation);
            }
        }
        Event::InvitationAccepted {
            invitation,
            user,
            new_user,
            personal,
            default_country,
        } => {
            let accept = move |u: &mut User| {
                if let Some(p) = u.profile.as_mut() {
                    if default_country.is_some() {
                        p.default_country = default_country;
                    }
                }
                u.invitation = Some(invitation);
                u.invitation_accepted = true;
            };
            if new_user {
                let mut u = new_user_from_personal(user, UserStatus::Invited, personal);
                accept(&mut u);
                insert_user(state, u);
            } else {
                update_user(state, user, personal, accept);
            }
            set_invitation_status(state, invitation, InvitationStatus::Accepted);
            let grant = state.invitations.get_mut(&invitation).map(|i| {
                i.user = Some(user);
                i.grant.clone()
            });
            if let Some(g) = grant {
                apply_grant(state, user, &g);
            }
        }
        Event::InvitationRevoked { invitation } => {
            end_invitation(state, invitation, InvitationStatus::Revoked);
        }
        Event::InvitationExpired { invitation } => {
            end_invitation(state, invitation, InvitationStatus::Expired);
        }
        Event::DeviceSignedIn {
            user,
            device,
            name,
            at,
        } => {
            if let Some(u) = user_mut(state, user) {
                u.devices.insert(
                    device,
                    DeviceSession {
                        id: device,
                        name,
                        signed_in_at: at,
                    },
                );
            }
        }
        Event::UserActivated { user } => {
            if let Some(u) = user_mut(state, user) {
                u.status = UserStatus::Active;
            }
        }
        other => debug_assert!(
            false,
            "{} is not folded in evolve/invitations.rs",
            other.event_type()
        ),
    }
}

/// Ends a pending invitation (revoked or expired). The invitee's record holds
/// the invitation: their standing changed with it, so their stamp moves.
fn end_invitation(state: &mut Organization, invitation: InvitationId, status: InvitationStatus) {
    set_invitation_status(state, invitation, status);
    if let Some(u) = state.invitations.get(&invitation).and_then(|i| i.user) {
        user_mut(state, u);
    }
}
