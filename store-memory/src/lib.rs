//! In-memory store for Switchboard, implementing the whole store contract of
//! [`switchboard_core::store`]: [`EventStore`], [`SnapshotStore`] and
//! [`CheckpointStore`].
//!
//! It is the reference implementation: the conformance suite
//! (`switchboard_core::store::conformance`) runs against it, and the
//! Postgres store is model-tested against it. Nothing is persisted.
//!
//! ## Ordering
//! Every append takes one write lock, so appends are totally ordered. The
//! append counter is [`Position::commit`] and the global event counter is
//! [`Position::sequence`]; both only grow, and an event becomes visible to
//! readers at the same instant as its position is assigned, so a reader can
//! never be shown an event before one it has already seen.
#![forbid(unsafe_code)]
#![warn(missing_docs)]

mod keys;

use async_trait::async_trait;
use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::{Arc, RwLock, RwLockReadGuard, RwLockWriteGuard};
use std::time::Duration;
use switchboard_core::ids::{CommandId, EventId, OrgId};
use switchboard_core::store::{
    digests_match, validate_checkpoint_name, AppendOutcome, AppendRequest, CheckpointStore,
    ClaimChange, ClaimKey, CommandRecord, EventStore, Position, RecordedEvent, Snapshot,
    SnapshotStore, StoreError, MAX_READ_PAGE,
};
use tokio::sync::Notify;

/// An in-memory [`EventStore`] + [`SnapshotStore`] + [`CheckpointStore`].
///
/// Cloning is cheap and every clone shares the same data.
///
/// ```
/// use switchboard_core::store::*;
/// use switchboard_core::{Actor, EventId, OrgId};
/// use switchboard_store_memory::MemoryStore;
///
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> Result<(), StoreError> {
/// let store = MemoryStore::new();
/// let org = OrgId::from_uuid(uuid::Uuid::from_u128(1));
/// let outcome = store
///     .append(AppendRequest {
///         stream: org,
///         expected: ExpectedVersion::NoStream,
///         command_id: None,
///         events: vec![NewEvent {
///             event_id: EventId::from_uuid(uuid::Uuid::from_u128(2)),
///             event_type: "Noted".into(),
///             schema_version: 1,
///             payload: serde_json::json!({"text": "hello"}).into(),
///             metadata: EventMetadata {
///                 actor: Actor::System,
///                 occurred_at: chrono::DateTime::UNIX_EPOCH,
///                 command_id: None,
///                 causation_id: None,
///                 correlation_id: None,
///             },
///         }],
///         claims: vec![ClaimChange::Claim(ClaimKey::new("phone_number", "+14155550100"))],
///         command_digest: None,
///         keys: vec![],
///     })
///     .await?;
/// assert_eq!(outcome.last_version, 1);
/// assert_eq!(
///     store.claim_holder(&ClaimKey::new("phone_number", "+14155550100")).await?,
///     Some(org)
/// );
/// let all = store.read_all(None, 100).await?;
/// assert_eq!(all.len(), 1);
/// # Ok(()) }
/// ```
#[derive(Clone, Default)]
pub struct MemoryStore {
    inner: Arc<Inner>,
}

impl std::fmt::Debug for MemoryStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let st = self.read();
        f.debug_struct("MemoryStore")
            .field("events", &st.log.len())
            .field("streams", &st.streams.len())
            .field("appends", &st.commits)
            .finish()
    }
}

#[derive(Default)]
struct Inner {
    state: RwLock<State>,
    /// Woken (all waiters) after every successful append.
    appended: Notify,
    /// Per-user data keys (R-LIFE-06), apart from the log.
    keys: keys::Keys,
}

/// The caller's copies of a page taken under the lock, made after it was
/// released (`State::log`).
fn owned(page: Vec<Arc<RecordedEvent>>) -> Vec<RecordedEvent> {
    page.iter().map(|e| RecordedEvent::clone(e)).collect()
}

#[derive(Default)]
struct State {
    /// Every event, in position order (appends are serialised by the write
    /// lock). Shared, so that a read takes its page's events under the lock
    /// and copies them after releasing it: copying a page of
    /// `MAX_READ_PAGE` events under the lock held every append waiting for
    /// milliseconds (a background snapshot's catch-up stalled commands).
    log: Vec<Arc<RecordedEvent>>,
    /// For each stream, the indexes into `log` of its events, in version order.
    streams: HashMap<OrgId, Vec<usize>>,
    event_ids: HashSet<EventId>,
    /// Idempotency keys, scoped to their stream.
    commands: HashMap<(OrgId, CommandId), CommandRecord>,
    claims: HashMap<ClaimKey, OrgId>,
    /// Append counter: the `commit` part of positions.
    commits: u64,
    /// Event counter: the `sequence` part of positions.
    sequence: u64,
    /// Shared, so that a load takes its copy after the lock is released: a
    /// snapshot is the size of its organization (36 MB at 100 000 users), and
    /// copying it under the lock would stall every append meanwhile.
    snapshots: HashMap<OrgId, BTreeMap<u64, Arc<Snapshot>>>,
    checkpoints: HashMap<String, Position>,
}

impl MemoryStore {
    /// An empty store.
    pub fn new() -> Self {
        Self::default()
    }

    // Lock poisoning: a panic while holding the write lock could only come
    // from a bug or an allocation failure (which aborts). Every append checks
    // everything before it mutates anything, and the mutations themselves
    // cannot fail half-way, so the data behind a poisoned lock is still
    // consistent and it is safe to keep serving it rather than panic forever.
    fn read(&self) -> RwLockReadGuard<'_, State> {
        self.inner.state.read().unwrap_or_else(|p| p.into_inner())
    }

    fn write(&self) -> RwLockWriteGuard<'_, State> {
        self.inner.state.write().unwrap_or_else(|p| p.into_inner())
    }
}

impl State {
    fn version(&self, stream: OrgId) -> u64 {
        self.streams.get(&stream).map_or(0, |v| v.len() as u64)
    }

    /// Checks the claim changes without applying them; returns the keys'
    /// final holders (by this stream) when they can all be applied.
    fn plan_claims(
        &self,
        stream: OrgId,
        changes: &[ClaimChange],
    ) -> Result<Vec<(ClaimKey, bool)>, StoreError> {
        // Changes apply in order, but another stream's holding cannot change
        // inside one append, so: the first change touching a key held by
        // another stream fails the append, and otherwise the last change to
        // each key decides whether this stream holds it afterwards.
        let mut last: HashMap<&ClaimKey, bool> = HashMap::with_capacity(changes.len());
        let mut order: Vec<&ClaimKey> = Vec::with_capacity(changes.len());
        for change in changes {
            let (key, take) = match change {
                ClaimChange::Claim(k) => (k, true),
                ClaimChange::Release(k) => (k, false),
            };
            if let Some(holder) = self.claims.get(key) {
                if *holder != stream {
                    return Err(StoreError::ClaimTaken {
                        key: key.clone(),
                        holder: *holder,
                    });
                }
            }
            if last.insert(key, take).is_none() {
                order.push(key);
            }
        }
        Ok(order
            .into_iter()
            .map(|k| (k.clone(), last.get(k).copied().unwrap_or(false)))
            .collect())
    }
}

fn cap(limit: usize) -> usize {
    limit.min(MAX_READ_PAGE)
}

#[async_trait]
impl EventStore for MemoryStore {
    async fn append(&self, request: AppendRequest) -> Result<AppendOutcome, StoreError> {
        request.validate()?;
        let AppendRequest {
            stream,
            expected,
            command_id,
            events,
            claims,
            command_digest,
            keys,
        } = request;
        let outcome = {
            let mut st = self.write();
            if let Some(cmd) = command_id {
                if let Some(first) = st.commands.get(&(stream, cmd)) {
                    if !digests_match(first.digest, command_digest) {
                        return Err(StoreError::IdempotencyKeyReused { command_id: cmd });
                    }
                    return Ok(AppendOutcome {
                        duplicate: true,
                        ..first.outcome
                    });
                }
            }
            let actual = st.version(stream);
            if !expected.admits(actual) {
                return Err(StoreError::Conflict {
                    stream,
                    expected,
                    actual,
                });
            }
            if let Some(dup) = events.iter().find(|e| st.event_ids.contains(&e.event_id)) {
                return Err(StoreError::DuplicateEvent {
                    event_id: dup.event_id,
                });
            }
            let claim_plan = st.plan_claims(stream, &claims)?;
            // Keys live under their own lock, always taken after the state's
            // (nowhere the other way round), so this cannot deadlock; holding
            // both makes the key changes atomic with the events.
            let mut key_table = self.inner.keys.lock();
            keys::check(&key_table, stream, &keys)?;
            // Counters are u64 and grow by at most MAX_EVENTS_PER_APPEND per
            // append: overflow is out of reach, but refuse rather than wrap.
            let n = events.len() as u64;
            let (Some(commit), Some(last_seq), Some(last_version)) = (
                st.commits.checked_add(1),
                st.sequence.checked_add(n),
                actual.checked_add(n),
            ) else {
                return Err(StoreError::InvalidRequest {
                    reason: "store counters exhausted".into(),
                });
            };

            // Everything is checked: mutate (nothing below can fail).
            let first_seq = st.sequence + 1;
            let base = st.log.len();
            st.log.reserve(events.len());
            for (i, e) in events.into_iter().enumerate() {
                let i = i as u64;
                st.event_ids.insert(e.event_id);
                st.log.push(Arc::new(RecordedEvent {
                    stream,
                    version: actual + 1 + i,
                    position: Position::new(commit, first_seq + i),
                    event_id: e.event_id,
                    event_type: e.event_type,
                    schema_version: e.schema_version,
                    payload: e.payload,
                    metadata: e.metadata,
                }));
            }
            let end = st.log.len();
            st.streams.entry(stream).or_default().extend(base..end);
            keys::apply(&mut key_table, stream, keys);
            drop(key_table);
            for (key, held) in claim_plan {
                if held {
                    st.claims.insert(key, stream);
                } else {
                    st.claims.remove(&key);
                }
            }
            st.commits = commit;
            st.sequence = last_seq;
            let outcome = AppendOutcome {
                stream,
                first_version: actual + 1,
                last_version,
                first_position: Position::new(commit, first_seq),
                last_position: Position::new(commit, last_seq),
                duplicate: false,
            };
            if let Some(cmd) = command_id {
                st.commands.insert(
                    (stream, cmd),
                    CommandRecord {
                        outcome,
                        digest: command_digest,
                    },
                );
            }
            outcome
        };
        // After the lock is released: waiters re-read and must see the events.
        self.inner.appended.notify_waiters();
        Ok(outcome)
    }

    async fn find_command(
        &self,
        stream: OrgId,
        command_id: CommandId,
    ) -> Result<Option<CommandRecord>, StoreError> {
        Ok(self.read().commands.get(&(stream, command_id)).copied())
    }

    async fn stream_version(&self, stream: OrgId) -> Result<u64, StoreError> {
        Ok(self.read().version(stream))
    }

    async fn read_stream(
        &self,
        stream: OrgId,
        from: u64,
        to: Option<u64>,
        limit: usize,
    ) -> Result<Vec<RecordedEvent>, StoreError> {
        let page: Vec<Arc<RecordedEvent>> = {
            let st = self.read();
            let Some(indexes) = st.streams.get(&stream) else {
                return Ok(Vec::new());
            };
            // Version v is at index v - 1; version 0 does not exist.
            let start = usize::try_from(from.max(1) - 1).unwrap_or(usize::MAX);
            let end = match to {
                Some(to) => usize::try_from(to).unwrap_or(usize::MAX),
                None => usize::MAX,
            }
            .min(indexes.len());
            if start >= end {
                return Ok(Vec::new());
            }
            indexes[start..end]
                .iter()
                .take(cap(limit))
                .filter_map(|&i| st.log.get(i).cloned())
                .collect()
        };
        Ok(owned(page))
    }

    async fn read_all(
        &self,
        after: Option<Position>,
        limit: usize,
    ) -> Result<Vec<RecordedEvent>, StoreError> {
        let page: Vec<Arc<RecordedEvent>> = {
            let st = self.read();
            let start = match after {
                None => 0,
                Some(p) => st.log.partition_point(|e| e.position <= p),
            };
            st.log[start..].iter().take(cap(limit)).cloned().collect()
        };
        Ok(owned(page))
    }

    async fn wait_for_events(&self, after: Option<Position>, timeout: Duration) {
        // Register interest before looking, so that an append landing between
        // the look and the wait still wakes us (no lost wake-up).
        let notified = self.inner.appended.notified();
        tokio::pin!(notified);
        notified.as_mut().enable();
        let has_newer = {
            let st = self.read();
            match (after, st.log.last()) {
                (_, None) => false,
                (None, Some(_)) => true,
                (Some(p), Some(last)) => last.position > p,
            }
        };
        if has_newer {
            return;
        }
        // A timeout that overflows the timer is treated as "very long".
        let _ = tokio::time::timeout(timeout, notified).await;
    }

    async fn claim_holder(&self, key: &ClaimKey) -> Result<Option<OrgId>, StoreError> {
        Ok(self.read().claims.get(key).copied())
    }
}

#[async_trait]
impl SnapshotStore for MemoryStore {
    async fn save_snapshot(&self, snapshot: Snapshot) -> Result<(), StoreError> {
        snapshot.validate()?;
        self.write()
            .snapshots
            .entry(snapshot.stream)
            .or_default()
            .insert(snapshot.version, Arc::new(snapshot));
        Ok(())
    }

    async fn load_snapshot(
        &self,
        stream: OrgId,
        at_most: Option<u64>,
    ) -> Result<Option<Snapshot>, StoreError> {
        let shared = {
            let st = self.read();
            let Some(by_version) = st.snapshots.get(&stream) else {
                return Ok(None);
            };
            by_version
                .range(..=at_most.unwrap_or(u64::MAX))
                .next_back()
                .map(|(_, s)| Arc::clone(s))
        };
        // The copy is made here, with the lock released.
        Ok(shared.map(|s| Snapshot::clone(&s)))
    }

    async fn delete_snapshots(&self, stream: OrgId) -> Result<(), StoreError> {
        self.write().snapshots.remove(&stream);
        Ok(())
    }
}

#[async_trait]
impl CheckpointStore for MemoryStore {
    async fn save_checkpoint(&self, name: &str, position: Position) -> Result<(), StoreError> {
        validate_checkpoint_name(name)?;
        self.write().checkpoints.insert(name.to_owned(), position);
        Ok(())
    }

    async fn load_checkpoint(&self, name: &str) -> Result<Option<Position>, StoreError> {
        validate_checkpoint_name(name)?;
        Ok(self.read().checkpoints.get(name).copied())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use switchboard_core::store::conformance::{append, event, org};
    use switchboard_core::store::ExpectedVersion;

    /// A panic while holding the lock (only a bug could cause one) must not
    /// turn every later call into a panic: the data is consistent because
    /// appends check everything before mutating.
    #[tokio::test]
    async fn keeps_serving_after_a_poisoned_lock() {
        let store = MemoryStore::new();
        store
            .append(append(org(1), ExpectedVersion::NoStream, vec![event(1)]))
            .await
            .expect("append");
        let poisoner = store.clone();
        let _ = std::thread::spawn(move || {
            let _guard = poisoner.inner.state.write();
            panic!("poison the lock");
        })
        .join();
        assert!(store.inner.state.is_poisoned());
        let o = store
            .append(append(org(1), ExpectedVersion::Exact(1), vec![event(2)]))
            .await
            .expect("append after poisoning");
        assert_eq!(o.last_version, 2);
        assert_eq!(store.read_all(None, 10).await.expect("read").len(), 2);
    }
}
