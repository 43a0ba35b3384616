//! The store conformance suite, run against [`MemoryStore`].
use switchboard_store_memory::MemoryStore;

switchboard_core::store_conformance_tests!(MemoryStore::new());
