//! Builders shared by the suite and by store crates' own tests.

use crate::context::Actor;
use crate::ids::{CommandId, EventId, OrgId, UserId};
use crate::store::{
    AppendOutcome, AppendRequest, ClaimChange, ClaimKey, EventMetadata, ExpectedVersion, NewEvent,
    Position, RecordedEvent,
};
use chrono::DateTime;
use std::future::Future;
use std::pin::Pin;

/// A boxed task handed to a spawner.
pub type BoxFuture = Pin<Box<dyn Future<Output = ()> + Send + 'static>>;

/// Runs a task concurrently (e.g. `tokio::spawn`) and returns a future that
/// completes when the task has finished (and panics if the task panicked).
pub type Spawner = dyn Fn(BoxFuture) -> BoxFuture + Send + Sync;

/// A deterministic organization id.
pub fn org(n: u128) -> OrgId {
    OrgId::from_uuid(uuid::Uuid::from_u128(
        0x0_5b00_0000_0000_0000_0000_0000_0000 + n,
    ))
}

/// A deterministic event id.
pub fn event_id(n: u128) -> EventId {
    EventId::from_uuid(uuid::Uuid::from_u128(0xe_0000_0000_0000_0000_0000_0000 + n))
}

/// A deterministic command id.
pub fn command_id(n: u128) -> CommandId {
    CommandId::from_uuid(uuid::Uuid::from_u128(0xc_0000_0000_0000_0000_0000_0000 + n))
}

/// A phone-number claim key.
pub fn phone(n: u32) -> ClaimKey {
    ClaimKey::new("phone_number", format!("+1415555{n:04}"))
}

/// A small event whose payload names its id.
pub fn event(n: u128) -> NewEvent {
    NewEvent {
        event_id: event_id(n),
        event_type: "Noted".into(),
        schema_version: 1,
        payload: serde_json::json!({ "n": n.to_string(), "text": "hello" }).into(),
        metadata: EventMetadata {
            actor: Actor::System,
            occurred_at: DateTime::UNIX_EPOCH,
            command_id: None,
            causation_id: None,
            correlation_id: None,
        },
    }
}

/// An event with every metadata field set (for round-trip checks).
pub fn rich_event(n: u128) -> NewEvent {
    let mut e = event(n);
    e.event_type = "UserInvited".into();
    e.schema_version = 3;
    e.payload = serde_json::json!({
        "email": "ada@example.com",
        "nested": {"list": [1, 2.5, null, true, "x"], "unicode": "é✓"},
    })
    .into();
    e.metadata = EventMetadata {
        actor: Actor::User {
            id: UserId::from_uuid(uuid::Uuid::from_u128(77)),
        },
        occurred_at: DateTime::from_timestamp(1_700_000_000, 123_456_000)
            .unwrap_or(DateTime::UNIX_EPOCH),
        command_id: Some(command_id(n)),
        causation_id: Some(uuid::Uuid::from_u128(88)),
        correlation_id: Some(uuid::Uuid::from_u128(99)),
    };
    e
}

/// An append of `events` to `stream` with no command id and no claims.
pub fn append(stream: OrgId, expected: ExpectedVersion, events: Vec<NewEvent>) -> AppendRequest {
    AppendRequest {
        stream,
        expected,
        command_id: None,
        command_digest: None,
        events,
        claims: Vec::new(),
        keys: Vec::new(),
    }
}

/// An append of one event that also changes claims.
pub fn append_with_claims(
    stream: OrgId,
    expected: ExpectedVersion,
    event_n: u128,
    claims: Vec<ClaimChange>,
) -> AppendRequest {
    AppendRequest {
        claims,
        ..append(stream, expected, vec![event(event_n)])
    }
}

/// The event with its position erased, for comparing stores whose positions differ.
pub fn without_position(mut e: RecordedEvent) -> RecordedEvent {
    e.position = Position::new(0, 0);
    e
}

/// The outcome with its positions erased.
pub fn outcome_without_positions(mut o: AppendOutcome) -> AppendOutcome {
    o.first_position = Position::new(0, 0);
    o.last_position = Position::new(0, 0);
    o
}
