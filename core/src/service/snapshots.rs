//! Snapshots: when one is due, and the sealed form they are stored in.
//!
//! A snapshot is the JSON of an [`Organization`] in which every user's
//! profile and device names — their personal data — are sealed under that
//! user's data key,
//! exactly as personal data is sealed in events, and bound to the snapshot's
//! place (organization, user, version). The email index is left out and
//! rebuilt on load (its keys are emails). So shredding a user's key erases
//! them from every snapshot at once, whenever and by whomever the snapshot
//! was written: no snapshot ever needs deleting, and no race between a
//! snapshot writer and a deletion can store a deleted user in clear.
//!
//! Snapshots of schema 1 (profiles in clear) are ignored on load — the
//! stream is replayed instead — and the Postgres migration that introduced
//! schema 2 removed them.

use super::{CommandService, ServiceError};
use crate::erasure::{self, DataKey, KeyRing, SEALED_TAG};
use crate::ids::{OrgId, UserId};
use crate::model::{Organization, Profile, UserStatus};
use crate::store::{Snapshot, Store, StoreError};
use serde_json::Value;

/// Schema version of stored snapshots. Bump it when the state's shape
/// changes: older snapshots are then ignored and the stream replayed.
/// 2: profiles sealed under their users' keys, no email index.
pub const SNAPSHOT_SCHEMA_VERSION: u32 = 2;

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

/// The associated data that binds a sealed profile to its snapshot.
fn place(org: OrgId, version: u64, subject: UserId) -> Vec<u8> {
    let mut aad = Vec::with_capacity(24 + 40);
    aad.extend_from_slice(b"switchboard/snapshot/v1");
    aad.extend_from_slice(org.as_uuid().as_bytes());
    aad.extend_from_slice(subject.as_uuid().as_bytes());
    aad.extend_from_slice(&version.to_be_bytes());
    aad
}

/// Beside each sealed profile, the fields of it that events record in clear
/// (not personal data): kept so that a profile erased after the snapshot
/// reads as replaying the erased events would give it.
const PUBLIC_PROFILE: &str = "profile_public";

/// The clear fields of a profile's JSON.
fn public_part(profile: &Value) -> Value {
    let mut public = serde_json::Map::new();
    for field in ["default_country", "notifications"] {
        if let Some(v) = profile.get(field) {
            public.insert(field.into(), v.clone());
        }
    }
    Value::Object(public)
}

/// A profile whose personal data is erased: the fold of events whose
/// sealed fields read as empty (an empty email, no name, mobile, job title
/// or picture), with the fields recorded in clear.
fn erased_profile(public: Option<Value>) -> Value {
    let mut profile = serde_json::to_value(Profile::with_email(""))
        .unwrap_or_else(|_| Value::Object(serde_json::Map::new()));
    if let (Value::Object(p), Some(Value::Object(public))) = (&mut profile, public) {
        p.extend(public);
    }
    profile
}

fn encode_failed(e: impl std::fmt::Display) -> ServiceError {
    StoreError::InvalidRequest {
        reason: format!("the state could not be encoded as a snapshot: {e}"),
    }
    .into()
}

impl<S: Store> CommandService<S> {
    /// Seals `state` into a snapshot: each profile under its user's key (a
    /// key is created for a user who has personal data but none yet — a
    /// history imported from before sealing; a user whose key was shredded
    /// is written erased). Cost: the organization's size, plus one key
    /// look-up per 1 000 users.
    ///
    /// `state` must be the fold of the organization's stream up to its
    /// version (as [`CommandService::load_at_version`] returns it).
    pub async fn seal_snapshot(&self, state: &Organization) -> Result<Snapshot, ServiceError> {
        let with_profile: Vec<UserId> = state
            .users
            .values()
            .filter(|u| u.profile.is_some() || !u.devices.is_empty())
            .map(|u| u.id)
            .collect();
        let mut ring = self
            .load_ring(state.id, with_profile.clone())
            .await?
            .into_keys();
        for subject in &with_profile {
            if !ring.contains_key(subject) {
                let candidate = DataKey::from_bytes(self.secrets.secret());
                if let Some(key) = self.store.create_key(state.id, *subject, candidate).await? {
                    ring.insert(*subject, key);
                }
            }
        }
        let mut json = serde_json::to_value(state).map_err(encode_failed)?;
        let Value::Object(root) = &mut json else {
            return Err(encode_failed("the state is not a JSON object"));
        };
        root.remove("user_by_email");
        let Some(Value::Object(users)) = root.get_mut("users") else {
            return Err(encode_failed("the state has no user map"));
        };
        for (id, user) in users.iter_mut() {
            let Value::Object(user) = user else { continue };
            let subject: UserId =
                serde_json::from_value(Value::String(id.clone())).map_err(encode_failed)?;
            let key = ring.get(&subject);
            let aad = place(state.id, state.version, subject);
            let seal = |plain: &Value, erased: Value| match key {
                Some(key) => erasure::seal_bound(key, &self.secrets.secret(), subject, &aad, plain),
                None => erased,
            };
            // Device names are personal too ("Ann's laptop").
            if let Some(Value::Object(devices)) = user.get_mut("devices") {
                for device in devices.values_mut() {
                    if let Some(name) = device.get_mut("name") {
                        *name = seal(name, Value::String(String::new()));
                    }
                }
            }
            let Some(profile) = user.get_mut("profile") else {
                continue;
            };
            if profile.is_null() {
                continue;
            }
            let public = public_part(profile);
            *profile = seal(profile, Value::Null);
            user.insert(PUBLIC_PROFILE.into(), public);
        }
        Ok(Snapshot {
            stream: state.id,
            version: state.version,
            schema_version: SNAPSHOT_SCHEMA_VERSION,
            state: json,
        })
    }

    /// Opens a sealed snapshot: profiles whose key is gone read as erased.
    /// `None` when the snapshot is not of this schema or not of `org` (the
    /// caller then replays).
    pub(crate) async fn open_snapshot(
        &self,
        org: OrgId,
        snapshot: Snapshot,
    ) -> Result<Option<Organization>, ServiceError> {
        if snapshot.schema_version != SNAPSHOT_SCHEMA_VERSION || snapshot.stream != org {
            return Ok(None);
        }
        let version = snapshot.version;
        let mut json = snapshot.state;
        let Some(Value::Object(users)) = json.get_mut("users") else {
            return Ok(None);
        };
        let subjects: Vec<UserId> = users
            .values()
            .filter_map(|u| {
                let devices = u.get("devices").and_then(Value::as_object);
                u.get("profile")
                    .and_then(erasure::sealed_subject)
                    .or_else(|| {
                        devices?
                            .values()
                            .find_map(|d| d.get("name").and_then(erasure::sealed_subject))
                    })
            })
            .collect();
        let ring: KeyRing = self.load_ring(org, subjects).await?;
        // Opens one sealed value in place; `erased` where its key is gone
        // (what replaying the erased events gives). `false`: it does not
        // open, and the caller replays instead (the log is the truth).
        let open = |value: &mut Value, erased: Value| -> bool {
            if value.get(SEALED_TAG).is_none() {
                return true;
            }
            match erasure::open_bound(&ring, value, |subject| place(org, version, subject)) {
                Ok(opened) => {
                    *value = opened.unwrap_or(erased);
                    true
                }
                Err(error) => {
                    tracing::warn!(%org, version, %error, "snapshot does not open; replaying instead");
                    false
                }
            }
        };
        for user in users.values_mut() {
            let Value::Object(user) = user else { continue };
            let public = user.remove(PUBLIC_PROFILE);
            if let Some(Value::Object(devices)) = user.get_mut("devices") {
                for device in devices.values_mut() {
                    if let Some(name) = device.get_mut("name") {
                        if !open(name, Value::String(String::new())) {
                            return Ok(None);
                        }
                    }
                }
            }
            if let Some(profile) = user.get_mut("profile") {
                if !open(profile, erased_profile(public)) {
                    return Ok(None);
                }
            }
        }
        if let Value::Object(root) = &mut json {
            root.insert(
                "user_by_email".into(),
                Value::Object(serde_json::Map::new()),
            );
        }
        let Ok(mut state) = serde_json::from_value::<Organization>(json) else {
            return Ok(None);
        };
        if state.id != org || state.version != version {
            return Ok(None);
        }
        // The email index, rebuilt as `evolve` keeps it: every user whose
        // profile is readable (deleted users have none).
        for user in state.users.values() {
            if let (Some(Profile { email, .. }), false) =
                (&user.profile, user.status == UserStatus::Deleted)
            {
                state
                    .user_by_email
                    .insert(crate::validate::email_key(email), user.id);
            }
        }
        Ok(Some(state))
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
