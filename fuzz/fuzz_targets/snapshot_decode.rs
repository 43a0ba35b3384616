//! The snapshot decoder: any JSON as the state of a `Snapshot` of the current
//! schema, saved into the fixture's memory store (at the version the JSON
//! names, else the stream's), then `CommandService::load` of the
//! organization, which opens it (`service/snapshots.rs`) and folds the tail.
//!
//! Checks: loading never fails for a bad snapshot (it is skipped and the
//! stream replayed), and the state loaded is of the organization and no
//! older than its stream.
#![no_main]
#![forbid(unsafe_code)]

use libfuzzer_sys::fuzz_target;
use serde_json::Value;
use switchboard_core::service::SNAPSHOT_SCHEMA_VERSION;
use switchboard_core::store::{Snapshot, SnapshotStore};
use switchboard_fuzz::{block_on, fixture};

fuzz_target!(|data: &[u8]| {
    let Ok(state) = serde_json::from_slice::<Value>(data) else {
        return;
    };
    let f = fixture();
    let version = state
        .get("version")
        .and_then(Value::as_u64)
        .unwrap_or(f.state.version);
    let snapshot = Snapshot {
        stream: f.org,
        version,
        schema_version: SNAPSHOT_SCHEMA_VERSION,
        state,
    };
    let store = f.service.store();
    block_on(async {
        store.delete_snapshots(f.org).await.expect("deletes");
        if store.save_snapshot(snapshot).await.is_err() {
            return; // over a limit: refused by the store
        }
        let loaded = f
            .service
            .load(f.org)
            .await
            .expect("a bad snapshot is skipped, not an error");
        assert_eq!(loaded.id, f.org);
        assert!(loaded.version >= f.state.version);
    });
});
