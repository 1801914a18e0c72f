//! Operator views (admins only; anyone else: 403, no token: 401).
//!
//! | route | does |
//! |---|---|
//! | `GET /api/admin/sessions/{id}/stats` | stock, queue and reservations by status of a session, from the library's counts: O(1) whatever the number of holds |
//! | `GET /api/admin/audit?session_id=&user_id=&order=&limit=&cursor=` | the audit trail of a session or of a user, a page at a time (exactly one filter; `order` `oldest_first` (default) or `newest_first`; `limit` 1..=500, default 100; `next_cursor`) |
//!
//! Both are described for `GET /openapi.json` by their `#[utoipa::path]` (tag `admin`).

use std::collections::BTreeMap;

use axum::extract::rejection::QueryRejection;
use axum::extract::{Path, Query, State};
use axum::response::IntoResponse;
use axum::routing::get;
use axum::{Json, Router};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use ticket_core::model::audit::{Actor, AuditRecord, AuditScope, Subject};
use ticket_core::{SessionId, UserId};

use crate::http::error::{ApiError, ErrorBody};
use crate::http::extract::AdminUser;
use crate::http::params::path_id;
use crate::runtime::state::AppState;
use crate::services::session_stats;

/// Largest `limit` of `GET /api/admin/audit` (the library's largest page).
const MAX_AUDIT_LIMIT: usize = ticket_core::model::page::MAX_PAGE_LIMIT;

/// `limit` of `GET /api/admin/audit` when none is given.
const DEFAULT_AUDIT_LIMIT: usize = 100;

/// The admin routes.
pub fn router() -> Router<AppState> {
    Router::new()
        .route("/api/admin/sessions/{id}/stats", get(session_stats))
        .route("/api/admin/audit", get(audit))
}

/// A session's figures.
#[derive(Debug, Serialize, utoipa::ToSchema)]
struct StatsAnswer {
    /// Units or seats in the plan.
    capacity: u64,
    /// On sale now.
    available: u64,
    /// In live holds.
    held: u64,
    /// Sold.
    sold: u64,
    /// Users waiting in the queue.
    queue_length: u64,
    /// Users admitted now.
    active: u64,
    /// How many reservations are in each state (`held`, `confirmed`, …; states with none
    /// are left out), from the counts the library keeps with every change.
    reservations_by_status: BTreeMap<String, u64>,
}

/// Reads the session's stock, queue and reservations.
#[utoipa::path(
    get,
    path = "/api/admin/sessions/{id}/stats",
    tag = "admin",
    summary = "A session's live figures (admin)",
    params(("id" = String, Path, format = "uuid", description = "The session's id")),
    security(("bearer" = [])),
    responses(
        (status = 200, description = "Stock, queue and reservations by status", body = StatsAnswer),
        (status = 400, description = "A malformed id: `VALIDATION`", body = ErrorBody),
        (status = 401, description = "No valid access token: `UNAUTHORIZED`, `TOKEN_EXPIRED`", body = ErrorBody),
        (status = 403, description = "Not an admin: `FORBIDDEN`", body = ErrorBody),
        (status = 404, description = "No such session: `NOT_FOUND`", body = ErrorBody),
        (status = 503, description = "Storage unavailable: `UNAVAILABLE` (with `Retry-After`)", body = ErrorBody),
    )
)]
async fn session_stats(
    State(state): State<AppState>,
    _admin: AdminUser,
    Path(id): Path<String>,
) -> Result<impl IntoResponse, ApiError> {
    let session: SessionId = path_id(&id)?;
    let f = session_stats::figures(&state.rush, session, state.clock.now()).await?;
    Ok(Json(StatsAnswer {
        capacity: f.capacity,
        available: f.available,
        held: f.held,
        sold: f.sold,
        queue_length: f.queue_length,
        active: f.active,
        reservations_by_status: f.reservations_by_status,
    }))
}

/// The query of `GET /api/admin/audit`, all as text so every problem gets a clear message.
/// Documented by [`AuditFilterDoc`].
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct AuditQuery {
    /// The session whose trail to read (exactly one of `session_id` and `user_id`).
    #[serde(default)]
    session_id: Option<String>,
    /// The user whose trail to read (exactly one of `session_id` and `user_id`).
    #[serde(default)]
    user_id: Option<String>,
    /// How many records, 1 to 500 (default 100).
    #[serde(default)]
    limit: Option<String>,
    /// `oldest_first` (default) or `newest_first`.
    #[serde(default)]
    order: Option<String>,
    /// Continue after this record: the `next_cursor` of the previous page (same order).
    #[serde(default)]
    cursor: Option<String>,
}

/// The documented query of `GET /api/admin/audit`: one form-exploded object parameter
/// (`?session_id=…&limit=…`), so that "exactly one of `session_id` and `user_id`" is part
/// of the schema (`oneOf`), not only of a 400 answer.
struct AuditFilterDoc;

impl utoipa::PartialSchema for AuditFilterDoc {
    fn schema() -> utoipa::openapi::RefOr<utoipa::openapi::schema::Schema> {
        use utoipa::openapi::schema::{AdditionalProperties, AllOfBuilder, OneOfBuilder};
        use utoipa::openapi::{ObjectBuilder, Type};
        let uuid = |description: &str| {
            ObjectBuilder::new()
                .schema_type(Type::String)
                .format(Some(utoipa::openapi::SchemaFormat::Custom("uuid".into())))
                .description(Some(description))
        };
        let requires = |field: &str| ObjectBuilder::new().required(field).build();
        let fields = ObjectBuilder::new()
            .property("session_id", uuid("The session whose trail to read"))
            .property("user_id", uuid("The account whose trail to read"))
            .property(
                "limit",
                ObjectBuilder::new()
                    .schema_type(Type::Integer)
                    .minimum(Some(1))
                    .maximum(Some(MAX_AUDIT_LIMIT as u64))
                    .description(Some("How many records (default 100)")),
            )
            .property(
                "order",
                crate::http::openapi::text_enum(
                    [ORDER_OLDEST, ORDER_NEWEST],
                    "Which way the trail runs (default `oldest_first`)",
                ),
            )
            .property(
                "cursor",
                ObjectBuilder::new()
                    .schema_type(Type::String)
                    .pattern(Some(crate::http::paging::TIME_CURSOR_PATTERN))
                    .description(Some(
                        "Continue after this record: the `next_cursor` of the previous page, read in the same order",
                    )),
            )
            .additional_properties(Some(AdditionalProperties::FreeForm(false)));
        AllOfBuilder::new()
            .item(fields)
            .item(
                OneOfBuilder::new()
                    .item(requires("session_id"))
                    .item(requires("user_id")),
            )
            .description(Some(
                "Exactly one of `session_id` and `user_id`, and optional `limit`, `order` and `cursor`",
            ))
            .into()
    }
}

impl utoipa::ToSchema for AuditFilterDoc {}

/// One audit record as the API shows it.
#[derive(Debug, Serialize, utoipa::ToSchema)]
struct AuditAnswer {
    /// When, epoch ms.
    at: i64,
    /// What the record is about: `{"kind": "hold" | "ticket" | "session", "id": "…"}` (a
    /// session's records are the organiser's sale switch moves and capacity changes).
    #[schema(schema_with = subject_schema)]
    subject: Value,
    /// The user it concerns.
    owner: String,
    /// Who caused it: `{"kind": "user" | "operator" | "system", "id": "…"}`.
    #[schema(schema_with = actor_schema)]
    actor: Value,
    /// The state before (`null` for a creation).
    from: Option<String>,
    /// The state after (upper case, as the library records it).
    to: String,
    /// Why.
    reason: String,
    /// A related reference (payment, refund, request), when there is one.
    correlation_id: Option<String>,
}

/// `{"kind": <one of kinds>, "id": "…"}`, the library's shape for audit subjects and actors.
fn kind_and_id(kinds: Vec<String>, description: &str) -> utoipa::openapi::Object {
    use utoipa::openapi::{ObjectBuilder, Type};
    ObjectBuilder::new()
        .property(
            "kind",
            crate::http::openapi::text_enum(kinds, "What `id` names"),
        )
        .required("kind")
        .property("id", ObjectBuilder::new().schema_type(Type::String))
        .required("id")
        .description(Some(description))
        .build()
}

/// The `kind` a value of an adjacently tagged library enum serialises with.
fn kind_of<T: Serialize>(value: &T) -> String {
    serde_json::to_value(value)
        .ok()
        .and_then(|v| v["kind"].as_str().map(str::to_owned))
        .unwrap_or_default()
}

/// The schema of [`AuditAnswer::subject`]: every [`Subject`] kind.
fn subject_schema() -> utoipa::openapi::Object {
    let id = ticket_core::HoldId::from_uuid(uuid::Uuid::nil());
    let ticket = ticket_core::TicketId::from_uuid(uuid::Uuid::nil());
    let session = ticket_core::SessionId::from_uuid(uuid::Uuid::nil());
    // Exhaustive, so a new kind fails to compile here until it is listed.
    let kinds = [
        Subject::Hold(id),
        Subject::Ticket(ticket),
        Subject::Session(session),
    ]
    .map(|s| match s {
        Subject::Hold(_) | Subject::Ticket(_) | Subject::Session(_) => kind_of(&s),
    });
    kind_and_id(kinds.to_vec(), "What the record is about")
}

/// The schema of [`AuditAnswer::actor`]: every [`Actor`] kind.
fn actor_schema() -> utoipa::openapi::Object {
    let user = UserId::new("u").ok();
    let mut actors: Vec<Actor> = user.into_iter().map(Actor::User).collect();
    actors.extend([Actor::Operator(String::new()), Actor::system("")]);
    let kinds = actors
        .iter()
        .map(|a| match a {
            Actor::User(_) | Actor::Operator(_) | Actor::System(_) => kind_of(a),
        })
        .collect();
    kind_and_id(kinds, "Who caused the transition")
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

/// `order=oldest_first`.
const ORDER_OLDEST: &str = "oldest_first";
/// `order=newest_first`.
const ORDER_NEWEST: &str = "newest_first";

/// A page of the audit trail.
#[derive(Debug, Serialize, utoipa::ToSchema)]
struct AuditPageAnswer {
    /// The records, in the order asked for (by time, then id).
    records: Vec<AuditAnswer>,
    /// Pass it as `cursor` (with the same filter and order) for the next page; `null` when
    /// this page is the last.
    #[schema(
        pattern = "^(0|-?[1-9][0-9]{0,17})_[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$"
    )]
    next_cursor: Option<String>,
}

/// The page a query asks for, or why it is malformed.
fn audit_query(q: AuditQuery) -> Result<ticket_core::model::page::AuditQuery, ApiError> {
    use ticket_core::model::page::{AuditCursor, PageOrder};
    let scope = match (q.session_id, q.user_id) {
        (Some(s), None) => AuditScope::Session(path_id(&s)?),
        // Accounts are UUIDs; the library's user id is the account id's text.
        (None, Some(u)) => {
            let account = uuid::Uuid::parse_str(&u)
                .map_err(|_| ApiError::validation(format!("user_id: not a UUID: {u:?}")))?;
            AuditScope::User(
                UserId::new(account.to_string())
                    .map_err(|e| ApiError::validation(format!("user_id: {e}")))?,
            )
        }
        _ => {
            return Err(ApiError::validation(
                "give exactly one of session_id and user_id",
            ));
        }
    };
    let limit = match q.limit {
        None => DEFAULT_AUDIT_LIMIT,
        Some(raw) => crate::http::paging::limit(Some(&raw), MAX_AUDIT_LIMIT)?,
    };
    let order = match q.order.as_deref() {
        None | Some(ORDER_OLDEST) => PageOrder::OldestFirst,
        Some(ORDER_NEWEST) => PageOrder::NewestFirst,
        Some(other) => {
            return Err(ApiError::validation(format!(
                "order must be {ORDER_OLDEST} or {ORDER_NEWEST}, not {other:?}"
            )));
        }
    };
    let after = crate::http::paging::cursor::<AuditCursor>(q.cursor.as_deref())?;
    Ok(ticket_core::model::page::AuditQuery {
        scope,
        order,
        after,
        limit,
    })
}

/// A page of the audit trail of a session or of a user, by time (oldest first unless
/// `order=newest_first`). Complete: paging with `next_cursor` reaches every record ever
/// written, each once, however long the trail (a keyset read, no cap).
#[utoipa::path(
    get,
    path = "/api/admin/audit",
    operation_id = "read_audit",
    tag = "admin",
    summary = "The audit trail (admin)",
    params(("filter" = inline(AuditFilterDoc), Query, style = Form, explode, description = "`session_id` or `user_id` (exactly one), and `limit`, `order` and `cursor`, as separate query parameters")),
    security(("bearer" = [])),
    responses(
        (status = 200, description = "A page of records in the order asked for", body = AuditPageAnswer),
        (status = 400, description = "Not exactly one of `session_id` and `user_id`, a malformed one, an unknown parameter, or a bad `limit`, `order` or `cursor`: `VALIDATION`", body = ErrorBody),
        (status = 401, description = "No valid access token: `UNAUTHORIZED`, `TOKEN_EXPIRED`", body = ErrorBody),
        (status = 403, description = "Not an admin: `FORBIDDEN`", body = ErrorBody),
        (status = 404, description = "No such session: `NOT_FOUND`", body = ErrorBody),
        (status = 503, description = "Storage unavailable: `UNAVAILABLE` (with `Retry-After`)", body = ErrorBody),
    )
)]
async fn audit(
    State(state): State<AppState>,
    _admin: AdminUser,
    query: Result<Query<AuditQuery>, QueryRejection>,
) -> Result<impl IntoResponse, ApiError> {
    let Query(query) = query.map_err(|e| ApiError::validation(e.body_text()))?;
    let query = audit_query(query)?;
    let page = state.rush.stores().reservations.audit_page(&query).await?;
    Ok(Json(AuditPageAnswer {
        next_cursor: page.next.map(|c| c.to_string()),
        records: page.items.into_iter().map(AuditAnswer::from).collect(),
    }))
}
