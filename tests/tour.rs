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
