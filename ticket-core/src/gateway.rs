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

/// Where a payment intent stands.
///
/// ```text
/// requires_confirmation ──confirm──► processing ──► succeeded ──► (refunds)
///          │                                   └──► failed
///          └──cancel──► canceled
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum IntentStatus {
    /// Created; nothing charged yet. May be confirmed or canceled.
    RequiresConfirmation,
    /// Confirmed; the provider is charging. Not cancelable: it ends succeeded or failed.
    Processing,
    /// Paid. Final, except that refunds may follow.
    Succeeded,
    /// The charge failed (declined, insufficient funds, …). Final.
    Failed,
    /// Canceled before any charge. Final.
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
            Self::Processing => "processing",
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
    /// What is charged.
    pub amount: Money,
    /// Where it stands.
    pub status: IntentStatus,
    /// Refunded so far, in the same currency; never above `amount`.
    pub amount_refunded: i64,
    /// Why it failed, when `status` is `failed`.
    pub failure: Option<PaymentFailure>,
    /// Free-form metadata set at creation (the checkout sets [`HOLD_METADATA_KEY`]).
    pub metadata: BTreeMap<String, String>,
    /// When it was created (provider clock).
    pub created_at: Timestamp,
}

impl PaymentIntent {
    /// The hold this intent pays for, when it was created by the checkout.
    pub fn hold(&self) -> Option<HoldId> {
        self.metadata
            .get(HOLD_METADATA_KEY)
            .and_then(|s| s.parse().ok())
    }

    /// Whether every minor unit was refunded.
    pub fn fully_refunded(&self) -> bool {
        self.amount_refunded >= self.amount.amount_minor
    }
}

/// A request to create a payment intent.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NewIntent {
    /// What to charge (must be positive).
    pub amount: Money,
    /// The buyer's payment method (for the sandbox: a test card number).
    pub payment_method: String,
    /// Metadata returned with the intent and its events.
    pub metadata: BTreeMap<String, String>,
    /// The provider-side idempotency key: repeating a creation with the same key and body
    /// returns the same intent; with another body it is [`GatewayError::KeyReused`].
    pub idempotency_key: String,
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
    /// The intent was canceled before any charge.
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
}

impl GatewayError {
    /// Whether the outcome of the call is unknown and a repeat may succeed.
    pub fn is_transient(&self) -> bool {
        matches!(self, Self::Timeout | Self::Unavailable(_))
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
#[async_trait]
pub trait PaymentGateway: Send + Sync + fmt::Debug {
    /// Creates an intent in `requires_confirmation` (validates amount, currency and payment
    /// method: a malformed one is [`GatewayError::Invalid`] and creates nothing).
    async fn create_intent(&self, req: NewIntent) -> Result<PaymentIntent, GatewayError>;

    /// Confirms an intent: the provider starts charging. Repeating it is harmless. The
    /// answer may already be final (a synchronous decline) or `processing` (the result comes
    /// by webhook); [`GatewayError::Timeout`] means the provider did not answer in time.
    async fn confirm_intent(&self, id: &IntentId) -> Result<PaymentIntent, GatewayError>;

    /// The intent as it stands now.
    async fn get_intent(&self, id: &IntentId) -> Result<PaymentIntent, GatewayError>;

    /// Cancels an intent that was not charged (`requires_confirmation`); idempotent on a
    /// canceled intent, [`GatewayError::Conflict`] otherwise.
    async fn cancel_intent(&self, id: &IntentId) -> Result<PaymentIntent, GatewayError>;

    /// Refunds (part of) a succeeded intent; see [`RefundRequest`].
    async fn refund(&self, req: RefundRequest) -> Result<Refund, GatewayError>;
}
