//! JSON Lines import: `audit::jsonl::parse_line` on every line, then the
//! whole file through `CommandService::import_jsonl` into a fresh memory
//! store.
//!
//! Checks: an accepted import loads at the version it reports, exports as
//! many lines, and its export imports again into another fresh store,
//! giving the same state and the same export.
#![no_main]
#![forbid(unsafe_code)]

use libfuzzer_sys::fuzz_target;
use std::io::Cursor;
use switchboard_core::audit::jsonl::parse_line;
use switchboard_fuzz::{block_on, fresh_service};

fuzz_target!(|data: &[u8]| {
    for (i, line) in data.split(|b| *b == b'\n').enumerate() {
        let _ = parse_line(line, i + 1);
    }
    let service = fresh_service(1);
    let Ok(report) = block_on(service.import_jsonl(&mut Cursor::new(data))) else {
        return;
    };
    let state = block_on(service.load(report.org)).expect("an imported log loads");
    assert_eq!(state.version, report.events);
    let mut export = Vec::new();
    let written = block_on(service.export_jsonl(report.org, &mut export)).expect("exports");
    assert_eq!(written, report.events);

    let again = fresh_service(2);
    let report2 = block_on(again.import_jsonl(&mut Cursor::new(&export)))
        .expect("an export imports into an empty store");
    assert_eq!(report2.events, report.events);
    assert_eq!(report2.appends, report.appends);
    let state2 = block_on(again.load(report.org)).expect("loads");
    assert!(state2 == state, "the re-imported log folds differently");
    let mut export2 = Vec::new();
    block_on(again.export_jsonl(report.org, &mut export2)).expect("exports");
    assert!(export2 == export, "export → import → export is not stable");
});
