//! The torture run: several service instances, each with its own pool, over
//! a set of organizations on a private PostgreSQL cluster, sending commands
//! drawn from the exported strategies — some re-sent under their command id
//! on purpose, some cancelled at a random point — while the server is
//! stopped (immediate: a crash) and restarted, and a subscriber tails the
//! log throughout. At the end it checks what the library promises:
//!
//! * every acknowledged command is recorded exactly once (one contiguous
//!   range of its stream, the outcome `find_command` gives);
//! * every stream is dense and in version order;
//! * the subscriber saw every event once, positions strictly increasing;
//! * a fresh service replays every organization to the state the writers see;
//! * no deleted user's personal data is readable in any table;
//! * no live data key belongs to anyone but a recorded, undeleted user.
//!
//! `SWITCHBOARD_TORTURE_SECS` sets the run's length (default 20 s, CI's
//! profile; ≥ 600 for the long run of RELIABILITY.md); the server is
//! stopped at least twice whatever the length.

use futures_util::StreamExt;
use proptest::strategy::{Strategy, ValueTree};
use proptest::test_runner::{Config, RngAlgorithm, TestRng, TestRunner};

/// SplitMix64: the writers' own choices (which org, re-send, cancel when),
/// reproducible from the writer's index.
struct Dice(u64);

impl Dice {
    fn next_u32(&mut self) -> u32 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        ((z ^ (z >> 31)) >> 32) as u32
    }
}
use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use switchboard::service::{CommandRequest, CommandService, ServiceConfig, ServiceError};
use switchboard::store::{EventStore, Position};
use switchboard::system::{OsSecrets, TokioPause, UuidV7Ids};
use switchboard::*;
use switchboard_store_postgres::testing::{create_database, StopMode, TestCluster};
use switchboard_store_postgres::{PostgresOptions, PostgresStore};

const ORGS: usize = 4;
const WRITERS: usize = 3;

type Service = CommandService<PostgresStore>;

#[derive(Default)]
struct Figures {
    sent: AtomicUsize,
    acknowledged: AtomicUsize,
    duplicates: AtomicUsize,
    refused: AtomicUsize,
    ambiguous: AtomicUsize,
    cancelled: AtomicUsize,
    resent: AtomicUsize,
    faults: AtomicUsize,
}

/// What the writers learnt: every acknowledged command, the requests whose
/// outcome is unknown, and every email they saw each user hold.
#[derive(Default)]
struct Journal {
    acknowledged: Vec<(OrgId, CommandId, u64, u64)>,
    unknown: Vec<CommandRequest>,
    sent: Vec<CommandRequest>,
    emails: HashMap<UserId, BTreeSet<String>>,
}

async fn connect(config: &tokio_postgres::Config) -> PostgresStore {
    let options = PostgresOptions {
        max_connections: 4,
        connect_timeout: Duration::from_secs(2),
        ..PostgresOptions::default()
    };
    match PostgresStore::connect_config(config.clone(), options).await {
        Ok(store) => store,
        Err(e) => panic!("torture: connect: {e}"),
    }
}

fn service(store: PostgresStore) -> Service {
    CommandService::with_config(
        store,
        Arc::new(FixedClock::new(strategies::history_start())),
        Arc::new(UuidV7Ids),
        Arc::new(OsSecrets),
        ServiceConfig {
            snapshot_every: 25,
            snapshot_events_per_entity: 0,
            ..ServiceConfig::default()
        },
    )
    .with_pause(Arc::new(TokioPause))
}

/// One writer: draws commands the current state accepts, sends them, and
/// sometimes re-sends an earlier one or cancels one mid-way.
async fn writer(
    index: usize,
    service: Arc<Service>,
    orgs: Arc<Vec<OrgId>>,
    until: Instant,
    journal: Arc<Mutex<Journal>>,
    figures: Arc<Figures>,
) {
    let mut rng = Dice(index as u64 + 1);
    let mut runner = TestRunner::new_with_rng(
        Config::default(),
        TestRng::from_seed(RngAlgorithm::ChaCha, &[index as u8 + 1; 32]),
    );
    let mut round = 0usize;
    while Instant::now() < until {
        round += 1;
        let org = orgs[(index + round) % orgs.len()];
        let pick = rng.next_u32() % 100;
        let request = if pick < 10 && !journal.lock().unwrap().sent.is_empty() {
            // The same command under the same id, on purpose.
            let j = journal.lock().unwrap();
            j.sent[rng.next_u32() as usize % j.sent.len()].clone()
        } else {
            let state = match service.state(org).await {
                Ok(s) => s,
                Err(_) => {
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            };
            {
                let mut j = journal.lock().unwrap();
                for u in state.users.values() {
                    if let Some(email) = u.email().filter(|e| !e.is_empty()) {
                        j.emails.entry(u.id).or_default().insert(email.to_owned());
                    }
                }
            }
            let Ok(tree) = strategies::arb_command(&state).new_tree(&mut runner) else {
                continue;
            };
            let (actor, command) = tree.current();
            let request = CommandRequest::new(
                org,
                CommandId::from_uuid(uuid::Uuid::now_v7()),
                actor,
                command,
            );
            journal.lock().unwrap().sent.push(request.clone());
            request
        };
        figures.sent.fetch_add(1, Ordering::Relaxed);
        let cancel_after =
            (pick >= 90).then(|| Duration::from_micros(u64::from(rng.next_u32() % 3000)));
        let handled = match cancel_after {
            Some(after) => match tokio::time::timeout(after, service.handle(request.clone())).await
            {
                Ok(result) => result,
                Err(_) => {
                    figures.cancelled.fetch_add(1, Ordering::Relaxed);
                    journal.lock().unwrap().unknown.push(request);
                    continue;
                }
            },
            None => service.handle(request.clone()).await,
        };
        settle(&request, handled, &journal, &figures);
    }
}

/// Books one answer; returns whether the outcome is now known.
fn settle(
    request: &CommandRequest,
    handled: Result<service::Handled, ServiceError>,
    journal: &Mutex<Journal>,
    figures: &Figures,
) -> bool {
    match handled {
        Ok(h) => {
            figures.acknowledged.fetch_add(1, Ordering::Relaxed);
            if h.duplicate {
                figures.duplicates.fetch_add(1, Ordering::Relaxed);
            }
            if let Some(o) = h.outcome {
                journal.lock().unwrap().acknowledged.push((
                    request.org,
                    request.command_id,
                    o.first_version,
                    o.last_version,
                ));
            }
            true
        }
        Err(ServiceError::Rejected(_)) => {
            figures.refused.fetch_add(1, Ordering::Relaxed);
            true
        }
        Err(ServiceError::IdempotencyKeyReused { .. }) => {
            panic!("torture: a re-sent request was taken for another command")
        }
        Err(_) => {
            figures.ambiguous.fetch_add(1, Ordering::Relaxed);
            journal.lock().unwrap().unknown.push(request.clone());
            false
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn torture_services_under_crashes_lose_nothing() {
    let secs: u64 = std::env::var("SWITCHBOARD_TORTURE_SECS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(20)
        .max(6);
    let cluster = Arc::new(TestCluster::start().expect("private PostgreSQL cluster"));
    let admin: tokio_postgres::Config = cluster.url("postgres").parse().expect("url");
    let config = create_database(&admin, None).await.expect("database");
    let setup = connect(&config).await;
    setup.migrate().await.expect("migrate");
    let figures = Arc::new(Figures::default());
    let journal: Arc<Mutex<Journal>> = Arc::default();

    // The organizations, created before the storm.
    let first = service(setup.clone());
    let orgs: Vec<OrgId> = (0..ORGS)
        .map(|_| OrgId::from_uuid(uuid::Uuid::now_v7()))
        .collect();
    for org in &orgs {
        let state = first.state(*org).await.expect("state");
        let mut runner = TestRunner::deterministic();
        let (actor, command) = strategies::arb_command(&state)
            .new_tree(&mut runner)
            .expect("a command")
            .current();
        let request = CommandRequest::new(
            *org,
            CommandId::from_uuid(uuid::Uuid::now_v7()),
            actor,
            command,
        );
        let handled = first.handle(request.clone()).await;
        assert!(
            settle(&request, handled, &journal, &figures),
            "organization created"
        );
    }
    let orgs = Arc::new(orgs);

    // The subscriber: tails the whole log from the start, resubscribing
    // after the server's outages, until told to stop.
    let seen: Arc<Mutex<Vec<(Position, EventId)>>> = Arc::default();
    let stop_tailing = Arc::new(AtomicBool::new(false));
    let tail = {
        let (store, seen, stop) = (connect(&config).await, seen.clone(), stop_tailing.clone());
        tokio::spawn(async move {
            while !stop.load(Ordering::SeqCst) {
                let after = seen.lock().unwrap().last().map(|(p, _)| *p);
                let stream = subscribe(&store, after, 500);
                futures_util::pin_mut!(stream);
                loop {
                    let next =
                        tokio::time::timeout(Duration::from_millis(500), stream.next()).await;
                    match next {
                        Ok(Some(Ok(e))) => seen.lock().unwrap().push((e.position, e.event_id)),
                        Ok(Some(Err(_))) | Ok(None) => {
                            tokio::time::sleep(Duration::from_millis(100)).await;
                            break;
                        }
                        Err(_) if stop.load(Ordering::SeqCst) => break,
                        Err(_) => {}
                    }
                }
            }
        })
    };

    // The writers.
    let until = Instant::now() + Duration::from_secs(secs);
    let mut services = Vec::new();
    let mut tasks = Vec::new();
    for i in 0..WRITERS {
        let s = Arc::new(service(connect(&config).await));
        services.push(s.clone());
        tasks.push(tokio::spawn(writer(
            i,
            s,
            orgs.clone(),
            until,
            journal.clone(),
            figures.clone(),
        )));
    }

    // The faults: an immediate stop (a crash) and a restart, at least twice.
    let outages = (secs / 30).max(2);
    for k in 1..=outages {
        let at = Duration::from_secs(secs) * u32::try_from(k).unwrap_or(1)
            / u32::try_from(outages + 1).unwrap_or(3);
        tokio::time::sleep_until((until - Duration::from_secs(secs) + at).into()).await;
        let c = cluster.clone();
        tokio::task::spawn_blocking(move || c.stop(StopMode::Immediate))
            .await
            .expect("stop task")
            .expect("pg_ctl stop");
        figures.faults.fetch_add(1, Ordering::Relaxed);
        tokio::time::sleep(Duration::from_millis(300)).await;
        let c = cluster.clone();
        tokio::task::spawn_blocking(move || c.restart())
            .await
            .expect("restart task")
            .expect("pg_ctl start");
    }
    for t in tasks {
        t.await.expect("writer");
    }

    // Settle every request whose outcome is unknown by re-sending it.
    let unknown = std::mem::take(&mut journal.lock().unwrap().unknown);
    for request in unknown {
        figures.resent.fetch_add(1, Ordering::Relaxed);
        let mut settled = false;
        for _ in 0..50 {
            let handled = services[0].handle(request.clone()).await;
            if matches!(
                &handled,
                Err(ServiceError::Store(_)) | Err(ServiceError::Contention { .. })
            ) {
                tokio::time::sleep(Duration::from_millis(100)).await;
                continue;
            }
            settled = settle(&request, handled, &journal, &figures);
            break;
        }
        assert!(settled, "a re-sent request never settled");
    }

    // Checks.
    let check = connect(&config).await;
    let fresh = service(check.clone());
    let mut total = 0usize;
    let mut by_command: BTreeMap<(OrgId, CommandId), Vec<u64>> = BTreeMap::new();
    for org in orgs.iter() {
        let mut events = Vec::new();
        loop {
            let from = events.len() as u64 + 1;
            let page = check
                .read_stream(*org, from, None, 10_000)
                .await
                .expect("read");
            if page.is_empty() {
                break;
            }
            events.extend(page);
        }
        let versions: Vec<u64> = events.iter().map(|e| e.version).collect();
        assert_eq!(
            versions,
            (1..=events.len() as u64).collect::<Vec<_>>(),
            "stream {org} is dense"
        );
        total += events.len();
        for e in &events {
            if let Some(c) = e.metadata.command_id {
                by_command.entry((*org, c)).or_default().push(e.version);
            }
        }
        // A fresh service replays to the state every writer sees.
        let replayed = fresh.load(*org).await.expect("replay");
        for s in &services {
            assert_eq!(
                s.state(*org).await.expect("state"),
                replayed,
                "replay of {org}"
            );
        }
    }
    // Everything the writers learnt, out of its lock (the checks await).
    let journal = std::mem::take(&mut *journal.lock().unwrap());
    for (org, command, first, last) in &journal.acknowledged {
        let recorded = check
            .find_command(*org, *command)
            .await
            .expect("find")
            .expect("every acknowledged command is recorded");
        assert_eq!(
            (
                recorded.outcome.first_version,
                recorded.outcome.last_version
            ),
            (*first, *last)
        );
        let versions = &by_command[&(*org, *command)];
        assert_eq!(
            versions,
            &(*first..=*last).collect::<Vec<_>>(),
            "recorded exactly once"
        );
    }
    // The subscriber saw every event once, in strictly increasing positions.
    let deadline = Instant::now() + Duration::from_secs(60);
    while seen.lock().unwrap().len() < total && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    stop_tailing.store(true, Ordering::SeqCst);
    tail.await.expect("subscriber");
    let seen = std::mem::take(&mut *seen.lock().unwrap());
    assert_eq!(seen.len(), total, "the subscriber saw every event");
    assert!(
        seen.windows(2).all(|w| w[0].0 < w[1].0),
        "positions strictly increase"
    );
    let ids: BTreeSet<EventId> = seen.iter().map(|(_, id)| *id).collect();
    assert_eq!(ids.len(), total, "every event once");

    // Erasure and keys, on the raw tables.
    let client = check.pool().get().await.expect("connection");
    let raw: String = client
        .query_one(
            "SELECT coalesce(string_agg(payload::text, ' '), '') || \
                    (SELECT coalesce(string_agg(state::text, ' '), '') FROM switchboard.snapshots) \
               FROM switchboard.events",
            &[],
        )
        .await
        .expect("raw tables")
        .get(0);
    let mut deleted = 0;
    let mut live: BTreeSet<(uuid::Uuid, uuid::Uuid)> = BTreeSet::new();
    for org in orgs.iter() {
        let state = fresh.load(*org).await.expect("state");
        for u in state.users.values() {
            if u.status == UserStatus::Deleted {
                deleted += 1;
                for email in journal.emails.get(&u.id).into_iter().flatten() {
                    assert!(
                        !raw.contains(email.as_str()),
                        "a deleted user's email is readable"
                    );
                }
            } else {
                live.insert((org.as_uuid(), u.id.as_uuid()));
            }
        }
    }
    for row in client
        .query(
            "SELECT org_id, user_id FROM switchboard.data_keys WHERE key IS NOT NULL",
            &[],
        )
        .await
        .expect("keys")
    {
        let key: (uuid::Uuid, uuid::Uuid) = (row.get(0), row.get(1));
        assert!(
            live.contains(&key),
            "a live key of no recorded, undeleted user: {key:?}"
        );
    }
    let f = &figures;
    eprintln!(
        "torture {secs} s: {} commands sent, {} acknowledged ({} duplicates), {} refused, \
         {} ambiguous, {} cancelled, {} re-sent, {} faults injected, {} events checked, \
         {} deleted users checked, {} live keys checked",
        f.sent.load(Ordering::Relaxed),
        f.acknowledged.load(Ordering::Relaxed),
        f.duplicates.load(Ordering::Relaxed),
        f.refused.load(Ordering::Relaxed),
        f.ambiguous.load(Ordering::Relaxed),
        f.cancelled.load(Ordering::Relaxed),
        f.resent.load(Ordering::Relaxed),
        f.faults.load(Ordering::Relaxed),
        total,
        deleted,
        live.len(),
    );
    assert!(f.faults.load(Ordering::Relaxed) >= 2);
}
