//! PostgreSQL store for Switchboard: the whole store contract of
//! [`switchboard_core::store`] on tokio-postgres + deadpool-postgres.
//!
//! * **Schema** in versioned migration files (`migrations/`), applied only by
//!   an explicit [`PostgresStore::migrate`] (safe to call concurrently).
//! * **One round trip per append**: one prepared `INSERT … SELECT FROM
//!   UNNEST` (`sql/append_events.sql`) writes the events, the command id, its
//!   digest and the append's size riding on the first event (migration
//!   0006); appends with claims or key changes call the `switchboard.append`
//!   SQL function, which checks the command id, the expected version, the
//!   event ids, the claims and the keys first. Either is one transaction; a
//!   statement refused by a unique key is explained by asking, in the
//!   contract's order, never by reading a constraint's name.
//! * **Log order that never skips**: every event row is stamped with its
//!   transaction's `xid8` (`tx_id`); `read_all` only returns rows of
//!   transactions older than the oldest still running
//!   (`pg_snapshot_xmin(pg_current_snapshot())`), ordered by
//!   `(tx_id, position)`. Such rows can no longer be joined by anything that
//!   sorts before them, so a subscriber that has read position `p` has seen
//!   every event that will ever sort before `p`. The price: an unrelated
//!   long-running transaction (holding an xid) on the same cluster delays
//!   subscribers (never reorders them).
//! * **Wake-ups** by LISTEN/NOTIFY on a dedicated connection that
//!   reconnects by itself, with polling as the fallback. Appends are
//!   announced after they commit, at most one `NOTIFY` per 2 ms per store
//!   (a `NOTIFY` inside the append would serialise concurrent commits on
//!   PostgreSQL's notification lock); waiters in the same process are woken
//!   at once.
//! * **Errors** mapped by SQLSTATE to [`StoreError`]; an append whose
//!   connection broke is `Unavailable { maybe_committed: true }`: re-send it
//!   with the same command id.
//! * **Bulk import** of a fresh stream through binary `COPY`
//!   ([`PostgresStore::import_stream`]).
//!
//! ```no_run
//! use switchboard_core::store::EventStore;
//! use switchboard_store_postgres::PostgresStore;
//!
//! # async fn demo() -> Result<(), switchboard_core::store::StoreError> {
//! let url = std::env::var("DATABASE_URL").unwrap_or_else(|_| "host=localhost user=postgres".into());
//! let store = PostgresStore::connect(&url).await?;
//! store.migrate().await?; // explicit, never at first use
//! let first_page = store.read_all(None, 100).await?;
//! # Ok(()) }
//! ```
#![forbid(unsafe_code)]
#![warn(missing_docs)]

mod announcer;
mod error;
mod import;
mod jsonb;
mod keys;
mod listener;
mod sql;
#[cfg(feature = "test-harness")]
pub mod testing;

pub use error::PostgresError;
pub use import::MAX_IMPORT_EVENTS;

use async_trait::async_trait;
use deadpool_postgres::{Manager, ManagerConfig, Pool, RecyclingMethod, Runtime};
use error::{corrupt, is_retryable_race, map_db, map_pool, Op};
use std::str::FromStr;
use std::sync::Arc;
use std::time::Duration;
use switchboard_core::ids::{CommandId, EventId, OrgId};
use switchboard_core::store::{
    digests_match, validate_checkpoint_name, AppendOutcome, AppendRequest, CheckpointStore,
    ClaimChange, ClaimKey, CommandDigest, CommandRecord, EventMetadata, EventStore,
    ExpectedVersion, KeyChange, Position, RecordedEvent, Snapshot, SnapshotStore, StoreError,
    MAX_READ_PAGE,
};
use switchboard_core::Actor;
use tokio::sync::Notify;
use tokio::task::JoinHandle;
use tokio_postgres::types::{Json, ToSql};
use tokio_postgres::{NoTls, Row};
use uuid::Uuid;

/// One versioned schema migration (see [`PostgresStore::migrations`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Migration {
    /// Its version: migrations apply in increasing order, each once.
    pub version: i32,
    /// Its name, recorded beside the version (`0001_event_log`).
    pub name: &'static str,
    /// Its SQL, run in the transaction that records it.
    pub sql: &'static str,
}

/// Limit: looks `wait_for_events` takes after a notification whose events
/// the read horizon still hides, pausing 2, 4, 8, … ms (about 0.25 s in all)
/// before leaving the rest to the poll.
const RECHECKS: u32 = 7;
const RECHECK_FIRST_PAUSE: Duration = Duration::from_millis(2);

/// How many times an append is re-run after a transient race (serialization
/// failure, deadlock, a unique key inserted concurrently) before giving up.
const MAX_APPEND_ATTEMPTS: u32 = 8;

/// Tuning of a [`PostgresStore`].
#[derive(Clone, Debug)]
pub struct PostgresOptions {
    /// Connections in the pool (the LISTEN connection is extra).
    pub max_connections: usize,
    /// How long `wait_for_events` waits at most between two looks, whatever
    /// notifications say: bounds the delay when a notification is lost or an
    /// unrelated transaction holds the read horizon back.
    pub poll_interval: Duration,
    /// How long to wait for a free pool connection (and to open one).
    pub connect_timeout: Duration,
}

impl Default for PostgresOptions {
    fn default() -> Self {
        Self {
            max_connections: 16,
            poll_interval: Duration::from_millis(500),
            connect_timeout: Duration::from_secs(10),
        }
    }
}

/// The PostgreSQL store. Cheap to clone; clones share the pool and listener.
///
/// ```no_run
/// use switchboard_core::store::*;
/// use switchboard_store_postgres::{PostgresOptions, PostgresStore};
///
/// # async fn demo(pool: deadpool_postgres::Pool) -> Result<(), StoreError> {
/// // From a connection string:
/// let store = PostgresStore::connect("postgres://postgres@localhost/switchboard").await?;
/// store.migrate().await?;
/// // Or from a pool the service already has (pass a config to get LISTEN wake-ups):
/// let listen: tokio_postgres::Config = "host=localhost user=postgres".parse().expect("config");
/// let shared = PostgresStore::from_pool(pool, Some(listen), PostgresOptions::default())?;
/// let version = shared.stream_version(switchboard_core::OrgId::from_uuid(uuid::Uuid::nil())).await?;
/// # Ok(()) }
/// ```
#[derive(Clone)]
pub struct PostgresStore {
    inner: Arc<Inner>,
}

struct Inner {
    pool: Pool,
    wake: Arc<Notify>,
    poll_interval: Duration,
    listener: Option<JoinHandle<()>>,
    announcements: Arc<announcer::Announcements>,
    announcer: JoinHandle<()>,
}

impl Drop for Inner {
    fn drop(&mut self) {
        if let Some(listener) = self.listener.take() {
            listener.abort();
        }
        self.announcer.abort();
    }
}

impl std::fmt::Debug for PostgresStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PostgresStore")
            .field("pool", &self.inner.pool.status())
            .field("listening", &self.inner.listener.is_some())
            .finish()
    }
}

impl PostgresStore {
    /// Connects with a connection string (`postgres://…` URL or `key=value`
    /// form, e.g. `DATABASE_URL`), checks that the server answers, and starts
    /// the LISTEN connection. Does not touch the schema: call
    /// [`migrate`](Self::migrate). TLS is not supported by this constructor;
    /// build a TLS pool and use [`from_pool`](Self::from_pool).
    pub async fn connect(url: &str) -> Result<Self, StoreError> {
        Self::connect_with(url, PostgresOptions::default()).await
    }

    /// [`connect`](Self::connect) with explicit options.
    pub async fn connect_with(url: &str, options: PostgresOptions) -> Result<Self, StoreError> {
        let config =
            tokio_postgres::Config::from_str(url).map_err(|e| StoreError::InvalidRequest {
                reason: format!("invalid database connection string: {e}"),
            })?;
        Self::connect_config(config, options).await
    }

    /// [`connect`](Self::connect) with an already parsed configuration.
    pub async fn connect_config(
        mut config: tokio_postgres::Config,
        options: PostgresOptions,
    ) -> Result<Self, StoreError> {
        if config.get_connect_timeout().is_none() {
            config.connect_timeout(options.connect_timeout);
        }
        let manager = Manager::from_config(
            config.clone(),
            NoTls,
            ManagerConfig {
                recycling_method: RecyclingMethod::Fast,
            },
        );
        let pool = Pool::builder(manager)
            .max_size(options.max_connections.max(1))
            .runtime(Runtime::Tokio1)
            .wait_timeout(Some(options.connect_timeout))
            .create_timeout(Some(options.connect_timeout))
            .recycle_timeout(Some(options.connect_timeout))
            .build()
            .map_err(|e| StoreError::InvalidRequest {
                reason: format!("cannot build the connection pool: {e}"),
            })?;
        let store = Self::from_pool(pool, Some(config), options)?;
        // Fail now, with a clear error, rather than at the first append.
        drop(store.inner.pool.get().await.map_err(map_pool)?);
        Ok(store)
    }

    /// Uses an existing pool. With `listen`, a dedicated connection made from
    /// that config (without TLS) wakes waiters when other processes append;
    /// without it, waiters poll every [`PostgresOptions::poll_interval`]
    /// (appends through this store wake its own waiters either way). Must be
    /// called inside a Tokio runtime: the store runs a task that announces
    /// its appends to other processes (one `NOTIFY` per couple of
    /// milliseconds at most, see the `announcer` module) and, with `listen`,
    /// the listener.
    pub fn from_pool(
        pool: Pool,
        listen: Option<tokio_postgres::Config>,
        options: PostgresOptions,
    ) -> Result<Self, StoreError> {
        let runtime =
            tokio::runtime::Handle::try_current().map_err(|e| StoreError::InvalidRequest {
                reason: format!("PostgresStore needs a Tokio runtime: {e}"),
            })?;
        let wake = Arc::new(Notify::new());
        let listener = listen.map(|config| runtime.spawn(listener::run(config, wake.clone())));
        let announcements = Arc::new(announcer::Announcements::default());
        let announcer = runtime.spawn(announcer::run(pool.clone(), announcements.clone()));
        Ok(Self {
            inner: Arc::new(Inner {
                pool,
                wake,
                poll_interval: options.poll_interval.max(Duration::from_millis(1)),
                listener,
                announcements,
                announcer,
            }),
        })
    }

    /// The migrations this build knows, in the order [`PostgresStore::migrate`]
    /// applies them: for operators who review or apply schema changes with
    /// their own tooling. Whatever applies one must also record it in
    /// `switchboard.schema_migrations` (`version`, `name`; the table is
    /// created by `sql/migrations_table.sql`), so that `migrate` then finds
    /// nothing left to do and refuses a database migrated by another build.
    ///
    /// ```
    /// use switchboard_store_postgres::PostgresStore;
    ///
    /// let all: Vec<_> = PostgresStore::migrations().collect();
    /// assert_eq!(all[0].name, "0001_event_log");
    /// assert!(all.windows(2).all(|w| w[0].version + 1 == w[1].version));
    /// assert!(all.iter().all(|m| !m.sql.trim().is_empty()));
    /// ```
    pub fn migrations() -> impl Iterator<Item = Migration> {
        sql::MIGRATIONS
            .iter()
            .map(|&(version, name, sql)| Migration { version, name, sql })
    }

    /// The connection pool (for health checks, or queries on the same database).
    pub fn pool(&self) -> &Pool {
        &self.inner.pool
    }

    /// Applies the migrations this build knows and the database lacks, in
    /// order, in one transaction, under an advisory lock (concurrent calls
    /// wait, then find nothing left to do). Returns how many it applied.
    /// Fails with [`StoreError::Corrupt`] if the database was migrated by a
    /// newer or different build.
    ///
    /// ```no_run
    /// # async fn demo(store: switchboard_store_postgres::PostgresStore)
    /// # -> Result<(), switchboard_core::store::StoreError> {
    /// let applied = store.migrate().await?; // e.g. at deploy time
    /// assert_eq!(store.migrate().await?, 0, "idempotent");
    /// # let _ = applied; Ok(()) }
    /// ```
    pub async fn migrate(&self) -> Result<usize, StoreError> {
        let mut client = self.inner.pool.get().await.map_err(map_pool)?;
        let tx = client
            .transaction()
            .await
            .map_err(|e| map_db(e, Op::Other))?;
        let run = |e: tokio_postgres::Error| map_db(e, Op::Other);
        tx.execute(
            "SELECT pg_advisory_xact_lock($1)",
            &[&sql::MIGRATION_LOCK_KEY],
        )
        .await
        .map_err(run)?;
        tx.batch_execute(sql::MIGRATIONS_TABLE).await.map_err(run)?;
        let applied: Vec<(i32, String)> = tx
            .query(
                "SELECT version, name FROM switchboard.schema_migrations ORDER BY version",
                &[],
            )
            .await
            .map_err(run)?
            .iter()
            .map(|r| {
                Ok((
                    r.try_get(0).map_err(corrupt)?,
                    r.try_get(1).map_err(corrupt)?,
                ))
            })
            .collect::<Result<_, StoreError>>()?;
        for (version, name) in &applied {
            match sql::MIGRATIONS.iter().find(|(v, _, _)| v == version) {
                Some((_, known, _)) if known == name => {}
                Some((_, known, _)) => {
                    return Err(corrupt(format!(
                        "migration {version} is recorded as {name:?}, this build calls it {known:?}"
                    )))
                }
                None => {
                    return Err(corrupt(format!(
                        "the database has migration {version} ({name}), unknown to this build (newer schema?)"
                    )))
                }
            }
        }
        let mut count = 0;
        for (version, name, script) in sql::MIGRATIONS {
            if applied.iter().any(|(v, _)| v == version) {
                continue;
            }
            tx.batch_execute(script).await.map_err(run)?;
            tx.execute(
                "INSERT INTO switchboard.schema_migrations (version, name) VALUES ($1, $2)",
                &[version, name],
            )
            .await
            .map_err(run)?;
            count += 1;
        }
        tx.commit().await.map_err(run)?;
        Ok(count)
    }

    pub(crate) async fn client(&self) -> Result<deadpool_postgres::Object, StoreError> {
        self.inner.pool.get().await.map_err(map_pool)
    }

    async fn query(
        &self,
        sql: &str,
        params: &[&(dyn ToSql + Sync)],
    ) -> Result<Vec<Row>, StoreError> {
        let client = self.client().await?;
        let stmt = client
            .prepare_cached(sql)
            .await
            .map_err(|e| map_db(e, Op::Other))?;
        client
            .query(&stmt, params)
            .await
            .map_err(|e| map_db(e, Op::Other))
    }

    /// Runs an event query (`read_all.sql`, `read_stream.sql`) and decodes
    /// its rows as they arrive, so that decoding one row overlaps the server
    /// producing the next instead of waiting for the whole page.
    async fn query_events(
        &self,
        sql: &str,
        params: &[&(dyn ToSql + Sync)],
        limit: i64,
    ) -> Result<Vec<RecordedEvent>, StoreError> {
        use futures_util::TryStreamExt;
        let client = self.client().await?;
        let stmt = client
            .prepare_cached(sql)
            .await
            .map_err(|e| map_db(e, Op::Other))?;
        let rows = client
            .query_raw(&stmt, params.iter().copied())
            .await
            .map_err(|e| map_db(e, Op::Other))?;
        futures_util::pin_mut!(rows);
        let mut out = Vec::with_capacity(usize::try_from(limit).unwrap_or(0).min(1024));
        while let Some(row) = rows.try_next().await.map_err(|e| map_db(e, Op::Other))? {
            out.push(decode_event(&row)?);
        }
        Ok(out)
    }

    async fn has_events_after(&self, after: Option<Position>) -> Result<bool, StoreError> {
        let (commit, sequence) = position_params(after);
        let rows = self
            .query(sql::HAS_EVENTS_AFTER, &[&commit, &sequence])
            .await?;
        rows.first()
            .map(|r| r.try_get::<_, bool>(0).map_err(corrupt))
            .unwrap_or(Ok(false))
    }
}

/// A u64 as SQL `bigint`, saturating: values beyond `i64::MAX` cannot exist in
/// the database, so saturating keeps every comparison's answer.
fn sat(v: u64) -> i64 {
    i64::try_from(v).unwrap_or(i64::MAX)
}

fn unsigned(v: i64, what: &str) -> Result<u64, StoreError> {
    u64::try_from(v).map_err(|_| corrupt(format!("negative {what}: {v}")))
}

fn position_params(after: Option<Position>) -> (i64, i64) {
    after.map_or((0, 0), |p| (sat(p.commit), sat(p.sequence)))
}

fn page(limit: usize) -> i64 {
    // MAX_READ_PAGE is far below i64::MAX.
    i64::try_from(limit.min(MAX_READ_PAGE)).unwrap_or(0)
}

/// Columns of `read_all.sql` and `read_stream.sql`, read by position (a
/// look-up by name compares column names on every row): both files select
/// the same list in this order, which the conformance suite would catch
/// breaking (every field is compared after a round trip).
mod col {
    pub const STREAM_ID: usize = 0;
    pub const VERSION: usize = 1;
    pub const COMMIT: usize = 2;
    pub const POSITION: usize = 3;
    pub const EVENT_ID: usize = 4;
    pub const EVENT_TYPE: usize = 5;
    pub const SCHEMA_VERSION: usize = 6;
    pub const PAYLOAD: usize = 7;
    pub const ACTOR: usize = 8;
    pub const OCCURRED_AT: usize = 9;
    pub const COMMAND_ID: usize = 10;
    pub const CAUSATION_ID: usize = 11;
    pub const CORRELATION_ID: usize = 12;
}

fn decode_event(row: &Row) -> Result<RecordedEvent, StoreError> {
    // The actor straight from the jsonb bytes, without a `Value` in between.
    let Json(actor): Json<Actor> = row.try_get(col::ACTOR).map_err(corrupt)?;
    let schema_version: i64 = row.try_get(col::SCHEMA_VERSION).map_err(corrupt)?;
    Ok(RecordedEvent {
        stream: OrgId::from_uuid(row.try_get(col::STREAM_ID).map_err(corrupt)?),
        version: unsigned(row.try_get(col::VERSION).map_err(corrupt)?, "version")?,
        position: Position::new(
            unsigned(row.try_get(col::COMMIT).map_err(corrupt)?, "tx_id")?,
            unsigned(row.try_get(col::POSITION).map_err(corrupt)?, "position")?,
        ),
        event_id: EventId::from_uuid(row.try_get(col::EVENT_ID).map_err(corrupt)?),
        event_type: row.try_get(col::EVENT_TYPE).map_err(corrupt)?,
        schema_version: u32::try_from(schema_version)
            .map_err(|_| corrupt(format!("schema version {schema_version}")))?,
        // Raw JSON text straight from the jsonb bytes (see `jsonb.rs`).
        payload: row
            .try_get::<_, jsonb::JsonbOut>(col::PAYLOAD)
            .map_err(corrupt)?
            .0,
        metadata: EventMetadata {
            actor,
            occurred_at: row.try_get(col::OCCURRED_AT).map_err(corrupt)?,
            command_id: row
                .try_get::<_, Option<Uuid>>(col::COMMAND_ID)
                .map_err(corrupt)?
                .map(CommandId::from_uuid),
            causation_id: row.try_get(col::CAUSATION_ID).map_err(corrupt)?,
            correlation_id: row.try_get(col::CORRELATION_ID).map_err(corrupt)?,
        },
    })
}

fn outcome_from(row: &Row, duplicate: bool) -> Result<AppendOutcome, StoreError> {
    let get = |name: &str| -> Result<u64, StoreError> {
        let v: Option<i64> = row.try_get(name).map_err(corrupt)?;
        unsigned(
            v.ok_or_else(|| corrupt(format!("append returned no {name}")))?,
            name,
        )
    };
    let stream: Option<Uuid> = row.try_get("o_stream").map_err(corrupt)?;
    let stream = stream.ok_or_else(|| corrupt("append returned no stream"))?;
    Ok(AppendOutcome {
        stream: OrgId::from_uuid(stream),
        first_version: get("o_first_version")?,
        last_version: get("o_last_version")?,
        first_position: Position::new(get("o_first_commit")?, get("o_first_sequence")?),
        last_position: Position::new(get("o_last_commit")?, get("o_last_sequence")?),
        duplicate,
    })
}

/// The append's parameters as arrays for `switchboard.append`.
struct AppendParams<'a> {
    stream: Uuid,
    expected: Option<i64>,
    command_id: Option<Uuid>,
    command_digest: Option<&'a [u8]>,
    event_ids: Vec<Uuid>,
    event_types: Vec<&'a str>,
    schema_versions: Vec<i64>,
    payloads: Vec<jsonb::JsonbIn<'a>>,
    actors: Vec<serde_json::Value>,
    occurred_at: Vec<chrono::DateTime<chrono::Utc>>,
    command_ids: Vec<Option<Uuid>>,
    causation_ids: Vec<Option<Uuid>>,
    correlation_ids: Vec<Option<Uuid>>,
    claim_takes: Vec<bool>,
    claim_namespaces: Vec<&'a str>,
    claim_values: Vec<&'a str>,
    key_creates: Vec<Uuid>,
    key_bytes: Vec<&'a [u8]>,
    key_shreds: Vec<Uuid>,
}

impl<'a> AppendParams<'a> {
    fn new(req: &'a AppendRequest) -> Result<Self, StoreError> {
        let n = req.events.len();
        let mut p = AppendParams {
            stream: req.stream.as_uuid(),
            expected: match req.expected {
                ExpectedVersion::Any => None,
                ExpectedVersion::NoStream => Some(0),
                // Beyond i64::MAX no stream can be: saturating keeps the conflict.
                ExpectedVersion::Exact(v) => Some(sat(v)),
            },
            command_id: req.command_id.map(|c| c.as_uuid()),
            command_digest: req.command_digest.as_ref().map(|d| d.0.as_slice()),
            event_ids: Vec::with_capacity(n),
            event_types: Vec::with_capacity(n),
            schema_versions: Vec::with_capacity(n),
            payloads: Vec::with_capacity(n),
            actors: Vec::with_capacity(n),
            occurred_at: Vec::with_capacity(n),
            command_ids: Vec::with_capacity(n),
            causation_ids: Vec::with_capacity(n),
            correlation_ids: Vec::with_capacity(n),
            claim_takes: Vec::with_capacity(req.claims.len()),
            claim_namespaces: Vec::with_capacity(req.claims.len()),
            claim_values: Vec::with_capacity(req.claims.len()),
            key_creates: Vec::new(),
            key_bytes: Vec::new(),
            key_shreds: Vec::new(),
        };
        for e in &req.events {
            p.event_ids.push(e.event_id.as_uuid());
            p.event_types.push(&e.event_type);
            p.schema_versions.push(i64::from(e.schema_version));
            p.payloads.push(jsonb::JsonbIn(&e.payload));
            p.actors
                .push(serde_json::to_value(&e.metadata.actor).map_err(|e| {
                    StoreError::InvalidRequest {
                        reason: format!("actor cannot be serialized: {e}"),
                    }
                })?);
            p.occurred_at.push(e.metadata.occurred_at);
            p.command_ids
                .push(e.metadata.command_id.map(|c| c.as_uuid()));
            p.causation_ids.push(e.metadata.causation_id);
            p.correlation_ids.push(e.metadata.correlation_id);
        }
        for c in &req.claims {
            let (take, key) = match c {
                ClaimChange::Claim(k) => (true, k),
                ClaimChange::Release(k) => (false, k),
            };
            p.claim_takes.push(take);
            p.claim_namespaces.push(&key.namespace);
            p.claim_values.push(&key.value);
        }
        for k in &req.keys {
            match k {
                KeyChange::Create { subject, key } => {
                    p.key_creates.push(subject.as_uuid());
                    p.key_bytes.push(key.expose_bytes().as_slice());
                }
                KeyChange::Shred { subject } => p.key_shreds.push(subject.as_uuid()),
            }
        }
        Ok(p)
    }

    fn as_params(&self) -> [&(dyn ToSql + Sync); 19] {
        [
            &self.stream,
            &self.expected,
            &self.command_id,
            &self.command_digest,
            &self.event_ids,
            &self.event_types,
            &self.schema_versions,
            &self.payloads,
            &self.actors,
            &self.occurred_at,
            &self.command_ids,
            &self.causation_ids,
            &self.correlation_ids,
            &self.claim_takes,
            &self.claim_namespaces,
            &self.claim_values,
            &self.key_creates,
            &self.key_bytes,
            &self.key_shreds,
        ]
    }
}

impl PostgresStore {
    /// The common append, without claims or key changes: one prepared
    /// statement (`sql/append_events.sql`), one round trip. A statement
    /// that records nothing is explained by [`PostgresStore::explain`].
    async fn append_events(
        &self,
        request: &AppendRequest,
        params: &AppendParams<'_>,
    ) -> Result<AppendOutcome, StoreError> {
        let all = params.as_params();
        // The first 13 parameters: stream, expected version, command id and
        // digest, and the events' columns.
        let event_params = &all[..13];
        let mut attempt = 0;
        loop {
            attempt += 1;
            let client = self.client().await?;
            let stmt = client
                .prepare_cached(sql::APPEND_EVENTS)
                .await
                .map_err(|e| map_db(e, Op::Other))?;
            // One statement in autocommit: tokio-postgres returns only after
            // ReadyForQuery, i.e. after the implicit transaction committed.
            let result = client.query_one(&stmt, event_params).await;
            drop(client);
            let failure = match result {
                Ok(row) => {
                    let appended: i64 = row.try_get("appended").map_err(corrupt)?;
                    if appended > 0 {
                        self.inner.wake.notify_waiters();
                        self.inner.announcements.committed();
                        return lean_outcome(request.stream, &row);
                    }
                    None // the expected version did not hold
                }
                Err(e) if is_retryable_race(&e) => Some(e),
                Err(e) => return Err(map_db(e, Op::Write)),
            };
            if let Some(answer) = self.explain(request, params).await? {
                return answer;
            }
            // Nothing explains it: a race with a transaction that has since
            // rolled back, or a version that moved on to the expected one.
            if attempt >= MAX_APPEND_ATTEMPTS {
                return Err(match failure {
                    Some(e) => map_db(e, Op::Write),
                    None => StoreError::Unavailable {
                        reason: "the append kept racing with other writers".into(),
                        maybe_committed: false,
                        source: None,
                    },
                });
            }
            tokio::time::sleep(Duration::from_millis(u64::from(attempt * attempt))).await;
        }
    }

    /// Why an append recorded nothing, asked in the contract's order: the
    /// command id recorded (its first outcome, or reused for another
    /// command), the expected version, a recorded event id. `None` when
    /// none of them holds now.
    async fn explain(
        &self,
        request: &AppendRequest,
        params: &AppendParams<'_>,
    ) -> Result<Option<Result<AppendOutcome, StoreError>>, StoreError> {
        if let Some(command_id) = request.command_id {
            if let Some(first) = self.find_command(request.stream, command_id).await? {
                if !digests_match(first.digest, request.command_digest) {
                    return Ok(Some(Err(StoreError::IdempotencyKeyReused { command_id })));
                }
                return Ok(Some(Ok(AppendOutcome {
                    duplicate: true,
                    ..first.outcome
                })));
            }
        }
        let actual = self.stream_version(request.stream).await?;
        if !request.expected.admits(actual) {
            return Ok(Some(Err(StoreError::Conflict {
                stream: request.stream,
                expected: request.expected,
                actual,
            })));
        }
        let rows = self
            .query(sql::FIRST_RECORDED_EVENT_ID, &[&params.event_ids])
            .await?;
        if let Some(r) = rows.first() {
            return Ok(Some(Err(StoreError::DuplicateEvent {
                event_id: EventId::from_uuid(r.try_get(0).map_err(corrupt)?),
            })));
        }
        Ok(None)
    }
}

/// The outcome of a recorded `append_events.sql`.
fn lean_outcome(stream: OrgId, row: &Row) -> Result<AppendOutcome, StoreError> {
    let get = |name: &str| -> Result<u64, StoreError> {
        let v: Option<i64> = row.try_get(name).map_err(corrupt)?;
        unsigned(
            v.ok_or_else(|| corrupt(format!("append returned no {name}")))?,
            name,
        )
    };
    let commit = get("commit")?;
    Ok(AppendOutcome {
        stream,
        first_version: get("first_version")?,
        last_version: get("last_version")?,
        first_position: Position::new(commit, get("first_sequence")?),
        last_position: Position::new(commit, get("last_sequence")?),
        duplicate: false,
    })
}

#[async_trait]
impl EventStore for PostgresStore {
    async fn append(&self, request: AppendRequest) -> Result<AppendOutcome, StoreError> {
        request.validate()?;
        let params = AppendParams::new(&request)?;
        if request.claims.is_empty() && request.keys.is_empty() {
            return self.append_events(&request, &params).await;
        }
        let mut attempt = 0;
        let row = loop {
            attempt += 1;
            let client = self.client().await?;
            let stmt = client
                .prepare_cached(sql::APPEND)
                .await
                .map_err(|e| map_db(e, Op::Other))?;
            // One statement in autocommit: tokio-postgres returns only after
            // ReadyForQuery, i.e. after the implicit transaction committed.
            match client.query(&stmt, &params.as_params()).await {
                Ok(mut rows) => match rows.pop() {
                    Some(row) => break row,
                    None => return Err(corrupt("switchboard.append returned no row")),
                },
                Err(e) if is_retryable_race(&e) => {
                    drop(client);
                    // A unique key inserted concurrently (a version, the
                    // command, an event id, a claim or a key): the re-run's
                    // checks, which this path always makes (it carries
                    // claims or keys), name what holds it, in the
                    // contract's order. Told by SQLSTATE alone: a sharded
                    // server renames constraints.
                    if attempt >= MAX_APPEND_ATTEMPTS {
                        return Err(map_db(e, Op::Write));
                    }
                    // Someone inserted the same key concurrently (and, if
                    // no recorded event holds it, rolled back); the retry's
                    // checks see their outcome. Back off a little so a hot
                    // stream does not live-lock.
                    tokio::time::sleep(Duration::from_millis(u64::from(attempt * attempt))).await;
                }
                Err(e) => return Err(map_db(e, Op::Write)),
            }
        };
        let status: String = row.try_get("o_status").map_err(corrupt)?;
        match status.as_str() {
            "ok" => {
                // Committed: wake this process's waiters now, other
                // processes' through the announcer's next NOTIFY.
                self.inner.wake.notify_waiters();
                self.inner.announcements.committed();
                outcome_from(&row, false)
            }
            // The first outcome, naming the stream the command appended to.
            "duplicate" => outcome_from(&row, true),
            "conflict" => {
                let actual: Option<i64> = row.try_get("o_actual").map_err(corrupt)?;
                Err(StoreError::Conflict {
                    stream: request.stream,
                    expected: request.expected,
                    actual: unsigned(actual.unwrap_or(-1), "actual version")?,
                })
            }
            "duplicate_event" => {
                let id: Option<Uuid> = row.try_get("o_event_id").map_err(corrupt)?;
                let id = id.ok_or_else(|| corrupt("duplicate_event without an id"))?;
                Err(StoreError::DuplicateEvent {
                    event_id: EventId::from_uuid(id),
                })
            }
            "idempotency_key_reused" => Err(StoreError::IdempotencyKeyReused {
                command_id: request
                    .command_id
                    .ok_or_else(|| corrupt("idempotency_key_reused without a command id"))?,
            }),
            "key_exists" => {
                let subject: Option<Uuid> = row.try_get("o_subject").map_err(corrupt)?;
                let subject = subject.ok_or_else(|| corrupt("key_exists without a subject"))?;
                Err(StoreError::KeyExists {
                    subject: switchboard_core::UserId::from_uuid(subject),
                })
            }
            "claim_taken" => {
                let ns: Option<String> = row.try_get("o_claim_namespace").map_err(corrupt)?;
                let value: Option<String> = row.try_get("o_claim_value").map_err(corrupt)?;
                let holder: Option<Uuid> = row.try_get("o_claim_holder").map_err(corrupt)?;
                match (ns, value, holder) {
                    (Some(ns), Some(value), Some(holder)) => Err(StoreError::ClaimTaken {
                        key: ClaimKey::new(ns, value),
                        holder: OrgId::from_uuid(holder),
                    }),
                    _ => Err(corrupt("claim_taken without its key or holder")),
                }
            }
            other => Err(corrupt(format!(
                "switchboard.append returned status {other:?}"
            ))),
        }
    }

    async fn find_command(
        &self,
        stream: OrgId,
        command_id: CommandId,
    ) -> Result<Option<CommandRecord>, StoreError> {
        let rows = self
            .query(
                sql::FIND_COMMAND,
                &[&stream.as_uuid(), &command_id.as_uuid()],
            )
            .await?;
        let Some(r) = rows.first() else {
            return Ok(None);
        };
        let get = |i: usize, what: &str| -> Result<u64, StoreError> {
            unsigned(r.try_get(i).map_err(corrupt)?, what)
        };
        let digest: Option<Vec<u8>> = r.try_get(7).map_err(corrupt)?;
        let digest = match digest {
            None => None,
            Some(d) => Some(CommandDigest(<[u8; 32]>::try_from(d.as_slice()).map_err(
                |_| corrupt(format!("a command digest of {} bytes", d.len())),
            )?)),
        };
        Ok(Some(CommandRecord {
            outcome: AppendOutcome {
                stream: OrgId::from_uuid(r.try_get(0).map_err(corrupt)?),
                first_version: get(1, "first_version")?,
                last_version: get(2, "last_version")?,
                first_position: Position::new(get(3, "first_commit")?, get(4, "first_sequence")?),
                last_position: Position::new(get(5, "last_commit")?, get(6, "last_sequence")?),
                duplicate: false,
            },
            digest,
        }))
    }

    async fn stream_version(&self, stream: OrgId) -> Result<u64, StoreError> {
        let rows = self
            .query(sql::STREAM_VERSION, &[&stream.as_uuid()])
            .await?;
        match rows.first() {
            Some(r) => unsigned(r.try_get(0).map_err(corrupt)?, "version"),
            None => Ok(0),
        }
    }

    async fn read_stream(
        &self,
        stream: OrgId,
        from: u64,
        to: Option<u64>,
        limit: usize,
    ) -> Result<Vec<RecordedEvent>, StoreError> {
        let limit = page(limit);
        if limit == 0 {
            return Ok(Vec::new());
        }
        let to = to.map_or(i64::MAX, sat);
        self.query_events(
            sql::READ_STREAM,
            &[&stream.as_uuid(), &sat(from), &to, &limit],
            limit,
        )
        .await
    }

    async fn read_all(
        &self,
        after: Option<Position>,
        limit: usize,
    ) -> Result<Vec<RecordedEvent>, StoreError> {
        let limit = page(limit);
        if limit == 0 {
            return Ok(Vec::new());
        }
        let (commit, sequence) = position_params(after);
        self.query_events(sql::READ_ALL, &[&commit, &sequence, &limit], limit)
            .await
    }

    async fn wait_for_events(&self, after: Option<Position>, timeout: Duration) {
        // Register before looking so that a notification arriving between the
        // look and the wait is not lost.
        let notified = self.inner.wake.notified();
        tokio::pin!(notified);
        notified.as_mut().enable();
        if let Ok(true) = self.has_events_after(after).await {
            return;
        }
        // On an error we still wait (no hot loop); the caller's read reports it.
        let wait = timeout.min(self.inner.poll_interval);
        let started = tokio::time::Instant::now();
        if tokio::time::timeout(wait, notified).await.is_err() {
            return; // the poll: the caller looks again
        }
        // Woken by a commit. Its events may still sit behind the read horizon
        // while an older transaction anywhere on the cluster runs, and that
        // transaction's end is announced by nobody: look again a few times,
        // soon, rather than wait out the poll for a notification that may
        // never come. Bounded: RECHECKS looks, within the same `wait`.
        let mut pause = RECHECK_FIRST_PAUSE;
        for _ in 0..RECHECKS {
            if let Ok(true) = self.has_events_after(after).await {
                return;
            }
            if started.elapsed() + pause >= wait {
                return;
            }
            tokio::time::sleep(pause).await;
            pause *= 2;
        }
    }

    async fn claim_holder(&self, key: &ClaimKey) -> Result<Option<OrgId>, StoreError> {
        let rows = self
            .query(sql::CLAIM_HOLDER, &[&key.namespace, &key.value])
            .await?;
        match rows.first() {
            Some(r) => Ok(Some(OrgId::from_uuid(r.try_get(0).map_err(corrupt)?))),
            None => Ok(None),
        }
    }
}

#[async_trait]
impl SnapshotStore for PostgresStore {
    async fn save_snapshot(&self, snapshot: Snapshot) -> Result<(), StoreError> {
        snapshot.validate()?;
        self.query(
            sql::SAVE_SNAPSHOT,
            &[
                &snapshot.stream.as_uuid(),
                &sat(snapshot.version),
                &i64::from(snapshot.schema_version),
                &snapshot.state,
            ],
        )
        .await?;
        Ok(())
    }

    async fn load_snapshot(
        &self,
        stream: OrgId,
        at_most: Option<u64>,
    ) -> Result<Option<Snapshot>, StoreError> {
        let at_most = at_most.map_or(i64::MAX, sat);
        let rows = self
            .query(sql::LOAD_SNAPSHOT, &[&stream.as_uuid(), &at_most])
            .await?;
        let Some(r) = rows.first() else {
            return Ok(None);
        };
        let schema: i64 = r.try_get(1).map_err(corrupt)?;
        Ok(Some(Snapshot {
            stream,
            version: unsigned(r.try_get(0).map_err(corrupt)?, "snapshot version")?,
            schema_version: u32::try_from(schema)
                .map_err(|_| corrupt(format!("snapshot schema version {schema}")))?,
            state: r.try_get(2).map_err(corrupt)?,
        }))
    }

    async fn delete_snapshots(&self, stream: OrgId) -> Result<(), StoreError> {
        self.query(sql::DELETE_SNAPSHOTS, &[&stream.as_uuid()])
            .await?;
        Ok(())
    }
}

#[async_trait]
impl CheckpointStore for PostgresStore {
    async fn save_checkpoint(&self, name: &str, position: Position) -> Result<(), StoreError> {
        validate_checkpoint_name(name)?;
        let (Ok(commit), Ok(sequence)) = (
            i64::try_from(position.commit),
            i64::try_from(position.sequence),
        ) else {
            return Err(StoreError::InvalidRequest {
                reason: format!("position {position} was not issued by this store"),
            });
        };
        self.query(sql::SAVE_CHECKPOINT, &[&name, &commit, &sequence])
            .await?;
        Ok(())
    }

    async fn load_checkpoint(&self, name: &str) -> Result<Option<Position>, StoreError> {
        validate_checkpoint_name(name)?;
        let rows = self.query(sql::LOAD_CHECKPOINT, &[&name]).await?;
        let Some(r) = rows.first() else {
            return Ok(None);
        };
        Ok(Some(Position::new(
            unsigned(r.try_get(0).map_err(corrupt)?, "checkpoint commit")?,
            unsigned(r.try_get(1).map_err(corrupt)?, "checkpoint sequence")?,
        )))
    }
}
