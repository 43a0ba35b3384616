//! What the fuzz targets and the seed generator share: one deterministic
//! organization ("Northwind"), recorded command by command through a
//! [`CommandService`] on a [`MemoryStore`], and the checks every decision
//! must pass.
//!
//! Ids, secrets and the clock are deterministic, so the targets and
//! `seeds.rs` build the very same organization: the same ids and emails
//! (the seeds name real users), and the same data keys in the store (the
//! snapshot seeds are sealed under keys the target's store holds).
#![forbid(unsafe_code)]

use chrono::{DateTime, Duration, TimeZone, Utc};
use std::future::Future;
use std::sync::{Arc, OnceLock};
use switchboard_core::codec;
use switchboard_core::decide::SecretPurpose;
use switchboard_core::service::{CommandRequest, CommandService, Handled};
use switchboard_core::*;
use switchboard_store_memory::MemoryStore;

/// Runs a future to completion on this thread's current-thread runtime.
pub fn block_on<F: Future>(future: F) -> F::Output {
    thread_local! {
        static RUNTIME: tokio::runtime::Runtime = tokio::runtime::Builder::new_current_thread()
            .build()
            .expect("a current-thread runtime");
    }
    RUNTIME.with(|rt| rt.block_on(future))
}

/// The instant the organization is created at.
pub fn start() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 3, 2, 9, 0, 0)
        .single()
        .expect("a valid instant")
}

/// A command service on a fresh, empty memory store, with deterministic
/// sources seeded by `seed`.
pub fn fresh_service(seed: u64) -> CommandService<MemoryStore> {
    CommandService::new(
        MemoryStore::new(),
        Arc::new(FixedClock::new(start())),
        Arc::new(SequentialIds::new(seed)),
        Arc::new(SeededSecrets::new(seed)),
    )
}

/// Who is who in the fixture.
#[derive(Clone, Debug)]
pub struct People {
    /// Olivia, the primary owner (agency administrator).
    pub owner: UserId,
    /// The root account.
    pub root: AccountId,
    /// Account "East".
    pub east: AccountId,
    /// Account "West".
    pub west: AccountId,
    /// Account "East Support", under East.
    pub east_support: AccountId,
    /// Agent on East, number assigned, reports to Tom, owns work.
    pub ann: UserId,
    /// Agent on East, a number forwarded to him, reports to Tom, a client, a job title.
    pub bob: UserId,
    /// Agent on West, deactivated.
    pub cat: UserId,
    /// Team leader on East (Ann and Bob report to him), owns a meeting.
    pub tom: UserId,
    /// Agency administrator.
    pub alan: UserId,
    /// Administrator on West.
    pub ada: UserId,
    /// Agent on East with an incomplete profile (no mobile, no country).
    pub ian: UserId,
    /// Custom role "supervisor" on East Support.
    pub sue: UserId,
    /// Deleted.
    pub dan: UserId,
    /// Invited by email, not accepted yet.
    pub pia: UserId,
    /// Pia's pending invitation.
    pub pia_invitation: InvitationId,
    /// A pending link invitation.
    pub link_invitation: InvitationId,
    /// Numbers: Ann's, the one forwarded to Bob, an orphan on West.
    pub numbers: [String; 3],
    /// Work items: Ann's conversation, Bob's client, Tom's meeting, Ann's flow template.
    pub work: [WorkItemId; 4],
}

/// The fixture organization and the service that recorded it.
pub struct Fixture {
    /// The service (and its memory store) holding the organization's log.
    pub service: CommandService<MemoryStore>,
    /// The service's clock.
    pub clock: Arc<FixedClock>,
    /// The service's ids.
    pub ids: Arc<SequentialIds>,
    /// The organization.
    pub org: OrgId,
    /// Who is who.
    pub people: People,
    /// The folded state at the end of the story.
    pub state: Organization,
}

/// Email address of a fixture user by first name.
pub fn email(first: &str) -> String {
    format!("{}@northwind.example", first.to_lowercase())
}

struct Recorder<'a> {
    service: &'a CommandService<MemoryStore>,
    ids: &'a SequentialIds,
    org: OrgId,
    /// Every command recorded, with its actor (for the command seeds).
    log: Vec<(Actor, Command)>,
}

impl Recorder<'_> {
    fn run(&mut self, actor: Actor, command: Command) -> Handled {
        let name = command.name();
        self.log.push((actor.clone(), command.clone()));
        let request = CommandRequest::new(
            self.org,
            CommandId::from_uuid(self.ids.next_id()),
            actor,
            command,
        );
        match block_on(self.service.handle(request)) {
            Ok(h) => h,
            Err(e) => panic!("fixture: {name} refused: {e}"),
        }
    }

    fn state(&self) -> Organization {
        block_on(self.service.state(self.org)).expect("fixture: state")
    }

    /// Invites `first` with `grant`; returns the user, the invitation and the token.
    fn invite(
        &mut self,
        owner: UserId,
        first: &str,
        grant: Grant,
    ) -> (UserId, InvitationId, String) {
        let h = self.run(
            Actor::user(owner),
            Command::InviteUsers {
                emails: email(first),
                grant,
            },
        );
        match &h.secrets[..] {
            [s] => match &s.purpose {
                SecretPurpose::Invitation {
                    invitation,
                    user: Some(user),
                    ..
                } => (*user, *invitation, s.token.clone()),
                _ => panic!("fixture: not an email invitation"),
            },
            _ => panic!("fixture: one invitation expected"),
        }
    }

    /// An active member: invited, accepted (complete profile unless
    /// `mobile` is `None`) and signed in once.
    fn member(&mut self, owner: UserId, first: &str, mobile: Option<&str>, grant: Grant) -> UserId {
        let (user, _, token) = self.invite(owner, first, grant);
        self.run(
            Actor::System,
            Command::AcceptInvitation {
                token,
                email: None,
                name: format!("{first} Northwind"),
                mobile: mobile.map(str::to_owned),
                default_country: mobile.map(|_| "US".to_owned()),
            },
        );
        self.run(
            Actor::user(user),
            Command::SignIn {
                user,
                device_name: "work laptop".into(),
            },
        );
        user
    }
}

fn grant(role: &str, accounts: &[AccountId]) -> Grant {
    Grant {
        role: RoleId::new(role),
        accounts: accounts.to_vec(),
        agency_admin: false,
        clients: vec![],
    }
}

/// The id seed of the fixture's service.
pub const FIXTURE_SEED: u64 = 2026;

/// Records the fixture story on a fresh service. Deterministic: every call
/// gives the same ids, events and keys. Also returns every command recorded.
pub fn build_fixture() -> (Fixture, Vec<(Actor, Command)>) {
    let clock = Arc::new(FixedClock::new(start()));
    let ids = Arc::new(SequentialIds::new(FIXTURE_SEED));
    let service = CommandService::new(
        MemoryStore::new(),
        clock.clone(),
        ids.clone(),
        Arc::new(SeededSecrets::new(FIXTURE_SEED)),
    );
    let org = OrgId::from_uuid(ids.next_id());
    let mut r = Recorder {
        service: &service,
        ids: &ids,
        org,
        log: Vec::new(),
    };
    r.run(
        Actor::System,
        Command::CreateOrganization {
            name: "Northwind".into(),
            root_account_name: "Northwind HQ".into(),
            owner_email: email("olivia"),
            owner_name: "Olivia Owner".into(),
            policies: Some(Policies {
                profile_edit: ProfileEditPolicy::SelfOrAdmin,
                ..Policies::default()
            }),
        },
    );
    let s = r.state();
    let owner = s.primary_owner.expect("fixture: owner");
    let root = s.root_account.expect("fixture: root account");
    let olivia = Actor::user(owner);
    r.run(
        olivia.clone(),
        Command::UpdateProfile {
            user: owner,
            name: None,
            email: None,
            mobile: Some(Edit::Set("+14155550100".into())),
            default_country: Some("US".into()),
            notifications: None,
        },
    );
    let account = |r: &mut Recorder<'_>, name: &str, parent: AccountId| -> AccountId {
        let h = r.run(
            olivia.clone(),
            Command::CreateAccount {
                name: name.into(),
                parent,
            },
        );
        match &h.events[..] {
            [Event::AccountCreated { account, .. }] => *account,
            _ => panic!("fixture: account {name}"),
        }
    };
    let east = account(&mut r, "East", root);
    let west = account(&mut r, "West", root);
    let east_support = account(&mut r, "East Support", east);
    r.run(
        olivia.clone(),
        Command::DefineRole {
            role: RoleId::new("supervisor"),
            name: "Supervisor".into(),
            permissions: vec![
                Permission::ManageTeam,
                Permission::ViewReports,
                Permission::ManageNumbers,
            ],
        },
    );

    clock.advance(Duration::hours(1));
    let ann = r.member(
        owner,
        "Ann",
        Some("+14155550101"),
        grant(RoleId::AGENT, &[east]),
    );
    let bob = r.member(
        owner,
        "Bob",
        Some("+14155550102"),
        grant(RoleId::AGENT, &[east]),
    );
    let cat = r.member(
        owner,
        "Cat",
        Some("+14155550103"),
        grant(RoleId::AGENT, &[west]),
    );
    let tom = r.member(
        owner,
        "Tom",
        Some("+14155550104"),
        grant(RoleId::TEAM_LEADER, &[east]),
    );
    let alan = r.member(
        owner,
        "Alan",
        Some("+14155550105"),
        Grant {
            role: RoleId::new(RoleId::ADMINISTRATOR),
            accounts: vec![],
            agency_admin: true,
            clients: vec![],
        },
    );
    let ada = r.member(
        owner,
        "Ada",
        Some("+14155550106"),
        grant(RoleId::ADMINISTRATOR, &[west]),
    );
    let ian = r.member(owner, "Ian", None, grant(RoleId::AGENT, &[east]));
    let sue = r.member(
        owner,
        "Sue",
        Some("+14155550108"),
        grant("supervisor", &[east_support]),
    );
    let dan = r.member(
        owner,
        "Dan",
        Some("+14155550109"),
        grant(RoleId::AGENT, &[west]),
    );

    clock.advance(Duration::hours(1));
    let numbers = [
        "+14155550201".to_owned(),
        "+14155550202".to_owned(),
        "+14155550203".to_owned(),
    ];
    for (n, acc) in numbers.iter().zip([east, east, west]) {
        r.run(
            olivia.clone(),
            Command::AddNumber {
                number: n.clone(),
                account: acc,
            },
        );
    }
    r.run(
        olivia.clone(),
        Command::AssignNumber {
            number: numbers[0].clone(),
            user: ann,
        },
    );
    r.run(
        olivia.clone(),
        Command::ForwardNumber {
            number: numbers[1].clone(),
            to: bob,
        },
    );
    for report in [ann, bob] {
        r.run(
            olivia.clone(),
            Command::SetReportingLine {
                user: report,
                leader: Some(tom),
            },
        );
    }
    let mut work = Vec::new();
    for (kind, title, owner_of) in [
        (WorkKind::Conversation, "Renewal", ann),
        (WorkKind::Client, "Contoso", bob),
        (WorkKind::Meeting, "Weekly", tom),
        (WorkKind::FlowTemplate, "Greeting", ann),
    ] {
        let h = r.run(
            olivia.clone(),
            Command::CreateWorkItem {
                kind,
                title: title.into(),
                owner: owner_of,
            },
        );
        match &h.events[..] {
            [Event::WorkItemCreated { item, .. }] => work.push(*item),
            _ => panic!("fixture: work item {title}"),
        }
    }
    r.run(
        olivia.clone(),
        Command::UpdateAdminFields {
            user: bob,
            job_title: Some(Edit::Set("Senior Agent".into())),
            picture: None,
            admin_access: None,
        },
    );

    clock.advance(Duration::hours(1));
    let (pia, pia_invitation, _) = r.invite(owner, "Pia", grant(RoleId::AGENT, &[east]));
    let h = r.run(
        olivia.clone(),
        Command::CreateInvitationLink {
            grant: grant(RoleId::AGENT, &[west]),
        },
    );
    let link_invitation = match &h.secrets[..] {
        [s] => match &s.purpose {
            SecretPurpose::Invitation { invitation, .. } => *invitation,
            _ => panic!("fixture: link"),
        },
        _ => panic!("fixture: one link"),
    };
    r.run(olivia.clone(), Command::RequestPasswordReset { user: ann });
    r.run(
        olivia.clone(),
        Command::Deactivate {
            user: cat,
            forward_numbers_to: None,
            reassign_reports: None,
        },
    );
    r.run(
        olivia.clone(),
        Command::Delete {
            user: dan,
            acknowledgement: DeletionAcknowledgement::ALL,
            forward_numbers_to: None,
            reassign_reports: None,
        },
    );
    let log = r.log;
    let state = block_on(service.state(org)).expect("fixture: state");
    let people = People {
        owner,
        root,
        east,
        west,
        east_support,
        ann,
        bob,
        cat,
        tom,
        alan,
        ada,
        ian,
        sue,
        dan,
        pia,
        pia_invitation,
        link_invitation,
        numbers,
        work: [work[0], work[1], work[2], work[3]],
    };
    (
        Fixture {
            service,
            clock,
            ids,
            org,
            people,
            state,
        },
        log,
    )
}

/// The fixture, built once per process.
pub fn fixture() -> &'static Fixture {
    static FIXTURE: OnceLock<Fixture> = OnceLock::new();
    FIXTURE.get_or_init(|| build_fixture().0)
}

impl Fixture {
    /// The actors a fuzzed command is decided for: the owner (every
    /// permission), an administrator of one account, a team leader, a plain
    /// agent, the system and support.
    pub fn actors(&self) -> [Actor; 6] {
        let p = &self.people;
        [
            Actor::user(p.owner),
            Actor::user(p.ada),
            Actor::user(p.tom),
            Actor::user(p.ann),
            Actor::System,
            Actor::Support {
                agent: "support-1".into(),
            },
        ]
    }

    /// The instant fuzzed commands are decided at: a day after the story.
    pub fn now(&self) -> DateTime<Utc> {
        self.clock.now() + Duration::days(1)
    }

    /// The organization's log as JSON Lines.
    pub fn export(&self) -> Vec<u8> {
        let mut out = Vec::new();
        block_on(self.service.export_jsonl(self.org, &mut out)).expect("fixture: export");
        out
    }
}

/// Decides `command` as `actor` on `state` with fresh deterministic sources,
/// and checks what every decision must satisfy:
/// * the same inputs give the same answer (`decide` is pure);
/// * a refusal names at least one blocker, and each blocker a rule;
/// * the events of an acceptance fold without panicking, each raising the
///   version by one, and each encodes for the store and decodes back to itself.
pub fn check_decide(
    state: &Organization,
    command: &Command,
    actor: Actor,
    now: DateTime<Utc>,
) -> Result<Decision, CommandError> {
    let run = || {
        let ids = SequentialIds::new(0xF0_22);
        let secrets = SeededSecrets::new(0xF0_22);
        let ctx = Context {
            actor: actor.clone(),
            now,
            command_id: CommandId::from_uuid(ids.next_id()),
            ids: &ids,
            secrets: &secrets,
        };
        decide(state, command, &ctx)
    };
    let first = run();
    assert_eq!(first, run(), "decide is not a pure function of its inputs");
    match &first {
        Err(e) => {
            assert!(!e.blockers.is_empty(), "a refusal without a blocker");
            for b in &e.blockers {
                assert_eq!(
                    b.rule().as_str().parse(),
                    Ok(b.rule()),
                    "a blocker whose rule id does not read back: {b:?}"
                );
            }
            let _ = e.to_string();
        }
        Ok(d) => {
            let mut after = state.clone();
            for (i, e) in d.events.iter().enumerate() {
                evolve(&mut after, e);
                assert_eq!(after.version, state.version + i as u64 + 1);
                check_roundtrip(e);
            }
            let _ = format!("{d:?}");
        }
    }
    first
}

/// An event encodes as the store keeps it, and decodes back to itself, from
/// its raw text (the read path) and from a parsed `Value` alike.
pub fn check_roundtrip(event: &Event) {
    let ty = event.event_type();
    let payload = codec::payload(event).expect("every event encodes");
    let back = codec::decode_payload(ty, codec::current_version(ty), &payload)
        .unwrap_or_else(|e| panic!("an encoded {ty} does not decode: {e}"));
    assert_eq!(&back, event, "{ty}: encode then decode changed the event");
    let raw = switchboard_core::store::RawPayload::from(&payload);
    let back = codec::decode_payload_raw(ty, codec::current_version(ty), raw.as_raw())
        .unwrap_or_else(|e| panic!("an encoded {ty} does not decode from its text: {e}"));
    assert_eq!(
        &back, event,
        "{ty}: encode then decode from text changed the event"
    );
}

/// The fixed place and key of the `codec_decode` target: its seeds are
/// sealed under [`known_key`] for event [`EVENT`] of [`ORG`].
pub mod codec_seed {
    use super::*;
    use switchboard_core::erasure::DataKey;
    use switchboard_core::store::{EventMetadata, Position, RecordedEvent};

    /// The organization of every decoded event.
    pub const ORG: OrgId = OrgId::from_uuid(uuid::Uuid::from_u128(
        0x0c0d_ec00_0000_7000_8000_0000_0000_0001,
    ));
    /// The id of every decoded event.
    pub const EVENT: EventId = EventId::from_uuid(uuid::Uuid::from_u128(
        0x0c0d_ec00_0000_7000_8000_0000_0000_0002,
    ));

    /// The key the target's key ring holds for every sealed subject.
    pub fn known_key() -> DataKey {
        DataKey::from_bytes([0x5e; 32])
    }

    /// Metadata of a decoded event.
    pub fn metadata() -> EventMetadata {
        EventMetadata {
            actor: Actor::System,
            occurred_at: start(),
            command_id: None,
            causation_id: None,
            correlation_id: None,
        }
    }

    /// A recorded event of [`ORG`] with id [`EVENT`].
    pub fn recorded(
        event_type: &str,
        schema_version: u32,
        payload: switchboard_core::store::RawPayload,
    ) -> RecordedEvent {
        RecordedEvent {
            stream: ORG,
            version: 1,
            position: Position::new(1, 1),
            event_id: EVENT,
            event_type: event_type.to_owned(),
            schema_version,
            payload,
            metadata: metadata(),
        }
    }
}
