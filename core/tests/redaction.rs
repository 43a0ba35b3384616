//! Personal data and secrets never appear in `Debug` output, nor in the
//! `Display` of refusals meant for operators (R-LIFE-06, R-INV-03, R-LIFE-07).
//!
//! The tour's people join a realistic organization through every command that
//! carries personal data; then the whole state, every event, every command
//! sent, every decision (with its issued secrets and bulk report) and every
//! refusal are formatted with `{:?}` and `{:#?}` (refusals also with `{}`),
//! and no e-mail, name, mobile number, job title, picture, device name or
//! token of the people involved may appear. Ids, statuses, rule ids, account
//! and role names and the organization's business numbers may.

mod common;

use chrono::Duration;
use common::*;
use std::collections::BTreeSet;
use switchboard_core::decide::SecretPurpose;
use switchboard_core::*;

/// A world that keeps everything it was asked and answered.
struct Recorder {
    w: World,
    commands: Vec<Command>,
    decisions: Vec<Decision>,
    refusals: Vec<CommandError>,
    /// Every personal value and secret typed or issued, as given.
    personal: BTreeSet<String>,
}

impl Recorder {
    fn new() -> Self {
        let w = World::new();
        let owner = w.profile(w.owner).clone();
        let mut personal = BTreeSet::new();
        personal.insert(owner.email.clone());
        personal.extend(owner.name.clone());
        personal.extend(owner.mobile.as_ref().map(|m| m.as_str().to_owned()));
        Recorder {
            // The commands `World::new` sent, as it sent them.
            commands: vec![
                Command::CreateOrganization {
                    name: "Northwind".into(),
                    root_account_name: "Northwind HQ".into(),
                    owner_email: owner.email.clone(),
                    owner_name: owner.name.clone().unwrap_or_default(),
                    policies: None,
                },
                Command::UpdateProfile {
                    user: w.owner,
                    name: None,
                    email: None,
                    mobile: owner.mobile.map(|m| Edit::Set(String::from(m))),
                    default_country: Some("US".into()),
                    notifications: None,
                },
            ],
            w,
            decisions: Vec::new(),
            refusals: Vec::new(),
            personal,
        }
    }

    /// Marks values as personal (or secret): none may be printed.
    fn personal(&mut self, values: &[&str]) {
        self.personal.extend(values.iter().map(|v| v.to_string()));
    }

    fn send(&mut self, actor: Actor, command: Command) -> Result<Decision, CommandError> {
        self.commands.push(command.clone());
        let result = self.w.exec(actor, command);
        match &result {
            Ok(d) => {
                self.personal
                    .extend(d.secrets.iter().map(|s| s.token.clone()));
                self.decisions.push(d.clone());
            }
            Err(e) => self.refusals.push(e.clone()),
        }
        result
    }

    #[track_caller]
    fn ok(&mut self, actor: Actor, command: Command) -> Decision {
        let name = command.name();
        self.send(actor, command).unwrap_or_else(|e| {
            panic!(
                "{name} refused: {}",
                e.rules()
                    .iter()
                    .map(|r| r.as_str())
                    .collect::<Vec<_>>()
                    .join(", ")
            )
        })
    }

    #[track_caller]
    fn refused(&mut self, actor: Actor, command: Command) -> CommandError {
        let name = command.name();
        match self.send(actor, command) {
            Ok(_) => panic!("{name} was accepted"),
            Err(e) => e,
        }
    }

    fn owner(&self) -> Actor {
        self.w.owner_actor()
    }

    /// The tokens of a decision's invitations, by e-mail.
    fn tokens(d: &Decision) -> Vec<(Option<String>, String)> {
        d.secrets
            .iter()
            .filter_map(|s| match &s.purpose {
                SecretPurpose::Invitation { email, .. } => Some((email.clone(), s.token.clone())),
                _ => None,
            })
            .collect()
    }

    fn token_for(d: &Decision, email: &str) -> String {
        Self::tokens(d)
            .into_iter()
            .find(|(e, _)| e.as_deref() == Some(email))
            .map(|(_, t)| t)
            .expect("a token for the address")
    }

    /// Accepts with a complete profile and signs in on "<name>'s laptop".
    fn join(&mut self, token: &str, name: &str, mobile: &str) -> UserId {
        self.personal(&[name, mobile]);
        let d = self.ok(
            Actor::System,
            Command::AcceptInvitation {
                token: token.into(),
                email: None,
                name: name.into(),
                mobile: Some(mobile.into()),
                default_country: Some("US".into()),
            },
        );
        let user = match &d.events[..] {
            [Event::InvitationAccepted { user, .. }] => *user,
            other => panic!("unexpected {}", other.len()),
        };
        let device = format!("{name}'s laptop");
        self.personal(&[&device]);
        self.ok(
            as_user(user),
            Command::SignIn {
                user,
                device_name: device,
            },
        );
        user
    }
}

/// The tour's organization, through every command that carries personal data,
/// accepted and refused.
fn tour() -> Recorder {
    let mut r = Recorder::new();
    let owner = r.w.owner;
    let root = r.w.root;
    let agents = |accounts: &[AccountId]| grant(agent_role(), accounts);
    let east = match &r
        .ok(
            r.owner(),
            Command::CreateAccount {
                name: "East".into(),
                parent: root,
            },
        )
        .events[..]
    {
        [Event::AccountCreated { account, .. }] => *account,
        _ => unreachable!(),
    };
    let west = match &r
        .ok(
            r.owner(),
            Command::CreateAccount {
                name: "West".into(),
                parent: root,
            },
        )
        .events[..]
    {
        [Event::AccountCreated { account, .. }] => *account,
        _ => unreachable!(),
    };

    // Seed 001: invitations, a malformed address, expiry, re-invitation.
    r.personal(&["dora@", "eve@northwind.example"]);
    r.refused(
        r.owner(),
        Command::InviteUsers {
            emails: "dora@, eve@northwind.example".into(),
            grant: agents(&[east]),
        },
    );
    let emails = [
        "ann@northwind.example",
        "bob@northwind.example",
        "carl@northwind.example",
        "dan@northwind.example",
    ];
    r.personal(&emails);
    let invited = r.ok(
        r.owner(),
        Command::InviteUsers {
            emails: "ann@northwind.example, bob@northwind.example carl@northwind.example\ndan@northwind.example".into(),
            grant: agents(&[east, west]),
        },
    );
    let ann = r.join(
        &Recorder::token_for(&invited, emails[0]),
        "Ann Archer",
        "+1 415 555 0101",
    );
    let carl = r.join(
        &Recorder::token_for(&invited, emails[2]),
        "Carl Cole",
        "+1 415 555 0103",
    );
    let dan = r.join(
        &Recorder::token_for(&invited, emails[3]),
        "Dan Drake",
        "+1 415 555 0104",
    );
    r.w.advance(Duration::days(15));
    r.personal(&["Bob Baker", "+1 415 555 0102"]);
    r.refused(
        Actor::System,
        Command::AcceptInvitation {
            token: Recorder::token_for(&invited, emails[1]),
            email: None,
            name: "Bob Baker".into(),
            mobile: Some("+1 415 555 0102".into()),
            default_country: Some("US".into()),
        },
    );
    let bob_invitation =
        r.w.state
            .user_by_email(emails[1])
            .and_then(|u| u.invitation)
            .expect("Bob's invitation");
    let reinvited = r.ok(
        r.owner(),
        Command::Reinvite {
            invitation: bob_invitation,
        },
    );
    let bob = r.join(
        &Recorder::token_for(&reinvited, emails[1]),
        "Bob Baker",
        "+1 415 555 0102",
    );
    r.personal(&["not-the-token-of-anyone"]);
    r.refused(
        Actor::System,
        Command::AcceptInvitation {
            token: "not-the-token-of-anyone".into(),
            email: None,
            name: "Bob Baker".into(),
            mobile: Some("+1 415 555 0102".into()),
            default_country: Some("US".into()),
        },
    );
    // R-INV-06 names the existing user, not the address.
    r.personal(&["ANN@northwind.example"]);
    r.refused(
        r.owner(),
        Command::InviteUsers {
            emails: "ANN@northwind.example".into(),
            grant: agents(&[east]),
        },
    );
    // Profile details: refused for another user, accepted for oneself,
    // refused for a taken address and a malformed mobile.
    r.personal(&[
        "Robert Baker",
        "robert@northwind.example",
        "+1 415 555 0112",
    ]);
    r.refused(
        as_user(ann),
        Command::UpdateProfile {
            user: bob,
            name: Some("Robert Baker".into()),
            email: None,
            mobile: None,
            default_country: None,
            notifications: None,
        },
    );
    r.ok(
        as_user(bob),
        Command::UpdateProfile {
            user: bob,
            name: Some("Robert Baker".into()),
            email: Some("robert@northwind.example".into()),
            mobile: Some(Edit::Set("+1 415 555 0112".into())),
            default_country: None,
            notifications: None,
        },
    );
    r.personal(&["+1 555 12"]);
    r.refused(
        as_user(bob),
        Command::UpdateProfile {
            user: bob,
            name: None,
            email: Some("ann@northwind.example".into()),
            mobile: Some(Edit::Set("+1 555 12".into())),
            default_country: None,
            notifications: None,
        },
    );
    // Admin-managed fields.
    r.personal(&["Operations lead", "https://cdn.northwind.example/dan.png"]);
    r.ok(
        r.owner(),
        Command::UpdateAdminFields {
            user: dan,
            job_title: Some(Edit::Set("Operations lead".into())),
            picture: Some(Edit::Set("https://cdn.northwind.example/dan.png".into())),
            admin_access: Some(true),
        },
    );

    // Seed 000: a number assigned, unassigned, forwarded; a deletion.
    r.ok(
        r.owner(),
        Command::AddNumber {
            number: "+1 (415) 555-0199".into(),
            account: east,
        },
    );
    r.ok(
        r.owner(),
        Command::AssignNumber {
            number: "+14155550199".into(),
            user: carl,
        },
    );
    let delete = |user| Command::Delete {
        user,
        acknowledgement: DeletionAcknowledgement::ALL,
        forward_numbers_to: None,
        reassign_reports: None,
    };
    r.refused(r.owner(), delete(carl));
    r.ok(
        r.owner(),
        Command::UnassignNumber {
            number: "+14155550199".into(),
        },
    );
    r.ok(
        r.owner(),
        Command::ForwardNumber {
            number: "+14155550199".into(),
            to: ann,
        },
    );
    r.ok(r.owner(), delete(carl));

    // Seed 003: work, a password reset, a link invitation.
    for (kind, title) in [
        (WorkKind::Conversation, "Acme renewal thread"),
        (WorkKind::Client, "Acme Corp"),
        (WorkKind::Meeting, "Quarterly review"),
    ] {
        r.ok(
            as_user(bob),
            Command::CreateWorkItem {
                kind,
                title: title.into(),
                owner: bob,
            },
        );
    }
    r.ok(r.owner(), Command::RequestPasswordReset { user: bob });
    let link = r.ok(
        r.owner(),
        Command::CreateInvitationLink {
            grant: agents(&[west]),
        },
    );
    let link_token = Recorder::tokens(&link).remove(0).1;
    r.personal(&["Hana Hill", "hana@northwind.example", "+1 415 555 0108"]);
    r.refused(
        Actor::System,
        Command::AcceptInvitation {
            token: link_token.clone(),
            email: Some("dan@northwind.example".into()),
            name: "Hana Hill".into(),
            mobile: Some("+1 415 555 0108".into()),
            default_country: Some("US".into()),
        },
    );
    r.ok(
        Actor::System,
        Command::AcceptInvitation {
            token: link_token,
            email: Some("hana@northwind.example".into()),
            name: "Hana Hill".into(),
            mobile: Some("+1 415 555 0108".into()),
            default_country: Some("US".into()),
        },
    );

    // Seed 004: a team, a deactivation, bulk updates.
    let team_emails = [
        "eve@northwind.example",
        "finn@northwind.example",
        "gina@northwind.example",
    ];
    r.personal(&team_emails);
    let team = r.ok(
        r.owner(),
        Command::InviteUsers {
            emails: team_emails.join(" "),
            grant: agents(&[east]),
        },
    );
    let eve = r.join(
        &Recorder::token_for(&team, team_emails[0]),
        "Eve Evans",
        "+1 415 555 0105",
    );
    let finn = r.join(
        &Recorder::token_for(&team, team_emails[1]),
        "Finn Ford",
        "+1 415 555 0106",
    );
    let gina = r.join(
        &Recorder::token_for(&team, team_emails[2]),
        "Gina Gray",
        "+1 415 555 0107",
    );
    r.ok(
        r.owner(),
        Command::ChangeRole {
            user: gina,
            account: east,
            role: leader_role(),
        },
    );
    r.ok(
        r.owner(),
        Command::ChangeRole {
            user: ann,
            account: east,
            role: leader_role(),
        },
    );
    for report in [eve, finn] {
        r.ok(
            r.owner(),
            Command::SetReportingLine {
                user: report,
                leader: Some(ann),
            },
        );
    }
    r.refused(
        r.owner(),
        Command::Deactivate {
            user: ann,
            forward_numbers_to: None,
            reassign_reports: None,
        },
    );
    r.ok(
        r.owner(),
        Command::Deactivate {
            user: ann,
            forward_numbers_to: Some(owner),
            reassign_reports: Some(Reassignment::AllTo(gina)),
        },
    );
    r.personal(&["Ann Archer's phone"]);
    r.refused(
        as_user(ann),
        Command::SignIn {
            user: ann,
            device_name: "Ann Archer's phone".into(),
        },
    );
    r.personal(&["nobody@northwind.example", "+1 555 34"]);
    let csv = "Email,Deactivated,Job Title,Mobile\n\
               eve@northwind.example,y,Agent,\n\
               finn@northwind.example,y,,+1 555 34\n\
               gina@northwind.example,y,,\n\
               nobody@northwind.example,y,,\n\
               EVE@northwind.example,n,,\n";
    r.refused(
        r.owner(),
        Command::BulkUpdate {
            csv: csv.into(),
            mode: BulkMode::AllOrNothing,
        },
    );
    let partial = r.ok(
        r.owner(),
        Command::BulkUpdate {
            csv: csv.into(),
            mode: BulkMode::Partial,
        },
    );
    assert!(partial.report.as_ref().is_some_and(|r| r.rejected() > 0));
    r.w.assert_replays();
    r
}

/// `{:?}` and `{:#?}` of `value`, each with what printed it.
fn debug_both(out: &mut Vec<(String, String)>, what: &str, value: &dyn std::fmt::Debug) {
    out.push((format!("{what} {{:?}}"), format!("{value:?}")));
    out.push((format!("{what} {{:#?}}"), format!("{value:#?}")));
}

/// Every way the run can be printed, each with what printed it.
fn printed(r: &Recorder) -> Vec<(String, String)> {
    let mut out = Vec::new();
    debug_both(&mut out, "state", &r.w.state);
    for (i, e) in r.w.events.iter().enumerate() {
        debug_both(&mut out, &format!("event {i} ({})", e.event_type()), e);
    }
    for (i, c) in r.commands.iter().enumerate() {
        debug_both(&mut out, &format!("command {i} ({})", c.name()), c);
    }
    for (i, d) in r.decisions.iter().enumerate() {
        debug_both(&mut out, &format!("decision {i}"), d);
        for (j, s) in d.secrets.iter().enumerate() {
            debug_both(&mut out, &format!("decision {i} secret {j}"), s);
        }
        for row in d.report.iter().flat_map(|r| &r.rows) {
            out.push((
                format!("decision {i} row {} {{}}", row.row),
                row.to_string(),
            ));
        }
    }
    for (i, e) in r.refusals.iter().enumerate() {
        debug_both(&mut out, &format!("refusal {i}"), e);
        out.push((format!("refusal {i} {{}}"), e.to_string()));
        for (j, b) in e.blockers.iter().enumerate() {
            out.push((format!("refusal {i} blocker {j} {{}}"), b.to_string()));
        }
    }
    out
}

/// The forms a personal value may take in output: as given, trimmed, and a
/// mobile number also in E.164.
fn forms(value: &str) -> Vec<String> {
    let mut forms = vec![value.trim().to_lowercase()];
    if value.starts_with('+') {
        let digits: String = value.chars().filter(|c| c.is_ascii_digit()).collect();
        forms.push(format!("+{digits}"));
    }
    forms
}

#[test]
fn r_life_06_no_personal_data_or_secret_in_debug_or_refusals() {
    let r = tour();
    assert!(r.refusals.len() >= 10, "the tour refuses along the way");
    assert!(r.decisions.iter().any(|d| !d.secrets.is_empty()));
    let mut leaks = Vec::new();
    for (what, text) in printed(&r) {
        let lower = text.to_lowercase();
        for value in &r.personal {
            if forms(value).iter().any(|f| lower.contains(f.as_str())) {
                leaks.push(format!("{what} shows {value:?}"));
            }
        }
    }
    let count = leaks.len();
    leaks.truncate(20);
    assert!(
        leaks.is_empty(),
        "{count} leak(s) of personal data or secrets, first ones:\n{}",
        leaks.join("\n")
    );
}

#[test]
fn r_life_06_redacted_debug_stays_useful_to_operators() {
    let r = tour();
    let state = format!("{:?}", r.w.state);
    // Ids, statuses, account and role names, business numbers stay.
    for user in r.w.state.users.values() {
        assert!(state.contains(&format!("{:?}", user.id)));
    }
    for shown in [
        "Deactivated",
        "Deleted",
        "East",
        "team-leader",
        "+14155550199",
        "<redacted>",
    ] {
        assert!(state.contains(shown), "the state's Debug lacks {shown}");
    }
    // A command shows its name, ids and which fields are set.
    let accept = r
        .commands
        .iter()
        .find(|c| matches!(c, Command::AcceptInvitation { email: Some(_), .. }))
        .expect("a link acceptance");
    let text = format!("{accept:?}");
    assert!(text.starts_with("AcceptInvitation {"), "{text}");
    assert!(text.contains("email: Some(<redacted>)"), "{text}");
    assert!(text.contains("default_country: Some(\"US\")"), "{text}");
    // A refusal still names its rules and the ids involved.
    let rules: Vec<RuleId> = r.refusals.iter().flat_map(|e| e.rules()).collect();
    let text: String = r.refusals.iter().map(|e| format!("{e} {e:?}")).collect();
    for rule in &rules {
        assert!(text.contains(rule.as_str()), "{rule} missing");
    }
    assert!(rules.contains(&RuleId::InviteExistingEmail));
    assert!(text.contains("EmailInUse"), "{text}");
}
