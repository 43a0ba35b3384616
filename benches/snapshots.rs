//! Snapshots of large organizations: the codec, the size, the write and the
//! load, up to a cold load of a 100 000-user organization from PostgreSQL.
//!
//! `cargo bench --bench snapshots` — add `SWITCHBOARD_BENCH_MILLION=1` for
//! the 1 000 000-user rows (several GiB of memory and a few minutes).
//!
//! * **codec** (criterion, `snapshot_codec/*`): the state of a 10 000-user
//!   organization through `serde` with `postcard` and with `ciborium` (the
//!   two compact binary candidates), and with `serde_json` (the previous
//!   form), encode and decode; the sizes are printed.
//! * **load** (criterion, `snapshot_load/*`): a cold `CommandService::load`
//!   on the memory store of an organization whose snapshot is at its head:
//!   fetch, decode, one key look-up per 1 000 users, open every user's
//!   sealed part, rebuild the email index. The loaded state is freed
//!   outside the timing (`iter_with_large_drop`): freeing it is not part of
//!   a load, whose state stays in the cache.
//! * **cold load from PostgreSQL** (`snapshot_load_postgres/100000`): the
//!   same on a throwaway PostgreSQL 15 server (or `DATABASE_URL`), with the
//!   organization's 1 000 000-event history imported beneath the snapshot.
//! * **1 000 000 users** (opt-in, printed): build, snapshot size and write
//!   time, load time, and a decide + evolve round against 100 users.

mod common;

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, SamplingMode};
use std::sync::Arc;
use std::time::{Duration, Instant};
use switchboard::memory::MemoryStore;
use switchboard::service::CommandService;
use switchboard::store::{
    AppendRequest, EventStore, ExpectedVersion, NewEvent, RecordedEvent, MAX_EVENTS_PER_APPEND,
};
use switchboard::*;

fn new_event(r: &RecordedEvent) -> NewEvent {
    NewEvent {
        event_id: r.event_id,
        event_type: r.event_type.clone(),
        schema_version: r.schema_version,
        payload: r.payload.clone(),
        metadata: r.metadata.clone(),
    }
}

fn service<S: switchboard::store::Store>(store: S) -> CommandService<S> {
    CommandService::new(
        store,
        Arc::new(FixedClock::new(common::now())),
        Arc::new(SequentialIds::new(9)),
        Arc::new(SeededSecrets::new(9)),
    )
}

/// A memory store holding `f`'s history and a snapshot at its head.
fn stored(rt: &tokio::runtime::Runtime, f: &common::Fixture) -> MemoryStore {
    let org = f.state.id;
    let store = MemoryStore::new();
    let records = common::record(org, &f.events);
    rt.block_on(async {
        for chunk in records.chunks(MAX_EVENTS_PER_APPEND) {
            let request = AppendRequest {
                stream: org,
                expected: ExpectedVersion::Any,
                command_id: None,
                events: chunk.iter().map(new_event).collect(),
                claims: vec![],
                command_digest: None,
                keys: Vec::new(),
            };
            if let Err(e) = store.append(request).await {
                panic!("fixture append failed: {e}");
            }
        }
        if let Err(e) = service(store.clone()).write_snapshot(&f.state).await {
            panic!("snapshot: {e}");
        }
    });
    store
}

/// Whether a benchmark id can match the filters given on the command line
/// (criterion's positional arguments; `^` and `$` anchor, as in its regex):
/// the setup of a row nobody asked for — the 100 000-user fixture, the
/// PostgreSQL import — is skipped. No filter: every row.
fn wanted(id: &str) -> bool {
    // Criterion's options that take a value: their value is no filter.
    const WITH_VALUE: &[&str] = &[
        "--baseline",
        "--baseline-lenient",
        "--save-baseline",
        "--sample-size",
        "--warm-up-time",
        "--measurement-time",
        "--nresamples",
        "--noise-threshold",
        "--confidence-level",
        "--significance-level",
        "--profile-time",
        "--load-baseline",
        "--output-format",
        "--format",
        "--color",
        "--plotting-backend",
        "--logfile",
    ];
    let args: Vec<String> = std::env::args().skip(1).collect();
    let mut filters = Vec::new();
    let mut skip_next = false;
    for a in &args {
        if skip_next {
            skip_next = false;
        } else if a.starts_with('-') {
            skip_next = WITH_VALUE.contains(&a.as_str());
        } else {
            filters.push(a.as_str());
        }
    }
    filters.is_empty()
        || filters.iter().any(|f| {
            let (start, f) = f.strip_prefix('^').map_or((false, *f), |f| (true, f));
            let (end, f) = f.strip_suffix('$').map_or((false, f), |f| (true, f));
            match (start, end) {
                (true, true) => id == f,
                (true, false) => id.starts_with(f),
                (false, true) => id.ends_with(f),
                (false, false) => id.contains(f),
            }
        })
}

fn codecs(c: &mut Criterion) {
    let rows = ["postcard", "ciborium", "json"]
        .iter()
        .flat_map(|c| ["encode", "decode"].map(|op| format!("snapshot_codec/10000/{c}_{op}")));
    if !rows.into_iter().any(|id| wanted(&id)) {
        return;
    }
    let f = common::build(10_000, 7, false);
    let state = &f.state;
    let postcard = postcard::to_stdvec(state).expect("postcard encodes");
    let mut cbor = Vec::new();
    ciborium::into_writer(state, &mut cbor).expect("ciborium encodes");
    let json = serde_json::to_vec(state).expect("json encodes");
    println!(
        "snapshot_codec/10000 sizes: postcard {} B, ciborium {} B, json {} B",
        postcard.len(),
        cbor.len(),
        json.len()
    );
    let mut group = c.benchmark_group("snapshot_codec/10000");
    group
        .sample_size(20)
        .measurement_time(Duration::from_secs(4));
    group.bench_function("postcard_encode", |b| {
        b.iter(|| postcard::to_stdvec(state).map(|v| v.len()))
    });
    group.bench_function("postcard_decode", |b| {
        b.iter(|| postcard::from_bytes::<Organization>(&postcard).map(|o| o.version))
    });
    group.bench_function("ciborium_encode", |b| {
        b.iter(|| {
            let mut out = Vec::with_capacity(cbor.len());
            ciborium::into_writer(state, &mut out).map(|()| out.len())
        })
    });
    group.bench_function("ciborium_decode", |b| {
        b.iter(|| ciborium::from_reader::<Organization, _>(cbor.as_slice()).map(|o| o.version))
    });
    group.bench_function("json_encode", |b| {
        b.iter(|| serde_json::to_vec(state).map(|v| v.len()))
    });
    group.bench_function("json_decode", |b| {
        b.iter(|| serde_json::from_slice::<Organization>(&json).map(|o| o.version))
    });
    group.finish();
}

fn loads(c: &mut Criterion) {
    let rt = match tokio::runtime::Builder::new_current_thread().build() {
        Ok(rt) => rt,
        Err(e) => panic!("tokio runtime: {e}"),
    };
    let mut group = c.benchmark_group("snapshot_load");
    group
        .sample_size(10)
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(5))
        .sampling_mode(SamplingMode::Flat);
    for users in [10_000usize, 100_000] {
        if !wanted(&format!("snapshot_load/{users}")) {
            continue;
        }
        let f = common::build(users, 7, true);
        let store = stored(&rt, &f);
        let org = f.state.id;
        let size = rt
            .block_on(switchboard::store::SnapshotStore::load_snapshot(
                &store, org, None,
            ))
            .ok()
            .flatten()
            .map_or(0, |s| s.state.len());
        println!(
            "snapshot_load/{users}: snapshot of {size} B ({} per user) at version {}",
            size / users,
            f.state.version
        );
        let loaded = rt.block_on(service(store.clone()).load(org));
        assert_eq!(
            loaded.as_ref().ok(),
            Some(&f.state),
            "the snapshot opens to the state"
        );
        group.bench_with_input(BenchmarkId::from_parameter(users), &users, |b, _| {
            // The state is returned and freed outside the timing: a load
            // ends with the state in the cache, freeing it is an eviction's.
            b.iter_with_large_drop(|| rt.block_on(service(store.clone()).load(org)))
        });
    }
    group.finish();
}

fn postgres_cold_load(c: &mut Criterion) {
    use switchboard_store_postgres::{testing, PostgresOptions, PostgresStore};
    if !wanted("snapshot_load_postgres/100000") {
        return;
    }
    let rt = match tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => panic!("tokio runtime: {e}"),
    };
    let t = Instant::now();
    // Just under the import limit of 1 000 000 events (a round adds ~10).
    let f = common::history(100_000, 999_985);
    let org = f.state.id;
    let history: Vec<NewEvent> = common::record(org, &f.events)
        .iter()
        .map(new_event)
        .collect();
    let store = rt.block_on(async {
        let config = match testing::try_fresh_database().await {
            Ok(c) => c,
            Err(e) => panic!("database: {e}"),
        };
        let store = match PostgresStore::connect_config(config, PostgresOptions::default()).await {
            Ok(s) => s,
            Err(e) => panic!("store: {e}"),
        };
        if let Err(e) = store.migrate().await {
            panic!("migrate: {e}");
        }
        if let Err(e) = store.import_stream(org, history).await {
            panic!("import: {e}");
        }
        store
    });
    println!(
        "snapshot_load_postgres/100000: {} events, {} users imported in {:.1} s",
        f.state.version,
        f.state.users.len(),
        t.elapsed().as_secs_f64()
    );
    let t = Instant::now();
    // The first snapshot creates the data keys of the (unsealed) history.
    if let Err(e) = rt.block_on(service(store.clone()).write_snapshot(&f.state)) {
        panic!("snapshot: {e}");
    }
    println!(
        "snapshot_load_postgres/100000: first snapshot (100 000 keys created) in {:.1} s",
        t.elapsed().as_secs_f64()
    );
    let t = Instant::now();
    if let Err(e) = rt.block_on(service(store.clone()).write_snapshot(&f.state)) {
        panic!("snapshot: {e}");
    }
    println!(
        "snapshot_load_postgres/100000: snapshot written (seal, encode, save) in {:.2} s",
        t.elapsed().as_secs_f64()
    );
    let loaded = rt.block_on(service(store.clone()).load(org));
    assert_eq!(loaded.as_ref().ok(), Some(&f.state));
    let mut group = c.benchmark_group("snapshot_load_postgres");
    group
        .sample_size(10)
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(8))
        .sampling_mode(SamplingMode::Flat);
    group.bench_function("100000", |b| {
        b.iter_with_large_drop(|| rt.block_on(service(store.clone()).load(org)))
    });
    group.finish();
}

/// 1 000 000 users (opt-in): printed, not sampled — one build takes minutes.
fn million(_: &mut Criterion) {
    if std::env::var_os("SWITCHBOARD_BENCH_MILLION").is_none() {
        println!("million: skipped (set SWITCHBOARD_BENCH_MILLION=1)");
        return;
    }
    let rt = match tokio::runtime::Builder::new_current_thread().build() {
        Ok(rt) => rt,
        Err(e) => panic!("tokio runtime: {e}"),
    };
    let t = Instant::now();
    let mut big = common::build(1_000_000, 7, true);
    println!(
        "million: built {} users, {} events in {:.1} s",
        big.state.users.len(),
        big.events.len(),
        t.elapsed().as_secs_f64()
    );
    let t = Instant::now();
    let store = stored(&rt, &big);
    println!(
        "million: history appended and first snapshot written in {:.1} s",
        t.elapsed().as_secs_f64()
    );
    let writer = service(store.clone());
    let t = Instant::now();
    let snapshot = match rt.block_on(writer.seal_snapshot(&big.state)) {
        Ok(s) => s,
        Err(e) => panic!("snapshot: {e}"),
    };
    println!(
        "million: snapshot sealed + encoded in {:.2} s: {} B ({} per user; fits the limit: {})",
        t.elapsed().as_secs_f64(),
        snapshot.state.len(),
        snapshot.state.len() / 1_000_000,
        snapshot.validate().is_ok()
    );
    drop(snapshot);
    let t = Instant::now();
    let loaded = rt.block_on(service(store.clone()).load(big.state.id));
    println!(
        "million: cold load from the snapshot (memory store) in {:.2} s",
        t.elapsed().as_secs_f64()
    );
    assert_eq!(loaded.as_ref().ok(), Some(&big.state));
    drop((loaded, store));
    // Decide + evolve of the mix at 1 000 000 users against 100 users.
    let mut small = common::build(100, 7, false);
    let time = |f: &mut common::Fixture| {
        let t = Instant::now();
        for i in 0..300 {
            common::mix_round(f, i, false);
        }
        t.elapsed()
    };
    let (s, b) = (time(&mut small), time(&mut big));
    println!(
        "million: 300 mix rounds: 100 users {s:?}, 1 000 000 users {b:?}: ratio {:.2}",
        b.as_secs_f64() / s.as_secs_f64()
    );
}

criterion_group!(benches, codecs, loads, postgres_cold_load, million);
criterion_main!(benches);
