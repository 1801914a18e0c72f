//! Wallet top-ups over HTTP: money enters a wallet only through a card payment that
//! succeeded (see [`crate::services::topups::TopUps`]).
//!
//! | route | does |
//! |---|---|
//! | `POST /api/me/wallet/topups` | pay `amount` by card into my wallet (`Idempotency-Key` required: a repeat answers the same top-up and pays nothing more); 202 with the top-up, `pending` until the payment settles |
//! | `GET /api/me/wallet/topups/{id}` | one of my top-ups, to follow it from `pending` to `succeeded` or `failed` |
//!
//! Described for `GET /openapi.json` by their `#[utoipa::path]` (tag `wallet`).

use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::IntoResponse;
use axum::routing::{get, post};
use axum::{Json, Router};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::http::error::{ApiError, ErrorBody};
use crate::http::extract::{AuthUser, Buyer, JsonBody};
use crate::http::params::idempotency_key;
use crate::runtime::state::AppState;
use crate::services::topups::TopUpError;
use crate::stores::wallet::{MAX_AMOUNT_MINOR, TopUp, TopUpStatus};

/// The routes of top-ups.
pub fn router() -> Router<AppState> {
    Router::new()
        .route("/api/me/wallet/topups", post(start_topup))
        .route("/api/me/wallet/topups/{id}", get(read_topup))
}

impl From<TopUpError> for ApiError {
    fn from(e: TopUpError) -> Self {
        match e {
            TopUpError::Wallet(w) => w.into(),
            TopUpError::Payment(g) => ticket_core::Error::Payment(g).into(),
            TopUpError::KeyReused => ApiError::new(
                StatusCode::UNPROCESSABLE_ENTITY,
                "IDEMPOTENCY_KEY_REUSED",
                "this Idempotency-Key opened a top-up of another amount or card",
            ),
        }
    }
}

/// Body of `POST /api/me/wallet/topups`.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
struct TopUpBody {
    /// Minor units (won) to add and charge to the card.
    #[schema(minimum = 1, maximum = 10_000_000, examples(100_000))]
    amount: i64,
    /// The card to charge (a sandbox test card number, see the README): 12 to 19 digits.
    /// One failing the Luhn check is refused by the provider: the top-up fails.
    #[schema(
        pattern = "^[0-9]{12,19}$",
        min_length = 12,
        max_length = 19,
        examples("4242424242424242")
    )]
    card_number: String,
}

/// A top-up.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub(crate) struct TopUpAnswer {
    /// The top-up's id.
    #[schema(value_type = String, format = "uuid")]
    id: Uuid,
    /// `pending` until the payment settles; `succeeded` once the wallet was credited (once);
    /// `failed` when the card was declined, the payment canceled or never answered (nothing
    /// credited).
    #[schema(schema_with = topup_status_schema)]
    status: String,
    /// Minor units added (once `succeeded`).
    amount: i64,
    /// The wallet's currency.
    #[schema(examples("KRW"))]
    currency: String,
    /// The last four digits of the card.
    card_last4: String,
    /// The card payment (intent) id, once created.
    payment_id: Option<String>,
    /// Why it failed (`card_declined`, `insufficient_funds`, `invalid_card`, `timeout`, …).
    failure: Option<String>,
    /// When it was opened, epoch ms.
    created_at: i64,
    /// When it last changed, epoch ms.
    updated_at: i64,
    /// When a top-up still pending is given up, epoch ms.
    expires_at: i64,
}

fn topup_status_schema() -> utoipa::openapi::Object {
    let all = [
        TopUpStatus::Pending,
        TopUpStatus::Succeeded,
        TopUpStatus::Failed,
    ];
    crate::http::openapi::text_enum(all.map(status_name), "Where the top-up stands")
}

fn status_name(s: TopUpStatus) -> &'static str {
    match s {
        TopUpStatus::Pending => "pending",
        TopUpStatus::Succeeded => "succeeded",
        TopUpStatus::Failed => "failed",
    }
}

impl From<TopUp> for TopUpAnswer {
    fn from(t: TopUp) -> Self {
        Self {
            id: t.id,
            status: status_name(t.status).to_owned(),
            amount: t.amount.amount_minor,
            currency: t.amount.currency.as_str().to_owned(),
            card_last4: t.card_last4,
            payment_id: t.intent,
            failure: t.failure,
            created_at: t.created_at.as_millis(),
            updated_at: t.updated_at.as_millis(),
            expires_at: t.expires_at.as_millis(),
        }
    }
}

/// Pays `amount` by card into the caller's wallet, once per `Idempotency-Key`.
#[utoipa::path(
    post,
    path = "/api/me/wallet/topups",
    operation_id = "start_topup",
    tag = "wallet",
    summary = "Add money to my wallet by card",
    params(("Idempotency-Key" = String, Header, min_length = 1, max_length = 255, pattern = r"^[\x21-\x7e]([\x20-\x7e]{0,253}[\x21-\x7e])?$", description = "Required; 1 to 255 printable ASCII characters (space inside only; anything else: 400). A repeat with the same key, amount and card answers the same top-up and pays nothing more")),
    request_body = TopUpBody,
    security(("bearer" = [])),
    responses(
        (status = 202, description = "The top-up: `pending` while the payment settles (follow it with `GET /api/me/wallet/topups/{id}`), or already `succeeded` or `failed`", body = TopUpAnswer),
        (status = 400, description = "Malformed body or card number, or a missing or malformed `Idempotency-Key`: `VALIDATION`", body = ErrorBody),
        (status = 401, description = "No valid access token: `UNAUTHORIZED`, `TOKEN_EXPIRED`", body = ErrorBody),
        (status = 403, description = "A gate account (`FORBIDDEN`) or a blocked user (`USER_BLOCKED`)", body = ErrorBody),
        (status = 409, description = "The payment provider refused the request: `PAYMENT_CONFLICT`", body = ErrorBody),
        (status = 422, description = "An amount out of 1..=10 000 000 (`VALIDATION`), or this key used with another amount or card (`IDEMPOTENCY_KEY_REUSED`)", body = ErrorBody),
        (status = 429, description = "Over the per-user or per-IP rate limit: `RATE_LIMITED` (with `Retry-After`)", body = ErrorBody),
        (status = 503, description = "Wallet storage or the payment provider unavailable: `UNAVAILABLE`, `PAYMENT_UNAVAILABLE` (with `Retry-After`); repeating with the same key is safe", body = ErrorBody),
    )
)]
async fn start_topup(
    State(state): State<AppState>,
    Buyer(me): Buyer,
    headers: HeaderMap,
    JsonBody(body): JsonBody<TopUpBody>,
) -> Result<impl IntoResponse, ApiError> {
    let key = idempotency_key(&headers)?;
    let card = body.card_number.as_str();
    if !(12..=19).contains(&card.len()) || !card.bytes().all(|b| b.is_ascii_digit()) {
        return Err(ApiError::validation("card_number must be 12 to 19 digits"));
    }
    if !(1..=MAX_AMOUNT_MINOR).contains(&body.amount) {
        return Err(ApiError::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "VALIDATION",
            format!("amount must be between 1 and {MAX_AMOUNT_MINOR}"),
        ));
    }
    let topup = state
        .topups
        .start(&me.id.to_string(), &key, body.amount, card)
        .await?;
    Ok((StatusCode::ACCEPTED, Json(TopUpAnswer::from(topup))))
}

/// One of the caller's top-ups (a pending one is first checked with the provider).
#[utoipa::path(
    get,
    path = "/api/me/wallet/topups/{id}",
    operation_id = "read_topup",
    tag = "wallet",
    summary = "My top-up",
    params(("id" = String, Path, format = "uuid", description = "The top-up's id")),
    security(("bearer" = [])),
    responses(
        (status = 200, description = "The top-up", body = TopUpAnswer),
        (status = 400, description = "A malformed id: `VALIDATION`", body = ErrorBody),
        (status = 401, description = "No valid access token: `UNAUTHORIZED`, `TOKEN_EXPIRED`", body = ErrorBody),
        (status = 404, description = "No such top-up, or another user's: `NOT_FOUND`", body = ErrorBody),
        (status = 503, description = "Wallet storage unavailable: `UNAVAILABLE` (with `Retry-After`)", body = ErrorBody),
    )
)]
async fn read_topup(
    State(state): State<AppState>,
    me: AuthUser,
    Path(id): Path<String>,
) -> Result<impl IntoResponse, ApiError> {
    let id: Uuid = id
        .parse()
        .map_err(|_| ApiError::validation("the top-up id must be a UUID"))?;
    match state.topups.get(&me.id.to_string(), id).await? {
        Some(t) => Ok(Json(TopUpAnswer::from(t))),
        None => Err(ApiError::not_found("top-up")),
    }
}
