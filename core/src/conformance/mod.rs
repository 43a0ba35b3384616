//! The store conformance suite: one async test function per point of the
//! store contract, generic over the store. Every store crate runs all of them
//! (see [`store_conformance_tests!`](crate::store_conformance_tests), which
//! declares one `#[tokio::test]` per function).
//!
//! Each function expects a **fresh, empty** store and panics (like any test)
//! when the store breaks the contract. The suite is runtime-agnostic: it uses
//! no timer and no executor of its own; the concurrency test takes a spawner.
//!
//! ```ignore
//! // tests/conformance.rs of a store crate:
//! switchboard_core::store_conformance_tests!(my_store::MyStore::new());
//! ```

mod fixtures;
mod suite;

pub use fixtures::*;
pub use suite::*;

/// Declares one `#[tokio::test]` (multi-threaded runtime, each bounded by a
/// five-minute timeout so that a subscriber that skipped an event fails
/// instead of hanging) for every function of the conformance suite.
/// `$factory` is an expression (it may use `.await`) that yields a fresh,
/// empty store implementing `Store + Clone + 'static`. The calling crate needs
/// `tokio` with the `macros`, `rt-multi-thread` and `time` features.
#[macro_export]
macro_rules! store_conformance_tests {
    ($factory:expr) => {
        $crate::store_conformance_tests!(@each $factory;
            append_expected_versions,
            idempotent_command_id,
            command_ids_scoped_to_stream,
            command_digests,
            key_changes_commit_with_events,
            key_store_contract,
            key_loads_answer_exactly_the_users_asked,
            duplicate_event_id,
            claims_taken_released_retaken,
            claims_race_has_one_winner,
            read_stream_ranges,
            read_all_paging_in_order,
            read_limits_are_capped,
            limits_refused_with_nothing_changed,
            snapshots,
            checkpoints,
            wait_for_events_wakes_up,
            event_fields_round_trip,
        );

        #[::tokio::test(flavor = "multi_thread", worker_threads = 4)]
        async fn concurrent_appenders_with_tailing_subscriber() {
            let run = async {
                let store = $factory;
                let spawn = |fut: $crate::store::conformance::BoxFuture| -> $crate::store::conformance::BoxFuture {
                    let handle = ::tokio::spawn(fut);
                    ::std::boxed::Box::pin(async move {
                        if let Err(e) = handle.await {
                            panic!("a conformance task failed: {e}");
                        }
                    })
                };
                $crate::store::conformance::concurrent_appenders_with_tailing_subscriber(
                    store, &spawn,
                )
                .await;
            };
            ::tokio::time::timeout(::std::time::Duration::from_secs(300), run)
                .await
                .expect("conformance test timed out (a subscriber waiting for a skipped event?)");
        }
    };
    (@each $factory:expr; $($name:ident),* $(,)?) => {
        $(
            #[::tokio::test(flavor = "multi_thread", worker_threads = 4)]
            async fn $name() {
                let run = async {
                    let store = $factory;
                    $crate::store::conformance::$name(&store).await;
                };
                ::tokio::time::timeout(::std::time::Duration::from_secs(300), run)
                    .await
                    .expect("conformance test timed out");
            }
        )*
    };
}
