//! Personal data on its way to and from the store (R-LIFE-06): sealing on
//! write, with the data-key changes that commit atomically with the events,
//! and the keys to open what is read.
//!
//! Architecture invariant: a data key is created only by the append that
//! first seals data under it, and shredded only by the append that records
//! its user's deletion (or by an operator's sweep of deletions recorded
//! before keys moved into appends). So a refused, conflicting or abandoned
//! command leaves no key behind, and no caller can observe a recorded
//! deletion whose key still exists.

use super::{CommandService, ServiceError};
use crate::codec::{self, Sealing};
use crate::erasure::{DataKey, KeyRing, MAX_KEYS_PER_LOAD};
use crate::event::Event;
use crate::ids::{EventId, OrgId, UserId};
use crate::store::{EventMetadata, KeyChange, NewEvent, RecordedEvent, Store};
use std::collections::HashMap;

/// What one command has learnt about its subjects' keys from the store:
/// `Some(key)` stored, `None` erased (a tombstone). Only keys the store holds
/// go here, never a candidate of an append that has not committed.
pub(crate) type KnownKeys = HashMap<UserId, Option<DataKey>>;

/// Events ready to append, with the key changes that must commit with them.
pub(crate) struct Sealed {
    pub(crate) events: Vec<NewEvent>,
    pub(crate) keys: Vec<KeyChange>,
}

impl<S: Store> CommandService<S> {
    /// The keys needed to open the sealed personal data of `page`.
    pub(crate) async fn key_ring(
        &self,
        org: OrgId,
        page: &[RecordedEvent],
    ) -> Result<KeyRing, ServiceError> {
        let subjects: Vec<UserId> = page
            .iter()
            .flat_map(|r| codec::sealed_subjects(&r.payload))
            .collect();
        self.load_ring(org, subjects).await
    }

    /// The live keys of `subjects` (duplicates allowed), loaded in bounded chunks.
    pub(crate) async fn load_ring(
        &self,
        org: OrgId,
        subjects: Vec<UserId>,
    ) -> Result<KeyRing, ServiceError> {
        let mut ring = KeyRing::empty();
        self.load_keys_into(org, subjects, |keys| ring.extend(keys))
            .await?;
        Ok(ring)
    }

    /// Loads the live keys of `subjects` (in any order, duplicates allowed),
    /// each asked for once, in chunks of at most [`MAX_KEYS_PER_LOAD`],
    /// handing each chunk's keys to `take`.
    pub(crate) async fn load_keys_into(
        &self,
        org: OrgId,
        mut subjects: Vec<UserId>,
        mut take: impl FnMut(HashMap<UserId, DataKey>) + Send,
    ) -> Result<(), ServiceError> {
        subjects.sort_unstable();
        subjects.dedup();
        for chunk in subjects.chunks(MAX_KEYS_PER_LOAD) {
            take(self.store.load_keys(org, chunk).await?);
        }
        Ok(())
    }

    /// Encodes events for one append: personal data sealed under its
    /// subject's key, a new key for a subject that has none (a
    /// [`KeyChange::Create`] of the append), erased for a subject whose key
    /// was shredded, and a [`KeyChange::Shred`] for every user the events
    /// delete. Keys and nonces come from the caller's
    /// [`SecretSource`](crate::SecretSource): the core draws no randomness.
    /// Cost: one key look-up per subject not yet in `known`.
    pub(crate) async fn seal(
        &self,
        org: OrgId,
        events: &[(&Event, EventId, &EventMetadata)],
        known: &mut KnownKeys,
    ) -> Result<Sealed, ServiceError> {
        let unknown: Vec<UserId> = events
            .iter()
            .filter_map(|(e, _, _)| codec::personal_subject(e))
            .filter(|s| !known.contains_key(s))
            .collect();
        if !unknown.is_empty() {
            let ring = self.load_ring(org, unknown).await?;
            for (subject, key) in ring.into_keys() {
                known.insert(subject, Some(key));
            }
        }
        let mut keys = Vec::new();
        let mut candidates: HashMap<UserId, DataKey> = HashMap::new();
        let mut out = Vec::with_capacity(events.len());
        for (event, event_id, metadata) in events {
            let metadata = (*metadata).clone();
            let encoded = match codec::personal_subject(event) {
                None => codec::encode(event, *event_id, metadata)?,
                Some(subject) => {
                    let key = match known.get(&subject) {
                        Some(stored) => stored.clone(),
                        None => Some(
                            candidates
                                .entry(subject)
                                .or_insert_with(|| {
                                    let key = DataKey::from_bytes(self.secrets.secret());
                                    keys.push(KeyChange::Create {
                                        subject,
                                        key: key.clone(),
                                    });
                                    key
                                })
                                .clone(),
                        ),
                    };
                    let sealing = match &key {
                        Some(key) => Sealing::Seal {
                            key,
                            nonce: self.secrets.secret(),
                        },
                        None => Sealing::Erase,
                    };
                    codec::encode_sealed(event, org, *event_id, metadata, sealing)?
                }
            };
            out.push(encoded);
            if let Event::UserDeleted { user, .. } = event {
                keys.push(KeyChange::Shred { subject: *user });
            }
        }
        Ok(Sealed { events: out, keys })
    }

    /// After the store refused a key creation for `subject` (it has a key or
    /// a tombstone already): learns which, without creating anything (the
    /// row exists, so `create_key` only reads it).
    pub(crate) async fn learn_existing_key(
        &self,
        org: OrgId,
        subject: UserId,
        known: &mut KnownKeys,
    ) -> Result<(), ServiceError> {
        let probe = DataKey::from_bytes(self.secrets.secret());
        let key = self.store.create_key(org, subject, probe).await?;
        known.insert(subject, key);
        Ok(())
    }
}
