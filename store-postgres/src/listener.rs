//! LISTEN/NOTIFY: a dedicated connection that wakes `wait_for_events` when an
//! append commits, reconnecting for ever with capped backoff.

use crate::sql::CHANNEL;
use futures_util::future::{self, Either};
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::Notify;
use tokio_postgres::{AsyncMessage, NoTls};

const MAX_BACKOFF: Duration = Duration::from_secs(5);

/// Runs until aborted (the store aborts it when its last clone is dropped).
pub(crate) async fn run(config: tokio_postgres::Config, wake: Arc<Notify>) {
    let mut backoff = Duration::from_millis(50);
    loop {
        match config.connect(NoTls).await {
            Ok((client, mut connection)) => {
                let driver = {
                    let wake = wake.clone();
                    async move {
                        // Drives the connection (also for the LISTEN below) and
                        // forwards notifications until it ends.
                        loop {
                            match future::poll_fn(|cx| connection.poll_message(cx)).await {
                                Some(Ok(AsyncMessage::Notification(_))) => wake.notify_waiters(),
                                Some(Ok(_)) => {}
                                Some(Err(e)) => {
                                    tracing::warn!(error = %e, "event listener connection failed");
                                    break;
                                }
                                None => break,
                            }
                        }
                    }
                };
                let listen = {
                    let wake = wake.clone();
                    let client = &client;
                    async move {
                        match client.batch_execute(&format!("LISTEN {CHANNEL}")).await {
                            Ok(()) => {
                                // Whatever committed while we were not listening
                                // must not wait for the next notification.
                                wake.notify_waiters();
                                future::pending::<()>().await;
                            }
                            Err(e) => tracing::warn!(error = %e, "LISTEN failed"),
                        }
                    }
                };
                let listening = std::pin::pin!(listen);
                let driving = std::pin::pin!(driver);
                if let Either::Left(_) = future::select(listening, driving).await {
                    // LISTEN failed: back off before retrying.
                } else {
                    backoff = Duration::from_millis(50);
                }
            }
            Err(e) => {
                tracing::warn!(error = %e, "event listener cannot connect; subscribers poll");
            }
        }
        // Waiters re-read: the poll covers what a lost connection missed.
        wake.notify_waiters();
        tokio::time::sleep(backoff).await;
        backoff = (backoff * 2).min(MAX_BACKOFF);
    }
}
