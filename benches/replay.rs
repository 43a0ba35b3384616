//! Replay: events per second folding a long history (1 million events) into
//! state, from memory; and loading an organization through
//! `CommandService::load` from snapshot + tail against a full replay.
//!
//! `cargo bench --bench replay`
//!
//! The history is an organization of 100 000 users (invite, accept, sign in:
//! 400 061 events) followed by rounds of the typical mix until it reaches
//! 1 000 000 events. Ways to fold it, one core:
//! * `fold_decoded` — `fold`, i.e. `evolve` of each event by reference, the
//!   events already in memory as `Event`s (`evolve` folds a copy);
//! * `fold_owned` — `evolve_owned` of the same events by value, their
//!   strings moved into the state (the copy of the events is made outside
//!   the timing): the fold alone;
//! * `decode_evolve` — what a reader of borrowed records does:
//!   `codec::decode` (raw JSON text → `Event` in one pass, no `Value`) then
//!   `evolve_owned` (the decoded event is not needed afterwards);
//! * `decode_owned_evolve` — what the service's catch-up does with the page a
//!   store returned: `codec::decode_owned` then `evolve_owned` (the same work
//!   as `decode_evolve` since payloads are raw text);
//! * `open_decode_evolve_sealed` — as the service reads what it wrote:
//!   personal data sealed under per-user keys (R-LIFE-06), opened with
//!   `codec::decode_with` and the key ring (keys already loaded), then `evolve_owned`;
//! * `parse_decode_evolve` — as `decode_evolve` from the stored JSON bytes,
//!   validated into a `Box<RawValue>` first as a store does when it reads
//!   them (PostgreSQL's `jsonb` column), i.e. the whole read path after the
//!   query: validate, decode, fold;
//! * `yardstick_parse_only` — the same texts parsed into
//!   `serde::de::IgnoredAny`: reading the JSON and nothing else, the floor
//!   of any replay of this log. After the group the bench prints, from
//!   alternating passes of one run, `parse_decode_evolve` / yardstick.
//!
//! `cargo bench --bench replay -- decode_only` compares decoding alone, the
//! raw text straight into `Event` against text → `Value` → `Event`.
//!
//! The Postgres replay is in the `postgres` bench.

mod common;

use criterion::{
    criterion_group, criterion_main, BatchSize, BenchmarkId, Criterion, SamplingMode, Throughput,
};
use std::sync::Arc;
use std::time::Duration;
use switchboard::codec;
use switchboard::memory::MemoryStore;
use switchboard::service::CommandService;
use switchboard::store::{
    AppendRequest, EventStore, ExpectedVersion, NewEvent, MAX_EVENTS_PER_APPEND,
};
use switchboard::*;

const HISTORY: usize = 1_000_000;

fn replay(c: &mut Criterion) {
    let f = common::history(100_000, HISTORY);
    let org = f.state.id;
    let events = f.events;
    let records = common::record(org, &events);
    let texts: Vec<(String, u32, Vec<u8>)> = records
        .iter()
        .map(|r| {
            (
                r.event_type.clone(),
                r.schema_version,
                r.payload.get().as_bytes().to_vec(),
            )
        })
        .collect();
    let n = events.len() as u64;
    let mut group = c.benchmark_group("replay_1m");
    group
        .sample_size(10)
        .sampling_mode(SamplingMode::Flat)
        .warm_up_time(Duration::from_millis(500))
        .measurement_time(Duration::from_secs(15))
        .throughput(Throughput::Elements(n));
    group.bench_function("fold_decoded", |b| {
        b.iter(|| fold(org, &events).version);
    });
    group.bench_function("fold_owned", |b| {
        b.iter_batched(
            || events.clone(),
            |owned| {
                let mut state = Organization::empty(org);
                for e in owned {
                    evolve_owned(&mut state, e);
                }
                state.version
            },
            BatchSize::PerIteration,
        );
    });
    group.bench_function("decode_evolve", |b| {
        b.iter(|| {
            let mut state = Organization::empty(org);
            for r in &records {
                if let Ok(e) = codec::decode(r) {
                    evolve_owned(&mut state, e);
                }
            }
            state.version
        });
    });
    // What the service's catch-up does: it owns each page it reads (the copy
    // of the records is made outside the timing).
    group.bench_function("decode_owned_evolve", |b| {
        b.iter_batched(
            || records.clone(),
            |owned| {
                let mut state = Organization::empty(org);
                for r in owned {
                    if let Ok(e) = codec::decode_owned(r, &switchboard::erasure::KeyRing::empty()) {
                        evolve_owned(&mut state, e);
                    }
                }
                state.version
            },
            BatchSize::PerIteration,
        );
    });
    // The production path since personal data is sealed (R-LIFE-06): open
    // the sealed fields with the key ring, then decode and evolve.
    let (sealed, ring) = common::record_sealed(org, &events);
    group.bench_function("open_decode_evolve_sealed", |b| {
        b.iter(|| {
            let mut state = Organization::empty(org);
            for r in &sealed {
                if let Ok(e) = codec::decode_with(r, &ring) {
                    evolve_owned(&mut state, e);
                }
            }
            state.version
        });
    });
    drop(sealed);
    let parse_only = || {
        let mut parsed = 0u64;
        for (_, _, text) in &texts {
            if serde_json::from_slice::<serde::de::IgnoredAny>(text).is_ok() {
                parsed += 1;
            }
        }
        parsed
    };
    let parse_decode_evolve = || {
        let mut state = Organization::empty(org);
        for (ty, version, text) in &texts {
            let Ok(payload) = serde_json::from_slice::<Box<serde_json::value::RawValue>>(text)
            else {
                continue;
            };
            if let Ok(e) = codec::decode_payload_raw(ty, *version, &payload) {
                evolve_owned(&mut state, e);
            }
        }
        state.version
    };
    group.bench_function("parse_decode_evolve", |b| b.iter(parse_decode_evolve));
    group.bench_function("yardstick_parse_only", |b| b.iter(parse_only));
    group.finish();
    // The ratio from the same run: five alternating passes of each.
    let (mut floor, mut full) = (Duration::ZERO, Duration::ZERO);
    for _ in 0..5 {
        let t = std::time::Instant::now();
        std::hint::black_box(parse_only());
        floor += t.elapsed();
        let t = std::time::Instant::now();
        std::hint::black_box(parse_decode_evolve());
        full += t.elapsed();
    }
    println!(
        "replay_1m: parse + decode + evolve {:.2} M events/s, parsing alone (IgnoredAny) {:.2} M/s: {:.2}× the yardstick's time",
        5.0 * n as f64 / full.as_secs_f64() / 1e6,
        5.0 * n as f64 / floor.as_secs_f64() / 1e6,
        full.as_secs_f64() / floor.as_secs_f64()
    );
}

/// Appends `events` to `store` as one stream, in pages of the append limit.
async fn append_all(store: &MemoryStore, org: OrgId, records: &[store::RecordedEvent]) {
    for chunk in records.chunks(MAX_EVENTS_PER_APPEND) {
        let request = AppendRequest {
            stream: org,
            expected: ExpectedVersion::Any,
            command_id: None,
            events: chunk
                .iter()
                .map(|r| NewEvent {
                    event_id: r.event_id,
                    event_type: r.event_type.clone(),
                    schema_version: r.schema_version,
                    payload: r.payload.clone(),
                    metadata: r.metadata.clone(),
                })
                .collect(),
            claims: vec![],
            command_digest: None,
            keys: Vec::new(),
        };
        if let Err(e) = store.append(request).await {
            panic!("fixture append failed: {e}");
        }
    }
}

fn service(store: MemoryStore) -> CommandService<MemoryStore> {
    CommandService::new(
        store,
        Arc::new(FixedClock::new(common::now())),
        Arc::new(SequentialIds::new(99)),
        Arc::new(SeededSecrets::new(99)),
    )
}

/// Loading one organization (10 000 users, 100 000 events) through
/// `CommandService::load`: from a snapshot plus a tail of 1 000 events,
/// against a full replay (`benches/snapshots.rs` loads larger ones).
fn load(c: &mut Criterion) {
    const TAIL: usize = 1_000;
    let rt = match tokio::runtime::Builder::new_current_thread().build() {
        Ok(rt) => rt,
        Err(e) => panic!("tokio runtime: {e}"),
    };
    let f = common::history(10_000, 100_000);
    let org = f.state.id;
    let records = common::record(org, &f.events);
    let full = MemoryStore::new();
    let snap = MemoryStore::new();
    let at = f.events.len() - TAIL;
    let snapshot_state = fold(org, &f.events[..at]);
    rt.block_on(async {
        append_all(&full, org, &records).await;
        append_all(&snap, org, &records).await;
        // Sealed as the service writes them (profiles under their users' keys).
        let saved = service(snap.clone()).write_snapshot(&snapshot_state).await;
        if let Err(e) = saved {
            panic!("snapshot refused: {e}");
        }
    });
    let full = service(full);
    let snap = service(snap);
    let mut group = c.benchmark_group("load_10k_users_100k_events");
    group
        .sample_size(10)
        .sampling_mode(SamplingMode::Flat)
        .warm_up_time(Duration::from_millis(500))
        .measurement_time(Duration::from_secs(10));
    for (name, svc) in [("full_replay", &full), ("snapshot_plus_1000_tail", &snap)] {
        group.bench_with_input(BenchmarkId::from_parameter(name), &(), |b, _| {
            b.to_async(&rt).iter(|| async {
                match svc.load(org).await {
                    Ok(s) => s.version,
                    Err(e) => panic!("load failed: {e}"),
                }
            });
        });
    }
    group.finish();
}

/// Decoding alone, no `evolve`: the read path's one parse from raw text
/// straight into `Event` (`codec::decode`) against parsing the same text
/// into a `serde_json::Value` first and decoding that (the read path before
/// payloads became raw JSON). 200 000 events of a 10 000-user history; the
/// ratio is printed from alternating passes of one run.
fn decode_only(c: &mut Criterion) {
    let f = common::history(10_000, 200_000);
    let records = common::record(f.state.id, &f.events);
    drop(f);
    let raw = || {
        let mut n = 0u64;
        for r in &records {
            if codec::decode(r).is_ok() {
                n += 1;
            }
        }
        n
    };
    let via_value = || {
        let mut n = 0u64;
        for r in &records {
            let Ok(v) = r.payload.to_value() else {
                continue;
            };
            if codec::decode_payload_value(&r.event_type, r.schema_version, v).is_ok() {
                n += 1;
            }
        }
        n
    };
    assert_eq!(raw(), records.len() as u64, "every record decodes");
    let mut group = c.benchmark_group("decode_only");
    group
        .sample_size(10)
        .sampling_mode(SamplingMode::Flat)
        .warm_up_time(Duration::from_millis(500))
        .measurement_time(Duration::from_secs(5))
        .throughput(Throughput::Elements(records.len() as u64));
    group.bench_function("raw_text", |b| b.iter(raw));
    group.bench_function("via_value", |b| b.iter(via_value));
    group.finish();
    let (mut t_raw, mut t_value) = (Duration::ZERO, Duration::ZERO);
    for _ in 0..5 {
        let t = std::time::Instant::now();
        std::hint::black_box(raw());
        t_raw += t.elapsed();
        let t = std::time::Instant::now();
        std::hint::black_box(via_value());
        t_value += t.elapsed();
    }
    let per = |d: Duration| d.as_secs_f64() * 1e9 / (5.0 * records.len() as f64);
    println!(
        "decode_only: raw text -> Event {:.0} ns/event, text -> Value -> Event {:.0} ns/event: {:.2}x faster",
        per(t_raw),
        per(t_value),
        t_value.as_secs_f64() / t_raw.as_secs_f64()
    );
}

criterion_group!(benches, replay, load, decode_only);
criterion_main!(benches);
