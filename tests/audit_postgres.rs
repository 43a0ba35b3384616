//! Audit history on PostgreSQL: the same scenarios as the memory store's
//! (core/tests/audit_memory.rs), plus a look at the raw tables after a deletion
//! (R-LIFE-06). The database comes from store-postgres's test harness
//! (a throwaway cluster, or DATABASE_URL).

#[path = "../core/tests/audit_support/mod.rs"]
mod audit_support;

use audit_support::*;
use switchboard_store_memory::MemoryStore;
use switchboard_store_postgres::testing::fresh_store;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn as_of_by_version_position_and_instant() {
    as_of_version_position_and_instant(fresh_store().await).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn trails_of_a_deleted_user_an_account_and_a_number() {
    trails_of_users_accounts_and_numbers(fresh_store().await).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn who_had_access_where_a_number_routed_who_deactivated() {
    auditor_questions(fresh_store().await).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn jsonl_export_then_import_into_an_empty_store_reproduces_the_state() {
    // Postgres to Postgres, and across stores both ways.
    export_then_import_reproduces_the_state(fresh_store().await, fresh_store().await).await;
    export_then_import_reproduces_the_state(fresh_store().await, MemoryStore::new()).await;
    export_then_import_reproduces_the_state(MemoryStore::new(), fresh_store().await).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn r_life_06_no_personal_data_of_a_deleted_user_is_readable() {
    r_life_06_deleted_users_personal_data_is_unreadable(fresh_store().await).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn r_life_06_live_users_data_stays_readable_in_past_states() {
    personal_data_is_readable_until_deletion(fresh_store().await).await;
}

/// R-LIFE-06 on the raw tables: after the deletion, neither the events nor the
/// snapshots hold the deleted user's personal data in clear, and their key row
/// is a tombstone without key bytes.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn r_life_06_raw_tables_hold_no_personal_data_of_a_deleted_user() {
    let store = fresh_store().await;
    let (service, d) = demo_on(store.clone()).await;
    let client = store.pool().get().await.expect("connection");
    let text = |sql: &'static str| {
        let client = &client;
        async move {
            client
                .query(sql, &[])
                .await
                .expect("query")
                .iter()
                .map(|r| r.get::<_, String>(0))
                .collect::<Vec<_>>()
                .join("\n")
        }
    };
    let events = text("SELECT payload::text || actor::text FROM switchboard.events").await;
    assert!(events.contains(&d.carl.as_uuid().to_string()), "ids stay");
    assert_no_carl(&events, "switchboard.events");
    assert!(
        !events.contains("ann@northwind.example"),
        "live users' data is sealed too"
    );
    let snapshots = text("SELECT state::text FROM switchboard.snapshots").await;
    assert!(
        !snapshots.is_empty(),
        "a snapshot was saved after the deletion"
    );
    assert_no_carl(&snapshots, "switchboard.snapshots");
    let keys = client
        .query(
            "SELECT key IS NULL, erased_at IS NOT NULL FROM switchboard.data_keys WHERE user_id = $1",
            &[&d.carl.as_uuid()],
        )
        .await
        .expect("keys");
    assert_eq!(keys.len(), 1);
    assert!(keys[0].get::<_, bool>(0) && keys[0].get::<_, bool>(1));
    // Nothing else in the schema holds the data either.
    for table in ["commands", "claims", "checkpoints", "streams"] {
        let sql =
            format!("SELECT coalesce(string_agg(t::text, ' '), '') FROM switchboard.{table} t");
        let row = client.query_one(sql.as_str(), &[]).await.expect("dump");
        assert_no_carl(&row.get::<_, String>(0), table);
    }
    drop(service);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn v1_events_stored_as_they_were_are_upcast_on_read() {
    v1_events_stored_as_they_were_load_through_the_service(fresh_store().await).await;
}
