//! The store contract: small traits with one job each.
//!
//! * [`EventStore`] — append with an expected version, idempotent by command id,
//!   with unique claims committed atomically; read a stream; read the whole log
//!   in log order; wait for new events.
//! * [`SnapshotStore`] — save and load an organization's folded state.
//! * [`CheckpointStore`] — where a subscriber has read up to.
//!
//! Every store (memory, Postgres) passes the same conformance suite.
//!
//! ## Positions
//! A [`Position`] orders the whole log. It is a pair `(commit, sequence)`:
//! `commit` identifies the append's transaction and `sequence` the event
//! inside the store. Positions compare lexicographically, and a reader that
//! has seen position `p` will never later be shown an event at or before `p`
//! (stores only expose events whose order can no longer change). Positions
//! are not dense: do not do arithmetic on them.

use crate::context::Actor;
use crate::ids::{CommandId, EventId, OrgId, UserId};
use async_trait::async_trait;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use std::fmt;
use std::time::Duration;

/// Limit: events in one append. A command yielding more is refused before it
/// reaches the store (and the store refuses it too).
pub const MAX_EVENTS_PER_APPEND: usize = 10_000;
/// Limit: claims changed in one append.
pub const MAX_CLAIMS_PER_APPEND: usize = 10_000;
/// Limit: bytes of one event's JSON payload.
pub const MAX_PAYLOAD_BYTES: usize = 1 << 20;
/// Limit: data-key changes in one append (at most one or two per event).
pub const MAX_KEY_CHANGES_PER_APPEND: usize = 2 * MAX_EVENTS_PER_APPEND;
/// Limit: events returned by one read call.
pub const MAX_READ_PAGE: usize = 10_000;
/// Limit: length of an event type name, claim namespace, claim value or checkpoint name.
pub const MAX_NAME_LEN: usize = 200;
/// Limit: bytes of one snapshot's encoded state. A snapshot folds a whole
/// organization (a few hundred bytes per user in the binary form, see
/// BENCHMARKS.md), so this admits organizations of well over a million users
/// while staying under PostgreSQL's 1 GB limit on one `bytea` value.
pub const MAX_SNAPSHOT_BYTES: usize = 512 * MAX_PAYLOAD_BYTES;

/// Limit: the highest stream version or snapshot version a store accepts
/// (`i64::MAX`, what SQL `bigint` holds; no stream can get near it).
pub const MAX_VERSION: u64 = i64::MAX as u64;

/// Whether a JSON value holds a NUL character in any string or object key.
/// Stores refuse those: PostgreSQL `text`/`jsonb` cannot hold NUL, and every
/// store must accept and refuse the same inputs. Iterative, so that a deeply
/// nested value cannot overflow the stack.
pub fn json_contains_nul(value: &serde_json::Value) -> bool {
    let mut stack = vec![value];
    while let Some(v) = stack.pop() {
        match v {
            serde_json::Value::String(s) if s.contains('\0') => return true,
            serde_json::Value::Array(items) => stack.extend(items),
            serde_json::Value::Object(map) => {
                for (k, item) in map {
                    if k.contains('\0') {
                        return true;
                    }
                    stack.push(item);
                }
            }
            _ => {}
        }
    }
    false
}

/// The store-agnostic test suite every store must pass (feature `conformance`).
#[cfg(feature = "conformance")]
#[path = "conformance/mod.rs"]
pub mod conformance;

/// Where in the whole log an event stands. See the module docs.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct Position {
    /// The committing transaction's order key (memory: append counter; Postgres: `xid8`).
    pub commit: u64,
    /// The event's sequence number in the store.
    pub sequence: u64,
}

impl Position {
    /// Builds a position.
    pub const fn new(commit: u64, sequence: u64) -> Self {
        Self { commit, sequence }
    }
}

impl fmt::Display for Position {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}.{}", self.commit, self.sequence)
    }
}

/// What the appender believes the stream's version to be. Version `n` means the
/// stream holds `n` events; the first event has version 1.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum ExpectedVersion {
    /// No check.
    Any,
    /// The stream must be empty (the same as `Exact(0)`).
    NoStream,
    /// The stream must hold exactly this many events.
    Exact(u64),
}

impl ExpectedVersion {
    /// Whether a stream at `actual` satisfies this expectation.
    pub fn admits(self, actual: u64) -> bool {
        match self {
            ExpectedVersion::Any => true,
            ExpectedVersion::NoStream => actual == 0,
            ExpectedVersion::Exact(v) => v == actual,
        }
    }
}

/// Who, when and why, recorded on every event (RULES.md, "What the log promises"; R-AUTH-04).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct EventMetadata {
    /// Who issued the command.
    pub actor: Actor,
    /// When, by the caller's clock.
    pub occurred_at: DateTime<Utc>,
    /// The command that caused the event.
    pub command_id: Option<CommandId>,
    /// What caused the command (an event or command id), if known.
    pub causation_id: Option<uuid::Uuid>,
    /// The conversation this belongs to (defaults to the command id).
    pub correlation_id: Option<uuid::Uuid>,
}

/// An event's payload as raw JSON text (a JSON object for every event the
/// codec writes): what a store keeps and hands back, parsed once, by
/// [`codec`](crate::codec), straight into an [`Event`](crate::Event) — no
/// intermediate `serde_json::Value` tree per read. Stores must not parse
/// it (they check its size and that it holds no NUL, see
/// [`RawPayload::contains_nul`]).
///
/// Both sides of the contract carry it: [`NewEvent`] so that a store keeps
/// the text it was given (the memory store stores it as is; PostgreSQL
/// receives it as `jsonb` text, with no tree serialized at bind time), and
/// [`RecordedEvent`] so that a read builds no tree. Build one from a `Value`
/// with `From` (what [`codec::encode`](crate::codec::encode) does) or from
/// text with [`RawPayload::from_json`].
///
/// `Debug` shows no content, only the length: payloads hold personal data.
/// Serializes as the JSON value itself (an export line holds the payload
/// object, as before), and deserializes from any `serde_json` input.
///
/// Equality compares the JSON *values*, not the texts: equal texts are equal
/// at once, otherwise both are parsed and compared. A store may give back
/// another spelling of the same value — PostgreSQL's `jsonb` reorders keys
/// and adds spaces — and what the contract promises is the value, so text
/// equality would call a faithful store wrong. (Comparing is for tests and
/// tools; no read path compares payloads.)
#[derive(Clone, Serialize, Deserialize)]
#[serde(transparent)]
pub struct RawPayload(Box<serde_json::value::RawValue>);

impl RawPayload {
    /// Validates `json` as one JSON value and keeps the text as it is.
    pub fn from_json(json: String) -> Result<Self, serde_json::Error> {
        serde_json::value::RawValue::from_string(json).map(Self)
    }

    /// Wraps already validated raw JSON.
    pub fn from_raw(raw: Box<serde_json::value::RawValue>) -> Self {
        Self(raw)
    }

    /// The JSON text.
    pub fn get(&self) -> &str {
        self.0.get()
    }

    /// The raw value, for deserializing from.
    pub fn as_raw(&self) -> &serde_json::value::RawValue {
        &self.0
    }

    /// The raw value, by value.
    pub fn into_raw(self) -> Box<serde_json::value::RawValue> {
        self.0
    }

    /// Length of the text in bytes: the size limits ([`MAX_PAYLOAD_BYTES`]) count these.
    pub fn len(&self) -> usize {
        self.0.get().len()
    }

    /// Whether the text is empty (never: it is one JSON value).
    pub fn is_empty(&self) -> bool {
        self.0.get().is_empty()
    }

    /// The payload parsed into a tree (a slow path: upcasting, opening
    /// sealed fields, tests).
    pub fn to_value(&self) -> Result<serde_json::Value, serde_json::Error> {
        serde_json::from_str(self.0.get())
    }

    /// Whether any string or key holds a NUL character (see
    /// [`json_contains_nul`]). Valid JSON text holds no raw control
    /// character, so a NUL can only be the escape `\u0000`; escapes are
    /// walked one by one so that `\\u0000` (a backslash, then `u0000`)
    /// is not mistaken for one. No parsing, one pass over the bytes.
    pub fn contains_nul(&self) -> bool {
        let bytes = self.0.get().as_bytes();
        let mut i = 0;
        while i < bytes.len() {
            if bytes[i] == b'\\' {
                if bytes.get(i + 1) == Some(&b'u') {
                    if bytes.get(i + 2..i + 6) == Some(b"0000".as_slice()) {
                        return true;
                    }
                    i += 6;
                } else {
                    i += 2;
                }
            } else {
                i += 1;
            }
        }
        false
    }
}

impl From<&serde_json::Value> for RawPayload {
    fn from(value: &serde_json::Value) -> Self {
        // Serializing a `Value` cannot fail (its keys are strings).
        Self(
            serde_json::value::to_raw_value(value)
                .unwrap_or_else(|_| serde_json::value::RawValue::NULL.to_owned()),
        )
    }
}

impl From<serde_json::Value> for RawPayload {
    fn from(value: serde_json::Value) -> Self {
        Self::from(&value)
    }
}

impl PartialEq for RawPayload {
    fn eq(&self, other: &Self) -> bool {
        self.get() == other.get()
            || matches!((self.to_value(), other.to_value()), (Ok(a), Ok(b)) if a == b)
    }
}

impl fmt::Debug for RawPayload {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "RawPayload(<{} bytes>)", self.len())
    }
}

/// An event about to be appended. `Debug` shows no payload (it may hold
/// personal data in clear).
#[derive(Clone, PartialEq, Serialize, Deserialize)]
pub struct NewEvent {
    /// Unique across the store; appending it elsewhere is [`StoreError::DuplicateEvent`].
    pub event_id: EventId,
    /// The event's type name, e.g. `UserDeactivated`.
    pub event_type: String,
    /// The schema version of `payload` for this type.
    pub schema_version: u32,
    /// The payload, as raw JSON (see [`RawPayload`]).
    pub payload: RawPayload,
    /// Who, when, why.
    pub metadata: EventMetadata,
}

/// An event as the store recorded it. `Debug` shows no payload (an opened
/// one holds personal data in clear).
#[derive(Clone, PartialEq, Serialize, Deserialize)]
pub struct RecordedEvent {
    /// The stream (organization) it belongs to.
    pub stream: OrgId,
    /// Its version in the stream (1-based, dense).
    pub version: u64,
    /// Its place in the whole log.
    pub position: Position,
    /// Unique id.
    pub event_id: EventId,
    /// Type name.
    pub event_type: String,
    /// Payload schema version.
    pub schema_version: u32,
    /// Payload, as raw JSON: parsed only by the codec (see [`RawPayload`]).
    pub payload: RawPayload,
    /// Who, when, why.
    pub metadata: EventMetadata,
}

impl fmt::Debug for NewEvent {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("NewEvent")
            .field("event_id", &self.event_id)
            .field("event_type", &self.event_type)
            .field("schema_version", &self.schema_version)
            .field("payload", &crate::redact::Redacted("payload"))
            .field("metadata", &self.metadata)
            .finish()
    }
}

impl fmt::Debug for RecordedEvent {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RecordedEvent")
            .field("stream", &self.stream)
            .field("version", &self.version)
            .field("position", &self.position)
            .field("event_id", &self.event_id)
            .field("event_type", &self.event_type)
            .field("schema_version", &self.schema_version)
            .field("payload", &crate::redact::Redacted("payload"))
            .field("metadata", &self.metadata)
            .finish()
    }
}

/// A store-wide unique key, e.g. a phone number (`phone_number`, `+14155550100`).
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct ClaimKey {
    /// What kind of thing is claimed.
    pub namespace: String,
    /// The claimed value.
    pub value: String,
}

impl ClaimKey {
    /// Builds a claim key.
    pub fn new(namespace: impl Into<String>, value: impl Into<String>) -> Self {
        Self {
            namespace: namespace.into(),
            value: value.into(),
        }
    }
}

impl fmt::Display for ClaimKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}", self.namespace, self.value)
    }
}

/// A change to a unique claim, committed atomically with the append. The
/// changes of one append apply in order: the first that touches a key held by
/// another stream fails the whole append; otherwise the last change to a key wins.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum ClaimChange {
    /// Take the key for the appending stream. Taking a key the stream already
    /// holds is a no-op; one held by another stream fails the append.
    Claim(ClaimKey),
    /// Give the key up. Releasing a key the stream does not hold is a no-op;
    /// one held by another stream fails the append with [`StoreError::ClaimTaken`].
    Release(ClaimKey),
}

/// One atomic append. Not serializable: it may carry data keys.
#[derive(Clone, Debug, PartialEq)]
pub struct AppendRequest {
    /// The stream.
    pub stream: OrgId,
    /// The optimistic-concurrency check.
    pub expected: ExpectedVersion,
    /// The idempotency key, scoped to `stream`: if an append to this stream
    /// with this command id was recorded before, the store records nothing and
    /// returns that append's outcome. The same id in another stream is another
    /// key: it neither collides nor reveals anything.
    pub command_id: Option<CommandId>,
    /// A digest of the command behind `command_id`, recorded with it. An
    /// append whose command id is recorded with a *different* digest is
    /// refused with [`StoreError::IdempotencyKeyReused`] instead of being
    /// answered with the first outcome. `None` (here or on the recorded
    /// command) skips the comparison.
    pub command_digest: Option<CommandDigest>,
    /// The events, in order. At least one.
    pub events: Vec<NewEvent>,
    /// Claim changes committed with the events.
    pub claims: Vec<ClaimChange>,
    /// Data-key changes committed with the events (R-LIFE-06): keys created
    /// for the subjects whose personal data the events seal for the first
    /// time, and keys shredded for the users the events delete. Committing
    /// them with the events means that a refused, conflicting or abandoned
    /// append leaves no key behind, and that a recorded deletion has always
    /// erased its user.
    pub keys: Vec<KeyChange>,
}

/// A digest of a command, recorded with its command id to tell a repeated
/// command from another command that reuses its id (SHA-256, 32 bytes).
#[derive(Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct CommandDigest(pub [u8; 32]);

impl fmt::Debug for CommandDigest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "CommandDigest({self})")
    }
}

impl fmt::Display for CommandDigest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // The first 8 bytes name it well enough for an operator.
        for b in &self.0[..8] {
            write!(f, "{b:02x}")?;
        }
        Ok(())
    }
}

/// A change to a user's data key, committed atomically with an append. The
/// creations of an append are checked against the keys as they were before
/// it, and applied before its shreds: a subject both created and shredded
/// by one append ends erased.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum KeyChange {
    /// Store `key` as the subject's key. The subject must have no key row
    /// at all (neither a key nor the tombstone of a deleted one): otherwise
    /// the whole append is refused with [`StoreError::KeyExists`], since the
    /// events were sealed under a key that would not be the subject's.
    Create {
        /// The user.
        subject: UserId,
        /// Their new key.
        key: DataKey,
    },
    /// Delete the subject's key for ever, leaving a tombstone (idempotent).
    Shred {
        /// The user.
        subject: UserId,
    },
}

/// What a store recorded for a command id of a stream.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct CommandRecord {
    /// The outcome of the append that carried it (`duplicate: false`).
    pub outcome: AppendOutcome,
    /// The digest it was recorded with, if any.
    pub digest: Option<CommandDigest>,
}

/// Whether a recorded command may answer a request with `digest`: unknown
/// digests on either side are not compared.
pub fn digests_match(recorded: Option<CommandDigest>, request: Option<CommandDigest>) -> bool {
    match (recorded, request) {
        (Some(a), Some(b)) => a == b,
        _ => true,
    }
}

impl AppendRequest {
    /// Checks the request's limits. Stores call this first, so that a bad
    /// request is refused the same way everywhere and changes nothing.
    pub fn validate(&self) -> Result<(), StoreError> {
        let bad = |reason: String| Err(StoreError::InvalidRequest { reason });
        if self.events.is_empty() {
            return bad("an append needs at least one event".into());
        }
        if self.events.len() > MAX_EVENTS_PER_APPEND {
            return bad(format!(
                "{} events in one append; the limit is {MAX_EVENTS_PER_APPEND}",
                self.events.len()
            ));
        }
        if self.keys.len() > MAX_KEY_CHANGES_PER_APPEND {
            return bad(format!(
                "{} key changes in one append; the limit is {MAX_KEY_CHANGES_PER_APPEND}",
                self.keys.len()
            ));
        }
        if self.claims.len() > MAX_CLAIMS_PER_APPEND {
            return bad(format!(
                "{} claim changes in one append; the limit is {MAX_CLAIMS_PER_APPEND}",
                self.claims.len()
            ));
        }
        let mut seen = std::collections::HashSet::with_capacity(self.events.len());
        for e in &self.events {
            if !seen.insert(e.event_id) {
                return Err(StoreError::DuplicateEvent {
                    event_id: e.event_id,
                });
            }
            if e.event_type.is_empty()
                || e.event_type.len() > MAX_NAME_LEN
                || e.event_type.contains('\0')
            {
                return bad(format!(
                    "event type name of {} bytes (or with a NUL character)",
                    e.event_type.len()
                ));
            }
            if e.payload.contains_nul() {
                return bad(format!(
                    "payload of event {} contains a NUL character",
                    e.event_id
                ));
            }
            // The text's length is what the store keeps; measure it the same way everywhere.
            let size = e.payload.len();
            if size > MAX_PAYLOAD_BYTES {
                return bad(format!(
                    "payload of event {} is {size} bytes; the limit is {MAX_PAYLOAD_BYTES}",
                    e.event_id
                ));
            }
        }
        let mut created = std::collections::HashSet::new();
        for k in &self.keys {
            if let KeyChange::Create { subject, .. } = k {
                if !created.insert(*subject) {
                    return bad(format!("two keys created for user {subject} in one append"));
                }
            }
        }
        for c in &self.claims {
            let k = match c {
                ClaimChange::Claim(k) | ClaimChange::Release(k) => k,
            };
            if k.namespace.is_empty()
                || k.namespace.len() > MAX_NAME_LEN
                || k.value.is_empty()
                || k.value.len() > MAX_NAME_LEN
                || k.namespace.contains('\0')
                || k.value.contains('\0')
            {
                return bad(format!(
                    "claim key {} is empty, too long or holds a NUL character",
                    k.to_string().escape_debug()
                ));
            }
        }
        Ok(())
    }
}

/// What an append did.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct AppendOutcome {
    /// The stream.
    pub stream: OrgId,
    /// Version of the first appended event.
    pub first_version: u64,
    /// Version of the last appended event: the stream's version after the append.
    pub last_version: u64,
    /// Position of the first appended event.
    pub first_position: Position,
    /// Position of the last appended event.
    pub last_position: Position,
    /// True when the command id had been recorded before and nothing new was appended.
    pub duplicate: bool,
}

/// A stream's state saved at a version, so that loading it need not replay
/// from the start. `Debug` shows no state.
#[derive(Clone, PartialEq, Serialize, Deserialize)]
pub struct Snapshot {
    /// The stream.
    pub stream: OrgId,
    /// The stream version the state includes.
    pub version: u64,
    /// The schema version of the serialized state; a snapshot of another
    /// schema is ignored and the stream is replayed instead.
    pub schema_version: u32,
    /// The state, encoded by the service (opaque to stores).
    pub state: Vec<u8>,
}

impl fmt::Debug for Snapshot {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Snapshot")
            .field("stream", &self.stream)
            .field("version", &self.version)
            .field("schema_version", &self.schema_version)
            .field("state", &crate::redact::Redacted("state"))
            .finish()
    }
}

impl Snapshot {
    /// Checks the snapshot's limits. Stores call this before saving, so that a
    /// bad snapshot is refused the same way everywhere.
    pub fn validate(&self) -> Result<(), StoreError> {
        let size = self.state.len();
        if size > MAX_SNAPSHOT_BYTES {
            return Err(StoreError::InvalidRequest {
                reason: format!("snapshot of {size} bytes; the limit is {MAX_SNAPSHOT_BYTES}"),
            });
        }
        if self.version > MAX_VERSION {
            return Err(StoreError::InvalidRequest {
                reason: format!("snapshot version {} is above {MAX_VERSION}", self.version),
            });
        }
        Ok(())
    }
}

/// Checks a subscriber (checkpoint) name: 1 to [`MAX_NAME_LEN`] bytes.
pub fn validate_checkpoint_name(name: &str) -> Result<(), StoreError> {
    if name.is_empty() || name.len() > MAX_NAME_LEN || name.contains('\0') {
        return Err(StoreError::InvalidRequest {
            reason: format!(
                "checkpoint name of {} bytes; it must be 1 to {MAX_NAME_LEN}, without NUL",
                name.len()
            ),
        });
    }
    Ok(())
}

/// Every way a store can fail. Database errors are mapped by SQLSTATE, never by message text.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[non_exhaustive]
pub enum StoreError {
    /// The expected version did not hold; nothing was appended.
    #[error("version conflict on stream {stream}: expected {expected:?}, actual {actual}")]
    Conflict {
        /// The stream.
        stream: OrgId,
        /// What the appender expected.
        expected: ExpectedVersion,
        /// The stream's actual version.
        actual: u64,
    },
    /// An event id already recorded elsewhere (or twice in one request).
    #[error("event {event_id} is already recorded")]
    DuplicateEvent {
        /// The duplicated id.
        event_id: EventId,
    },
    /// The command id is recorded in this stream for a different command
    /// (another digest); nothing was appended and nothing of the first
    /// command is revealed.
    #[error("command id {command_id} was already used for a different command")]
    IdempotencyKeyReused {
        /// The reused id.
        command_id: CommandId,
    },
    /// A [`KeyChange::Create`] met a subject that already has a key row (a
    /// live key or the tombstone of an erased one); nothing was appended.
    #[error("a data key of user {subject} exists already")]
    KeyExists {
        /// The user.
        subject: UserId,
    },
    /// A unique claim is held by another stream; nothing was appended.
    #[error("{key} is claimed by organization {holder}")]
    ClaimTaken {
        /// The key.
        key: ClaimKey,
        /// Who holds it.
        holder: OrgId,
    },
    /// The request breaks a limit or is malformed; nothing was appended.
    #[error("invalid store request: {reason}")]
    InvalidRequest {
        /// Why.
        reason: String,
    },
    /// The store could not be reached or failed mid-way. When `maybe_committed`
    /// is true the append's outcome is unknown: re-send it with the same command
    /// id, which is safe (idempotency).
    #[error("store unavailable: {reason}")]
    Unavailable {
        /// What happened.
        reason: String,
        /// Whether the append may have committed anyway.
        maybe_committed: bool,
        /// The backend's error (the database driver's), when there is one.
        source: Option<BackendError>,
    },
    /// Stored data could not be decoded.
    #[error("corrupt data in store: {reason}")]
    Corrupt {
        /// What was wrong.
        reason: String,
        /// The backend's error, when the backend reported the corruption.
        source: Option<BackendError>,
    },
}

/// The error a store's backend (a database driver, a pool) reported, kept in
/// [`StoreError`] so that [`std::error::Error::source`] walks to it. It is
/// shared (`Arc`), so `StoreError` stays `Clone`; two compare equal when they
/// print the same text.
///
/// Errors outlive deletions (they reach logs), so a store puts here only an
/// error whose `Display` and `Debug` show no personal data: the Postgres
/// store's `PostgresError` shows SQLSTATE, constraint, table and message,
/// never PostgreSQL's `DETAIL`, which can quote row values.
///
/// ```
/// use std::error::Error as _;
/// use switchboard_core::store::{BackendError, StoreError};
///
/// let io = std::io::Error::new(std::io::ErrorKind::ConnectionReset, "connection reset");
/// let err = StoreError::Unavailable {
///     reason: "connection lost".into(),
///     maybe_committed: false,
///     source: Some(BackendError::new(io)),
/// };
/// let source = err.source().expect("the backend's error");
/// assert_eq!(source.to_string(), "connection reset");
/// let backend = source.downcast_ref::<BackendError>().unwrap();
/// assert!(backend.downcast_ref::<std::io::Error>().is_some());
/// ```
#[derive(Clone)]
pub struct BackendError(std::sync::Arc<dyn std::error::Error + Send + Sync + 'static>);

impl BackendError {
    /// Wraps a backend's error. It must not show personal data (see above).
    pub fn new(error: impl std::error::Error + Send + Sync + 'static) -> Self {
        Self(std::sync::Arc::new(error))
    }

    /// The backend's error itself.
    pub fn get_ref(&self) -> &(dyn std::error::Error + Send + Sync + 'static) {
        &*self.0
    }

    /// The backend's error as its own type, if it is an `E`.
    pub fn downcast_ref<E: std::error::Error + 'static>(&self) -> Option<&E> {
        self.0.downcast_ref::<E>()
    }
}

impl fmt::Debug for BackendError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(&*self.0, f)
    }
}

impl fmt::Display for BackendError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(&*self.0, f)
    }
}

/// Transparent: the backend's error's own source comes next in the chain.
impl std::error::Error for BackendError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        self.0.source()
    }
}

impl PartialEq for BackendError {
    fn eq(&self, other: &Self) -> bool {
        std::sync::Arc::ptr_eq(&self.0, &other.0) || self.to_string() == other.to_string()
    }
}

/// The append-only log of every organization.
///
/// ```
/// # use switchboard_core::store::*;
/// # use switchboard_core::{Actor, EventId, OrgId};
/// # async fn demo(store: &dyn EventStore) -> Result<(), StoreError> {
/// let org = OrgId::from_uuid(uuid::Uuid::from_u128(1));
/// let event = NewEvent {
///     event_id: EventId::from_uuid(uuid::Uuid::from_u128(2)),
///     event_type: "Noted".into(),
///     schema_version: 1,
///     payload: serde_json::json!({"text": "hello"}).into(),
///     metadata: EventMetadata {
///         actor: Actor::System,
///         occurred_at: chrono::DateTime::UNIX_EPOCH,
///         command_id: None,
///         causation_id: None,
///         correlation_id: None,
///     },
/// };
/// let outcome = store
///     .append(AppendRequest {
///         stream: org,
///         expected: ExpectedVersion::NoStream,
///         command_id: None,
///         events: vec![event],
///         claims: vec![],
///         command_digest: None,
///         keys: vec![],
///     })
///     .await?;
/// assert_eq!(outcome.last_version, 1);
/// let events = store.read_stream(org, 1, None, 100).await?;
/// assert_eq!(events.len(), 1);
/// # Ok(()) }
/// ```
#[async_trait]
pub trait EventStore: Send + Sync {
    /// Appends atomically: all events and claim changes, or nothing.
    ///
    /// Order of checks: request limits; a `command_id` recorded in the same
    /// stream returns the first outcome with `duplicate: true` (or
    /// [`StoreError::IdempotencyKeyReused`] when the digests differ); the
    /// expected version; event ids; claims; key creations.
    async fn append(&self, request: AppendRequest) -> Result<AppendOutcome, StoreError>;

    /// What was recorded for this command id in this stream, if anything.
    /// Ids are scoped to their stream: another stream's use of the same id
    /// is not found.
    async fn find_command(
        &self,
        stream: OrgId,
        command_id: CommandId,
    ) -> Result<Option<CommandRecord>, StoreError>;

    /// The stream's current version (0 when it has no events).
    async fn stream_version(&self, stream: OrgId) -> Result<u64, StoreError>;

    /// Events of one stream with `from <= version <= to`, in version order, at
    /// most `limit` (capped at [`MAX_READ_PAGE`]).
    async fn read_stream(
        &self,
        stream: OrgId,
        from: u64,
        to: Option<u64>,
        limit: usize,
    ) -> Result<Vec<RecordedEvent>, StoreError>;

    /// Events of all streams strictly after `after` (from the start when
    /// `None`), in log order, at most `limit` (capped at [`MAX_READ_PAGE`]).
    /// Never returns an event whose place in the order could still change —
    /// so it may lag an acknowledged append while older transactions are
    /// still running (Postgres), and catches up when they end. For
    /// read-your-writes use [`EventStore::read_stream`], which is immediate.
    async fn read_all(
        &self,
        after: Option<Position>,
        limit: usize,
    ) -> Result<Vec<RecordedEvent>, StoreError>;

    /// Returns once events after `after` may be readable, or after at most
    /// `timeout`. Spurious returns are allowed; callers re-read.
    async fn wait_for_events(&self, after: Option<Position>, timeout: Duration);

    /// The organization holding a claim, if any.
    async fn claim_holder(&self, key: &ClaimKey) -> Result<Option<OrgId>, StoreError>;
}

/// Saves and loads folded state.
#[async_trait]
pub trait SnapshotStore: Send + Sync {
    /// Saves a snapshot (replacing any at the same stream and version).
    async fn save_snapshot(&self, snapshot: Snapshot) -> Result<(), StoreError>;
    /// The newest snapshot of the stream whose version is at most `at_most`
    /// (the newest of all when `None`).
    async fn load_snapshot(
        &self,
        stream: OrgId,
        at_most: Option<u64>,
    ) -> Result<Option<Snapshot>, StoreError>;
    /// Removes every snapshot of the stream (e.g. after erasing personal data).
    async fn delete_snapshots(&self, stream: OrgId) -> Result<(), StoreError>;
}

/// Durable subscriber checkpoints.
#[async_trait]
pub trait CheckpointStore: Send + Sync {
    /// Records that subscriber `name` has handled everything up to `position`.
    async fn save_checkpoint(&self, name: &str, position: Position) -> Result<(), StoreError>;
    /// Where subscriber `name` stopped, if it ever saved.
    async fn load_checkpoint(&self, name: &str) -> Result<Option<Position>, StoreError>;
}

// A store behind a shared pointer is a store: `Arc<dyn Store>` lets an
// application keep one service type whatever store it runs on.
#[async_trait]
impl<T: EventStore + ?Sized> EventStore for std::sync::Arc<T> {
    async fn append(&self, request: AppendRequest) -> Result<AppendOutcome, StoreError> {
        (**self).append(request).await
    }
    async fn find_command(
        &self,
        stream: OrgId,
        command_id: CommandId,
    ) -> Result<Option<CommandRecord>, StoreError> {
        (**self).find_command(stream, command_id).await
    }
    async fn stream_version(&self, stream: OrgId) -> Result<u64, StoreError> {
        (**self).stream_version(stream).await
    }
    async fn read_stream(
        &self,
        stream: OrgId,
        from: u64,
        to: Option<u64>,
        limit: usize,
    ) -> Result<Vec<RecordedEvent>, StoreError> {
        (**self).read_stream(stream, from, to, limit).await
    }
    async fn read_all(
        &self,
        after: Option<Position>,
        limit: usize,
    ) -> Result<Vec<RecordedEvent>, StoreError> {
        (**self).read_all(after, limit).await
    }
    async fn wait_for_events(&self, after: Option<Position>, timeout: Duration) {
        (**self).wait_for_events(after, timeout).await
    }
    async fn claim_holder(&self, key: &ClaimKey) -> Result<Option<OrgId>, StoreError> {
        (**self).claim_holder(key).await
    }
}

#[async_trait]
impl<T: SnapshotStore + ?Sized> SnapshotStore for std::sync::Arc<T> {
    async fn save_snapshot(&self, snapshot: Snapshot) -> Result<(), StoreError> {
        (**self).save_snapshot(snapshot).await
    }
    async fn load_snapshot(
        &self,
        stream: OrgId,
        at_most: Option<u64>,
    ) -> Result<Option<Snapshot>, StoreError> {
        (**self).load_snapshot(stream, at_most).await
    }
    async fn delete_snapshots(&self, stream: OrgId) -> Result<(), StoreError> {
        (**self).delete_snapshots(stream).await
    }
}

#[async_trait]
impl<T: CheckpointStore + ?Sized> CheckpointStore for std::sync::Arc<T> {
    async fn save_checkpoint(&self, name: &str, position: Position) -> Result<(), StoreError> {
        (**self).save_checkpoint(name, position).await
    }
    async fn load_checkpoint(&self, name: &str) -> Result<Option<Position>, StoreError> {
        (**self).load_checkpoint(name).await
    }
}

#[async_trait]
impl<T: KeyStore + ?Sized> KeyStore for std::sync::Arc<T> {
    async fn create_key(
        &self,
        org: OrgId,
        user: UserId,
        candidate: DataKey,
    ) -> Result<Option<DataKey>, StoreError> {
        (**self).create_key(org, user, candidate).await
    }
    async fn load_keys(
        &self,
        org: OrgId,
        users: &[UserId],
    ) -> Result<std::collections::HashMap<UserId, DataKey>, StoreError> {
        (**self).load_keys(org, users).await
    }
    async fn delete_key(&self, org: OrgId, user: UserId) -> Result<(), StoreError> {
        (**self).delete_key(org, user).await
    }
}

// ---- Data keys (R-LIFE-06): the one mutable part of a store.

/// Limit: user ids asked for in one [`KeyStore::load_keys`] call.
pub const MAX_KEYS_PER_LOAD: usize = 1_000;
/// A user's 256-bit data key. Never serialized; `Debug` prints no bytes.
#[derive(Clone, PartialEq, Eq)]
pub struct DataKey([u8; 32]);

impl DataKey {
    /// A key from 32 secret bytes (e.g. `SecretSource::secret()`).
    pub fn from_bytes(bytes: [u8; 32]) -> Self {
        Self(bytes)
    }

    /// The key bytes, for a [`KeyStore`] to persist. Nothing else should call this.
    pub fn expose_bytes(&self) -> &[u8; 32] {
        &self.0
    }
}

impl std::fmt::Debug for DataKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("DataKey(<redacted>)")
    }
}

/// Where per-user data keys live: the only mutable data of a store. One job:
/// create, load and delete keys. Deleting is final: a deleted key is never
/// created again (the store keeps a tombstone without the key bytes), so a
/// late or concurrent writer cannot seal new personal data of an erased user.
///
/// ```
/// # use switchboard_core::store::*;
/// # use switchboard_core::{OrgId, UserId};
/// # async fn demo(keys: &dyn KeyStore, org: OrgId, user: UserId) -> Result<(), switchboard_core::store::StoreError> {
/// let key = keys.create_key(org, user, DataKey::from_bytes([7; 32])).await?;
/// assert!(key.is_some());
/// keys.delete_key(org, user).await?;
/// assert!(keys.load_keys(org, &[user]).await?.is_empty());
/// assert!(keys.create_key(org, user, DataKey::from_bytes([8; 32])).await?.is_none());
/// # Ok(()) }
/// ```
#[async_trait]
pub trait KeyStore: Send + Sync {
    /// The user's key: the existing one, or `candidate` stored as the key when
    /// there is none. `None` when the user's key was deleted (erased for ever).
    /// Safe under concurrency: two callers get the same key.
    async fn create_key(
        &self,
        org: OrgId,
        user: UserId,
        candidate: DataKey,
    ) -> Result<Option<DataKey>, StoreError>;

    /// The keys of those users that have one (absent: never created, or deleted).
    /// At most [`MAX_KEYS_PER_LOAD`] users per call.
    async fn load_keys(
        &self,
        org: OrgId,
        users: &[UserId],
    ) -> Result<std::collections::HashMap<UserId, DataKey>, StoreError>;

    /// Deletes the user's key for ever (idempotent). Their sealed data becomes unreadable.
    async fn delete_key(&self, org: OrgId, user: UserId) -> Result<(), StoreError>;
}

/// Checks a [`KeyStore::load_keys`] request's size; stores call it first.
pub fn validate_key_request(users: &[UserId]) -> Result<(), StoreError> {
    if users.len() > MAX_KEYS_PER_LOAD {
        return Err(StoreError::InvalidRequest {
            reason: format!(
                "{} keys asked for in one call; the limit is {MAX_KEYS_PER_LOAD}",
                users.len()
            ),
        });
    }
    Ok(())
}

/// A complete store: what the command-handling service needs, including the
/// data keys that make personal data erasable ([`KeyStore`], R-LIFE-06).
pub trait Store: EventStore + SnapshotStore + CheckpointStore + KeyStore {}
impl<T: EventStore + SnapshotStore + CheckpointStore + KeyStore + ?Sized> Store for T {}
