//! Shared test harness: an in-memory "world" that holds an [`Organization`]
//! and its events, decides commands with a deterministic [`Context`] and folds
//! the accepted events with [`evolve`]. Pure and synchronous: no store.
//!
//! Builders make a realistic organization: owner with a complete profile,
//! sub-accounts, administrators, team leaders (ManageTeam), agents with
//! complete profiles, numbers and work items.
#![allow(dead_code)]

use chrono::{DateTime, Duration, TimeZone, Utc};
use switchboard_core::decide::SecretPurpose;
use switchboard_core::*;

/// The instant every world starts at.
pub fn start() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 3, 2, 9, 0, 0).unwrap()
}

/// Role ids, short.
pub fn role(slug: &str) -> RoleId {
    RoleId::new(slug)
}
/// The built-in agent role.
pub fn agent_role() -> RoleId {
    role(RoleId::AGENT)
}
/// The built-in administrator role.
pub fn admin_role() -> RoleId {
    role(RoleId::ADMINISTRATOR)
}
/// The built-in team-leader role.
pub fn leader_role() -> RoleId {
    role(RoleId::TEAM_LEADER)
}

/// A grant of `role` on `accounts`.
pub fn grant(role: RoleId, accounts: &[AccountId]) -> Grant {
    Grant {
        role,
        accounts: accounts.to_vec(),
        agency_admin: false,
        clients: vec![],
    }
}

/// A valid, distinct US number for `n` (E.164 form `+1415NNNNNNN`).
pub fn phone(n: u32) -> String {
    format!("+1415{:03}{:04}", 200 + n / 10_000, n % 10_000)
}

/// The E.164 value of [`phone`].
pub fn e164(n: u32) -> PhoneNumber {
    PhoneNumber::from(phone(n))
}

/// An actor that is a user.
pub fn as_user(id: UserId) -> Actor {
    Actor::user(id)
}

/// A user's invitation token, as handed to the caller.
#[derive(Clone, Debug)]
pub struct Invited {
    /// The invited user (email invitations).
    pub user: Option<UserId>,
    /// The invitation.
    pub invitation: InvitationId,
    /// The secret token text.
    pub token: String,
}

/// The in-memory world.
pub struct World {
    /// The folded state.
    pub state: Organization,
    /// Every accepted event, in order.
    pub events: Vec<Event>,
    /// The caller's clock.
    pub clock: FixedClock,
    /// Ids.
    pub ids: SequentialIds,
    /// Secrets.
    pub secrets: SeededSecrets,
    /// The primary owner.
    pub owner: UserId,
    /// The root account.
    pub root: AccountId,
    next_phone: u32,
    next_email: u32,
}

impl Default for World {
    fn default() -> Self {
        Self::new()
    }
}

impl World {
    /// An organization "Northwind" created by the system, with the owner's
    /// profile completed (mobile and country) so that only what a test sets
    /// up is incomplete.
    pub fn new() -> Self {
        Self::with_policies(None)
    }

    /// Like [`World::new`] with explicit policies.
    pub fn with_policies(policies: Option<Policies>) -> Self {
        let ids = SequentialIds::new(42);
        let org = OrgId::from_uuid(ids.next_id());
        let mut w = World {
            state: Organization::empty(org),
            events: Vec::new(),
            clock: FixedClock::new(start()),
            ids,
            secrets: SeededSecrets::new(42),
            owner: UserId::from_uuid(uuid::Uuid::nil()),
            root: AccountId::from_uuid(uuid::Uuid::nil()),
            next_phone: 1,
            next_email: 1,
        };
        w.ok(
            Actor::System,
            Command::CreateOrganization {
                name: "Northwind".into(),
                root_account_name: "Northwind HQ".into(),
                owner_email: "olivia@northwind.example".into(),
                owner_name: "Olivia Owner".into(),
                policies,
            },
        );
        w.owner = w.state.primary_owner.expect("owner");
        w.root = w.state.root_account.expect("root");
        let owner = w.owner;
        let m = w.fresh_mobile();
        w.ok(
            as_user(owner),
            Command::UpdateProfile {
                user: owner,
                name: None,
                email: None,
                mobile: Some(Edit::Set(m)),
                default_country: Some("US".into()),
                notifications: None,
            },
        );
        w
    }

    /// The owner as actor.
    pub fn owner_actor(&self) -> Actor {
        as_user(self.owner)
    }

    /// The current time.
    pub fn now(&self) -> DateTime<Utc> {
        self.clock.now()
    }

    /// Moves the clock forward.
    pub fn advance(&self, by: Duration) {
        self.clock.advance(by);
    }

    fn ctx(&self, actor: Actor) -> Context<'_> {
        Context {
            actor,
            now: self.clock.now(),
            command_id: CommandId::from_uuid(self.ids.next_id()),
            ids: &self.ids,
            secrets: &self.secrets,
        }
    }

    /// Decides without applying (a dry run, R-OFF-02).
    pub fn dry(&self, actor: Actor, cmd: &Command) -> Result<Decision, CommandError> {
        decide(&self.state, cmd, &self.ctx(actor))
    }

    /// Decides and, when accepted, folds and records the events.
    pub fn exec(&mut self, actor: Actor, cmd: Command) -> Result<Decision, CommandError> {
        let d = decide(&self.state, &cmd, &self.ctx(actor))?;
        for e in &d.events {
            evolve(&mut self.state, e);
            self.events.push(e.clone());
        }
        Ok(d)
    }

    /// Executes a command that must be accepted.
    #[track_caller]
    pub fn ok(&mut self, actor: Actor, cmd: Command) -> Decision {
        let name = cmd.name();
        match self.exec(actor, cmd) {
            Ok(d) => d,
            Err(e) => panic!("{name} refused: {e}"),
        }
    }

    /// Executes a command that must be refused; asserts it changed nothing.
    #[track_caller]
    pub fn refused(&mut self, actor: Actor, cmd: Command) -> CommandError {
        let before = self.state.clone();
        let events = self.events.len();
        let name = cmd.name();
        match self.exec(actor, cmd) {
            Ok(d) => panic!("{name} was accepted: {:?}", d.events),
            Err(e) => {
                assert!(!e.blockers.is_empty(), "a refusal names a blocker");
                assert_eq!(self.state, before, "a refused command changes no state");
                assert_eq!(
                    self.events.len(),
                    events,
                    "a refused command records nothing"
                );
                e
            }
        }
    }

    /// Replaying every event from scratch gives the live state.
    #[track_caller]
    pub fn assert_replays(&self) {
        let replayed = fold(self.state.id, &self.events);
        assert_eq!(replayed, self.state, "replay differs from the live state");
    }

    /// A user by id.
    #[track_caller]
    pub fn user(&self, id: UserId) -> &User {
        self.state.users.get(&id).expect("user exists")
    }

    /// A user's profile.
    #[track_caller]
    pub fn profile(&self, id: UserId) -> &Profile {
        self.user(id).profile.as_ref().expect("profile")
    }

    /// A number by E.164 text.
    #[track_caller]
    pub fn number(&self, e164: &str) -> &Number {
        self.state
            .numbers
            .get(&PhoneNumber::new(e164))
            .expect("number exists")
    }

    /// A fresh, valid mobile number.
    pub fn fresh_mobile(&mut self) -> String {
        self.next_phone += 1;
        phone(5_000 + self.next_phone)
    }

    /// A fresh email address.
    pub fn fresh_email(&mut self, name: &str) -> String {
        self.next_email += 1;
        format!(
            "{}.{}@northwind.example",
            name.to_lowercase().replace(' ', "."),
            self.next_email
        )
    }

    // -- builders ---------------------------------------------------------

    /// A sub-account of `parent`, created by the owner.
    pub fn account(&mut self, name: &str, parent: AccountId) -> AccountId {
        let d = self.ok(
            self.owner_actor(),
            Command::CreateAccount {
                name: name.into(),
                parent,
            },
        );
        match &d.events[..] {
            [Event::AccountCreated { account, .. }] => *account,
            other => panic!("unexpected {other:?}"),
        }
    }

    /// Invites one address with `grant`, as the owner.
    pub fn invite(&mut self, email: &str, grant: Grant) -> Invited {
        let d = self.ok(
            self.owner_actor(),
            Command::InviteUsers {
                emails: email.into(),
                grant,
            },
        );
        Self::invited(&d).remove(0)
    }

    /// The invitations a decision issued.
    pub fn invited(d: &Decision) -> Vec<Invited> {
        d.secrets
            .iter()
            .map(|s| match &s.purpose {
                SecretPurpose::Invitation {
                    invitation, user, ..
                } => Invited {
                    user: *user,
                    invitation: *invitation,
                    token: s.token.clone(),
                },
                p => panic!("not an invitation: {p:?}"),
            })
            .collect()
    }

    /// Accepts an email invitation with a complete profile.
    pub fn accept_complete(&mut self, token: &str, name: &str) -> Decision {
        let mobile = self.fresh_mobile();
        self.ok(
            Actor::System,
            Command::AcceptInvitation {
                token: token.into(),
                email: None,
                name: name.into(),
                mobile: Some(mobile),
                default_country: Some("US".into()),
            },
        )
    }

    /// Signs a user in on a device; returns the device id.
    pub fn sign_in(&mut self, user: UserId, device: &str) -> DeviceId {
        let d = self.ok(
            as_user(user),
            Command::SignIn {
                user,
                device_name: device.into(),
            },
        );
        d.events
            .iter()
            .find_map(|e| match e {
                Event::DeviceSignedIn { device, .. } => Some(*device),
                _ => None,
            })
            .expect("signed in")
    }

    /// An active user with a complete profile, granted `grant`: invited,
    /// accepted and signed in once.
    pub fn member(&mut self, name: &str, grant: Grant) -> UserId {
        let email = self.fresh_email(name);
        let inv = self.invite(&email, grant);
        self.accept_complete(&inv.token, name);
        let user = inv.user.expect("email invitation names its user");
        self.sign_in(user, "laptop");
        assert!(self.user(user).is_active());
        user
    }

    /// An active agent on `accounts`.
    pub fn agent(&mut self, name: &str, accounts: &[AccountId]) -> UserId {
        self.member(name, grant(agent_role(), accounts))
    }

    /// An active administrator (ManageUsers) on `accounts`.
    pub fn admin(&mut self, name: &str, accounts: &[AccountId]) -> UserId {
        self.member(name, grant(admin_role(), accounts))
    }

    /// An active team leader (ManageTeam) on `accounts`.
    pub fn leader(&mut self, name: &str, accounts: &[AccountId]) -> UserId {
        self.member(name, grant(leader_role(), accounts))
    }

    /// An active agency administrator.
    pub fn agency_admin(&mut self, name: &str) -> UserId {
        self.member(
            name,
            Grant {
                role: admin_role(),
                accounts: vec![],
                agency_admin: true,
                clients: vec![],
            },
        )
    }

    /// An active user who skipped the optional profile fields (no mobile, no
    /// country): incomplete under R-LIFE-04.
    pub fn incomplete_agent(&mut self, name: &str, accounts: &[AccountId]) -> UserId {
        self.incomplete_member(name, grant(agent_role(), accounts))
    }

    /// Like [`World::member`], but without mobile and country (incomplete under R-LIFE-04).
    pub fn incomplete_member(&mut self, name: &str, grant: Grant) -> UserId {
        let email = self.fresh_email(name);
        let inv = self.invite(&email, grant);
        self.ok(
            Actor::System,
            Command::AcceptInvitation {
                token: inv.token,
                email: None,
                name: name.into(),
                mobile: None,
                default_country: None,
            },
        );
        let user = inv.user.expect("user");
        self.sign_in(user, "phone");
        user
    }

    /// Adds a fresh number to `account`; returns its E.164 text.
    pub fn add_number(&mut self, account: AccountId) -> String {
        self.next_phone += 1;
        let n = phone(self.next_phone);
        self.ok(
            self.owner_actor(),
            Command::AddNumber {
                number: n.clone(),
                account,
            },
        );
        n
    }

    /// Adds a fresh number to `account` and assigns it to `user`.
    pub fn number_for(&mut self, account: AccountId, user: UserId) -> String {
        let n = self.add_number(account);
        self.ok(
            self.owner_actor(),
            Command::AssignNumber {
                number: n.clone(),
                user,
            },
        );
        n
    }

    /// Adds a fresh number to `account` and forwards it to `user`.
    pub fn forwarded_to(&mut self, account: AccountId, user: UserId) -> String {
        let n = self.add_number(account);
        self.ok(
            self.owner_actor(),
            Command::ForwardNumber {
                number: n.clone(),
                to: user,
            },
        );
        n
    }

    /// Makes `report` report to `leader`.
    pub fn reports_to(&mut self, report: UserId, leader: UserId) {
        self.ok(
            self.owner_actor(),
            Command::SetReportingLine {
                user: report,
                leader: Some(leader),
            },
        );
    }

    /// A work item of `kind` owned by `owner`.
    pub fn work(&mut self, kind: WorkKind, title: &str, owner: UserId) -> WorkItemId {
        let d = self.ok(
            self.owner_actor(),
            Command::CreateWorkItem {
                kind,
                title: title.into(),
                owner,
            },
        );
        match &d.events[..] {
            [Event::WorkItemCreated { item, .. }] => *item,
            other => panic!("unexpected {other:?}"),
        }
    }
}

/// The one blocker of an error (asserts there is exactly one).
#[track_caller]
pub fn only(err: &CommandError) -> &Blocker {
    assert_eq!(err.blockers.len(), 1, "expected one blocker, got {err}");
    &err.blockers[0]
}

/// Every event's JSON, concatenated: to search the log for text.
pub fn log_text(events: &[Event]) -> String {
    events
        .iter()
        .map(|e| serde_json::to_string(e).expect("events serialize"))
        .collect::<Vec<_>>()
        .join("\n")
}

/// The deletion acknowledgement with every consequence acknowledged.
pub const ACK: DeletionAcknowledgement = DeletionAcknowledgement::ALL;

/// A command service on a fresh memory store, with its clock.
pub mod svc {
    use super::*;
    use std::sync::Arc;
    use switchboard_core::service::{CommandRequest, CommandService, Handled, ServiceError};
    use switchboard_store_memory::MemoryStore;

    /// A service, its clock, and the organization it serves.
    pub struct Svc {
        /// The service.
        pub service: CommandService<MemoryStore>,
        /// The clock the service reads.
        pub clock: Arc<FixedClock>,
        /// Where command ids come from.
        pub ids: Arc<SequentialIds>,
        /// The organization.
        pub org: OrgId,
        /// The owner, once created.
        pub owner: UserId,
        /// The root account, once created.
        pub root: AccountId,
    }

    impl Svc {
        /// A service with the organization "Northwind" created by the system.
        pub async fn new() -> Self {
            let clock = Arc::new(FixedClock::new(start()));
            let ids = Arc::new(SequentialIds::new(7));
            let service = CommandService::new(
                MemoryStore::new(),
                clock.clone(),
                ids.clone(),
                Arc::new(SeededSecrets::new(7)),
            );
            let org = OrgId::from_uuid(ids.next_id());
            let mut s = Svc {
                service,
                clock,
                ids,
                org,
                owner: UserId::from_uuid(uuid::Uuid::nil()),
                root: AccountId::from_uuid(uuid::Uuid::nil()),
            };
            s.handle(
                Actor::System,
                Command::CreateOrganization {
                    name: "Northwind".into(),
                    root_account_name: "Northwind HQ".into(),
                    owner_email: "olivia@northwind.example".into(),
                    owner_name: "Olivia Owner".into(),
                    policies: None,
                },
            )
            .await
            .expect("created");
            let state = s.state().await;
            s.owner = state.primary_owner.expect("owner");
            s.root = state.root_account.expect("root");
            s
        }

        /// Handles a command under a fresh command id.
        pub async fn handle(
            &self,
            actor: Actor,
            command: Command,
        ) -> Result<Handled, ServiceError> {
            self.service
                .handle(CommandRequest::new(
                    self.org,
                    CommandId::from_uuid(self.ids.next_id()),
                    actor,
                    command,
                ))
                .await
        }

        /// Handles a command that must be accepted.
        pub async fn ok(&self, actor: Actor, command: Command) -> Handled {
            let name = command.name();
            match self.handle(actor, command).await {
                Ok(h) => h,
                Err(e) => panic!("{name} refused: {e}"),
            }
        }

        /// The cached state.
        pub async fn state(&self) -> Organization {
            self.service.state(self.org).await.expect("state")
        }

        /// The stream version in the store.
        pub async fn stream_version(&self) -> u64 {
            use switchboard_core::store::EventStore;
            self.service
                .store()
                .stream_version(self.org)
                .await
                .expect("version")
        }

        /// Invites one address as `actor` and returns the token and user.
        pub async fn invite(&self, actor: Actor, email: &str, grant: Grant) -> Invited {
            let h = self
                .ok(
                    actor,
                    Command::InviteUsers {
                        emails: email.into(),
                        grant,
                    },
                )
                .await;
            let d = Decision {
                events: h.events,
                secrets: h.secrets,
                report: None,
            };
            World::invited(&d).remove(0)
        }

        /// An active member with a complete profile.
        pub async fn member(&self, name: &str, mobile: u32, grant: Grant) -> UserId {
            let email = format!("{}@northwind.example", name.to_lowercase());
            let inv = self.invite(as_user(self.owner), &email, grant).await;
            self.ok(
                Actor::System,
                Command::AcceptInvitation {
                    token: inv.token,
                    email: None,
                    name: name.into(),
                    mobile: Some(phone(mobile)),
                    default_country: Some("US".into()),
                },
            )
            .await;
            let user = inv.user.expect("user");
            self.ok(
                as_user(user),
                Command::SignIn {
                    user,
                    device_name: "laptop".into(),
                },
            )
            .await;
            user
        }
    }
}
