//! The organizations a service keeps folded in memory: one slot per
//! organization, each behind an async lock that orders the commands of that
//! organization within this process.
//!
//! Architecture invariant: a slot holds only folded, recorded events. A
//! command takes the state out of its slot and puts it back when it ends; a
//! command whose future is dropped half-way leaves the slot empty, and the
//! next caller reloads the organization from the store (never a half-applied
//! state).

use crate::ids::OrgId;
use crate::model::Organization;
use std::collections::HashMap;
use std::sync::{Arc, Mutex};

/// An organization folded in memory, and the version of its newest snapshot
/// known to this service (0: none), from which the next one is due.
pub(crate) struct Cached {
    pub(crate) state: Organization,
    pub(crate) snapshot_at: u64,
}

/// One organization's slot: empty until loaded, or after a dropped command.
pub(crate) type Slot = Arc<async_lock::Mutex<Option<Cached>>>;

/// The slots, at most `capacity` of them (idle ones are evicted first).
pub(crate) struct Cache {
    slots: Mutex<HashMap<OrgId, Slot>>,
    capacity: usize,
}

impl Cache {
    /// A cache of at most `capacity` organizations (at least 1).
    pub(crate) fn new(capacity: usize) -> Self {
        Self {
            slots: Mutex::new(HashMap::new()),
            capacity: capacity.max(1),
        }
    }

    /// The organization's slot, created empty when it has none.
    pub(crate) fn slot(&self, org: OrgId) -> Slot {
        // Every operation below is a single map call: a poisoned lock still
        // guards a consistent map.
        let mut slots = self.slots.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(s) = slots.get(&org) {
            return s.clone();
        }
        if slots.len() >= self.capacity {
            // Evict one organization nobody is using; a missing one is just
            // reloaded. When every slot is in use the map grows past the
            // capacity until they are released.
            let idle = slots
                .iter()
                .find(|(_, s)| Arc::strong_count(s) == 1)
                .map(|(k, _)| *k);
            if let Some(k) = idle {
                slots.remove(&k);
            }
        }
        let slot: Slot = Arc::new(async_lock::Mutex::new(None));
        slots.insert(org, slot.clone());
        slot
    }
}
