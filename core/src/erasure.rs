//! Erasable personal data by crypto-shredding (R-LIFE-06).
//!
//! The log is append-only, yet a deleted user's personal data must become
//! unreadable. Every [`PersonalData`](crate::PersonalData) field of an event is
//! therefore stored *sealed*: encrypted with AES-256-GCM under a data key of
//! its own subject (one key per user of an organization). The keys live in a
//! [`KeyStore`], the only mutable table; deleting a user's key erases every
//! copy of their personal data in the log at once, in every store and every
//! backup of the log, while ids and everything that is not personal stay
//! readable.
//!
//! * A sealed field is the JSON object `{"$sealed": {"v": 1, "subject": <user id>,
//!   "nonce": <hex>, "ct": <hex>}}` in place of the plain object.
//! * The associated data binds the ciphertext to its organization, subject and
//!   event id: a sealed blob copied into another event or organization does not open.
//! * Nonces and keys come from the caller's [`SecretSource`](crate::SecretSource):
//!   the core draws no randomness itself. Nonces are random (96 bits), never
//!   derived from the stream position, because a retried append re-encrypts.
//! * Reading with a missing key yields *erased* personal data (every field
//!   `None`), never an error. A present key that fails to open a blob is an
//!   integrity error ([`SealError::Tampered`]).
//! * [`DataKey`] has no `Serialize` and a redacting `Debug`: keys cannot leak
//!   into events, logs, exports or debug output by accident.

use crate::ids::{EventId, OrgId, UserId};

use aes_gcm::aead::{Aead, AeadInPlace, KeyInit, Payload};
use aes_gcm::{Aes256Gcm, Nonce};
use serde::de::value::StrDeserializer;
use serde::Deserialize;
use serde_json::{json, Map, Value};
use std::collections::HashMap;

/// The JSON key that marks a sealed personal-data object.
pub const SEALED_TAG: &str = "$sealed";
/// Limit: bytes of one sealed plaintext (a [`PersonalData`](crate::PersonalData) is far smaller).
pub const MAX_SEALED_BYTES: usize = 64 * 1024;

// The key store's contract lives with the rest of the store contract.
pub use crate::store::{validate_key_request, DataKey, KeyStore, MAX_KEYS_PER_LOAD};

/// The keys at hand for decoding one batch of events.
#[derive(Default)]
pub struct KeyRing {
    keys: HashMap<UserId, DataKey>,
}

impl std::fmt::Debug for KeyRing {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("KeyRing")
            .field("subjects", &self.keys.len())
            .finish_non_exhaustive()
    }
}

impl KeyRing {
    /// A ring with no key: every sealed field reads as erased.
    pub fn empty() -> Self {
        Self::default()
    }

    /// A ring holding these keys.
    pub fn new(keys: HashMap<UserId, DataKey>) -> Self {
        Self { keys }
    }

    /// The key of a user, if at hand.
    pub fn get(&self, user: UserId) -> Option<&DataKey> {
        self.keys.get(&user)
    }

    /// Adds keys.
    pub fn extend(&mut self, keys: HashMap<UserId, DataKey>) {
        self.keys.extend(keys);
    }

    /// The keys held, by user.
    pub fn into_keys(self) -> HashMap<UserId, DataKey> {
        self.keys
    }

    /// Forgets a user's key (after deleting it).
    pub fn forget(&mut self, user: UserId) {
        self.keys.remove(&user);
    }
}

/// Why a sealed field could not be opened.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum SealError {
    /// The sealed object is not in the expected shape.
    #[error("sealed personal data is malformed: {0}")]
    Malformed(String),
    /// The key is present but the blob does not open: altered, or moved from
    /// another event, user or organization.
    #[error("sealed personal data of {subject} does not authenticate")]
    Tampered {
        /// The subject.
        subject: UserId,
    },
}

const AAD_PREFIX: &[u8] = b"switchboard/pd/v1";
const AAD_LEN: usize = AAD_PREFIX.len() + 48;

/// The associated data of a sealed field of `subject` in event `event` of `org`.
pub(crate) fn associated_data(org: OrgId, subject: UserId, event: EventId) -> [u8; AAD_LEN] {
    // Fixed-width binary ids: no ambiguity between fields. On the stack:
    // this runs once per sealed field read.
    let mut aad = [0u8; AAD_LEN];
    let (prefix, ids) = aad.split_at_mut(AAD_PREFIX.len());
    prefix.copy_from_slice(AAD_PREFIX);
    ids[..16].copy_from_slice(org.as_uuid().as_bytes());
    ids[16..32].copy_from_slice(subject.as_uuid().as_bytes());
    ids[32..].copy_from_slice(event.as_uuid().as_bytes());
    aad
}

fn hex(bytes: &[u8]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut s = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        s.push(DIGITS[(b >> 4) as usize] as char);
        s.push(DIGITS[(b & 15) as usize] as char);
    }
    s
}

fn hex_digit(c: u8) -> Option<u8> {
    match c {
        b'0'..=b'9' => Some(c - b'0'),
        b'a'..=b'f' => Some(c - b'a' + 10),
        _ => None,
    }
}

/// Lowercase hex into `out`, which it must fill exactly.
fn unhex_into(s: &str, out: &mut [u8]) -> Option<()> {
    if s.len() != 2 * out.len() {
        return None;
    }
    for (o, p) in out.iter_mut().zip(s.as_bytes().chunks_exact(2)) {
        *o = hex_digit(p[0])? << 4 | hex_digit(p[1])?;
    }
    Some(())
}

fn unhex(s: &str) -> Option<Vec<u8>> {
    if !s.len().is_multiple_of(2) {
        return None;
    }
    let mut out = vec![0u8; s.len() / 2];
    unhex_into(s, &mut out)?;
    Some(out)
}

/// Seals a plain personal-data object for `subject` in event `event` of `org`.
/// `nonce` must be fresh random bytes (first 12 are used).
pub fn seal(
    key: &DataKey,
    nonce: &[u8; 32],
    org: OrgId,
    subject: UserId,
    event: EventId,
    plain: &Value,
) -> Value {
    seal_bound(
        key,
        nonce,
        subject,
        &associated_data(org, subject, event),
        plain,
    )
}

/// Seals `plain` for `subject`, bound to the associated data `aad` (which
/// names the place the blob belongs to: an event, or a snapshot).
pub(crate) fn seal_bound(
    key: &DataKey,
    nonce: &[u8; 32],
    subject: UserId,
    aad: &[u8],
    plain: &Value,
) -> Value {
    let cipher = Aes256Gcm::new(key.expose_bytes().into());
    let nonce = Nonce::from_slice(&nonce[..12]);
    // Serializing a `Value` to bytes cannot fail (its keys are strings).
    let msg = serde_json::to_vec(plain).unwrap_or_default();
    // AES-GCM encryption only fails for plaintexts over 64 GiB; payloads are
    // capped at 1 MiB long before that. An (impossible) failure erases the
    // field rather than storing it in clear.
    match cipher.encrypt(nonce, Payload { msg: &msg, aad }) {
        Ok(ct) => json!({ SEALED_TAG: {
            "v": 1,
            "subject": subject,
            "nonce": hex(nonce.as_slice()),
            "ct": hex(&ct),
        }}),
        Err(_) => Value::Object(Map::new()),
    }
}

/// Seals raw bytes under `key`, bound to `aad`, with the first 12 bytes of
/// `nonce` (fresh random bytes). The binary counterpart of the JSON sealing,
/// for snapshots. `None` only for plaintexts over AES-GCM's 64 GiB limit.
pub(crate) fn seal_bytes(
    key: &DataKey,
    nonce: &[u8; 32],
    aad: &[u8],
    msg: &[u8],
) -> Option<([u8; 12], Vec<u8>)> {
    let cipher = Aes256Gcm::new(key.expose_bytes().into());
    let mut n = [0u8; 12];
    n.copy_from_slice(&nonce[..12]);
    let ct = cipher
        .encrypt(Nonce::from_slice(&n), Payload { msg, aad })
        .ok()?;
    Some((n, ct))
}

/// Opens bytes sealed by [`seal_bytes`] into `plain` (cleared first; its
/// allocation is reused, so that opening many parts allocates once).
/// `false` when they do not authenticate (then `plain` holds no plaintext:
/// the tag is checked before anything is decrypted).
pub(crate) fn open_bytes_into(
    key: &DataKey,
    nonce: &[u8; 12],
    aad: &[u8],
    ct: &[u8],
    plain: &mut Vec<u8>,
) -> bool {
    let cipher = Aes256Gcm::new(key.expose_bytes().into());
    plain.clear();
    plain.extend_from_slice(ct);
    if cipher
        .decrypt_in_place(Nonce::from_slice(nonce), aad, plain)
        .is_ok()
    {
        true
    } else {
        plain.clear();
        false
    }
}

/// The subject of a sealed object, or `None` when `value` is not sealed.
pub fn sealed_subject(value: &Value) -> Option<UserId> {
    let inner = value.as_object()?.get(SEALED_TAG)?;
    serde_json::from_value(inner.get("subject")?.clone()).ok()
}

/// Whether `value` is a sealed object.
pub fn is_sealed(value: &Value) -> bool {
    value
        .as_object()
        .is_some_and(|m| m.len() == 1 && m.contains_key(SEALED_TAG))
}

/// Opens a sealed object. A missing key gives `Ok(None)`: the data is erased.
pub fn open(
    keys: &KeyRing,
    org: OrgId,
    event: EventId,
    sealed: &Value,
) -> Result<Option<Value>, SealError> {
    open_bound(keys, sealed, |subject| associated_data(org, subject, event))
}

/// Opens a sealed object whose associated data `aad_for(subject)` gives.
pub(crate) fn open_bound<A: AsRef<[u8]>>(
    keys: &KeyRing,
    sealed: &Value,
    aad_for: impl FnOnce(UserId) -> A,
) -> Result<Option<Value>, SealError> {
    let malformed = |what: &str| SealError::Malformed(what.to_owned());
    let inner = sealed
        .as_object()
        .and_then(|m| m.get(SEALED_TAG))
        .and_then(Value::as_object)
        .ok_or_else(|| malformed("not a sealed object"))?;
    if inner.get("v").and_then(Value::as_u64) != Some(1) {
        return Err(malformed("unknown sealing version"));
    }
    let subject: UserId = inner
        .get("subject")
        .and_then(Value::as_str)
        .and_then(|s| UserId::deserialize(StrDeserializer::<serde::de::value::Error>::new(s)).ok())
        .ok_or_else(|| malformed("no subject"))?;
    let Some(key) = keys.get(subject) else {
        return Ok(None);
    };
    let plain = open_hex(
        key,
        aad_for(subject).as_ref(),
        subject,
        inner.get("nonce").and_then(Value::as_str),
        inner.get("ct").and_then(Value::as_str),
    )?;
    serde_json::from_slice(&plain)
        .map(Some)
        .map_err(|e| SealError::Malformed(crate::codec::json_error_shape(&e)))
}

/// The plaintext of one sealed field, from the hex `nonce` and `ct` of its
/// sealed object (`None` where missing or not a string; subject `subject`,
/// its key at hand), bound to `aad`. For readers that take the sealed
/// object apart themselves (the codec reads it from the payload's text).
pub(crate) fn open_hex(
    key: &DataKey,
    aad: &[u8],
    subject: UserId,
    nonce: Option<&str>,
    ct: Option<&str>,
) -> Result<Vec<u8>, SealError> {
    let malformed = |what: &str| SealError::Malformed(what.to_owned());
    let mut n = [0u8; 12];
    nonce
        .and_then(|s| unhex_into(s, &mut n))
        .ok_or_else(|| malformed("bad nonce"))?;
    let ct = ct
        .filter(|c| c.len() <= 2 * (MAX_SEALED_BYTES + 16))
        .and_then(unhex)
        .ok_or_else(|| malformed("bad ciphertext"))?;
    let cipher = Aes256Gcm::new(key.expose_bytes().into());
    cipher
        .decrypt(Nonce::from_slice(&n), Payload { msg: &ct, aad })
        .map_err(|_| SealError::Tampered { subject })
}

#[cfg(test)]
mod tests {
    use super::*;
    use uuid::Uuid;

    fn ids() -> (OrgId, UserId, EventId) {
        (
            OrgId::from_uuid(Uuid::from_u128(1)),
            UserId::from_uuid(Uuid::from_u128(2)),
            EventId::from_uuid(Uuid::from_u128(3)),
        )
    }

    #[test]
    fn r_life_06_sealed_data_opens_only_with_its_key_and_place() {
        let (org, user, event) = ids();
        let key = DataKey::from_bytes([9; 32]);
        let plain = json!({"name": "Ada Lovelace", "email": "ada@example.com"});
        let sealed = seal(&key, &[5; 32], org, user, event, &plain);
        let text = sealed.to_string();
        assert!(!text.contains("Ada") && !text.contains("ada@"));
        assert!(is_sealed(&sealed));
        assert_eq!(sealed_subject(&sealed), Some(user));
        let ring = KeyRing::new(HashMap::from([(user, key.clone())]));
        assert_eq!(open(&ring, org, event, &sealed), Ok(Some(plain)));
        // Missing key: erased, not an error.
        assert_eq!(open(&KeyRing::empty(), org, event, &sealed), Ok(None));
        // Moved to another event or organization: does not authenticate.
        let other = EventId::from_uuid(Uuid::from_u128(4));
        assert_eq!(
            open(&ring, org, other, &sealed),
            Err(SealError::Tampered { subject: user })
        );
        let other_org = OrgId::from_uuid(Uuid::from_u128(5));
        assert!(open(&ring, other_org, event, &sealed).is_err());
    }

    #[test]
    fn malformed_sealed_objects_are_errors_not_panics() {
        let (org, user, event) = ids();
        let ring = KeyRing::new(HashMap::from([(user, DataKey::from_bytes([1; 32]))]));
        for bad in [
            json!({}),
            json!({"$sealed": 3}),
            json!({"$sealed": {"v": 2}}),
            json!({"$sealed": {"v": 1, "subject": user, "nonce": "zz", "ct": "00"}}),
            json!({"$sealed": {"v": 1, "subject": user, "nonce": "000000000000000000000000", "ct": "0"}}),
        ] {
            assert!(open(&ring, org, event, &bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn keys_never_show_in_debug_output() {
        let key = DataKey::from_bytes([0xAB; 32]);
        let ring = KeyRing::new(HashMap::from([(ids().1, key.clone())]));
        let out = format!("{key:?} {ring:?}");
        assert!(!out.contains("171") && !out.to_lowercase().contains("ab, "));
        assert!(out.contains("redacted"));
    }
}
