//! Audit history: the log read back as an auditor needs it.
//!
//! * [`asof`] — the state of an organization as of a stream version, a global
//!   [`Position`](crate::store::Position) or an instant, on every store
//!   (snapshot + tail through the [`CommandService`](crate::service::CommandService)).
//! * [`trail`] — for a user, account or number, every event that concerned it,
//!   with time, actor, command id, event name and a sentence in plain words.
//!   Deleted users still resolve (as "deleted user usr_…").
//! * [`questions`] — what auditors ask: who had access to an account at a time,
//!   where a number routed at a time, who deactivated a user and when.
//! * [`jsonl`] — export of an organization's log as JSON Lines and import into
//!   an empty store, reproducing the same state.
//!
//! Every function here reads through the service, so sealed personal data is
//! opened where its key exists and reads as erased where the user was deleted
//! (R-LIFE-06): an audit never resurrects erased data.

pub mod asof;
#[cfg(feature = "test-util")]
pub mod demo;
pub mod jsonl;
pub mod questions;
pub mod trail;

pub use asof::AsOf;
pub use jsonl::{ImportReport, JsonlError, MAX_LINE_BYTES};
pub use questions::{AccessAt, Deactivation, Routing};
pub use trail::{Subject, Trail, TrailEntry, MAX_TRAIL_ENTRIES};
