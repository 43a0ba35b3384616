//! Identifiers. Every entity id is a UUID newtype so that a user id can never be
//! passed where an account id is expected. Ids are minted by the caller's
//! [`IdSource`](crate::IdSource); the core never draws random numbers.

use compact_str::CompactString;
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

/// Implements the string newtype's conversions and views. The text is held
/// as a `CompactString`: inline up to 24 bytes, so a role id or an E.164
/// number (at most 16 bytes) costs no heap block of its own; it compares,
/// hashes and serializes exactly as its `str`.
macro_rules! inline_str {
    ($name:ident) => {
        impl $name {
            /// The text.
            pub fn as_str(&self) -> &str {
                self.0.as_str()
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.0)
            }
        }

        impl AsRef<str> for $name {
            fn as_ref(&self) -> &str {
                self.0.as_str()
            }
        }

        /// Maps keyed by this type can be searched with a `&str`: it
        /// compares, and hashes, exactly as its text does.
        impl std::borrow::Borrow<str> for $name {
            fn borrow(&self) -> &str {
                self.0.as_str()
            }
        }

        impl From<&str> for $name {
            fn from(text: &str) -> Self {
                Self(CompactString::from(text))
            }
        }

        impl From<String> for $name {
            fn from(text: String) -> Self {
                Self(CompactString::from(text))
            }
        }

        impl From<$name> for String {
            fn from(value: $name) -> String {
                value.0.into_string()
            }
        }

        impl PartialEq<str> for $name {
            fn eq(&self, other: &str) -> bool {
                self.0.as_str() == other
            }
        }

        impl PartialEq<&str> for $name {
            fn eq(&self, other: &&str) -> bool {
                self.0.as_str() == *other
            }
        }
    };
}

/// The id of a role, unique within an organization: a short slug such as
/// `administrator` or `night-shift-supervisor` (at most
/// [`MAX_ROLE_ID_LEN`](crate::validate::MAX_ROLE_ID_LEN) bytes).
///
/// ```
/// use switchboard_core::RoleId;
/// let role = RoleId::new(RoleId::AGENT);
/// assert_eq!(role.as_str(), "agent");
/// assert_eq!(role, RoleId::from("agent".to_string()));
/// assert_eq!(serde_json::to_string(&role).unwrap(), r#""agent""#);
/// ```
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct RoleId(CompactString);

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
    pub fn new(slug: impl AsRef<str>) -> Self {
        Self(CompactString::new(slug))
    }
}

inline_str!(RoleId);

/// A phone number normalised to E.164 (`+14155550100`). Construct it with
/// [`crate::validate::phone_number`] so that it is always valid (R-NUM-06).
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct PhoneNumber(CompactString);

impl PhoneNumber {
    /// Wraps text that is already E.164, unchecked (a number read back from
    /// the log, a test's fixture); input goes through
    /// [`crate::validate::phone_number`] instead.
    pub fn new(e164: impl AsRef<str>) -> Self {
        Self(CompactString::new(e164))
    }
}

inline_str!(PhoneNumber);

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

    /// Role ids and phone numbers are held inline, but compare, hash and
    /// serialize (JSON for events, postcard for snapshots) byte for byte as
    /// the `String`s they used to be, short and long (a slug may be 64 bytes,
    /// past the 24 held inline).
    #[test]
    fn inline_strings_behave_and_serialize_as_their_text() {
        use std::collections::hash_map::DefaultHasher;
        use std::hash::{Hash, Hasher};
        fn hash<T: Hash + ?Sized>(value: &T) -> u64 {
            let mut h = DefaultHasher::new();
            value.hash(&mut h);
            h.finish()
        }
        let long = "a-slug-of-sixty-four-bytes-which-is-past-what-is-held-inline-xyz";
        assert_eq!(long.len(), crate::validate::MAX_ROLE_ID_LEN);
        let texts = ["", "+14155550100", "agent", "team-leader", "é", "zz", long];
        for a in texts {
            let (role, number) = (RoleId::new(a), PhoneNumber::new(a));
            assert_eq!(role.as_str(), a);
            assert_eq!(number.to_string(), a);
            assert_eq!(RoleId::from(a.to_string()), role);
            assert_eq!(String::from(number.clone()), a);
            assert_eq!(hash(&role), hash(&a.to_string()));
            assert_eq!(hash(&role), hash(a), "Borrow<str> needs equal hashes");
            let json = serde_json::to_string(a).unwrap();
            assert_eq!(serde_json::to_string(&role).unwrap(), json);
            assert_eq!(serde_json::to_string(&number).unwrap(), json);
            assert_eq!(serde_json::from_str::<RoleId>(&json).unwrap(), role);
            let bytes = postcard::to_stdvec(&a.to_string()).unwrap();
            assert_eq!(postcard::to_stdvec(&role).unwrap(), bytes);
            assert_eq!(postcard::to_stdvec(&number).unwrap(), bytes);
            assert_eq!(postcard::from_bytes::<PhoneNumber>(&bytes).unwrap(), number);
            for b in texts {
                assert_eq!(RoleId::new(a).cmp(&RoleId::new(b)), a.cmp(b), "{a} vs {b}");
                assert_eq!(PhoneNumber::new(a) == PhoneNumber::new(b), a == b);
            }
        }
        // No bigger than the `String` it replaces, `None` included.
        assert_eq!(std::mem::size_of::<RoleId>(), std::mem::size_of::<String>());
        assert_eq!(
            std::mem::size_of::<Option<PhoneNumber>>(),
            std::mem::size_of::<Option<String>>()
        );
        let roles: std::collections::BTreeSet<RoleId> = texts.iter().map(RoleId::new).collect();
        assert!(roles.contains("agent"));
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
