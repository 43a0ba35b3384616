//! The snapshot decoder: any bytes as the state of a `Snapshot` of the
//! current schema, saved into the fixture's memory store (at the version the
//! input's first 8 bytes name, big-endian), then `CommandService::load` of
//! the organization, which decodes and opens it (`service/snapshots.rs`,
//! `service/snapshot_format.rs`) and folds the tail.
//!
//! Checks: loading never fails for a bad snapshot (it is skipped and the
//! stream replayed), and the state loaded is of the organization and no
//! older than its stream.
#![no_main]
#![forbid(unsafe_code)]

use libfuzzer_sys::fuzz_target;
use switchboard_core::service::SNAPSHOT_SCHEMA_VERSION;
use switchboard_core::store::{Snapshot, SnapshotStore};
use switchboard_fuzz::{block_on, fixture};

fuzz_target!(|data: &[u8]| {
    let Some((version, state)) = data.split_first_chunk::<8>() else {
        return;
    };
    let f = fixture();
    let version = u64::from_be_bytes(*version);
    let state = state.to_vec();
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
