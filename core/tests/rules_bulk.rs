//! Bulk updates from CSV: R-BULK-01..03.

mod common;

use common::*;
use switchboard_core::bulk::{BulkReport, RowOutcome, RowStatus};
use switchboard_core::*;

fn bulk(csv: &str, mode: BulkMode) -> Command {
    Command::BulkUpdate {
        csv: csv.into(),
        mode,
    }
}

fn report(d: &Decision) -> &BulkReport {
    d.report.as_ref().expect("a bulk run reports every row")
}

fn rejected(row: &RowOutcome) -> &[Blocker] {
    match &row.status {
        RowStatus::Rejected { blockers } => blockers,
        other => panic!("row {} not rejected: {other:?}", row.row),
    }
}

fn rejected_rows(err: &CommandError) -> &[RowOutcome] {
    match only(err) {
        Blocker::BulkRowsRejected { rows } => rows,
        other => panic!("unexpected {other:?}"),
    }
}

struct Team {
    w: World,
    ann: UserId,
    bob: UserId,
    cat: UserId,
    tom: UserId,
}

fn team(policies: Option<Policies>) -> Team {
    let mut w = World::with_policies(policies);
    let ann = w.agent("Ann", &[w.root]);
    let bob = w.agent("Bob", &[w.root]);
    let cat = w.agent("Cat", &[w.root]);
    let tom = w.leader("Tom", &[w.root]);
    Team {
        w,
        ann,
        bob,
        cat,
        tom,
    }
}

fn email(w: &World, u: UserId) -> String {
    w.profile(u).email.clone()
}

// ---------------------------------------------------------------- R-BULK-01

#[test]
fn r_bulk_01_a_spreadsheet_deactivates_reactivates_and_edits_with_a_row_report() {
    let Team {
        mut w,
        ann,
        bob,
        cat,
        ..
    } = team(None);
    w.ok(
        w.owner_actor(),
        Command::Deactivate {
            user: cat,
            forward_numbers_to: None,
            reassign_reports: None,
        },
    );
    // Header case and spacing do not matter; columns in any order.
    let csv = format!(
        "Job Title, Email ,Deactivated\n\
         Agent,{},y\n\
         Senior Agent,{},\n\
         ,{},n\n\
         ,{},\n",
        email(&w, ann),
        email(&w, bob),
        email(&w, cat).to_uppercase(),
        email(&w, w.owner),
    );
    let d = w.ok(w.owner_actor(), bulk(&csv, BulkMode::AllOrNothing));
    let r = report(&d);
    let statuses: Vec<&RowStatus> = r.rows.iter().map(|r| &r.status).collect();
    assert_eq!(
        statuses,
        vec![
            &RowStatus::Applied { events: 2 }, // title + deactivation
            &RowStatus::Applied { events: 1 }, // title
            &RowStatus::Applied { events: 1 }, // reactivation
            &RowStatus::Unchanged,
        ]
    );
    assert_eq!(
        r.rows.iter().map(|r| r.row).collect::<Vec<_>>(),
        vec![1, 2, 3, 4]
    );
    assert_eq!(r.rows[0].user, Some(ann));
    assert_eq!(r.applied(), 3);
    assert_eq!(w.user(ann).status, UserStatus::Deactivated);
    assert_eq!(w.profile(ann).job_title.as_deref(), Some("Agent"));
    assert_eq!(w.profile(bob).job_title.as_deref(), Some("Senior Agent"));
    assert_eq!(w.user(cat).status, UserStatus::Active);
    w.assert_replays();
}

#[test]
fn r_bulk_01_every_row_is_validated() {
    let Team {
        mut w, ann, bob, ..
    } = team(Some(Policies {
        profile_edit: ProfileEditPolicy::SelfOrAdmin,
        ..Policies::default()
    }));
    let csv = format!(
        "email,deactivated,mobile,default_country\n\
         nobody@northwind.example,y,,\n\
         {},maybe,,\n\
         {},,555-0100,Narnia\n\
         {},,,\n",
        email(&w, ann),
        email(&w, bob),
        email(&w, ann),
    );
    let err = w.refused(w.owner_actor(), bulk(&csv, BulkMode::AllOrNothing));
    let rows = rejected_rows(&err);
    assert_eq!(
        rows.iter().map(|r| r.row).collect::<Vec<_>>(),
        vec![1, 2, 3, 4]
    );
    let rules = |r: &RowOutcome| rejected(r).iter().map(Blocker::rule).collect::<Vec<_>>();
    assert_eq!(rules(&rows[0]), vec![RuleId::BulkSpreadsheet]);
    assert_eq!(rows[0].user, None);
    assert_eq!(rules(&rows[1]), vec![RuleId::BulkSpreadsheet]);
    assert_eq!(
        rules(&rows[2]),
        vec![RuleId::MobileAndCountry, RuleId::MobileAndCountry]
    );
    assert_eq!(
        rejected(&rows[3]),
        &[Blocker::DuplicateEmail {
            email: email(&w, ann)
        }]
    );
    // Malformed sheets are refused outright.
    for (csv, reason) in [
        ("name,deactivated\nAnn,y\n", "an email column is required"),
        ("email,salary\na@b.example,1\n", "unknown column"),
        ("email,email\na@b.example,a@b.example\n", "appears twice"),
    ] {
        let err = w.refused(w.owner_actor(), bulk(csv, BulkMode::Partial));
        assert_eq!(err.rules(), vec![RuleId::BulkSpreadsheet]);
        assert!(err.to_string().contains(reason), "{err}");
    }
    let err = w.refused(w.owner_actor(), bulk("email\n", BulkMode::Partial));
    assert_eq!(err.rules(), vec![RuleId::BulkSpreadsheet], "no data rows");
}

/// An organization whose admins may edit profiles (`SelfOrAdmin`), with Ian,
/// an active agent whose profile lacks a mobile and a country; and his email.
fn incomplete_agent_ian() -> (World, UserId, String) {
    let mut w = World::with_policies(Some(Policies {
        profile_edit: ProfileEditPolicy::SelfOrAdmin,
        ..Policies::default()
    }));
    let ian = w.incomplete_agent("Ian", &[w.root]);
    let e = email(&w, ian);
    (w, ian, e)
}

#[test]
fn r_bulk_01_a_row_may_complete_a_profile_and_deactivate_in_one_go() {
    let (mut w, ian, e) = incomplete_agent_ian();
    // Without the fields: R-LIFE-04 applies per row.
    let err = w.refused(
        w.owner_actor(),
        bulk(
            &format!("email,deactivated\n{e},y\n"),
            BulkMode::AllOrNothing,
        ),
    );
    assert_eq!(
        rejected(&rejected_rows(&err)[0]),
        &[Blocker::IncompleteProfile {
            user: ian,
            missing: vec![ProfileField::Mobile, ProfileField::DefaultCountry]
        }]
    );
    // With dummy data in the same row: accepted.
    let d = w.ok(
        w.owner_actor(),
        bulk(
            &format!("email,deactivated,mobile,country\n{e},y,+1 415 555 0177,US\n"),
            BulkMode::AllOrNothing,
        ),
    );
    assert_eq!(report(&d).applied(), 1);
    assert_eq!(w.user(ian).status, UserStatus::Deactivated);
    assert_eq!(
        w.profile(ian).mobile,
        Some(PhoneNumber::new("+14155550177"))
    );
}

#[test]
fn r_bulk_01_a_wrong_value_in_a_completing_row_is_its_only_blocker() {
    // Found by the reference-model test: the row supplies the missing
    // fields, one of them wrongly; the refusal names that value (R-USR-02),
    // not also R-LIFE-04 for the field the row does supply.
    let (mut w, ian, e) = incomplete_agent_ian();
    let err = w.refused(
        w.owner_actor(),
        bulk(
            &format!("email,deactivated,mobile,country\n{e},y,+1 415 555 0177,Q1\n"),
            BulkMode::AllOrNothing,
        ),
    );
    let blockers = rejected(&rejected_rows(&err)[0]);
    let rules: Vec<RuleId> = blockers.iter().map(Blocker::rule).collect();
    assert_eq!(rules, [RuleId::MobileAndCountry], "{blockers:?}");
    // A field the row leaves out is still missing.
    let err = w.refused(
        w.owner_actor(),
        bulk(
            &format!("email,deactivated,country\n{e},y,Q1\n"),
            BulkMode::AllOrNothing,
        ),
    );
    let blockers = rejected(&rejected_rows(&err)[0]);
    assert!(
        blockers.contains(&Blocker::IncompleteProfile {
            user: ian,
            missing: vec![ProfileField::Mobile]
        }),
        "{blockers:?}"
    );
    assert_eq!(blockers.len(), 2, "{blockers:?}");
    assert_eq!(w.user(ian).status, UserStatus::Active, "nothing changed");
}

// ---------------------------------------------------------------- R-BULK-02

#[test]
fn r_bulk_02_manage_team_holders_are_reported_and_left_unchanged() {
    let Team {
        mut w,
        ann,
        bob,
        tom,
        ..
    } = team(None);
    let alan = w.agency_admin("Alan");
    let csv = format!(
        "email,deactivated\n{},y\n{},y\n{},y\n{},y\n",
        email(&w, ann),
        email(&w, tom),
        email(&w, bob),
        email(&w, alan),
    );
    // Partial: the agents go, the leader and the administrator stay.
    let d = w.ok(w.owner_actor(), bulk(&csv, BulkMode::Partial));
    let r = report(&d);
    assert_eq!(r.applied(), 2);
    assert_eq!(r.rejected(), 2);
    assert_eq!(
        rejected(&r.rows[1]),
        &[Blocker::ManagesTeamInBulk { user: tom }]
    );
    assert_eq!(
        rejected(&r.rows[3]),
        &[Blocker::ManagesTeamInBulk { user: alan }]
    );
    assert!(r.rows[1].to_string().contains("ManageTeam"));
    assert_eq!(w.user(ann).status, UserStatus::Deactivated);
    assert_eq!(w.user(bob).status, UserStatus::Deactivated);
    assert_eq!(w.user(tom).status, UserStatus::Active);
    assert_eq!(w.user(alan).status, UserStatus::Active);
    // The manual path works once reports are reassigned (here: none).
    w.ok(
        w.owner_actor(),
        Command::Deactivate {
            user: tom,
            forward_numbers_to: None,
            reassign_reports: None,
        },
    );
}

#[test]
fn r_bulk_02_a_leader_row_refuses_an_all_or_nothing_run() {
    let Team {
        mut w, ann, tom, ..
    } = team(None);
    let csv = format!(
        "email,deactivated\n{},y\n{},y\n",
        email(&w, ann),
        email(&w, tom)
    );
    let err = w.refused(w.owner_actor(), bulk(&csv, BulkMode::AllOrNothing));
    let rows = rejected_rows(&err);
    assert_eq!(rows.len(), 1);
    assert_eq!(rows[0].row, 2);
    assert_eq!(
        rejected(&rows[0]),
        &[Blocker::ManagesTeamInBulk { user: tom }]
    );
    assert_eq!(w.user(ann).status, UserStatus::Active);
}

// ---------------------------------------------------------------- R-BULK-03

#[test]
fn r_bulk_03_all_or_nothing_is_the_default_and_names_each_bad_row() {
    assert_eq!(BulkMode::default(), BulkMode::AllOrNothing);
    let Team {
        mut w,
        ann,
        bob,
        cat,
        ..
    } = team(None);
    let n = w.number_for(w.root, bob);
    let csv = format!(
        "email,deactivated\n{},y\n{},y\n{},y\nghost@northwind.example,y\n",
        email(&w, ann),
        email(&w, bob),
        email(&w, cat),
    );
    let err = w.refused(w.owner_actor(), bulk(&csv, BulkMode::default()));
    let rows = rejected_rows(&err);
    assert_eq!(rows.iter().map(|r| r.row).collect::<Vec<_>>(), vec![2, 4]);
    assert_eq!(rows[0].email, email(&w, bob));
    assert_eq!(
        rejected(&rows[0]),
        &[Blocker::NumbersStillAssigned {
            user: bob,
            numbers: vec![PhoneNumber::from(n)],
            rule: RuleId::NumberAssignee
        }]
    );
    assert_eq!(rows[1].email, "ghost@northwind.example");
    let text = err.to_string();
    assert!(
        text.contains("2 row(s) rejected, nothing applied"),
        "{text}"
    );
    for u in [ann, bob, cat] {
        assert_eq!(w.user(u).status, UserStatus::Active, "nothing applied");
    }
}

#[test]
fn r_bulk_03_partial_mode_applies_valid_rows_and_reports_the_rest() {
    let Team {
        mut w,
        ann,
        bob,
        cat,
        ..
    } = team(None);
    w.number_for(w.root, bob);
    let csv = format!(
        "email,deactivated\n{},y\n{},y\n{},y\nghost@northwind.example,y\n",
        email(&w, ann),
        email(&w, bob),
        email(&w, cat),
    );
    let d = w.ok(w.owner_actor(), bulk(&csv, BulkMode::Partial));
    let r = report(&d);
    assert_eq!(r.rows.len(), 4);
    assert_eq!(r.applied(), 2);
    assert_eq!(r.rejected(), 2);
    assert_eq!(d.events.len(), 2);
    assert_eq!(w.user(ann).status, UserStatus::Deactivated);
    assert_eq!(w.user(bob).status, UserStatus::Active);
    assert_eq!(w.user(cat).status, UserStatus::Deactivated);
    // Nothing valid at all in partial mode: accepted, nothing recorded, all reported.
    let before = w.events.len();
    let d = w.ok(
        w.owner_actor(),
        bulk(
            "email,deactivated\nghost@northwind.example,y\n",
            BulkMode::Partial,
        ),
    );
    assert_eq!(report(&d).rejected(), 1);
    assert_eq!(w.events.len(), before);
    w.assert_replays();
}

// Found by `cargo mutants`: no spreadsheet said `y` of a user already
// deactivated or of an invitee, or `n` of an active user, and none had a
// name column; so those rows could be treated wrongly, and names dropped,
// unnoticed.
#[test]
fn r_bulk_01_rows_that_ask_for_the_current_status_change_nothing_and_names_are_edited() {
    let Team {
        mut w,
        ann,
        bob,
        cat,
        ..
    } = team(Some(Policies {
        profile_edit: ProfileEditPolicy::SelfOrAdmin,
        ..Policies::default()
    }));
    w.ok(
        w.owner_actor(),
        Command::Deactivate {
            user: cat,
            forward_numbers_to: None,
            reassign_reports: None,
        },
    );
    let ivy = w
        .invite("ivy@northwind.example", grant(agent_role(), &[w.root]))
        .user
        .expect("invited");
    let csv = format!(
        "email,deactivated,name\n\
         {},y,\n\
         {},n,\n\
         ivy@northwind.example,y,\n\
         {},,Robert\n",
        email(&w, cat),
        email(&w, ann),
        email(&w, bob),
    );
    let d = w.ok(w.owner_actor(), bulk(&csv, BulkMode::Partial));
    let r = report(&d);
    assert_eq!(
        r.rows[0].status,
        RowStatus::Unchanged,
        "already deactivated"
    );
    assert_eq!(r.rows[1].status, RowStatus::Unchanged, "already active");
    assert_eq!(
        rejected(&r.rows[2]),
        &[Blocker::WrongStatus {
            user: ivy,
            status: UserStatus::Invited,
            rule: RuleId::DeactivationEndsAccess,
        }]
    );
    assert_eq!(r.rows[3].status, RowStatus::Applied { events: 1 });
    assert_eq!(w.profile(bob).name.as_deref(), Some("Robert"));
    assert_eq!(w.user(cat).status, UserStatus::Deactivated);
    assert_eq!(w.user(ann).status, UserStatus::Active);
    w.assert_replays();
}

// ---------------------------------------------------------------- LIMIT

// Found by `cargo mutants`: no spreadsheet reached the row or the byte
// bound, so either could move unnoticed.
#[test]
fn limit_a_spreadsheet_holds_at_most_10_000_rows() {
    const ROWS: usize = 10_000;
    let mut w = World::new();
    let rows = |n: usize| {
        let mut csv = String::from("email\n");
        for i in 0..n {
            csv.push_str(&format!("nobody{i}@northwind.example\n"));
        }
        csv
    };
    let d = w.ok(w.owner_actor(), bulk(&rows(ROWS), BulkMode::Partial));
    assert_eq!(report(&d).rejected(), ROWS);
    let err = w.refused(w.owner_actor(), bulk(&rows(ROWS + 1), BulkMode::Partial));
    assert_eq!(
        only(&err),
        &Blocker::LimitExceeded {
            what: "csv rows".into(),
            limit: ROWS,
            actual: ROWS + 1,
        }
    );
}

#[test]
fn limit_a_spreadsheet_holds_at_most_4_mib() {
    const FOUR_MIB: usize = 4 * 1024 * 1024;
    let mut w = World::new();
    let ann = w.agent("Ann", &[w.root]);
    let row = format!("{},", email(&w, ann));
    // One row whose trailing cell is blank padding, to exactly the bound.
    let sized = |bytes: usize| {
        let mut csv = format!("email,name\n{row}");
        csv.push_str(&" ".repeat(bytes - csv.len() - 1));
        csv.push('\n');
        assert_eq!(csv.len(), bytes);
        csv
    };
    let d = w.ok(
        w.owner_actor(),
        bulk(&sized(FOUR_MIB), BulkMode::AllOrNothing),
    );
    assert_eq!(report(&d).rows[0].status, RowStatus::Unchanged);
    let err = w.refused(
        w.owner_actor(),
        bulk(&sized(FOUR_MIB + 1), BulkMode::AllOrNothing),
    );
    assert_eq!(
        only(&err),
        &Blocker::LimitExceeded {
            what: "csv bytes".into(),
            limit: FOUR_MIB,
            actual: FOUR_MIB + 1,
        }
    );
}
