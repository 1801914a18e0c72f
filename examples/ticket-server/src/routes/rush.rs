//! The rush itself: the waiting queue, holds, checkout, the payment provider's webhooks.
//!
//! | route | does |
//! |---|---|
//! | `POST /api/sessions/{id}/queue` | join (idempotent: the same ticket again) |
//! | `GET /api/sessions/{id}/queue` | my place in the queue |
//! | `DELETE /api/sessions/{id}/queue` | leave it (idempotent); the next waiting user moves up |
//! | `POST /api/holds` | hold units or seats (`Idempotency-Key` required; needs an admission when the session queues) |
//! | `GET /api/holds/{id}`, `DELETE /api/holds/{id}` | read or release my hold (another user's: 404) |
//! | `POST /api/holds/{id}/checkout` | pay by card through the payment provider (`Idempotency-Key` required) |
//! | `POST /api/payments/webhook` | the provider's signed events (a bad or stale signature: 400, nothing changes) |
//! | `GET /api/payments/{id}` | a payment of mine |

use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::IntoResponse;
use axum::routing::{get, post};
use axum::{Json, Router};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use ticket_core::gateway::{IntentId, PaymentEvent};
use ticket_core::model::hold::{Hold, Selection};
use ticket_core::model::inventory::{Grade, SeatId};
use ticket_core::model::queue::QueueView;
use ticket_core::service::HoldCommand;
use ticket_core::{Error, HoldId, SessionId, UserId};

use crate::error::ApiError;
use crate::extract::{AuthUser, JsonBody};
use crate::state::AppState;

/// The routes of the rush.
pub fn router() -> Router<AppState> {
    Router::new()
        .route(
            "/api/sessions/{id}/queue",
            post(join).get(my_place).delete(leave),
        )
        .route("/api/holds", post(create_hold))
        .route("/api/holds/{id}", get(read_hold).delete(release_hold))
        .route("/api/holds/{id}/checkout", post(checkout))
        .route("/api/payments/webhook", post(webhook))
        .route("/api/payments/{id}", get(read_payment))
}

fn parse<T: std::str::FromStr>(raw: &str, what: &str) -> Result<T, ApiError> {
    raw.parse()
        .map_err(|_| ApiError::validation(format!("malformed {what} id {raw:?}")))
}

/// The library's user id of the caller.
pub(crate) fn user_of(me: &AuthUser) -> Result<UserId, ApiError> {
    UserId::new(me.id.to_string()).map_err(|e| ApiError::validation(e.to_string()))
}

/// A session id from a path segment (400 when malformed).
pub(crate) fn session_id(raw: &str) -> Result<SessionId, ApiError> {
    parse(raw, "session")
}

/// The required `Idempotency-Key` header (400 when missing or malformed).
pub(crate) fn idempotency_key(headers: &HeaderMap) -> Result<String, ApiError> {
    let key = headers
        .get("idempotency-key")
        .ok_or_else(|| ApiError::validation("the Idempotency-Key header is required"))?
        .to_str()
        .map_err(|_| ApiError::validation("Idempotency-Key must be printable ASCII"))?;
    if key.is_empty() || key.len() > 255 {
        return Err(ApiError::validation(
            "Idempotency-Key must be 1 to 255 characters",
        ));
    }
    Ok(key.to_owned())
}

/// The queue as a buyer sees it.
pub(crate) fn queue_answer(view: &QueueView) -> Value {
    let t = &view.ticket;
    let status = serde_json::to_value(t.state)
        .ok()
        .and_then(|v| v.as_str().map(str::to_lowercase))
        .unwrap_or_default();
    json!({
        "ticket_id": t.id.to_string(),
        "status": status,
        "position": view.position,
        "waiting": view.waiting,
        "eta_seconds": view.eta.map(|d| d.as_secs()),
        "admission_expires_at": t.expires_at.map(|e| e.as_millis()),
        "outlook": view.outlook,
    })
}

async fn join(
    State(state): State<AppState>,
    me: AuthUser,
    Path(id): Path<String>,
) -> Result<impl IntoResponse, ApiError> {
    let session: SessionId = parse(&id, "session")?;
    let user = user_of(&me)?;
    state.rush.admission.join(session, &user).await?;
    // Admit at once when the session has room (a server also runs rounds on a timer).
    state.rush.admission.admit_next(session).await?;
    let view = state.rush.admission.view(session, &user).await?;
    Ok(Json(queue_answer(&view)))
}

async fn my_place(
    State(state): State<AppState>,
    me: AuthUser,
    Path(id): Path<String>,
) -> Result<impl IntoResponse, ApiError> {
    let session: SessionId = parse(&id, "session")?;
    let view = state.rush.admission.view(session, &user_of(&me)?).await?;
    Ok(Json(queue_answer(&view)))
}

async fn leave(
    State(state): State<AppState>,
    me: AuthUser,
    Path(id): Path<String>,
) -> Result<impl IntoResponse, ApiError> {
    let session: SessionId = parse(&id, "session")?;
    let user = user_of(&me)?;
    state.rush.admission.leave(session, &user).await?;
    state.rush.admission.admit_next(session).await?;
    let view = state.rush.admission.view(session, &user).await?;
    Ok(Json(queue_answer(&view)))
}

/// Body of `POST /api/holds`: units of a grade, or seats.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct HoldBody {
    session_id: String,
    #[serde(default)]
    grade: Option<String>,
    #[serde(default)]
    quantity: Option<u32>,
    #[serde(default)]
    seat_ids: Option<Vec<String>>,
    #[serde(default)]
    tier: Option<String>,
}

/// A hold as the API shows it.
#[derive(Debug, Serialize)]
struct HoldAnswer {
    id: String,
    session_id: String,
    status: String,
    expires_at: i64,
    amount: i64,
    currency: String,
    units: u32,
    payment_id: Option<String>,
}

impl From<&Hold> for HoldAnswer {
    fn from(h: &Hold) -> Self {
        Self {
            id: h.id.to_string(),
            session_id: h.session.to_string(),
            status: h.state.as_str().to_lowercase(),
            expires_at: h.expires_at.as_millis(),
            amount: h.amount.amount_minor,
            currency: h.amount.currency.as_str().to_owned(),
            units: h.units(),
            payment_id: h.payment_ref.clone(),
        }
    }
}

async fn create_hold(
    State(state): State<AppState>,
    me: AuthUser,
    headers: HeaderMap,
    JsonBody(body): JsonBody<HoldBody>,
) -> Result<impl IntoResponse, ApiError> {
    let key = idempotency_key(&headers)?;
    let session: SessionId = parse(&body.session_id, "session")?;
    let selection = match (body.grade, body.quantity, body.seat_ids) {
        (Some(grade), Some(quantity), None) => Selection::Units {
            grade: Grade::new(&grade).map_err(|e| ApiError::validation(e.to_string()))?,
            quantity,
        },
        (None, None, Some(seats)) => Selection::Seats {
            seats: seats
                .iter()
                .map(|s| SeatId::new(s).map_err(|e| ApiError::validation(e.to_string())))
                .collect::<Result<_, _>>()?,
        },
        _ => {
            return Err(ApiError::validation(
                "give either grade and quantity, or seat_ids",
            ));
        }
    };
    let cmd = HoldCommand {
        session,
        user: user_of(&me)?,
        tier: body.tier,
        selection,
    };
    let hold = state.rush.holds.hold(cmd, Some(&key)).await?;
    Ok((StatusCode::CREATED, Json(HoldAnswer::from(&hold))))
}

async fn read_hold(
    State(state): State<AppState>,
    me: AuthUser,
    Path(id): Path<String>,
) -> Result<impl IntoResponse, ApiError> {
    let id: HoldId = parse(&id, "hold")?;
    let hold = state.rush.holds.get(id, &user_of(&me)?).await?;
    Ok(Json(HoldAnswer::from(&hold)))
}

async fn release_hold(
    State(state): State<AppState>,
    me: AuthUser,
    Path(id): Path<String>,
) -> Result<impl IntoResponse, ApiError> {
    let id: HoldId = parse(&id, "hold")?;
    let hold = state.rush.holds.release(id, &user_of(&me)?).await?;
    Ok(Json(HoldAnswer::from(&hold)))
}

/// Body of `POST /api/holds/{id}/checkout`.
#[derive(Debug, Deserialize)]
#[serde(tag = "method", rename_all = "snake_case", deny_unknown_fields)]
enum CheckoutBody {
    /// A card (a sandbox test card number).
    Card {
        /// The card number.
        card_number: String,
    },
}

async fn checkout(
    State(state): State<AppState>,
    me: AuthUser,
    Path(id): Path<String>,
    headers: HeaderMap,
    JsonBody(body): JsonBody<CheckoutBody>,
) -> Result<impl IntoResponse, ApiError> {
    let key = idempotency_key(&headers)?;
    let id: HoldId = parse(&id, "hold")?;
    let user = user_of(&me)?;
    let CheckoutBody::Card { card_number } = body;
    let idem =
        ticket_core::model::idempotency::IdempotencyKey::new(user.as_str(), "checkout", &key)
            .map_err(|e| ApiError::validation(e.to_string()))?;
    let payload = json!({ "hold": id.to_string(), "card": card_number });
    let answer: Value = state
        .rush
        .idempotency
        .run(&idem, &payload, || async {
            let started = state.checkout.begin(id, &user, &card_number).await?;
            Ok::<_, Error>(json!({
                "payment_id": started.intent.as_ref().map(|i| i.id.to_string()).or(started.hold.payment_ref.clone()),
                "status": started.intent.as_ref().map(|i| i.status.as_str()),
                "hold": HoldAnswer::from(&started.hold),
            }))
        })
        .await?;
    Ok(Json(answer))
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
