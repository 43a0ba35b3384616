//! Lifecycle rules: R-LIFE-01..09.

mod common;

use chrono::{DateTime, Duration, Utc};
use common::*;
use switchboard_core::*;

fn deactivate(user: UserId) -> Command {
    Command::Deactivate {
        user,
        forward_numbers_to: None,
        reassign_reports: None,
    }
}

fn delete(user: UserId, acknowledgement: DeletionAcknowledgement) -> Command {
    Command::Delete {
        user,
        acknowledgement,
        forward_numbers_to: None,
        reassign_reports: None,
    }
}

fn wrong_status(user: UserId, status: UserStatus, rule: RuleId) -> Blocker {
    Blocker::WrongStatus { user, status, rule }
}

// ---------------------------------------------------------------- R-LIFE-01

#[test]
fn r_life_01_deactivation_ends_every_session_and_blocks_sign_in() {
    let mut w = World::new();
    let ann = w.agent("Ann", &[w.root]);
    let phone_dev = w.sign_in(ann, "phone");
    let laptop = w.state.users[&ann]
        .devices
        .keys()
        .copied()
        .find(|d| *d != phone_dev)
        .unwrap();
    let d = w.ok(w.owner_actor(), deactivate(ann));
    let mut ended = vec![phone_dev, laptop];
    ended.sort();
    assert_eq!(
        d.events,
        vec![Event::UserDeactivated {
            user: ann,
            sessions_ended: ended
        }]
    );
    assert_eq!(w.user(ann).status, UserStatus::Deactivated);
    assert!(w.state.devices_of(ann).is_empty());
    // No sign-in...
    let err = w.refused(
        as_user(ann),
        Command::SignIn {
            user: ann,
            device_name: "phone".into(),
        },
    );
    assert_eq!(
        only(&err),
        &wrong_status(ann, UserStatus::Deactivated, RuleId::DeactivationEndsAccess)
    );
    // ...and no act of theirs is accepted.
    let err = w.refused(as_user(ann), Command::RequestPasswordReset { user: ann });
    assert!(
        err.has_rule(RuleId::PasswordReset) || err.has_rule(RuleId::ManageUsersRequired),
        "{err}"
    );
    let err = w.refused(
        as_user(ann),
        Command::CreateWorkItem {
            kind: WorkKind::Conversation,
            title: "x".into(),
            owner: w.owner,
        },
    );
    assert_eq!(
        only(&err),
        &Blocker::ActorNotActive {
            actor: as_user(ann)
        }
    );
}

#[test]
fn r_life_01_only_active_users_can_be_deactivated() {
    let mut w = World::new();
    let ann = w.agent("Ann", &[w.root]);
    w.ok(w.owner_actor(), deactivate(ann));
    let err = w.refused(w.owner_actor(), deactivate(ann));
    assert_eq!(
        only(&err),
        &wrong_status(ann, UserStatus::Deactivated, RuleId::DeactivationEndsAccess)
    );
    let inv = w.invite("pending@northwind.example", grant(agent_role(), &[w.root]));
    let err = w.refused(w.owner_actor(), deactivate(inv.user.unwrap()));
    assert_eq!(
        err.blockers[0],
        wrong_status(
            inv.user.unwrap(),
            UserStatus::Invited,
            RuleId::DeactivationEndsAccess
        )
    );
}

// ---------------------------------------------------------------- R-LIFE-02

#[test]
fn r_life_02_a_deactivated_user_can_be_reactivated_listed_and_searched() {
    let mut w = World::new();
    let ann = w.agent("Ann Archer", &[w.root]);
    let bob = w.agent("Bob Baker", &[w.root]);
    w.ok(w.owner_actor(), deactivate(ann));
    let listed: Vec<UserId> = w
        .state
        .users_with_status(UserStatus::Deactivated)
        .iter()
        .map(|u| u.id)
        .collect();
    assert_eq!(listed, vec![ann]);
    let found: Vec<UserId> = w
        .state
        .search_users("ARCHER", Some(UserStatus::Deactivated))
        .iter()
        .map(|u| u.id)
        .collect();
    assert_eq!(found, vec![ann]);
    assert!(w
        .state
        .search_users("baker", Some(UserStatus::Deactivated))
        .is_empty());
    // Reactivating an active user is refused.
    let err = w.refused(w.owner_actor(), Command::Reactivate { user: bob });
    assert_eq!(
        only(&err),
        &wrong_status(bob, UserStatus::Active, RuleId::Reactivation)
    );
    // Bob, an agent, may not reactivate Ann.
    let err = w.refused(as_user(bob), Command::Reactivate { user: ann });
    assert_eq!(
        only(&err),
        &Blocker::PermissionDenied {
            actor: as_user(bob),
            permission: Permission::ManageUsers,
            account: Some(w.root)
        }
    );
    let d = w.ok(w.owner_actor(), Command::Reactivate { user: ann });
    assert_eq!(d.events, vec![Event::UserReactivated { user: ann }]);
    assert_eq!(w.user(ann).status, UserStatus::Active);
    w.sign_in(ann, "phone");
    w.assert_replays();
}

// ---------------------------------------------------------------- R-LIFE-03

#[test]
fn r_life_03_the_primary_owner_cannot_be_deactivated_deleted_demoted_or_removed() {
    let mut w = World::new();
    let alan = w.agency_admin("Alan Admin");
    let owner = w.owner;
    let root = w.root;
    let po = Blocker::PrimaryOwner { user: owner };
    let a = as_user(alan);
    assert_eq!(only(&w.refused(a.clone(), deactivate(owner))), &po);
    assert_eq!(only(&w.refused(a.clone(), delete(owner, ACK))), &po);
    assert_eq!(
        only(&w.refused(
            a.clone(),
            Command::ChangeRole {
                user: owner,
                account: root,
                role: agent_role()
            }
        )),
        &po
    );
    let err = w.refused(
        a.clone(),
        Command::RemoveAccess {
            user: owner,
            accounts: vec![root],
        },
    );
    assert!(err.blockers.contains(&po), "{err}");
    assert_eq!(
        only(&w.refused(a.clone(), Command::RemoveFromAllAccounts { user: owner })),
        &po
    );
    assert_eq!(
        only(&w.refused(
            a.clone(),
            Command::UpdateAdminFields {
                user: owner,
                job_title: None,
                picture: None,
                admin_access: Some(false)
            }
        )),
        &po
    );
}

#[test]
fn r_life_03_ownership_is_transferred_first_by_the_owner_or_support() {
    let mut w = World::new();
    let alan = w.agency_admin("Alan Admin");
    let east = w.account("East", w.root);
    let erin = w.admin("Erin", &[east]);
    let old_owner = w.owner;
    // Only the primary owner (or support) may transfer.
    let err = w.refused(
        as_user(alan),
        Command::TransferPrimaryOwnership { to: alan },
    );
    assert_eq!(
        only(&err),
        &Blocker::NotPrimaryOwner {
            actor: as_user(alan)
        }
    );
    // Not to an inactive user.
    let pending = w.invite("p@northwind.example", grant(agent_role(), &[east]));
    let err = w.refused(
        w.owner_actor(),
        Command::TransferPrimaryOwnership {
            to: pending.user.unwrap(),
        },
    );
    assert_eq!(
        only(&err),
        &wrong_status(
            pending.user.unwrap(),
            UserStatus::Invited,
            RuleId::PrimaryOwnerProtected
        )
    );
    // The owner hands over to Erin, who becomes an agency administrator.
    let d = w.ok(
        w.owner_actor(),
        Command::TransferPrimaryOwnership { to: erin },
    );
    assert_eq!(
        d.events,
        vec![
            Event::PrimaryOwnershipTransferred {
                from: old_owner,
                to: erin
            },
            Event::AgencyAdminGranted { user: erin }
        ]
    );
    assert_eq!(w.state.primary_owner, Some(erin));
    // Now the former owner can be deactivated.
    w.ok(as_user(erin), deactivate(old_owner));
    assert_eq!(w.user(old_owner).status, UserStatus::Deactivated);
    // Support can move ownership too (seed 004: ask support).
    w.ok(
        Actor::Support {
            agent: "sam@support".into(),
        },
        Command::TransferPrimaryOwnership { to: alan },
    );
    assert_eq!(w.state.primary_owner, Some(alan));
    w.assert_replays();
}

// ---------------------------------------------------------------- R-LIFE-04

#[test]
fn r_life_04_incomplete_profiles_block_deactivation_and_reactivation() {
    let mut w = World::new();
    let ian = w.incomplete_agent("Ian", &[w.root]);
    let err = w.refused(w.owner_actor(), deactivate(ian));
    assert_eq!(
        only(&err),
        &Blocker::IncompleteProfile {
            user: ian,
            missing: vec![ProfileField::Mobile, ProfileField::DefaultCountry]
        }
    );
    // Filling the fields (dummy data is fine) unblocks deactivation.
    w.ok(
        as_user(ian),
        Command::UpdateProfile {
            user: ian,
            name: None,
            email: None,
            mobile: Some(Edit::Set(phone(7_777))),
            default_country: Some("US".into()),
            notifications: None,
        },
    );
    w.ok(w.owner_actor(), deactivate(ian));
}

#[test]
fn r_life_04_the_policy_can_be_switched_off_and_then_reactivation_is_checked() {
    let mut w = World::new();
    let ian = w.incomplete_agent("Ian", &[w.root]);
    let off = Policies {
        require_complete_profile: false,
        ..Policies::default()
    };
    w.ok(w.owner_actor(), Command::SetPolicies { policies: off });
    w.ok(w.owner_actor(), deactivate(ian));
    // Back on: reactivation of the incomplete profile is refused.
    w.ok(
        w.owner_actor(),
        Command::SetPolicies {
            policies: Policies::default(),
        },
    );
    let err = w.refused(w.owner_actor(), Command::Reactivate { user: ian });
    assert_eq!(
        only(&err),
        &Blocker::IncompleteProfile {
            user: ian,
            missing: vec![ProfileField::Mobile, ProfileField::DefaultCountry]
        }
    );
    // Under SelfOrAdmin an administrator may fill in the profile, then reactivate.
    w.ok(
        w.owner_actor(),
        Command::SetPolicies {
            policies: Policies {
                profile_edit: ProfileEditPolicy::SelfOrAdmin,
                ..Policies::default()
            },
        },
    );
    w.ok(
        w.owner_actor(),
        Command::UpdateProfile {
            user: ian,
            name: None,
            email: None,
            mobile: Some(Edit::Set(phone(7_778))),
            default_country: Some("CA".into()),
            notifications: None,
        },
    );
    w.ok(w.owner_actor(), Command::Reactivate { user: ian });
    assert!(w.user(ian).is_active());
}

// ---------------------------------------------------------------- R-LIFE-05

#[test]
fn r_life_05_deletion_needs_every_consequence_acknowledged() {
    let mut w = World::new();
    let ann = w.agent("Ann", &[w.root]);
    let partial = [
        DeletionAcknowledgement::default(),
        DeletionAcknowledgement {
            cannot_be_undone: false,
            ..ACK
        },
        DeletionAcknowledgement {
            profile_erased: false,
            ..ACK
        },
        DeletionAcknowledgement {
            meetings_cancelled: false,
            ..ACK
        },
        DeletionAcknowledgement {
            everything_else_kept: false,
            ..ACK
        },
    ];
    for ack in partial {
        let err = w.refused(w.owner_actor(), delete(ann, ack));
        assert_eq!(only(&err), &Blocker::DeletionNotAcknowledged);
    }
    assert!(w.user(ann).profile.is_some());
}

#[test]
fn r_life_05_deletion_cancels_meetings_and_keeps_everything_else() {
    let mut w = World::new();
    let ann = w.agent("Ann", &[w.root]);
    let device = w.sign_in(ann, "phone");
    let meeting = w.work(WorkKind::Meeting, "Quarterly review", ann);
    let convo = w.work(WorkKind::Conversation, "Support chat", ann);
    let client = w.work(WorkKind::Client, "Acme", ann);
    let d = w.ok(w.owner_actor(), delete(ann, ACK));
    let mut sessions: Vec<DeviceId> = vec![device];
    sessions.extend(
        w.events
            .iter()
            .filter_map(|e| match e {
                Event::DeviceSignedIn { user, device, .. } if *user == ann => Some(*device),
                _ => None,
            })
            .filter(|d| *d != device),
    );
    sessions.sort();
    assert_eq!(
        d.events,
        vec![
            Event::MeetingCancelled { item: meeting },
            Event::UserDeleted {
                user: ann,
                acknowledgement: ACK,
                sessions_ended: sessions
            }
        ]
    );
    assert!(w.state.work_items[&meeting].cancelled);
    for kept in [convo, client] {
        let item = &w.state.work_items[&kept];
        assert!(!item.cancelled);
        assert_eq!(item.owner, ann, "kept, still attributed to the id");
    }
    // Cannot be undone: the user cannot be reactivated or deleted again.
    let err = w.refused(w.owner_actor(), Command::Reactivate { user: ann });
    assert_eq!(
        only(&err),
        &wrong_status(ann, UserStatus::Deleted, RuleId::Reactivation)
    );
    let err = w.refused(w.owner_actor(), delete(ann, ACK));
    assert_eq!(
        only(&err),
        &wrong_status(ann, UserStatus::Deleted, RuleId::DeletionAcknowledged)
    );
}

#[test]
fn r_life_05_deleting_an_invited_user_revokes_the_invitation() {
    let mut w = World::new();
    let inv = w.invite("gone@northwind.example", grant(agent_role(), &[w.root]));
    let user = inv.user.unwrap();
    let d = w.ok(w.owner_actor(), delete(user, ACK));
    assert_eq!(
        d.events[0],
        Event::InvitationRevoked {
            invitation: inv.invitation
        }
    );
    let err = w.refused(
        Actor::System,
        Command::AcceptInvitation {
            token: inv.token,
            email: None,
            name: "Gone".into(),
            mobile: None,
            default_country: None,
        },
    );
    assert_eq!(err.rules(), vec![RuleId::InvitationRevocation]);
}

// ---------------------------------------------------------------- R-LIFE-06

#[test]
fn r_life_06_after_deletion_no_profile_remains_the_email_is_free_and_the_id_stays() {
    let mut w = World::new();
    let ann = w.agent("Ann Archer", &[w.root]);
    let email = w.profile(ann).email.clone();
    let mobile = w.profile(ann).mobile.clone().unwrap();
    w.ok(w.owner_actor(), delete(ann, ACK));
    let u = w.user(ann);
    assert_eq!(u.status, UserStatus::Deleted);
    assert!(u.profile.is_none(), "personal data erased from state");
    assert!(u.memberships.is_empty());
    assert_eq!(u.label(), ann.to_string(), "resolves to its id");
    let state_json = serde_json::to_string(&w.state).unwrap();
    assert!(!state_json.contains(&email));
    assert!(!state_json.contains("Ann Archer"));
    assert!(!state_json.contains(mobile.as_str()));
    assert!(w.state.user_by_email(&email).is_none());
    assert!(w.state.search_users("archer", None).is_empty());
    // The id stays in history.
    assert!(w.events.iter().any(|e| e.users().contains(&ann)));
    assert!(w
        .state
        .users_with_status(UserStatus::Deleted)
        .iter()
        .any(|u| u.id == ann));
    // Their profile can no longer be edited.
    let err = w.refused(
        w.owner_actor(),
        Command::UpdateAdminFields {
            user: ann,
            job_title: Some(Edit::Set("Ghost".into())),
            picture: None,
            admin_access: None,
        },
    );
    assert_eq!(
        only(&err),
        &wrong_status(ann, UserStatus::Deleted, RuleId::PersonalDataErased)
    );
    // The email is free again: a new person, a new id.
    let again = w.invite(&email, grant(agent_role(), &[w.root]));
    assert_ne!(again.user, Some(ann));
    assert_eq!(w.state.user_by_email(&email).map(|u| u.id), again.user);
    w.assert_replays();
}

// ---------------------------------------------------------------- R-LIFE-07

#[test]
fn r_life_07_a_password_reset_issues_a_hashed_token_to_an_active_user() {
    let mut w = World::new();
    let ann = w.agent("Ann", &[w.root]);
    let bob = w.agent("Bob", &[w.root]);
    let d = w.ok(as_user(ann), Command::RequestPasswordReset { user: ann });
    let token = d.secrets[0].token.clone();
    match &d.events[..] {
        [Event::PasswordResetIssued {
            user,
            token_hash,
            expires_at,
        }] => {
            assert_eq!(*user, ann);
            assert_eq!(token_hash, &validate::token_hash(&token));
            assert_eq!(*expires_at, w.now() + Duration::hours(24));
        }
        other => panic!("unexpected {other:?}"),
    }
    assert!(!log_text(&w.events).contains(&token));
    // An administrator may ask for it; another agent may not.
    w.ok(w.owner_actor(), Command::RequestPasswordReset { user: ann });
    let err = w.refused(as_user(bob), Command::RequestPasswordReset { user: ann });
    assert_eq!(err.rules(), vec![RuleId::ManageUsersRequired]);
    // Not for an inactive user.
    w.ok(w.owner_actor(), deactivate(ann));
    assert!(
        w.user(ann).password_reset.is_none(),
        "deactivation voids it"
    );
    let err = w.refused(w.owner_actor(), Command::RequestPasswordReset { user: ann });
    assert_eq!(
        only(&err),
        &wrong_status(ann, UserStatus::Deactivated, RuleId::PasswordReset)
    );
}

/// No panic from any input: with the longest TTL, a reset whose expiry
/// cannot be represented (the caller's clock at the end of time) is refused
/// under R-LIFE-07 and changes nothing.
#[test]
fn r_life_07_a_reset_expiring_past_the_last_representable_instant_is_refused_not_a_panic() {
    let mut w = World::with_policies(Some(Policies {
        password_reset_ttl_hours: 720,
        ..Policies::default()
    }));
    let ann = w.agent("Ann", &[w.root]);
    let reset = Command::RequestPasswordReset { user: ann };
    let end = DateTime::<Utc>::MAX_UTC;
    w.clock.set(end - Duration::hours(720));
    let d = w.ok(as_user(ann), reset.clone());
    match &d.events[..] {
        [Event::PasswordResetIssued { expires_at, .. }] => assert_eq!(*expires_at, end),
        other => panic!("unexpected {other:?}"),
    }
    for now in [end - Duration::hours(720) + Duration::seconds(1), end] {
        w.clock.set(now);
        let err = w.refused(as_user(ann), reset.clone());
        assert_eq!(
            only(&err),
            &Blocker::ExpiryOutOfRange {
                what: "password reset".into(),
                ttl: "720 hours".into(),
                now,
                rule: RuleId::PasswordReset,
            }
        );
        assert!(err.to_string().contains("caller's clock"), "{err}");
    }
    w.assert_replays();
}

// ---------------------------------------------------------------- R-LIFE-08

#[test]
fn r_life_08_a_user_lists_their_devices_and_signs_any_out() {
    let mut w = World::new();
    let ann = w.agent("Ann", &[w.root]);
    let bob = w.agent("Bob", &[w.root]);
    let phone_dev = w.sign_in(ann, "Pixel 9");
    let names: Vec<&str> = w
        .state
        .devices_of(ann)
        .iter()
        .map(|d| d.name.as_str())
        .collect();
    assert_eq!(names.len(), 2);
    assert!(names.contains(&"Pixel 9") && names.contains(&"laptop"));
    // Bob cannot sign Ann's device out.
    let out = Command::SignOutDevice {
        user: ann,
        device: phone_dev,
    };
    let err = w.refused(as_user(bob), out.clone());
    assert_eq!(
        only(&err),
        &Blocker::PermissionDenied {
            actor: as_user(bob),
            permission: Permission::ManageUsers,
            account: Some(w.root)
        }
    );
    let d = w.ok(as_user(ann), out.clone());
    assert_eq!(
        d.events,
        vec![Event::DeviceSignedOut {
            user: ann,
            device: phone_dev
        }]
    );
    assert_eq!(w.state.devices_of(ann).len(), 1);
    // Signing out a device that is gone is refused.
    let err = w.refused(as_user(ann), out);
    assert_eq!(
        only(&err),
        &Blocker::NotFound {
            missing: Missing::Device(phone_dev)
        }
    );
    // An administrator can sign out the last one.
    let laptop = w.state.devices_of(ann)[0].id;
    w.ok(
        w.owner_actor(),
        Command::SignOutDevice {
            user: ann,
            device: laptop,
        },
    );
    assert!(w.state.devices_of(ann).is_empty());
}

// ---------------------------------------------------------------- R-LIFE-09

#[test]
fn r_life_09_nobody_deactivates_deletes_or_removes_themselves() {
    let mut w = World::new();
    let east = w.account("East", w.root);
    let alan = w.agency_admin("Alan");
    let erin = w.admin("Erin", &[east, w.root]);
    let me = Blocker::SelfAction { user: erin };
    let e = as_user(erin);
    assert_eq!(only(&w.refused(e.clone(), deactivate(erin))), &me);
    assert_eq!(only(&w.refused(e.clone(), delete(erin, ACK))), &me);
    assert_eq!(
        only(&w.refused(
            e.clone(),
            Command::RemoveAccess {
                user: erin,
                accounts: vec![east]
            }
        )),
        &me
    );
    let err = w.refused(e.clone(), Command::RemoveFromAllAccounts { user: erin });
    assert!(err.blockers.contains(&me), "{err}");
    let err = w.refused(
        as_user(alan),
        Command::UpdateAdminFields {
            user: alan,
            job_title: None,
            picture: None,
            admin_access: Some(false),
        },
    );
    assert_eq!(only(&err), &Blocker::SelfAction { user: alan });
    // Another user with the permission must.
    w.ok(as_user(alan), deactivate(erin));
    assert_eq!(w.user(erin).status, UserStatus::Deactivated);
}
