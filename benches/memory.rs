//! Memory: bytes of folded state per user, for organizations of 10 000 and
//! 100 000 active users, and 1 000 000 with `SWITCHBOARD_BENCH_MILLION=1`
//! (about 4 GiB of memory and a minute or two: the events are kept too).
//!
//! `cargo bench --bench memory`
//!
//! Method: this binary's global allocator is `stats_alloc`'s instrumented
//! system allocator (the workspace forbids `unsafe`, so the bench cannot
//! write its own `GlobalAlloc`; the crate's safe wrapper counts every
//! allocation). The events are built first; then, inside a counting region,
//! they are folded into a fresh `Organization` with `fold`, which is kept
//! alive: the region's net bytes (allocated − freed ± reallocated) are
//! exactly the heap the folded state holds (requested sizes; the allocator's
//! own per-block overhead is not included, so the allocation count is
//! printed too: glibc adds 8 to 16 bytes per block). Resident-set size is not
//! used: the allocator reuses pages freed while building the events, so RSS
//! growth says nothing reliable. Also printed: the state's size as JSON, for
//! comparison only (snapshots are binary and sealed: `benches/snapshots.rs`
//! measures them).
//!
//! Not a criterion bench: it prints figures once.

mod common;

use stats_alloc::{Region, StatsAlloc, INSTRUMENTED_SYSTEM};
use std::alloc::System;

#[global_allocator]
static GLOBAL: &StatsAlloc<System> = &INSTRUMENTED_SYSTEM;

fn main() {
    // `cargo bench -- <filter>` passes arguments; this binary has one job.
    let mut previous: Option<(usize, i128)> = None;
    let mut sizes = vec![10_000usize, 100_000];
    if std::env::var_os("SWITCHBOARD_BENCH_MILLION").is_some() {
        sizes.push(1_000_000);
    } else {
        println!("memory/1000000: skipped (set SWITCHBOARD_BENCH_MILLION=1)");
    }
    for users in sizes {
        let f = common::build(users, 11, true);
        let org = f.state.id;
        let events = f.events.len();
        drop(f.state);
        let region = Region::new(GLOBAL);
        let state = switchboard::fold(org, &f.events);
        let change = region.change();
        let live = change.bytes_allocated as i128 - change.bytes_deallocated as i128
            + change.bytes_reallocated as i128;
        let live_blocks = change.allocations as i128 - change.deallocations as i128;
        let json = serde_json::to_vec(&state).map(|v| v.len()).unwrap_or(0);
        println!(
            "memory/{users}: {} users, {events} events folded; heap held by the state {} bytes \
             in {live_blocks} blocks = {:.0} bytes/user ({:.1} blocks/user); \
             state as JSON {} bytes = {:.0} bytes/user",
            state.users.len(),
            live,
            live as f64 / users as f64,
            live_blocks as f64 / users as f64,
            json,
            json as f64 / users as f64,
        );
        if let Some((u0, l0)) = previous {
            println!(
                "memory/marginal: {:.0} bytes per additional user between {u0} and {users} users",
                (live - l0) as f64 / (users - u0) as f64
            );
        }
        previous = Some((users, live));
        drop(state);
    }
}
