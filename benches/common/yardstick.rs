//! The plain-SQL yardstick of the append benches (`benches/postgres.rs` and
//! `benches/peers`): one batched `INSERT` into `plain_events`, prepared once
//! and sent with binary parameters, as the store's own statements are.

use switchboard::store::NewEvent;
use switchboard::EventId;
use tokio_postgres::types::{Json, ToSql};
use tokio_postgres::{Client, Statement};

/// `events` re-issued with fresh event ids (the store refuses duplicates).
pub fn fresh(events: &[NewEvent]) -> Vec<NewEvent> {
    events
        .iter()
        .map(|e| NewEvent {
            event_id: EventId::from_uuid(uuid::Uuid::now_v7()),
            ..e.clone()
        })
        .collect()
}

/// One plain batched INSERT of `events` as versions `from..` of `stream`,
/// through a statement prepared once (binary parameters, one round trip —
/// what the store's `prepare_cached` path pays too).
pub async fn plain_insert(
    client: &Client,
    insert: &Statement,
    stream: uuid::Uuid,
    from: i64,
    events: &[NewEvent],
) {
    let n = events.len();
    let streams = vec![stream; n];
    let versions: Vec<i64> = (0..n as i64).map(|i| from + i).collect();
    let ids: Vec<uuid::Uuid> = events.iter().map(|e| e.event_id.as_uuid()).collect();
    let types: Vec<&str> = events.iter().map(|e| e.event_type.as_str()).collect();
    let schemas: Vec<i64> = events.iter().map(|e| i64::from(e.schema_version)).collect();
    // The payloads' text as `jsonb`, as the store sends it.
    let payloads: Vec<Json<&serde_json::value::RawValue>> =
        events.iter().map(|e| Json(e.payload.as_raw())).collect();
    let actors: Vec<serde_json::Value> = events
        .iter()
        .map(|e| serde_json::to_value(&e.metadata.actor).unwrap_or_default())
        .collect();
    let at: Vec<chrono::DateTime<chrono::Utc>> =
        events.iter().map(|e| e.metadata.occurred_at).collect();
    let commands: Vec<Option<uuid::Uuid>> = events
        .iter()
        .map(|e| e.metadata.command_id.map(|c| c.as_uuid()))
        .collect();
    let causes: Vec<Option<uuid::Uuid>> = events.iter().map(|e| e.metadata.causation_id).collect();
    let correlations: Vec<Option<uuid::Uuid>> =
        events.iter().map(|e| e.metadata.correlation_id).collect();
    let params: [&(dyn ToSql + Sync); 11] = [
        &streams,
        &versions,
        &ids,
        &types,
        &schemas,
        &payloads,
        &actors,
        &at,
        &commands,
        &causes,
        &correlations,
    ];
    if let Err(e) = client.execute(insert, &params).await {
        panic!("plain insert: {e}");
    }
}
