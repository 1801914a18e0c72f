//! Creating events (admin).
//!
//! | route | who | answer |
//! |---|---|---|
//! | `POST /api/admin/events` | admin | 201 [`EventView`] |
//!
//! The body is [`CreateEventRequest`]; the catalogue's conventions hold (see
//! [`crate::http::routes::catalog`]). Described for `GET /openapi.json` by its
//! `#[utoipa::path]` (tag `catalog`).

use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::post;
use axum::{Json, Router};

use crate::http::error::{ApiError, ErrorBody};
use crate::http::extract::{AdminUser, JsonBody};
use crate::http::routes::catalog::dto::{CreateEventRequest, EventView, build_event, event_view};
use crate::runtime::state::AppState;
use crate::services::catalog;

/// The route of this group.
pub fn router() -> Router<AppState> {
    Router::new().route("/api/admin/events", post(create_event))
}

/// `POST /api/admin/events` (admin): creates an event with fresh ids → 201 [`EventView`].
#[utoipa::path(
    post,
    path = "/api/admin/events",
    tag = "catalog",
    summary = "Create an event and its sessions (admin)",
    request_body = CreateEventRequest,
    security(("bearer" = [])),
    responses(
        (status = 201, description = "The event as stored, with fresh ids", body = EventView, links(
            ("GetEvent" = (operation_id = "get_event", parameters(("id" = "$response.body#/id")), description = "The event just created")),
            ("GetSession" = (operation_id = "get_session", parameters(("id" = "$response.body#/sessions/0/id")), description = "Its first session's stock")),
            ("GetSeats" = (operation_id = "get_seats", parameters(("id" = "$response.body#/sessions/0/id")), description = "Its first session's seat map")),
            ("SetPolicy" = (operation_id = "set_policy", parameters(("id" = "$response.body#/sessions/0/id")), description = "Its first session's policy")),
            ("SessionStats" = (operation_id = "session_stats", parameters(("id" = "$response.body#/sessions/0/id")), description = "Its first session's figures")),
            ("JoinQueue" = (operation_id = "join_queue", parameters(("id" = "$response.body#/sessions/0/id")), description = "Join its first session's queue")),
            ("HoldUnits" = (operation_id = "create_hold", request_body = json!({"session_id": "$response.body#/sessions/0/id", "grade": "$response.body#/sessions/0/grades/0/grade", "quantity": 1}), description = "Hold a unit of its first session's first grade")),
        )),
        (status = 400, description = "Malformed JSON, wrong types, missing or unknown fields: `VALIDATION`", body = ErrorBody),
        (status = 401, description = "No valid access token: `UNAUTHORIZED`, `TOKEN_EXPIRED`", body = ErrorBody),
        (status = 403, description = "Not an admin: `FORBIDDEN`", body = ErrorBody),
        (status = 422, description = "A definition the library refuses (empty name, no sessions, zero capacity, bad currency, seat listed twice, …): `VALIDATION`", body = ErrorBody),
        (status = 503, description = "Storage unavailable: `UNAVAILABLE` (with `Retry-After`)", body = ErrorBody),
    )
)]
pub(crate) async fn create_event(
    State(state): State<AppState>,
    _admin: AdminUser,
    JsonBody(req): JsonBody<CreateEventRequest>,
) -> Result<(StatusCode, Json<EventView>), ApiError> {
    let now = state.clock.now();
    let event = build_event(&req, now)?;
    catalog::publish_event(&state.rush, &event).await?;
    // Follow its live sessions now rather than at the next catalogue read.
    state.live.refresh_soon();
    Ok((
        StatusCode::CREATED,
        Json(event_view(&event, now, &Default::default())),
    ))
}
