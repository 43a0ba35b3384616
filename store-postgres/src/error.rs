//! Mapping driver and pool errors to [`StoreError`], by SQLSTATE only.

use switchboard_core::store::StoreError;
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

/// Maps a driver error. The message text is only copied into `reason`, never inspected.
pub(crate) fn map_db(e: &tokio_postgres::Error, op: Op) -> StoreError {
    let reason = e.to_string();
    let Some(code) = e.code() else {
        // No SQLSTATE: the connection broke (I/O error, closed) or the driver
        // failed locally. For a write the request may have reached the server
        // and committed before we lost the answer.
        return StoreError::Unavailable {
            reason,
            maybe_committed: op == Op::Write && e.is_closed(),
        };
    };
    let class = &code.code()[..2.min(code.code().len())];
    match class {
        // Connection exceptions, admin or crash shutdown: the session is gone,
        // and a write's commit may or may not have happened before it went.
        "08" => StoreError::Unavailable {
            reason,
            maybe_committed: op == Op::Write,
        },
        _ if *code == SqlState::ADMIN_SHUTDOWN || *code == SqlState::CRASH_SHUTDOWN => {
            StoreError::Unavailable {
                reason,
                maybe_committed: op == Op::Write,
            }
        }
        // Data exceptions and integrity violations: the server refused the
        // data; nothing was written.
        "22" | "23" => StoreError::InvalidRequest { reason },
        // Data corrupted / index corrupted.
        "XX" if *code == SqlState::DATA_CORRUPTED || *code == SqlState::INDEX_CORRUPTED => {
            StoreError::Corrupt { reason }
        }
        // Transaction rollback (serialization, deadlock) after our retries,
        // insufficient resources, configuration, missing schema...: the
        // statement failed, so nothing was committed.
        _ => StoreError::Unavailable {
            reason: format!("{reason} (SQLSTATE {})", code.code()),
            maybe_committed: false,
        },
    }
}

/// Maps a pool error: no connection means nothing was sent.
pub(crate) fn map_pool(e: deadpool_postgres::PoolError) -> StoreError {
    match e {
        deadpool_postgres::PoolError::Backend(e) => map_db(&e, Op::Other),
        other => StoreError::Unavailable {
            reason: format!("no database connection: {other}"),
            maybe_committed: false,
        },
    }
}

pub(crate) fn corrupt(what: impl std::fmt::Display) -> StoreError {
    StoreError::Corrupt {
        reason: what.to_string(),
    }
}
