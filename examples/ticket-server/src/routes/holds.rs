//! Holds and paying for them.
//!
//! | route | does |
//! |---|---|
//! | `POST /api/holds` | hold units or seats (`Idempotency-Key` required; needs an admission when the session queues) |
//! | `GET /api/holds/{id}`, `DELETE /api/holds/{id}` | read or release my hold (another user's: 404) |
//! | `POST /api/holds/{id}/checkout` | pay by card through the payment provider, or from the wallet (`Idempotency-Key` required) |

use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::IntoResponse;
use axum::routing::{get, post};
use axum::{Json, Router};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use ticket_core::model::hold::{Hold, Selection};
use ticket_core::model::inventory::{Grade, SeatId};
use ticket_core::service::HoldCommand;
use ticket_core::{Error, HoldId, SessionId};

use crate::error::ApiError;
use crate::extract::{AuthUser, JsonBody};
use crate::routes::params::{idempotency_key, path_id, user_of};
use crate::state::AppState;
use crate::wallet::WALLET_METHOD;

/// The routes of holds.
pub fn router() -> Router<AppState> {
    Router::new()
        .route("/api/holds", post(create_hold))
        .route("/api/holds/{id}", get(read_hold).delete(release_hold))
        .route("/api/holds/{id}/checkout", post(checkout))
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
pub(crate) struct HoldAnswer {
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
    let session: SessionId = path_id(&body.session_id)?;
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
    let id: HoldId = path_id(&id)?;
    let hold = state.rush.holds.get(id, &user_of(&me)?).await?;
    Ok(Json(HoldAnswer::from(&hold)))
}

async fn release_hold(
    State(state): State<AppState>,
    me: AuthUser,
    Path(id): Path<String>,
) -> Result<impl IntoResponse, ApiError> {
    let id: HoldId = path_id(&id)?;
    let hold = state.rush.holds.release(id, &user_of(&me)?).await?;
    Ok(Json(HoldAnswer::from(&hold)))
}

/// Body of `POST /api/holds/{id}/checkout`.
#[derive(Debug, Deserialize)]
#[serde(tag = "method", rename_all = "snake_case", deny_unknown_fields)]
enum CheckoutBody {
    /// A card (a sandbox test card number), through the payment provider.
    Card {
        /// The card number.
        card_number: String,
    },
    /// The buyer's wallet: debited at once, or refused for insufficient funds.
    Wallet,
}

impl CheckoutBody {
    /// The payment method as the provider takes it.
    fn payment_method(&self) -> &str {
        match self {
            Self::Card { card_number } => card_number,
            Self::Wallet => WALLET_METHOD,
        }
    }
}

/// Pays hold `id` with a card or the wallet. Once per `Idempotency-Key` (a repeat answers
/// the first outcome); per hold, the payment itself happens at most once whatever the keys
/// (the provider's and the wallet's own idempotency are per hold).
async fn checkout(
    State(state): State<AppState>,
    me: AuthUser,
    Path(id): Path<String>,
    headers: HeaderMap,
    JsonBody(body): JsonBody<CheckoutBody>,
) -> Result<impl IntoResponse, ApiError> {
    let key = idempotency_key(&headers)?;
    let id: HoldId = path_id(&id)?;
    let user = user_of(&me)?;
    let method = body.payment_method();
    let idem =
        ticket_core::model::idempotency::IdempotencyKey::new(user.as_str(), "checkout", &key)
            .map_err(|e| ApiError::validation(e.to_string()))?;
    let payload = json!({ "hold": id.to_string(), "method": method });
    let answer: Value = state
        .rush
        .idempotency
        .run(&idem, &payload, || async {
            let started = state.checkout.begin(id, &user, method).await?;
            Ok::<_, Error>(json!({
                "payment_id": started.intent.as_ref().map(|i| i.id.to_string()).or(started.hold.payment_ref.clone()),
                "status": started.intent.as_ref().map(|i| i.status.as_str()),
                "failure": started.intent.as_ref().and_then(|i| i.failure.as_ref()).map(|f| json!({"code": f.code, "message": f.message})),
                "hold": HoldAnswer::from(&started.hold),
            }))
        })
        .await?;
    Ok(Json(answer))
}
