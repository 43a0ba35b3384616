//! Work: R-WORK-01 (transfer all, by kind, or chosen items to an active user)
//! and R-WORK-02 (reassign clients).

use super::*;
use crate::command::WorkSelection;
use crate::validate::{self, MAX_ITEMS_PER_COMMAND, MAX_TEXT_LEN};
use std::collections::BTreeSet;

pub(super) fn create(
    s: &Organization,
    ctx: &Context<'_>,
    kind: WorkKind,
    title: &str,
    owner: UserId,
) -> Outcome {
    let mut b = Vec::new();
    let title = check(validate::text("title", title, MAX_TEXT_LEN), &mut b);
    if let Some(o) = active_user(s, owner, RuleId::TransferWork, &mut b) {
        if ctx.actor.user_id() == Some(owner) {
            if let Err(e) = acting_user(s, ctx) {
                b.push(e);
            }
        } else {
            require_over_user(s, ctx, Permission::ManageUsers, o, &mut b);
        }
    }
    verdict(b)?;
    accept(vec![Event::WorkItemCreated {
        item: new_id(ctx),
        kind,
        title: title.unwrap_or_default(),
        owner,
    }])
}

/// The items a selection names, with blockers for items not owned by `from`.
/// Cost: the user's own work.
pub(crate) fn select_work(
    s: &Organization,
    from: &User,
    selection: &WorkSelection,
    b: &mut Vec<Blocker>,
) -> Vec<WorkItemId> {
    match selection {
        WorkSelection::All => from.work.iter().copied().collect(),
        WorkSelection::Kinds(kinds) => {
            if check(
                validate::count("kinds", kinds.len(), MAX_ITEMS_PER_COMMAND),
                b,
            )
            .is_none()
            {
                return Vec::new();
            }
            let kinds: BTreeSet<WorkKind> = kinds.iter().copied().collect();
            from.work
                .iter()
                .filter(|w| {
                    s.work_items
                        .get(*w)
                        .is_some_and(|w| kinds.contains(&w.kind))
                })
                .copied()
                .collect()
        }
        WorkSelection::Items(items) => {
            if check(
                validate::count("items", items.len(), MAX_ITEMS_PER_COMMAND),
                b,
            )
            .is_none()
            {
                return Vec::new();
            }
            let mut seen = BTreeSet::new();
            for i in items {
                match s.work_items.get(i) {
                    None => b.push(Blocker::NotFound {
                        missing: Missing::WorkItem(*i),
                    }),
                    Some(w) if w.owner != from.id => b.push(Blocker::NotOwner {
                        item: *i,
                        owner: w.owner,
                    }),
                    Some(_) => {}
                }
                if !seen.insert(*i) {
                    b.push(Blocker::Invalid {
                        rule: RuleId::TransferWork,
                        field: "items".into(),
                        reason: format!("{i} is listed twice"),
                    });
                }
            }
            items.clone()
        }
    }
}

/// R-WORK-01: the items move to an active user (not the current owner).
pub(crate) fn transfer_events(
    from: UserId,
    to: UserId,
    items: &[WorkItemId],
    b: &mut Vec<Blocker>,
) -> Vec<Event> {
    if check(
        validate::count("work items", items.len(), MAX_ITEMS_PER_COMMAND),
        b,
    )
    .is_none()
    {
        return Vec::new();
    }
    if from == to {
        b.push(Blocker::TargetIsSubject { user: from });
    }
    items
        .iter()
        .map(|item| Event::WorkTransferred {
            item: *item,
            from,
            to,
        })
        .collect()
}

pub(super) fn transfer(
    s: &Organization,
    ctx: &Context<'_>,
    from: UserId,
    to: UserId,
    selection: &WorkSelection,
) -> Outcome {
    let mut b = Vec::new();
    let owner = find_user(s, from, &mut b);
    active_user(s, to, RuleId::TransferWork, &mut b);
    let Some(owner) = owner else {
        return Err(CommandError { blockers: b });
    };
    require_over_user(s, ctx, Permission::ManageUsers, owner, &mut b);
    let items = select_work(s, owner, selection, &mut b);
    let events = transfer_events(from, to, &items, &mut b);
    verdict(b)?;
    accept(events)
}

/// R-WORK-02: each client to its new owner, an active user.
pub(super) fn reassign_clients(
    s: &Organization,
    ctx: &Context<'_>,
    assignments: &[(WorkItemId, UserId)],
) -> Outcome {
    let mut b = Vec::new();
    check(
        validate::count("assignments", assignments.len(), MAX_ITEMS_PER_COMMAND),
        &mut b,
    );
    if assignments.is_empty() {
        b.push(Blocker::Invalid {
            rule: RuleId::ReassignClients,
            field: "assignments".into(),
            reason: "name at least one client".into(),
        });
    }
    verdict(std::mem::take(&mut b))?;
    let mut seen = BTreeSet::new();
    let mut events = Vec::with_capacity(assignments.len());
    for (item, to) in assignments {
        if !seen.insert(*item) {
            b.push(Blocker::Invalid {
                rule: RuleId::ReassignClients,
                field: "assignments".into(),
                reason: format!("{item} is listed twice"),
            });
            continue;
        }
        active_user(s, *to, RuleId::ReassignClients, &mut b);
        let Some(w) = s.work_items.get(item) else {
            b.push(Blocker::NotFound {
                missing: Missing::WorkItem(*item),
            });
            continue;
        };
        if w.kind != WorkKind::Client {
            b.push(Blocker::NotAClient { item: *item });
            continue;
        }
        if let Some(owner) = s.users.get(&w.owner) {
            require_over_user(s, ctx, Permission::ManageUsers, owner, &mut b);
        }
        if w.owner != *to {
            events.push(Event::WorkTransferred {
                item: *item,
                from: w.owner,
                to: *to,
            });
        }
    }
    // The same actor may be denied on several owners' accounts: report each once.
    b.dedup();
    verdict(b)?;
    accept(events)
}
