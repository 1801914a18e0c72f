//! Webhook delivery, as the Standard Webhooks scheme advises senders, with injected faults.
//!
//! * Every event goes to every enabled endpoint as a signed `POST` with a request timeout
//!   ([`DeliveryConfig::request_timeout`], default 15 s).
//! * A non-2xx answer, a timeout or a network error is retried on the scheme's schedule
//!   (immediately, 5 s, 5 min, 30 min, 2 h, 5 h, 10 h, 10 h), each wait multiplied by the
//!   sandbox's time scale so tests run it in milliseconds.
//! * `410 Gone` disables the endpoint: nothing more is sent to it.
//! * Redirects are never followed: a `3xx` answer is a failed attempt (logged with its
//!   status, retried on the schedule), so a receiver cannot bounce the sandbox's signed
//!   requests to another address.
//! * `429` and `503` with a `Retry-After` (seconds) wait that long (scaled, at most 24 h) instead of the
//!   schedule's next step.
//! * Every attempt is logged ([`DeliveryAttempt`]): status, latency, injected faults. The log
//!   keeps the newest [`crate::SandboxConfig::max_delivery_log`] attempts; older ones are
//!   dropped (the counters of [`DeliveryStats`] still count them).
//! * Endpoint URLs are checked when registered ([`crate::webhook_url`]), and at most
//!   [`crate::SandboxConfig::max_endpoints`] endpoints can be registered.
//! * Faults ([`Faults`]) are drawn per endpoint from its seeded stream when the event is
//!   emitted. Their delays are real time (they model the network); the time scale applies to
//!   the provider's own schedule.

use std::time::Duration;

use serde::{Deserialize, Serialize};
use ticket_core::Timestamp;
use ticket_core::gateway::{EventKind, IntentId};

use crate::faults::Faults;

#[cfg(feature = "server")]
mod dispatcher;
#[cfg(feature = "server")]
pub(crate) use dispatcher::Dispatcher;

/// Delivery settings of a sandbox.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DeliveryConfig {
    /// How long one attempt may take before it counts as failed (not scaled).
    pub request_timeout: Duration,
    /// Wait before each attempt: the first is the initial attempt (scaled by the time scale).
    pub schedule: Vec<Duration>,
}

impl Default for DeliveryConfig {
    fn default() -> Self {
        let m = |minutes: u64| Duration::from_secs(minutes * 60);
        Self {
            request_timeout: Duration::from_secs(15),
            schedule: vec![
                Duration::ZERO,
                Duration::from_secs(5),
                m(5),
                m(30),
                m(120),
                m(300),
                m(600),
                m(600),
            ],
        }
    }
}

/// How an endpoint's webhooks are signed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum SigningScheme {
    /// `v1`: HMAC-SHA256 with a shared `whsec_` secret.
    #[default]
    Symmetric,
    /// `v1a`: ed25519; the receiver verifies with the `whpk_` public key.
    Asymmetric,
}

/// A webhook endpoint to register.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EndpointConfig {
    /// Where to `POST` events (`http://` only: the sandbox sends no TLS).
    pub url: String,
    /// How to sign.
    #[serde(default)]
    pub signing: SigningScheme,
    /// Faults to inject.
    #[serde(default)]
    pub faults: Faults,
}

/// A registered endpoint, as the API shows it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct EndpointInfo {
    /// The endpoint's id.
    pub id: String,
    /// Where events go.
    pub url: String,
    /// The key the receiver verifies with: the `whsec_` secret (symmetric) or the `whpk_`
    /// public key (asymmetric). After a rotation, the newest.
    pub verification_key: String,
    /// False once the endpoint answered `410 Gone`.
    pub enabled: bool,
}

/// What happened to one attempt.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
#[non_exhaustive]
pub enum AttemptOutcome {
    /// The receiver answered 2xx.
    Delivered {
        /// HTTP status.
        status: u16,
    },
    /// The receiver answered something else.
    Rejected {
        /// HTTP status.
        status: u16,
        /// `Retry-After` seconds, when given with 429/503.
        retry_after_secs: Option<u64>,
    },
    /// No answer within the request timeout.
    TimedOut,
    /// The connection failed.
    NetworkError {
        /// The client's message.
        message: String,
    },
    /// Failed on purpose by the fault injector (nothing was sent).
    InjectedFailure,
}

/// One delivery attempt, as logged.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DeliveryAttempt {
    /// The endpoint.
    pub endpoint: String,
    /// The event (`webhook-id`).
    pub event_id: String,
    /// The event's type.
    pub event_type: EventKind,
    /// The intent the event is about.
    pub intent: IntentId,
    /// The event's per-intent sequence.
    pub sequence: u64,
    /// 0 for the original delivery, 1.. for injected duplicates.
    pub copy: u32,
    /// 1 for the first attempt of this copy.
    pub attempt: u32,
    /// When the attempt started (sandbox clock).
    pub at: Timestamp,
    /// How long it took, milliseconds.
    pub latency_ms: u64,
    /// Whether the signature was corrupted on purpose.
    pub signature_corrupted: bool,
    /// What happened.
    pub outcome: AttemptOutcome,
}

/// Counters over every delivery so far.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct DeliveryStats {
    /// Events handed to the dispatcher, per endpoint (an event to two endpoints counts 2).
    pub events: u64,
    /// Copies scheduled (events plus injected duplicates).
    pub copies: u64,
    /// Copies delivered (a 2xx answer).
    pub delivered: u64,
    /// Copies given up: schedule exhausted, or the endpoint disabled.
    pub abandoned: u64,
    /// Attempts made (including injected failures).
    pub attempts: u64,
    /// Copies held back to be delivered out of order.
    pub held_back: u64,
}
