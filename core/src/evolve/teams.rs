//! Folds the events of reporting lines (decided in `decide/teams.rs`).

use super::*;

/// Applies one event of this area; `evolve` routes only these here.
pub(super) fn apply(state: &mut Organization, event: Event) {
    match event {
        Event::ReportingLineChanged { user, leader } => {
            let previous =
                user_mut(state, user).and_then(|u| std::mem::replace(&mut u.reports_to, leader));
            if let Some(p) = previous.and_then(|p| user_mut(state, p)) {
                p.direct_reports.remove(&user);
            }
            if let Some(l) = leader.and_then(|l| user_mut(state, l)) {
                l.direct_reports.insert(user);
            }
        }
        other => debug_assert!(
            false,
            "{} is not folded in evolve/teams.rs",
            other.event_type()
        ),
    }
}
