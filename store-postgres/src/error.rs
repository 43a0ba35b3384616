//! Mapping driver and pool errors to [`StoreError`], by SQLSTATE only.

use switchboard_core::store::{BackendError, StoreError};
use tokio_postgres::error::SqlState;

/// What the failed operation was doing, which decides whether its outcome can
/// be unknown.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Op {
    /// A single-statement write (append, import commit): if the connection
    /// broke after the request was sent, it may have committed.
    Write,
    /// Anything else: a failure means nothing happened (reads, or writes whose
    /// repetition is harmless).
    Other,
}

/// Whether the error is a transient race the append resolves by running again:
/// serialization failure, deadlock, or a unique violation from a concurrent
/// transaction that inserted the same key after our checks.
pub(crate) fn is_retryable_race(e: &tokio_postgres::Error) -> bool {
    matches!(
        e.code(),
        Some(c) if *c == SqlState::T_R_SERIALIZATION_FAILURE
            || *c == SqlState::T_R_DEADLOCK_DETECTED
            || *c == SqlState::UNIQUE_VIOLATION
    )
}

/// A PostgreSQL or driver error as [`StoreError`]s carry it
/// ([`std::error::Error::source`] of `Unavailable` and `Corrupt`): SQLSTATE,
/// severity, constraint, table and message only.
///
/// PostgreSQL's `DETAIL` (and `HINT`, `WHERE`) can quote the values of a row
/// (`Key (email)=(ann@example.com) already exists`), and the driver's error
/// prints it and leads to it through its own `source()`. Errors reach logs and
/// outlive a deletion (R-LIFE-06), so this type shows none of it, and the
/// message of a data exception (SQLSTATE class 22, which quotes the input:
/// `invalid input syntax for type uuid: "…"`) is withheld too. The driver's
/// error stays reachable through [`PostgresError::driver_error`] for code that
/// asks for it on purpose.
///
/// ```no_run
/// # async fn demo(store: &switchboard_store_postgres::PostgresStore) {
/// use switchboard_core::store::{EventStore, StoreError};
/// use switchboard_store_postgres::PostgresError;
///
/// if let Err(err @ StoreError::Unavailable { .. }) = store.stream_version(switchboard_core::OrgId::from_uuid(uuid::Uuid::nil())).await {
///     let source = std::error::Error::source(&err).expect("the driver's error");
///     if let Some(pg) = source.downcast_ref::<switchboard_core::store::BackendError>()
///         .and_then(|b| b.downcast_ref::<PostgresError>())
///     {
///         println!("SQLSTATE {:?}: {pg}", pg.code());
///     }
/// }
/// # }
/// ```
pub struct PostgresError {
    error: tokio_postgres::Error,
}

impl PostgresError {
    /// Wraps a driver error.
    pub fn new(error: tokio_postgres::Error) -> Self {
        Self { error }
    }

    /// The SQLSTATE, when the server reported the error (`None`: the
    /// connection broke, or the driver failed locally).
    pub fn code(&self) -> Option<&str> {
        self.error.code().map(SqlState::code)
    }

    /// The constraint the server named, if any.
    pub fn constraint(&self) -> Option<&str> {
        self.error.as_db_error().and_then(|d| d.constraint())
    }

    /// The table the server named, if any.
    pub fn table(&self) -> Option<&str> {
        self.error.as_db_error().and_then(|d| d.table())
    }

    /// The server's message, unless it may quote input (a data exception,
    /// SQLSTATE class 22). Never the `DETAIL`.
    pub fn message(&self) -> Option<&str> {
        let db = self.error.as_db_error()?;
        (!db.code().code().starts_with("22")).then(|| db.message())
    }

    /// The driver's error itself. Its `Display` chain can include the
    /// server's `DETAIL`, which can quote row values: never log it.
    pub fn driver_error(&self) -> &tokio_postgres::Error {
        &self.error
    }
}

impl std::fmt::Display for PostgresError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let Some(db) = self.error.as_db_error() else {
            // Not from the server: I/O, closed connection, conversion. The
            // driver's text names the kind and, at most, a column or
            // parameter index.
            return write!(f, "{}", self.error);
        };
        write!(f, "{} SQLSTATE {}", db.severity(), db.code().code())?;
        match self.message() {
            Some(m) => write!(f, ": {m}")?,
            None => write!(f, ": data exception (message withheld: it may quote input)")?,
        }
        if let Some(t) = db.table() {
            write!(f, " (table {t})")?;
        }
        if let Some(c) = db.constraint() {
            write!(f, " (constraint {c})")?;
        }
        Ok(())
    }
}

impl std::fmt::Debug for PostgresError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PostgresError")
            .field("code", &self.code())
            .field("table", &self.table())
            .field("constraint", &self.constraint())
            .field("message", &self.message())
            .finish_non_exhaustive()
    }
}

impl std::error::Error for PostgresError {
    /// The I/O error behind a broken connection; nothing for a server error
    /// (the driver's next link is the server's error with its `DETAIL`).
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        if self.error.as_db_error().is_some() {
            None
        } else {
            std::error::Error::source(&self.error)
        }
    }
}

/// Maps a driver error, keeping it (wrapped in [`PostgresError`]) as the
/// source of `Unavailable` and `Corrupt`. Decided by SQLSTATE, never by the
/// message, which is only copied (without `DETAIL`) into `reason`.
pub(crate) fn map_db(e: tokio_postgres::Error, op: Op) -> StoreError {
    let code = e.code().cloned();
    let closed = e.is_closed();
    let e = PostgresError::new(e);
    let reason = e.to_string();
    let source = Some(BackendError::new(e));
    let Some(code) = code else {
        // No SQLSTATE: the connection broke (I/O error, closed) or the driver
        // failed locally. For a write the request may have reached the server
        // and committed before we lost the answer.
        return StoreError::Unavailable {
            reason,
            maybe_committed: op == Op::Write && closed,
            source,
        };
    };
    let class = &code.code()[..2.min(code.code().len())];
    match class {
        // Connection exceptions, admin or crash shutdown: the session is gone,
        // and a write's commit may or may not have happened before it went.
        "08" => StoreError::Unavailable {
            reason,
            maybe_committed: op == Op::Write,
            source,
        },
        _ if code == SqlState::ADMIN_SHUTDOWN || code == SqlState::CRASH_SHUTDOWN => {
            StoreError::Unavailable {
                reason,
                maybe_committed: op == Op::Write,
                source,
            }
        }
        // Data exceptions and integrity violations: the server refused the
        // data; nothing was written.
        "22" | "23" => StoreError::InvalidRequest { reason },
        // Data corrupted / index corrupted.
        "XX" if code == SqlState::DATA_CORRUPTED || code == SqlState::INDEX_CORRUPTED => {
            StoreError::Corrupt { reason, source }
        }
        // Transaction rollback (serialization, deadlock) after our retries,
        // insufficient resources, configuration, missing schema...: the
        // statement failed, so nothing was committed.
        _ => StoreError::Unavailable {
            reason,
            maybe_committed: false,
            source,
        },
    }
}

/// Maps a pool error: no connection means nothing was sent.
pub(crate) fn map_pool(e: deadpool_postgres::PoolError) -> StoreError {
    match e {
        deadpool_postgres::PoolError::Backend(e) => map_db(e, Op::Other),
        other => StoreError::Unavailable {
            reason: format!("no database connection: {other}"),
            maybe_committed: false,
            source: None,
        },
    }
}

pub(crate) fn corrupt(what: impl std::fmt::Display) -> StoreError {
    StoreError::Corrupt {
        reason: what.to_string(),
        source: None,
    }
}
