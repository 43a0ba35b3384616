//! Benchmarks of Switchboard's PostgreSQL store against its peers
//! (`cqrs-es` + `postgres-es`) on one throwaway server: see
//! `benches/peers.rs` and BENCHMARKS.md §3. This package is never published
//! and ships nothing: its library is empty, and the peers are
//! dev-dependencies of its bench only.
#![forbid(unsafe_code)]
