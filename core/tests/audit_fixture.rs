//! Schema evolution: a frozen log of version-1 events must keep loading for ever.
//!
//! `fixtures/v1_history.jsonl` is the demo story (`audit::demo`) exported once,
//! when every event type was at schema version 1, and committed. It is never
//! regenerated: when an event's shape changes, its type's version goes up and
//! an upcaster in `codec::UPCASTERS` turns the old payloads into the new shape,
//! and this test proves the old file still decodes, folds and imports into the
//! same facts.

use std::sync::Arc;
use switchboard_core::audit::demo::DEMO_NUMBER;
use switchboard_core::service::CommandService;
use switchboard_core::store::RecordedEvent;
use switchboard_core::*;
use switchboard_store_memory::MemoryStore;

const FIXTURE: &str = include_str!("fixtures/v1_history.jsonl");

fn service() -> CommandService<MemoryStore> {
    CommandService::new(
        MemoryStore::new(),
        Arc::new(FixedClock::new(chrono::DateTime::UNIX_EPOCH)),
        Arc::new(SequentialIds::new(42)),
        Arc::new(SeededSecrets::new(42)),
    )
}

fn records() -> Vec<RecordedEvent> {
    FIXTURE
        .lines()
        .map(|l| serde_json::from_str(l).expect("a fixture line is a recorded event"))
        .collect()
}

#[test]
fn the_v1_fixture_is_frozen_at_schema_version_1() {
    let records = records();
    assert_eq!(records.len(), 22);
    assert!(records.iter().all(|r| r.schema_version == 1));
    // It covers an event type whose shape has changed since (so an upcaster runs).
    assert!(records
        .iter()
        .any(|r| codec::current_version(&r.event_type) > r.schema_version));
}

#[test]
fn every_v1_event_decodes_and_the_fold_has_the_expected_facts() {
    let records = records();
    let events: Vec<Event> = records
        .iter()
        .map(|r| codec::decode(r).expect("a v1 event decodes"))
        .collect();
    let org = records[0].stream;
    let state = fold(org, &events);
    assert_eq!(state.version, 22);
    assert_eq!(state.name, "Northwind");
    assert_eq!(state.users.len(), 4);
    let by_name = |n: &str| {
        state
            .users
            .values()
            .find(|u| u.profile.as_ref().and_then(|p| p.name.as_deref()) == Some(n))
            .unwrap_or_else(|| panic!("{n}"))
    };
    let ann = by_name("Ann Archer");
    assert_eq!(ann.email(), Some("ann@northwind.example"));
    assert_eq!(ann.status, UserStatus::Active);
    // DeviceSignedIn was upcast from v1: its device name and time are there.
    let device = ann.devices.values().next().expect("Ann's device session");
    assert_eq!(device.name, "work laptop");
    let bob = by_name("Bob Baker");
    assert_eq!(bob.status, UserStatus::Active);
    // Carl was deleted before the export: his id stays, his data was exported erased.
    let deleted = state.users_with_status(UserStatus::Deleted);
    assert_eq!(deleted.len(), 1);
    assert!(deleted[0].profile.is_none());
    assert!(!FIXTURE.contains("carl@northwind.example"));
    let number = &state.numbers[&PhoneNumber::new(DEMO_NUMBER)];
    assert_eq!(
        (number.assigned_to, number.forwarded_to),
        (None, Some(ann.id))
    );
}

#[tokio::test]
async fn the_v1_fixture_imports_and_loads_through_the_service() {
    let service = service();
    let report = service
        .import_jsonl(&mut std::io::Cursor::new(FIXTURE.as_bytes()))
        .await
        .expect("the v1 fixture imports");
    assert_eq!(report.events, 22);
    let loaded = service.load(report.org).await.expect("loads");
    let events: Vec<Event> = records()
        .iter()
        .map(|r| codec::decode(r).unwrap())
        .collect();
    assert_eq!(loaded, fold(report.org, &events));
    // Re-exported, every event is at its current version and reads the same.
    let mut out = Vec::new();
    service.export_jsonl(report.org, &mut out).await.unwrap();
    let again: Vec<RecordedEvent> = String::from_utf8(out)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    // The fixture deletes one user: the device names that user signed in
    // with (in clear in version 1, when device names were not yet sealed)
    // are sealed on import and erased with the user (R-LIFE-06).
    let deleted: Vec<UserId> = events
        .iter()
        .filter_map(|e| match e {
            Event::UserDeleted { user, .. } => Some(*user),
            _ => None,
        })
        .collect();
    assert_eq!(deleted.len(), 1);
    let mut erased = 0;
    for (old, new) in records().iter().zip(&again) {
        assert_eq!(new.schema_version, codec::current_version(&new.event_type));
        let mut expected = codec::decode(old).unwrap();
        if let Event::DeviceSignedIn { user, name, .. } = &mut expected {
            if deleted.contains(user) {
                name.clear();
                erased += 1;
            }
        }
        assert_eq!(expected, codec::decode(new).unwrap());
        assert_eq!((old.event_id, &old.metadata), (new.event_id, &new.metadata));
    }
    assert!(erased >= 1, "the deleted user signed in on a device");
}

/// Wrote the fixture once (`cargo test -p switchboard-core --test audit_fixture
/// -- --ignored`). It refuses to overwrite: the fixture is frozen.
#[tokio::test]
#[ignore = "generates the frozen fixture once; never regenerate it"]
async fn generate_v1_fixture() {
    let path = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/fixtures/v1_history.jsonl"
    );
    assert!(
        std::fs::read(path).map_or(true, |b| b.is_empty()),
        "the fixture is frozen: never regenerate it"
    );
    let clock = Arc::new(FixedClock::new(chrono::DateTime::UNIX_EPOCH));
    let ids = Arc::new(SequentialIds::new(1));
    let service = CommandService::new(
        MemoryStore::new(),
        clock.clone(),
        ids.clone(),
        Arc::new(SeededSecrets::new(1)),
    );
    let demo = switchboard_core::audit::demo::record(&service, &clock, ids.as_ref())
        .await
        .unwrap();
    let mut out = Vec::new();
    service.export_jsonl(demo.org, &mut out).await.unwrap();
    std::fs::write(path, out).unwrap();
}
