//! Decide + evolve, no I/O: commands per second of the typical mix on
//! organizations of 100, 10 000 and 100 000 users, side by side.
//!
//! `cargo bench --bench decide_evolve`
//!
//! Each measured iteration is one [`common::mix_round`] (9 commands). Each
//! round invites one new person (and revokes them), so the organization
//! grows by one user per round: the state is reset from the pristine copy
//! (outside the timed region) every `users / 5` rounds, so it never grows by
//! more than 20 %.

mod common;

use criterion::{
    criterion_group, criterion_main, BenchmarkId, Criterion, SamplingMode, Throughput,
};
use std::time::{Duration, Instant};

fn decide_evolve(c: &mut Criterion) {
    let mut group = c.benchmark_group("decide_evolve_mix");
    group
        .sample_size(20)
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(4))
        // Flat sampling: every sample runs the same number of rounds, so the
        // organization's growth between resets is the same in every sample.
        .sampling_mode(SamplingMode::Flat);
    for users in [100usize, 10_000, 100_000] {
        let pristine = common::build(users, 7, false);
        let reset_every = (users / 5).max(20) as u64;
        group.throughput(Throughput::Elements(common::MIX_COMMANDS));
        group.bench_with_input(BenchmarkId::from_parameter(users), &users, |b, _| {
            // A working copy with its own id source (seed 8), so that ids
            // minted in rounds never collide with the fixture's.
            let mut f = common::build(1, 8, false);
            f.state = pristine.state.clone();
            f.active.clone_from(&pristine.active);
            f.numbers.clone_from(&pristine.numbers);
            f.owner = pristine.owner;
            f.root = pristine.root;
            let mut since_reset = 0;
            let mut round = 0usize;
            b.iter_custom(|iters| {
                let mut total = Duration::ZERO;
                let mut left = iters;
                while left > 0 {
                    if since_reset >= reset_every {
                        f.state = pristine.state.clone();
                        f.active.clone_from(&pristine.active);
                        f.numbers.clone_from(&pristine.numbers);
                        f.owner = pristine.owner;
                        f.root = pristine.root;
                        since_reset = 0;
                    }
                    let chunk = left.min(reset_every - since_reset);
                    let start = Instant::now();
                    for _ in 0..chunk {
                        std::hint::black_box(common::mix_round(&mut f, round, false));
                        round += 1;
                    }
                    total += start.elapsed();
                    since_reset += chunk;
                    left -= chunk;
                }
                total
            });
        });
    }
    group.finish();
}

criterion_group!(benches, decide_evolve);
criterion_main!(benches);
