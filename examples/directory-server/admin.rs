//! The admin JSON API under `/api/v1`, for the admin screens: the Users page
//! (status tabs with counts, search), a user's details, any command (with
//! `Idempotency-Key`), the dry run of an offboarding, CSV bulk upload, the
//! audit questions, and a live feed of the organization's events (SSE).
//!
//! Every list is bounded (`limit` at most [`MAX_PAGE`]); the OpenAPI 3
//! document of this API is generated from these handlers (utoipa) and
//! served at `/api/v1/openapi.json`.

use crate::app::{AppState, Tenant};
use axum::body::Bytes;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::sse::{Event as SseEvent, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Extension, Json, Router};
use futures_util::{Stream, StreamExt};
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};
use std::convert::Infallible;
use switchboard::audit::{AsOf, Subject};
use switchboard::service::{CommandRequest, ServiceError};
use switchboard::store::Position;
use switchboard::{
    AccountId, Blocker, BulkMode, Command, CommandId, Offboarding, Organization, PhoneNumber, User,
    UserId, UserStatus,
};
use utoipa::{IntoParams, OpenApi, ToSchema};

/// Limit: items in one page of any list of this API.
pub const MAX_PAGE: usize = 500;
/// Limit: bytes of an `Idempotency-Key`.
pub const MAX_IDEMPOTENCY_KEY: usize = 255;
/// Limit: events read from the store per page of the live feed.
pub const FEED_PAGE: usize = 256;

/// The admin routes (behind a bearer token).
pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/users", get(list_users))
        .route("/users/{id}", get(user_details))
        .route("/commands", post(send_command))
        .route("/offboarding/dry-run", post(dry_run_offboarding))
        .route(
            "/bulk",
            post(bulk_upload).layer(axum::extract::DefaultBodyLimit::max(
                crate::app::MAX_CSV_BODY_BYTES,
            )),
        )
        .route("/audit/trail", get(trail))
        .route("/audit/state", get(state_as_of))
        .route("/audit/access", get(who_had_access))
        .route("/audit/routing", get(number_routing))
        .route("/audit/deactivations", get(deactivations))
        .route("/events", get(events))
}

// ---------------------------------------------------------------- errors

/// An error of the admin API: a code, a message, and for refusals every
/// blocker with its rule id.
#[derive(Debug, Serialize, ToSchema)]
pub struct ApiError {
    #[serde(skip)]
    status: StatusCode,
    /// A short code: `refused`, `not_found`, `bad_request`, `unauthorized`, …
    pub error: String,
    /// What went wrong.
    pub message: String,
    /// For refusals: every blocker.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub blockers: Vec<BlockerView>,
}

/// One blocker of a refused command.
#[derive(Debug, Serialize, ToSchema)]
pub struct BlockerView {
    /// The rule id, e.g. `R-NUM-02`.
    pub rule: String,
    /// The blocker in words (no email addresses).
    pub message: String,
    /// The blocker as data.
    #[schema(value_type = Object)]
    pub detail: Value,
}

impl ApiError {
    /// An error with a status, a code and a message.
    pub fn new(status: StatusCode, error: &str, message: impl Into<String>) -> Self {
        Self {
            status,
            error: error.to_owned(),
            message: message.into(),
            blockers: Vec::new(),
        }
    }
    fn bad(message: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, "bad_request", message)
    }
    fn not_found(what: &str) -> Self {
        Self::new(
            StatusCode::NOT_FOUND,
            "not_found",
            format!("{what} not found"),
        )
    }
}

fn blocker_views(blockers: &[Blocker]) -> Vec<BlockerView> {
    blockers
        .iter()
        .map(|b| BlockerView {
            rule: b.rule().to_string(),
            message: b.to_string(),
            detail: serde_json::to_value(b).unwrap_or(Value::Null),
        })
        .collect()
}

impl From<ServiceError> for ApiError {
    fn from(e: ServiceError) -> Self {
        match e {
            ServiceError::Rejected(r) => {
                let status = r
                    .blockers
                    .iter()
                    .map(|b| match crate::scim::blocker_class(b).0 {
                        StatusCode::BAD_REQUEST => StatusCode::UNPROCESSABLE_ENTITY,
                        s => s,
                    })
                    .max_by_key(|s| match s.as_u16() {
                        403 => 4,
                        404 => 3,
                        409 => 2,
                        _ => 1,
                    })
                    .unwrap_or(StatusCode::UNPROCESSABLE_ENTITY);
                ApiError {
                    status,
                    error: "refused".into(),
                    message: format!(
                        "refused by {}",
                        r.rules()
                            .iter()
                            .map(|id| id.as_str())
                            .collect::<Vec<_>>()
                            .join(", ")
                    ),
                    blockers: blocker_views(&r.blockers),
                }
            }
            ServiceError::IdempotencyKeyReused { .. } => ApiError::new(
                StatusCode::CONFLICT,
                "idempotency_key_reused",
                "this Idempotency-Key was used for a different command",
            ),
            ServiceError::Contention { .. } => ApiError::new(
                StatusCode::SERVICE_UNAVAILABLE,
                "busy",
                "the organization is busy; retry with the same Idempotency-Key",
            ),
            other => {
                tracing::error!(error = %other, "service failed");
                ApiError::new(
                    StatusCode::INTERNAL_SERVER_ERROR,
                    "internal",
                    "internal error",
                )
            }
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        (self.status, Json(&self)).into_response()
    }
}

type ApiResult<T> = Result<Json<T>, ApiError>;

async fn org_state(state: &AppState, tenant: &Tenant) -> Result<Organization, ApiError> {
    Ok(state.service.state(tenant.org).await?)
}

// ---------------------------------------------------------------- users

/// Query of the Users page.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct UsersQuery {
    /// One status tab: `Invited`, `Active`, `Deactivated`, `Deleted`.
    pub status: Option<String>,
    /// Text searched in names and emails (case-insensitive).
    pub q: Option<String>,
    /// Items to skip.
    pub offset: Option<usize>,
    /// Items to return (at most 500, default 100).
    pub limit: Option<usize>,
}

/// A row of the Users page.
#[derive(Debug, Serialize, ToSchema)]
pub struct UserRow {
    /// Id.
    pub id: String,
    /// Status.
    pub status: String,
    /// Email (absent once deleted).
    pub email: Option<String>,
    /// Name.
    pub name: Option<String>,
    /// The name the user signs in with when it is not their email (R-USR-03).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub sign_in_name: Option<String>,
}

impl UserRow {
    fn of(u: &User) -> Self {
        let p = u.profile.as_ref();
        Self {
            id: u.id.to_string(),
            status: u.status.to_string(),
            email: u.email().map(str::to_owned),
            name: p.and_then(|p| p.name.clone()),
            sign_in_name: p.and_then(|p| p.sign_in_name.clone()),
        }
    }
}

/// Users by status with the counts of every tab.
#[derive(Debug, Serialize, ToSchema)]
pub struct UsersPage {
    /// Users per status (all of them, whatever the filter).
    pub counts: std::collections::BTreeMap<String, usize>,
    /// Users matching the query.
    pub total: usize,
    /// This page.
    pub users: Vec<UserRow>,
}

fn parse_status(s: &str) -> Result<UserStatus, ApiError> {
    [
        UserStatus::Invited,
        UserStatus::Active,
        UserStatus::Deactivated,
        UserStatus::Deleted,
    ]
    .into_iter()
    .find(|st| st.to_string().eq_ignore_ascii_case(s))
    .ok_or_else(|| ApiError::bad("status must be Invited, Active, Deactivated or Deleted"))
}

fn page_bounds(offset: Option<usize>, limit: Option<usize>) -> (usize, usize) {
    (offset.unwrap_or(0), limit.unwrap_or(100).clamp(1, MAX_PAGE))
}

/// Users by status, with counts and search.
#[utoipa::path(get, path = "/api/v1/users", params(UsersQuery),
    responses((status = 200, body = UsersPage), (status = 400, body = ApiError), (status = 401, body = ApiError)),
    security(("bearer" = [])))]
async fn list_users(
    State(state): State<AppState>,
    Extension(tenant): Extension<Tenant>,
    Query(q): Query<UsersQuery>,
) -> ApiResult<UsersPage> {
    let org = org_state(&state, &tenant).await?;
    let status = q.status.as_deref().map(parse_status).transpose()?;
    let mut counts = std::collections::BTreeMap::new();
    for u in org.users.values() {
        *counts.entry(u.status.to_string()).or_insert(0) += 1;
    }
    let matching: Vec<&switchboard::User> = match q.q.as_deref().filter(|t| !t.trim().is_empty()) {
        Some(text) => org.search_users(text, status),
        None => org
            .users
            .values()
            .map(|u| &**u)
            .filter(|u| status.is_none_or(|s| u.status == s))
            .collect(),
    };
    let (offset, limit) = page_bounds(q.offset, q.limit);
    Ok(Json(UsersPage {
        counts,
        total: matching.len(),
        users: matching
            .into_iter()
            .skip(offset)
            .take(limit)
            .map(UserRow::of)
            .collect(),
    }))
}

/// A user with everything the user screen shows.
#[derive(Debug, Serialize, ToSchema)]
pub struct UserDetails {
    /// The user.
    #[serde(flatten)]
    pub user: UserRow,
    /// Accounts they reach, with how (`as agent`, `as agency administrator`).
    pub accounts: Vec<AccountAccess>,
    /// Numbers assigned to them.
    pub numbers_assigned: Vec<String>,
    /// Numbers forwarded to them.
    pub numbers_forwarded: Vec<String>,
    /// Their team leader.
    pub reports_to: Option<String>,
    /// Their direct reports.
    pub reports: Vec<String>,
    /// Signed-in devices.
    #[schema(value_type = Vec<Object>)]
    pub devices: Vec<Value>,
    /// Work they own, by kind.
    #[schema(value_type = Object)]
    pub work: Value,
}

/// Access to one account.
#[derive(Debug, Serialize, ToSchema)]
pub struct AccountAccess {
    /// The account.
    pub account: String,
    /// Its name.
    pub name: String,
    /// The role, or absent for an agency administrator.
    pub role: Option<String>,
}

fn user_id(org: &Organization, id: &str) -> Result<UserId, ApiError> {
    id.parse::<UserId>()
        .ok()
        .filter(|u| org.user(*u).is_some())
        .ok_or_else(|| ApiError::not_found("user"))
}

/// A user's accounts, roles, numbers, reports, devices and work.
#[utoipa::path(get, path = "/api/v1/users/{id}", params(("id" = String, Path, description = "User id")),
    responses((status = 200, body = UserDetails), (status = 404, body = ApiError)),
    security(("bearer" = [])))]
async fn user_details(
    State(state): State<AppState>,
    Extension(tenant): Extension<Tenant>,
    Path(id): Path<String>,
) -> ApiResult<UserDetails> {
    let org = org_state(&state, &tenant).await?;
    let id = user_id(&org, &id)?;
    let u = &org.users[&id];
    let accounts = org
        .access_of(id)
        .into_iter()
        .map(|(a, via)| AccountAccess {
            account: a.to_string(),
            name: org
                .accounts
                .get(&a)
                .map(|x| x.name.clone())
                .unwrap_or_default(),
            role: match via {
                switchboard::query::AccessVia::Role(r) => Some(r.to_string()),
                switchboard::query::AccessVia::AgencyAdministrator => None,
            },
        })
        .collect();
    let work: serde_json::Map<String, Value> = org
        .work_by_kind(id)
        .into_iter()
        .map(|(kind, items)| {
            (
                format!("{kind:?}"),
                json!(items
                    .iter()
                    .map(|i| json!({"id": i.id.to_string(), "title": i.title}))
                    .collect::<Vec<_>>()),
            )
        })
        .collect();
    Ok(Json(UserDetails {
        user: UserRow::of(u),
        accounts,
        numbers_assigned: u.assigned_numbers.iter().map(|n| n.to_string()).collect(),
        numbers_forwarded: u.forwarded_numbers.iter().map(|n| n.to_string()).collect(),
        reports_to: u.reports_to.map(|l| l.to_string()),
        reports: u.direct_reports.iter().map(|r| r.to_string()).collect(),
        devices: org
            .devices_of(id)
            .into_iter()
            .map(
                |d| json!({"id": d.id.to_string(), "name": d.name, "signed_in_at": d.signed_in_at}),
            )
            .collect(),
        work: Value::Object(work),
    }))
}

// ---------------------------------------------------------------- commands

/// What a handled command did.
#[derive(Debug, Serialize, ToSchema)]
pub struct CommandResult {
    /// The command id (from `Idempotency-Key`, or fresh).
    pub command_id: String,
    /// The organization's version after it.
    pub version: u64,
    /// True when this key had been handled before: nothing new was recorded.
    pub duplicate: bool,
    /// The types of the events recorded.
    pub events: Vec<String>,
    /// What it created (ids by kind).
    #[schema(value_type = Object)]
    pub created: Value,
    /// Tokens issued (invitations, password resets): deliver them now, only
    /// their hashes are kept.
    #[schema(value_type = Vec<Object>)]
    pub secrets: Vec<Value>,
    /// The per-row report of a bulk command.
    #[schema(value_type = Object)]
    pub report: Option<Value>,
}

/// The command id of an `Idempotency-Key`: the first 16 bytes of its
/// SHA-256 (as a version-8 UUID). Command ids are scoped to the
/// organization by the service, so two organizations using the same key
/// never meet.
pub fn command_id_for_key(key: &str) -> CommandId {
    use sha2::Digest;
    let digest = sha2::Sha256::digest(key.as_bytes());
    let mut bytes = [0u8; 16];
    bytes.copy_from_slice(&digest[..16]);
    CommandId::from_uuid(uuid::Builder::from_custom_bytes(bytes).into_uuid())
}

fn created_json(c: &switchboard::Created) -> Value {
    let s = |v: Vec<String>| json!(v);
    json!({
        "users": s(c.users.iter().map(ToString::to_string).collect()),
        "accounts": s(c.accounts.iter().map(ToString::to_string).collect()),
        "roles": s(c.roles.iter().map(ToString::to_string).collect()),
        "invitations": s(c.invitations.iter().map(ToString::to_string).collect()),
        "numbers": s(c.numbers.iter().map(ToString::to_string).collect()),
        "work_items": s(c.work_items.iter().map(ToString::to_string).collect()),
        "devices": s(c.devices.iter().map(ToString::to_string).collect()),
    })
}

/// Sends any command (the library's `Command` as JSON, tagged by
/// `"command"`). `Idempotency-Key` becomes the command id: the same key
/// twice records nothing new and answers `duplicate: true`; the same key
/// for another command is 409.
#[utoipa::path(post, path = "/api/v1/commands",
    params(("Idempotency-Key" = Option<String>, Header, description = "At most 255 bytes; the same key twice is the same command")),
    request_body(content = Object, description = "A Command, e.g. {\"command\":\"CreateAccount\",\"name\":\"Sales\",\"parent\":\"…\"}"),
    responses((status = 200, body = CommandResult), (status = 400, body = ApiError), (status = 403, body = ApiError),
        (status = 404, body = ApiError), (status = 409, body = ApiError), (status = 422, body = ApiError)),
    security(("bearer" = [])))]
async fn send_command(
    State(state): State<AppState>,
    Extension(tenant): Extension<Tenant>,
    headers: HeaderMap,
    body: Bytes,
) -> ApiResult<CommandResult> {
    let command: Command =
        serde_json::from_slice(&body).map_err(|e| ApiError::bad(format!("not a command: {e}")))?;
    let command_id = match headers.get("idempotency-key") {
        Some(k) => {
            let k = k
                .to_str()
                .map_err(|_| ApiError::bad("Idempotency-Key must be visible ASCII"))?;
            if k.is_empty() || k.len() > MAX_IDEMPOTENCY_KEY {
                return Err(ApiError::bad("Idempotency-Key must have 1 to 255 bytes"));
            }
            command_id_for_key(k)
        }
        None => CommandId::from_uuid(uuid::Uuid::now_v7()),
    };
    let handled = state
        .service
        .handle(CommandRequest::new(
            tenant.org,
            command_id,
            tenant.actor.clone(),
            command,
        ))
        .await?;
    Ok(Json(CommandResult {
        command_id: command_id.to_string(),
        version: handled.version,
        duplicate: handled.duplicate,
        events: handled
            .events
            .iter()
            .map(|e| e.event_type().to_owned())
            .collect(),
        created: created_json(&handled.created()),
        secrets: handled
            .secrets
            .iter()
            .map(|s| serde_json::to_value(s).unwrap_or(Value::Null))
            .collect(),
        report: handled
            .report
            .as_ref()
            .map(|r| serde_json::to_value(r).unwrap_or(Value::Null)),
    }))
}

/// What an offboarding would do, without doing it.
#[derive(Debug, Serialize, ToSchema)]
pub struct DryRun {
    /// Whether it would be carried out.
    pub allowed: bool,
    /// The events it would record, in order.
    pub events: Vec<String>,
    /// Every blocker, when refused.
    pub blockers: Vec<BlockerView>,
}

/// The dry run of an offboarding (R-OFF-01, R-OFF-02): every blocker at once,
/// or the events it would record.
#[utoipa::path(post, path = "/api/v1/offboarding/dry-run",
    request_body(content = Object, description = "An Offboarding: {user, unassign_numbers, forward_numbers_to, reassign_reports, transfer_work_to, end}"),
    responses((status = 200, body = DryRun), (status = 400, body = ApiError)),
    security(("bearer" = [])))]
async fn dry_run_offboarding(
    State(state): State<AppState>,
    Extension(tenant): Extension<Tenant>,
    body: Bytes,
) -> ApiResult<DryRun> {
    let plan: Offboarding = serde_json::from_slice(&body)
        .map_err(|e| ApiError::bad(format!("not an offboarding: {e}")))?;
    let request = CommandRequest::new(
        tenant.org,
        CommandId::from_uuid(uuid::Uuid::now_v7()),
        tenant.actor.clone(),
        Command::Offboard(plan),
    );
    match state.service.dry_run(&request).await {
        Ok(decision) => Ok(Json(DryRun {
            allowed: true,
            events: decision
                .events
                .iter()
                .map(|e| e.event_type().to_owned())
                .collect(),
            blockers: Vec::new(),
        })),
        Err(ServiceError::Rejected(r)) => Ok(Json(DryRun {
            allowed: false,
            events: Vec::new(),
            blockers: blocker_views(&r.blockers),
        })),
        Err(e) => Err(e.into()),
    }
}

/// Query of a CSV upload.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct BulkQuery {
    /// `all_or_nothing` (default) or `partial` (R-BULK-03).
    pub mode: Option<String>,
}

/// The per-row report of a CSV upload.
#[derive(Debug, Serialize, ToSchema)]
pub struct BulkResult {
    /// Whether anything was recorded.
    pub applied: bool,
    /// Rows applied.
    pub rows_applied: usize,
    /// Rows rejected.
    pub rows_rejected: usize,
    /// Every row.
    #[schema(value_type = Vec<Object>)]
    pub rows: Vec<Value>,
}

/// CSV bulk upload (R-BULK-01..03): the body is the spreadsheet
/// (`text/csv`, header row first), the answer its per-row report. In
/// all-or-nothing mode a refused row refuses the upload (422) with the same
/// report.
#[utoipa::path(post, path = "/api/v1/bulk", params(BulkQuery, ("Idempotency-Key" = Option<String>, Header, description = "As for commands")),
    request_body(content = String, content_type = "text/csv"),
    responses((status = 200, body = BulkResult), (status = 422, body = BulkResult), (status = 413, description = "Larger than 4 MiB")),
    security(("bearer" = [])))]
async fn bulk_upload(
    State(state): State<AppState>,
    Extension(tenant): Extension<Tenant>,
    headers: HeaderMap,
    Query(q): Query<BulkQuery>,
    body: Bytes,
) -> Response {
    let mode = match q.mode.as_deref() {
        None | Some("all_or_nothing") => BulkMode::AllOrNothing,
        Some("partial") => BulkMode::Partial,
        Some(_) => return ApiError::bad("mode must be all_or_nothing or partial").into_response(),
    };
    let Ok(csv) = String::from_utf8(body.to_vec()) else {
        return ApiError::bad("the spreadsheet must be UTF-8").into_response();
    };
    let command_id = headers
        .get("idempotency-key")
        .and_then(|k| k.to_str().ok())
        .filter(|k| !k.is_empty() && k.len() <= MAX_IDEMPOTENCY_KEY)
        .map(command_id_for_key)
        .unwrap_or_else(|| CommandId::from_uuid(uuid::Uuid::now_v7()));
    let request = CommandRequest::new(
        tenant.org,
        command_id,
        tenant.actor.clone(),
        Command::BulkUpdate { csv, mode },
    );
    let rows = |r: &switchboard::bulk::BulkReport| {
        r.rows
            .iter()
            .map(|row| {
                let (status, blockers) = match &row.status {
                    switchboard::bulk::RowStatus::Applied { .. } => ("applied", vec![]),
                    switchboard::bulk::RowStatus::Unchanged => ("unchanged", vec![]),
                    switchboard::bulk::RowStatus::Rejected { blockers } => {
                        ("rejected", blocker_views(blockers))
                    }
                };
                json!({
                    "row": row.row,
                    "user": row.user.map(|u| u.to_string()),
                    "status": status,
                    "blockers": blockers,
                })
            })
            .collect::<Vec<_>>()
    };
    match state.service.handle(request).await {
        Ok(h) => {
            let report = h.report.unwrap_or_default();
            Json(BulkResult {
                applied: !h.events.is_empty(),
                rows_applied: report.applied(),
                rows_rejected: report.rejected(),
                rows: rows(&report),
            })
            .into_response()
        }
        Err(ServiceError::Rejected(r)) => {
            let rejected: Vec<switchboard::bulk::RowOutcome> = r
                .blockers
                .iter()
                .flat_map(|b| match b {
                    Blocker::BulkRowsRejected { rows } => rows.clone(),
                    _ => Vec::new(),
                })
                .collect();
            if rejected.is_empty() {
                return ApiError::from(ServiceError::Rejected(r)).into_response();
            }
            let report = switchboard::bulk::BulkReport { rows: rejected };
            (
                StatusCode::UNPROCESSABLE_ENTITY,
                Json(BulkResult {
                    applied: false,
                    rows_applied: 0,
                    rows_rejected: report.rejected(),
                    rows: rows(&report),
                }),
            )
                .into_response()
        }
        Err(e) => ApiError::from(e).into_response(),
    }
}

// ---------------------------------------------------------------- audit

/// Whose trail: exactly one of `user`, `account`, `number`.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct TrailQuery {
    /// A user id.
    pub user: Option<String>,
    /// An account id.
    pub account: Option<String>,
    /// A phone number (E.164).
    pub number: Option<String>,
    /// Entries to skip.
    pub offset: Option<usize>,
    /// Entries to return (at most 500, default 100).
    pub limit: Option<usize>,
}

/// A page of an entity's trail, oldest first.
#[derive(Debug, Serialize, ToSchema)]
pub struct TrailPage {
    /// Entries in the whole trail.
    pub total: usize,
    /// Whether the library cut the trail (more than 100 000 entries).
    pub truncated: bool,
    /// This page.
    #[schema(value_type = Vec<Object>)]
    pub entries: Vec<Value>,
}

/// An entity's audit trail.
#[utoipa::path(get, path = "/api/v1/audit/trail", params(TrailQuery),
    responses((status = 200, body = TrailPage), (status = 400, body = ApiError), (status = 404, body = ApiError)),
    security(("bearer" = [])))]
async fn trail(
    State(state): State<AppState>,
    Extension(tenant): Extension<Tenant>,
    Query(q): Query<TrailQuery>,
) -> ApiResult<TrailPage> {
    let org = org_state(&state, &tenant).await?;
    let subject = match (&q.user, &q.account, &q.number) {
        (Some(u), None, None) => Subject::User(user_id(&org, u)?),
        (None, Some(a), None) => Subject::Account(account_id(&org, a)?),
        (None, None, Some(n)) => Subject::Number(number(&org, n)?),
        _ => return Err(ApiError::bad("name exactly one of user, account, number")),
    };
    let trail = state.service.trail(tenant.org, subject).await?;
    let (offset, limit) = page_bounds(q.offset, q.limit);
    Ok(Json(TrailPage {
        total: trail.entries.len(),
        truncated: trail.truncated,
        entries: trail
            .entries
            .iter()
            .skip(offset)
            .take(limit)
            .map(|e| {
                json!({
                    "version": e.version,
                    "position": e.position.to_string(),
                    "occurred_at": e.occurred_at,
                    "actor": e.actor,
                    "actor_label": e.actor_label,
                    "command_id": e.command_id.map(|c| c.to_string()),
                    "event_type": e.event_type,
                    "sentence": e.sentence,
                })
            })
            .collect(),
    }))
}

fn account_id(org: &Organization, id: &str) -> Result<AccountId, ApiError> {
    id.parse::<AccountId>()
        .ok()
        .filter(|a| org.accounts.contains_key(a))
        .ok_or_else(|| ApiError::not_found("account"))
}

fn number(org: &Organization, n: &str) -> Result<PhoneNumber, ApiError> {
    // As the commands read numbers: normalised to E.164 (R-NUM-06).
    switchboard::validate::phone_number("number", switchboard::RuleId::UniqueNumber, n)
        .ok()
        .filter(|n| org.numbers.contains_key(n))
        .ok_or_else(|| ApiError::not_found("number"))
}

fn instant(at: &Option<String>) -> Result<chrono::DateTime<chrono::Utc>, ApiError> {
    let at = at
        .as_deref()
        .ok_or_else(|| ApiError::bad("at (RFC 3339) is required"))?;
    chrono::DateTime::parse_from_rfc3339(at)
        .map(|t| t.with_timezone(&chrono::Utc))
        .map_err(|_| ApiError::bad("at must be an RFC 3339 instant"))
}

/// An instant, and optionally an account, a number or a user.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct AtQuery {
    /// The instant, RFC 3339.
    pub at: Option<String>,
    /// An account id (who had access).
    pub account: Option<String>,
    /// A phone number (where it routed).
    pub number: Option<String>,
}

/// The organization as of an instant (its users and accounts then).
#[derive(Debug, Serialize, ToSchema)]
pub struct StateAsOf {
    /// The stream version the instant stands for.
    pub version: u64,
    /// Users then, at most 500 (by id).
    pub users: Vec<UserRow>,
    /// Users then, all.
    pub users_total: usize,
    /// Accounts then.
    #[schema(value_type = Vec<Object>)]
    pub accounts: Vec<Value>,
}

/// The organization's state as of an instant.
#[utoipa::path(get, path = "/api/v1/audit/state", params(AtQuery),
    responses((status = 200, body = StateAsOf), (status = 400, body = ApiError)),
    security(("bearer" = [])))]
async fn state_as_of(
    State(state): State<AppState>,
    Extension(tenant): Extension<Tenant>,
    Query(q): Query<AtQuery>,
) -> ApiResult<StateAsOf> {
    let at = instant(&q.at)?;
    let then = state
        .service
        .load_as_of(tenant.org, AsOf::Instant(at))
        .await?;
    Ok(Json(StateAsOf {
        version: then.version,
        users_total: then.users.len(),
        users: then
            .users
            .values()
            .take(MAX_PAGE)
            .map(|u| UserRow::of(u))
            .collect(),
        accounts: then
            .accounts
            .values()
            .take(MAX_PAGE)
            .map(|a| json!({"id": a.id.to_string(), "name": a.name, "parent": a.parent.map(|p| p.to_string())}))
            .collect(),
    }))
}

/// Who had access to an account at an instant.
#[utoipa::path(get, path = "/api/v1/audit/access", params(AtQuery),
    responses((status = 200, body = Vec<Object>), (status = 400, body = ApiError), (status = 404, body = ApiError)),
    security(("bearer" = [])))]
async fn who_had_access(
    State(state): State<AppState>,
    Extension(tenant): Extension<Tenant>,
    Query(q): Query<AtQuery>,
) -> ApiResult<Vec<Value>> {
    let at = instant(&q.at)?;
    let org = org_state(&state, &tenant).await?;
    let account = account_id(&org, q.account.as_deref().unwrap_or(""))?;
    let who = state
        .service
        .who_had_access(tenant.org, account, at)
        .await?;
    Ok(Json(
        who.into_iter()
            .take(MAX_PAGE)
            .map(|a| json!({"user": a.user.to_string(), "label": a.label, "via": a.via.to_string(), "status": a.status.to_string()}))
            .collect(),
    ))
}

/// Where a number routed at an instant.
#[utoipa::path(get, path = "/api/v1/audit/routing", params(AtQuery),
    responses((status = 200, body = Object), (status = 400, body = ApiError), (status = 404, body = ApiError)),
    security(("bearer" = [])))]
async fn number_routing(
    State(state): State<AppState>,
    Extension(tenant): Extension<Tenant>,
    Query(q): Query<AtQuery>,
) -> ApiResult<Value> {
    let at = instant(&q.at)?;
    let org = org_state(&state, &tenant).await?;
    let n = number(&org, q.number.as_deref().unwrap_or(""))?;
    let routing = state.service.number_routing_at(tenant.org, &n, at).await?;
    use switchboard::audit::Routing;
    Ok(Json(match routing {
        Routing::Assigned(u) => json!({"routing": "assigned", "user": u.to_string()}),
        Routing::Forwarded(u) => json!({"routing": "forwarded", "user": u.to_string()}),
        Routing::Nobody => json!({"routing": "nobody"}),
        Routing::NotHeld => json!({"routing": "not_held"}),
    }))
}

/// A user.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct UserQuery {
    /// A user id.
    pub user: String,
}

/// Who deactivated a user, and when.
#[utoipa::path(get, path = "/api/v1/audit/deactivations", params(UserQuery),
    responses((status = 200, body = Vec<Object>), (status = 404, body = ApiError)),
    security(("bearer" = [])))]
async fn deactivations(
    State(state): State<AppState>,
    Extension(tenant): Extension<Tenant>,
    Query(q): Query<UserQuery>,
) -> ApiResult<Vec<Value>> {
    let org = org_state(&state, &tenant).await?;
    let user = user_id(&org, &q.user)?;
    let list = state.service.who_deactivated(tenant.org, user).await?;
    Ok(Json(
        list.into_iter()
            .take(MAX_PAGE)
            .map(|d| json!({"by": d.by, "by_label": d.by_label, "at": d.at, "command_id": d.command_id.map(|c| c.to_string()), "version": d.version}))
            .collect(),
    ))
}

// ---------------------------------------------------------------- live feed

/// Where the feed resumes.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct FeedQuery {
    /// The last event seen (`<commit>.<sequence>`, as in the events' `id`);
    /// the `Last-Event-ID` header wins over it.
    pub after: Option<String>,
}

fn parse_position(s: &str) -> Option<Position> {
    let (c, q) = s.trim().split_once('.')?;
    Some(Position::new(c.parse().ok()?, q.parse().ok()?))
}

/// The organization's events as Server-Sent Events, from the start (or after
/// `Last-Event-ID`) and then live: a catch-up subscription. Each event's
/// `id` is its position in the log, so a reconnecting `EventSource`
/// resumes where it stopped; `event` is the event type; `data` is the
/// event with its envelope (personal data opened, erased once deleted).
#[utoipa::path(get, path = "/api/v1/events",
    params(FeedQuery, ("Last-Event-ID" = Option<String>, Header, description = "Resume after this event")),
    responses((status = 200, description = "text/event-stream", content_type = "text/event-stream"), (status = 400, body = ApiError),
        (status = 503, description = "Too many live feeds open", body = ApiError)),
    security(("bearer" = [])))]
async fn events(
    State(state): State<AppState>,
    Extension(tenant): Extension<Tenant>,
    headers: HeaderMap,
    Query(q): Query<FeedQuery>,
) -> Result<Sse<impl Stream<Item = Result<SseEvent, Infallible>>>, ApiError> {
    let resume = headers
        .get("last-event-id")
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned)
        .or(q.after);
    let after = match resume {
        Some(s) => Some(
            parse_position(&s)
                .ok_or_else(|| ApiError::bad("Last-Event-ID must be <commit>.<sequence>"))?,
        ),
        None => None,
    };
    let permit = state.feeds.clone().try_acquire_owned().map_err(|_| {
        ApiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "busy",
            "too many live feeds are open; retry later",
        )
    })?;
    let stream = async_stream::stream! {
        // Held while the feed is open.
        let _permit = permit;
        // The subscription reads the whole log (every organization) and keeps
        // this organization's events: the store has no per-stream
        // subscription to follow.
        let subscription = switchboard::subscribe(&*state.store, after, FEED_PAGE);
        futures_util::pin_mut!(subscription);
        let mut stopping = state.stopping();
        loop {
            // A shutdown ends every feed, so that the graceful shutdown does
            // not wait for clients that never hang up.
            let next = tokio::select! {
                next = subscription.next() => next,
                _ = stopping.wait_for(|stop| *stop) => None,
            };
            let Some(next) = next else { break };
            let recorded = match next {
                Ok(r) if r.stream == tenant.org => r,
                Ok(_) => continue,
                Err(error) => {
                    tracing::error!(%error, "event feed failed");
                    break;
                }
            };
            let decoded = state
                .service
                .read_decoded(tenant.org, recorded.version, Some(recorded.version), 1)
                .await
                .ok()
                .and_then(|mut page| page.pop())
                .map(|(_, e)| serde_json::to_value(&e).unwrap_or(Value::Null));
            let data = json!({
                "org": recorded.stream.to_string(),
                "version": recorded.version,
                "event_type": recorded.event_type,
                "occurred_at": recorded.metadata.occurred_at,
                "actor": recorded.metadata.actor,
                "command_id": recorded.metadata.command_id.map(|c| c.to_string()),
                "event": decoded,
            });
            yield Ok(SseEvent::default()
                .id(recorded.position.to_string())
                .event(recorded.event_type.clone())
                .data(data.to_string()));
        }
    };
    Ok(Sse::new(stream).keep_alive(KeepAlive::default()))
}

// ---------------------------------------------------------------- OpenAPI

struct BearerAuth;

impl utoipa::Modify for BearerAuth {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "bearer",
            SecurityScheme::Http(HttpBuilder::new().scheme(HttpAuthScheme::Bearer).build()),
        );
    }
}

/// The OpenAPI document of the admin API.
#[derive(OpenApi)]
#[openapi(
    info(title = "Switchboard directory admin API", version = "1"),
    paths(list_users, user_details, send_command, dry_run_offboarding, bulk_upload, trail,
        state_as_of, who_had_access, number_routing, deactivations, events),
    components(schemas(ApiError, BlockerView, UserRow, UsersPage, UserDetails, AccountAccess,
        CommandResult, DryRun, BulkResult, TrailPage, StateAsOf)),
    modifiers(&BearerAuth)
)]
pub struct ApiDoc;

/// Serves the OpenAPI document (no token needed: it describes, it reveals nothing).
pub async fn openapi_json() -> Json<utoipa::openapi::OpenApi> {
    Json(ApiDoc::openapi())
}
