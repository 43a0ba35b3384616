//! # switchboard
//!
//! The directory of a business-communication platform — organizations,
//! accounts, users, roles, phone numbers, teams, invitations and the work users
//! own — kept as an append-only event log. Every change is a command checked
//! against business rules; it yields events or a typed error naming every
//! blocker. State is the fold of the events, so any past state can be replayed.
//!
//! This facade re-exports [`switchboard_core`] and, behind features, the stores
//! (`memory`, on by default; `postgres`). It also provides the production
//! sources of time, ids and secrets that the pure core asks its caller for.
//!
//! ```
//! use std::sync::Arc;
//! use switchboard::memory::MemoryStore;
//! use switchboard::service::{CommandRequest, CommandService};
//! use switchboard::system::{OsSecrets, SystemClock, UuidV7Ids};
//! use switchboard::{Actor, Command, CommandId, IdSource, OrgId};
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let ids = Arc::new(UuidV7Ids);
//! let service = CommandService::new(MemoryStore::new(), Arc::new(SystemClock), ids.clone(), Arc::new(OsSecrets));
//! let org = OrgId::from_uuid(ids.next_id());
//! let created = service
//!     .handle(CommandRequest::new(
//!         org,
//!         CommandId::from_uuid(ids.next_id()),
//!         Actor::System,
//!         Command::CreateOrganization {
//!             name: "Northwind".into(),
//!             root_account_name: "Northwind HQ".into(),
//!             owner_email: "olivia@northwind.example".into(),
//!             owner_name: "Olivia Owner".into(),
//!             policies: None,
//!         },
//!     ))
//!     .await?;
//! assert_eq!(created.version, 1);
//! # Ok(()) }
//! ```
#![forbid(unsafe_code)]
#![warn(missing_docs)]

pub use switchboard_core as core;
pub use switchboard_core::*;

#[cfg(feature = "memory")]
pub use switchboard_store_memory as memory;
#[cfg(feature = "postgres")]
pub use switchboard_store_postgres as postgres;

/// Production sources of time, ids, secrets and retry pauses (the core never
/// reads a clock, draws random numbers or sleeps itself).
pub mod system {
    use switchboard_core::{Clock, IdSource, Pause, SecretSource};

    /// Sleeps on the tokio timer between attempts of a command that met a
    /// version conflict (see `ServiceConfig::retry_base_delay`). Needs a
    /// tokio runtime with the timer enabled.
    ///
    /// ```
    /// use std::sync::Arc;
    /// use switchboard::memory::MemoryStore;
    /// use switchboard::service::CommandService;
    /// use switchboard::system::{OsSecrets, SystemClock, TokioPause, UuidV7Ids};
    ///
    /// let service = CommandService::new(MemoryStore::new(), Arc::new(SystemClock), Arc::new(UuidV7Ids), Arc::new(OsSecrets))
    ///     .with_pause(Arc::new(TokioPause));
    /// ```
    #[derive(Clone, Copy, Debug, Default)]
    pub struct TokioPause;

    #[async_trait::async_trait]
    impl Pause for TokioPause {
        async fn pause(&self, duration: std::time::Duration) {
            tokio::time::sleep(duration).await;
        }
    }

    /// Runs background tasks (snapshots written off the command path) on the
    /// tokio runtime of the caller; outside a runtime a task is not started
    /// (the snapshot is then skipped, which costs only speed).
    ///
    /// ```
    /// use std::sync::Arc;
    /// use switchboard::system::TokioSpawn;
    /// # fn demo<S: switchboard::store::Store + Clone + 'static>(service: switchboard::service::CommandService<S>) {
    /// let service = service.with_background_snapshots(Arc::new(TokioSpawn));
    /// # }
    /// ```
    #[derive(Clone, Copy, Debug, Default)]
    pub struct TokioSpawn;

    impl switchboard_core::service::Spawn for TokioSpawn {
        fn spawn(&self, task: switchboard_core::service::BackgroundTask) -> bool {
            match tokio::runtime::Handle::try_current() {
                Ok(runtime) => {
                    drop(runtime.spawn(task));
                    true
                }
                Err(_) => false,
            }
        }
    }

    /// The system's wall clock, in UTC.
    #[derive(Clone, Copy, Debug, Default)]
    pub struct SystemClock;

    impl Clock for SystemClock {
        fn now(&self) -> chrono::DateTime<chrono::Utc> {
            chrono::Utc::now()
        }
    }

    /// Time-ordered UUID v7 ids.
    #[derive(Clone, Copy, Debug, Default)]
    pub struct UuidV7Ids;

    impl IdSource for UuidV7Ids {
        fn next_id(&self) -> uuid::Uuid {
            uuid::Uuid::now_v7()
        }
    }

    /// Secrets from the operating system's random number generator.
    #[derive(Clone, Copy, Debug, Default)]
    pub struct OsSecrets;

    impl SecretSource for OsSecrets {
        fn secret(&self) -> [u8; 32] {
            let mut out = [0u8; 32];
            // The OS generator does not fail on supported platforms; if it
            // ever did, issuing a predictable token would be worse than
            // stopping, so this is the one deliberate panic of the library.
            getrandom::fill(&mut out)
                .expect("the operating system's random number generator failed");
            out
        }
    }
}

/// A store behind a pointer, so that the store's type does not leak into the
/// application's types: `CommandService<SharedStore>` is one type whether
/// the store is the memory store or PostgreSQL.
pub type SharedStore = std::sync::Arc<dyn switchboard_core::store::Store>;

/// A command service with the production sources — the system clock, UUID v7
/// ids, the operating system's randomness for secrets, the tokio timer
/// between conflicting attempts, snapshots written in tokio tasks off the
/// command path ([`system::TokioSpawn`]) — and the default configuration.
/// The common case in one line; [`ServiceBuilder`] to replace one of them.
///
/// ```
/// use std::sync::Arc;
/// use switchboard::memory::MemoryStore;
/// use switchboard::{production_service, SharedStore};
///
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() {
/// let service = production_service(MemoryStore::new());
/// // Or over a type-erased store, so the application's state type does not
/// // name the store:
/// let store: SharedStore = Arc::new(MemoryStore::new());
/// let shared: switchboard::service::CommandService<SharedStore> = production_service(store);
/// # let _ = (service, shared);
/// # }
/// ```
pub fn production_service<S: switchboard_core::store::Store + Clone + 'static>(
    store: S,
) -> service::CommandService<S> {
    ServiceBuilder::new(store).build()
}

/// Builds a [`service::CommandService`] from the production defaults
/// ([`system::SystemClock`], [`system::UuidV7Ids`], [`system::OsSecrets`],
/// [`system::TokioPause`], snapshots written by [`system::TokioSpawn`] off the
/// command path, the default [`service::ServiceConfig`]), replacing only what
/// the caller names.
///
/// ```
/// use std::sync::Arc;
/// use switchboard::memory::MemoryStore;
/// use switchboard::service::ServiceConfig;
/// use switchboard::{Clock, ServiceBuilder};
///
/// /// A clock an hour ahead of the system's (say, to test expiries).
/// struct Ahead;
/// impl Clock for Ahead {
///     fn now(&self) -> chrono::DateTime<chrono::Utc> {
///         chrono::Utc::now() + chrono::Duration::hours(1)
///     }
/// }
///
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() {
/// let service = ServiceBuilder::new(MemoryStore::new())
///     .clock(Arc::new(Ahead))
///     .config(ServiceConfig { max_attempts: 3, ..ServiceConfig::default() })
///     .build();
/// assert_eq!(service.config().max_attempts, 3);
/// # }
/// ```
pub struct ServiceBuilder<S> {
    store: S,
    clock: std::sync::Arc<dyn Clock>,
    ids: std::sync::Arc<dyn IdSource>,
    secrets: std::sync::Arc<dyn SecretSource>,
    pause: std::sync::Arc<dyn Pause>,
    spawn: Option<std::sync::Arc<dyn service::Spawn>>,
    config: service::ServiceConfig,
}

impl<S: switchboard_core::store::Store + Clone + 'static> ServiceBuilder<S> {
    /// The production defaults over `store`.
    pub fn new(store: S) -> Self {
        use std::sync::Arc;
        Self {
            store,
            clock: Arc::new(system::SystemClock),
            ids: Arc::new(system::UuidV7Ids),
            secrets: Arc::new(system::OsSecrets),
            pause: Arc::new(system::TokioPause),
            spawn: Some(Arc::new(system::TokioSpawn)),
            config: service::ServiceConfig::default(),
        }
    }

    /// Another source of time.
    pub fn clock(mut self, clock: std::sync::Arc<dyn Clock>) -> Self {
        self.clock = clock;
        self
    }

    /// Another source of ids.
    pub fn ids(mut self, ids: std::sync::Arc<dyn IdSource>) -> Self {
        self.ids = ids;
        self
    }

    /// Another source of secrets. Token and data-key nonces are only as
    /// unpredictable as this source.
    pub fn secrets(mut self, secrets: std::sync::Arc<dyn SecretSource>) -> Self {
        self.secrets = secrets;
        self
    }

    /// Another wait between conflicting attempts.
    pub fn pause(mut self, pause: std::sync::Arc<dyn Pause>) -> Self {
        self.pause = pause;
        self
    }

    /// Another way to run snapshot writes off the command path (a runtime
    /// other than tokio, or a queue a test drains by hand).
    pub fn background_snapshots(mut self, spawner: std::sync::Arc<dyn service::Spawn>) -> Self {
        self.spawn = Some(spawner);
        self
    }

    /// Snapshots written by the command that crosses a snapshot point, on
    /// its own path (no task is spawned; that command waits for the write).
    pub fn snapshots_on_command_path(mut self) -> Self {
        self.spawn = None;
        self
    }

    /// Another configuration (out-of-range values are clamped).
    pub fn config(mut self, config: service::ServiceConfig) -> Self {
        self.config = config;
        self
    }

    /// The service.
    pub fn build(self) -> service::CommandService<S> {
        let service = service::CommandService::with_config(
            self.store,
            self.clock,
            self.ids,
            self.secrets,
            self.config,
        )
        .with_pause(self.pause);
        match self.spawn {
            Some(spawner) => service.with_background_snapshots(spawner),
            None => service,
        }
    }
}

/// The README's examples, compiled as doc tests so they stay true.
#[cfg(doctest)]
#[doc = include_str!("../README.md")]
pub struct ReadmeDoctests;
