//! The buyer's wallet over HTTP.
//!
//! | route | does |
//! |---|---|
//! | `POST /api/me/wallet/charge` | add money (`Idempotency-Key` required: a repeat credits nothing) |
//! | `GET /api/me/wallet` | the balance and the newest ledger entries (`?limit=`, 1..=200) |
//!
//! The balance is the sum of the ledger, which is never edited in place (see
//! [`crate::wallet`]). Wallets hold KRW.

use axum::extract::rejection::QueryRejection;
use axum::extract::{Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::IntoResponse;
use axum::routing::{get, post};
use axum::{Json, Router};
use serde::Deserialize;
use serde_json::json;
use ticket_core::model::money::{Currency, Money};

use crate::error::ApiError;
use crate::extract::{AuthUser, JsonBody};
use crate::routes::params::idempotency_key;
use crate::state::AppState;
use crate::wallet::WalletError;

/// The currency of every wallet.
pub const WALLET_CURRENCY: &str = "KRW";

/// The routes of the wallet.
pub fn router() -> Router<AppState> {
    Router::new()
        .route("/api/me/wallet/charge", post(charge))
        .route("/api/me/wallet", get(read))
}

impl From<WalletError> for ApiError {
    fn from(e: WalletError) -> Self {
        match e {
            WalletError::InsufficientFunds { .. } => {
                ApiError::new(StatusCode::CONFLICT, "INSUFFICIENT_FUNDS", e.to_string())
            }
            WalletError::InvalidAmount { .. }
            | WalletError::CurrencyMismatch { .. }
            | WalletError::InvalidRequest(_) => ApiError::new(
                StatusCode::UNPROCESSABLE_ENTITY,
                "VALIDATION",
                e.to_string(),
            ),
            WalletError::BalanceLimit { .. } => {
                ApiError::new(StatusCode::CONFLICT, "BALANCE_LIMIT", e.to_string())
            }
            WalletError::KeyReused => ApiError::new(
                StatusCode::UNPROCESSABLE_ENTITY,
                "IDEMPOTENCY_KEY_REUSED",
                e.to_string(),
            ),
            WalletError::Unavailable(_) => ApiError::new(
                StatusCode::SERVICE_UNAVAILABLE,
                "UNAVAILABLE",
                "wallet storage unavailable, retry",
            )
            .retry_after(std::time::Duration::from_secs(1)),
        }
    }
}

/// Body of `POST /api/me/wallet/charge`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct ChargeBody {
    /// Minor units (won) to add.
    amount: i64,
}

async fn charge(
    State(state): State<AppState>,
    me: AuthUser,
    headers: HeaderMap,
    JsonBody(body): JsonBody<ChargeBody>,
) -> Result<impl IntoResponse, ApiError> {
    let key = idempotency_key(&headers)?;
    let currency = Currency::new(WALLET_CURRENCY).map_err(ticket_core::Error::from)?;
    let amount = Money {
        amount_minor: body.amount,
        currency,
    };
    let entry = state
        .wallet
        .charge(
            &me.id.to_string(),
            &key,
            amount,
            "charge",
            state.clock.now(),
        )
        .await?;
    Ok((StatusCode::CREATED, Json(entry)))
}

/// Query of `GET /api/me/wallet`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct ReadQuery {
    #[serde(default)]
    limit: Option<usize>,
}

async fn read(
    State(state): State<AppState>,
    me: AuthUser,
    query: Result<Query<ReadQuery>, QueryRejection>,
) -> Result<impl IntoResponse, ApiError> {
    let Query(q) = query.map_err(|r| ApiError::validation(r.body_text()))?;
    let limit = q.limit.unwrap_or(50);
    if !(1..=200).contains(&limit) {
        return Err(ApiError::validation("limit must be between 1 and 200"));
    }
    let snapshot = state.wallet.snapshot(&me.id.to_string(), limit).await?;
    Ok(Json(json!({
        "balance": snapshot.balance.map_or(0, |b| b.amount_minor),
        "currency": snapshot.balance.map_or(WALLET_CURRENCY.to_owned(), |b| b.currency.as_str().to_owned()),
        "entries": snapshot.entries,
        "entry_count": snapshot.entry_count,
    })))
}
