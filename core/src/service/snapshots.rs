//! Snapshots: when one is due, and the sealed form they are stored in.
//!
//! A snapshot is an [`Organization`] in a compact binary form (postcard;
//! `snapshot_format.rs`) in which every user's profile and device names —
//! their personal data — are sealed under that user's data key, exactly as
//! personal data is sealed in events, and bound to the snapshot's place
//! (organization, user, version). The email index is left out and rebuilt
//! on load (its keys are emails). So shredding a user's key erases them
//! from every snapshot at once, whenever and by whomever the snapshot was
//! written: no snapshot ever needs deleting, and no race between a snapshot
//! writer and a deletion can store a deleted user in clear.
//!
//! Snapshots of older schemas (1: JSON with profiles in clear; 2: JSON with
//! sealed profiles; 3 to 6: the binary form with fewer fields, or
//! timestamps as text) are ignored on load — the stream is replayed
//! instead, and the next snapshot due replaces them — and the Postgres
//! migration that introduced schema 3 removed those of schemas 1 and 2.

use super::snapshot_format::{self, Opened};
use super::{CommandService, ServiceError};
use crate::erasure::{self, DataKey};
use crate::ids::{OrgId, UserId};
use crate::model::Organization;
use crate::store::{Snapshot, Store, StoreError};

/// Schema version of stored snapshots. Bump it when the state's shape
/// changes: older snapshots are then ignored and the stream replayed.
/// 2: profiles sealed under their users' keys, no email index (JSON).
/// 3: the same, in postcard's binary form, one sealed part per user.
/// 4: profiles hold the identity provider's id (`external_id`).
/// 5: profiles hold the sign-in name (`sign_in_name`).
/// 6: users carry the versions that created and last changed them.
/// 7: timestamps as seconds and nanoseconds, invitations as a sequence.
pub const SNAPSHOT_SCHEMA_VERSION: u32 = 7;

/// Whether a snapshot is due: at least `every` events since the last one at
/// `snapshot_at`, and at least `per_entity` per entity of the organization
/// (so that the cost of snapshots per event stays flat as it grows). Pure.
pub(crate) fn snapshot_due(
    state: &Organization,
    snapshot_at: u64,
    every: u64,
    per_entity: u64,
) -> bool {
    if every == 0 {
        return false;
    }
    let since = state.version.saturating_sub(snapshot_at);
    since >= every.max(per_entity.saturating_mul(state.entity_count()))
}

const PLACE_PREFIX: &[u8] = b"switchboard/snapshot/v3";
const PLACE_LEN: usize = PLACE_PREFIX.len() + 40;

/// The associated data that binds a sealed personal part to its snapshot.
/// On the stack: this runs once per user sealed or opened.
fn place(org: OrgId, version: u64, subject: UserId) -> [u8; PLACE_LEN] {
    let mut aad = [0u8; PLACE_LEN];
    let (prefix, rest) = aad.split_at_mut(PLACE_PREFIX.len());
    prefix.copy_from_slice(PLACE_PREFIX);
    rest[..16].copy_from_slice(org.as_uuid().as_bytes());
    rest[16..32].copy_from_slice(subject.as_uuid().as_bytes());
    rest[32..].copy_from_slice(&version.to_be_bytes());
    aad
}

fn encode_failed(e: impl std::fmt::Display) -> ServiceError {
    StoreError::InvalidRequest {
        reason: format!("the state could not be encoded as a snapshot: {e}"),
    }
    .into()
}

impl<S: Store> CommandService<S> {
    /// Seals `state` into a snapshot: each user's personal data under their
    /// key (a key is created for a user who has personal data but none yet
    /// — a history imported from before sealing; a user whose key was
    /// shredded is written erased). Cost: the organization's size, plus one
    /// key look-up per 1 000 users.
    ///
    /// `state` must be the fold of the organization's stream up to its
    /// version (as [`CommandService::load_at_version`] returns it).
    pub async fn seal_snapshot(&self, state: &Organization) -> Result<Snapshot, ServiceError> {
        let with_personal: Vec<UserId> = state
            .users
            .values()
            .filter(|u| u.profile.is_some() || !u.devices.is_empty())
            .map(|u| u.id)
            .collect();
        let mut ring = self
            .load_ring(state.id, with_personal.clone())
            .await?
            .into_keys();
        for subject in &with_personal {
            if !ring.contains_key(subject) {
                let candidate = DataKey::from_bytes(self.secrets.secret());
                if let Some(key) = self.store.create_key(state.id, *subject, candidate).await? {
                    ring.insert(*subject, key);
                }
            }
        }
        let bytes = snapshot_format::encode(state, |subject, plain| {
            let key = ring.get(&subject)?;
            let aad = place(state.id, state.version, subject);
            erasure::seal_bytes(key, &self.secrets.secret(), &aad, plain)
        })
        .map_err(encode_failed)?;
        Ok(Snapshot {
            stream: state.id,
            version: state.version,
            schema_version: SNAPSHOT_SCHEMA_VERSION,
            state: bytes,
        })
    }

    /// Opens a sealed snapshot: personal data whose key is gone reads as
    /// erased. `None` when the snapshot is not of this schema or not of
    /// `org`, or does not decode or open (the caller then replays: the log
    /// is the truth).
    pub(crate) async fn open_snapshot(
        &self,
        org: OrgId,
        snapshot: Snapshot,
    ) -> Result<Option<Organization>, ServiceError> {
        if snapshot.schema_version != SNAPSHOT_SCHEMA_VERSION || snapshot.stream != org {
            return Ok(None);
        }
        let version = snapshot.version;
        let Some(decoded) = snapshot_format::decode(&snapshot.state) else {
            tracing::warn!(%org, version, "snapshot does not decode; replaying instead");
            return Ok(None);
        };
        if decoded.place() != (org, version) {
            return Ok(None);
        }
        let keys = self
            .load_sorted_keys(org, decoded.sealed_subjects())
            .await?;
        let state = decoded.into_state(|subject, nonce, sealed, plain| {
            let Ok(at) = keys.binary_search_by_key(&subject, |(id, _)| *id) else {
                return Opened::KeyGone;
            };
            let aad = place(org, version, subject);
            if erasure::open_bytes_into(&keys[at].1, nonce, &aad, sealed, plain) {
                Opened::Plain
            } else {
                Opened::Failed
            }
        });
        if state.is_none() {
            tracing::warn!(%org, version, "snapshot does not open; replaying instead");
        }
        Ok(state)
    }

    /// The live keys of `subjects`, sorted by user: looked up by binary
    /// search, which costs less than hashing every id into a map and again
    /// out of it.
    async fn load_sorted_keys(
        &self,
        org: OrgId,
        subjects: Vec<UserId>,
    ) -> Result<Vec<(UserId, DataKey)>, ServiceError> {
        let mut keys = Vec::with_capacity(subjects.len());
        self.load_keys_into(org, subjects, |chunk| keys.extend(chunk))
            .await?;
        keys.sort_unstable_by_key(|(id, _)| *id);
        Ok(keys)
    }

    /// Seals and saves a snapshot of `state`, which must be the fold of the
    /// organization's stream up to its version (tools and benches that
    /// build states themselves; services use [`CommandService::snapshot`]).
    pub async fn write_snapshot(&self, state: &Organization) -> Result<(), ServiceError> {
        let snapshot = self.seal_snapshot(state).await?;
        self.store.save_snapshot(snapshot).await?;
        Ok(())
    }

    /// The state from the newest usable snapshot at or below `at_most`, or empty.
    pub(crate) async fn load_snapshot_or_empty(
        &self,
        org: OrgId,
        at_most: Option<u64>,
    ) -> Result<Organization, ServiceError> {
        if let Some(snap) = self.store.load_snapshot(org, at_most).await? {
            if let Some(state) = self.open_snapshot(org, snap).await? {
                return Ok(state);
            }
        }
        Ok(Organization::empty(org))
    }
}
