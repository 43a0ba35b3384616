//! Postgres-specific behaviour: the read horizon never lets a subscriber skip
//! a late-committing transaction, migrations, bulk import, LISTEN reconnects,
//! typed connection errors.

use std::time::{Duration, Instant};
use switchboard_core::store::conformance::{append, event, event_id, org};
use switchboard_core::store::{EventStore, ExpectedVersion, Position, StoreError};
use switchboard_store_postgres::testing::{
    create_database, fresh_store, server, try_fresh_database, TestCluster,
};
use switchboard_store_postgres::{PostgresError, PostgresOptions, PostgresStore};
use tokio_postgres::NoTls;

/// A raw connection to the store's database, for holding transactions open.
async fn raw(config: &tokio_postgres::Config) -> tokio_postgres::Client {
    let (client, connection) = config.connect(NoTls).await.expect("raw connection");
    tokio::spawn(connection);
    client
}

async fn store_on(config: &tokio_postgres::Config) -> PostgresStore {
    PostgresStore::connect_config(config.clone(), PostgresOptions::default())
        .await
        .expect("store")
}

/// `read_all(after)`, once it shows at least `n` events: other tests share the
/// server, and their running transactions may hold the horizon back a moment.
async fn settled(
    store: &PostgresStore,
    after: Option<Position>,
    n: usize,
) -> Vec<switchboard_core::store::RecordedEvent> {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let seen = store.read_all(after, 10_000).await.expect("read_all");
        if seen.len() >= n || Instant::now() > deadline {
            return seen;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// An append run by hand inside an open transaction (same function as the store uses).
async fn begin_append(client: &tokio_postgres::Client, stream: uuid::Uuid, n: u128) {
    client.batch_execute("BEGIN").await.expect("begin");
    client
        .query(
            "SELECT * FROM switchboard.append($1, NULL, NULL, NULL, ARRAY[$2::uuid], ARRAY['Noted'], \
             ARRAY[1::bigint], ARRAY['{}'::jsonb], ARRAY['{\"kind\":\"system\"}'::jsonb], \
             ARRAY[now()], ARRAY[NULL::uuid], ARRAY[NULL::uuid], ARRAY[NULL::uuid], \
             ARRAY[]::boolean[], ARRAY[]::text[], ARRAY[]::text[], \
             ARRAY[]::uuid[], ARRAY[]::bytea[], ARRAY[]::uuid[])",
            &[&stream, &event_id(n).as_uuid()],
        )
        .await
        .expect("append in transaction");
}

/// The subscriber-ordering trap: transaction T1 takes a lower position, T2
/// a higher one and commits first. A reader ordered by position alone would
/// show T2's event, move its checkpoint past T1's position and skip T1's
/// event for ever. The horizon hides T2's event until T1 has finished.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn read_all_never_skips_a_lower_position_committing_later() {
    let config = try_fresh_database().await.expect("database");
    let store = store_on(&config).await;
    let (a, b) = (org(1), org(2));
    let seed = store
        .append(append(a, ExpectedVersion::NoStream, vec![event(1)]))
        .await
        .expect("seed");

    let t1 = raw(&config).await;
    begin_append(&t1, a.as_uuid(), 2).await; // lower position, still open
    let t2 = store
        .append(append(b, ExpectedVersion::NoStream, vec![event(3)]))
        .await
        .expect("T2 commits first");

    // T2 is committed, but its place is not final while T1 runs.
    let seen = store
        .read_all(Some(seed.last_position), 100)
        .await
        .expect("read");
    assert!(
        seen.is_empty(),
        "T2 must stay hidden while T1 runs: {seen:?}"
    );
    assert_eq!(
        store.stream_version(b).await.expect("version"),
        1,
        "yet T2 is acknowledged"
    );
    // A waiter is not woken for an event it could not read yet... but is
    // bounded by the poll interval, so just check it does not report early.
    t1.batch_execute("COMMIT").await.expect("T1 commits");

    let seen = settled(&store, Some(seed.last_position), 2).await;
    let ids: Vec<_> = seen.iter().map(|e| e.event_id).collect();
    assert_eq!(
        ids,
        vec![event_id(2), event_id(3)],
        "T1 then T2: nothing skipped"
    );
    assert!(seen[0].position < seen[1].position);
    assert!(seen[0].position.sequence < t2.first_position.sequence);
    assert_eq!(
        seen[1].position, t2.first_position,
        "positions as acknowledged"
    );
}

/// The other interleaving: T1 gets its transaction id first but inserts
/// (takes its position) after T2. Log order follows transaction ids, and
/// still nothing is shown before it is final.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn read_all_orders_by_transaction_then_position() {
    let config = try_fresh_database().await.expect("database");
    let store = store_on(&config).await;
    let t1 = raw(&config).await;
    t1.batch_execute("BEGIN").await.expect("begin");
    t1.query("SELECT pg_current_xact_id()", &[])
        .await
        .expect("take an xid");
    let t2 = store
        .append(append(org(2), ExpectedVersion::NoStream, vec![event(2)]))
        .await
        .expect("T2");
    assert!(store.read_all(None, 100).await.expect("read").is_empty());
    // T1 appends after T2 committed: higher position, lower transaction id.
    t1.query(
        "SELECT * FROM switchboard.append($1, NULL, NULL, NULL, ARRAY[$2::uuid], ARRAY['Noted'], \
         ARRAY[1::bigint], ARRAY['{}'::jsonb], ARRAY['{\"kind\":\"system\"}'::jsonb], \
         ARRAY[now()], ARRAY[NULL::uuid], ARRAY[NULL::uuid], ARRAY[NULL::uuid], \
         ARRAY[]::boolean[], ARRAY[]::text[], ARRAY[]::text[], \
         ARRAY[]::uuid[], ARRAY[]::bytea[], ARRAY[]::uuid[])",
        &[&org(1).as_uuid(), &event_id(1).as_uuid()],
    )
    .await
    .expect("T1 append");
    t1.batch_execute("COMMIT").await.expect("commit");
    let seen = settled(&store, None, 2).await;
    let ids: Vec<_> = seen.iter().map(|e| e.event_id).collect();
    assert_eq!(
        ids,
        vec![event_id(1), event_id(2)],
        "by transaction id first"
    );
    assert!(seen[0].position.sequence > seen[1].position.sequence);
    assert!(
        seen[0].position < seen[1].position,
        "Position order is log order"
    );
    assert_eq!(seen[1].position, t2.first_position);
}

/// Many writers whose transactions overlap, and a reader polling read_all
/// as fast as it can: the reader's sequence is exactly the final log.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn polling_reader_sees_the_final_order_under_overlapping_writers() {
    let store = fresh_store().await;
    let writers: Vec<_> = (0..6u128)
        .map(|w| {
            let store = store.clone();
            tokio::spawn(async move {
                for i in 0..40u128 {
                    store
                        .append(append(
                            org(w),
                            ExpectedVersion::Any,
                            vec![event(w * 1000 + i)],
                        ))
                        .await
                        .expect("append");
                }
            })
        })
        .collect();
    let reader = {
        let store = store.clone();
        tokio::spawn(async move {
            let mut seen = Vec::new();
            let mut after: Option<Position> = None;
            let deadline = Instant::now() + Duration::from_secs(120);
            while seen.len() < 240 && Instant::now() < deadline {
                for e in store.read_all(after, 3).await.expect("read") {
                    assert!(after.is_none_or(|p| e.position > p));
                    after = Some(e.position);
                    seen.push(e.event_id);
                }
            }
            seen
        })
    };
    for w in writers {
        w.await.expect("writer");
    }
    let seen = reader.await.expect("reader");
    let log: Vec<_> = settled(&store, None, 240)
        .await
        .into_iter()
        .map(|e| e.event_id)
        .collect();
    assert_eq!(log.len(), 240);
    assert_eq!(
        seen, log,
        "the polling reader saw the final log, in order, nothing skipped"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn migrate_is_explicit_idempotent_and_safe_concurrently() {
    let admin = server().expect("server");
    let config = create_database(&admin, None).await.expect("empty database");
    let store = store_on(&config).await;
    // Never at first use: an unmigrated database refuses appends with a typed error.
    let err = store
        .append(append(org(1), ExpectedVersion::Any, vec![event(1)]))
        .await
        .expect_err("no schema yet");
    assert!(
        matches!(
            err,
            StoreError::Unavailable {
                maybe_committed: false,
                ..
            }
        ),
        "{err:?}"
    );
    // The driver's error is kept as the source, as a `PostgresError`.
    let pg = postgres_source(&err).expect("the driver's error as the source");
    assert_eq!(pg.code(), Some("42P01"), "undefined table: {pg}");
    let runs = futures_util::future::join_all((0..4).map(|_| store.migrate())).await;
    let applied: usize = runs.into_iter().map(|r| r.expect("migrate")).sum();
    assert_eq!(applied, 7, "exactly one caller applied each migration once");
    assert_eq!(store.migrate().await.expect("again"), 0);
    store
        .append(append(org(1), ExpectedVersion::NoStream, vec![event(1)]))
        .await
        .expect("append after migrate");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn import_stream_copies_a_fresh_stream() {
    let store = fresh_store().await;
    let a = org(1);
    let events: Vec<_> = (0..5000).map(event).collect();
    let o = store
        .import_stream(a, events.clone())
        .await
        .expect("import");
    assert_eq!(
        (o.first_version, o.last_version, o.duplicate),
        (1, 5000, false)
    );
    assert_eq!(store.stream_version(a).await.expect("version"), 5000);
    let back = store.read_stream(a, 1, None, 10_000).await.expect("read");
    assert_eq!(back.len(), 5000);
    for (i, (sent, got)) in events.iter().zip(&back).enumerate() {
        assert_eq!(got.version, i as u64 + 1);
        assert_eq!((got.event_id, &got.payload), (sent.event_id, &sent.payload));
    }
    assert!(back.windows(2).all(|w| w[0].position < w[1].position));
    assert_eq!(back[0].position, o.first_position);
    assert_eq!(back[4999].position, o.last_position);
    let all = settled(&store, None, 5000).await;
    assert_eq!(
        all, back,
        "one commit, visible to read_all in version order"
    );

    // Not onto an existing stream; not with a recorded id; nothing written on refusal.
    assert!(matches!(
        store.import_stream(a, vec![event(9000)]).await,
        Err(StoreError::Conflict { actual: 5000, .. })
    ));
    let b = org(2);
    assert_eq!(
        store.import_stream(b, vec![event(9001), event(17)]).await,
        Err(StoreError::DuplicateEvent {
            event_id: event_id(17)
        })
    );
    assert_eq!(
        store.import_stream(b, vec![event(9001), event(9001)]).await,
        Err(StoreError::DuplicateEvent {
            event_id: event_id(9001)
        })
    );
    assert!(matches!(
        store.import_stream(b, vec![]).await,
        Err(StoreError::InvalidRequest { .. })
    ));
    assert_eq!(store.stream_version(b).await.expect("version"), 0);
    // Appends continue after an import.
    let next = store
        .append(append(a, ExpectedVersion::Exact(5000), vec![event(9002)]))
        .await
        .expect("append after import");
    assert_eq!(next.first_version, 5001);
}

/// Notifications wake waiters in another store instance, and still do after
/// the LISTEN connection is killed (it reconnects).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn notifications_wake_other_instances_and_survive_a_killed_listener() {
    let config = try_fresh_database().await.expect("database");
    // Polling so slow that only a notification can explain a quick wake-up.
    let slow_poll = PostgresOptions {
        poll_interval: Duration::from_secs(60),
        ..PostgresOptions::default()
    };
    let waiter = PostgresStore::connect_config(config.clone(), slow_poll)
        .await
        .expect("waiter");
    let writer = store_on(&config).await;
    let admin = raw(&config).await;

    for round in 0..3u128 {
        if round == 1 {
            // Kill the waiter's LISTEN connection (found by what it runs).
            let killed: Vec<i32> = admin
                .query(
                    "SELECT pid FROM pg_stat_activity \
                     WHERE datname = current_database() AND query ILIKE 'LISTEN%' \
                       AND pg_terminate_backend(pid)",
                    &[],
                )
                .await
                .expect("terminate listeners")
                .iter()
                .map(|r| r.get(0))
                .collect();
            assert!(!killed.is_empty(), "there were listeners to kill");
            // The listener comes back by itself: a new LISTEN session.
            let deadline = Instant::now() + Duration::from_secs(10);
            loop {
                let back: i64 = admin
                    .query_one(
                        "SELECT count(*) FROM pg_stat_activity \
                         WHERE datname = current_database() AND query ILIKE 'LISTEN%' \
                           AND pid <> ALL($1)",
                        &[&killed],
                    )
                    .await
                    .expect("listeners")
                    .get(0);
                if back >= 1 {
                    break;
                }
                assert!(
                    Instant::now() < deadline,
                    "no LISTEN session came back within 10 s of the kill"
                );
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        }
        let after = waiter
            .read_all(None, 1000)
            .await
            .expect("read")
            .last()
            .map(|e| e.position);
        let t = Instant::now();
        let wait = waiter.wait_for_events(after, Duration::from_secs(60));
        let write = async {
            tokio::time::sleep(Duration::from_millis(100)).await;
            writer
                .append(append(org(1), ExpectedVersion::Any, vec![event(round)]))
                .await
                .expect("append")
        };
        let ((), _) = tokio::join!(wait, write);
        assert!(
            t.elapsed() < Duration::from_secs(10),
            "round {round}: woken by a notification, not the 60 s poll ({:?})",
            t.elapsed()
        );
    }
}

/// Appends are announced at most once per couple of milliseconds, yet the
/// last append of a burst is always announced: a subscriber in another
/// instance that only wakes on notifications (its poll is a minute) reads
/// every event of a burst from 8 concurrent writers without waiting out a poll.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_burst_of_appends_shares_notifications_and_the_last_one_is_announced() {
    const WRITERS: u128 = 8;
    const APPENDS: u128 = 25;
    // A private cluster: the read horizon is cluster-wide, and the other
    // tests' transactions (one holds a transaction open on purpose) would
    // hide events for longer than the waiter's re-checks.
    let cluster = TestCluster::start().expect("private PostgreSQL cluster");
    let admin: tokio_postgres::Config = cluster.url("postgres").parse().expect("url");
    let config = create_database(&admin, None).await.expect("database");
    store_on(&config).await.migrate().await.expect("migrate");
    let slow_poll = PostgresOptions {
        poll_interval: Duration::from_secs(60),
        ..PostgresOptions::default()
    };
    let reader = PostgresStore::connect_config(config.clone(), slow_poll)
        .await
        .expect("reader");
    let writer = store_on(&config).await;
    let t = Instant::now();
    let writers = (0..WRITERS).map(|w| {
        let writer = writer.clone();
        async move {
            for i in 0..APPENDS {
                writer
                    .append(append(
                        org(100 + w),
                        ExpectedVersion::Any,
                        vec![event(1_000 * (w + 1) + i)],
                    ))
                    .await
                    .expect("append");
            }
        }
    });
    let read = async {
        let mut after = None;
        let mut seen = 0u128;
        while seen < WRITERS * APPENDS {
            reader.wait_for_events(after, Duration::from_secs(60)).await;
            let page = reader.read_all(after, 1_000).await.expect("read");
            if let Some(last) = page.last() {
                after = Some(last.position);
            }
            seen += page.len() as u128;
        }
        seen
    };
    let (seen, _) = tokio::join!(read, futures_util::future::join_all(writers));
    assert_eq!(seen, WRITERS * APPENDS);
    assert!(
        t.elapsed() < Duration::from_secs(30),
        "every wait ended on a notification, none on the 60 s poll ({:?})",
        t.elapsed()
    );
}

#[tokio::test]
async fn unreachable_server_is_a_typed_error() {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("port")
        .port();
    // Nothing listens on the port any more.
    let url = format!("host=127.0.0.1 port={port} user=postgres connect_timeout=2");
    let err = PostgresStore::connect(&url)
        .await
        .expect_err("nothing listens");
    assert!(
        matches!(
            err,
            StoreError::Unavailable {
                maybe_committed: false,
                ..
            }
        ),
        "{err:?}"
    );
    let err = PostgresStore::connect("postgres://[bad")
        .await
        .expect_err("bad url");
    assert!(matches!(err, StoreError::InvalidRequest { .. }), "{err:?}");
}

/// Direct callers of the SQL function get a typed refusal, not a half-written append.
#[tokio::test]
async fn append_function_refuses_malformed_direct_calls() {
    let config = try_fresh_database().await.expect("database");
    let client = raw(&config).await;
    let err = client
        .query(
            "SELECT * FROM switchboard.append($1, NULL, NULL, NULL, ARRAY[]::uuid[], ARRAY[]::text[], \
             ARRAY[]::bigint[], ARRAY[]::jsonb[], ARRAY[]::jsonb[], ARRAY[]::timestamptz[], \
             ARRAY[]::uuid[], ARRAY[]::uuid[], ARRAY[]::uuid[], \
             ARRAY[]::boolean[], ARRAY[]::text[], ARRAY[]::text[], \
             ARRAY[]::uuid[], ARRAY[]::bytea[], ARRAY[]::uuid[])",
            &[&org(1).as_uuid()],
        )
        .await
        .expect_err("no events");
    assert_eq!(
        err.code(),
        Some(&tokio_postgres::error::SqlState::INVALID_PARAMETER_VALUE)
    );
    let err = client
        .query(
            "SELECT * FROM switchboard.append($1, NULL, NULL, NULL, ARRAY[$2::uuid], ARRAY[]::text[], \
             ARRAY[1::bigint], ARRAY['{}'::jsonb], ARRAY['{}'::jsonb], ARRAY[now()], \
             ARRAY[NULL::uuid], ARRAY[NULL::uuid], ARRAY[NULL::uuid], \
             ARRAY[]::boolean[], ARRAY[]::text[], ARRAY[]::text[], \
             ARRAY[]::uuid[], ARRAY[]::bytea[], ARRAY[]::uuid[])",
            &[&org(1).as_uuid(), &event_id(1).as_uuid()],
        )
        .await
        .expect_err("arrays of different lengths");
    assert_eq!(
        err.code(),
        Some(&tokio_postgres::error::SqlState::INVALID_PARAMETER_VALUE)
    );
    let store = store_on(&config).await;
    assert_eq!(store.stream_version(org(1)).await.expect("version"), 0);
}

/// A database at schema 4 (command ids store-wide, keys apart from appends,
/// snapshots in clear) migrates forward: its commands are found under their
/// streams (their digest unknown, so never compared), a deletion whose
/// erasure never completed is completed, and schema-1 snapshots, which held
/// profiles in clear, are gone.
#[tokio::test]
async fn migration_5_scopes_commands_completes_erasures_and_drops_clear_snapshots() {
    use switchboard_core::erasure::KeyStore;
    use switchboard_core::store::SnapshotStore;
    let config = database_at_schema(4).await;
    let client = raw(&config).await;
    let (stream, command) = (org(1).as_uuid(), uuid::Uuid::from_u128(77));
    let (deleted, kept) = (uuid::Uuid::from_u128(5), uuid::Uuid::from_u128(6));
    // Version 4's append: 15 parameters, command ids store-wide.
    client
        .query(
            "SELECT * FROM switchboard.append($1, 0, $2, ARRAY[$3::uuid], ARRAY['UserDeleted'], \
             ARRAY[1::bigint], ARRAY[jsonb_build_object('user', $4::uuid)], \
             ARRAY['{\"kind\":\"system\"}'::jsonb], ARRAY[now()], ARRAY[$2::uuid], \
             ARRAY[NULL::uuid], ARRAY[NULL::uuid], ARRAY[]::boolean[], ARRAY[]::text[], \
             ARRAY[]::text[])",
            &[&stream, &command, &event_id(1).as_uuid(), &deleted],
        )
        .await
        .expect("old append");
    client
        .execute(
            "INSERT INTO switchboard.data_keys (org_id, user_id, key) VALUES \
             ($1, $2, decode(repeat('ab', 32), 'hex')), ($1, $3, decode(repeat('cd', 32), 'hex'))",
            &[&stream, &deleted, &kept],
        )
        .await
        .expect("keys");
    client
        .execute(
            "INSERT INTO switchboard.snapshots (stream_id, version, schema_version, state) \
             VALUES ($1, 1, 1, '{\"users\": {\"profile\": {\"email\": \"carl@old.example\"}}}')",
            &[&stream],
        )
        .await
        .expect("old snapshot");
    // A JSON snapshot of schema 2 (sealed profiles): migration 7 drops it
    // with the column's type.
    client
        .execute(
            "INSERT INTO switchboard.snapshots (stream_id, version, schema_version, state) \
             VALUES ($1, 2, 2, '{\"users\": {}}')",
            &[&stream],
        )
        .await
        .expect("schema-2 snapshot");

    let store = store_on(&config).await;
    assert_eq!(
        store.migrate().await.expect("migrate"),
        3,
        "migrations 5, 6 and 7"
    );
    let found = store
        .find_command(org(1), switchboard_core::CommandId::from_uuid(command))
        .await
        .expect("find")
        .expect("the old command, under its stream");
    assert_eq!((found.outcome.last_version, found.digest), (1, None));
    assert_eq!(
        store
            .find_command(org(2), switchboard_core::CommandId::from_uuid(command))
            .await
            .expect("find"),
        None
    );
    let users = [
        switchboard_core::UserId::from_uuid(deleted),
        switchboard_core::UserId::from_uuid(kept),
    ];
    let keys = store.load_keys(org(1), &users).await.expect("keys");
    assert!(
        !keys.contains_key(&users[0]),
        "the unfinished erasure is completed"
    );
    assert!(keys.contains_key(&users[1]), "a live user's key is kept");
    assert_eq!(store.load_snapshot(org(1), None).await.expect("load"), None);
    // Binary snapshots are stored after the migration.
    let binary = switchboard_core::store::Snapshot {
        stream: org(1),
        version: 1,
        schema_version: 3,
        state: vec![0, 159, 255, 1],
    };
    store.save_snapshot(binary.clone()).await.expect("save");
    assert_eq!(
        store.load_snapshot(org(1), None).await.expect("load"),
        Some(binary)
    );
    // The new append works on the migrated data.
    store
        .append(append(org(1), ExpectedVersion::Exact(1), vec![event(2)]))
        .await
        .expect("append after the migration");
}

/// Every row of `switchboard.commands` (the table before migration 6, the
/// view after), one line each, in command order.
async fn command_rows(client: &tokio_postgres::Client) -> Vec<String> {
    client
        .query(
            "SELECT concat_ws(' ', command_id, stream_id, first_version, last_version, \
             first_commit, first_sequence, last_commit, last_sequence, encode(digest, 'hex')) \
             FROM switchboard.commands ORDER BY command_id",
            &[],
        )
        .await
        .expect("commands")
        .iter()
        .map(|r| r.get(0))
        .collect()
}

/// The migrations up to `upto` (inclusive), applied by hand and recorded as
/// `migrate` would: a database as an older build left it.
async fn database_at_schema(upto: i32) -> tokio_postgres::Config {
    let admin = server().expect("server");
    let config = create_database(&admin, None).await.expect("database");
    let client = raw(&config).await;
    client
        .batch_execute(include_str!("../sql/migrations_table.sql"))
        .await
        .expect("migrations table");
    for m in PostgresStore::migrations().take_while(|m| m.version <= upto) {
        let (version, name, sql) = (m.version, m.name, m.sql);
        client.batch_execute(sql).await.expect("old migration");
        client
            .execute(
                "INSERT INTO switchboard.schema_migrations (version, name) VALUES ($1, $2)",
                &[&version, &name],
            )
            .await
            .expect("record it");
    }
    config
}

/// A database at schema 5 (a `commands` table) migrates forward to the
/// command folded into its first event: every recorded command is found
/// with the same outcome (versions, commits, positions, digest), a repeat
/// is a duplicate with that outcome, a repeat with another digest is
/// refused, another stream's use of the id is not found, the `commands`
/// view shows what the table held, and appends go on.
#[tokio::test]
async fn migration_6_moves_commands_onto_their_first_events() {
    use switchboard_core::store::{CommandDigest, CommandRecord};
    use switchboard_core::CommandId;
    let config = database_at_schema(5).await;
    let client = raw(&config).await;
    // Two appends as schema 5 recorded them: through the lean statement of
    // that time (events, then a `commands` row), one of 3 events with a
    // digest, one of 1 event without, in two streams.
    let lean_v5 = "
WITH appended AS (
    INSERT INTO switchboard.events (stream_id, version, event_id, event_type, schema_version,
            payload, actor, occurred_at)
    SELECT $1, e.ord, e.id, 'Noted', 1, '{}', '{\"kind\":\"system\"}', now()
      FROM unnest($2::uuid[]) WITH ORDINALITY AS e(id, ord)
     ORDER BY e.ord
    RETURNING version, position, tx_id
)
INSERT INTO switchboard.commands (stream_id, command_id, digest, first_version,
        last_version, first_commit, first_sequence, last_commit, last_sequence)
SELECT $1, $3, $4, min(version), max(version), max(tx_id::text::bigint),
       min(position), max(tx_id::text::bigint), max(position)
  FROM appended";
    let (a, b) = (org(1), org(2));
    let (c1, c2) = (
        CommandId::from_uuid(uuid::Uuid::from_u128(71)),
        CommandId::from_uuid(uuid::Uuid::from_u128(72)),
    );
    let digest = CommandDigest([7; 32]);
    client
        .execute(
            lean_v5,
            &[
                &a.as_uuid(),
                &vec![
                    event_id(1).as_uuid(),
                    event_id(2).as_uuid(),
                    event_id(3).as_uuid(),
                ],
                &c1.as_uuid(),
                &Some(digest.0.to_vec()),
            ],
        )
        .await
        .expect("old append with a digest");
    client
        .execute(
            lean_v5,
            &[
                &b.as_uuid(),
                &vec![event_id(4).as_uuid()],
                &c2.as_uuid(),
                &None::<Vec<u8>>,
            ],
        )
        .await
        .expect("old append without a digest");
    let before = command_rows(&client).await;
    assert_eq!(before.len(), 2);

    let store = store_on(&config).await;
    assert_eq!(
        store.migrate().await.expect("migrate"),
        2,
        "migrations 6 and 7"
    );
    let after = command_rows(&client).await;
    assert_eq!(
        after, before,
        "every command kept, with its outcome and digest"
    );
    let first: CommandRecord = store
        .find_command(a, c1)
        .await
        .expect("find")
        .expect("moved command");
    assert_eq!(
        (
            first.outcome.stream,
            first.outcome.first_version,
            first.outcome.last_version
        ),
        (a, 1, 3)
    );
    assert_eq!(first.digest, Some(digest));
    assert!(first.outcome.first_position < first.outcome.last_position);
    let second = store
        .find_command(b, c2)
        .await
        .expect("find")
        .expect("moved");
    assert_eq!((second.outcome.last_version, second.digest), (1, None));
    assert_eq!(
        store.find_command(b, c1).await.expect("find"),
        None,
        "scoped to a"
    );

    // A repeat: the first outcome, whatever the expected version says now.
    let mut again = append(a, ExpectedVersion::NoStream, vec![event(10)]);
    again.command_id = Some(c1);
    again.command_digest = Some(digest);
    let outcome = store.append(again.clone()).await.expect("duplicate");
    assert!(outcome.duplicate);
    assert_eq!(
        (
            outcome.first_position,
            outcome.last_position,
            outcome.last_version
        ),
        (first.outcome.first_position, first.outcome.last_position, 3)
    );
    again.command_digest = Some(CommandDigest([8; 32]));
    assert!(matches!(
        store.append(again).await,
        Err(StoreError::IdempotencyKeyReused { command_id }) if command_id == c1
    ));
    // New appends record their command on their first event.
    let mut next = append(a, ExpectedVersion::Exact(3), vec![event(11), event(12)]);
    next.command_id = Some(CommandId::from_uuid(uuid::Uuid::from_u128(73)));
    let recorded = store
        .append(next.clone())
        .await
        .expect("append after the migration");
    assert_eq!((recorded.first_version, recorded.last_version), (4, 5));
    let repeat = store.append(next).await.expect("repeat");
    assert!(repeat.duplicate);
    assert_eq!(
        (repeat.first_position, repeat.last_position),
        (recorded.first_position, recorded.last_position)
    );
    assert_eq!(store.stream_version(a).await.expect("version"), 5);
    let flagged: i64 = client
        .query_one(
            "SELECT count(*) FROM switchboard.events WHERE append_command_id IS NOT NULL",
            &[],
        )
        .await
        .expect("count")
        .get(0);
    assert_eq!(
        flagged, 3,
        "one row per recorded command, on its first event"
    );
}

/// The function path (an append with key changes) names a recorded event
/// id whatever else the append carries: an append that only shreds a key
/// used to skip the function's event-id check and leave the duplicate to
/// the unique index, whose constraint name the client then had to read.
#[tokio::test]
async fn an_append_that_only_shreds_a_key_names_a_recorded_event_id() {
    use switchboard_core::store::{AppendRequest, KeyChange};
    let store = fresh_store().await;
    let (a, b) = (org(1), org(2));
    store
        .append(append(a, ExpectedVersion::NoStream, vec![event(1)]))
        .await
        .expect("first");
    let shred = AppendRequest {
        keys: vec![KeyChange::Shred {
            subject: switchboard_core::UserId::from_uuid(uuid::Uuid::from_u128(9)),
        }],
        ..append(b, ExpectedVersion::NoStream, vec![event(2), event(1)])
    };
    assert_eq!(
        store.append(shred).await,
        Err(StoreError::DuplicateEvent {
            event_id: event_id(1)
        })
    );
    assert_eq!(store.stream_version(b).await.expect("version"), 0);
}

/// The `PostgresError` at the end of a `StoreError`'s source chain, if any.
fn postgres_source(err: &StoreError) -> Option<&PostgresError> {
    let mut next = std::error::Error::source(err);
    while let Some(e) = next {
        if let Some(pg) = e
            .downcast_ref::<switchboard_core::store::BackendError>()
            .and_then(|b| b.downcast_ref::<PostgresError>())
        {
            return Some(pg);
        }
        next = e.source();
    }
    None
}

/// PostgreSQL's `DETAIL` quotes row values (`Key (email)=(…) already
/// exists`); the error a `StoreError` carries as its source shows SQLSTATE,
/// table, constraint and message, and its chain ends there.
#[tokio::test]
async fn the_source_of_a_store_error_carries_no_row_values() {
    let admin = server().expect("server");
    let config = create_database(&admin, None).await.expect("database");
    let client = raw(&config).await;
    client
        .batch_execute(
            "CREATE TABLE people (email text CONSTRAINT people_email_key UNIQUE, age int);
             INSERT INTO people VALUES ('ann.secret@example.com', 41);",
        )
        .await
        .expect("table");
    let dup = client
        .execute(
            "INSERT INTO people VALUES ('ann.secret@example.com', 42)",
            &[],
        )
        .await
        .expect_err("unique violation");
    // The driver's own chain does show the value: that is what is kept out.
    let mut chain = String::new();
    let mut next: Option<&dyn std::error::Error> = Some(&dup);
    while let Some(e) = next {
        chain.push_str(&format!("{e} {e:?}"));
        next = e.source();
    }
    assert!(chain.contains("ann.secret@example.com"), "{chain}");

    let pg = PostgresError::new(dup);
    assert_eq!(pg.code(), Some("23505"));
    assert_eq!(pg.constraint(), Some("people_email_key"));
    assert_eq!(pg.table(), Some("people"));
    let shown = format!("{pg} {pg:?}");
    assert!(
        shown.contains("23505") && shown.contains("people_email_key"),
        "{shown}"
    );
    assert!(
        !shown.contains("ann.secret") && !shown.contains("41"),
        "{shown}"
    );
    assert!(
        std::error::Error::source(&pg).is_none(),
        "the chain ends here"
    );

    // A data exception's message quotes the input: withheld.
    let bad = client
        .query("SELECT 'ann.secret@example.com'::uuid", &[])
        .await
        .expect_err("not a uuid");
    let pg = PostgresError::new(bad);
    assert_eq!(pg.code(), Some("22P02"));
    let shown = format!("{pg} {pg:?}");
    assert!(!shown.contains("ann.secret"), "{shown}");

    // Through a `StoreError`: `source()` is the wrapper, and nothing in the
    // whole chain, printed either way, shows a value.
    let err = StoreError::Corrupt {
        reason: "example".into(),
        source: Some(switchboard_core::store::BackendError::new(
            PostgresError::new(
                client
                    .execute(
                        "INSERT INTO people VALUES ('ann.secret@example.com', 43)",
                        &[],
                    )
                    .await
                    .expect_err("unique violation"),
            ),
        )),
    };
    assert!(postgres_source(&err).is_some());
    let mut chain = String::new();
    let mut next: Option<&dyn std::error::Error> = Some(&err);
    while let Some(e) = next {
        chain.push_str(&format!("{e} {e:?} "));
        next = e.source();
    }
    assert!(chain.contains("23505"), "{chain}");
    assert!(!chain.contains("ann.secret"), "{chain}");
}
