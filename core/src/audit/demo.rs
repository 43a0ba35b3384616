//! A small, deterministic history for the `replay` example, the audit tests
//! (on every store) and the frozen schema fixture: an agency where people are
//! invited, join, get a number, are deactivated and one is deleted.
//!
//! The story (all times UTC, from [`DemoTimes::start`]):
//! * day 0 — Northwind is created (owner Olivia, an agency administrator);
//!   Olivia completes her profile and creates the account "East".
//! * day 1 — Ann, Bob and Carl are invited as agents on East, accept and sign in.
//! * day 2 — number +14155550199 is added to East and assigned to Carl.
//! * day 3 — Olivia deactivates Bob.
//! * day 4 — the number is unassigned from Carl and forwarded to Ann; Carl is deleted.
//! * day 5 — Olivia reactivates Bob.

use crate::command::{Command, Edit};
use crate::context::{Actor, FixedClock, IdSource};
use crate::decide::SecretPurpose;
use crate::event::DeletionAcknowledgement;
use crate::ids::*;
use crate::model::Grant;
use crate::service::{CommandRequest, CommandService, Handled, ServiceError};
use crate::store::Store;
use chrono::{DateTime, Duration, TimeZone, Utc};
use std::collections::BTreeMap;

/// The demo's number.
pub const DEMO_NUMBER: &str = "+14155550199";

/// Instants inside the story, for as-of questions.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct DemoTimes {
    /// Day 0, 09:00: the organization is created.
    pub start: DateTime<Utc>,
    /// End of day 1: Ann, Bob and Carl are active agents on East.
    pub joined: DateTime<Utc>,
    /// End of day 2: the number is assigned to Carl.
    pub assigned: DateTime<Utc>,
    /// End of day 3: Bob is deactivated.
    pub deactivated: DateTime<Utc>,
    /// End of day 4: the number forwards to Ann; Carl is deleted.
    pub deleted: DateTime<Utc>,
    /// End of day 5: Bob is active again.
    pub reactivated: DateTime<Utc>,
}

impl DemoTimes {
    /// The story's times.
    pub fn new() -> Self {
        let start = Utc
            .with_ymd_and_hms(2026, 3, 2, 9, 0, 0)
            .single()
            .unwrap_or(DateTime::UNIX_EPOCH);
        let end_of = |day: i64| start + Duration::days(day) + Duration::hours(12);
        Self {
            start,
            joined: end_of(1),
            assigned: end_of(2),
            deactivated: end_of(3),
            deleted: end_of(4),
            reactivated: end_of(5),
        }
    }
}

impl Default for DemoTimes {
    fn default() -> Self {
        Self::new()
    }
}

/// Who and what the demo created.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Demo {
    /// The organization.
    pub org: OrgId,
    /// Olivia, the primary owner.
    pub owner: UserId,
    /// The root account.
    pub root: AccountId,
    /// The account "East".
    pub east: AccountId,
    /// Ann Archer (active; the number forwards to her).
    pub ann: UserId,
    /// Bob Baker (deactivated on day 3, reactivated on day 5).
    pub bob: UserId,
    /// Carl Cole (deleted on day 4).
    pub carl: UserId,
    /// The number.
    pub number: PhoneNumber,
    /// The story's instants.
    pub times: DemoTimes,
}

/// Personal data the demo records for Carl, the deleted user: none of it may
/// be readable after the deletion (R-LIFE-06).
pub const CARL_PERSONAL: [&str; 4] = [
    "Carl Cole",
    "carl@northwind.example",
    "+14155550103",
    "Carl",
];

struct Run<'a, S> {
    service: &'a CommandService<S>,
    ids: &'a dyn IdSource,
    org: OrgId,
}

impl<S: Store> Run<'_, S> {
    async fn run(&self, actor: Actor, command: Command) -> Result<Handled, ServiceError> {
        let request = CommandRequest::new(
            self.org,
            CommandId::from_uuid(self.ids.next_id()),
            actor,
            command,
        );
        self.service.handle(request).await
    }
}

/// Records the demo story through `service`, moving `clock` along; `ids`
/// must be the service's id source (or another that never repeats its ids).
///
/// ```
/// # use switchboard_core::service::*;
/// # use switchboard_core::*;
/// # async fn demo<S: store::Store>(service: &CommandService<S>, clock: &FixedClock, ids: &dyn IdSource) -> Result<(), ServiceError> {
/// let demo = switchboard_core::audit::demo::record(service, clock, ids).await?;
/// assert_eq!(service.load(demo.org).await?.users.len(), 4);
/// # Ok(()) }
/// ```
pub async fn record<S: Store>(
    service: &CommandService<S>,
    clock: &FixedClock,
    ids: &dyn IdSource,
) -> Result<Demo, ServiceError> {
    let times = DemoTimes::new();
    let r = Run {
        service,
        ids,
        org: OrgId::from_uuid(ids.next_id()),
    };
    let at = |day: i64, hour: i64| times.start + Duration::days(day) + Duration::hours(hour);
    clock.set(times.start);
    r.run(
        Actor::System,
        Command::CreateOrganization {
            name: "Northwind".into(),
            root_account_name: "Northwind HQ".into(),
            owner_email: "olivia@northwind.example".into(),
            owner_name: "Olivia Owner".into(),
            policies: None,
        },
    )
    .await?;
    let state = service.load(r.org).await?;
    let missing = |what: &str| {
        ServiceError::Store(crate::store::StoreError::Corrupt {
            reason: format!("demo: {what} missing after its command"),
            source: None,
        })
    };
    let owner = state.primary_owner.ok_or_else(|| missing("owner"))?;
    let root = state.root_account.ok_or_else(|| missing("root account"))?;
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
    )
    .await?;
    r.run(
        olivia.clone(),
        Command::CreateAccount {
            name: "East".into(),
            parent: root,
        },
    )
    .await?;
    let east = service
        .load(r.org)
        .await?
        .accounts
        .values()
        .find(|a| a.name == "East")
        .map(|a| a.id)
        .ok_or_else(|| missing("East"))?;

    clock.set(at(1, 0));
    let invited = r
        .run(
            olivia.clone(),
            Command::InviteUsers {
                emails: "ann@northwind.example, bob@northwind.example, carl@northwind.example"
                    .into(),
                grant: Grant {
                    role: RoleId::new(RoleId::AGENT),
                    accounts: vec![east],
                    agency_admin: false,
                    clients: vec![],
                },
            },
        )
        .await?;
    let tokens: BTreeMap<String, (UserId, String)> = invited
        .secrets
        .iter()
        .filter_map(|s| match &s.purpose {
            SecretPurpose::Invitation {
                email: Some(e),
                user: Some(u),
                ..
            } => Some((e.clone(), (*u, s.token.clone()))),
            _ => None,
        })
        .collect();
    let mut people = Vec::new();
    for (first, last, mobile) in [
        ("Ann", "Archer", "+14155550101"),
        ("Bob", "Baker", "+14155550102"),
        ("Carl", "Cole", "+14155550103"),
    ] {
        let email = format!("{}@northwind.example", first.to_lowercase());
        let (user, token) = tokens.get(&email).cloned().ok_or_else(|| missing(&email))?;
        r.run(
            Actor::System,
            Command::AcceptInvitation {
                token,
                email: None,
                name: format!("{first} {last}"),
                mobile: Some(mobile.into()),
                default_country: Some("US".into()),
            },
        )
        .await?;
        r.run(
            Actor::user(user),
            Command::SignIn {
                user,
                // Free-text fields are not sealed: keep names out of them.
                device_name: "work laptop".into(),
            },
        )
        .await?;
        people.push(user);
    }
    let (ann, bob, carl) = (people[0], people[1], people[2]);

    clock.set(at(2, 0));
    r.run(
        olivia.clone(),
        Command::AddNumber {
            number: DEMO_NUMBER.into(),
            account: east,
        },
    )
    .await?;
    r.run(
        olivia.clone(),
        Command::AssignNumber {
            number: DEMO_NUMBER.into(),
            user: carl,
        },
    )
    .await?;

    clock.set(at(3, 0));
    r.run(
        olivia.clone(),
        Command::Deactivate {
            user: bob,
            forward_numbers_to: None,
            reassign_reports: None,
        },
    )
    .await?;

    clock.set(at(4, 0));
    r.run(
        olivia.clone(),
        Command::UnassignNumber {
            number: DEMO_NUMBER.into(),
        },
    )
    .await?;
    r.run(
        olivia.clone(),
        Command::ForwardNumber {
            number: DEMO_NUMBER.into(),
            to: ann,
        },
    )
    .await?;
    clock.set(at(4, 1));
    r.run(
        olivia.clone(),
        Command::Delete {
            user: carl,
            acknowledgement: DeletionAcknowledgement::ALL,
            forward_numbers_to: None,
            reassign_reports: None,
        },
    )
    .await?;

    clock.set(at(5, 0));
    r.run(olivia, Command::Reactivate { user: bob }).await?;

    Ok(Demo {
        org: r.org,
        owner,
        root,
        east,
        ann,
        bob,
        carl,
        number: PhoneNumber::new(DEMO_NUMBER),
        times,
    })
}
