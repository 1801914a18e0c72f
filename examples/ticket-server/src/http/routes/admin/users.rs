//! User management for admins: look accounts up, grant and revoke roles, set tiers, block
//! and unblock, and read the account audit trail. Every change is atomic with its audit
//! record (who, whom, from, to, when; [`crate::stores::accounts::AccountStore::set_role`] and
//! siblings). Admins only: anyone else 403, no token 401.
//!
//! | route | does |
//! |---|---|
//! | `GET /api/admin/users?email=` | the account with this email |
//! | `GET /api/admin/users/{id}` | an account: role, tiers, blocked |
//! | `PUT /api/admin/users/{id}/role` | `{"role": "GATE"}`; revokes the user's access tokens |
//! | `PUT /api/admin/users/{id}/tiers` | `{"tiers": ["GOLD"]}` |
//! | `POST /api/admin/users/{id}/block` | blocks; revokes their tokens; their queue tickets leave |
//! | `POST /api/admin/users/{id}/unblock` | unblocks |
//! | `GET /api/admin/account-audit?after=&limit=` | the account audit trail, oldest first, by cursor |
//!
//! Every handler is described for `GET /openapi.json` by its `#[utoipa::path]` (tag `admin`).

use axum::extract::rejection::QueryRejection;
use axum::extract::{Path, Query, State};
use axum::routing::{get, post, put};
use axum::{Json, Router};
use serde::{Deserialize, Serialize};

use crate::http::error::{ApiError, ErrorBody};
use crate::http::extract::{AdminUser, JsonBody};
use crate::http::routes::auth::role_schema;
use crate::runtime::state::AppState;
use crate::stores::accounts::{
    AccountAuditRecord, AccountChange, MAX_TIER_LEN, MAX_TIERS, Role, User, UserId,
};

/// Largest `limit` of the audit trail.
const MAX_AUDIT_PAGE: usize = 100;
/// `limit` of the audit trail when none is given.
const DEFAULT_AUDIT_PAGE: usize = 50;
/// Largest `after` cursor accepted (far beyond any trail; fits every backend).
const MAX_CURSOR: u64 = 1_000_000_000_000_000_000;

/// The routes of user management.
pub fn router() -> Router<AppState> {
    Router::new()
        .route("/api/admin/users", get(find_user))
        .route("/api/admin/users/{id}", get(read_user))
        .route("/api/admin/users/{id}/role", put(set_role))
        .route("/api/admin/users/{id}/tiers", put(set_tiers))
        .route("/api/admin/users/{id}/block", post(block))
        .route("/api/admin/users/{id}/unblock", post(unblock))
        .route("/api/admin/account-audit", get(account_audit))
}

/// An account as admins see it.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct UserView {
    /// The account's id.
    #[schema(value_type = String, format = "uuid")]
    pub id: UserId,
    /// Its normalised email.
    pub email: String,
    /// `USER`, `ADMIN` or `GATE`.
    #[schema(schema_with = role_schema)]
    pub role: Role,
    /// Its tiers (set only by admins).
    pub tiers: Vec<String>,
    /// Blocked: cannot join queues, hold or pay.
    pub blocked: bool,
    /// Creation time, epoch ms.
    pub created_at: i64,
}

impl From<User> for UserView {
    fn from(u: User) -> Self {
        Self {
            id: u.id,
            email: u.email,
            role: u.role,
            tiers: u.tiers,
            blocked: u.blocked,
            created_at: u.created_at.as_millis(),
        }
    }
}

/// Body of `PUT /api/admin/users/{id}/role`.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RoleBody {
    /// The new role.
    #[schema(schema_with = role_schema)]
    pub role: Role,
}

/// Body of `PUT /api/admin/users/{id}/tiers`.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct TiersBody {
    /// The account's tiers (replacing the old ones); `[]` for none.
    #[schema(schema_with = tiers_schema)]
    pub tiers: Vec<String>,
}

/// The schema of [`TiersBody::tiers`]: up to [`MAX_TIERS`] distinct names.
fn tiers_schema() -> utoipa::openapi::schema::Array {
    use utoipa::openapi::schema::{ArrayBuilder, ObjectBuilder, Type};
    let pattern = format!("^[A-Z0-9_-]{{1,{MAX_TIER_LEN}}}$");
    ArrayBuilder::new()
        .items(
            ObjectBuilder::new()
                .schema_type(Type::String)
                .min_length(Some(1))
                .max_length(Some(MAX_TIER_LEN))
                .pattern(Some(pattern)),
        )
        .max_items(Some(MAX_TIERS))
        .unique_items(true)
        .description(Some("Tier names, each at most once"))
        .build()
}

/// The query of `GET /api/admin/users`.
#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
struct FindQuery {
    /// The email (normalised before the lookup).
    email: String,
}

/// The query of `GET /api/admin/account-audit`, as text so every problem gets a clear
/// message.
#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
struct AuditQuery {
    /// Records after this `seq` (the previous page's `next_after`); from the start when
    /// absent.
    #[serde(default)]
    #[param(value_type = Option<u64>, minimum = 0, maximum = 1_000_000_000_000_000_000_u64)]
    after: Option<String>,
    /// How many records, 1 to 100 (default 50).
    #[serde(default)]
    #[param(value_type = Option<u32>, minimum = 1, maximum = 100)]
    limit: Option<String>,
}

/// One account audit record.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct AccountAuditView {
    /// Position in the trail: the paging cursor.
    pub seq: u64,
    /// When, epoch ms.
    pub at: i64,
    /// The admin who made the change.
    #[schema(value_type = String, format = "uuid")]
    pub actor: UserId,
    /// The account changed.
    #[schema(value_type = String, format = "uuid")]
    pub target: UserId,
    /// What changed.
    #[schema(schema_with = change_schema)]
    pub change: AccountChange,
    /// The value before (`ROLE`: a role; `TIERS`: tiers joined by `,`; `BLOCKED`:
    /// `true`/`false`).
    pub from: String,
    /// The value after, spelled as `from`.
    pub to: String,
}

fn change_schema() -> utoipa::openapi::Object {
    crate::http::openapi::text_enum(
        AccountChange::ALL.map(AccountChange::as_str),
        "`ROLE`, `TIERS` or `BLOCKED`",
    )
}

impl From<AccountAuditRecord> for AccountAuditView {
    fn from(r: AccountAuditRecord) -> Self {
        Self {
            seq: r.seq,
            at: r.at.as_millis(),
            actor: r.actor,
            target: r.target,
            change: r.change,
            from: r.from,
            to: r.to,
        }
    }
}

/// A page of the account audit trail.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct AccountAuditPage {
    /// Oldest first.
    pub records: Vec<AccountAuditView>,
    /// Pass as `after` for the next page; `null` when this page is the last.
    pub next_after: Option<u64>,
}

/// A user id from the path (400 `VALIDATION` when malformed).
fn user_id(raw: &str) -> Result<UserId, ApiError> {
    raw.parse()
        .map_err(|_| ApiError::validation(format!("not a user id: {raw:?}")))
}

/// The account's view after a change.
async fn view(state: &AppState, id: UserId) -> Result<Json<UserView>, ApiError> {
    Ok(Json(state.accounts.user(id).await?.into()))
}

/// Finds an account by email.
#[utoipa::path(
    get,
    path = "/api/admin/users",
    tag = "admin",
    summary = "Find an account by email (admin)",
    params(FindQuery),
    security(("bearer" = [])),
    responses(
        (status = 200, description = "The account", body = UserView),
        (status = 400, description = "A missing `email` or an unknown parameter: `VALIDATION`", body = ErrorBody),
        (status = 401, description = "No valid access token: `UNAUTHORIZED`, `TOKEN_EXPIRED`, `TOKEN_REVOKED`", body = ErrorBody),
        (status = 403, description = "Not an admin: `FORBIDDEN`", body = ErrorBody),
        (status = 404, description = "No account has this email: `NOT_FOUND`", body = ErrorBody),
        (status = 503, description = "Storage unavailable: `UNAVAILABLE` (with `Retry-After`)", body = ErrorBody),
    )
)]
async fn find_user(
    State(state): State<AppState>,
    _admin: AdminUser,
    query: Result<Query<FindQuery>, QueryRejection>,
) -> Result<Json<UserView>, ApiError> {
    let Query(q) = query.map_err(|e| ApiError::validation(e.body_text()))?;
    Ok(Json(state.accounts.user_by_email(&q.email).await?.into()))
}

/// Reads an account: role, tiers, blocked.
#[utoipa::path(
    get,
    path = "/api/admin/users/{id}",
    tag = "admin",
    summary = "An account (admin)",
    params(("id" = String, Path, format = "uuid", description = "The account's id")),
    security(("bearer" = [])),
    responses(
        (status = 200, description = "The account", body = UserView),
        (status = 400, description = "A malformed id: `VALIDATION`", body = ErrorBody),
        (status = 401, description = "No valid access token: `UNAUTHORIZED`, `TOKEN_EXPIRED`, `TOKEN_REVOKED`", body = ErrorBody),
        (status = 403, description = "Not an admin: `FORBIDDEN`", body = ErrorBody),
        (status = 404, description = "No such account: `NOT_FOUND`", body = ErrorBody),
        (status = 503, description = "Storage unavailable: `UNAVAILABLE` (with `Retry-After`)", body = ErrorBody),
    )
)]
async fn read_user(
    State(state): State<AppState>,
    _admin: AdminUser,
    Path(id): Path<String>,
) -> Result<Json<UserView>, ApiError> {
    view(&state, user_id(&id)?).await
}

/// Grants or revokes a role. The user's access tokens stop at once (a refresh gives one
/// with the new role); the change is audited. The same role again changes nothing.
#[utoipa::path(
    put,
    path = "/api/admin/users/{id}/role",
    tag = "admin",
    summary = "Set an account's role (admin)",
    params(("id" = String, Path, format = "uuid", description = "The account's id")),
    request_body = RoleBody,
    security(("bearer" = [])),
    responses(
        (status = 200, description = "The account after the change", body = UserView),
        (status = 400, description = "A malformed id or body, or an unknown role: `VALIDATION`", body = ErrorBody),
        (status = 401, description = "No valid access token: `UNAUTHORIZED`, `TOKEN_EXPIRED`, `TOKEN_REVOKED`", body = ErrorBody),
        (status = 403, description = "Not an admin: `FORBIDDEN`", body = ErrorBody),
        (status = 404, description = "No such account: `NOT_FOUND`", body = ErrorBody),
        (status = 409, description = "My own role (`OWN_ACCOUNT`) or the last admin (`LAST_ADMIN`): nothing changed", body = ErrorBody),
        (status = 503, description = "Storage unavailable: `UNAVAILABLE` (with `Retry-After`)", body = ErrorBody),
    )
)]
async fn set_role(
    State(state): State<AppState>,
    AdminUser(admin): AdminUser,
    Path(id): Path<String>,
    JsonBody(body): JsonBody<RoleBody>,
) -> Result<Json<UserView>, ApiError> {
    let target = user_id(&id)?;
    let now = state.clock.now();
    if let Some(r) = state
        .accounts
        .set_role(admin.id, target, body.role, now)
        .await?
    {
        tracing::info!(admin = %admin.id, user = %target, from = %r.from, to = %r.to, "role changed");
    }
    view(&state, target).await
}

/// Sets an account's tiers (replacing them); audited. Tiers decide presales and
/// tier-reserved grades; buyers can never name one themselves.
#[utoipa::path(
    put,
    path = "/api/admin/users/{id}/tiers",
    tag = "admin",
    summary = "Set an account's tiers (admin)",
    params(("id" = String, Path, format = "uuid", description = "The account's id")),
    request_body = TiersBody,
    security(("bearer" = [])),
    responses(
        (status = 200, description = "The account after the change", body = UserView),
        (status = 400, description = "A malformed id or body, a bad tier name, a tier twice or too many: `VALIDATION`", body = ErrorBody),
        (status = 401, description = "No valid access token: `UNAUTHORIZED`, `TOKEN_EXPIRED`, `TOKEN_REVOKED`", body = ErrorBody),
        (status = 403, description = "Not an admin: `FORBIDDEN`", body = ErrorBody),
        (status = 404, description = "No such account: `NOT_FOUND`", body = ErrorBody),
        (status = 503, description = "Storage unavailable: `UNAVAILABLE` (with `Retry-After`)", body = ErrorBody),
    )
)]
async fn set_tiers(
    State(state): State<AppState>,
    AdminUser(admin): AdminUser,
    Path(id): Path<String>,
    JsonBody(body): JsonBody<TiersBody>,
) -> Result<Json<UserView>, ApiError> {
    let target = user_id(&id)?;
    let now = state.clock.now();
    state
        .accounts
        .set_tiers(admin.id, target, &body.tiers, now)
        .await?;
    view(&state, target).await
}

/// Blocks an account: it cannot join queues, hold or pay (403 `USER_BLOCKED`), its tokens
/// stop at once, and its waiting queue tickets leave every queue. Audited; a repeat only
/// sweeps the queues again.
#[utoipa::path(
    post,
    path = "/api/admin/users/{id}/block",
    tag = "admin",
    summary = "Block an account (admin)",
    params(("id" = String, Path, format = "uuid", description = "The account's id")),
    security(("bearer" = [])),
    responses(
        (status = 200, description = "The account, now blocked", body = UserView),
        (status = 400, description = "A malformed id: `VALIDATION`", body = ErrorBody),
        (status = 401, description = "No valid access token: `UNAUTHORIZED`, `TOKEN_EXPIRED`, `TOKEN_REVOKED`", body = ErrorBody),
        (status = 403, description = "Not an admin: `FORBIDDEN`", body = ErrorBody),
        (status = 404, description = "No such account: `NOT_FOUND`", body = ErrorBody),
        (status = 409, description = "Myself (`OWN_ACCOUNT`) or an admin (`ADMIN_NOT_BLOCKABLE`): nothing changed", body = ErrorBody),
        (status = 503, description = "Storage unavailable: `UNAVAILABLE` (with `Retry-After`)", body = ErrorBody),
    )
)]
async fn block(
    State(state): State<AppState>,
    AdminUser(admin): AdminUser,
    Path(id): Path<String>,
) -> Result<Json<UserView>, ApiError> {
    let target = user_id(&id)?;
    crate::services::blocking::block(&state, admin.id, target).await?;
    view(&state, target).await
}

/// Unblocks an account (audited). Tokens revoked by the block stay revoked: the user logs
/// in again.
#[utoipa::path(
    post,
    path = "/api/admin/users/{id}/unblock",
    tag = "admin",
    summary = "Unblock an account (admin)",
    params(("id" = String, Path, format = "uuid", description = "The account's id")),
    security(("bearer" = [])),
    responses(
        (status = 200, description = "The account, now unblocked", body = UserView),
        (status = 400, description = "A malformed id: `VALIDATION`", body = ErrorBody),
        (status = 401, description = "No valid access token: `UNAUTHORIZED`, `TOKEN_EXPIRED`, `TOKEN_REVOKED`", body = ErrorBody),
        (status = 403, description = "Not an admin: `FORBIDDEN`", body = ErrorBody),
        (status = 404, description = "No such account: `NOT_FOUND`", body = ErrorBody),
        (status = 409, description = "Myself: `OWN_ACCOUNT`", body = ErrorBody),
        (status = 503, description = "Storage unavailable: `UNAVAILABLE` (with `Retry-After`)", body = ErrorBody),
    )
)]
async fn unblock(
    State(state): State<AppState>,
    AdminUser(admin): AdminUser,
    Path(id): Path<String>,
) -> Result<Json<UserView>, ApiError> {
    let target = user_id(&id)?;
    let now = state.clock.now();
    state
        .accounts
        .set_blocked(admin.id, target, false, now)
        .await?;
    view(&state, target).await
}

/// The account audit trail (role, tier and block changes), oldest first, paged by `seq`.
#[utoipa::path(
    get,
    path = "/api/admin/account-audit",
    tag = "admin",
    summary = "Account changes by admins (admin)",
    params(AuditQuery),
    security(("bearer" = [])),
    responses(
        (status = 200, description = "A page of records", body = AccountAuditPage),
        (status = 400, description = "A bad `after` or `limit`, or an unknown parameter: `VALIDATION`", body = ErrorBody),
        (status = 401, description = "No valid access token: `UNAUTHORIZED`, `TOKEN_EXPIRED`, `TOKEN_REVOKED`", body = ErrorBody),
        (status = 403, description = "Not an admin: `FORBIDDEN`", body = ErrorBody),
        (status = 503, description = "Storage unavailable: `UNAVAILABLE` (with `Retry-After`)", body = ErrorBody),
    )
)]
async fn account_audit(
    State(state): State<AppState>,
    _admin: AdminUser,
    query: Result<Query<AuditQuery>, QueryRejection>,
) -> Result<Json<AccountAuditPage>, ApiError> {
    let Query(q) = query.map_err(|e| ApiError::validation(e.body_text()))?;
    let after = match q.after.as_deref() {
        None => None,
        Some(raw) => match raw.parse::<u64>() {
            Ok(n) if n <= MAX_CURSOR => Some(n),
            _ => {
                return Err(ApiError::validation(format!(
                    "after must be an integer from 0 to {MAX_CURSOR}"
                )));
            }
        },
    };
    let limit = match q.limit.as_deref() {
        None => DEFAULT_AUDIT_PAGE,
        Some(raw) => match raw.parse::<usize>() {
            Ok(n) if (1..=MAX_AUDIT_PAGE).contains(&n) => n,
            _ => {
                return Err(ApiError::validation(
                    "limit must be an integer from 1 to 100",
                ));
            }
        },
    };
    let records = state.accounts.account_audit(after, limit).await?;
    let next_after = (records.len() == limit)
        .then(|| records.last().map(|r| r.seq))
        .flatten();
    Ok(Json(AccountAuditPage {
        records: records.into_iter().map(Into::into).collect(),
        next_after,
    }))
}
