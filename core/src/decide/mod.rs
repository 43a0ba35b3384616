//! `decide(&state, &command, &ctx)`: checks a command against the rules and
//! yields events, or every blocker at once (R-OFF-02).
//!
//! Control flow lives here and in one function per command; the checks are
//! small pure functions ("guards") that push blockers into a list, so a
//! refusal always reports everything that stands in the way. To find a rule's
//! code, grep its id (`R-NUM-02`) or its [`RuleId`] variant
//! (`NumbersBlockDeletion`): every guard names the rule it enforces.
//!
//! | file | rules |
//! |---|---|
//! | `organization.rs` | org creation, policies, accounts, roles, R-LIFE-03 transfer |
//! | `invitations.rs` | R-INV-01..07, R-INV-04 sign-in |
//! | `profile.rs` | R-AUTH-02, R-AUTH-03, R-USR-01/02, R-LIFE-07, R-LIFE-08 |
//! | `access.rs` | R-MEM-01..06 |
//! | `numbers.rs` | R-NUM-01..06 |
//! | `teams.rs` | R-TEAM-01/02 |
//! | `work.rs` | R-WORK-01/02 |
//! | `lifecycle.rs` | R-LIFE-01..06, R-LIFE-09, R-NUM-02, R-NUM-05, R-OFF-01 |
//! | `../bulk.rs` | R-BULK-01..03 |

mod access;
pub mod bulk;
mod invitations;
mod lifecycle;
mod numbers;
mod organization;
mod profile;
mod teams;
mod work;

use crate::command::Command;
use crate::context::{Actor, Context};
use crate::error::{Blocker, CommandError, Missing};
use crate::event::Event;
use crate::ids::*;
use crate::model::*;
use crate::rule::RuleId;
use crate::store::MAX_EVENTS_PER_APPEND;
use bulk::BulkReport;
use serde::{Deserialize, Serialize};

pub(crate) use lifecycle::{offboard_events, reactivate_events, OffboardInput};
pub(crate) use profile::{admin_fields_events, profile_events, AdminChange, ProfileChange};

/// What a secret token was issued for. `Debug` hides the email.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub enum SecretPurpose {
    /// An invitation; `email` is set for email invitations (send it there).
    Invitation {
        /// The invitation.
        invitation: InvitationId,
        /// The invited user, for email invitations.
        user: Option<UserId>,
        /// Where to send it.
        email: Option<String>,
    },
    /// A password reset for this user.
    PasswordReset {
        /// The user.
        user: UserId,
    },
}

/// A secret token issued by a command. Only its hash is recorded; this is the
/// caller's only chance to deliver it (R-INV-03, R-LIFE-07). `Debug` hides
/// the token.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct IssuedSecret {
    /// What for.
    pub purpose: SecretPurpose,
    /// The token text.
    pub token: String,
}

crate::redact::debug_redacted!(enum SecretPurpose {
    Invitation { invitation, user, @redacted email },
    PasswordReset { user },
});

// Secrets stay out of logs.
crate::redact::debug_redacted!(struct IssuedSecret { purpose, @redacted token });

/// What an accepted command yields.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Decision {
    /// The events, in order. May be empty when the command changes nothing.
    pub events: Vec<Event>,
    /// Tokens issued (invitations, password resets).
    pub secrets: Vec<IssuedSecret>,
    /// The per-row report of a bulk run.
    pub report: Option<BulkReport>,
}

impl Decision {
    /// What the decision's events would create (see [`crate::Created`]).
    pub fn created(&self) -> crate::Created {
        crate::Created::from_events(&self.events)
    }

    fn events(events: Vec<Event>) -> Self {
        Self {
            events,
            ..Self::default()
        }
    }
}

/// Decides a command against the state: events, or every blocker.
///
/// Pure: the same state, command and context always give the same answer.
/// Also the dry run of R-OFF-02: call it and drop the events.
///
/// ```
/// use switchboard_core::*;
/// use chrono::TimeZone;
/// let ids = SequentialIds::new(1);
/// let secrets = SeededSecrets::new(1);
/// let ctx = Context {
///     actor: Actor::System,
///     now: chrono::Utc.with_ymd_and_hms(2026, 1, 1, 0, 0, 0).unwrap(),
///     command_id: CommandId::from_uuid(ids.next_id()),
///     ids: &ids,
///     secrets: &secrets,
/// };
/// let org = Organization::empty(OrgId::from_uuid(ids.next_id()));
/// let create = Command::CreateOrganization {
///     name: "Acme".into(),
///     root_account_name: "Acme HQ".into(),
///     owner_email: "ada@acme.example".into(),
///     owner_name: "Ada".into(),
///     policies: None,
/// };
/// let decision = decide(&org, &create, &ctx).unwrap();
/// let state = fold(org.id, &decision.events);
/// assert_eq!(state.users.len(), 1);
/// ```
pub fn decide(
    state: &Organization,
    command: &Command,
    ctx: &Context<'_>,
) -> Result<Decision, CommandError> {
    if !state.created && !matches!(command, Command::CreateOrganization { .. }) {
        return Err(Blocker::NotFound {
            missing: Missing::Organization,
        }
        .into());
    }
    if let Actor::Support { agent } = &ctx.actor {
        // R-AUTH-04: the actor is recorded on every event; bound what is recorded.
        check_actor_name(agent)?;
    }
    let decision = dispatch(state, command, ctx)?;
    if decision.events.len() > MAX_EVENTS_PER_APPEND {
        return Err(Blocker::TooMuchWork {
            what: format!("events of {}", command.name()),
            limit: MAX_EVENTS_PER_APPEND,
            actual: decision.events.len(),
        }
        .into());
    }
    Ok(decision)
}

fn check_actor_name(agent: &str) -> Result<(), CommandError> {
    crate::validate::text("actor.agent", agent, crate::validate::MAX_TEXT_LEN)
        .map(|_| ())
        .map_err(|b| CommandError { blockers: vec![b] })
}

fn dispatch(
    s: &Organization,
    command: &Command,
    ctx: &Context<'_>,
) -> Result<Decision, CommandError> {
    use Command::*;
    match command {
        CreateOrganization {
            name,
            root_account_name,
            owner_email,
            owner_name,
            policies,
        } => organization::create(
            s,
            ctx,
            name,
            root_account_name,
            owner_email,
            owner_name,
            policies.as_ref(),
        ),
        SetPolicies { policies } => organization::set_policies(s, ctx, policies),
        TransferPrimaryOwnership { to } => organization::transfer_ownership(s, ctx, *to),
        CreateAccount { name, parent } => organization::create_account(s, ctx, name, *parent),
        DefineRole {
            role,
            name,
            permissions,
        } => organization::define_role(s, ctx, role, name, permissions),
        InviteUsers { emails, grant } => invitations::invite(s, ctx, emails, grant),
        ProvisionUser { .. } => invitations::provision(s, ctx, command),
        CreateInvitationLink { grant } => invitations::create_link(s, ctx, grant),
        Reinvite { invitation } => invitations::reinvite(s, ctx, *invitation),
        RevokeInvitation { invitation } => invitations::revoke(s, ctx, *invitation),
        ExpireInvitations { limit } => invitations::expire(s, ctx, *limit),
        AcceptInvitation {
            token,
            email,
            name,
            mobile,
            default_country,
        } => invitations::accept_invitation(
            s,
            ctx,
            token,
            email.as_deref(),
            name,
            mobile.as_deref(),
            default_country.as_deref(),
        ),
        SignIn { user, device_name } => invitations::sign_in(s, ctx, *user, device_name),
        SignOutDevice { user, device } => profile::sign_out(s, ctx, *user, *device),
        UpdateProfile { .. } => profile::update_profile(s, ctx, command),
        UpdateAdminFields { .. } => profile::update_admin_fields(s, ctx, command),
        SetExternalId { user, external_id } => profile::set_external_id(s, ctx, *user, external_id),
        SetSignInName { user, sign_in_name } => {
            profile::set_sign_in_name(s, ctx, *user, sign_in_name)
        }
        RequestPasswordReset { user } => profile::password_reset(s, ctx, *user),
        GrantAccess {
            user,
            role,
            accounts,
        } => access::grant(s, ctx, *user, role, accounts),
        ChangeRole {
            user,
            account,
            role,
        } => access::change_role(s, ctx, *user, *account, role),
        RemoveAccess { user, accounts } => access::remove(s, ctx, *user, accounts),
        RemoveFromAllAccounts { user } => access::remove_from_all(s, ctx, *user),
        AddNumber { number, account } => numbers::add(s, ctx, number, *account),
        AssignNumber { number, user } => numbers::assign(s, ctx, number, *user),
        UnassignNumber { number } => numbers::unassign(s, ctx, number),
        ForwardNumber { number, to } => numbers::forward(s, ctx, number, *to),
        StopForwarding { number } => numbers::stop_forwarding(s, ctx, number),
        ReleaseNumber { number } => numbers::release(s, ctx, number),
        SetReportingLine { user, leader } => teams::set_reporting_line(s, ctx, *user, *leader),
        ReassignReports { leader, to } => teams::reassign_reports(s, ctx, *leader, to),
        CreateWorkItem { kind, title, owner } => work::create(s, ctx, *kind, title, *owner),
        TransferWork {
            from,
            to,
            selection,
        } => work::transfer(s, ctx, *from, *to, selection),
        ReassignClients { assignments } => work::reassign_clients(s, ctx, assignments),
        Deactivate {
            user,
            forward_numbers_to,
            reassign_reports,
        } => lifecycle::offboard(
            s,
            ctx,
            &crate::command::Offboarding {
                user: *user,
                unassign_numbers: false,
                forward_numbers_to: *forward_numbers_to,
                reassign_reports: reassign_reports.clone(),
                transfer_work_to: None,
                end: crate::command::OffboardEnd::Deactivate,
            },
        ),
        Reactivate { user } => lifecycle::reactivate(s, ctx, *user),
        Delete {
            user,
            acknowledgement,
            forward_numbers_to,
            reassign_reports,
        } => lifecycle::offboard(
            s,
            ctx,
            &crate::command::Offboarding {
                user: *user,
                unassign_numbers: false,
                forward_numbers_to: *forward_numbers_to,
                reassign_reports: reassign_reports.clone(),
                transfer_work_to: None,
                end: crate::command::OffboardEnd::Delete(*acknowledgement),
            },
        ),
        Offboard(plan) => lifecycle::offboard(s, ctx, plan),
        BulkUpdate { csv, mode } => bulk::decide_bulk(s, ctx, csv, *mode),
    }
}

// ---------------------------------------------------------------------------
// Guards: pure leaf checks shared by the command functions. Each pushes
// blockers; none returns early on its own account.
// ---------------------------------------------------------------------------

/// Turns collected blockers into the result.
pub(crate) fn verdict(blockers: Vec<Blocker>) -> Result<(), CommandError> {
    if blockers.is_empty() {
        Ok(())
    } else {
        Err(CommandError { blockers })
    }
}

/// Pushes the error of a fallible leaf check; returns its value.
pub(crate) fn check<T>(r: Result<T, Blocker>, b: &mut Vec<Blocker>) -> Option<T> {
    match r {
        Ok(v) => Some(v),
        Err(e) => {
            b.push(e);
            None
        }
    }
}

/// A user that exists (deleted ones included).
pub(crate) fn find_user<'s>(
    s: &'s Organization,
    id: UserId,
    b: &mut Vec<Blocker>,
) -> Option<&'s User> {
    let u = s.users.get(&id).map(|u| &**u);
    if u.is_none() {
        b.push(Blocker::NotFound {
            missing: Missing::User(id),
        });
    }
    u
}

/// A user that exists and is not deleted.
pub(crate) fn live_user<'s>(
    s: &'s Organization,
    id: UserId,
    rule: RuleId,
    b: &mut Vec<Blocker>,
) -> Option<&'s User> {
    let u = find_user(s, id, b)?;
    if u.status == UserStatus::Deleted {
        b.push(Blocker::WrongStatus {
            user: id,
            status: u.status,
            rule,
        });
        return None;
    }
    Some(u)
}

/// A user that exists and is active (`rule` names why it must be).
pub(crate) fn active_user<'s>(
    s: &'s Organization,
    id: UserId,
    rule: RuleId,
    b: &mut Vec<Blocker>,
) -> Option<&'s User> {
    let u = find_user(s, id, b)?;
    if !u.is_active() {
        b.push(Blocker::WrongStatus {
            user: id,
            status: u.status,
            rule,
        });
        return None;
    }
    Some(u)
}

pub(crate) fn find_account(s: &Organization, id: AccountId, b: &mut Vec<Blocker>) -> bool {
    let ok = s.accounts.contains_key(&id);
    if !ok {
        b.push(Blocker::NotFound {
            missing: Missing::Account(id),
        });
    }
    ok
}

pub(crate) fn find_role<'s>(
    s: &'s Organization,
    id: &RoleId,
    b: &mut Vec<Blocker>,
) -> Option<&'s Role> {
    let r = s.roles.get(id);
    if r.is_none() {
        b.push(Blocker::NotFound {
            missing: Missing::Role(id.clone()),
        });
    }
    r
}

/// The acting user, when the actor is one. `Err` when that user is missing or
/// not active (a deactivated user can do nothing, R-LIFE-01). System and
/// support actors are `Ok(None)`: they pass permission checks.
pub(crate) fn acting_user<'s>(
    s: &'s Organization,
    ctx: &Context<'_>,
) -> Result<Option<&'s User>, Blocker> {
    match &ctx.actor {
        Actor::User { id } => match s.users.get(id) {
            Some(u) if u.is_active() => Ok(Some(u)),
            _ => Err(Blocker::ActorNotActive {
                actor: ctx.actor.clone(),
            }),
        },
        Actor::System | Actor::Support { .. } => Ok(None),
    }
}

/// R-AUTH-01: the actor holds `permission` on every account in `accounts`.
pub(crate) fn require_on_accounts(
    s: &Organization,
    ctx: &Context<'_>,
    permission: Permission,
    accounts: impl IntoIterator<Item = AccountId>,
    b: &mut Vec<Blocker>,
) {
    let actor = match acting_user(s, ctx) {
        Ok(Some(a)) => a,
        Ok(None) => return,
        Err(e) => return b.push(e),
    };
    for account in accounts {
        if !s.has_permission(actor, account, permission) {
            b.push(Blocker::PermissionDenied {
                actor: ctx.actor.clone(),
                permission,
                account: Some(account),
            });
        }
    }
}

/// R-AUTH-01 for organization-wide acts: the actor is an agency administrator.
pub(crate) fn require_org_wide(
    s: &Organization,
    ctx: &Context<'_>,
    permission: Permission,
    b: &mut Vec<Blocker>,
) {
    match acting_user(s, ctx) {
        Ok(Some(a)) if !a.agency_admin => b.push(Blocker::PermissionDenied {
            actor: ctx.actor.clone(),
            permission,
            account: None,
        }),
        Ok(_) => {}
        Err(e) => b.push(e),
    }
}

/// R-AUTH-01 for acts on a user: `permission` on every account the user can
/// reach. An agency administrator can only be managed by another; a user with
/// no membership by a holder of the permission on the root account.
pub(crate) fn require_over_user(
    s: &Organization,
    ctx: &Context<'_>,
    permission: Permission,
    target: &User,
    b: &mut Vec<Blocker>,
) {
    if target.agency_admin {
        require_org_wide(s, ctx, permission, b);
    } else if target.memberships.is_empty() {
        require_on_accounts(s, ctx, permission, s.root_account, b);
    } else {
        require_on_accounts(s, ctx, permission, target.memberships.keys().copied(), b);
    }
}

/// R-LIFE-09: nobody deactivates, deletes or removes themselves.
pub(crate) fn not_self(ctx: &Context<'_>, target: UserId, b: &mut Vec<Blocker>) {
    if ctx.actor.user_id() == Some(target) {
        b.push(Blocker::SelfAction { user: target });
    }
}

/// R-LIFE-03: the primary owner is untouchable until ownership moves.
pub(crate) fn not_primary_owner(s: &Organization, target: UserId, b: &mut Vec<Blocker>) {
    if s.primary_owner == Some(target) {
        b.push(Blocker::PrimaryOwner { user: target });
    }
}

/// A number of this organization, from raw input.
pub(crate) fn find_number<'s>(
    s: &'s Organization,
    raw: &str,
    b: &mut Vec<Blocker>,
) -> Option<&'s Number> {
    let n = check(
        crate::validate::phone_number("number", RuleId::UniqueNumber, raw),
        b,
    )?;
    let found = s.numbers.get(&n);
    if found.is_none() {
        b.push(Blocker::NotFound {
            missing: Missing::Number(n),
        });
    }
    found
}

/// Fresh typed id from the caller's id source.
pub(crate) fn new_id<T: From<uuid::Uuid>>(ctx: &Context<'_>) -> T {
    T::from(ctx.ids.next_id())
}

/// What losing access would break: numbers assigned or forwarded to the user
/// in accounts they would no longer reach (R-NUM-01, R-NUM-04), and direct
/// reports of a leader who would no longer hold `ManageTeam` (R-TEAM-01).
/// Cost: the user's own numbers.
pub(crate) fn access_loss_blockers(
    s: &Organization,
    user: &User,
    keeps_access: impl Fn(AccountId) -> bool,
    keeps_manage_team: bool,
    b: &mut Vec<Blocker>,
) {
    let lost = |set: &crate::model::VecSet<PhoneNumber>| -> Vec<PhoneNumber> {
        set.iter()
            .filter(|n| {
                s.numbers
                    .get(*n)
                    .is_some_and(|num| !keeps_access(num.account))
            })
            .cloned()
            .collect()
    };
    let assigned = lost(&user.assigned_numbers);
    if !assigned.is_empty() {
        b.push(Blocker::NumbersStillAssigned {
            user: user.id,
            numbers: assigned,
            rule: RuleId::NumberAssignee,
        });
    }
    let forwarded = lost(&user.forwarded_numbers);
    if !forwarded.is_empty() {
        b.push(Blocker::ForwardTarget {
            user: user.id,
            numbers: forwarded,
        });
    }
    if !keeps_manage_team && !user.direct_reports.is_empty() {
        b.push(Blocker::HasDirectReports {
            leader: user.id,
            reports: user.direct_reports.iter().copied().collect(),
        });
    }
}

/// Whether the user would hold `ManageTeam` with these memberships and admin flag.
pub(crate) fn holds_manage_team<'a>(
    s: &Organization,
    agency_admin: bool,
    roles: impl IntoIterator<Item = &'a RoleId>,
) -> bool {
    agency_admin
        || roles.into_iter().any(|r| {
            s.roles
                .get(r)
                .is_some_and(|r| r.permissions.contains(&Permission::ManageTeam))
        })
}

/// Validates a grant (R-INV-02): role, accounts, clients; and that the actor may give it.
pub(crate) fn check_grant(
    s: &Organization,
    ctx: &Context<'_>,
    grant: &Grant,
    b: &mut Vec<Blocker>,
) {
    use crate::validate::{count, MAX_ACCOUNTS_PER_COMMAND, MAX_ITEMS_PER_COMMAND};
    find_role(s, &grant.role, b);
    check(
        count("accounts", grant.accounts.len(), MAX_ACCOUNTS_PER_COMMAND),
        b,
    );
    check(
        count("clients", grant.clients.len(), MAX_ITEMS_PER_COMMAND),
        b,
    );
    if grant.accounts.is_empty() && !grant.agency_admin {
        b.push(Blocker::Invalid {
            rule: RuleId::InvitationGrant,
            field: "accounts".into(),
            reason: "an invitation grants at least one account or the agency administrator role"
                .into(),
        });
    }
    let mut seen = std::collections::BTreeSet::new();
    for a in &grant.accounts {
        if !seen.insert(*a) {
            b.push(Blocker::Invalid {
                rule: RuleId::InvitationGrant,
                field: "accounts".into(),
                reason: format!("{a} is listed twice"),
            });
        }
        find_account(s, *a, b);
    }
    // Handing a client over on acceptance is a transfer of its current
    // owner's work (R-WORK-02): the actor needs ManageUsers over that owner
    // too (R-AUTH-01), as `ReassignClients` requires. Cost: the owners' memberships.
    let mut owners_accounts = std::collections::BTreeSet::new();
    let mut owner_is_agency_admin = false;
    for c in &grant.clients {
        match s.work_items.get(c) {
            None => b.push(Blocker::NotFound {
                missing: Missing::WorkItem(*c),
            }),
            Some(w) if w.kind != WorkKind::Client => b.push(Blocker::NotAClient { item: *c }),
            Some(w) => match s.users.get(&w.owner) {
                Some(o) if o.agency_admin => owner_is_agency_admin = true,
                Some(o) if o.memberships.is_empty() => owners_accounts.extend(s.root_account),
                Some(o) => owners_accounts.extend(o.memberships.keys().copied()),
                None => {}
            },
        }
    }
    if grant.agency_admin || owner_is_agency_admin {
        require_org_wide(s, ctx, Permission::ManageUsers, b);
    }
    if !grant.agency_admin {
        // The granted accounts, then the owners' other accounts once each.
        let granted: std::collections::BTreeSet<AccountId> = grant
            .accounts
            .iter()
            .copied()
            .filter(|a| s.accounts.contains_key(a))
            .collect();
        owners_accounts.retain(|a| !granted.contains(a));
        let accounts: Vec<AccountId> = grant
            .accounts
            .iter()
            .copied()
            .filter(|a| s.accounts.contains_key(a))
            .chain(owners_accounts)
            .collect();
        require_on_accounts(s, ctx, Permission::ManageUsers, accounts, b);
    }
}

/// `ctx.now` plus a policy's TTL (`None` when the TTL itself is out of
/// range), checked: the caller's clock may be anywhere up to the last
/// representable instant, and an expiry past it is a blocker naming `rule`
/// (R-INV-05, R-LIFE-07), never a panic.
pub(crate) fn expires_at(
    ctx: &Context<'_>,
    ttl: Option<chrono::TimeDelta>,
    what: &str,
    ttl_in_words: String,
    rule: RuleId,
) -> Result<chrono::DateTime<chrono::Utc>, Blocker> {
    ttl.and_then(|ttl| ctx.now.checked_add_signed(ttl))
        .ok_or_else(|| Blocker::ExpiryOutOfRange {
            what: what.to_owned(),
            ttl: ttl_in_words,
            now: ctx.now,
            rule,
        })
}

/// Issues a token: its text for the caller, its hash for the log.
pub(crate) fn issue_token(ctx: &Context<'_>) -> (String, TokenHash) {
    let text = crate::validate::token_text(&ctx.secrets.secret());
    let hash = crate::validate::token_hash(&text);
    (text, hash)
}

/// Shorthand used by the command functions.
pub(crate) type Outcome = Result<Decision, CommandError>;

/// Helper for commands whose events are only known after the checks.
pub(crate) fn accept(events: Vec<Event>) -> Outcome {
    Ok(Decision::events(events))
}
