//! Schema versions of event payloads and the upcasting steps between them
//! (the log's promise that old events stay readable forever). Plain data
//! about JSON payloads: no `Event`, so that `Event::schema_version` and the
//! codec can both depend on it.

use serde_json::Value;

/// One upcasting step: a payload of `event_type` at `from` becomes version `from + 1`.
pub struct Upcaster {
    /// The event type.
    pub event_type: &'static str,
    /// The version it reads.
    pub from: u32,
    /// The transformation.
    pub apply: fn(Value) -> Result<Value, String>,
}

/// Every upcasting step, all types. Add one when an event's shape changes:
/// the type's current version ([`current_version`], [`Event::schema_version`](crate::Event::schema_version))
/// is 1 plus its number of steps, so adding a step is the version bump.
///
/// History:
/// * `DeviceSignedIn` v1 → v2: `name` became `device_name` (a field called
///   `name` on a user's event reads as the user's personal name, which
///   erasure reviews must tell apart) and `at` became `signed_in_at` (as in
///   the state's `DeviceSession`).
pub static UPCASTERS: &[Upcaster] = &[Upcaster {
    event_type: "DeviceSignedIn",
    from: 1,
    apply: device_signed_in_v1_to_v2,
}];

/// Renames a payload field; the old one must exist and the new one must not.
fn rename_field(payload: &mut Value, from: &str, to: &str) -> Result<(), String> {
    let Value::Object(map) = payload else {
        return Err("payload is not an object".into());
    };
    if map.contains_key(to) {
        return Err(format!("field {to:?} already present"));
    }
    let value = map
        .remove(from)
        .ok_or_else(|| format!("missing field {from:?}"))?;
    map.insert(to.to_owned(), value);
    Ok(())
}

fn device_signed_in_v1_to_v2(mut payload: Value) -> Result<Value, String> {
    rename_field(&mut payload, "name", "device_name")?;
    rename_field(&mut payload, "at", "signed_in_at")?;
    Ok(payload)
}

/// The current schema version of an event type (1 unless an upcaster chain raises it).
pub fn current_version(event_type: &str) -> u32 {
    1 + UPCASTERS
        .iter()
        .filter(|u| u.event_type == event_type)
        .count() as u32
}
