//! A buyer's reservations: list them, cancel a confirmed one with a full refund.
//!
//! | route | does |
//! |---|---|
//! | `GET /api/me/reservations?limit=&cursor=` | my reservations across sessions, newest first, a page at a time (`limit` 1..=500, default 50; `next_cursor`) |
//! | `POST /api/reservations/{id}/cancel` | cancel a confirmed reservation of mine and refund it in full (`Idempotency-Key` required; another user's: 404; not confirmed, or a ticket already scanned at the gate: 409) |
//!
//! The cancellation itself (back on sale, refund, recorded) is
//! [`crate::services::reservations::cancel_and_refund`].
//!
//! Both routes are described for `GET /openapi.json` by their `#[utoipa::path]` (tag
//! `reservations`).

use axum::extract::rejection::QueryRejection;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::IntoResponse;
use axum::routing::{get, post};
use axum::{Json, Router};
use serde::{Deserialize, Serialize};
use ticket_core::model::hold::Hold;
use ticket_core::model::idempotency::IdempotencyKey;
use ticket_core::model::page::HoldCursor;
use ticket_core::{Error, HoldId, Refusal};

use crate::http::error::{ApiError, ErrorBody};
use crate::http::extract::AuthUser;
use crate::http::paging::PageParams;
use crate::http::params::{idempotency_key, path_id, user_of};
use crate::http::routes::holds::{hold_status, hold_status_schema};
use crate::runtime::state::AppState;
use crate::services::reservations;

/// The routes of a buyer's reservations.
pub fn router() -> Router<AppState> {
    Router::new()
        .route("/api/me/reservations", get(my_reservations))
        .route("/api/reservations/{id}/cancel", post(cancel))
}

/// A reservation as the API shows it.
#[derive(Debug, Serialize, utoipa::ToSchema)]
struct ReservationAnswer {
    /// The reservation's (hold's) id.
    #[schema(format = "uuid")]
    id: String,
    /// Its session.
    #[schema(format = "uuid")]
    session_id: String,
    /// Where it stands.
    #[schema(schema_with = hold_status_schema)]
    status: String,
    /// Units or seats.
    units: u32,
    /// Total price in minor units.
    amount: i64,
    /// Currency of `amount`.
    currency: String,
    /// When it expired or expires unless paid, epoch ms.
    expires_at: i64,
    /// Its payment, once checkout started.
    payment_id: Option<String>,
    /// When it was made, epoch ms.
    created_at: i64,
}

impl From<&Hold> for ReservationAnswer {
    fn from(h: &Hold) -> Self {
        Self {
            id: h.id.to_string(),
            session_id: h.session.to_string(),
            status: hold_status(h.state),
            units: h.units(),
            amount: h.amount.amount_minor,
            currency: h.amount.currency.as_str().to_owned(),
            expires_at: h.expires_at.as_millis(),
            payment_id: h.payment_ref.clone(),
            created_at: h.created_at.as_millis(),
        }
    }
}

/// A page of my reservations, newest first.
#[derive(Debug, Serialize, utoipa::ToSchema)]
struct ReservationsPage {
    /// The reservations, newest first by creation (then id).
    reservations: Vec<ReservationAnswer>,
    /// Pass it as `cursor` for the next (older) page; `null` when this page is the last.
    #[schema(
        pattern = "^(0|-?[1-9][0-9]{0,17})_[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$"
    )]
    next_cursor: Option<String>,
}

/// A page of the caller's reservations across sessions, newest first. Paging with
/// `next_cursor` lists every reservation that existed when the paging started exactly once;
/// one made meanwhile appears at most once. One keyset read of the library's per-user
/// index: no scan of the audit trail.
#[utoipa::path(
    get,
    path = "/api/me/reservations",
    tag = "reservations",
    summary = "My reservations, a page at a time",
    params(PageParams),
    security(("bearer" = [])),
    responses(
        (status = 200, description = "A page of my reservations, newest first", body = ReservationsPage),
        (status = 400, description = "A bad `limit` or `cursor`, or an unknown parameter: `VALIDATION`", body = ErrorBody),
        (status = 401, description = "No valid access token: `UNAUTHORIZED`, `TOKEN_EXPIRED`", body = ErrorBody),
        (status = 503, description = "Storage unavailable: `UNAVAILABLE` (with `Retry-After`)", body = ErrorBody),
    )
)]
async fn my_reservations(
    State(state): State<AppState>,
    me: AuthUser,
    query: Result<Query<PageParams>, QueryRejection>,
) -> Result<impl IntoResponse, ApiError> {
    let Query(query) = query.map_err(|e| ApiError::validation(e.body_text()))?;
    let (limit, cursor) = query.parse::<HoldCursor>()?;
    let page = reservations::holds_page(&state.rush, &user_of(&me)?, cursor, limit).await?;
    Ok(Json(ReservationsPage {
        reservations: page.items.iter().map(ReservationAnswer::from).collect(),
        next_cursor: page.next.map(|c| c.to_string()),
    }))
}

/// The answer of a cancellation.
#[derive(Debug, Serialize, Deserialize, utoipa::ToSchema)]
struct CancelAnswer {
    /// The reservation's id.
    #[schema(format = "uuid")]
    id: String,
    /// `refunded` once the money is back.
    #[schema(schema_with = hold_status_schema)]
    status: String,
    /// The provider's refund (or a `none-…` reference for a free reservation).
    refund_id: Option<String>,
}

/// Cancels a confirmed reservation of the caller and refunds it in full, once per
/// `Idempotency-Key`; its units go back on sale at once.
#[utoipa::path(
    post,
    path = "/api/reservations/{id}/cancel",
    operation_id = "cancel_reservation",
    tag = "reservations",
    summary = "Cancel my reservation with a full refund",
    params(
        ("id" = String, Path, format = "uuid", description = "The reservation's (hold's) id"),
        ("Idempotency-Key" = String, Header, min_length = 1, max_length = 255, pattern = r"^[\x21-\x7e]([\x20-\x7e]{0,253}[\x21-\x7e])?$", description = "Required; 1 to 255 printable ASCII characters (space inside only; anything else: 400). A repeat with the same key answers the first outcome"),
    ),
    security(("bearer" = [])),
    responses(
        (status = 200, description = "The reservation, cancelled and refunded", body = CancelAnswer),
        (status = 400, description = "A malformed id, or a missing or malformed `Idempotency-Key`: `VALIDATION`", body = ErrorBody),
        (status = 401, description = "No valid access token: `UNAUTHORIZED`, `TOKEN_EXPIRED`", body = ErrorBody),
        (status = 404, description = "No such reservation, or another user's: `NOT_FOUND`", body = ErrorBody),
        (status = 409, description = "Not confirmed (`ILLEGAL_TRANSITION`), a ticket of it was already scanned at the gate (`TICKET_ALREADY_USED`), the provider refused the refund (`PAYMENT_CONFLICT`), or a request with this key is still running (`IN_FLIGHT`); nothing changes", body = ErrorBody),
        (status = 422, description = "This key was used with another reservation: `IDEMPOTENCY_KEY_REUSED`", body = ErrorBody),
        (status = 503, description = "The provider or storage is unavailable: `PAYMENT_UNAVAILABLE`, `UNAVAILABLE` (with `Retry-After`)", body = ErrorBody),
    )
)]
async fn cancel(
    State(state): State<AppState>,
    me: AuthUser,
    Path(id): Path<String>,
    headers: HeaderMap,
) -> Result<impl IntoResponse, ApiError> {
    let key = idempotency_key(&headers)?;
    let id: HoldId = path_id(&id)?;
    let user = user_of(&me)?;
    let idem = IdempotencyKey::new(user.as_str(), "cancel", &key)
        .map_err(|e| ApiError::validation(e.to_string()))?;
    let payload = serde_json::json!({ "hold": id.to_string() });
    let answer: CancelAnswer = state
        .rush
        .idempotency
        .run(&idem, &payload, || async {
            let done =
                reservations::cancel_and_refund(&state.rush, &state.checkout, id, &user).await?;
            Ok::<_, Error>(CancelAnswer {
                id: done.id.to_string(),
                status: done.state.as_str().to_lowercase(),
                refund_id: done.refund_id,
            })
        })
        .await
        .map_err(refused_after_check_in)?;
    Ok(Json(answer))
}

/// A reservation one of whose tickets was checked in at the gate is not cancelled (the
/// buyer went in): the library refuses CONFIRMED → CANCELLED with `TicketUsed` in the same
/// atomic step as the move, so a scan racing the cancellation is excluded too. Answered 409
/// `TICKET_ALREADY_USED`; nothing changes.
fn refused_after_check_in(e: Error) -> ApiError {
    match e {
        Error::Refused(Refusal::TicketUsed { first_used_at }) => ApiError::new(
            StatusCode::CONFLICT,
            "TICKET_ALREADY_USED",
            format!(
                "a ticket of this reservation was used at the gate (at {} ms since the epoch): \
                 it can no longer be cancelled",
                first_used_at.as_millis()
            ),
        ),
        other => other.into(),
    }
}
