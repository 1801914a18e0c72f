//! The payment provider's side of checkout.
//!
//! | route | does |
//! |---|---|
//! | `POST /api/payments/webhook` | the provider's signed events (a bad or stale signature: 400, nothing changes) |
//! | `GET /api/payments/{id}` | a payment of mine (anyone else's: 404) |

use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::IntoResponse;
use axum::routing::{get, post};
use axum::{Json, Router};
use serde_json::json;
use ticket_core::Error;
use ticket_core::gateway::{IntentId, PaymentEvent};

use crate::error::ApiError;
use crate::extract::AuthUser;
use crate::routes::holds::HoldAnswer;
use crate::routes::params::user_of;
use crate::state::AppState;

/// The routes of payments.
pub fn router() -> Router<AppState> {
    Router::new()
        .route("/api/payments/webhook", post(webhook))
        .route("/api/payments/{id}", get(read_payment))
}

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
        return Err(ApiError::new(
            StatusCode::BAD_REQUEST,
            "BAD_SIGNATURE",
            e.to_string(),
        ));
    }
    let event: PaymentEvent =
        serde_json::from_slice(&body).map_err(|e| ApiError::validation(format!("event: {e}")))?;
    let result = state.checkout.handle_event(&event).await?;
    state.metrics.webhook_result(&result);
    Ok(Json(json!({ "received": event.id, "result": result })))
}

async fn read_payment(
    State(state): State<AppState>,
    me: AuthUser,
    Path(id): Path<String>,
) -> Result<impl IntoResponse, ApiError> {
    let intent_id = IntentId::new(id.clone()).map_err(|e| ApiError::validation(e.to_string()))?;
    let intent = state
        .checkout
        .gateway()
        .get_intent(&intent_id)
        .await
        .map_err(|e| match e {
            ticket_core::gateway::GatewayError::NotFound(_) => ApiError::not_found("payment"),
            other => ApiError::from(Error::Payment(other)),
        })?;
    // Only the payer sees a payment: anyone else gets the same 404 as for none.
    let user = user_of(&me)?;
    let hold = match intent.hold() {
        Some(h) => state.rush.holds.get(h, &user).await.map_err(|e| match e {
            Error::Refused(ticket_core::Refusal::NotOwner) | Error::NotFound { .. } => {
                ApiError::not_found("payment")
            }
            other => other.into(),
        })?,
        None => return Err(ApiError::not_found("payment")),
    };
    Ok(Json(json!({
        "id": intent.id.to_string(),
        "status": intent.status.as_str(),
        "amount": intent.amount.amount_minor,
        "currency": intent.amount.currency.as_str(),
        "amount_refunded": intent.amount_refunded,
        "hold": HoldAnswer::from(&hold),
    })))
}
