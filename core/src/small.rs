//! Small sorted collections for the per-user fields of the state.
//!
//! A user has one or two memberships, a device or two, a few numbers: a
//! `BTreeMap` allocates a whole 11-slot node for its first entry (about
//! 450 bytes for one membership, 800 for one device), which made those two
//! maps half of the state's heap. [`VecMap`] and [`VecSet`] keep their
//! entries in one sorted `Vec`: one exact-size allocation, the same ordered
//! iteration and the same serialized form as `BTreeMap`/`BTreeSet` (so
//! events, snapshots and the JSON of the state do not change).
//!
//! Cost: look-up O(log n), insert and remove O(n) (a shift). Fine for what
//! they hold, which is bounded per user by the limits of `validate.rs`; the
//! organization-wide maps stay `BTreeMap`s.

use serde::de::{Deserialize, Deserializer, MapAccess, Visitor};
use serde::ser::{Serialize, Serializer};
use std::borrow::Borrow;
use std::collections::{BTreeMap, BTreeSet};

/// A map kept as a sorted `Vec` of pairs: `BTreeMap`'s interface, ordering
/// and serialized form, with one exact-size allocation.
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct VecMap<K, V> {
    entries: Vec<(K, V)>,
}

impl<K, V> Default for VecMap<K, V> {
    fn default() -> Self {
        Self {
            entries: Vec::new(),
        }
    }
}

impl<K: std::fmt::Debug, V: std::fmt::Debug> std::fmt::Debug for VecMap<K, V> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_map()
            .entries(self.entries.iter().map(|(k, v)| (k, v)))
            .finish()
    }
}

impl<K: Ord, V> VecMap<K, V> {
    /// An empty map (no allocation).
    pub const fn new() -> Self {
        Self {
            entries: Vec::new(),
        }
    }

    fn find<Q: Ord + ?Sized>(&self, key: &Q) -> Result<usize, usize>
    where
        K: Borrow<Q>,
    {
        self.entries.binary_search_by(|(k, _)| k.borrow().cmp(key))
    }

    /// The value of `key`.
    pub fn get<Q: Ord + ?Sized>(&self, key: &Q) -> Option<&V>
    where
        K: Borrow<Q>,
    {
        self.find(key).ok().map(|i| &self.entries[i].1)
    }

    /// The value of `key`, mutably.
    pub fn get_mut<Q: Ord + ?Sized>(&mut self, key: &Q) -> Option<&mut V>
    where
        K: Borrow<Q>,
    {
        match self.find(key) {
            Ok(i) => Some(&mut self.entries[i].1),
            Err(_) => None,
        }
    }

    /// Whether `key` is present.
    pub fn contains_key<Q: Ord + ?Sized>(&self, key: &Q) -> bool
    where
        K: Borrow<Q>,
    {
        self.find(key).is_ok()
    }

    /// Sets `key` to `value`; returns the previous value.
    pub fn insert(&mut self, key: K, value: V) -> Option<V> {
        match self.find(&key) {
            Ok(i) => Some(std::mem::replace(&mut self.entries[i].1, value)),
            Err(i) => {
                // Grow by one, not by doubling: these stay small and many.
                self.entries.reserve_exact(1);
                self.entries.insert(i, (key, value));
                None
            }
        }
    }

    /// Removes `key`; returns its value.
    pub fn remove<Q: Ord + ?Sized>(&mut self, key: &Q) -> Option<V>
    where
        K: Borrow<Q>,
    {
        let i = self.find(key).ok()?;
        let (_, v) = self.entries.remove(i);
        if self.entries.is_empty() {
            self.entries = Vec::new(); // give the allocation back
        }
        Some(v)
    }

    /// Keeps the entries for which `keep` is true.
    pub fn retain(&mut self, mut keep: impl FnMut(&K, &mut V) -> bool) {
        self.entries.retain_mut(|(k, v)| keep(k, v));
    }

    /// Removes every entry.
    pub fn clear(&mut self) {
        self.entries = Vec::new();
    }

    /// Number of entries.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// Whether there is none.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// Entries in key order.
    pub fn iter(&self) -> impl DoubleEndedIterator<Item = (&K, &V)> + ExactSizeIterator + Clone {
        self.entries.iter().map(|(k, v)| (k, v))
    }

    /// Keys in order.
    pub fn keys(&self) -> impl DoubleEndedIterator<Item = &K> + ExactSizeIterator + Clone {
        self.entries.iter().map(|(k, _)| k)
    }

    /// Values in key order.
    pub fn values(&self) -> impl DoubleEndedIterator<Item = &V> + ExactSizeIterator + Clone {
        self.entries.iter().map(|(_, v)| v)
    }

    /// The keys, in order, consuming the map.
    pub fn into_keys(self) -> impl DoubleEndedIterator<Item = K> + ExactSizeIterator {
        self.entries.into_iter().map(|(k, _)| k)
    }

    /// The values, in key order, consuming the map.
    pub fn into_values(self) -> impl DoubleEndedIterator<Item = V> + ExactSizeIterator {
        self.entries.into_iter().map(|(_, v)| v)
    }

    /// Values in key order, mutably.
    pub fn values_mut(&mut self) -> impl DoubleEndedIterator<Item = &mut V> + ExactSizeIterator {
        self.entries.iter_mut().map(|(_, v)| v)
    }
}

impl<K: Ord, V> VecMap<K, V> {
    /// The map of `entries` in any order: sorted, and of equal keys the last
    /// value wins, as collecting into a `BTreeMap` does. Entries already in
    /// strictly increasing order (as every serialized map is) cost one pass
    /// and no allocation.
    fn from_entries(mut entries: Vec<(K, V)>) -> Self {
        if !entries.windows(2).all(|w| w[0].0 < w[1].0) {
            // A stable sort keeps equal keys in their order; reversed, the
            // first of each run is the last given, which `dedup_by` keeps.
            entries.sort_by(|a, b| a.0.cmp(&b.0));
            entries.reverse();
            entries.dedup_by(|later, kept| later.0 == kept.0);
            entries.reverse();
        }
        entries.shrink_to_fit();
        Self { entries }
    }
}

impl<K: Ord, V> FromIterator<(K, V)> for VecMap<K, V> {
    fn from_iter<I: IntoIterator<Item = (K, V)>>(iter: I) -> Self {
        Self::from_entries(iter.into_iter().collect())
    }
}

impl<K: Ord, V> From<BTreeMap<K, V>> for VecMap<K, V> {
    fn from(map: BTreeMap<K, V>) -> Self {
        Self {
            entries: map.into_iter().collect(),
        }
    }
}

impl<K, V> IntoIterator for VecMap<K, V> {
    type Item = (K, V);
    type IntoIter = std::vec::IntoIter<(K, V)>;
    fn into_iter(self) -> Self::IntoIter {
        self.entries.into_iter()
    }
}

impl<'a, K, V> IntoIterator for &'a VecMap<K, V> {
    type Item = (&'a K, &'a V);
    type IntoIter = std::iter::Map<std::slice::Iter<'a, (K, V)>, fn(&'a (K, V)) -> (&'a K, &'a V)>;
    fn into_iter(self) -> Self::IntoIter {
        self.entries.iter().map(|(k, v)| (k, v))
    }
}

/// `map[&key]`, as on a `BTreeMap`: panics when the key is absent (the
/// library itself never indexes; it uses [`VecMap::get`]).
impl<K: Ord, V> std::ops::Index<&K> for VecMap<K, V> {
    type Output = V;
    fn index(&self, key: &K) -> &V {
        match self.get(key) {
            Some(v) => v,
            None => panic!("VecMap: no entry for the key"),
        }
    }
}

impl<K: Serialize, V: Serialize> Serialize for VecMap<K, V> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_map(self.entries.iter().map(|(k, v)| (k, v)))
    }
}

impl<'de, K: Ord + Deserialize<'de>, V: Deserialize<'de>> Deserialize<'de> for VecMap<K, V> {
    /// As a `BTreeMap` deserializes (a map; of equal keys the last value
    /// wins), straight into the vector.
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct Entries<K, V>(std::marker::PhantomData<(K, V)>);
        impl<'de, K: Deserialize<'de>, V: Deserialize<'de>> Visitor<'de> for Entries<K, V> {
            type Value = Vec<(K, V)>;
            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("a map")
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
                // The announced length is the input's word: capped, so
                // that a forged one cannot reserve much memory.
                let mut entries = Vec::with_capacity(map.size_hint().unwrap_or(0).min(256));
                while let Some(entry) = map.next_entry()? {
                    entries.push(entry);
                }
                Ok(entries)
            }
        }
        let entries = d.deserialize_map(Entries(std::marker::PhantomData))?;
        Ok(Self::from_entries(entries))
    }
}

/// A set kept as a sorted `Vec`: `BTreeSet`'s interface, ordering and
/// serialized form, with one exact-size allocation.
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct VecSet<T> {
    items: Vec<T>,
}

impl<T> Default for VecSet<T> {
    fn default() -> Self {
        Self { items: Vec::new() }
    }
}

impl<T: std::fmt::Debug> std::fmt::Debug for VecSet<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_set().entries(self.items.iter()).finish()
    }
}

impl<T: Ord> VecSet<T> {
    /// An empty set (no allocation).
    pub const fn new() -> Self {
        Self { items: Vec::new() }
    }

    fn find<Q: Ord + ?Sized>(&self, item: &Q) -> Result<usize, usize>
    where
        T: Borrow<Q>,
    {
        self.items.binary_search_by(|t| t.borrow().cmp(item))
    }

    /// Whether `item` is present.
    pub fn contains<Q: Ord + ?Sized>(&self, item: &Q) -> bool
    where
        T: Borrow<Q>,
    {
        self.find(item).is_ok()
    }

    /// Adds `item`; whether it was new.
    pub fn insert(&mut self, item: T) -> bool {
        match self.find(&item) {
            Ok(_) => false,
            Err(i) => {
                self.items.reserve_exact(1);
                self.items.insert(i, item);
                true
            }
        }
    }

    /// Removes `item`; whether it was present.
    pub fn remove<Q: Ord + ?Sized>(&mut self, item: &Q) -> bool
    where
        T: Borrow<Q>,
    {
        match self.find(item) {
            Ok(i) => {
                self.items.remove(i);
                if self.items.is_empty() {
                    self.items = Vec::new();
                }
                true
            }
            Err(_) => false,
        }
    }

    /// Keeps the items for which `keep` is true.
    pub fn retain(&mut self, keep: impl FnMut(&T) -> bool) {
        self.items.retain(keep);
    }

    /// Removes every item.
    pub fn clear(&mut self) {
        self.items = Vec::new();
    }

    /// Number of items.
    pub fn len(&self) -> usize {
        self.items.len()
    }

    /// Whether there is none.
    pub fn is_empty(&self) -> bool {
        self.items.is_empty()
    }

    /// Items in order.
    pub fn iter(&self) -> std::slice::Iter<'_, T> {
        self.items.iter()
    }

    /// The smallest item.
    pub fn first(&self) -> Option<&T> {
        self.items.first()
    }
}

impl<T: Ord> VecSet<T> {
    /// The set of `items` in any order: sorted, and of equal items the
    /// first kept, as collecting into a `BTreeSet` does. Items already in
    /// strictly increasing order cost one pass and no allocation.
    fn from_items(mut items: Vec<T>) -> Self {
        if !items.windows(2).all(|w| w[0] < w[1]) {
            items.sort();
            items.dedup();
        }
        items.shrink_to_fit();
        Self { items }
    }
}

impl<T: Ord> FromIterator<T> for VecSet<T> {
    fn from_iter<I: IntoIterator<Item = T>>(iter: I) -> Self {
        Self::from_items(iter.into_iter().collect())
    }
}

impl<T: Ord> From<BTreeSet<T>> for VecSet<T> {
    fn from(set: BTreeSet<T>) -> Self {
        Self {
            items: set.into_iter().collect(),
        }
    }
}

impl<T> IntoIterator for VecSet<T> {
    type Item = T;
    type IntoIter = std::vec::IntoIter<T>;
    fn into_iter(self) -> Self::IntoIter {
        self.items.into_iter()
    }
}

impl<'a, T> IntoIterator for &'a VecSet<T> {
    type Item = &'a T;
    type IntoIter = std::slice::Iter<'a, T>;
    fn into_iter(self) -> Self::IntoIter {
        self.items.iter()
    }
}

impl<T: Ord> Extend<T> for VecSet<T> {
    fn extend<I: IntoIterator<Item = T>>(&mut self, iter: I) {
        for item in iter {
            self.insert(item);
        }
    }
}

impl<T: Serialize> Serialize for VecSet<T> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_seq(self.items.iter())
    }
}

impl<'de, T: Ord + Deserialize<'de>> Deserialize<'de> for VecSet<T> {
    /// As a `BTreeSet` deserializes (a sequence; of equal items the first
    /// is kept), straight into the vector.
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        Ok(Self::from_items(Vec::<T>::deserialize(d)?))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        /// Any sequence of inserts and removes leaves a `VecMap` equal, entry
        /// for entry and in the same order, to a `BTreeMap` given the same
        /// sequence, with the same JSON.
        #[test]
        fn vec_map_behaves_as_a_btree_map(ops in proptest::collection::vec((any::<bool>(), 0u8..20, any::<u16>()), 0..200)) {
            let mut ours = VecMap::new();
            let mut theirs = BTreeMap::new();
            for (insert, k, v) in ops {
                if insert {
                    prop_assert_eq!(ours.insert(k, v), theirs.insert(k, v));
                } else {
                    prop_assert_eq!(ours.remove(&k), theirs.remove(&k));
                }
                prop_assert_eq!(ours.len(), theirs.len());
            }
            prop_assert!(ours.iter().eq(theirs.iter()));
            prop_assert_eq!(serde_json::to_string(&ours).unwrap(), serde_json::to_string(&theirs).unwrap());
            let back: VecMap<u8, u16> = serde_json::from_str(&serde_json::to_string(&theirs).unwrap()).unwrap();
            prop_assert_eq!(back, ours);
        }

        /// The same for `VecSet` against `BTreeSet`.
        #[test]
        fn vec_set_behaves_as_a_btree_set(ops in proptest::collection::vec((any::<bool>(), 0u8..20), 0..200)) {
            let mut ours = VecSet::new();
            let mut theirs = BTreeSet::new();
            for (insert, k) in ops {
                if insert {
                    prop_assert_eq!(ours.insert(k), theirs.insert(k));
                } else {
                    prop_assert_eq!(ours.remove(&k), theirs.remove(&k));
                }
                prop_assert_eq!(ours.contains(&k), theirs.contains(&k));
            }
            prop_assert!(ours.iter().eq(theirs.iter()));
            prop_assert_eq!(serde_json::to_string(&ours).unwrap(), serde_json::to_string(&theirs).unwrap());
        }

        /// Collected or deserialized from entries in any order, repeated
        /// keys included, a `VecMap` is what a `BTreeMap` would be (of equal
        /// keys the last value wins), in postcard and in JSON; a `VecSet`
        /// likewise (the first of equal items is kept).
        #[test]
        fn vec_map_and_set_collect_and_decode_as_btree_ones(entries in proptest::collection::vec((0u8..20, any::<u16>()), 0..60)) {
            let theirs: BTreeMap<u8, u16> = entries.iter().copied().collect();
            let ours: VecMap<u8, u16> = entries.iter().copied().collect();
            prop_assert!(ours.iter().eq(theirs.iter()));
            prop_assert_eq!(ours.entries.capacity(), ours.len());
            // A map with repeated keys, as a forged input could hold.
            let json = format!("{{{}}}", entries.iter().map(|(k, v)| format!("\"{k}\":{v}")).collect::<Vec<_>>().join(","));
            let from_json: VecMap<u8, u16> = serde_json::from_str(&json).unwrap();
            prop_assert_eq!(&from_json, &ours);
            let bytes = postcard::to_stdvec(&RepeatedMap(&entries)).unwrap();
            let from_postcard: VecMap<u8, u16> = postcard::from_bytes(&bytes).unwrap();
            prop_assert_eq!(&from_postcard, &ours);
            let items: Vec<u8> = entries.iter().map(|(k, _)| *k).collect();
            let set: VecSet<u8> = items.iter().copied().collect();
            prop_assert!(set.iter().eq(items.iter().collect::<BTreeSet<_>>()));
            let from_bytes: VecSet<u8> = postcard::from_bytes(&postcard::to_stdvec(&items).unwrap()).unwrap();
            prop_assert_eq!(from_bytes, set);
        }
    }

    /// Entries serialized as a map as they are, repeats and disorder kept.
    struct RepeatedMap<'a>(&'a [(u8, u16)]);

    impl Serialize for RepeatedMap<'_> {
        fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
            s.collect_map(self.0.iter().map(|(k, v)| (k, v)))
        }
    }

    #[test]
    fn an_emptied_collection_gives_its_allocation_back() {
        let mut map = VecMap::new();
        map.insert(1u8, 2u8);
        map.remove(&1);
        assert_eq!(map.entries.capacity(), 0);
        let mut set = VecSet::new();
        set.insert(1u8);
        set.remove(&1);
        assert_eq!(set.items.capacity(), 0);
    }
}
