//! Organization, policies, accounts, roles; transfer of primary ownership (R-LIFE-03).

use super::*;
use crate::event::PersonalData;
use crate::validate::{self, MAX_TEXT_LEN};

/// Limit: depth of the account tree (an agency with sub-accounts of sub-accounts...).
pub const MAX_ACCOUNT_DEPTH: usize = 32;

pub(super) fn create(
    s: &Organization,
    ctx: &Context<'_>,
    name: &str,
    root_account_name: &str,
    owner_email: &str,
    owner_name: &str,
    policies: Option<&Policies>,
) -> Outcome {
    let mut b = Vec::new();
    if s.created {
        b.push(Blocker::AlreadyCreated);
    }
    if ctx.actor.user_id().is_some() {
        b.push(Blocker::PermissionDenied {
            actor: ctx.actor.clone(),
            permission: Permission::ManageAccounts,
            account: None,
        });
    }
    let name = check(validate::text("name", name, MAX_TEXT_LEN), &mut b);
    let root = check(
        validate::text("root_account_name", root_account_name, MAX_TEXT_LEN),
        &mut b,
    );
    let email = check(validate::email(owner_email), &mut b);
    let owner_name = check(
        validate::text("owner_name", owner_name, MAX_TEXT_LEN),
        &mut b,
    );
    let policies = policies.cloned().unwrap_or_default();
    check_policies(&policies, &mut b);
    verdict(b)?;
    // Every `None` above pushed a blocker, so all are `Some` here.
    accept(vec![Event::OrganizationCreated {
        name: name.unwrap_or_default(),
        policies,
        root_account: new_id(ctx),
        root_account_name: root.unwrap_or_default(),
        owner: new_id(ctx),
        owner_personal: PersonalData {
            name: owner_name,
            email,
            ..PersonalData::default()
        },
    }])
}

fn check_policies(p: &Policies, b: &mut Vec<Blocker>) {
    if !(1..=365).contains(&p.invitation_ttl_days) {
        b.push(Blocker::Invalid {
            rule: RuleId::InvitationExpiry,
            field: "invitation_ttl_days".into(),
            reason: format!("{} is outside 1..=365", p.invitation_ttl_days),
        });
    }
    if !(1..=720).contains(&p.password_reset_ttl_hours) {
        b.push(Blocker::Invalid {
            rule: RuleId::PasswordReset,
            field: "password_reset_ttl_hours".into(),
            reason: format!("{} is outside 1..=720", p.password_reset_ttl_hours),
        });
    }
}

pub(super) fn set_policies(s: &Organization, ctx: &Context<'_>, policies: &Policies) -> Outcome {
    let mut b = Vec::new();
    require_org_wide(s, ctx, Permission::ManageRoles, &mut b);
    check_policies(policies, &mut b);
    verdict(b)?;
    accept(vec![Event::PoliciesChanged {
        policies: policies.clone(),
    }])
}

/// R-LIFE-03: ownership moves only by the owner's (or support's) act, to an active user.
pub(super) fn transfer_ownership(s: &Organization, ctx: &Context<'_>, to: UserId) -> Outcome {
    let mut b = Vec::new();
    let from = s.primary_owner;
    match ctx.actor.user_id() {
        Some(actor) if Some(actor) != from => b.push(Blocker::NotPrimaryOwner {
            actor: ctx.actor.clone(),
        }),
        Some(_) => {
            if let Err(e) = acting_user(s, ctx) {
                b.push(e);
            }
        }
        None => {}
    }
    let target = active_user(s, to, RuleId::PrimaryOwnerProtected, &mut b);
    if from == Some(to) {
        b.push(Blocker::Invalid {
            rule: RuleId::PrimaryOwnerProtected,
            field: "to".into(),
            reason: format!("{to} is the primary owner already"),
        });
    }
    verdict(b)?;
    let (Some(from), Some(target)) = (from, target) else {
        return Err(Blocker::NotFound {
            missing: Missing::Organization,
        }
        .into());
    };
    let mut events = vec![Event::PrimaryOwnershipTransferred { from, to }];
    // The primary owner holds every permission everywhere.
    if !target.agency_admin {
        events.push(Event::AgencyAdminGranted { user: to });
    }
    accept(events)
}

pub(super) fn create_account(
    s: &Organization,
    ctx: &Context<'_>,
    name: &str,
    parent: AccountId,
) -> Outcome {
    let mut b = Vec::new();
    let name = check(validate::text("name", name, MAX_TEXT_LEN), &mut b);
    if find_account(s, parent, &mut b) {
        require_on_accounts(s, ctx, Permission::ManageAccounts, [parent], &mut b);
        // Walk up: bounded by the depth limit, never by the size of the tree.
        let mut depth = 1;
        let mut cursor = s.accounts.get(&parent).and_then(|a| a.parent);
        while let Some(p) = cursor {
            depth += 1;
            if depth >= MAX_ACCOUNT_DEPTH {
                b.push(Blocker::LimitExceeded {
                    what: "account depth".into(),
                    limit: MAX_ACCOUNT_DEPTH,
                    actual: depth + 1,
                });
                break;
            }
            cursor = s.accounts.get(&p).and_then(|a| a.parent);
        }
    }
    verdict(b)?;
    accept(vec![Event::AccountCreated {
        account: new_id(ctx),
        name: name.unwrap_or_default(),
        parent,
    }])
}

pub(super) fn define_role(
    s: &Organization,
    ctx: &Context<'_>,
    role: &RoleId,
    name: &str,
    permissions: &[Permission],
) -> Outcome {
    let mut b = Vec::new();
    require_org_wide(s, ctx, Permission::ManageRoles, &mut b);
    check(validate::role_slug(role.as_str()), &mut b);
    let name = check(validate::text("name", name, MAX_TEXT_LEN), &mut b);
    check(
        validate::count("permissions", permissions.len(), Permission::ALL.len()),
        &mut b,
    );
    let permissions: std::collections::BTreeSet<Permission> = permissions.iter().copied().collect();
    if let Some(existing) = s.roles.get(role) {
        if existing.built_in {
            b.push(Blocker::BuiltInRole { role: role.clone() });
        } else if existing.permissions.contains(&Permission::ManageTeam)
            && !permissions.contains(&Permission::ManageTeam)
        {
            // Removing ManageTeam would silently strip team leaders of their
            // teams (R-TEAM-01); checking every holder would cost the size of
            // the organization. Define a new role and move leaders instead.
            b.push(Blocker::Invalid {
                rule: RuleId::ReportingLine,
                field: "permissions".into(),
                reason: format!(
                    "{role} grants ManageTeam; it cannot be taken from an existing role"
                ),
            });
        }
    }
    verdict(b)?;
    accept(vec![Event::RoleDefined {
        role: Role {
            id: role.clone(),
            name: name.unwrap_or_default(),
            permissions,
            built_in: false,
        },
    }])
}
