//! Any command: bytes → `serde_json::from_slice::<Command>` → `decide` on the
//! fixture organization as six actors, and `evolve` of the events of an
//! acceptance (see `switchboard_fuzz::check_decide` for the checks).
#![no_main]
#![forbid(unsafe_code)]

use libfuzzer_sys::fuzz_target;
use switchboard_core::service::command_digest;
use switchboard_core::Command;
use switchboard_fuzz::{check_decide, fixture};

fuzz_target!(|data: &[u8]| {
    let Ok(command) = serde_json::from_slice::<Command>(data) else {
        return;
    };
    // The command's JSON reads back as the same command.
    let text = serde_json::to_vec(&command).expect("a command serializes");
    let back: Command = serde_json::from_slice(&text).expect("a serialized command reads back");
    assert!(back == command, "{} changed through JSON", command.name());
    let _ = format!("{command:?}");
    let f = fixture();
    for actor in f.actors() {
        let _ = command_digest(&actor, &command);
        let _ = check_decide(&f.state, &command, actor, f.now());
    }
});
