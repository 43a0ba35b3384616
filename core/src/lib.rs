//! # switchboard-core
//!
//! The pure core of Switchboard: the directory of a business-communication
//! platform as commands, events and a fold.
//!
//! * [`decide()`] checks a [`Command`] against the rules listed in `RULES.md` and
//!   yields events, or a [`CommandError`] naming every blocker.
//! * [`evolve()`] folds one event into an [`Organization`].
//! * [`store`] defines the store contract and [`service`] the command-handling
//!   service that loads, decides, appends with an expected version and retries.
//!
//! The core does no I/O, reads no clock and draws no random numbers: time, ids
//! and secrets come from the caller through a [`Context`].
//!
//! ## Features
//!
//! * `test-util`: the test doubles `FixedClock`, `SequentialIds` and
//!   `SeededSecrets`, and the demo story `audit::demo`. They are compiled only
//!   with this feature, so a production build cannot wire a seeded secret
//!   source into token or key generation: enable it in `[dev-dependencies]`.
//! * `proptest` (implies `test-util`): strategies for commands, events and
//!   histories (`strategies`).
//! * `conformance`: the test suite every store runs (`store::conformance`).
#![forbid(unsafe_code)]
#![warn(missing_docs)]

pub mod context;
pub mod ids;
pub mod store;
pub mod subscription;

pub use context::{Actor, Clock, Context, IdSource, Pause, SecretSource, YieldPause};
#[cfg(feature = "test-util")]
pub use context::{FixedClock, SeededSecrets, SequentialIds};
pub use ids::*;
pub use subscription::subscribe;

pub mod audit;
pub mod codec;
pub mod command;
pub mod created;
pub mod decide;
pub mod describe;
pub mod erasure;
pub mod error;
pub mod event;
pub mod evolve;
pub mod model;
pub mod query;
pub mod redact;
pub mod rule;
pub mod schema;
pub mod service;
pub mod small;
#[cfg(feature = "proptest")]
pub mod strategies;
pub mod validate;

pub use command::*;
pub use created::Created;
/// CSV bulk updates (R-BULK-*), decided under [`decide()`] like every command.
pub use decide::bulk;
pub use decide::{decide, Decision, IssuedSecret};
pub use error::{Blocker, CommandError, Missing};
pub use event::{DeletionAcknowledgement, Event, PersonalData};
pub use evolve::{evolve, evolve_owned, fold};
pub use model::*;
pub use rule::{RuleId, UnknownRuleId};
