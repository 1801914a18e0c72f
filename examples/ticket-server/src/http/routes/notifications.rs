//! My in-app notifications, with read marks.
//!
//! | route | does |
//! |---|---|
//! | `GET /api/me/notifications?limit=&cursor=` | a page of my notifications, newest first (`limit` 1..=500, default 50; `next_cursor`), and how many are unread |
//! | `POST /api/me/notifications/{id}/read` | marks one of mine read (idempotent); another user's or an unknown one: 404 |
//!
//! A notification is written once per change of my reservations or admissions (confirmed,
//! expired, payment failed, cancelled, refunded; admitted, admission expired) by the
//! background dispatcher ([`crate::runtime::background`]), usually within a second of the
//! change, on any server process. Both routes are described for `GET /openapi.json` by
//! their `#[utoipa::path]` (tag `notifications`).

use axum::extract::rejection::QueryRejection;
use axum::extract::{Path, Query, State};
use axum::response::IntoResponse;
use axum::routing::{get, post};
use axum::{Json, Router};
use serde::{Deserialize, Serialize};

use crate::http::error::{ApiError, ErrorBody};
use crate::http::extract::AuthUser;
use crate::http::paging::{MAX_LIMIT, cursor, limit};
use crate::http::params::user_of;
use crate::runtime::state::AppState;
use crate::stores::inbox::{InboxError, Item};

/// The routes.
pub fn router() -> Router<AppState> {
    Router::new()
        .route("/api/me/notifications", get(list))
        .route("/api/me/notifications/{id}/read", post(mark_read))
}

/// The pattern of a notification id and cursor.
const ID_PATTERN: &str = "^[1-9][0-9]{0,17}$";

/// The query of `GET /api/me/notifications`, as text.
#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
struct ListQuery {
    /// How many notifications, 1 to 500 (default 50).
    #[serde(default)]
    #[param(value_type = Option<u32>, minimum = 1, maximum = 500)]
    limit: Option<String>,
    /// Read notifications older than this one: the `next_cursor` of the previous page.
    #[serde(default)]
    #[param(value_type = Option<String>, pattern = "^[1-9][0-9]{0,17}$")]
    cursor: Option<String>,
}

/// One notification.
#[derive(Debug, Serialize, utoipa::ToSchema)]
struct NotificationAnswer {
    /// Its id (also its place: ids grow with arrival).
    #[schema(pattern = "^[1-9][0-9]{0,17}$")]
    id: String,
    /// When the change happened, epoch ms.
    at: i64,
    /// What happened: `hold_confirmed`, `hold_expired`, `hold_payment_failed`,
    /// `hold_cancelled`, `hold_refunded`, `admitted` or `admission_expired`.
    #[schema(schema_with = kind_schema)]
    kind: String,
    /// The session.
    #[schema(format = "uuid")]
    session_id: String,
    /// The reservation (hold) it is about.
    #[schema(format = "uuid")]
    hold_id: Option<String>,
    /// The queue ticket it is about.
    #[schema(format = "uuid")]
    ticket_id: Option<String>,
    /// Whether I marked it read.
    read: bool,
}

fn kind_schema() -> utoipa::openapi::Object {
    let kinds = ticket_core::service::DispatchConfig::new("doc").kinds;
    crate::http::openapi::text_enum(kinds.iter().map(|k| k.as_str()), "What happened")
}

impl From<Item> for NotificationAnswer {
    fn from(i: Item) -> Self {
        Self {
            id: i.id.to_string(),
            at: i.item.at.as_millis(),
            kind: i.item.kind,
            session_id: i.item.session.to_string(),
            hold_id: i.item.hold.map(|h| h.to_string()),
            ticket_id: i.item.ticket.map(|t| t.to_string()),
            read: i.read,
        }
    }
}

/// A page of my notifications.
#[derive(Debug, Serialize, utoipa::ToSchema)]
struct NotificationsPage {
    /// Newest first.
    notifications: Vec<NotificationAnswer>,
    /// My unread notifications, all pages together.
    unread: u64,
    /// Pass it as `cursor` for the next (older) page; `null` when this page is the last.
    #[schema(pattern = "^[1-9][0-9]{0,17}$")]
    next_cursor: Option<String>,
}

fn store_error(e: InboxError) -> ApiError {
    tracing::warn!("inbox: {e}");
    ApiError::new(
        axum::http::StatusCode::SERVICE_UNAVAILABLE,
        "UNAVAILABLE",
        "storage unavailable, retry",
    )
    .retry_after(std::time::Duration::from_secs(1))
}

/// A notification id: 1 to 18 decimal digits, no leading zero.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct NotificationId(u64);

impl std::str::FromStr for NotificationId {
    type Err = ();
    fn from_str(s: &str) -> Result<Self, ()> {
        if s.is_empty()
            || s.len() > 19
            || s.starts_with('0')
            || !s.bytes().all(|b| b.is_ascii_digit())
        {
            return Err(());
        }
        match s.parse::<u64>() {
            Ok(n) if i64::try_from(n).is_ok() => Ok(Self(n)),
            _ => Err(()),
        }
    }
}

impl std::fmt::Display for NotificationId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.0.fmt(f)
    }
}

/// A page of my notifications, newest first, with the unread count. Paging with
/// `next_cursor` lists every notification once.
#[utoipa::path(
    get,
    path = "/api/me/notifications",
    operation_id = "my_notifications",
    tag = "notifications",
    summary = "My notifications, a page at a time",
    params(ListQuery),
    security(("bearer" = [])),
    responses(
        (status = 200, description = "A page of my notifications, newest first", body = NotificationsPage),
        (status = 400, description = "A bad `limit` or `cursor`, or an unknown parameter: `VALIDATION`", body = ErrorBody),
        (status = 401, description = "No valid access token: `UNAUTHORIZED`, `TOKEN_EXPIRED`", body = ErrorBody),
        (status = 503, description = "Storage unavailable: `UNAVAILABLE` (with `Retry-After`)", body = ErrorBody),
    )
)]
async fn list(
    State(state): State<AppState>,
    me: AuthUser,
    query: Result<Query<ListQuery>, QueryRejection>,
) -> Result<impl IntoResponse, ApiError> {
    let Query(query) = query.map_err(|e| ApiError::validation(e.body_text()))?;
    let limit = limit(query.limit.as_deref(), MAX_LIMIT)?;
    let before = cursor::<NotificationId>(query.cursor.as_deref())?;
    let page = state
        .inbox
        .page(&user_of(&me)?, before.map(|c| c.0), limit)
        .await
        .map_err(store_error)?;
    let next_cursor = (page.items.len() == limit)
        .then(|| page.items.last().map(|i| i.id.to_string()))
        .flatten();
    Ok(Json(NotificationsPage {
        notifications: page
            .items
            .into_iter()
            .map(NotificationAnswer::from)
            .collect(),
        unread: page.unread,
        next_cursor,
    }))
}

/// Marks one of my notifications read (idempotent: marking it again changes nothing).
#[utoipa::path(
    post,
    path = "/api/me/notifications/{id}/read",
    operation_id = "mark_notification_read",
    tag = "notifications",
    summary = "Mark my notification read",
    params(("id" = String, Path, pattern = "^[1-9][0-9]{0,17}$", description = "The notification's id")),
    security(("bearer" = [])),
    responses(
        (status = 200, description = "The notification, now read", body = NotificationAnswer),
        (status = 400, description = "A malformed id: `VALIDATION`", body = ErrorBody),
        (status = 401, description = "No valid access token: `UNAUTHORIZED`, `TOKEN_EXPIRED`", body = ErrorBody),
        (status = 404, description = "No such notification of mine: `NOT_FOUND`", body = ErrorBody),
        (status = 503, description = "Storage unavailable: `UNAVAILABLE` (with `Retry-After`)", body = ErrorBody),
    )
)]
async fn mark_read(
    State(state): State<AppState>,
    me: AuthUser,
    Path(id): Path<String>,
) -> Result<impl IntoResponse, ApiError> {
    let id: NotificationId = id.parse().map_err(|()| {
        ApiError::validation(format!(
            "a notification id is decimal digits ({ID_PATTERN})"
        ))
    })?;
    match state
        .inbox
        .mark_read(&user_of(&me)?, id.0)
        .await
        .map_err(store_error)?
    {
        Some(item) => Ok(Json(NotificationAnswer::from(item))),
        None => Err(ApiError::not_found("notification")),
    }
}
