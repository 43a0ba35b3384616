//! Domain events: what happened, as plain serde data.
//!
//! Every event type has a schema version ([`Event::schema_version`]); stored
//! payloads of older versions are upcast on read (see [`crate::codec`]).
//! Personal data (name, email, mobile, job title, picture) appears only inside
//! [`PersonalData`] fields, so that it can be erased (R-LIFE-06).

use crate::ids::*;
use crate::model::*;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

/// Personal data carried by an event: each `Some` field is set; fields named
/// in `cleared` are removed. This is the only place personal data lives in the log.
/// `Debug` shows which fields are set, never their values.
#[derive(Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct PersonalData {
    /// Full name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// Email address.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub email: Option<String>,
    /// Mobile number.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mobile: Option<PhoneNumber>,
    /// Job title.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub job_title: Option<String>,
    /// Picture URL.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub picture: Option<String>,
    /// The identity provider's id for the user.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub external_id: Option<String>,
    /// The name the user signs in with (R-USR-03).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sign_in_name: Option<String>,
    /// Fields removed.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub cleared: Vec<ProfileField>,
}

crate::redact::debug_redacted!(struct PersonalData {
    @redacted name,
    @redacted email,
    @redacted mobile,
    @redacted job_title,
    @redacted picture,
    @redacted external_id,
    @redacted sign_in_name,
    cleared,
});

impl PersonalData {
    /// Whether it carries nothing.
    pub fn is_empty(&self) -> bool {
        self.name.is_none()
            && self.email.is_none()
            && self.mobile.is_none()
            && self.job_title.is_none()
            && self.picture.is_none()
            && self.external_id.is_none()
            && self.sign_in_name.is_none()
            && self.cleared.is_empty()
    }
}

/// How a deletion's consequences were acknowledged (R-LIFE-05).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct DeletionAcknowledgement {
    /// "You cannot recover this user."
    pub cannot_be_undone: bool,
    /// "All profile information will be deleted."
    pub profile_erased: bool,
    /// "Meetings they've scheduled will be cancelled."
    pub meetings_cancelled: bool,
    /// "Everything else will not be deleted."
    pub everything_else_kept: bool,
}

impl DeletionAcknowledgement {
    /// All four consequences acknowledged.
    pub const ALL: Self = Self {
        cannot_be_undone: true,
        profile_erased: true,
        meetings_cancelled: true,
        everything_else_kept: true,
    };
}

/// Defines [`Event`] and, from the same variant list, its externally tagged
/// twin [`Tagged`] (`{"<type>": {fields}}`) that `codec` reads stored payloads
/// into. Why two: serde reads an internally tagged enum (`"type"` inside the
/// object, [`Event`]'s public JSON shape) by first buffering the whole object
/// into a private tree and then reading the variant from that copy; the
/// externally tagged form is read in one pass. `codec` presents the type name
/// as the variant and the stored payload's raw text as its content, so the
/// text is deserialized straight into the event (BENCHMARKS.md §2). One list, so the two cannot drift apart. The same list gives `Event`
/// its `Debug`, which prints the fields marked `@redacted` redacted (see
/// [`crate::redact`]); `PersonalData` redacts itself.
macro_rules! events {
    (
        $(#[$enum_attr:meta])*
        pub enum Event {
            $(
                $(#[$variant_attr:meta])*
                $variant:ident {
                    $( $(#[$field_attr:meta])* $(@$mark:ident)? $field:ident : $ty:ty ),* $(,)?
                }
            ),* $(,)?
        }
    ) => {
        $(#[$enum_attr])*
        pub enum Event {
            $(
                $(#[$variant_attr])*
                $variant { $( $(#[$field_attr])* $field: $ty ),* }
            ),*
        }

        /// [`Event`] externally tagged, for decoding only (see `events!`).
        #[derive(Deserialize)]
        pub(crate) enum Tagged {
            $(
                $variant { $( $(#[$field_attr])* $field: $ty ),* }
            ),*
        }

        // `Debug` prints the fields marked `@redacted` redacted (see `crate::redact`).
        crate::redact::debug_redacted!(enum Event {
            $( $variant { $( $(@$mark)? $field ),* } ),*
        });

        impl From<Tagged> for Event {
            fn from(tagged: Tagged) -> Self {
                match tagged {
                    $( Tagged::$variant { $($field),* } => Event::$variant { $($field),* } ),*
                }
            }
        }
    };
}

events! {
/// Something that happened to an organization. `Debug` hides personal data
/// and device names (see [`crate::redact`]).
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type")]
#[non_exhaustive]
pub enum Event {
    /// The organization exists, with its root account and primary owner.
    OrganizationCreated {
        /// Name.
        name: String,
        /// Policies.
        policies: Policies,
        /// The root account.
        root_account: AccountId,
        /// The root account's name.
        root_account_name: String,
        /// The primary owner, active, agency administrator and `owner` on the root account.
        owner: UserId,
        /// The owner's personal data.
        owner_personal: PersonalData,
    },
    /// Policies changed.
    PoliciesChanged {
        /// The new policies.
        policies: Policies,
    },
    /// Primary ownership moved (R-LIFE-03).
    PrimaryOwnershipTransferred {
        /// Previous owner.
        from: UserId,
        /// New owner.
        to: UserId,
    },
    /// An account was created.
    AccountCreated {
        /// Id.
        account: AccountId,
        /// Name.
        name: String,
        /// Parent.
        parent: AccountId,
    },
    /// A custom role was defined or redefined.
    RoleDefined {
        /// The role.
        role: Role,
    },
    /// A person was invited by email: the user exists as `Invited` (R-INV-01, R-INV-04).
    UserInvited {
        /// The new user.
        user: UserId,
        /// The invitation.
        invitation: InvitationId,
        /// Their personal data (the email).
        personal: PersonalData,
        /// What they get.
        grant: Grant,
        /// Token hash (R-INV-03).
        token_hash: TokenHash,
        /// Expiry (R-INV-05).
        expires_at: DateTime<Utc>,
    },
    /// An identity provider provisioned a user: no invitation, active at
    /// once, signing in with a sign-in name or an email (R-USR-04).
    UserProvisioned {
        /// The new user.
        user: UserId,
        /// Their personal data: the sign-in name, the email or both, and
        /// the rest of the profile the identity provider knows.
        personal: PersonalData,
        /// Default sending country (not personal data: in clear).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        default_country: Option<String>,
        /// What they get.
        grant: Grant,
    },
    /// A copyable invitation link was created (R-INV-03).
    InvitationLinkCreated {
        /// The invitation.
        invitation: InvitationId,
        /// What the invitee gets.
        grant: Grant,
        /// Token hash.
        token_hash: TokenHash,
        /// Expiry.
        expires_at: DateTime<Utc>,
    },
    /// A re-invitation replaced an invitation with a new token and TTL (R-INV-05).
    UserReinvited {
        /// The invited user.
        user: UserId,
        /// The replaced invitation.
        previous: InvitationId,
        /// The new invitation.
        invitation: InvitationId,
        /// New token hash.
        token_hash: TokenHash,
        /// New expiry.
        expires_at: DateTime<Utc>,
    },
    /// An invitation was accepted; the invitee completed their profile (R-INV-04).
    InvitationAccepted {
        /// The invitation.
        invitation: InvitationId,
        /// The user (created now for link invitations).
        user: UserId,
        /// Whether the user was created by this acceptance (link invitations).
        new_user: bool,
        /// Profile completed on acceptance.
        personal: PersonalData,
        /// Default sending country.
        default_country: Option<String>,
    },
    /// An invitation was revoked (R-INV-07).
    InvitationRevoked {
        /// The invitation.
        invitation: InvitationId,
    },
    /// An invitation's TTL ran out and it was marked expired (R-INV-05).
    InvitationExpired {
        /// The invitation.
        invitation: InvitationId,
    },
    /// A device signed in.
    DeviceSignedIn {
        /// The user.
        user: UserId,
        /// The device session.
        device: DeviceId,
        /// Device name. Stored as `device_name` since schema version 2 (v1:
        /// `name`, easily mistaken for the user's personal name).
        #[serde(rename = "device_name")]
        @redacted name: String,
        /// When. Stored as `signed_in_at` since schema version 2 (v1: `at`).
        #[serde(rename = "signed_in_at")]
        at: DateTime<Utc>,
    },
    /// First sign-in after acceptance: the user is active (R-INV-04).
    UserActivated {
        /// The user.
        user: UserId,
    },
    /// A device session ended (R-LIFE-08).
    DeviceSignedOut {
        /// The user.
        user: UserId,
        /// The device.
        device: DeviceId,
    },
    /// Profile details changed (R-AUTH-02, R-AUTH-03).
    ProfileUpdated {
        /// The user.
        user: UserId,
        /// Changed personal fields.
        personal: PersonalData,
        /// New default sending country.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        default_country: Option<String>,
        /// New notification preferences.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        notifications: Option<NotificationPreferences>,
    },
    /// The agency administrator grant was given (R-AUTH-03).
    AgencyAdminGranted {
        /// The user.
        user: UserId,
    },
    /// The agency administrator grant was removed, with every membership (R-MEM-05).
    AgencyAdminRevoked {
        /// The user.
        user: UserId,
    },
    /// Access to an account with a role (R-MEM-02).
    AccessGranted {
        /// The user.
        user: UserId,
        /// The account.
        account: AccountId,
        /// The role there.
        role: RoleId,
    },
    /// Role on an account changed (R-MEM-01).
    RoleChanged {
        /// The user.
        user: UserId,
        /// The account.
        account: AccountId,
        /// Old role.
        from: RoleId,
        /// New role.
        to: RoleId,
    },
    /// Access to an account removed (R-MEM-03).
    AccessRemoved {
        /// The user.
        user: UserId,
        /// The account.
        account: AccountId,
    },
    /// A number was added to an account (R-NUM-06).
    NumberAdded {
        /// E.164.
        number: PhoneNumber,
        /// Holding account.
        account: AccountId,
    },
    /// A number was assigned (R-NUM-01).
    NumberAssigned {
        /// The number.
        number: PhoneNumber,
        /// The user.
        user: UserId,
    },
    /// A number was unassigned (R-NUM-03).
    NumberUnassigned {
        /// The number.
        number: PhoneNumber,
        /// Who it was assigned to.
        user: UserId,
    },
    /// A number now forwards to a user (R-NUM-04).
    NumberForwarded {
        /// The number.
        number: PhoneNumber,
        /// The target.
        to: UserId,
    },
    /// A number stopped forwarding.
    NumberForwardingStopped {
        /// The number.
        number: PhoneNumber,
    },
    /// A number was released from the organization (R-NUM-03).
    NumberReleased {
        /// The number.
        number: PhoneNumber,
    },
    /// Reporting line set or cleared (R-TEAM-01).
    ReportingLineChanged {
        /// The report.
        user: UserId,
        /// New leader.
        leader: Option<UserId>,
    },
    /// A work item came into being.
    WorkItemCreated {
        /// Id.
        item: WorkItemId,
        /// Kind.
        kind: WorkKind,
        /// Title.
        title: String,
        /// Owner.
        owner: UserId,
    },
    /// A work item changed owner (R-WORK-01, R-WORK-02).
    WorkTransferred {
        /// The item.
        item: WorkItemId,
        /// Old owner.
        from: UserId,
        /// New owner.
        to: UserId,
    },
    /// A meeting was cancelled because its owner was deleted (R-LIFE-05).
    MeetingCancelled {
        /// The meeting.
        item: WorkItemId,
    },
    /// A password reset token was issued (R-LIFE-07).
    PasswordResetIssued {
        /// The user.
        user: UserId,
        /// Token hash.
        token_hash: TokenHash,
        /// Expiry.
        expires_at: DateTime<Utc>,
    },
    /// The user was deactivated; every session ended (R-LIFE-01).
    UserDeactivated {
        /// The user.
        user: UserId,
        /// Sessions ended by this deactivation.
        sessions_ended: Vec<DeviceId>,
    },
    /// The user was reactivated (R-LIFE-02).
    UserReactivated {
        /// The user.
        user: UserId,
    },
    /// The user was deleted; personal data erased (R-LIFE-05, R-LIFE-06).
    UserDeleted {
        /// The user.
        user: UserId,
        /// The acknowledgement given.
        acknowledgement: DeletionAcknowledgement,
        /// Sessions ended.
        sessions_ended: Vec<DeviceId>,
    },
}
}

impl Event {
    /// The type name stored with the event.
    pub fn event_type(&self) -> &'static str {
        use Event::*;
        match self {
            OrganizationCreated { .. } => "OrganizationCreated",
            PoliciesChanged { .. } => "PoliciesChanged",
            PrimaryOwnershipTransferred { .. } => "PrimaryOwnershipTransferred",
            AccountCreated { .. } => "AccountCreated",
            RoleDefined { .. } => "RoleDefined",
            UserInvited { .. } => "UserInvited",
            UserProvisioned { .. } => "UserProvisioned",
            InvitationLinkCreated { .. } => "InvitationLinkCreated",
            UserReinvited { .. } => "UserReinvited",
            InvitationAccepted { .. } => "InvitationAccepted",
            InvitationRevoked { .. } => "InvitationRevoked",
            InvitationExpired { .. } => "InvitationExpired",
            DeviceSignedIn { .. } => "DeviceSignedIn",
            UserActivated { .. } => "UserActivated",
            DeviceSignedOut { .. } => "DeviceSignedOut",
            ProfileUpdated { .. } => "ProfileUpdated",
            AgencyAdminGranted { .. } => "AgencyAdminGranted",
            AgencyAdminRevoked { .. } => "AgencyAdminRevoked",
            AccessGranted { .. } => "AccessGranted",
            RoleChanged { .. } => "RoleChanged",
            AccessRemoved { .. } => "AccessRemoved",
            NumberAdded { .. } => "NumberAdded",
            NumberAssigned { .. } => "NumberAssigned",
            NumberUnassigned { .. } => "NumberUnassigned",
            NumberForwarded { .. } => "NumberForwarded",
            NumberForwardingStopped { .. } => "NumberForwardingStopped",
            NumberReleased { .. } => "NumberReleased",
            ReportingLineChanged { .. } => "ReportingLineChanged",
            WorkItemCreated { .. } => "WorkItemCreated",
            WorkTransferred { .. } => "WorkTransferred",
            MeetingCancelled { .. } => "MeetingCancelled",
            PasswordResetIssued { .. } => "PasswordResetIssued",
            UserDeactivated { .. } => "UserDeactivated",
            UserReactivated { .. } => "UserReactivated",
            UserDeleted { .. } => "UserDeleted",
        }
    }

    /// The current schema version of this event's payload: 1 plus the
    /// upcasting steps of its type in [`crate::schema::UPCASTERS`]. To change a
    /// shape, add an upcaster there; this follows.
    pub fn schema_version(&self) -> u32 {
        crate::schema::current_version(self.event_type())
    }

    /// The user whose personal data this event carries, if any (for erasure).
    pub fn personal_data_subject(&self) -> Option<UserId> {
        use Event::*;
        match self {
            OrganizationCreated { owner, .. } => Some(*owner),
            UserInvited { user, .. }
            | UserProvisioned { user, .. }
            | InvitationAccepted { user, .. }
            | ProfileUpdated { user, .. }
            | DeviceSignedIn { user, .. } => Some(*user),
            _ => None,
        }
    }

    /// The users this event is about, for entity trails.
    pub fn users(&self) -> Vec<UserId> {
        self.user_pair().into_iter().flatten().collect()
    }

    /// The users this event is about: never more than two, so `evolve` can
    /// stamp them without allocating.
    pub(crate) fn user_pair(&self) -> [Option<UserId>; 2] {
        use Event::*;
        let one = |u: &UserId| [Some(*u), None];
        match self {
            OrganizationCreated { owner, .. } => one(owner),
            PrimaryOwnershipTransferred { from, to } => [Some(*from), Some(*to)],
            UserInvited { user, .. }
            | UserProvisioned { user, .. }
            | UserReinvited { user, .. }
            | InvitationAccepted { user, .. }
            | DeviceSignedIn { user, .. }
            | UserActivated { user }
            | DeviceSignedOut { user, .. }
            | ProfileUpdated { user, .. }
            | AgencyAdminGranted { user }
            | AgencyAdminRevoked { user }
            | AccessGranted { user, .. }
            | RoleChanged { user, .. }
            | AccessRemoved { user, .. }
            | NumberAssigned { user, .. }
            | NumberUnassigned { user, .. }
            | PasswordResetIssued { user, .. }
            | UserDeactivated { user, .. }
            | UserReactivated { user }
            | UserDeleted { user, .. } => one(user),
            NumberForwarded { to, .. } => one(to),
            ReportingLineChanged { user, leader } => [Some(*user), *leader],
            WorkItemCreated { owner, .. } => one(owner),
            WorkTransferred { from, to, .. } => [Some(*from), Some(*to)],
            _ => [None, None],
        }
    }
}
