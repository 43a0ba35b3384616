//! Shared by the memory (core/tests/edges.rs) and Postgres
//! (tests/edges_postgres.rs) runs. Promises at the edges of the command service, where real services live:
//! command ids scoped to their organization, one record for many concurrent
//! calls with one id, ids reused for another command, erasure that no
//! snapshot or dropped future can undo, no key left by a command that was
//! not recorded, tokens returned after an unknown outcome, and the traces.
//!
//! Each scenario drives the public API over a store, wrapped where it needs
//! to step in between the service and the store.
#![allow(dead_code)]

use chrono::TimeZone;
use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use switchboard_core::erasure::{DataKey, KeyStore};
use switchboard_core::service::*;
use switchboard_core::store::{
    AppendOutcome, AppendRequest, CheckpointStore, ClaimKey, CommandRecord, EventStore, Position,
    RecordedEvent, Snapshot, SnapshotStore, StoreError,
};
use switchboard_core::*;

pub type Hook = Pin<Box<dyn Future<Output = ()> + Send>>;

/// The memory store with ways to step in: count calls and hang for ever
/// after call `stall_at` (its effect done, its answer never given — a
/// caller's future dropped at that await point); lose the answer of the
/// first append (committed, reported as an unknown outcome); run a hook
/// before each append or snapshot save; refuse snapshots; remember every
/// append request.
#[derive(Clone)]
pub struct Hooked<S> {
    pub inner: S,
    pub calls: Arc<AtomicUsize>,
    pub stall_at: Arc<AtomicUsize>,
    pub lose_first_append: Arc<AtomicBool>,
    pub before_append: Arc<Mutex<Vec<Hook>>>,
    pub before_save_snapshot: Arc<Mutex<Option<Hook>>>,
    pub refuse_snapshots: Arc<AtomicBool>,
    pub appends: Arc<Mutex<Vec<AppendRequest>>>,
}

impl<S> Hooked<S> {
    /// `inner` with nothing stepped in yet.
    pub fn new(inner: S) -> Self {
        Self {
            inner,
            calls: Arc::default(),
            stall_at: Arc::default(),
            lose_first_append: Arc::default(),
            before_append: Arc::default(),
            before_save_snapshot: Arc::default(),
            refuse_snapshots: Arc::default(),
            appends: Arc::default(),
        }
    }

    async fn step<T>(&self, answer: T) -> T {
        let n = self.calls.fetch_add(1, Ordering::SeqCst) + 1;
        if n == self.stall_at.load(Ordering::SeqCst) {
            std::future::pending::<()>().await;
        }
        answer
    }

    pub fn stall_after(&self, calls_from_now: usize) {
        let now = self.calls.load(Ordering::SeqCst);
        self.stall_at.store(now + calls_from_now, Ordering::SeqCst);
    }

    pub fn never_stall(&self) {
        self.stall_at.store(0, Ordering::SeqCst);
    }
}

#[async_trait::async_trait]
impl<S: store::Store> EventStore for Hooked<S> {
    async fn append(&self, request: AppendRequest) -> Result<AppendOutcome, StoreError> {
        let hook = self.before_append.lock().unwrap().pop();
        if let Some(hook) = hook {
            hook.await;
        }
        self.appends.lock().unwrap().push(request.clone());
        let mut answer = self.inner.append(request).await;
        if answer.is_ok() && self.lose_first_append.swap(false, Ordering::SeqCst) {
            answer = Err(StoreError::Unavailable {
                reason: "connection lost after the commit".into(),
                maybe_committed: true,
                source: None,
            });
        }
        self.step(answer).await
    }
    async fn find_command(
        &self,
        stream: OrgId,
        id: CommandId,
    ) -> Result<Option<CommandRecord>, StoreError> {
        let answer = self.inner.find_command(stream, id).await;
        self.step(answer).await
    }
    async fn stream_version(&self, stream: OrgId) -> Result<u64, StoreError> {
        let answer = self.inner.stream_version(stream).await;
        self.step(answer).await
    }
    async fn read_stream(
        &self,
        stream: OrgId,
        from: u64,
        to: Option<u64>,
        limit: usize,
    ) -> Result<Vec<RecordedEvent>, StoreError> {
        let answer = self.inner.read_stream(stream, from, to, limit).await;
        self.step(answer).await
    }
    async fn read_all(
        &self,
        after: Option<Position>,
        limit: usize,
    ) -> Result<Vec<RecordedEvent>, StoreError> {
        let answer = self.inner.read_all(after, limit).await;
        self.step(answer).await
    }
    async fn wait_for_events(&self, after: Option<Position>, timeout: Duration) {
        self.inner.wait_for_events(after, timeout).await
    }
    async fn claim_holder(&self, key: &ClaimKey) -> Result<Option<OrgId>, StoreError> {
        let answer = self.inner.claim_holder(key).await;
        self.step(answer).await
    }
}

#[async_trait::async_trait]
impl<S: store::Store> SnapshotStore for Hooked<S> {
    async fn save_snapshot(&self, snapshot: Snapshot) -> Result<(), StoreError> {
        let hook = self.before_save_snapshot.lock().unwrap().take();
        if let Some(hook) = hook {
            hook.await;
        }
        if self.refuse_snapshots.load(Ordering::SeqCst) {
            return Err(StoreError::Unavailable {
                reason: "snapshots are refused here".into(),
                maybe_committed: false,
                source: None,
            });
        }
        let answer = self.inner.save_snapshot(snapshot).await;
        self.step(answer).await
    }
    async fn load_snapshot(
        &self,
        stream: OrgId,
        at_most: Option<u64>,
    ) -> Result<Option<Snapshot>, StoreError> {
        let answer = self.inner.load_snapshot(stream, at_most).await;
        self.step(answer).await
    }
    async fn delete_snapshots(&self, stream: OrgId) -> Result<(), StoreError> {
        let answer = self.inner.delete_snapshots(stream).await;
        self.step(answer).await
    }
}

#[async_trait::async_trait]
impl<S: store::Store> CheckpointStore for Hooked<S> {
    async fn save_checkpoint(&self, name: &str, position: Position) -> Result<(), StoreError> {
        self.inner.save_checkpoint(name, position).await
    }
    async fn load_checkpoint(&self, name: &str) -> Result<Option<Position>, StoreError> {
        self.inner.load_checkpoint(name).await
    }
}

#[async_trait::async_trait]
impl<S: store::Store> KeyStore for Hooked<S> {
    async fn create_key(
        &self,
        org: OrgId,
        user: UserId,
        candidate: DataKey,
    ) -> Result<Option<DataKey>, StoreError> {
        let answer = self.inner.create_key(org, user, candidate).await;
        self.step(answer).await
    }
    async fn load_keys(
        &self,
        org: OrgId,
        users: &[UserId],
    ) -> Result<std::collections::HashMap<UserId, DataKey>, StoreError> {
        let answer = self.inner.load_keys(org, users).await;
        self.step(answer).await
    }
    async fn delete_key(&self, org: OrgId, user: UserId) -> Result<(), StoreError> {
        let answer = self.inner.delete_key(org, user).await;
        self.step(answer).await
    }
}

pub fn clock() -> Arc<FixedClock> {
    Arc::new(FixedClock::new(
        chrono::Utc.with_ymd_and_hms(2026, 6, 1, 9, 0, 0).unwrap(),
    ))
}

pub fn service_on<S: store::Store>(store: S, ids: u64, snapshot_every: u64) -> CommandService<S> {
    CommandService::with_config(
        store,
        clock(),
        Arc::new(SequentialIds::new(ids)),
        Arc::new(SeededSecrets::new(ids)),
        ServiceConfig {
            snapshot_every,
            snapshot_events_per_entity: 0,
            ..ServiceConfig::default()
        },
    )
}

pub fn org_id(n: u128) -> OrgId {
    OrgId::from_uuid(uuid::Uuid::from_u128(0x0A00 + n))
}

pub fn cmd_id(n: u128) -> CommandId {
    CommandId::from_uuid(uuid::Uuid::from_u128(0xC0_0000 + n))
}

pub fn create(owner_email: &str) -> Command {
    Command::CreateOrganization {
        name: "Edges".into(),
        root_account_name: "HQ".into(),
        owner_email: owner_email.into(),
        owner_name: "Olga Owner".into(),
        policies: None,
    }
}

pub fn invite(emails: &str, root: AccountId) -> Command {
    Command::InviteUsers {
        emails: emails.into(),
        grant: Grant {
            role: RoleId::new(RoleId::AGENT),
            accounts: vec![root],
            agency_admin: false,
            clients: vec![],
        },
    }
}

pub fn delete(user: UserId) -> Command {
    Command::Delete {
        user,
        acknowledgement: DeletionAcknowledgement::ALL,
        forward_numbers_to: None,
        reassign_reports: None,
    }
}

/// Creates organization `org` (owner `owner_email`) and invites `emails`;
/// returns the owner and the root account.
pub async fn organization<S: store::Store>(
    service: &CommandService<S>,
    org: OrgId,
    owner_email: &str,
    emails: &str,
) -> (UserId, AccountId) {
    let ids = SequentialIds::new(org.as_uuid().as_u128() as u64 * 1000);
    let request =
        |cmd| CommandRequest::new(org, CommandId::from_uuid(ids.next_id()), Actor::System, cmd);
    service.handle(request(create(owner_email))).await.unwrap();
    let state = service.state(org).await.unwrap();
    let (owner, root) = (state.primary_owner.unwrap(), state.root_account.unwrap());
    if !emails.is_empty() {
        service
            .handle(CommandRequest::new(
                org,
                CommandId::from_uuid(ids.next_id()),
                Actor::user(owner),
                invite(emails, root),
            ))
            .await
            .unwrap();
    }
    (owner, root)
}

/// Point 1: a command id is scoped to its organization. Organization B's
/// caller reusing an id of organization A gets B's own command handled and
/// learns nothing of A.
pub async fn a_command_id_of_another_organization_reveals_nothing<S: store::Store + Clone>(
    store: S,
) {
    let service = service_on(store.clone(), 1, 0);
    let (a, b) = (org_id(1), org_id(2));
    let id = cmd_id(1);
    let first = service
        .handle(CommandRequest::new(
            a,
            id,
            Actor::System,
            create("alice@a.example"),
        ))
        .await
        .unwrap();
    assert!(!first.duplicate);
    let other = service
        .handle(CommandRequest::new(
            b,
            id,
            Actor::System,
            create("bob@b.example"),
        ))
        .await
        .unwrap();
    assert!(!other.duplicate, "another organization's id is another key");
    assert_eq!(other.outcome.unwrap().stream, b);
    let answer = serde_json::to_string(&other.events).unwrap();
    assert!(
        !answer.contains("alice@a.example"),
        "A's data leaked to B: {answer}"
    );
    assert!(answer.contains("bob@b.example"));
    let b_state = service.state(b).await.unwrap();
    assert!(b_state.user_by_email("bob@b.example").is_some());
    assert_eq!(store.stream_version(a).await.unwrap(), 1);
    assert_eq!(store.stream_version(b).await.unwrap(), 1);
}

/// The same id with a different command in the same organization is a
/// typed error, never answered with the first command's result.
pub async fn a_command_id_reused_for_another_command_is_refused<S: store::Store + Clone>(store: S) {
    let service = service_on(store.clone(), 1, 0);
    let org = org_id(1);
    let (owner, root) = organization(&service, org, "olga@edges.example", "").await;
    let id = cmd_id(9);
    let request = |cmd| CommandRequest::new(org, id, Actor::user(owner), cmd);
    let first = service
        .handle(request(invite("ivy@edges.example", root)))
        .await
        .unwrap();
    let version = store.stream_version(org).await.unwrap();
    // The same command again: a duplicate.
    let again = service
        .handle(request(invite("ivy@edges.example", root)))
        .await
        .unwrap();
    assert!(again.duplicate);
    assert_eq!(again.events, first.events);
    // Another command under the same id: other arguments (decided and
    // appended), or the same arguments from another actor (refused by the
    // rules: Ivy is invited already).
    let other_arguments = request(invite("jon@edges.example", root));
    let other_actor = CommandRequest {
        actor: Actor::System,
        ..request(invite("ivy@edges.example", root))
    };
    for reused in [other_arguments, other_actor] {
        assert_eq!(
            service.handle(reused).await,
            Err(ServiceError::IdempotencyKeyReused { command_id: id })
        );
    }
    assert_eq!(store.stream_version(org).await.unwrap(), version);
}

/// Point 2: one command id, many concurrent calls — in one service and in
/// two service instances over one store — one record, and every call
/// succeeds (one of them not a duplicate).
pub async fn concurrent_calls_with_one_command_id_record_once_and_all_succeed<S, F, Fut>(
    rounds: u128,
    pair: F,
) where
    S: store::Store + Clone + 'static,
    F: Fn() -> Fut,
    Fut: Future<Output = (S, S)>,
{
    for round in 0..rounds {
        let (one, two) = pair().await;
        let store = one.clone();
        let services = [
            Arc::new(service_on(one, 1, 0)),
            Arc::new(service_on(two, 2, 0)),
        ];
        let org = org_id(round);
        let id = cmd_id(round);
        let calls: Vec<_> = (0..6)
            .map(|i| {
                let service = services[i % 2].clone();
                tokio::spawn(async move {
                    service
                        .handle(CommandRequest::new(
                            org,
                            id,
                            Actor::System,
                            create("olga@edges.example"),
                        ))
                        .await
                })
            })
            .collect();
        let mut recorded = 0;
        for call in calls {
            let handled = call.await.unwrap().unwrap_or_else(|e| {
                panic!("round {round}: a call was refused though the command is recorded: {e}")
            });
            assert_eq!(handled.version, 1);
            assert_eq!(handled.events.len(), 1);
            recorded += usize::from(!handled.duplicate);
        }
        assert_eq!(recorded, 1, "round {round}: exactly one call records");
        assert_eq!(store.stream_version(org).await.unwrap(), 1);
    }
}

pub fn text_of<T: serde::Serialize>(value: &T) -> String {
    serde_json::to_string(value).unwrap()
}

/// Point 3: a snapshot written while a deletion lands — here, the deletion
/// is recorded by another instance between the snapshot's copy of the
/// state and its write — holds no personal data of the deleted user that
/// anything can read: not in clear, and not through a load from it.
pub async fn r_life_06_a_snapshot_racing_a_deletion_cannot_bring_the_user_back<
    S: store::Store + Clone + 'static,
>(
    store: S,
) {
    let store = Hooked::new(store);
    let writer = service_on(store.clone(), 1, 0);
    let org = org_id(1);
    let (owner, _) = organization(&writer, org, "olga@edges.example", "ivy@edges.example").await;
    let ivy = writer
        .state(org)
        .await
        .unwrap()
        .user_by_email("ivy@edges.example")
        .unwrap()
        .id;
    let rival = Arc::new(service_on(store.inner.clone(), 2, 0));
    let deleting = rival.clone();
    *store.before_save_snapshot.lock().unwrap() = Some(Box::pin(async move {
        deleting
            .handle(CommandRequest::new(
                org,
                cmd_id(77),
                Actor::user(owner),
                delete(ivy),
            ))
            .await
            .expect("the deletion lands");
    }));
    let version = writer.snapshot(org).await.unwrap();
    let snap = store.inner.load_snapshot(org, None).await.unwrap().unwrap();
    assert_eq!(snap.version, version);
    assert!(
        store.inner.stream_version(org).await.unwrap() > version,
        "the deletion landed after the copy"
    );
    assert!(
        !String::from_utf8_lossy(&snap.state).contains("ivy@edges.example"),
        "a deleted user's email in a snapshot"
    );
    // Loaded from that snapshot, the state before the deletion reads Ivy erased.
    let cold = service_on(store.inner.clone(), 3, 0);
    let past = cold.load_at_version(org, version).await.unwrap();
    assert!(!text_of(&past).contains("ivy@edges.example"));
    assert_eq!(past.users[&ivy].status, UserStatus::Invited);
    let now = cold.load(org).await.unwrap();
    assert!(!text_of(&now).contains("ivy@edges.example"));
    assert_eq!(now.users[&ivy].status, UserStatus::Deleted);
}

/// Every place a user's personal data could be read from, as text.
pub async fn everything_readable<S: store::Store + Clone>(store: &S, org: OrgId) -> String {
    let fresh = service_on(store.clone(), 99, 0);
    let mut text = String::new();
    text += &text_of(&store.read_all(None, 10_000).await.unwrap());
    if let Some(snap) = store.load_snapshot(org, None).await.unwrap() {
        text += &String::from_utf8_lossy(&snap.state);
        if let Ok(past) = fresh.load_at_version(org, snap.version).await {
            text += &text_of(&past);
        }
    }
    text += &text_of(&fresh.history(org).await.unwrap());
    text += &text_of(&fresh.load(org).await.unwrap());
    let mut export = Vec::new();
    fresh.export_jsonl(org, &mut export).await.unwrap();
    text += &String::from_utf8(export).unwrap();
    text
}

/// Point 4: a deletion whose caller's future is dropped at any await
/// point — after the store did what was asked, before the answer came
/// back — leaves either nothing recorded, or the user erased everywhere:
/// events, snapshots, the export, a fresh service's state and the key store.
///
/// `fresh` gives an empty store per try; `raw` reads whatever else the store
/// keeps (its tables, as text).
pub async fn r_life_06_a_deletion_dropped_at_every_await_point_leaves_nothing_readable<
    S,
    F,
    Fut,
    R,
    RFut,
>(
    fresh: F,
    raw: R,
) where
    S: store::Store + Clone + 'static,
    F: Fn() -> Fut,
    Fut: Future<Output = S>,
    R: Fn(S) -> RFut,
    RFut: Future<Output = String>,
{
    let mut completed = false;
    for k in 1..200 {
        let store = Hooked::new(fresh().await);
        // Snapshots on every command: their writes are await points too.
        let service = service_on(store.clone(), 1, 1);
        let org = org_id(1);
        let (owner, _) =
            organization(&service, org, "olga@edges.example", "ivy@edges.example").await;
        let ivy = service
            .state(org)
            .await
            .unwrap()
            .user_by_email("ivy@edges.example")
            .unwrap()
            .id;
        assert!(everything_readable(&store.inner, org)
            .await
            .contains("ivy@edges.example"));
        store.stall_after(k);
        let deletion = service.handle(CommandRequest::new(
            org,
            cmd_id(5),
            Actor::user(owner),
            delete(ivy),
        ));
        let finished = tokio::time::timeout(Duration::from_millis(200), deletion).await;
        store.never_stall();
        let recorded = store
            .inner
            .find_command(org, cmd_id(5))
            .await
            .unwrap()
            .is_some();
        let text = everything_readable(&store.inner, org).await + &raw(store.inner.clone()).await;
        if recorded {
            assert!(
                !text.contains("ivy@edges.example"),
                "dropped at await point {k}: Ivy is readable"
            );
            assert!(
                store.inner.load_keys(org, &[ivy]).await.unwrap().is_empty(),
                "point {k}: key left"
            );
            // The service whose future was dropped agrees when it next touches the organization.
            let state = service.state(org).await.unwrap();
            assert_eq!(state.users[&ivy].status, UserStatus::Deleted);
            assert!(!text_of(&state).contains("ivy@edges.example"));
        } else {
            assert!(
                text.contains("ivy@edges.example"),
                "point {k}: erased without a deletion"
            );
        }
        if finished.is_ok() {
            assert!(recorded);
            completed = true;
            break;
        }
    }
    assert!(
        completed,
        "the deletion never completed: too few await points tried"
    );
}

/// Point 5: a command that is not recorded leaves no data key: here an
/// invitation that loses every race for the organization's version.
pub async fn r_life_06_a_contended_command_leaves_no_key<S: store::Store + Clone + 'static>(
    store: S,
) {
    let store = Hooked::new(store);
    let service = service_on(store.clone(), 1, 0);
    let org = org_id(1);
    let (owner, root) = organization(&service, org, "olga@edges.example", "").await;
    let rival = Arc::new(service_on(store.inner.clone(), 2, 0));
    let attempts = service.config().max_attempts as usize;
    for i in 0..attempts {
        let rival = rival.clone();
        store
            .before_append
            .lock()
            .unwrap()
            .push(Box::pin(async move {
                rival
                    .handle(CommandRequest::new(
                        org,
                        cmd_id(100 + i as u128),
                        Actor::user(owner),
                        Command::SetPolicies {
                            policies: Policies {
                                invitation_ttl_days: 1 + i as u32,
                                ..Policies::default()
                            },
                        },
                    ))
                    .await
                    .expect("the rival lands");
            }));
    }
    store.appends.lock().unwrap().clear();
    let result = service
        .handle(CommandRequest::new(
            org,
            cmd_id(1),
            Actor::user(owner),
            invite("ivy@edges.example, jon@edges.example", root),
        ))
        .await;
    assert_eq!(
        result,
        Err(ServiceError::Contention {
            attempts: attempts as u32
        })
    );
    // Every user the failed attempts invited (each attempt drew new ids).
    let invitees: Vec<UserId> = store
        .appends
        .lock()
        .unwrap()
        .iter()
        .filter(|a| a.command_id == Some(cmd_id(1)))
        .flat_map(|a| a.events.iter())
        .filter(|e| e.event_type == "UserInvited")
        .map(|e| serde_json::from_value(e.payload.to_value().unwrap()["user"].clone()).unwrap())
        .collect();
    assert_eq!(invitees.len(), 2 * attempts);
    assert!(
        store
            .inner
            .load_keys(org, &invitees)
            .await
            .unwrap()
            .is_empty(),
        "keys left by an unrecorded command"
    );
}

/// Point 6: when the answer to an append is lost and the re-sent append
/// finds it committed, the call still returns the tokens it issued.
pub async fn r_inv_03_tokens_issued_by_a_call_are_returned_after_an_unknown_outcome<
    S: store::Store + Clone + 'static,
>(
    store: S,
) {
    let store = Hooked::new(store);
    let service = service_on(store.clone(), 1, 0);
    let org = org_id(1);
    let (owner, root) = organization(&service, org, "olga@edges.example", "").await;
    store.lose_first_append.store(true, Ordering::SeqCst);
    let handled = service
        .handle(CommandRequest::new(
            org,
            cmd_id(3),
            Actor::user(owner),
            invite("ivy@edges.example", root),
        ))
        .await
        .unwrap();
    assert!(!handled.duplicate, "this call's own append");
    assert_eq!(handled.secrets.len(), 1, "the token issued by this call");
    let state = service.state(org).await.unwrap();
    let hash = validate::token_hash(&handled.secrets[0].token);
    assert!(
        state.invitation_by_token(&hash).is_some(),
        "the returned token opens the recorded invitation"
    );
    // A real duplicate (another call) still gets no token.
    let again = service
        .handle(CommandRequest::new(
            org,
            cmd_id(3),
            Actor::user(owner),
            invite("ivy@edges.example", root),
        ))
        .await
        .unwrap();
    assert!(again.duplicate && again.secrets.is_empty());
}

/// R-LIFE-06 for device names ("Ivy's laptop" names its owner): sealed in
/// the log and in snapshots like the rest of a person's data, and gone with
/// the user's key — from events, snapshots, the export and every state.
pub async fn r_life_06_a_deleted_users_device_names_are_erased<S: store::Store + Clone>(store: S) {
    // Snapshots on every command: the device name is in them too.
    let service = service_on(store.clone(), 1, 1);
    let org = org_id(1);
    let (owner, root) = organization(&service, org, "olga@edges.example", "").await;
    let ids = SequentialIds::new(4242);
    let next = || CommandId::from_uuid(ids.next_id());
    let invited = service
        .handle(CommandRequest::new(
            org,
            next(),
            Actor::user(owner),
            invite("ivy@edges.example", root),
        ))
        .await
        .unwrap();
    let ivy = service
        .state(org)
        .await
        .unwrap()
        .user_by_email("ivy@edges.example")
        .unwrap()
        .id;
    service
        .handle(CommandRequest::new(
            org,
            next(),
            Actor::user(ivy),
            Command::AcceptInvitation {
                token: invited.secrets[0].token.clone(),
                email: None,
                name: "Ivy Ivanova".into(),
                mobile: Some("+14155550142".into()),
                default_country: Some("US".into()),
            },
        ))
        .await
        .unwrap();
    service
        .handle(CommandRequest::new(
            org,
            next(),
            Actor::user(ivy),
            Command::SignIn {
                user: ivy,
                device_name: "Ivy Ivanova's laptop".into(),
            },
        ))
        .await
        .unwrap();
    let signed_in = service.version(org).await.unwrap();
    let before = everything_readable(&store, org).await;
    assert!(!text_of(&store.read_all(None, 1000).await.unwrap()).contains("Ivy Ivanova"));
    assert!(
        before.contains("Ivy Ivanova's laptop"),
        "readable until deleted"
    );
    service
        .handle(CommandRequest::new(
            org,
            next(),
            Actor::user(owner),
            delete(ivy),
        ))
        .await
        .unwrap();
    let after = everything_readable(&store, org).await;
    assert!(
        !after.contains("Ivanova"),
        "a deleted user's device name is readable"
    );
    // The state at the sign-in, from the snapshot taken then, has the device
    // but not its name.
    let past = service_on(store, 5, 0)
        .load_at_version(org, signed_in)
        .await
        .unwrap();
    let devices = &past.users[&ivy].devices;
    assert_eq!(devices.len(), 1);
    assert!(devices.values().all(|d| d.name.is_empty()));
}
