//! The command-handling service: load the organization (cache, snapshot +
//! tail), decide, append with the expected version, retry on conflict, and
//! treat a repeated command id as done.
//!
//! Architecture invariant: the service is the only place that combines the
//! pure core with a store. Its per-command cost is the tail of events it has
//! not yet folded plus the decision itself; a warm organization is never
//! replayed from the start.

mod background;
mod cache;
mod retry;
mod sealing;
mod snapshot_format;
mod snapshots;

pub use background::{BackgroundTask, Spawn};
pub use retry::retry_delay;
pub use snapshots::SNAPSHOT_SCHEMA_VERSION;

use crate::codec;
use crate::command::Command;
use crate::context::{Actor, Clock, Context, IdSource, Pause, SecretSource, YieldPause};
use crate::decide::{decide, Decision, IssuedSecret};
use crate::error::{Blocker, CommandError};
use crate::event::Event;
use crate::evolve::{evolve, evolve_owned};
use crate::ids::*;
use crate::model::Organization;
use crate::store::{
    digests_match, AppendOutcome, AppendRequest, CommandDigest, EventMetadata, ExpectedVersion,
    RecordedEvent, Store, StoreError, MAX_READ_PAGE,
};
use cache::{Cache, Cached};
use sealing::KnownKeys;
use sha2::{Digest, Sha256};
use std::sync::Arc;
use std::time::Duration;
use tracing::Instrument;

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
    /// A condition the organization must meet for the command to be
    /// decided at all (an `If-Match`), checked on the very state the command
    /// is decided on and appended against: no change can slip in between.
    pub precondition: Option<Precondition>,
}

/// What a [`CommandRequest`] can require of the organization before it is
/// decided. Unmet, the request fails with
/// [`ServiceError::PreconditionFailed`] and records nothing.
///
/// ```
/// use switchboard_core::service::Precondition;
/// use switchboard_core::{Organization, OrgId, UserId};
/// let state = Organization::empty(OrgId::from_uuid(uuid::Uuid::from_u128(1)));
/// let ann = UserId::from_uuid(uuid::Uuid::from_u128(2));
/// let p = Precondition::UserUnchangedSince { user: ann, version: 7 };
/// assert!(!p.holds(&state), "no such user");
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Precondition {
    /// The user exists and no event about them came after `version`
    /// ([`User::changed_version`](crate::User::changed_version) equals it).
    UserUnchangedSince {
        /// The user.
        user: UserId,
        /// The organization version the caller saw them last changed at.
        version: u64,
    },
}

impl Precondition {
    /// Whether `state` meets it.
    pub fn holds(&self, state: &Organization) -> bool {
        match self {
            Precondition::UserUnchangedSince { user, version } => state
                .user(*user)
                .is_some_and(|u| u.changed_version == *version),
        }
    }
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
            precondition: None,
        }
    }

    /// The same request, decided only while `user` is unchanged since
    /// `version` ([`Precondition::UserUnchangedSince`]).
    pub fn if_unchanged(mut self, user: UserId, version: u64) -> Self {
        self.precondition = Some(Precondition::UserUnchangedSince { user, version });
        self
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

impl Handled {
    /// What the command created — new users, accounts, roles, invitations,
    /// numbers, work items, devices — read from its events (also for a
    /// duplicate, whose events are the recorded ones).
    ///
    /// ```
    /// # use switchboard_core::service::*;
    /// # fn demo(handled: Handled) {
    /// let invited = handled.created().users;
    /// # }
    /// ```
    pub fn created(&self) -> crate::Created {
        crate::Created::from_events(&self.events)
    }
}

/// Why the service could not handle a command.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[non_exhaustive]
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
    /// The command id was already used in this organization for a different
    /// command (another actor or other arguments). Nothing was recorded, and
    /// nothing of the first command is revealed: send the new command under
    /// a new id.
    #[error("command id {command_id} was already used for a different command")]
    IdempotencyKeyReused {
        /// The reused id.
        command_id: CommandId,
    },
    /// A stored event could not be read.
    #[error("stored event could not be decoded: {0}")]
    Decode(#[from] codec::DecodeError),
    /// An event could not be encoded for the store; nothing was recorded.
    #[error(transparent)]
    Encode(#[from] codec::EncodeError),
    /// The request's [`Precondition`] did not hold (the user changed since
    /// the caller's version, or is unknown); nothing was recorded.
    #[error("the precondition of the request does not hold: {precondition:?}")]
    PreconditionFailed {
        /// The precondition.
        precondition: Precondition,
    },
}

impl ServiceError {
    /// A short name of the outcome, for logs and metrics.
    fn kind(&self) -> &'static str {
        match self {
            ServiceError::Rejected(_) => "rejected",
            ServiceError::Store(_) => "store_error",
            ServiceError::Contention { .. } => "contention",
            ServiceError::IdempotencyKeyReused { .. } => "idempotency_key_reused",
            ServiceError::Decode(_) => "decode_error",
            ServiceError::Encode(_) => "encode_error",
            ServiceError::PreconditionFailed { .. } => "precondition_failed",
        }
    }
}

/// The digest recorded with a command id: SHA-256 of the actor and the
/// command as JSON (struct fields in declaration order, maps ordered, so the
/// same command always gives the same digest). Causation and correlation
/// ids are not part of it: re-sending a command under a new trace is still
/// the same command.
pub fn command_digest(actor: &Actor, command: &Command) -> CommandDigest {
    let mut hasher = Sha256::new();
    // Serializing plain data into a hasher cannot fail; if it ever did, the
    // digest would still be stable for that input.
    let _ = serde_json::to_writer(HashWriter(&mut hasher), &(actor, command));
    CommandDigest(hasher.finalize().into())
}

/// Feeds `serde_json` output straight into a hasher, without a buffer.
struct HashWriter<'a>(&'a mut Sha256);

impl std::io::Write for HashWriter<'_> {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.update(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// What an append attempt came to.
enum Appended {
    /// This call's events were recorded (possibly learnt only by re-sending).
    Ours(AppendOutcome),
    /// The command id had been recorded by another call.
    Theirs(AppendOutcome),
}

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
    cache: Cache,
    /// Set by [`CommandService::with_background_snapshots`].
    background: Option<background::Background>,
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
            cache: Cache::new(config.cache_capacity),
            config,
            background: None,
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

    // ---- The command path, top to bottom.

    /// Handles a command: events recorded, or a typed refusal with every blocker.
    ///
    /// Idempotent by command id, scoped to the organization: a command id
    /// recorded before in this organization records nothing new and answers
    /// `duplicate: true` with the recorded events — however many calls race
    /// with it, in this process or others. The same id with a different
    /// command is [`ServiceError::IdempotencyKeyReused`].
    ///
    /// Traced as the span `switchboard.handle` (see ARCHITECTURE.md); no
    /// field carries personal data or secrets.
    pub async fn handle(&self, request: CommandRequest) -> Result<Handled, ServiceError> {
        let span = tracing::info_span!(
            "switchboard.handle",
            org = %request.org,
            command = request.command.name(),
            command_id = %request.command_id,
            attempts = tracing::field::Empty,
            outcome = tracing::field::Empty,
            events = tracing::field::Empty,
            version = tracing::field::Empty,
        );
        let result = self.handle_in_slot(&request).instrument(span.clone()).await;
        match &result {
            Ok(h) => {
                span.record("attempts", h.attempts);
                span.record(
                    "outcome",
                    if h.duplicate { "duplicate" } else { "recorded" },
                );
                span.record("events", h.events.len());
                span.record("version", h.version);
            }
            Err(e) => {
                span.record("outcome", e.kind());
                if let ServiceError::Contention { attempts } = e {
                    span.record("attempts", attempts);
                }
            }
        }
        span.in_scope(|| match &result {
            Ok(_) => tracing::debug!("handled"),
            Err(ServiceError::Rejected(refusal)) => {
                tracing::debug!(blockers = refusal.blockers.len(), "refused")
            }
            Err(ServiceError::Contention { attempts }) => {
                tracing::warn!(attempts, "gave up after conflicting attempts")
            }
            Err(ServiceError::IdempotencyKeyReused { .. }) => {
                tracing::warn!("command id reused for a different command")
            }
            Err(error) => tracing::error!(%error, "command failed"),
        });
        result
    }

    /// Takes the organization's slot for the whole command: commands of one
    /// organization are handled one at a time in this process, and the
    /// idempotency check sees every command recorded before it.
    async fn handle_in_slot(&self, request: &CommandRequest) -> Result<Handled, ServiceError> {
        let digest = command_digest(&request.actor, &request.command);
        let slot = self.cache.slot(request.org);
        let mut guard = slot.lock().await;
        let mut cached = match guard.take() {
            Some(c) => c,
            None => self.load_cached(request.org).await?,
        };
        let result = self.handle_locked(request, digest, &mut cached).await;
        // Only folded, recorded events are put back; a future dropped before
        // this line leaves the slot empty and the next caller reloads.
        *guard = Some(cached);
        result
    }

    async fn handle_locked(
        &self,
        request: &CommandRequest,
        digest: CommandDigest,
        cached: &mut Cached,
    ) -> Result<Handled, ServiceError> {
        let Cached { state, snapshot_at } = cached;
        let mut known_keys = KnownKeys::new();
        let mut pause_before = false;
        for attempt in 1..=self.config.max_attempts {
            if pause_before {
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
            if let Some(precondition) = request.precondition.filter(|p| !p.holds(state)) {
                // Unless this very command was recorded already (then the
                // change it made is why the precondition fails).
                if let Some(done) = self.recorded_before(request, digest, attempt).await? {
                    return Ok(done);
                }
                return Err(ServiceError::PreconditionFailed { precondition });
            }
            let decision = match decide(state, &request.command, &ctx) {
                Ok(decision) => decision,
                Err(refusal) => {
                    // Refused on a state that may already hold this very
                    // command, recorded by another caller: that is success.
                    if let Some(done) = self.recorded_before(request, digest, attempt).await? {
                        return Ok(done);
                    }
                    return Err(refusal.into());
                }
            };
            if decision.events.is_empty() {
                if let Some(done) = self.recorded_before(request, digest, attempt).await? {
                    return Ok(done);
                }
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
            let to_seal: Vec<_> = decision
                .events
                .iter()
                .map(|e| (e, EventId::from_uuid(self.ids.next_id()), &metadata))
                .collect();
            let sealed = self.seal(request.org, &to_seal, &mut known_keys).await?;
            let append = AppendRequest {
                stream: request.org,
                expected: if state.version == 0 {
                    ExpectedVersion::NoStream
                } else {
                    ExpectedVersion::Exact(state.version)
                },
                command_id: Some(request.command_id),
                command_digest: Some(digest),
                events: sealed.events,
                claims: codec::claims(&decision.events),
                keys: sealed.keys,
            };
            match self.append_resending(append).await {
                Ok(Appended::Ours(outcome)) => {
                    return Ok(self
                        .recorded(state, snapshot_at, decision, outcome, attempt)
                        .await)
                }
                Ok(Appended::Theirs(outcome)) => {
                    let mut handled = self.duplicate(outcome).await?;
                    handled.attempts = attempt;
                    return Ok(handled);
                }
                Err(StoreError::Conflict { actual, .. }) => {
                    tracing::debug!(attempt, actual, "version conflict; deciding again");
                    pause_before = true;
                }
                Err(StoreError::KeyExists { subject }) => {
                    // Another writer gave the subject a key (or erased them)
                    // after we looked: learn it and seal again, at once.
                    self.learn_existing_key(request.org, subject, &mut known_keys)
                        .await?;
                    pause_before = false;
                }
                Err(StoreError::ClaimTaken { key, .. })
                    if key.namespace == codec::PHONE_NUMBER_CLAIM =>
                {
                    return Err(CommandError::from(Blocker::NumberClaimedElsewhere {
                        number: PhoneNumber::from(key.value),
                    })
                    .into())
                }
                Err(StoreError::IdempotencyKeyReused { command_id }) => {
                    return Err(ServiceError::IdempotencyKeyReused { command_id })
                }
                Err(e) => return Err(e.into()),
            }
        }
        Err(ServiceError::Contention {
            attempts: self.config.max_attempts,
        })
    }

    /// This call's events are recorded: fold them into the cached state,
    /// snapshot when one is due, and answer with what the decision issued.
    async fn recorded(
        &self,
        state: &mut Organization,
        snapshot_at: &mut u64,
        decision: Decision,
        outcome: AppendOutcome,
        attempts: u32,
    ) -> Handled {
        for e in &decision.events {
            evolve(state, e);
        }
        debug_assert_eq!(state.version, outcome.last_version);
        if snapshots::snapshot_due(
            state,
            *snapshot_at,
            self.config.snapshot_every,
            self.config.snapshot_events_per_entity,
        ) {
            // The log is the truth: a failed snapshot costs only speed, and
            // is retried when the next one is due.
            match &self.background {
                // Off the command path: this command does not wait.
                Some(background) => {
                    background.start(state.id, state.version);
                }
                None => match self.write_snapshot(state).await {
                    Ok(()) => tracing::debug!(version = state.version, "snapshot saved"),
                    Err(error) => tracing::warn!(%error, "snapshot not saved"),
                },
            }
            *snapshot_at = state.version;
        }
        Handled {
            events: decision.events,
            secrets: decision.secrets,
            report: decision.report,
            outcome: Some(outcome),
            version: state.version,
            duplicate: false,
            attempts,
        }
    }

    /// The command id's recorded outcome in this organization, answered as a
    /// duplicate; `None` when it was never recorded.
    async fn recorded_before(
        &self,
        request: &CommandRequest,
        digest: CommandDigest,
        attempts: u32,
    ) -> Result<Option<Handled>, ServiceError> {
        let Some(record) = self
            .store
            .find_command(request.org, request.command_id)
            .await?
        else {
            return Ok(None);
        };
        if !digests_match(record.digest, Some(digest)) {
            return Err(ServiceError::IdempotencyKeyReused {
                command_id: request.command_id,
            });
        }
        let mut handled = self.duplicate(record.outcome).await?;
        handled.attempts = attempts;
        Ok(Some(handled))
    }

    /// Appends; when the outcome is unknown, re-sends the identical request
    /// (same command id and event ids), which the store answers with the
    /// first outcome if it had committed. A re-send answered "duplicate" is
    /// this call's own append when the recorded events carry this request's
    /// event ids (ids nobody else has): then the call still answers with
    /// what it issued (its tokens). Bounded.
    async fn append_resending(&self, append: AppendRequest) -> Result<Appended, StoreError> {
        const RESENDS: usize = 3;
        let mut unknown = None;
        for _ in 0..=RESENDS {
            match self.store.append(append.clone()).await {
                Err(
                    e @ StoreError::Unavailable {
                        maybe_committed: true,
                        ..
                    },
                ) => {
                    tracing::warn!(error = %e, "append outcome unknown; re-sending");
                    unknown = Some(e);
                }
                Ok(outcome) if outcome.duplicate => {
                    if unknown.is_some() && self.is_own_append(&append, &outcome).await? {
                        return Ok(Appended::Ours(AppendOutcome {
                            duplicate: false,
                            ..outcome
                        }));
                    }
                    return Ok(Appended::Theirs(outcome));
                }
                Ok(outcome) => return Ok(Appended::Ours(outcome)),
                Err(e) => return Err(e),
            }
        }
        Err(unknown.unwrap_or(StoreError::Unavailable {
            reason: "append outcome unknown".into(),
            maybe_committed: true,
            source: None,
        }))
    }

    /// Whether the append recorded under `outcome` is `append` itself.
    async fn is_own_append(
        &self,
        append: &AppendRequest,
        outcome: &AppendOutcome,
    ) -> Result<bool, StoreError> {
        let first = self
            .store
            .read_stream(
                outcome.stream,
                outcome.first_version,
                Some(outcome.first_version),
                1,
            )
            .await?;
        Ok(first.first().map(|r| r.event_id) == append.events.first().map(|e| e.event_id))
    }

    /// A command recorded before: its events, decoded, and nothing issued
    /// (only hashes of its tokens were kept).
    async fn duplicate(&self, outcome: AppendOutcome) -> Result<Handled, ServiceError> {
        let events = self.recorded_events(&outcome).await?;
        Ok(Handled {
            events,
            secrets: Vec::new(),
            report: None,
            outcome: Some(AppendOutcome {
                duplicate: true,
                ..outcome
            }),
            version: outcome.last_version,
            duplicate: true,
            attempts: 0,
        })
    }

    /// Events of the append recorded under `outcome`, decoded.
    async fn recorded_events(&self, outcome: &AppendOutcome) -> Result<Vec<Event>, ServiceError> {
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

    // ---- Loading and reading.

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
                        source: None,
                    }
                    .into());
                }
                evolve_owned(state, codec::decode_owned(r, &keys)?);
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

    /// Runs `read` on the current state (cached, caught up) without copying
    /// it: for reads and dry runs; records nothing. Holds the organization's
    /// slot while `read` runs: keep it short.
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
        let slot = self.cache.slot(org);
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

    /// R-OFF-02: decides the request without recording anything; returns
    /// the events it would record, or every blocker. Takes the request
    /// [`CommandService::handle`] takes, so that a screen can show the dry
    /// run and then send the very same request.
    ///
    /// ```
    /// # use switchboard_core::service::*;
    /// # use switchboard_core::*;
    /// # async fn demo<S: store::Store>(service: &CommandService<S>, org: OrgId, owner: UserId, ann: UserId) -> Result<(), ServiceError> {
    /// let request = CommandRequest::new(
    ///     org,
    ///     CommandId::from_uuid(uuid::Uuid::now_v7()),
    ///     Actor::user(owner),
    ///     Command::Deactivate { user: ann, forward_numbers_to: None, reassign_reports: None },
    /// );
    /// match service.dry_run(&request).await {
    ///     Ok(decision) => println!("would record {} events", decision.events.len()),
    ///     Err(ServiceError::Rejected(refusal)) => println!("blocked: {refusal}"),
    ///     Err(other) => return Err(other),
    /// }
    /// # Ok(()) }
    /// ```
    pub async fn dry_run(&self, request: &CommandRequest) -> Result<Decision, ServiceError> {
        let ctx = Context {
            actor: request.actor.clone(),
            now: self.clock.now(),
            command_id: request.command_id,
            ids: self.ids.as_ref(),
            secrets: self.secrets.as_ref(),
        };
        let precondition = request.precondition;
        self.read(request.org, |state| match precondition {
            Some(p) if !p.holds(state) => Err(ServiceError::PreconditionFailed { precondition: p }),
            _ => decide(state, &request.command, &ctx).map_err(ServiceError::from),
        })
        .await?
    }

    /// The organization's stream version as this service has folded it
    /// (caught up with the store first): what an `If-Match` or an
    /// optimistic screen compares against. 0 for an organization without
    /// events.
    pub async fn version(&self, org: OrgId) -> Result<u64, ServiceError> {
        self.read(org, |state| state.version).await
    }

    /// A copy of the current state (cached, caught up). The copy costs the
    /// size of the organization: prefer [`CommandService::read`] on hot paths.
    pub async fn state(&self, org: OrgId) -> Result<Organization, ServiceError> {
        self.read(org, Organization::clone).await
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
                codec::open_raw_payload(
                    &mut r.payload,
                    &r.event_type,
                    r.stream,
                    r.event_id,
                    &keys,
                )?;
            }
            out.extend(page);
        }
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

    // ---- Maintenance.

    /// Saves a snapshot of the organization as it is now and returns its
    /// version. For services that snapshot from a background task of their
    /// own (`snapshot_every: 0`) rather than on the command path: the
    /// organization's lock is held only to copy the state, not while it is
    /// sealed and written. The snapshot seals every profile under its
    /// user's key, so a deletion recorded meanwhile erases that user from
    /// it too. A snapshot too large for the store is refused with
    /// [`StoreError::InvalidRequest`]; nothing else changes. An organization
    /// without events is not saved (returns 0).
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
        if let Err(error) = self.write_snapshot(&state).await {
            tracing::warn!(%org, %error, "snapshot not saved");
            return Err(error);
        }
        let slot = self.cache.slot(org);
        let mut guard = slot.lock().await;
        if let Some(cached) = guard.as_mut() {
            cached.snapshot_at = cached.snapshot_at.max(state.version);
        }
        Ok(state.version)
    }

    /// Makes sure every deleted user of the organization has no data key.
    /// Deletions recorded by this version of the library shred the key in
    /// the same append, so this only finds work for deletions recorded
    /// before that (or imported); the Postgres migration that moved keys
    /// into appends completed those too. Idempotent; returns how many
    /// deleted users were checked. Cost: the organization's size.
    ///
    /// ```
    /// # use switchboard_core::service::*;
    /// # async fn demo<S: switchboard_core::store::Store>(service: &CommandService<S>, org: switchboard_core::OrgId) -> Result<(), ServiceError> {
    /// let checked = service.complete_erasure(org).await?;
    /// # Ok(()) }
    /// ```
    pub async fn complete_erasure(&self, org: OrgId) -> Result<usize, ServiceError> {
        let deleted: Vec<UserId> = self
            .read(org, |state| {
                state
                    .users
                    .values()
                    .filter(|u| u.status == crate::model::UserStatus::Deleted)
                    .map(|u| u.id)
                    .collect()
            })
            .await?;
        for chunk in deleted.chunks(crate::erasure::MAX_KEYS_PER_LOAD) {
            let live = self.store.load_keys(org, chunk).await?;
            for user in live.keys() {
                if let Err(error) = self.store.delete_key(org, *user).await {
                    tracing::error!(%org, %user, %error, "erasure failed");
                    return Err(error.into());
                }
                tracing::info!(%org, %user, "erasure completed");
            }
        }
        Ok(deleted.len())
    }
}
