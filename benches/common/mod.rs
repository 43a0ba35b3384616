//! Fixtures shared by the benches: organizations of a given size built from
//! real, decided events, and the "typical mix" of commands.
//!
//! Every event here comes out of `decide`, so the states and histories are
//! valid by construction (the same rules as production), only produced in
//! bulk: invitations go 500 addresses per command (the R-INV-01 limit), then
//! each invitee accepts (with a complete profile) and signs in, which makes
//! them `Active`.
#![allow(dead_code)] // each bench binary uses a different part of this module

use chrono::{DateTime, TimeZone, Utc};
use switchboard::codec;
use switchboard::store::{EventMetadata, Position, RecordedEvent};
use switchboard::*;

/// The instant every fixture command is decided at (invitations stay valid 14 days from it).
pub fn now() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 1, 1, 9, 0, 0)
        .single()
        .unwrap_or_default()
}

/// Numbers added to the root account for the mix.
pub const NUMBER_POOL: usize = 64;

/// A folded organization, the events that made it, and handles for the mix.
pub struct Fixture {
    /// The folded state.
    pub state: Organization,
    /// Every event, in order (empty when not kept).
    pub events: Vec<Event>,
    /// The primary owner (the actor of the mix).
    pub owner: UserId,
    /// The root account.
    pub root: AccountId,
    /// Active users other than the owner.
    pub active: Vec<UserId>,
    /// E.164 numbers of the pool.
    pub numbers: Vec<String>,
    /// Id and secret sources (kept so that later ids never collide).
    pub ids: SequentialIds,
    /// Secret source.
    pub secrets: SeededSecrets,
    /// Counter for fresh invitee emails.
    pub next_email: u64,
}

impl Fixture {
    /// Decides `command` as `actor` and folds the events; panics on refusal
    /// (a fixture bug, not a measured path).
    pub fn run(&mut self, actor: Actor, command: &Command) -> Decision {
        let ctx = Context {
            actor,
            now: now(),
            command_id: CommandId::from_uuid(self.ids.next_id()),
            ids: &self.ids,
            secrets: &self.secrets,
        };
        let decision = match decide(&self.state, command, &ctx) {
            Ok(d) => d,
            Err(e) => panic!("fixture command {} refused: {e:?}", command.name()),
        };
        for e in &decision.events {
            evolve(&mut self.state, e);
        }
        decision
    }

    fn run_keep(&mut self, actor: Actor, command: &Command, keep: bool) -> Decision {
        let d = self.run(actor, command);
        if keep {
            self.events.extend(d.events.iter().cloned());
        }
        d
    }

    /// Invites, accepts and signs in `count` more users (batches of 500).
    pub fn add_active_users(&mut self, count: usize, keep: bool) {
        let owner = Actor::user(self.owner);
        let grant = Grant {
            role: RoleId::new(RoleId::AGENT),
            accounts: vec![self.root],
            agency_admin: false,
            clients: vec![],
        };
        let mut left = count;
        while left > 0 {
            let batch = left.min(switchboard::validate::MAX_INVITEES);
            left -= batch;
            let emails: Vec<String> = (0..batch)
                .map(|_| {
                    self.next_email += 1;
                    format!("user{}@bench.example", self.next_email)
                })
                .collect();
            let d = self.run_keep(
                owner.clone(),
                &Command::InviteUsers {
                    emails: emails.join(","),
                    grant: grant.clone(),
                },
                keep,
            );
            for s in d.secrets {
                let switchboard::decide::SecretPurpose::Invitation {
                    user: Some(user), ..
                } = s.purpose
                else {
                    continue;
                };
                let n = self.active.len() as u64;
                self.run_keep(
                    Actor::System,
                    &Command::AcceptInvitation {
                        token: s.token,
                        email: None,
                        name: format!("Bench User {n}"),
                        mobile: Some(format!("+1415555{:04}", n % 10_000)),
                        default_country: Some("US".into()),
                    },
                    keep,
                );
                self.run_keep(
                    Actor::user(user),
                    &Command::SignIn {
                        user,
                        device_name: "laptop".into(),
                    },
                    keep,
                );
                self.active.push(user);
            }
        }
    }
}

/// An organization with `users` users in total (the owner included), all
/// active, plus a pool of [`NUMBER_POOL`] numbers on the root account.
/// `keep` records every event (for replay benches).
pub fn build(users: usize, seed: u64, keep: bool) -> Fixture {
    let ids = SequentialIds::new(seed);
    let org = OrgId::from_uuid(ids.next_id());
    let mut f = Fixture {
        state: Organization::empty(org),
        events: Vec::new(),
        owner: UserId::from_uuid(uuid::Uuid::nil()),
        root: AccountId::from_uuid(uuid::Uuid::nil()),
        active: Vec::new(),
        numbers: Vec::new(),
        ids,
        secrets: SeededSecrets::new(seed),
        next_email: 0,
    };
    f.run_keep(
        Actor::System,
        &Command::CreateOrganization {
            name: "Bench Corp".into(),
            root_account_name: "Bench HQ".into(),
            owner_email: "owner@bench.example".into(),
            owner_name: "Olivia Owner".into(),
            policies: None,
        },
        keep,
    );
    f.owner = f.state.primary_owner.unwrap_or(f.owner);
    f.root = f.state.root_account.unwrap_or(f.root);
    for i in 0..NUMBER_POOL {
        let number = format!("+1212555{i:04}");
        f.run_keep(
            Actor::user(f.owner),
            &Command::AddNumber {
                number: number.clone(),
                account: f.root,
            },
            keep,
        );
        f.numbers.push(number);
    }
    f.add_active_users(users.saturating_sub(1), keep);
    f
}

/// Commands in one [`mix_round`].
pub const MIX_COMMANDS: u64 = 9;

/// One round of the typical mix, as the owner: invite one person, revoke the
/// invitation, assign a number, forward another, change a role, deactivate a
/// user and reactivate them, unassign and stop forwarding. The inverse
/// commands keep the organization's shape steady across rounds (only the
/// revoked invitee stays), so a long run measures the same organization.
/// Returns the number of events decided. `i` picks distinct targets.
pub fn mix_round(f: &mut Fixture, i: usize, keep: bool) -> usize {
    let owner = Actor::user(f.owner);
    let len = f.active.len();
    let a = f.active[(4 * i) % len];
    let b = f.active[(4 * i + 1) % len];
    let c = f.active[(4 * i + 2) % len];
    let d = f.active[(4 * i + 3) % len];
    let n = f.numbers[(2 * i) % NUMBER_POOL].clone();
    let m = f.numbers[(2 * i + 1) % NUMBER_POOL].clone();
    f.next_email += 1;
    let mut events = 0;
    let invite = f.run_keep(
        owner.clone(),
        &Command::InviteUsers {
            emails: format!("new{}@bench.example", f.next_email),
            grant: Grant {
                role: RoleId::new(RoleId::AGENT),
                accounts: vec![f.root],
                agency_admin: false,
                clients: vec![],
            },
        },
        keep,
    );
    events += invite.events.len();
    let invitation = invite.events.iter().find_map(|e| match e {
        Event::UserInvited { invitation, .. } => Some(*invitation),
        _ => None,
    });
    let current_role = f
        .state
        .users
        .get(&c)
        .and_then(|u| u.memberships.get(&f.root))
        .map(|r| r.as_str() == RoleId::AGENT);
    let new_role = if current_role == Some(true) {
        RoleId::TEAM_LEADER
    } else {
        RoleId::AGENT
    };
    let mut commands = Vec::with_capacity(8);
    if let Some(invitation) = invitation {
        commands.push(Command::RevokeInvitation { invitation });
    }
    commands.extend([
        Command::AssignNumber {
            number: n.clone(),
            user: a,
        },
        Command::ForwardNumber {
            number: m.clone(),
            to: b,
        },
        Command::ChangeRole {
            user: c,
            account: f.root,
            role: RoleId::new(new_role),
        },
        Command::Deactivate {
            user: d,
            forward_numbers_to: None,
            reassign_reports: None,
        },
        Command::Reactivate { user: d },
        Command::UnassignNumber { number: n },
        Command::StopForwarding { number: m },
    ]);
    for cmd in &commands {
        events += f.run_keep(owner.clone(), cmd, keep).events.len();
    }
    events
}

/// Wraps events as a store would hand them back: encoded JSON payload,
/// envelope, versions 1.. and positions.
pub fn record(org: OrgId, events: &[Event]) -> Vec<RecordedEvent> {
    let metadata = EventMetadata {
        actor: Actor::System,
        occurred_at: now(),
        command_id: None,
        causation_id: None,
        correlation_id: None,
    };
    events
        .iter()
        .enumerate()
        .map(|(i, e)| {
            let n = codec::encode(
                e,
                EventId::from_uuid(uuid::Uuid::from_u128(i as u128 + 1)),
                metadata.clone(),
            )
            .expect("every event encodes");
            RecordedEvent {
                stream: org,
                version: i as u64 + 1,
                position: Position::new(i as u64 + 1, i as u64 + 1),
                event_id: n.event_id,
                event_type: n.event_type,
                schema_version: n.schema_version,
                payload: n.payload,
                metadata: n.metadata,
            }
        })
        .collect()
}

/// As [`record`], with personal data sealed as the service stores it
/// (AES-256-GCM under each subject's data key, R-LIFE-06), and the key ring
/// that opens it.
pub fn record_sealed(
    org: OrgId,
    events: &[Event],
) -> (Vec<RecordedEvent>, switchboard::erasure::KeyRing) {
    use switchboard::erasure::{DataKey, KeyRing};
    let mut keys = std::collections::HashMap::new();
    let mut recorded = record(org, events);
    for (i, (e, r)) in events.iter().zip(recorded.iter_mut()).enumerate() {
        let Some(subject) = codec::personal_subject(e) else {
            continue;
        };
        let key = keys.entry(subject).or_insert_with(|| {
            let mut bytes = [0u8; 32];
            bytes[..16].copy_from_slice(&subject.as_uuid().as_u128().to_le_bytes());
            DataKey::from_bytes(bytes)
        });
        let mut nonce = [0u8; 32];
        nonce[..8].copy_from_slice(&(i as u64).to_le_bytes());
        let sealed = codec::encode_sealed(
            e,
            org,
            r.event_id,
            r.metadata.clone(),
            codec::Sealing::Seal { key, nonce },
        )
        .expect("every event encodes");
        r.payload = sealed.payload;
    }
    (recorded, KeyRing::new(keys))
}

/// A history of at least `target` events: an organization of `users` users,
/// then mix rounds.
pub fn history(users: usize, target: usize) -> Fixture {
    let mut f = build(users, 0xB0B, true);
    let mut i = 0;
    while f.events.len() < target {
        mix_round(&mut f, i, true);
        i += 1;
    }
    f
}
