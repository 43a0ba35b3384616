//! The command-handling service on the memory store: snapshots + tail, the
//! fallback to full replay, as-of-version loads, idempotent command ids and
//! retries on conflict between two service instances.

use chrono::TimeZone;
use std::sync::Arc;
use switchboard_core::service::*;
use switchboard_core::store::{EventStore, Snapshot, SnapshotStore};
use switchboard_core::*;
use switchboard_store_memory::MemoryStore;

struct Fixture {
    store: MemoryStore,
    org: OrgId,
    ids: Arc<SequentialIds>,
    clock: Arc<FixedClock>,
}

impl Fixture {
    fn new() -> Self {
        let ids = Arc::new(SequentialIds::new(42));
        Self {
            store: MemoryStore::new(),
            org: OrgId::from_uuid(ids.next_id()),
            ids,
            clock: Arc::new(FixedClock::new(
                chrono::Utc.with_ymd_and_hms(2026, 5, 1, 8, 0, 0).unwrap(),
            )),
        }
    }

    fn service(&self, snapshot_every: u64) -> CommandService<MemoryStore> {
        CommandService::with_config(
            self.store.clone(),
            self.clock.clone(),
            self.ids.clone(),
            Arc::new(SeededSecrets::new(7)),
            ServiceConfig {
                snapshot_every,
                ..ServiceConfig::default()
            },
        )
    }

    fn request(&self, actor: Actor, command: Command) -> CommandRequest {
        CommandRequest::new(
            self.org,
            CommandId::from_uuid(self.ids.next_id()),
            actor,
            command,
        )
    }
}

fn create() -> Command {
    Command::CreateOrganization {
        name: "Snapshots Inc".into(),
        root_account_name: "HQ".into(),
        owner_email: "owner@snap.example".into(),
        owner_name: "Owner".into(),
        policies: None,
    }
}

/// Creates the organization and `n` sub-accounts; returns the owner.
async fn history(f: &Fixture, service: &CommandService<MemoryStore>, n: usize) -> UserId {
    service
        .handle(f.request(Actor::System, create()))
        .await
        .unwrap();
    let state = service.state(f.org).await.unwrap();
    let owner = state.primary_owner.unwrap();
    let root = state.root_account.unwrap();
    for i in 0..n {
        service
            .handle(f.request(
                Actor::user(owner),
                Command::CreateAccount {
                    name: format!("Branch {i}"),
                    parent: root,
                },
            ))
            .await
            .unwrap();
    }
    owner
}

#[tokio::test]
async fn a_cold_service_loads_the_snapshot_plus_the_tail() {
    let f = Fixture::new();
    let writer = f.service(5);
    history(&f, &writer, 12).await;
    let live = writer.state(f.org).await.unwrap();
    assert_eq!(live.version, 13);

    let snap = f
        .store
        .load_snapshot(f.org, None)
        .await
        .unwrap()
        .expect("a snapshot every 5 events");
    assert_eq!(
        snap.version, 10,
        "the newest snapshot crossing a multiple of 5"
    );
    assert_eq!(snap.schema_version, SNAPSHOT_SCHEMA_VERSION);

    // Tamper with the snapshot's name: a cold load that shows the tampered
    // name proves the snapshot was used, with the 3 tail events on top.
    let mut tampered = snap.clone();
    tampered.state["name"] = serde_json::json!("From the snapshot");
    f.store.save_snapshot(tampered.clone()).await.unwrap();
    let cold = f.service(5).load(f.org).await.unwrap();
    assert_eq!(cold.name, "From the snapshot");
    assert_eq!(cold.version, 13);
    assert_eq!(cold.accounts, live.accounts, "the tail was folded on top");

    // A snapshot of an older schema is ignored: full replay gives the truth.
    let old = Snapshot {
        schema_version: SNAPSHOT_SCHEMA_VERSION - 1,
        ..tampered
    };
    f.store.delete_snapshots(f.org).await.unwrap();
    f.store.save_snapshot(old).await.unwrap();
    let replayed = f.service(5).load(f.org).await.unwrap();
    assert_eq!(replayed, live);
}

#[tokio::test]
async fn load_at_version_equals_the_fold_of_that_prefix() {
    let f = Fixture::new();
    let service = f.service(4);
    history(&f, &service, 9).await;
    // Stored payloads are sealed (R-LIFE-06); the service's history opens them.
    let all = service.history(f.org).await.unwrap();
    for v in [1u64, 3, 4, 7, 10] {
        let events: Vec<Event> = all[..v as usize]
            .iter()
            .map(|r| codec::decode(r).unwrap())
            .collect();
        let expected = fold(f.org, &events);
        assert_eq!(
            service.load_at_version(f.org, v).await.unwrap(),
            expected,
            "v{v}"
        );
    }
}

#[tokio::test]
async fn the_same_command_id_twice_records_nothing_new() {
    let f = Fixture::new();
    let service = f.service(0);
    let owner = history(&f, &service, 0).await;
    let request = f.request(
        Actor::user(owner),
        Command::InviteUsers {
            emails: "ivy@snap.example".into(),
            grant: Grant {
                role: RoleId::new(RoleId::AGENT),
                accounts: vec![service.state(f.org).await.unwrap().root_account.unwrap()],
                agency_admin: false,
                clients: vec![],
            },
        },
    );
    let first = service.handle(request.clone()).await.unwrap();
    assert!(!first.duplicate);
    assert_eq!(first.secrets.len(), 1);
    // Re-deciding would now be refused (R-INV-06: ivy exists); the id short-circuits.
    let second = service.handle(request.clone()).await.unwrap();
    assert!(second.duplicate);
    assert_eq!(second.events, first.events);
    assert_eq!(second.version, first.version);
    assert!(second.secrets.is_empty(), "token text is never kept");
    assert_eq!(f.store.stream_version(f.org).await.unwrap(), first.version);
    // Also from a fresh service instance (another process).
    let third = f.service(0).handle(request).await.unwrap();
    assert!(third.duplicate);
    assert_eq!(f.store.stream_version(f.org).await.unwrap(), first.version);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn two_service_instances_retry_on_conflict_and_lose_nothing() {
    let f = Arc::new(Fixture::new());
    let a = Arc::new(f.service(0));
    let b = Arc::new(f.service(0));
    let owner = history(&f, &a, 0).await;
    let root = a.state(f.org).await.unwrap().root_account.unwrap();
    // Warm b's cache, then let both write concurrently: every conflict is
    // retried against the caught-up state.
    b.state(f.org).await.unwrap();
    let mut tasks = Vec::new();
    for i in 0..40 {
        let service = if i % 2 == 0 { a.clone() } else { b.clone() };
        let f = f.clone();
        tasks.push(tokio::spawn(async move {
            service
                .handle(f.request(
                    Actor::user(owner),
                    Command::CreateAccount {
                        name: format!("Concurrent {i}"),
                        parent: root,
                    },
                ))
                .await
        }));
    }
    for t in tasks {
        t.await.unwrap().expect("every command lands after retries");
    }
    assert_eq!(f.store.stream_version(f.org).await.unwrap(), 41);
    let a_state = a.state(f.org).await.unwrap();
    let b_state = b.state(f.org).await.unwrap();
    assert_eq!(a_state, b_state);
    assert_eq!(a_state.accounts.len(), 41);
    assert_eq!(a_state, f.service(0).load(f.org).await.unwrap());
}

#[tokio::test]
async fn a_refused_command_changes_neither_the_log_nor_the_cache() {
    let f = Fixture::new();
    let service = f.service(0);
    let owner = history(&f, &service, 2).await;
    let before = service.state(f.org).await.unwrap();
    let err = service
        .handle(f.request(
            Actor::user(owner),
            Command::Deactivate {
                user: owner,
                forward_numbers_to: None,
                reassign_reports: None,
            },
        ))
        .await
        .unwrap_err();
    let ServiceError::Rejected(refusal) = err else {
        panic!("expected a refusal, got {err:?}");
    };
    assert!(
        refusal.has_rule("R-LIFE-03") && refusal.has_rule("R-LIFE-09"),
        "{refusal}"
    );
    assert_eq!(service.state(f.org).await.unwrap(), before);
    assert_eq!(f.store.stream_version(f.org).await.unwrap(), before.version);
}
