//! Audit history on the memory store: as-of reads, trails, auditor questions,
//! JSON Lines export/import and erasure (R-LIFE-06). The same scenarios run on
//! PostgreSQL in the facade's tests/audit_postgres.rs.

mod audit_support;

use audit_support::*;
use switchboard_store_memory::MemoryStore;

#[tokio::test]
async fn as_of_by_version_position_and_instant() {
    as_of_version_position_and_instant(MemoryStore::new()).await;
}

#[tokio::test]
async fn trails_of_a_deleted_user_an_account_and_a_number() {
    trails_of_users_accounts_and_numbers(MemoryStore::new()).await;
}

#[tokio::test]
async fn who_had_access_where_a_number_routed_who_deactivated() {
    auditor_questions(MemoryStore::new()).await;
}

#[tokio::test]
async fn jsonl_export_then_import_into_an_empty_store_reproduces_the_state() {
    export_then_import_reproduces_the_state(MemoryStore::new(), MemoryStore::new()).await;
}

#[tokio::test]
async fn r_life_06_no_personal_data_of_a_deleted_user_is_readable() {
    r_life_06_deleted_users_personal_data_is_unreadable(MemoryStore::new()).await;
}

#[tokio::test]
async fn r_life_06_live_users_data_stays_readable_in_past_states() {
    personal_data_is_readable_until_deletion(MemoryStore::new()).await;
}

#[tokio::test]
async fn v1_events_stored_as_they_were_are_upcast_on_read() {
    v1_events_stored_as_they_were_load_through_the_service(MemoryStore::new()).await;
}
