//! The folded state of one organization and the value types it is made of.
//!
//! Architecture invariant: the state is indexed so that a command touches only
//! what it concerns — users by id and by email, numbers by E.164, invitations by
//! token hash, and on each user the numbers assigned to them, the numbers
//! forwarded to them, their direct reports and their work. No command scans
//! the whole organization. Collections are ordered (`BTree*` for the
//! organization's, sorted vectors — [`VecMap`], [`VecSet`] — for each user's
//! few entries) so that iteration, and therefore every list the library
//! returns, is deterministic.

use crate::ids::*;
pub use crate::small::{VecMap, VecSet};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, BTreeSet};
use std::fmt;

/// A permission a role grants on an account.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub enum Permission {
    /// Invite, change roles, remove, deactivate, reactivate, delete, transfer, bulk (R-AUTH-01).
    ManageUsers,
    /// "Can Manage Team": lead a team (R-TEAM-01).
    ManageTeam,
    /// Add, assign, forward and release numbers.
    ManageNumbers,
    /// Define roles and the organization's policies.
    ManageRoles,
    /// Read reports.
    ViewReports,
    /// Create accounts and sub-accounts.
    ManageAccounts,
}

impl Permission {
    /// Every permission, in order.
    pub const ALL: [Permission; 6] = [
        Permission::ManageUsers,
        Permission::ManageTeam,
        Permission::ManageNumbers,
        Permission::ManageRoles,
        Permission::ViewReports,
        Permission::ManageAccounts,
    ];
}

/// A named set of permissions.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Role {
    /// Slug, unique in the organization.
    pub id: RoleId,
    /// Display name.
    pub name: String,
    /// What it grants on an account.
    pub permissions: BTreeSet<Permission>,
    /// Built-in roles exist in every organization and cannot be redefined.
    pub built_in: bool,
}

/// The built-in roles every organization starts with.
pub fn built_in_roles() -> Vec<Role> {
    use Permission::*;
    let role = |id: &str, name: &str, perms: &[Permission]| Role {
        id: RoleId::new(id),
        name: name.to_owned(),
        permissions: perms.iter().copied().collect(),
        built_in: true,
    };
    vec![
        role(RoleId::OWNER, "Owner", &Permission::ALL),
        role(RoleId::ADMINISTRATOR, "Administrator", &Permission::ALL),
        role(
            RoleId::TEAM_LEADER,
            "Team Leader",
            &[ManageTeam, ViewReports],
        ),
        role(RoleId::AGENT, "Agent", &[]),
        role(RoleId::READ_ONLY, "Read-only", &[ViewReports]),
    ]
}

/// Who may edit a user's profile details (R-AUTH-02).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default, Serialize, Deserialize)]
pub enum ProfileEditPolicy {
    /// Only the user (seed 001). The default.
    #[default]
    SelfOnly,
    /// The user, or a holder of `ManageUsers` (seed 003).
    SelfOrAdmin,
}

/// Organization-wide policies: where seeds disagree, the organization chooses.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Policies {
    /// Days an invitation stays acceptable (R-INV-05). Default 14; 1..=365.
    pub invitation_ttl_days: u32,
    /// Who may edit profile details (R-AUTH-02). Default `SelfOnly`.
    pub profile_edit: ProfileEditPolicy,
    /// Refuse deactivation/reactivation while required profile fields are missing (R-LIFE-04). Default on.
    pub require_complete_profile: bool,
    /// Hours a password-reset token stays valid (R-LIFE-07). Default 24; 1..=720.
    pub password_reset_ttl_hours: u32,
}

impl Default for Policies {
    fn default() -> Self {
        Self {
            invitation_ttl_days: 14,
            profile_edit: ProfileEditPolicy::SelfOnly,
            require_complete_profile: true,
            password_reset_ttl_hours: 24,
        }
    }
}

/// An account or sub-account.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Account {
    /// Id.
    pub id: AccountId,
    /// Display name.
    pub name: String,
    /// The parent account; `None` for the organization's root account.
    pub parent: Option<AccountId>,
    /// Direct sub-accounts.
    pub children: BTreeSet<AccountId>,
    /// Users with a membership here (agency administrators are not listed: they cover every account).
    pub members: BTreeSet<UserId>,
}

/// Lifecycle status of a user.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub enum UserStatus {
    /// Invited, not yet signed in for the first time ("Pending", R-INV-04).
    Invited,
    /// Active.
    Active,
    /// Deactivated: cannot sign in (R-LIFE-01), can be reactivated (R-LIFE-02).
    Deactivated,
    /// Deleted: terminal, personal data erased (R-LIFE-05, R-LIFE-06).
    Deleted,
}

impl fmt::Display for UserStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(self, f)
    }
}

/// Notification preferences (seed 001).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct NotificationPreferences {
    /// Desktop notifications.
    pub desktop: bool,
    /// Browser badges.
    pub browser_badge: bool,
    /// Sounds.
    pub sound: bool,
}

impl Default for NotificationPreferences {
    fn default() -> Self {
        Self {
            desktop: true,
            browser_badge: true,
            sound: true,
        }
    }
}

/// A profile field, for reports of what is missing or was cleared.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub enum ProfileField {
    /// Full name.
    Name,
    /// Email address.
    Email,
    /// Mobile number.
    Mobile,
    /// Default sending country.
    DefaultCountry,
    /// Job title.
    JobTitle,
    /// Picture URL.
    Picture,
    /// The identity provider's id for the user.
    ExternalId,
    /// The name the user signs in with, when it is not their email.
    SignInName,
}

/// A field only a `ManageUsers` holder may edit (R-AUTH-03).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub enum AdminField {
    /// Job title.
    JobTitle,
    /// Picture URL.
    Picture,
    /// The agency administrator toggle (an agency administrator only).
    AdminAccess,
    /// The identity provider's id for the user.
    ExternalId,
    /// The name the user signs in with (R-USR-03).
    SignInName,
}

/// The personal data of a user: what deletion erases (R-LIFE-06). `Debug`
/// shows which fields are set, never their values.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Profile {
    /// Full name, once given.
    pub name: Option<String>,
    /// Email address as entered (compared case-insensitively, R-USR-01);
    /// empty for a user an identity provider provisioned without one
    /// (R-USR-04), who signs in with their sign-in name.
    pub email: String,
    /// Mobile number, E.164 (R-USR-02).
    pub mobile: Option<PhoneNumber>,
    /// Default sending country, ISO 3166-1 alpha-2 (R-USR-02).
    pub default_country: Option<String>,
    /// Job title (admin-managed, R-AUTH-03).
    pub job_title: Option<String>,
    /// Picture URL (admin-managed, R-AUTH-03).
    pub picture: Option<String>,
    /// Notification preferences.
    pub notifications: NotificationPreferences,
    /// The identity provider's id for the user (SCIM's `externalId`), kept
    /// exactly as given (admin-managed, R-AUTH-03). Personal data: an
    /// identifier of the person elsewhere, erased with the rest (R-LIFE-06).
    #[serde(default)]
    pub external_id: Option<String>,
    /// The name the user signs in with when it is not their email — SCIM's
    /// `userName` — as given, compared case-insensitively and held by one
    /// user only (R-USR-03). Admin-managed (R-AUTH-03); personal data,
    /// erased with the rest (R-LIFE-06).
    #[serde(default)]
    pub sign_in_name: Option<String>,
}

crate::redact::debug_redacted!(struct Profile {
    @redacted name,
    @redacted email,
    @redacted mobile,
    default_country,
    @redacted job_title,
    @redacted picture,
    notifications,
    @redacted external_id,
    @redacted sign_in_name,
});

impl Profile {
    /// A profile with only an email.
    pub fn with_email(email: impl Into<String>) -> Self {
        Self {
            name: None,
            email: email.into(),
            mobile: None,
            default_country: None,
            job_title: None,
            picture: None,
            notifications: NotificationPreferences::default(),
            external_id: None,
            sign_in_name: None,
        }
    }

    /// Required fields that are missing (R-LIFE-04): name, mobile, default sending country.
    pub fn missing_required(&self) -> Vec<ProfileField> {
        let mut missing = Vec::new();
        if self.name.as_deref().is_none_or(str::is_empty) {
            missing.push(ProfileField::Name);
        }
        if self.mobile.is_none() {
            missing.push(ProfileField::Mobile);
        }
        if self.default_country.is_none() {
            missing.push(ProfileField::DefaultCountry);
        }
        missing
    }
}

/// A signed-in device (R-LIFE-08). `Debug` hides its name, which often
/// names its owner ("Ann's iPhone").
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DeviceSession {
    /// Id.
    pub id: DeviceId,
    /// What the device calls itself ("Pixel 9", "Firefox on Linux").
    pub name: String,
    /// When it signed in.
    pub signed_in_at: DateTime<Utc>,
}

crate::redact::debug_redacted!(struct DeviceSession {
    id,
    @redacted name,
    signed_in_at,
});

/// A password-reset token's hash and expiry (R-LIFE-07).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct PasswordReset {
    /// SHA-256 of the token.
    pub token_hash: TokenHash,
    /// When it stops working.
    pub expires_at: DateTime<Utc>,
}

/// A person in the organization.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct User {
    /// Id; stays in history after deletion.
    pub id: UserId,
    /// Lifecycle status.
    pub status: UserStatus,
    /// Personal data; `None` once erased by deletion (R-LIFE-06).
    pub profile: Option<Profile>,
    /// Role per account (R-MEM-*).
    pub memberships: VecMap<AccountId, RoleId>,
    /// Organization-wide administrator grant over every account (R-MEM-05).
    pub agency_admin: bool,
    /// Their team leader (R-TEAM-01).
    pub reports_to: Option<UserId>,
    /// Users who report to them.
    pub direct_reports: VecSet<UserId>,
    /// Numbers assigned to them (R-NUM-01).
    pub assigned_numbers: VecSet<PhoneNumber>,
    /// Numbers forwarded to them (R-NUM-05).
    pub forwarded_numbers: VecSet<PhoneNumber>,
    /// Work items they own (R-WORK-01).
    pub work: VecSet<WorkItemId>,
    /// Signed-in devices (R-LIFE-08).
    pub devices: VecMap<DeviceId, DeviceSession>,
    /// Their current invitation while `Invited`.
    pub invitation: Option<InvitationId>,
    /// Whether they accepted their invitation (then the first sign-in activates, R-INV-04).
    pub invitation_accepted: bool,
    /// An outstanding password reset.
    pub password_reset: Option<PasswordReset>,
    /// The organization version whose event created the user. With
    /// [`User::changed_version`], what an outside copy of the user (a SCIM
    /// client's `meta.version`) compares against: kept by `evolve` alone.
    #[serde(default)]
    pub created_version: u64,
    /// The organization version of the last event about the user: any
    /// event that changes their record (which includes moving a number, a
    /// report or a work item away from them) or names them (a transfer of
    /// primary ownership, the revocation or expiry of their invitation).
    #[serde(default)]
    pub changed_version: u64,
}

impl User {
    /// A fresh user.
    pub fn new(id: UserId, status: UserStatus, profile: Profile) -> Self {
        Self {
            id,
            status,
            profile: Some(profile),
            memberships: VecMap::new(),
            agency_admin: false,
            reports_to: None,
            direct_reports: VecSet::new(),
            assigned_numbers: VecSet::new(),
            forwarded_numbers: VecSet::new(),
            work: VecSet::new(),
            devices: VecMap::new(),
            invitation: None,
            invitation_accepted: false,
            password_reset: None,
            created_version: 0,
            changed_version: 0,
        }
    }

    /// Whether the user is active.
    pub fn is_active(&self) -> bool {
        self.status == UserStatus::Active
    }

    /// Whether the user can reach `account`: a membership there, or agency administrator.
    pub fn has_access(&self, account: AccountId) -> bool {
        self.agency_admin || self.memberships.contains_key(&account)
    }

    /// The email: none once erased, nor for a user provisioned without one
    /// (R-USR-04, whose profile holds an empty email).
    pub fn email(&self) -> Option<&str> {
        self.profile
            .as_ref()
            .map(|p| p.email.as_str())
            .filter(|e| !e.is_empty())
    }

    /// A short human label: name, else email, else sign-in name, else the id
    /// (for deleted users).
    pub fn label(&self) -> String {
        match &self.profile {
            Some(p) => p
                .name
                .clone()
                .or_else(|| self.email().map(str::to_owned))
                .or_else(|| p.sign_in_name.clone())
                .unwrap_or_else(|| self.id.to_string()),
            None => self.id.to_string(),
        }
    }
}

/// A phone number held by an account.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Number {
    /// E.164.
    pub number: PhoneNumber,
    /// The account that holds it.
    pub account: AccountId,
    /// The user it is assigned to (R-NUM-01).
    pub assigned_to: Option<UserId>,
    /// The user it forwards to (R-NUM-04).
    pub forwarded_to: Option<UserId>,
    /// Whether it was ever assigned: an unassigned number that was is orphaned
    /// until forwarded or released (R-NUM-03).
    pub ever_assigned: bool,
}

impl Number {
    /// R-NUM-03: assigned once, now neither assigned nor forwarded.
    pub fn is_orphaned(&self) -> bool {
        self.ever_assigned && self.assigned_to.is_none() && self.forwarded_to.is_none()
    }
}

/// Kinds of work a user owns (seed 003).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub enum WorkKind {
    /// A (flow) conversation.
    Conversation,
    /// A group conversation.
    GroupConversation,
    /// A flow template.
    FlowTemplate,
    /// A content library folder.
    ContentFolder,
    /// A client (R-WORK-02).
    Client,
    /// A meeting; cancelled when its owner is deleted (R-LIFE-05).
    Meeting,
}

/// Something a user owns.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct WorkItem {
    /// Id.
    pub id: WorkItemId,
    /// Kind.
    pub kind: WorkKind,
    /// Title (not personal data of the owner).
    pub title: String,
    /// Current owner.
    pub owner: UserId,
    /// Meetings only: cancelled because the owner was deleted.
    pub cancelled: bool,
}

/// SHA-256 of a secret token, hex. Only this is ever recorded (R-INV-03).
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct TokenHash(pub String);

/// The index of invitation tokens (R-INV-03): token hash to invitation.
///
/// Holds, per invitation, the hash's first 16 bytes read as one integer and
/// the invitation's id; a look-up takes the (almost always single) entry of
/// that integer and compares the invitation's own hash in full, so the index
/// is exact whatever the hashes look like. Keyed by the `String` itself,
/// every search step was a cache miss and a `memcmp` call (17 % of
/// `evolve`'s time over a 100 000-user history) and every invitation held its
/// 64-character hash twice (BENCHMARKS.md §2, §5).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(transparent)]
pub(crate) struct TokenIndex(BTreeSet<(u128, InvitationId)>);

impl TokenIndex {
    fn head(hash: &TokenHash) -> u128 {
        let bytes = hash.0.as_bytes();
        let mut head = [0u8; 16];
        let n = bytes.len().min(16);
        head[..n].copy_from_slice(&bytes[..n]);
        u128::from_be_bytes(head)
    }

    /// Indexes `hash` as the token of `invitation`.
    pub(crate) fn insert(&mut self, hash: &TokenHash, invitation: InvitationId) {
        self.0.insert((Self::head(hash), invitation));
    }

    /// The invitation of `invitations` whose token hashes to `hash`.
    pub(crate) fn get(
        &self,
        hash: &TokenHash,
        invitations: &BTreeMap<InvitationId, Invitation>,
    ) -> Option<InvitationId> {
        let head = Self::head(hash);
        let first = InvitationId::from_uuid(uuid::Uuid::nil());
        let last = InvitationId::from_uuid(uuid::Uuid::max());
        self.0
            .range((head, first)..=(head, last))
            .map(|(_, id)| *id)
            .find(|id| invitations.get(id).is_some_and(|i| &i.token_hash == hash))
    }

    /// The ids of the indexed invitations.
    pub(crate) fn ids(&self) -> impl Iterator<Item = InvitationId> + '_ {
        self.0.iter().map(|(_, id)| *id)
    }
}

impl<'a> FromIterator<(&'a TokenHash, InvitationId)> for TokenIndex {
    /// Builds the index in one go (a sort and a bulk build of the B-tree),
    /// as a snapshot load does.
    fn from_iter<I: IntoIterator<Item = (&'a TokenHash, InvitationId)>>(pairs: I) -> Self {
        TokenIndex(
            pairs
                .into_iter()
                .map(|(hash, id)| (Self::head(hash), id))
                .collect(),
        )
    }
}

/// How an invitation reaches its invitee (R-INV-03).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Delivery {
    /// Sent to an email address.
    Email,
    /// A copyable link; the email is given on acceptance.
    Link,
}

/// Status of an invitation.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum InvitationStatus {
    /// Waiting to be accepted.
    Pending,
    /// Accepted.
    Accepted,
    /// Its TTL ran out (R-INV-05).
    Expired,
    /// Revoked (R-INV-07).
    Revoked,
    /// Replaced by a re-invitation (R-INV-05, R-INV-07).
    Superseded,
}

/// What an invitation grants (R-INV-02).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Grant {
    /// The role on each account.
    pub role: RoleId,
    /// The accounts.
    pub accounts: Vec<AccountId>,
    /// Agency administrator grant.
    pub agency_admin: bool,
    /// Clients assigned on acceptance.
    pub clients: Vec<WorkItemId>,
}

/// A pending offer to join.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Invitation {
    /// Id.
    pub id: InvitationId,
    /// Email or link.
    pub delivery: Delivery,
    /// The invited user (email invitations create the user as `Invited`;
    /// link invitations create them on acceptance).
    pub user: Option<UserId>,
    /// What the invitee gets.
    pub grant: Grant,
    /// Hash of the secret token.
    pub token_hash: TokenHash,
    /// When it expires.
    pub expires_at: DateTime<Utc>,
    /// Status as recorded. A `Pending` invitation past `expires_at` is
    /// effectively expired: see [`Invitation::status_at`].
    pub status: InvitationStatus,
}

impl Invitation {
    /// The status at `now`, counting a lapsed TTL as expired.
    pub fn status_at(&self, now: DateTime<Utc>) -> InvitationStatus {
        if self.status == InvitationStatus::Pending && now >= self.expires_at {
            InvitationStatus::Expired
        } else {
            self.status
        }
    }
}

/// The whole directory of one organization: the fold of its stream. `Debug`
/// hides personal data (profiles, device names, the keys of the index by email).
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Organization {
    /// The organization (and stream) id.
    pub id: OrgId,
    /// Whether `OrganizationCreated` has been folded in.
    pub created: bool,
    /// The stream version folded so far.
    pub version: u64,
    /// Name.
    pub name: String,
    /// Policies.
    pub policies: Policies,
    /// The primary owner (R-LIFE-03); set from creation on.
    pub primary_owner: Option<UserId>,
    /// The root account.
    pub root_account: Option<AccountId>,
    /// Accounts by id.
    pub accounts: BTreeMap<AccountId, Account>,
    /// Roles by id.
    pub roles: BTreeMap<RoleId, Role>,
    /// Users by id (deleted ones included, with erased profiles). Boxed:
    /// a B-tree node holds 11 slots and is about half full when ids arrive
    /// in order, so a slot of 24 bytes instead of a whole `User` halves what
    /// a user costs in the map (BENCHMARKS.md §4).
    pub users: BTreeMap<UserId, Box<User>>,
    /// Index: lower-cased email to live (non-deleted) user (R-USR-01).
    /// This and the other indexes are kept by `evolve` alone: outside the
    /// crate they are read through methods and never written, so no caller
    /// can make an index disagree with what it indexes.
    pub(crate) email_index: BTreeMap<String, UserId>,
    /// Index: lower-cased sign-in name to live user (R-USR-03).
    pub(crate) sign_in_index: BTreeMap<String, UserId>,
    /// Numbers by E.164.
    pub numbers: BTreeMap<PhoneNumber, Number>,
    /// Index: orphaned numbers (R-NUM-03).
    pub(crate) orphaned_index: BTreeSet<PhoneNumber>,
    /// Invitations by id.
    pub invitations: BTreeMap<InvitationId, Invitation>,
    /// Index: token hash to invitation.
    pub(crate) token_index: TokenIndex,
    /// Index: recorded-`Pending` invitations by expiry, for the expiry sweep.
    pub(crate) expiry_index: BTreeSet<(DateTime<Utc>, InvitationId)>,
    /// Work items by id.
    pub work_items: BTreeMap<WorkItemId, WorkItem>,
    /// Index: agency administrators.
    pub(crate) agency_admin_index: BTreeSet<UserId>,
}

crate::redact::debug_redacted!(struct Organization {
    id,
    created,
    version,
    name,
    policies,
    primary_owner,
    root_account,
    accounts,
    roles,
    users,
    @redacted email_index,
    @redacted sign_in_index,
    numbers,
    orphaned_index,
    invitations,
    token_index,
    expiry_index,
    work_items,
    agency_admin_index,
});

impl Organization {
    /// Users, accounts, numbers, invitations, work items and roles: what the
    /// size of a snapshot grows with. Cost: constant.
    pub fn entity_count(&self) -> u64 {
        let n = self.users.len()
            + self.accounts.len()
            + self.numbers.len()
            + self.invitations.len()
            + self.work_items.len()
            + self.roles.len();
        n as u64
    }

    /// The state of a stream with no events.
    pub fn empty(id: OrgId) -> Self {
        Self {
            id,
            created: false,
            version: 0,
            name: String::new(),
            policies: Policies::default(),
            primary_owner: None,
            root_account: None,
            accounts: BTreeMap::new(),
            roles: BTreeMap::new(),
            users: BTreeMap::new(),
            email_index: BTreeMap::new(),
            sign_in_index: BTreeMap::new(),
            numbers: BTreeMap::new(),
            orphaned_index: BTreeSet::new(),
            invitations: BTreeMap::new(),
            token_index: TokenIndex::default(),
            expiry_index: BTreeSet::new(),
            work_items: BTreeMap::new(),
            agency_admin_index: BTreeSet::new(),
        }
    }

    /// A user by id.
    pub fn user(&self, id: UserId) -> Option<&User> {
        self.users.get(&id).map(|u| &**u)
    }

    /// A live user by email, compared case-insensitively (R-USR-01).
    pub fn user_by_email(&self, email: &str) -> Option<&User> {
        self.email_index
            .get(&email.to_lowercase())
            .and_then(|id| self.users.get(id))
            .map(|u| &**u)
    }

    /// The index of live users by lower-cased email (R-USR-01), read-only.
    pub fn email_index(&self) -> &BTreeMap<String, UserId> {
        &self.email_index
    }

    /// A live user by sign-in name, compared case-insensitively (R-USR-03).
    /// Users without a sign-in name sign in with their email: see
    /// [`Organization::user_signing_in_as`] for the lookup a sign-in screen
    /// needs.
    pub fn user_by_sign_in_name(&self, name: &str) -> Option<&User> {
        self.sign_in_index
            .get(&crate::validate::sign_in_key(name))
            .and_then(|id| self.users.get(id))
            .map(|u| &**u)
    }

    /// The live user who signs in as `login`: the one whose sign-in name it
    /// is, else the one whose email it is. R-USR-03 keeps the two from
    /// naming different users.
    pub fn user_signing_in_as(&self, login: &str) -> Option<&User> {
        self.user_by_sign_in_name(login)
            .or_else(|| self.user_by_email(login))
    }

    /// The index of live users by lower-cased sign-in name (R-USR-03),
    /// read-only.
    pub fn sign_in_index(&self) -> &BTreeMap<String, UserId> {
        &self.sign_in_index
    }

    /// The index of orphaned numbers (R-NUM-03), read-only; see
    /// [`Organization::orphaned_numbers`] for the numbers themselves.
    pub fn orphaned_index(&self) -> &BTreeSet<PhoneNumber> {
        &self.orphaned_index
    }

    /// The invitation whose token hashes to `hash`, whatever its status.
    pub fn invitation_by_token(&self, hash: &TokenHash) -> Option<&Invitation> {
        self.token_index
            .get(hash, &self.invitations)
            .and_then(|id| self.invitations.get(&id))
    }

    /// The index of invitation tokens, read-only: every indexed token hash
    /// with its invitation, in no promised order.
    pub fn token_index(&self) -> impl Iterator<Item = (&TokenHash, InvitationId)> + '_ {
        self.token_index
            .ids()
            .filter_map(|id| self.invitations.get(&id).map(|i| (&i.token_hash, id)))
    }

    /// The index of recorded-`Pending` invitations by expiry, read-only; see
    /// [`Organization::pending_invitations`] for those still pending at an
    /// instant.
    pub fn expiry_index(&self) -> &BTreeSet<(DateTime<Utc>, InvitationId)> {
        &self.expiry_index
    }

    /// The agency administrators (R-MEM-05), read-only.
    pub fn agency_admins(&self) -> &BTreeSet<UserId> {
        &self.agency_admin_index
    }

    /// Whether `user` holds `permission` on `account` (agency administrators hold every permission everywhere).
    pub fn has_permission(&self, user: &User, account: AccountId, permission: Permission) -> bool {
        if user.agency_admin {
            return true;
        }
        user.memberships
            .get(&account)
            .and_then(|role| self.roles.get(role))
            .is_some_and(|r| r.permissions.contains(&permission))
    }

    /// Whether `user` holds `permission` on any account. Cost: the user's memberships.
    pub fn holds_anywhere(&self, user: &User, permission: Permission) -> bool {
        user.agency_admin
            || user.memberships.values().any(|role| {
                self.roles
                    .get(role)
                    .is_some_and(|r| r.permissions.contains(&permission))
            })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The token index finds exactly the hashes it was given, whatever
    /// they look like: short, sharing their first 16 bytes, holding NULs.
    #[test]
    fn the_token_index_is_an_exact_map_of_hashes() {
        let hashes = [
            "",
            "a",
            "a\0",
            "a\0b",
            "0123456789abcdef",
            "0123456789abcdef0",
            "0123456789abcdef1",
            "0123456789abcdeg",
            "ffffffffffffffffffffffffffffffff",
            "\u{7f}",
        ];
        let mut index = TokenIndex::default();
        let mut invitations = BTreeMap::new();
        for (n, h) in hashes.iter().enumerate() {
            let id = InvitationId::from_uuid(uuid::Uuid::from_u128(n as u128 + 1));
            let hash = TokenHash(h.to_string());
            index.insert(&hash, id);
            invitations.insert(
                id,
                Invitation {
                    id,
                    delivery: Delivery::Link,
                    user: None,
                    grant: Grant {
                        role: RoleId::new(RoleId::OWNER),
                        accounts: vec![],
                        agency_admin: false,
                        clients: vec![],
                    },
                    token_hash: hash,
                    expires_at: DateTime::<Utc>::UNIX_EPOCH,
                    status: InvitationStatus::Pending,
                },
            );
        }
        for (id, i) in &invitations {
            assert_eq!(
                index.get(&i.token_hash, &invitations),
                Some(*id),
                "{:?}",
                i.token_hash
            );
        }
        for missing in ["a\0\0", "0123456789abcdef2", "b"] {
            assert_eq!(index.get(&TokenHash(missing.into()), &invitations), None);
        }
        let rebuilt: TokenIndex = invitations
            .values()
            .map(|i| (&i.token_hash, i.id))
            .collect();
        assert_eq!(rebuilt, index);
    }
}
