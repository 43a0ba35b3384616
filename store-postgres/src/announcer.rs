//! Announcing appends to other processes: at most one `NOTIFY` per interval
//! per store, sent after the appends it announces have committed.
//!
//! Why not `pg_notify` inside the append function: PostgreSQL queues the
//! notifications of a transaction under one cluster-wide lock taken at
//! commit, so notifying transactions commit one at a time. With 8 writers
//! appending one event each, that lock cost a third of the throughput
//! (BENCHMARKS.md §3). Appends committing within one interval share one
//! `NOTIFY` here instead, and waiters in this process are woken at once,
//! without a round trip.
//!
//! What it costs: a subscriber in another process learns of an append up to
//! [`ANNOUNCE_INTERVAL`] plus a round trip later than before; and if this
//! process dies between an append's commit and its announcement, that
//! subscriber finds the events at its next poll
//! ([`PostgresOptions::poll_interval`](crate::PostgresOptions::poll_interval))
//! — later, never lost: notifications only say "look".

use crate::sql::{ANNOUNCE, CHANNEL};
use deadpool_postgres::Pool;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::Notify;

/// Limit: at most one `NOTIFY` per this interval per store (the latency a
/// burst of appends adds for subscribers in other processes).
pub(crate) const ANNOUNCE_INTERVAL: Duration = Duration::from_millis(2);

/// Shared between the store's appends and its announcer task.
#[derive(Debug, Default)]
pub(crate) struct Announcements {
    /// An append committed since the last `NOTIFY` was sent.
    pending: AtomicBool,
    /// Wakes the announcer task (a stored permit: no wake-up is lost).
    work: Notify,
}

impl Announcements {
    /// Records that an append committed; the announcer sends a `NOTIFY` soon.
    pub(crate) fn committed(&self) {
        self.pending.store(true, Ordering::Release);
        self.work.notify_one();
    }
}

/// Runs until aborted (the store aborts it when its last clone is dropped).
pub(crate) async fn run(pool: Pool, announcements: Arc<Announcements>) {
    loop {
        announcements.work.notified().await;
        // Every append that set `pending` before this swap is announced by
        // the NOTIFY below; one that sets it after is seen by the next turn.
        while announcements.pending.swap(false, Ordering::AcqRel) {
            match pool.get().await {
                Ok(client) => {
                    // Prepared once per connection: one round trip per
                    // NOTIFY, not a parse and a describe first.
                    let sent = match client.prepare_cached(ANNOUNCE).await {
                        Ok(stmt) => client.execute(&stmt, &[&CHANNEL]).await.map(|_| ()),
                        Err(e) => Err(e),
                    };
                    if let Err(e) = sent {
                        tracing::warn!(error = %e, "NOTIFY failed; other processes poll");
                    }
                }
                Err(e) => {
                    tracing::warn!(error = %e, "no connection to NOTIFY; other processes poll")
                }
            }
            // Appends committing meanwhile share the next NOTIFY.
            tokio::time::sleep(ANNOUNCE_INTERVAL).await;
        }
    }
}
