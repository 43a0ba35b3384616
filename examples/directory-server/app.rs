//! The application: shared state, tenants and their bearer tokens, the
//! router with its limits and tracing, and the bootstrap of an organization.
//!
//! Security model: a bearer token names exactly one [`Tenant`] — an
//! organization and the actor its requests act as. Every handler takes the
//! organization from the token, never from the request, so a token of
//! organization A can only ever read or change A: ids of organization B are
//! simply not found in A's state (404), and the event feed is filtered to
//! A's stream.

use axum::body::Body;
use axum::extract::{DefaultBodyLimit, Request, State};
use axum::http::{HeaderValue, StatusCode};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::Router;
use std::collections::HashMap;
use std::sync::{Arc, RwLock};
use switchboard::service::CommandService;
use switchboard::{
    production_service, Actor, Command, CommandId, OrgId, Policies, ProfileEditPolicy, SharedStore,
    UserId,
};
use tower_http::request_id::{MakeRequestUuid, PropagateRequestIdLayer, SetRequestIdLayer};
use tower_http::trace::{DefaultOnResponse, TraceLayer};

/// Limit: bytes of a request body anywhere but the CSV upload. A SCIM user or
/// a command is a few kilobytes; 1 MiB leaves room for a SCIM Bulk request
/// (whose own limit, [`crate::scim::MAX_BULK_PAYLOAD`], is the same) and
/// stops a client from making the server buffer arbitrary amounts.
pub const MAX_BODY_BYTES: usize = 1024 * 1024;

/// Limit: bytes of a CSV upload: the library's own spreadsheet limit
/// (`bulk::MAX_CSV_BYTES`, 4 MiB) plus room for the multipart-free body.
pub const MAX_CSV_BODY_BYTES: usize = switchboard::bulk::MAX_CSV_BYTES + 1024;

/// Limit: live event feeds (SSE) open at once in this process. Each holds a
/// subscription that reads the store, so they are counted; one more is 503.
pub const MAX_LIVE_FEEDS: usize = 64;

/// Limit: instants of organization versions kept by [`VersionTimes`]. A
/// version's instant never changes, so the cache is only ever stale by
/// being absent; at the limit it starts over (32 bytes an entry: about
/// 3 MiB).
pub const MAX_VERSION_TIMES: usize = 100_000;

/// When each organization version was recorded (its event's
/// `occurred_at`), for SCIM's `meta.created` and `meta.lastModified`: a
/// user knows the versions that created and last changed them; the instant
/// is one indexed read of that event, cached here under the organization
/// and the version.
#[derive(Clone, Default)]
pub struct VersionTimes {
    times: Arc<std::sync::Mutex<HashMap<(OrgId, u64), Instant>>>,
}

/// An instant, as events record it.
type Instant = chrono::DateTime<chrono::Utc>;

impl VersionTimes {
    /// The instant of each of `versions` of `org` that has an event.
    pub async fn of(
        &self,
        store: &SharedStore,
        org: OrgId,
        versions: impl IntoIterator<Item = u64>,
    ) -> Result<HashMap<u64, Instant>, switchboard::store::StoreError> {
        use switchboard::store::EventStore;
        let mut found = HashMap::new();
        let mut missing = Vec::new();
        {
            let times = self.times.lock().unwrap_or_else(|e| e.into_inner());
            for v in versions {
                match times.get(&(org, v)) {
                    Some(t) => {
                        found.insert(v, *t);
                    }
                    None if v > 0 => missing.push(v),
                    None => {}
                }
            }
        }
        missing.sort_unstable();
        missing.dedup();
        for v in missing {
            if let Some(e) = store.read_stream(org, v, Some(v), 1).await?.first() {
                found.insert(v, e.metadata.occurred_at);
                let mut times = self.times.lock().unwrap_or_else(|e| e.into_inner());
                if times.len() >= MAX_VERSION_TIMES {
                    times.clear();
                }
                times.insert((org, v), e.metadata.occurred_at);
            }
        }
        Ok(found)
    }
}

/// Who a bearer token acts as.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Tenant {
    /// The organization it may read and change (and no other).
    pub org: OrgId,
    /// The actor of the commands it sends (R-AUTH-04).
    pub actor: Actor,
}

/// The shared state of every handler.
#[derive(Clone)]
pub struct AppState {
    /// The command service over a type-erased store.
    pub service: Arc<CommandService<SharedStore>>,
    /// The store, for the event feed.
    pub store: SharedStore,
    /// Instants of organization versions (SCIM's `meta` times).
    pub times: VersionTimes,
    /// Tenants by the SHA-256 of their token: the tokens themselves are not
    /// kept, and a lookup's timing depends on the digest, not on how much
    /// of a guessed token is right.
    tokens: Arc<RwLock<HashMap<[u8; 32], Tenant>>>,
    /// Permits of live feeds (see [`MAX_LIVE_FEEDS`]).
    pub feeds: Arc<tokio::sync::Semaphore>,
    /// Set when the server shuts down: live feeds end.
    shutdown: Arc<tokio::sync::watch::Sender<bool>>,
}

fn token_digest(token: &str) -> [u8; 32] {
    use sha2::Digest;
    sha2::Sha256::digest(token.as_bytes()).into()
}

impl AppState {
    /// State over a store, with the production clock, ids and secrets.
    pub fn new(store: SharedStore) -> Self {
        Self {
            service: Arc::new(production_service(store.clone())),
            store,
            times: VersionTimes::default(),
            tokens: Arc::default(),
            feeds: Arc::new(tokio::sync::Semaphore::new(MAX_LIVE_FEEDS)),
            shutdown: Arc::new(tokio::sync::watch::Sender::new(false)),
        }
    }

    /// Ends every live feed (and refuses none of the other requests): call
    /// it when the server begins its graceful shutdown.
    pub fn begin_shutdown(&self) {
        self.shutdown.send_replace(true);
    }

    /// Watches for [`AppState::begin_shutdown`].
    pub fn stopping(&self) -> tokio::sync::watch::Receiver<bool> {
        self.shutdown.subscribe()
    }

    /// Allows `n` live feeds at once instead of [`MAX_LIVE_FEEDS`].
    pub fn with_feed_limit(mut self, n: usize) -> Self {
        self.feeds = Arc::new(tokio::sync::Semaphore::new(n));
        self
    }

    /// Lets `token` act as `tenant`.
    pub fn add_token(&self, token: impl Into<String>, tenant: Tenant) {
        self.tokens
            .write()
            .unwrap_or_else(|e| e.into_inner())
            .insert(token_digest(&token.into()), tenant);
    }

    fn tenant(&self, token: &str) -> Option<Tenant> {
        self.tokens
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .get(&token_digest(token))
            .cloned()
    }
}

/// Creates the organization `org` (idempotently: the command id is derived
/// from the organization id, so a restart against PostgreSQL finds it
/// recorded) and answers its primary owner.
///
/// The organization lets administrators edit profile details
/// (`ProfileEditPolicy::SelfOrAdmin`, R-AUTH-02): the identity provider is
/// the source of truth of names and numbers, and it writes them through
/// SCIM acting as an administrator.
pub async fn bootstrap_org(
    state: &AppState,
    org: OrgId,
    name: &str,
    owner_email: &str,
) -> Result<UserId, switchboard::service::ServiceError> {
    let policies = Policies {
        profile_edit: ProfileEditPolicy::SelfOrAdmin,
        ..Policies::default()
    };
    let handled = state
        .service
        .handle(switchboard::service::CommandRequest::new(
            org,
            CommandId::from_uuid(org.as_uuid()),
            Actor::System,
            Command::CreateOrganization {
                name: name.to_owned(),
                root_account_name: format!("{name} HQ"),
                owner_email: owner_email.to_owned(),
                owner_name: "Owner".to_owned(),
                policies: Some(policies),
            },
        ))
        .await?;
    handled.created().users.first().copied().ok_or_else(|| {
        switchboard::service::ServiceError::Rejected(switchboard::Blocker::AlreadyCreated.into())
    })
}

/// The whole HTTP surface: SCIM under `/scim/v2`, the admin API under
/// `/api/v1`, both behind bearer tokens; request ids, tracing and body limits.
pub fn router(state: AppState) -> Router {
    let scim = crate::scim::routes().layer(middleware::from_fn_with_state(
        state.clone(),
        authenticate_scim,
    ));
    let admin = crate::admin::routes().layer(middleware::from_fn_with_state(
        state.clone(),
        authenticate_api,
    ));
    let openapi = Router::new().route(
        "/api/v1/openapi.json",
        axum::routing::get(crate::admin::openapi_json),
    );
    Router::new()
        .nest("/scim/v2", scim)
        .nest("/api/v1", admin)
        .merge(openapi)
        .with_state(state)
        .layer(DefaultBodyLimit::max(MAX_BODY_BYTES))
        .layer(
            // Only the method, the path (ids, never query strings: a SCIM
            // filter holds email addresses) and the request id are traced.
            TraceLayer::new_for_http()
                .make_span_with(|req: &Request<Body>| {
                    let id = req
                        .headers()
                        .get("x-request-id")
                        .and_then(|v| v.to_str().ok())
                        .unwrap_or("-");
                    tracing::info_span!(
                        "request",
                        request_id = %id,
                        method = %req.method(),
                        path = %req.uri().path(),
                    )
                })
                .on_response(DefaultOnResponse::new().level(tracing::Level::INFO)),
        )
        .layer(PropagateRequestIdLayer::x_request_id())
        .layer(SetRequestIdLayer::x_request_id(MakeRequestUuid))
}

fn bearer(req: &Request) -> Option<&str> {
    let value = req.headers().get("authorization")?.to_str().ok()?;
    let (scheme, token) = value.split_once(' ')?;
    scheme.eq_ignore_ascii_case("bearer").then(|| token.trim())
}

async fn authenticate_scim(
    State(state): State<AppState>,
    mut req: Request,
    next: Next,
) -> Response {
    match bearer(&req).and_then(|t| state.tenant(t)) {
        Some(tenant) => {
            req.extensions_mut().insert(tenant);
            next.run(req).await
        }
        None => unauthorized(
            crate::scim::ScimError::new(
                StatusCode::UNAUTHORIZED,
                None,
                "a valid bearer token is required",
            )
            .into_response(),
        ),
    }
}

async fn authenticate_api(State(state): State<AppState>, mut req: Request, next: Next) -> Response {
    match bearer(&req).and_then(|t| state.tenant(t)) {
        Some(tenant) => {
            req.extensions_mut().insert(tenant);
            next.run(req).await
        }
        None => unauthorized(
            crate::admin::ApiError::new(
                StatusCode::UNAUTHORIZED,
                "unauthorized",
                "a valid bearer token is required",
            )
            .into_response(),
        ),
    }
}

fn unauthorized(mut response: Response) -> Response {
    response
        .headers_mut()
        .insert("www-authenticate", HeaderValue::from_static("Bearer"));
    response
}
