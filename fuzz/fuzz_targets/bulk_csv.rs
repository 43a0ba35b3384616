//! The bulk CSV parser and `decide` of a bulk update (R-BULK-01..03) on the
//! fixture organization: the input is the spreadsheet's text, decided in
//! both modes as four actors.
#![no_main]
#![forbid(unsafe_code)]

use libfuzzer_sys::fuzz_target;
use switchboard_core::bulk::RowStatus;
use switchboard_core::{BulkMode, Command};
use switchboard_fuzz::{check_decide, fixture};

fuzz_target!(|data: &[u8]| {
    let Ok(csv) = std::str::from_utf8(data) else {
        return;
    };
    let f = fixture();
    for actor in f.actors().into_iter().take(4) {
        let mut all_rows = None;
        for mode in [BulkMode::AllOrNothing, BulkMode::Partial] {
            let command = Command::BulkUpdate {
                csv: csv.to_owned(),
                mode,
            };
            let Ok(d) = check_decide(&f.state, &command, actor.clone(), f.now()) else {
                continue;
            };
            let report = d.report.expect("a bulk run reports its rows");
            // Rows are numbered 1, 2, … in order; the events are those of the applied rows.
            for (i, row) in report.rows.iter().enumerate() {
                assert_eq!(row.row, i + 1);
                let _ = row.to_string();
            }
            let applied: usize = report
                .rows
                .iter()
                .map(|r| match r.status {
                    RowStatus::Applied { events } => events,
                    _ => 0,
                })
                .sum();
            assert_eq!(applied, d.events.len());
            match mode {
                BulkMode::AllOrNothing => {
                    assert_eq!(report.rejected(), 0, "all-or-nothing applied a bad sheet");
                    all_rows = Some(report.rows);
                }
                // A sheet accepted whole is accepted the same way in partial mode.
                BulkMode::Partial => {
                    if let Some(rows) = all_rows.take() {
                        assert_eq!(rows, report.rows);
                    }
                }
            }
        }
    }
});
