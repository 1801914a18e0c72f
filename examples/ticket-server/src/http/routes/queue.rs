//! The waiting queue of a session.
//!
//! | route | does |
//! |---|---|
//! | `POST /api/sessions/{id}/queue` | join (idempotent: the same ticket again) |
//! | `GET /api/sessions/{id}/queue` | my place in the queue (runs an admission round first) |
//! | `DELETE /api/sessions/{id}/queue` | leave it (idempotent); the next waiting user moves up |
//!
//! Live updates of the same answer: [`crate::http::routes::queue_events`]. Every handler is
//! described for `GET /openapi.json` by its `#[utoipa::path]` (tag `queue`).

use axum::extract::{Path, State};
use axum::response::IntoResponse;
use axum::routing::post;
use axum::{Json, Router};
use serde::Serialize;
use ticket_core::model::queue::{Outlook, QueueView, TicketState};
use ticket_core::model::sale::SaleState;
use ticket_core::{SessionId, UserId};

use crate::http::error::{ApiError, ErrorBody};
use crate::http::extract::{AuthUser, Buyer, CallerTiers};
use crate::http::params::{path_id, user_of};
use crate::runtime::state::AppState;

/// The routes of the queue.
pub fn router() -> Router<AppState> {
    Router::new().route(
        "/api/sessions/{id}/queue",
        post(join).get(my_place).delete(leave),
    )
}

/// My place in a session's queue: the answer of every queue route and the data of every
/// queue event.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct QueueAnswer {
    /// My queue ticket (one live ticket per user and session).
    #[schema(format = "uuid")]
    pub ticket_id: String,
    /// `waiting` (in line), `active` (admitted: hold before `admission_expires_at`), `used`
    /// (a hold was made with it), `expired` (the admission ran out) or `left`.
    #[schema(schema_with = ticket_status_schema)]
    pub status: String,
    /// My number in the line: the order of my join among everyone's (lower joined earlier;
    /// admissions follow it). `null` for a pre-queue ticket before the opening draw.
    pub number: Option<u64>,
    /// 1-based place among the waiting (1 = admitted next); `null` unless waiting and drawn.
    pub position: Option<u64>,
    /// Users waiting in the session.
    pub waiting: u64,
    /// Estimated seconds until admission, when waiting and the pace allows a guess.
    pub eta_seconds: Option<u64>,
    /// When an active admission runs out, epoch ms.
    pub admission_expires_at: Option<i64>,
    /// Whether the stock left is likely to reach my place; `sold_out`: stop waiting.
    #[schema(schema_with = outlook_schema)]
    pub outlook: Outlook,
    /// The organiser's sale switch: `open`, `paused` (nobody is admitted until it resumes;
    /// I keep my place), `closed` (the queue ended) or `cancelled` (the show was cancelled).
    #[schema(schema_with = sale_schema)]
    pub sale: String,
}

/// The sale switch as the API spells it (`open`, `paused`, `closed`, `cancelled`).
pub(crate) fn sale_name(state: SaleState) -> String {
    state.as_str().to_lowercase()
}

/// The schema of [`QueueAnswer::sale`]: every switch state, as the API spells it.
pub(crate) fn sale_schema() -> utoipa::openapi::Object {
    crate::http::openapi::text_enum(SaleState::ALL.map(sale_name), "The organiser's sale switch")
}

/// A ticket state as the API spells it (`waiting`, …).
fn ticket_status(state: TicketState) -> String {
    serde_json::to_value(state)
        .ok()
        .and_then(|v| v.as_str().map(str::to_lowercase))
        .unwrap_or_default()
}

/// The schema of [`QueueAnswer::status`]: every ticket state, as the API spells it.
fn ticket_status_schema() -> utoipa::openapi::Object {
    // Exhaustive, so a new state fails to compile here until it is listed.
    let all = |s: TicketState| match s {
        TicketState::Waiting
        | TicketState::Active
        | TicketState::Used
        | TicketState::Expired
        | TicketState::Left => s,
    };
    let states = [
        TicketState::Waiting,
        TicketState::Active,
        TicketState::Used,
        TicketState::Expired,
        TicketState::Left,
    ];
    crate::http::openapi::text_enum(
        states.map(all).map(ticket_status),
        "Where my queue ticket stands",
    )
}

/// The schema of [`QueueAnswer::outlook`]: every outlook, as the library serialises it.
fn outlook_schema() -> utoipa::openapi::Object {
    let all = |o: Outlook| match o {
        Outlook::Likely | Outlook::Possible | Outlook::Unlikely | Outlook::SoldOut => o,
    };
    let outlooks = [
        Outlook::Likely,
        Outlook::Possible,
        Outlook::Unlikely,
        Outlook::SoldOut,
    ];
    crate::http::openapi::text_enum(
        outlooks.map(all).map(|o| {
            serde_json::to_value(o)
                .ok()
                .and_then(|v| v.as_str().map(str::to_owned))
                .unwrap_or_default()
        }),
        "Whether the stock left is likely to reach my place",
    )
}

/// The queue as a buyer sees it.
pub(crate) fn queue_answer(view: &QueueView, sale: SaleState) -> QueueAnswer {
    let t = &view.ticket;
    QueueAnswer {
        ticket_id: t.id.to_string(),
        status: ticket_status(t.state),
        number: t.seq,
        position: view.position,
        waiting: view.waiting,
        eta_seconds: view.eta.map(|d| d.as_secs()),
        admission_expires_at: t.expires_at.map(|e| e.as_millis()),
        outlook: view.outlook,
        sale: sale_name(sale),
    }
}

/// 404 `LEFT_QUEUE`: the caller left this queue (`DELETE`), so their place is gone; joining
/// again gives a new one.
pub(crate) fn left_queue() -> ApiError {
    ApiError::new(
        axum::http::StatusCode::NOT_FOUND,
        "LEFT_QUEUE",
        "you left this queue: join it again for a new place",
    )
}

/// Runs an admission round (so a freed or open slot is taken at once; polls and the SSE
/// stream run rounds while someone watches) and answers the caller's place.
async fn admit_and_view(
    state: &AppState,
    session: SessionId,
    user: &UserId,
) -> Result<QueueAnswer, ApiError> {
    let admitted = state
        .admission_rounds
        .run(&state.rush.admission, session)
        .await?;
    state.metrics.admitted(admitted);
    let view = state.rush.admission.view(session, user).await?;
    let sale = state.live.sale_switch(session).await?.state;
    Ok(queue_answer(&view, sale))
}

/// Joins the session's queue (idempotent: a repeat answers the same ticket), runs an
/// admission round and answers my place. During a presale that queues, only buyers whose
/// account tier reaches it may join; everyone else waits for public sales.
#[utoipa::path(
    post,
    path = "/api/sessions/{id}/queue",
    operation_id = "join_queue",
    tag = "queue",
    summary = "Join the queue",
    params(("id" = String, Path, format = "uuid", description = "The session's id")),
    security(("bearer" = [])),
    responses(
        (status = 200, description = "My place in the queue", body = QueueAnswer, links(
            ("MyPlace" = (operation_id = "my_place", parameters(("id" = "$request.path.id")), description = "My place in the same queue")),
            ("QueueEvents" = (operation_id = "queue_events", parameters(("id" = "$request.path.id")), description = "My place, live")),
            ("LeaveQueue" = (operation_id = "leave_queue", parameters(("id" = "$request.path.id")), description = "Leave the same queue")),
            ("Hold" = (operation_id = "create_hold", request_body = json!({"session_id": "$request.path.id"}), description = "Hold in the same session")),
        )),
        (status = 400, description = "A malformed id: `VALIDATION`", body = ErrorBody),
        (status = 401, description = "No valid access token: `UNAUTHORIZED`, `TOKEN_EXPIRED`, `TOKEN_REVOKED`", body = ErrorBody),
        (status = 403, description = "The account is blocked (`USER_BLOCKED`) or is gate staff (`FORBIDDEN`)", body = ErrorBody),
        (status = 429, description = "Over the per-user or per-IP rate limit: `RATE_LIMITED` (with `Retry-After`)", body = ErrorBody),
        (status = 503, description = "The line is full (`QUEUE_FULL`, `Retry-After` 30 s) or storage is unavailable (`UNAVAILABLE`)", body = ErrorBody),
        (status = 404, description = "No such session: `NOT_FOUND`", body = ErrorBody),
        (status = 409, description = "The queue is not open yet (`QUEUE_NOT_OPEN`), sales have closed (`SALES_CLOSED`) or the show was cancelled (`SESSION_CANCELLED`); a paused sale takes joins", body = ErrorBody),
    )
)]
async fn join(
    State(state): State<AppState>,
    Buyer(me): Buyer,
    tiers: CallerTiers,
    Path(id): Path<String>,
) -> Result<impl IntoResponse, ApiError> {
    let session: SessionId = path_id(&id)?;
    let user = user_of(&me)?;
    let tier = crate::services::account_tiers::buyer_tier(&state.rush, &tiers.0, session).await?;
    state
        .rush
        .admission
        .join_with_tier(session, &user, tier.as_deref())
        .await?;
    Ok(Json(admit_and_view(&state, session, &user).await?))
}

/// Runs an admission round and answers my place.
#[utoipa::path(
    get,
    path = "/api/sessions/{id}/queue",
    tag = "queue",
    summary = "My place in the queue",
    params(("id" = String, Path, format = "uuid", description = "The session's id")),
    security(("bearer" = [])),
    responses(
        (status = 200, description = "My place in the queue", body = QueueAnswer),
        (status = 400, description = "A malformed id: `VALIDATION`", body = ErrorBody),
        (status = 401, description = "No valid access token: `UNAUTHORIZED`, `TOKEN_EXPIRED`", body = ErrorBody),
        (status = 429, description = "Over the per-user or per-IP rate limit: `RATE_LIMITED` (with `Retry-After`)", body = ErrorBody),
        (status = 503, description = "Storage unavailable: `UNAVAILABLE` (with `Retry-After`)", body = ErrorBody),
        (status = 403, description = "I am not in this session's queue: `NOT_IN_QUEUE`", body = ErrorBody),
        (status = 404, description = "No such session (`NOT_FOUND`), or I left this queue (`LEFT_QUEUE`)", body = ErrorBody),
    )
)]
async fn my_place(
    State(state): State<AppState>,
    me: AuthUser,
    Path(id): Path<String>,
) -> Result<impl IntoResponse, ApiError> {
    let session: SessionId = path_id(&id)?;
    // Polling runs admission rounds too, so a line moves while anyone watches it, on any
    // server process (a round is one atomic step in the shared store).
    let answer = admit_and_view(&state, session, &user_of(&me)?).await?;
    if answer.status == ticket_status(TicketState::Left) {
        return Err(left_queue());
    }
    Ok(Json(answer))
}

/// Leaves the queue (idempotent); the next waiting user moves up.
#[utoipa::path(
    delete,
    path = "/api/sessions/{id}/queue",
    operation_id = "leave_queue",
    tag = "queue",
    summary = "Leave the queue",
    params(("id" = String, Path, format = "uuid", description = "The session's id")),
    security(("bearer" = [])),
    responses(
        (status = 200, description = "My ticket, now `left`", body = QueueAnswer),
        (status = 400, description = "A malformed id: `VALIDATION`", body = ErrorBody),
        (status = 401, description = "No valid access token: `UNAUTHORIZED`, `TOKEN_EXPIRED`", body = ErrorBody),
        (status = 429, description = "Over the per-user or per-IP rate limit: `RATE_LIMITED` (with `Retry-After`)", body = ErrorBody),
        (status = 503, description = "Storage unavailable: `UNAVAILABLE` (with `Retry-After`)", body = ErrorBody),
        (status = 403, description = "I am not in this session's queue: `NOT_IN_QUEUE`", body = ErrorBody),
        (status = 404, description = "No such session: `NOT_FOUND`", body = ErrorBody),
    )
)]
async fn leave(
    State(state): State<AppState>,
    me: AuthUser,
    Path(id): Path<String>,
) -> Result<impl IntoResponse, ApiError> {
    let session: SessionId = path_id(&id)?;
    let user = user_of(&me)?;
    state.rush.admission.leave(session, &user).await?;
    Ok(Json(admit_and_view(&state, session, &user).await?))
}
