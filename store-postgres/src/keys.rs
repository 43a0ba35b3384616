//! [`KeyStore`] on PostgreSQL: per-user data keys in `switchboard.data_keys`
//! (migration 0003), the only table whose rows change after insert. Deleting
//! a key sets it to NULL and keeps a tombstone, so it is never created again
//! and every sealed copy of the user's personal data stays unreadable (R-LIFE-06).

use crate::error::corrupt;
use crate::PostgresStore;
use async_trait::async_trait;
use std::collections::HashMap;
use switchboard_core::erasure::{validate_key_request, DataKey, KeyStore};
use switchboard_core::ids::{OrgId, UserId};
use switchboard_core::store::StoreError;
use uuid::Uuid;

/// Inserts the candidate unless a row exists, and returns the row's key
/// (NULL when erased). Under READ COMMITTED a concurrent insert committed
/// after this statement's snapshot makes it return no row: the caller re-runs it.
const CREATE_KEY: &str = "\
WITH inserted AS (
    INSERT INTO switchboard.data_keys (org_id, user_id, key)
    VALUES ($1, $2, $3)
    ON CONFLICT (org_id, user_id) DO NOTHING
    RETURNING key
)
SELECT key FROM inserted
UNION ALL
SELECT key FROM switchboard.data_keys WHERE org_id = $1 AND user_id = $2
LIMIT 1";

const LOAD_KEYS: &str = "\
SELECT user_id, key FROM switchboard.data_keys
WHERE org_id = $1 AND user_id = ANY($2) AND key IS NOT NULL";

const DELETE_KEY: &str = "\
INSERT INTO switchboard.data_keys (org_id, user_id, key, erased_at)
VALUES ($1, $2, NULL, now())
ON CONFLICT (org_id, user_id)
DO UPDATE SET key = NULL, erased_at = coalesce(switchboard.data_keys.erased_at, now())";

fn key_from(bytes: Option<Vec<u8>>) -> Result<Option<DataKey>, StoreError> {
    match bytes {
        None => Ok(None),
        Some(b) => <[u8; 32]>::try_from(b.as_slice())
            .map(|k| Some(DataKey::from_bytes(k)))
            // Never print the bytes, only their length.
            .map_err(|_| corrupt(format!("a data key of {} bytes", b.len()))),
    }
}

#[async_trait]
impl KeyStore for PostgresStore {
    async fn create_key(
        &self,
        org: OrgId,
        user: UserId,
        candidate: DataKey,
    ) -> Result<Option<DataKey>, StoreError> {
        let bytes: Vec<u8> = candidate.expose_bytes().to_vec();
        for _ in 0..3 {
            let rows = self
                .query(CREATE_KEY, &[&org.as_uuid(), &user.as_uuid(), &bytes])
                .await?;
            if let Some(r) = rows.first() {
                return key_from(r.try_get(0).map_err(corrupt)?);
            }
        }
        Err(StoreError::Unavailable {
            reason: "the data key row kept racing with another writer".into(),
            maybe_committed: false,
            source: None,
        })
    }

    async fn load_keys(
        &self,
        org: OrgId,
        users: &[UserId],
    ) -> Result<HashMap<UserId, DataKey>, StoreError> {
        validate_key_request(users)?;
        if users.is_empty() {
            return Ok(HashMap::new());
        }
        let ids: Vec<Uuid> = users.iter().map(UserId::as_uuid).collect();
        let rows = self.query(LOAD_KEYS, &[&org.as_uuid(), &ids]).await?;
        let mut out = HashMap::with_capacity(rows.len());
        for r in &rows {
            let user = UserId::from_uuid(r.try_get(0).map_err(corrupt)?);
            if let Some(key) = key_from(r.try_get(1).map_err(corrupt)?)? {
                out.insert(user, key);
            }
        }
        Ok(out)
    }

    async fn delete_key(&self, org: OrgId, user: UserId) -> Result<(), StoreError> {
        self.query(DELETE_KEY, &[&org.as_uuid(), &user.as_uuid()])
            .await?;
        Ok(())
    }
}
