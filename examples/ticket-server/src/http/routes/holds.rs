//! Holds and paying for them.
//!
//! | route | does |
//! |---|---|
//! | `POST /api/holds` | hold units or seats (`Idempotency-Key` required; needs an admission when the session queues) |
//! | `GET /api/holds/{id}`, `DELETE /api/holds/{id}` | read or release my hold (another user's: 404) |
//! | `POST /api/holds/{id}/checkout` | pay on the payment provider's hosted page (`hosted`), by card number through the provider (`card`), or from the wallet (`wallet`) (`Idempotency-Key` required) |
//!
//! Every handler is described for `GET /openapi.json` by its `#[utoipa::path]` (tag `holds`).
//!
//! # The hosted payment page
//! `{"method": "hosted"}` opens a checkout session at the provider for the hold's price and
//! answers its page (`payment_url`); the buyer enters a card there, never on this server.
//! The provider sends the buyer back to this server's own page, `<public URL>/?checkout=<hold
//! id>` with the provider's `session_id` (and `canceled=1` when the buyer gave up) added:
//! the return URL is made here from `--public-url` and the hold id, never taken from the
//! request, so no caller can turn it into a redirect elsewhere. Coming back proves nothing:
//! the hold is confirmed only by the provider's signed webhook or by the reconciler's read
//! of the provider, for the session the hold names, with the hold's own amount.

use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::IntoResponse;
use axum::routing::{get, post};
use axum::{Json, Router};
use serde::{Deserialize, Serialize};
use serde_json::json;
use ticket_core::gateway::{IntentStatus, PaymentRef};
use ticket_core::model::hold::{Hold, HoldState, Selection};
use ticket_core::model::inventory::{Grade, SeatId};
use ticket_core::service::{Checkout, HoldCommand, PaymentResult};
use ticket_core::{Error, HoldId, SessionId};

use crate::http::error::{ApiError, ErrorBody};
use crate::http::extract::{AuthUser, Buyer, CallerTiers, JsonBody};
use crate::http::params::{idempotency_key, path_id, user_of};
use crate::runtime::state::AppState;
use crate::services::wallet_gateway::WALLET_METHOD;

/// The routes of holds.
pub fn router() -> Router<AppState> {
    Router::new()
        .route("/api/holds", post(create_hold))
        .route("/api/holds/{id}", get(read_hold).delete(release_hold))
        .route("/api/holds/{id}/checkout", post(checkout))
}

/// Body of `POST /api/holds`: exactly one of the two shapes; any other combination, a
/// `null` where a value is required, or an unknown field answers 400. No `tier`: the buyer's
/// tier comes from their account (set by admins), and a body naming one is refused (400).
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(untagged)]
enum HoldRequest {
    /// General admission: `quantity` units of `grade`.
    Units(HoldUnits),
    /// Seats.
    Seats(HoldSeats),
}

/// Hold `quantity` units of one grade.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
struct HoldUnits {
    /// The session.
    #[schema(format = "uuid")]
    session_id: String,
    /// The grade: 1 to 32 letters, digits, `-`, `_` or `.`.
    #[schema(pattern = r"^[A-Za-z0-9._-]{1,32}$")]
    grade: String,
    /// How many units, 1 to 100 (the library's `MAX_UNITS_PER_HOLD`; outside: 422).
    #[schema(minimum = 1, maximum = 100)]
    quantity: u32,
}

/// Hold these seats.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
struct HoldSeats {
    /// The session.
    #[schema(format = "uuid")]
    session_id: String,
    /// 1 to 100 seat ids, each listed once (1 to 32 letters, digits, `-`, `_` or `.`);
    /// an empty list, too many or a repeat: 422.
    #[schema(schema_with = seat_ids_schema)]
    seat_ids: Vec<String>,
}

/// The schema of [`HoldSeats::seat_ids`]: 1 to 100 distinct seat ids.
fn seat_ids_schema() -> utoipa::openapi::Array {
    use utoipa::openapi::{ArrayBuilder, ObjectBuilder, Type};
    ArrayBuilder::new()
        .items(
            ObjectBuilder::new()
                .schema_type(Type::String)
                .pattern(Some(r"^[A-Za-z0-9._-]{1,32}$")),
        )
        .min_items(Some(1))
        .max_items(Some(100))
        .unique_items(true)
        .description(Some("1 to 100 seat ids, each listed once"))
        .build()
}

/// A hold as the API shows it.
#[derive(Debug, Serialize, Deserialize, utoipa::ToSchema)]
pub(crate) struct HoldAnswer {
    /// The hold's id (also the reservation's).
    #[schema(format = "uuid")]
    id: String,
    /// Its session.
    #[schema(format = "uuid")]
    session_id: String,
    /// Where it stands.
    #[schema(schema_with = hold_status_schema)]
    status: String,
    /// When an unpaid hold expires, epoch ms.
    expires_at: i64,
    /// Total price in minor units.
    amount: i64,
    /// Currency of `amount`.
    currency: String,
    /// Units or seats held.
    units: u32,
    /// The payment, once checkout started: the provider's intent, the wallet's
    /// (`wallet_…`), or, while the buyer pays on the provider's hosted page, the checkout
    /// session (until a payment confirms the hold; then the intent that paid).
    payment_id: Option<String>,
}

/// The payment id the API shows for a hold: its payment reference, with a hosted checkout
/// session named by its id alone (as `payment_id` of the checkout's answer).
pub(crate) fn payment_id_of(hold: &Hold) -> Option<String> {
    let stored = hold.payment_ref.as_deref()?;
    Some(match PaymentRef::parse(stored) {
        Ok(PaymentRef::CheckoutSession(session)) => session.to_string(),
        Ok(PaymentRef::Intent(_)) | Err(_) => stored.to_owned(),
    })
}

/// A hold state as the API spells it (`held`, `payment_failed`, …).
pub(crate) fn hold_status(state: HoldState) -> String {
    state.as_str().to_lowercase()
}

/// The schema of a hold's `status`: every hold state, as the API spells it.
pub(crate) fn hold_status_schema() -> utoipa::openapi::Object {
    crate::http::openapi::text_enum(
        HoldState::ALL.map(hold_status),
        "`held` → `paying` → `confirmed` → `cancelled` → `refunded`, or `expired`, `released`, `payment_failed`",
    )
}

impl From<&Hold> for HoldAnswer {
    fn from(h: &Hold) -> Self {
        Self {
            id: h.id.to_string(),
            session_id: h.session.to_string(),
            status: hold_status(h.state),
            expires_at: h.expires_at.as_millis(),
            amount: h.amount.amount_minor,
            currency: h.amount.currency.as_str().to_owned(),
            units: h.units(),
            payment_id: payment_id_of(h),
        }
    }
}

/// Holds units of a grade or seats for the caller until the hold expires. When the
/// session queues (presales too, unless the policy lets presale buyers skip the queue), the
/// caller needs an active admission. The caller's tier is the highest of their account's
/// tiers the session's policy lists.
#[utoipa::path(
    post,
    path = "/api/holds",
    tag = "holds",
    summary = "Hold units or seats",
    params(("Idempotency-Key" = String, Header, min_length = 1, max_length = 255, pattern = r"^[\x21-\x7e]([\x20-\x7e]{0,253}[\x21-\x7e])?$", description = "Required; 1 to 255 printable ASCII characters (space inside only; anything else: 400). A repeat with the same key and body answers the first outcome")),
    request_body = HoldRequest,
    security(("bearer" = [])),
    responses(
        (status = 201, description = "The hold", body = HoldAnswer, links(
            ("ReadHold" = (operation_id = "read_hold", parameters(("id" = "$response.body#/id")), description = "The hold just made")),
            ("ReleaseHold" = (operation_id = "release_hold", parameters(("id" = "$response.body#/id")), description = "Release it")),
            ("Checkout" = (operation_id = "checkout", parameters(("id" = "$response.body#/id")), description = "Pay for it")),
            ("CancelReservation" = (operation_id = "cancel_reservation", parameters(("id" = "$response.body#/id")), description = "Cancel it once paid")),
        )),
        (status = 400, description = "Malformed body (an unknown field such as `tier` included), neither or both of grade+quantity and seat_ids, a malformed id, or a missing or malformed `Idempotency-Key`: `VALIDATION`", body = ErrorBody),
        (status = 401, description = "No valid access token: `UNAUTHORIZED`, `TOKEN_EXPIRED`, `TOKEN_REVOKED`", body = ErrorBody),
        (status = 403, description = "The session queues and the caller has no active admission (`NOT_ADMITTED`, `ADMISSION_EXPIRED`), the account is blocked (`USER_BLOCKED`) or is gate staff (`FORBIDDEN`)", body = ErrorBody),
        (status = 404, description = "No such session: `NOT_FOUND`", body = ErrorBody),
        (status = 409, description = "Refused by the stock or the policy (`SOLD_OUT`, `SEATS_UNAVAILABLE`, `LIMIT_EXCEEDED`, `SALES_NOT_OPEN`, `SALES_CLOSED`, `GRADE_NOT_ALLOWED`, …), or a request with this key is still running (`IN_FLIGHT`)", body = ErrorBody),
        (status = 422, description = "An unknown grade or seat (`UNKNOWN_ITEM`), a bad quantity (`VALIDATION`), or this key used with another body (`IDEMPOTENCY_KEY_REUSED`)", body = ErrorBody),
        (status = 429, description = "Over the per-user or per-IP rate limit: `RATE_LIMITED` (with `Retry-After`)", body = ErrorBody),
        (status = 503, description = "Storage unavailable: `UNAVAILABLE` (with `Retry-After`)", body = ErrorBody),
    )
)]
async fn create_hold(
    State(state): State<AppState>,
    Buyer(me): Buyer,
    tiers: CallerTiers,
    headers: HeaderMap,
    JsonBody(body): JsonBody<serde_json::Value>,
) -> Result<impl IntoResponse, ApiError> {
    let key = idempotency_key(&headers)?;
    let body: HoldRequest = serde_json::from_value(body).map_err(|_| {
        ApiError::validation(
            "give either {session_id, grade, quantity} or {session_id, seat_ids} \
             with the types the API document states, and no other field (no `tier`: it \
             comes from your account)",
        )
    })?;
    let (session_id, selection) = match body {
        HoldRequest::Units(HoldUnits {
            session_id,
            grade,
            quantity,
        }) => {
            let grade = Grade::new(&grade).map_err(|e| ApiError::validation(e.to_string()))?;
            (session_id, Selection::Units { grade, quantity })
        }
        HoldRequest::Seats(HoldSeats {
            session_id,
            seat_ids,
        }) => {
            let seats = seat_ids
                .iter()
                .map(|s| SeatId::new(s).map_err(|e| ApiError::validation(e.to_string())))
                .collect::<Result<_, _>>()?;
            (session_id, Selection::Seats { seats })
        }
    };
    let session: SessionId = path_id(&session_id)?;
    let cmd = HoldCommand {
        session,
        user: user_of(&me)?,
        tier: crate::services::account_tiers::buyer_tier(&state.rush, &tiers.0, session).await?,
        selection,
    };
    let hold = state.rush.holds.hold(cmd, Some(&key)).await?;
    // The next stock read here shows it, without waiting for the change feed.
    state.live.stock_moved(session);
    Ok((StatusCode::CREATED, Json(HoldAnswer::from(&hold))))
}

/// One of the caller's holds.
#[utoipa::path(
    get,
    path = "/api/holds/{id}",
    tag = "holds",
    summary = "My hold",
    params(("id" = String, Path, format = "uuid", description = "The hold's id")),
    security(("bearer" = [])),
    responses(
        (status = 200, description = "The hold", body = HoldAnswer),
        (status = 400, description = "A malformed id: `VALIDATION`", body = ErrorBody),
        (status = 401, description = "No valid access token: `UNAUTHORIZED`, `TOKEN_EXPIRED`", body = ErrorBody),
        (status = 404, description = "No such hold, or another user's: `NOT_FOUND`", body = ErrorBody),
        (status = 503, description = "Storage unavailable: `UNAVAILABLE` (with `Retry-After`)", body = ErrorBody),
    )
)]
async fn read_hold(
    State(state): State<AppState>,
    me: AuthUser,
    Path(id): Path<String>,
) -> Result<impl IntoResponse, ApiError> {
    let id: HoldId = path_id(&id)?;
    let hold = state.rush.holds.get(id, &user_of(&me)?).await?;
    Ok(Json(HoldAnswer::from(&hold)))
}

/// Releases one of the caller's live holds; its units go back on sale at once.
#[utoipa::path(
    delete,
    path = "/api/holds/{id}",
    tag = "holds",
    summary = "Release my hold",
    params(("id" = String, Path, format = "uuid", description = "The hold's id")),
    security(("bearer" = [])),
    responses(
        (status = 200, description = "The hold, now `released` (a repeat answers the same)", body = HoldAnswer),
        (status = 400, description = "A malformed id: `VALIDATION`", body = ErrorBody),
        (status = 401, description = "No valid access token: `UNAUTHORIZED`, `TOKEN_EXPIRED`", body = ErrorBody),
        (status = 404, description = "No such hold, or another user's: `NOT_FOUND`", body = ErrorBody),
        (status = 409, description = "The hold can no longer be released (paid, expired, …): `ILLEGAL_TRANSITION`, `HOLD_EXPIRED`", body = ErrorBody),
        (status = 429, description = "Over the per-user or per-IP rate limit: `RATE_LIMITED` (with `Retry-After`)", body = ErrorBody),
        (status = 503, description = "Storage unavailable: `UNAVAILABLE` (with `Retry-After`)", body = ErrorBody),
    )
)]
async fn release_hold(
    State(state): State<AppState>,
    me: AuthUser,
    Path(id): Path<String>,
) -> Result<impl IntoResponse, ApiError> {
    let id: HoldId = path_id(&id)?;
    let hold = state.rush.holds.release(id, &user_of(&me)?).await?;
    state.live.stock_moved(hold.session);
    Ok(Json(HoldAnswer::from(&hold)))
}

/// Body of `POST /api/holds/{id}/checkout`: `{"method": "hosted"}`,
/// `{"method": "card", "card_number": "…"}` or `{"method": "wallet"}`.
///
/// The field-less methods are empty struct variants, not unit variants: serde's
/// `deny_unknown_fields` is not applied to the unit variants of an internally tagged enum,
/// so `{"method": "hosted", "return_url": …}` would be taken with its extra field ignored.
#[derive(Debug, Deserialize)]
#[serde(tag = "method", rename_all = "snake_case", deny_unknown_fields)]
enum CheckoutBody {
    /// The provider's hosted payment page: the buyer enters a card there.
    Hosted {},
    /// A card (a sandbox test card number), through the payment provider.
    Card {
        /// The card number.
        card_number: String,
    },
    /// The buyer's wallet: debited at once, or refused for insufficient funds.
    Wallet {},
}

impl utoipa::PartialSchema for CheckoutBody {
    fn schema() -> utoipa::openapi::RefOr<utoipa::openapi::schema::Schema> {
        checkout_body_schema().into()
    }
}

impl utoipa::ToSchema for CheckoutBody {
    fn name() -> std::borrow::Cow<'static, str> {
        "CheckoutBody".into()
    }
}

/// The schema of [`CheckoutBody`]: one of three closed objects (utoipa leaves
/// `additionalProperties` open on enum variants, which the handler refuses).
fn checkout_body_schema() -> utoipa::openapi::schema::Schema {
    use utoipa::openapi::schema::{AdditionalProperties, OneOfBuilder};
    use utoipa::openapi::{ObjectBuilder, Type};
    let method = |name: &str| crate::http::openapi::text_enum([name], "The payment method");
    let closed = Some(AdditionalProperties::FreeForm(false));
    let hosted = ObjectBuilder::new()
        .property("method", method("hosted"))
        .required("method")
        .additional_properties(closed.clone())
        .description(Some(
            "The payment provider's hosted page: the answer's `payment_url` is where the \
             buyer pays (this server never sees the card); the buyer comes back to this \
             server's page, and the result comes from the provider",
        ));
    let card = ObjectBuilder::new()
        .property("method", method("card"))
        .required("method")
        .property(
            "card_number",
            ObjectBuilder::new()
                .schema_type(Type::String)
                .min_length(Some(1))
                .description(Some("The card number (a sandbox test card)")),
        )
        .required("card_number")
        .additional_properties(closed.clone())
        .description(Some("A card, through the payment provider"));
    let wallet = ObjectBuilder::new()
        .property("method", method("wallet"))
        .required("method")
        .additional_properties(closed)
        .description(Some(
            "The buyer's wallet: debited at once, or refused for insufficient funds",
        ));
    OneOfBuilder::new()
        .item(hosted)
        .item(card)
        .item(wallet)
        .description(Some(
            "`{\"method\": \"hosted\"}`, `{\"method\": \"card\", \"card_number\": …}` or \
             `{\"method\": \"wallet\"}`",
        ))
        .into()
}

/// The answer of a checkout: the payment as it started, and the hold.
#[derive(Debug, Serialize, Deserialize, utoipa::ToSchema)]
struct CheckoutAnswer {
    /// The payment: the intent id, or for a checkout on the provider's hosted page the
    /// checkout session's id.
    payment_id: Option<String>,
    /// The provider's hosted payment page to send the buyer to, for a hold paying there
    /// (`null` otherwise). It brings the buyer back to this server's page.
    payment_url: Option<String>,
    /// The payment's status at the provider (`null` while the buyer pays on the hosted page,
    /// and for a free hold).
    #[schema(schema_with = intent_status_schema)]
    status: Option<String>,
    /// What the provider's answer did, when it answered at once.
    #[schema(schema_with = outcome_schema)]
    outcome: Option<String>,
    /// Why the payment failed, when it did.
    failure: Option<PaymentFailureAnswer>,
    /// The hold after the checkout started (`paying`, `confirmed`, `payment_failed`, …).
    hold: HoldAnswer,
}

/// Why a payment failed.
#[derive(Debug, Serialize, Deserialize, utoipa::ToSchema)]
struct PaymentFailureAnswer {
    /// Machine-readable (`card_declined`, `insufficient_funds`, …).
    code: String,
    /// For people.
    message: String,
}

/// Every `outcome` of a checkout's answer, and what it means.
const OUTCOMES: [&str; 6] = [
    "confirmed",
    "rebooked",
    "capture_pending",
    "voided",
    "refunded",
    "failed",
];

/// The schema of a checkout's `outcome`.
fn outcome_schema() -> utoipa::openapi::Object {
    crate::http::openapi::nullable_text_enum(
        OUTCOMES,
        "`confirmed`: the hold is confirmed and paid; `rebooked`: the hold had ended, the same \
         units were taken again for a new confirmed hold; `capture_pending`: confirmed, the \
         authorized payment is captured shortly (retried until it is; nothing more to do); \
         `voided`: nothing could be sold for it, the card's authorization was released \
         (nothing was charged); `refunded`: nothing could be sold for it, the money was \
         returned; `failed`: the payment failed, the hold is `payment_failed`; `null`: no \
         result yet (processing, or the buyer pays on the hosted page): follow \
         `GET /api/me/events` or read the hold",
    )
}

/// The `outcome` of a checkout's answer for what the provider's answer did (`None`: no
/// result yet; a result a newer library adds counts as none: the hold tells).
fn outcome_of(result: Option<&PaymentResult>) -> Option<String> {
    let name = match result? {
        PaymentResult::Confirmed { .. } => OUTCOMES[0],
        PaymentResult::Rebooked { .. } => OUTCOMES[1],
        PaymentResult::CapturePending { .. } => OUTCOMES[2],
        PaymentResult::Voided { .. } => OUTCOMES[3],
        PaymentResult::Refunded { .. } => OUTCOMES[4],
        PaymentResult::Failed { .. } => OUTCOMES[5],
        PaymentResult::Ignored { .. } => return None,
        _ => return None,
    };
    Some(name.to_owned())
}

/// How a payment's `status` is described.
pub(crate) const INTENT_STATUS_DOC: &str = "`requires_confirmation` → (`requires_action`: a \
     challenge on the provider's page) → `processing` → `succeeded` or `failed`; with manual \
     capture `requires_capture` (authorized, not charged) → `succeeded` once captured; or \
     `canceled` (never charged: also a voided authorization)";

/// The schema of a checkout's `status`: `null` (no payment was started) or an intent
/// status, as the provider spells it.
fn intent_status_schema() -> utoipa::openapi::Object {
    crate::http::openapi::nullable_text_enum(
        all_intent_statuses().map(IntentStatus::as_str),
        INTENT_STATUS_DOC,
    )
}

/// Every intent status; exhaustive, so a new status fails to compile here until listed.
pub(crate) fn all_intent_statuses() -> [IntentStatus; 7] {
    let listed = |s: IntentStatus| match s {
        IntentStatus::RequiresConfirmation
        | IntentStatus::RequiresAction
        | IntentStatus::Processing
        | IntentStatus::RequiresCapture
        | IntentStatus::Succeeded
        | IntentStatus::Failed
        | IntentStatus::Canceled => s,
    };
    [
        IntentStatus::RequiresConfirmation,
        IntentStatus::RequiresAction,
        IntentStatus::Processing,
        IntentStatus::RequiresCapture,
        IntentStatus::Succeeded,
        IntentStatus::Failed,
        IntentStatus::Canceled,
    ]
    .map(listed)
}

impl CheckoutBody {
    /// The payment method as the idempotency record keeps it (a card number for a card).
    fn payment_method(&self) -> &str {
        match self {
            Self::Hosted {} => HOSTED_METHOD,
            Self::Card { card_number } => card_number,
            Self::Wallet {} => WALLET_METHOD,
        }
    }
}

/// The method name of a checkout on the provider's hosted page.
const HOSTED_METHOD: &str = "hosted";

/// Where the provider's hosted page sends the buyer of hold `id` back: this server's demo
/// page, made from the configured public URL and the hold's id only (never from anything
/// the request says), so it cannot be turned into an open redirect. The provider adds
/// `session_id` (and `canceled=1`) to its query.
pub(crate) fn return_url(state: &AppState, id: HoldId) -> String {
    format!("{}/?checkout={id}", state.config.public_url())
}

/// The answer for a started checkout. With manual capture the intent the confirmation
/// answered is `requires_capture` although the hold was confirmed and the payment captured
/// since: it is read again then (best effort), so the answer shows it `succeeded`.
async fn checkout_answer(state: &AppState, started: Checkout) -> CheckoutAnswer {
    let mut intent = started.intent;
    let settled = matches!(
        started.result,
        Some(PaymentResult::Confirmed { .. } | PaymentResult::Rebooked { .. })
    );
    if settled
        && let Some(stale) = intent
            .as_ref()
            .filter(|i| i.status == IntentStatus::RequiresCapture)
    {
        match state.checkout.gateway().get_intent(&stale.id).await {
            Ok(now) => intent = Some(now),
            Err(e) => tracing::warn!(intent = %stale.id, "captured intent not read back: {e}"),
        }
    }
    let session = started.session.as_ref();
    CheckoutAnswer {
        payment_id: session
            .map(|s| s.id.to_string())
            .or_else(|| intent.as_ref().map(|i| i.id.to_string()))
            .or_else(|| payment_id_of(&started.hold)),
        payment_url: session.map(|s| s.url.clone()),
        status: intent.as_ref().map(|i| i.status.as_str().to_owned()),
        outcome: outcome_of(started.result.as_ref()),
        failure: intent
            .as_ref()
            .and_then(|i| i.failure.as_ref())
            .map(|f| PaymentFailureAnswer {
                code: f.code.clone(),
                message: f.message.clone(),
            }),
        hold: HoldAnswer::from(&started.hold),
    }
}

/// Pays hold `id` on the provider's hosted page, with a card number, or from the wallet.
/// Once per `Idempotency-Key` (a repeat answers the first outcome); per hold, the payment
/// itself happens at most once whatever the keys (the provider's and the wallet's own
/// idempotency are per hold), and a hold paying on the hosted page answers that same page
/// (its session) to every method.
#[utoipa::path(
    post,
    path = "/api/holds/{id}/checkout",
    tag = "holds",
    summary = "Pay for my hold on the provider's page, by card or from my wallet",
    params(("id" = String, Path, format = "uuid", description = "The hold's id"), ("Idempotency-Key" = String, Header, min_length = 1, max_length = 255, pattern = r"^[\x21-\x7e]([\x20-\x7e]{0,253}[\x21-\x7e])?$", description = "Required; 1 to 255 printable ASCII characters (space inside only; anything else: 400). A repeat with the same key and body answers the first outcome")),
    request_body = CheckoutBody,
    security(("bearer" = [])),
    responses(
        (status = 200, description = "The payment as it started. `hosted`: `payment_url` is the provider's page to send the buyer to, `payment_id` its checkout session (the same on every call for the hold), the hold `paying`; a card declined there leaves the page open for another card. `card`/`wallet`: a declined card or an empty wallet answers 200 with `failure` (the hold is then `payment_failed`); `outcome` says what the provider's answer did", body = CheckoutAnswer, links(
            ("ReadPayment" = (operation_id = "read_payment", parameters(("id" = "$response.body#/payment_id")), description = "The payment just started")),
            ("ReadHold" = (operation_id = "read_hold", parameters(("id" = "$response.body#/hold/id")), description = "The hold paid for")),
            ("CancelReservation" = (operation_id = "cancel_reservation", parameters(("id" = "$response.body#/hold/id")), description = "Cancel it with a refund")),
        )),
        (status = 400, description = "Malformed body, a malformed id, or a missing or malformed `Idempotency-Key`: `VALIDATION`", body = ErrorBody),
        (status = 401, description = "No valid access token: `UNAUTHORIZED`, `TOKEN_EXPIRED`, `TOKEN_REVOKED`", body = ErrorBody),
        (status = 403, description = "The account is blocked (`USER_BLOCKED`) or is gate staff (`FORBIDDEN`)", body = ErrorBody),
        (status = 404, description = "No such hold, or another user's: `NOT_FOUND`", body = ErrorBody),
        (status = 402, description = "The provider refused the payment method outright (`PAYMENT_DECLINED`); nothing was charged", body = ErrorBody),
        (status = 409, description = "The hold cannot be paid now (`HOLD_EXPIRED`, `ILLEGAL_TRANSITION`: e.g. `hosted` for a hold already in a card checkout, `PAYMENT_CONFLICT`), or a request with this key is still running (`IN_FLIGHT`)", body = ErrorBody),
        (status = 422, description = "The provider refused the request (`PAYMENT_INVALID`), this provider does not offer the method (`PAYMENT_UNSUPPORTED`, e.g. `hosted` without hosted checkout), or this key was used with another body (`IDEMPOTENCY_KEY_REUSED`)", body = ErrorBody),
        (status = 429, description = "Over the per-user or per-IP rate limit: `RATE_LIMITED` (with `Retry-After`)", body = ErrorBody),
        (status = 503, description = "The payment provider or storage is unavailable, or the provider limits our request rate: `PAYMENT_UNAVAILABLE`, `PAYMENT_RATE_LIMITED`, `UNAVAILABLE` (with `Retry-After`)", body = ErrorBody),
    )
)]
async fn checkout(
    State(state): State<AppState>,
    Buyer(me): Buyer,
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
    let answer: CheckoutAnswer = state
        .rush
        .idempotency
        .run(&idem, &payload, || async {
            let started = match &body {
                CheckoutBody::Hosted {} => {
                    state
                        .checkout
                        .begin_hosted(id, &user, &return_url(&state, id))
                        .await?
                }
                CheckoutBody::Card { .. } | CheckoutBody::Wallet {} => {
                    state.checkout.begin(id, &user, method).await?
                }
            };
            Ok::<_, Error>(checkout_answer(&state, started).await)
        })
        .await?;
    if let Ok(session) = answer.hold.session_id.parse::<SessionId>() {
        state.live.stock_moved(session);
    }
    Ok(Json(answer))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn checkout_bodies_take_exactly_their_fields() {
        let parse = |b: &str| serde_json::from_str::<CheckoutBody>(b);
        assert!(matches!(
            parse(r#"{"method":"hosted"}"#),
            Ok(CheckoutBody::Hosted {})
        ));
        assert!(matches!(
            parse(r#"{"method":"wallet"}"#),
            Ok(CheckoutBody::Wallet {})
        ));
        assert!(matches!(
            parse(r#"{"method":"card","card_number":"4242"}"#),
            Ok(CheckoutBody::Card { .. })
        ));
        for refused in [
            r#"{"method":"hosted","return_url":"https://evil.example/"}"#,
            r#"{"method":"wallet","amount":1}"#,
            r#"{"method":"card","card_number":"4242","amount":1}"#,
            r#"{"method":"card"}"#,
            r#"{"method":"paypal"}"#,
            r#"{}"#,
        ] {
            assert!(parse(refused).is_err(), "{refused}");
        }
    }
}
