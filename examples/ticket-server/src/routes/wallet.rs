//! The buyer's wallet over HTTP.
//!
//! | route | does |
//! |---|---|
//! | `POST /api/me/wallet/charge` | add money (`Idempotency-Key` required: a repeat credits nothing) |
//! | `GET /api/me/wallet` | the balance and the newest ledger entries (`?limit=`, 1..=200) |
//!
//! The balance is the sum of the ledger, which is never edited in place (see
//! [`crate::wallet`]). Wallets hold KRW. Both routes are described for `GET /openapi.json`
//! by their `#[utoipa::path]` (tag `wallet`).

use axum::extract::rejection::QueryRejection;
use axum::extract::{Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::IntoResponse;
use axum::routing::{get, post};
use axum::{Json, Router};
use serde::{Deserialize, Serialize};
use ticket_core::model::money::{Currency, Money};

use crate::error::{ApiError, ErrorBody};
use crate::extract::{AuthUser, JsonBody};
use crate::routes::params::idempotency_key;
use crate::state::AppState;
use crate::wallet::{Entry, EntryKind, WalletError};

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
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
struct ChargeBody {
    /// Minor units (won) to add, positive.
    #[schema(examples(100_000))]
    amount: i64,
}

/// One ledger entry of the wallet (the fields of [`Entry`], one for one).
#[derive(Debug, Serialize, utoipa::ToSchema)]
struct EntryAnswer {
    /// Unique id.
    #[schema(value_type = String, format = "uuid")]
    id: uuid::Uuid,
    /// The wallet's owner.
    user: String,
    /// `charge`, `payment` or `refund`.
    #[schema(schema_with = entry_kind_schema)]
    kind: EntryKind,
    /// Signed change of the balance in minor units: positive for charges and refunds,
    /// negative for payments.
    amount_minor: i64,
    /// The wallet's currency.
    #[schema(value_type = String, examples("KRW"))]
    currency: Currency,
    /// What the entry is for (a payment or hold id, a charge receipt; may be empty).
    reference: String,
    /// The idempotency key the entry was written under.
    idempotency_key: String,
    /// When it was written, epoch ms.
    #[schema(value_type = i64)]
    at: ticket_core::Timestamp,
}

impl From<Entry> for EntryAnswer {
    /// Destructured, so a field added to [`Entry`] fails to compile here until it is shown.
    fn from(e: Entry) -> Self {
        let Entry {
            id,
            user,
            kind,
            amount_minor,
            currency,
            reference,
            idempotency_key,
            at,
        } = e;
        Self {
            id,
            user,
            kind,
            amount_minor,
            currency,
            reference,
            idempotency_key,
            at,
        }
    }
}

/// The schema of [`EntryAnswer::kind`]: every entry kind, as serde spells it.
fn entry_kind_schema() -> utoipa::openapi::Object {
    let kinds = [EntryKind::Charge, EntryKind::Payment, EntryKind::Refund].map(|k| match k {
        EntryKind::Charge | EntryKind::Payment | EntryKind::Refund => serde_json::to_value(k)
            .ok()
            .and_then(|v| v.as_str().map(str::to_owned))
            .unwrap_or_default(),
    });
    crate::openapi::text_enum(kinds, "What the entry records")
}

/// `GET /api/me/wallet`: the balance and the newest entries.
#[derive(Debug, Serialize, utoipa::ToSchema)]
struct WalletAnswer {
    /// The balance in minor units (0 for a wallet without entries).
    balance: i64,
    /// Its currency.
    #[schema(examples("KRW"))]
    currency: String,
    /// The newest entries, newest first.
    entries: Vec<EntryAnswer>,
    /// How many entries the wallet has in all.
    entry_count: u64,
}

/// Adds money to the caller's wallet, once per `Idempotency-Key`.
#[utoipa::path(
    post,
    path = "/api/me/wallet/charge",
    operation_id = "charge_wallet",
    tag = "wallet",
    summary = "Add money to my wallet",
    params(("Idempotency-Key" = String, Header, description = "Required; 1 to 255 printable ASCII characters. A repeat with the same key and amount credits nothing and answers the first entry")),
    request_body = ChargeBody,
    security(("bearer" = [])),
    responses(
        (status = 201, description = "The ledger entry of the charge", body = EntryAnswer),
        (status = 400, description = "Malformed body, or a missing or malformed `Idempotency-Key`: `VALIDATION`", body = ErrorBody),
        (status = 401, description = "No valid access token: `UNAUTHORIZED`, `TOKEN_EXPIRED`", body = ErrorBody),
        (status = 409, description = "The balance would exceed its limit: `BALANCE_LIMIT`", body = ErrorBody),
        (status = 422, description = "An amount that is not positive or too large (`VALIDATION`), or this key used with another amount (`IDEMPOTENCY_KEY_REUSED`)", body = ErrorBody),
        (status = 503, description = "Wallet storage unavailable: `UNAVAILABLE` (with `Retry-After`)", body = ErrorBody),
    )
)]
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
    Ok((StatusCode::CREATED, Json(EntryAnswer::from(entry))))
}

/// Query of `GET /api/me/wallet`.
#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
struct ReadQuery {
    /// How many of the newest entries, 1 to 200 (default 50).
    #[serde(default)]
    #[param(minimum = 1, maximum = 200)]
    limit: Option<usize>,
}

/// The caller's balance and newest ledger entries, read at one instant.
#[utoipa::path(
    get,
    path = "/api/me/wallet",
    operation_id = "read_wallet",
    tag = "wallet",
    summary = "My wallet",
    params(ReadQuery),
    security(("bearer" = [])),
    responses(
        (status = 200, description = "The balance and the newest entries", body = WalletAnswer),
        (status = 400, description = "A bad `limit` or an unknown parameter: `VALIDATION`", body = ErrorBody),
        (status = 401, description = "No valid access token: `UNAUTHORIZED`, `TOKEN_EXPIRED`", body = ErrorBody),
        (status = 503, description = "Wallet storage unavailable: `UNAVAILABLE` (with `Retry-After`)", body = ErrorBody),
    )
)]
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
    Ok(Json(WalletAnswer {
        balance: snapshot.balance.map_or(0, |b| b.amount_minor),
        currency: snapshot.balance.map_or(WALLET_CURRENCY.to_owned(), |b| {
            b.currency.as_str().to_owned()
        }),
        entries: snapshot
            .entries
            .into_iter()
            .map(EntryAnswer::from)
            .collect(),
        entry_count: snapshot.entry_count,
    }))
}
