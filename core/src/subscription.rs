//! Catch-up subscriptions: read the whole log from a checkpoint, then follow
//! new events. Pull-based, so a slow consumer is never flooded (backpressure).

use crate::store::{EventStore, Position, RecordedEvent, StoreError, MAX_READ_PAGE};
use futures_core::Stream;
use std::collections::VecDeque;
use std::time::Duration;

/// Limit: how long one wait for new events lasts before re-reading anyway.
/// Bounds the delay of a missed wake-up.
pub const MAX_IDLE_WAIT: Duration = Duration::from_secs(5);

/// Every event strictly after `after`, in log order, then every new one as it
/// commits. The stream ends only when the store fails (it yields the error
/// and stops).
///
/// ```
/// # use switchboard_core::{subscribe, store::EventStore};
/// # use futures_util::StreamExt;
/// # async fn demo(store: &dyn EventStore) {
/// let mut events = Box::pin(subscribe(store, None, 500));
/// while let Some(Ok(event)) = events.next().await {
///     println!("{} {} v{}", event.position, event.event_type, event.version);
///     # break;
/// }
/// # }
/// ```
pub fn subscribe<S: EventStore + ?Sized>(
    store: &S,
    after: Option<Position>,
    page_size: usize,
) -> impl Stream<Item = Result<RecordedEvent, StoreError>> + '_ {
    struct State {
        after: Option<Position>,
        buffer: VecDeque<RecordedEvent>,
        failed: bool,
    }
    let page_size = page_size.clamp(1, MAX_READ_PAGE);
    futures_util::stream::unfold(
        State {
            after,
            buffer: VecDeque::new(),
            failed: false,
        },
        move |mut st| async move {
            if st.failed {
                return None;
            }
            loop {
                if let Some(event) = st.buffer.pop_front() {
                    // Architecture invariant: a subscription never goes backwards.
                    debug_assert!(st.after.is_none_or(|a| event.position > a));
                    st.after = Some(event.position);
                    return Some((Ok(event), st));
                }
                match store.read_all(st.after, page_size).await {
                    Ok(page) if page.is_empty() => {
                        store.wait_for_events(st.after, MAX_IDLE_WAIT).await;
                    }
                    Ok(page) => st.buffer.extend(page),
                    Err(e) => {
                        st.failed = true;
                        return Some((Err(e), st));
                    }
                }
            }
        },
    )
}
