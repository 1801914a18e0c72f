//! The buyer's wallet over HTTP.
//!
//! | route | does |
//! |---|---|
//! | `GET /api/me/wallet` | the balance and the newest ledger entries (`?limit=`, 1..=200) |
//! | `POST /api/me/wallet/topups`, `GET /api/me/wallet/topups/{id}` | add money by card (see [`super::wallet_topups`]) |
//!
//! The balance is the sum of the ledger, which is never edited in place (see
//! [`crate::stores::wallet`]); money enters it only through a card payment that succeeded. Wallets
//! hold KRW. The routes are described for `GET /openapi.json` by their `#[utoipa::path]`
//! (tag `wallet`).

use axum::extract::rejection::QueryRejection;
use axum::extract::{Query, State};
use axum::http::StatusCode;
use axum::response::IntoResponse;
use axum::routing::get;
use axum::{Json, Router};
use serde::{Deserialize, Serialize};
use ticket_core::model::money::Currency;

use crate::http::error::{ApiError, ErrorBody};
use crate::http::extract::AuthUser;
use crate::runtime::state::AppState;
use crate::stores::wallet::{Entry, EntryKind, WalletError};

/// The currency of every wallet.
pub const WALLET_CURRENCY: &str = "KRW";

/// The routes of the wallet.
pub fn router() -> Router<AppState> {
    Router::new()
        .route("/api/me/wallet", get(read))
        .merge(super::wallet_topups::router())
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

/// One ledger entry of the wallet (the fields of [`Entry`], one for one).
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub(crate) struct EntryAnswer {
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
    /// What the entry is for: the hold of a payment or refund, the top-up of a charge.
    reference: String,
    /// The server-made key the entry was written under (`sys:<purpose>:<payment id>`).
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
    crate::http::openapi::text_enum(kinds, "What the entry records")
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
