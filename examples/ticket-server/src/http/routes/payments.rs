//! The payment provider's side of checkout.
//!
//! | route | does |
//! |---|---|
//! | `POST /api/payments/webhook` | the provider's signed events (a bad or stale signature: 401 `BAD_SIGNATURE`, nothing changes); a wallet top-up's go to [`crate::services::topups::TopUps`], the rest to the checkout |
//! | `GET /api/payments/{id}` | a payment of mine (anyone else's: 404) |
//!
//! Both are described for `GET /openapi.json` by their `#[utoipa::path]` (tag `payments`).

use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::IntoResponse;
use axum::routing::{get, post};
use axum::{Json, Router};
use serde::Serialize;
use ticket_core::gateway::{IntentId, IntentStatus, PaymentEvent};
use ticket_core::service::PaymentResult;

use crate::http::error::{ApiError, ErrorBody};
use crate::http::extract::AuthUser;
use crate::http::params::user_of;
use crate::http::routes::holds::{HoldAnswer, INTENT_STATUS_DOC, all_intent_statuses};
use crate::runtime::state::AppState;
use crate::services::payments::{self, PaymentLookupError, SettleError, Settled};
use crate::services::topups::TopUpOutcome;

/// The routes of payments.
pub fn router() -> Router<AppState> {
    Router::new()
        .route("/api/payments/webhook", post(webhook))
        .route("/api/payments/{id}", get(read_payment))
}

/// What a webhook delivery did.
#[derive(Debug, Serialize, utoipa::ToSchema)]
struct WebhookAnswer {
    /// The event's id (its `webhook-id`).
    received: String,
    /// What the event did. For a checkout, as the library reports it:
    /// `{"outcome": "confirmed" | "rebooked" | "capture_pending" | "voided" | "refunded" |
    /// "failed" | "ignored", …}` with the hold(s) concerned, or the reason it was ignored
    /// (`voided`: an authorization nothing could be sold for was released uncharged;
    /// `capture_pending`: confirmed, its capture is retried by the capture follower). For a wallet top-up:
    /// `{"outcome": "credited" | "failed" | "refunded" | "unchanged", "topup": id}` or
    /// `{"outcome": "ignored", "reason": …}`.
    #[schema(value_type = Object)]
    result: WebhookResult,
}

/// What one event did: to a checkout, or to a wallet top-up (its intent's metadata says).
#[derive(Debug, Serialize)]
#[serde(untagged)]
enum WebhookResult {
    /// A checkout's payment.
    Checkout(Box<PaymentResult>),
    /// A wallet top-up's payment.
    TopUp(TopUpOutcome),
}

/// A payment of mine.
#[derive(Debug, Serialize, utoipa::ToSchema)]
struct PaymentAnswer {
    /// The payment (intent) id.
    id: String,
    /// Where it stands at the provider.
    #[schema(schema_with = payment_status_schema)]
    status: String,
    /// What is charged, minor units.
    amount: i64,
    /// Currency of `amount`.
    currency: String,
    /// How much was refunded, minor units.
    amount_refunded: i64,
    /// The hold it pays for.
    hold: HoldAnswer,
}

/// The schema of [`PaymentAnswer::status`]: every intent status.
fn payment_status_schema() -> utoipa::openapi::Object {
    crate::http::openapi::text_enum(
        all_intent_statuses().map(IntentStatus::as_str),
        INTENT_STATUS_DOC,
    )
}

/// Applies one signed event of the payment provider (Standard Webhooks), once per event.
#[utoipa::path(
    post,
    path = "/api/payments/webhook",
    operation_id = "payment_webhook",
    tag = "payments",
    summary = "The payment provider's signed events",
    params(
        ("webhook-id" = String, Header, description = "The event's id, the same on every delivery"),
        ("webhook-timestamp" = String, Header, description = "Seconds since the epoch when it was signed; a stale one is refused"),
        ("webhook-signature" = String, Header, description = "Space-separated `v1,<base64 HMAC-SHA256>` or `v1a,<base64 ed25519>` signatures of `<id>.<timestamp>.<body>`"),
    ),
    request_body(content = Object, description = "The provider's event, exactly as signed: `{id, type, sequence, created_at, intent}`", content_type = "application/json"),
    responses(
        (status = 200, description = "The event was applied (or was a repeat, or stale)", body = WebhookAnswer),
        (status = 400, description = "A correctly signed body that is not an event: `VALIDATION`; nothing changes", body = ErrorBody),
        (status = 401, description = "A bad, missing or stale signature: `BAD_SIGNATURE`; nothing changes", body = ErrorBody),
        (status = 409, description = "The provider's report conflicts with the reservation, the provider refused what applying it needs (a capture, a void, a refund), or a late top-up payment could not be refunded: `PAYMENT_CONFLICT`", body = ErrorBody),
        (status = 503, description = "Webhooks are not set up, or storage or the provider is unavailable or limits our rate: `UNAVAILABLE`, `PAYMENT_UNAVAILABLE`, `PAYMENT_RATE_LIMITED`", body = ErrorBody),
    )
)]
async fn webhook(
    State(state): State<AppState>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<impl IntoResponse, ApiError> {
    let verifier = state.webhook_verifier.get().ok_or_else(|| {
        ApiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "UNAVAILABLE",
            "webhooks are not set up",
        )
    })?;
    let header = |name: &str| headers.get(name).and_then(|v| v.to_str().ok());
    let now = state.clock.now().as_millis().div_euclid(1000);
    if let Err(e) = verifier.verify_headers(header, &body, now) {
        tracing::warn!("webhook refused: {e}");
        // The signature authenticates the provider: without a good one, 401.
        return Err(ApiError::new(
            StatusCode::UNAUTHORIZED,
            "BAD_SIGNATURE",
            e.to_string(),
        ));
    }
    let event: PaymentEvent =
        serde_json::from_slice(&body).map_err(|e| ApiError::validation(format!("event: {e}")))?;
    let result = match payments::apply_event(&state.topups, &state.checkout, &event).await {
        Ok(Settled::TopUp(outcome)) => WebhookResult::TopUp(outcome),
        Ok(Settled::Checkout(result)) => {
            state.metrics.webhook_result(&result);
            WebhookResult::Checkout(result)
        }
        Err(SettleError::TopUp(e)) => return Err(e.into()),
        Err(SettleError::Checkout(e)) => return Err(webhook_error(e)),
    };
    Ok(Json(WebhookAnswer {
        received: event.id,
        result,
    }))
}

/// The answer to a webhook the checkout could not apply: the provider delivers it again on
/// any non-2xx. A refusal by the provider of what applying it needs (a capture, a void, a
/// refund: declined, unsupported, invalid) is a conflict between its report and ours (409);
/// a provider that did not answer or limits our rate is 503, like storage.
fn webhook_error(e: ticket_core::Error) -> ApiError {
    match e {
        ticket_core::Error::Payment(g) if !g.is_transient() => {
            ApiError::new(StatusCode::CONFLICT, "PAYMENT_CONFLICT", g.to_string())
        }
        other => other.into(),
    }
}

/// A payment of the caller, read from the provider.
#[utoipa::path(
    get,
    path = "/api/payments/{id}",
    tag = "payments",
    summary = "My payment",
    params(("id" = String, Path, pattern = r"^[A-Za-z0-9_-]{1,255}$", description = "The payment (intent) id, as `payment_id` of a hold or checkout: 1 to 255 letters, digits, `_` or `-` (anything else: 400). A hosted checkout session's id answers the session's latest payment attempt (404 before the buyer made one)")),
    security(("bearer" = [])),
    responses(
        (status = 200, description = "The payment and its hold", body = PaymentAnswer),
        (status = 400, description = "A malformed id: `VALIDATION`", body = ErrorBody),
        (status = 401, description = "No valid access token: `UNAUTHORIZED`, `TOKEN_EXPIRED`", body = ErrorBody),
        (status = 404, description = "No such payment, another user's, or a checkout session without a payment attempt yet: `NOT_FOUND`", body = ErrorBody),
        (status = 503, description = "The provider or storage is unavailable, or the provider limits our rate: `PAYMENT_UNAVAILABLE`, `PAYMENT_RATE_LIMITED`, `UNAVAILABLE` (with `Retry-After`)", body = ErrorBody),
    )
)]
async fn read_payment(
    State(state): State<AppState>,
    me: AuthUser,
    Path(id): Path<String>,
) -> Result<impl IntoResponse, ApiError> {
    // Payment ids are `pi_…` (the provider) or `wallet_…` (the wallet): refuse anything else
    // up front, exactly as the document's pattern says.
    let well_formed = (1..=255).contains(&id.len())
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-');
    if !well_formed {
        return Err(ApiError::validation(
            "a payment id is 1 to 255 letters, digits, `_` or `-`",
        ));
    }
    let intent_id = IntentId::new(id.clone()).map_err(|e| ApiError::validation(e.to_string()))?;
    let (intent, hold) = match payments::payment_of(
        &state.rush,
        &state.checkout,
        &intent_id,
        &user_of(&me)?,
    )
    .await
    {
        Ok(found) => found,
        Err(PaymentLookupError::NotFound) => return Err(ApiError::not_found("payment")),
        Err(PaymentLookupError::Failed(e)) => return Err(e.into()),
    };
    Ok(Json(PaymentAnswer {
        id: intent.id.to_string(),
        status: intent.status.as_str().to_owned(),
        amount: intent.amount.amount_minor,
        currency: intent.amount.currency.as_str().to_owned(),
        amount_refunded: intent.amount_refunded,
        hold: HoldAnswer::from(&hold),
    }))
}
