//! Teams: R-TEAM-01 (leaders hold ManageTeam, one leader each, no cycles) and
//! R-TEAM-02 (a leader's reports are reassigned — all to one, or each to their own).

use super::*;
use crate::command::Reassignment;
use crate::validate::{self, MAX_ITEMS_PER_COMMAND};
use std::collections::{BTreeMap, BTreeSet};

/// Limit: length of a reporting chain walked when checking for cycles.
/// Real organizations are a few levels deep; this bounds the walk.
pub const MAX_REPORTING_DEPTH: usize = 1_000;

/// R-TEAM-01: whether `user` reporting to `leader` closes a cycle, given the
/// reporting lines `planned` in the same command. Cost: the chain above `leader`.
fn would_cycle(
    s: &Organization,
    planned: &BTreeMap<UserId, UserId>,
    user: UserId,
    leader: UserId,
) -> bool {
    let mut cursor = Some(leader);
    // The recorded lines never loop, but lines planned in the same command
    // may (a report sent to the leaving leader, two reports sent to each
    // other). A loop that does not pass through `user` is not this pair's
    // cycle: the pair that closes it is refused for it, or for naming the
    // leaving leader (R-OFF-01), so stop there instead of walking it.
    let mut seen = BTreeSet::new();
    for _ in 0..MAX_REPORTING_DEPTH {
        let Some(c) = cursor else { return false };
        if c == user {
            return true;
        }
        if !seen.insert(c) {
            return false;
        }
        cursor = planned
            .get(&c)
            .copied()
            .or_else(|| s.users.get(&c).and_then(|u| u.reports_to));
    }
    // A chain this long is treated as a cycle: refuse rather than walk on.
    true
}

/// R-TEAM-01: a leader is an active user holding ManageTeam.
pub(super) fn check_leader(s: &Organization, leader: UserId, b: &mut Vec<Blocker>) {
    if let Some(l) = active_user(s, leader, RuleId::ReportingLine, b) {
        if !s.holds_anywhere(l, Permission::ManageTeam) {
            b.push(Blocker::NotATeamLeader { user: leader });
        }
    }
}

pub(super) fn set_reporting_line(
    s: &Organization,
    ctx: &Context<'_>,
    user: UserId,
    leader: Option<UserId>,
) -> Outcome {
    let mut b = Vec::new();
    let Some(u) = live_user(s, user, RuleId::ReportingLine, &mut b) else {
        return Err(CommandError { blockers: b });
    };
    require_over_user(s, ctx, Permission::ManageUsers, u, &mut b);
    if let Some(l) = leader {
        check_leader(s, l, &mut b);
        if would_cycle(s, &BTreeMap::new(), user, l) {
            b.push(Blocker::ReportingCycle { user, leader: l });
        }
    }
    verdict(b)?;
    if u.reports_to == leader {
        return accept(Vec::new());
    }
    accept(vec![Event::ReportingLineChanged { user, leader }])
}

/// R-TEAM-02: events moving every report of `leader` as `to` says; blockers
/// for reports left out, non-reports named, and unfit new leaders. `leaving`
/// is a user who cannot receive reports (the leader being offboarded).
pub(crate) fn reassignment_events(
    s: &Organization,
    leader: &User,
    to: &Reassignment,
    b: &mut Vec<Blocker>,
) -> Vec<Event> {
    let reports = &leader.direct_reports;
    let plan: Vec<(UserId, UserId)> = match to {
        Reassignment::AllTo(new) => reports.iter().map(|r| (*r, *new)).collect(),
        Reassignment::Each(pairs) => {
            if check(
                validate::count("reassignments", pairs.len(), MAX_ITEMS_PER_COMMAND),
                b,
            )
            .is_none()
            {
                return Vec::new();
            }
            pairs.clone()
        }
    };
    let named: BTreeSet<UserId> = plan.iter().map(|(r, _)| *r).collect();
    let unassigned: Vec<UserId> = reports
        .iter()
        .filter(|r| !named.contains(r))
        .copied()
        .collect();
    let not_reports: Vec<UserId> = named
        .iter()
        .filter(|n| !reports.contains(n))
        .copied()
        .collect();
    if !unassigned.is_empty() || !not_reports.is_empty() || named.len() != plan.len() {
        b.push(Blocker::IncompleteReassignment {
            leader: leader.id,
            unassigned,
            not_reports,
        });
    }
    let planned: BTreeMap<UserId, UserId> = plan.iter().copied().collect();
    let mut checked = BTreeSet::new();
    for (report, new_leader) in &plan {
        if *new_leader == leader.id {
            b.push(Blocker::TargetIsSubject { user: leader.id });
            continue;
        }
        if checked.insert(*new_leader) {
            check_leader(s, *new_leader, b);
        }
        if would_cycle(s, &planned, *report, *new_leader) {
            b.push(Blocker::ReportingCycle {
                user: *report,
                leader: *new_leader,
            });
        }
    }
    plan.into_iter()
        .map(|(user, l)| Event::ReportingLineChanged {
            user,
            leader: Some(l),
        })
        .collect()
}

pub(super) fn reassign_reports(
    s: &Organization,
    ctx: &Context<'_>,
    leader: UserId,
    to: &Reassignment,
) -> Outcome {
    let mut b = Vec::new();
    let Some(l) = find_user(s, leader, &mut b) else {
        return Err(CommandError { blockers: b });
    };
    require_over_user(s, ctx, Permission::ManageUsers, l, &mut b);
    if l.direct_reports.is_empty() {
        b.push(Blocker::Invalid {
            rule: RuleId::ReassignReports,
            field: "leader".into(),
            reason: format!("{leader} has no direct reports"),
        });
    }
    let events = reassignment_events(s, l, to, &mut b);
    verdict(b)?;
    accept(events)
}
