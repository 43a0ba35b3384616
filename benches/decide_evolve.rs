//! Decide + evolve, no I/O: commands per second of the typical mix on
//! organizations of 100, 10 000 and 100 000 users, side by side; then the
//! same mix through `CommandService::handle` on the memory store; and
//! what validating one phone number costs (`validate_phone/*`).
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
use std::collections::HashSet;
use std::sync::Arc;
use std::time::{Duration, Instant};
use switchboard::memory::MemoryStore;
use switchboard::service::{CommandRequest, CommandService, ServiceConfig};
use switchboard::store::{
    AppendRequest, EventStore, ExpectedVersion, NewEvent, MAX_EVENTS_PER_APPEND,
};
use switchboard::*;

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

/// A fresh store holding `pristine`'s history and a service with that
/// organization already folded in its cache (the warm path every command
/// after the first takes).
fn warm_service(
    rt: &tokio::runtime::Runtime,
    pristine: &common::Fixture,
    config: ServiceConfig,
) -> CommandService<MemoryStore> {
    let org = pristine.state.id;
    let records = common::record(org, &pristine.events);
    let store = MemoryStore::new();
    let service = CommandService::with_config(
        store,
        Arc::new(FixedClock::new(common::now())),
        Arc::new(SequentialIds::new(8)),
        Arc::new(SeededSecrets::new(8)),
        config,
    );
    rt.block_on(async {
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
            if let Err(e) = service.store().append(request).await {
                panic!("fixture append failed: {e}");
            }
        }
        if let Err(e) = service.read(org, |s| s.users.len()).await {
            panic!("warm-up load failed: {e}");
        }
    });
    service
}

/// One round of the mix through `CommandService::handle`.
async fn service_round(
    service: &CommandService<MemoryStore>,
    f: &common::Fixture,
    i: usize,
    leaders: &mut HashSet<UserId>,
) -> usize {
    let org = f.state.id;
    let owner = Actor::user(f.owner);
    let len = f.active.len();
    let (a, b, c, d) = (
        f.active[(4 * i) % len],
        f.active[(4 * i + 1) % len],
        f.active[(4 * i + 2) % len],
        f.active[(4 * i + 3) % len],
    );
    let n = f.numbers[(2 * i) % common::NUMBER_POOL].clone();
    let m = f.numbers[(2 * i + 1) % common::NUMBER_POOL].clone();
    // Command ids unique per command of the run (a repeated id would be
    // answered as a duplicate, not decided).
    let run = |k: u128, command: Command| {
        let request = CommandRequest::new(
            org,
            CommandId::from_uuid(uuid::Uuid::from_u128(
                (0xB0B5_u128 << 64) | (i as u128 * 16 + k),
            )),
            owner.clone(),
            command,
        );
        async move {
            match service.handle(request).await {
                Ok(h) => h.events,
                Err(e) => panic!("service refused a mix command: {e}"),
            }
        }
    };
    let invited = run(
        0,
        Command::InviteUsers {
            emails: format!("svc{i}@bench.example"),
            grant: Grant {
                role: RoleId::new(RoleId::AGENT),
                accounts: vec![f.root],
                agency_admin: false,
                clients: vec![],
            },
        },
    )
    .await;
    let mut events = invited.len();
    let role = if leaders.remove(&c) {
        RoleId::AGENT
    } else {
        leaders.insert(c);
        RoleId::TEAM_LEADER
    };
    let mut commands = Vec::with_capacity(8);
    if let Some(invitation) = invited.iter().find_map(|e| match e {
        Event::UserInvited { invitation, .. } => Some(*invitation),
        _ => None,
    }) {
        commands.push(Command::RevokeInvitation { invitation });
    }
    commands.extend([
        Command::AssignNumber {
            number: n.clone(),
            user: a,
        },
        Command::ForwardNumber {
            number: m.clone(),
            to: b,
        },
        Command::ChangeRole {
            user: c,
            account: f.root,
            role: RoleId::new(role),
        },
        Command::Deactivate {
            user: d,
            forward_numbers_to: None,
            reassign_reports: None,
        },
        Command::Reactivate { user: d },
        Command::UnassignNumber { number: n },
        Command::StopForwarding { number: m },
    ]);
    for (k, command) in commands.into_iter().enumerate() {
        events += run(k as u128 + 1, command).await.len();
    }
    events
}

/// The same mix through `CommandService::handle` on a `MemoryStore`: adds
/// the command-id lookup, encoding (JSON, sealing of personal data), the
/// append (validation, claims) and periodic snapshots to decide + evolve.
/// Two configurations: snapshots off, and the default (a snapshot every
/// 1 000 events, which serializes the whole organization).
fn service_mix(c: &mut Criterion) {
    let rt = match tokio::runtime::Builder::new_current_thread().build() {
        Ok(rt) => rt,
        Err(e) => panic!("tokio runtime: {e}"),
    };
    for (label, snapshot_every, rounds_per_iter) in [("service_mix_no_snapshots", 0u64, 1u64)] {
        let mut group = c.benchmark_group(label);
        group
            .sample_size(10)
            .warm_up_time(Duration::from_secs(1))
            .measurement_time(Duration::from_secs(4))
            .sampling_mode(SamplingMode::Flat)
            .throughput(Throughput::Elements(common::MIX_COMMANDS * rounds_per_iter));
        for users in [100usize, 10_000, 100_000] {
            let pristine = common::build(users, 7, true);
            let config = ServiceConfig {
                snapshot_every,
                ..ServiceConfig::default()
            };
            let reset_every = ((users / 5).max(20) as u64).max(rounds_per_iter);
            group.bench_with_input(BenchmarkId::from_parameter(users), &users, |b, _| {
                let mut service = warm_service(&rt, &pristine, config.clone());
                let mut since_reset = 0;
                let mut round = 0usize;
                let mut leaders = HashSet::new();
                b.iter_custom(|iters| {
                    let mut total = Duration::ZERO;
                    let mut left = iters * rounds_per_iter;
                    while left > 0 {
                        if since_reset >= reset_every {
                            service = warm_service(&rt, &pristine, config.clone());
                            leaders.clear();
                            since_reset = 0;
                        }
                        let chunk = left.min(reset_every - since_reset);
                        let start = Instant::now();
                        rt.block_on(async {
                            for _ in 0..chunk {
                                std::hint::black_box(
                                    service_round(&service, &pristine, round, &mut leaders).await,
                                );
                                round += 1;
                            }
                        });
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
}

/// Where `snapshot_wait` writes snapshots: in the command that makes one
/// due, in a background task, or nowhere (the control: the same setup and
/// rounds with snapshots off, so that what the allocator or the machine
/// adds to the first rounds is not billed to snapshots).
#[derive(Clone, Copy, PartialEq, Eq)]
enum Mode {
    CommandPath,
    Background,
    Off,
}

impl Mode {
    fn name(self) -> &'static str {
        match self {
            Mode::CommandPath => "command_path",
            Mode::Background => "background",
            Mode::Off => "snapshots_off",
        }
    }
}

/// When a task started, and when it ended (`None` while it runs).
type Window = (Instant, Option<Instant>);

/// Spawns on the current tokio runtime, as `system::TokioSpawn` does, and
/// records when each task started and ended.
#[derive(Default)]
struct TimedSpawn {
    windows: Arc<std::sync::Mutex<Vec<Window>>>,
}

impl TimedSpawn {
    fn windows(&self) -> Vec<Window> {
        self.windows.lock().map(|w| w.clone()).unwrap_or_default()
    }

    fn running(&self) -> bool {
        self.windows().iter().any(|(_, end)| end.is_none())
    }
}

impl switchboard::service::Spawn for TimedSpawn {
    fn spawn(&self, task: switchboard::service::BackgroundTask) -> bool {
        let Ok(runtime) = tokio::runtime::Handle::try_current() else {
            return false;
        };
        let windows = self.windows.clone();
        let index = match windows.lock() {
            Ok(mut w) => {
                w.push((Instant::now(), None));
                w.len() - 1
            }
            Err(_) => return false,
        };
        drop(runtime.spawn(async move {
            task.await;
            if let Ok(mut w) = windows.lock() {
                w[index].1 = Some(Instant::now());
            }
        }));
        true
    }
}

/// A snapshot costs the size of the organization. This measures what a
/// command waits at a snapshot point, with the snapshot written on the
/// command path and in a background task (`with_background_snapshots`, as
/// `production_service` configures it), on a two-worker runtime (the
/// machine's two cores), each round a task on its workers; and, as the
/// control, the same setup and rounds with snapshots off. A snapshot is
/// made due every 1 000 events (and not per entity), so that 300 rounds
/// (2 700 commands) cross several due points at every size; the figures
/// are the median and the worst round of
/// 9 commands (the worst round bounds the worst command), and the five
/// slowest rounds by index (when in the run they fell); with background
/// snapshots, also the worst round that overlapped a snapshot task and the
/// worst that did not. Then it times one snapshot (seal + encode) and
/// prints its size.
fn service_snapshot_stalls(_: &mut Criterion) {
    let rt = match tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => panic!("tokio runtime: {e}"),
    };
    for users in [100usize, 10_000, 100_000] {
        let pristine = Arc::new(common::build(users, 7, true));
        let config = ServiceConfig {
            snapshot_every: 1_000,
            snapshot_events_per_entity: 0,
            ..ServiceConfig::default()
        };
        for mode in [Mode::CommandPath, Mode::Background, Mode::Off] {
            let background = mode == Mode::Background;
            let config = match mode {
                Mode::Off => ServiceConfig {
                    snapshot_every: 0,
                    ..config.clone()
                },
                _ => config.clone(),
            };
            let mut service = warm_service(&rt, &pristine, config);
            let spawner = Arc::new(TimedSpawn::default());
            if background {
                service = service.with_background_snapshots(spawner.clone());
            }
            let service = Arc::new(service);
            let mut leaders = HashSet::new();
            let mut times = Vec::with_capacity(300);
            let mut rounds = Vec::with_capacity(300);
            let first = rt.block_on(service.version(pristine.state.id)).unwrap_or(0);
            for round in 0..300 {
                let start = Instant::now();
                // Each round is a task on the runtime's workers, as a
                // service's requests are: the threads (and so the malloc
                // arenas) that run commands are those that run snapshot
                // tasks.
                let (on_worker, fixture) = (service.clone(), pristine.clone());
                let mut held = std::mem::take(&mut leaders);
                let task = rt.spawn(async move {
                    service_round(&on_worker, &fixture, round, &mut held).await;
                    held
                });
                leaders = match rt.block_on(task) {
                    Ok(held) => held,
                    Err(e) => panic!("round task: {e}"),
                };
                times.push(start.elapsed());
                rounds.push((start, start.elapsed()));
            }
            let last = rt.block_on(service.version(pristine.state.id)).unwrap_or(0);
            // Wait for the last task, so that the next measurement starts
            // on an idle runtime.
            while spawner.running() {
                std::thread::sleep(Duration::from_millis(5));
            }
            let mut slowest: Vec<(usize, Duration)> =
                rounds.iter().map(|r| r.1).enumerate().collect();
            slowest.sort_unstable_by_key(|(_, took)| std::cmp::Reverse(*took));
            slowest.truncate(5);
            println!(
                "snapshot_wait/{users}/{}: slowest rounds (index, time) {slowest:?}",
                mode.name()
            );
            if background {
                // Attribution: the worst round that overlapped a snapshot
                // task, and the worst that did not.
                let tasks = spawner.windows();
                let overlaps = |(start, took): &(Instant, Duration)| {
                    let end = *start + *took;
                    tasks
                        .iter()
                        .any(|(s, e)| *s < end && e.is_none_or(|e| e > *start))
                };
                let worst_in = rounds.iter().filter(|r| overlaps(r)).map(|r| r.1).max();
                let worst_out = rounds.iter().filter(|r| !overlaps(r)).map(|r| r.1).max();
                println!(
                    "snapshot_wait/{users}/background: {} snapshot tasks; worst round during one {:?}, outside them {:?}",
                    tasks.len(),
                    worst_in.unwrap_or_default(),
                    worst_out.unwrap_or_default(),
                );
            }
            times.sort_unstable();
            println!(
                "snapshot_wait/{users}/{}: 300 rounds of 9 commands, {} events, {}: \
                 median round {:?}, p99 {:?}, worst round {:?}",
                mode.name(),
                last - first,
                if mode == Mode::Off {
                    "no snapshot"
                } else {
                    "due every 1 000"
                },
                times[150],
                times[296],
                times[299],
            );
        }
        let state = &pristine.state;
        // Sealed as the service writes it; a first pass creates the data
        // keys of the bench's (unsealed) history, the second is timed.
        let sealer = switchboard::service::CommandService::new(
            switchboard::memory::MemoryStore::new(),
            Arc::new(FixedClock::new(common::now())),
            Arc::new(SequentialIds::new(7)),
            Arc::new(SeededSecrets::new(7)),
        );
        let sealed = |state| rt.block_on(sealer.seal_snapshot(state));
        if let Err(e) = sealed(state) {
            panic!("snapshot: {e}");
        }
        let start = Instant::now();
        let snapshot = match sealed(state) {
            Ok(s) => s,
            Err(e) => panic!("snapshot: {e}"),
        };
        let cost = start.elapsed();
        println!(
            "snapshot_write/{users}: seal + encode {cost:?}; {} bytes ({} per user; fits the limit: {})",
            snapshot.state.len(),
            snapshot.state.len() / users,
            snapshot.validate().is_ok(),
        );
    }
}

/// What validating one phone number costs (R-NUM-06), the one leaf of
/// `decide` that is not a map look-up: numbers of one country, and of
/// twenty countries in turn (about 215 compiled patterns, more than the 100
/// `phonenumber` keeps by default; `validate::PHONE_PATTERN_CACHE`).
fn validate_phone(c: &mut Criterion) {
    let one_country: Vec<String> = (0..1_000).map(|i| format!("+1415555{i:04}")).collect();
    let mut group = c.benchmark_group("validate_phone");
    group.throughput(Throughput::Elements(1));
    for (name, numbers) in [
        ("one_country", one_country),
        (
            "twenty_countries",
            validate::TWENTY_COUNTRIES_NUMBERS
                .map(str::to_owned)
                .to_vec(),
        ),
    ] {
        let mut next = numbers.iter().cycle();
        group.bench_function(name, |b| {
            b.iter(|| {
                let raw = next.next().expect("a cycle never ends");
                validate::phone_number("number", RuleId::UniqueNumber, raw).expect("a valid number")
            })
        });
    }
    group.finish();
}

criterion_group!(
    benches,
    validate_phone,
    decide_evolve,
    service_mix,
    service_snapshot_stalls
);
criterion_main!(benches);
