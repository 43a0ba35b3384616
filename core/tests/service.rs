//! The command-handling service on the memory store: snapshots + tail, the
//! fallback to full replay, as-of-version loads, idempotent command ids and
//! retries on conflict between two service instances.

use chrono::TimeZone;
use std::sync::Arc;
use switchboard_core::erasure::{DataKey, KeyStore};
use switchboard_core::service::*;
use switchboard_core::store::{
    AppendOutcome, AppendRequest, CheckpointStore, ClaimKey, CommandRecord, EventStore, Position,
    RecordedEvent, Snapshot, SnapshotStore, StoreError,
};
use switchboard_core::*;
use switchboard_store_memory::MemoryStore;

struct Fixture {
    store: MemoryStore,
    org: OrgId,
    ids: Arc<SequentialIds>,
    clock: Arc<FixedClock>,
}

impl Fixture {
    fn new() -> Self {
        let ids = Arc::new(SequentialIds::new(42));
        Self {
            store: MemoryStore::new(),
            org: OrgId::from_uuid(ids.next_id()),
            ids,
            clock: Arc::new(FixedClock::new(
                chrono::Utc.with_ymd_and_hms(2026, 5, 1, 8, 0, 0).unwrap(),
            )),
        }
    }

    fn service(&self, snapshot_every: u64) -> CommandService<MemoryStore> {
        CommandService::with_config(
            self.store.clone(),
            self.clock.clone(),
            self.ids.clone(),
            Arc::new(SeededSecrets::new(7)),
            ServiceConfig {
                snapshot_every,
                snapshot_events_per_entity: 0,
                ..ServiceConfig::default()
            },
        )
    }

    fn request(&self, actor: Actor, command: Command) -> CommandRequest {
        CommandRequest::new(
            self.org,
            CommandId::from_uuid(self.ids.next_id()),
            actor,
            command,
        )
    }
}

fn create() -> Command {
    Command::CreateOrganization {
        name: "Snapshots Inc".into(),
        root_account_name: "HQ".into(),
        owner_email: "owner@snap.example".into(),
        owner_name: "Owner".into(),
        policies: None,
    }
}

/// Creates the organization and `n` sub-accounts; returns the owner.
async fn history(f: &Fixture, service: &CommandService<MemoryStore>, n: usize) -> UserId {
    service
        .handle(f.request(Actor::System, create()))
        .await
        .unwrap();
    let state = service.state(f.org).await.unwrap();
    let owner = state.primary_owner.unwrap();
    let root = state.root_account.unwrap();
    for i in 0..n {
        service
            .handle(f.request(
                Actor::user(owner),
                Command::CreateAccount {
                    name: format!("Branch {i}"),
                    parent: root,
                },
            ))
            .await
            .unwrap();
    }
    owner
}

#[tokio::test]
async fn a_cold_service_loads_the_snapshot_plus_the_tail() {
    let f = Fixture::new();
    let writer = f.service(5);
    history(&f, &writer, 12).await;
    let live = writer.state(f.org).await.unwrap();
    assert_eq!(live.version, 13);

    let snap = f
        .store
        .load_snapshot(f.org, None)
        .await
        .unwrap()
        .expect("a snapshot every 5 events");
    assert_eq!(
        snap.version, 10,
        "the newest snapshot crossing a multiple of 5"
    );
    assert_eq!(snap.schema_version, SNAPSHOT_SCHEMA_VERSION);

    // Tamper with the snapshot's name: a cold load that shows the tampered
    // name proves the snapshot was used, with the 3 tail events on top.
    let mut renamed = writer.load_at_version(f.org, 10).await.unwrap();
    renamed.name = "From the snapshot".into();
    let tampered = writer.seal_snapshot(&renamed).await.unwrap();
    assert_eq!(tampered.version, 10);
    f.store.save_snapshot(tampered.clone()).await.unwrap();
    let cold = f.service(5).load(f.org).await.unwrap();
    assert_eq!(cold.name, "From the snapshot");
    assert_eq!(cold.version, 13);
    assert_eq!(cold.accounts, live.accounts, "the tail was folded on top");

    // A snapshot of an older schema is ignored: full replay gives the truth.
    let old = Snapshot {
        schema_version: SNAPSHOT_SCHEMA_VERSION - 1,
        ..tampered
    };
    f.store.delete_snapshots(f.org).await.unwrap();
    f.store.save_snapshot(old).await.unwrap();
    let replayed = f.service(5).load(f.org).await.unwrap();
    assert_eq!(replayed, live);
}

/// Toggles the invitation TTL as `owner`: one event, no new entity.
async fn toggle_policies(
    f: &Fixture,
    service: &CommandService<MemoryStore>,
    owner: UserId,
) -> Handled {
    let mut policies = service.state(f.org).await.unwrap().policies;
    policies.invitation_ttl_days = if policies.invitation_ttl_days == 14 {
        15
    } else {
        14
    };
    service
        .handle(f.request(Actor::user(owner), Command::SetPolicies { policies }))
        .await
        .unwrap()
}

#[tokio::test]
async fn a_large_organization_is_snapshotted_only_after_enough_events_per_entity() {
    let f = Fixture::new();
    let service = CommandService::with_config(
        f.store.clone(),
        f.clock.clone(),
        f.ids.clone(),
        Arc::new(SeededSecrets::new(7)),
        ServiceConfig {
            snapshot_every: 5,
            snapshot_events_per_entity: 2,
            ..ServiceConfig::default()
        },
    );
    // Every account adds an entity as well as an event: never due.
    let owner = history(&f, &service, 20).await;
    assert_eq!(f.store.load_snapshot(f.org, None).await.unwrap(), None);
    let entities = service
        .read(f.org, Organization::entity_count)
        .await
        .unwrap();
    assert!(entities > 20, "{entities}");
    let due_at = 2 * entities; // since the last snapshot (none: version 0)
    loop {
        let handled = toggle_policies(&f, &service, owner).await;
        let snap = f.store.load_snapshot(f.org, None).await.unwrap();
        if handled.version < due_at {
            assert_eq!(snap, None, "v{}: not due before v{due_at}", handled.version);
        } else {
            assert_eq!(snap.map(|s| s.version), Some(due_at));
            break;
        }
    }
    // The next one is due `max(5, 2 × entities)` events later, not 5.
    for _ in 0..(due_at - 1) {
        toggle_policies(&f, &service, owner).await;
    }
    let snap = f.store.load_snapshot(f.org, None).await.unwrap().unwrap();
    assert_eq!(snap.version, due_at, "not yet: one event short");
    toggle_policies(&f, &service, owner).await;
    let snap = f.store.load_snapshot(f.org, None).await.unwrap().unwrap();
    assert_eq!(snap.version, 2 * due_at);
}

#[tokio::test]
async fn r_life_06_a_deletion_erases_its_user_from_every_snapshot_at_once() {
    let f = Fixture::new();
    let service = f.service(10);
    let owner = history(&f, &service, 8).await; // versions 1..=9
    let root = service.state(f.org).await.unwrap().root_account.unwrap();
    let invited = service
        .handle(f.request(
            Actor::user(owner),
            Command::InviteUsers {
                emails: "ivy@snap.example, jon@snap.example".into(),
                grant: Grant {
                    role: RoleId::new(RoleId::AGENT),
                    accounts: vec![root],
                    agency_admin: false,
                    clients: vec![],
                },
            },
        ))
        .await
        .unwrap();
    assert_eq!(
        f.store
            .load_snapshot(f.org, None)
            .await
            .unwrap()
            .map(|s| s.version),
        Some(invited.version),
        "due: 10 events or more since none"
    );
    let state = service.state(f.org).await.unwrap();
    let invitees: Vec<UserId> = state
        .users
        .values()
        .filter(|u| u.status == UserStatus::Invited)
        .map(|u| u.id)
        .collect();
    assert_eq!(invitees.len(), 2);
    // Profiles are sealed in snapshots: no email in clear, ever.
    let sealed = f.store.load_snapshot(f.org, None).await.unwrap().unwrap();
    let text = String::from_utf8_lossy(&sealed.state);
    assert!(!text.contains("ivy@snap.example") && !text.contains("jon@snap.example"));
    // Before the deletion, the snapshot opens to the live profiles.
    let from_snapshot = f
        .service(0)
        .load_at_version(f.org, sealed.version)
        .await
        .unwrap();
    assert_eq!(
        from_snapshot.users[&invitees[0]].email(),
        state.users[&invitees[0]].email()
    );
    let delete = |user| Command::Delete {
        user,
        acknowledgement: DeletionAcknowledgement::ALL,
        forward_numbers_to: None,
        reassign_reports: None,
    };
    // Two deletions in a row: the snapshot stays, and none is written again
    // before it is due.
    for user in &invitees {
        service
            .handle(f.request(Actor::user(owner), delete(*user)))
            .await
            .unwrap();
        assert_eq!(
            f.store.load_snapshot(f.org, None).await.unwrap(),
            Some(sealed.clone())
        );
    }
    // The same snapshot now reads the deleted users as erased: their keys
    // were shredded by the deletions' appends.
    let past = f
        .service(0)
        .load_at_version(f.org, sealed.version)
        .await
        .unwrap();
    for user in &invitees {
        let profile = past.users[user].profile.as_ref().unwrap();
        assert_eq!(
            (profile.email.as_str(), profile.name.as_deref()),
            ("", None)
        );
    }
    assert_eq!(past.users.len(), state.users.len());
    let mut version = service.state(f.org).await.unwrap().version;
    while version < invited.version + 10 {
        version = toggle_policies(&f, &service, owner).await.version;
    }
    let snap = f.store.load_snapshot(f.org, None).await.unwrap().unwrap();
    assert_eq!(snap.version, invited.version + 10);
    let text = String::from_utf8_lossy(&snap.state);
    assert!(!text.contains("ivy@snap.example") && !text.contains("jon@snap.example"));
    assert_eq!(
        service.load(f.org).await.unwrap(),
        service.state(f.org).await.unwrap()
    );
}

#[tokio::test]
async fn a_background_snapshot_is_what_a_cold_load_starts_from() {
    let f = Fixture::new();
    let service = f.service(0); // never on the command path
    assert_eq!(service.snapshot(f.org).await.unwrap(), 0, "nothing yet");
    assert_eq!(f.store.load_snapshot(f.org, None).await.unwrap(), None);
    history(&f, &service, 6).await;
    assert_eq!(f.store.load_snapshot(f.org, None).await.unwrap(), None);
    let version = service.snapshot(f.org).await.unwrap();
    assert_eq!(version, 7);
    let snap = f.store.load_snapshot(f.org, None).await.unwrap().unwrap();
    assert_eq!(snap.version, 7);
    assert_eq!(snap.schema_version, SNAPSHOT_SCHEMA_VERSION);
    let live = service.state(f.org).await.unwrap();
    // A cold service starts from it: tamper with it to see it used.
    let mut renamed = live.clone();
    renamed.name = "From the background snapshot".into();
    let tampered = service.seal_snapshot(&renamed).await.unwrap();
    assert_eq!(tampered.version, snap.version);
    f.store.save_snapshot(tampered).await.unwrap();
    let cold = f.service(0).load(f.org).await.unwrap();
    assert_eq!(cold.name, "From the background snapshot");
    assert_eq!(cold.accounts, live.accounts);
}

#[tokio::test]
async fn load_at_version_equals_the_fold_of_that_prefix() {
    let f = Fixture::new();
    let service = f.service(4);
    history(&f, &service, 9).await;
    // Stored payloads are sealed (R-LIFE-06); the service's history opens them.
    let all = service.history(f.org).await.unwrap();
    for v in [1u64, 3, 4, 7, 10] {
        let events: Vec<Event> = all[..v as usize]
            .iter()
            .map(|r| codec::decode(r).unwrap())
            .collect();
        let expected = fold(f.org, &events);
        assert_eq!(
            service.load_at_version(f.org, v).await.unwrap(),
            expected,
            "v{v}"
        );
    }
}

#[tokio::test]
async fn the_same_command_id_twice_records_nothing_new() {
    let f = Fixture::new();
    let service = f.service(0);
    let owner = history(&f, &service, 0).await;
    let request = f.request(
        Actor::user(owner),
        Command::InviteUsers {
            emails: "ivy@snap.example".into(),
            grant: Grant {
                role: RoleId::new(RoleId::AGENT),
                accounts: vec![service.state(f.org).await.unwrap().root_account.unwrap()],
                agency_admin: false,
                clients: vec![],
            },
        },
    );
    let first = service.handle(request.clone()).await.unwrap();
    assert!(!first.duplicate);
    assert_eq!(first.secrets.len(), 1);
    // Re-deciding would now be refused (R-INV-06: ivy exists); the id short-circuits.
    let second = service.handle(request.clone()).await.unwrap();
    assert!(second.duplicate);
    assert_eq!(second.events, first.events);
    assert_eq!(second.version, first.version);
    assert!(second.secrets.is_empty(), "token text is never kept");
    assert_eq!(f.store.stream_version(f.org).await.unwrap(), first.version);
    // Also from a fresh service instance (another process).
    let third = f.service(0).handle(request).await.unwrap();
    assert!(third.duplicate);
    assert_eq!(f.store.stream_version(f.org).await.unwrap(), first.version);
}

/// Sleeps on the tokio timer: what `switchboard::system::TokioPause` does
/// (the facade is not a dependency of core's tests).
struct Sleep;

#[async_trait::async_trait]
impl Pause for Sleep {
    async fn pause(&self, duration: std::time::Duration) {
        tokio::time::sleep(duration).await;
    }
}

/// A memory store that, just before each append it forwards, lets a rival
/// service instance record the next of its queued commands: each attempt
/// that finds a rival queued meets a version conflict, every time. Each
/// append first yields to the runtime, as a network store would, so that
/// concurrent callers interleave between deciding and appending.
#[derive(Clone)]
struct Interloper {
    inner: MemoryStore,
    rivals: Arc<std::sync::Mutex<std::collections::VecDeque<CommandRequest>>>,
    rival_service: Arc<CommandService<MemoryStore>>,
}

#[async_trait::async_trait]
impl EventStore for Interloper {
    async fn append(&self, request: AppendRequest) -> Result<AppendOutcome, StoreError> {
        tokio::task::yield_now().await;
        let rival = self.rivals.lock().unwrap().pop_front();
        if let Some(rival) = rival {
            self.rival_service
                .handle(rival)
                .await
                .expect("the rival's command lands");
        }
        self.inner.append(request).await
    }
    async fn find_command(
        &self,
        stream: OrgId,
        id: CommandId,
    ) -> Result<Option<CommandRecord>, StoreError> {
        self.inner.find_command(stream, id).await
    }
    async fn stream_version(&self, stream: OrgId) -> Result<u64, StoreError> {
        self.inner.stream_version(stream).await
    }
    async fn read_stream(
        &self,
        stream: OrgId,
        from: u64,
        to: Option<u64>,
        limit: usize,
    ) -> Result<Vec<RecordedEvent>, StoreError> {
        self.inner.read_stream(stream, from, to, limit).await
    }
    async fn read_all(
        &self,
        after: Option<Position>,
        limit: usize,
    ) -> Result<Vec<RecordedEvent>, StoreError> {
        self.inner.read_all(after, limit).await
    }
    async fn wait_for_events(&self, after: Option<Position>, timeout: std::time::Duration) {
        self.inner.wait_for_events(after, timeout).await
    }
    async fn claim_holder(&self, key: &ClaimKey) -> Result<Option<OrgId>, StoreError> {
        self.inner.claim_holder(key).await
    }
}

#[async_trait::async_trait]
impl SnapshotStore for Interloper {
    async fn save_snapshot(&self, snapshot: Snapshot) -> Result<(), StoreError> {
        self.inner.save_snapshot(snapshot).await
    }
    async fn load_snapshot(
        &self,
        stream: OrgId,
        at_most: Option<u64>,
    ) -> Result<Option<Snapshot>, StoreError> {
        self.inner.load_snapshot(stream, at_most).await
    }
    async fn delete_snapshots(&self, stream: OrgId) -> Result<(), StoreError> {
        self.inner.delete_snapshots(stream).await
    }
}

#[async_trait::async_trait]
impl CheckpointStore for Interloper {
    async fn save_checkpoint(&self, name: &str, position: Position) -> Result<(), StoreError> {
        self.inner.save_checkpoint(name, position).await
    }
    async fn load_checkpoint(&self, name: &str) -> Result<Option<Position>, StoreError> {
        self.inner.load_checkpoint(name).await
    }
}

#[async_trait::async_trait]
impl KeyStore for Interloper {
    async fn create_key(
        &self,
        org: OrgId,
        user: UserId,
        candidate: DataKey,
    ) -> Result<Option<DataKey>, StoreError> {
        self.inner.create_key(org, user, candidate).await
    }
    async fn load_keys(
        &self,
        org: OrgId,
        users: &[UserId],
    ) -> Result<std::collections::HashMap<UserId, DataKey>, StoreError> {
        self.inner.load_keys(org, users).await
    }
    async fn delete_key(&self, org: OrgId, user: UserId) -> Result<(), StoreError> {
        self.inner.delete_key(org, user).await
    }
}

/// A pause that records what it was asked to wait and returns at once.
#[derive(Default)]
struct RecordingPause(std::sync::Mutex<Vec<std::time::Duration>>);

#[async_trait::async_trait]
impl Pause for RecordingPause {
    async fn pause(&self, duration: std::time::Duration) {
        self.0.lock().unwrap().push(duration);
    }
}

/// An organization with its owner and root account, and a service over an
/// [`Interloper`] store whose pauses are recorded.
struct Interloping {
    f: Fixture,
    owner: UserId,
    root: AccountId,
    store: Interloper,
    pause: Arc<RecordingPause>,
    service: CommandService<Interloper>,
}

impl Interloping {
    async fn new(max_attempts: u32) -> Self {
        let f = Fixture::new();
        let setup = f.service(0);
        let owner = history(&f, &setup, 0).await;
        let root = setup.state(f.org).await.unwrap().root_account.unwrap();
        let store = Interloper {
            inner: f.store.clone(),
            rivals: Arc::default(),
            rival_service: Arc::new(f.service(0)),
        };
        let pause = Arc::new(RecordingPause::default());
        let service = CommandService::with_config(
            store.clone(),
            f.clock.clone(),
            f.ids.clone(),
            Arc::new(SeededSecrets::new(8)),
            ServiceConfig {
                max_attempts,
                snapshot_every: 0,
                ..ServiceConfig::default()
            },
        )
        .with_pause(pause.clone());
        service.state(f.org).await.unwrap(); // warm: the rivals' events will be news
        Self {
            f,
            owner,
            root,
            store,
            pause,
            service,
        }
    }

    /// A request, as the owner, to create an account.
    fn create(&self, name: &str) -> CommandRequest {
        self.f.request(
            Actor::user(self.owner),
            Command::CreateAccount {
                name: name.into(),
                parent: self.root,
            },
        )
    }

    /// Queues a rival command, recorded just before the next append.
    fn rival(&self, name: &str) {
        let request = self.create(name);
        self.store.rivals.lock().unwrap().push_back(request);
    }
}

#[tokio::test]
async fn a_conflict_pauses_then_decides_again_on_the_caught_up_state() {
    let t = Interloping::new(ServiceConfig::default().max_attempts).await;
    t.rival("Rival");
    let request = t.create("Mine");
    let handled = t.service.handle(request.clone()).await.unwrap();

    assert_eq!(handled.attempts, 2, "one conflict, one retry");
    assert_eq!(handled.version, 3, "v2 is the rival's, v3 is ours");
    let waited = t.pause.0.lock().unwrap().clone();
    assert_eq!(
        waited,
        vec![retry_delay(t.service.config(), request.command_id, 2)]
    );
    let base = t.service.config().retry_base_delay;
    assert!(waited[0] >= base / 2 && waited[0] < base, "{waited:?}");
    let state = t.service.state(t.f.org).await.unwrap();
    let mut names: Vec<&str> = state.accounts.values().map(|a| a.name.as_str()).collect();
    names.sort_unstable();
    assert_eq!(names, ["HQ", "Mine", "Rival"]);
    assert_eq!(state, t.f.service(0).load(t.f.org).await.unwrap());
}

#[tokio::test]
async fn conflicts_on_every_attempt_end_in_contention_with_nothing_recorded() {
    let t = Interloping::new(3).await;
    for i in 0..3 {
        t.rival(&format!("Rival {i}"));
    }
    let request = t.create("Mine");
    let err = t.service.handle(request.clone()).await.unwrap_err();
    assert_eq!(err, ServiceError::Contention { attempts: 3 });
    assert_eq!(
        t.pause.0.lock().unwrap().len(),
        2,
        "a pause before attempts 2 and 3"
    );
    // The rivals' three commands are recorded; ours is not, in any form.
    let f = &t.f;
    assert_eq!(f.store.stream_version(f.org).await.unwrap(), 4);
    assert_eq!(
        f.store
            .find_command(f.org, request.command_id)
            .await
            .unwrap(),
        None
    );
    let state = t.service.state(f.org).await.unwrap();
    assert!(state.accounts.values().all(|a| a.name != "Mine"));
    assert_eq!(state, f.service(0).load(f.org).await.unwrap());
    // Sent again once the rivals are done, the same command lands.
    let handled = t.service.handle(request).await.unwrap();
    assert_eq!((handled.attempts, handled.version), (1, 5));
}

#[test]
fn retry_delays_double_up_to_the_cap_and_stay_jittered_within_half() {
    let config = ServiceConfig {
        retry_base_delay: std::time::Duration::from_millis(4),
        retry_max_delay: std::time::Duration::from_millis(50),
        ..ServiceConfig::default()
    };
    let command = CommandId::from_uuid(uuid::Uuid::from_u128(0xfeed));
    for attempt in 2..=12u32 {
        let full = std::time::Duration::from_millis((4u64 << (attempt - 2)).min(50));
        let d = retry_delay(&config, command, attempt);
        assert!(
            d >= full / 2 && d < full,
            "attempt {attempt}: {d:?} vs {full:?}"
        );
        assert_eq!(d, retry_delay(&config, command, attempt), "pure");
    }
    // Two commands that collided wait differently.
    let other = CommandId::from_uuid(uuid::Uuid::from_u128(0xbeef));
    assert_ne!(
        retry_delay(&config, command, 2),
        retry_delay(&config, other, 2)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn two_service_instances_retry_on_conflict_and_lose_nothing() {
    let f = Arc::new(Fixture::new());
    let setup = f.service(0);
    let owner = history(&f, &setup, 0).await;
    let root = setup.state(f.org).await.unwrap().root_account.unwrap();
    // Two instances over one store whose appends yield first (no rivals
    // queued), so that their commands interleave as over a network.
    let yielding = Interloper {
        inner: f.store.clone(),
        rivals: Arc::default(),
        rival_service: Arc::new(f.service(0)),
    };
    let instance = || {
        Arc::new(
            CommandService::with_config(
                yielding.clone(),
                f.clock.clone(),
                f.ids.clone(),
                Arc::new(SeededSecrets::new(7)),
                ServiceConfig {
                    snapshot_every: 0,
                    ..ServiceConfig::default()
                },
            )
            .with_pause(Arc::new(Sleep)),
        )
    };
    let (a, b) = (instance(), instance());
    a.state(f.org).await.unwrap();
    // Warm b's cache, then let both write concurrently: every conflict is
    // retried against the caught-up state.
    b.state(f.org).await.unwrap();
    let mut tasks = Vec::new();
    for i in 0..40 {
        let service = if i % 2 == 0 { a.clone() } else { b.clone() };
        let f = f.clone();
        tasks.push(tokio::spawn(async move {
            service
                .handle(f.request(
                    Actor::user(owner),
                    Command::CreateAccount {
                        name: format!("Concurrent {i}"),
                        parent: root,
                    },
                ))
                .await
        }));
    }
    let mut retried = 0;
    for t in tasks {
        let handled = t.await.unwrap().expect("every command lands after retries");
        assert!(handled.attempts >= 1 && !handled.duplicate, "{handled:?}");
        retried += usize::from(handled.attempts > 1);
    }
    // Not vacuous: the two instances did race, and the losers retried.
    assert!(retried > 0, "no command needed a second attempt");
    assert_eq!(f.store.stream_version(f.org).await.unwrap(), 41);
    let a_state = a.state(f.org).await.unwrap();
    let b_state = b.state(f.org).await.unwrap();
    assert_eq!(a_state, b_state);
    assert_eq!(a_state.accounts.len(), 41);
    assert_eq!(a_state, f.service(0).load(f.org).await.unwrap());
}

#[tokio::test]
async fn a_refused_command_changes_neither_the_log_nor_the_cache() {
    let f = Fixture::new();
    let service = f.service(0);
    let owner = history(&f, &service, 2).await;
    let before = service.state(f.org).await.unwrap();
    let err = service
        .handle(f.request(
            Actor::user(owner),
            Command::Deactivate {
                user: owner,
                forward_numbers_to: None,
                reassign_reports: None,
            },
        ))
        .await
        .unwrap_err();
    let ServiceError::Rejected(refusal) = err else {
        panic!("expected a refusal, got {err:?}");
    };
    assert!(
        refusal.has_rule(RuleId::PrimaryOwnerProtected) && refusal.has_rule(RuleId::NoSelfRemoval),
        "{refusal}"
    );
    assert_eq!(service.state(f.org).await.unwrap(), before);
    assert_eq!(f.store.stream_version(f.org).await.unwrap(), before.version);
}

#[tokio::test]
async fn a_command_tells_what_it_created() {
    let f = Fixture::new();
    let service = f.service(0);
    let created = service
        .handle(f.request(Actor::System, create()))
        .await
        .unwrap();
    let state = service.state(f.org).await.unwrap();
    let made = created.created();
    assert_eq!(made.users, vec![state.primary_owner.unwrap()]);
    assert_eq!(made.accounts, vec![state.root_account.unwrap()]);
    let owner = made.users[0];
    let request = f.request(
        Actor::user(owner),
        Command::InviteUsers {
            emails: "ivy@snap.example jon@snap.example".into(),
            grant: Grant {
                role: RoleId::new(RoleId::AGENT),
                accounts: vec![made.accounts[0]],
                agency_admin: false,
                clients: vec![],
            },
        },
    );
    let invited = service.handle(request.clone()).await.unwrap();
    let state = service.state(f.org).await.unwrap();
    let by_email = |e: &str| state.user_by_email(e).unwrap().id;
    assert_eq!(
        invited.created().users,
        vec![by_email("ivy@snap.example"), by_email("jon@snap.example")]
    );
    assert_eq!(invited.created().invitations.len(), 2);
    assert!(invited.created().accounts.is_empty());
    // A duplicate tells the same, from the recorded events.
    let again = service.handle(request).await.unwrap();
    assert!(again.duplicate);
    assert_eq!(again.created(), invited.created());
    // Nothing created: empty.
    let policies = service
        .handle(f.request(
            Actor::user(owner),
            Command::SetPolicies {
                policies: Policies::default(),
            },
        ))
        .await
        .unwrap();
    assert!(policies.created().is_empty());
}

/// A spawner that keeps its tasks until the test runs them: what a command
/// waits for, and what it leaves to the background, can then be told apart.
#[derive(Default)]
struct Queue {
    tasks: std::sync::Mutex<Vec<BackgroundTask>>,
    refuse: std::sync::atomic::AtomicBool,
}

impl Spawn for Queue {
    fn spawn(&self, task: BackgroundTask) -> bool {
        if self.refuse.load(std::sync::atomic::Ordering::SeqCst) {
            return false;
        }
        self.tasks.lock().unwrap().push(task);
        true
    }
}

impl Queue {
    async fn run_all(&self) -> usize {
        let tasks: Vec<BackgroundTask> = std::mem::take(&mut *self.tasks.lock().unwrap());
        let n = tasks.len();
        for task in tasks {
            task.await;
        }
        n
    }
}

#[tokio::test]
async fn a_due_snapshot_is_written_by_a_background_task_not_by_the_command() {
    let f = Fixture::new();
    let queue = Arc::new(Queue::default());
    let service = f.service(5).with_background_snapshots(queue.clone());
    history(&f, &service, 5).await; // versions 1..=6: due at 5
    assert_eq!(
        f.store.load_snapshot(f.org, None).await.unwrap(),
        None,
        "the command that made it due did not write it"
    );
    assert_eq!(queue.tasks.lock().unwrap().len(), 1, "one task handed over");
    // While it is pending, the next due point starts no second task.
    let owner = service.state(f.org).await.unwrap().primary_owner.unwrap();
    for _ in 0..5 {
        toggle_policies(&f, &service, owner).await;
    }
    assert_eq!(service.version(f.org).await.unwrap(), 11);
    assert_eq!(
        queue.tasks.lock().unwrap().len(),
        1,
        "one per organization at a time"
    );
    assert_eq!(queue.run_all().await, 1);
    let snap = f.store.load_snapshot(f.org, None).await.unwrap().unwrap();
    assert_eq!(
        snap.version, 5,
        "the version that was due, folded from the log"
    );
    let from_snapshot = f.service(0).load_at_version(f.org, 5).await.unwrap();
    f.store.delete_snapshots(f.org).await.unwrap();
    let replayed = f.service(0).load_at_version(f.org, 5).await.unwrap();
    assert_eq!(from_snapshot, replayed);
    f.store.save_snapshot(snap).await.unwrap();
    // Finished: the next due point starts a task again.
    for _ in 0..5 {
        toggle_policies(&f, &service, owner).await;
    }
    assert_eq!(queue.run_all().await, 1);
    assert_eq!(
        f.store
            .load_snapshot(f.org, None)
            .await
            .unwrap()
            .unwrap()
            .version,
        15
    );
}

#[tokio::test]
async fn a_spawner_that_cannot_start_a_task_costs_only_the_snapshot() {
    let f = Fixture::new();
    let queue = Arc::new(Queue::default());
    queue
        .refuse
        .store(true, std::sync::atomic::Ordering::SeqCst);
    let service = f.service(5).with_background_snapshots(queue.clone());
    let owner = history(&f, &service, 5).await; // due at 5: refused
    assert_eq!(f.store.load_snapshot(f.org, None).await.unwrap(), None);
    // The refused task released the organization: once the spawner works
    // again, the next due point (10) is written.
    queue
        .refuse
        .store(false, std::sync::atomic::Ordering::SeqCst);
    for _ in 0..4 {
        toggle_policies(&f, &service, owner).await;
    }
    assert_eq!(service.version(f.org).await.unwrap(), 10);
    assert_eq!(queue.run_all().await, 1);
    assert_eq!(
        f.store
            .load_snapshot(f.org, None)
            .await
            .unwrap()
            .unwrap()
            .version,
        10
    );
}

/// An `If-Match` that holds atomically: the precondition is checked on the
/// state the command is decided on and appended against. A rival change to
/// the user that lands between the check and the append makes the append
/// conflict; the retry finds the precondition broken and records nothing.
#[tokio::test]
async fn a_precondition_is_checked_again_after_a_conflict() {
    let t = Interloping::new(ServiceConfig::default().max_attempts).await;
    let state = t.service.state(t.f.org).await.unwrap();
    let seen = state.user(t.owner).unwrap().changed_version;
    assert!(seen > 0, "the owner was created by a versioned event");
    let rename = |name: &str| Command::UpdateProfile {
        user: t.owner,
        name: Some(name.into()),
        email: None,
        mobile: None,
        default_country: None,
        notifications: None,
    };
    // A stale version is refused at once.
    let stale =
        t.f.request(Actor::user(t.owner), rename("Early"))
            .if_unchanged(t.owner, seen - 1);
    assert!(matches!(
        t.service.handle(stale).await,
        Err(ServiceError::PreconditionFailed { .. })
    ));
    // The rival renames the owner just before our append.
    t.store
        .rivals
        .lock()
        .unwrap()
        .push_back(t.f.request(Actor::user(t.owner), rename("Rival")));
    let before = t.f.store.stream_version(t.f.org).await.unwrap();
    let mine =
        t.f.request(Actor::user(t.owner), rename("Mine"))
            .if_unchanged(t.owner, seen);
    let err = t.service.handle(mine.clone()).await.unwrap_err();
    assert_eq!(
        err,
        ServiceError::PreconditionFailed {
            precondition: Precondition::UserUnchangedSince {
                user: t.owner,
                version: seen
            }
        }
    );
    // Only the rival's event was recorded, and it stamped the owner.
    let after = t.f.store.stream_version(t.f.org).await.unwrap();
    assert_eq!(after, before + 1);
    let state = t.service.state(t.f.org).await.unwrap();
    let owner = state.user(t.owner).unwrap();
    assert_eq!(
        owner.profile.as_ref().unwrap().name.as_deref(),
        Some("Rival")
    );
    assert_eq!(owner.changed_version, after);
    assert!(owner.created_version > 0 && owner.created_version <= seen);
    // At the new version the same request goes through, and sending it
    // again (same command id) is the recorded success, not a failure.
    let retry =
        t.f.request(Actor::user(t.owner), rename("Mine"))
            .if_unchanged(t.owner, after);
    let handled = t.service.handle(retry.clone()).await.unwrap();
    assert!(!handled.duplicate);
    let again = t.service.handle(retry).await.unwrap();
    assert!(again.duplicate, "{again:?}");
    // The dry run checks it too.
    assert!(matches!(
        t.service.dry_run(&mine).await,
        Err(ServiceError::PreconditionFailed { .. })
    ));
}
