//! The store conformance suite, run against [`PostgresStore`] on a real
//! server (see `switchboard_store_postgres::testing`): every test gets its own
//! database.
#[allow(unused_imports)]
use switchboard_store_postgres::PostgresStore;

switchboard_core::store_conformance_tests!(
    switchboard_store_postgres::testing::fresh_store().await
);
