//! Identifiers. Every entity id is a UUID newtype so that a user id can never be
//! passed where an account id is expected. Ids are minted by the caller's
//! [`IdSource`](crate::IdSource); the core never draws random numbers.

use serde::{Deserialize, Serialize};
use std::fmt;
use uuid::Uuid;

macro_rules! uuid_id {
    ($(#[$doc:meta])* $name:ident, $prefix:literal) => {
        $(#[$doc])*
        #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
        #[serde(transparent)]
        pub struct $name(pub Uuid);

        // The order of the UUID's bytes, as `Uuid`'s own, compared as one
        // big-endian `u128`: ids key every map of the state, and the derived
        // byte-slice comparison is a `memcmp` call per step of a search
        // (17 % of `evolve`'s time at 100 000 users, BENCHMARKS.md §2).
        impl Ord for $name {
            fn cmp(&self, other: &Self) -> std::cmp::Ordering {
                self.0.as_u128().cmp(&other.0.as_u128())
            }
        }

        impl PartialOrd for $name {
            fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
                Some(self.cmp(other))
            }
        }

        impl $name {
            /// Wraps a raw UUID.
            pub const fn from_uuid(id: Uuid) -> Self {
                Self(id)
            }
            /// The raw UUID.
            pub const fn as_uuid(&self) -> Uuid {
                self.0
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                write!(f, concat!($prefix, "_{}"), self.0.simple())
            }
        }

        impl From<Uuid> for $name {
            fn from(id: Uuid) -> Self {
                Self(id)
            }
        }

        /// Reads the display form (`usr_…`, the prefix of this kind of id)
        /// or a bare UUID (the serde form); another kind's prefix is an error.
        impl std::str::FromStr for $name {
            type Err = ParseIdError;
            fn from_str(text: &str) -> Result<Self, ParseIdError> {
                let raw = match text.split_once('_') {
                    Some(($prefix, rest)) => rest,
                    Some(_) => return Err(ParseIdError { expected: $prefix }),
                    None => text,
                };
                Uuid::parse_str(raw)
                    .map(Self)
                    .map_err(|_| ParseIdError { expected: $prefix })
            }
        }
    };
}

/// An id's text was neither its display form (`usr_…`) nor a UUID.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
#[error("not a {expected}_… id or a UUID")]
pub struct ParseIdError {
    /// The prefix of the kind of id expected, e.g. `usr`.
    pub expected: &'static str,
}

uuid_id!(
    /// An organization: the tenant, one consistency boundary and one event stream.
    ///
    /// Every entity id reads back from its display form or a bare UUID:
    ///
    /// ```
    /// use switchboard_core::{OrgId, UserId};
    /// let id = UserId::from_uuid(uuid::Uuid::from_u128(7));
    /// assert_eq!(id.to_string().parse::<UserId>(), Ok(id));
    /// assert_eq!(id.as_uuid().to_string().parse::<UserId>(), Ok(id));
    /// assert!("org_00000000000000000000000000000007".parse::<UserId>().is_err());
    /// assert!("usr_nope".parse::<UserId>().is_err());
    /// # let _ = OrgId::from_uuid(uuid::Uuid::nil());
    /// ```
    OrgId,
    "org"
);
uuid_id!(
    /// An account (or sub-account) of an organization.
    AccountId,
    "acc"
);
uuid_id!(
    /// A user of an organization. Stays resolvable after deletion (R-LIFE-06).
    UserId,
    "usr"
);
uuid_id!(
    /// An invitation (by email or by link).
    InvitationId,
    "inv"
);
uuid_id!(
    /// A work item a user owns (conversation, flow template, client, meeting, ...).
    WorkItemId,
    "wrk"
);
uuid_id!(
    /// A signed-in device session of a user.
    DeviceId,
    "dev"
);
uuid_id!(
    /// The id of one recorded event (UUID v7 in production).
    EventId,
    "evt"
);
uuid_id!(
    /// The id of one command; appending the same command id twice records nothing new.
    CommandId,
    "cmd"
);

/// The id of a role, unique within an organization: a short slug such as
/// `administrator` or `night-shift-supervisor`.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct RoleId(pub String);

impl RoleId {
    /// Built-in role: the organization's owners.
    pub const OWNER: &'static str = "owner";
    /// Built-in role: administrators.
    pub const ADMINISTRATOR: &'static str = "administrator";
    /// Built-in role: team leaders.
    pub const TEAM_LEADER: &'static str = "team-leader";
    /// Built-in role: agents.
    pub const AGENT: &'static str = "agent";
    /// Built-in role: read-only access.
    pub const READ_ONLY: &'static str = "read-only";

    /// Builds a role id from a slug (validated where it enters a command).
    pub fn new(slug: impl Into<String>) -> Self {
        Self(slug.into())
    }
    /// The slug.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for RoleId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// A phone number normalised to E.164 (`+14155550100`). Construct it with
/// [`crate::validate::phone_number`] so that it is always valid (R-NUM-06).
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct PhoneNumber(pub String);

impl PhoneNumber {
    /// The E.164 text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for PhoneNumber {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_read_back_from_their_display_form_or_a_uuid() {
        let uuid = Uuid::from_u128(0x0190_c0de_0000_7000_8000_0000_0000_0001);
        let user = UserId::from_uuid(uuid);
        assert_eq!(user.to_string().parse::<UserId>(), Ok(user));
        assert_eq!(uuid.to_string().parse::<UserId>(), Ok(user));
        assert_eq!(uuid.simple().to_string().parse::<UserId>(), Ok(user));
        let account = AccountId::from_uuid(uuid);
        assert_eq!(account.to_string().parse::<AccountId>(), Ok(account));
        // Another kind's prefix, garbage, an empty string: refused, naming the kind.
        let err = account.to_string().parse::<UserId>().unwrap_err();
        assert_eq!(err, ParseIdError { expected: "usr" });
        assert_eq!(err.to_string(), "not a usr_… id or a UUID");
        assert!("usr_".parse::<UserId>().is_err());
        assert!("usr_xyz".parse::<UserId>().is_err());
        assert!("".parse::<UserId>().is_err());
    }

    /// Ids order as their UUIDs do (byte by byte), so maps iterate, and
    /// snapshots and listings come out, in the same order as before the
    /// comparison became one `u128`'s.
    #[test]
    fn ids_order_as_their_uuids() {
        let edges = [
            0u128,
            1,
            0xff,
            0x100,
            1 << 63,
            (1 << 64) - 1,
            1 << 64,
            1 << 127,
            u128::MAX - 1,
            u128::MAX,
            0x0190_0000_0000_7000_8000_0000_0000_0001,
            0x0190_0000_0000_7000_8000_0000_0000_0100,
            0x0100_0000_0000_0000_0000_0000_0000_0000,
        ];
        for a in edges {
            for b in edges {
                let (ua, ub) = (Uuid::from_u128(a), Uuid::from_u128(b));
                assert_eq!(UserId(ua).cmp(&UserId(ub)), ua.cmp(&ub), "{a:x} vs {b:x}");
                assert_eq!(UserId(ua).partial_cmp(&UserId(ub)), ua.partial_cmp(&ub));
            }
        }
    }
}
