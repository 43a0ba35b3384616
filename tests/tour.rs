//! Runs the tour example as a test: every seed workflow end to end on the
//! memory store, and the replay of its whole log equals the live state.

#[allow(dead_code)]
#[path = "../examples/tour.rs"]
mod tour;

#[tokio::test]
async fn tour_runs_and_its_history_replays_to_the_live_state() {
    let summary = tour::tour(switchboard::memory::MemoryStore::new())
        .await
        .expect("the tour runs to the end and its replay matches");
    // The tour's script is fixed: these numbers move only when the script does.
    assert_eq!(summary.refusals, 10, "{summary:?}");
    assert!(summary.events > 60, "{summary:?}");
}

/// The same tour on a real PostgreSQL server (a throwaway cluster when
/// `DATABASE_URL` is unset): the store changes, the story does not.
#[cfg(feature = "postgres")]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tour_runs_on_postgres_and_replays_to_the_live_state() {
    let store = switchboard_store_postgres::testing::fresh_store().await;
    let summary = tour::tour(store)
        .await
        .expect("the tour runs to the end on Postgres and its replay matches");
    assert_eq!(summary.refusals, 10, "{summary:?}");
    assert!(summary.events > 60, "{summary:?}");
}
