//! Time travel: an organization's state as of a point in its history.
//!
//! Three kinds of point, one answer: the state folded from the stream's first
//! event up to a version `v`, loaded as the newest snapshot at or below `v`
//! plus the tail (cheap for recent points). What differs is how `v` is found:
//!
//! * [`AsOf::Version`] — `v` itself.
//! * [`AsOf::Position`] — the last event of the stream at or before a global
//!   position. Positions grow with versions inside a stream (appends to one
//!   stream are serialized by the expected-version check), so a binary search
//!   finds `v` in `O(log n)` one-event reads.
//! * [`AsOf::Instant`] — the last event of the stream whose
//!   `metadata.occurred_at` is at or before the instant. `occurred_at` comes
//!   from the callers' clocks, which may disagree, so it is not assumed to be
//!   monotonic: the stream is scanned backwards from its end, page by page,
//!   which costs the events after the instant (cheap for recent points) and
//!   is correct for any clock.

use crate::ids::OrgId;
use crate::model::Organization;
use crate::service::{CommandService, ServiceError};
use crate::store::{Position, Store, MAX_READ_PAGE};
use chrono::{DateTime, Utc};

/// A point in an organization's history.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum AsOf {
    /// After this many events of the stream (0: before the first).
    Version(u64),
    /// After every event of the stream at or before this global position.
    Position(Position),
    /// After the last event of the stream that occurred at or before this instant.
    Instant(DateTime<Utc>),
}

impl<S: Store> CommandService<S> {
    /// The organization's state as of a point in its history (snapshot + tail).
    /// A point before the first event gives the empty state (version 0); a
    /// point after the last gives the current state.
    ///
    /// ```
    /// # use switchboard_core::service::*;
    /// # use switchboard_core::audit::AsOf;
    /// # async fn demo<S: switchboard_core::store::Store>(service: &CommandService<S>, org: switchboard_core::OrgId) -> Result<(), ServiceError> {
    /// let at = chrono::DateTime::UNIX_EPOCH;
    /// let then = service.load_as_of(org, AsOf::Instant(at)).await?;
    /// assert_eq!(then.version, 0);
    /// # Ok(()) }
    /// ```
    pub async fn load_as_of(&self, org: OrgId, at: AsOf) -> Result<Organization, ServiceError> {
        let version = self.version_as_of(org, at).await?;
        self.load_at_version(org, version).await
    }

    /// The stream version a point in history stands for (see [`AsOf`]).
    pub async fn version_as_of(&self, org: OrgId, at: AsOf) -> Result<u64, ServiceError> {
        let last = self.store().stream_version(org).await?;
        match at {
            AsOf::Version(v) => Ok(v.min(last)),
            AsOf::Position(p) => self.version_at_position(org, last, p).await,
            AsOf::Instant(t) => self.version_at_instant(org, last, t).await,
        }
    }

    /// Greatest `v <= last` whose event is at or before `p` (0 if none).
    async fn version_at_position(
        &self,
        org: OrgId,
        last: u64,
        p: Position,
    ) -> Result<u64, ServiceError> {
        // Invariant: events 1..=lo are at or before p; events hi+1.. are after.
        let (mut lo, mut hi) = (0u64, last);
        while lo < hi {
            let mid = lo + (hi - lo).div_ceil(2);
            let page = self.store().read_stream(org, mid, Some(mid), 1).await?;
            let Some(r) = page.first() else {
                // The stream is shorter than it said (concurrent reads are
                // consistent, so this is corruption); answer with what exists.
                hi = mid - 1;
                continue;
            };
            if r.position <= p {
                lo = mid;
            } else {
                hi = mid - 1;
            }
        }
        Ok(lo)
    }

    /// Greatest `v <= last` whose event occurred at or before `t` (0 if none).
    async fn version_at_instant(
        &self,
        org: OrgId,
        last: u64,
        t: DateTime<Utc>,
    ) -> Result<u64, ServiceError> {
        let page_len = MAX_READ_PAGE as u64;
        let mut to = last;
        while to > 0 {
            let from = to.saturating_sub(page_len - 1).max(1);
            let page = self
                .store()
                .read_stream(org, from, Some(to), MAX_READ_PAGE)
                .await?;
            if let Some(r) = page.iter().rev().find(|r| r.metadata.occurred_at <= t) {
                return Ok(r.version);
            }
            to = from - 1;
        }
        Ok(0)
    }
}
