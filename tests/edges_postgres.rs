//! The promises at the edges (core/tests/edges_support) on PostgreSQL: two
//! service instances with a pool each (as two processes would have) racing
//! one command id, a deletion dropped at every await point checked down to
//! the raw tables, and the rest of the scenarios.

#[path = "../core/tests/edges_support/mod.rs"]
mod edges_support;

use edges_support::*;
use switchboard_store_postgres::testing::{fresh_store, try_fresh_database};
use switchboard_store_postgres::{PostgresOptions, PostgresStore};

async fn connect(config: tokio_postgres::Config) -> PostgresStore {
    let options = PostgresOptions {
        max_connections: 4,
        ..PostgresOptions::default()
    };
    match PostgresStore::connect_config(config, options).await {
        Ok(store) => store,
        Err(e) => panic!("cannot connect: {e}"),
    }
}

/// Every row of the tables that can hold data of a user, as text.
async fn raw_tables(store: PostgresStore) -> String {
    let client = store.pool().get().await.expect("connection");
    let mut text = String::new();
    for sql in [
        "SELECT coalesce(string_agg(payload::text || actor::text, ' '), '') FROM switchboard.events",
        "SELECT coalesce(string_agg(state::text, ' '), '') FROM switchboard.snapshots",
        "SELECT coalesce(string_agg(t::text, ' '), '') FROM switchboard.commands t",
        "SELECT coalesce(string_agg(t::text, ' '), '') FROM switchboard.claims t",
    ] {
        let row = client.query_one(sql, &[]).await.expect("query");
        text += &row.get::<_, String>(0);
    }
    text
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_command_id_of_another_organization_reveals_nothing_postgres() {
    a_command_id_of_another_organization_reveals_nothing(fresh_store().await).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_command_id_reused_for_another_command_is_refused_postgres() {
    a_command_id_reused_for_another_command_is_refused(fresh_store().await).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_calls_with_one_command_id_record_once_and_all_succeed_postgres() {
    concurrent_calls_with_one_command_id_record_once_and_all_succeed(12, || async {
        let config = match try_fresh_database().await {
            Ok(c) => c,
            Err(e) => panic!("PostgreSQL test server unavailable: {e}"),
        };
        (connect(config.clone()).await, connect(config).await)
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn r_life_06_a_snapshot_racing_a_deletion_cannot_bring_the_user_back_postgres() {
    r_life_06_a_snapshot_racing_a_deletion_cannot_bring_the_user_back(fresh_store().await).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn r_life_06_a_deletion_dropped_at_every_await_point_leaves_nothing_readable_postgres() {
    r_life_06_a_deletion_dropped_at_every_await_point_leaves_nothing_readable(
        fresh_store,
        raw_tables,
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn r_life_06_a_deleted_users_device_names_are_erased_postgres() {
    let store = fresh_store().await;
    r_life_06_a_deleted_users_device_names_are_erased(store.clone()).await;
    assert!(!raw_tables(store).await.contains("Ivanova"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn r_life_06_a_contended_command_leaves_no_key_postgres() {
    r_life_06_a_contended_command_leaves_no_key(fresh_store().await).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn r_inv_03_tokens_issued_by_a_call_are_returned_after_an_unknown_outcome_postgres() {
    r_inv_03_tokens_issued_by_a_call_are_returned_after_an_unknown_outcome(fresh_store().await)
        .await;
}
