//! Operator views (admins only; anyone else: 403, no token: 401).
//!
//! | route | does |
//! |---|---|
//! | `GET /api/admin/sessions/{id}/stats` | stock, queue and reservations by status of a session |
//! | `GET /api/admin/audit?session_id=&user_id=&limit=` | the audit trail of a session or of a user, oldest first (exactly one filter; `limit` 1..=1000, default 100) |

use std::collections::{BTreeMap, HashMap};

use axum::extract::rejection::QueryRejection;
use axum::extract::{Path, Query, State};
use axum::response::IntoResponse;
use axum::routing::get;
use axum::{Json, Router};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use ticket_core::model::audit::{AuditRecord, AuditScope, Subject};
use ticket_core::{SessionId, UserId};

use crate::error::ApiError;
use crate::extract::AdminUser;
use crate::routes::params::path_id;
use crate::state::AppState;

/// How many of a session's audit records are read to count its reservations by status.
const AUDIT_SCAN_LIMIT: usize = 100_000;

/// Largest `limit` of `GET /api/admin/audit`.
const MAX_AUDIT_LIMIT: usize = 1_000;

/// `limit` of `GET /api/admin/audit` when none is given.
const DEFAULT_AUDIT_LIMIT: usize = 100;

/// The admin routes.
pub fn router() -> Router<AppState> {
    Router::new()
        .route("/api/admin/sessions/{id}/stats", get(session_stats))
        .route("/api/admin/audit", get(audit))
}

/// A session's figures.
#[derive(Debug, Serialize)]
struct StatsAnswer {
    capacity: u64,
    available: u64,
    held: u64,
    sold: u64,
    queue_length: u64,
    active: u64,
    reservations_by_status: BTreeMap<String, u64>,
}

async fn session_stats(
    State(state): State<AppState>,
    _admin: AdminUser,
    Path(id): Path<String>,
) -> Result<impl IntoResponse, ApiError> {
    let session: SessionId = path_id(&id)?;
    let stores = state.rush.stores();
    let totals = stores.inventory.snapshot(session).await?.totals();
    let queue = stores.queue.stats(session, state.clock.now()).await?;
    let records = stores
        .reservations
        .audit(&AuditScope::Session(session), AUDIT_SCAN_LIMIT)
        .await?;
    Ok(Json(StatsAnswer {
        capacity: totals.capacity,
        available: totals.available,
        held: totals.held,
        sold: totals.sold,
        queue_length: queue.waiting,
        active: queue.active,
        reservations_by_status: by_status(&records),
    }))
}

/// The number of holds in each state (lower-case), from their latest audit record; records
/// come oldest first.
fn by_status(records: &[AuditRecord]) -> BTreeMap<String, u64> {
    let mut latest = HashMap::new();
    for r in records {
        if let Subject::Hold(id) = r.subject {
            latest.insert(id, r.to.as_str());
        }
    }
    let mut counts = BTreeMap::new();
    for state in latest.into_values() {
        *counts.entry(state.to_lowercase()).or_insert(0) += 1;
    }
    counts
}

/// The query of `GET /api/admin/audit`, all as text so every problem gets a clear message.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct AuditQuery {
    #[serde(default)]
    session_id: Option<String>,
    #[serde(default)]
    user_id: Option<String>,
    #[serde(default)]
    limit: Option<String>,
}

/// One audit record as the API shows it.
#[derive(Debug, Serialize)]
struct AuditAnswer {
    at: i64,
    subject: Value,
    owner: String,
    actor: Value,
    from: Option<String>,
    to: String,
    reason: String,
    correlation_id: Option<String>,
}

impl From<AuditRecord> for AuditAnswer {
    fn from(r: AuditRecord) -> Self {
        Self {
            at: r.at.as_millis(),
            subject: serde_json::to_value(r.subject).unwrap_or(Value::Null),
            owner: r.owner.to_string(),
            actor: serde_json::to_value(&r.actor).unwrap_or(Value::Null),
            from: r.from,
            to: r.to,
            reason: r.reason,
            correlation_id: r.correlation_id,
        }
    }
}

/// The scope and limit a query asks for, or why it is malformed.
fn audit_scope(q: AuditQuery) -> Result<(AuditScope, usize), ApiError> {
    let non_empty = |v: Option<String>| v.filter(|s| !s.is_empty());
    let scope = match (non_empty(q.session_id), non_empty(q.user_id)) {
        (Some(s), None) => AuditScope::Session(path_id(&s)?),
        (None, Some(u)) => AuditScope::User(
            UserId::new(u).map_err(|e| ApiError::validation(format!("user_id: {e}")))?,
        ),
        _ => {
            return Err(ApiError::validation(
                "give exactly one of session_id and user_id",
            ));
        }
    };
    let limit = match q.limit {
        None => DEFAULT_AUDIT_LIMIT,
        Some(raw) => match raw.parse::<usize>() {
            Ok(n) if (1..=MAX_AUDIT_LIMIT).contains(&n) => n,
            _ => {
                return Err(ApiError::validation(format!(
                    "limit must be an integer from 1 to {MAX_AUDIT_LIMIT}, not {raw:?}"
                )));
            }
        },
    };
    Ok((scope, limit))
}

async fn audit(
    State(state): State<AppState>,
    _admin: AdminUser,
    query: Result<Query<AuditQuery>, QueryRejection>,
) -> Result<impl IntoResponse, ApiError> {
    let Query(query) = query.map_err(|e| ApiError::validation(e.body_text()))?;
    let (scope, limit) = audit_scope(query)?;
    let records = state
        .rush
        .stores()
        .reservations
        .audit(&scope, limit)
        .await?;
    let answer: Vec<AuditAnswer> = records.into_iter().map(AuditAnswer::from).collect();
    Ok(Json(answer))
}
