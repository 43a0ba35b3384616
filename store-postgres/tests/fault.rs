//! Fault test: the server is stopped in the middle of a stream of appends.
//! Every append either committed fully or not at all, the client gets typed
//! errors, and after a restart nothing acknowledged is missing. Each test
//! runs its own private cluster (stopping the shared one would break others).

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use switchboard_core::store::conformance::{command_id, event, org};
use switchboard_core::store::{
    AppendOutcome, AppendRequest, EventStore, ExpectedVersion, StoreError,
};
use switchboard_store_postgres::testing::{create_database, StopMode, TestCluster};
use switchboard_store_postgres::{PostgresOptions, PostgresStore};

type Log = Vec<(AppendRequest, Result<AppendOutcome, StoreError>)>;

async fn wait_until(what: &str, limit: Duration, mut done: impl FnMut() -> bool) {
    let deadline = Instant::now() + limit;
    while !done() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

async fn server_stopped_mid_stream(mode: StopMode) {
    let cluster = Arc::new(TestCluster::start().expect("private PostgreSQL cluster"));
    let admin: tokio_postgres::Config = cluster.url("postgres").parse().expect("url");
    let config = create_database(&admin, None).await.expect("database");
    let options = PostgresOptions {
        connect_timeout: Duration::from_secs(2),
        max_connections: 4,
        ..PostgresOptions::default()
    };
    let store = PostgresStore::connect_config(config.clone(), options)
        .await
        .expect("store");
    store.migrate().await.expect("migrate");

    let log: Arc<Mutex<Log>> = Arc::default();
    let (acked, failed) = (Arc::new(AtomicUsize::new(0)), Arc::new(AtomicUsize::new(0)));
    let stop = Arc::new(AtomicBool::new(false));
    // 4 writers, each with its own streams, appending with command ids.
    let writers: Vec<_> = (0..4u128)
        .map(|w| {
            let (store, log, acked, failed, stop) = (
                store.clone(),
                log.clone(),
                acked.clone(),
                failed.clone(),
                stop.clone(),
            );
            tokio::spawn(async move {
                let mut i = 0u128;
                while !stop.load(Ordering::SeqCst) {
                    i += 1;
                    let n = w * 1_000_000 + i * 10;
                    let req = AppendRequest {
                        stream: org(w * 10 + i % 3),
                        expected: ExpectedVersion::Any,
                        command_id: Some(command_id(n)),
                        events: (0..1 + (i % 3)).map(|k| event(n + k)).collect(),
                        claims: vec![],
                        command_digest: None,
                        keys: Vec::new(),
                    };
                    let result = store.append(req.clone()).await;
                    if result.is_ok() {
                        acked.fetch_add(1, Ordering::SeqCst);
                    } else {
                        failed.fetch_add(1, Ordering::SeqCst);
                        tokio::time::sleep(Duration::from_millis(20)).await;
                    }
                    log.lock().expect("log").push((req, result));
                }
            })
        })
        .collect();

    wait_until("200 acknowledged appends", Duration::from_secs(60), || {
        acked.load(Ordering::SeqCst) >= 200
    })
    .await;
    // Make the cut deterministic: a lock on the events table holds the next
    // appends on live sessions until at least one is seen waiting; the stop
    // then cuts appends whose outcome the client cannot know. (Without it,
    // whether the stop lands mid-append was a matter of timing, which a
    // loaded machine sometimes lost.)
    let (locker, connection) = config
        .connect(tokio_postgres::NoTls)
        .await
        .expect("lock connection");
    let driver = tokio::spawn(connection);
    locker
        .batch_execute("BEGIN; LOCK TABLE switchboard.events IN SHARE ROW EXCLUSIVE MODE")
        .await
        .expect("lock the events table");
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let waiting: i64 = locker
            .query_one(
                "SELECT count(*) FROM pg_stat_activity \
                 WHERE datname = current_database() AND wait_event_type = 'Lock'",
                &[],
            )
            .await
            .expect("pg_stat_activity")
            .get(0);
        if waiting >= 1 {
            break;
        }
        assert!(Instant::now() < deadline, "no append waited on the lock");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let c = cluster.clone();
    tokio::task::spawn_blocking(move || c.stop(mode))
        .await
        .expect("stop task")
        .expect("pg_ctl stop");
    drop(locker);
    let _ = driver.await; // ends with the server
    wait_until(
        "appends failing while the server is down",
        Duration::from_secs(60),
        || failed.load(Ordering::SeqCst) >= 20,
    )
    .await;
    let c = cluster.clone();
    tokio::task::spawn_blocking(move || c.restart())
        .await
        .expect("restart task")
        .expect("pg_ctl start");
    // The pool reconnects by itself.
    let before = acked.load(Ordering::SeqCst);
    wait_until(
        "appends succeeding after the restart",
        Duration::from_secs(60),
        || acked.load(Ordering::SeqCst) >= before + 50,
    )
    .await;
    stop.store(true, Ordering::SeqCst);
    for w in writers {
        w.await.expect("writer");
    }

    let log = log.lock().expect("log").clone();
    let mut ambiguous = 0;
    let mut errors = 0;
    for (req, result) in &log {
        let present = present_events(&store, req).await;
        match result {
            Ok(outcome) => {
                assert_eq!(
                    present,
                    req.events.len(),
                    "acknowledged append lost: {outcome:?}"
                );
                let found = store
                    .find_command(req.stream, req.command_id.expect("command id"))
                    .await
                    .expect("find_command")
                    .expect("acknowledged command recorded");
                assert_eq!(&found.outcome, outcome);
            }
            Err(StoreError::Unavailable {
                maybe_committed, ..
            }) => {
                errors += 1;
                assert!(
                    present == 0 || present == req.events.len(),
                    "a failed append is all or nothing, found {present} of {}",
                    req.events.len()
                );
                if present > 0 {
                    assert!(
                        maybe_committed,
                        "committed although reported as not committed"
                    );
                }
                if *maybe_committed {
                    ambiguous += 1;
                    // The documented recovery: re-send with the same command id.
                    let again = store
                        .append(req.clone())
                        .await
                        .expect("retry after restart");
                    assert_eq!(again.duplicate, present > 0, "retry is idempotent");
                    assert_eq!(present_events(&store, req).await, req.events.len());
                }
            }
            Err(other) => panic!("untyped or unexpected error during the outage: {other:?}"),
        }
    }
    assert!(errors >= 20, "the outage was observed ({errors} errors)");
    // Not vacuous: the stop cut appends in flight — sent on a live session
    // that then died, so their outcome was unknown until re-sent.
    assert!(
        ambiguous >= 1,
        "no append was in flight when the server stopped"
    );
    // Streams stay dense: no holes from half-written appends.
    let mut versions: HashMap<_, u64> = HashMap::new();
    for (req, _) in &log {
        versions.insert(req.stream, 0);
    }
    for stream in versions.keys() {
        let v = store.stream_version(*stream).await.expect("version");
        let events = store
            .read_stream(*stream, 1, None, 10_000)
            .await
            .expect("read");
        let got: Vec<u64> = events.iter().map(|e| e.version).collect();
        assert_eq!(got, (1..=v).collect::<Vec<_>>(), "stream {stream} is dense");
    }
    eprintln!(
        "{mode:?}: {} appends, {errors} failed during the outage ({ambiguous} ambiguous, re-sent)",
        log.len()
    );
}

/// How many of the request's events the store holds (0 or all, if atomic).
async fn present_events(store: &PostgresStore, req: &AppendRequest) -> usize {
    let ids: Vec<uuid::Uuid> = req.events.iter().map(|e| e.event_id.as_uuid()).collect();
    let client = store.pool().get().await.expect("connection");
    let row = client
        .query_one(
            "SELECT count(*) FROM switchboard.events WHERE event_id = ANY($1)",
            &[&ids],
        )
        .await
        .expect("count");
    usize::try_from(row.get::<_, i64>(0)).expect("count")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn server_stopped_fast_mid_stream() {
    server_stopped_mid_stream(StopMode::Fast).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn server_killed_immediately_mid_stream() {
    server_stopped_mid_stream(StopMode::Immediate).await;
}
