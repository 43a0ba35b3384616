//! Proptest strategies for services that embed Switchboard (feature `proptest`).
//!
//! Test your own projections, read models and stores on realistic data:
//!
//! * [`arb_history`]: whole valid histories of an organization — events with
//!   their metadata, the commands that produced them, and the final state;
//! * [`arb_command`]: a command that `decide` accepts against a given state;
//! * [`arb_event`]: single events taken from such histories.
//!
//! Histories are valid by construction: every step is a command that
//! [`decide`] accepted against the state so far, and the events are its
//! events, folded with [`evolve`]. Nothing is made up event by event, so a
//! history never holds a state the rules forbid. Generation is deterministic
//! (fixed clock steps, [`SequentialIds`], [`SeededSecrets`]), and a failing
//! history shrinks to a shorter one (the steps are a vector of choices).
//!
//! ```
//! use proptest::prelude::*;
//! use proptest::test_runner::{Config, TestRunner};
//! use switchboard_core::strategies::arb_history;
//! use switchboard_core::*;
//!
//! // A projection of your own: active users per account, built from events only.
//! fn active_members(events: &[Event]) -> usize {
//!     fold(OrgId::from_uuid(uuid::Uuid::nil()), events)
//!         .users
//!         .values()
//!         .filter(|u| u.is_active())
//!         .count()
//! }
//!
//! let mut runner = TestRunner::new(Config { cases: 8, ..Config::default() });
//! runner
//!     .run(&arb_history(30), |h| {
//!         let events: Vec<Event> = h.events.iter().map(|r| r.event.clone()).collect();
//!         // The history's final state is the fold of its events...
//!         prop_assert_eq!(fold(h.state.id, &events), h.state.clone());
//!         // ...so a projection can be checked against it.
//!         let expected = h.state.users.values().filter(|u| u.is_active()).count();
//!         prop_assert_eq!(active_members(&events), expected);
//!         // Versions are 1, 2, 3, ... as a store would number them.
//!         prop_assert!(h.events.iter().enumerate().all(|(i, r)| r.version == i as u64 + 1));
//!         Ok(())
//!     })
//!     .unwrap();
//! ```

use crate::command::*;
use crate::context::{Actor, Context, IdSource, SeededSecrets, SequentialIds};
use crate::decide::{decide, SecretPurpose};
use crate::event::{DeletionAcknowledgement, Event};
use crate::evolve::evolve;
use crate::ids::*;
use crate::model::*;
use chrono::{DateTime, Duration, TimeZone, Utc};
use proptest::prelude::*;
use std::collections::BTreeMap;
use std::sync::Arc;

/// Limit: steps of one generated history (each step is one decided command).
pub const MAX_HISTORY_STEPS: usize = 2_000;

/// One recorded event with the metadata a store would keep.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RecordedEvent {
    /// Version in the organization's stream, from 1.
    pub version: u64,
    /// When the command that produced it was decided.
    pub at: DateTime<Utc>,
    /// Who issued that command (R-AUTH-04).
    pub actor: Actor,
    /// That command's id (also the causation id).
    pub command_id: CommandId,
    /// The event.
    pub event: Event,
}

/// A valid history of one organization.
#[derive(Clone, Debug, PartialEq)]
pub struct History {
    /// The organization (and stream) id.
    pub org_id: OrgId,
    /// The accepted commands, in order, with their actors.
    pub commands: Vec<(Actor, Command)>,
    /// Every event, in order, with its metadata.
    pub events: Vec<RecordedEvent>,
    /// The state after the last event: `fold(org_id, events)`.
    pub state: Organization,
}

/// The instant generated histories start at.
pub fn history_start() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 1, 5, 9, 0, 0)
        .single()
        .unwrap_or(DateTime::<Utc>::MIN_UTC)
}

/// Kinds of step a history is made of; a step names a kind and two choices.
const KINDS: u8 = 16;

/// Valid histories of about `size` commands (at most [`MAX_HISTORY_STEPS`]):
/// invitations by email and link, acceptances and first sign-ins, accounts,
/// roles, numbers (added, assigned, unassigned, forwarded, released), teams,
/// work items and transfers, profile edits, deactivations, reactivations,
/// offboardings and deletions, bulk runs, expiring invitations, with the
/// clock moving on between commands.
pub fn arb_history(size: usize) -> impl Strategy<Value = History> {
    let size = size.min(MAX_HISTORY_STEPS);
    (
        any::<u64>(),
        proptest::collection::vec((0..KINDS, any::<u16>(), any::<u16>()), 0..=size),
    )
        .prop_map(|(seed, steps)| build_history(seed, &steps))
}

/// A command `decide` accepts against `state`, with its actor: one of the
/// commands [`arb_history`] is built from that need no secret token (invites,
/// numbers, teams, work, profiles, lifecycle...). The organization must have
/// been created; for an empty stream the strategy yields `CreateOrganization`.
pub fn arb_command(state: &Organization) -> impl Strategy<Value = (Actor, Command)> {
    let world = World::from_state(state.clone());
    let mut accepted = Vec::new();
    for kind in 0..KINDS {
        for (actor, cmd) in world.candidates(kind) {
            if world.check(&actor, &cmd) {
                accepted.push((actor, cmd));
            }
        }
    }
    if accepted.is_empty() {
        accepted.push((Actor::System, create_organization()));
    }
    proptest::sample::select(accepted)
}

/// Single events, drawn from valid histories of up to `size` commands.
pub fn arb_event(size: usize) -> impl Strategy<Value = Event> {
    arb_history(size.max(1)).prop_flat_map(|h| {
        let events: Vec<Event> = h.events.into_iter().map(|r| r.event).collect();
        proptest::sample::select(events)
    })
}

fn create_organization() -> Command {
    Command::CreateOrganization {
        name: "Acme".into(),
        root_account_name: "Acme HQ".into(),
        owner_email: "owner@acme.example".into(),
        owner_name: "Olive Owner".into(),
        policies: None,
    }
}

/// The generator's world: the state plus what only the caller knows (tokens).
struct World {
    state: Organization,
    now: DateTime<Utc>,
    ids: Arc<SequentialIds>,
    secrets: Arc<SeededSecrets>,
    /// Tokens of invitations, as only the issuer knows them.
    tokens: BTreeMap<InvitationId, String>,
    commands: Vec<(Actor, Command)>,
    events: Vec<RecordedEvent>,
    /// Counter for fresh emails and numbers.
    fresh: u32,
}

fn phone(n: u32) -> String {
    format!("+1415201{:04}", n % 10_000)
}

impl World {
    fn from_state(state: Organization) -> Self {
        Self {
            fresh: state.users.len() as u32 + state.numbers.len() as u32 + 1,
            state,
            now: history_start(),
            ids: Arc::new(SequentialIds::new(0x5eed)),
            secrets: Arc::new(SeededSecrets::new(0x5eed)),
            tokens: BTreeMap::new(),
            commands: Vec::new(),
            events: Vec::new(),
        }
    }

    fn owner(&self) -> Actor {
        self.state
            .primary_owner
            .map(Actor::user)
            .unwrap_or(Actor::System)
    }

    fn users_where(&self, f: impl Fn(&User) -> bool) -> Vec<&User> {
        self.state
            .users
            .values()
            .map(|u| &**u)
            .filter(|u| f(u))
            .collect()
    }

    fn ctx(&self, actor: &Actor) -> Context<'_> {
        Context {
            actor: actor.clone(),
            now: self.now,
            command_id: CommandId::from_uuid(self.ids.next_id()),
            ids: self.ids.as_ref(),
            secrets: self.secrets.as_ref(),
        }
    }

    /// Whether `decide` accepts the command (a dry run: nothing changes but ids drawn).
    fn check(&self, actor: &Actor, cmd: &Command) -> bool {
        decide(&self.state, cmd, &self.ctx(actor)).is_ok()
    }

    /// Decides and, if accepted, records and folds the events.
    fn run(&mut self, actor: Actor, cmd: Command) {
        let ctx = self.ctx(&actor);
        let command_id = ctx.command_id;
        let Ok(decision) = decide(&self.state, &cmd, &ctx) else {
            return;
        };
        for s in &decision.secrets {
            if let SecretPurpose::Invitation { invitation, .. } = &s.purpose {
                self.tokens.insert(*invitation, s.token.clone());
            }
        }
        for event in decision.events {
            evolve(&mut self.state, &event);
            self.events.push(RecordedEvent {
                version: self.state.version,
                at: self.now,
                actor: actor.clone(),
                command_id,
                event,
            });
        }
        self.commands.push((actor, cmd));
        // Time moves on between commands.
        self.now += Duration::minutes(37);
    }

    /// Candidate commands of one kind against the current state.
    fn candidates(&self, kind: u8) -> Vec<(Actor, Command)> {
        let s = &self.state;
        let owner = self.owner();
        let root = s.root_account;
        let accounts: Vec<AccountId> = s.accounts.keys().copied().collect();
        let active: Vec<&User> = self.users_where(User::is_active);
        let fresh = self.fresh;
        let mut out = Vec::new();
        match kind {
            // Invite a new person to one account with a built-in role.
            0 => {
                for (i, a) in accounts.iter().enumerate().take(4) {
                    let role = [RoleId::AGENT, RoleId::TEAM_LEADER, RoleId::ADMINISTRATOR][i % 3];
                    out.push((
                        owner.clone(),
                        Command::InviteUsers {
                            emails: format!("person{fresh}@example.com"),
                            grant: Grant {
                                role: RoleId::new(role),
                                accounts: vec![*a],
                                agency_admin: false,
                                clients: vec![],
                            },
                        },
                    ));
                }
                // Or provision one for an identity provider, with a sign-in
                // name and, every other time, an email (R-USR-04).
                if let Some(root) = root {
                    out.push((
                        owner.clone(),
                        Command::ProvisionUser {
                            sign_in_name: Some(format!("idp.user{fresh}")),
                            email: fresh
                                .is_multiple_of(2)
                                .then(|| format!("provisioned{fresh}@example.com")),
                            name: Some(format!("Provisioned {fresh}")),
                            mobile: Some(phone(9_000 + fresh)),
                            default_country: Some("US".into()),
                            job_title: None,
                            external_id: Some(format!("00u{fresh}Prov")),
                            reports_to: None,
                            deactivated: fresh.is_multiple_of(5),
                            grant: Grant {
                                role: RoleId::new(RoleId::AGENT),
                                accounts: vec![root],
                                agency_admin: false,
                                clients: vec![],
                            },
                        },
                    ));
                }
            }
            // Accept a pending invitation (email or link) with a complete profile.
            1 => {
                for (id, token) in &self.tokens {
                    let Some(inv) = s.invitations.get(id) else {
                        continue;
                    };
                    if inv.status_at(self.now) != InvitationStatus::Pending {
                        continue;
                    }
                    out.push((
                        Actor::System,
                        Command::AcceptInvitation {
                            token: token.clone(),
                            email: (inv.delivery == Delivery::Link)
                                .then(|| format!("linked{fresh}@example.com")),
                            name: format!("Person {fresh}"),
                            mobile: Some(phone(5_000 + fresh)),
                            default_country: Some("US".into()),
                        },
                    ));
                }
            }
            // First sign-in of accepted invitees, later sign-ins of active users.
            2 => {
                for u in self.users_where(|u| {
                    u.is_active() || (u.status == UserStatus::Invited && u.invitation_accepted)
                }) {
                    out.push((
                        Actor::user(u.id),
                        Command::SignIn {
                            user: u.id,
                            device_name: "Laptop".into(),
                        },
                    ));
                }
            }
            // Accounts, link invitations, custom roles.
            3 => {
                for a in &accounts {
                    out.push((
                        owner.clone(),
                        Command::CreateAccount {
                            name: format!("Branch {fresh}"),
                            parent: *a,
                        },
                    ));
                }
                if let Some(r) = root {
                    out.push((
                        owner.clone(),
                        Command::CreateInvitationLink {
                            grant: Grant {
                                role: RoleId::new(RoleId::AGENT),
                                accounts: vec![r],
                                agency_admin: false,
                                clients: vec![],
                            },
                        },
                    ));
                }
                out.push((
                    owner.clone(),
                    Command::DefineRole {
                        role: RoleId::new(format!("custom-{}", fresh % 3)),
                        name: "Night shift".into(),
                        permissions: vec![Permission::ManageTeam, Permission::ViewReports],
                    },
                ));
            }
            // Numbers: add one to an account.
            4 => {
                for a in &accounts {
                    out.push((
                        owner.clone(),
                        Command::AddNumber {
                            number: phone(fresh),
                            account: *a,
                        },
                    ));
                }
            }
            // Assign a free number to an active user reaching its account.
            5 => {
                for n in s.numbers.values().filter(|n| n.assigned_to.is_none()) {
                    for u in active.iter().filter(|u| u.has_access(n.account)) {
                        out.push((
                            owner.clone(),
                            Command::AssignNumber {
                                number: n.number.to_string(),
                                user: u.id,
                            },
                        ));
                    }
                }
            }
            // Unassign, forward, stop forwarding, release.
            6 => {
                for n in s.numbers.values() {
                    let number = n.number.to_string();
                    if n.assigned_to.is_some() {
                        out.push((
                            owner.clone(),
                            Command::UnassignNumber {
                                number: number.clone(),
                            },
                        ));
                    } else {
                        out.push((
                            owner.clone(),
                            Command::ReleaseNumber {
                                number: number.clone(),
                            },
                        ));
                    }
                    if n.forwarded_to.is_some() {
                        out.push((
                            owner.clone(),
                            Command::StopForwarding {
                                number: number.clone(),
                            },
                        ));
                    }
                    for u in active.iter().filter(|u| u.has_access(n.account)) {
                        out.push((
                            owner.clone(),
                            Command::ForwardNumber {
                                number: number.clone(),
                                to: u.id,
                            },
                        ));
                    }
                }
            }
            // Teams: a live user reports to an active holder of ManageTeam.
            7 => {
                let leaders: Vec<&User> = active
                    .iter()
                    .copied()
                    .filter(|u| s.holds_anywhere(u, Permission::ManageTeam))
                    .collect();
                for u in self.users_where(|u| u.status != UserStatus::Deleted) {
                    for l in &leaders {
                        out.push((
                            owner.clone(),
                            Command::SetReportingLine {
                                user: u.id,
                                leader: Some(l.id),
                            },
                        ));
                    }
                }
            }
            // Work: create items, transfer them.
            8 => {
                for u in &active {
                    for kind in [WorkKind::Client, WorkKind::Meeting, WorkKind::Conversation] {
                        out.push((
                            owner.clone(),
                            Command::CreateWorkItem {
                                kind,
                                title: format!("{kind:?} {fresh}"),
                                owner: u.id,
                            },
                        ));
                    }
                }
                for from in self.users_where(|u| !u.work.is_empty()) {
                    for to in &active {
                        out.push((
                            owner.clone(),
                            Command::TransferWork {
                                from: from.id,
                                to: to.id,
                                selection: WorkSelection::All,
                            },
                        ));
                    }
                }
            }
            // Profiles: users edit their own details.
            9 => {
                for u in &active {
                    out.push((
                        Actor::user(u.id),
                        Command::UpdateProfile {
                            user: u.id,
                            name: Some(format!("Renamed {fresh}")),
                            email: None,
                            mobile: Some(Edit::Set(phone(7_000 + fresh))),
                            default_country: Some("GB".into()),
                            notifications: None,
                        },
                    ));
                    out.push((
                        owner.clone(),
                        Command::UpdateAdminFields {
                            user: u.id,
                            job_title: Some(Edit::Set("Specialist".into())),
                            picture: None,
                            admin_access: None,
                        },
                    ));
                    out.push((
                        owner.clone(),
                        Command::SetExternalId {
                            user: u.id,
                            external_id: Edit::Set(format!("00u{fresh}Idp")),
                        },
                    ));
                    out.push((
                        owner.clone(),
                        Command::SetSignInName {
                            user: u.id,
                            sign_in_name: Edit::Set(format!("agent.{fresh}")),
                        },
                    ));
                }
            }
            // Access: grant another account, change a role.
            10 => {
                for u in self.users_where(|u| u.status != UserStatus::Deleted && !u.agency_admin) {
                    for a in &accounts {
                        if !u.memberships.contains_key(a) {
                            out.push((
                                owner.clone(),
                                Command::GrantAccess {
                                    user: u.id,
                                    role: RoleId::new(RoleId::READ_ONLY),
                                    accounts: vec![*a],
                                },
                            ));
                        }
                    }
                    for a in u.memberships.keys() {
                        out.push((
                            owner.clone(),
                            Command::ChangeRole {
                                user: u.id,
                                account: *a,
                                role: RoleId::new(RoleId::TEAM_LEADER),
                            },
                        ));
                    }
                }
            }
            // Deactivate (handing numbers and reports over), reactivate.
            11 => {
                for u in &active {
                    let heir = active
                        .iter()
                        .find(|h| h.id != u.id && h.agency_admin && Some(h.id) != u.reports_to);
                    out.push((
                        owner.clone(),
                        Command::Offboard(Offboarding {
                            user: u.id,
                            unassign_numbers: true,
                            forward_numbers_to: heir.map(|h| h.id),
                            reassign_reports: heir.map(|h| Reassignment::AllTo(h.id)),
                            transfer_work_to: heir.map(|h| h.id),
                            end: OffboardEnd::Deactivate,
                        }),
                    ));
                }
                for u in self.users_where(|u| u.status == UserStatus::Deactivated) {
                    out.push((owner.clone(), Command::Reactivate { user: u.id }));
                }
            }
            // Delete (a whole offboarding), or plain delete of an invitee.
            12 => {
                for u in self.users_where(|u| u.status != UserStatus::Deleted) {
                    let heir = active
                        .iter()
                        .find(|h| h.id != u.id && h.agency_admin && Some(h.id) != u.reports_to);
                    out.push((
                        owner.clone(),
                        Command::Offboard(Offboarding {
                            user: u.id,
                            unassign_numbers: true,
                            forward_numbers_to: heir.map(|h| h.id),
                            reassign_reports: heir.map(|h| Reassignment::AllTo(h.id)),
                            transfer_work_to: heir.map(|h| h.id),
                            end: OffboardEnd::Delete(DeletionAcknowledgement::ALL),
                        }),
                    ));
                }
            }
            // Invitations: re-invite, revoke, expire (system sweep).
            13 => {
                for inv in s.invitations.values() {
                    if inv.delivery == Delivery::Email {
                        out.push((owner.clone(), Command::Reinvite { invitation: inv.id }));
                    }
                    out.push((
                        owner.clone(),
                        Command::RevokeInvitation { invitation: inv.id },
                    ));
                }
                out.push((Actor::System, Command::ExpireInvitations { limit: 100 }));
            }
            // Bulk: fill profiles, deactivate agents (R-BULK-01).
            14 => {
                for u in &active {
                    if let Some(e) = u.email() {
                        out.push((
                            owner.clone(),
                            Command::BulkUpdate {
                                csv: format!("email,deactivated,job_title\n{e},y,Former\n"),
                                mode: BulkMode::Partial,
                            },
                        ));
                    }
                }
                for u in self.users_where(|u| u.status == UserStatus::Deactivated) {
                    if let Some(e) = u.email() {
                        out.push((
                            owner.clone(),
                            Command::BulkUpdate {
                                csv: format!("email,deactivated\n{e},n\n"),
                                mode: BulkMode::AllOrNothing,
                            },
                        ));
                    }
                }
            }
            // Devices, password resets, ownership.
            _ => {
                for u in &active {
                    for d in u.devices.keys() {
                        out.push((
                            Actor::user(u.id),
                            Command::SignOutDevice {
                                user: u.id,
                                device: *d,
                            },
                        ));
                    }
                    out.push((
                        Actor::user(u.id),
                        Command::RequestPasswordReset { user: u.id },
                    ));
                    out.push((
                        owner.clone(),
                        Command::TransferPrimaryOwnership { to: u.id },
                    ));
                }
            }
        }
        out
    }

    /// One step: a kind and two choices. Kinds with nothing to do fall
    /// through to the next kind; a refused candidate is skipped (the history
    /// stays valid, only shorter).
    fn step(&mut self, kind: u8, pick: u16, extra: u16) {
        if extra.is_multiple_of(11) {
            // Days pass now and then, so that invitations lapse (R-INV-05).
            self.now += Duration::days(i64::from(extra % 20));
        }
        for k in 0..KINDS {
            let cands = self.candidates((kind + k) % KINDS);
            if cands.is_empty() {
                continue;
            }
            let (actor, cmd) = cands[usize::from(pick) % cands.len()].clone();
            self.fresh += 1;
            self.run(actor, cmd);
            return;
        }
    }
}

fn build_history(seed: u64, steps: &[(u8, u16, u16)]) -> History {
    let ids = SequentialIds::new(seed | 1);
    let org_id = OrgId::from_uuid(ids.next_id());
    let mut world = World::from_state(Organization::empty(org_id));
    world.ids = Arc::new(ids);
    world.secrets = Arc::new(SeededSecrets::new(seed));
    world.run(Actor::System, create_organization());
    for (kind, pick, extra) in steps {
        world.step(*kind, *pick, *extra);
    }
    History {
        org_id,
        commands: world.commands,
        events: world.events,
        state: world.state,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::evolve::fold;
    use proptest::test_runner::{Config, TestRunner};

    #[test]
    fn histories_replay_to_their_state_and_are_rich() {
        let mut runner = TestRunner::new(Config {
            cases: 16,
            ..Config::default()
        });
        runner
            .run(&arb_history(120), |h| {
                let events: Vec<Event> = h.events.iter().map(|r| r.event.clone()).collect();
                prop_assert_eq!(fold(h.org_id, &events), h.state.clone());
                prop_assert_eq!(h.state.version as usize, h.events.len());
                Ok(())
            })
            .unwrap();
        // A long history reaches most kinds of event.
        let h = build_history(
            3,
            &(0..400u16)
                .map(|i| ((i % 16) as u8, i * 7, i))
                .collect::<Vec<_>>(),
        );
        let kinds: std::collections::BTreeSet<&str> = h
            .events
            .iter()
            .map(|r| serde_json::to_value(&r.event).ok())
            .filter_map(|v| {
                v.and_then(|v| v.get("type").and_then(|t| t.as_str().map(str::to_owned)))
            })
            .map(|s| &*Box::leak(s.into_boxed_str()))
            .collect();
        assert!(kinds.len() >= 20, "only {} kinds: {kinds:?}", kinds.len());
    }

    #[test]
    fn arb_command_yields_accepted_commands() {
        let h = build_history(
            9,
            &(0..60u16)
                .map(|i| ((i % 16) as u8, i * 13, i))
                .collect::<Vec<_>>(),
        );
        let mut runner = TestRunner::new(Config {
            cases: 32,
            ..Config::default()
        });
        let world = World::from_state(h.state.clone());
        runner
            .run(&arb_command(&h.state), |(actor, cmd)| {
                prop_assert!(world.check(&actor, &cmd), "{cmd:?} refused");
                Ok(())
            })
            .unwrap();
    }
}
