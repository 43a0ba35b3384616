//! Decoding of stored payloads: `{"event_type": …, "schema_version": …,
//! "payload": …}` through `codec::decode_payload` (a parsed tree) and
//! `codec::decode_payload_raw` (the raw text, as stores hand it out), which
//! must agree, and as a recorded event
//! through `decode` (no keys: sealed fields read as erased) and `decode_with`
//! (a key ring holding the known key for every sealed subject), upcasting
//! included.
//!
//! Checks: a decoded event is of the type it was stored as, at the current
//! version, and decode → encode → decode gives it back; sealed under a key and
//! opened with it, it is unchanged.
#![no_main]
#![forbid(unsafe_code)]

use libfuzzer_sys::fuzz_target;
use serde_json::value::RawValue;
use serde_json::Value;
use std::collections::HashMap;
use switchboard_core::codec::{self, Sealing};
use switchboard_core::erasure::KeyRing;
use switchboard_core::store::{RawPayload, RecordedEvent};
use switchboard_core::Event;
use switchboard_fuzz::codec_seed::{known_key, metadata, recorded, EVENT, ORG};

fn check(event: &Event, event_type: &str) {
    assert_eq!(event.event_type(), event_type);
    assert_eq!(event.schema_version(), codec::current_version(event_type));
    switchboard_fuzz::check_roundtrip(event);
    let _ = codec::claims(std::slice::from_ref(event));
    let _ = switchboard_core::describe::describe(event, None);
    let _ = format!("{event:?}");
    // Sealed under the known key, opened with it: the same event.
    let sealed = codec::encode_sealed(
        event,
        ORG,
        EVENT,
        metadata(),
        Sealing::Seal {
            key: &known_key(),
            nonce: [7; 32],
        },
    )
    .expect("a decoded event encodes");
    let ring = KeyRing::new(
        codec::sealed_subjects(&sealed.payload)
            .into_iter()
            .map(|s| (s, known_key()))
            .collect::<HashMap<_, _>>(),
    );
    let rec = recorded(&sealed.event_type, sealed.schema_version, sealed.payload);
    assert_eq!(codec::decode_with(&rec, &ring).as_ref(), Ok(event));
    // Erased: decodes, whatever it held.
    let erased = codec::encode_sealed(event, ORG, EVENT, metadata(), Sealing::Erase)
        .expect("a decoded event encodes");
    let rec = recorded(&erased.event_type, erased.schema_version, erased.payload);
    codec::decode(&rec).expect("an erased event decodes");
}

fuzz_target!(|data: &[u8]| {
    // The envelope's fields, the payload kept as the raw text it was given
    // (its spelling — spaces, escapes, key order — is what the read path sees).
    let Ok(input) = serde_json::from_slice::<HashMap<String, Box<RawValue>>>(data) else {
        return;
    };
    let Some(event_type) = input
        .get("event_type")
        .and_then(|raw| serde_json::from_str::<String>(raw.get()).ok())
    else {
        return;
    };
    let event_type = event_type.as_str();
    let Some(version) = input
        .get("schema_version")
        .and_then(|raw| serde_json::from_str::<u32>(raw.get()).ok())
    else {
        return;
    };
    let raw = input
        .get("payload")
        .cloned()
        .unwrap_or_else(|| RawValue::NULL.to_owned());
    // (A tree may be refused where the text was not: serde_json's nesting limit.)
    let by_value = serde_json::from_str::<Value>(raw.get())
        .ok()
        .map(|payload| codec::decode_payload(event_type, version, &payload));
    if let Some(Ok(e)) = &by_value {
        check(e, event_type);
    }
    // From the text, straight into the event: what the tree gives, or an
    // error (the text path also refuses a key given twice).
    let by_text = codec::decode_payload_raw(event_type, version, &raw);
    if let (Ok(e), Some(by_value)) = (&by_text, &by_value) {
        assert_eq!(by_value.as_ref(), Ok(e), "text and tree decode differently");
        check(e, event_type);
    }
    let rec: RecordedEvent = recorded(event_type, version, RawPayload::from_raw(raw));
    let _ = codec::decode(&rec);
    let ring = KeyRing::new(
        codec::sealed_subjects(&rec.payload)
            .into_iter()
            .map(|s| (s, known_key()))
            .collect::<HashMap<_, _>>(),
    );
    if let Ok(e) = codec::decode_with(&rec, &ring) {
        check(&e, event_type);
    }
    let _ = codec::decode_owned(rec, &ring);
});
