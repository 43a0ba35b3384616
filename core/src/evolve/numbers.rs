//! Folds the events of phone numbers: added, assigned, forwarded, released (decided in `decide/numbers.rs`).

use super::*;

/// Applies one event of this area; `evolve` routes only these here.
pub(super) fn apply(state: &mut Organization, event: Event) {
    match event {
        Event::NumberAdded { number, account } => {
            state.numbers.insert(
                number.clone(),
                Number {
                    number,
                    account,
                    assigned_to: None,
                    forwarded_to: None,
                    ever_assigned: false,
                },
            );
        }
        Event::NumberAssigned { number, user } => {
            if let Some(n) = state.numbers.get_mut(&number) {
                n.assigned_to = Some(user);
                n.ever_assigned = true;
            }
            refresh_orphan(state, &number);
            if let Some(u) = user_mut(state, user) {
                u.assigned_numbers.insert(number);
            }
        }
        Event::NumberUnassigned { number, user } => {
            if let Some(n) = state.numbers.get_mut(&number) {
                n.assigned_to = None;
            }
            if let Some(u) = user_mut(state, user) {
                u.assigned_numbers.remove(&number);
            }
            refresh_orphan(state, &number);
        }
        Event::NumberForwarded { number, to } => {
            let previous = state
                .numbers
                .get_mut(&number)
                .and_then(|n| n.forwarded_to.replace(to));
            if let Some(p) = previous.and_then(|p| user_mut(state, p)) {
                p.forwarded_numbers.remove(&number);
            }
            refresh_orphan(state, &number);
            if let Some(u) = user_mut(state, to) {
                u.forwarded_numbers.insert(number);
            }
        }
        Event::NumberForwardingStopped { number } => {
            let previous = state
                .numbers
                .get_mut(&number)
                .and_then(|n| n.forwarded_to.take());
            if let Some(p) = previous.and_then(|p| user_mut(state, p)) {
                p.forwarded_numbers.remove(&number);
            }
            refresh_orphan(state, &number);
        }
        Event::NumberReleased { number } => {
            if let Some(n) = state.numbers.remove(&number) {
                for u in [n.assigned_to, n.forwarded_to].into_iter().flatten() {
                    if let Some(u) = user_mut(state, u) {
                        u.assigned_numbers.remove(&number);
                        u.forwarded_numbers.remove(&number);
                    }
                }
            }
            state.orphaned_index.remove(&number);
        }
        other => debug_assert!(
            false,
            "{} is not folded in evolve/numbers.rs",
            other.event_type()
        ),
    }
}
