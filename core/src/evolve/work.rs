//! Folds the events of work items and their transfer (decided in `decide/work.rs`).

use super::*;

/// Applies one event of this area; `evolve` routes only these here.
pub(super) fn apply(state: &mut Organization, event: Event) {
    match event {
        Event::WorkItemCreated {
            item,
            kind,
            title,
            owner,
        } => {
            state.work_items.insert(
                item,
                WorkItem {
                    id: item,
                    kind,
                    title,
                    owner,
                    cancelled: false,
                },
            );
            if let Some(u) = user_mut(state, owner) {
                u.work.insert(item);
            }
        }
        Event::WorkTransferred { item, to, .. } => move_work(state, item, to),
        other => debug_assert!(
            false,
            "{} is not folded in evolve/work.rs",
            other.event_type()
        ),
    }
}
