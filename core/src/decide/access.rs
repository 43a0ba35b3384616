//! Memberships: R-MEM-01..06.

use super::*;
use crate::validate::{self, MAX_ACCOUNTS_PER_COMMAND};
use std::collections::BTreeSet;

/// R-MEM-02: give an existing user more accounts, with a role.
pub(super) fn grant(
    s: &Organization,
    ctx: &Context<'_>,
    user: UserId,
    role: &RoleId,
    accounts: &[AccountId],
) -> Outcome {
    let mut b = Vec::new();
    check(
        validate::count("accounts", accounts.len(), MAX_ACCOUNTS_PER_COMMAND),
        &mut b,
    );
    if accounts.is_empty() {
        b.push(Blocker::Invalid {
            rule: RuleId::GrantAccounts,
            field: "accounts".into(),
            reason: "name at least one account".into(),
        });
    }
    find_role(s, role, &mut b);
    let target = live_user(s, user, RuleId::GrantAccounts, &mut b);
    let mut seen = BTreeSet::new();
    for a in accounts {
        if !find_account(s, *a, &mut b) {
            continue;
        }
        if !seen.insert(*a) {
            b.push(Blocker::Invalid {
                rule: RuleId::GrantAccounts,
                field: "accounts".into(),
                reason: format!("{a} is listed twice"),
            });
        }
        if target.is_some_and(|t| t.memberships.contains_key(a)) {
            b.push(Blocker::AlreadyMember { user, account: *a });
        }
    }
    if let Some(t) = target {
        if t.agency_admin {
            // R-MEM-05: an agency administrator covers every account already;
            // other roles come after removal from all accounts.
            b.push(Blocker::AgencyAdministrator { user });
        }
    }
    require_on_accounts(
        s,
        ctx,
        Permission::ManageUsers,
        seen.iter().copied(),
        &mut b,
    );
    verdict(b)?;
    accept(
        accounts
            .iter()
            .map(|a| Event::AccessGranted {
                user,
                account: *a,
                role: role.clone(),
            })
            .collect(),
    )
}

/// R-MEM-01: raise or lower a role; R-LIFE-03: never demote the primary owner.
pub(super) fn change_role(
    s: &Organization,
    ctx: &Context<'_>,
    user: UserId,
    account: AccountId,
    role: &RoleId,
) -> Outcome {
    let mut b = Vec::new();
    find_role(s, role, &mut b);
    let target = live_user(s, user, RuleId::ChangeRole, &mut b);
    let known_account = find_account(s, account, &mut b);
    let mut from = None;
    if let (Some(t), true) = (target, known_account) {
        match t.memberships.get(&account) {
            None => b.push(Blocker::NotMember { user, account }),
            Some(current) => from = Some(current.clone()),
        }
        not_primary_owner(s, user, &mut b);
        require_on_accounts(s, ctx, Permission::ManageUsers, [account], &mut b);
        // A leader keeps ManageTeam somewhere or hands over their reports (R-TEAM-01).
        let keeps_team = holds_manage_team(
            s,
            t.agency_admin,
            t.memberships
                .iter()
                .filter(|(a, _)| **a != account)
                .map(|(_, r)| r)
                .chain(std::iter::once(role)),
        );
        access_loss_blockers(s, t, |_| true, keeps_team, &mut b);
    }
    verdict(b)?;
    match from {
        Some(from) if &from != role => accept(vec![Event::RoleChanged {
            user,
            account,
            from,
            to: role.clone(),
        }]),
        _ => accept(Vec::new()),
    }
}

/// R-MEM-03, R-MEM-04, R-MEM-06: remove access to one or several accounts,
/// atomically; R-MEM-05: not for agency administrators.
pub(super) fn remove(
    s: &Organization,
    ctx: &Context<'_>,
    user: UserId,
    accounts: &[AccountId],
) -> Outcome {
    let mut b = Vec::new();
    check(
        validate::count("accounts", accounts.len(), MAX_ACCOUNTS_PER_COMMAND),
        &mut b,
    );
    if accounts.is_empty() {
        b.push(Blocker::Invalid {
            rule: RuleId::RemoveFromSeveralAccounts,
            field: "accounts".into(),
            reason: "name at least one account".into(),
        });
    }
    let Some(target) = live_user(s, user, RuleId::RemoveFromAccount, &mut b) else {
        return Err(CommandError { blockers: b });
    };
    if target.agency_admin {
        b.push(Blocker::AgencyAdministrator { user });
    }
    not_primary_owner(s, user, &mut b);
    not_self(ctx, user, &mut b);
    let removed: BTreeSet<AccountId> = accounts.iter().copied().collect();
    if removed.len() != accounts.len() {
        b.push(Blocker::Invalid {
            rule: RuleId::RemoveFromSeveralAccounts,
            field: "accounts".into(),
            reason: "an account is listed twice".into(),
        });
    }
    for a in &removed {
        if find_account(s, *a, &mut b) && !target.memberships.contains_key(a) {
            b.push(Blocker::NotMember { user, account: *a });
        }
    }
    require_on_accounts(
        s,
        ctx,
        Permission::ManageUsers,
        removed
            .iter()
            .copied()
            .filter(|a| s.accounts.contains_key(a)),
        &mut b,
    );
    let keeps_team = holds_manage_team(
        s,
        target.agency_admin,
        target
            .memberships
            .iter()
            .filter(|(a, _)| !removed.contains(a))
            .map(|(_, r)| r),
    );
    access_loss_blockers(
        s,
        target,
        |a| target.agency_admin || (target.memberships.contains_key(&a) && !removed.contains(&a)),
        keeps_team,
        &mut b,
    );
    verdict(b)?;
    accept(
        accounts
            .iter()
            .map(|a| Event::AccessRemoved { user, account: *a })
            .collect(),
    )
}

/// R-MEM-05, R-MEM-06: remove a user — agency administrator or not — from
/// every account at once; afterwards other roles may be granted.
pub(super) fn remove_from_all(s: &Organization, ctx: &Context<'_>, user: UserId) -> Outcome {
    let mut b = Vec::new();
    let Some(target) = live_user(s, user, RuleId::AgencyAdministratorAllOrNothing, &mut b) else {
        return Err(CommandError { blockers: b });
    };
    not_primary_owner(s, user, &mut b);
    not_self(ctx, user, &mut b);
    require_over_user(s, ctx, Permission::ManageUsers, target, &mut b);
    access_loss_blockers(s, target, |_| false, false, &mut b);
    if target.memberships.is_empty() && !target.agency_admin {
        b.push(Blocker::Invalid {
            rule: RuleId::AgencyAdministratorAllOrNothing,
            field: "user".into(),
            reason: format!("{user} has no access to remove"),
        });
    }
    verdict(b)?;
    let mut events: Vec<Event> = target
        .memberships
        .keys()
        .map(|a| Event::AccessRemoved { user, account: *a })
        .collect();
    if target.agency_admin {
        events.push(Event::AgencyAdminRevoked { user });
    }
    accept(events)
}
