//! Between domain [`Event`]s and stored envelopes. Payloads are JSON objects
//! (the event's fields, without its type tag); the type name and schema
//! version travel beside them. Old payloads are upcast on read, one version
//! step at a time, so events stay readable forever (SPEC §3).

use crate::erasure::{self, DataKey, KeyRing};
use crate::event::Event;
use crate::ids::{EventId, OrgId, UserId};
use crate::store::{ClaimChange, ClaimKey, EventMetadata, NewEvent, RecordedEvent};
use serde_json::Value;

/// The claim namespace of phone numbers (R-NUM-06).
pub const PHONE_NUMBER_CLAIM: &str = "phone_number";

/// Why a stored event could not be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DecodeError {
    /// No upcaster from this version, or a version from the future.
    #[error("event {event_type} has schema version {version}, which this build cannot read")]
    UnknownVersion {
        /// Type name.
        event_type: String,
        /// Stored version.
        version: u32,
    },
    /// The payload does not match the type.
    #[error("event {event_type} v{version} does not decode: {reason}")]
    Malformed {
        /// Type name.
        event_type: String,
        /// Stored version.
        version: u32,
        /// Why.
        reason: String,
    },
    /// A sealed personal-data field did not open with its (present) key.
    #[error("event {event_type} carries sealed personal data that does not open: {reason}")]
    Sealed {
        /// Type name.
        event_type: String,
        /// Why.
        reason: String,
    },
}

/// One upcasting step: a payload of `event_type` at `from` becomes version `from + 1`.
pub struct Upcaster {
    /// The event type.
    pub event_type: &'static str,
    /// The version it reads.
    pub from: u32,
    /// The transformation.
    pub apply: fn(Value) -> Result<Value, String>,
}

/// Every upcasting step, all types. Add one when an event's shape changes and
/// bump that type's [`Event::schema_version`].
pub static UPCASTERS: &[Upcaster] = &[];

/// The current schema version of an event type (1 unless an upcaster chain raises it).
pub fn current_version(event_type: &str) -> u32 {
    1 + UPCASTERS
        .iter()
        .filter(|u| u.event_type == event_type)
        .count() as u32
}

/// Brings a payload to the current version of its type.
pub fn upcast(
    event_type: &str,
    mut version: u32,
    mut payload: Value,
) -> Result<Value, DecodeError> {
    let target = current_version(event_type);
    if version == 0 || version > target {
        return Err(DecodeError::UnknownVersion {
            event_type: event_type.to_owned(),
            version,
        });
    }
    while version < target {
        let step = UPCASTERS
            .iter()
            .find(|u| u.event_type == event_type && u.from == version)
            .ok_or_else(|| DecodeError::UnknownVersion {
                event_type: event_type.to_owned(),
                version,
            })?;
        payload = (step.apply)(payload).map_err(|reason| DecodeError::Malformed {
            event_type: event_type.to_owned(),
            version,
            reason,
        })?;
        version += 1;
    }
    Ok(payload)
}

/// The stored payload of an event: its fields, without the type tag.
pub fn payload(event: &Event) -> Value {
    let mut v = serde_json::to_value(event).unwrap_or(Value::Null);
    if let Value::Object(map) = &mut v {
        map.remove("type");
    }
    v
}

/// An event ready to append, with its personal data in clear. The service
/// uses [`encode_sealed`]; this is for tests, tools and exports.
pub fn encode(event: &Event, event_id: EventId, metadata: EventMetadata) -> NewEvent {
    NewEvent {
        event_id,
        event_type: event.event_type().to_owned(),
        schema_version: current_version(event.event_type()),
        payload: payload(event),
        metadata,
    }
}

/// The top-level payload field of an event type that holds its
/// [`PersonalData`](crate::PersonalData), if it has one (R-LIFE-06).
pub fn personal_field(event_type: &str) -> Option<&'static str> {
    match event_type {
        "OrganizationCreated" => Some("owner_personal"),
        "UserInvited" | "InvitationAccepted" | "ProfileUpdated" => Some("personal"),
        _ => None,
    }
}

/// How [`encode_sealed`] treats an event's personal data.
#[derive(Debug)]
pub enum Sealing<'a> {
    /// Encrypt it under the subject's key with this fresh random nonce (first 12 bytes used).
    Seal {
        /// The subject's data key.
        key: &'a DataKey,
        /// Fresh random bytes from the caller's `SecretSource`.
        nonce: [u8; 32],
    },
    /// The subject's key was deleted: store no personal data at all.
    Erase,
}

/// The subject whose personal data `event` carries, when it carries any.
pub fn personal_subject(event: &Event) -> Option<UserId> {
    let subject = event.personal_data_subject()?;
    let has_data = match event {
        Event::OrganizationCreated { owner_personal, .. } => !owner_personal.is_empty(),
        Event::UserInvited { personal, .. }
        | Event::InvitationAccepted { personal, .. }
        | Event::ProfileUpdated { personal, .. } => !personal.is_empty(),
        _ => false,
    };
    has_data.then_some(subject)
}

/// An event ready to append, its personal data sealed (or erased) for `org`.
pub fn encode_sealed(
    event: &Event,
    org: OrgId,
    event_id: EventId,
    metadata: EventMetadata,
    sealing: Sealing<'_>,
) -> NewEvent {
    let mut new = encode(event, event_id, metadata);
    if let (Some(subject), Some(field), Value::Object(map)) = (
        personal_subject(event),
        personal_field(event.event_type()),
        &mut new.payload,
    ) {
        if let Some(plain) = map.get_mut(field) {
            *plain = match sealing {
                Sealing::Seal { key, nonce } => {
                    erasure::seal(key, &nonce, org, subject, event_id, plain)
                }
                Sealing::Erase => Value::Object(serde_json::Map::new()),
            };
        }
    }
    new
}

/// Users whose keys are needed to open the sealed fields of `payload`.
pub fn sealed_subjects(payload: &Value) -> Vec<UserId> {
    match payload {
        Value::Object(map) => map.values().filter_map(erasure::sealed_subject).collect(),
        _ => Vec::new(),
    }
}

/// Opens every sealed top-level field of a payload in place; a field whose
/// key is missing becomes an empty object (erased personal data).
pub fn open_payload(
    payload: &mut Value,
    event_type: &str,
    org: OrgId,
    event_id: EventId,
    keys: &KeyRing,
) -> Result<(), DecodeError> {
    let Value::Object(map) = payload else {
        return Ok(());
    };
    for value in map.values_mut() {
        if !erasure::is_sealed(value) {
            continue;
        }
        let opened =
            erasure::open(keys, org, event_id, value).map_err(|e| DecodeError::Sealed {
                event_type: event_type.to_owned(),
                reason: e.to_string(),
            })?;
        *value = opened.unwrap_or_else(|| Value::Object(serde_json::Map::new()));
    }
    Ok(())
}

/// Reads a recorded event as a current [`Event`], opening sealed personal
/// data with `keys` (missing keys read as erased data, never an error).
pub fn decode_with(recorded: &RecordedEvent, keys: &KeyRing) -> Result<Event, DecodeError> {
    let mut payload = recorded.payload.clone();
    open_payload(
        &mut payload,
        &recorded.event_type,
        recorded.stream,
        recorded.event_id,
        keys,
    )?;
    decode_payload(&recorded.event_type, recorded.schema_version, &payload)
}

/// Reads a stored payload of type `event_type` at `version` as a current [`Event`].
pub fn decode_payload(
    event_type: &str,
    version: u32,
    payload: &Value,
) -> Result<Event, DecodeError> {
    let mut v = upcast(event_type, version, payload.clone())?;
    let Value::Object(map) = &mut v else {
        return Err(DecodeError::Malformed {
            event_type: event_type.to_owned(),
            version,
            reason: "payload is not an object".into(),
        });
    };
    map.insert("type".into(), Value::String(event_type.to_owned()));
    serde_json::from_value(v).map_err(|e| DecodeError::Malformed {
        event_type: event_type.to_owned(),
        version,
        reason: e.to_string(),
    })
}

/// Reads a recorded event as a current [`Event`] without keys: sealed
/// personal data reads as erased. Use [`decode_with`] to open it.
pub fn decode(recorded: &RecordedEvent) -> Result<Event, DecodeError> {
    decode_with(recorded, &KeyRing::empty())
}

/// The store-wide claims events take or give up (R-NUM-06): a number belongs
/// to at most one organization.
pub fn claims(events: &[Event]) -> Vec<ClaimChange> {
    events
        .iter()
        .filter_map(|e| match e {
            Event::NumberAdded { number, .. } => Some(ClaimChange::Claim(ClaimKey::new(
                PHONE_NUMBER_CLAIM,
                number.as_str(),
            ))),
            Event::NumberReleased { number } => Some(ClaimChange::Release(ClaimKey::new(
                PHONE_NUMBER_CLAIM,
                number.as_str(),
            ))),
            _ => None,
        })
        .collect()
}
