//! A tour of Switchboard: each seed article's workflow, in turn, on a real
//! store. Prints every command, the events it recorded (in plain words) and
//! every refusal with all of its blockers.
//!
//! ```text
//! cargo run --example tour                                         # memory store
//! DATABASE_URL=postgres://… cargo run --example tour --features postgres
//! ```
//!
//! The service is the production one (`ServiceBuilder`: tokio timer, default
//! configuration) except for three sources the tour must control: a clock it
//! can move (fifteen days pass, R-INV-05) and seeded ids and secrets, so that
//! it prints the same output on every run. A service passes only its store:
//! `production_service(store)`. Every id the tour uses afterwards is read from
//! what the command created (`Handled::created`) or the tokens it issued.

use chrono::TimeZone;
use std::collections::BTreeMap;
use std::sync::Arc;
use switchboard::describe::describe;
use switchboard::service::{CommandRequest, CommandService, Handled, ServiceError};
use switchboard::store::Store;
use switchboard::*;

struct Tour<S> {
    service: CommandService<S>,
    org: OrgId,
    clock: Arc<FixedClock>,
    ids: Arc<SequentialIds>,
    names: BTreeMap<String, String>,
    refusals: usize,
}

impl<S: Store + Clone + 'static> Tour<S> {
    fn id<T: From<uuid::Uuid>>(&self) -> T {
        T::from(self.ids.next_id())
    }

    /// Replaces ids with people's names in a line of output.
    fn humanize(&self, text: String) -> String {
        self.names.iter().fold(text, |t, (id, name)| {
            t.replace(&format!(" ({id})"), "")
                .replace(id.as_str(), name)
        })
    }

    async fn remember_names(&mut self) {
        if let Ok(state) = self.service.state(self.org).await {
            for u in state.users.values() {
                if let Some(p) = &u.profile {
                    let name = p.name.clone().unwrap_or_else(|| p.email.clone());
                    self.names.insert(u.id.to_string(), name);
                }
            }
            for a in state.accounts.values() {
                self.names.insert(a.id.to_string(), format!("«{}»", a.name));
            }
            for w in state.work_items.values() {
                self.names
                    .insert(w.id.to_string(), format!("{:?} «{}»", w.kind, w.title));
            }
        }
    }

    /// Runs a command and prints what happened. `Some` when accepted.
    async fn run(&mut self, actor: Actor, what: &str, command: Command) -> Option<Handled> {
        let who = match &actor {
            Actor::User { id } => self.humanize(id.to_string()),
            other => other.to_string(),
        };
        println!("\n▶ {who}: {what}");
        let request = CommandRequest::new(self.org, self.id(), actor, command);
        match self.service.handle(request).await {
            Ok(handled) => {
                self.remember_names().await;
                let state = self.service.state(self.org).await.ok();
                for e in &handled.events {
                    let line = describe(e, state.as_ref());
                    println!("   ✓ {}", self.humanize(line));
                }
                if handled.events.is_empty() {
                    println!("   ✓ nothing to change");
                }
                Some(handled)
            }
            Err(ServiceError::Rejected(err)) => {
                self.refusals += 1;
                println!("   ✗ refused, {} blocker(s):", err.blockers.len());
                for b in &err.blockers {
                    println!("     - {}", self.humanize(b.to_string()));
                }
                None
            }
            Err(other) => {
                eprintln!("store failure: {other}");
                std::process::exit(2);
            }
        }
    }

    async fn state(&self) -> Organization {
        match self.service.state(self.org).await {
            Ok(s) => s,
            Err(e) => {
                eprintln!("store failure: {e}");
                std::process::exit(2);
            }
        }
    }

    /// Accepts an invitation with its token and signs in for the first time.
    async fn join(&mut self, invite: &Invite, name: &str, mobile: &str) -> Option<UserId> {
        let accepted = self
            .run(
                Actor::System,
                &format!("{name} accepts their invitation and completes their profile"),
                Command::AcceptInvitation {
                    token: invite.token.clone(),
                    email: None,
                    name: name.to_owned(),
                    mobile: Some(mobile.to_owned()),
                    default_country: Some("US".to_owned()),
                },
            )
            .await?;
        // An email invitation created its user when it was sent; a link
        // invitation creates the user on acceptance.
        let user = invite
            .user
            .or_else(|| accepted.created().users.first().copied())?;
        self.run(
            Actor::user(user),
            "signs in for the first time",
            Command::SignIn {
                user,
                device_name: format!("{name}'s laptop"),
            },
        )
        .await;
        Some(user)
    }
}

/// An invitation as the command that issued it tells it.
struct Invite {
    token: String,
    invitation: InvitationId,
    /// The invited user (email invitations create them at once).
    user: Option<UserId>,
}

/// The email invitations a command issued, by address.
fn tokens(handled: &Handled) -> BTreeMap<String, Invite> {
    handled
        .secrets
        .iter()
        .filter_map(|s| match &s.purpose {
            decide::SecretPurpose::Invitation {
                invitation,
                user,
                email: Some(e),
            } => Some((
                e.clone(),
                Invite {
                    token: s.token.clone(),
                    invitation: *invitation,
                    user: *user,
                },
            )),
            _ => None,
        })
        .collect()
}

fn heading(text: &str) {
    println!("\n\n══ {text} ══");
}

/// What the tour did, for the test that runs it.
#[derive(Debug)]
pub struct Summary {
    /// Events recorded.
    pub events: usize,
    /// Commands refused.
    pub refusals: usize,
}

/// Runs the whole tour on `store`; fails if replaying the log differs from the live state.
pub async fn tour<S: Store + Clone + 'static>(store: S) -> Result<Summary, String> {
    let clock = Arc::new(FixedClock::new(
        chrono::Utc.with_ymd_and_hms(2026, 3, 2, 9, 0, 0).unwrap(),
    ));
    let ids = Arc::new(SequentialIds::new(2026));
    let secrets = Arc::new(SeededSecrets::new(2026));
    // The production service, but for the clock, ids and secrets (see the top
    // of this file for why the tour needs its own).
    let service = ServiceBuilder::new(store)
        .clock(clock.clone())
        .ids(ids.clone())
        .secrets(secrets)
        .build();
    let mut t = Tour {
        service,
        org: OrgId::from_uuid(ids.next_id()),
        clock,
        ids,
        names: BTreeMap::new(),
        refusals: 0,
    };

    heading("Setting up: an agency with two sub-accounts");
    let created = t
        .run(
            Actor::System,
            "create the organization",
            Command::CreateOrganization {
                name: "Northwind Agency".into(),
                root_account_name: "Northwind".into(),
                owner_email: "olivia@northwind.example".into(),
                owner_name: "Olivia Owner".into(),
                policies: None,
            },
        )
        .await
        .ok_or("organization not created")?
        .created();
    let owner = *created.users.first().ok_or("no owner")?;
    let root = *created.accounts.first().ok_or("no root account")?;
    let olivia = Actor::user(owner);
    t.run(
        olivia.clone(),
        "complete her profile",
        Command::UpdateProfile {
            user: owner,
            name: None,
            email: None,
            mobile: Some(Edit::Set("+1 415 555 0100".into())),
            default_country: Some("US".into()),
            notifications: None,
        },
    )
    .await;
    let mut sub_accounts = Vec::new();
    for name in ["East", "West"] {
        let created = t
            .run(
                olivia.clone(),
                &format!("create sub-account {name}"),
                Command::CreateAccount {
                    name: name.into(),
                    parent: root,
                },
            )
            .await
            .ok_or(format!("sub-account {name} not created"))?
            .created();
        sub_accounts.push(*created.accounts.first().ok_or("no account")?);
    }
    let (east, west) = (sub_accounts[0], sub_accounts[1]);

    heading("Seed 001 — invite several people, accept one, let one expire, re-invite");
    t.run(
        olivia.clone(),
        "invite two addresses, one of them malformed",
        Command::InviteUsers {
            emails: "dora@, eve@northwind.example".into(),
            grant: Grant {
                role: RoleId::new(RoleId::AGENT),
                accounts: vec![east],
                agency_admin: false,
                clients: vec![],
            },
        },
    )
    .await;
    let invited = t
        .run(
            olivia.clone(),
            "invite four people (commas, spaces and newlines) as agents on East and West",
            Command::InviteUsers {
                emails: "ann@northwind.example, bob@northwind.example carl@northwind.example\ndan@northwind.example".into(),
                grant: Grant {
                    role: RoleId::new(RoleId::AGENT),
                    accounts: vec![east, west],
                    agency_admin: false,
                    clients: vec![],
                },
            },
        )
        .await
        .ok_or("invitation refused")?;
    let tok = tokens(&invited);
    let ann = t
        .join(
            &tok["ann@northwind.example"],
            "Ann Archer",
            "+1 415 555 0101",
        )
        .await
        .ok_or("ann")?;
    let carl = t
        .join(
            &tok["carl@northwind.example"],
            "Carl Cole",
            "+1 415 555 0103",
        )
        .await
        .ok_or("carl")?;
    let dan = t
        .join(
            &tok["dan@northwind.example"],
            "Dan Drake",
            "+1 415 555 0104",
        )
        .await
        .ok_or("dan")?;
    println!("\n… fifteen days pass …");
    t.clock.advance(chrono::Duration::days(15));
    t.join(
        &tok["bob@northwind.example"],
        "Bob Baker",
        "+1 415 555 0102",
    )
    .await;
    let bob_invitation = tok["bob@northwind.example"].invitation;
    let reinvited = t
        .run(
            olivia.clone(),
            "re-invite Bob: a new token and a new 14-day TTL",
            Command::Reinvite {
                invitation: bob_invitation,
            },
        )
        .await
        .ok_or("reinvite refused")?;
    let bob = t
        .join(
            &tokens(&reinvited)["bob@northwind.example"],
            "Bob Baker",
            "+1 415 555 0102",
        )
        .await
        .ok_or("bob")?;
    t.run(
        olivia.clone(),
        "invite Ann again",
        Command::InviteUsers {
            emails: "ANN@northwind.example".into(),
            grant: Grant {
                role: RoleId::new(RoleId::AGENT),
                accounts: vec![east],
                agency_admin: false,
                clients: vec![],
            },
        },
    )
    .await;
    t.run(
        olivia.clone(),
        "raise Ann to team leader on East",
        Command::ChangeRole {
            user: ann,
            account: east,
            role: RoleId::new(RoleId::TEAM_LEADER),
        },
    )
    .await;
    t.run(
        Actor::user(ann),
        "edit Bob's name (profile details are the user's own under the default policy)",
        Command::UpdateProfile {
            user: bob,
            name: Some("Robert Baker".into()),
            email: None,
            mobile: None,
            default_country: None,
            notifications: None,
        },
    )
    .await;

    heading("Seed 000 — remove a user after unassigning and forwarding their number");
    t.run(
        olivia.clone(),
        "add number +1 (415) 555-0199 to East",
        Command::AddNumber {
            number: "+1 (415) 555-0199".into(),
            account: east,
        },
    )
    .await;
    t.run(
        olivia.clone(),
        "assign it to Carl",
        Command::AssignNumber {
            number: "+14155550199".into(),
            user: carl,
        },
    )
    .await;
    t.run(
        olivia.clone(),
        "delete Carl",
        Command::Delete {
            user: carl,
            acknowledgement: DeletionAcknowledgement::ALL,
            forward_numbers_to: None,
            reassign_reports: None,
        },
    )
    .await;
    t.run(
        olivia.clone(),
        "unassign the number",
        Command::UnassignNumber {
            number: "+14155550199".into(),
        },
    )
    .await;
    let orphaned: Vec<String> = t
        .state()
        .await
        .orphaned_numbers()
        .iter()
        .map(|n| n.number.to_string())
        .collect();
    println!("   · orphaned numbers now: {orphaned:?}");
    t.run(
        olivia.clone(),
        "forward it to Ann so Carl's customers still reach someone",
        Command::ForwardNumber {
            number: "+14155550199".into(),
            to: ann,
        },
    )
    .await;
    t.run(
        olivia.clone(),
        "delete Carl, acknowledging the consequences",
        Command::Delete {
            user: carl,
            acknowledgement: DeletionAcknowledgement::ALL,
            forward_numbers_to: None,
            reassign_reports: None,
        },
    )
    .await;
    let carl_after = t
        .state()
        .await
        .users
        .get(&carl)
        .map(|u| (u.status, u.profile.is_some()));
    println!("   · Carl is now {carl_after:?} (status, personal data readable)");

    heading("Seed 002 — remove a user from one account, then an agency administrator from all");
    t.run(
        olivia.clone(),
        "remove Bob from West only",
        Command::RemoveAccess {
            user: bob,
            accounts: vec![west],
        },
    )
    .await;
    t.run(
        olivia.clone(),
        "make Dan an agency administrator",
        Command::UpdateAdminFields {
            user: dan,
            job_title: Some(Edit::Set("Operations lead".into())),
            picture: None,
            admin_access: Some(true),
        },
    )
    .await;
    t.run(
        olivia.clone(),
        "remove Dan from the West sub-account",
        Command::RemoveAccess {
            user: dan,
            accounts: vec![west],
        },
    )
    .await;
    t.run(
        olivia.clone(),
        "remove Dan from all accounts",
        Command::RemoveFromAllAccounts { user: dan },
    )
    .await;
    t.run(
        olivia.clone(),
        "give Dan another role: agent on West",
        Command::GrantAccess {
            user: dan,
            role: RoleId::new(RoleId::AGENT),
            accounts: vec![west],
        },
    )
    .await;

    heading("Seed 003 — transfer work, reassign clients, delete with acknowledgements");
    let mut client = None;
    for (kind, title) in [
        (WorkKind::Conversation, "Acme renewal thread"),
        (WorkKind::FlowTemplate, "Welcome flow"),
        (WorkKind::Client, "Acme Corp"),
        (WorkKind::Meeting, "Quarterly review"),
    ] {
        let created = t
            .run(
                Actor::user(bob),
                &format!("record {kind:?} {title:?}"),
                Command::CreateWorkItem {
                    kind,
                    title: title.into(),
                    owner: bob,
                },
            )
            .await
            .ok_or(format!("{title} not recorded"))?
            .created();
        if kind == WorkKind::Client {
            client = created.work_items.first().copied();
        }
    }
    t.run(
        olivia.clone(),
        "transfer Bob's conversations and flow templates to Ann",
        Command::TransferWork {
            from: bob,
            to: ann,
            selection: WorkSelection::Kinds(vec![WorkKind::Conversation, WorkKind::FlowTemplate]),
        },
    )
    .await;
    let client = client.ok_or("no client")?;
    t.run(
        olivia.clone(),
        "reassign the client Acme Corp to Dan",
        Command::ReassignClients {
            assignments: vec![(client, dan)],
        },
    )
    .await;
    t.run(
        olivia.clone(),
        "reset Bob's password",
        Command::RequestPasswordReset { user: bob },
    )
    .await;
    t.run(
        olivia.clone(),
        "delete Bob without ticking the acknowledgements",
        Command::Delete {
            user: bob,
            acknowledgement: DeletionAcknowledgement::default(),
            forward_numbers_to: None,
            reassign_reports: None,
        },
    )
    .await;
    t.run(
        olivia.clone(),
        "delete Bob, every consequence acknowledged",
        Command::Delete {
            user: bob,
            acknowledgement: DeletionAcknowledgement::ALL,
            forward_numbers_to: None,
            reassign_reports: None,
        },
    )
    .await;

    heading("Seed 004 — deactivate a team leader, bulk-deactivate from a CSV, reactivate");
    let team = t
        .run(
            olivia.clone(),
            "invite Eve, Finn and Gina to East",
            Command::InviteUsers {
                emails: "eve@northwind.example finn@northwind.example gina@northwind.example"
                    .into(),
                grant: Grant {
                    role: RoleId::new(RoleId::AGENT),
                    accounts: vec![east],
                    agency_admin: false,
                    clients: vec![],
                },
            },
        )
        .await
        .ok_or("team invitation refused")?;
    let tok = tokens(&team);
    let eve = t
        .join(
            &tok["eve@northwind.example"],
            "Eve Evans",
            "+1 415 555 0105",
        )
        .await
        .ok_or("eve")?;
    let finn = t
        .join(
            &tok["finn@northwind.example"],
            "Finn Ford",
            "+1 415 555 0106",
        )
        .await
        .ok_or("finn")?;
    let gina = t
        .join(
            &tok["gina@northwind.example"],
            "Gina Gray",
            "+1 415 555 0107",
        )
        .await
        .ok_or("gina")?;
    t.run(
        olivia.clone(),
        "make Gina a team leader on East",
        Command::ChangeRole {
            user: gina,
            account: east,
            role: RoleId::new(RoleId::TEAM_LEADER),
        },
    )
    .await;
    for report in [eve, finn] {
        t.run(
            olivia.clone(),
            "put a report on Ann's team",
            Command::SetReportingLine {
                user: report,
                leader: Some(ann),
            },
        )
        .await;
    }
    println!("\n▶ dry run: what stands in the way of deactivating Ann?");
    match t
        .service
        .dry_run(&CommandRequest::new(
            t.org,
            CommandId::from_uuid(uuid::Uuid::from_u128(0xD1)),
            olivia.clone(),
            Command::Deactivate {
                user: ann,
                forward_numbers_to: None,
                reassign_reports: None,
            },
        ))
        .await
    {
        Err(ServiceError::Rejected(e)) => {
            for b in &e.blockers {
                println!("     - {}", t.humanize(b.to_string()));
            }
        }
        other => println!("   unexpected: {other:?}"),
    }
    t.run(
        olivia.clone(),
        "deactivate Ann, forwarding her numbers to Olivia and her reports to Gina",
        Command::Deactivate {
            user: ann,
            forward_numbers_to: Some(owner),
            reassign_reports: Some(Reassignment::AllTo(gina)),
        },
    )
    .await;
    t.run(
        Actor::user(ann),
        "Ann tries to sign in",
        Command::SignIn {
            user: ann,
            device_name: "Ann's phone".into(),
        },
    )
    .await;
    let csv = "Email,Deactivated,Job Title\n\
               eve@northwind.example,y,Agent\n\
               finn@northwind.example,y,\n\
               gina@northwind.example,y,\n";
    println!(
        "\n   spreadsheet:\n{}",
        csv.lines()
            .map(|l| format!("     | {l}"))
            .collect::<Vec<_>>()
            .join("\n")
    );
    t.run(
        olivia.clone(),
        "bulk update, all-or-nothing (the default)",
        Command::BulkUpdate {
            csv: csv.into(),
            mode: BulkMode::AllOrNothing,
        },
    )
    .await;
    if let Some(h) = t
        .run(
            olivia.clone(),
            "bulk update, partial: apply the valid rows, report the rest",
            Command::BulkUpdate {
                csv: csv.into(),
                mode: BulkMode::Partial,
            },
        )
        .await
    {
        for row in h.report.map(|r| r.rows).unwrap_or_default() {
            println!("     {}", t.humanize(row.to_string()));
        }
    }
    t.run(
        olivia.clone(),
        "deactivate the primary owner",
        Command::Deactivate {
            user: owner,
            forward_numbers_to: None,
            reassign_reports: None,
        },
    )
    .await;
    t.run(
        olivia.clone(),
        "reactivate Eve",
        Command::Reactivate { user: eve },
    )
    .await;
    let deactivated: Vec<String> = t
        .state()
        .await
        .users_with_status(UserStatus::Deactivated)
        .iter()
        .map(|u| u.label())
        .collect();
    println!("   · deactivated users: {deactivated:?}");

    heading("Replay");
    let live = t.state().await;
    let replayed = t.service.load(t.org).await.map_err(|e| e.to_string())?;
    let history = t.service.history(t.org).await.map_err(|e| e.to_string())?;
    println!(
        "folded {} recorded events from the store afresh: {}",
        history.len(),
        if replayed == live {
            "identical to the live state"
        } else {
            "DIFFERENT from the live state"
        }
    );
    println!(
        "{} refusals along the way, each with every blocker named.",
        t.refusals
    );
    if replayed != live {
        return Err("replay differs from the live state".into());
    }
    Ok(Summary {
        events: history.len(),
        refusals: t.refusals,
    })
}

#[tokio::main(flavor = "current_thread")]
async fn main() {
    let result = match std::env::var("DATABASE_URL") {
        #[cfg(feature = "postgres")]
        Ok(url) => match switchboard::postgres::PostgresStore::connect(&url).await {
            Ok(store) => match store.migrate().await {
                Ok(_) => tour(store).await,
                Err(e) => Err(format!("migration failed: {e}")),
            },
            Err(e) => Err(format!("cannot connect to {url}: {e}")),
        },
        #[cfg(not(feature = "postgres"))]
        Ok(_) => {
            eprintln!("DATABASE_URL is set but the `postgres` feature is off: running on the memory store");
            tour(switchboard::memory::MemoryStore::new()).await
        }
        Err(_) => tour(switchboard::memory::MemoryStore::new()).await,
    };
    if let Err(e) = result {
        eprintln!("tour failed: {e}");
        std::process::exit(1);
    }
}
