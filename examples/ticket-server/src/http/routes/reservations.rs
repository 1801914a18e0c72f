//! A buyer's reservations: list them, quote and cancel a confirmed one by the session's
//! refund policy; an admin's cancellation on a buyer's behalf.
//!
//! | route | does |
//! |---|---|
//! | `GET /api/me/reservations?limit=&cursor=` | my reservations across sessions, newest first, a page at a time (`limit` 1..=500, default 50; `next_cursor`) |
//! | `GET /api/reservations/{id}/cancellation-quote` | what cancelling my confirmed reservation now would cost by the session's refund policy: fee, refund, rule, `valid_until`, `cancellable_until` (another user's: 404) |
//! | `POST /api/reservations/{id}/cancel` | cancel a confirmed reservation of mine by the refund policy: the fee is kept, the rest refunded (`Idempotency-Key` required; another user's: 404; not confirmed, past the deadline, or a ticket already scanned at the gate: 409) |
//! | `POST /api/admin/reservations/{id}/cancel` | (admin) cancel a buyer's reservation on their behalf, `{"reason", "refund": "policy" \| "full"}` (`Idempotency-Key` required) |
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
use ticket_core::model::refund_policy::RefundBasis;
use ticket_core::{Error, HoldId, Refusal};

use crate::http::error::{ApiError, ErrorBody};
use crate::http::extract::{AdminUser, AuthUser, JsonBody};
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
        .route(
            "/api/reservations/{id}/cancellation-quote",
            get(cancellation_quote),
        )
        .route("/api/admin/reservations/{id}/cancel", post(admin_cancel))
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
            payment_id: crate::http::routes::holds::payment_id_of(h),
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
    /// The provider's refund (or a `none-…` reference when nothing was paid or nothing is
    /// returned).
    refund_id: Option<String>,
    /// `policy` (the session's refund policy decided the fee) or `full`.
    #[schema(schema_with = basis_schema)]
    basis: String,
    /// What was paid, minor units.
    paid: i64,
    /// What the cancellation cost (kept), minor units.
    fee: i64,
    /// What went back: `paid - fee`, minor units.
    refund: i64,
    /// Currency of the amounts.
    currency: String,
    /// The fee rate applied, basis points (`1000` = 10 %).
    fee_bps: u32,
    /// The rule applied, in words.
    rule: String,
}

/// The schema of [`CancelAnswer::basis`].
fn basis_schema() -> utoipa::openapi::Object {
    crate::http::openapi::text_enum(["policy", "full"], "How the refund was decided")
}

impl From<reservations::Cancelled> for CancelAnswer {
    fn from(done: reservations::Cancelled) -> Self {
        let d = done.decision;
        Self {
            id: done.id.to_string(),
            status: done.state.as_str().to_lowercase(),
            refund_id: done.refund_id,
            basis: match d.basis {
                RefundBasis::Policy => "policy".to_owned(),
                RefundBasis::Full => "full".to_owned(),
            },
            paid: d.paid.amount_minor,
            fee: d.fee.amount_minor,
            refund: d.refund.amount_minor,
            currency: d.paid.currency.as_str().to_owned(),
            fee_bps: d.fee_bps,
            rule: d.rule,
        }
    }
}

/// What cancelling a reservation now would cost.
#[derive(Debug, Serialize, utoipa::ToSchema)]
struct QuoteAnswer {
    /// The reservation's id.
    #[schema(format = "uuid")]
    id: String,
    /// What was paid, minor units.
    paid: i64,
    /// What a cancellation now costs (kept), minor units.
    fee: i64,
    /// What a cancellation now returns: `paid - fee`, minor units.
    refund: i64,
    /// Currency of the amounts.
    currency: String,
    /// The fee rate, basis points (`1000` = 10 %).
    fee_bps: u32,
    /// The rule that applies, in words.
    rule: String,
    /// When the quote was made, epoch ms.
    quoted_at: i64,
    /// The fee holds until this instant (exclusive), epoch ms; then the next tier applies or
    /// cancellations close.
    valid_until: i64,
    /// The last instant (exclusive) a cancellation is accepted, epoch ms.
    cancellable_until: i64,
}

/// Cancels a confirmed reservation of the caller by the session's refund policy (the fee
/// of `GET /api/reservations/{id}/cancellation-quote` is kept, the rest refunded), once per
/// `Idempotency-Key`; its units go back on sale at once.
#[utoipa::path(
    post,
    path = "/api/reservations/{id}/cancel",
    operation_id = "cancel_reservation",
    tag = "reservations",
    summary = "Cancel my reservation by the refund policy",
    params(
        ("id" = String, Path, format = "uuid", description = "The reservation's (hold's) id"),
        ("Idempotency-Key" = String, Header, min_length = 1, max_length = 255, pattern = r"^[\x21-\x7e]([\x20-\x7e]{0,253}[\x21-\x7e])?$", description = "Required; 1 to 255 printable ASCII characters (space inside only; anything else: 400). A repeat with the same key answers the first outcome"),
    ),
    security(("bearer" = [])),
    responses(
        (status = 200, description = "The reservation, cancelled and refunded: the fee kept, the refund, the rule", body = CancelAnswer),
        (status = 400, description = "A malformed id, or a missing or malformed `Idempotency-Key`: `VALIDATION`", body = ErrorBody),
        (status = 401, description = "No valid access token: `UNAUTHORIZED`, `TOKEN_EXPIRED`", body = ErrorBody),
        (status = 404, description = "No such reservation, or another user's: `NOT_FOUND`", body = ErrorBody),
        (status = 409, description = "Not confirmed (`ILLEGAL_TRANSITION`), past the policy's cancellation deadline (`CANCELLATION_CLOSED`), a ticket of it was already scanned at the gate (`TICKET_ALREADY_USED`), the provider refused the refund (`PAYMENT_CONFLICT`), or a request with this key is still running (`IN_FLIGHT`); nothing changes", body = ErrorBody),
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
            Ok::<_, Error>(CancelAnswer::from(done))
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

/// What cancelling my confirmed reservation now would cost by the session's refund policy:
/// the fee, the refund, the rule, until when the quote holds and until when cancelling is
/// possible. A read that changes nothing.
#[utoipa::path(
    get,
    path = "/api/reservations/{id}/cancellation-quote",
    operation_id = "cancellation_quote",
    tag = "reservations",
    summary = "The fee of cancelling my reservation now",
    params(("id" = String, Path, format = "uuid", description = "The reservation's (hold's) id")),
    security(("bearer" = [])),
    responses(
        (status = 200, description = "The quote", body = QuoteAnswer),
        (status = 400, description = "A malformed id: `VALIDATION`", body = ErrorBody),
        (status = 401, description = "No valid access token: `UNAUTHORIZED`, `TOKEN_EXPIRED`", body = ErrorBody),
        (status = 404, description = "No such reservation, or another user's: `NOT_FOUND`", body = ErrorBody),
        (status = 409, description = "Not confirmed (`ILLEGAL_TRANSITION`) or past the policy's cancellation deadline (`CANCELLATION_CLOSED`)", body = ErrorBody),
        (status = 503, description = "Storage unavailable: `UNAVAILABLE` (with `Retry-After`)", body = ErrorBody),
    )
)]
async fn cancellation_quote(
    State(state): State<AppState>,
    me: AuthUser,
    Path(id): Path<String>,
) -> Result<Json<QuoteAnswer>, ApiError> {
    let id: HoldId = path_id(&id)?;
    let user = user_of(&me)?;
    let q = reservations::quote(&state.rush, &state.checkout, id, &user).await?;
    let d = q.decision;
    Ok(Json(QuoteAnswer {
        id: q.hold.to_string(),
        paid: d.paid.amount_minor,
        fee: d.fee.amount_minor,
        refund: d.refund.amount_minor,
        currency: d.paid.currency.as_str().to_owned(),
        fee_bps: d.fee_bps,
        rule: d.rule,
        quoted_at: q.quoted_at.as_millis(),
        valid_until: q.valid_until.as_millis(),
        cancellable_until: q.cancellable_until.as_millis(),
    }))
}

/// How an admin's cancellation refunds.
#[derive(Debug, Clone, Copy, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
enum RefundChoice {
    /// By the session's refund policy (its fee is kept; refused past its deadline).
    Policy,
    /// Everything paid goes back.
    Full,
}

/// The body of an admin's cancellation on a buyer's behalf.
#[derive(Debug, Clone, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
struct AdminCancelBody {
    /// Why (recorded in the audit trail): 1 to 500 characters, no control characters.
    #[schema(
        min_length = 1,
        max_length = 500,
        pattern = r"^[^\x00-\x1f\x7f]*\S[^\x00-\x1f\x7f]*$"
    )]
    reason: String,
    /// `policy` or `full`.
    refund: RefundChoice,
}

/// Cancels a buyer's confirmed reservation on their behalf (admin), refunding by the
/// session's policy or in full, once per `Idempotency-Key`; the units go back on sale at
/// once.
#[utoipa::path(
    post,
    path = "/api/admin/reservations/{id}/cancel",
    operation_id = "admin_cancel_reservation",
    tag = "reservations",
    summary = "Cancel a buyer's reservation on their behalf (admin)",
    params(
        ("id" = String, Path, format = "uuid", description = "The reservation's (hold's) id"),
        ("Idempotency-Key" = String, Header, min_length = 1, max_length = 255, pattern = r"^[\x21-\x7e]([\x20-\x7e]{0,253}[\x21-\x7e])?$", description = "Required; 1 to 255 printable ASCII characters. A repeat with the same key and body answers the first outcome"),
    ),
    request_body = AdminCancelBody,
    security(("bearer" = [])),
    responses(
        (status = 200, description = "The reservation, cancelled and refunded: the fee kept, the refund, the rule", body = CancelAnswer),
        (status = 400, description = "Malformed JSON, a missing, empty or too long reason, an unknown field or `refund`, a malformed id, or a missing or malformed `Idempotency-Key`: `VALIDATION`", body = ErrorBody),
        (status = 401, description = "No valid access token: `UNAUTHORIZED`, `TOKEN_EXPIRED`", body = ErrorBody),
        (status = 403, description = "Not an admin: `FORBIDDEN`", body = ErrorBody),
        (status = 404, description = "No such reservation: `NOT_FOUND`", body = ErrorBody),
        (status = 409, description = "Not confirmed (`ILLEGAL_TRANSITION`), past the policy's deadline with `refund: policy` (`CANCELLATION_CLOSED`), a ticket of it was already used (`TICKET_ALREADY_USED`), the provider refused the refund (`PAYMENT_CONFLICT`), or a request with this key is still running (`IN_FLIGHT`); nothing changes", body = ErrorBody),
        (status = 422, description = "A reason with control characters, or one the library refuses (over 500 bytes): `VALIDATION`; this key was used with another request: `IDEMPOTENCY_KEY_REUSED`", body = ErrorBody),
        (status = 503, description = "The provider or storage is unavailable: `PAYMENT_UNAVAILABLE`, `UNAVAILABLE` (with `Retry-After`)", body = ErrorBody),
    )
)]
async fn admin_cancel(
    State(state): State<AppState>,
    AdminUser(admin): AdminUser,
    Path(id): Path<String>,
    headers: HeaderMap,
    JsonBody(body): JsonBody<AdminCancelBody>,
) -> Result<Json<CancelAnswer>, ApiError> {
    let id: HoldId = path_id(&id)?;
    let key = idempotency_key(&headers)?;
    let reason = body.reason.trim().to_owned();
    if reason.is_empty() || reason.chars().count() > ticket_core::model::sale::MAX_REASON_LEN {
        return Err(ApiError::validation("reason must be 1 to 500 characters"));
    }
    if reason.chars().any(char::is_control) {
        // Well-formed JSON the rules refuse, like the switch moves' reasons: 422.
        return Err(ApiError::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "VALIDATION",
            "reason must not contain control characters",
        ));
    }
    let basis = match body.refund {
        RefundChoice::Policy => RefundBasis::Policy,
        RefundChoice::Full => RefundBasis::Full,
    };
    let idem = IdempotencyKey::new(&admin.id.to_string(), "admin-cancel", &key)
        .map_err(|e| ApiError::validation(e.to_string()))?;
    let payload = serde_json::json!({ "hold": id.to_string(), "body": body });
    let actor = ticket_core::model::audit::Actor::Operator(admin.id.to_string());
    let answer: CancelAnswer = state
        .rush
        .idempotency
        .run(&idem, &payload, || async {
            let done = reservations::cancel_on_behalf(
                &state.rush,
                &state.checkout,
                id,
                actor,
                basis,
                &format!("cancelled by an admin: {reason}"),
            )
            .await?;
            Ok::<_, Error>(CancelAnswer::from(done))
        })
        .await
        .map_err(refused_after_check_in)?;
    tracing::info!(admin = %admin.id, hold = %id, refund = answer.refund, fee = answer.fee, "reservation cancelled on the buyer's behalf");
    Ok(Json(answer))
}
