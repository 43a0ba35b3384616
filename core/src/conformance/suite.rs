//! The suite's test functions. Each takes a fresh, empty store.

use super::fixtures::*;
use crate::erasure::DataKey;
use crate::ids::{EventId, OrgId, UserId};
use crate::store::{
    AppendOutcome, AppendRequest, ClaimChange, ClaimKey, CommandDigest, CommandRecord, EventStore,
    ExpectedVersion, KeyChange, Position, RawPayload, RecordedEvent, Snapshot, Store, StoreError,
    MAX_CLAIMS_PER_APPEND, MAX_EVENTS_PER_APPEND, MAX_NAME_LEN, MAX_PAYLOAD_BYTES, MAX_READ_PAGE,
    MAX_SNAPSHOT_BYTES, MAX_VERSION,
};
use crate::subscription::subscribe;
use futures_util::StreamExt;
use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

async fn ok<S: EventStore + ?Sized>(store: &S, req: AppendRequest) -> AppendOutcome {
    let what = format!("{:?} to {}", req.expected, req.stream);
    match store.append(req).await {
        Ok(o) => o,
        Err(e) => panic!("append ({what}) failed: {e:?}"),
    }
}

/// The whole log, once at least `expect` events are readable. `read_all` may
/// lag behind acknowledged appends (a store only shows events whose place is
/// final, e.g. while another transaction is still running), but must catch up:
/// this waits up to a minute, then returns what it has for the caller to fail on.
async fn all_events<S: EventStore + ?Sized>(store: &S, expect: usize) -> Vec<RecordedEvent> {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let mut out = Vec::new();
        let mut after = None;
        loop {
            let page = store.read_all(after, 1000).await.expect("read_all");
            let Some(last) = page.last() else { break };
            after = Some(last.position);
            out.extend(page);
        }
        if out.len() >= expect || Instant::now() > deadline {
            return out;
        }
        store
            .wait_for_events(after, Duration::from_millis(100))
            .await;
    }
}

/// Everything observable about a store's content, to prove a refused request changed nothing.
async fn fingerprint<S: EventStore + ?Sized>(
    store: &S,
    streams: &[OrgId],
    keys: &[ClaimKey],
) -> (Vec<RecordedEvent>, Vec<u64>, Vec<Option<OrgId>>) {
    let mut events = Vec::new();
    let mut versions = Vec::new();
    for s in streams {
        versions.push(store.stream_version(*s).await.expect("stream_version"));
        events.extend(
            store
                .read_stream(*s, 1, None, MAX_READ_PAGE)
                .await
                .expect("read_stream"),
        );
    }
    let mut holders = Vec::new();
    for k in keys {
        holders.push(store.claim_holder(k).await.expect("claim_holder"));
    }
    (events, versions, holders)
}

/// `Any`, `NoStream` and `Exact` expectations; a stale one is a conflict
/// carrying the actual version and appends nothing.
pub async fn append_expected_versions<S: Store + ?Sized>(store: &S) {
    let a = org(1);
    assert_eq!(store.stream_version(a).await.expect("version"), 0);
    assert!(store
        .read_stream(a, 1, None, 10)
        .await
        .expect("read")
        .is_empty());

    let o = ok(
        store,
        append(a, ExpectedVersion::NoStream, vec![event(1), event(2)]),
    )
    .await;
    assert_eq!((o.stream, o.first_version, o.last_version), (a, 1, 2));
    assert!(!o.duplicate);
    assert!(o.first_position < o.last_position);

    let err = store
        .append(append(a, ExpectedVersion::NoStream, vec![event(3)]))
        .await
        .expect_err("NoStream on a non-empty stream must conflict");
    assert_eq!(
        err,
        StoreError::Conflict {
            stream: a,
            expected: ExpectedVersion::NoStream,
            actual: 2
        }
    );

    for stale in [0, 1, 3, 99, u64::MAX] {
        let err = store
            .append(append(a, ExpectedVersion::Exact(stale), vec![event(3)]))
            .await
            .expect_err("a stale Exact must conflict");
        assert_eq!(
            err,
            StoreError::Conflict {
                stream: a,
                expected: ExpectedVersion::Exact(stale),
                actual: 2
            }
        );
    }
    assert_eq!(store.stream_version(a).await.expect("version"), 2);

    let o = ok(store, append(a, ExpectedVersion::Exact(2), vec![event(3)])).await;
    assert_eq!((o.first_version, o.last_version), (3, 3));
    let o2 = ok(
        store,
        append(a, ExpectedVersion::Any, vec![event(4), event(5)]),
    )
    .await;
    assert_eq!((o2.first_version, o2.last_version), (4, 5));
    assert!(
        o2.first_position > o.last_position,
        "later appends have later positions"
    );

    // Exact(0) on an empty stream behaves like NoStream; Any creates a stream too.
    let b = org(2);
    let err = store
        .append(append(b, ExpectedVersion::Exact(1), vec![event(6)]))
        .await
        .expect_err("Exact(1) on an empty stream must conflict");
    assert_eq!(
        err,
        StoreError::Conflict {
            stream: b,
            expected: ExpectedVersion::Exact(1),
            actual: 0
        }
    );
    ok(store, append(b, ExpectedVersion::Exact(0), vec![event(6)])).await;
    let c = org(3);
    ok(store, append(c, ExpectedVersion::Any, vec![event(7)])).await;

    let versions: Vec<u64> = store
        .read_stream(a, 1, None, 100)
        .await
        .expect("read")
        .iter()
        .map(|e| e.version)
        .collect();
    assert_eq!(
        versions,
        vec![1, 2, 3, 4, 5],
        "versions are dense and 1-based"
    );
    let ids: Vec<EventId> = store
        .read_stream(a, 1, None, 100)
        .await
        .expect("read")
        .iter()
        .map(|e| e.event_id)
        .collect();
    assert_eq!(ids, (1..=5).map(event_id).collect::<Vec<_>>());
    assert_eq!(store.stream_version(b).await.expect("version"), 1);
    assert_eq!(store.stream_version(c).await.expect("version"), 1);
    assert_eq!(all_events(store, 7).await.len(), 7);
}

/// Re-sending an append with a recorded command id returns the first outcome
/// (with `duplicate: true`) and records nothing, whatever the new request says.
pub async fn idempotent_command_id<S: Store + ?Sized>(store: &S) {
    let a = org(1);
    let cmd = command_id(1);
    let first_req = AppendRequest {
        command_id: Some(cmd),
        claims: vec![ClaimChange::Claim(phone(1))],
        ..append(a, ExpectedVersion::NoStream, vec![event(1), event(2)])
    };
    assert_eq!(store.find_command(a, cmd).await.expect("find"), None);
    let first = ok(store, first_req.clone()).await;
    assert!(!first.duplicate);
    let before = fingerprint(store, &[a, org(2)], &[phone(1), phone(2)]).await;

    // The retry after an ambiguous failure: the very same request.
    let again = ok(store, first_req.clone()).await;
    assert_eq!(
        again,
        AppendOutcome {
            duplicate: true,
            ..first
        }
    );

    // Same command id in the same stream, different request (stale version,
    // new event ids, other claims, no digest): still the first outcome, still
    // nothing recorded.
    let different = AppendRequest {
        stream: a,
        expected: ExpectedVersion::Exact(41),
        command_id: Some(cmd),
        events: vec![event(3)],
        claims: vec![ClaimChange::Claim(phone(2))],
        command_digest: None,
        keys: Vec::new(),
    };
    let again = ok(store, different).await;
    assert_eq!(
        again,
        AppendOutcome {
            duplicate: true,
            ..first
        }
    );
    assert_eq!(
        fingerprint(store, &[a, org(2)], &[phone(1), phone(2)]).await,
        before
    );

    let found = store
        .find_command(a, cmd)
        .await
        .expect("find")
        .expect("command recorded");
    assert_eq!(
        found,
        CommandRecord {
            outcome: first,
            digest: None
        }
    );

    // A failed append records no command id: after fixing the version the same
    // command id appends.
    let cmd2 = command_id(2);
    let stale = AppendRequest {
        command_id: Some(cmd2),
        ..append(a, ExpectedVersion::Exact(0), vec![event(4)])
    };
    assert!(matches!(
        store.append(stale).await,
        Err(StoreError::Conflict { actual: 2, .. })
    ));
    assert_eq!(store.find_command(a, cmd2).await.expect("find"), None);
    let fixed = AppendRequest {
        command_id: Some(cmd2),
        ..append(a, ExpectedVersion::Exact(2), vec![event(4)])
    };
    let o = ok(store, fixed.clone()).await;
    assert_eq!(
        (o.first_version, o.last_version, o.duplicate),
        (3, 3, false)
    );
    assert_eq!(
        ok(store, fixed).await,
        AppendOutcome {
            duplicate: true,
            ..o
        }
    );
    assert_eq!(store.stream_version(a).await.expect("version"), 3);
    assert_eq!(all_events(store, 3).await.len(), 3);
}

/// Command ids are scoped to their stream: the same id in another stream is
/// another key, recorded there as new, and finding it in one stream reveals
/// nothing of the other.
pub async fn command_ids_scoped_to_stream<S: Store + ?Sized>(store: &S) {
    let (a, b) = (org(1), org(2));
    let cmd = command_id(7);
    let in_a = ok(
        store,
        AppendRequest {
            command_id: Some(cmd),
            command_digest: Some(CommandDigest([1; 32])),
            ..append(a, ExpectedVersion::NoStream, vec![event(1), event(2)])
        },
    )
    .await;
    assert_eq!(store.find_command(b, cmd).await.expect("find"), None);
    // Another stream, same id, even another digest: a new command there.
    let in_b = ok(
        store,
        AppendRequest {
            command_id: Some(cmd),
            command_digest: Some(CommandDigest([2; 32])),
            ..append(b, ExpectedVersion::NoStream, vec![event(3)])
        },
    )
    .await;
    assert!(!in_b.duplicate);
    assert_eq!(
        (in_b.stream, in_b.first_version, in_b.last_version),
        (b, 1, 1)
    );
    let found_a = store.find_command(a, cmd).await.expect("find").expect("a");
    let found_b = store.find_command(b, cmd).await.expect("find").expect("b");
    assert_eq!(found_a.outcome, in_a);
    assert_eq!(found_b.outcome, in_b);
    assert_eq!(found_b.digest, Some(CommandDigest([2; 32])));
    assert_eq!(store.stream_version(a).await.expect("version"), 2);
    assert_eq!(store.stream_version(b).await.expect("version"), 1);
}

/// A command id recorded with a digest refuses a request with another
/// digest ([`StoreError::IdempotencyKeyReused`], nothing recorded) and
/// answers the same digest, or a request without one, as a duplicate.
pub async fn command_digests<S: Store + ?Sized>(store: &S) {
    let a = org(1);
    let cmd = command_id(3);
    let request = AppendRequest {
        command_id: Some(cmd),
        command_digest: Some(CommandDigest([9; 32])),
        ..append(a, ExpectedVersion::NoStream, vec![event(1)])
    };
    let first = ok(store, request.clone()).await;
    let before = fingerprint(store, &[a], &[]).await;
    let reused = AppendRequest {
        command_digest: Some(CommandDigest([8; 32])),
        events: vec![event(2)],
        expected: ExpectedVersion::Exact(1),
        ..request.clone()
    };
    assert_eq!(
        store.append(reused).await,
        Err(StoreError::IdempotencyKeyReused { command_id: cmd })
    );
    assert_eq!(fingerprint(store, &[a], &[]).await, before);
    let same = ok(store, request.clone()).await;
    assert_eq!(
        same,
        AppendOutcome {
            duplicate: true,
            ..first
        }
    );
    let unknown = ok(
        store,
        AppendRequest {
            command_digest: None,
            ..request
        },
    )
    .await;
    assert!(unknown.duplicate);
    assert_eq!(
        store.find_command(a, cmd).await.expect("find"),
        Some(CommandRecord {
            outcome: first,
            digest: Some(CommandDigest([9; 32]))
        })
    );
    assert_eq!(fingerprint(store, &[a], &[]).await, before);
}

fn user(n: u128) -> UserId {
    UserId::from_uuid(uuid::Uuid::from_u128(0x5553_0000 + n))
}

/// Key changes commit with the events or not at all (R-LIFE-06): a created
/// key exists exactly when its append was recorded; a creation for a
/// subject with a key or a tombstone refuses the whole append
/// ([`StoreError::KeyExists`]); a shred leaves a tombstone that no later
/// creation revives; a duplicate command creates nothing.
pub async fn key_changes_commit_with_events<S: Store + ?Sized>(store: &S) {
    let a = org(1);
    let (u1, u2, u3) = (user(1), user(2), user(3));
    let k = |b: u8| DataKey::from_bytes([b; 32]);
    let create = |subject, key| KeyChange::Create { subject, key };
    let first = AppendRequest {
        command_id: Some(command_id(1)),
        keys: vec![create(u1, k(1))],
        ..append(a, ExpectedVersion::NoStream, vec![event(1)])
    };
    ok(store, first.clone()).await;
    assert_eq!(
        store.load_keys(a, &[u1]).await.expect("load").get(&u1),
        Some(&k(1))
    );
    // Keys are per organization.
    assert!(store
        .load_keys(org(2), &[u1])
        .await
        .expect("load")
        .is_empty());

    // Refused appends create nothing: a stale version, a subject with a key.
    let stale = AppendRequest {
        keys: vec![create(u2, k(2))],
        ..append(a, ExpectedVersion::NoStream, vec![event(2)])
    };
    assert!(matches!(
        store.append(stale).await,
        Err(StoreError::Conflict { .. })
    ));
    let clash = AppendRequest {
        keys: vec![create(u2, k(2)), create(u1, k(3))],
        ..append(a, ExpectedVersion::Exact(1), vec![event(3)])
    };
    assert_eq!(
        store.append(clash).await,
        Err(StoreError::KeyExists { subject: u1 })
    );
    // A duplicate command creates nothing either.
    let dup = AppendRequest {
        keys: vec![create(u3, k(4))],
        ..first
    };
    assert!(ok(store, dup).await.duplicate);
    assert!(store
        .load_keys(a, &[u2, u3])
        .await
        .expect("load")
        .is_empty());
    assert_eq!(store.stream_version(a).await.expect("version"), 1);
    assert_eq!(
        store.load_keys(a, &[u1]).await.expect("load").get(&u1),
        Some(&k(1)),
        "a refused creation leaves the existing key as it was"
    );

    // Two creations of one subject in one append are malformed.
    let twice = AppendRequest {
        keys: vec![create(u2, k(5)), create(u2, k(6))],
        ..append(a, ExpectedVersion::Exact(1), vec![event(4)])
    };
    assert!(matches!(
        store.append(twice).await,
        Err(StoreError::InvalidRequest { .. })
    ));

    // Create and shred in one append: recorded, and the subject erased.
    let shred = AppendRequest {
        keys: vec![
            create(u2, k(7)),
            KeyChange::Shred { subject: u2 },
            KeyChange::Shred { subject: u1 },
            KeyChange::Shred { subject: u1 },
        ],
        ..append(a, ExpectedVersion::Exact(1), vec![event(5)])
    };
    ok(store, shred).await;
    assert!(store
        .load_keys(a, &[u1, u2])
        .await
        .expect("load")
        .is_empty());
    assert_eq!(store.create_key(a, u1, k(8)).await.expect("create"), None);
    let revive = AppendRequest {
        keys: vec![create(u1, k(9))],
        ..append(a, ExpectedVersion::Exact(2), vec![event(6)])
    };
    assert_eq!(
        store.append(revive).await,
        Err(StoreError::KeyExists { subject: u1 })
    );
    assert_eq!(store.stream_version(a).await.expect("version"), 2);
}

/// The [`KeyStore`](crate::erasure::KeyStore) contract: the first key
/// created wins, even among concurrent callers; a deleted key leaves a
/// tombstone that no later creation revives; keys are per organization;
/// look-ups are bounded.
pub async fn key_store_contract<S: Store + ?Sized>(store: &S) {
    let (a, b) = (org(1), org(2));
    let k = |n: u8| DataKey::from_bytes([n; 32]);
    let racers: Vec<_> = (1..=8u8)
        .map(|n| store.create_key(a, user(1), k(n)))
        .collect();
    let results = futures_util::future::join_all(racers).await;
    let winner = results[0].clone().expect("create").expect("a key");
    for r in results {
        assert_eq!(
            r.expect("create"),
            Some(winner.clone()),
            "every racer gets the same key"
        );
    }
    assert_eq!(
        store.create_key(a, user(1), k(20)).await.expect("create"),
        Some(winner.clone())
    );
    assert_eq!(
        store.create_key(b, user(1), k(21)).await.expect("create"),
        Some(k(21))
    );
    store.delete_key(a, user(1)).await.expect("delete");
    store
        .delete_key(a, user(1))
        .await
        .expect("delete is idempotent");
    store
        .delete_key(a, user(2))
        .await
        .expect("delete of a user without a key");
    assert!(store
        .load_keys(a, &[user(1), user(2)])
        .await
        .expect("load")
        .is_empty());
    assert_eq!(
        store.create_key(a, user(1), k(22)).await.expect("create"),
        None
    );
    assert_eq!(
        store.create_key(a, user(2), k(23)).await.expect("create"),
        None
    );
    assert_eq!(
        store
            .load_keys(b, &[user(1)])
            .await
            .expect("load")
            .get(&user(1)),
        Some(&k(21))
    );
    let too_many = vec![user(1); crate::erasure::MAX_KEYS_PER_LOAD + 1];
    assert!(matches!(
        store.load_keys(a, &too_many).await,
        Err(StoreError::InvalidRequest { .. })
    ));
}

/// A key look-up answers exactly the users asked who have a live key, in
/// their own organization, whatever the shape of the request: dense (a
/// snapshot load asks for every user, 1 000 at a time), sparse, unsorted,
/// with an id twice, with users who never had a key or whose key was
/// deleted. A store may read more than it was asked (a range of ids) but
/// must answer no more.
pub async fn key_loads_answer_exactly_the_users_asked<S: Store + ?Sized>(store: &S) {
    let (a, b) = (org(1), org(2));
    let key = |o: u8, n: u128| {
        let mut bytes = [o; 32];
        bytes[..16].copy_from_slice(&n.to_be_bytes());
        DataKey::from_bytes(bytes)
    };
    const USERS: u128 = 400;
    for n in 1..=USERS {
        store
            .create_key(a, user(n), key(1, n))
            .await
            .expect("create");
        store
            .create_key(b, user(n), key(2, n))
            .await
            .expect("create");
    }
    // Every seventh user of `a` is erased.
    for n in (7..=USERS).step_by(7) {
        store.delete_key(a, user(n)).await.expect("delete");
    }
    let live = |n: u128| n <= USERS && !n.is_multiple_of(7);
    let check = |asked: &[u128], got: HashMap<UserId, DataKey>| {
        let expected: HashMap<UserId, DataKey> = asked
            .iter()
            .filter(|n| live(**n))
            .map(|n| (user(*n), key(1, *n)))
            .collect();
        assert_eq!(got, expected, "the keys of exactly the users asked");
    };
    // Dense: most users of a range, some skipped, some never keyed.
    let dense: Vec<u128> = (1..=300u128)
        .filter(|n| !n.is_multiple_of(5))
        .chain(USERS + 1..USERS + 20)
        .collect();
    check(
        &dense,
        store.load_keys(a, &users(&dense)).await.expect("load"),
    );
    // Sparse: a few users spread over the whole organization.
    let sparse: Vec<u128> = (1..=USERS).step_by(5).collect();
    check(
        &sparse,
        store.load_keys(a, &users(&sparse)).await.expect("load"),
    );
    // Unsorted, and one id twice.
    let mut shuffled: Vec<u128> = (100..=200).rev().collect();
    shuffled.push(150);
    check(
        &shuffled,
        store.load_keys(a, &users(&shuffled)).await.expect("load"),
    );
    // Another organization's keys are never answered.
    let other = store.load_keys(org(3), &users(&dense)).await.expect("load");
    assert!(other.is_empty(), "no keys of another organization");
}

fn users(ns: &[u128]) -> Vec<UserId> {
    ns.iter().map(|n| user(*n)).collect()
}

/// An event id recorded anywhere in the store cannot be recorded again.
pub async fn duplicate_event_id<S: Store + ?Sized>(store: &S) {
    let (a, b) = (org(1), org(2));
    ok(
        store,
        append(a, ExpectedVersion::NoStream, vec![event(1), event(2)]),
    )
    .await;
    let before = fingerprint(store, &[a, b], &[phone(1)]).await;

    // In another stream, alongside a fresh event and a free claim.
    let req = AppendRequest {
        claims: vec![ClaimChange::Claim(phone(1))],
        ..append(b, ExpectedVersion::NoStream, vec![event(3), event(2)])
    };
    assert_eq!(
        store.append(req).await,
        Err(StoreError::DuplicateEvent {
            event_id: event_id(2)
        })
    );
    // Without claims, in another stream: the first recorded id in request order.
    assert_eq!(
        store
            .append(append(
                b,
                ExpectedVersion::NoStream,
                vec![event(4), event(2), event(1)]
            ))
            .await,
        Err(StoreError::DuplicateEvent {
            event_id: event_id(2)
        })
    );
    // In the same stream.
    assert_eq!(
        store
            .append(append(a, ExpectedVersion::Exact(2), vec![event(1)]))
            .await,
        Err(StoreError::DuplicateEvent {
            event_id: event_id(1)
        })
    );
    // Twice in one request.
    assert_eq!(
        store
            .append(append(b, ExpectedVersion::Any, vec![event(9), event(9)]))
            .await,
        Err(StoreError::DuplicateEvent {
            event_id: event_id(9)
        })
    );
    assert_eq!(fingerprint(store, &[a, b], &[phone(1)]).await, before);
    // The fresh id was not burnt by the refused append.
    ok(store, append(b, ExpectedVersion::NoStream, vec![event(3)])).await;
}

/// Claims are taken, refused to others (naming the holder), released, and
/// taken again; a refused claim leaves the whole append unrecorded.
pub async fn claims_taken_released_retaken<S: Store + ?Sized>(store: &S) {
    let (a, b) = (org(1), org(2));
    let (p1, p2, p3) = (phone(1), phone(2), phone(3));
    assert_eq!(store.claim_holder(&p1).await.expect("holder"), None);

    ok(
        store,
        append_with_claims(
            a,
            ExpectedVersion::NoStream,
            1,
            vec![ClaimChange::Claim(p1.clone())],
        ),
    )
    .await;
    assert_eq!(store.claim_holder(&p1).await.expect("holder"), Some(a));
    // Claiming a key one already holds is a no-op.
    ok(
        store,
        append_with_claims(
            a,
            ExpectedVersion::Exact(1),
            2,
            vec![ClaimChange::Claim(p1.clone())],
        ),
    )
    .await;
    assert_eq!(store.claim_holder(&p1).await.expect("holder"), Some(a));

    let before = fingerprint(store, &[a, b], &[p1.clone(), p2.clone(), p3.clone()]).await;
    // Another stream cannot take it, and the append (with a free claim) is not recorded.
    let err = store
        .append(append_with_claims(
            b,
            ExpectedVersion::NoStream,
            3,
            vec![
                ClaimChange::Claim(p2.clone()),
                ClaimChange::Claim(p1.clone()),
            ],
        ))
        .await;
    assert_eq!(
        err,
        Err(StoreError::ClaimTaken {
            key: p1.clone(),
            holder: a
        })
    );
    // Nor release it.
    let err = store
        .append(append_with_claims(
            b,
            ExpectedVersion::Any,
            3,
            vec![ClaimChange::Release(p1.clone())],
        ))
        .await;
    assert_eq!(
        err,
        Err(StoreError::ClaimTaken {
            key: p1.clone(),
            holder: a
        })
    );
    assert_eq!(
        fingerprint(store, &[a, b], &[p1.clone(), p2.clone(), p3.clone()]).await,
        before
    );

    // Releasing a key nobody holds is a no-op.
    ok(
        store,
        append_with_claims(
            b,
            ExpectedVersion::NoStream,
            3,
            vec![ClaimChange::Release(p3.clone())],
        ),
    )
    .await;
    assert_eq!(store.claim_holder(&p3).await.expect("holder"), None);

    // Released, then taken by the other stream.
    ok(
        store,
        append_with_claims(
            a,
            ExpectedVersion::Exact(2),
            4,
            vec![ClaimChange::Release(p1.clone())],
        ),
    )
    .await;
    assert_eq!(store.claim_holder(&p1).await.expect("holder"), None);
    ok(
        store,
        append_with_claims(
            b,
            ExpectedVersion::Exact(1),
            5,
            vec![ClaimChange::Claim(p1.clone())],
        ),
    )
    .await;
    assert_eq!(store.claim_holder(&p1).await.expect("holder"), Some(b));
    let err = store
        .append(append_with_claims(
            a,
            ExpectedVersion::Any,
            6,
            vec![ClaimChange::Claim(p1.clone())],
        ))
        .await;
    assert_eq!(
        err,
        Err(StoreError::ClaimTaken {
            key: p1.clone(),
            holder: b
        })
    );

    // Changes apply in order within one append: the last change to a key wins.
    ok(
        store,
        append_with_claims(
            a,
            ExpectedVersion::Exact(3),
            6,
            vec![
                ClaimChange::Claim(p2.clone()),
                ClaimChange::Release(p2.clone()),
                ClaimChange::Release(p3.clone()),
                ClaimChange::Claim(p3.clone()),
            ],
        ),
    )
    .await;
    assert_eq!(store.claim_holder(&p2).await.expect("holder"), None);
    assert_eq!(store.claim_holder(&p3).await.expect("holder"), Some(a));
    // A claim that fails on the expected version changes no claim either.
    let err = store
        .append(append_with_claims(
            a,
            ExpectedVersion::Exact(1),
            7,
            vec![ClaimChange::Release(p3.clone())],
        ))
        .await;
    assert!(matches!(err, Err(StoreError::Conflict { actual: 4, .. })));
    assert_eq!(store.claim_holder(&p3).await.expect("holder"), Some(a));
    // Claim keys are exact: another namespace is another key.
    let other_ns = ClaimKey::new("email", p1.value.clone());
    ok(
        store,
        append_with_claims(
            a,
            ExpectedVersion::Exact(4),
            8,
            vec![ClaimChange::Claim(other_ns.clone())],
        ),
    )
    .await;
    assert_eq!(
        store.claim_holder(&other_ns).await.expect("holder"),
        Some(a)
    );
    assert_eq!(store.claim_holder(&p1).await.expect("holder"), Some(b));
}

/// N appenders on N streams race for one key: exactly one wins, every other
/// gets `ClaimTaken` naming the winner, and no loser's events are recorded.
pub async fn claims_race_has_one_winner<S: Store + ?Sized>(store: &S) {
    const RACERS: u128 = 12;
    let key = phone(42);
    let attempts = (0..RACERS).map(|i| {
        let key = key.clone();
        async move {
            let req = append_with_claims(
                org(100 + i),
                ExpectedVersion::NoStream,
                1000 + i,
                vec![ClaimChange::Claim(key)],
            );
            (org(100 + i), store.append(req).await)
        }
    });
    let results = futures_util::future::join_all(attempts).await;
    let winners: Vec<OrgId> = results
        .iter()
        .filter(|(_, r)| r.is_ok())
        .map(|(o, _)| *o)
        .collect();
    assert_eq!(winners.len(), 1, "exactly one racer wins: {results:?}");
    let winner = winners[0];
    for (o, r) in &results {
        if *o != winner {
            assert_eq!(
                r,
                &Err(StoreError::ClaimTaken {
                    key: key.clone(),
                    holder: winner
                }),
                "loser {o}"
            );
            assert_eq!(store.stream_version(*o).await.expect("version"), 0);
        }
    }
    assert_eq!(
        store.claim_holder(&key).await.expect("holder"),
        Some(winner)
    );
    assert_eq!(all_events(store, 1).await.len(), 1);
}

/// `read_stream` honours `from`, `to` and `limit`, in version order.
pub async fn read_stream_ranges<S: Store + ?Sized>(store: &S) {
    let (a, b) = (org(1), org(2));
    ok(
        store,
        append(a, ExpectedVersion::NoStream, (1..=4).map(event).collect()),
    )
    .await;
    ok(
        store,
        append(b, ExpectedVersion::NoStream, vec![event(100)]),
    )
    .await;
    ok(
        store,
        append(a, ExpectedVersion::Exact(4), (5..=10).map(event).collect()),
    )
    .await;

    let versions = |evs: Vec<RecordedEvent>| -> Vec<u64> {
        assert!(evs.iter().all(|e| e.stream == a), "only the asked stream");
        evs.iter().map(|e| e.version).collect()
    };
    let read = |from, to, limit| store.read_stream(a, from, to, limit);
    assert_eq!(
        versions(read(1, None, 100).await.expect("read")),
        (1..=10).collect::<Vec<_>>()
    );
    assert_eq!(
        versions(read(0, None, 100).await.expect("read")),
        (1..=10).collect::<Vec<_>>()
    );
    assert_eq!(
        versions(read(3, Some(6), 100).await.expect("read")),
        vec![3, 4, 5, 6]
    );
    assert_eq!(versions(read(3, None, 2).await.expect("read")), vec![3, 4]);
    assert_eq!(
        versions(read(9, Some(99), 100).await.expect("read")),
        vec![9, 10]
    );
    assert_eq!(
        versions(read(7, Some(7), 100).await.expect("read")),
        vec![7]
    );
    assert!(read(7, Some(6), 100).await.expect("read").is_empty());
    assert!(read(11, None, 100).await.expect("read").is_empty());
    assert!(read(u64::MAX, Some(u64::MAX), 100)
        .await
        .expect("read")
        .is_empty());
    assert!(read(1, None, 0).await.expect("read").is_empty());
    assert!(read(1, Some(0), 100).await.expect("read").is_empty());
    assert!(store
        .read_stream(org(3), 1, None, 100)
        .await
        .expect("read")
        .is_empty());
    // Positions grow with versions.
    let evs = read(1, None, 100).await.expect("read");
    assert!(evs.windows(2).all(|w| w[0].position < w[1].position));
}

/// `read_all` pages through every stream in log order, strictly after the
/// given position, with strictly increasing positions.
pub async fn read_all_paging_in_order<S: Store + ?Sized>(store: &S) {
    let mut expected: Vec<EventId> = Vec::new();
    let mut n = 0u128;
    for round in 0..5u64 {
        for s in 1..=3u128 {
            let count = 1 + (s as usize + round as usize) % 3;
            let events: Vec<_> = (0..count)
                .map(|_| {
                    n += 1;
                    event(n)
                })
                .collect();
            expected.extend(events.iter().map(|e| e.event_id));
            ok(store, append(org(s), ExpectedVersion::Any, events)).await;
        }
    }
    assert!(store.read_all(None, 0).await.expect("read_all").is_empty());
    // Wait until everything acknowledged is readable; from then on the log is stable.
    assert_eq!(
        all_events(store, expected.len()).await.len(),
        expected.len()
    );
    for page_size in [1usize, 2, 7, 1000] {
        let mut seen = Vec::new();
        let mut after: Option<Position> = None;
        loop {
            let page = store.read_all(after, page_size).await.expect("read_all");
            assert!(
                page.len() <= page_size,
                "a page holds at most `limit` events"
            );
            let Some(last) = page.last() else { break };
            for e in &page {
                assert!(
                    after.is_none_or(|p| e.position > p),
                    "strictly after, increasing"
                );
                after = Some(e.position);
            }
            assert_eq!(Some(last.position), after);
            seen.extend(page.iter().map(|e| e.event_id));
        }
        assert_eq!(
            seen, expected,
            "page size {page_size}: every event once, in append order"
        );
    }
    let all = all_events(store, expected.len()).await;
    // Reading after any event's position yields exactly the events after it.
    for (i, e) in all.iter().enumerate() {
        let rest = store
            .read_all(Some(e.position), 1000)
            .await
            .expect("read_all");
        assert_eq!(rest.len(), all.len() - i - 1);
        assert_eq!(
            rest.first().map(|r| r.event_id),
            all.get(i + 1).map(|r| r.event_id)
        );
    }
    let last = all.last().expect("events").position;
    assert!(store
        .read_all(Some(last), 10)
        .await
        .expect("read_all")
        .is_empty());
    // Each stream's events appear in version order.
    let mut next: HashMap<OrgId, u64> = HashMap::new();
    for e in &all {
        let v = next.entry(e.stream).or_insert(1);
        assert_eq!(e.version, *v);
        *v += 1;
    }
}

/// Reads return at most [`MAX_READ_PAGE`] events whatever `limit` says.
pub async fn read_limits_are_capped<S: Store + ?Sized>(store: &S) {
    let a = org(1);
    let total = MAX_READ_PAGE + 5;
    let mut n = 0u128;
    let mut version = 0u64;
    while (version as usize) < total {
        let batch = (total - version as usize)
            .min(MAX_EVENTS_PER_APPEND)
            .min(5000);
        let events = (0..batch)
            .map(|_| {
                n += 1;
                event(n)
            })
            .collect();
        ok(store, append(a, ExpectedVersion::Exact(version), events)).await;
        version += batch as u64;
    }
    let page = store
        .read_stream(a, 1, None, usize::MAX)
        .await
        .expect("read");
    assert_eq!(page.len(), MAX_READ_PAGE);
    assert_eq!(page.last().map(|e| e.version), Some(MAX_READ_PAGE as u64));
    assert_eq!(all_events(store, total).await.len(), total);
    let page = store.read_all(None, usize::MAX).await.expect("read_all");
    assert_eq!(page.len(), MAX_READ_PAGE);
    let rest = store
        .read_all(page.last().map(|e| e.position), usize::MAX)
        .await
        .expect("read_all");
    assert_eq!(rest.len(), 5);
    assert_eq!(rest.last().map(|e| e.version), Some(total as u64));
}

/// Requests breaking a limit are refused with `InvalidRequest` and change
/// nothing (checked before the command id, the version and the claims).
pub async fn limits_refused_with_nothing_changed<S: Store + ?Sized>(store: &S) {
    let a = org(1);
    let cmd = command_id(1);
    let first = ok(
        store,
        AppendRequest {
            command_id: Some(cmd),
            ..append_with_claims(
                a,
                ExpectedVersion::NoStream,
                1,
                vec![ClaimChange::Claim(phone(1))],
            )
        },
    )
    .await;
    assert!(!first.duplicate);
    let before = fingerprint(store, &[a], &[phone(1), phone(2)]).await;
    let long = "x".repeat(MAX_NAME_LEN + 1);
    let base = || AppendRequest {
        // A recorded command id: validation still comes first.
        command_id: Some(cmd),
        ..append(a, ExpectedVersion::Exact(1), vec![event(2)])
    };
    let mut bad: Vec<(&str, AppendRequest)> = Vec::new();
    bad.push((
        "no events",
        AppendRequest {
            events: vec![],
            ..base()
        },
    ));
    bad.push((
        "too many events",
        AppendRequest {
            events: (0..=MAX_EVENTS_PER_APPEND as u128)
                .map(|i| event(10_000 + i))
                .collect(),
            ..base()
        },
    ));
    bad.push((
        "too many claims",
        AppendRequest {
            claims: (0..=MAX_CLAIMS_PER_APPEND as u32)
                .map(|i| ClaimChange::Claim(phone(i)))
                .collect(),
            ..base()
        },
    ));
    let mut big = event(3);
    big.payload = serde_json::Value::String("y".repeat(MAX_PAYLOAD_BYTES)).into();
    bad.push((
        "oversized payload",
        AppendRequest {
            events: vec![big],
            ..base()
        },
    ));
    let mut e = event(4);
    e.event_type = String::new();
    bad.push((
        "empty event type",
        AppendRequest {
            events: vec![e],
            ..base()
        },
    ));
    let mut e = event(5);
    e.event_type = long.clone();
    bad.push((
        "long event type",
        AppendRequest {
            events: vec![e],
            ..base()
        },
    ));
    let mut e = event(6);
    e.event_type = "Nul\u{0}".into();
    bad.push((
        "NUL in event type",
        AppendRequest {
            events: vec![e],
            ..base()
        },
    ));
    let mut e = event(7);
    e.payload = serde_json::json!({"deep": [{"x\u{0}": 1}]}).into();
    bad.push((
        "NUL in a payload key",
        AppendRequest {
            events: vec![e],
            ..base()
        },
    ));
    let mut e = event(8);
    e.payload = serde_json::json!([[["\u{0}"]]]).into();
    bad.push((
        "NUL in a payload string",
        AppendRequest {
            events: vec![e],
            ..base()
        },
    ));
    for key in [
        ClaimKey::new("", "v"),
        ClaimKey::new("ns", ""),
        ClaimKey::new(long.clone(), "v"),
        ClaimKey::new("ns", long.clone()),
        ClaimKey::new("ns", "a\u{0}"),
    ] {
        bad.push((
            "bad claim key",
            AppendRequest {
                claims: vec![ClaimChange::Claim(phone(2)), ClaimChange::Release(key)],
                ..base()
            },
        ));
    }
    for (what, req) in bad {
        match store.append(req).await {
            Err(StoreError::InvalidRequest { .. }) => {}
            other => panic!("{what}: expected InvalidRequest, got {other:?}"),
        }
    }
    assert_eq!(
        fingerprint(store, &[a], &[phone(1), phone(2)]).await,
        before
    );

    // The largest allowed payload is accepted.
    let mut max = event(6);
    let overhead =
        serde_json::to_vec(&serde_json::Value::String(String::new())).map_or(2, |v| v.len());
    max.payload = serde_json::Value::String("z".repeat(MAX_PAYLOAD_BYTES - overhead)).into();
    let o = ok(
        store,
        append(a, ExpectedVersion::Exact(1), vec![max.clone()]),
    )
    .await;
    let back = store
        .read_stream(a, o.first_version, None, 1)
        .await
        .expect("read");
    assert_eq!(back.first().map(|e| &e.payload), Some(&max.payload));

    // Text that only looks like a NUL (a backslash, then `u0000`), spelled
    // with spaces and escapes: accepted, and read back as the same value.
    let mut lookalike = event(9);
    lookalike.payload =
        RawPayload::from_json(r#" { "path" : "C:\\u0000\n", "\u00e9": [ 1 , 2.5 ] } "#.to_owned())
            .expect("valid JSON");
    let o = ok(
        store,
        append(a, ExpectedVersion::Exact(2), vec![lookalike.clone()]),
    )
    .await;
    let back = store
        .read_stream(a, o.first_version, None, 1)
        .await
        .expect("read");
    assert_eq!(back.first().map(|e| &e.payload), Some(&lookalike.payload));

    // Snapshots and checkpoints have limits too.
    let huge = Snapshot {
        stream: a,
        version: 1,
        schema_version: 1,
        // Zeros: allocated lazily, so the test costs no 512 MiB of writes.
        state: vec![0; MAX_SNAPSHOT_BYTES + 1],
    };
    assert!(matches!(
        store.save_snapshot(huge).await,
        Err(StoreError::InvalidRequest { .. })
    ));
    assert_eq!(store.load_snapshot(a, None).await.expect("load"), None);
    for name in [String::new(), long, "a\u{0}b".to_string()] {
        assert!(matches!(
            store.save_checkpoint(&name, Position::new(1, 1)).await,
            Err(StoreError::InvalidRequest { .. })
        ));
    }
}

/// Snapshots: save, replace, load the newest at most a version, delete.
pub async fn snapshots<S: Store + ?Sized>(store: &S) {
    let (a, b) = (org(1), org(2));
    let snap = |stream, version, n: u64| Snapshot {
        stream,
        version,
        schema_version: 2,
        // Opaque bytes, zeros and high bytes included.
        state: [n.to_be_bytes().as_slice(), &[0, 255, 0, 128]].concat(),
    };
    assert_eq!(store.load_snapshot(a, None).await.expect("load"), None);
    store.save_snapshot(snap(a, 5, 1)).await.expect("save");
    store.save_snapshot(snap(a, 10, 2)).await.expect("save");
    store.save_snapshot(snap(a, 20, 3)).await.expect("save");
    store.save_snapshot(snap(b, 7, 4)).await.expect("save");
    // Saving at the same version replaces.
    store.save_snapshot(snap(a, 10, 5)).await.expect("save");

    assert_eq!(
        store.load_snapshot(a, None).await.expect("load"),
        Some(snap(a, 20, 3))
    );
    assert_eq!(
        store.load_snapshot(a, Some(19)).await.expect("load"),
        Some(snap(a, 10, 5))
    );
    assert_eq!(
        store.load_snapshot(a, Some(10)).await.expect("load"),
        Some(snap(a, 10, 5))
    );
    assert_eq!(
        store.load_snapshot(a, Some(5)).await.expect("load"),
        Some(snap(a, 5, 1))
    );
    assert_eq!(store.load_snapshot(a, Some(4)).await.expect("load"), None);
    assert_eq!(
        store.load_snapshot(a, Some(u64::MAX)).await.expect("load"),
        Some(snap(a, 20, 3))
    );

    store.delete_snapshots(a).await.expect("delete");
    assert_eq!(store.load_snapshot(a, None).await.expect("load"), None);
    assert_eq!(
        store.load_snapshot(b, None).await.expect("load"),
        Some(snap(b, 7, 4))
    );
    store
        .delete_snapshots(a)
        .await
        .expect("deleting nothing is fine");
    // A snapshot may be saved at any version up to MAX_VERSION, even far above the stream's.
    store
        .save_snapshot(snap(a, MAX_VERSION, 6))
        .await
        .expect("save");
    assert_eq!(
        store.load_snapshot(a, None).await.expect("load"),
        Some(snap(a, MAX_VERSION, 6))
    );
    assert!(matches!(
        store.save_snapshot(snap(a, MAX_VERSION + 1, 7)).await,
        Err(StoreError::InvalidRequest { .. })
    ));
    // A snapshot larger than any event (8 MiB of varied bytes) is stored whole.
    let large = Snapshot {
        stream: b,
        version: 8,
        schema_version: 3,
        state: (0..8 << 20).map(|i: u32| (i % 251) as u8).collect(),
    };
    store.save_snapshot(large.clone()).await.expect("save");
    assert_eq!(
        store.load_snapshot(b, None).await.expect("load"),
        Some(large)
    );
    assert_eq!(
        store.load_snapshot(b, Some(7)).await.expect("load"),
        Some(snap(b, 7, 4))
    );
}

/// Checkpoints: save, overwrite, load; names are independent.
pub async fn checkpoints<S: Store + ?Sized>(store: &S) {
    assert_eq!(
        store.load_checkpoint("projector").await.expect("load"),
        None
    );
    let p = Position::new(7, 42);
    store.save_checkpoint("projector", p).await.expect("save");
    assert_eq!(
        store.load_checkpoint("projector").await.expect("load"),
        Some(p)
    );
    let q = Position::new(9, 50);
    store.save_checkpoint("projector", q).await.expect("save");
    assert_eq!(
        store.load_checkpoint("projector").await.expect("load"),
        Some(q)
    );
    assert_eq!(store.load_checkpoint("mailer").await.expect("load"), None);
    let r = Position::new(u64::MAX >> 1, u64::MAX >> 1);
    store.save_checkpoint("mailer", r).await.expect("save");
    assert_eq!(
        store.load_checkpoint("mailer").await.expect("load"),
        Some(r)
    );
    assert_eq!(
        store.load_checkpoint("projector").await.expect("load"),
        Some(q)
    );
    let name = "n".repeat(MAX_NAME_LEN);
    store.save_checkpoint(&name, p).await.expect("longest name");
    assert_eq!(store.load_checkpoint(&name).await.expect("load"), Some(p));
}

/// `wait_for_events` returns at once when events are already readable, and
/// is woken by an append well before its timeout.
pub async fn wait_for_events_wakes_up<S: Store + ?Sized>(store: &S) {
    let long = Duration::from_secs(60);
    let o = ok(
        store,
        append(org(1), ExpectedVersion::NoStream, vec![event(1)]),
    )
    .await;
    let t = Instant::now();
    store.wait_for_events(None, long).await;
    store.wait_for_events(Some(Position::new(0, 0)), long).await;
    assert!(
        t.elapsed() < Duration::from_secs(10),
        "events after `after` exist: no waiting"
    );

    // Several waiters at the last position; an append wakes them all.
    for _ in 0..3 {
        let t = Instant::now();
        let after = Some(
            store
                .read_all(None, 100)
                .await
                .expect("read")
                .last()
                .map_or(o.last_position, |e| e.position),
        );
        let waiters =
            futures_util::future::join_all((0..4).map(|_| store.wait_for_events(after, long)));
        let appender = async {
            let v = store.stream_version(org(1)).await.expect("version");
            ok(
                store,
                append(
                    org(1),
                    ExpectedVersion::Exact(v),
                    vec![event(100 + u128::from(v))],
                ),
            )
            .await
        };
        let (_, appended) = futures_util::future::join(waiters, appender).await;
        assert!(
            t.elapsed() < Duration::from_secs(20),
            "woken by the append, not by the timeout"
        );
        let total = usize::try_from(appended.last_version).unwrap_or(usize::MAX);
        let log = all_events(store, total).await;
        let new: Vec<_> = log
            .into_iter()
            .filter(|e| after.is_none_or(|p| e.position > p))
            .collect();
        assert_eq!(
            new.last().map(|e| e.event_id),
            Some(event_id(100 + u128::from(appended.last_version - 1)))
        );
    }
    // With nothing new, it returns by the timeout.
    let t = Instant::now();
    let last = all_events(store, 4).await.last().map(|e| e.position);
    store
        .wait_for_events(last, Duration::from_millis(200))
        .await;
    assert!(t.elapsed() < Duration::from_secs(10));
}

/// Every field of an event comes back exactly as appended.
pub async fn event_fields_round_trip<S: Store + ?Sized>(store: &S) {
    let a = org(1);
    let sent = vec![rich_event(1), event(2), rich_event(3)];
    let o = ok(store, append(a, ExpectedVersion::NoStream, sent.clone())).await;
    let back = store.read_stream(a, 1, None, 10).await.expect("read");
    assert_eq!(back.len(), 3);
    for (i, (s, r)) in sent.iter().zip(&back).enumerate() {
        assert_eq!(r.stream, a);
        assert_eq!(r.version, i as u64 + 1);
        assert_eq!(r.event_id, s.event_id);
        assert_eq!(r.event_type, s.event_type);
        assert_eq!(r.schema_version, s.schema_version);
        assert_eq!(r.payload, s.payload);
        assert_eq!(r.metadata, s.metadata);
    }
    assert_eq!(back.first().map(|e| e.position), Some(o.first_position));
    assert_eq!(back.last().map(|e| e.position), Some(o.last_position));
    assert_eq!(all_events(store, 3).await, back);
}

/// 8 spawned appenders write to 3 overlapping streams, re-reading the
/// version and retrying on every conflict, while a subscriber tails the log.
/// Afterwards the subscriber has seen every acknowledged event exactly once,
/// each stream's events in version order, positions strictly increasing, and
/// the same sequence as a fresh `read_all`.
pub async fn concurrent_appenders_with_tailing_subscriber<S>(store: S, spawn: &Spawner)
where
    S: Store + Clone + 'static,
{
    const TASKS: u128 = 8;
    const APPENDS: u128 = 30;
    const STREAMS: u128 = 3;
    let events_of = |t: u128, i: u128| 1 + ((t + i) % 3) as usize;
    let total: usize = (0..TASKS)
        .flat_map(|t| (0..APPENDS).map(move |i| events_of(t, i)))
        .sum();

    let seen: Arc<Mutex<Vec<RecordedEvent>>> = Arc::default();
    let subscriber = {
        let (store, seen) = (store.clone(), seen.clone());
        spawn(Box::pin(async move {
            let mut events = Box::pin(subscribe(&store, None, 7));
            let mut count = 0;
            while count < total {
                match events.next().await {
                    Some(Ok(e)) => {
                        count += 1;
                        seen.lock().unwrap_or_else(|p| p.into_inner()).push(e);
                    }
                    Some(Err(e)) => panic!("subscription failed: {e:?}"),
                    None => panic!("subscription ended"),
                }
            }
        }))
    };

    type Acked = Vec<(AppendOutcome, Vec<EventId>)>;
    let acked: Arc<Mutex<Acked>> = Arc::default();
    let mut writers = Vec::new();
    for t in 0..TASKS {
        let (store, acked) = (store.clone(), acked.clone());
        writers.push(spawn(Box::pin(async move {
            for i in 0..APPENDS {
                let stream = org(1 + (t + i) % STREAMS);
                let events: Vec<_> = (0..events_of(t, i) as u128)
                    .map(|k| event(1_000_000 * (t + 1) + 1000 * i + k))
                    .collect();
                let ids: Vec<EventId> = events.iter().map(|e| e.event_id).collect();
                let mut attempts = 0;
                loop {
                    attempts += 1;
                    assert!(attempts < 10_000, "appender {t} starved");
                    let v = store.stream_version(stream).await.expect("version");
                    match store
                        .append(append(stream, ExpectedVersion::Exact(v), events.clone()))
                        .await
                    {
                        Ok(o) => {
                            assert_eq!(o.first_version, v + 1);
                            acked
                                .lock()
                                .unwrap_or_else(|p| p.into_inner())
                                .push((o, ids));
                            break;
                        }
                        Err(StoreError::Conflict { actual, .. }) => {
                            assert!(actual > v, "a conflict means someone appended");
                        }
                        Err(e) => panic!("appender {t}: {e:?}"),
                    }
                }
            }
        })));
    }
    futures_util::future::join_all(writers).await;
    subscriber.await;

    let acked = acked.lock().unwrap_or_else(|p| p.into_inner()).clone();
    let seen = seen.lock().unwrap_or_else(|p| p.into_inner()).clone();
    assert_eq!(acked.len(), (TASKS * APPENDS) as usize);
    assert_eq!(seen.len(), total);
    let mut ids = HashSet::new();
    for e in &seen {
        assert!(ids.insert(e.event_id), "event {} seen twice", e.event_id);
    }
    for (o, evs) in &acked {
        for id in evs {
            assert!(
                ids.contains(id),
                "acknowledged event {id} was never delivered ({o:?})"
            );
        }
    }
    assert!(
        seen.windows(2).all(|w| w[0].position < w[1].position),
        "positions strictly increase"
    );
    let mut next: HashMap<OrgId, u64> = HashMap::new();
    for e in &seen {
        let v = next.entry(e.stream).or_insert(1);
        assert_eq!(
            e.version, *v,
            "stream {} delivered out of version order",
            e.stream
        );
        *v += 1;
    }
    for s in 1..=STREAMS {
        assert_eq!(
            store.stream_version(org(s)).await.expect("version"),
            next.get(&org(s)).map_or(0, |v| v - 1)
        );
    }
    // Each acknowledged append's events are contiguous in the log and carry its outcome.
    let by_id: HashMap<EventId, &RecordedEvent> = seen.iter().map(|e| (e.event_id, e)).collect();
    for (o, evs) in &acked {
        let first = by_id.get(&evs[0]).expect("delivered");
        let last = by_id.get(&evs[evs.len() - 1]).expect("delivered");
        assert_eq!(
            (first.position, first.version),
            (o.first_position, o.first_version)
        );
        assert_eq!(
            (last.position, last.version),
            (o.last_position, o.last_version)
        );
    }
    assert_eq!(
        all_events(&store, total).await,
        seen,
        "the subscriber saw what read_all shows"
    );
}
