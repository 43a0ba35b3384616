//! Postgres: append, bulk import, read and replay, each measured in the same
//! run against the physical limit of the same server (plain SQL on a plain
//! table, no event-store logic).
//!
//! `cargo bench --bench postgres` (starts a throwaway cluster, as the tests
//! do, unless `DATABASE_URL` is set; then it creates its own database there).
//!
//! Not a criterion bench: criterion measures one closure at a time, while
//! these figures need concurrent writers, latency percentiles and a baseline
//! run back to back on the same server state. Each figure is one timed run
//! of [`RUN`] (appends) or one pass over the data (import, read, replay);
//! the output is a Markdown table (see BENCHMARKS.md).
//!
//! * **append**: `EventStore::append` (the `switchboard.append` function: one
//!   round trip, expected-version check, command id recorded, events via
//!   `UNNEST`) with 1, 10, 100 events per append and 1 or 8 writers on
//!   distinct organizations; against one multi-row `INSERT … SELECT FROM
//!   UNNEST(…)` per batch into `plain_events`, a table with the same columns
//!   and only `UNIQUE (stream_id, version)` (the least any event log needs).
//!   Both sides start from empty tables; autocommit per batch on both.
//! * **import**: `PostgresStore::import_stream` (binary COPY plus its checks)
//!   against a plain binary COPY of the same rows into `plain_events`.
//! * **read**: `read_all` in pages of 10 000 (rows decoded into
//!   `RecordedEvent`s, payloads validated into raw JSON text) against one plain
//!   `SELECT` of the same columns in the same order, rows streamed and
//!   counted, not decoded.
//! * **replay**: `CommandService::load` of a 1 000 000-event organization
//!   (read_stream pages, `codec::decode`, `evolve`), no snapshot.

mod common;
#[path = "common/yardstick.rs"]
mod yardstick;

use futures_util::{pin_mut, TryStreamExt};
use std::sync::Arc;
use std::time::{Duration, Instant};
use switchboard::service::CommandService;
use switchboard::store::{AppendRequest, EventStore, ExpectedVersion, NewEvent, MAX_READ_PAGE};
use switchboard::*;
use switchboard_store_postgres::{testing, PostgresOptions, PostgresStore};
use tokio_postgres::binary_copy::BinaryCopyInWriter;
use tokio_postgres::types::{Json, ToSql, Type};
use tokio_postgres::{Client, NoTls};

/// How long each append configuration runs, per side, in total.
const RUN: Duration = Duration::from_secs(4);
/// The store and the plain side alternate in this many slices of `RUN / SLICES`,
/// so that load from elsewhere on a shared machine hits both alike.
const SLICES: u32 = 8;
/// Events in the history for import, read and replay.
const HISTORY: usize = 1_000_000;

const PLAIN_TABLE: &str = "
CREATE TABLE IF NOT EXISTS plain_events (
    position        bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    stream_id       uuid NOT NULL,
    version         bigint NOT NULL,
    event_id        uuid NOT NULL,
    event_type      text NOT NULL,
    schema_version  bigint NOT NULL,
    payload         jsonb NOT NULL,
    actor           jsonb NOT NULL,
    occurred_at     timestamptz NOT NULL,
    command_id      uuid,
    causation_id    uuid,
    correlation_id  uuid,
    UNIQUE (stream_id, version)
)";

const PLAIN_INSERT: &str = "
INSERT INTO plain_events (stream_id, version, event_id, event_type, schema_version, payload,
                          actor, occurred_at, command_id, causation_id, correlation_id)
SELECT * FROM unnest($1::uuid[], $2::bigint[], $3::uuid[], $4::text[], $5::bigint[],
                     $6::jsonb[], $7::jsonb[], $8::timestamptz[], $9::uuid[], $10::uuid[],
                     $11::uuid[])";

/// The same batched INSERT straight into the store's own table (all its
/// indexes and defaults, none of the append function's logic): a diagnostic
/// that splits the gap between "more indexes" and "append logic".
const TABLE_INSERT: &str = "
INSERT INTO switchboard.events (stream_id, version, event_id, event_type, schema_version,
                                payload, actor, occurred_at, command_id, causation_id,
                                correlation_id)
SELECT * FROM unnest($1::uuid[], $2::bigint[], $3::uuid[], $4::text[], $5::bigint[],
                     $6::jsonb[], $7::jsonb[], $8::timestamptz[], $9::uuid[], $10::uuid[],
                     $11::uuid[])";

const PLAIN_COPY: &str = "
COPY plain_events (stream_id, version, event_id, event_type, schema_version, payload,
                   actor, occurred_at, command_id, causation_id, correlation_id)
FROM STDIN (FORMAT binary)";

/// The same binary COPY straight into the store's own table (diagnostic).
const TABLE_COPY: &str = "
COPY switchboard.events (stream_id, version, event_id, event_type, schema_version, payload,
                         actor, occurred_at, command_id, causation_id, correlation_id)
FROM STDIN (FORMAT binary)";

const PLAIN_SELECT: &str = "
SELECT stream_id, version, tx_id, position, event_id, event_type, schema_version, payload,
       actor, occurred_at, command_id, causation_id, correlation_id
  FROM switchboard.events ORDER BY tx_id, position";

/// The store's read_all query, verbatim.
const READ_ALL_SQL: &str = include_str!("../store-postgres/sql/read_all.sql");

/// Every table appends and imports write (`switchboard.commands` is a view
/// over `events` since migration 0006).
const TRUNCATE: &str = "TRUNCATE plain_events, switchboard.events, switchboard.streams, \
                        switchboard.claims, switchboard.snapshots";

fn fail(what: &str, e: impl std::fmt::Display) -> ! {
    panic!("postgres bench: {what}: {e}")
}

async fn connect(config: &tokio_postgres::Config) -> Client {
    let (client, connection) = match config.connect(NoTls).await {
        Ok(c) => c,
        Err(e) => fail("connect", e),
    };
    tokio::spawn(connection);
    client
}

/// The store on `config`, with a pool as large as the most writers a row runs.
async fn store_on(config: &tokio_postgres::Config) -> PostgresStore {
    let options = PostgresOptions {
        max_connections: 8,
        ..PostgresOptions::default()
    };
    match PostgresStore::connect_config(config.clone(), options).await {
        Ok(s) => s,
        Err(e) => fail("store", e),
    }
}

/// Throughput and latency of one append configuration.
struct Run {
    events_per_s: f64,
    p50: Duration,
    p99: Duration,
}

/// What timed slices measured: events, wall time, latency of every append.
#[derive(Default)]
struct Slices {
    events: usize,
    elapsed: Duration,
    latencies: Vec<Duration>,
}

impl Slices {
    fn add(&mut self, batch: usize, elapsed: Duration, latencies: Vec<Duration>) {
        self.events += latencies.len() * batch;
        self.elapsed += elapsed;
        self.latencies.extend(latencies);
    }
    fn summary(self) -> Run {
        summarize(self.events, self.elapsed, self.latencies)
    }
}

fn summarize(events: usize, elapsed: Duration, mut latencies: Vec<Duration>) -> Run {
    latencies.sort_unstable();
    let at = |q: f64| {
        latencies
            .get(((latencies.len() as f64 * q) as usize).min(latencies.len().saturating_sub(1)))
            .copied()
            .unwrap_or_default()
    };
    Run {
        events_per_s: events as f64 / elapsed.as_secs_f64(),
        p50: at(0.50),
        p99: at(0.99),
    }
}

/// `writers` tasks appending `batch` events per append for `run`, each on
/// its own new organization.
async fn store_appends(
    store: &PostgresStore,
    sample: &Arc<Vec<NewEvent>>,
    batch: usize,
    writers: usize,
    run: Duration,
    into: &mut Slices,
) {
    let start = Instant::now();
    let deadline = start + run;
    let tasks: Vec<_> = (0..writers)
        .map(|w| {
            let store = store.clone();
            let sample = sample.clone();
            tokio::spawn(async move {
                let org = OrgId::from_uuid(uuid::Uuid::now_v7());
                let mut version = 0u64;
                let mut latencies = Vec::new();
                let mut i = w * 97;
                while Instant::now() < deadline {
                    let from = (i * batch) % (sample.len() - batch);
                    i += 1;
                    let request = AppendRequest {
                        stream: org,
                        expected: if version == 0 {
                            ExpectedVersion::NoStream
                        } else {
                            ExpectedVersion::Exact(version)
                        },
                        command_id: Some(CommandId::from_uuid(uuid::Uuid::now_v7())),
                        events: yardstick::fresh(&sample[from..from + batch]),
                        claims: vec![],
                        command_digest: None,
                        keys: Vec::new(),
                    };
                    let t = Instant::now();
                    match store.append(request).await {
                        Ok(o) => version = o.last_version,
                        Err(e) => fail("append", e),
                    }
                    latencies.push(t.elapsed());
                }
                latencies
            })
        })
        .collect();
    let mut all = Vec::new();
    for t in tasks {
        match t.await {
            Ok(l) => all.extend(l),
            Err(e) => fail("writer task", e),
        }
    }
    into.add(batch, start.elapsed(), all);
}

/// The same as [`store_appends`] through plain batched INSERTs, one client per writer.
async fn plain_appends(
    config: &tokio_postgres::Config,
    sql: &'static str,
    sample: &Arc<Vec<NewEvent>>,
    batch: usize,
    writers: usize,
    run: Duration,
    into: &mut Slices,
) {
    let mut clients = Vec::with_capacity(writers);
    for _ in 0..writers {
        let client = connect(config).await;
        let insert = match client.prepare(sql).await {
            Ok(s) => s,
            Err(e) => fail("prepare the plain insert", e),
        };
        clients.push((client, insert));
    }
    let start = Instant::now();
    let deadline = start + run;
    let tasks: Vec<_> = clients
        .into_iter()
        .enumerate()
        .map(|(w, (client, insert))| {
            let sample = sample.clone();
            tokio::spawn(async move {
                let stream = uuid::Uuid::now_v7();
                let mut version = 1i64;
                let mut latencies = Vec::new();
                let mut i = w * 97;
                while Instant::now() < deadline {
                    let from = (i * batch) % (sample.len() - batch);
                    i += 1;
                    let events = yardstick::fresh(&sample[from..from + batch]);
                    let t = Instant::now();
                    yardstick::plain_insert(&client, &insert, stream, version, &events).await;
                    latencies.push(t.elapsed());
                    version += batch as i64;
                }
                latencies
            })
        })
        .collect();
    let mut all = Vec::new();
    for t in tasks {
        match t.await {
            Ok(l) => all.extend(l),
            Err(e) => fail("writer task", e),
        }
    }
    into.add(batch, start.elapsed(), all);
}

async fn plain_copy(client: &mut Client, sql: &str, stream: uuid::Uuid, events: &[NewEvent]) {
    let tx = match client.transaction().await {
        Ok(t) => t,
        Err(e) => fail("begin", e),
    };
    let sink = match tx.copy_in(sql).await {
        Ok(s) => s,
        Err(e) => fail("copy in", e),
    };
    let writer = BinaryCopyInWriter::new(
        sink,
        &[
            Type::UUID,
            Type::INT8,
            Type::UUID,
            Type::TEXT,
            Type::INT8,
            Type::JSONB,
            Type::JSONB,
            Type::TIMESTAMPTZ,
            Type::UUID,
            Type::UUID,
            Type::UUID,
        ],
    );
    pin_mut!(writer);
    for (i, e) in events.iter().enumerate() {
        let version = i as i64 + 1;
        let actor = serde_json::to_value(&e.metadata.actor).unwrap_or_default();
        let command = e.metadata.command_id.map(|c| c.as_uuid());
        let id = e.event_id.as_uuid();
        let schema = i64::from(e.schema_version);
        let payload = Json(e.payload.as_raw());
        let values: [&(dyn ToSql + Sync); 11] = [
            &stream,
            &version,
            &id,
            &e.event_type,
            &schema,
            &payload,
            &actor,
            &e.metadata.occurred_at,
            &command,
            &e.metadata.causation_id,
            &e.metadata.correlation_id,
        ];
        if let Err(e) = writer.as_mut().write(&values).await {
            fail("copy row", e);
        }
    }
    if let Err(e) = writer.finish().await {
        fail("copy finish", e);
    }
    if let Err(e) = tx.commit().await {
        fail("commit", e);
    }
}

/// One row per (events per append, writers): the store's append against the
/// prepared plain INSERT on the same server, in alternating slices; with
/// `diagnostic`, the same INSERT into the store's own table too (its indexes,
/// none of the append's logic).
async fn append_table(
    store: &PostgresStore,
    config: &tokio_postgres::Config,
    admin: &Client,
    sample: &Arc<Vec<NewEvent>>,
    batches: &[usize],
    diagnostic: bool,
) {
    println!();
    if diagnostic {
        println!("| events/append | writers | store events/s | store p50 | store p99 | plain INSERT events/s | plain p50 | plain p99 | store/plain | INSERT into store table events/s | that/plain |");
        println!("|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|");
    } else {
        println!("| events/append | writers | store events/s | store p50 | store p99 | plain INSERT events/s | plain p50 | plain p99 | store/plain |");
        println!("|---:|---:|---:|---:|---:|---:|---:|---:|---:|");
    }
    for &batch in batches {
        for writers in [1usize, 8] {
            if let Err(e) = admin.batch_execute(TRUNCATE).await {
                fail("truncate", e);
            }
            let (mut s, mut p, mut d) = (Slices::default(), Slices::default(), Slices::default());
            for _ in 0..SLICES {
                let slice = RUN / SLICES;
                store_appends(store, sample, batch, writers, slice, &mut s).await;
                plain_appends(config, PLAIN_INSERT, sample, batch, writers, slice, &mut p).await;
                if diagnostic {
                    plain_appends(config, TABLE_INSERT, sample, batch, writers, slice, &mut d)
                        .await;
                }
            }
            let (s, p) = (s.summary(), p.summary());
            let row = format!(
                "| {batch} | {writers} | {:.0} | {} | {} | {:.0} | {} | {} | {:.0} % |",
                s.events_per_s,
                ms(s.p50),
                ms(s.p99),
                p.events_per_s,
                ms(p.p50),
                ms(p.p99),
                100.0 * s.events_per_s / p.events_per_s,
            );
            if !diagnostic {
                println!("{row}");
                continue;
            }
            let d = d.summary();
            println!(
                "{row} {:.0} | {:.0} % |",
                d.events_per_s,
                100.0 * d.events_per_s / p.events_per_s,
            );
        }
    }
}

/// The 1- and 10-event appends again on a durable server (`fsync=on`, full
/// page writes): what a production server pays per commit. Its own
/// throwaway cluster, whatever `DATABASE_URL` says (the setting is the
/// server's, not the database's).
async fn durable_appends(sample: &Arc<Vec<NewEvent>>) {
    let cluster = match testing::TestCluster::start_durable() {
        Ok(c) => c,
        Err(e) => fail("durable cluster", e),
    };
    let admin_config: tokio_postgres::Config = match cluster.url("postgres").parse() {
        Ok(c) => c,
        Err(e) => fail("durable cluster url", e),
    };
    let config = match testing::create_database(&admin_config, None).await {
        Ok(c) => c,
        Err(e) => fail("durable database", e),
    };
    let admin = connect(&config).await;
    if let Err(e) = admin.batch_execute(PLAIN_TABLE).await {
        fail("plain table", e);
    }
    let store = store_on(&config).await;
    if let Err(e) = store.migrate().await {
        fail("migrate", e);
    }
    println!();
    println!("durable server (fsync=on, full_page_writes=on, synchronous_commit=on):");
    append_table(&store, &config, &admin, sample, &[1, 10], false).await;
}

fn ms(d: Duration) -> String {
    format!("{:.2} ms", d.as_secs_f64() * 1e3)
}

async fn run() {
    let config = match testing::try_fresh_database().await {
        Ok(c) => c,
        Err(e) => fail("database", e),
    };
    let mut admin = connect(&config).await;
    if let Err(e) = admin.batch_execute(PLAIN_TABLE).await {
        fail("plain table", e);
    }
    let settings = admin
        .query_one(
            "SELECT version(), current_setting('fsync'), current_setting('synchronous_commit'), \
             current_setting('shared_buffers')",
            &[],
        )
        .await;
    if let Ok(row) = settings {
        let s = |i: usize| row.get::<_, String>(i);
        println!(
            "server: {} | fsync={} synchronous_commit={} shared_buffers={}",
            s(0),
            s(1),
            s(2),
            s(3)
        );
    }
    let store = store_on(&config).await;

    // Realistic events: the history of a 100 000-user organization and the mix.
    let t = Instant::now();
    let f = common::history(100_000, HISTORY);
    let org = f.state.id;
    let recorded = common::record(org, &f.events);
    let history: Vec<NewEvent> = recorded[..HISTORY.min(recorded.len())]
        .iter()
        .map(|r| NewEvent {
            event_id: r.event_id,
            event_type: r.event_type.clone(),
            schema_version: r.schema_version,
            payload: r.payload.clone(),
            metadata: r.metadata.clone(),
        })
        .collect();
    drop(recorded);
    let avg_payload = history
        .iter()
        .take(100_000)
        .map(|e| e.payload.len())
        .sum::<usize>() as f64
        / 100_000f64;
    println!(
        "fixture: {} events built in {:.1} s, mean payload {avg_payload:.0} bytes of JSON",
        history.len(),
        t.elapsed().as_secs_f64()
    );
    // A sample from the mix part of the history (mostly small events).
    let sample = Arc::new(history[history.len() - 50_000..].to_vec());

    append_table(&store, &config, &admin, &sample, &[1, 10, 100], true).await;
    durable_appends(&sample).await;

    // Bulk import of the whole history: store's COPY-based import vs plain COPY.
    if let Err(e) = admin.batch_execute(TRUNCATE).await {
        fail("truncate", e);
    }
    // Diagnostic first: plain COPY into the store's table (all its indexes),
    // then empty it again for the real import.
    let renamed = yardstick::fresh(&history);
    let t = Instant::now();
    plain_copy(&mut admin, TABLE_COPY, uuid::Uuid::now_v7(), &renamed).await;
    let table_copy = t.elapsed();
    drop(renamed);
    if let Err(e) = admin.batch_execute(TRUNCATE).await {
        fail("truncate", e);
    }
    let t = Instant::now();
    let copy = history.clone();
    let cloning = t.elapsed();
    let t = Instant::now();
    if let Err(e) = store.import_stream(org, copy).await {
        fail("import", e);
    }
    let import = t.elapsed();
    let t = Instant::now();
    plain_copy(&mut admin, PLAIN_COPY, org.as_uuid(), &history).await;
    let plain = t.elapsed();
    let n = history.len() as f64;
    println!();
    println!(
        "import {} events: store import_stream {:.0} events/s ({:.1} s), plain COPY {:.0} events/s ({:.1} s), store/plain {:.0} % (cloning the input outside the timing: {:.1} s)",
        history.len(),
        n / import.as_secs_f64(),
        import.as_secs_f64(),
        n / plain.as_secs_f64(),
        plain.as_secs_f64(),
        100.0 * plain.as_secs_f64() / import.as_secs_f64(),
        cloning.as_secs_f64()
    );
    println!(
        "diagnostic: plain COPY into the store's table (its indexes, no import logic): {:.0} events/s ({:.1} s), {:.0} % of plain COPY",
        n / table_copy.as_secs_f64(),
        table_copy.as_secs_f64(),
        100.0 * plain.as_secs_f64() / table_copy.as_secs_f64()
    );
    drop(history);
    if let Err(e) = admin.batch_execute("VACUUM ANALYZE").await {
        fail("vacuum", e);
    }

    // Read everything in order: read_all pages vs one plain SELECT, twice each
    // (the first pass warms the cache; the second is reported).
    let mut read_all = Duration::ZERO;
    let mut select = Duration::ZERO;
    let mut counted = (0usize, 0usize);
    for _ in 0..2 {
        let t = Instant::now();
        let mut after = None;
        let mut count = 0;
        loop {
            let page = match store.read_all(after, MAX_READ_PAGE).await {
                Ok(p) => p,
                Err(e) => fail("read_all", e),
            };
            let Some(last) = page.last() else { break };
            after = Some(last.position);
            count += page.len();
        }
        read_all = t.elapsed();
        let t = Instant::now();
        let rows = match admin
            .query_raw(PLAIN_SELECT, std::iter::empty::<&(dyn ToSql + Sync)>())
            .await
        {
            Ok(r) => r,
            Err(e) => fail("select", e),
        };
        pin_mut!(rows);
        let mut plain_count = 0;
        loop {
            match rows.try_next().await {
                Ok(Some(_)) => plain_count += 1,
                Ok(None) => break,
                Err(e) => fail("select row", e),
            }
        }
        select = t.elapsed();
        counted = (count, plain_count);
    }
    // Diagnostic: the store's own read_all SQL, same pages, rows not decoded:
    // separates the query (horizon, paging) from the decoding of rows.
    let t = Instant::now();
    let (mut commit, mut sequence, mut raw_count) = (0i64, 0i64, 0usize);
    loop {
        let limit = MAX_READ_PAGE as i64;
        let rows = match admin
            .query(READ_ALL_SQL, &[&commit, &sequence, &limit])
            .await
        {
            Ok(r) => r,
            Err(e) => fail("read_all sql", e),
        };
        let Some(last) = rows.last() else { break };
        commit = last.get("commit");
        sequence = last.get("position");
        raw_count += rows.len();
    }
    let raw = t.elapsed();
    println!(
        "read all {} events in order: read_all {:.0} events/s ({:.2} s), plain SELECT {:.0} rows/s ({:.2} s, {} rows), read_all/plain {:.0} %",
        counted.0,
        counted.0 as f64 / read_all.as_secs_f64(),
        read_all.as_secs_f64(),
        counted.1 as f64 / select.as_secs_f64(),
        select.as_secs_f64(),
        counted.1,
        100.0 * select.as_secs_f64() / read_all.as_secs_f64()
    );
    println!(
        "diagnostic: read_all's SQL in the same pages, rows not decoded: {:.0} rows/s ({:.2} s, {raw_count} rows)",
        raw_count as f64 / raw.as_secs_f64(),
        raw.as_secs_f64()
    );

    // Replay from Postgres: load the organization through the service, no snapshot.
    let service = CommandService::new(
        store.clone(),
        Arc::new(FixedClock::new(common::now())),
        Arc::new(SequentialIds::new(5)),
        Arc::new(SeededSecrets::new(5)),
    );
    let t = Instant::now();
    let state = match service.load(org).await {
        Ok(s) => s,
        Err(e) => fail("load", e),
    };
    let load = t.elapsed();
    println!(
        "replay from Postgres (CommandService::load, read_stream pages + decode + evolve, no snapshot): {} events in {:.2} s = {:.0} events/s, {} users",
        state.version,
        load.as_secs_f64(),
        state.version as f64 / load.as_secs_f64(),
        state.users.len()
    );
}

fn main() {
    // Two worker threads: the machine has two cores (BENCHMARKS.md, machine).
    let rt = match tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => fail("runtime", e),
    };
    rt.block_on(run());
}
