//! Folds the events of reporting lines (decided in `decide/teams.rs`).

use super::*;

/// Applies one event of this area; `evolve` routes only these here.
pub(super) fn apply(state: &mut Organization, event: &Event) {
    match event {
        Event::ReportingLineChanged { user, leader } => {
            let previous = state
                .users
                .get_mut(user)
                .and_then(|u| std::mem::replace(&mut u.reports_to, *leader));
            if let Some(p) = previous.and_then(|p| state.users.get_mut(&p)) {
                p.direct_reports.remove(user);
            }
            if let Some(l) = leader.and_then(|l| state.users.get_mut(&l)) {
                l.direct_reports.insert(*user);
            }
        }
        other => debug_assert!(
            false,
            "{} is not folded in evolve/teams.rs",
            other.event_type()
        ),
    }
}
