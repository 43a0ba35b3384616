//! Switchboard's PostgreSQL store against its peer, `cqrs-es` 0.5 with
//! `postgres-es` 0.5 (sqlx), and against a prepared plain-SQL yardstick, all
//! on one throwaway server in the same run.
//!
//! `cargo bench -p switchboard-bench-peers --bench peers` (starts a throwaway
//! cluster, as the tests do, unless `DATABASE_URL` is set). `PEERS_RUN_SECS`
//! sets how long each append configuration runs per side (default 4 s).
//!
//! Not a criterion measurement loop (`harness = false`, like
//! `benches/postgres.rs`): the figures need concurrent writers and the three
//! sides run back to back in alternating slices on the same server state, so
//! that load from elsewhere on a shared machine hits all of them alike. The
//! output is a Markdown table (see BENCHMARKS.md §3).
//!
//! * **append**: 1, 10 and 100 events per append, 1 and 8 writers, each on a
//!   stream of its own. Switchboard: `EventStore::append` (expected version,
//!   command id recorded). Peer: `PostgresEventRepository::persist` — what a
//!   `CqrsFramework::execute` without snapshots writes (one `INSERT` per
//!   event in `BEGIN … COMMIT`; the aggregate's load before it is not
//!   timed). Yardstick: one prepared `INSERT … SELECT FROM unnest(…)` per
//!   batch into `plain_events`, whose only unique key is
//!   `(stream_id, version)`. Same events (the mix of a real organization),
//!   payloads, envelope fields, batch sizes and writers on all three sides.
//! * **load**: one 100 000-event stream, read whole. Switchboard:
//!   `read_stream` in pages of `MAX_READ_PAGE` (rows decoded into
//!   `RecordedEvent`, payload validated into raw JSON text). Peer:
//!   `get_events` (rows into `SerializedEvent`, payload parsed to a JSON
//!   value). Yardstick: a prepared `SELECT` of the same stream's rows from
//!   `plain_events`, streamed and counted, not decoded.

#[path = "../../common/mod.rs"]
mod common;
#[path = "../../common/yardstick.rs"]
mod yardstick;

use cqrs_es::persist::{PersistedEventRepository, SerializedEvent};
use cqrs_es::{Aggregate, DomainEvent};
use futures_util::{pin_mut, TryStreamExt};
use postgres_es::PostgresEventRepository;
use serde::{Deserialize, Serialize};
use std::sync::Arc;
use std::time::{Duration, Instant};
use switchboard::store::{AppendRequest, EventStore, ExpectedVersion, NewEvent, MAX_READ_PAGE};
use switchboard::*;
use switchboard_store_postgres::{testing, PostgresOptions, PostgresStore};
use tokio_postgres::types::ToSql;
use tokio_postgres::{Client, NoTls, Statement};

/// Alternating slices per configuration.
const SLICES: u32 = 8;
/// Events in the stream that is loaded whole.
const LOAD_EVENTS: usize = 100_000;
/// Passes of each side over the loaded stream (alternating; the first is a warm-up).
const LOAD_PASSES: usize = 6;

const PLAIN_TABLE: &str = "
CREATE TABLE plain_events (
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

/// postgres-es's own schema (its `db/init.sql`), in `public`.
const PEER_TABLE: &str = "
CREATE TABLE events (
    aggregate_type text                         NOT NULL,
    aggregate_id   text                         NOT NULL,
    sequence       bigint CHECK (sequence >= 0) NOT NULL,
    event_type     text                         NOT NULL,
    event_version  text                         NOT NULL,
    payload        json                         NOT NULL,
    metadata       json                         NOT NULL,
    PRIMARY KEY (aggregate_type, aggregate_id, sequence)
);
CREATE TABLE snapshots (
    aggregate_type   text                                 NOT NULL,
    aggregate_id     text                                 NOT NULL,
    last_sequence    bigint CHECK (last_sequence >= 0)    NOT NULL,
    current_snapshot bigint CHECK (current_snapshot >= 0) NOT NULL,
    payload          json                                 NOT NULL,
    PRIMARY KEY (aggregate_type, aggregate_id, last_sequence)
)";

const PLAIN_INSERT: &str = "
INSERT INTO plain_events (stream_id, version, event_id, event_type, schema_version, payload,
                          actor, occurred_at, command_id, causation_id, correlation_id)
SELECT * FROM unnest($1::uuid[], $2::bigint[], $3::uuid[], $4::text[], $5::bigint[],
                     $6::jsonb[], $7::jsonb[], $8::timestamptz[], $9::uuid[], $10::uuid[],
                     $11::uuid[])";

const PLAIN_SELECT: &str = "
SELECT stream_id, version, position, event_id, event_type, schema_version, payload,
       actor, occurred_at, command_id, causation_id, correlation_id
  FROM plain_events WHERE stream_id = $1 ORDER BY version";

/// Empties every table the appends write. `switchboard.commands` is a table
/// before migration 0006 and a view over `events` after it.
const TRUNCATE: &str = "TRUNCATE plain_events, events, switchboard.events, switchboard.streams, \
                        switchboard.claims;
DO $$ BEGIN
  IF (SELECT relkind FROM pg_class WHERE oid = 'switchboard.commands'::regclass) = 'r' THEN
    TRUNCATE switchboard.commands;
  END IF;
END $$";

fn fail(what: &str, e: impl std::fmt::Display) -> ! {
    panic!("peers bench: {what}: {e}")
}

/// The peer's aggregate: only its type name is used (`persist` and
/// `get_events` are called directly, without commands).
#[derive(Default, Serialize, Deserialize)]
struct Org;

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
struct OrgEvent(serde_json::Value);

impl DomainEvent for OrgEvent {
    fn event_type(&self) -> String {
        "OrgEvent".into()
    }
    fn event_version(&self) -> String {
        "1".into()
    }
}

#[derive(Debug)]
struct Never;
impl std::fmt::Display for Never {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("never")
    }
}
impl std::error::Error for Never {}

impl Aggregate for Org {
    const TYPE: &'static str = "Organization";
    type Command = ();
    type Event = OrgEvent;
    type Error = Never;
    type Services = ();

    async fn handle(
        &mut self,
        _command: (),
        _services: &(),
        _sink: &cqrs_es::event_sink::EventSink<Self>,
    ) -> Result<(), Never> {
        Ok(())
    }

    fn apply(&mut self, _event: OrgEvent) {}
}

/// `events` as the peer stores them: versions `from..` of `stream`, the
/// Switchboard envelope (actor, time, ids) as the peer's metadata.
fn peer_events(stream: &str, from: usize, events: &[NewEvent]) -> Vec<SerializedEvent> {
    events
        .iter()
        .enumerate()
        .map(|(i, e)| {
            SerializedEvent::new(
                stream.to_string(),
                from + i,
                Org::TYPE.to_string(),
                e.event_type.clone(),
                e.schema_version.to_string(),
                // The peer takes a `Value` (converted outside the timing).
                e.payload.to_value().unwrap_or_default(),
                serde_json::to_value(&e.metadata).unwrap_or_default(),
            )
        })
        .collect()
}

async fn connect(config: &tokio_postgres::Config) -> Client {
    let (client, connection) = match config.connect(NoTls).await {
        Ok(c) => c,
        Err(e) => fail("connect", e),
    };
    tokio::spawn(connection);
    client
}

/// A sqlx pool of 8 connections on the same database as `config`.
async fn sqlx_pool(config: &tokio_postgres::Config) -> sqlx::PgPool {
    use sqlx::postgres::{PgConnectOptions, PgPoolOptions};
    use tokio_postgres::config::Host;
    let mut options = PgConnectOptions::new();
    match config.get_hosts().first() {
        Some(Host::Tcp(h)) => options = options.host(h),
        Some(Host::Unix(p)) => options = options.socket(p),
        None => {}
    }
    if let Some(port) = config.get_ports().first() {
        options = options.port(*port);
    }
    if let Some(user) = config.get_user() {
        options = options.username(user);
    }
    if let Some(db) = config.get_dbname() {
        options = options.database(db);
    }
    if let Some(pw) = config.get_password() {
        options = options.password(&String::from_utf8_lossy(pw));
    }
    match PgPoolOptions::new()
        .max_connections(8)
        .connect_with(options)
        .await
    {
        Ok(p) => p,
        Err(e) => fail("sqlx pool", e),
    }
}

/// What timed slices of one side measured.
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
    fn rate(&self) -> f64 {
        self.events as f64 / self.elapsed.as_secs_f64()
    }
    fn p50(&mut self) -> Duration {
        self.latencies.sort_unstable();
        self.latencies
            .get(self.latencies.len() / 2)
            .copied()
            .unwrap_or_default()
    }
}

/// Which side a writer task drives.
#[derive(Clone)]
enum Side {
    Store(PostgresStore),
    Plain(Arc<(Client, Statement)>),
    Peer(Arc<PostgresEventRepository>),
}

/// `writers` tasks appending `batch` events per append for `run`, each on
/// its own new stream.
async fn appends(
    sides: Vec<Side>,
    sample: &Arc<Vec<NewEvent>>,
    batch: usize,
    run: Duration,
    into: &mut Slices,
) {
    let start = Instant::now();
    let deadline = start + run;
    let tasks: Vec<_> = sides
        .into_iter()
        .enumerate()
        .map(|(w, side)| {
            let sample = sample.clone();
            tokio::spawn(async move {
                let stream = uuid::Uuid::now_v7();
                let peer_stream = stream.to_string();
                let mut version = 0u64;
                let mut latencies = Vec::new();
                let mut i = w * 97;
                while Instant::now() < deadline {
                    let from = (i * batch) % (sample.len() - batch);
                    i += 1;
                    let events = yardstick::fresh(&sample[from..from + batch]);
                    match &side {
                        Side::Store(store) => {
                            let request = AppendRequest {
                                stream: OrgId::from_uuid(stream),
                                expected: if version == 0 {
                                    ExpectedVersion::NoStream
                                } else {
                                    ExpectedVersion::Exact(version)
                                },
                                command_id: Some(CommandId::from_uuid(uuid::Uuid::now_v7())),
                                events,
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
                        Side::Plain(plain) => {
                            let t = Instant::now();
                            yardstick::plain_insert(
                                &plain.0,
                                &plain.1,
                                stream,
                                version as i64 + 1,
                                &events,
                            )
                            .await;
                            latencies.push(t.elapsed());
                            version += batch as u64;
                        }
                        Side::Peer(repo) => {
                            let events = peer_events(&peer_stream, version as usize + 1, &events);
                            let t = Instant::now();
                            if let Err(e) = repo.persist::<Org>(&events, None).await {
                                fail("postgres-es persist", e);
                            }
                            latencies.push(t.elapsed());
                            version += batch as u64;
                        }
                    }
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

fn ms(d: Duration) -> String {
    format!("{:.2} ms", d.as_secs_f64() * 1e3)
}

async fn run() {
    let run_for = Duration::from_secs_f64(
        std::env::var("PEERS_RUN_SECS")
            .ok()
            .and_then(|s| s.parse().ok())
            .unwrap_or(4.0),
    );
    let config = match testing::try_fresh_database().await {
        Ok(c) => c,
        Err(e) => fail("database", e),
    };
    let admin = connect(&config).await;
    if let Err(e) = admin.batch_execute(PLAIN_TABLE).await {
        fail("plain table", e);
    }
    if let Err(e) = admin.batch_execute(PEER_TABLE).await {
        fail("peer table", e);
    }
    if let Ok(row) = admin
        .query_one(
            "SELECT version(), current_setting('fsync'), current_setting('synchronous_commit')",
            &[],
        )
        .await
    {
        let s = |i: usize| row.get::<_, String>(i);
        println!(
            "server: {} | fsync={} synchronous_commit={}",
            s(0),
            s(1),
            s(2)
        );
    }
    let store = match PostgresStore::connect_config(
        config.clone(),
        PostgresOptions {
            max_connections: 8,
            ..PostgresOptions::default()
        },
    )
    .await
    {
        Ok(s) => s,
        Err(e) => fail("store", e),
    };
    let peer = Arc::new(PostgresEventRepository::new(sqlx_pool(&config).await));

    // Events of a real organization: its build-up, then the typical mix.
    let t = Instant::now();
    let f = common::history(10_000, 150_000);
    let recorded = common::record(f.state.id, &f.events);
    let history: Vec<NewEvent> = recorded
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
    let sample = Arc::new(history[history.len() - 50_000..].to_vec());
    let mean = |events: &[NewEvent]| {
        events.iter().map(|e| e.payload.len()).sum::<usize>() as f64 / events.len() as f64
    };
    println!(
        "fixture: {} events in {:.1} s; append sample: the last 50 000 (the mix), mean payload {:.0} bytes of JSON",
        history.len(),
        t.elapsed().as_secs_f64(),
        mean(&sample)
    );

    println!();
    println!("| events/append | writers | Switchboard events/s | p50 | prepared plain INSERT events/s | p50 | postgres-es events/s | p50 | Switchboard/plain | Switchboard/postgres-es |");
    println!("|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|");
    for batch in [1usize, 10, 100] {
        for writers in [1usize, 8] {
            if let Err(e) = admin.batch_execute(TRUNCATE).await {
                fail("truncate", e);
            }
            let (mut s, mut p, mut q) = (Slices::default(), Slices::default(), Slices::default());
            let slice = run_for / SLICES;
            for _ in 0..SLICES {
                let sides = (0..writers).map(|_| Side::Store(store.clone())).collect();
                appends(sides, &sample, batch, slice, &mut s).await;
                let mut plain = Vec::with_capacity(writers);
                for _ in 0..writers {
                    let client = connect(&config).await;
                    let insert = match client.prepare(PLAIN_INSERT).await {
                        Ok(s) => s,
                        Err(e) => fail("prepare", e),
                    };
                    plain.push(Side::Plain(Arc::new((client, insert))));
                }
                appends(plain, &sample, batch, slice, &mut p).await;
                let sides = (0..writers).map(|_| Side::Peer(peer.clone())).collect();
                appends(sides, &sample, batch, slice, &mut q).await;
            }
            println!(
                "| {batch} | {writers} | {:.0} | {} | {:.0} | {} | {:.0} | {} | {:.0} % | {:.2}× |",
                s.rate(),
                ms(s.p50()),
                p.rate(),
                ms(p.p50()),
                q.rate(),
                ms(q.p50()),
                100.0 * s.rate() / p.rate(),
                s.rate() / q.rate(),
            );
        }
    }

    // One 100 000-event stream, in all three tables.
    if let Err(e) = admin.batch_execute(TRUNCATE).await {
        fail("truncate", e);
    }
    let events: Vec<NewEvent> = history[..LOAD_EVENTS.min(history.len())].to_vec();
    let n = events.len();
    println!();
    println!(
        "load: one stream of {n} events (the organization's build-up and mix), mean payload {:.0} bytes",
        mean(&events)
    );
    let org = OrgId::from_uuid(uuid::Uuid::now_v7());
    if let Err(e) = store.import_stream(org, events.clone()).await {
        fail("import", e);
    }
    let plain_client = connect(&config).await;
    let insert = match plain_client.prepare(PLAIN_INSERT).await {
        Ok(s) => s,
        Err(e) => fail("prepare", e),
    };
    let peer_id = org.as_uuid().to_string();
    for (k, chunk) in events.chunks(1000).enumerate() {
        yardstick::plain_insert(
            &plain_client,
            &insert,
            org.as_uuid(),
            (k * 1000) as i64 + 1,
            chunk,
        )
        .await;
        let chunk = peer_events(&peer_id, k * 1000 + 1, chunk);
        if let Err(e) = peer.persist::<Org>(&chunk, None).await {
            fail("postgres-es persist", e);
        }
    }
    drop(events);
    if let Err(e) = admin.batch_execute("VACUUM ANALYZE").await {
        fail("vacuum", e);
    }
    let select = match plain_client.prepare(PLAIN_SELECT).await {
        Ok(s) => s,
        Err(e) => fail("prepare", e),
    };
    let (mut ours, mut theirs, mut plain) = (Vec::new(), Vec::new(), Vec::new());
    for pass in 0..LOAD_PASSES {
        let t = Instant::now();
        let mut count = 0usize;
        let mut from = 1u64;
        loop {
            let page = match store.read_stream(org, from, None, MAX_READ_PAGE).await {
                Ok(p) => p,
                Err(e) => fail("read_stream", e),
            };
            let Some(last) = page.last() else { break };
            from = last.version + 1;
            count += page.len();
        }
        let a = t.elapsed();
        assert_eq!(count, n, "read_stream read the whole stream");
        let t = Instant::now();
        let got = match peer.get_events::<Org>(&peer_id).await {
            Ok(e) => e,
            Err(e) => fail("postgres-es get_events", e),
        };
        let b = t.elapsed();
        assert_eq!(got.len(), n, "postgres-es read the whole stream");
        drop(got);
        let t = Instant::now();
        let id = org.as_uuid();
        let rows = match plain_client
            .query_raw(&select, [&id as &(dyn ToSql + Sync)])
            .await
        {
            Ok(r) => r,
            Err(e) => fail("select", e),
        };
        pin_mut!(rows);
        let mut rows_seen = 0usize;
        loop {
            match rows.try_next().await {
                Ok(Some(_)) => rows_seen += 1,
                Ok(None) => break,
                Err(e) => fail("select row", e),
            }
        }
        let c = t.elapsed();
        assert_eq!(rows_seen, n, "the plain SELECT read the whole stream");
        if pass > 0 {
            ours.push(a);
            theirs.push(b);
            plain.push(c);
        }
    }
    let total = |v: &[Duration]| v.iter().sum::<Duration>().as_secs_f64() / v.len() as f64;
    let (a, b, c) = (total(&ours), total(&theirs), total(&plain));
    println!();
    println!(
        "| load of {n} events, mean of {} alternating passes | seconds | events/s |",
        LOAD_PASSES - 1
    );
    println!("|---|---:|---:|");
    println!(
        "| Switchboard read_stream (decoded to RecordedEvent) | {a:.3} | {:.0} |",
        n as f64 / a
    );
    println!(
        "| postgres-es get_events (decoded to SerializedEvent) | {b:.3} | {:.0} |",
        n as f64 / b
    );
    println!(
        "| prepared plain SELECT (rows counted, not decoded) | {c:.3} | {:.0} |",
        n as f64 / c
    );
    println!();
    println!(
        "load: Switchboard/postgres-es {:.2}×, Switchboard/plain SELECT {:.0} %, postgres-es/plain SELECT {:.0} %",
        b / a,
        100.0 * c / a,
        100.0 * c / b
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
