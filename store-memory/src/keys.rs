//! [`KeyStore`] for the memory store: per-user data keys for crypto-shredding
//! (R-LIFE-06). Kept apart from the event log; deleting a key drops its bytes
//! and leaves a tombstone so that it is never created again.

use crate::MemoryStore;
use async_trait::async_trait;
use std::collections::HashMap;
use std::sync::Mutex;
use switchboard_core::erasure::{validate_key_request, DataKey, KeyStore};
use switchboard_core::ids::{OrgId, UserId};
use switchboard_core::store::{KeyChange, StoreError};

/// `Some(key)` while the user's data is readable, `None` (a tombstone
/// without key bytes) once erased.
pub(crate) type KeyTable = HashMap<(OrgId, UserId), Option<DataKey>>;

/// The key table behind its lock.
#[derive(Default)]
pub(crate) struct Keys {
    keys: Mutex<KeyTable>,
}

/// Checks an append's key changes against the table without applying them:
/// a creation for a subject that has a row (key or tombstone) refuses the
/// append, since its events are sealed under a key that would not be theirs.
pub(crate) fn check(table: &KeyTable, org: OrgId, changes: &[KeyChange]) -> Result<(), StoreError> {
    for change in changes {
        if let KeyChange::Create { subject, .. } = change {
            if table.contains_key(&(org, *subject)) {
                return Err(StoreError::KeyExists { subject: *subject });
            }
        }
    }
    Ok(())
}

/// Applies checked key changes: every creation, then every shred (so a
/// subject both created and shredded by one append ends as a tombstone,
/// whatever the order of the two in the request).
pub(crate) fn apply(table: &mut KeyTable, org: OrgId, changes: Vec<KeyChange>) {
    let mut shreds = Vec::new();
    for change in changes {
        match change {
            KeyChange::Create { subject, key } => {
                table.insert((org, subject), Some(key));
            }
            KeyChange::Shred { subject } => shreds.push(subject),
        }
    }
    for subject in shreds {
        table.insert((org, subject), None);
    }
}

impl Keys {
    pub(crate) fn lock(&self) -> std::sync::MutexGuard<'_, KeyTable> {
        // Every operation is a single map call: a poisoned lock still guards
        // consistent data.
        self.keys.lock().unwrap_or_else(|p| p.into_inner())
    }
}

#[async_trait]
impl KeyStore for MemoryStore {
    async fn create_key(
        &self,
        org: OrgId,
        user: UserId,
        candidate: DataKey,
    ) -> Result<Option<DataKey>, StoreError> {
        Ok(self
            .inner
            .keys
            .lock()
            .entry((org, user))
            .or_insert(Some(candidate))
            .clone())
    }

    async fn load_keys(
        &self,
        org: OrgId,
        users: &[UserId],
    ) -> Result<HashMap<UserId, DataKey>, StoreError> {
        validate_key_request(users)?;
        // Sized for every id asked (at most `MAX_KEYS_PER_LOAD`): a snapshot
        // load asks for users that nearly all have a key, and growing the
        // map from empty rehashed it about ten times per 1 000 ids.
        let mut found = HashMap::with_capacity(users.len());
        let keys = self.inner.keys.lock();
        found.extend(
            users
                .iter()
                .filter_map(|u| Some((*u, keys.get(&(org, *u))?.clone()?))),
        );
        Ok(found)
    }

    async fn delete_key(&self, org: OrgId, user: UserId) -> Result<(), StoreError> {
        self.inner.keys.lock().insert((org, user), None);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use uuid::Uuid;

    #[tokio::test]
    async fn r_life_06_a_deleted_key_is_gone_for_ever() {
        let store = MemoryStore::new();
        let org = OrgId::from_uuid(Uuid::from_u128(1));
        let (a, b) = (
            UserId::from_uuid(Uuid::from_u128(2)),
            UserId::from_uuid(Uuid::from_u128(3)),
        );
        let k = store.create_key(org, a, DataKey::from_bytes([1; 32])).await;
        assert_eq!(k, Ok(Some(DataKey::from_bytes([1; 32]))));
        // A second create returns the first key (two writers agree).
        let k = store.create_key(org, a, DataKey::from_bytes([2; 32])).await;
        assert_eq!(k, Ok(Some(DataKey::from_bytes([1; 32]))));
        store
            .create_key(org, b, DataKey::from_bytes([3; 32]))
            .await
            .ok();
        assert_eq!(store.load_keys(org, &[a, b]).await.map(|k| k.len()), Ok(2));
        store.delete_key(org, a).await.ok();
        let left = store.load_keys(org, &[a, b]).await.unwrap_or_default();
        assert_eq!(left.keys().copied().collect::<Vec<_>>(), vec![b]);
        assert_eq!(
            store.create_key(org, a, DataKey::from_bytes([4; 32])).await,
            Ok(None)
        );
        // Keys are per organization.
        let other = OrgId::from_uuid(Uuid::from_u128(9));
        assert!(store
            .load_keys(other, &[b])
            .await
            .unwrap_or_default()
            .is_empty());
        let too_many = vec![a; switchboard_core::erasure::MAX_KEYS_PER_LOAD + 1];
        assert!(store.load_keys(org, &too_many).await.is_err());
    }
}
