//! Snapshots written off the command path.
//!
//! Writing a snapshot costs the size of the organization (sealing every
//! profile and encoding every user: about a second at 100 000 users). With
//! background snapshots the command that finds one due only hands the
//! organization's id and version to a task on the caller's runtime and
//! answers at once; the task folds the organization up to that version on
//! its own (from the newest snapshot and the log, not from the cached state,
//! which stays the command path's alone) and writes the snapshot.
//!
//! Architecture invariant: no command waits for a snapshot when a spawner is
//! configured, and at most one background snapshot per organization runs at
//! a time in one service. The core has no runtime: the caller brings the
//! spawner (`switchboard::system::TokioSpawn`), as it brings the clock.

use super::{CommandService, ServiceConfig};
use crate::ids::OrgId;
use crate::store::Store;
use std::collections::HashSet;
use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Mutex};

/// A task handed to a [`Spawn`].
pub type BackgroundTask = Pin<Box<dyn Future<Output = ()> + Send + 'static>>;

/// Runs tasks in the background, on the caller's runtime. The core has no
/// async runtime of its own.
///
/// ```
/// use switchboard_core::service::{BackgroundTask, Spawn};
///
/// /// Spawns on the current tokio runtime (what `switchboard::system::TokioSpawn` does).
/// struct OnTokio;
///
/// impl Spawn for OnTokio {
///     fn spawn(&self, task: BackgroundTask) -> bool {
///         match tokio::runtime::Handle::try_current() {
///             Ok(runtime) => {
///                 runtime.spawn(task);
///                 true
///             }
///             Err(_) => false,
///         }
///     }
/// }
/// ```
pub trait Spawn: Send + Sync {
    /// Starts `task` and returns `true`, or returns `false` (dropping the
    /// task) when it cannot be started, e.g. outside a runtime.
    fn spawn(&self, task: BackgroundTask) -> bool;
}

type Job = Arc<dyn Fn(OrgId, u64) -> BackgroundTask + Send + Sync>;

/// The background writer of one service.
pub(crate) struct Background {
    spawner: Arc<dyn Spawn>,
    job: Job,
    /// Organizations with a snapshot being written.
    in_flight: Arc<Mutex<HashSet<OrgId>>>,
}

impl Background {
    /// Starts writing a snapshot of `org` at `version`, unless one is being
    /// written already. Returns whether a task was started. Cost: constant.
    pub(crate) fn start(&self, org: OrgId, version: u64) -> bool {
        // Every operation on the set is a single call: a poisoned lock
        // still guards a consistent set.
        let lock = || self.in_flight.lock().unwrap_or_else(|e| e.into_inner());
        if !lock().insert(org) {
            return false;
        }
        // Cleared however the task ends: done, panicked, or dropped
        // unstarted by a spawner that could not start it.
        let done = Done {
            in_flight: self.in_flight.clone(),
            org,
        };
        let job = (self.job)(org, version);
        let started = self.spawner.spawn(Box::pin(async move {
            let _done = done;
            job.await;
        }));
        if !started {
            tracing::warn!(%org, version, "snapshot task not started (no runtime?)");
        }
        started
    }
}

struct Done {
    in_flight: Arc<Mutex<HashSet<OrgId>>>,
    org: OrgId,
}

impl Drop for Done {
    fn drop(&mut self) {
        self.in_flight
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .remove(&self.org);
    }
}

impl<S: Store + Clone + 'static> CommandService<S> {
    /// Writes snapshots in tasks started by `spawner` instead of on the
    /// command path: the command that finds one due answers without waiting
    /// for it. The task folds the organization up to that version from the
    /// store (newest snapshot plus the log) with this service's store,
    /// clock, ids and secrets, and writes the snapshot; a failure is logged
    /// (`snapshot not saved`) and costs only speed. The policy
    /// (`snapshot_every`, `snapshot_events_per_entity`) is unchanged.
    ///
    /// ```
    /// # use switchboard_core::service::*;
    /// # use std::sync::Arc;
    /// # fn demo<S: switchboard_core::store::Store + Clone + 'static>(service: CommandService<S>, spawner: Arc<dyn Spawn>) {
    /// let service = service.with_background_snapshots(spawner);
    /// # }
    /// ```
    pub fn with_background_snapshots(mut self, spawner: Arc<dyn Spawn>) -> Self {
        let writer = Arc::new(CommandService::with_config(
            self.store.clone(),
            self.clock.clone(),
            self.ids.clone(),
            self.secrets.clone(),
            ServiceConfig {
                // The writer folds without caching and never snapshots on
                // its own path.
                snapshot_every: 0,
                cache_capacity: 1,
                ..self.config.clone()
            },
        ));
        let job: Job = Arc::new(move |org, version| {
            let writer = writer.clone();
            Box::pin(async move { writer.snapshot_at(org, version).await })
        });
        self.background = Some(Background {
            spawner,
            job,
            in_flight: Arc::new(Mutex::new(HashSet::new())),
        });
        self
    }
}

impl<S: Store> CommandService<S> {
    /// The background job: fold `org` up to `version` and save its snapshot.
    async fn snapshot_at(&self, org: OrgId, version: u64) {
        let state = match self.load_at_version(org, version).await {
            Ok(state) => state,
            Err(error) => {
                tracing::warn!(%org, version, %error, "snapshot not saved");
                return;
            }
        };
        match self.write_snapshot(&state).await {
            Ok(()) => tracing::debug!(%org, version, "snapshot saved"),
            Err(error) => tracing::warn!(%org, version, %error, "snapshot not saved"),
        }
    }
}
