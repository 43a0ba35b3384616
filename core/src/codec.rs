//! Between domain [`Event`]s and stored envelopes. Payloads are JSON objects
//! (the event's fields, without its type tag); the type name and schema
//! version travel beside them. Old payloads are upcast on read, one version
//! step at a time, so events stay readable forever (RULES.md, "What the log promises").

use crate::erasure::{self, DataKey, KeyRing};
use crate::event::Event;
use crate::ids::{EventId, OrgId, UserId};
use crate::store::{ClaimChange, ClaimKey, EventMetadata, NewEvent, RecordedEvent};
use serde_json::Value;

/// The claim namespace of phone numbers (R-NUM-06).
pub const PHONE_NUMBER_CLAIM: &str = "phone_number";

/// Why an event could not be encoded for the store. Every current event
/// serializes; this guards against a future type that does not (a map with
/// non-string keys, say) turning into a `null` payload in the log.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("event {event_type} could not be encoded: {reason}")]
pub struct EncodeError {
    /// Type name.
    pub event_type: String,
    /// Why.
    pub reason: String,
}

/// What went wrong in a JSON (de)serialization, without the offending
/// value: `serde_json`'s messages quote it ("invalid type: string \"…\""),
/// and here it may be personal data. Kind and place only.
pub fn json_error_shape(e: &serde_json::Error) -> String {
    let kind = match e.classify() {
        serde_json::error::Category::Io => "i/o error",
        serde_json::error::Category::Syntax => "syntax error",
        serde_json::error::Category::Data => "a value of the wrong type or shape",
        serde_json::error::Category::Eof => "unexpected end of input",
    };
    if e.line() == 0 {
        kind.to_owned()
    } else {
        format!("{kind} at line {} column {}", e.line(), e.column())
    }
}

/// Why a stored event could not be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
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

// Schema versions and the upcaster chain live in `schema` (they need no
// `Event`, and `Event::schema_version` needs them).
pub use crate::schema::{current_version, Upcaster, UPCASTERS};

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
pub fn payload(event: &Event) -> Result<Value, EncodeError> {
    let fail = |reason: String| EncodeError {
        event_type: event.event_type().to_owned(),
        reason,
    };
    match serde_json::to_value(event).map_err(|e| fail(json_error_shape(&e)))? {
        Value::Object(mut map) => {
            map.remove("type");
            Ok(Value::Object(map))
        }
        _ => Err(fail("the payload is not a JSON object".into())),
    }
}

/// An event ready to append, with its personal data in clear. The service
/// uses [`encode_sealed`]; this is for tests, tools and exports.
pub fn encode(
    event: &Event,
    event_id: EventId,
    metadata: EventMetadata,
) -> Result<NewEvent, EncodeError> {
    Ok(NewEvent {
        event_id,
        event_type: event.event_type().to_owned(),
        schema_version: current_version(event.event_type()),
        payload: payload(event)?,
        metadata,
    })
}

/// The top-level payload field of an event type that holds personal data
/// (R-LIFE-06): its [`PersonalData`](crate::PersonalData), or the name of a
/// signed-in device (devices are named after their owner: "Ann's laptop").
pub fn personal_field(event_type: &str) -> Option<&'static str> {
    match event_type {
        "OrganizationCreated" => Some("owner_personal"),
        "UserInvited" | "InvitationAccepted" | "ProfileUpdated" => Some("personal"),
        "DeviceSignedIn" => Some("device_name"),
        _ => None,
    }
}

/// What an erased personal field reads as: an empty [`PersonalData`](crate::PersonalData)
/// object, or an empty device name.
pub fn erased_value(event_type: &str) -> Value {
    match event_type {
        "DeviceSignedIn" => Value::String(String::new()),
        _ => Value::Object(serde_json::Map::new()),
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
        Event::DeviceSignedIn { name, .. } => !name.is_empty(),
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
) -> Result<NewEvent, EncodeError> {
    let mut new = encode(event, event_id, metadata)?;
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
                Sealing::Erase => erased_value(event.event_type()),
            };
        }
    }
    Ok(new)
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
        *value = opened.unwrap_or_else(|| erased_value(event_type));
    }
    Ok(())
}

/// Reads a recorded event as a current [`Event`], opening sealed personal
/// data with `keys` (missing keys read as erased data, never an error).
/// Copies the payload once; [`decode_owned`] does not copy it at all.
pub fn decode_with(recorded: &RecordedEvent, keys: &KeyRing) -> Result<Event, DecodeError> {
    decode_parts(
        &recorded.event_type,
        recorded.schema_version,
        recorded.stream,
        recorded.event_id,
        recorded.payload.clone(),
        keys,
    )
}

/// [`decode_with`], consuming the recorded event: for readers that own the
/// page they read (the service's catch-up), so the payload's strings move
/// into the event instead of being copied.
pub fn decode_owned(recorded: RecordedEvent, keys: &KeyRing) -> Result<Event, DecodeError> {
    decode_parts(
        &recorded.event_type,
        recorded.schema_version,
        recorded.stream,
        recorded.event_id,
        recorded.payload,
        keys,
    )
}

fn decode_parts(
    event_type: &str,
    version: u32,
    org: OrgId,
    event_id: EventId,
    mut payload: Value,
    keys: &KeyRing,
) -> Result<Event, DecodeError> {
    open_payload(&mut payload, event_type, org, event_id, keys)?;
    decode_payload_value(event_type, version, payload)
}

/// Reads a stored payload of type `event_type` at `version` as a current [`Event`].
pub fn decode_payload(
    event_type: &str,
    version: u32,
    payload: &Value,
) -> Result<Event, DecodeError> {
    decode_payload_value(event_type, version, payload.clone())
}

/// [`decode_payload`], consuming the payload.
pub fn decode_payload_value(
    event_type: &str,
    version: u32,
    payload: Value,
) -> Result<Event, DecodeError> {
    let malformed = |reason: String| DecodeError::Malformed {
        event_type: event_type.to_owned(),
        version,
        reason,
    };
    let v = upcast(event_type, version, payload)?;
    if !v.is_object() {
        return Err(malformed("payload is not an object".into()));
    }
    // `{"<type>": payload}`: the externally tagged twin reads it in one pass
    // (see `event::events!`); an unknown type is an unknown variant.
    let mut tagged = serde_json::Map::with_capacity(1);
    tagged.insert(event_type.to_owned(), v);
    serde_json::from_value::<crate::event::Tagged>(Value::Object(tagged))
        .map(Event::from)
        .map_err(|e| malformed(json_error_shape(&e)))
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

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn device_signed_in() -> Event {
        Event::DeviceSignedIn {
            user: UserId::from_uuid(uuid::Uuid::from_u128(1)),
            device: crate::ids::DeviceId::from_uuid(uuid::Uuid::from_u128(2)),
            name: "Pixel 9".into(),
            at: chrono::DateTime::UNIX_EPOCH,
        }
    }

    #[test]
    fn device_signed_in_is_stored_at_version_2_in_its_new_shape() {
        let e = device_signed_in();
        assert_eq!(current_version("DeviceSignedIn"), 2);
        assert_eq!(e.schema_version(), 2);
        assert_eq!(current_version("UserActivated"), 1);
        let p = payload(&e).expect("encodes");
        assert_eq!(p["device_name"], "Pixel 9");
        assert!(p.get("name").is_none() && p.get("at").is_none());
        assert_eq!(decode_payload("DeviceSignedIn", 2, &p), Ok(e));
    }

    #[test]
    fn a_version_1_device_signed_in_is_upcast_on_read() {
        let v1 = json!({
            "user": UserId::from_uuid(uuid::Uuid::from_u128(1)),
            "device": crate::ids::DeviceId::from_uuid(uuid::Uuid::from_u128(2)),
            "name": "Pixel 9",
            "at": "1970-01-01T00:00:00Z",
        });
        assert_eq!(
            decode_payload("DeviceSignedIn", 1, &v1),
            Ok(device_signed_in())
        );
    }

    #[test]
    fn unknown_and_malformed_versions_are_typed_errors() {
        let p = payload(&device_signed_in()).expect("encodes");
        assert!(matches!(
            decode_payload("DeviceSignedIn", 3, &p),
            Err(DecodeError::UnknownVersion { version: 3, .. })
        ));
        assert!(matches!(
            decode_payload("DeviceSignedIn", 0, &p),
            Err(DecodeError::UnknownVersion { version: 0, .. })
        ));
        // A "v1" payload already in the v2 shape does not upcast.
        assert!(matches!(
            decode_payload("DeviceSignedIn", 1, &p),
            Err(DecodeError::Malformed { version: 1, .. })
        ));
        assert!(matches!(
            decode_payload("DeviceSignedIn", 1, &json!([1, 2])),
            Err(DecodeError::Malformed { .. })
        ));
    }

    #[test]
    fn every_upcaster_step_is_unique_and_contiguous() {
        for u in UPCASTERS {
            let steps: Vec<u32> = UPCASTERS
                .iter()
                .filter(|x| x.event_type == u.event_type)
                .map(|x| x.from)
                .collect();
            let mut sorted = steps.clone();
            sorted.sort_unstable();
            sorted.dedup();
            assert_eq!(
                sorted.len(),
                steps.len(),
                "{}: duplicate step",
                u.event_type
            );
            assert_eq!(sorted, (1..=steps.len() as u32).collect::<Vec<_>>());
        }
    }
}
