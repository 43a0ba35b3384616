//! Offboarding: R-OFF-01 (one command, all or nothing) and R-OFF-02 (every
//! blocker at once, as a dry run).

mod common;

use common::*;
use switchboard_core::service::CommandRequest;
use switchboard_core::*;

/// A leader with an incomplete profile, two assigned numbers, one forwarded
/// number, two reports and some work; plus colleagues to take it all over.
struct Leaver {
    w: World,
    leo: UserId,
    assigned: Vec<PhoneNumber>,
    forwarded: PhoneNumber,
    reports: Vec<UserId>,
    tess: UserId,
    bob: UserId,
    meeting: WorkItemId,
    client: WorkItemId,
}

fn leaver() -> Leaver {
    let mut w = World::new();
    let leo = w.incomplete_member("Leo", grant(leader_role(), &[w.root]));
    let tess = w.leader("Tess", &[w.root]);
    let bob = w.agent("Bob", &[w.root]);
    let ann = w.agent("Ann", &[w.root]);
    let cat = w.agent("Cat", &[w.root]);
    w.reports_to(ann, leo);
    w.reports_to(cat, leo);
    let mut assigned = vec![
        PhoneNumber::from(w.number_for(w.root, leo)),
        PhoneNumber::from(w.number_for(w.root, leo)),
    ];
    assigned.sort();
    let forwarded = PhoneNumber::from(w.forwarded_to(w.root, leo));
    let meeting = w.work(WorkKind::Meeting, "1:1", leo);
    let client = w.work(WorkKind::Client, "Acme", leo);
    let mut reports = vec![ann, cat];
    reports.sort();
    Leaver {
        w,
        leo,
        assigned,
        forwarded,
        reports,
        tess,
        bob,
        meeting,
        client,
    }
}

// ---------------------------------------------------------------- R-OFF-02

#[test]
fn r_off_02_deactivation_names_numbers_forwards_reports_and_profile_at_once() {
    let mut l = leaver();
    let cmd = Command::Deactivate {
        user: l.leo,
        forward_numbers_to: None,
        reassign_reports: None,
    };
    let expected = vec![
        Blocker::NumbersStillAssigned {
            user: l.leo,
            numbers: l.assigned.clone(),
            rule: RuleId::NumberAssignee,
        },
        Blocker::ForwardTarget {
            user: l.leo,
            numbers: vec![l.forwarded.clone()],
        },
        Blocker::HasDirectReports {
            leader: l.leo,
            reports: l.reports.clone(),
        },
        Blocker::IncompleteProfile {
            user: l.leo,
            missing: vec![ProfileField::Mobile, ProfileField::DefaultCountry],
        },
    ];
    // The dry run is the same call: every blocker, nothing recorded.
    let dry = l.w.dry(l.w.owner_actor(), &cmd).unwrap_err();
    assert_eq!(dry.blockers, expected);
    let err = l.w.refused(l.w.owner_actor(), cmd);
    assert_eq!(err.blockers, expected);
    assert_eq!(
        err.rules(),
        vec![
            RuleId::NumberAssignee,
            RuleId::ForwardTargetProtected,
            RuleId::ReassignReports,
            RuleId::CompleteProfileRequired
        ]
    );
    let text = err.to_string();
    for n in &l.assigned {
        assert!(text.contains(n.as_str()), "{text}");
    }
    assert!(text.contains("leads 2 report(s)"), "{text}");
}

#[test]
fn r_off_02_deletion_and_ownership_blockers_come_together_too() {
    let mut l = leaver();
    let cmd = Command::Delete {
        user: l.leo,
        acknowledgement: DeletionAcknowledgement::default(),
        forward_numbers_to: None,
        reassign_reports: None,
    };
    let err = l.w.refused(as_user(l.leo), cmd);
    assert_eq!(
        err.rules(),
        vec![
            RuleId::ManageUsersRequired, // Leo cannot manage users...
            RuleId::NoSelfRemoval,       // ...least of all himself
            RuleId::NumbersBlockDeletion,
            RuleId::ForwardTargetProtected,
            RuleId::ReassignReports,
            RuleId::DeletionAcknowledged
        ]
    );
    // The primary owner, with a number and incomplete details, by an admin.
    let mut w = World::new();
    let alan = w.agency_admin("Alan");
    let owner = w.owner;
    let n = w.number_for(w.root, owner);
    w.ok(
        as_user(owner),
        Command::UpdateProfile {
            user: owner,
            name: None,
            email: None,
            mobile: Some(Edit::Clear),
            default_country: None,
            notifications: None,
        },
    );
    let err = w.refused(
        as_user(alan),
        Command::Deactivate {
            user: owner,
            forward_numbers_to: None,
            reassign_reports: None,
        },
    );
    assert_eq!(
        err.blockers,
        vec![
            Blocker::PrimaryOwner { user: owner },
            Blocker::NumbersStillAssigned {
                user: owner,
                numbers: vec![PhoneNumber::from(n)],
                rule: RuleId::NumberAssignee
            },
            Blocker::IncompleteProfile {
                user: owner,
                missing: vec![ProfileField::Mobile]
            }
        ]
    );
}

#[tokio::test]
async fn r_off_02_the_service_dry_run_returns_every_blocker_and_records_nothing() {
    let svc = common::svc::Svc::new().await;
    let owner = as_user(svc.owner);
    let leo = svc
        .member("Leo", 1, grant(leader_role(), &[svc.root]))
        .await;
    let ann = svc.member("Ann", 2, grant(agent_role(), &[svc.root])).await;
    svc.ok(
        owner.clone(),
        Command::SetReportingLine {
            user: ann,
            leader: Some(leo),
        },
    )
    .await;
    for (i, cmd) in [
        Command::AddNumber {
            number: phone(100),
            account: svc.root,
        },
        Command::AssignNumber {
            number: phone(100),
            user: leo,
        },
        Command::AddNumber {
            number: phone(101),
            account: svc.root,
        },
        Command::ForwardNumber {
            number: phone(101),
            to: leo,
        },
    ]
    .into_iter()
    .enumerate()
    {
        svc.ok(owner.clone(), cmd).await;
        let _ = i;
    }
    let version = svc.stream_version().await;
    let state = svc.state().await;
    let cmd = Command::Delete {
        user: leo,
        acknowledgement: ACK,
        forward_numbers_to: None,
        reassign_reports: None,
    };
    let err = svc
        .service
        .dry_run(&CommandRequest::new(
            svc.org,
            CommandId::from_uuid(svc.ids.next_id()),
            owner.clone(),
            cmd,
        ))
        .await
        .unwrap_err();
    match err {
        switchboard_core::service::ServiceError::Rejected(e) => {
            assert_eq!(
                e.rules(),
                vec![
                    RuleId::NumbersBlockDeletion,
                    RuleId::ForwardTargetProtected,
                    RuleId::ReassignReports
                ]
            )
        }
        other => panic!("unexpected {other:?}"),
    }
    // A dry run that would pass returns its events, and records them not.
    let ok = svc
        .service
        .dry_run(&CommandRequest::new(
            svc.org,
            CommandId::from_uuid(svc.ids.next_id()),
            owner,
            Command::Offboard(Offboarding {
                user: leo,
                unassign_numbers: true,
                forward_numbers_to: Some(svc.owner),
                reassign_reports: Some(Reassignment::AllTo(svc.owner)),
                transfer_work_to: None,
                end: OffboardEnd::Delete(ACK),
            }),
        ))
        .await
        .unwrap();
    assert!(!ok.events.is_empty());
    assert_eq!(svc.stream_version().await, version);
    assert_eq!(svc.state().await, state);
}

// ---------------------------------------------------------------- R-OFF-01

#[test]
fn r_off_01_one_command_offboards_completely() {
    let mut l = leaver();
    let plan = Offboarding {
        user: l.leo,
        unassign_numbers: true,
        forward_numbers_to: Some(l.bob),
        reassign_reports: Some(Reassignment::AllTo(l.tess)),
        transfer_work_to: Some(l.bob),
        end: OffboardEnd::Delete(ACK),
    };
    let d = l.w.ok(l.w.owner_actor(), Command::Offboard(plan));
    let kinds: Vec<&str> = d.events.iter().map(Event::event_type).collect();
    assert_eq!(
        kinds,
        vec![
            "NumberUnassigned",
            "NumberUnassigned",
            "NumberForwarded",
            "NumberForwarded",
            "NumberForwarded",
            "ReportingLineChanged",
            "ReportingLineChanged",
            "WorkTransferred", // the client; the meeting is cancelled, not moved
            "MeetingCancelled",
            "UserDeleted"
        ]
    );
    let w = &l.w;
    for n in l.assigned.iter().chain([&l.forwarded]) {
        let num = &w.state.numbers[n];
        assert_eq!(num.assigned_to, None);
        assert_eq!(num.forwarded_to, Some(l.bob));
    }
    assert!(w.state.orphaned_numbers().is_empty());
    for r in &l.reports {
        assert_eq!(w.user(*r).reports_to, Some(l.tess));
    }
    assert_eq!(w.state.work_items[&l.client].owner, l.bob);
    assert!(w.state.work_items[&l.meeting].cancelled);
    assert_eq!(w.user(l.leo).status, UserStatus::Deleted);
    assert!(w.user(l.leo).profile.is_none());
    w.assert_replays();
}

#[test]
fn r_off_01_offboarding_to_deactivation_moves_meetings_too() {
    let mut l = leaver();
    // Deactivation needs the profile complete (R-LIFE-04): filled by Leo first.
    l.w.ok(
        as_user(l.leo),
        Command::UpdateProfile {
            user: l.leo,
            name: None,
            email: None,
            mobile: Some(Edit::Set(phone(4_242))),
            default_country: Some("US".into()),
            notifications: None,
        },
    );
    let reports = l.reports.clone();
    let plan = Offboarding {
        user: l.leo,
        unassign_numbers: true,
        forward_numbers_to: Some(l.bob),
        reassign_reports: Some(Reassignment::Each(vec![
            (reports[0], l.tess),
            (reports[1], l.w.owner),
        ])),
        transfer_work_to: Some(l.bob),
        end: OffboardEnd::Deactivate,
    };
    l.w.ok(l.w.owner_actor(), Command::Offboard(plan));
    assert_eq!(l.w.state.work_items[&l.meeting].owner, l.bob);
    assert!(!l.w.state.work_items[&l.meeting].cancelled);
    assert_eq!(l.w.user(reports[1]).reports_to, Some(l.w.owner));
    assert_eq!(l.w.user(l.leo).status, UserStatus::Deactivated);
    l.w.assert_replays();
}

#[test]
fn r_off_01_one_bad_step_refuses_the_whole_offboarding() {
    let mut l = leaver();
    let gone = l.w.agent("Gone", &[l.w.root]);
    l.w.ok(
        l.w.owner_actor(),
        Command::Deactivate {
            user: gone,
            forward_numbers_to: None,
            reassign_reports: None,
        },
    );
    // Everything fine except the work target, who is deactivated.
    let plan = Offboarding {
        user: l.leo,
        unassign_numbers: true,
        forward_numbers_to: Some(l.bob),
        reassign_reports: Some(Reassignment::AllTo(l.tess)),
        transfer_work_to: Some(gone),
        end: OffboardEnd::Delete(ACK),
    };
    let err =
        l.w.refused(l.w.owner_actor(), Command::Offboard(plan.clone()));
    assert_eq!(
        only(&err),
        &Blocker::WrongStatus {
            user: gone,
            status: UserStatus::Deactivated,
            rule: RuleId::TransferWork
        }
    );
    // Nothing of the earlier steps happened.
    let leo = l.w.user(l.leo);
    assert_eq!(
        leo.assigned_numbers.iter().cloned().collect::<Vec<_>>(),
        l.assigned
    );
    assert!(leo.forwarded_numbers.contains(&l.forwarded));
    assert_eq!(
        leo.direct_reports.iter().copied().collect::<Vec<_>>(),
        l.reports
    );
    assert_eq!(leo.status, UserStatus::Active);
    // Targets that are the leaver are refused.
    let err = l.w.refused(
        l.w.owner_actor(),
        Command::Offboard(Offboarding {
            forward_numbers_to: Some(l.leo),
            transfer_work_to: Some(l.leo),
            ..plan
        }),
    );
    assert_eq!(
        err.blockers,
        vec![
            Blocker::TargetIsSubject { user: l.leo },
            Blocker::TargetIsSubject { user: l.leo }
        ]
    );
}

// Found by `cargo mutants`: no test asked a dry run what the command would
// create, so `Decision::created` could answer nothing unnoticed.
#[test]
fn r_off_02_a_dry_run_tells_what_the_command_would_create() {
    let w = World::new();
    let d = w
        .dry(
            w.owner_actor(),
            &Command::InviteUsers {
                emails: "ivy@northwind.example, jon@northwind.example".into(),
                grant: grant(agent_role(), &[w.root]),
            },
        )
        .expect("accepted");
    let created = d.created();
    assert_eq!(created.users.len(), 2);
    assert_eq!(created.invitations.len(), 2);
    assert_eq!(created, Created::from_events(&d.events));
    assert_eq!(w.state.users.len(), 1, "a dry run records nothing");
}

// ---------------------------------------------------------------- LIMIT

// Found by `cargo mutants`: no decision reached the bound on events per
// decision (one append), so `>` could become `>=` or `==` unnoticed. An
// offboarding is where a decision grows past it: its steps add up.
#[test]
fn limit_a_decision_holds_at_most_10_000_events() {
    let mut w = World::new();
    let ann = w.agent("Ann", &[w.root]);
    let bob = w.agent("Bob", &[w.root]);
    for i in 0..store::MAX_EVENTS_PER_APPEND {
        w.work(WorkKind::Conversation, &format!("Conversation {i}"), ann);
    }
    // Exactly at the bound: accepted, one event per item.
    let d = w.ok(
        w.owner_actor(),
        Command::TransferWork {
            from: ann,
            to: bob,
            selection: WorkSelection::All,
        },
    );
    assert_eq!(d.events.len(), store::MAX_EVENTS_PER_APPEND);
    // The same items plus Bob's deactivation: over the bound, refused whole.
    let err = w.refused(
        w.owner_actor(),
        Command::Offboard(Offboarding {
            user: bob,
            unassign_numbers: false,
            forward_numbers_to: None,
            reassign_reports: None,
            transfer_work_to: Some(ann),
            end: OffboardEnd::Deactivate,
        }),
    );
    match only(&err) {
        Blocker::TooMuchWork {
            what,
            limit,
            actual,
        } => {
            assert_eq!(what, "events of Offboard");
            assert_eq!(*limit, store::MAX_EVENTS_PER_APPEND);
            assert!(*actual > store::MAX_EVENTS_PER_APPEND, "{actual}");
        }
        other => panic!("unexpected {other:?}"),
    }
    assert_eq!(err.rules(), vec![RuleId::Limit]);
}
