//! What the caller brings to a decision: who acts, what time it is, and where
//! new ids and secrets come from. The core reads no clock and draws no random
//! numbers (Architecture invariant: `core` is deterministic given its inputs).

use crate::ids::{CommandId, UserId};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
#[cfg(feature = "test-util")]
use std::sync::atomic::{AtomicU64, Ordering};
#[cfg(feature = "test-util")]
use std::sync::Mutex;
use uuid::Uuid;

/// Who issues a command (R-AUTH-04). Every event records it.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Actor {
    /// A user of the organization, subject to permission checks.
    User {
        /// The acting user.
        id: UserId,
    },
    /// The platform itself (sweeps such as expiring invitations, organization creation).
    System,
    /// A support agent acting on the organization's behalf (e.g. transferring
    /// primary ownership, seed 004).
    Support {
        /// Who at support acted; bounded like every other string.
        agent: String,
    },
}

impl Actor {
    /// An actor that is a user.
    pub fn user(id: UserId) -> Self {
        Actor::User { id }
    }
    /// The acting user, if the actor is one.
    pub fn user_id(&self) -> Option<UserId> {
        match self {
            Actor::User { id } => Some(*id),
            _ => None,
        }
    }
}

impl std::fmt::Display for Actor {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Actor::User { id } => write!(f, "{id}"),
            Actor::System => f.write_str("system"),
            Actor::Support { agent } => write!(f, "support:{agent}"),
        }
    }
}

/// A source of time. The service asks it once per attempt.
///
/// ```
/// use switchboard_core::{Clock, FixedClock};
/// use chrono::{TimeZone, Utc};
/// let clock = FixedClock::new(Utc.with_ymd_and_hms(2026, 1, 1, 0, 0, 0).unwrap());
/// assert_eq!(clock.now().to_rfc3339(), "2026-01-01T00:00:00+00:00");
/// ```
pub trait Clock: Send + Sync {
    /// The current instant.
    fn now(&self) -> DateTime<Utc>;
}

/// A source of fresh ids (UUID v7 in production, a counter in tests).
///
/// ```
/// use switchboard_core::{IdSource, SequentialIds};
/// let ids = SequentialIds::new(7);
/// assert_ne!(ids.next_id(), ids.next_id());
/// ```
pub trait IdSource: Send + Sync {
    /// A new id, never returned before by this source.
    fn next_id(&self) -> Uuid;
}

/// A source of secret bytes for invitation and password-reset tokens. Only the
/// SHA-256 hash of a token is ever recorded (R-INV-03, R-LIFE-07).
///
/// ```
/// use switchboard_core::{SecretSource, SeededSecrets};
/// let s = SeededSecrets::new(1);
/// assert_ne!(s.secret(), s.secret());
/// ```
pub trait SecretSource: Send + Sync {
    /// 32 unpredictable bytes.
    fn secret(&self) -> [u8; 32];
}

/// Waits between two attempts of a command whose append met a version
/// conflict. The core has no timer (no async runtime): the caller brings one,
/// as it brings the clock. The service computes the delay (exponential, with
/// a jitter derived from the command id, see [`ServiceConfig`](crate::service::ServiceConfig));
/// the pause only waits.
///
/// With [`YieldPause`] (the default) the service only yields to the executor,
/// which is enough inside one process; services that share an organization
/// across processes should pass a real timer, such as
/// `switchboard::system::TokioPause`.
///
/// ```
/// use switchboard_core::Pause;
/// use std::time::Duration;
///
/// /// A pause that records what it was asked and returns at once.
/// #[derive(Default)]
/// struct Recording(std::sync::Mutex<Vec<Duration>>);
///
/// #[async_trait::async_trait]
/// impl Pause for Recording {
///     async fn pause(&self, duration: Duration) {
///         self.0.lock().unwrap().push(duration);
///     }
/// }
/// ```
#[async_trait::async_trait]
pub trait Pause: Send + Sync {
    /// Waits about `duration` (never more than the service's configured maximum).
    async fn pause(&self, duration: std::time::Duration);
}

/// A [`Pause`] that does not wait: it yields once to the executor, so that
/// other tasks (the one that won the race among them) can run.
#[derive(Clone, Copy, Debug, Default)]
pub struct YieldPause;

#[async_trait::async_trait]
impl Pause for YieldPause {
    async fn pause(&self, _duration: std::time::Duration) {
        YieldOnce(false).await;
    }
}

/// A future that is pending once (waking itself at once), then ready.
struct YieldOnce(bool);

impl std::future::Future for YieldOnce {
    type Output = ();
    fn poll(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<()> {
        if self.0 {
            return std::task::Poll::Ready(());
        }
        self.0 = true;
        cx.waker().wake_by_ref();
        std::task::Poll::Pending
    }
}

/// A clock that says what it was told: for tests, replays and examples.
///
/// Compiled only with the feature `test-util` (never in a production build).
#[cfg(feature = "test-util")]
#[derive(Debug)]
pub struct FixedClock {
    now: Mutex<DateTime<Utc>>,
}

#[cfg(feature = "test-util")]
impl FixedClock {
    /// A clock stopped at `now`.
    pub fn new(now: DateTime<Utc>) -> Self {
        Self {
            now: Mutex::new(now),
        }
    }
    /// Moves the clock to `now`.
    pub fn set(&self, now: DateTime<Utc>) {
        *self.now.lock().unwrap_or_else(|e| e.into_inner()) = now;
    }
    /// Moves the clock forward.
    pub fn advance(&self, by: chrono::Duration) {
        let mut now = self.now.lock().unwrap_or_else(|e| e.into_inner());
        *now += by;
    }
}

#[cfg(feature = "test-util")]
impl Clock for FixedClock {
    fn now(&self) -> DateTime<Utc> {
        *self.now.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// Deterministic ids: a seed in the high bits and a counter in the low bits,
/// shaped as UUID v7-compatible values. For tests, examples and replays.
///
/// Compiled only with the feature `test-util` (never in a production build).
#[cfg(feature = "test-util")]
#[derive(Debug)]
pub struct SequentialIds {
    seed: u64,
    next: AtomicU64,
}

#[cfg(feature = "test-util")]
impl SequentialIds {
    /// A source whose ids all carry `seed`, so two sources with different seeds never collide.
    pub fn new(seed: u64) -> Self {
        Self {
            seed,
            next: AtomicU64::new(1),
        }
    }
}

#[cfg(feature = "test-util")]
impl IdSource for SequentialIds {
    fn next_id(&self) -> Uuid {
        let n = self.next.fetch_add(1, Ordering::Relaxed);
        // Version 7 layout: 48-bit "timestamp" (here the counter keeps ids ordered),
        // version nibble 7, variant bits 10; the seed fills the random part.
        let hi: u64 = ((n & 0xFFFF_FFFF_FFFF) << 16) | 0x7000 | ((self.seed >> 52) & 0x0FFF);
        let lo: u64 = 0x8000_0000_0000_0000 | (self.seed & 0x3FFF_FFFF_FFFF_FFFF);
        Uuid::from_u64_pair(hi, lo)
    }
}

/// Deterministic "secrets" from a seed (SplitMix64). For tests only: a real
/// service passes an operating-system random source.
///
/// Compiled only with the feature `test-util` (never in a production build).
#[cfg(feature = "test-util")]
#[derive(Debug)]
pub struct SeededSecrets {
    state: AtomicU64,
}

#[cfg(feature = "test-util")]
impl SeededSecrets {
    /// A seeded source.
    pub fn new(seed: u64) -> Self {
        Self {
            state: AtomicU64::new(seed),
        }
    }
}

#[cfg(feature = "test-util")]
impl SecretSource for SeededSecrets {
    fn secret(&self) -> [u8; 32] {
        let mut out = [0u8; 32];
        for chunk in out.chunks_mut(8) {
            let mut z = self
                .state
                .fetch_add(0x9E37_79B9_7F4A_7C15, Ordering::Relaxed)
                .wrapping_add(0x9E37_79B9_7F4A_7C15);
            z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
            z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
            z ^= z >> 31;
            chunk.copy_from_slice(&z.to_le_bytes());
        }
        out
    }
}

/// Everything a decision needs besides the state and the command.
pub struct Context<'a> {
    /// Who acts (R-AUTH-04).
    pub actor: Actor,
    /// The instant the command is decided at, from the caller's clock.
    pub now: DateTime<Utc>,
    /// The command's id (idempotency key); recorded on every event.
    pub command_id: CommandId,
    /// Where new entity ids come from.
    pub ids: &'a dyn IdSource,
    /// Where token secrets come from.
    pub secrets: &'a dyn SecretSource,
}

impl std::fmt::Debug for Context<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Context")
            .field("actor", &self.actor)
            .field("now", &self.now)
            .field("command_id", &self.command_id)
            .finish_non_exhaustive()
    }
}
