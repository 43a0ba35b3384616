//! The binary form of a snapshot (schema 3 and later): an [`Organization`] written
//! with `postcard` straight from the state's own types — no intermediate
//! JSON tree — with each user's personal data (profile and device names)
//! as one sealed blob.
//!
//! Layout: the organization's fields in declaration order, the users as a
//! sequence of [`UserOut`] (device names moved into the sealed part), the
//! invitations as a sequence of [`InvitationOut`], every timestamp outside
//! the sealed parts as seconds and nanoseconds ([`stamp`], schema 7), and
//! none of the organization's indexes: they are rebuilt on load as `evolve`
//! keeps them (the email index because its keys are emails; the others —
//! invitations by token and by expiry, orphaned numbers, agency
//! administrators — because they repeat what the snapshot holds: the token
//! index alone was a sixth of the size). The writer and the reader are
//! struct pairs ([`OrgOut`]/[`OrgIn`], [`UserOut`]/[`UserIn`],
//! [`InvitationOut`]/[`InvitationIn`], [`ResetOut`]/[`ResetIn`]) that must
//! list the same fields in the same order: postcard writes structs as
//! tuples. The round-trip tests below fail when they drift apart.
//!
//! Loading is bounded by allocation: every string and every non-empty
//! collection of the state is one. The sealed parts are read in place from
//! the snapshot's bytes, opened into one reused buffer, and the maps built
//! from vectors in one go.
//!
//! Pure: sealing and opening are closures the caller passes (they hold the
//! keys and the nonce source).

use crate::ids::*;
use crate::model::*;
use chrono::{DateTime, Utc};
use serde::ser::{SerializeSeq, Serializer};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// A user's personal data as it is stored in a snapshot. `B` is the sealed
/// bytes and `S` the clear profile's strings: owned when written, borrowed
/// from the snapshot when read (postcard writes a `Vec<u8>` and a byte
/// slice alike, a length and then the bytes, and a `String` and a `&str`
/// alike), so a load allocates the clear fields only for the profiles that
/// read as erased.
#[derive(Serialize, Deserialize)]
pub(crate) enum Personal<B, S = String> {
    /// No profile and no device: nothing personal.
    Nothing,
    /// Sealed under the user's key; beside it, the profile fields that
    /// events record in clear (not personal data), so that a profile erased
    /// later reads as replaying the erased events would give it.
    Sealed {
        /// AES-GCM nonce.
        nonce: [u8; 12],
        /// The sealed [`PlainOut`] (ciphertext and tag).
        sealed: B,
        /// The clear part of the profile, if there is a profile.
        public: Option<PublicProfile<S>>,
    },
    /// The user's key was gone when the snapshot was written: erased.
    Erased {
        /// The clear part of the profile, if there is a profile.
        public: Option<PublicProfile<S>>,
    },
}

/// The fields of a profile that events record in clear.
#[derive(Serialize, Deserialize, Clone)]
pub(crate) struct PublicProfile<S = String> {
    default_country: Option<S>,
    notifications: NotificationPreferences,
}

impl PublicProfile {
    fn of(profile: &Profile) -> Self {
        Self {
            default_country: profile.default_country.clone(),
            notifications: profile.notifications.clone(),
        }
    }
}

impl PublicProfile<&str> {
    /// The profile replaying erased events gives: an empty email, no name,
    /// mobile, job title or picture, and the clear fields.
    fn erased(self) -> Profile {
        let mut profile = Profile::with_email("");
        profile.default_country = self.default_country.map(str::to_owned);
        profile.notifications = self.notifications;
        profile
    }
}

/// What is sealed: the profile and the device names, in device order.
#[derive(Serialize)]
struct PlainOut<'a> {
    profile: Option<&'a Profile>,
    device_names: Vec<&'a str>,
}

#[derive(Deserialize)]
struct PlainIn {
    profile: Option<Profile>,
    device_names: Vec<String>,
}

/// Timestamps as seconds and nanoseconds since the Unix epoch (two
/// varints), not chrono's RFC 3339 text: parsing that text was a tenth of a
/// load. A pair out of chrono's range does not decode.
mod stamp {
    use chrono::{DateTime, Utc};
    use serde::de::Error;
    use serde::{Deserialize, Deserializer, Serialize, Serializer};

    pub(super) fn serialize<S: Serializer>(t: &DateTime<Utc>, s: S) -> Result<S::Ok, S::Error> {
        (t.timestamp(), t.timestamp_subsec_nanos()).serialize(s)
    }

    pub(super) fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<DateTime<Utc>, D::Error> {
        let (secs, nanos) = <(i64, u32)>::deserialize(d)?;
        DateTime::from_timestamp(secs, nanos).ok_or_else(|| D::Error::custom("time out of range"))
    }

    /// A timestamp beside a value (a device's sign-in, an invitation's expiry).
    #[derive(Serialize, Deserialize)]
    pub(super) struct Stamp(#[serde(with = "self")] pub(super) DateTime<Utc>);
}
use stamp::Stamp;

/// A password reset with its expiry as a [`stamp`].
#[derive(Serialize)]
struct ResetOut<'a> {
    token_hash: &'a TokenHash,
    #[serde(with = "stamp")]
    expires_at: DateTime<Utc>,
}

#[derive(Deserialize)]
struct ResetIn {
    token_hash: TokenHash,
    #[serde(with = "stamp")]
    expires_at: DateTime<Utc>,
}

/// An invitation with its expiry as a [`stamp`]; the invitations are
/// written as a sequence in id order (each carries its id).
#[derive(Serialize)]
struct InvitationOut<'a> {
    id: InvitationId,
    delivery: Delivery,
    user: Option<UserId>,
    grant: &'a Grant,
    token_hash: &'a TokenHash,
    #[serde(with = "stamp")]
    expires_at: DateTime<Utc>,
    status: InvitationStatus,
}

#[derive(Deserialize)]
struct InvitationIn {
    id: InvitationId,
    delivery: Delivery,
    user: Option<UserId>,
    grant: Grant,
    token_hash: TokenHash,
    #[serde(with = "stamp")]
    expires_at: DateTime<Utc>,
    status: InvitationStatus,
}

/// The invitations, in id order.
struct Invitations<'a>(&'a BTreeMap<InvitationId, Invitation>);

impl Serialize for Invitations<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_seq(self.0.values().map(|i| InvitationOut {
            id: i.id,
            delivery: i.delivery,
            user: i.user,
            grant: &i.grant,
            token_hash: &i.token_hash,
            expires_at: i.expires_at,
            status: i.status,
        }))
    }
}

#[derive(Serialize)]
struct UserOut<'a> {
    id: UserId,
    status: UserStatus,
    memberships: &'a VecMap<AccountId, RoleId>,
    agency_admin: bool,
    reports_to: Option<UserId>,
    direct_reports: &'a VecSet<UserId>,
    assigned_numbers: &'a VecSet<PhoneNumber>,
    forwarded_numbers: &'a VecSet<PhoneNumber>,
    work: &'a VecSet<WorkItemId>,
    devices: Devices<'a>,
    invitation: Option<InvitationId>,
    invitation_accepted: bool,
    password_reset: Option<ResetOut<'a>>,
    personal: &'a Personal<Vec<u8>>,
    created_version: u64,
    changed_version: u64,
}

#[derive(Deserialize)]
struct UserIn<'a> {
    id: UserId,
    status: UserStatus,
    memberships: VecMap<AccountId, RoleId>,
    agency_admin: bool,
    reports_to: Option<UserId>,
    direct_reports: VecSet<UserId>,
    assigned_numbers: VecSet<PhoneNumber>,
    forwarded_numbers: VecSet<PhoneNumber>,
    work: VecSet<WorkItemId>,
    devices: Vec<(DeviceId, Stamp)>,
    invitation: Option<InvitationId>,
    invitation_accepted: bool,
    password_reset: Option<ResetIn>,
    #[serde(borrow)]
    personal: Personal<&'a [u8], &'a str>,
    created_version: u64,
    changed_version: u64,
}

/// A user's devices without their names.
struct Devices<'a>(&'a VecMap<DeviceId, DeviceSession>);

impl Serialize for Devices<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_seq(self.0.values().map(|d| (d.id, Stamp(d.signed_in_at))))
    }
}

/// The users, each beside its personal part (same order).
struct Users<'a> {
    users: &'a BTreeMap<UserId, Box<User>>,
    personal: &'a [Personal<Vec<u8>>],
}

impl Serialize for Users<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut seq = s.serialize_seq(Some(self.users.len()))?;
        for (u, personal) in self.users.values().zip(self.personal) {
            seq.serialize_element(&UserOut {
                id: u.id,
                status: u.status,
                memberships: &u.memberships,
                agency_admin: u.agency_admin,
                reports_to: u.reports_to,
                direct_reports: &u.direct_reports,
                assigned_numbers: &u.assigned_numbers,
                forwarded_numbers: &u.forwarded_numbers,
                work: &u.work,
                devices: Devices(&u.devices),
                invitation: u.invitation,
                invitation_accepted: u.invitation_accepted,
                password_reset: u.password_reset.as_ref().map(|r| ResetOut {
                    token_hash: &r.token_hash,
                    expires_at: r.expires_at,
                }),
                personal,
                created_version: u.created_version,
                changed_version: u.changed_version,
            })?;
        }
        seq.end()
    }
}

#[derive(Serialize)]
struct OrgOut<'a> {
    id: OrgId,
    created: bool,
    version: u64,
    name: &'a str,
    policies: &'a Policies,
    primary_owner: Option<UserId>,
    root_account: Option<AccountId>,
    accounts: &'a BTreeMap<AccountId, Account>,
    roles: &'a BTreeMap<RoleId, Role>,
    users: Users<'a>,
    numbers: &'a BTreeMap<PhoneNumber, Number>,
    invitations: Invitations<'a>,
    work_items: &'a BTreeMap<WorkItemId, WorkItem>,
}

/// A decoded snapshot whose personal parts are not opened yet (they borrow
/// from the snapshot's bytes).
#[derive(Deserialize)]
pub(crate) struct OrgIn<'a> {
    id: OrgId,
    created: bool,
    version: u64,
    name: String,
    policies: Policies,
    primary_owner: Option<UserId>,
    root_account: Option<AccountId>,
    accounts: BTreeMap<AccountId, Account>,
    roles: BTreeMap<RoleId, Role>,
    #[serde(borrow)]
    users: Vec<UserIn<'a>>,
    numbers: BTreeMap<PhoneNumber, Number>,
    invitations: Vec<InvitationIn>,
    work_items: BTreeMap<WorkItemId, WorkItem>,
}

/// Why a snapshot could not be written.
#[derive(Debug, thiserror::Error)]
pub(crate) enum FormatError {
    /// postcard refused the state (it never should: every type is plain data).
    #[error("the state could not be encoded: {0}")]
    Encode(postcard::Error),
}

/// The plaintext of a user's personal part, or `None` when there is nothing personal.
fn plain(user: &User) -> Option<Result<Vec<u8>, FormatError>> {
    if user.profile.is_none() && user.devices.is_empty() {
        return None;
    }
    let out = PlainOut {
        profile: user.profile.as_ref(),
        device_names: user.devices.values().map(|d| d.name.as_str()).collect(),
    };
    Some(postcard::to_stdvec(&out).map_err(FormatError::Encode))
}

/// Encodes `state`. `seal(user, plaintext)` seals a user's personal part
/// under their key: `Some((nonce, ciphertext))`, or `None` when the user has
/// no key (then the part is written erased). Cost: the organization's size.
pub(crate) fn encode(
    state: &Organization,
    mut seal: impl FnMut(UserId, &[u8]) -> Option<([u8; 12], Vec<u8>)>,
) -> Result<Vec<u8>, FormatError> {
    let mut personal = Vec::with_capacity(state.users.len());
    for user in state.users.values() {
        let public = user.profile.as_ref().map(PublicProfile::of);
        personal.push(match plain(user) {
            None => Personal::Nothing,
            Some(plaintext) => match seal(user.id, &plaintext?) {
                Some((nonce, sealed)) => Personal::Sealed {
                    nonce,
                    sealed,
                    public,
                },
                None => Personal::Erased { public },
            },
        });
    }
    let out = OrgOut {
        id: state.id,
        created: state.created,
        version: state.version,
        name: &state.name,
        policies: &state.policies,
        primary_owner: state.primary_owner,
        root_account: state.root_account,
        accounts: &state.accounts,
        roles: &state.roles,
        users: Users {
            users: &state.users,
            personal: &personal,
        },
        numbers: &state.numbers,
        invitations: Invitations(&state.invitations),
        work_items: &state.work_items,
    };
    postcard::to_stdvec(&out).map_err(FormatError::Encode)
}

/// Decodes a snapshot's bytes; `None` when they are not a state of this
/// schema (trailing bytes included).
pub(crate) fn decode(bytes: &[u8]) -> Option<OrgIn<'_>> {
    match postcard::take_from_bytes::<OrgIn>(bytes) {
        Ok((org, [])) => Some(org),
        _ => None,
    }
}

/// What opening a sealed part gave.
pub(crate) enum Opened {
    /// The plaintext is in the buffer passed to the opener.
    Plain,
    /// The user's key is gone: the part reads as erased.
    KeyGone,
    /// The key is there and the part does not open: the snapshot is not
    /// usable (the caller replays the stream).
    Failed,
}

impl OrgIn<'_> {
    /// Its organization and version.
    pub(crate) fn place(&self) -> (OrgId, u64) {
        (self.id, self.version)
    }

    /// The users whose personal part is sealed (their keys are needed), in
    /// the snapshot's order.
    pub(crate) fn sealed_subjects(&self) -> Vec<UserId> {
        self.users
            .iter()
            .filter(|u| matches!(u.personal, Personal::Sealed { .. }))
            .map(|u| u.id)
            .collect()
    }

    /// The state, each sealed part opened by `open(user, nonce, sealed,
    /// plaintext)`, which writes the plaintext into the buffer it is given
    /// (one buffer for every part: no allocation per user). `None` when a
    /// part does not open or does not decode, or the state is not one the
    /// encoder writes (users or invitations out of id order, or listed
    /// twice): the caller replays instead.
    ///
    /// Every map and index is built from a vector in one go (sorted input
    /// is bulk-loaded) rather than by one insertion per entry.
    pub(crate) fn into_state(
        self,
        mut open: impl FnMut(UserId, &[u8; 12], &[u8], &mut Vec<u8>) -> Opened,
    ) -> Option<Organization> {
        // The encoder writes invitations in id order, each once.
        if !self.invitations.windows(2).all(|w| w[0].id < w[1].id) {
            return None;
        }
        let mut state = Organization::empty(self.id);
        state.created = self.created;
        state.version = self.version;
        state.name = self.name;
        state.policies = self.policies;
        state.primary_owner = self.primary_owner;
        state.root_account = self.root_account;
        state.accounts = self.accounts;
        state.roles = self.roles;
        // The indexes, rebuilt as `evolve` keeps them (`evolve/mod.rs`):
        // every invitation by its token hash (none is ever removed), the
        // recorded-pending ones by expiry, the orphaned numbers.
        state.orphaned_index = self
            .numbers
            .values()
            .filter(|n| n.is_orphaned())
            .map(|n| n.number.clone())
            .collect();
        state.numbers = self.numbers;
        state.token_index = self
            .invitations
            .iter()
            .map(|inv| (&inv.token_hash, inv.id))
            .collect();
        state.expiry_index = self
            .invitations
            .iter()
            .filter(|inv| inv.status == InvitationStatus::Pending)
            .map(|inv| (inv.expires_at, inv.id))
            .collect();
        // In id order: bulk-loaded.
        state.invitations = self
            .invitations
            .into_iter()
            .map(|i| {
                let invitation = Invitation {
                    id: i.id,
                    delivery: i.delivery,
                    user: i.user,
                    grant: i.grant,
                    token_hash: i.token_hash,
                    expires_at: i.expires_at,
                    status: i.status,
                };
                (invitation.id, invitation)
            })
            .collect();
        state.work_items = self.work_items;
        let mut users = Vec::with_capacity(self.users.len());
        let mut emails = Vec::with_capacity(self.users.len());
        let mut sign_ins = Vec::new();
        let mut admins = Vec::new();
        let mut plaintext = Vec::new();
        for u in self.users {
            // The encoder writes users in id order, each once.
            if users.last().is_some_and(|(last, _)| *last >= u.id) {
                return None;
            }
            let (profile, names) = match u.personal {
                Personal::Nothing => (None, Vec::new()),
                Personal::Erased { public } => (public.map(PublicProfile::erased), Vec::new()),
                Personal::Sealed {
                    nonce,
                    sealed,
                    public,
                } => match open(u.id, &nonce, sealed, &mut plaintext) {
                    Opened::Plain => {
                        let plain = decode_plain(&plaintext)?;
                        (plain.profile, plain.device_names)
                    }
                    Opened::KeyGone => (public.map(PublicProfile::erased), Vec::new()),
                    Opened::Failed => return None,
                },
            };
            // Names line up with devices by position; erased ones are empty.
            let mut names = names.into_iter();
            let devices = u
                .devices
                .into_iter()
                .map(|(id, Stamp(signed_in_at))| {
                    let name = names.next().unwrap_or_default();
                    (
                        id,
                        DeviceSession {
                            id,
                            name,
                            signed_in_at,
                        },
                    )
                })
                .collect();
            let user = User {
                id: u.id,
                status: u.status,
                profile,
                memberships: u.memberships,
                agency_admin: u.agency_admin,
                reports_to: u.reports_to,
                direct_reports: u.direct_reports,
                assigned_numbers: u.assigned_numbers,
                forwarded_numbers: u.forwarded_numbers,
                work: u.work,
                devices,
                invitation: u.invitation,
                invitation_accepted: u.invitation_accepted,
                password_reset: u.password_reset.map(|r| PasswordReset {
                    token_hash: r.token_hash,
                    expires_at: r.expires_at,
                }),
                created_version: u.created_version,
                changed_version: u.changed_version,
            };
            // The email index, as `evolve` keeps it: every live user whose
            // profile is readable.
            if let (Some(p), false) = (&user.profile, user.status == UserStatus::Deleted) {
                // An empty email (erased, or never given: R-USR-04) is not
                // indexed.
                let key = crate::validate::email_key(&p.email);
                if !key.is_empty() {
                    emails.push((key, user.id));
                }
                // The sign-in index likewise (R-USR-03).
                if let Some(name) = &p.sign_in_name {
                    sign_ins.push((crate::validate::sign_in_key(name), user.id));
                }
            }
            if user.agency_admin {
                admins.push(user.id);
            }
            users.push((user.id, Box::new(user)));
        }
        // Users and administrators are in id order: bulk-loaded. The
        // indexes are sorted first; of two equal keys the later user is
        // kept, as inserting them one by one would.
        state.users = users.into_iter().collect();
        state.agency_admin_index = admins.into_iter().collect();
        state.email_index = emails.into_iter().collect();
        state.sign_in_index = sign_ins.into_iter().collect();
        Some(state)
    }
}

fn decode_plain(bytes: &[u8]) -> Option<PlainIn> {
    match postcard::take_from_bytes::<PlainIn>(bytes) {
        Ok((plain, [])) => Some(plain),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;
    use uuid::Uuid;

    /// A state with what the format must carry: a user with a full profile
    /// and two devices, a deactivated one, a deleted one (no profile), an
    /// account, a role map, a number.
    fn sample() -> Organization {
        let id = |n: u128| Uuid::from_u128(n);
        let at = Utc.with_ymd_and_hms(2026, 3, 2, 9, 0, 0).unwrap();
        let mut state = Organization::empty(OrgId::from_uuid(id(1)));
        state.created = true;
        state.version = 42;
        state.name = "Northwind".into();
        for r in built_in_roles() {
            state.roles.insert(r.id.clone(), r);
        }
        let root = AccountId::from_uuid(id(2));
        state.root_account = Some(root);
        let mut ann = User::new(
            UserId::from_uuid(id(10)),
            UserStatus::Active,
            Profile::with_email("Ann@Example.com"),
        );
        if let Some(p) = ann.profile.as_mut() {
            p.name = Some("Ann".into());
            p.default_country = Some("US".into());
            p.job_title = Some("Agent".into());
            p.sign_in_name = Some("Ann.Lee".into());
        }
        ann.memberships.insert(root, RoleId::new(RoleId::AGENT));
        for (n, name) in [(20, "Ann's phone"), (21, "Firefox")] {
            let d = DeviceId::from_uuid(id(n));
            ann.devices.insert(
                d,
                DeviceSession {
                    id: d,
                    name: name.into(),
                    signed_in_at: at,
                },
            );
        }
        let bob = User::new(
            UserId::from_uuid(id(11)),
            UserStatus::Deactivated,
            Profile::with_email("bob@example.com"),
        );
        let mut carl = User::new(
            UserId::from_uuid(id(12)),
            UserStatus::Deleted,
            Profile::with_email(""),
        );
        carl.profile = None;
        for u in [ann, bob, carl] {
            if let (Some(p), false) = (&u.profile, u.status == UserStatus::Deleted) {
                state
                    .email_index
                    .insert(crate::validate::email_key(&p.email), u.id);
                if let Some(name) = &p.sign_in_name {
                    state
                        .sign_in_index
                        .insert(crate::validate::sign_in_key(name), u.id);
                }
            }
            state.users.insert(u.id, Box::new(u));
        }
        state.primary_owner = Some(UserId::from_uuid(id(10)));
        state
    }

    /// Sealing that only frames the plaintext (the tests of the service
    /// check the real cipher): the format alone round-trips.
    fn frame(_: UserId, plain: &[u8]) -> Option<([u8; 12], Vec<u8>)> {
        Some(([7; 12], plain.to_vec()))
    }

    /// The opener of [`frame`]d parts.
    fn unframe(_: UserId, _: &[u8; 12], sealed: &[u8], plain: &mut Vec<u8>) -> Opened {
        plain.clear();
        plain.extend_from_slice(sealed);
        Opened::Plain
    }

    #[test]
    fn a_state_round_trips_through_the_format() {
        let state = sample();
        assert!(state.users.values().any(|u| !u.devices.is_empty()));
        let bytes = encode(&state, frame).expect("encodes");
        let back = decode(&bytes)
            .expect("decodes")
            .into_state(unframe)
            .expect("opens");
        assert_eq!(back, state);
    }

    #[cfg(feature = "proptest")]
    proptest::proptest! {
        #![proptest_config(proptest::prelude::ProptestConfig::with_cases(64))]
        /// Any generated history: the folded state, written and read back,
        /// is the same state — indexes rebuilt on load included.
        #[test]
        fn any_folded_state_round_trips(h in crate::strategies::arb_history(40)) {
            let bytes = encode(&h.state, frame).expect("encodes");
            let back = decode(&bytes)
                .expect("decodes")
                .into_state(unframe)
                .expect("opens");
            proptest::prop_assert_eq!(back, h.state);
        }
    }

    #[test]
    fn a_user_without_key_is_written_erased() {
        let state = sample();
        let bytes = encode(&state, |_, _| None).expect("encodes");
        let back = decode(&bytes)
            .expect("decodes")
            .into_state(|_, _, _, _| Opened::Failed)
            .expect("nothing sealed, nothing to open");
        for (id, user) in &state.users {
            let erased = &back.users[id];
            if let Some(p) = &user.profile {
                let e = erased.profile.as_ref().expect("an erased profile");
                assert_eq!(e.email, "");
                assert_eq!(e.name, None);
                assert_eq!(e.default_country, p.default_country);
            }
            assert!(erased.devices.values().all(|d| d.name.is_empty()));
        }
        assert!(back.email_index.is_empty(), "an erased email is no key");
        assert!(back.sign_in_index.is_empty(), "an erased name is no key");
    }

    #[test]
    fn a_part_that_does_not_open_makes_the_snapshot_unusable() {
        let state = sample();
        let bytes = encode(&state, frame).expect("encodes");
        let decoded = decode(&bytes).expect("decodes");
        assert!(!decoded.sealed_subjects().is_empty());
        assert!(decoded.into_state(|_, _, _, _| Opened::Failed).is_none());
    }

    #[test]
    fn users_out_of_order_or_twice_make_the_snapshot_unusable() {
        let state = sample();
        let bytes = encode(&state, frame).expect("encodes");
        out_of_order_or_twice_is_unusable(&bytes, |s| &mut s.users);
    }

    /// The snapshot `bytes` with the first two entries of the list `list`
    /// picks swapped, or its first entry listed twice, does not load.
    fn out_of_order_or_twice_is_unusable<'b, T>(
        bytes: &'b [u8],
        list: impl for<'s> Fn(&'s mut OrgIn<'b>) -> &'s mut Vec<T>,
    ) {
        let mut swapped = decode(bytes).expect("decodes");
        list(&mut swapped).swap(0, 1);
        assert!(swapped.into_state(unframe).is_none());
        let mut twice = decode(bytes).expect("decodes");
        let again = list(&mut decode(bytes).expect("decodes")).remove(0);
        list(&mut twice).insert(1, again);
        assert!(twice.into_state(unframe).is_none());
    }

    #[test]
    fn invitations_out_of_order_or_twice_make_the_snapshot_unusable() {
        let mut state = sample();
        let at = Utc.with_ymd_and_hms(2026, 3, 9, 9, 0, 0).unwrap();
        for n in [30, 31] {
            let id = InvitationId::from_uuid(Uuid::from_u128(n));
            let invitation = Invitation {
                id,
                delivery: Delivery::Link,
                user: None,
                grant: Grant {
                    role: RoleId::new(RoleId::AGENT),
                    accounts: Vec::new(),
                    agency_admin: false,
                    clients: Vec::new(),
                },
                token_hash: TokenHash(format!("{n:064}")),
                expires_at: at,
                status: InvitationStatus::Pending,
            };
            state.token_index.insert(&invitation.token_hash, id);
            state.expiry_index.insert((at, id));
            state.invitations.insert(id, invitation);
        }
        let bytes = encode(&state, frame).expect("encodes");
        let back = decode(&bytes).expect("decodes").into_state(unframe);
        assert_eq!(back.as_ref(), Some(&state));
        out_of_order_or_twice_is_unusable(&bytes, |s| &mut s.invitations);
    }

    #[test]
    fn a_time_out_of_range_does_not_decode() {
        let bytes = postcard::to_stdvec(&(i64::MAX, 0u32)).expect("encodes");
        assert!(postcard::from_bytes::<Stamp>(&bytes).is_err());
        let bytes = postcard::to_stdvec(&(0i64, 3_000_000_000u32)).expect("encodes");
        assert!(postcard::from_bytes::<Stamp>(&bytes).is_err());
        let at =
            Utc.with_ymd_and_hms(2026, 3, 2, 9, 0, 0).unwrap() + chrono::Duration::nanoseconds(7);
        let bytes = postcard::to_stdvec(&Stamp(at)).expect("encodes");
        assert_eq!(
            postcard::from_bytes::<Stamp>(&bytes).expect("decodes").0,
            at
        );
    }

    #[test]
    fn truncated_or_extended_bytes_do_not_decode() {
        let state = sample();
        let bytes = encode(&state, frame).expect("encodes");
        for cut in [0, 1, bytes.len() / 2, bytes.len() - 1] {
            assert!(decode(&bytes[..cut]).is_none(), "cut at {cut}");
        }
        let mut longer = bytes.clone();
        longer.push(0);
        assert!(decode(&longer).is_none());
    }
}
