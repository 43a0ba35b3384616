//! Bulk update from a spreadsheet (R-BULK-01..03).
//!
//! Columns (header row, case-insensitive, any order): `email` (required: finds
//! the user), `deactivated` (`y`/`yes` deactivates, `n`/`no` reactivates a
//! deactivated user, blank leaves it), `name`, `mobile`, `default_country`,
//! `job_title`. Each row is checked with the same code as the single-user
//! commands, so a row is refused for exactly the reasons the command would be.

use super::{
    admin_fields_events, check, offboard_events, profile_events, reactivate_events, verdict,
    AdminChange, Decision, OffboardInput, ProfileChange,
};
use crate::command::{BulkMode, Edit, OffboardEnd, Offboarding};
use crate::context::Context;
use crate::error::{Blocker, CommandError};
use crate::event::Event;
use crate::ids::UserId;
use crate::model::*;
use crate::rule::RuleId;
use crate::validate;
use serde::{Deserialize, Serialize};
use std::collections::BTreeSet;

/// Limit: bytes of one spreadsheet.
pub const MAX_CSV_BYTES: usize = 4 * 1024 * 1024;
/// Limit: data rows of one spreadsheet.
pub const MAX_CSV_ROWS: usize = 10_000;

/// What happened to one row.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum RowStatus {
    /// Applied (or would be, in all-or-nothing mode when every row is valid).
    Applied {
        /// How many events it yields.
        events: usize,
    },
    /// Nothing to change.
    Unchanged,
    /// Refused for these reasons; the row changes nothing.
    Rejected {
        /// Every blocker of the row.
        blockers: Vec<Blocker>,
    },
}

/// One row's outcome. `Debug` and `Display` name the row and the user, never the email.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RowOutcome {
    /// 1-based data row (the header is row 0).
    pub row: usize,
    /// The email in the row, as given.
    pub email: String,
    /// The user it names, if found.
    pub user: Option<UserId>,
    /// The outcome.
    pub status: RowStatus,
}

crate::redact::debug_redacted!(struct RowOutcome { row, @redacted email, user, status });

impl std::fmt::Display for RowOutcome {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self.user {
            Some(user) => write!(f, "row {} ({user}): ", self.row)?,
            None => write!(f, "row {} (no user): ", self.row)?,
        }
        match &self.status {
            RowStatus::Applied { events } => write!(f, "applied ({events} event(s))"),
            RowStatus::Unchanged => write!(f, "unchanged"),
            RowStatus::Rejected { blockers } => {
                let reasons: Vec<String> = blockers.iter().map(Blocker::to_string).collect();
                write!(f, "rejected: {}", reasons.join("; "))
            }
        }
    }
}

/// The report of a bulk run: every row (R-BULK-01).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct BulkReport {
    /// Every row, in order.
    pub rows: Vec<RowOutcome>,
}

impl BulkReport {
    /// Rows applied.
    pub fn applied(&self) -> usize {
        self.rows
            .iter()
            .filter(|r| matches!(r.status, RowStatus::Applied { .. }))
            .count()
    }
    /// Rows rejected.
    pub fn rejected(&self) -> usize {
        self.rows
            .iter()
            .filter(|r| matches!(r.status, RowStatus::Rejected { .. }))
            .count()
    }
}

#[derive(Default)]
struct Columns {
    email: Option<usize>,
    deactivated: Option<usize>,
    name: Option<usize>,
    mobile: Option<usize>,
    default_country: Option<usize>,
    job_title: Option<usize>,
}

fn columns(headers: &csv::StringRecord) -> Result<Columns, Blocker> {
    let mut c = Columns::default();
    for (i, h) in headers.iter().enumerate() {
        let key = h.trim().to_ascii_lowercase().replace([' ', '-'], "_");
        let slot = match key.as_str() {
            "email" => &mut c.email,
            "deactivated" => &mut c.deactivated,
            "name" => &mut c.name,
            "mobile" => &mut c.mobile,
            "default_country" | "country" => &mut c.default_country,
            "job_title" | "title" => &mut c.job_title,
            other => {
                return Err(Blocker::Invalid {
                    rule: RuleId::BulkSpreadsheet,
                    field: "header".into(),
                    reason: format!("unknown column {other:?}"),
                })
            }
        };
        if slot.replace(i).is_some() {
            return Err(Blocker::Invalid {
                rule: RuleId::BulkSpreadsheet,
                field: "header".into(),
                reason: format!("column {key:?} appears twice"),
            });
        }
    }
    if c.email.is_none() {
        return Err(Blocker::Invalid {
            rule: RuleId::BulkSpreadsheet,
            field: "header".into(),
            reason: "an email column is required".into(),
        });
    }
    Ok(c)
}

fn cell(record: &csv::StringRecord, col: Option<usize>) -> Option<&str> {
    col.and_then(|i| record.get(i))
        .map(str::trim)
        .filter(|v| !v.is_empty())
}

/// Decides one row: its events, or its blockers.
fn decide_row(
    s: &Organization,
    ctx: &Context<'_>,
    cols: &Columns,
    record: &csv::StringRecord,
    seen: &mut BTreeSet<String>,
) -> (String, Option<UserId>, Result<Vec<Event>, Vec<Blocker>>) {
    let mut b = Vec::new();
    let email = cell(record, cols.email).unwrap_or_default().to_owned();
    let Some(user) = s.user_by_email(&email) else {
        b.push(Blocker::Invalid {
            rule: RuleId::BulkSpreadsheet,
            field: "email".into(),
            reason: "no user has this email".into(),
        });
        return (email, None, Err(b));
    };
    if !seen.insert(validate::email_key(&email)) {
        b.push(Blocker::DuplicateEmail {
            email: email.clone(),
        });
    }
    let deactivate = match cell(record, cols.deactivated)
        .map(str::to_ascii_lowercase)
        .as_deref()
    {
        None => None,
        Some("y" | "yes") => Some(true),
        Some("n" | "no") => Some(false),
        Some(_) => {
            b.push(Blocker::Invalid {
                rule: RuleId::BulkSpreadsheet,
                field: "deactivated".into(),
                reason: "use y or n (or leave it blank)".into(),
            });
            None
        }
    };
    let mobile = cell(record, cols.mobile).map(|m| Edit::Set(m.to_owned()));
    let title = cell(record, cols.job_title).map(|t| Edit::Set(t.to_owned()));
    let change = ProfileChange {
        name: cell(record, cols.name),
        mobile: mobile.as_ref(),
        default_country: cell(record, cols.default_country),
        ..ProfileChange::default()
    };
    let mut events = Vec::new();
    let profile_event = profile_events(s, ctx, user.id, &change, &mut b);
    // The profile as this row asks to leave it: deactivation and reactivation
    // check completeness on it (R-LIFE-04). The values as written, not as
    // accepted: a value the row may not set or sets wrongly is already a
    // blocker of its own (R-AUTH-02, R-USR-02), so R-LIFE-04 names only the
    // fields the row leaves missing, and fixing the value fixes the row.
    let mut after = user.profile.clone();
    if let Some(p) = after.as_mut() {
        if let Some(name) = change.name {
            p.name = Some(name.to_owned());
        }
        if let Some(Edit::Set(mobile)) = change.mobile {
            p.mobile = Some(crate::PhoneNumber::new(mobile));
        }
        if let Some(country) = change.default_country {
            p.default_country = Some(country.to_owned());
        }
    }
    events.extend(profile_event);
    events.extend(admin_fields_events(
        s,
        ctx,
        user.id,
        &AdminChange {
            job_title: title.as_ref(),
            ..AdminChange::default()
        },
        &mut b,
    ));
    match deactivate {
        Some(true) if user.status == UserStatus::Active => {
            // R-BULK-02: team leaders and admins are deactivated by hand.
            if s.holds_anywhere(user, Permission::ManageTeam) {
                b.push(Blocker::ManagesTeamInBulk { user: user.id });
            } else {
                let plan = Offboarding {
                    user: user.id,
                    unassign_numbers: false,
                    forward_numbers_to: None,
                    reassign_reports: None,
                    transfer_work_to: None,
                    end: OffboardEnd::Deactivate,
                };
                let input = OffboardInput {
                    plan: &plan,
                    profile_after: after.as_ref(),
                };
                events.extend(offboard_events(s, ctx, &input, &mut b));
            }
        }
        Some(true) if user.status == UserStatus::Deactivated => {}
        Some(false) if user.status == UserStatus::Deactivated => {
            events.extend(reactivate_events(s, ctx, user.id, after.as_ref(), &mut b));
        }
        Some(true) => b.push(Blocker::WrongStatus {
            user: user.id,
            status: user.status,
            rule: RuleId::DeactivationEndsAccess,
        }),
        _ => {}
    }
    (
        email,
        Some(user.id),
        if b.is_empty() { Ok(events) } else { Err(b) },
    )
}

/// R-BULK-01..03: validates every row and reports each; all-or-nothing by
/// default, partial on request. Rows are checked against the state before the
/// run; a user may appear in one row only.
pub(crate) fn decide_bulk(
    s: &Organization,
    ctx: &Context<'_>,
    raw: &str,
    mode: BulkMode,
) -> Result<Decision, CommandError> {
    let mut b = Vec::new();
    crate::decide::require_on_accounts(s, ctx, Permission::ManageUsers, std::iter::empty(), &mut b);
    check(
        validate::count("csv bytes", raw.len(), MAX_CSV_BYTES),
        &mut b,
    );
    verdict(std::mem::take(&mut b))?;
    let mut reader = csv::ReaderBuilder::new()
        .trim(csv::Trim::All)
        .flexible(false)
        .from_reader(raw.as_bytes());
    let headers = reader.headers().map_err(|e| {
        CommandError::from(Blocker::Invalid {
            rule: RuleId::BulkSpreadsheet,
            field: "csv".into(),
            reason: e.to_string(),
        })
    })?;
    let cols = columns(headers)?;
    let mut report = BulkReport::default();
    let mut events = Vec::new();
    let mut seen = BTreeSet::new();
    for (i, record) in reader.records().enumerate() {
        let row = i + 1;
        if row > MAX_CSV_ROWS {
            return Err(Blocker::LimitExceeded {
                what: "csv rows".into(),
                limit: MAX_CSV_ROWS,
                actual: row,
            }
            .into());
        }
        let (email, user, result) = match record {
            Ok(r) => decide_row(s, ctx, &cols, &r, &mut seen),
            Err(e) => (
                String::new(),
                None,
                Err(vec![Blocker::Invalid {
                    rule: RuleId::BulkSpreadsheet,
                    field: format!("row {row}"),
                    reason: e.to_string(),
                }]),
            ),
        };
        let status = match result {
            Ok(ev) if ev.is_empty() => RowStatus::Unchanged,
            Ok(ev) => {
                let n = ev.len();
                events.extend(ev);
                RowStatus::Applied { events: n }
            }
            Err(blockers) => RowStatus::Rejected { blockers },
        };
        report.rows.push(RowOutcome {
            row,
            email,
            user,
            status,
        });
    }
    if report.rows.is_empty() {
        return Err(Blocker::Invalid {
            rule: RuleId::BulkSpreadsheet,
            field: "csv".into(),
            reason: "no data rows".into(),
        }
        .into());
    }
    if mode == BulkMode::AllOrNothing && report.rejected() > 0 {
        return Err(Blocker::BulkRowsRejected {
            rows: report
                .rows
                .into_iter()
                .filter(|r| matches!(r.status, RowStatus::Rejected { .. }))
                .collect(),
        }
        .into());
    }
    Ok(Decision {
        events,
        secrets: Vec::new(),
        report: Some(report),
    })
}
