//! Refusals. A refused command yields a [`CommandError`] listing **every**
//! blocker at once (R-OFF-02); each blocker names the rule it enforces.

use crate::context::Actor;
use crate::ids::*;
use crate::model::*;
use crate::rule::RuleId;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use std::fmt;

/// Something that is not there.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub enum Missing {
    /// The organization has not been created.
    Organization,
    /// A user.
    User(UserId),
    /// An account.
    Account(AccountId),
    /// A role.
    Role(RoleId),
    /// A number.
    Number(PhoneNumber),
    /// An invitation.
    Invitation(InvitationId),
    /// A work item.
    WorkItem(WorkItemId),
    /// A device session.
    Device(DeviceId),
}

/// One reason a command cannot be carried out. Its fields are for the
/// caller; its `Debug` and `Display`, for operators, never show an email
/// (see [`crate::redact`]).
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "blocker")]
#[non_exhaustive]
pub enum Blocker {
    /// A referenced entity does not exist.
    NotFound {
        /// What.
        missing: Missing,
    },
    /// The organization already exists.
    AlreadyCreated,
    /// An input breaks a limit (length, count, size).
    LimitExceeded {
        /// Which input.
        what: String,
        /// The limit.
        limit: usize,
        /// What was given.
        actual: usize,
    },
    /// Malformed input (the rule it breaks is named).
    Invalid {
        /// The rule.
        rule: RuleId,
        /// Which input.
        field: String,
        /// Why.
        reason: String,
    },
    /// The actor lacks a permission (R-AUTH-01).
    PermissionDenied {
        /// Who.
        actor: Actor,
        /// What permission.
        permission: Permission,
        /// On which account (`None`: organization-wide, i.e. agency administrator needed).
        account: Option<AccountId>,
    },
    /// Admin-managed fields (job title, picture, admin toggle) need
    /// `ManageUsers` over the user, and the admin toggle an agency
    /// administrator, the user herself included (R-AUTH-03).
    AdminManagedField {
        /// Who tried.
        actor: Actor,
        /// Whose field.
        user: UserId,
        /// The field.
        field: AdminField,
        /// Where `ManageUsers` is missing (`None`: organization-wide, i.e. an
        /// agency administrator is needed).
        account: Option<AccountId>,
    },
    /// The acting user is not active.
    ActorNotActive {
        /// Who.
        actor: Actor,
    },
    /// Only the user themself may do this under the policy (R-AUTH-02).
    OnlySelf {
        /// The user.
        user: UserId,
    },
    /// Nobody can deactivate, delete or remove themselves (R-LIFE-09).
    SelfAction {
        /// The user.
        user: UserId,
    },
    /// The primary owner cannot be deactivated, deleted, demoted or removed (R-LIFE-03).
    PrimaryOwner {
        /// The owner.
        user: UserId,
    },
    /// An email belongs to a user already (R-INV-06 when inviting, R-USR-01 otherwise).
    EmailInUse {
        /// The email.
        email: String,
        /// The existing user.
        user: UserId,
        /// The rule.
        rule: RuleId,
    },
    /// A sign-in name (or an email that would clash with one) belongs to
    /// another user already (R-USR-03). The name itself is personal data and
    /// is not repeated here.
    SignInNameInUse {
        /// The user who signs in with it, or whose email it is.
        user: UserId,
    },
    /// Users holding `ManageTeam` cannot be deactivated in bulk (R-BULK-02).
    ManagesTeamInBulk {
        /// The user.
        user: UserId,
    },
    /// An email appears twice in one command (R-INV-01).
    DuplicateEmail {
        /// The email.
        email: String,
    },
    /// The invitation is not pending (R-INV-07).
    InvitationNotPending {
        /// The invitation.
        invitation: InvitationId,
        /// Its status.
        status: InvitationStatus,
    },
    /// The invitation expired; re-invite (R-INV-05).
    InvitationExpired {
        /// The invitation.
        invitation: InvitationId,
    },
    /// No invitation matches the token (R-INV-03).
    UnknownToken,
    /// A user is not in the status the command needs.
    WrongStatus {
        /// The user.
        user: UserId,
        /// Their status.
        status: UserStatus,
        /// The rule.
        rule: RuleId,
    },
    /// A user has no access to an account (R-NUM-01, R-NUM-04).
    NoAccess {
        /// The user.
        user: UserId,
        /// The account.
        account: AccountId,
        /// The rule.
        rule: RuleId,
    },
    /// The number already exists in this organization (R-NUM-06).
    NumberExists {
        /// The number.
        number: PhoneNumber,
    },
    /// The number is claimed by another organization (R-NUM-06).
    NumberClaimedElsewhere {
        /// The number.
        number: PhoneNumber,
    },
    /// The number is assigned already (R-NUM-01).
    NumberAssigned {
        /// The number.
        number: PhoneNumber,
        /// To whom.
        user: UserId,
    },
    /// The number is not assigned.
    NumberNotAssigned {
        /// The number.
        number: PhoneNumber,
    },
    /// The user still has numbers assigned (R-NUM-02; R-NUM-01 for deactivation and access removal).
    NumbersStillAssigned {
        /// The user.
        user: UserId,
        /// The numbers.
        numbers: Vec<PhoneNumber>,
        /// The rule.
        rule: RuleId,
    },
    /// The user is the forward target of numbers (R-NUM-05).
    ForwardTarget {
        /// The user.
        user: UserId,
        /// The numbers.
        numbers: Vec<PhoneNumber>,
    },
    /// The user leads direct reports (R-TEAM-02).
    HasDirectReports {
        /// The leader.
        leader: UserId,
        /// The reports.
        reports: Vec<UserId>,
    },
    /// A reassignment leaves reports without a leader or names non-reports (R-TEAM-02).
    IncompleteReassignment {
        /// The leader.
        leader: UserId,
        /// Reports not reassigned.
        unassigned: Vec<UserId>,
        /// Users named who are not reports.
        not_reports: Vec<UserId>,
    },
    /// The user does not hold `ManageTeam` (R-TEAM-01).
    NotATeamLeader {
        /// The user.
        user: UserId,
    },
    /// The reporting line would form a cycle (R-TEAM-01).
    ReportingCycle {
        /// The report.
        user: UserId,
        /// The proposed leader.
        leader: UserId,
    },
    /// Required profile fields are missing (R-LIFE-04).
    IncompleteProfile {
        /// The user.
        user: UserId,
        /// Missing fields.
        missing: Vec<ProfileField>,
    },
    /// Agency administrators can only be removed from all accounts at once (R-MEM-05).
    AgencyAdministrator {
        /// The user.
        user: UserId,
    },
    /// The user has access to the account already (R-MEM-02).
    AlreadyMember {
        /// The user.
        user: UserId,
        /// The account.
        account: AccountId,
    },
    /// The user has no membership on the account (R-MEM-01, R-MEM-03).
    NotMember {
        /// The user.
        user: UserId,
        /// The account.
        account: AccountId,
    },
    /// Consequences of deletion not acknowledged (R-LIFE-05).
    DeletionNotAcknowledged,
    /// The work item is not owned by the user (R-WORK-01).
    NotOwner {
        /// The item.
        item: WorkItemId,
        /// Its owner.
        owner: UserId,
    },
    /// The work item is not a client (R-WORK-02).
    NotAClient {
        /// The item.
        item: WorkItemId,
    },
    /// A built-in role cannot be redefined.
    BuiltInRole {
        /// The role.
        role: RoleId,
    },
    /// The actor must be the primary owner, system or support.
    NotPrimaryOwner {
        /// Who tried.
        actor: Actor,
    },
    /// A transfer or forward target is the user being offboarded.
    TargetIsSubject {
        /// The user.
        user: UserId,
    },
    /// Rows of a bulk run are invalid (R-BULK-01, R-BULK-03).
    BulkRowsRejected {
        /// Each rejected row.
        rows: Vec<crate::bulk::RowOutcome>,
    },
    /// An expiry (the caller's `now` plus a policy's TTL) would fall after
    /// the last instant the library can represent: the caller's clock is
    /// out of range (R-INV-05 for invitations, R-LIFE-07 for password resets).
    ExpiryOutOfRange {
        /// What would expire: `invitation` or `password reset`.
        what: String,
        /// The policy's TTL, in words (`365 days`).
        ttl: String,
        /// The instant of the decision, from the caller's clock.
        now: DateTime<Utc>,
        /// The rule.
        rule: RuleId,
    },
    /// The command would touch more than one command may (split it).
    TooMuchWork {
        /// What.
        what: String,
        /// The limit.
        limit: usize,
        /// What it would take.
        actual: usize,
    },
}

crate::redact::debug_redacted!(enum Blocker {
    NotFound { missing },
    AlreadyCreated,
    LimitExceeded { what, limit, actual },
    Invalid { rule, field, reason },
    PermissionDenied { actor, permission, account },
    AdminManagedField { actor, user, field, account },
    ActorNotActive { actor },
    OnlySelf { user },
    SelfAction { user },
    PrimaryOwner { user },
    EmailInUse { @redacted email, user, rule },
    SignInNameInUse { user },
    ManagesTeamInBulk { user },
    DuplicateEmail { @redacted email },
    InvitationNotPending { invitation, status },
    InvitationExpired { invitation },
    UnknownToken,
    WrongStatus { user, status, rule },
    NoAccess { user, account, rule },
    NumberExists { number },
    NumberClaimedElsewhere { number },
    NumberAssigned { number, user },
    NumberNotAssigned { number },
    NumbersStillAssigned { user, numbers, rule },
    ForwardTarget { user, numbers },
    HasDirectReports { leader, reports },
    IncompleteReassignment { leader, unassigned, not_reports },
    NotATeamLeader { user },
    ReportingCycle { user, leader },
    IncompleteProfile { user, missing },
    AgencyAdministrator { user },
    AlreadyMember { user, account },
    NotMember { user, account },
    DeletionNotAcknowledged,
    NotOwner { item, owner },
    NotAClient { item },
    BuiltInRole { role },
    NotPrimaryOwner { actor },
    TargetIsSubject { user },
    BulkRowsRejected { rows },
    ExpiryOutOfRange { what, ttl, now, rule },
    TooMuchWork { what, limit, actual },
});

impl Blocker {
    /// The rule the blocker enforces, e.g. [`RuleId::NumbersBlockDeletion`]
    /// (`R-NUM-02`). [`RuleId::Limit`] marks an input bound,
    /// [`RuleId::Input`] a reference to something that does not exist.
    ///
    /// ```
    /// use switchboard_core::{Blocker, RuleId};
    /// assert_eq!(Blocker::DeletionNotAcknowledged.rule(), RuleId::DeletionAcknowledged);
    /// assert_eq!(Blocker::DeletionNotAcknowledged.rule().to_string(), "R-LIFE-05");
    /// ```
    pub fn rule(&self) -> RuleId {
        use Blocker::*;
        match self {
            NotFound { .. } => RuleId::Input,
            AlreadyCreated => RuleId::Input,
            LimitExceeded { .. } | TooMuchWork { .. } => RuleId::Limit,
            Invalid { rule, .. }
            | WrongStatus { rule, .. }
            | NoAccess { rule, .. }
            | NumbersStillAssigned { rule, .. }
            | EmailInUse { rule, .. }
            | ExpiryOutOfRange { rule, .. } => *rule,
            PermissionDenied { .. } | ActorNotActive { .. } => RuleId::ManageUsersRequired,
            AdminManagedField { .. } => RuleId::AdminManagedFields,
            OnlySelf { .. } => RuleId::ProfileSelfEdit,
            SelfAction { .. } => RuleId::NoSelfRemoval,
            PrimaryOwner { .. } | NotPrimaryOwner { .. } => RuleId::PrimaryOwnerProtected,
            SignInNameInUse { .. } => RuleId::UniqueSignInName,
            ManagesTeamInBulk { .. } => RuleId::BulkSkipsTeamManagers,
            DuplicateEmail { .. } => RuleId::InviteMany,
            InvitationNotPending { .. } => RuleId::InvitationRevocation,
            InvitationExpired { .. } => RuleId::InvitationExpiry,
            UnknownToken => RuleId::InvitationToken,
            NumberExists { .. } | NumberClaimedElsewhere { .. } => RuleId::UniqueNumber,
            NumberAssigned { .. } => RuleId::NumberAssignee,
            NumberNotAssigned { .. } => RuleId::OrphanedNumber,
            ForwardTarget { .. } => RuleId::ForwardTargetProtected,
            HasDirectReports { .. } | IncompleteReassignment { .. } => RuleId::ReassignReports,
            NotATeamLeader { .. } | ReportingCycle { .. } => RuleId::ReportingLine,
            IncompleteProfile { .. } => RuleId::CompleteProfileRequired,
            AgencyAdministrator { .. } => RuleId::AgencyAdministratorAllOrNothing,
            AlreadyMember { .. } => RuleId::GrantAccounts,
            NotMember { .. } => RuleId::RemoveFromAccount,
            DeletionNotAcknowledged => RuleId::DeletionAcknowledged,
            NotOwner { .. } => RuleId::TransferWork,
            NotAClient { .. } => RuleId::ReassignClients,
            BuiltInRole { .. } => RuleId::Input,
            TargetIsSubject { .. } => RuleId::OffboardInOneCommand,
            BulkRowsRejected { .. } => RuleId::BulkAllOrNothing,
        }
    }
}

impl fmt::Display for Blocker {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        use Blocker::*;
        let list = |v: &[PhoneNumber]| v.iter().map(|n| n.as_str()).collect::<Vec<_>>().join(", ");
        let users = |v: &[UserId]| {
            v.iter()
                .map(|u| u.to_string())
                .collect::<Vec<_>>()
                .join(", ")
        };
        write!(f, "[{}] ", self.rule())?;
        match self {
            NotFound { missing } => write!(f, "not found: {missing:?}"),
            AlreadyCreated => write!(f, "the organization exists already"),
            LimitExceeded {
                what,
                limit,
                actual,
            } => write!(f, "{what}: {actual} exceeds the limit of {limit}"),
            Invalid { field, reason, .. } => write!(f, "{field}: {reason}"),
            PermissionDenied {
                actor,
                permission,
                account,
            } => match account {
                Some(a) => write!(f, "{actor} lacks {permission:?} on account {a}"),
                None => write!(f, "{actor} is not an agency administrator ({permission:?} everywhere)"),
            },
            AdminManagedField { actor, user, field, account } => match account {
                Some(a) => write!(f, "{actor} may not edit {field:?} of {user}: admin-managed fields need ManageUsers on account {a}"),
                None => write!(f, "{actor} may not edit {field:?} of {user}: it needs an agency administrator"),
            },
            ActorNotActive { actor } => write!(f, "{actor} is not an active user"),
            OnlySelf { user } => write!(f, "only {user} may edit their own profile details"),
            SelfAction { user } => write!(f, "{user} cannot do this to themselves; another user must"),
            PrimaryOwner { user } => write!(f, "{user} is the primary owner; transfer ownership first"),
            EmailInUse { user, .. } => write!(f, "the email already belongs to {user}; add them to accounts instead"),
            SignInNameInUse { user } => write!(f, "{user} signs in with that name or has it as their email already"),
            ManagesTeamInBulk { user } => write!(f, "{user} holds ManageTeam: deactivate them manually after reassigning their reports"),
            DuplicateEmail { .. } => write!(f, "an email is listed twice"),
            InvitationNotPending { invitation, status } => write!(f, "invitation {invitation} is {status:?}"),
            InvitationExpired { invitation } => write!(f, "invitation {invitation} has expired; re-invite"),
            UnknownToken => write!(f, "no invitation matches this token"),
            WrongStatus { user, status, .. } => write!(f, "{user} is {status}"),
            NoAccess { user, account, .. } => write!(f, "{user} has no access to account {account}"),
            NumberExists { number } => write!(f, "{number} is already in this organization"),
            NumberClaimedElsewhere { number } => write!(f, "{number} belongs to another organization"),
            NumberAssigned { number, user } => write!(f, "{number} is assigned to {user}; unassign it first"),
            NumberNotAssigned { number } => write!(f, "{number} is not assigned"),
            NumbersStillAssigned { user, numbers, .. } => write!(f, "{user} still has numbers {}; unassign first", list(numbers)),
            ForwardTarget { user, numbers } => write!(f, "{user} is the forward target of {}; forward them elsewhere", list(numbers)),
            HasDirectReports { leader, reports } => write!(f, "{leader} leads {} report(s): {}; reassign them first", reports.len(), users(reports)),
            IncompleteReassignment { leader, unassigned, not_reports } => write!(f, "reassignment of {leader}'s reports leaves [{}] without a leader and names non-reports [{}]", users(unassigned), users(not_reports)),
            NotATeamLeader { user } => write!(f, "{user} does not hold ManageTeam"),
            ReportingCycle { user, leader } => write!(f, "{user} reporting to {leader} would form a cycle"),
            IncompleteProfile { user, missing } => write!(f, "{user}'s profile lacks {missing:?}"),
            AgencyAdministrator { user } => write!(f, "{user} is an agency administrator: remove them from all accounts at once"),
            AlreadyMember { user, account } => write!(f, "{user} already has access to {account}"),
            NotMember { user, account } => write!(f, "{user} has no membership on {account}"),
            DeletionNotAcknowledged => write!(f, "deletion needs every consequence acknowledged"),
            NotOwner { item, owner } => write!(f, "{item} is owned by {owner}"),
            NotAClient { item } => write!(f, "{item} is not a client"),
            BuiltInRole { role } => write!(f, "{role} is a built-in role"),
            NotPrimaryOwner { actor } => write!(f, "{actor} is not the primary owner"),
            TargetIsSubject { user } => write!(f, "{user} cannot be the target of their own offboarding"),
            BulkRowsRejected { rows } => {
                write!(f, "{} row(s) rejected, nothing applied", rows.len())?;
                for r in rows {
                    write!(f, "\n         {r}")?;
                }
                Ok(())
            }
            ExpiryOutOfRange { what, ttl, now, .. } => write!(f, "{what} issued at {now} with a TTL of {ttl} would expire after the last representable instant; check the caller's clock"),
            TooMuchWork { what, limit, actual } => write!(f, "{what}: {actual} exceeds {limit} per command; split it"),
        }
    }
}

/// A refused command: every blocker, never only the first (R-OFF-02). A
/// refused command changes nothing.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, thiserror::Error)]
pub struct CommandError {
    /// The blockers; never empty.
    pub blockers: Vec<Blocker>,
}

impl CommandError {
    /// Whether a blocker of rule `rule` is present.
    ///
    /// ```
    /// use switchboard_core::{Blocker, CommandError, RuleId};
    /// let err = CommandError::from(Blocker::DeletionNotAcknowledged);
    /// assert!(err.has_rule(RuleId::DeletionAcknowledged));
    /// assert_eq!(err.rules(), vec![RuleId::DeletionAcknowledged]);
    /// ```
    pub fn has_rule(&self, rule: RuleId) -> bool {
        self.blockers.iter().any(|b| b.rule() == rule)
    }
    /// The rule ids of all blockers, in order.
    pub fn rules(&self) -> Vec<RuleId> {
        self.blockers.iter().map(Blocker::rule).collect()
    }
}

impl fmt::Display for CommandError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "refused:")?;
        for b in &self.blockers {
            write!(f, " {b};")?;
        }
        Ok(())
    }
}

impl From<Blocker> for CommandError {
    fn from(b: Blocker) -> Self {
        Self { blockers: vec![b] }
    }
}
