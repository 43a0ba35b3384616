//! Model test: random sequences of appends (random expected versions,
//! reused event ids and command ids, claims) and reads, applied to the memory
//! store (the reference) and to the Postgres store (the system under test).
//! They must agree on every result, modulo `Position` values (which differ
//! between stores; their order must not).
//!
//! Cases default to 64 (each a database and up to 40 operations, ~8 s); set
//! `PROPTEST_CASES` for more.

use proptest::prelude::*;
use proptest_state_machine::{prop_state_machine, ReferenceStateMachine, StateMachineTest};
use std::time::{Duration, Instant};
use switchboard_core::erasure::{DataKey, KeyStore};
use switchboard_core::store::conformance::{
    command_id, event, org, outcome_without_positions, without_position,
};
use switchboard_core::store::{
    AppendOutcome, AppendRequest, ClaimChange, ClaimKey, CommandDigest, CommandRecord, EventStore,
    ExpectedVersion, KeyChange, RecordedEvent, StoreError, MAX_READ_PAGE,
};
use switchboard_core::UserId;

fn user(n: u8) -> UserId {
    UserId::from_uuid(uuid::Uuid::from_u128(0xAB00 + u128::from(n)))
}
use switchboard_store_memory::MemoryStore;
use switchboard_store_postgres::PostgresStore;

#[derive(Clone, Debug)]
enum Op {
    Append {
        stream: u8,
        expected: ExpectedVersion,
        command: Option<u8>,
        digest: Option<u8>,
        events: Vec<u8>,
        claims: Vec<(bool, u8)>,
        /// (true: create with key bytes `k`, false: shred) for user `u`.
        keys: Vec<(bool, u8, u8)>,
    },
    ReadStream {
        stream: u8,
        from: u64,
        to: Option<u64>,
        limit: usize,
    },
    ReadAll {
        skip: usize,
        limit: usize,
    },
    StreamVersion(u8),
    ClaimHolder(u8),
    FindCommand(u8, u8),
    LoadKeys(u8),
}

fn key(k: u8) -> ClaimKey {
    ClaimKey::new("phone_number", format!("+1415555000{k}"))
}

fn ops() -> BoxedStrategy<Op> {
    let expected = prop_oneof![
        Just(ExpectedVersion::Any),
        Just(ExpectedVersion::NoStream),
        (0u64..7).prop_map(ExpectedVersion::Exact),
    ];
    prop_oneof![
        6 => (
            0u8..3,
            expected,
            proptest::option::of(0u8..4),
            proptest::option::of(0u8..2),
            proptest::collection::vec(0u8..30, 1..4),
            proptest::collection::vec((any::<bool>(), 0u8..3), 0..3),
            proptest::collection::vec((any::<bool>(), 0u8..4, 1u8..4), 0..3),
        )
            .prop_map(|(stream, expected, command, digest, events, claims, keys)| Op::Append {
                stream,
                expected,
                command,
                digest,
                events,
                claims,
                keys,
            }),
        1 => (0u8..3, 0u64..8, proptest::option::of(0u64..8), 0usize..5)
            .prop_map(|(stream, from, to, limit)| Op::ReadStream { stream, from, to, limit }),
        1 => (0usize..30, 0usize..6).prop_map(|(skip, limit)| Op::ReadAll { skip, limit }),
        1 => (0u8..3).prop_map(Op::StreamVersion),
        1 => (0u8..3).prop_map(Op::ClaimHolder),
        1 => (0u8..3, 0u8..4).prop_map(|(s, c)| Op::FindCommand(s, c)),
        1 => (0u8..3).prop_map(Op::LoadKeys),
    ]
    .boxed()
}

/// Transitions do not depend on state: the reference is the memory store,
/// which lives next to the system under test and is compared at every step.
struct Reference;

impl ReferenceStateMachine for Reference {
    type State = ();
    type Transition = Op;

    fn init_state() -> BoxedStrategy<()> {
        Just(()).boxed()
    }
    fn transitions(_: &()) -> BoxedStrategy<Op> {
        ops()
    }
    fn apply(state: (), _: &Op) {
        state
    }
}

struct Sut {
    rt: tokio::runtime::Runtime,
    memory: MemoryStore,
    pg: PostgresStore,
}

struct StoresAgree;

fn request(
    stream: u8,
    expected: ExpectedVersion,
    command: Option<u8>,
    digest: Option<u8>,
    events: &[u8],
    claims: &[(bool, u8)],
    keys: &[(bool, u8, u8)],
) -> AppendRequest {
    AppendRequest {
        stream: org(u128::from(stream)),
        expected,
        command_id: command.map(|c| command_id(u128::from(c))),
        command_digest: digest.map(|d| CommandDigest([d; 32])),
        keys: keys
            .iter()
            .map(|&(create, u, k)| {
                let subject = user(u);
                if create {
                    KeyChange::Create {
                        subject,
                        key: DataKey::from_bytes([k; 32]),
                    }
                } else {
                    KeyChange::Shred { subject }
                }
            })
            .collect(),
        events: events.iter().map(|&n| event(u128::from(n))).collect(),
        claims: claims
            .iter()
            .map(|&(take, k)| {
                if take {
                    ClaimChange::Claim(key(k))
                } else {
                    ClaimChange::Release(key(k))
                }
            })
            .collect(),
    }
}

fn strip(r: Result<Vec<RecordedEvent>, StoreError>) -> Result<Vec<RecordedEvent>, StoreError> {
    r.map(|v| v.into_iter().map(without_position).collect())
}

async fn whole_log<S: EventStore>(store: &S) -> Vec<RecordedEvent> {
    store.read_all(None, MAX_READ_PAGE).await.expect("read_all")
}

impl StateMachineTest for StoresAgree {
    type SystemUnderTest = Sut;
    type Reference = Reference;

    fn init_test(_: &()) -> Sut {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("runtime");
        let pg = rt.block_on(switchboard_store_postgres::testing::fresh_store());
        Sut {
            rt,
            memory: MemoryStore::new(),
            pg,
        }
    }

    fn apply(sut: Sut, _: &(), op: Op) -> Sut {
        let Sut { rt, memory, pg } = &sut;
        rt.block_on(async {
            match &op {
                Op::Append {
                    stream,
                    expected,
                    command,
                    digest,
                    events,
                    claims,
                    keys,
                } => {
                    let req = request(*stream, *expected, *command, *digest, events, claims, keys);
                    let strip =
                        |r: Result<AppendOutcome, StoreError>| r.map(outcome_without_positions);
                    let want = strip(memory.append(req.clone()).await);
                    let got = strip(pg.append(req).await);
                    assert_eq!(got, want, "{op:?}");
                }
                Op::ReadStream {
                    stream,
                    from,
                    to,
                    limit,
                } => {
                    let s = org(u128::from(*stream));
                    let want = strip(memory.read_stream(s, *from, *to, *limit).await);
                    let got = strip(pg.read_stream(s, *from, *to, *limit).await);
                    assert_eq!(got, want, "{op:?}");
                }
                Op::ReadAll { skip, limit } => {
                    let want_log = whole_log(memory).await;
                    // read_all may lag an acknowledged append while another
                    // transaction on the server runs: wait for it (bounded).
                    let deadline = Instant::now() + Duration::from_secs(30);
                    let mut got_log = whole_log(pg).await;
                    while got_log.len() < want_log.len() && Instant::now() < deadline {
                        pg.wait_for_events(
                            got_log.last().map(|e| e.position),
                            Duration::from_millis(50),
                        )
                        .await;
                        got_log = whole_log(pg).await;
                    }
                    let strip_all = |v: &[RecordedEvent]| -> Vec<RecordedEvent> {
                        v.iter().cloned().map(without_position).collect()
                    };
                    assert_eq!(strip_all(&got_log), strip_all(&want_log), "whole log");
                    // Page from the same place in each store's own positions.
                    let skip = (*skip).min(want_log.len());
                    let after = |log: &[RecordedEvent]| {
                        skip.checked_sub(1)
                            .and_then(|i| log.get(i))
                            .map(|e| e.position)
                    };
                    let want = strip(memory.read_all(after(&want_log), *limit).await);
                    let got = strip(pg.read_all(after(&got_log), *limit).await);
                    assert_eq!(got, want, "{op:?}");
                }
                Op::StreamVersion(s) => {
                    let s = org(u128::from(*s));
                    assert_eq!(pg.stream_version(s).await, memory.stream_version(s).await);
                }
                Op::ClaimHolder(k) => {
                    assert_eq!(
                        pg.claim_holder(&key(*k)).await,
                        memory.claim_holder(&key(*k)).await
                    );
                }
                Op::FindCommand(s, c) => {
                    let (s, c) = (org(u128::from(*s)), command_id(u128::from(*c)));
                    let strip = |r: CommandRecord| (outcome_without_positions(r.outcome), r.digest);
                    let want = memory.find_command(s, c).await.map(|o| o.map(strip));
                    let got = pg.find_command(s, c).await.map(|o| o.map(strip));
                    assert_eq!(got, want, "{op:?}");
                }
                Op::LoadKeys(s) => {
                    let s = org(u128::from(*s));
                    let users: Vec<UserId> = (0..4).map(user).collect();
                    let want = memory.load_keys(s, &users).await;
                    let got = pg.load_keys(s, &users).await;
                    assert_eq!(got, want, "{op:?}");
                }
            }
        });
        sut
    }

    fn check_invariants(sut: &Sut, _: &()) {
        sut.rt.block_on(async {
            for s in 0..3 {
                let s = org(s);
                assert_eq!(
                    sut.pg.stream_version(s).await,
                    sut.memory.stream_version(s).await,
                    "stream versions agree"
                );
            }
        });
    }
}

fn cases() -> u32 {
    std::env::var("PROPTEST_CASES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(64)
}

prop_state_machine! {
    #![proptest_config(ProptestConfig {
        cases: cases(),
        // Each case is a database and a few dozen round trips: shrinking
        // stays useful but bounded.
        max_shrink_iters: 256,
        .. ProptestConfig::default()
    })]

    #[test]
    fn memory_and_postgres_stores_agree(sequential 1..40 => StoresAgree);
}
