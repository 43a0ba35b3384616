//! Rough throughput figures on the harness server (not a benchmark suite;
//! the numbers depend on the machine). Ignored by default; run with
//! `cargo test --release -p switchboard-store-postgres --test measure -- --ignored --nocapture`.

use std::time::Instant;
use switchboard_core::store::conformance::{append, event, org};
use switchboard_core::store::{EventStore, ExpectedVersion, MAX_READ_PAGE};
use switchboard_store_postgres::testing::fresh_store;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "measurement, not a check; run explicitly"]
async fn measure_append_import_and_read() {
    let store = fresh_store().await;

    // One event per append, one client.
    let n = 2000u128;
    let t = Instant::now();
    for i in 0..n {
        store
            .append(append(
                org(1),
                ExpectedVersion::Exact(i as u64),
                vec![event(i)],
            ))
            .await
            .expect("append");
    }
    let s = t.elapsed().as_secs_f64();
    println!(
        "append, 1 event, 1 client:   {:>8.0} appends/s ({:.0} µs each)",
        n as f64 / s,
        s * 1e6 / n as f64
    );

    // One event per append, 8 clients on 8 streams.
    let t = Instant::now();
    let tasks: Vec<_> = (0..8u128)
        .map(|c| {
            let store = store.clone();
            tokio::spawn(async move {
                for i in 0..500u128 {
                    store
                        .append(append(
                            org(100 + c),
                            ExpectedVersion::Exact(i as u64),
                            vec![event(1_000_000 * (c + 1) + i)],
                        ))
                        .await
                        .expect("append");
                }
            })
        })
        .collect();
    for t in tasks {
        t.await.expect("task");
    }
    println!(
        "append, 1 event, 8 clients:  {:>8.0} appends/s",
        4000.0 / t.elapsed().as_secs_f64()
    );

    // 100 events per append, one client.
    let t = Instant::now();
    for b in 0..100u128 {
        let events = (0..100).map(|k| event(50_000_000 + b * 100 + k)).collect();
        store
            .append(append(
                org(2),
                ExpectedVersion::Exact(b as u64 * 100),
                events,
            ))
            .await
            .expect("append");
    }
    println!(
        "append, 100 events, 1 client: {:>7.0} events/s",
        10_000.0 / t.elapsed().as_secs_f64()
    );

    // COPY import of a fresh stream.
    let events: Vec<_> = (0..100_000u128).map(|k| event(90_000_000 + k)).collect();
    let t = Instant::now();
    store.import_stream(org(3), events).await.expect("import");
    println!(
        "import (COPY BINARY):        {:>8.0} events/s",
        100_000.0 / t.elapsed().as_secs_f64()
    );

    // read_all through everything.
    let t = Instant::now();
    let mut after = None;
    let mut count = 0usize;
    loop {
        let page = store
            .read_all(after, MAX_READ_PAGE)
            .await
            .expect("read_all");
        let Some(last) = page.last() else { break };
        after = Some(last.position);
        count += page.len();
    }
    println!(
        "read_all pages of {MAX_READ_PAGE}:     {:>8.0} events/s ({count} events)",
        count as f64 / t.elapsed().as_secs_f64()
    );
}
