//! The SQL, kept in readable files next to the crate.

pub(crate) const APPEND: &str = include_str!("../sql/append.sql");
pub(crate) const APPEND_EVENTS: &str = include_str!("../sql/append_events.sql");
pub(crate) const ANNOUNCE: &str = include_str!("../sql/announce.sql");
pub(crate) const READ_STREAM: &str = include_str!("../sql/read_stream.sql");
pub(crate) const READ_ALL: &str = include_str!("../sql/read_all.sql");
pub(crate) const HAS_EVENTS_AFTER: &str = include_str!("../sql/has_events_after.sql");
pub(crate) const STREAM_VERSION: &str = include_str!("../sql/stream_version.sql");
pub(crate) const FIND_COMMAND: &str = include_str!("../sql/find_command.sql");
pub(crate) const FIRST_RECORDED_EVENT_ID: &str = include_str!("../sql/first_recorded_event_id.sql");
pub(crate) const CLAIM_HOLDER: &str = include_str!("../sql/claim_holder.sql");
pub(crate) const SAVE_SNAPSHOT: &str = include_str!("../sql/save_snapshot.sql");
pub(crate) const LOAD_SNAPSHOT: &str = include_str!("../sql/load_snapshot.sql");
pub(crate) const DELETE_SNAPSHOTS: &str = include_str!("../sql/delete_snapshots.sql");
pub(crate) const SAVE_CHECKPOINT: &str = include_str!("../sql/save_checkpoint.sql");
pub(crate) const LOAD_CHECKPOINT: &str = include_str!("../sql/load_checkpoint.sql");
pub(crate) const MIGRATIONS_TABLE: &str = include_str!("../sql/migrations_table.sql");
pub(crate) const IMPORT_LOCK_STREAM: &str = include_str!("../sql/import_lock_stream.sql");
pub(crate) const IMPORT_STREAM_VERSION: &str = include_str!("../sql/import_stream_version.sql");
pub(crate) const IMPORT_COPY: &str = include_str!("../sql/import_copy.sql");
pub(crate) const IMPORT_FINISH: &str = include_str!("../sql/import_finish.sql");

/// The schema, in order. A migration is never edited once released: add a new one.
pub(crate) const MIGRATIONS: &[(i32, &str, &str)] = &[
    (
        1,
        "0001_event_log",
        include_str!("../migrations/0001_event_log.sql"),
    ),
    (
        2,
        "0002_append_function",
        include_str!("../migrations/0002_append_function.sql"),
    ),
    (
        3,
        "0003_data_keys",
        include_str!("../migrations/0003_data_keys.sql"),
    ),
    (
        4,
        "0004_append_function_v2",
        include_str!("../migrations/0004_append_function_v2.sql"),
    ),
    (
        5,
        "0005_scoped_commands_and_atomic_keys",
        include_str!("../migrations/0005_scoped_commands_and_atomic_keys.sql"),
    ),
    (
        6,
        "0006_commands_in_events",
        include_str!("../migrations/0006_commands_in_events.sql"),
    ),
    (
        7,
        "0007_binary_snapshots",
        include_str!("../migrations/0007_binary_snapshots.sql"),
    ),
];

/// The channel appends are announced on (`announcer.rs`; imports notify in their transaction).
pub(crate) const CHANNEL: &str = "switchboard_events";

/// Key of the advisory lock that serialises concurrent `migrate()` calls
/// (an arbitrary constant: "sbmigr" in ASCII).
pub(crate) const MIGRATION_LOCK_KEY: i64 = 0x7362_6d69_6772;
