//! The store conformance suite, run against [`PostgresStore`] on a real
//! server (see `switchboard_store_postgres::testing`): every test gets its own
//! database.
//!
//! The store polls only every 30 s here, longer than any wake-up bound of the
//! suite (20 s), so that `wait_for_events_wakes_up` fails if notifications
//! break, instead of passing on a poll.
#[allow(unused_imports)]
use switchboard_store_postgres::PostgresStore;

async fn store_that_wakes_only_on_notifications() -> PostgresStore {
    let config = match switchboard_store_postgres::testing::try_fresh_database().await {
        Ok(c) => c,
        Err(e) => panic!("PostgreSQL test server unavailable: {e}"),
    };
    let options = switchboard_store_postgres::PostgresOptions {
        max_connections: 8,
        poll_interval: std::time::Duration::from_secs(30),
        ..switchboard_store_postgres::PostgresOptions::default()
    };
    match PostgresStore::connect_config(config, options).await {
        Ok(store) => store,
        Err(e) => panic!("cannot connect to the test database: {e}"),
    }
}

switchboard_core::store_conformance_tests!(store_that_wakes_only_on_notifications().await);
