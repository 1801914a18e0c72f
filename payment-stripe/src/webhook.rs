//! Stripe's webhooks: the `Stripe-Signature` check ([`StripeWebhookVerifier`]), the signer
//! for tests and fixtures ([`StripeWebhookSigner`]), and [`parse_event`], which reads a
//! Stripe event as the library's [`PaymentEvent`].
//!
//! # The signature scheme
//! Stripe sends `Stripe-Signature: t=<unix seconds>,v1=<hex>[,v1=<hex>…]` where each `v1`
//! is HMAC-SHA256, keyed with the endpoint's signing secret (`whsec_…`, used as it is, bytes
//! of the whole string), over `"{t}.{raw body}"`. Several `v1` appear while a secret is being
//! rolled: any one may match. Other schemes (`v0`, test-mode only) are ignored. The raw body
//! must be verified as received, before any JSON parsing.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use hmac::{Hmac, Mac};
use serde::Deserialize;
use serde_json::Value;
use sha2::Sha256;
use ticket_core::gateway::{
    CaptureMethod, EventKind, GatewayError, IntentId, IntentStatus, PaymentEvent, PaymentIntent,
};
use ticket_core::model::money::Money;

use crate::objects::{StripeCharge, StripePaymentIntent, currency, money, timestamp};

type HmacSha256 = Hmac<Sha256>;

/// The header Stripe signs its webhook requests with.
pub const SIGNATURE_HEADER: &str = "Stripe-Signature";

/// How far a signature's timestamp may be from now: 300 s, as Stripe's own libraries.
pub const DEFAULT_TOLERANCE: Duration = Duration::from_secs(300);

/// Why a webhook was refused. Answer it with a `400`: a forged or damaged request is never
/// applied. (Stripe repeats a refused delivery for days; a real one verifies on the next
/// attempt once the right secret is configured.)
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum WebhookError {
    /// The request has no `Stripe-Signature` header.
    #[error("no Stripe-Signature header")]
    MissingHeader,
    /// The header is not `t=<unix seconds>,v1=<hex>…`.
    #[error("malformed Stripe-Signature header: {0}")]
    MalformedHeader(String),
    /// No `v1` signature matches the body under any trusted secret.
    #[error("no valid signature for this body")]
    NoValidSignature,
    /// The signature is valid but its timestamp is too far from now (a replay, or a clock
    /// that is off).
    #[error("signature timestamp {timestamp} is more than {tolerance_secs} s from now ({now})")]
    TimestampOutOfTolerance {
        /// The header's `t`.
        timestamp: i64,
        /// This host's time.
        now: i64,
        /// The tolerance in force.
        tolerance_secs: u64,
    },
    /// The secret is not usable (empty).
    #[error("invalid webhook signing secret: {0}")]
    InvalidSecret(&'static str),
    /// The verified body is not a Stripe event this crate can read.
    #[error("unreadable Stripe event: {0}")]
    InvalidPayload(String),
}

fn mac(secret: &[u8]) -> HmacSha256 {
    // HMAC takes keys of any length, so this never falls back; the fallback (a fixed
    // all-zero key) only keeps the code free of panics.
    HmacSha256::new_from_slice(secret)
        .unwrap_or_else(|_| <HmacSha256 as hmac::digest::KeyInit>::new(&Default::default()))
}

fn signed(mut mac: HmacSha256, timestamp: i64, body: &[u8]) -> HmacSha256 {
    mac.update(timestamp.to_string().as_bytes());
    mac.update(b".");
    mac.update(body);
    mac
}

fn now_secs() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX))
}

/// Checks `Stripe-Signature` headers against one or more endpoint secrets.
///
/// Guarantees: a body is accepted only if some `v1` in its header is the HMAC-SHA256 of
/// `"{t}.{body}"` under a trusted secret (compared in constant time) and `t` is within the
/// tolerance of now, in either direction. `Debug` never shows the secrets.
#[derive(Clone)]
pub struct StripeWebhookVerifier {
    secrets: Vec<Vec<u8>>,
    tolerance: Duration,
}

impl std::fmt::Debug for StripeWebhookVerifier {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StripeWebhookVerifier")
            .field(
                "secrets",
                &format_args!("[{} redacted]", self.secrets.len()),
            )
            .field("tolerance", &self.tolerance)
            .finish()
    }
}

fn check_secret(secret: &str) -> Result<Vec<u8>, WebhookError> {
    let secret = secret.trim();
    if secret.is_empty() {
        return Err(WebhookError::InvalidSecret("empty"));
    }
    Ok(secret.as_bytes().to_vec())
}

impl StripeWebhookVerifier {
    /// A verifier for the endpoint secret `whsec_…` (as shown by Stripe's dashboard or
    /// `stripe listen`), with [`DEFAULT_TOLERANCE`].
    pub fn new(secret: &str) -> Result<Self, WebhookError> {
        Ok(Self {
            secrets: vec![check_secret(secret)?],
            tolerance: DEFAULT_TOLERANCE,
        })
    }

    /// Also trusts `secret` (while rolling the endpoint's secret, both are valid).
    pub fn also_trust(mut self, secret: &str) -> Result<Self, WebhookError> {
        self.secrets.push(check_secret(secret)?);
        Ok(self)
    }

    /// The same verifier with another tolerance.
    pub fn with_tolerance(mut self, tolerance: Duration) -> Self {
        self.tolerance = tolerance;
        self
    }

    /// Verifies `body` against the `Stripe-Signature` header value (`None` when the request
    /// had none) at this host's current time.
    pub fn verify(&self, body: &[u8], header: Option<&str>) -> Result<(), WebhookError> {
        self.verify_at(body, header, now_secs())
    }

    /// [`StripeWebhookVerifier::verify`] at `now` (unix seconds).
    pub fn verify_at(
        &self,
        body: &[u8],
        header: Option<&str>,
        now: i64,
    ) -> Result<(), WebhookError> {
        let header = header.ok_or(WebhookError::MissingHeader)?;
        let (timestamp, signatures) = parse_header(header)?;
        let matched = signatures.iter().any(|sig| {
            self.secrets.iter().any(|secret| {
                signed(mac(secret), timestamp, body)
                    .verify_slice(sig)
                    .is_ok()
            })
        });
        if !matched {
            return Err(WebhookError::NoValidSignature);
        }
        let tolerance = i64::try_from(self.tolerance.as_secs()).unwrap_or(i64::MAX);
        if now.saturating_sub(timestamp).saturating_abs() > tolerance {
            return Err(WebhookError::TimestampOutOfTolerance {
                timestamp,
                now,
                tolerance_secs: self.tolerance.as_secs(),
            });
        }
        Ok(())
    }

    /// Verifies, then parses the event ([`parse_event`]): what a webhook handler does
    /// before [`ticket_core::service::CheckoutService::handle_event`].
    pub fn verify_event(
        &self,
        body: &[u8],
        header: Option<&str>,
    ) -> Result<PaymentEvent, WebhookError> {
        self.verify(body, header)?;
        parse_event(body)
    }
}

/// `t` and the decoded `v1` signatures of a header. A `v1` that is not hex cannot match and
/// is skipped; a header without a `t`, with two, or without any `v1` is refused.
fn parse_header(header: &str) -> Result<(i64, Vec<Vec<u8>>), WebhookError> {
    let malformed = |why: &str| WebhookError::MalformedHeader(why.to_owned());
    let mut timestamp = None;
    let mut signatures = Vec::new();
    let mut any_v1 = false;
    for item in header.split(',') {
        let Some((k, v)) = item.trim().split_once('=') else {
            return Err(malformed("every element must be key=value"));
        };
        match k.trim() {
            "t" => {
                if timestamp.is_some() {
                    return Err(malformed("more than one timestamp"));
                }
                let t = v
                    .trim()
                    .parse::<i64>()
                    .map_err(|_| malformed("the timestamp is not an integer"))?;
                timestamp = Some(t);
            }
            "v1" => {
                any_v1 = true;
                if let Ok(sig) = hex::decode(v.trim()) {
                    signatures.push(sig);
                }
            }
            _ => {}
        }
    }
    let timestamp = timestamp.ok_or_else(|| malformed("no timestamp (t=…)"))?;
    if !any_v1 {
        return Err(WebhookError::NoValidSignature);
    }
    Ok((timestamp, signatures))
}

/// Signs bodies as Stripe does: for tests, fixtures and local tools that deliver events to a
/// receiver. `Debug` never shows the secret.
#[derive(Clone)]
pub struct StripeWebhookSigner {
    secret: Vec<u8>,
}

impl std::fmt::Debug for StripeWebhookSigner {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("StripeWebhookSigner([redacted])")
    }
}

impl StripeWebhookSigner {
    /// A signer with the endpoint secret `whsec_…`.
    pub fn new(secret: &str) -> Result<Self, WebhookError> {
        Ok(Self {
            secret: check_secret(secret)?,
        })
    }

    /// The hex `v1` signature of `body` at `timestamp` (unix seconds).
    pub fn signature(&self, body: &[u8], timestamp: i64) -> String {
        hex::encode(
            signed(mac(&self.secret), timestamp, body)
                .finalize()
                .into_bytes(),
        )
    }

    /// The whole header value: `t=<timestamp>,v1=<signature>`.
    pub fn header(&self, body: &[u8], timestamp: i64) -> String {
        format!("t={timestamp},v1={}", self.signature(body, timestamp))
    }
}

/// A Stripe event: `{id, type, created, data: {object}}`.
#[derive(Debug, Deserialize)]
struct StripeEvent {
    id: String,
    #[serde(rename = "type")]
    kind: String,
    created: i64,
    data: EventData,
}

#[derive(Debug, Deserialize)]
struct EventData {
    object: Value,
}

/// Where an event type stands in an intent's life: the tie-breaker of
/// [`PaymentEvent::sequence`] between events of the same second.
fn lifecycle_rank(kind: &str) -> u64 {
    match kind {
        "payment_intent.created" => 1,
        "payment_intent.processing" => 2,
        "payment_intent.requires_action" => 3,
        "payment_intent.amount_capturable_updated" => 4,
        "payment_intent.payment_failed" => 5,
        "payment_intent.succeeded" | "payment_intent.canceled" => 6,
        "charge.refunded" => 7,
        _ => 0,
    }
}

fn event_kind(kind: &str) -> EventKind {
    match kind {
        "payment_intent.succeeded" => EventKind::Succeeded,
        "payment_intent.payment_failed" => EventKind::PaymentFailed,
        "payment_intent.canceled" => EventKind::Canceled,
        "payment_intent.processing" => EventKind::Processing,
        "payment_intent.amount_capturable_updated" => EventKind::AmountCapturableUpdated,
        "payment_intent.requires_action" => EventKind::RequiresAction,
        "charge.refunded" => EventKind::Refunded,
        _ => EventKind::Other,
    }
}

fn invalid(e: impl std::fmt::Display) -> WebhookError {
    WebhookError::InvalidPayload(e.to_string())
}

fn gateway(e: GatewayError) -> WebhookError {
    WebhookError::InvalidPayload(e.to_string())
}

/// Reads a (verified) Stripe event as the library's [`PaymentEvent`].
///
/// * `payment_intent.succeeded`, `.payment_failed`, `.canceled`, `.processing`,
///   `.amount_capturable_updated` and `.requires_action` carry the intent as it stood
///   (mapped as by the gateway; the event's intent does not expand its charge, so
///   `amount_refunded` is 0: read the intent for it).
/// * `charge.refunded` → [`EventKind::Refunded`], with the intent rebuilt from the refunded
///   charge (its `payment_intent`, amount, captured and refunded amounts, metadata).
/// * Every other type is [`EventKind::Other`]: acknowledge it and ignore it. Its `intent` is
///   the event's `payment_intent` object when it is one, otherwise a placeholder (the
///   object's id, nothing charged, no metadata) that names no hold.
///
/// `sequence`: Stripe numbers nothing and does not deliver in order. The value is
/// `created` (seconds) × 16 + the type's rank in an intent's life (created < processing <
/// requires_action < amount_capturable_updated < payment_failed < succeeded/canceled <
/// refunded): monotone in the order Stripe produces one intent's events, except that two
/// events of the same type in the same second share it. The checkout does not depend on
/// the order: it applies each event for what it says about the intent, and holds only move
/// forward. The result depends on the body alone, so every delivery of an event (same id)
/// parses to the same value.
pub fn parse_event(body: &[u8]) -> Result<PaymentEvent, WebhookError> {
    let event: StripeEvent = serde_json::from_slice(body).map_err(invalid)?;
    if event.id.is_empty() {
        return Err(invalid("the event has no id"));
    }
    let kind = event_kind(&event.kind);
    let object_type = event.data.object.get("object").and_then(Value::as_str);
    let intent = match (event.kind.as_str(), object_type) {
        ("charge.refunded", _) => {
            let charge: StripeCharge =
                serde_json::from_value(event.data.object.clone()).map_err(invalid)?;
            intent_of_charge(charge)?
        }
        (_, Some("payment_intent")) => {
            let pi: StripePaymentIntent =
                serde_json::from_value(event.data.object.clone()).map_err(invalid)?;
            pi.into_intent().map_err(gateway)?
        }
        _ if kind != EventKind::Other => {
            return Err(invalid(format!(
                "a {} event without a payment_intent object",
                event.kind
            )));
        }
        _ => placeholder(&event.data.object, &event.id, event.created)?,
    };
    let created = u64::try_from(event.created).unwrap_or(0);
    Ok(PaymentEvent {
        id: event.id,
        kind,
        sequence: created
            .saturating_mul(16)
            .saturating_add(lifecycle_rank(&event.kind)),
        created_at: timestamp(event.created),
        intent,
    })
}

/// The intent of a refunded charge, as far as the charge tells it.
fn intent_of_charge(charge: StripeCharge) -> Result<PaymentIntent, WebhookError> {
    let Some(pi) = charge.payment_intent else {
        return Err(invalid(format!(
            "charge {} was not made by a payment intent",
            charge.id
        )));
    };
    let code = charge
        .currency
        .as_deref()
        .ok_or_else(|| invalid(format!("charge {} has no currency", charge.id)))?;
    let received = charge.amount_captured.max(0);
    Ok(PaymentIntent {
        id: IntentId::new(pi).map_err(gateway)?,
        amount: money(charge.amount, code).map_err(gateway)?,
        status: IntentStatus::Succeeded,
        capture_method: CaptureMethod::Automatic,
        amount_capturable: 0,
        amount_received: received,
        amount_refunded: charge.amount_refunded.clamp(0, received),
        failure: None,
        metadata: charge.metadata.unwrap_or_default(),
        created_at: timestamp(charge.created),
        authorization_expires_at: None,
        checkout_session: None,
    })
}

/// The stand-in intent of an event about something else than an intent.
fn placeholder(
    object: &Value,
    event_id: &str,
    created: i64,
) -> Result<PaymentIntent, WebhookError> {
    let id = object
        .get("id")
        .and_then(Value::as_str)
        .filter(|s| IntentId::new(*s).is_ok())
        .unwrap_or(event_id);
    let currency = object
        .get("currency")
        .and_then(Value::as_str)
        .and_then(|c| currency(c).ok())
        .map_or_else(|| currency("xxx"), Ok)
        .map_err(gateway)?;
    Ok(PaymentIntent {
        id: IntentId::new(id).map_err(gateway)?,
        amount: Money::zero(currency),
        status: IntentStatus::RequiresConfirmation,
        capture_method: CaptureMethod::Automatic,
        amount_capturable: 0,
        amount_received: 0,
        amount_refunded: 0,
        failure: None,
        metadata: Default::default(),
        created_at: timestamp(created),
        authorization_expires_at: None,
        checkout_session: None,
    })
}
