//! The promises at the edges (see edges_support) on the memory store, and
//! the command service's traces.

mod edges_support;

use edges_support::*;
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex};
use switchboard_core::service::*;
use switchboard_core::*;
use switchboard_store_memory::MemoryStore;

/// Point 1 of the edges: ids scoped to their organization.
#[tokio::test]
async fn a_command_id_of_another_organization_reveals_nothing_memory() {
    a_command_id_of_another_organization_reveals_nothing(MemoryStore::new()).await;
}

#[tokio::test]
async fn a_command_id_reused_for_another_command_is_refused_memory() {
    a_command_id_reused_for_another_command_is_refused(MemoryStore::new()).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_calls_with_one_command_id_record_once_and_all_succeed_memory() {
    concurrent_calls_with_one_command_id_record_once_and_all_succeed(60, || async {
        let store = MemoryStore::new();
        (store.clone(), store)
    })
    .await;
}

#[tokio::test]
async fn r_life_06_a_snapshot_racing_a_deletion_cannot_bring_the_user_back_memory() {
    r_life_06_a_snapshot_racing_a_deletion_cannot_bring_the_user_back(MemoryStore::new()).await;
}

#[tokio::test]
async fn r_life_06_a_deletion_dropped_at_every_await_point_leaves_nothing_readable_memory() {
    r_life_06_a_deletion_dropped_at_every_await_point_leaves_nothing_readable(
        || async { MemoryStore::new() },
        |_| async { String::new() },
    )
    .await;
}

#[tokio::test]
async fn r_life_06_a_deleted_users_device_names_are_erased_memory() {
    r_life_06_a_deleted_users_device_names_are_erased(MemoryStore::new()).await;
}

#[tokio::test]
async fn r_life_06_a_contended_command_leaves_no_key_memory() {
    r_life_06_a_contended_command_leaves_no_key(MemoryStore::new()).await;
}

#[tokio::test]
async fn r_inv_03_tokens_issued_by_a_call_are_returned_after_an_unknown_outcome_memory() {
    r_inv_03_tokens_issued_by_a_call_are_returned_after_an_unknown_outcome(MemoryStore::new())
        .await;
}

/// A writer that keeps what `tracing` prints, for the test to read.
#[derive(Clone, Default)]
struct Captured(Arc<Mutex<Vec<u8>>>);

impl std::io::Write for Captured {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// Runs `run` on a runtime of its own with a subscriber that keeps what is
/// traced (DEBUG and up, plain text); returns that text.
fn traced(run: impl std::future::Future<Output = ()>) -> String {
    let captured = Captured::default();
    let writer = captured.clone();
    let subscriber = tracing_subscriber::fmt()
        .with_max_level(tracing::Level::DEBUG)
        .with_ansi(false)
        .with_writer(move || writer.clone())
        .finish();
    let runtime = tokio::runtime::Builder::new_current_thread()
        .build()
        .unwrap();
    tracing::subscriber::with_default(subscriber, || runtime.block_on(run));
    let text = captured.0.lock().unwrap().clone();
    String::from_utf8(text).unwrap()
}

/// Point 7: every command is traced as a `switchboard.handle` span with its
/// organization, name, id, attempts, outcome and events; a failed snapshot
/// is reported; no field carries personal data or a token.
#[test]
fn commands_are_traced_without_personal_data() {
    let text = traced(async {
        let store = Hooked::new(MemoryStore::new());
        let service = service_on(store.clone(), 1, 1);
        let org = org_id(1);
        let (owner, root) =
            organization(&service, org, "olga@edges.example", "ivy@edges.example").await;
        let refused = service
            .handle(CommandRequest::new(
                org,
                cmd_id(8),
                Actor::user(owner),
                invite("not an email", root),
            ))
            .await;
        assert!(refused.is_err());
        let _ = service
            .handle(CommandRequest::new(
                org,
                cmd_id(9),
                Actor::System,
                invite("jon@edges.example", root),
            ))
            .await;
    });
    assert!(text.contains("switchboard.handle"), "{text}");
    for field in [
        "org=",
        "command=\"InviteUsers\"",
        "command_id=",
        "attempts=1",
        "outcome=\"recorded\"",
        "events=1",
        "outcome=\"rejected\"",
    ] {
        assert!(text.contains(field), "no {field} in:\n{text}");
    }
    for secret in [
        "olga@edges.example",
        "ivy@edges.example",
        "jon@edges.example",
        "Olga Owner",
        "not an email",
    ] {
        assert!(!text.contains(secret), "{secret} in the traces:\n{text}");
    }
}

/// Point 7: a snapshot that fails on the command path is reported, and
/// the command still succeeds (the log is the truth).
#[test]
fn a_failed_snapshot_is_reported() {
    let text = traced(async {
        // Snapshots of every command, into a store that refuses them.
        let store = Hooked::new(MemoryStore::new());
        store.refuse_snapshots.store(true, Ordering::SeqCst);
        let service = service_on(store, 1, 1);
        let org = org_id(1);
        organization(
            &service,
            org,
            "olga@edges.example",
            "ivy@edges.example, jon@edges.example",
        )
        .await;
        assert_eq!(service.state(org).await.unwrap().users.len(), 3);
    });
    assert!(text.contains("snapshot not saved"), "{text}");
    assert!(text.contains("WARN"), "{text}");
}
