//! The command-handling service: load the organization (cache, snapshot +
//! tail), decide, append with the expected version, retry on conflict, and
//! treat a repeated command id as done.
//!
//! Architecture invariant: the service is the only place that combines the
//! pure core with a store. Its per-command cost is the tail of events it has
//! not yet folded plus the decision itself; a warm organization is never
//! replayed from the start.

use crate::codec;
use crate::codec::Sealing;
use crate::command::Command;
use crate::context::{Actor, Clock, Context, IdSource, Pause, SecretSource, YieldPause};
use crate::decide::{decide, Decision, IssuedSecret};
use crate::erasure::{DataKey, KeyRing, MAX_KEYS_PER_LOAD};
use crate::error::{Blocker, CommandError};
use crate::event::Event;
use crate::evolve::evolve;
use crate::ids::*;
use crate::model::Organization;
use crate::store::{
    AppendOutcome, AppendRequest, EventMetadata, ExpectedVersion, NewEvent, RecordedEvent,
    Snapshot, Store, StoreError, MAX_READ_PAGE,
};
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// Schema version of serialized [`Organization`] snapshots. Bump it when the
/// state's shape changes: older snapshots are then ignored and the stream replayed.
pub const SNAPSHOT_SCHEMA_VERSION: u32 = 1;

/// Tunables, each bounded.
#[derive(Clone, Debug)]
pub struct ServiceConfig {
    /// Attempts on a version conflict before giving up (1..=100).
    pub max_attempts: u32,
    /// Pause before the second attempt; it doubles with every further
    /// conflict, up to `retry_max_delay`, and each pause is jittered to
    /// between half and all of it (from the command id, so two commands that
    /// collided do not wake together). At most 1 s.
    pub retry_base_delay: Duration,
    /// The longest pause between two attempts (at most 10 s).
    pub retry_max_delay: Duration,
    /// Save a snapshot once at least this many events were recorded since
    /// the last one (0: never) — and at least `snapshot_events_per_entity`
    /// per entity of the organization, see there.
    pub snapshot_every: u64,
    /// Makes snapshots of large organizations rarer: a snapshot is saved only
    /// once the events since the last one number at least this many per
    /// entity (user, account, number, invitation, work item, role). Writing a
    /// snapshot costs the size of the organization (about 10 µs per user,
    /// 1 s at 100 000 users) and loading one about as much as replaying 5
    /// events per user, so a snapshot taken after fewer events than that
    /// saves nothing; with this rule the cost of snapshots per event stays
    /// constant as the organization grows (amortized). 0: `snapshot_every`
    /// alone decides.
    pub snapshot_events_per_entity: u64,
    /// Organizations kept folded in memory (at least 1).
    pub cache_capacity: usize,
}

impl Default for ServiceConfig {
    fn default() -> Self {
        Self {
            max_attempts: 8,
            retry_base_delay: Duration::from_millis(2),
            retry_max_delay: Duration::from_millis(200),
            snapshot_every: 1_000,
            snapshot_events_per_entity: 4,
            cache_capacity: 1_024,
        }
    }
}

/// A command with its envelope.
#[derive(Clone, Debug)]
pub struct CommandRequest {
    /// The organization (stream).
    pub org: OrgId,
    /// Idempotency key: the same id twice records nothing new.
    pub command_id: CommandId,
    /// Who acts (R-AUTH-04).
    pub actor: Actor,
    /// What they ask.
    pub command: Command,
    /// What caused it, if known.
    pub causation_id: Option<uuid::Uuid>,
    /// The conversation it belongs to; defaults to the command id.
    pub correlation_id: Option<uuid::Uuid>,
}

impl CommandRequest {
    /// A request with no causation or correlation.
    pub fn new(org: OrgId, command_id: CommandId, actor: Actor, command: Command) -> Self {
        Self {
            org,
            command_id,
            actor,
            command,
            causation_id: None,
            correlation_id: None,
        }
    }
}

/// What a handled command did.
#[derive(Clone, Debug, PartialEq)]
pub struct Handled {
    /// The events recorded (empty when the command changed nothing).
    pub events: Vec<Event>,
    /// Tokens issued; empty on a duplicate (only hashes were kept).
    pub secrets: Vec<IssuedSecret>,
    /// The bulk report, for bulk commands (not kept on a duplicate).
    pub report: Option<crate::bulk::BulkReport>,
    /// Where the append landed (`None` when nothing was appended).
    pub outcome: Option<AppendOutcome>,
    /// The stream version after the command.
    pub version: u64,
    /// True when the command id had been handled before: nothing new was recorded.
    pub duplicate: bool,
    /// How many times the command was decided: 1, plus one for each version
    /// conflict that sent it back (0 for a duplicate answered from the store).
    pub attempts: u32,
}

/// Why the service could not handle a command.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum ServiceError {
    /// The rules refused it; nothing was recorded.
    #[error(transparent)]
    Rejected(#[from] CommandError),
    /// The store failed.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// Conflicts persisted through every attempt; nothing was recorded, and
    /// the same request (same command id) may be sent again.
    #[error("gave up after {attempts} conflicting attempts")]
    Contention {
        /// Attempts made.
        attempts: u32,
    },
    /// A stored event could not be read.
    #[error("stored event could not be decoded: {0}")]
    Decode(#[from] codec::DecodeError),
}

/// An organization folded in memory, and the version of its newest snapshot
/// known to this service (0: none), from which the next one is due.
struct Cached {
    state: Organization,
    snapshot_at: u64,
}

type Slot = Arc<async_lock::Mutex<Option<Cached>>>;

/// Handles commands against a store. `Send + Sync`; share it behind an `Arc`.
///
/// ```
/// # use switchboard_core::service::*;
/// # use switchboard_core::*;
/// # use std::sync::Arc;
/// # async fn demo<S: store::Store>(store: S) -> Result<(), ServiceError> {
/// let clock = Arc::new(FixedClock::new(chrono::DateTime::UNIX_EPOCH));
/// let service = CommandService::new(store, clock, Arc::new(SequentialIds::new(1)), Arc::new(SeededSecrets::new(1)));
/// let org = OrgId::from_uuid(uuid::Uuid::from_u128(1));
/// let created = service
///     .handle(CommandRequest::new(
///         org,
///         CommandId::from_uuid(uuid::Uuid::from_u128(2)),
///         Actor::System,
///         Command::CreateOrganization {
///             name: "Acme".into(),
///             root_account_name: "Acme HQ".into(),
///             owner_email: "ada@acme.example".into(),
///             owner_name: "Ada".into(),
///             policies: None,
///         },
///     ))
///     .await?;
/// assert_eq!(created.version, 1);
/// # Ok(()) }
/// ```
pub struct CommandService<S> {
    store: S,
    clock: Arc<dyn Clock>,
    ids: Arc<dyn IdSource>,
    secrets: Arc<dyn SecretSource>,
    pause: Arc<dyn Pause>,
    config: ServiceConfig,
    cache: Mutex<HashMap<OrgId, Slot>>,
}

impl<S: Store> CommandService<S> {
    /// A service with the default configuration.
    pub fn new(
        store: S,
        clock: Arc<dyn Clock>,
        ids: Arc<dyn IdSource>,
        secrets: Arc<dyn SecretSource>,
    ) -> Self {
        Self::with_config(store, clock, ids, secrets, ServiceConfig::default())
    }

    /// A service with a configuration (out-of-range values are clamped).
    pub fn with_config(
        store: S,
        clock: Arc<dyn Clock>,
        ids: Arc<dyn IdSource>,
        secrets: Arc<dyn SecretSource>,
        mut config: ServiceConfig,
    ) -> Self {
        config.max_attempts = config.max_attempts.clamp(1, 100);
        config.retry_max_delay = config.retry_max_delay.min(Duration::from_secs(10));
        config.retry_base_delay = config
            .retry_base_delay
            .min(Duration::from_secs(1))
            .min(config.retry_max_delay);
        config.cache_capacity = config.cache_capacity.max(1);
        Self {
            store,
            clock,
            ids,
            secrets,
            pause: Arc::new(YieldPause),
            config,
            cache: Mutex::new(HashMap::new()),
        }
    }

    /// Waits between conflicting attempts with `pause` (the default,
    /// [`YieldPause`], only yields). Pass a timer when several processes
    /// write to the same organizations.
    ///
    /// ```
    /// # use switchboard_core::service::*;
    /// # use switchboard_core::*;
    /// # use std::sync::Arc;
    /// # fn demo<S: store::Store>(service: CommandService<S>) {
    /// let service = service.with_pause(Arc::new(YieldPause));
    /// # }
    /// ```
    pub fn with_pause(mut self, pause: Arc<dyn Pause>) -> Self {
        self.pause = pause;
        self
    }

    /// The configuration in force (after clamping).
    pub fn config(&self) -> &ServiceConfig {
        &self.config
    }

    /// The store.
    pub fn store(&self) -> &S {
        &self.store
    }

    fn slot(&self, org: OrgId) -> Slot {
        let mut cache = self.cache.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(s) = cache.get(&org) {
            return s.clone();
        }
        if cache.len() >= self.config.cache_capacity {
            // Evict one organization nobody is using; a missing one is just reloaded.
            let idle = cache
                .iter()
                .find(|(_, s)| Arc::strong_count(s) == 1)
                .map(|(k, _)| *k);
            if let Some(k) = idle {
                cache.remove(&k);
            }
        }
        let slot: Slot = Arc::new(async_lock::Mutex::new(None));
        cache.insert(org, slot.clone());
        slot
    }

    /// Folds stored events `from..` into `state`. Cost: the tail.
    async fn catch_up(
        &self,
        state: &mut Organization,
        to: Option<u64>,
    ) -> Result<(), ServiceError> {
        loop {
            if to.is_some_and(|t| state.version >= t) {
                return Ok(());
            }
            let page = self
                .store
                .read_stream(state.id, state.version + 1, to, MAX_READ_PAGE)
                .await?;
            if page.is_empty() {
                return Ok(());
            }
            let keys = self.key_ring(state.id, &page).await?;
            for r in page {
                if r.version != state.version + 1 {
                    return Err(StoreError::Corrupt {
                        reason: format!(
                            "stream {} jumps from version {} to {}",
                            state.id, state.version, r.version
                        ),
                    }
                    .into());
                }
                evolve(state, &codec::decode_owned(r, &keys)?);
            }
        }
    }

    /// The organization from its newest snapshot, or empty, ready to cache.
    async fn load_cached(&self, org: OrgId) -> Result<Cached, ServiceError> {
        let state = self.load_snapshot_or_empty(org, None).await?;
        Ok(Cached {
            snapshot_at: state.version,
            state,
        })
    }

    /// The state from the newest usable snapshot at or below `at_most`, or empty.
    async fn load_snapshot_or_empty(
        &self,
        org: OrgId,
        at_most: Option<u64>,
    ) -> Result<Organization, ServiceError> {
        if let Some(snap) = self.store.load_snapshot(org, at_most).await? {
            if snap.schema_version == SNAPSHOT_SCHEMA_VERSION {
                if let Ok(state) = serde_json::from_value::<Organization>(snap.state) {
                    if state.id == org && state.version == snap.version {
                        return Ok(state);
                    }
                }
            }
        }
        Ok(Organization::empty(org))
    }

    /// The organization's current state (snapshot + tail; not cached).
    pub async fn load(&self, org: OrgId) -> Result<Organization, ServiceError> {
        let mut state = self.load_snapshot_or_empty(org, None).await?;
        self.catch_up(&mut state, None).await?;
        Ok(state)
    }

    /// The organization's state as of stream version `version` (snapshot + tail).
    pub async fn load_at_version(
        &self,
        org: OrgId,
        version: u64,
    ) -> Result<Organization, ServiceError> {
        let mut state = self.load_snapshot_or_empty(org, Some(version)).await?;
        self.catch_up(&mut state, Some(version)).await?;
        Ok(state)
    }

    /// The current state, without recording anything: for reads and dry runs.
    /// Runs `read` on the current state (cached, caught up) without copying it.
    /// Holds the organization's slot while `read` runs: keep it short.
    ///
    /// ```
    /// # use switchboard_core::service::*;
    /// # async fn demo<S: switchboard_core::store::Store>(service: &CommandService<S>, org: switchboard_core::OrgId) -> Result<(), ServiceError> {
    /// let users = service.read(org, |state| state.users.len()).await?;
    /// # Ok(()) }
    /// ```
    pub async fn read<R>(
        &self,
        org: OrgId,
        read: impl FnOnce(&Organization) -> R,
    ) -> Result<R, ServiceError> {
        let slot = self.slot(org);
        let mut guard = slot.lock().await;
        let mut cached = match guard.take() {
            Some(c) => c,
            None => self.load_cached(org).await?,
        };
        let result = self.catch_up(&mut cached.state, None).await;
        let out = result.map(|_| read(&cached.state));
        *guard = Some(cached);
        out
    }

    /// R-OFF-02: decides without recording; returns the events it would
    /// record or every blocker.
    pub async fn dry_run(
        &self,
        org: OrgId,
        actor: Actor,
        command: &Command,
    ) -> Result<Decision, ServiceError> {
        let ctx = Context {
            actor,
            now: self.clock.now(),
            command_id: CommandId::from_uuid(self.ids.next_id()),
            ids: self.ids.as_ref(),
            secrets: self.secrets.as_ref(),
        };
        Ok(self
            .read(org, |state| decide(state, command, &ctx))
            .await??)
    }

    /// Events of the append recorded under `outcome`, decoded.
    async fn recorded(&self, outcome: &AppendOutcome) -> Result<Vec<Event>, ServiceError> {
        let mut out = Vec::new();
        let mut from = outcome.first_version;
        while from <= outcome.last_version {
            let page = self
                .store
                .read_stream(
                    outcome.stream,
                    from,
                    Some(outcome.last_version),
                    MAX_READ_PAGE,
                )
                .await?;
            let Some(last) = page.last() else { break };
            from = last.version + 1;
            let keys = self.key_ring(outcome.stream, &page).await?;
            for r in &page {
                out.push(codec::decode_with(r, &keys)?);
            }
        }
        Ok(out)
    }

    async fn duplicate(&self, outcome: AppendOutcome) -> Result<Handled, ServiceError> {
        let events = self.recorded(&outcome).await?;
        // A retry of a deletion whose erasure step failed completes it.
        self.erase_deleted_users(outcome.stream, &events).await?;
        Ok(Handled {
            events,
            secrets: Vec::new(),
            report: None,
            outcome: Some(outcome),
            version: outcome.last_version,
            duplicate: true,
            attempts: 0,
        })
    }

    /// Handles a command: events recorded, or a typed refusal with every blocker.
    pub async fn handle(&self, request: CommandRequest) -> Result<Handled, ServiceError> {
        if let Some(outcome) = self.store.find_command(request.command_id).await? {
            return self.duplicate(outcome).await;
        }
        let slot = self.slot(request.org);
        let mut guard = slot.lock().await;
        let mut cached = match guard.take() {
            Some(c) => c,
            None => self.load_cached(request.org).await?,
        };
        let result = self.handle_locked(&request, &mut cached).await;
        // The cached state only ever holds folded, recorded events; on an
        // error it may lag, and the next command catches up.
        *guard = Some(cached);
        result
    }

    async fn handle_locked(
        &self,
        request: &CommandRequest,
        cached: &mut Cached,
    ) -> Result<Handled, ServiceError> {
        let Cached { state, snapshot_at } = cached;
        for attempt in 1..=self.config.max_attempts {
            if attempt > 1 {
                let delay = retry_delay(&self.config, request.command_id, attempt);
                self.pause.pause(delay).await;
            }
            self.catch_up(state, None).await?;
            let now = self.clock.now();
            let ctx = Context {
                actor: request.actor.clone(),
                now,
                command_id: request.command_id,
                ids: self.ids.as_ref(),
                secrets: self.secrets.as_ref(),
            };
            let decision = decide(state, &request.command, &ctx)?;
            if decision.events.is_empty() {
                return Ok(Handled {
                    events: Vec::new(),
                    secrets: decision.secrets,
                    report: decision.report,
                    outcome: None,
                    version: state.version,
                    duplicate: false,
                    attempts: attempt,
                });
            }
            let metadata = EventMetadata {
                actor: request.actor.clone(),
                occurred_at: now,
                command_id: Some(request.command_id),
                causation_id: request.causation_id,
                correlation_id: Some(
                    request
                        .correlation_id
                        .unwrap_or(request.command_id.as_uuid()),
                ),
            };
            let append = AppendRequest {
                stream: request.org,
                expected: if state.version == 0 {
                    ExpectedVersion::NoStream
                } else {
                    ExpectedVersion::Exact(state.version)
                },
                command_id: Some(request.command_id),
                events: self
                    .encode_sealed(request.org, &decision.events, &metadata)
                    .await?,
                claims: codec::claims(&decision.events),
            };
            match self.append_resending(append).await {
                Ok(outcome) if outcome.duplicate => {
                    // Another instance recorded this very command meanwhile.
                    let mut handled = self.duplicate(outcome).await?;
                    handled.attempts = attempt;
                    return Ok(handled);
                }
                Ok(outcome) => {
                    for e in &decision.events {
                        evolve(state, e);
                    }
                    debug_assert_eq!(state.version, outcome.last_version);
                    // A deletion removes every snapshot; the one at
                    // `snapshot_at` still counts as taken, so that a run of
                    // deletions in a large organization does not rewrite it
                    // each time (cold loads replay more until the next one).
                    self.erase_deleted_users(request.org, &decision.events)
                        .await?;
                    if self.snapshot_due(state, *snapshot_at) {
                        self.save_snapshot_of(state).await;
                        *snapshot_at = state.version;
                    }
                    return Ok(Handled {
                        events: decision.events,
                        secrets: decision.secrets,
                        report: decision.report,
                        outcome: Some(outcome),
                        version: state.version,
                        duplicate: false,
                        attempts: attempt,
                    });
                }
                Err(StoreError::Conflict { .. }) => continue,
                Err(StoreError::ClaimTaken { key, .. })
                    if key.namespace == codec::PHONE_NUMBER_CLAIM =>
                {
                    return Err(CommandError::from(Blocker::NumberClaimedElsewhere {
                        number: PhoneNumber(key.value),
                    })
                    .into())
                }
                Err(e) => return Err(e.into()),
            }
        }
        Err(ServiceError::Contention {
            attempts: self.config.max_attempts,
        })
    }

    /// Appends; when the outcome is unknown, re-sends the identical request
    /// (same command id and event ids), which the store turns into the first
    /// outcome if it had committed. Bounded.
    async fn append_resending(&self, append: AppendRequest) -> Result<AppendOutcome, StoreError> {
        const RESENDS: usize = 3;
        let mut last = None;
        for _ in 0..=RESENDS {
            match self.store.append(append.clone()).await {
                Err(
                    e @ StoreError::Unavailable {
                        maybe_committed: true,
                        ..
                    },
                ) => last = Some(e),
                other => return other,
            }
        }
        Err(last.unwrap_or(StoreError::Unavailable {
            reason: "append outcome unknown".into(),
            maybe_committed: true,
        }))
    }

    /// Whether a snapshot of `state` is due, the last one being at `snapshot_at`.
    fn snapshot_due(&self, state: &Organization, snapshot_at: u64) -> bool {
        let every = self.config.snapshot_every;
        if every == 0 {
            return false;
        }
        let since = state.version.saturating_sub(snapshot_at);
        let per_entity = self
            .config
            .snapshot_events_per_entity
            .saturating_mul(state.entity_count());
        since >= every.max(per_entity)
    }

    /// Every event of the organization with its envelope, in version order
    /// (for trails and exports). Payloads are *opened*: personal data sealed
    /// under a live key is in clear, that of deleted users is erased (empty),
    /// so [`codec::decode`] reads them. The stored (sealed) form is what
    /// [`EventStore::read_stream`](crate::store::EventStore::read_stream) returns.
    pub async fn history(&self, org: OrgId) -> Result<Vec<RecordedEvent>, ServiceError> {
        let mut out: Vec<RecordedEvent> = Vec::new();
        loop {
            let mut page = self
                .store
                .read_stream(org, out.len() as u64 + 1, None, MAX_READ_PAGE)
                .await?;
            if page.is_empty() {
                return Ok(out);
            }
            let keys = self.key_ring(org, &page).await?;
            for r in &mut page {
                codec::open_payload(&mut r.payload, &r.event_type, r.stream, r.event_id, &keys)?;
            }
            out.extend(page);
        }
    }

    /// Saves a snapshot of the organization as it is now and returns its
    /// version. For services that snapshot from a background task of their
    /// own (`snapshot_every: 0`) rather than on the command path: the
    /// organization's lock is held only to copy the state, not while it is
    /// serialized and written. A snapshot too large for the store is refused
    /// with [`StoreError::InvalidRequest`]; nothing else changes. An
    /// organization without events is not saved (returns 0).
    ///
    /// ```
    /// # use switchboard_core::service::*;
    /// # async fn demo<S: switchboard_core::store::Store>(service: &CommandService<S>, org: switchboard_core::OrgId) -> Result<(), ServiceError> {
    /// let version = service.snapshot(org).await?;
    /// # Ok(()) }
    /// ```
    pub async fn snapshot(&self, org: OrgId) -> Result<u64, ServiceError> {
        let state = self.state(org).await?;
        if state.version == 0 {
            return Ok(0); // no events, nothing worth saving
        }
        self.write_snapshot(&state).await?;
        let slot = self.slot(org);
        let mut guard = slot.lock().await;
        if let Some(cached) = guard.as_mut() {
            cached.snapshot_at = cached.snapshot_at.max(state.version);
        }
        Ok(state.version)
    }

    /// A copy of the current state (cached, caught up). The copy costs the
    /// size of the organization: prefer [`CommandService::read`] on hot paths.
    pub async fn state(&self, org: OrgId) -> Result<Organization, ServiceError> {
        self.read(org, Organization::clone).await
    }
}

/// The pause before attempt `attempt` (2, 3, …) of a command: the base delay
/// doubled per earlier conflict, capped, then scaled into [½, 1) of itself by
/// a jitter drawn from the command id and the attempt. Pure: the same command
/// waits the same on every run, two commands almost never the same.
pub fn retry_delay(config: &ServiceConfig, command: CommandId, attempt: u32) -> Duration {
    let doublings = attempt.saturating_sub(2).min(20);
    let full = config
        .retry_base_delay
        .saturating_mul(1u32 << doublings)
        .min(config.retry_max_delay);
    // SplitMix64 over the id's two halves and the attempt.
    let (hi, lo) = command.as_uuid().as_u64_pair();
    let mut z = hi ^ lo.rotate_left(32) ^ u64::from(attempt).wrapping_mul(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^= z >> 31;
    let fraction = (z >> 11) as f64 / (1u64 << 53) as f64; // [0, 1)
    full / 2 + full.mul_f64(fraction / 2.0)
}

// ---- Erasure (R-LIFE-06): sealing on write, opening on read, shredding on deletion.
impl<S: Store> CommandService<S> {
    /// The keys needed to open the sealed personal data of `page`.
    pub(crate) async fn key_ring(
        &self,
        org: OrgId,
        page: &[RecordedEvent],
    ) -> Result<KeyRing, ServiceError> {
        let mut subjects: Vec<UserId> = page
            .iter()
            .flat_map(|r| codec::sealed_subjects(&r.payload))
            .collect();
        subjects.sort_unstable();
        subjects.dedup();
        let mut ring = KeyRing::empty();
        for chunk in subjects.chunks(MAX_KEYS_PER_LOAD) {
            ring.extend(self.store.load_keys(org, chunk).await?);
        }
        Ok(ring)
    }

    /// Encodes events for appending, each with a fresh event id, sealing
    /// personal data under its subject's key (created on first use; a
    /// deleted key erases the data instead). Keys and nonces come from the
    /// caller's [`SecretSource`]: the core draws no randomness.
    pub(crate) async fn encode_sealed(
        &self,
        org: OrgId,
        events: &[Event],
        metadata: &EventMetadata,
    ) -> Result<Vec<NewEvent>, ServiceError> {
        let mut out = Vec::with_capacity(events.len());
        // One key look-up per subject per command (a bulk invitation seals
        // many events, a profile completion several of one user).
        let mut keys: HashMap<UserId, Option<DataKey>> = HashMap::new();
        for e in events {
            let event_id = EventId::from_uuid(self.ids.next_id());
            let Some(subject) = codec::personal_subject(e) else {
                out.push(codec::encode(e, event_id, metadata.clone()));
                continue;
            };
            let key = match keys.get(&subject) {
                Some(k) => k.clone(),
                None => {
                    let k = self.subject_key(org, subject).await?;
                    keys.insert(subject, k.clone());
                    k
                }
            };
            out.push(self.seal_with(org, e, event_id, metadata, key.as_ref()));
        }
        Ok(out)
    }

    /// The subject's data key, created on first use; `None` once erased.
    async fn subject_key(
        &self,
        org: OrgId,
        subject: UserId,
    ) -> Result<Option<DataKey>, ServiceError> {
        let candidate = DataKey::from_bytes(self.secrets.secret());
        Ok(self.store.create_key(org, subject, candidate).await?)
    }

    fn seal_with(
        &self,
        org: OrgId,
        event: &Event,
        event_id: EventId,
        metadata: &EventMetadata,
        key: Option<&DataKey>,
    ) -> NewEvent {
        let sealing = match key {
            Some(key) => Sealing::Seal {
                key,
                nonce: self.secrets.secret(),
            },
            None => Sealing::Erase,
        };
        codec::encode_sealed(event, org, event_id, metadata.clone(), sealing)
    }

    /// Encodes one event with a given id (imports keep their event ids).
    pub(crate) async fn encode_one_sealed(
        &self,
        org: OrgId,
        event: &Event,
        event_id: EventId,
        metadata: &EventMetadata,
    ) -> Result<NewEvent, ServiceError> {
        let Some(subject) = codec::personal_subject(event) else {
            return Ok(codec::encode(event, event_id, metadata.clone()));
        };
        let key = self.subject_key(org, subject).await?;
        Ok(self.seal_with(org, event, event_id, metadata, key.as_ref()))
    }

    /// After `UserDeleted` events were recorded: deletes the users' data keys
    /// (which erases their personal data from every event), then every
    /// snapshot of the organization (older ones hold the profile in clear).
    /// Idempotent; on failure the command stays recorded and re-sending it
    /// (same command id) or [`CommandService::complete_erasure`] finishes the job.
    async fn erase_deleted_users(&self, org: OrgId, events: &[Event]) -> Result<(), ServiceError> {
        let deleted: Vec<UserId> = events
            .iter()
            .filter_map(|e| match e {
                Event::UserDeleted { user, .. } => Some(*user),
                _ => None,
            })
            .collect();
        if deleted.is_empty() {
            return Ok(());
        }
        for user in &deleted {
            self.store.delete_key(org, *user).await?;
        }
        self.store.delete_snapshots(org).await?;
        Ok(())
    }

    /// Saves a snapshot of `state`; on the command path a failure costs only
    /// speed (the log is the truth), so this ignores it.
    async fn save_snapshot_of(&self, state: &Organization) {
        let _ = self.write_snapshot(state).await;
    }

    async fn write_snapshot(&self, state: &Organization) -> Result<(), ServiceError> {
        let json = serde_json::to_value(state).map_err(|e| StoreError::InvalidRequest {
            reason: format!("the state could not be serialized: {e}"),
        })?;
        self.store
            .save_snapshot(Snapshot {
                stream: state.id,
                version: state.version,
                schema_version: SNAPSHOT_SCHEMA_VERSION,
                state: json,
            })
            .await?;
        Ok(())
    }

    /// Makes sure every deleted user of the organization is erased: deletes
    /// their data keys and the snapshots (then saves a fresh one). For
    /// operators after a failure between recording a deletion and erasing;
    /// idempotent. Returns how many deleted users were checked.
    ///
    /// ```
    /// # use switchboard_core::service::*;
    /// # async fn demo<S: switchboard_core::store::Store>(service: &CommandService<S>, org: switchboard_core::OrgId) -> Result<(), ServiceError> {
    /// let checked = service.complete_erasure(org).await?;
    /// # Ok(()) }
    /// ```
    pub async fn complete_erasure(&self, org: OrgId) -> Result<usize, ServiceError> {
        let state = self.load(org).await?;
        let deleted: Vec<UserId> = state
            .users
            .values()
            .filter(|u| u.status == crate::model::UserStatus::Deleted)
            .map(|u| u.id)
            .collect();
        for user in &deleted {
            self.store.delete_key(org, *user).await?;
        }
        if !deleted.is_empty() {
            self.store.delete_snapshots(org).await?;
            if self.config.snapshot_every != 0 {
                self.save_snapshot_of(&state).await;
            }
        }
        Ok(deleted.len())
    }

    /// Events `from..=to` of the organization with their envelopes, decoded
    /// (personal data opened where its key exists, erased where it was
    /// deleted), at most `limit` (capped at [`MAX_READ_PAGE`]).
    pub async fn read_decoded(
        &self,
        org: OrgId,
        from: u64,
        to: Option<u64>,
        limit: usize,
    ) -> Result<Vec<(RecordedEvent, Event)>, ServiceError> {
        let page = self
            .store
            .read_stream(org, from, to, limit.min(MAX_READ_PAGE))
            .await?;
        let keys = self.key_ring(org, &page).await?;
        page.into_iter()
            .map(|r| {
                let e = codec::decode_with(&r, &keys)?;
                Ok((r, e))
            })
            .collect()
    }
}
