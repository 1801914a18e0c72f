//! The payment provider as the library sees it: the [`PaymentGateway`] trait, payment
//! intents, refunds and the events a provider sends.
//!
//! # Why the trait lives here
//! The checkout ([`crate::service::CheckoutService`]) must talk to a provider, and
//! `ticket-core` must not depend on any provider crate, the sandbox included. So the trait
//! and its data types live in `ticket-core`, and providers implement them from outside:
//! `payment-sandbox` (in-process, and behind its HTTP API) today, an adapter for a real
//! provider tomorrow. Dependency arrows point into the core, as for the storage backends.
//!
//! The model follows the big providers' PaymentIntent: an intent for an amount is created
//! (with the buyer's payment method), confirmed, and ends `succeeded`, `failed` or
//! `canceled`; a succeeded intent can be refunded, in full or in parts.
//!
//! # Authorize, then capture
//! An intent created with [`CaptureMethod::Manual`] stops at `requires_capture` once the
//! card is authorized: the money is reserved on the buyer's card, not taken. The checkout
//! then confirms the hold and only then [captures](PaymentGateway::capture) it; if the hold
//! cannot be confirmed (it expired and its units were resold) the authorization is
//! [voided](PaymentGateway::void) and nothing was ever charged. An authorization that is
//! neither captured nor voided ends at the provider after its lifetime
//! ([`PaymentIntent::authorization_expires_at`]) as `canceled`.
//! [`PaymentGateway::capabilities`] says whether a provider offers it.
//!
//! # Hosted payment page
//! With [`PaymentGateway::create_checkout_session`] the buyer pays on the provider's own page
//! ([`CheckoutSession::url`]): the app never sees a card number. The provider sends the buyer
//! back to the app's `return_url` and reports the outcome through the session's intent (by
//! webhook and [`PaymentGateway::get_checkout_session`]). A hold paying through a session
//! records it as its payment reference ([`PaymentRef`]).

use std::collections::BTreeMap;
use std::fmt;

use async_trait::async_trait;
use serde::{Deserialize, Serialize};

use crate::clock::Timestamp;
use crate::ids::HoldId;
use crate::model::money::Money;

/// Metadata key under which the checkout stores the hold an intent pays for.
pub const HOLD_METADATA_KEY: &str = "ticketrush_hold";

/// The provider's id of a payment intent (opaque, 1..=255 printable characters).
#[derive(Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct IntentId(String);

impl IntentId {
    /// Validates an intent id.
    pub fn new(id: impl Into<String>) -> Result<Self, GatewayError> {
        let id = id.into();
        if id.is_empty() || id.len() > 255 || id.chars().any(|c| c.is_control() || c == ' ') {
            return Err(GatewayError::Invalid(format!("malformed intent id {id:?}")));
        }
        Ok(Self(id))
    }

    /// The id as a string.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for IntentId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl fmt::Debug for IntentId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "IntentId({})", self.0)
    }
}

/// The provider's id of a hosted checkout session (opaque, 1..=255 printable characters).
#[derive(Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct CheckoutSessionId(String);

impl CheckoutSessionId {
    /// Validates a checkout session id.
    pub fn new(id: impl Into<String>) -> Result<Self, GatewayError> {
        let id = id.into();
        if id.is_empty() || id.len() > 255 || id.chars().any(|c| c.is_control() || c == ' ') {
            return Err(GatewayError::Invalid(format!(
                "malformed checkout session id {id:?}"
            )));
        }
        Ok(Self(id))
    }

    /// The id as a string.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for CheckoutSessionId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl fmt::Debug for CheckoutSessionId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "CheckoutSessionId({})", self.0)
    }
}

/// What a hold's `payment_ref` names at the provider: the intent paying for it, or (while
/// the buyer pays on the provider's hosted page, before an intent is known to the app) the
/// checkout session. Stored as text: an intent id as it is (as before hosted checkouts
/// existed), a session as `checkout_session:<id>`. Once a payment confirms the hold, the
/// reference becomes that payment's intent.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum PaymentRef {
    /// A payment intent.
    Intent(IntentId),
    /// A hosted checkout session.
    CheckoutSession(CheckoutSessionId),
}

const SESSION_REF_PREFIX: &str = "checkout_session:";

impl PaymentRef {
    /// Reads a stored reference.
    pub fn parse(stored: &str) -> Result<Self, GatewayError> {
        match stored.strip_prefix(SESSION_REF_PREFIX) {
            Some(session) => Ok(Self::CheckoutSession(CheckoutSessionId::new(session)?)),
            None => Ok(Self::Intent(IntentId::new(stored)?)),
        }
    }

    /// The intent, when the reference names one.
    pub fn intent(&self) -> Option<&IntentId> {
        match self {
            Self::Intent(i) => Some(i),
            Self::CheckoutSession(_) => None,
        }
    }
}

impl fmt::Display for PaymentRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Intent(i) => f.write_str(i.as_str()),
            Self::CheckoutSession(s) => write!(f, "{SESSION_REF_PREFIX}{s}"),
        }
    }
}

/// When the provider takes the money of an authorized payment.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CaptureMethod {
    /// Charged as soon as it is authorized (`processing` → `succeeded`).
    #[default]
    Automatic,
    /// Authorized only (`requires_capture`): the money is taken by
    /// [`PaymentGateway::capture`], or released by [`PaymentGateway::void`].
    Manual,
}

impl CaptureMethod {
    /// Stable snake-case name.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Automatic => "automatic",
            Self::Manual => "manual",
        }
    }
}

/// Where a payment intent stands.
///
/// ```text
/// requires_confirmation ──confirm──► [requires_action] ──► processing ──► succeeded ──► (refunds)
///          │                                   │           │   └──► failed
///          └──cancel──► canceled ◄──void/expiry── requires_capture ◄┘ (manual capture)
///                                                          └──capture──► succeeded
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum IntentStatus {
    /// Created; nothing charged yet. May be confirmed or canceled.
    RequiresConfirmation,
    /// The buyer must complete a challenge (3-D Secure) before the card is authorized;
    /// nothing charged yet. May be canceled.
    RequiresAction,
    /// Confirmed; the provider is charging. Not cancelable: it ends succeeded or failed.
    Processing,
    /// Authorized, not charged ([`CaptureMethod::Manual`]): the amount is reserved on the
    /// buyer's card until it is captured, voided, or the authorization expires
    /// ([`PaymentIntent::authorization_expires_at`]; then the provider cancels it).
    RequiresCapture,
    /// Paid. Final, except that refunds may follow.
    Succeeded,
    /// The charge failed (declined, insufficient funds, …). Final.
    Failed,
    /// Canceled before any charge (also a voided or expired authorization). Final.
    Canceled,
}

impl IntentStatus {
    /// Whether the intent can no longer change status (refunds aside).
    pub fn is_final(self) -> bool {
        matches!(self, Self::Succeeded | Self::Failed | Self::Canceled)
    }

    /// Stable snake-case name.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::RequiresConfirmation => "requires_confirmation",
            Self::RequiresAction => "requires_action",
            Self::Processing => "processing",
            Self::RequiresCapture => "requires_capture",
            Self::Succeeded => "succeeded",
            Self::Failed => "failed",
            Self::Canceled => "canceled",
        }
    }
}

/// Why a charge failed, as the provider reports it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PaymentFailure {
    /// Machine-readable code (`card_declined`, `insufficient_funds`, …).
    pub code: String,
    /// Human-readable message.
    pub message: String,
}

/// A payment intent as the provider reports it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PaymentIntent {
    /// The provider's id.
    pub id: IntentId,
    /// What is charged (for a manual capture: what was authorized).
    pub amount: Money,
    /// Where it stands.
    pub status: IntentStatus,
    /// When the money is taken.
    #[serde(default)]
    pub capture_method: CaptureMethod,
    /// What may still be captured, in minor units (positive only in `requires_capture`).
    #[serde(default)]
    pub amount_capturable: i64,
    /// What was taken, in minor units: `amount` once an automatic intent succeeded, the
    /// captured amount (possibly less) for a manual one; 0 before.
    #[serde(default)]
    pub amount_received: i64,
    /// Refunded so far, in the same currency; never above what was received.
    pub amount_refunded: i64,
    /// Why it failed, when `status` is `failed`.
    pub failure: Option<PaymentFailure>,
    /// Free-form metadata set at creation (the checkout sets [`HOLD_METADATA_KEY`]).
    pub metadata: BTreeMap<String, String>,
    /// When it was created (provider clock).
    pub created_at: Timestamp,
    /// For `requires_capture`: when the provider cancels the authorization if it is not
    /// captured (provider clock).
    #[serde(default)]
    pub authorization_expires_at: Option<Timestamp>,
    /// The hosted checkout session that created the intent, when the provider reports it.
    #[serde(default)]
    pub checkout_session: Option<CheckoutSessionId>,
}

impl PaymentIntent {
    /// The hold this intent pays for, when it was created by the checkout.
    pub fn hold(&self) -> Option<HoldId> {
        self.metadata
            .get(HOLD_METADATA_KEY)
            .and_then(|s| s.parse().ok())
    }

    /// What was taken, in minor units: `amount_received`, or the whole amount for a
    /// succeeded intent of a provider that does not report it.
    pub fn received_minor(&self) -> i64 {
        if self.amount_received > 0 {
            self.amount_received
        } else if self.status == IntentStatus::Succeeded {
            self.amount.amount_minor
        } else {
            0
        }
    }

    /// Whether every minor unit taken was refunded (also true when nothing was taken).
    pub fn fully_refunded(&self) -> bool {
        self.amount_refunded >= self.received_minor()
    }
}

/// A request to create a payment intent.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NewIntent {
    /// What to charge (must be positive).
    pub amount: Money,
    /// The buyer's payment method (for the sandbox: a test card number).
    pub payment_method: String,
    /// When the money is taken ([`CaptureMethod::Manual`] needs
    /// [`Capabilities::manual_capture`]; otherwise [`GatewayError::Unsupported`]).
    #[serde(default)]
    pub capture_method: CaptureMethod,
    /// Metadata returned with the intent and its events.
    pub metadata: BTreeMap<String, String>,
    /// The provider-side idempotency key: repeating a creation with the same key and body
    /// returns the same intent; with another body it is [`GatewayError::KeyReused`].
    pub idempotency_key: String,
}

/// A request to capture an authorized (`requires_capture`) intent.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CaptureRequest {
    /// The intent.
    pub intent: IntentId,
    /// Minor units to take; `None` takes everything authorized. Less than authorized needs
    /// [`Capabilities::partial_capture`]; the rest of the authorization is released.
    pub amount_minor: Option<i64>,
    /// The provider-side idempotency key: a repeat returns the captured intent and never
    /// takes money twice.
    pub idempotency_key: String,
}

/// A request for a hosted checkout session: the buyer pays on the provider's page.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NewCheckoutSession {
    /// What to charge (must be positive).
    pub amount: Money,
    /// When the money is taken (as for [`NewIntent::capture_method`]).
    #[serde(default)]
    pub capture_method: CaptureMethod,
    /// Where the provider sends the buyer back, with `session_id=<id>` added to its query
    /// (after a payment, and when the buyer gives up). An absolute `http(s)` URL.
    pub return_url: String,
    /// Shown on the provider's page (the show and the seats).
    pub description: String,
    /// Metadata of the session, copied to every intent it creates.
    pub metadata: BTreeMap<String, String>,
    /// When the session stops taking payments (the hold's expiry). A provider with a
    /// minimum lifetime may keep it open longer: the checkout expires it itself
    /// ([`PaymentGateway::expire_checkout_session`]) when the hold ends.
    pub expires_at: Timestamp,
    /// The provider-side idempotency key: a repeat with the same request returns the same
    /// session; with another request [`GatewayError::KeyReused`].
    pub idempotency_key: String,
}

/// Where a hosted checkout session stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CheckoutSessionStatus {
    /// The buyer may still pay (failed attempts leave it open for another card).
    Open,
    /// The buyer paid (or, for a manual capture, the card was authorized): see `intent`.
    Complete,
    /// No payment was made and none can be made any more.
    Expired,
}

/// A hosted checkout session.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CheckoutSession {
    /// The provider's id.
    pub id: CheckoutSessionId,
    /// The provider's payment page to send the buyer to.
    pub url: String,
    /// Where it stands.
    pub status: CheckoutSessionStatus,
    /// What is charged.
    pub amount: Money,
    /// When the money is taken.
    pub capture_method: CaptureMethod,
    /// The intent of the latest payment attempt, once the buyer made one (for a complete
    /// session: the intent that paid).
    pub intent: Option<IntentId>,
    /// The metadata given at creation.
    pub metadata: BTreeMap<String, String>,
    /// Where the buyer is sent back.
    pub return_url: String,
    /// When it stops taking payments (provider clock).
    pub expires_at: Timestamp,
}

impl CheckoutSession {
    /// The hold this session pays for, when it was created by the checkout.
    pub fn hold(&self) -> Option<HoldId> {
        self.metadata
            .get(HOLD_METADATA_KEY)
            .and_then(|s| s.parse().ok())
    }
}

/// What a provider offers beyond immediate charges.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Capabilities {
    /// Intents with [`CaptureMethod::Manual`], [`PaymentGateway::capture`] and
    /// [`PaymentGateway::void`].
    pub manual_capture: bool,
    /// Capturing less than was authorized.
    pub partial_capture: bool,
    /// Hosted checkout sessions ([`PaymentGateway::create_checkout_session`]).
    pub hosted_checkout: bool,
}

/// A refund of a succeeded intent.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Refund {
    /// The provider's refund id.
    pub id: String,
    /// The intent refunded.
    pub intent: IntentId,
    /// How much this refund returned.
    pub amount: Money,
}

/// A request to refund (part of) a succeeded intent.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RefundRequest {
    /// The intent to refund.
    pub intent: IntentId,
    /// Minor units to return; `None` returns everything not yet refunded.
    pub amount_minor: Option<i64>,
    /// Why (free text, kept by the provider).
    pub reason: String,
    /// The provider-side idempotency key: a repeat returns the first refund and returns
    /// no money twice.
    pub idempotency_key: String,
}

/// What a provider event says happened.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[non_exhaustive]
pub enum EventKind {
    /// The intent was confirmed and is being charged.
    #[serde(rename = "payment_intent.processing")]
    Processing,
    /// The intent was paid.
    #[serde(rename = "payment_intent.succeeded")]
    Succeeded,
    /// The charge failed.
    #[serde(rename = "payment_intent.payment_failed")]
    PaymentFailed,
    /// The card was authorized: a manual-capture intent is `requires_capture`.
    #[serde(rename = "payment_intent.amount_capturable_updated")]
    AmountCapturableUpdated,
    /// The buyer must complete a challenge (`requires_action`).
    #[serde(rename = "payment_intent.requires_action")]
    RequiresAction,
    /// The intent was canceled before any charge (also a voided or expired authorization).
    #[serde(rename = "payment_intent.canceled")]
    Canceled,
    /// (Part of) a succeeded intent was refunded.
    #[serde(rename = "charge.refunded")]
    Refunded,
    /// An event type this version does not know (providers add types over time): parsed,
    /// acknowledged and ignored, so the provider stops re-sending it.
    #[serde(other)]
    Other,
}

/// An event from the provider: the body of a webhook, once its signature is verified.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PaymentEvent {
    /// The event id; also the `webhook-id` header, the same on every delivery attempt, so
    /// it is the receiver's idempotency key.
    pub id: String,
    /// What happened.
    #[serde(rename = "type")]
    pub kind: EventKind,
    /// Per intent, strictly increasing in the order the provider produced the events:
    /// a receiver that keeps its own projection can drop an event older than one it applied.
    pub sequence: u64,
    /// When the provider produced it.
    pub created_at: Timestamp,
    /// The intent as it stood right after the event.
    pub intent: PaymentIntent,
}

/// Errors of a [`PaymentGateway`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, thiserror::Error)]
#[serde(tag = "code", content = "detail", rename_all = "snake_case")]
#[non_exhaustive]
pub enum GatewayError {
    /// The request was malformed (amount, currency, payment method, id); nothing changed.
    #[error("invalid payment request: {0}")]
    Invalid(String),
    /// No such intent.
    #[error("payment intent {0} not found")]
    NotFound(String),
    /// The intent's status does not allow this action (e.g. cancel after success, refund
    /// above what is left); nothing changed.
    #[error("cannot {action} a payment intent that is {status:?}")]
    Conflict {
        /// What was asked.
        action: String,
        /// The intent's status.
        status: IntentStatus,
    },
    /// The idempotency key was used before with a different request.
    #[error("idempotency key reused with a different request")]
    KeyReused,
    /// The provider did not answer in time; the outcome is unknown (ask again with
    /// [`PaymentGateway::get_intent`], or repeat with the same idempotency key).
    #[error("payment provider timed out")]
    Timeout,
    /// The provider could not be reached or failed; the outcome is unknown.
    #[error("payment provider unavailable: {0}")]
    Unavailable(String),
    /// The provider does not offer this (see [`PaymentGateway::capabilities`]); nothing
    /// changed.
    #[error("not supported by this payment provider: {0}")]
    Unsupported(String),
    /// The provider refused the payment method (declined card, failed challenge); nothing
    /// was charged. Providers that report declines on the intent use
    /// [`IntentStatus::Failed`] instead.
    #[error("payment declined: {code}: {message}")]
    Declined {
        /// Machine-readable code (`card_declined`, …).
        code: String,
        /// Human-readable message.
        message: String,
    },
    /// The provider limits the request rate; try again later (nothing changed).
    #[error("payment provider rate limit")]
    RateLimited,
}

impl GatewayError {
    /// Whether the outcome of the call is unknown and a repeat may succeed.
    pub fn is_transient(&self) -> bool {
        matches!(
            self,
            Self::Timeout | Self::Unavailable(_) | Self::RateLimited
        )
    }
}

/// A payment provider.
///
/// Implementations must give these guarantees, which the checkout relies on:
/// * `create_intent` is idempotent per `idempotency_key`, and `refund` too: a repeated
///   call never creates a second intent nor returns money twice.
/// * Status changes follow [`IntentStatus`]'s diagram; `amount_refunded` never exceeds the
///   amount.
/// * `get_intent` reads the provider's current truth (the checkout polls it when a webhook
///   does not come).
/// * `capture` is idempotent per key and takes money at most once per intent; `void`
///   releases an authorization and is idempotent on a canceled intent.
/// * A checkout session's intents carry the session's metadata.
///
/// Manual capture and hosted checkout are optional: a provider without them keeps the
/// default [`PaymentGateway::capabilities`] (none) and the default methods, which answer
/// [`GatewayError::Unsupported`]; the checkout then charges at once, as before.
#[async_trait]
pub trait PaymentGateway: Send + Sync + fmt::Debug {
    /// What this provider offers beyond immediate charges. Constant for a gateway's life.
    fn capabilities(&self) -> Capabilities {
        Capabilities::default()
    }

    /// Creates an intent in `requires_confirmation` (validates amount, currency and payment
    /// method: a malformed one is [`GatewayError::Invalid`] and creates nothing).
    async fn create_intent(&self, req: NewIntent) -> Result<PaymentIntent, GatewayError>;

    /// Confirms an intent: the provider starts charging. Repeating it is harmless. The
    /// answer may already be final (a synchronous decline) or `processing` (the result comes
    /// by webhook); [`GatewayError::Timeout`] means the provider did not answer in time.
    async fn confirm_intent(&self, id: &IntentId) -> Result<PaymentIntent, GatewayError>;

    /// The intent as it stands now.
    async fn get_intent(&self, id: &IntentId) -> Result<PaymentIntent, GatewayError>;

    /// Cancels an intent that was not charged (`requires_confirmation`, `requires_action`,
    /// `requires_capture`); idempotent on a canceled intent, [`GatewayError::Conflict`]
    /// otherwise.
    async fn cancel_intent(&self, id: &IntentId) -> Result<PaymentIntent, GatewayError>;

    /// Refunds (part of) a succeeded intent; see [`RefundRequest`].
    async fn refund(&self, req: RefundRequest) -> Result<Refund, GatewayError>;

    /// Takes the money of an authorized (`requires_capture`) intent: it becomes
    /// `succeeded`. A repeat with the same key returns the intent as it stands; capturing a
    /// succeeded intent again with another key is [`GatewayError::Conflict`], as is
    /// capturing a canceled (voided, expired) one.
    async fn capture(&self, req: CaptureRequest) -> Result<PaymentIntent, GatewayError> {
        Err(GatewayError::Unsupported(format!(
            "manual capture (intent {})",
            req.intent
        )))
    }

    /// Releases an authorization without taking money: a `requires_capture` (or not yet
    /// confirmed) intent becomes `canceled`. Idempotent on a canceled intent;
    /// [`GatewayError::Conflict`] once captured or charged.
    async fn void(&self, id: &IntentId) -> Result<PaymentIntent, GatewayError> {
        self.cancel_intent(id).await
    }

    /// Opens a hosted checkout session; see [`NewCheckoutSession`].
    async fn create_checkout_session(
        &self,
        req: NewCheckoutSession,
    ) -> Result<CheckoutSession, GatewayError> {
        let _ = req;
        Err(GatewayError::Unsupported("hosted checkout".into()))
    }

    /// A checkout session as it stands now.
    async fn get_checkout_session(
        &self,
        id: &CheckoutSessionId,
    ) -> Result<CheckoutSession, GatewayError> {
        Err(GatewayError::NotFound(id.to_string()))
    }

    /// Ends an open session so it takes no payment any more (idempotent on an expired
    /// one); [`GatewayError::Conflict`] with the session's intent status when it already
    /// completed (read it and apply its intent).
    async fn expire_checkout_session(
        &self,
        id: &CheckoutSessionId,
    ) -> Result<CheckoutSession, GatewayError> {
        Err(GatewayError::NotFound(id.to_string()))
    }
}
