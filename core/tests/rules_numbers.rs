//! Number rules: R-NUM-01..06.

mod common;

use common::*;
use switchboard_core::*;

fn assign(number: &str, user: UserId) -> Command {
    Command::AssignNumber {
        number: number.into(),
        user,
    }
}

fn forward(number: &str, to: UserId) -> Command {
    Command::ForwardNumber {
        number: number.into(),
        to,
    }
}

fn unassign(number: &str) -> Command {
    Command::UnassignNumber {
        number: number.into(),
    }
}

fn pn(s: &str) -> PhoneNumber {
    PhoneNumber::new(s)
}

fn wrong_status(user: UserId, status: UserStatus, rule: RuleId) -> Blocker {
    Blocker::WrongStatus { user, status, rule }
}

fn no_access(user: UserId, account: AccountId, rule: RuleId) -> Blocker {
    Blocker::NoAccess {
        user,
        account,
        rule,
    }
}

// ---------------------------------------------------------------- R-NUM-01

#[test]
fn r_num_01_a_number_goes_to_one_active_user_with_access_to_its_account() {
    let mut w = World::new();
    let east = w.account("East", w.root);
    let west = w.account("West", w.root);
    let ann = w.agent("Ann", &[east]);
    let bob = w.agent("Bob", &[east]);
    let wes = w.agent("Wes", &[west]);
    let n = w.add_number(east);
    // No access to East.
    let err = w.refused(w.owner_actor(), assign(&n, wes));
    assert_eq!(only(&err), &no_access(wes, east, RuleId::NumberAssignee));
    // Assigned to Ann.
    let d = w.ok(w.owner_actor(), assign(&n, ann));
    assert_eq!(
        d.events,
        vec![Event::NumberAssigned {
            number: pn(&n),
            user: ann
        }]
    );
    assert_eq!(w.number(&n).assigned_to, Some(ann));
    assert!(w.user(ann).assigned_numbers.contains(&pn(&n)));
    // At most one user at a time.
    let err = w.refused(w.owner_actor(), assign(&n, bob));
    assert_eq!(
        only(&err),
        &Blocker::NumberAssigned {
            number: pn(&n),
            user: ann
        }
    );
    // Not to an inactive user.
    let n2 = w.add_number(east);
    w.ok(
        w.owner_actor(),
        Command::Deactivate {
            user: bob,
            forward_numbers_to: None,
            reassign_reports: None,
        },
    );
    let err = w.refused(w.owner_actor(), assign(&n2, bob));
    assert_eq!(
        only(&err),
        &wrong_status(bob, UserStatus::Deactivated, RuleId::NumberAssignee)
    );
    let pending = w.invite("p@northwind.example", grant(agent_role(), &[east]));
    let err = w.refused(w.owner_actor(), assign(&n2, pending.user.unwrap()));
    assert_eq!(
        only(&err),
        &wrong_status(
            pending.user.unwrap(),
            UserStatus::Invited,
            RuleId::NumberAssignee
        )
    );
    // An agency administrator reaches every account.
    let alan = w.agency_admin("Alan");
    w.ok(w.owner_actor(), assign(&n2, alan));
    // An agent cannot assign numbers (ManageNumbers).
    let n3 = w.add_number(east);
    let err = w.refused(as_user(ann), assign(&n3, ann));
    assert_eq!(
        only(&err),
        &Blocker::PermissionDenied {
            actor: as_user(ann),
            permission: Permission::ManageNumbers,
            account: Some(east)
        }
    );
}

#[test]
fn r_num_01_a_holder_cannot_lose_access_or_be_deactivated_while_holding_numbers() {
    let mut w = World::new();
    let east = w.account("East", w.root);
    let west = w.account("West", w.root);
    let ann = w.agent("Ann", &[east, west]);
    let n = w.number_for(east, ann);
    let err = w.refused(
        w.owner_actor(),
        Command::RemoveAccess {
            user: ann,
            accounts: vec![east],
        },
    );
    assert_eq!(
        only(&err),
        &Blocker::NumbersStillAssigned {
            user: ann,
            numbers: vec![pn(&n)],
            rule: RuleId::NumberAssignee
        }
    );
    // Losing West, where she holds no number, is fine.
    w.ok(
        w.owner_actor(),
        Command::RemoveAccess {
            user: ann,
            accounts: vec![west],
        },
    );
    let err = w.refused(
        w.owner_actor(),
        Command::Deactivate {
            user: ann,
            forward_numbers_to: None,
            reassign_reports: None,
        },
    );
    assert_eq!(
        only(&err),
        &Blocker::NumbersStillAssigned {
            user: ann,
            numbers: vec![pn(&n)],
            rule: RuleId::NumberAssignee
        }
    );
}

#[test]
fn r_num_01_assigning_a_forwarded_number_stops_the_forward() {
    let mut w = World::new();
    let ann = w.agent("Ann", &[w.root]);
    let bob = w.agent("Bob", &[w.root]);
    let n = w.forwarded_to(w.root, bob);
    let d = w.ok(w.owner_actor(), assign(&n, ann));
    assert_eq!(
        d.events,
        vec![
            Event::NumberForwardingStopped { number: pn(&n) },
            Event::NumberAssigned {
                number: pn(&n),
                user: ann
            }
        ]
    );
    assert!(w.user(bob).forwarded_numbers.is_empty());
    assert_eq!(w.number(&n).forwarded_to, None);
}

// ---------------------------------------------------------------- R-NUM-02

#[test]
fn r_num_02_user_with_numbers_cannot_be_deleted() {
    let mut w = World::new();
    let ann = w.agent("Ann", &[w.root]);
    let n1 = w.number_for(w.root, ann);
    let n2 = w.number_for(w.root, ann);
    let delete = Command::Delete {
        user: ann,
        acknowledgement: ACK,
        forward_numbers_to: None,
        reassign_reports: None,
    };
    let err = w.refused(w.owner_actor(), delete.clone());
    let mut numbers = vec![pn(&n1), pn(&n2)];
    numbers.sort();
    assert_eq!(
        only(&err),
        &Blocker::NumbersStillAssigned {
            user: ann,
            numbers,
            rule: RuleId::NumbersBlockDeletion
        }
    );
    assert!(err.to_string().contains(&n1) && err.to_string().contains(&n2));
    // Unassign first, then delete.
    w.ok(w.owner_actor(), unassign(&n1));
    let err = w.refused(w.owner_actor(), delete.clone());
    assert_eq!(
        only(&err),
        &Blocker::NumbersStillAssigned {
            user: ann,
            numbers: vec![pn(&n2)],
            rule: RuleId::NumbersBlockDeletion
        }
    );
    w.ok(w.owner_actor(), unassign(&n2));
    w.ok(w.owner_actor(), delete);
    assert_eq!(w.user(ann).status, UserStatus::Deleted);
}

// ---------------------------------------------------------------- R-NUM-03

#[test]
fn r_num_03_an_unassigned_number_is_orphaned_until_forwarded_or_released() {
    let mut w = World::new();
    let ann = w.agent("Ann", &[w.root]);
    let bob = w.agent("Bob", &[w.root]);
    let fresh = w.add_number(w.root);
    let n = w.number_for(w.root, ann);
    assert!(
        w.state.orphaned_numbers().is_empty(),
        "never-assigned is not orphaned"
    );
    let d = w.ok(w.owner_actor(), unassign(&n));
    assert_eq!(
        d.events,
        vec![Event::NumberUnassigned {
            number: pn(&n),
            user: ann
        }]
    );
    let orphans: Vec<&str> = w
        .state
        .orphaned_numbers()
        .iter()
        .map(|x| x.number.as_str())
        .collect();
    assert_eq!(orphans, vec![n.as_str()]);
    // Forwarded to an active user: no longer orphaned.
    w.ok(w.owner_actor(), forward(&n, bob));
    assert!(w.state.orphaned_numbers().is_empty());
    // Forwarding stopped: orphaned again.
    w.ok(
        w.owner_actor(),
        Command::StopForwarding { number: n.clone() },
    );
    assert_eq!(w.state.orphaned_numbers().len(), 1);
    // Released: gone from the organization.
    let d = w.ok(
        w.owner_actor(),
        Command::ReleaseNumber { number: n.clone() },
    );
    assert_eq!(d.events, vec![Event::NumberReleased { number: pn(&n) }]);
    assert!(w.state.orphaned_numbers().is_empty());
    assert!(!w.state.numbers.contains_key(&pn(&n)));
    // Unassigning what is not assigned is refused.
    let err = w.refused(w.owner_actor(), unassign(&fresh));
    assert_eq!(
        only(&err),
        &Blocker::NumberNotAssigned { number: pn(&fresh) }
    );
    w.assert_replays();
}

#[test]
fn r_num_03_an_assigned_number_cannot_be_released() {
    let mut w = World::new();
    let ann = w.agent("Ann", &[w.root]);
    let n = w.number_for(w.root, ann);
    let err = w.refused(
        w.owner_actor(),
        Command::ReleaseNumber { number: n.clone() },
    );
    assert_eq!(
        only(&err),
        &Blocker::NumberAssigned {
            number: pn(&n),
            user: ann
        }
    );
}

// ---------------------------------------------------------------- R-NUM-04

#[test]
fn r_num_04_a_forward_target_is_an_active_user_with_access() {
    let mut w = World::new();
    let east = w.account("East", w.root);
    let west = w.account("West", w.root);
    let ann = w.agent("Ann", &[east]);
    let wes = w.agent("Wes", &[west]);
    let gone = w.agent("Gone", &[east]);
    w.ok(
        w.owner_actor(),
        Command::Deactivate {
            user: gone,
            forward_numbers_to: None,
            reassign_reports: None,
        },
    );
    let n = w.add_number(east);
    let err = w.refused(w.owner_actor(), forward(&n, wes));
    assert_eq!(
        only(&err),
        &no_access(wes, east, RuleId::ForwardToActiveUser)
    );
    let err = w.refused(w.owner_actor(), forward(&n, gone));
    assert_eq!(
        only(&err),
        &wrong_status(gone, UserStatus::Deactivated, RuleId::ForwardToActiveUser)
    );
    let d = w.ok(w.owner_actor(), forward(&n, ann));
    assert_eq!(
        d.events,
        vec![Event::NumberForwarded {
            number: pn(&n),
            to: ann
        }]
    );
    assert!(w.user(ann).forwarded_numbers.contains(&pn(&n)));
    // Re-forwarding moves it: the old target no longer holds it.
    let alan = w.agency_admin("Alan");
    w.ok(w.owner_actor(), forward(&n, alan));
    assert!(w.user(ann).forwarded_numbers.is_empty());
    assert!(w.user(alan).forwarded_numbers.contains(&pn(&n)));
    // A forward target cannot lose access to the number's account.
    let m = w.forwarded_to(east, ann);
    let err = w.refused(
        w.owner_actor(),
        Command::RemoveAccess {
            user: ann,
            accounts: vec![east],
        },
    );
    assert_eq!(
        only(&err),
        &Blocker::ForwardTarget {
            user: ann,
            numbers: vec![pn(&m)]
        }
    );
}

// ---------------------------------------------------------------- R-NUM-05

#[test]
fn r_num_05_a_forward_target_cannot_be_deactivated_or_deleted() {
    let mut w = World::new();
    let ann = w.agent("Ann", &[w.root]);
    let n1 = w.forwarded_to(w.root, ann);
    let n2 = w.forwarded_to(w.root, ann);
    let mut numbers = vec![pn(&n1), pn(&n2)];
    numbers.sort();
    let blocker = Blocker::ForwardTarget { user: ann, numbers };
    let err = w.refused(
        w.owner_actor(),
        Command::Deactivate {
            user: ann,
            forward_numbers_to: None,
            reassign_reports: None,
        },
    );
    assert_eq!(only(&err), &blocker);
    let err = w.refused(
        w.owner_actor(),
        Command::Delete {
            user: ann,
            acknowledgement: ACK,
            forward_numbers_to: None,
            reassign_reports: None,
        },
    );
    assert_eq!(only(&err), &blocker);
}

#[test]
fn r_num_05_the_same_command_may_name_the_new_target() {
    let mut w = World::new();
    let east = w.account("East", w.root);
    let ann = w.agent("Ann", &[east]);
    let bob = w.agent("Bob", &[east]);
    let wes = w.agent("Wes", &[w.root]);
    let n = w.forwarded_to(east, ann);
    // The new target must reach the number's account (R-NUM-04)...
    let err = w.refused(
        w.owner_actor(),
        Command::Deactivate {
            user: ann,
            forward_numbers_to: Some(wes),
            reassign_reports: None,
        },
    );
    assert_eq!(
        only(&err),
        &no_access(wes, east, RuleId::ForwardToActiveUser)
    );
    // ...and is not the user leaving.
    let err = w.refused(
        w.owner_actor(),
        Command::Deactivate {
            user: ann,
            forward_numbers_to: Some(ann),
            reassign_reports: None,
        },
    );
    assert_eq!(only(&err), &Blocker::TargetIsSubject { user: ann });
    let d = w.ok(
        w.owner_actor(),
        Command::Deactivate {
            user: ann,
            forward_numbers_to: Some(bob),
            reassign_reports: None,
        },
    );
    assert_eq!(
        d.events,
        vec![
            Event::NumberForwarded {
                number: pn(&n),
                to: bob
            },
            Event::UserDeactivated {
                user: ann,
                sessions_ended: w.events[..w.events.len() - 2]
                    .iter()
                    .filter_map(|e| match e {
                        Event::DeviceSignedIn { user, device, .. } if *user == ann => {
                            Some(*device)
                        }
                        _ => None,
                    })
                    .collect()
            }
        ]
    );
    assert_eq!(w.number(&n).forwarded_to, Some(bob));
    assert!(w.user(ann).forwarded_numbers.is_empty());
    w.assert_replays();
}

// ---------------------------------------------------------------- R-NUM-06

#[test]
fn r_num_06_numbers_are_normalised_to_e164_and_unique() {
    let mut w = World::new();
    let d = w.ok(
        w.owner_actor(),
        Command::AddNumber {
            number: " +1 (415) 555-0100 ".into(),
            account: w.root,
        },
    );
    assert_eq!(
        d.events,
        vec![Event::NumberAdded {
            number: pn("+14155550100"),
            account: w.root
        }]
    );
    let east = w.account("East", w.root);
    for same in ["+14155550100", "+1 415-555-0100"] {
        let err = w.refused(
            w.owner_actor(),
            Command::AddNumber {
                number: same.into(),
                account: east,
            },
        );
        assert_eq!(
            only(&err),
            &Blocker::NumberExists {
                number: pn("+14155550100")
            }
        );
    }
    for bad in ["4155550100", "+1 555", "call me", "+999 123"] {
        let err = w.refused(
            w.owner_actor(),
            Command::AddNumber {
                number: bad.into(),
                account: east,
            },
        );
        assert_eq!(err.rules(), vec![RuleId::UniqueNumber], "{bad}");
    }
    // Commands find the number in any spelling.
    let ann = w.agent("Ann", &[w.root]);
    w.ok(w.owner_actor(), assign("+1 415 555 0100", ann));
    assert_eq!(w.number("+14155550100").assigned_to, Some(ann));
}

#[tokio::test]
async fn r_num_06_a_number_is_unique_across_organizations_of_one_store() {
    use switchboard_core::service::{CommandRequest, ServiceError};
    let svc = common::svc::Svc::new().await;
    svc.ok(
        as_user(svc.owner),
        Command::AddNumber {
            number: "+1 415 555 0142".into(),
            account: svc.root,
        },
    )
    .await;
    // A second organization in the same store.
    let other = OrgId::from_uuid(uuid::Uuid::from_u128(0xB0B));
    let next = || CommandId::from_uuid(svc.ids.next_id());
    svc.service
        .handle(CommandRequest::new(
            other,
            next(),
            Actor::System,
            Command::CreateOrganization {
                name: "Contoso".into(),
                root_account_name: "Contoso".into(),
                owner_email: "carla@contoso.example".into(),
                owner_name: "Carla".into(),
                policies: None,
            },
        ))
        .await
        .unwrap();
    let state = svc.service.state(other).await.unwrap();
    let err = svc
        .service
        .handle(CommandRequest::new(
            other,
            next(),
            Actor::user(state.primary_owner.unwrap()),
            Command::AddNumber {
                number: "+14155550142".into(),
                account: state.root_account.unwrap(),
            },
        ))
        .await
        .unwrap_err();
    match err {
        ServiceError::Rejected(e) => assert_eq!(
            e.blockers,
            vec![Blocker::NumberClaimedElsewhere {
                number: pn("+14155550142")
            }]
        ),
        other => panic!("unexpected {other:?}"),
    }
    // Once the first organization releases it, the second may add it.
    svc.ok(
        as_user(svc.owner),
        Command::ReleaseNumber {
            number: "+14155550142".into(),
        },
    )
    .await;
    svc.service
        .handle(CommandRequest::new(
            other,
            next(),
            Actor::user(state.primary_owner.unwrap()),
            Command::AddNumber {
                number: "+14155550142".into(),
                account: state.root_account.unwrap(),
            },
        ))
        .await
        .unwrap();
}
