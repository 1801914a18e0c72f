//! `GET /api/admin/security-audit?limit=&cursor=`: the refusals for abuse
//! ([`crate::stores::security_audit`]), newest first, paged by cursor (admins only; anyone else 403,
//! no token 401). Described for `GET /openapi.json` by its `#[utoipa::path]` (tag `admin`).

use axum::extract::rejection::QueryRejection;
use axum::extract::{Query, State};
use axum::routing::get;
use axum::{Json, Router};
use serde::{Deserialize, Serialize};

use crate::http::error::{ApiError, ErrorBody};
use crate::http::extract::AdminUser;
use crate::runtime::state::AppState;
use crate::stores::security_audit::{AbuseReason, AuditCursor, AuditError, StoredAbuse};

/// The largest `limit`.
pub const MAX_LIMIT: usize = 500;

/// `limit` when none is given.
pub const DEFAULT_LIMIT: usize = 100;

/// The route.
pub fn router() -> Router<AppState> {
    Router::new().route("/api/admin/security-audit", get(security_audit))
}

/// The query, as text so every problem gets a clear message.
#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
struct PageQuery {
    /// How many records, 1 to 500 (default 100).
    #[serde(default)]
    #[param(value_type = Option<u32>, minimum = 1, maximum = 500)]
    limit: Option<String>,
    /// Read records older than this one: the `next_cursor` of the previous page.
    #[serde(default)]
    #[param(value_type = Option<String>, pattern = "^[0-9]{1,19}-[0-9]{1,19}$")]
    cursor: Option<String>,
}

/// One refusal for abuse.
#[derive(Debug, Serialize, utoipa::ToSchema)]
struct AbuseAnswer {
    /// The record's place; pass it as `cursor` to read older records.
    #[schema(pattern = "^[0-9]{1,19}-[0-9]{1,19}$")]
    id: String,
    /// When, epoch ms.
    at: i64,
    /// The user, when the request named one (a valid token, a known login email).
    #[schema(format = "uuid")]
    actor: Option<String>,
    /// Why: `RATE_LIMITED`, `LOGIN_THROTTLED` or `USER_BLOCKED`.
    #[schema(schema_with = reason_schema)]
    reason: String,
    /// The client's address (after `--trusted-proxies`), when known.
    client_ip: Option<String>,
    /// `METHOD /route/template`.
    route: String,
    /// Which limit, in a few words.
    detail: String,
}

/// A page of records, newest first.
#[derive(Debug, Serialize, utoipa::ToSchema)]
struct SecurityAuditPage {
    /// The records, newest first.
    records: Vec<AbuseAnswer>,
    /// The cursor of the next (older) page; `null` when this page is the last.
    #[schema(pattern = "^[0-9]{1,19}-[0-9]{1,19}$")]
    next_cursor: Option<String>,
}

fn reason_schema() -> utoipa::openapi::Object {
    crate::http::openapi::text_enum(
        AbuseReason::ALL.map(AbuseReason::as_str),
        "Why the request was refused",
    )
}

impl From<StoredAbuse> for AbuseAnswer {
    fn from(s: StoredAbuse) -> Self {
        let r = s.record;
        Self {
            id: s.id.to_string(),
            at: r.at.as_millis(),
            actor: r.actor.map(|a| a.to_string()),
            reason: r.reason.as_str().to_owned(),
            client_ip: r.client_ip.map(|ip| ip.to_string()),
            route: r.route,
            detail: r.detail,
        }
    }
}

fn parse(q: PageQuery) -> Result<(Option<AuditCursor>, usize), ApiError> {
    let limit = match q.limit {
        None => DEFAULT_LIMIT,
        Some(raw) => match raw.parse::<usize>() {
            Ok(n) if (1..=MAX_LIMIT).contains(&n) && !raw.starts_with('+') => n,
            _ => {
                return Err(ApiError::validation(format!(
                    "limit must be an integer from 1 to {MAX_LIMIT}, not {raw:?}"
                )));
            }
        },
    };
    let cursor = q
        .cursor
        .map(|c| c.parse::<AuditCursor>())
        .transpose()
        .map_err(|e| ApiError::validation(e.to_string()))?;
    Ok((cursor, limit))
}

fn store_error(e: AuditError) -> ApiError {
    tracing::warn!("security audit: {e}");
    ApiError::new(
        axum::http::StatusCode::SERVICE_UNAVAILABLE,
        "UNAVAILABLE",
        "storage unavailable, retry",
    )
    .retry_after(std::time::Duration::from_secs(1))
}

/// The refusals for abuse, newest first.
#[utoipa::path(
    get,
    path = "/api/admin/security-audit",
    operation_id = "read_security_audit",
    tag = "admin",
    summary = "Refusals for abuse, newest first (admin)",
    description = "Every refusal for abuse (rate limits, throttled logins, blocked users), at most one per reason, route and user (or client address) per `--security-audit-window-secs` and process; the newest `--security-audit-retain` are kept.",
    params(PageQuery),
    security(("bearer" = [])),
    responses(
        (status = 200, description = "A page of records, newest first", body = SecurityAuditPage),
        (status = 400, description = "A bad `limit` or `cursor`, or an unknown parameter: `VALIDATION`", body = ErrorBody),
        (status = 401, description = "No valid access token: `UNAUTHORIZED`, `TOKEN_EXPIRED`", body = ErrorBody),
        (status = 403, description = "Not an admin: `FORBIDDEN`", body = ErrorBody),
        (status = 503, description = "Storage unavailable: `UNAVAILABLE` (with `Retry-After`)", body = ErrorBody),
    )
)]
async fn security_audit(
    State(state): State<AppState>,
    _admin: AdminUser,
    query: Result<Query<PageQuery>, QueryRejection>,
) -> Result<Json<SecurityAuditPage>, ApiError> {
    let Query(query) = query.map_err(|e| ApiError::validation(e.body_text()))?;
    let (cursor, limit) = parse(query)?;
    let page = state
        .security_audit
        .page(cursor, limit)
        .await
        .map_err(store_error)?;
    let next_cursor = (page.len() == limit)
        .then(|| page.last().map(|r| r.id.to_string()))
        .flatten();
    Ok(Json(SecurityAuditPage {
        records: page.into_iter().map(AbuseAnswer::from).collect(),
        next_cursor,
    }))
}
