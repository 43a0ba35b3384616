//! Audit scenarios shared by the memory-store tests (core/tests/audit_memory.rs)
//! and the Postgres tests (tests/audit_postgres.rs in the facade package):
//! each takes fresh stores and asserts the same behaviour on them.
#![allow(dead_code)]

use std::sync::Arc;
use switchboard_core::audit::demo::{self, Demo, CARL_PERSONAL};
use switchboard_core::audit::{AsOf, Routing, Subject};
use switchboard_core::query::AccessVia;
use switchboard_core::service::{CommandService, ServiceConfig};
use switchboard_core::store::Store;
use switchboard_core::*;

/// A service over `store` with deterministic sources and frequent snapshots
/// (so that loads go through snapshot + tail and snapshots exist before a deletion).
pub fn new_service<S: Store>(
    store: S,
    seed: u64,
) -> (CommandService<S>, Arc<FixedClock>, Arc<SequentialIds>) {
    let clock = Arc::new(FixedClock::new(chrono::DateTime::UNIX_EPOCH));
    let ids = Arc::new(SequentialIds::new(seed));
    let service = CommandService::with_config(
        store,
        clock.clone(),
        ids.clone(),
        Arc::new(SeededSecrets::new(seed)),
        ServiceConfig {
            snapshot_every: 3,
            snapshot_events_per_entity: 0,
            ..ServiceConfig::default()
        },
    );
    (service, clock, ids)
}

/// Records the demo story on a fresh service over `store`.
pub async fn demo_on<S: Store>(store: S) -> (CommandService<S>, Demo) {
    let (service, clock, ids) = new_service(store, 11);
    let demo = demo::record(&service, &clock, ids.as_ref())
        .await
        .expect("the demo story is accepted");
    (service, demo)
}

/// Fails if `text` holds any of Carl's personal data.
pub fn assert_no_carl(text: &str, place: &str) {
    for needle in CARL_PERSONAL {
        assert!(
            !text.contains(needle),
            "{place} still holds {needle:?} after Carl's deletion"
        );
    }
}

/// As-of reads by version, position and instant agree, and answer what the story says.
pub async fn as_of_version_position_and_instant<S: Store>(store: S) {
    let (service, d) = demo_on(store).await;
    let now = service.load(d.org).await.unwrap();
    let log = service.history(d.org).await.unwrap();
    assert_eq!(log.len() as u64, now.version);
    for r in &log {
        let by_version = service
            .load_as_of(d.org, AsOf::Version(r.version))
            .await
            .unwrap();
        let by_position = service
            .load_as_of(d.org, AsOf::Position(r.position))
            .await
            .unwrap();
        assert_eq!(by_version.version, r.version);
        assert_eq!(
            by_position, by_version,
            "position {} = version {}",
            r.position, r.version
        );
        assert_eq!(
            by_version,
            service.load_at_version(d.org, r.version).await.unwrap()
        );
    }
    // An instant: the last event at or before it.
    for r in &log {
        let v = service
            .version_as_of(d.org, AsOf::Instant(r.metadata.occurred_at))
            .await
            .unwrap();
        let last_at_that_time = log
            .iter()
            .filter(|x| x.metadata.occurred_at <= r.metadata.occurred_at)
            .map(|x| x.version)
            .max()
            .unwrap();
        assert_eq!(v, last_at_that_time);
    }
    let before = service
        .load_as_of(
            d.org,
            AsOf::Instant(d.times.start - chrono::Duration::seconds(1)),
        )
        .await
        .unwrap();
    assert_eq!((before.version, before.created), (0, false));
    let after = service
        .load_as_of(
            d.org,
            AsOf::Instant(d.times.reactivated + chrono::Duration::days(365)),
        )
        .await
        .unwrap();
    assert_eq!(after, now);
    // What the story says, day by day.
    let assigned = service
        .load_as_of(d.org, AsOf::Instant(d.times.assigned))
        .await
        .unwrap();
    assert_eq!(assigned.numbers[&d.number].assigned_to, Some(d.carl));
    assert_eq!(assigned.users[&d.carl].status, UserStatus::Active);
    let deactivated = service
        .load_as_of(d.org, AsOf::Instant(d.times.deactivated))
        .await
        .unwrap();
    assert_eq!(deactivated.users[&d.bob].status, UserStatus::Deactivated);
    assert_eq!(now.users[&d.bob].status, UserStatus::Active);
    // A past state read after the deletion holds none of the deleted user's data.
    assert_no_carl(
        &serde_json::to_string(&assigned).unwrap(),
        "the as-of state",
    );
    // A position past the end, or before the start.
    let last = log.last().unwrap().position;
    let far = store::Position::new(last.commit + 1_000, last.sequence + 1_000);
    assert_eq!(
        service
            .load_as_of(d.org, AsOf::Position(far))
            .await
            .unwrap(),
        now
    );
    let first = log[0].position;
    if first.sequence > 0 {
        let earlier = store::Position::new(first.commit.saturating_sub(1), 0);
        assert_eq!(
            service
                .version_as_of(d.org, AsOf::Position(earlier))
                .await
                .unwrap(),
            0
        );
    }
}

/// A user's trail lists what happened to them, deleted users included, in plain words.
pub async fn trails_of_users_accounts_and_numbers<S: Store>(store: S) {
    let (service, d) = demo_on(store).await;
    let trail = service.trail(d.org, Subject::User(d.carl)).await.unwrap();
    let types: Vec<&str> = trail
        .entries
        .iter()
        .map(|e| e.event_type.as_str())
        .collect();
    assert_eq!(
        types,
        [
            "UserInvited",
            "InvitationAccepted",
            "UserActivated",
            "DeviceSignedIn",
            "NumberAssigned",
            "NumberUnassigned",
            "UserDeleted"
        ]
    );
    assert!(!trail.truncated);
    let deleted = format!("deleted user {}", d.carl);
    for e in &trail.entries {
        let line = e.to_string();
        assert_no_carl(&line, "Carl's trail");
        assert!(e.command_id.is_some());
        assert!(line.contains(&e.event_type));
    }
    assert!(
        trail.entries[0].sentence.contains(&deleted),
        "{}",
        trail.entries[0].sentence
    );
    let deletion = trail.entries.last().unwrap();
    assert_eq!(deletion.actor, Actor::user(d.owner));
    assert!(
        deletion.actor_label.starts_with("Olivia Owner"),
        "{}",
        deletion.actor_label
    );
    assert_eq!(
        deletion.occurred_at,
        d.times.start + chrono::Duration::days(4) + chrono::Duration::hours(1)
    );
    // The account's trail: created, then every membership change on it.
    let east = service
        .trail(d.org, Subject::Account(d.east))
        .await
        .unwrap();
    let types: Vec<&str> = east.entries.iter().map(|e| e.event_type.as_str()).collect();
    assert_eq!(types.first(), Some(&"AccountCreated"));
    assert!(types.contains(&"NumberAdded") && types.contains(&"UserDeleted"));
    assert_eq!(
        types.iter().filter(|t| **t == "InvitationAccepted").count(),
        3
    );
    // The number's trail.
    let number = service
        .trail(d.org, Subject::Number(d.number.clone()))
        .await
        .unwrap();
    let types: Vec<&str> = number
        .entries
        .iter()
        .map(|e| e.event_type.as_str())
        .collect();
    assert_eq!(
        types,
        [
            "NumberAdded",
            "NumberAssigned",
            "NumberUnassigned",
            "NumberForwarded"
        ]
    );
    assert!(number.entries[1].sentence.contains(&deleted));
    assert!(number.entries[3].sentence.contains("Ann Archer"));
}

/// Who had access, where a number routed, who deactivated whom.
pub async fn auditor_questions<S: Store>(store: S) {
    let (service, d) = demo_on(store).await;
    let joined = service
        .who_had_access(d.org, d.east, d.times.joined)
        .await
        .unwrap();
    let users: Vec<UserId> = joined.iter().map(|a| a.user).collect();
    for u in [d.owner, d.ann, d.bob, d.carl] {
        assert!(users.contains(&u), "{u} had access on day 1");
    }
    let owner = joined.iter().find(|a| a.user == d.owner).unwrap();
    assert_eq!(owner.via, AccessVia::AgencyAdministrator);
    let carl = joined.iter().find(|a| a.user == d.carl).unwrap();
    assert_eq!(carl.via, AccessVia::Role(RoleId::new(RoleId::AGENT)));
    assert_eq!(carl.label, format!("deleted user {}", d.carl));
    let later = service
        .who_had_access(d.org, d.east, d.times.deleted)
        .await
        .unwrap();
    assert!(
        !later.iter().any(|a| a.user == d.carl),
        "deletion removed access"
    );
    let bob = later.iter().find(|a| a.user == d.bob).unwrap();
    assert_eq!(bob.status, UserStatus::Deactivated);
    let before = service
        .who_had_access(d.org, d.east, d.times.start - chrono::Duration::days(1))
        .await
        .unwrap();
    assert!(before.is_empty());

    let n = &d.number;
    let route = |t| service.number_routing_at(d.org, n, t);
    assert_eq!(route(d.times.joined).await.unwrap(), Routing::NotHeld);
    assert_eq!(
        route(d.times.assigned).await.unwrap(),
        Routing::Assigned(d.carl)
    );
    assert_eq!(
        route(d.times.deleted).await.unwrap(),
        Routing::Forwarded(d.ann)
    );

    let who = service.who_deactivated(d.org, d.bob).await.unwrap();
    assert_eq!(who.len(), 1);
    assert_eq!(who[0].by, Actor::user(d.owner));
    assert_eq!(who[0].at, d.times.start + chrono::Duration::days(3));
    assert!(who[0].by_label.starts_with("Olivia Owner"));
    assert!(service
        .who_deactivated(d.org, d.ann)
        .await
        .unwrap()
        .is_empty());
}

/// Export to JSON Lines and import into an empty store reproduces the state.
pub async fn export_then_import_reproduces_the_state<S: Store, T: Store>(store: S, empty: T) {
    let (service, d) = demo_on(store).await;
    let mut file = Vec::new();
    let written = service.export_jsonl(d.org, &mut file).await.unwrap();
    let text = String::from_utf8(file.clone()).unwrap();
    assert_eq!(text.lines().count() as u64, written);
    assert_no_carl(&text, "the export");
    assert!(
        text.contains("ann@northwind.example"),
        "live users' data is exported readable"
    );
    assert!(
        !text.contains("$sealed"),
        "exports hold no ciphertext and no keys"
    );
    let (target, _, _) = new_service(empty, 99);
    let report = target
        .import_jsonl(&mut std::io::Cursor::new(&file))
        .await
        .unwrap();
    assert_eq!((report.org, report.events), (d.org, written));
    let original = service.load(d.org).await.unwrap();
    assert_eq!(target.load(d.org).await.unwrap(), original);
    assert_eq!(target.state(d.org).await.unwrap(), original);
    // Same envelopes: event ids, versions, metadata.
    let a = service.history(d.org).await.unwrap();
    let b = target.history(d.org).await.unwrap();
    for (x, y) in a.iter().zip(&b) {
        assert_eq!(
            (x.event_id, x.version, &x.metadata),
            (y.event_id, y.version, &y.metadata)
        );
    }
    // The imported store seals personal data again. (`read_stream`, not
    // `read_all`: the latter may lag while other tests' transactions hold the
    // Postgres read horizon back.)
    let raw = target
        .store()
        .read_stream(d.org, 1, None, 10_000)
        .await
        .unwrap();
    assert!(!serde_json::to_string(&raw)
        .unwrap()
        .contains("ann@northwind.example"));
    // A second import into the same (now non-empty) organization is refused.
    assert!(target
        .import_jsonl(&mut std::io::Cursor::new(&file))
        .await
        .is_err());
    // A command re-sent after the move is still a duplicate.
    let first = &a[1];
    assert!(target
        .store()
        .find_command(first.stream, first.metadata.command_id.unwrap())
        .await
        .unwrap()
        .is_some());
}

/// R-LIFE-06: after deletion, no personal data of the deleted user is readable
/// from state, from events read back (raw or decoded), from snapshots, or from
/// an export — while their id stays in history.
pub async fn r_life_06_deleted_users_personal_data_is_unreadable<S: Store>(store: S) {
    let (service, d) = demo_on(store).await;
    let state = service.load(d.org).await.unwrap();
    let carl = &state.users[&d.carl];
    assert_eq!(
        (carl.status, carl.profile.is_none()),
        (UserStatus::Deleted, true)
    );
    assert_no_carl(&serde_json::to_string(&state).unwrap(), "the state");
    assert_no_carl(
        &serde_json::to_string(&service.state(d.org).await.unwrap()).unwrap(),
        "the cached state",
    );
    // Events read back, raw from the store and decoded through the service
    // (`read_stream`: immediate, where `read_all` may lag behind other
    // tests' transactions on the same Postgres cluster).
    let raw = service
        .store()
        .read_stream(d.org, 1, None, 10_000)
        .await
        .unwrap();
    let raw_text = serde_json::to_string(&raw).unwrap();
    assert_no_carl(&raw_text, "the stored events");
    assert!(
        !raw_text.contains("ann@northwind.example"),
        "personal data is stored sealed"
    );
    assert!(
        raw_text.contains(&d.carl.as_uuid().to_string()),
        "the id stays in history"
    );
    let decoded = service.history(d.org).await.unwrap();
    assert_no_carl(
        &serde_json::to_string(&decoded).unwrap(),
        "the decoded events",
    );
    assert!(serde_json::to_string(&decoded)
        .unwrap()
        .contains("ann@northwind.example"));
    for r in &decoded {
        let e = codec::decode(r).unwrap();
        assert_no_carl(&format!("{e:?}"), "a decoded event");
    }
    // Snapshots: none left from before the deletion, none holding Carl's data.
    for v in 1..=state.version {
        if let Some(s) = service.store().load_snapshot(d.org, Some(v)).await.unwrap() {
            assert_no_carl(&String::from_utf8_lossy(&s.state), "a snapshot");
        }
    }
    // The export.
    let mut file = Vec::new();
    service.export_jsonl(d.org, &mut file).await.unwrap();
    assert_no_carl(&String::from_utf8(file).unwrap(), "the export");
    // A fresh service over the same store (cold cache) sees the same.
    assert_eq!(
        service.load_at_version(d.org, state.version).await.unwrap(),
        state
    );
    // The key is gone for ever; erasure can be completed again, harmlessly.
    let keys = service
        .store()
        .load_keys(d.org, &[d.carl, d.ann])
        .await
        .unwrap();
    assert!(!keys.contains_key(&d.carl) && keys.contains_key(&d.ann));
    assert_eq!(service.complete_erasure(d.org).await.unwrap(), 1);
    assert_eq!(service.load(d.org).await.unwrap(), state);
}

/// Before deletion, the same data was readable (the test above is not vacuous).
pub async fn personal_data_is_readable_until_deletion<S: Store>(store: S) {
    let (service, clock, ids) = new_service(store, 5);
    let d = demo::record(&service, &clock, ids.as_ref()).await.unwrap();
    let v = service
        .version_as_of(d.org, AsOf::Instant(d.times.deactivated))
        .await
        .unwrap();
    // Before the deletion the as-of state is folded from events read *now*:
    // Carl's data is already erased there too, while Ann's is readable.
    let past = service.load_at_version(d.org, v).await.unwrap();
    let ann = past.users[&d.ann].profile.as_ref().unwrap();
    assert_eq!(ann.email, "ann@northwind.example");
    assert_eq!(ann.name.as_deref(), Some("Ann Archer"));
    let carl = past.users[&d.carl].profile.as_ref().unwrap();
    assert_eq!((carl.name.as_deref(), carl.email.as_str()), (None, ""));
}

/// The frozen version-1 log (see core/tests/audit_fixture.rs).
pub const V1_FIXTURE: &str = include_str!("../fixtures/v1_history.jsonl");

/// Version-1 payloads stored as they were (never rewritten) load through the
/// service on this store: upcast on read, same state as the fold.
pub async fn v1_events_stored_as_they_were_load_through_the_service<S: Store>(store: S) {
    use switchboard_core::store::{AppendRequest, ExpectedVersion, NewEvent, RecordedEvent};
    let records: Vec<RecordedEvent> = V1_FIXTURE
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let org = records[0].stream;
    for r in &records {
        assert_eq!(r.schema_version, 1);
        store
            .append(AppendRequest {
                stream: org,
                expected: ExpectedVersion::Exact(r.version - 1),
                command_id: None,
                events: vec![NewEvent {
                    event_id: r.event_id,
                    event_type: r.event_type.clone(),
                    schema_version: r.schema_version,
                    payload: r.payload.clone(),
                    metadata: r.metadata.clone(),
                }],
                claims: vec![],
                command_digest: None,
                keys: Vec::new(),
            })
            .await
            .unwrap();
    }
    let stored = store.read_stream(org, 1, None, 100).await.unwrap();
    assert!(
        stored.iter().all(|r| r.schema_version == 1),
        "stored as they were"
    );
    let (service, _, _) = new_service(store, 3);
    let events: Vec<Event> = records.iter().map(|r| codec::decode(r).unwrap()).collect();
    let loaded = service.load(org).await.unwrap();
    assert_eq!(loaded, fold(org, &events));
    assert!(loaded
        .users
        .values()
        .any(|u| u.devices.values().any(|d| d.name == "work laptop")));
    // Trails read the old events too.
    let ann = loaded
        .users
        .values()
        .find(|u| u.email() == Some("ann@northwind.example"))
        .unwrap()
        .id;
    let trail = service.trail(org, Subject::User(ann)).await.unwrap();
    assert!(trail
        .entries
        .iter()
        .any(|e| e.event_type == "DeviceSignedIn" && e.sentence.contains("work laptop")));
}
