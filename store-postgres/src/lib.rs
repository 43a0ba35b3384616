//! PostgreSQL store for Switchboard (being built).
#![forbid(unsafe_code)]
