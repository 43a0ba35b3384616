//! Reference-model test of the whole directory (issue 4): core's `decide` +
//! `evolve` as the system under test, the plain model of `model/mod.rs` as the
//! reference, driven by `proptest-state-machine`.
//!
//! After every step: core and the model agree on accept/refuse and on every
//! blocker of a refusal, by rule id and subject (the user, number, account,
//! ... it names: `subject` below; per row for bulk runs); core's state agrees
//! with the model's on every observable fact; the domain invariants hold on core's
//! state; and folding every event so far from scratch equals the live state.
//!
//! Case count: 2048 sequences of up to 60 steps by default (the whole file
//! takes about a minute in a debug build on 2 cores);
//! `PROPTEST_CASES=1000 cargo test -p switchboard-core --features proptest --test model_directory`
//! runs longer.

mod model;

use chrono::{DateTime, Duration, Utc};
use model::*;
use proptest::test_runner::{Config, TestCaseError, TestError, TestRunner};
use proptest_state_machine::{ReferenceStateMachine, StateMachineTest};
use std::collections::{BTreeMap, BTreeSet};
use switchboard_core::bulk::RowStatus;
use switchboard_core::decide::SecretPurpose;
use switchboard_core::*;
use uuid::Uuid;

/// The system under test: core's state, its log, and what the symbolic names mean.
/// `e` encoded for the store and decoded again, as a replay reads it.
fn stored_and_read_back(e: &Event) -> Event {
    let metadata = store::EventMetadata {
        actor: Actor::System,
        occurred_at: DateTime::UNIX_EPOCH,
        command_id: None,
        causation_id: None,
        correlation_id: None,
    };
    let new = codec::encode(e, EventId::from_uuid(Uuid::nil()), metadata).expect("encodes");
    let recorded = store::RecordedEvent {
        stream: OrgId::from_uuid(Uuid::nil()),
        version: 1,
        position: store::Position::new(1, 1),
        event_id: new.event_id,
        event_type: new.event_type,
        schema_version: new.schema_version,
        payload: new.payload,
        metadata: new.metadata,
    };
    codec::decode(&recorded).expect("decodes")
}

struct Sut {
    org: Organization,
    events: Vec<Event>,
    now: DateTime<Utc>,
    ids: SequentialIds,
    secrets: SeededSecrets,
    users: Vec<UserId>,
    accounts: Vec<AccountId>,
    invitations: Vec<InvitationId>,
    tokens: BTreeMap<InvitationId, String>,
    work: Vec<WorkItemId>,
    devices: Vec<(UserId, DeviceId)>,
}

/// An id no source ever mints (the ids of `SequentialIds` carry version 7).
fn nobody(i: usize) -> Uuid {
    Uuid::from_u128(0xDEAD_0000_0000_0000_0000_0000_0000_0000 | i as u128)
}

impl Sut {
    fn new() -> Self {
        let ids = SequentialIds::new(42);
        let org = Organization::empty(OrgId::from_uuid(ids.next_id()));
        let mut sut = Self {
            org,
            events: Vec::new(),
            now: model::start(),
            ids,
            secrets: SeededSecrets::new(7),
            users: Vec::new(),
            accounts: Vec::new(),
            invitations: Vec::new(),
            tokens: BTreeMap::new(),
            work: Vec::new(),
            devices: Vec::new(),
        };
        let create = Command::CreateOrganization {
            name: "Acme".into(),
            root_account_name: "Acme HQ".into(),
            owner_email: OWNER_EMAIL.into(),
            owner_name: "Olive Owner".into(),
            policies: None,
        };
        sut.run(Actor::System, &create)
            .expect("the organization is created");
        sut
    }

    fn user(&self, i: usize) -> UserId {
        self.users
            .get(i)
            .copied()
            .unwrap_or(UserId::from_uuid(nobody(i)))
    }
    fn account(&self, i: usize) -> AccountId {
        self.accounts
            .get(i)
            .copied()
            .unwrap_or(AccountId::from_uuid(nobody(i)))
    }
    fn invitation(&self, i: usize) -> InvitationId {
        self.invitations
            .get(i)
            .copied()
            .unwrap_or(InvitationId::from_uuid(nobody(i)))
    }
    fn item(&self, i: usize) -> WorkItemId {
        self.work
            .get(i)
            .copied()
            .unwrap_or(WorkItemId::from_uuid(nobody(i)))
    }
    fn role(r: R) -> RoleId {
        RoleId::new(r.slug())
    }
    fn grant(&self, g: &G) -> Grant {
        Grant {
            role: Self::role(g.role),
            accounts: g.accounts.iter().map(|a| self.account(*a)).collect(),
            agency_admin: g.admin,
            clients: g.clients.iter().map(|c| self.item(*c)).collect(),
        }
    }
    fn reassignment(&self, r: &Re) -> Reassignment {
        match r {
            Re::AllTo(u) => Reassignment::AllTo(self.user(*u)),
            Re::Each(p) => Reassignment::Each(
                p.iter()
                    .map(|(a, b)| (self.user(*a), self.user(*b)))
                    .collect(),
            ),
        }
    }

    fn actor(&self, a: A) -> Actor {
        match a {
            A::System => Actor::System,
            A::Support => Actor::Support {
                agent: "sam".into(),
            },
            A::U(i) => Actor::user(self.user(i)),
        }
    }

    /// The concrete command of a symbolic one.
    fn command(&self, c: &C) -> Command {
        let ack = |ok: bool| {
            if ok {
                DeletionAcknowledgement::ALL
            } else {
                DeletionAcknowledgement {
                    meetings_cancelled: false,
                    ..DeletionAcknowledgement::ALL
                }
            }
        };
        match c {
            C::CreateOrganization => Command::CreateOrganization {
                name: "Again".into(),
                root_account_name: "Again".into(),
                owner_email: "again@acme.example".into(),
                owner_name: "Again".into(),
                policies: None,
            },
            C::SetPolicies {
                ttl_days,
                reset_hours,
                self_or_admin,
                require_complete,
            } => Command::SetPolicies {
                policies: Policies {
                    invitation_ttl_days: *ttl_days,
                    password_reset_ttl_hours: *reset_hours,
                    profile_edit: if *self_or_admin {
                        ProfileEditPolicy::SelfOrAdmin
                    } else {
                        ProfileEditPolicy::SelfOnly
                    },
                    require_complete_profile: *require_complete,
                },
            },
            C::TransferPrimaryOwnership { to } => {
                Command::TransferPrimaryOwnership { to: self.user(*to) }
            }
            C::CreateAccount { parent } => Command::CreateAccount {
                name: "Branch".into(),
                parent: self.account(*parent),
            },
            C::DefineRole {
                role,
                invalid_slug,
                permissions,
            } => Command::DefineRole {
                role: if *invalid_slug {
                    RoleId::new("Not A Slug")
                } else {
                    Self::role(*role)
                },
                name: "Custom".into(),
                permissions: permissions.clone(),
            },
            C::ProvisionUser {
                sign_in,
                email,
                name,
                mobile,
                country,
                leader,
                deactivated,
                grant,
            } => Command::ProvisionUser {
                sign_in_name: sign_in.map(|n| n.text()),
                email: email.map(|e| e.text()),
                name: name.map(|ok| {
                    if ok {
                        format!("Person {}", self.users.len())
                    } else {
                        "  ".into()
                    }
                }),
                mobile: mobile.map(|m| m.text()),
                default_country: country.map(str::to_owned),
                job_title: None,
                external_id: None,
                reports_to: leader.map(|l| self.user(l)),
                deactivated: *deactivated,
                grant: self.grant(grant),
            },
            C::InviteUsers { emails, grant } => Command::InviteUsers {
                emails: emails.iter().map(Em::text).collect::<Vec<_>>().join(", "),
                grant: self.grant(grant),
            },
            C::CreateInvitationLink { grant } => Command::CreateInvitationLink {
                grant: self.grant(grant),
            },
            C::Reinvite { invitation } => Command::Reinvite {
                invitation: self.invitation(*invitation),
            },
            C::RevokeInvitation { invitation } => Command::RevokeInvitation {
                invitation: self.invitation(*invitation),
            },
            C::ExpireInvitations { limit } => Command::ExpireInvitations { limit: *limit },
            C::AcceptInvitation {
                invitation,
                email,
                name_ok,
                mobile,
                country,
            } => Command::AcceptInvitation {
                token: invitation
                    .and_then(|i| self.invitations.get(i))
                    .and_then(|id| self.tokens.get(id).cloned())
                    .unwrap_or_else(|| "0".repeat(64)),
                email: email.map(|e| e.text()),
                name: if *name_ok {
                    "Ivy Invitee".into()
                } else {
                    "   ".into()
                },
                mobile: mobile.map(|m| m.text()),
                default_country: country.map(str::to_owned),
            },
            C::SignIn { user } => Command::SignIn {
                user: self.user(*user),
                device_name: "Pixel".into(),
            },
            C::SignOutDevice { user, device } => Command::SignOutDevice {
                user: self.user(*user),
                device: self
                    .devices
                    .get(*device)
                    .map(|d| d.1)
                    .unwrap_or(DeviceId::from_uuid(nobody(*device))),
            },
            C::UpdateProfile {
                user,
                name,
                email,
                mobile,
                country,
                notifications,
            } => Command::UpdateProfile {
                user: self.user(*user),
                name: name.map(|ok| if ok { "Renamed".into() } else { "".into() }),
                email: email.map(|e| e.text()),
                mobile: mobile.map(|m| match m {
                    Ed::Set(m) => Edit::Set(m.text()),
                    Ed::Clear => Edit::Clear,
                }),
                default_country: country.map(str::to_owned),
                notifications: notifications.then(|| NotificationPreferences {
                    desktop: false,
                    browser_badge: true,
                    sound: false,
                }),
            },
            C::SetExternalId { user, external_id } => Command::SetExternalId {
                user: self.user(*user),
                external_id: match external_id {
                    Ed::Set(ok) => Edit::Set(if *ok {
                        format!("00u{user}Idp")
                    } else {
                        " ".into()
                    }),
                    Ed::Clear => Edit::Clear,
                },
            },
            C::SetSignInName { user, sign_in_name } => Command::SetSignInName {
                user: self.user(*user),
                sign_in_name: match sign_in_name {
                    Ed::Set(n) => Edit::Set(n.text()),
                    Ed::Clear => Edit::Clear,
                },
            },
            C::UpdateAdminFields {
                user,
                job_title,
                picture,
                admin_access,
            } => Command::UpdateAdminFields {
                user: self.user(*user),
                job_title: job_title.map(|e| match e {
                    Ed::Set(ok) => Edit::Set(if ok { "Lead".into() } else { " ".into() }),
                    Ed::Clear => Edit::Clear,
                }),
                picture: picture.map(|e| match e {
                    Ed::Set(ok) => Edit::Set(if ok {
                        "https://img.example/p.png".into()
                    } else {
                        "ftp://x".into()
                    }),
                    Ed::Clear => Edit::Clear,
                }),
                admin_access: *admin_access,
            },
            C::RequestPasswordReset { user } => Command::RequestPasswordReset {
                user: self.user(*user),
            },
            C::GrantAccess {
                user,
                role,
                accounts,
            } => Command::GrantAccess {
                user: self.user(*user),
                role: Self::role(*role),
                accounts: accounts.iter().map(|a| self.account(*a)).collect(),
            },
            C::ChangeRole {
                user,
                account,
                role,
            } => Command::ChangeRole {
                user: self.user(*user),
                account: self.account(*account),
                role: Self::role(*role),
            },
            C::RemoveAccess { user, accounts } => Command::RemoveAccess {
                user: self.user(*user),
                accounts: accounts.iter().map(|a| self.account(*a)).collect(),
            },
            C::RemoveFromAllAccounts { user } => Command::RemoveFromAllAccounts {
                user: self.user(*user),
            },
            C::AddNumber { number, account } => Command::AddNumber {
                number: number.text(),
                account: self.account(*account),
            },
            C::AssignNumber { number, user } => Command::AssignNumber {
                number: number.text(),
                user: self.user(*user),
            },
            C::UnassignNumber { number } => Command::UnassignNumber {
                number: number.text(),
            },
            C::ForwardNumber { number, to } => Command::ForwardNumber {
                number: number.text(),
                to: self.user(*to),
            },
            C::StopForwarding { number } => Command::StopForwarding {
                number: number.text(),
            },
            C::ReleaseNumber { number } => Command::ReleaseNumber {
                number: number.text(),
            },
            C::SetReportingLine { user, leader } => Command::SetReportingLine {
                user: self.user(*user),
                leader: leader.map(|l| self.user(l)),
            },
            C::ReassignReports { leader, to } => Command::ReassignReports {
                leader: self.user(*leader),
                to: self.reassignment(to),
            },
            C::CreateWorkItem { kind, owner } => Command::CreateWorkItem {
                kind: *kind,
                title: "Item".into(),
                owner: self.user(*owner),
            },
            C::TransferWork {
                from,
                to,
                selection,
            } => Command::TransferWork {
                from: self.user(*from),
                to: self.user(*to),
                selection: match selection {
                    Sel::All => WorkSelection::All,
                    Sel::Kinds(k) => WorkSelection::Kinds(k.clone()),
                    Sel::Items(i) => {
                        WorkSelection::Items(i.iter().map(|w| self.item(*w)).collect())
                    }
                },
            },
            C::ReassignClients { assignments } => Command::ReassignClients {
                assignments: assignments
                    .iter()
                    .map(|(w, u)| (self.item(*w), self.user(*u)))
                    .collect(),
            },
            C::Deactivate {
                user,
                forward_to,
                reassign,
            } => Command::Deactivate {
                user: self.user(*user),
                forward_numbers_to: forward_to.map(|u| self.user(u)),
                reassign_reports: reassign.as_ref().map(|r| self.reassignment(r)),
            },
            C::Reactivate { user } => Command::Reactivate {
                user: self.user(*user),
            },
            C::Delete {
                user,
                acknowledged,
                forward_to,
                reassign,
            } => Command::Delete {
                user: self.user(*user),
                acknowledgement: ack(*acknowledged),
                forward_numbers_to: forward_to.map(|u| self.user(u)),
                reassign_reports: reassign.as_ref().map(|r| self.reassignment(r)),
            },
            C::Offboard {
                user,
                unassign_numbers,
                forward_to,
                reassign,
                transfer_work_to,
                delete,
            } => Command::Offboard(Offboarding {
                user: self.user(*user),
                unassign_numbers: *unassign_numbers,
                forward_numbers_to: forward_to.map(|u| self.user(u)),
                reassign_reports: reassign.as_ref().map(|r| self.reassignment(r)),
                transfer_work_to: transfer_work_to.map(|u| self.user(u)),
                end: match delete {
                    None => OffboardEnd::Deactivate,
                    Some(ok) => OffboardEnd::Delete(ack(*ok)),
                },
            }),
            C::BulkUpdate { rows, partial } => {
                let mut csv =
                    String::from("email,deactivated,name,mobile,default_country,job_title\n");
                for r in rows {
                    csv.push_str(&format!(
                        "{},{},{},{},{},{}\n",
                        r.email.map(|e| e.text()).unwrap_or_default(),
                        r.deactivated,
                        if r.name { "Rowan Row" } else { "" },
                        r.mobile.map(|m| m.text()).unwrap_or_default(),
                        r.country.unwrap_or_default(),
                        if r.job_title { "Boss" } else { "" },
                    ));
                }
                Command::BulkUpdate {
                    csv,
                    mode: if *partial {
                        BulkMode::Partial
                    } else {
                        BulkMode::AllOrNothing
                    },
                }
            }
        }
    }

    /// Decides and, when accepted, folds the events in and learns the new names.
    fn run(&mut self, actor: Actor, cmd: &Command) -> Result<Decision, CommandError> {
        let ctx = Context {
            actor,
            now: self.now,
            command_id: CommandId::from_uuid(self.ids.next_id()),
            ids: &self.ids,
            secrets: &self.secrets,
        };
        let d = decide(&self.org, cmd, &ctx)?;
        for s in &d.secrets {
            if let SecretPurpose::Invitation { invitation, .. } = &s.purpose {
                self.tokens.insert(*invitation, s.token.clone());
            }
        }
        for e in &d.events {
            evolve(&mut self.org, e);
            // The log keeps the event as the store would: encoded, then read
            // back through the codec, so that replaying it (the invariant
            // below) checks the stored form, not the event we already folded.
            self.events.push(stored_and_read_back(e));
            match e {
                Event::OrganizationCreated {
                    root_account,
                    owner,
                    ..
                } => {
                    self.accounts.push(*root_account);
                    self.users.push(*owner);
                }
                Event::AccountCreated { account, .. } => self.accounts.push(*account),
                Event::UserInvited {
                    user, invitation, ..
                } => {
                    self.users.push(*user);
                    self.invitations.push(*invitation);
                }
                Event::InvitationLinkCreated { invitation, .. }
                | Event::UserReinvited { invitation, .. } => self.invitations.push(*invitation),
                Event::InvitationAccepted {
                    user,
                    new_user: true,
                    ..
                }
                | Event::UserProvisioned { user, .. } => self.users.push(*user),
                Event::WorkItemCreated { item, .. } => self.work.push(*item),
                Event::DeviceSignedIn { user, device, .. } => self.devices.push((*user, *device)),
                _ => {}
            }
        }
        Ok(d)
    }
}

// ---------------------------------------------------------------------------
// Refusals in the model's terms: (rule id, subject) for every blocker
// ---------------------------------------------------------------------------

/// The index of a symbolic name in `known`, or the `i` of `nobody(i)`.
fn index_of(known: &[Uuid], id: Uuid, what: &str) -> usize {
    if let Some(i) = known.iter().position(|k| *k == id) {
        return i;
    }
    let low = id.as_u128() & 0xFFFF_FFFF;
    assert_eq!(nobody(low as usize), id, "{what} {id} has no symbolic name");
    low as usize
}

impl Sut {
    fn user_ix(&self, id: UserId) -> usize {
        let known: Vec<Uuid> = self.users.iter().map(|u| u.as_uuid()).collect();
        index_of(&known, id.as_uuid(), "user")
    }
    fn account_ix(&self, id: AccountId) -> usize {
        let known: Vec<Uuid> = self.accounts.iter().map(|a| a.as_uuid()).collect();
        index_of(&known, id.as_uuid(), "account")
    }
    fn invitation_ix(&self, id: InvitationId) -> usize {
        let known: Vec<Uuid> = self.invitations.iter().map(|i| i.as_uuid()).collect();
        index_of(&known, id.as_uuid(), "invitation")
    }
    fn item_ix(&self, id: WorkItemId) -> usize {
        let known: Vec<Uuid> = self.work.iter().map(|w| w.as_uuid()).collect();
        index_of(&known, id.as_uuid(), "work item")
    }
    fn device_ix(&self, id: DeviceId) -> usize {
        let known: Vec<Uuid> = self.devices.iter().map(|d| d.1.as_uuid()).collect();
        index_of(&known, id.as_uuid(), "device")
    }
    fn actor_ix(&self, a: &Actor) -> A {
        match a {
            Actor::System => A::System,
            Actor::Support { .. } => A::Support,
            Actor::User { id } => A::U(self.user_ix(*id)),
        }
    }
    fn users_ix<'a>(&self, ids: impl IntoIterator<Item = &'a UserId>) -> BTreeSet<usize> {
        ids.into_iter().map(|u| self.user_ix(*u)).collect()
    }
}

/// The pool index of a number (every number the transitions name is one).
fn number_ix(n: &PhoneNumber) -> u8 {
    (0..NUMBER_POOL)
        .find(|k| Num::N(*k, false).text() == n.as_str())
        .unwrap_or_else(|| panic!("{n} is not a pool number"))
}

fn numbers_ix(ns: &[PhoneNumber]) -> BTreeSet<u8> {
    ns.iter().map(number_ix).collect()
}

/// What core's blocker is about, in the model's names. Every variant is
/// mapped: a new one does not compile until it is. `AlreadyCreated`,
/// `UnknownToken` and `DeletionNotAcknowledged` carry no subject, so they are
/// compared by rule id alone (`S::Nothing`); the one exception by choice is
/// `ExpiryOutOfRange`, whose only subject is the caller's clock (an instant
/// the model never reaches), also compared by rule id alone.
/// `BulkRowsRejected` is compared row by row in `observed`, never here.
fn subject(sut: &Sut, b: &Blocker) -> S {
    use Blocker::*;
    let field = |f: &str| S::Field(f.to_owned());
    match b {
        NotFound { missing } => match missing {
            Missing::Organization => S::Org,
            Missing::User(u) => S::User(sut.user_ix(*u)),
            Missing::Account(a) => S::Account(sut.account_ix(*a)),
            Missing::Role(r) => S::Role(r.as_str().to_owned()),
            Missing::Number(n) => S::Number(number_ix(n)),
            Missing::Invitation(i) => S::Invitation(sut.invitation_ix(*i)),
            Missing::WorkItem(w) => S::Work(sut.item_ix(*w)),
            Missing::Device(d) => S::Device(sut.device_ix(*d)),
            // `Missing` is `#[non_exhaustive]`: a new kind must be mapped here.
            other => panic!("unmapped missing entity {other:?}"),
        },
        AlreadyCreated | UnknownToken | DeletionNotAcknowledged => S::Nothing,
        // The input over its bound, named as core names it.
        LimitExceeded { what, .. } | TooMuchWork { what, .. } => field(what),
        // Malformed input: the field it is in.
        Invalid { field: f, .. } => field(f),
        PermissionDenied { actor, account, .. } => {
            S::Denied(sut.actor_ix(actor), account.map(|a| sut.account_ix(a)))
        }
        AdminManagedField {
            actor,
            user,
            field: f,
            account,
        } => S::AdminField(
            sut.actor_ix(actor),
            sut.user_ix(*user),
            *f,
            account.map(|a| sut.account_ix(a)),
        ),
        ActorNotActive { actor } | NotPrimaryOwner { actor } => S::Actor(sut.actor_ix(actor)),
        OnlySelf { user }
        | SelfAction { user }
        | PrimaryOwner { user }
        | ManagesTeamInBulk { user }
        | WrongStatus { user, .. }
        | NotATeamLeader { user }
        | AgencyAdministrator { user }
        | TargetIsSubject { user } => S::User(sut.user_ix(*user)),
        // The user who has the address already (R-INV-06, R-USR-01).
        EmailInUse { user, .. } => S::User(sut.user_ix(*user)),
        // The user who signs in with the name or has it as their email (R-USR-03).
        SignInNameInUse { user } => S::User(sut.user_ix(*user)),
        DuplicateEmail { email } => S::Email(email.trim().to_lowercase()),
        InvitationNotPending { invitation, .. } | InvitationExpired { invitation } => {
            S::Invitation(sut.invitation_ix(*invitation))
        }
        NoAccess { user, account, .. }
        | AlreadyMember { user, account }
        | NotMember { user, account } => S::UserOn(sut.user_ix(*user), sut.account_ix(*account)),
        NumberExists { number }
        | NumberNotAssigned { number }
        | NumberClaimedElsewhere { number } => S::Number(number_ix(number)),
        NumberAssigned { number, user } => S::NumberOf(number_ix(number), sut.user_ix(*user)),
        NumbersStillAssigned { user, numbers, .. } | ForwardTarget { user, numbers } => {
            S::UserNumbers(sut.user_ix(*user), numbers_ix(numbers))
        }
        HasDirectReports { leader, reports } => {
            S::Reports(sut.user_ix(*leader), sut.users_ix(reports))
        }
        IncompleteReassignment {
            leader,
            unassigned,
            not_reports,
        } => S::Reassignment(
            sut.user_ix(*leader),
            sut.users_ix(unassigned),
            sut.users_ix(not_reports),
        ),
        ReportingCycle { user, leader } => S::Line(sut.user_ix(*user), sut.user_ix(*leader)),
        IncompleteProfile { user, missing } => {
            S::Incomplete(sut.user_ix(*user), missing.iter().copied().collect())
        }
        NotOwner { item, owner } => S::WorkOf(sut.item_ix(*item), sut.user_ix(*owner)),
        NotAClient { item } => S::Work(sut.item_ix(*item)),
        BuiltInRole { role } => S::Role(role.as_str().to_owned()),
        BulkRowsRejected { .. } => panic!("a bulk refusal is compared row by row"),
        ExpiryOutOfRange { .. } => S::Nothing,
        // `Blocker` is `#[non_exhaustive]`, so the compiler no longer lists a
        // new variant here: the comparison fails loudly instead of hiding it.
        other => panic!("unmapped blocker {other:?}"),
    }
}

/// Every blocker as (rule id, subject).
fn refusal(sut: &Sut, blockers: &[Blocker]) -> Refusal {
    blockers
        .iter()
        .map(|b| (b.rule(), subject(sut, b)))
        .collect()
}

fn row_status(sut: &Sut, s: &RowStatus) -> RowExpect {
    match s {
        RowStatus::Applied { .. } => RowExpect::Applied,
        RowStatus::Unchanged => RowExpect::Unchanged,
        RowStatus::Rejected { blockers } => RowExpect::Rejected(refusal(sut, blockers)),
    }
}

/// Core's answer in the model's terms.
fn observed(sut: &Sut, result: &Result<Decision, CommandError>, bulk: bool) -> Expect {
    match result {
        Ok(d) if bulk => Expect::Bulk {
            refused: false,
            rows: d
                .report
                .as_ref()
                .map(|r| r.rows.iter().map(|r| row_status(sut, &r.status)).collect())
                .unwrap_or_default(),
        },
        Ok(_) => Expect::Accepted,
        Err(e) => match e.blockers.as_slice() {
            [Blocker::BulkRowsRejected { rows }] if bulk => Expect::Bulk {
                refused: true,
                // Only the rejected rows are listed: compare those, by row number.
                rows: rows.iter().map(|r| row_status(sut, &r.status)).collect(),
            },
            _ => Expect::Refused(refusal(sut, &e.blockers)),
        },
    }
}

/// The model's expectation in the form core reports it (a refused bulk run lists only rejected rows).
fn expected_form(e: &Expect) -> Expect {
    match e {
        Expect::Bulk {
            refused: true,
            rows,
        } => Expect::Bulk {
            refused: true,
            rows: rows
                .iter()
                .filter(|r| matches!(r, RowExpect::Rejected(_)))
                .cloned()
                .collect(),
        },
        other => other.clone(),
    }
}

// ---------------------------------------------------------------------------
// Invariants on core's state
// ---------------------------------------------------------------------------

fn check_invariants(s: &Organization) {
    // R-NUM-01, R-NUM-04, R-NUM-06: numbers and their users.
    for (key, n) in &s.numbers {
        assert_eq!(key, &n.number, "number keyed by its E.164 (R-NUM-06)");
        assert!(
            s.accounts.contains_key(&n.account),
            "number {key} held by an existing account"
        );
        if let Some(u) = n.assigned_to {
            let user = &s.users[&u];
            assert!(
                user.is_active(),
                "R-NUM-01: {key} assigned to {u}, who is {}",
                user.status
            );
            assert!(
                user.has_access(n.account),
                "R-NUM-01: {key} assigned to {u} without access to its account"
            );
            assert!(
                user.assigned_numbers.contains(key),
                "index assigned_numbers lacks {key}"
            );
        }
        if let Some(u) = n.forwarded_to {
            let user = &s.users[&u];
            assert!(
                user.is_active(),
                "R-NUM-04: {key} forwarded to {u}, who is {}",
                user.status
            );
            assert!(
                user.has_access(n.account),
                "R-NUM-04: {key} forwarded to {u} without access"
            );
            assert!(
                user.forwarded_numbers.contains(key),
                "index forwarded_numbers lacks {key}"
            );
        }
        let orphan = n.ever_assigned && n.assigned_to.is_none() && n.forwarded_to.is_none();
        assert_eq!(
            orphan,
            s.orphaned_index().contains(key),
            "R-NUM-03: orphaned report of {key}"
        );
    }
    for o in s.orphaned_index() {
        assert!(
            s.numbers.contains_key(o),
            "R-NUM-03: orphaned {o} is not a number of the organization"
        );
    }
    // Exactly one primary owner, active (R-LIFE-03).
    let owner = s.primary_owner.expect("a primary owner");
    assert!(
        s.user(owner).is_some_and(User::is_active),
        "R-LIFE-03: the primary owner is active"
    );
    // Unique emails among live users (R-USR-01), and the email index;
    // unique sign-in names, none another user's email (R-USR-03), and the
    // sign-in index.
    let mut by_email = BTreeMap::new();
    let mut by_sign_in = BTreeMap::new();
    for u in s.users.values() {
        if u.status == UserStatus::Deleted {
            // R-LIFE-06: nothing personal left, no access, no team.
            assert!(
                u.profile.is_none(),
                "R-LIFE-06: deleted {} keeps a profile",
                u.id
            );
            assert!(
                u.memberships.is_empty() && !u.agency_admin,
                "deleted {} keeps access",
                u.id
            );
            assert!(u.devices.is_empty(), "deleted {} keeps devices", u.id);
            assert!(
                u.assigned_numbers.is_empty() && u.forwarded_numbers.is_empty(),
                "R-NUM-02: deleted {} keeps numbers",
                u.id
            );
            continue;
        }
        assert!(u.profile.is_some(), "a live user has a profile");
        // A user provisioned without an email has none (R-USR-04).
        if let Some(email) = u.email().map(str::to_lowercase) {
            assert!(
                by_email.insert(email.clone(), u.id).is_none(),
                "R-USR-01: {email} held twice"
            );
        }
        if let Some(name) = u.profile.as_ref().and_then(|p| p.sign_in_name.as_deref()) {
            let key = name.to_lowercase();
            assert!(
                by_sign_in.insert(key.clone(), u.id).is_none(),
                "R-USR-03: {key} held twice"
            );
        }
    }
    assert_eq!(s.email_index(), &by_email, "email index");
    assert_eq!(s.sign_in_index(), &by_sign_in, "sign-in index");
    for (name, holder) in &by_sign_in {
        assert!(
            by_email.get(name).is_none_or(|u| u == holder),
            "R-USR-03: {name} is one user's sign-in name and another's email"
        );
    }
    // R-LIFE-01: only an active user has live sessions or a reset token.
    for u in s.users.values() {
        if !u.is_active() {
            assert!(
                u.devices.is_empty(),
                "R-LIFE-01: {} is {} with live sessions",
                u.id,
                u.status
            );
            assert!(
                u.password_reset.is_none(),
                "R-LIFE-01: {} is {} with a reset token",
                u.id,
                u.status
            );
        }
    }
    // Per-user indexes against the entities they index.
    for u in s.users.values() {
        for n in &u.assigned_numbers {
            assert_eq!(
                s.numbers.get(n).and_then(|n| n.assigned_to),
                Some(u.id),
                "assigned_numbers of {}",
                u.id
            );
        }
        for n in &u.forwarded_numbers {
            assert_eq!(
                s.numbers.get(n).and_then(|n| n.forwarded_to),
                Some(u.id),
                "forwarded_numbers of {}",
                u.id
            );
        }
        let reports: BTreeSet<UserId> = s
            .users
            .values()
            .filter(|r| r.reports_to == Some(u.id))
            .map(|r| r.id)
            .collect();
        assert_eq!(
            u.direct_reports,
            VecSet::from(reports.clone()),
            "direct_reports of {}",
            u.id
        );
        if !reports.is_empty() {
            // R-TEAM-01/02: a leader is an active holder of ManageTeam.
            assert!(u.is_active(), "R-TEAM-02: leader {} is {}", u.id, u.status);
            assert!(
                s.holds_anywhere(u, Permission::ManageTeam),
                "R-TEAM-01: leader {} lacks ManageTeam",
                u.id
            );
        }
        // No reporting cycle (R-TEAM-01).
        let mut seen = BTreeSet::new();
        let mut cur = u.reports_to;
        while let Some(c) = cur {
            assert!(
                c != u.id && seen.insert(c),
                "R-TEAM-01: reporting cycle through {}",
                u.id
            );
            cur = s.users.get(&c).and_then(|l| l.reports_to);
        }
        for a in u.memberships.keys() {
            assert!(
                s.accounts
                    .get(a)
                    .is_some_and(|acc| acc.members.contains(&u.id)),
                "members of {a} lack {}",
                u.id
            );
        }
        assert_eq!(
            u.agency_admin,
            s.agency_admins().contains(&u.id),
            "agency_admins index for {}",
            u.id
        );
        for w in &u.work {
            assert_eq!(
                s.work_items.get(w).map(|w| w.owner),
                Some(u.id),
                "work index of {}",
                u.id
            );
        }
    }
    for w in s.work_items.values() {
        assert!(
            s.users
                .get(&w.owner)
                .is_some_and(|u| u.work.contains(&w.id)),
            "owner index of {}",
            w.id
        );
    }
    for a in s.accounts.values() {
        for m in &a.members {
            assert!(
                s.users
                    .get(m)
                    .is_some_and(|u| u.memberships.contains_key(&a.id)),
                "member {m} of {} without membership",
                a.id
            );
        }
        if let Some(p) = a.parent {
            assert!(
                s.accounts
                    .get(&p)
                    .is_some_and(|p| p.children.contains(&a.id)),
                "children of {p}"
            );
        }
    }
    let pending: BTreeSet<_> = s
        .invitations
        .values()
        .filter(|i| i.status == InvitationStatus::Pending)
        .map(|i| (i.expires_at, i.id))
        .collect();
    assert_eq!(s.expiry_index(), &pending, "expiry index");
    for (h, id) in s.token_index() {
        assert_eq!(
            s.invitations.get(&id).map(|i| &i.token_hash),
            Some(h),
            "token index"
        );
    }
}

/// Core's state agrees with the model's on every fact the model keeps.
fn check_agreement(sut: &Sut, m: &Model) {
    let s = &sut.org;
    assert_eq!(sut.users.len(), m.users.len(), "number of users");
    assert_eq!(s.primary_owner, Some(sut.user(m.owner)), "primary owner");
    assert_eq!(s.policies, m.policies, "policies");
    assert_eq!(sut.accounts.len(), m.accounts.len(), "number of accounts");
    for (i, parent) in m.accounts.iter().enumerate() {
        assert_eq!(
            s.accounts[&sut.account(i)].parent,
            parent.map(|p| sut.account(p)),
            "parent of account {i}"
        );
    }
    let roles: BTreeMap<String, (bool, BTreeSet<Permission>)> = s
        .roles
        .values()
        .map(|r| {
            (
                r.id.as_str().to_owned(),
                (r.built_in, r.permissions.clone()),
            )
        })
        .collect();
    assert_eq!(roles, m.roles, "roles");
    let acc_ix: BTreeMap<AccountId, usize> = sut
        .accounts
        .iter()
        .enumerate()
        .map(|(i, a)| (*a, i))
        .collect();
    let user_ix: BTreeMap<UserId, usize> =
        sut.users.iter().enumerate().map(|(i, u)| (*u, i)).collect();
    for (i, mu) in m.users.iter().enumerate() {
        let u = &s.users[&sut.user(i)];
        let p = u.profile.as_ref();
        let core = MUser {
            status: u.status,
            email: u.email().map(str::to_lowercase),
            sign_in: p.and_then(|p| p.sign_in_name.as_deref().map(str::to_lowercase)),
            has_name: p.is_some_and(|p| p.name.is_some()),
            has_mobile: p.is_some_and(|p| p.mobile.is_some()),
            has_country: p.is_some_and(|p| p.default_country.is_some()),
            memberships: u
                .memberships
                .iter()
                .map(|(a, r)| (acc_ix[a], r.as_str().to_owned()))
                .collect(),
            admin: u.agency_admin,
            leader: u.reports_to.map(|l| user_ix[&l]),
            devices: u
                .devices
                .keys()
                .map(|d| {
                    sut.devices
                        .iter()
                        .position(|x| x.1 == *d)
                        .expect("known device")
                })
                .collect(),
            invitation: u.invitation.map(|x| {
                sut.invitations
                    .iter()
                    .position(|y| *y == x)
                    .expect("known invitation")
            }),
            accepted: u.invitation_accepted,
        };
        assert_eq!(&core, mu, "user {i}");
    }
    let numbers: BTreeMap<u8, MNum> = s
        .numbers
        .values()
        .map(|n| {
            (
                number_ix(&n.number),
                MNum {
                    account: acc_ix[&n.account],
                    assigned: n.assigned_to.map(|u| user_ix[&u]),
                    forwarded: n.forwarded_to.map(|u| user_ix[&u]),
                    ever_assigned: n.ever_assigned,
                },
            )
        })
        .collect();
    assert_eq!(numbers, m.numbers, "numbers");
    assert_eq!(
        sut.invitations.len(),
        m.invitations.len(),
        "number of invitations"
    );
    for (i, mi) in m.invitations.iter().enumerate() {
        let inv = &s.invitations[&sut.invitation(i)];
        assert_eq!(
            (inv.status, inv.expires_at),
            (mi.status, mi.expires),
            "invitation {i}"
        );
        assert_eq!(
            inv.user.map(|u| user_ix[&u]),
            mi.user,
            "invitee of invitation {i}"
        );
    }
    assert_eq!(sut.work.len(), m.work.len(), "number of work items");
    for (i, mw) in m.work.iter().enumerate() {
        let w = &s.work_items[&sut.item(i)];
        assert_eq!(
            (w.kind, user_ix[&w.owner], w.cancelled),
            (mw.kind, mw.owner, mw.cancelled),
            "work item {i}"
        );
    }
}

// ---------------------------------------------------------------------------
// The state-machine test
// ---------------------------------------------------------------------------

type Tally = BTreeMap<&'static str, (usize, usize, BTreeSet<RuleId>)>;

thread_local! {
    /// Per command name: accepted, refused, and the rules seen refusing it.
    static TALLY: std::cell::RefCell<Tally> = const { std::cell::RefCell::new(BTreeMap::new()) };
}

struct CoreUnderTest<const BROKEN: bool>;

impl<const BROKEN: bool> StateMachineTest for CoreUnderTest<BROKEN> {
    type SystemUnderTest = Sut;
    type Reference = Directory<BROKEN>;

    fn init_test(_: &Model) -> Sut {
        let mut sut = Sut::new();
        for t in opening() {
            if let T::Cmd(a, c) = &t {
                let (actor, cmd) = (sut.actor(*a), sut.command(c));
                sut.run(actor, &cmd)
                    .unwrap_or_else(|e| panic!("opening step {t:?}: {e}"));
            }
        }
        sut
    }

    fn apply(mut sut: Sut, m: &Model, t: T) -> Sut {
        match &t {
            T::AdvanceDays(d) => sut.now += Duration::days(i64::from(*d)),
            T::Cmd(a, c) => {
                let (actor, cmd) = (sut.actor(*a), sut.command(c));
                let before = sut.org.clone();
                let result = sut.run(actor, &cmd);
                if result.is_err() {
                    assert_eq!(sut.org, before, "a refused command changes nothing");
                }
                TALLY.with(|t| {
                    let mut t = t.borrow_mut();
                    let e = t.entry(cmd.name()).or_default();
                    match &result {
                        Ok(_) => e.0 += 1,
                        Err(err) => {
                            e.1 += 1;
                            e.2.extend(err.rules());
                        }
                    }
                });
                let got = observed(&sut, &result, matches!(c, C::BulkUpdate { .. }));
                let want = expected_form(m.last.as_ref().expect("the model answered"));
                assert_eq!(
                    got, want,
                    "core and the model disagree on {t:?}\ncore said: {result:?}"
                );
            }
        }
        sut
    }

    fn check_invariants(sut: &Sut, m: &Model) {
        check_invariants(&sut.org);
        check_agreement(sut, m);
        assert_eq!(
            fold(sut.org.id, &sut.events),
            sut.org,
            "replaying the stored log gives the live state"
        );
    }
}

/// Cases of the main property by default: about a minute for the whole
/// suite in a debug build on 2 cores. `PROPTEST_CASES` overrides it (read by
/// `Config::default()`), e.g. `PROPTEST_CASES=20000` for a long soak.
const DEFAULT_CASES: u32 = 2048;

fn config() -> Config {
    let default = Config::default();
    let cases = if std::env::var_os("PROPTEST_CASES").is_some() {
        default.cases
    } else {
        DEFAULT_CASES
    };
    Config {
        cases,
        max_shrink_iters: 4096,
        failure_persistence: None,
        ..default
    }
}

proptest_state_machine::prop_state_machine! {
    #![proptest_config(config())]

    /// Core agrees with the reference model on every command, keeps every
    /// invariant, and its log replays to its state.
    #[test]
    fn core_agrees_with_the_reference_model(sequential 1..60 => CoreUnderTest<false>);
}

/// Shrinking demo: a model that forgets R-NUM-02 (deleting a user who still
/// has numbers) disagrees with core; the failure shrinks to a short, readable
/// sequence of steps after the opening.
#[test]
fn r_num_02_a_model_that_forgets_it_fails_with_a_short_shrunk_sequence() {
    let mut runner = TestRunner::new(Config {
        cases: 64,
        failure_persistence: None,
        ..Config::default()
    });
    let strategy = Directory::<true>::sequential_strategy(1..40);
    let result = runner.run(&strategy, |(init, transitions, seen)| {
        let outcome = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            CoreUnderTest::<true>::test_sequential(Config::default(), init, transitions, seen)
        }));
        outcome.map_err(|_| TestCaseError::fail("core and the broken model disagree"))
    });
    match result {
        Err(TestError::Fail(_, (_, transitions, _))) => {
            println!("shrunk to {} step(s) after the opening:", transitions.len());
            for t in &transitions {
                println!("  {t:?}");
            }
            assert!(
                transitions.len() <= 6,
                "shrunk sequence too long: {transitions:?}"
            );
            assert!(
                transitions.iter().any(|t| matches!(
                    t,
                    T::Cmd(
                        _,
                        C::Delete { .. }
                            | C::Offboard {
                                delete: Some(_),
                                ..
                            }
                    )
                )),
                "the failing step deletes someone: {transitions:?}"
            );
        }
        other => panic!("the broken model should fail, got {other:?}"),
    }
}

/// The transitions reach every command, each both accepted and refused
/// (CreateOrganization is always refused once the organization exists), and
/// the refusals cover the rules the issue names.
#[test]
fn transitions_cover_every_command_and_the_refusal_paths() {
    let mut runner = TestRunner::new(Config {
        cases: 300,
        failure_persistence: None,
        ..Config::default()
    });
    let strategy = Directory::<false>::sequential_strategy(40..60);
    runner
        .run(&strategy, |(init, transitions, seen)| {
            CoreUnderTest::<false>::test_sequential(Config::default(), init, transitions, seen);
            Ok(())
        })
        .expect("core agrees with the model");
    let tally = TALLY.with(|t| t.borrow().clone());
    for (name, (ok, refused, rules)) in &tally {
        println!("{name:28} accepted {ok:4} refused {refused:4} {rules:?}");
    }
    let names = [
        "SetPolicies",
        "TransferPrimaryOwnership",
        "CreateAccount",
        "DefineRole",
        "InviteUsers",
        "CreateInvitationLink",
        "Reinvite",
        "RevokeInvitation",
        "ExpireInvitations",
        "AcceptInvitation",
        "SignIn",
        "SignOutDevice",
        "UpdateProfile",
        "UpdateAdminFields",
        "SetExternalId",
        "SetSignInName",
        "ProvisionUser",
        "RequestPasswordReset",
        "GrantAccess",
        "ChangeRole",
        "RemoveAccess",
        "RemoveFromAllAccounts",
        "AddNumber",
        "AssignNumber",
        "UnassignNumber",
        "ForwardNumber",
        "StopForwarding",
        "ReleaseNumber",
        "SetReportingLine",
        "ReassignReports",
        "CreateWorkItem",
        "TransferWork",
        "ReassignClients",
        "Deactivate",
        "Reactivate",
        "Delete",
        "Offboard",
        "BulkUpdate",
    ];
    for n in names {
        let (ok, refused, _) = tally.get(n).cloned().unwrap_or_default();
        assert!(
            ok > 0 && refused > 0,
            "{n}: accepted {ok}, refused {refused}"
        );
    }
    assert!(tally.get("CreateOrganization").is_some_and(|t| t.1 > 0));
    let all: BTreeSet<RuleId> = tally.values().flat_map(|t| t.2.iter().cloned()).collect();
    for rule in [
        RuleId::NumberAssignee,
        RuleId::NumbersBlockDeletion,
        RuleId::ForwardToActiveUser,
        RuleId::ForwardTargetProtected,
        RuleId::ReportingLine,
        RuleId::ReassignReports,
        RuleId::PrimaryOwnerProtected,
        RuleId::CompleteProfileRequired,
        RuleId::DeletionAcknowledged,
        RuleId::NoSelfRemoval,
        RuleId::InvitationExpiry,
        RuleId::InviteExistingEmail,
        RuleId::InvitationRevocation,
        RuleId::AgencyAdministratorAllOrNothing,
        RuleId::ManageUsersRequired,
        RuleId::ProfileSelfEdit,
        RuleId::AdminManagedFields,
        RuleId::BulkAllOrNothing,
        RuleId::UniqueEmail,
        RuleId::UniqueSignInName,
    ] {
        assert!(all.contains(&rule), "no refusal by {rule}");
    }
}
