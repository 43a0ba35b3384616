//! Between domain [`Event`]s and stored envelopes. Payloads are JSON objects
//! (the event's fields, without its type tag); the type name and schema
//! version travel beside them. Old payloads are upcast on read, one version
//! step at a time, so events stay readable forever (RULES.md, "What the log promises").

use crate::erasure::{self, DataKey, KeyRing};
use crate::event::Event;
use crate::ids::{EventId, OrgId, UserId};
use crate::store::{ClaimChange, ClaimKey, EventMetadata, NewEvent, RawPayload, RecordedEvent};
use serde::de::{self, IntoDeserializer};
use serde::Deserialize;
use serde_json::value::RawValue;
use serde_json::Value;
use std::borrow::Cow;

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
    encode_value(event, event_id, metadata, payload(event)?)
}

fn encode_value(
    event: &Event,
    event_id: EventId,
    metadata: EventMetadata,
    payload: Value,
) -> Result<NewEvent, EncodeError> {
    Ok(NewEvent {
        event_id,
        event_type: event.event_type().to_owned(),
        schema_version: current_version(event.event_type()),
        payload: RawPayload::from(&payload),
        metadata,
    })
}

/// The top-level payload field of an event type that holds personal data
/// (R-LIFE-06): its [`PersonalData`](crate::PersonalData), or the name of a
/// signed-in device (devices are named after their owner: "Ann's laptop").
pub fn personal_field(event_type: &str) -> Option<&'static str> {
    match event_type {
        "OrganizationCreated" => Some("owner_personal"),
        "UserInvited" | "UserProvisioned" | "InvitationAccepted" | "ProfileUpdated" => {
            Some("personal")
        }
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
        | Event::UserProvisioned { personal, .. }
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
    let mut payload = payload(event)?;
    if let (Some(subject), Some(field), Value::Object(map)) = (
        personal_subject(event),
        personal_field(event.event_type()),
        &mut payload,
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
    encode_value(event, event_id, metadata, payload)
}

/// Whether a stored payload's text may hold a sealed field, decided without
/// parsing it: it must spell [`erasure::SEALED_TAG`], either plainly or
/// through `\u` escapes (the only escape that could hide a character of
/// `$sealed`). `false` is certain; `true` sends the payload down the slow
/// path, which parses it into a `Value` and looks. The writers here never
/// escape but control characters, so a payload without sealed data almost
/// never takes that path.
pub fn may_hold_sealed(payload: &RawValue) -> bool {
    let text = payload.get();
    text.contains(erasure::SEALED_TAG) || text.contains("\\u")
}

/// Users whose keys are needed to open the sealed fields of `payload`. Only
/// payloads that [`may_hold_sealed`] are parsed.
pub fn sealed_subjects(payload: &RawPayload) -> Vec<UserId> {
    if !may_hold_sealed(payload.as_raw()) {
        return Vec::new();
    }
    if let Some(subjects) = sealed_subjects_text(payload.get()) {
        return subjects;
    }
    match payload.to_value() {
        Ok(value) => sealed_subjects_value(&value),
        // Not JSON: the decoder reports it.
        Err(_) => Vec::new(),
    }
}

/// [`sealed_subjects`] read from the text, without a `Value`, when every
/// field that may be sealed is in the shape [`erasure::seal`] writes and
/// no key is given twice; `None` sends the payload to the tree. In the
/// tree's order (by key).
fn sealed_subjects_text(text: &str) -> Option<Vec<UserId>> {
    let TopFields(fields) = serde_json::from_str(text).ok()?;
    if has_duplicate_key(&fields) {
        return None;
    }
    let mut found = Vec::new();
    for (key, value) in &fields {
        if may_be_sealed(value.get()) {
            let SealedText(sealed) = serde_json::from_str(value.get()).ok()?;
            found.push((key, sealed.subject));
        }
    }
    found.sort_by(|a, b| a.0.cmp(b.0));
    Some(found.into_iter().map(|(_, subject)| subject).collect())
}

/// [`sealed_subjects`] of a payload already parsed.
pub fn sealed_subjects_value(payload: &Value) -> Vec<UserId> {
    match payload {
        Value::Object(map) => map.values().filter_map(erasure::sealed_subject).collect(),
        _ => Vec::new(),
    }
}

/// Opens every sealed top-level field of a raw payload, as
/// [`open_payload`] does for a parsed one; a payload that cannot hold a
/// sealed field ([`may_hold_sealed`]) is left as it is, unparsed. For
/// readers that hand out opened envelopes (the service's history).
pub fn open_raw_payload(
    payload: &mut RawPayload,
    event_type: &str,
    org: OrgId,
    event_id: EventId,
    keys: &KeyRing,
) -> Result<(), DecodeError> {
    if !may_hold_sealed(payload.as_raw()) {
        return Ok(());
    }
    let Ok(mut value) = payload.to_value() else {
        // Not JSON (a store cannot hold that): left for the decoder to report.
        return Ok(());
    };
    if !has_sealed_field(&value) {
        return Ok(());
    }
    open_payload(&mut value, event_type, org, event_id, keys)?;
    *payload = RawPayload::from(&value);
    Ok(())
}

fn has_sealed_field(payload: &Value) -> bool {
    payload
        .as_object()
        .is_some_and(|m| m.values().any(erasure::is_sealed))
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
///
/// A payload at its type's current schema version that holds no sealed
/// field (nearly every event) is deserialized straight from its text into
/// the event ([`decode_payload_raw`]), in one pass. One with sealed fields
/// has them opened in its text (the plaintext spliced in place of each
/// sealed object) and is then decoded the same way, with no `Value`. An
/// older version (upcasters work on a `Value`), or a sealed payload in any
/// shape but the one the sealing writes or that does not open, goes through
/// a `Value` tree, which defines every result and error.
pub fn decode_with(recorded: &RecordedEvent, keys: &KeyRing) -> Result<Event, DecodeError> {
    decode_parts(
        &recorded.event_type,
        recorded.schema_version,
        recorded.stream,
        recorded.event_id,
        recorded.payload.as_raw(),
        keys,
    )
}

/// [`decode_with`], consuming the recorded event. Reading from raw text
/// copies every string out of it either way, so this costs what
/// [`decode_with`] does; it stays for readers that own their page.
pub fn decode_owned(recorded: RecordedEvent, keys: &KeyRing) -> Result<Event, DecodeError> {
    decode_with(&recorded, keys)
}

fn decode_parts(
    event_type: &str,
    version: u32,
    org: OrgId,
    event_id: EventId,
    payload: &RawValue,
    keys: &KeyRing,
) -> Result<Event, DecodeError> {
    if version == current_version(event_type) {
        if !may_hold_sealed(payload) {
            return decode_current_raw(event_type, version, payload.get());
        }
        // Sealed fields opened in the text, then the fast path; anything out
        // of the ordinary (malformed, tampered, duplicate keys, a decoding
        // error) is left to the tree below, which defines the result.
        if let Some(opened) = open_in_text(event_type, org, event_id, payload, keys) {
            if let Ok(event) = decode_current_raw(event_type, version, &opened) {
                return Ok(event);
            }
        }
    }
    let mut value = parse_payload(event_type, version, payload)?;
    open_payload(&mut value, event_type, org, event_id, keys)?;
    decode_payload_value(event_type, version, value)
}

fn parse_payload(event_type: &str, version: u32, payload: &RawValue) -> Result<Value, DecodeError> {
    serde_json::from_str(payload.get()).map_err(|e| DecodeError::Malformed {
        event_type: event_type.to_owned(),
        version,
        reason: json_error_shape(&e),
    })
}

/// A payload's text with its sealed top-level fields opened in place: the
/// plaintext (JSON text itself) spliced where the sealed object was, or
/// the erased value where the key is missing. Every other field is copied
/// as it was written. `None` when the payload is out of the ordinary — not
/// an object, a key given twice (the tree keeps the last, the text would
/// refuse), a field that may be sealed but is not in the exact shape
/// [`erasure::seal`] writes, a field that does not open or whose plaintext
/// is not one JSON value —: the caller then takes the tree path, which
/// reports or tolerates each case as it always did.
///
/// No `Value` is built: the top level is read as borrowed `&RawValue`s,
/// the sealed object into borrowed slices, and the opened field is never
/// parsed but for validation.
fn open_in_text(
    event_type: &str,
    org: OrgId,
    event_id: EventId,
    payload: &RawValue,
    keys: &KeyRing,
) -> Option<String> {
    let text = payload.get();
    let TopFields(fields) = serde_json::from_str(text).ok()?;
    if has_duplicate_key(&fields) {
        return None;
    }
    let mut out = String::with_capacity(text.len());
    out.push('{');
    for (i, (key, value)) in fields.iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        push_key(&mut out, key)?;
        out.push(':');
        let raw = value.get();
        if !may_be_sealed(raw) {
            out.push_str(raw);
            continue;
        }
        let SealedText(sealed) = serde_json::from_str(raw).ok()?;
        if sealed.v != 1 {
            return None;
        }
        let Some(key) = keys.get(sealed.subject) else {
            out.push_str(erased_text(event_type));
            continue;
        };
        let aad = erasure::associated_data(org, sealed.subject, event_id);
        let plain = erasure::open_hex(
            key,
            &aad,
            sealed.subject,
            Some(sealed.nonce),
            Some(sealed.ct),
        )
        .ok()?;
        let plain = std::str::from_utf8(&plain).ok()?;
        // One JSON value, nothing after it: what the tree path parses.
        serde_json::from_str::<&RawValue>(plain).ok()?;
        out.push_str(plain);
    }
    out.push('}');
    Some(out)
}

/// Whether a top-level field's text may be a sealed object: an object
/// that spells the tag plainly or may spell it through `\u` escapes.
fn may_be_sealed(raw: &str) -> bool {
    raw.trim_start().starts_with('{') && (raw.contains(erasure::SEALED_TAG) || raw.contains("\\u"))
}

/// [`erased_value`] as JSON text.
fn erased_text(event_type: &str) -> &'static str {
    match event_type {
        "DeviceSignedIn" => "\"\"",
        _ => "{}",
    }
}

fn has_duplicate_key(fields: &[(Cow<'_, str>, &RawValue)]) -> bool {
    fields
        .iter()
        .enumerate()
        .any(|(i, (k, _))| fields[..i].iter().any(|(other, _)| other == k))
}

/// Writes a key as a JSON string: as it is when nothing in it needs an
/// escape (the usual case), else escaped by serde_json.
fn push_key(out: &mut String, key: &str) -> Option<()> {
    if key.bytes().all(|b| b >= 0x20 && b != b'"' && b != b'\\') {
        out.push('"');
        out.push_str(key);
        out.push('"');
    } else {
        out.push_str(&serde_json::to_string(key).ok()?);
    }
    Some(())
}

/// The top-level fields of a payload object, in the order written: each
/// key (borrowed from the text unless it holds an escape) and the value's text.
struct TopFields<'a>(Vec<(Cow<'a, str>, &'a RawValue)>);

impl<'de> Deserialize<'de> for TopFields<'de> {
    fn deserialize<D: de::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct Fields;
        impl<'de> de::Visitor<'de> for Fields {
            type Value = TopFields<'de>;
            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("a payload object")
            }
            fn visit_map<A: de::MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
                let mut fields = Vec::with_capacity(map.size_hint().unwrap_or(8));
                while let Some(key) = map.next_key_seed(KeyText)? {
                    fields.push((key, map.next_value::<&'de RawValue>()?));
                }
                Ok(TopFields(fields))
            }
        }
        deserializer.deserialize_map(Fields)
    }
}

/// A map key, borrowed from the text when it can be.
struct KeyText;

impl<'de> de::DeserializeSeed<'de> for KeyText {
    type Value = Cow<'de, str>;
    fn deserialize<D: de::Deserializer<'de>>(
        self,
        deserializer: D,
    ) -> Result<Self::Value, D::Error> {
        deserializer.deserialize_str(self)
    }
}

impl<'de> de::Visitor<'de> for KeyText {
    type Value = Cow<'de, str>;
    fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("a key")
    }
    fn visit_borrowed_str<E: de::Error>(self, v: &'de str) -> Result<Self::Value, E> {
        Ok(Cow::Borrowed(v))
    }
    fn visit_str<E: de::Error>(self, v: &str) -> Result<Self::Value, E> {
        Ok(Cow::Owned(v.to_owned()))
    }
    fn visit_string<E: de::Error>(self, v: String) -> Result<Self::Value, E> {
        Ok(Cow::Owned(v))
    }
}

/// A sealed object read from its text, in exactly the shape
/// [`erasure::seal`] writes: `{"$sealed": {"v", "subject", "nonce", "ct"}}`,
/// no other key, none twice, hex without escapes. Anything else fails, and
/// the caller leaves the payload to the tree path.
struct SealedText<'a>(SealedParts<'a>);

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct SealedParts<'a> {
    v: u64,
    subject: UserId,
    nonce: &'a str,
    ct: &'a str,
}

impl<'de> Deserialize<'de> for SealedText<'de> {
    fn deserialize<D: de::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct Sealed;
        impl<'de> de::Visitor<'de> for Sealed {
            type Value = SealedText<'de>;
            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("a sealed object")
            }
            fn visit_map<A: de::MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
                match map.next_key_seed(KeyText)? {
                    Some(tag) if tag == erasure::SEALED_TAG => {}
                    _ => return Err(de::Error::custom("not a sealed object")),
                }
                let parts: SealedParts<'de> = map.next_value()?;
                if map.next_key::<de::IgnoredAny>()?.is_some() {
                    return Err(de::Error::custom("not a sealed object"));
                }
                Ok(SealedText(parts))
            }
        }
        deserializer.deserialize_map(Sealed)
    }
}

/// Reads a stored raw payload of type `event_type` at `version` as a
/// current [`Event`], without opening sealed fields (see [`decode_with`]).
/// At the current version the text is deserialized straight into the
/// event, with no `Value` in between; an older one is parsed and upcast.
pub fn decode_payload_raw(
    event_type: &str,
    version: u32,
    payload: &RawValue,
) -> Result<Event, DecodeError> {
    if version == current_version(event_type) {
        decode_current_raw(event_type, version, payload.get())
    } else {
        decode_payload_value(
            event_type,
            version,
            parse_payload(event_type, version, payload)?,
        )
    }
}

/// The fast path: a payload at the current version, deserialized from its
/// text into the externally tagged twin [`crate::event::Tagged`] through
/// [`OneVariant`], which presents `{"<type>": payload}` without building it.
fn decode_current_raw(event_type: &str, version: u32, text: &str) -> Result<Event, DecodeError> {
    let malformed = |reason: String| DecodeError::Malformed {
        event_type: event_type.to_owned(),
        version,
        reason,
    };
    // As on the `Value` path: only an object is a payload (serde would also
    // read a struct variant from an array, by position).
    if !text.trim_start().starts_with('{') {
        return Err(malformed("payload is not an object".into()));
    }
    let mut de = serde_json::Deserializer::from_str(text);
    let tagged = crate::event::Tagged::deserialize(OneVariant {
        name: event_type,
        de: &mut de,
    })
    .and_then(|t| de.end().map(|()| t))
    .map_err(|e| malformed(json_error_shape(&e)))?;
    Ok(Event::from(tagged))
}

/// A deserializer of an externally tagged enum that reads the variant's
/// name from `name` and its content from `de`: `{"<name>": <de's value>}`
/// without the map, so that a stored payload is read in one pass from its
/// own text. An unknown name is serde's "unknown variant" error.
struct OneVariant<'a, 'de> {
    name: &'a str,
    de: &'a mut serde_json::Deserializer<serde_json::de::StrRead<'de>>,
}

impl<'de> de::Deserializer<'de> for OneVariant<'_, 'de> {
    type Error = serde_json::Error;

    fn deserialize_any<V: de::Visitor<'de>>(self, visitor: V) -> Result<V::Value, Self::Error> {
        visitor.visit_enum(self)
    }

    serde::forward_to_deserialize_any! {
        bool i8 i16 i32 i64 i128 u8 u16 u32 u64 u128 f32 f64 char str string
        bytes byte_buf option unit unit_struct newtype_struct seq tuple
        tuple_struct map struct enum identifier ignored_any
    }
}

impl<'de> de::EnumAccess<'de> for OneVariant<'_, 'de> {
    type Error = serde_json::Error;
    type Variant = Self;

    fn variant_seed<V: de::DeserializeSeed<'de>>(
        self,
        seed: V,
    ) -> Result<(V::Value, Self), Self::Error> {
        let name: de::value::StrDeserializer<'_, serde_json::Error> = self.name.into_deserializer();
        Ok((seed.deserialize(name)?, self))
    }
}

impl<'de> de::VariantAccess<'de> for OneVariant<'_, 'de> {
    type Error = serde_json::Error;

    fn unit_variant(self) -> Result<(), Self::Error> {
        de::IgnoredAny::deserialize(self.de).map(|_| ())
    }

    fn newtype_variant_seed<T: de::DeserializeSeed<'de>>(
        self,
        seed: T,
    ) -> Result<T::Value, Self::Error> {
        seed.deserialize(self.de)
    }

    fn tuple_variant<V: de::Visitor<'de>>(
        self,
        _len: usize,
        visitor: V,
    ) -> Result<V::Value, Self::Error> {
        de::Deserializer::deserialize_seq(self.de, visitor)
    }

    fn struct_variant<V: de::Visitor<'de>>(
        self,
        fields: &'static [&'static str],
        visitor: V,
    ) -> Result<V::Value, Self::Error> {
        de::Deserializer::deserialize_struct(self.de, "", fields, visitor)
    }
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

    /// `e` sealed under `key` for the place of `r` (its stream and event id).
    fn sealed_under(e: &Event, r: &RecordedEvent, key: &DataKey) -> NewEvent {
        encode_sealed(
            e,
            r.stream,
            r.event_id,
            r.metadata.clone(),
            Sealing::Seal {
                key,
                nonce: [1; 32],
            },
        )
        .expect("encodes")
    }

    fn recorded(event_type: &str, version: u32, payload: RawPayload) -> RecordedEvent {
        RecordedEvent {
            stream: OrgId::from_uuid(uuid::Uuid::from_u128(10)),
            version: 1,
            position: crate::store::Position::new(1, 1),
            event_id: EventId::from_uuid(uuid::Uuid::from_u128(11)),
            event_type: event_type.to_owned(),
            schema_version: version,
            payload,
            metadata: EventMetadata {
                actor: crate::Actor::System,
                occurred_at: chrono::DateTime::UNIX_EPOCH,
                command_id: None,
                causation_id: None,
                correlation_id: None,
            },
        }
    }

    fn raw(text: &str) -> RawPayload {
        RawPayload::from_json(text.to_owned()).expect("valid JSON")
    }

    #[test]
    fn the_text_decodes_as_the_tree_does_in_any_spelling() {
        let e = device_signed_in();
        let p = payload(&e).expect("encodes");
        let compact = RawPayload::from(&p);
        assert_eq!(
            decode_payload_raw("DeviceSignedIn", 2, compact.as_raw()),
            Ok(e.clone())
        );
        // As PostgreSQL's jsonb gives it back: keys reordered, spaces.
        let spaced = raw(
            r#" { "device_name": "Pixel 9", "user": "00000000-0000-0000-0000-000000000001",
                "signed_in_at": "1970-01-01T00:00:00Z",
                "device": "00000000-0000-0000-0000-000000000002" } "#,
        );
        assert_eq!(spaced, compact, "payloads compare by value");
        assert_eq!(
            decode(&recorded("DeviceSignedIn", 2, spaced)),
            Ok(e.clone())
        );
        // Old versions take the tree and are upcast.
        let v1 = RawPayload::from(json!({
            "user": "00000000-0000-0000-0000-000000000001",
            "device": "00000000-0000-0000-0000-000000000002",
            "name": "Pixel 9", "at": "1970-01-01T00:00:00Z",
        }));
        assert_eq!(decode(&recorded("DeviceSignedIn", 1, v1)), Ok(e));
    }

    #[test]
    fn bad_stored_text_is_a_typed_error() {
        let malformed = |ty: &str, text: &str| {
            let r = decode(&recorded(ty, current_version(ty), raw(text)));
            assert!(
                matches!(r, Err(DecodeError::Malformed { .. })),
                "{ty} {text}: {r:?}"
            );
        };
        malformed("DeviceSignedIn", "[1, 2]");
        malformed("DeviceSignedIn", "null");
        malformed("DeviceSignedIn", "\"x\"");
        malformed("DeviceSignedIn", "{}");
        malformed("DeviceSignedIn", r#"{"user": 5}"#);
        malformed("NoSuchEvent", "{}");
        let p = payload(&device_signed_in()).expect("encodes");
        let text = RawPayload::from(&p).get().to_owned();
        // A field given twice: the tree kept the last, the text refuses.
        let twice = text.replacen('{', r#"{"device_name": "x", "#, 1);
        malformed("DeviceSignedIn", &twice);
        // Numbers, escapes and nesting do not panic either.
        malformed("UserActivated", r#"{"user": 1e999999}"#);
        malformed("UserActivated", r#"{"user": "\u0000"}"#);
        let deep = format!("{{\"user\": {}{}}}", "[".repeat(100), "]".repeat(100));
        malformed("UserActivated", &deep);
        assert!(matches!(
            decode(&recorded("DeviceSignedIn", 3, raw("{}"))),
            Err(DecodeError::UnknownVersion { version: 3, .. })
        ));
    }

    #[test]
    fn sealed_fields_open_whichever_way_the_tag_is_spelled() {
        let e = device_signed_in();
        let user = UserId::from_uuid(uuid::Uuid::from_u128(1));
        let key = DataKey::from_bytes([4; 32]);
        let r = recorded("DeviceSignedIn", 2, raw("{}"));
        let sealed = sealed_under(&e, &r, &key);
        assert!(sealed.payload.get().contains(erasure::SEALED_TAG));
        // `$` written as an escape: no plain tag in the text, still sealed.
        let escaped = raw(&sealed
            .payload
            .get()
            .replace("\"$sealed\"", r#""\u0024sealed""#));
        assert!(!escaped.get().contains(erasure::SEALED_TAG));
        let ring = KeyRing::new([(user, key)].into());
        for payload in [sealed.payload, escaped] {
            assert_eq!(sealed_subjects(&payload), vec![user]);
            let mut r = recorded("DeviceSignedIn", 2, payload);
            assert_eq!(decode_with(&r, &ring), Ok(e.clone()));
            // Without the key: erased.
            let Ok(Event::DeviceSignedIn { name, .. }) = decode(&r) else {
                panic!("decodes");
            };
            assert!(name.is_empty());
            // Opened in place, as the service's history hands it out.
            open_raw_payload(
                &mut r.payload,
                "DeviceSignedIn",
                r.stream,
                r.event_id,
                &ring,
            )
            .expect("opens");
            assert!(!may_hold_sealed(r.payload.as_raw()));
            assert_eq!(decode(&r), Ok(e.clone()));
        }
    }

    /// A provisioned user's sign-in name and email are sealed like any
    /// profile (R-USR-04, R-LIFE-06): not in the stored text, back with the
    /// key, empty without it.
    #[test]
    fn r_life_06_a_provisioned_users_name_and_email_are_sealed() {
        let user = UserId::from_uuid(uuid::Uuid::from_u128(1));
        let e = Event::UserProvisioned {
            user,
            personal: crate::PersonalData {
                email: Some("dana@northwind.example".into()),
                sign_in_name: Some("dana.idp".into()),
                ..crate::PersonalData::default()
            },
            default_country: Some("US".into()),
            grant: crate::Grant {
                role: crate::RoleId::new(crate::RoleId::AGENT),
                accounts: vec![],
                agency_admin: false,
                clients: vec![],
            },
        };
        assert_eq!(personal_subject(&e), Some(user));
        assert_eq!(personal_field(e.event_type()), Some("personal"));
        let key = DataKey::from_bytes([4; 32]);
        let r = recorded("UserProvisioned", 1, raw("{}"));
        let sealed = sealed_under(&e, &r, &key);
        let text = sealed.payload.get();
        assert!(text.contains(erasure::SEALED_TAG), "{text}");
        assert!(!text.contains("dana"), "{text}");
        let r = recorded("UserProvisioned", 1, sealed.payload);
        let ring = KeyRing::new([(user, key)].into());
        assert_eq!(decode_with(&r, &ring), Ok(e));
        let Ok(Event::UserProvisioned { personal, .. }) = decode(&r) else {
            panic!("decodes");
        };
        assert!(personal.is_empty(), "erased without the key");
    }

    /// A sealed payload decodes to the event the whole-tree path gives
    /// (opened in the tree, then decoded from it).
    #[test]
    fn sealed_payloads_decode_as_through_the_tree() {
        let e = device_signed_in();
        let user = UserId::from_uuid(uuid::Uuid::from_u128(1));
        let key = DataKey::from_bytes([4; 32]);
        let r = recorded("DeviceSignedIn", 2, raw("{}"));
        let sealed = sealed_under(&e, &r, &key);
        let ring = KeyRing::new([(user, key)].into());
        let mut tree = sealed.payload.to_value().expect("json");
        open_payload(&mut tree, "DeviceSignedIn", r.stream, r.event_id, &ring).expect("opens");
        let through_tree = decode_payload_value("DeviceSignedIn", 2, tree);
        let r = recorded("DeviceSignedIn", 2, sealed.payload.clone());
        assert_eq!(decode_with(&r, &ring), through_tree);
        assert_eq!(through_tree, Ok(e));
    }

    /// Sealed fields are opened in the payload's text when it is in the
    /// shape the sealing writes; every other spelling goes to the tree.
    /// Either way the result is the tree's, error or event, and so are the
    /// subjects whose keys are asked for.
    #[test]
    fn opening_in_the_text_gives_what_the_tree_gives_for_any_input() {
        let e = device_signed_in();
        let user = UserId::from_uuid(uuid::Uuid::from_u128(1));
        let key = DataKey::from_bytes([4; 32]);
        let r = recorded("DeviceSignedIn", 2, raw("{}"));
        let sealed = sealed_under(&e, &r, &key);
        let text = sealed.payload.get().to_owned();
        let tree = sealed.payload.to_value().expect("json");
        let blob = tree["device_name"]["$sealed"].clone();
        let ct = blob["ct"].as_str().expect("hex").to_owned();
        let nonce = blob["nonce"].as_str().expect("hex").to_owned();
        // A blob that opens to bytes that are not JSON, and one that is not UTF-8.
        let hex = |b: &[u8]| b.iter().map(|x| format!("{x:02x}")).collect::<String>();
        let aad = erasure::associated_data(r.stream, user, r.event_id);
        let bytes_blob = |msg: &[u8]| {
            let (n, c) = erasure::seal_bytes(&key, &[2; 32], &aad, msg).expect("seals");
            text.replace(&nonce, &hex(&n)).replace(&ct, &hex(&c))
        };
        let mut flipped = ct.clone();
        flipped.replace_range(..1, if ct.starts_with('0') { "1" } else { "0" });
        let variants = [
            text.clone(),
            text.replace("\"$sealed\"", r#""\u0024sealed""#),
            serde_json::to_string_pretty(&tree).expect("json"),
            text.replacen('{', r#"{"device_name": "x", "#, 1),
            text.replacen('{', r#"{"device_name": "x", "#, 1).replacen(
                r#""device_name":{"#,
                r#""device_name":"y","z":{"#,
                1,
            ),
            text.replace(&ct, &flipped),
            text.replace(&ct, &ct.to_uppercase()),
            text.replace("\"v\":1", "\"v\":2"),
            text.replace("\"v\":1", "\"v\":1.0"),
            text.replace("\"v\":1", "\"v\":1,\"extra\":0"),
            text.replace("\"v\":1", "\"v\":1,\"v\":1"),
            text.replace(r#"{"$sealed""#, r#"{"other":1,"$sealed""#),
            text.replace(r#""nonce":""#, r#""nonce":"\u0030"#),
            text.replace(r#""subject":""#, r#""subject":"x"#),
            text.replace(r#","nonce":"#, r#","nonce":null,"n":"#),
            bytes_blob(b"\"Pixel 9\""),
            bytes_blob(b"\"Pixel 9\" trailing"),
            bytes_blob(b"not json"),
            bytes_blob(&[0xff, 0xfe]),
            bytes_blob(b"{\"a\": 1, \"a\": 2}"),
            r#"{"device_name": {"$sealed": 3}}"#.to_owned(),
            r#"{"a": {"b": {"$sealed": {}}}, "device_name": "n"}"#.to_owned(),
            "[{\"$sealed\": 1}]".to_owned(),
            text.replace(r#""user":"#, r#""\u0075ser":"#),
            text.replace(r#""user":"#, r#""us\"er":"#),
        ];
        let ring = KeyRing::new([(user, key.clone())].into());
        // Which are read from the text; the others go to the tree.
        for (i, text) in variants.iter().enumerate() {
            let opened = open_in_text(
                "DeviceSignedIn",
                r.stream,
                r.event_id,
                raw(text).as_raw(),
                &ring,
            );
            assert_eq!(
                opened.is_some(),
                [0, 1, 2, 15, 19, 23, 24].contains(&i),
                "{text}"
            );
            let subjects = sealed_subjects_text(text).is_some();
            assert_eq!(
                subjects,
                i < 3 || (5..=7).contains(&i) || (15..=19).contains(&i) || i > 22
            );
        }
        let rings = [ring, KeyRing::empty()];
        for text in variants {
            let payload = raw(&text);
            let value = payload.to_value().expect("json");
            assert_eq!(
                sealed_subjects(&payload),
                sealed_subjects_value(&value),
                "{text}"
            );
            for (event_id, ring) in [r.event_id, EventId::from_uuid(uuid::Uuid::from_u128(12))]
                .into_iter()
                .flat_map(|id| rings.iter().map(move |k| (id, k)))
            {
                let mut r = recorded("DeviceSignedIn", 2, payload.clone());
                r.event_id = event_id;
                let mut tree = value.clone();
                let through_tree =
                    open_payload(&mut tree, "DeviceSignedIn", r.stream, event_id, ring)
                        .and_then(|()| decode_payload_value("DeviceSignedIn", 2, tree));
                assert_eq!(decode_with(&r, ring), through_tree, "{text}");
            }
        }
    }

    #[test]
    fn raw_payloads_find_nul_hide_their_text_and_round_trip() {
        assert!(raw(r#"{"a": "x\u0000"}"#).contains_nul());
        assert!(raw(r#"{"\u0000": 1}"#).contains_nul());
        assert!(!raw(r#"{"a": "x\\u0000"}"#).contains_nul());
        assert!(!raw(r#"{"a": "\\\"u0000"}"#).contains_nul());
        assert!(raw(r#"["\\", "\u0000"]"#).contains_nul());
        assert!(!raw(r#"{"a": "\u0001"}"#).contains_nul());
        let p = raw(r#"{"email": "ann@example.com"}"#);
        assert_eq!(format!("{p:?}"), "RawPayload(<28 bytes>)");
        assert_ne!(p, raw(r#"{"email": "bob@example.com"}"#));
        let text = serde_json::to_string(&p).expect("serializes");
        assert_eq!(text, p.get());
        let back: RawPayload = serde_json::from_str(&text).expect("deserializes");
        assert_eq!(back.get(), p.get());
        let from_tree: RawPayload = serde_json::from_value(json!({"a": 1})).expect("from a tree");
        assert_eq!(from_tree, raw(r#"{ "a" : 1 }"#));
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
