//! Commands: what an actor asks for. Plain serde data; raw user input (emails,
//! phone numbers, CSV) is carried as text and validated by `decide`.

use crate::event::DeletionAcknowledgement;
use crate::ids::*;
use crate::model::*;
use serde::{Deserialize, Serialize};

/// How a leader's direct reports are reassigned (R-TEAM-02).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Reassignment {
    /// Every report to one new leader.
    AllTo(UserId),
    /// Each report to their own new leader; every report must be named.
    Each(Vec<(UserId, UserId)>),
}

/// Which work to transfer (R-WORK-01).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum WorkSelection {
    /// All of it.
    All,
    /// Everything of these kinds.
    Kinds(Vec<WorkKind>),
    /// These items.
    Items(Vec<WorkItemId>),
}

/// How an offboarding ends (R-OFF-01).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum OffboardEnd {
    /// Deactivate the user.
    Deactivate,
    /// Delete the user, with the acknowledgement of R-LIFE-05.
    Delete(DeletionAcknowledgement),
}

/// A whole offboarding in one command (R-OFF-01): unassign numbers, forward
/// them, reassign reports, transfer work, then deactivate or delete. All or nothing.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Offboarding {
    /// Who leaves.
    pub user: UserId,
    /// Unassign every number assigned to them.
    pub unassign_numbers: bool,
    /// Forward their unassigned numbers, and every number forwarded to them, to this user (R-NUM-05).
    pub forward_numbers_to: Option<UserId>,
    /// Reassign their direct reports (R-TEAM-02).
    pub reassign_reports: Option<Reassignment>,
    /// Transfer all their work to this user (R-WORK-01). Meetings included unless deleting.
    pub transfer_work_to: Option<UserId>,
    /// Deactivate or delete.
    pub end: OffboardEnd,
}

/// An edit of an optional field: set it or clear it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Edit<T> {
    /// Set to a value.
    Set(T),
    /// Remove.
    Clear,
}

/// All-or-nothing (default) or partial bulk runs (R-BULK-03).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub enum BulkMode {
    /// Apply nothing if any row is invalid.
    #[default]
    AllOrNothing,
    /// Apply the valid rows, report the rest.
    Partial,
}

/// Everything an actor can ask of an organization. `Debug` hides personal
/// data, device names, CSV text and tokens: it shows which of those fields
/// are set, never their values (see [`crate::redact`]).
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "command")]
#[non_exhaustive]
pub enum Command {
    /// Create the organization with its root account and primary owner (system or support only).
    CreateOrganization {
        /// Organization name.
        name: String,
        /// Root account name.
        root_account_name: String,
        /// Owner's email.
        owner_email: String,
        /// Owner's name.
        owner_name: String,
        /// Policies (`Policies::default()` when `None`).
        policies: Option<Policies>,
    },
    /// Change policies (needs `ManageRoles` on the root account).
    SetPolicies {
        /// New policies.
        policies: Policies,
    },
    /// Move primary ownership (the primary owner, system or support) (R-LIFE-03).
    TransferPrimaryOwnership {
        /// The new primary owner: an active user.
        to: UserId,
    },
    /// Create an account under a parent (needs `ManageAccounts` on the parent).
    CreateAccount {
        /// Name.
        name: String,
        /// Parent account.
        parent: AccountId,
    },
    /// Define (or redefine) a custom role (needs `ManageRoles` on the root account).
    DefineRole {
        /// Slug.
        role: RoleId,
        /// Display name.
        name: String,
        /// Permissions.
        permissions: Vec<Permission>,
    },
    /// Invite one or many people by email (R-INV-01, R-INV-02).
    InviteUsers {
        /// Addresses separated by commas, spaces or newlines.
        emails: String,
        /// What they get.
        grant: Grant,
    },
    /// Provision a user for an identity provider (SCIM's `POST /Users`):
    /// no invitation is sent; the user is active at once and signs in with
    /// the sign-in name or the email, of which at least one is given
    /// (R-USR-04). Both are checked as everywhere else (R-USR-01, R-USR-03),
    /// and the grant as an invitation's (R-INV-02, R-AUTH-01).
    ///
    /// The profile the identity provider knows comes in the same command, so
    /// that a user is created whole or not at all.
    ProvisionUser {
        /// The name the user signs in with, if not their email.
        sign_in_name: Option<String>,
        /// The user's email, if the identity provider has one.
        email: Option<String>,
        /// Full name.
        name: Option<String>,
        /// Mobile number, any common notation (R-USR-02).
        mobile: Option<String>,
        /// Default sending country, ISO 3166-1 alpha-2 (R-USR-02).
        #[serde(default)]
        default_country: Option<String>,
        /// Job title (admin-managed, R-AUTH-03).
        job_title: Option<String>,
        /// The identity provider's id for the user (R-AUTH-03).
        external_id: Option<String>,
        /// Their team leader (R-TEAM-01).
        reports_to: Option<UserId>,
        /// Provision them deactivated: known, but not allowed to sign in
        /// until reactivated (R-LIFE-02, which then needs a complete profile,
        /// R-LIFE-04). Nothing of theirs is handed over, since they have
        /// nothing yet.
        #[serde(default)]
        deactivated: bool,
        /// What the user gets.
        grant: Grant,
    },
    /// Create a copyable invitation link (R-INV-03).
    CreateInvitationLink {
        /// What the invitee gets.
        grant: Grant,
    },
    /// Re-invite: a new token and TTL, the old invitation superseded (R-INV-05).
    Reinvite {
        /// The pending or expired email invitation.
        invitation: InvitationId,
    },
    /// Revoke a pending invitation (R-INV-07).
    RevokeInvitation {
        /// The invitation.
        invitation: InvitationId,
    },
    /// Mark lapsed invitations expired (system sweep), at most `limit` of them.
    ExpireInvitations {
        /// Upper bound of invitations handled by this command.
        limit: u32,
    },
    /// Accept an invitation with its secret token and complete the profile (R-INV-03, R-INV-04).
    AcceptInvitation {
        /// The secret token.
        token: String,
        /// Email (link invitations only; email invitations already have one).
        email: Option<String>,
        /// Full name.
        name: String,
        /// Mobile number.
        mobile: Option<String>,
        /// Default sending country, ISO 3166-1 alpha-2.
        default_country: Option<String>,
    },
    /// A device signs in (the actor is the user). The first sign-in after
    /// acceptance activates an invited user (R-INV-04); deactivated users cannot (R-LIFE-01).
    SignIn {
        /// The user.
        user: UserId,
        /// Device name.
        device_name: String,
    },
    /// Sign a device out (the user, or a `ManageUsers` holder) (R-LIFE-08).
    SignOutDevice {
        /// The user.
        user: UserId,
        /// The device.
        device: DeviceId,
    },
    /// Edit profile details (R-AUTH-02).
    UpdateProfile {
        /// The user.
        user: UserId,
        /// New name.
        name: Option<String>,
        /// New email.
        email: Option<String>,
        /// New mobile, or clear it.
        mobile: Option<Edit<String>>,
        /// New default sending country.
        default_country: Option<String>,
        /// New notification preferences.
        notifications: Option<NotificationPreferences>,
    },
    /// Edit admin-managed fields (R-AUTH-03).
    UpdateAdminFields {
        /// The user.
        user: UserId,
        /// Job title.
        job_title: Option<Edit<String>>,
        /// Picture URL.
        picture: Option<Edit<String>>,
        /// Agency administrator toggle (needs an agency administrator actor).
        admin_access: Option<bool>,
    },
    /// Record or clear the identity provider's id for a user — SCIM's
    /// `externalId` — an admin-managed field (R-AUTH-03), erased with the
    /// rest of the profile (R-LIFE-06).
    SetExternalId {
        /// The user.
        user: UserId,
        /// The id as the identity provider sent it, or clear it.
        external_id: Edit<String>,
    },
    /// Give a user a sign-in name other than their email — SCIM's
    /// `userName` — or clear it so that they sign in with their email again:
    /// admin-managed (R-AUTH-03), held by one user only and never another
    /// user's email (R-USR-03), erased with the profile (R-LIFE-06).
    SetSignInName {
        /// The user.
        user: UserId,
        /// The name, or clear it.
        sign_in_name: Edit<String>,
    },
    /// Issue a password-reset token to an active user (R-LIFE-07).
    RequestPasswordReset {
        /// The user.
        user: UserId,
    },
    /// Give an existing user access to more accounts, with a role (R-MEM-02).
    GrantAccess {
        /// The user.
        user: UserId,
        /// The role.
        role: RoleId,
        /// The accounts.
        accounts: Vec<AccountId>,
    },
    /// Raise or lower a user's role on an account (R-MEM-01).
    ChangeRole {
        /// The user.
        user: UserId,
        /// The account.
        account: AccountId,
        /// The new role.
        role: RoleId,
    },
    /// Remove access to one or several accounts, atomically (R-MEM-03, R-MEM-04, R-MEM-06).
    RemoveAccess {
        /// The user.
        user: UserId,
        /// The accounts.
        accounts: Vec<AccountId>,
    },
    /// Remove a user, agency administrator or not, from every account at once (R-MEM-05).
    RemoveFromAllAccounts {
        /// The user.
        user: UserId,
    },
    /// Add a number to an account (R-NUM-06).
    AddNumber {
        /// The number as entered; normalised to E.164.
        number: String,
        /// The account.
        account: AccountId,
    },
    /// Assign a number to a user (R-NUM-01).
    AssignNumber {
        /// The number.
        number: String,
        /// The user.
        user: UserId,
    },
    /// Unassign a number; it is orphaned until forwarded or released (R-NUM-03).
    UnassignNumber {
        /// The number.
        number: String,
    },
    /// Forward a number to a user (R-NUM-04).
    ForwardNumber {
        /// The number.
        number: String,
        /// The target.
        to: UserId,
    },
    /// Stop forwarding a number.
    StopForwarding {
        /// The number.
        number: String,
    },
    /// Release an unassigned number from the organization (R-NUM-03).
    ReleaseNumber {
        /// The number.
        number: String,
    },
    /// Set or clear a user's team leader (R-TEAM-01).
    SetReportingLine {
        /// The report.
        user: UserId,
        /// The leader.
        leader: Option<UserId>,
    },
    /// Reassign a leader's direct reports (R-TEAM-02).
    ReassignReports {
        /// The current leader.
        leader: UserId,
        /// Where the reports go.
        to: Reassignment,
    },
    /// Record a work item a user owns.
    CreateWorkItem {
        /// Kind.
        kind: WorkKind,
        /// Title.
        title: String,
        /// Owner.
        owner: UserId,
    },
    /// Transfer a user's work to another active user (R-WORK-01).
    TransferWork {
        /// Current owner.
        from: UserId,
        /// New owner.
        to: UserId,
        /// What.
        selection: WorkSelection,
    },
    /// Reassign clients to other users (R-WORK-02).
    ReassignClients {
        /// (client, new owner) pairs.
        assignments: Vec<(WorkItemId, UserId)>,
    },
    /// Deactivate a user (R-LIFE-01), naming new targets for forwarded numbers and reports if needed.
    Deactivate {
        /// The user.
        user: UserId,
        /// New target for numbers forwarded to them (R-NUM-05).
        forward_numbers_to: Option<UserId>,
        /// Where their reports go (R-TEAM-02).
        reassign_reports: Option<Reassignment>,
    },
    /// Reactivate a deactivated user (R-LIFE-02).
    Reactivate {
        /// The user.
        user: UserId,
    },
    /// Delete a user (R-LIFE-05); their numbers must be unassigned first (R-NUM-02).
    Delete {
        /// The user.
        user: UserId,
        /// The acknowledgement of the consequences.
        acknowledgement: DeletionAcknowledgement,
        /// New target for numbers forwarded to them (R-NUM-05).
        forward_numbers_to: Option<UserId>,
        /// Where their reports go.
        reassign_reports: Option<Reassignment>,
    },
    /// A whole offboarding, all or nothing (R-OFF-01).
    Offboard(Offboarding),
    /// Bulk update from CSV (R-BULK-01..03).
    BulkUpdate {
        /// The spreadsheet, with a header row.
        csv: String,
        /// All-or-nothing or partial.
        mode: BulkMode,
    },
}

crate::redact::debug_redacted!(enum Command {
    CreateOrganization { name, root_account_name, @redacted owner_email, @redacted owner_name, policies },
    SetPolicies { policies },
    TransferPrimaryOwnership { to },
    CreateAccount { name, parent },
    DefineRole { role, name, permissions },
    InviteUsers { @redacted emails, grant },
    ProvisionUser { @redacted sign_in_name, @redacted email, @redacted name, @redacted mobile, default_country, @redacted job_title, @redacted external_id, reports_to, deactivated, grant },
    CreateInvitationLink { grant },
    Reinvite { invitation },
    RevokeInvitation { invitation },
    ExpireInvitations { limit },
    AcceptInvitation { @redacted token, @redacted email, @redacted name, @redacted mobile, default_country },
    SignIn { user, @redacted device_name },
    SignOutDevice { user, device },
    UpdateProfile { user, @redacted name, @redacted email, @redacted mobile, default_country, notifications },
    UpdateAdminFields { user, @redacted job_title, @redacted picture, admin_access },
    SetExternalId { user, @redacted external_id },
    SetSignInName { user, @redacted sign_in_name },
    RequestPasswordReset { user },
    GrantAccess { user, role, accounts },
    ChangeRole { user, account, role },
    RemoveAccess { user, accounts },
    RemoveFromAllAccounts { user },
    AddNumber { number, account },
    AssignNumber { number, user },
    UnassignNumber { number },
    ForwardNumber { number, to },
    StopForwarding { number },
    ReleaseNumber { number },
    SetReportingLine { user, leader },
    ReassignReports { leader, to },
    CreateWorkItem { kind, title, owner },
    TransferWork { from, to, selection },
    ReassignClients { assignments },
    Deactivate { user, forward_numbers_to, reassign_reports },
    Reactivate { user },
    Delete { user, acknowledgement, forward_numbers_to, reassign_reports },
    Offboard(plan),
    BulkUpdate { @redacted csv, mode },
});

impl Command {
    /// The command's name, for logs and trails.
    pub fn name(&self) -> &'static str {
        use Command::*;
        match self {
            CreateOrganization { .. } => "CreateOrganization",
            SetPolicies { .. } => "SetPolicies",
            TransferPrimaryOwnership { .. } => "TransferPrimaryOwnership",
            CreateAccount { .. } => "CreateAccount",
            DefineRole { .. } => "DefineRole",
            InviteUsers { .. } => "InviteUsers",
            ProvisionUser { .. } => "ProvisionUser",
            CreateInvitationLink { .. } => "CreateInvitationLink",
            Reinvite { .. } => "Reinvite",
            RevokeInvitation { .. } => "RevokeInvitation",
            ExpireInvitations { .. } => "ExpireInvitations",
            AcceptInvitation { .. } => "AcceptInvitation",
            SignIn { .. } => "SignIn",
            SignOutDevice { .. } => "SignOutDevice",
            UpdateProfile { .. } => "UpdateProfile",
            UpdateAdminFields { .. } => "UpdateAdminFields",
            SetExternalId { .. } => "SetExternalId",
            SetSignInName { .. } => "SetSignInName",
            RequestPasswordReset { .. } => "RequestPasswordReset",
            GrantAccess { .. } => "GrantAccess",
            ChangeRole { .. } => "ChangeRole",
            RemoveAccess { .. } => "RemoveAccess",
            RemoveFromAllAccounts { .. } => "RemoveFromAllAccounts",
            AddNumber { .. } => "AddNumber",
            AssignNumber { .. } => "AssignNumber",
            UnassignNumber { .. } => "UnassignNumber",
            ForwardNumber { .. } => "ForwardNumber",
            StopForwarding { .. } => "StopForwarding",
            ReleaseNumber { .. } => "ReleaseNumber",
            SetReportingLine { .. } => "SetReportingLine",
            ReassignReports { .. } => "ReassignReports",
            CreateWorkItem { .. } => "CreateWorkItem",
            TransferWork { .. } => "TransferWork",
            ReassignClients { .. } => "ReassignClients",
            Deactivate { .. } => "Deactivate",
            Reactivate { .. } => "Reactivate",
            Delete { .. } => "Delete",
            Offboard(_) => "Offboard",
            BulkUpdate { .. } => "BulkUpdate",
        }
    }
}
