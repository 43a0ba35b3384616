//! A refused command leaves the state and the log unchanged: through the
//! command service on the memory store, for a sample of refusals of every
//! area. The stream version, the recorded history, the cached state and a
//! fresh load from the store are all the same before and after; and the
//! refused command id is not remembered as done.

mod common;

use common::svc::Svc;
use common::*;
use switchboard_core::service::{CommandRequest, ServiceError};
use switchboard_core::store::EventStore;
use switchboard_core::*;

/// Everything observable about the organization.
async fn observe(svc: &Svc) -> (u64, Organization, Organization, usize) {
    let version = svc.stream_version().await;
    let cached = svc.state().await;
    let loaded = svc.service.load(svc.org).await.unwrap();
    let history = svc.service.history(svc.org).await.unwrap().len();
    (version, cached, loaded, history)
}

/// Sends `cmd` as `actor`; asserts it is refused with a blocker of `rule`
/// and that nothing changed.
async fn assert_refused_unchanged(svc: &Svc, actor: Actor, cmd: Command, rule: RuleId) {
    let name = cmd.name();
    let before = observe(svc).await;
    let id = CommandId::from_uuid(svc.ids.next_id());
    let err = svc
        .service
        .handle(CommandRequest::new(svc.org, id, actor, cmd))
        .await
        .unwrap_err();
    match &err {
        ServiceError::Rejected(e) => assert!(e.has_rule(rule), "{name}: {e}"),
        other => panic!("{name}: unexpected {other:?}"),
    }
    let after = observe(svc).await;
    assert_eq!(after.0, before.0, "{name}: stream version changed");
    assert_eq!(after.1, before.1, "{name}: cached state changed");
    assert_eq!(after.2, before.2, "{name}: stored state changed");
    assert_eq!(after.3, before.3, "{name}: history changed");
    assert_eq!(after.1, after.2);
    assert!(
        svc.service
            .store()
            .find_command(svc.org, id)
            .await
            .unwrap()
            .is_none(),
        "{name}: a refused command id is not recorded"
    );
}

#[tokio::test]
async fn refusals_of_every_area_change_nothing() {
    let svc = Svc::new().await;
    let owner = as_user(svc.owner);
    let root = svc.root;
    let h = svc
        .ok(
            owner.clone(),
            Command::CreateAccount {
                name: "East".into(),
                parent: root,
            },
        )
        .await;
    let east = match &h.events[..] {
        [Event::AccountCreated { account, .. }] => *account,
        other => panic!("unexpected {other:?}"),
    };
    let ann = svc
        .member("Ann", 1, grant(agent_role(), &[root, east]))
        .await;
    let bob = svc.member("Bob", 2, grant(agent_role(), &[root])).await;
    let tom = svc.member("Tom", 3, grant(leader_role(), &[root])).await;
    let alan = svc
        .member(
            "Alan",
            4,
            Grant {
                role: admin_role(),
                accounts: vec![],
                agency_admin: true,
                clients: vec![],
            },
        )
        .await;
    for cmd in [
        Command::AddNumber {
            number: phone(100),
            account: root,
        },
        Command::AssignNumber {
            number: phone(100),
            user: ann,
        },
        Command::SetReportingLine {
            user: bob,
            leader: Some(tom),
        },
    ] {
        svc.ok(owner.clone(), cmd).await;
    }
    let h = svc
        .ok(
            owner.clone(),
            Command::CreateWorkItem {
                kind: WorkKind::Conversation,
                title: "Chat".into(),
                owner: ann,
            },
        )
        .await;
    let chat = match &h.events[..] {
        [Event::WorkItemCreated { item, .. }] => *item,
        other => panic!("unexpected {other:?}"),
    };
    let inv = svc
        .invite(
            owner.clone(),
            "pending@northwind.example",
            grant(agent_role(), &[root]),
        )
        .await;

    let cases: Vec<(Actor, Command, RuleId)> = vec![
        // Invitations and users.
        (
            owner.clone(),
            Command::InviteUsers {
                emails: "good@northwind.example, bad@".into(),
                grant: grant(agent_role(), &[root]),
            },
            RuleId::InviteMany,
        ),
        (
            owner.clone(),
            Command::InviteUsers {
                emails: "ANN@northwind.example".into(),
                grant: grant(agent_role(), &[root]),
            },
            RuleId::InviteExistingEmail,
        ),
        (
            Actor::System,
            Command::AcceptInvitation {
                token: "not-a-token".into(),
                email: None,
                name: "X".into(),
                mobile: None,
                default_country: None,
            },
            RuleId::InvitationToken,
        ),
        (
            as_user(inv.user.unwrap()),
            Command::SignIn {
                user: inv.user.unwrap(),
                device_name: "phone".into(),
            },
            RuleId::InviteeActivation,
        ),
        (
            as_user(bob),
            Command::UpdateProfile {
                user: bob,
                name: None,
                email: Some("ann@northwind.example".into()),
                mobile: None,
                default_country: None,
                notifications: None,
            },
            RuleId::UniqueEmail,
        ),
        // Access.
        (
            owner.clone(),
            Command::RemoveAccess {
                user: alan,
                accounts: vec![east],
            },
            RuleId::AgencyAdministratorAllOrNothing,
        ),
        (
            owner.clone(),
            Command::RemoveAccess {
                user: ann,
                accounts: vec![root, east],
            },
            RuleId::NumberAssignee,
        ),
        (
            as_user(bob),
            Command::ChangeRole {
                user: ann,
                account: root,
                role: admin_role(),
            },
            RuleId::ManageUsersRequired,
        ),
        (
            owner.clone(),
            Command::UpdateProfile {
                user: ann,
                name: Some("Not her".into()),
                email: None,
                mobile: None,
                default_country: None,
                notifications: None,
            },
            RuleId::ProfileSelfEdit,
        ),
        // Numbers.
        (
            owner.clone(),
            Command::AssignNumber {
                number: phone(100),
                user: bob,
            },
            RuleId::NumberAssignee,
        ),
        (
            owner.clone(),
            Command::AddNumber {
                number: phone(100),
                account: east,
            },
            RuleId::UniqueNumber,
        ),
        // Teams and work.
        (
            owner.clone(),
            Command::SetReportingLine {
                user: tom,
                leader: Some(bob),
            },
            RuleId::ReportingLine,
        ),
        (
            owner.clone(),
            Command::TransferWork {
                from: ann,
                to: ann,
                selection: WorkSelection::Items(vec![chat]),
            },
            RuleId::OffboardInOneCommand,
        ),
        (
            owner.clone(),
            Command::ReassignClients {
                assignments: vec![(chat, bob)],
            },
            RuleId::ReassignClients,
        ),
        // Lifecycle and offboarding.
        (
            owner.clone(),
            Command::Deactivate {
                user: tom,
                forward_numbers_to: None,
                reassign_reports: None,
            },
            RuleId::ReassignReports,
        ),
        (
            owner.clone(),
            Command::Delete {
                user: ann,
                acknowledgement: ACK,
                forward_numbers_to: None,
                reassign_reports: None,
            },
            RuleId::NumbersBlockDeletion,
        ),
        (
            as_user(alan),
            Command::Delete {
                user: svc.owner,
                acknowledgement: ACK,
                forward_numbers_to: None,
                reassign_reports: None,
            },
            RuleId::PrimaryOwnerProtected,
        ),
        (
            owner.clone(),
            Command::Reactivate { user: bob },
            RuleId::Reactivation,
        ),
        (
            as_user(alan),
            Command::Deactivate {
                user: alan,
                forward_numbers_to: None,
                reassign_reports: None,
            },
            RuleId::NoSelfRemoval,
        ),
        (
            owner.clone(),
            Command::Offboard(Offboarding {
                user: ann,
                unassign_numbers: true,
                forward_numbers_to: None,
                reassign_reports: None,
                transfer_work_to: Some(inv.user.unwrap()),
                end: OffboardEnd::Delete(ACK),
            }),
            RuleId::TransferWork,
        ),
        // Bulk.
        (
            owner.clone(),
            Command::BulkUpdate {
                csv: "email,deactivated\nbob@northwind.example,y\ntom@northwind.example,y\n".into(),
                mode: BulkMode::AllOrNothing,
            },
            RuleId::BulkAllOrNothing,
        ),
    ];
    let n = cases.len();
    for (actor, cmd, rule) in cases {
        assert_refused_unchanged(&svc, actor, cmd, rule).await;
    }
    assert!(n >= 20);
}

#[tokio::test]
async fn a_refused_command_id_can_be_sent_again_once_the_cause_is_gone() {
    let svc = Svc::new().await;
    let owner = as_user(svc.owner);
    let ann = svc.member("Ann", 1, grant(agent_role(), &[svc.root])).await;
    svc.ok(
        owner.clone(),
        Command::AddNumber {
            number: phone(100),
            account: svc.root,
        },
    )
    .await;
    svc.ok(
        owner.clone(),
        Command::AssignNumber {
            number: phone(100),
            user: ann,
        },
    )
    .await;
    let id = CommandId::from_uuid(svc.ids.next_id());
    let delete = CommandRequest::new(
        svc.org,
        id,
        owner.clone(),
        Command::Delete {
            user: ann,
            acknowledgement: ACK,
            forward_numbers_to: None,
            reassign_reports: None,
        },
    );
    let before = observe(&svc).await;
    let err = svc.service.handle(delete.clone()).await.unwrap_err();
    assert!(
        matches!(err, ServiceError::Rejected(ref e) if e.has_rule(RuleId::NumbersBlockDeletion))
    );
    assert_eq!(observe(&svc).await, before);
    svc.ok(owner, Command::UnassignNumber { number: phone(100) })
        .await;
    let h = svc.service.handle(delete).await.unwrap();
    assert!(
        !h.duplicate,
        "the refusal was not remembered as the outcome"
    );
    assert!(h
        .events
        .iter()
        .any(|e| matches!(e, Event::UserDeleted { user, .. } if *user == ann)));
}

#[tokio::test]
async fn a_dry_run_changes_nothing_either_way() {
    let svc = Svc::new().await;
    let owner = as_user(svc.owner);
    let ann = svc.member("Ann", 1, grant(agent_role(), &[svc.root])).await;
    let before = observe(&svc).await;
    let ok = svc
        .service
        .dry_run(&CommandRequest::new(
            svc.org,
            CommandId::from_uuid(svc.ids.next_id()),
            owner.clone(),
            Command::Deactivate {
                user: ann,
                forward_numbers_to: None,
                reassign_reports: None,
            },
        ))
        .await
        .unwrap();
    assert_eq!(ok.events.len(), 1);
    let refused = svc
        .service
        .dry_run(&CommandRequest::new(
            svc.org,
            CommandId::from_uuid(svc.ids.next_id()),
            owner,
            Command::Deactivate {
                user: svc.owner,
                forward_numbers_to: None,
                reassign_reports: None,
            },
        ))
        .await;
    assert!(refused.is_err());
    assert_eq!(observe(&svc).await, before);
    assert_eq!(svc.state().await.users[&ann].status, UserStatus::Active);
}
