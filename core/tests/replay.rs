//! Replaying the log gives the live state.
//!
//! One long, varied history (every area: invitations, access, numbers, teams,
//! work, lifecycle, bulk, offboarding, ownership, policies; refusals
//! interleaved) is run twice: on the pure world, where folding every event
//! from scratch must equal the live state after each command; and through the
//! command service on the memory store, where `load` (a fresh fold from the
//! store, snapshot + tail) and `load_at_version` must equal the cached state
//! after each command, and a second service over the same store must agree.

mod common;

use chrono::Duration;
use common::*;
use std::sync::Arc;
use switchboard_core::service::{CommandRequest, CommandService, ServiceConfig, ServiceError};
use switchboard_core::*;
use switchboard_store_memory::MemoryStore;

/// Something that runs commands: the pure world or the service.
trait Exec {
    /// Runs a command; accepted events are folded (and recorded).
    fn exec(&mut self, actor: Actor, cmd: Command) -> Result<Decision, CommandError>;
    /// Moves the clock forward.
    fn advance(&mut self, by: Duration);
    /// Checks that replay equals the live state now.
    fn check(&mut self);
}

fn ok(x: &mut dyn Exec, actor: Actor, cmd: Command) -> Decision {
    let name = cmd.name();
    let d = x
        .exec(actor, cmd)
        .unwrap_or_else(|e| panic!("{name} refused: {e}"));
    x.check();
    d
}

fn refuse(x: &mut dyn Exec, actor: Actor, cmd: Command) {
    let name = cmd.name();
    assert!(x.exec(actor, cmd).is_err(), "{name} should be refused");
    x.check();
}

fn created_account(d: &Decision) -> AccountId {
    match &d.events[..] {
        [Event::AccountCreated { account, .. }] => *account,
        other => panic!("unexpected {other:?}"),
    }
}

fn created_item(d: &Decision) -> WorkItemId {
    match &d.events[..] {
        [Event::WorkItemCreated { item, .. }] => *item,
        other => panic!("unexpected {other:?}"),
    }
}

fn accept(x: &mut dyn Exec, token: &str, email: Option<&str>, name: &str, n: u32) -> UserId {
    let d = ok(
        x,
        Actor::System,
        Command::AcceptInvitation {
            token: token.into(),
            email: email.map(str::to_owned),
            name: name.into(),
            mobile: Some(phone(n)),
            default_country: Some("US".into()),
        },
    );
    let user = match &d.events[..] {
        [Event::InvitationAccepted { user, .. }] => *user,
        other => panic!("unexpected {other:?}"),
    };
    ok(
        x,
        as_user(user),
        Command::SignIn {
            user,
            device_name: format!("{name}'s laptop"),
        },
    );
    user
}

fn set_line(x: &mut dyn Exec, owner: &Actor, user: UserId, leader: UserId) {
    ok(
        x,
        owner.clone(),
        Command::SetReportingLine {
            user,
            leader: Some(leader),
        },
    );
}

/// The long history.
fn long_history(x: &mut dyn Exec) {
    let d = ok(
        x,
        Actor::System,
        Command::CreateOrganization {
            name: "Northwind".into(),
            root_account_name: "Northwind HQ".into(),
            owner_email: "olivia@northwind.example".into(),
            owner_name: "Olivia".into(),
            policies: None,
        },
    );
    let (owner, root) = match &d.events[..] {
        [Event::OrganizationCreated {
            owner,
            root_account,
            ..
        }] => (*owner, *root_account),
        other => panic!("unexpected {other:?}"),
    };
    let o = as_user(owner);
    ok(
        x,
        o.clone(),
        Command::UpdateProfile {
            user: owner,
            name: None,
            email: None,
            mobile: Some(Edit::Set(phone(1))),
            default_country: Some("US".into()),
            notifications: None,
        },
    );
    let east = created_account(&ok(
        x,
        o.clone(),
        Command::CreateAccount {
            name: "East".into(),
            parent: root,
        },
    ));
    let west = created_account(&ok(
        x,
        o.clone(),
        Command::CreateAccount {
            name: "West".into(),
            parent: root,
        },
    ));
    let kids = created_account(&ok(
        x,
        o.clone(),
        Command::CreateAccount {
            name: "West Kids".into(),
            parent: west,
        },
    ));
    ok(
        x,
        o.clone(),
        Command::DefineRole {
            role: role("shift-lead"),
            name: "Shift lead".into(),
            permissions: vec![Permission::ManageTeam, Permission::ViewReports],
        },
    );
    refuse(
        x,
        o.clone(),
        Command::InviteUsers {
            emails: "bad@, ok@northwind.example".into(),
            grant: grant(agent_role(), &[east]),
        },
    );
    // Invitations: many at once, a leader, a link, an admin.
    let d = ok(
        x,
        o.clone(),
        Command::InviteUsers {
            emails: "ann@northwind.example, bob@northwind.example\ncat@northwind.example dan@northwind.example".into(),
            grant: grant(agent_role(), &[east, west]),
        },
    );
    let inv = World::invited(&d);
    let ann = accept(x, &inv[0].token, None, "Ann", 11);
    let bob = accept(x, &inv[1].token, None, "Bob", 12);
    let cat = accept(x, &inv[2].token, None, "Cat", 13);
    let dan_inv = inv[3].clone();
    let d = ok(
        x,
        o.clone(),
        Command::InviteUsers {
            emails: "tom@northwind.example".into(),
            grant: grant(leader_role(), &[east, west]),
        },
    );
    let tom = accept(x, &World::invited(&d)[0].token, None, "Tom", 14);
    let d = ok(
        x,
        o.clone(),
        Command::InviteUsers {
            emails: "sue@northwind.example".into(),
            grant: grant(role("shift-lead"), &[east, west, kids]),
        },
    );
    let sue = accept(x, &World::invited(&d)[0].token, None, "Sue", 15);
    let d = ok(
        x,
        o.clone(),
        Command::CreateInvitationLink {
            grant: grant(agent_role(), &[west]),
        },
    );
    let lin = accept(
        x,
        &d.secrets[0].token,
        Some("lin@northwind.example"),
        "Lin",
        16,
    );
    let d = ok(
        x,
        o.clone(),
        Command::InviteUsers {
            emails: "alan@northwind.example".into(),
            grant: Grant {
                role: admin_role(),
                accounts: vec![],
                agency_admin: true,
                clients: vec![],
            },
        },
    );
    let alan = accept(x, &World::invited(&d)[0].token, None, "Alan", 17);
    let d = ok(
        x,
        o.clone(),
        Command::InviteUsers {
            emails: "zed@northwind.example".into(),
            grant: grant(agent_role(), &[east]),
        },
    );
    let zed_inv = World::invited(&d).remove(0);
    ok(
        x,
        o.clone(),
        Command::RevokeInvitation {
            invitation: zed_inv.invitation,
        },
    );
    // Dan lets his invitation lapse; the sweep, a re-invite, acceptance.
    x.advance(Duration::days(15));
    refuse(
        x,
        Actor::System,
        Command::AcceptInvitation {
            token: dan_inv.token.clone(),
            email: None,
            name: "Dan".into(),
            mobile: None,
            default_country: None,
        },
    );
    ok(x, Actor::System, Command::ExpireInvitations { limit: 10 });
    let d = ok(
        x,
        o.clone(),
        Command::Reinvite {
            invitation: dan_inv.invitation,
        },
    );
    let dan = accept(x, &d.secrets[0].token, None, "Dan", 18);
    // Access.
    ok(
        x,
        o.clone(),
        Command::GrantAccess {
            user: ann,
            role: agent_role(),
            accounts: vec![kids],
        },
    );
    ok(
        x,
        o.clone(),
        Command::ChangeRole {
            user: bob,
            account: east,
            role: admin_role(),
        },
    );
    ok(
        x,
        o.clone(),
        Command::RemoveAccess {
            user: cat,
            accounts: vec![west],
        },
    );
    refuse(
        x,
        o.clone(),
        Command::RemoveAccess {
            user: alan,
            accounts: vec![east],
        },
    );
    ok(
        x,
        as_user(alan),
        Command::UpdateAdminFields {
            user: bob,
            job_title: Some(Edit::Set("Supervisor".into())),
            picture: Some(Edit::Set("https://cdn.example/bob.png".into())),
            admin_access: None,
        },
    );
    // Numbers.
    let numbers: Vec<String> = (100..108).map(phone).collect();
    for (i, n) in numbers.iter().enumerate() {
        ok(
            x,
            o.clone(),
            Command::AddNumber {
                number: n.clone(),
                account: if i % 2 == 0 { east } else { west },
            },
        );
    }
    refuse(
        x,
        o.clone(),
        Command::AddNumber {
            number: numbers[0].clone(),
            account: west,
        },
    );
    for (n, u) in [(0, ann), (1, bob), (2, tom), (3, dan), (4, ann)] {
        ok(
            x,
            o.clone(),
            Command::AssignNumber {
                number: numbers[n].clone(),
                user: u,
            },
        );
    }
    ok(
        x,
        o.clone(),
        Command::ForwardNumber {
            number: numbers[5].clone(),
            to: bob,
        },
    );
    ok(
        x,
        o.clone(),
        Command::ForwardNumber {
            number: numbers[6].clone(),
            to: ann,
        },
    );
    ok(
        x,
        o.clone(),
        Command::UnassignNumber {
            number: numbers[4].clone(),
        },
    );
    ok(
        x,
        o.clone(),
        Command::ForwardNumber {
            number: numbers[4].clone(),
            to: sue,
        },
    );
    ok(
        x,
        o.clone(),
        Command::StopForwarding {
            number: numbers[4].clone(),
        },
    );
    ok(
        x,
        o.clone(),
        Command::ReleaseNumber {
            number: numbers[7].clone(),
        },
    );
    // Teams.
    for (u, l) in [(ann, tom), (bob, tom), (cat, sue), (dan, tom), (lin, sue)] {
        set_line(x, &o, u, l);
    }
    set_line(x, &o, tom, sue);
    refuse(
        x,
        o.clone(),
        Command::SetReportingLine {
            user: sue,
            leader: Some(tom),
        },
    );
    ok(
        x,
        o.clone(),
        Command::ReassignReports {
            leader: sue,
            to: Reassignment::Each(vec![(cat, tom), (lin, tom), (tom, alan)]),
        },
    );
    // Work.
    let mut items = Vec::new();
    for (i, kind) in [
        WorkKind::Conversation,
        WorkKind::GroupConversation,
        WorkKind::FlowTemplate,
        WorkKind::ContentFolder,
        WorkKind::Client,
        WorkKind::Client,
        WorkKind::Meeting,
    ]
    .into_iter()
    .enumerate()
    {
        items.push(created_item(&ok(
            x,
            o.clone(),
            Command::CreateWorkItem {
                kind,
                title: format!("item {i}"),
                owner: ann,
            },
        )));
    }
    ok(
        x,
        o.clone(),
        Command::TransferWork {
            from: ann,
            to: bob,
            selection: WorkSelection::Kinds(vec![WorkKind::FlowTemplate]),
        },
    );
    ok(
        x,
        o.clone(),
        Command::ReassignClients {
            assignments: vec![(items[4], cat), (items[5], dan)],
        },
    );
    // Devices, resets, profile.
    let d = ok(
        x,
        as_user(cat),
        Command::SignIn {
            user: cat,
            device_name: "Pixel".into(),
        },
    );
    let pixel = d
        .events
        .iter()
        .find_map(|e| match e {
            Event::DeviceSignedIn { device, .. } => Some(*device),
            _ => None,
        })
        .unwrap();
    ok(
        x,
        as_user(cat),
        Command::SignOutDevice {
            user: cat,
            device: pixel,
        },
    );
    ok(x, as_user(dan), Command::RequestPasswordReset { user: dan });
    ok(
        x,
        as_user(lin),
        Command::UpdateProfile {
            user: lin,
            name: Some("Lin Li".into()),
            email: Some("LIN.LI@northwind.example".into()),
            mobile: Some(Edit::Set(phone(19))),
            default_country: Some("ca".into()),
            notifications: Some(NotificationPreferences {
                desktop: false,
                browser_badge: false,
                sound: true,
            }),
        },
    );
    // Lifecycle.
    refuse(
        x,
        o.clone(),
        Command::Delete {
            user: ann,
            acknowledgement: ACK,
            forward_numbers_to: None,
            reassign_reports: None,
        },
    );
    ok(
        x,
        o.clone(),
        Command::Deactivate {
            user: lin,
            forward_numbers_to: None,
            reassign_reports: None,
        },
    );
    x.advance(Duration::hours(3));
    ok(x, o.clone(), Command::Reactivate { user: lin });
    ok(
        x,
        o.clone(),
        Command::SetPolicies {
            policies: Policies {
                profile_edit: ProfileEditPolicy::SelfOrAdmin,
                ..Policies::default()
            },
        },
    );
    // Bulk, partial: Lin deactivated, Tom (leader) reported, unknown reported.
    let csv = "email,deactivated,job_title\n\
               lin.li@northwind.example,y,Contractor\n\
               tom@northwind.example,y,\n\
               nobody@northwind.example,y,\n";
    ok(
        x,
        o.clone(),
        Command::BulkUpdate {
            csv: csv.into(),
            mode: BulkMode::Partial,
        },
    );
    // Offboarding Ann: numbers, forwards, work; deleted.
    ok(
        x,
        o.clone(),
        Command::Offboard(Offboarding {
            user: ann,
            unassign_numbers: true,
            forward_numbers_to: Some(bob),
            reassign_reports: None,
            transfer_work_to: Some(cat),
            end: OffboardEnd::Delete(ACK),
        }),
    );
    // Ann's address is free again.
    ok(
        x,
        o.clone(),
        Command::InviteUsers {
            emails: "ann@northwind.example".into(),
            grant: grant(agent_role(), &[east]),
        },
    );
    // Tom hands over his team and is deactivated with his forwarded numbers moved.
    ok(
        x,
        o.clone(),
        Command::UnassignNumber {
            number: numbers[2].clone(),
        },
    );
    ok(
        x,
        o.clone(),
        Command::Deactivate {
            user: tom,
            forward_numbers_to: None,
            reassign_reports: Some(Reassignment::AllTo(sue)),
        },
    );
    // Ownership moves (support), then the old owner is removed from everything.
    ok(
        x,
        Actor::Support {
            agent: "sam@support".into(),
        },
        Command::TransferPrimaryOwnership { to: alan },
    );
    ok(
        x,
        as_user(alan),
        Command::RemoveFromAllAccounts { user: owner },
    );
    ok(
        x,
        as_user(alan),
        Command::GrantAccess {
            user: owner,
            role: role(RoleId::READ_ONLY),
            accounts: vec![root],
        },
    );
    ok(
        x,
        as_user(alan),
        Command::UpdateAdminFields {
            user: dan,
            job_title: None,
            picture: None,
            admin_access: Some(true),
        },
    );
}

// ------------------------------------------------------------------ pure

struct Pure {
    w: World,
    /// Every state after each command, with the event count at that time.
    states: Vec<(usize, Organization)>,
}

impl Exec for Pure {
    fn exec(&mut self, actor: Actor, cmd: Command) -> Result<Decision, CommandError> {
        self.w.exec(actor, cmd)
    }
    fn advance(&mut self, by: Duration) {
        self.w.advance(by);
    }
    fn check(&mut self) {
        self.w.assert_replays();
        self.states
            .push((self.w.events.len(), self.w.state.clone()));
    }
}

#[test]
fn replaying_a_long_varied_history_gives_the_live_state() {
    // A world whose organization is created by the history itself.
    let mut w = World::new();
    w.state = Organization::empty(OrgId::from_uuid(uuid::Uuid::from_u128(0xCAFE)));
    w.events.clear();
    let mut p = Pure { w, states: vec![] };
    long_history(&mut p);
    let w = &p.w;
    assert!(w.events.len() > 100, "a long history: {}", w.events.len());
    // Every event type of the domain occurs in it.
    let types: std::collections::BTreeSet<&str> = w.events.iter().map(Event::event_type).collect();
    assert_eq!(types.len(), 34, "missing some event types: {types:?}");
    // Folding any prefix gives the state the live run had at that point.
    for (n, state) in &p.states {
        assert_eq!(&fold(w.state.id, &w.events[..*n]), state);
    }
    // Through serialized form too (serde round trip of every event).
    let decoded: Vec<Event> = w
        .events
        .iter()
        .map(|e| serde_json::from_value(serde_json::to_value(e).unwrap()).expect("decodes"))
        .collect();
    assert_eq!(fold(w.state.id, &decoded), w.state);
    // And through the stored form: the codec's one-pass decoding (the
    // externally tagged twin of `Event`) reads back every event of every
    // type exactly, by reference and by value.
    for e in &w.events {
        let payload = codec::payload(e).expect("encodes");
        assert!(
            payload.get("type").is_none(),
            "the type travels beside the payload"
        );
        let by_ref = codec::decode_payload(e.event_type(), e.schema_version(), &payload);
        assert_eq!(by_ref.as_ref(), Ok(e));
        let by_value = codec::decode_payload_value(e.event_type(), e.schema_version(), payload);
        assert_eq!(by_value.as_ref(), Ok(e));
    }
    // An unknown type is a typed error, not a panic.
    let e = &w.events[0];
    assert!(matches!(
        codec::decode_payload("NoSuchEvent", 1, &codec::payload(e).expect("encodes")),
        Err(codec::DecodeError::Malformed { .. })
    ));
}

// --------------------------------------------------------------- service

struct Served {
    rt: tokio::runtime::Runtime,
    store: MemoryStore,
    service: CommandService<MemoryStore>,
    clock: Arc<FixedClock>,
    ids: Arc<SequentialIds>,
    org: OrgId,
}

impl Exec for Served {
    fn exec(&mut self, actor: Actor, cmd: Command) -> Result<Decision, CommandError> {
        let req = CommandRequest::new(
            self.org,
            CommandId::from_uuid(self.ids.next_id()),
            actor,
            cmd,
        );
        match self.rt.block_on(self.service.handle(req)) {
            Ok(h) => Ok(Decision {
                events: h.events,
                secrets: h.secrets,
                report: h.report,
            }),
            Err(ServiceError::Rejected(e)) => Err(e),
            Err(e) => panic!("service failed: {e}"),
        }
    }
    fn advance(&mut self, by: Duration) {
        self.clock.advance(by);
    }
    fn check(&mut self) {
        let rt = &self.rt;
        let cached = rt.block_on(self.service.state(self.org)).unwrap();
        let loaded = rt.block_on(self.service.load(self.org)).unwrap();
        assert_eq!(
            loaded, cached,
            "a fresh fold from the store equals the cache"
        );
        let at = rt
            .block_on(self.service.load_at_version(self.org, cached.version))
            .unwrap();
        assert_eq!(at, cached);
    }
}

#[test]
fn through_the_service_a_fresh_load_equals_the_cached_state_after_every_command() {
    let rt = tokio::runtime::Builder::new_current_thread()
        .build()
        .unwrap();
    let store = MemoryStore::new();
    let clock = Arc::new(FixedClock::new(start()));
    let ids = Arc::new(SequentialIds::new(3));
    // Snapshots every few events, so that loads use snapshot + tail.
    let service = CommandService::with_config(
        store.clone(),
        clock.clone(),
        ids.clone(),
        Arc::new(SeededSecrets::new(3)),
        ServiceConfig {
            snapshot_every: 7,
            snapshot_events_per_entity: 0,
            ..ServiceConfig::default()
        },
    );
    let mut s = Served {
        rt,
        store,
        service,
        clock,
        ids,
        org: OrgId::from_uuid(uuid::Uuid::from_u128(0xBEEF)),
    };
    long_history(&mut s);
    let rt = &s.rt;
    let live = rt.block_on(s.service.state(s.org)).unwrap();
    // The whole log, decoded and folded from scratch.
    let history = rt.block_on(s.service.history(s.org)).unwrap();
    assert_eq!(history.len() as u64, live.version);
    let events: Vec<Event> = history
        .iter()
        .map(|r| codec::decode(r).expect("decodes"))
        .collect();
    assert_eq!(fold(s.org, &events), live);
    // Every past version, rebuilt, equals the fold of that prefix.
    for v in (1..=live.version).step_by(13) {
        let past = rt.block_on(s.service.load_at_version(s.org, v)).unwrap();
        assert_eq!(past, fold(s.org, &events[..v as usize]), "version {v}");
    }
    // A second service over the same store, with a cold cache, agrees.
    let other = CommandService::new(
        s.store.clone(),
        s.clock.clone(),
        Arc::new(SequentialIds::new(99)),
        Arc::new(SeededSecrets::new(99)),
    );
    assert_eq!(rt.block_on(other.state(s.org)).unwrap(), live);
}
