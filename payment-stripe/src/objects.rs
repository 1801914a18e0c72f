//! Stripe's objects as they come over the wire (only the fields this crate reads), and
//! their translation into `ticket_core`'s payment types.
//!
//! Field names and shapes follow Stripe's published OpenAPI fixtures (`payment_intent`,
//! `charge`, `refund`, `checkout.session`, `event`); every field the API may omit or set
//! to `null` is optional here, so a newer API version's additions never break parsing.

use std::collections::BTreeMap;

use serde::Deserialize;
use ticket_core::Timestamp;
use ticket_core::gateway::{
    CaptureMethod, CheckoutSession, CheckoutSessionId, CheckoutSessionStatus, GatewayError,
    IntentId, IntentStatus, PaymentFailure, PaymentIntent, Refund,
};
use ticket_core::model::money::{Currency, Money};

/// The metadata key under which the gateway records a checkout session's capture method
/// (Stripe's session object does not report `payment_intent_data`); removed again when a
/// session is read back, so callers see exactly the metadata they gave.
pub(crate) const CAPTURE_METHOD_METADATA_KEY: &str = "ticketrush_capture_method";

/// The metadata key that marks an intent created by one of this gateway's checkout
/// sessions (set through `payment_intent_data[metadata]`; removed again when an intent is
/// read). On Stripe's hosted page a declined card does not end the intent: the buyer may try
/// another card on the same intent, so its failed attempts are not final (see [`status`]).
pub(crate) const HOSTED_METADATA_KEY: &str = "ticketrush_hosted_checkout";

/// The query parameter `create_checkout_session` appends to the return URL (its value is
/// Stripe's `{CHECKOUT_SESSION_ID}` template, filled in by Stripe).
pub(crate) const SESSION_ID_PARAM: &str = "session_id={CHECKOUT_SESSION_ID}";

/// An id, or the object itself when the request asked Stripe to expand it.
#[derive(Debug, Clone, Deserialize)]
#[serde(untagged)]
pub(crate) enum Expandable<T> {
    /// Only the id.
    Id(String),
    /// The whole object (`expand[]=…`).
    Object(Box<T>),
}

impl<T: HasId> Expandable<T> {
    pub(crate) fn id(&self) -> &str {
        match self {
            Self::Id(id) => id,
            Self::Object(o) => o.id(),
        }
    }
}

pub(crate) trait HasId {
    fn id(&self) -> &str;
}

/// Stripe's error object (`{"error": {...}}`), also `last_payment_error` on an intent.
#[derive(Debug, Clone, Default, Deserialize)]
pub(crate) struct StripeError {
    /// `api_error`, `card_error`, `idempotency_error`, `invalid_request_error`, …
    #[serde(rename = "type", default)]
    pub(crate) kind: Option<String>,
    /// `card_declined`, `resource_missing`, `payment_intent_unexpected_state`, …
    #[serde(default)]
    pub(crate) code: Option<String>,
    /// For card errors: the issuer's reason (`insufficient_funds`, `generic_decline`, …).
    #[serde(default)]
    pub(crate) decline_code: Option<String>,
    /// Human-readable.
    #[serde(default)]
    pub(crate) message: Option<String>,
    /// The parameter the error is about.
    #[serde(default)]
    pub(crate) param: Option<String>,
    /// The intent the error is about, as it stands after the failed request.
    #[serde(default)]
    pub(crate) payment_intent: Option<Box<StripePaymentIntent>>,
}

impl StripeError {
    /// The failure as the library reports it: the issuer's `decline_code` when it says more
    /// than Stripe's `code` (`insufficient_funds` rather than `card_declined`), else the code,
    /// else the error type.
    pub(crate) fn failure(&self) -> PaymentFailure {
        let code = match (self.code.as_deref(), self.decline_code.as_deref()) {
            (Some("card_declined") | None, Some(d)) if d != "generic_decline" => d,
            (Some(c), _) => c,
            (None, _) => self.kind.as_deref().unwrap_or("payment_failed"),
        };
        PaymentFailure {
            code: code.to_owned(),
            message: self
                .message
                .clone()
                .unwrap_or_else(|| "the payment failed".to_owned()),
        }
    }

    pub(crate) fn describe(&self) -> String {
        let kind = self.kind.as_deref().unwrap_or("error");
        let mut text = match (&self.code, &self.message) {
            (Some(c), Some(m)) => format!("{kind}/{c}: {m}"),
            (Some(c), None) => format!("{kind}/{c}"),
            (None, Some(m)) => format!("{kind}: {m}"),
            (None, None) => kind.to_owned(),
        };
        if let Some(p) = &self.param {
            text.push_str(&format!(" (param {p})"));
        }
        text
    }
}

/// The envelope of an error answer.
#[derive(Debug, Deserialize)]
pub(crate) struct ErrorEnvelope {
    pub(crate) error: StripeError,
}

/// `payment_method_details.card` of a charge.
#[derive(Debug, Clone, Default, Deserialize)]
pub(crate) struct CardDetails {
    /// For a manual capture: when the authorization ends if it is not captured.
    #[serde(default)]
    pub(crate) capture_before: Option<i64>,
}

#[derive(Debug, Clone, Default, Deserialize)]
pub(crate) struct PaymentMethodDetails {
    #[serde(default)]
    pub(crate) card: Option<CardDetails>,
}

/// A charge (the latest of an intent, or the object of a `charge.*` event).
#[derive(Debug, Clone, Deserialize)]
pub(crate) struct StripeCharge {
    pub(crate) id: String,
    #[serde(default)]
    pub(crate) amount: i64,
    #[serde(default)]
    pub(crate) amount_captured: i64,
    #[serde(default)]
    pub(crate) amount_refunded: i64,
    #[serde(default)]
    pub(crate) currency: Option<String>,
    #[serde(default)]
    pub(crate) payment_intent: Option<String>,
    #[serde(default)]
    pub(crate) metadata: Option<BTreeMap<String, String>>,
    #[serde(default)]
    pub(crate) created: i64,
    #[serde(default)]
    pub(crate) payment_method_details: Option<PaymentMethodDetails>,
}

impl HasId for StripeCharge {
    fn id(&self) -> &str {
        &self.id
    }
}

/// A PaymentIntent.
#[derive(Debug, Clone, Deserialize)]
pub(crate) struct StripePaymentIntent {
    pub(crate) id: String,
    pub(crate) amount: i64,
    pub(crate) currency: String,
    pub(crate) status: String,
    #[serde(default)]
    pub(crate) capture_method: Option<String>,
    #[serde(default)]
    pub(crate) amount_capturable: i64,
    #[serde(default)]
    pub(crate) amount_received: i64,
    #[serde(default)]
    pub(crate) last_payment_error: Option<StripeError>,
    #[serde(default)]
    pub(crate) latest_charge: Option<Expandable<StripeCharge>>,
    #[serde(default)]
    pub(crate) metadata: Option<BTreeMap<String, String>>,
    #[serde(default)]
    pub(crate) created: i64,
}

impl HasId for StripePaymentIntent {
    fn id(&self) -> &str {
        &self.id
    }
}

/// A Refund.
#[derive(Debug, Clone, Deserialize)]
pub(crate) struct StripeRefund {
    pub(crate) id: String,
    pub(crate) amount: i64,
    pub(crate) currency: String,
    #[serde(default)]
    pub(crate) payment_intent: Option<String>,
    /// `pending`, `requires_action`, `succeeded`, `failed` or `canceled`.
    #[serde(default)]
    pub(crate) status: Option<String>,
    #[serde(default)]
    pub(crate) failure_reason: Option<String>,
}

/// A Checkout Session.
#[derive(Debug, Clone, Deserialize)]
pub(crate) struct StripeCheckoutSession {
    pub(crate) id: String,
    /// `null` once the session is no longer open.
    #[serde(default)]
    pub(crate) url: Option<String>,
    /// `open`, `complete` or `expired`.
    #[serde(default)]
    pub(crate) status: Option<String>,
    #[serde(default)]
    pub(crate) amount_total: Option<i64>,
    #[serde(default)]
    pub(crate) currency: Option<String>,
    #[serde(default)]
    pub(crate) payment_intent: Option<Expandable<StripePaymentIntent>>,
    #[serde(default)]
    pub(crate) metadata: Option<BTreeMap<String, String>>,
    #[serde(default)]
    pub(crate) success_url: Option<String>,
    #[serde(default)]
    pub(crate) expires_at: i64,
}

fn unreadable(what: &str, why: impl std::fmt::Display) -> GatewayError {
    GatewayError::Unavailable(format!("unreadable {what} from Stripe: {why}"))
}

/// Stripe's lower-case currency code as the library's (upper-case) [`Currency`].
pub(crate) fn currency(code: &str) -> Result<Currency, GatewayError> {
    Currency::new(&code.to_ascii_uppercase()).map_err(|e| unreadable("currency", e))
}

/// Stripe's smallest-unit integer as [`Money`]: the same integer (`amount_minor` is the
/// currency's smallest unit as Stripe counts it, zero-decimal currencies included).
pub(crate) fn money(amount: i64, code: &str) -> Result<Money, GatewayError> {
    Money::new(amount, currency(code)?).map_err(|e| unreadable("amount", e))
}

/// Unix seconds as a [`Timestamp`].
pub(crate) fn timestamp(secs: i64) -> Timestamp {
    Timestamp::from_millis(secs.saturating_mul(1000))
}

/// Stripe's capture method: `manual` is manual; `automatic` and `automatic_async` (and a
/// missing value) are automatic.
pub(crate) fn capture_method(value: Option<&str>) -> CaptureMethod {
    match value {
        Some("manual") => CaptureMethod::Manual,
        _ => CaptureMethod::Automatic,
    }
}

/// Stripe's status as the library's.
///
/// `requires_payment_method` means two things at Stripe: an intent that never had a
/// payment method, and one whose payment attempt failed (Stripe then clears the payment
/// method and sets `last_payment_error`, so the buyer could try another card).
///
/// * For an intent the checkout created and confirmed itself (`create_intent`), a failed
///   attempt is final: the library never re-confirms an intent with another card (a new
///   checkout makes a new intent, and the checkout cancels unused ones). It is `Failed`,
///   with the error's code and message.
/// * For an intent of a hosted checkout session (`hosted`), the buyer may still pay the same
///   intent with another card on Stripe's page while the session is open, so a failed
///   attempt is not final: it is `RequiresConfirmation` (nothing charged, nothing settled;
///   the failure is kept in `failure`). The session's end decides: Stripe cancels the intent
///   of an expired session (`canceled`), and a completed one authorizes or charges it. This
///   also keeps a failed attempt's event, delivered late, from failing a hold whose session
///   was paid meanwhile.
/// * Without an error it is `RequiresConfirmation` (nothing was tried, nothing charged).
pub(crate) fn status(
    value: &str,
    last_error: Option<&StripeError>,
    hosted: bool,
) -> Result<IntentStatus, GatewayError> {
    Ok(match value {
        "requires_payment_method" if last_error.is_some() && !hosted => IntentStatus::Failed,
        "requires_payment_method" | "requires_confirmation" => IntentStatus::RequiresConfirmation,
        "requires_action" => IntentStatus::RequiresAction,
        "processing" => IntentStatus::Processing,
        "requires_capture" => IntentStatus::RequiresCapture,
        "succeeded" => IntentStatus::Succeeded,
        "canceled" => IntentStatus::Canceled,
        other => return Err(unreadable("intent status", other)),
    })
}

impl StripePaymentIntent {
    /// The intent as the library sees it. `amount_refunded` comes from the latest charge
    /// when it was expanded (0 otherwise); `authorization_expires_at` from that charge's
    /// `payment_method_details.card.capture_before`.
    pub(crate) fn into_intent(self) -> Result<PaymentIntent, GatewayError> {
        let mut metadata = self.metadata.unwrap_or_default();
        let hosted = metadata.remove(HOSTED_METADATA_KEY).is_some();
        let status = status(&self.status, self.last_payment_error.as_ref(), hosted)?;
        let failure = match (self.status.as_str(), status) {
            (_, IntentStatus::Failed) | ("requires_payment_method", _) => {
                self.last_payment_error.as_ref().map(StripeError::failure)
            }
            _ => None,
        };
        let charge = match &self.latest_charge {
            Some(Expandable::Object(c)) => Some(c.as_ref()),
            _ => None,
        };
        let authorization_expires_at = match status {
            IntentStatus::RequiresCapture => charge
                .and_then(|c| c.payment_method_details.as_ref())
                .and_then(|d| d.card.as_ref())
                .and_then(|c| c.capture_before)
                .map(timestamp),
            _ => None,
        };
        let amount_received = self.amount_received.max(0);
        Ok(PaymentIntent {
            id: IntentId::new(self.id).map_err(|e| unreadable("intent id", e))?,
            amount: money(self.amount, &self.currency)?,
            status,
            capture_method: capture_method(self.capture_method.as_deref()),
            amount_capturable: self.amount_capturable.max(0),
            amount_received,
            amount_refunded: charge
                .map_or(0, |c| c.amount_refunded)
                .clamp(0, amount_received),
            failure,
            metadata,
            created_at: timestamp(self.created),
            authorization_expires_at,
            checkout_session: None,
        })
    }
}

impl StripeRefund {
    pub(crate) fn into_refund(self, asked_for: &IntentId) -> Result<Refund, GatewayError> {
        if let Some(status @ ("failed" | "canceled")) = self.status.as_deref() {
            return Err(GatewayError::Declined {
                code: "refund_failed".into(),
                message: format!(
                    "refund {} {status}: {}",
                    self.id,
                    self.failure_reason.as_deref().unwrap_or("no reason given")
                ),
            });
        }
        let intent = match self.payment_intent {
            Some(id) => IntentId::new(id).map_err(|e| unreadable("refund's intent", e))?,
            None => asked_for.clone(),
        };
        Ok(Refund {
            id: self.id,
            intent,
            amount: money(self.amount, &self.currency)?,
        })
    }
}

/// The return URL a session was created with: its `success_url` without the
/// `session_id={CHECKOUT_SESSION_ID}` parameter this crate appended.
pub(crate) fn return_url_of(success_url: &str) -> String {
    let (base, fragment) = match success_url.split_once('#') {
        Some((b, f)) => (b, Some(f)),
        None => (success_url, None),
    };
    let trimmed = base
        .strip_suffix(&format!("?{SESSION_ID_PARAM}"))
        .or_else(|| base.strip_suffix(&format!("&{SESSION_ID_PARAM}")))
        .unwrap_or(base);
    match fragment {
        Some(f) => format!("{trimmed}#{f}"),
        None => trimmed.to_owned(),
    }
}

impl StripeCheckoutSession {
    pub(crate) fn into_session(self) -> Result<CheckoutSession, GatewayError> {
        let status = match self.status.as_deref() {
            Some("open") => CheckoutSessionStatus::Open,
            Some("complete") => CheckoutSessionStatus::Complete,
            Some("expired") => CheckoutSessionStatus::Expired,
            other => return Err(unreadable("checkout session status", format!("{other:?}"))),
        };
        let (Some(amount), Some(code)) = (self.amount_total, self.currency.as_deref()) else {
            return Err(unreadable(
                "checkout session",
                format!("session {} has no amount_total or currency", self.id),
            ));
        };
        let mut metadata = self.metadata.unwrap_or_default();
        let recorded = metadata.remove(CAPTURE_METHOD_METADATA_KEY);
        let from_intent = match &self.payment_intent {
            Some(Expandable::Object(pi)) => pi.capture_method.clone(),
            _ => None,
        };
        let intent = match &self.payment_intent {
            Some(p) => Some(IntentId::new(p.id()).map_err(|e| unreadable("session's intent", e))?),
            None => None,
        };
        Ok(CheckoutSession {
            id: CheckoutSessionId::new(self.id).map_err(|e| unreadable("session id", e))?,
            url: self.url.unwrap_or_default(),
            status,
            amount: money(amount, code)?,
            capture_method: capture_method(recorded.as_deref().or(from_intent.as_deref())),
            intent,
            metadata,
            return_url: self
                .success_url
                .as_deref()
                .map(return_url_of)
                .unwrap_or_default(),
            expires_at: timestamp(self.expires_at),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn requires_payment_method_is_failed_only_after_an_attempt() {
        let err = StripeError {
            code: Some("card_declined".into()),
            decline_code: Some("insufficient_funds".into()),
            ..StripeError::default()
        };
        assert_eq!(
            status("requires_payment_method", Some(&err), false).ok(),
            Some(IntentStatus::Failed)
        );
        assert_eq!(
            status("requires_payment_method", Some(&err), true).ok(),
            Some(IntentStatus::RequiresConfirmation),
            "on the hosted page the buyer may try another card"
        );
        assert_eq!(
            status("requires_payment_method", None, false).ok(),
            Some(IntentStatus::RequiresConfirmation)
        );
        assert!(status("something_new", None, false).is_err());
        assert_eq!(err.failure().code, "insufficient_funds");
        let generic = StripeError {
            code: Some("card_declined".into()),
            decline_code: Some("generic_decline".into()),
            ..StripeError::default()
        };
        assert_eq!(generic.failure().code, "card_declined");
    }

    #[test]
    fn return_url_loses_only_the_appended_parameter() {
        assert_eq!(
            return_url_of("https://shop.example/r?session_id={CHECKOUT_SESSION_ID}"),
            "https://shop.example/r"
        );
        assert_eq!(
            return_url_of("https://shop.example/r?hold=1&session_id={CHECKOUT_SESSION_ID}#top"),
            "https://shop.example/r?hold=1#top"
        );
        assert_eq!(
            return_url_of("https://shop.example/r?x=1"),
            "https://shop.example/r?x=1"
        );
    }
}
