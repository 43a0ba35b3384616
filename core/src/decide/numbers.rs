//! Numbers: R-NUM-01..06. The store-wide uniqueness of a number across
//! organizations (R-NUM-06) is a claim the service commits with the append.

use super::*;

/// R-NUM-06: a number enters the organization normalised to E.164, once.
pub(super) fn add(s: &Organization, ctx: &Context<'_>, raw: &str, account: AccountId) -> Outcome {
    let mut b = Vec::new();
    let number = check(
        crate::validate::phone_number("number", RuleId::UniqueNumber, raw),
        &mut b,
    );
    if find_account(s, account, &mut b) {
        require_on_accounts(s, ctx, Permission::ManageNumbers, [account], &mut b);
    }
    if let Some(n) = &number {
        if s.numbers.contains_key(n) {
            b.push(Blocker::NumberExists { number: n.clone() });
        }
    }
    verdict(b)?;
    let Some(number) = number else {
        return Err(Blocker::NotFound {
            missing: Missing::Organization,
        }
        .into());
    };
    accept(vec![Event::NumberAdded { number, account }])
}

/// R-NUM-04 (and R-NUM-01 for assignment): the user is active and reaches the number's account.
fn check_target(
    s: &Organization,
    number: &Number,
    user: UserId,
    rule: RuleId,
    b: &mut Vec<Blocker>,
) {
    if let Some(u) = active_user(s, user, rule, b) {
        if !u.has_access(number.account) {
            b.push(Blocker::NoAccess {
                user,
                account: number.account,
                rule,
            });
        }
    }
}

/// R-NUM-01: assigned to at most one active user with access to its account.
pub(super) fn assign(s: &Organization, ctx: &Context<'_>, raw: &str, user: UserId) -> Outcome {
    let mut b = Vec::new();
    let Some(n) = find_number(s, raw, &mut b) else {
        return Err(CommandError { blockers: b });
    };
    require_on_accounts(s, ctx, Permission::ManageNumbers, [n.account], &mut b);
    if let Some(holder) = n.assigned_to {
        b.push(Blocker::NumberAssigned {
            number: n.number.clone(),
            user: holder,
        });
    }
    check_target(s, n, user, RuleId::NumberAssignee, &mut b);
    verdict(b)?;
    let mut events = Vec::with_capacity(2);
    // An assigned number rings its user; a forward would compete with that.
    if n.forwarded_to.is_some() {
        events.push(Event::NumberForwardingStopped {
            number: n.number.clone(),
        });
    }
    events.push(Event::NumberAssigned {
        number: n.number.clone(),
        user,
    });
    accept(events)
}

/// R-NUM-03: unassigning orphans the number until it is forwarded or released.
pub(super) fn unassign(s: &Organization, ctx: &Context<'_>, raw: &str) -> Outcome {
    let mut b = Vec::new();
    let Some(n) = find_number(s, raw, &mut b) else {
        return Err(CommandError { blockers: b });
    };
    require_on_accounts(s, ctx, Permission::ManageNumbers, [n.account], &mut b);
    let Some(user) = n.assigned_to else {
        b.push(Blocker::NumberNotAssigned {
            number: n.number.clone(),
        });
        return Err(CommandError { blockers: b });
    };
    verdict(b)?;
    accept(vec![Event::NumberUnassigned {
        number: n.number.clone(),
        user,
    }])
}

/// R-NUM-04: forward to an active user with access to the number's account.
pub(super) fn forward(s: &Organization, ctx: &Context<'_>, raw: &str, to: UserId) -> Outcome {
    let mut b = Vec::new();
    let Some(n) = find_number(s, raw, &mut b) else {
        return Err(CommandError { blockers: b });
    };
    require_on_accounts(s, ctx, Permission::ManageNumbers, [n.account], &mut b);
    check_target(s, n, to, RuleId::ForwardToActiveUser, &mut b);
    verdict(b)?;
    if n.forwarded_to == Some(to) {
        return accept(Vec::new());
    }
    accept(vec![Event::NumberForwarded {
        number: n.number.clone(),
        to,
    }])
}

pub(super) fn stop_forwarding(s: &Organization, ctx: &Context<'_>, raw: &str) -> Outcome {
    let mut b = Vec::new();
    let Some(n) = find_number(s, raw, &mut b) else {
        return Err(CommandError { blockers: b });
    };
    require_on_accounts(s, ctx, Permission::ManageNumbers, [n.account], &mut b);
    if n.forwarded_to.is_none() {
        b.push(Blocker::Invalid {
            rule: RuleId::ForwardToActiveUser,
            field: "number".into(),
            reason: format!("{} is not forwarded", n.number),
        });
    }
    verdict(b)?;
    accept(vec![Event::NumberForwardingStopped {
        number: n.number.clone(),
    }])
}

/// R-NUM-03: an unassigned number may be released explicitly.
pub(super) fn release(s: &Organization, ctx: &Context<'_>, raw: &str) -> Outcome {
    let mut b = Vec::new();
    let Some(n) = find_number(s, raw, &mut b) else {
        return Err(CommandError { blockers: b });
    };
    require_on_accounts(s, ctx, Permission::ManageNumbers, [n.account], &mut b);
    if let Some(holder) = n.assigned_to {
        b.push(Blocker::NumberAssigned {
            number: n.number.clone(),
            user: holder,
        });
    }
    verdict(b)?;
    let mut events = Vec::with_capacity(2);
    if n.forwarded_to.is_some() {
        events.push(Event::NumberForwardingStopped {
            number: n.number.clone(),
        });
    }
    events.push(Event::NumberReleased {
        number: n.number.clone(),
    });
    accept(events)
}
