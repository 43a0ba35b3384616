//! # switchboard
//!
//! Facade over [`switchboard_core`] and the stores.
#![forbid(unsafe_code)]
#![warn(missing_docs)]

pub use switchboard_core as core;
pub use switchboard_core::*;

#[cfg(feature = "memory")]
pub use switchboard_store_memory as memory;
#[cfg(feature = "postgres")]
pub use switchboard_store_postgres as postgres;
