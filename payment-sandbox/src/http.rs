//! The sandbox as an HTTP service (axum), shaped like a provider's REST API.
//!
//! | method and path | does |
//! |---|---|
//! | `POST /v1/payment_intents` | create (`Idempotency-Key` header; body [`CreateIntentBody`]) |
//! | `GET /v1/payment_intents?limit&starting_after` | list, oldest first, a [`Page`] at a time |
//! | `GET /v1/payment_intents/{id}` | read |
//! | `POST /v1/payment_intents/{id}/confirm` | confirm (outcome by test card) |
//! | `POST /v1/payment_intents/{id}/cancel` | cancel before confirmation, or void an authorization (`requires_capture`) |
//! | `POST /v1/payment_intents/{id}/capture` | capture an authorization (`Idempotency-Key`; body [`CaptureBody`]) |
//! | `POST /v1/payment_intents/{id}/refunds` | refund (`Idempotency-Key`; body [`RefundBody`]) |
//! | `GET /v1/refunds?limit&starting_after` | list refunds in the order they were made, a [`Page`] at a time |
//! | `POST /v1/webhook_endpoints` | register an endpoint ([`EndpointConfig`](crate::delivery::EndpointConfig)) |
//! | `GET /v1/webhook_endpoints/{id}` | read an endpoint |
//! | `POST /v1/webhook_endpoints/{id}/rotate_secret` | rotate its signing key |
//! | `GET /v1/webhook_endpoints/{id}/deliveries` | its delivery log |
//! | `GET /v1/deliveries/stats` | delivery counters |
//! | `POST /v1/checkout_sessions` | open a hosted checkout session (`Idempotency-Key`; body [`CreateCheckoutSessionBody`]); answers the session, whose `url` is the buyer's page |
//! | `GET /v1/checkout_sessions/{id}` | read a session |
//! | `POST /v1/checkout_sessions/{id}/expire` | expire an open session (idempotent; `409` once complete, with its intent's status) |
//!
//! Every `/v1` route needs the sandbox's secret API key, `Authorization: Bearer sk_test_…`
//! ([`ApiKey`](crate::auth::ApiKey), given to [`router`] and [`serve`]): without it, or with another, the answer
//! is `401 {"error": {"type": "unauthorized", …}}` with `WWW-Authenticate: Bearer`, before
//! any handler runs, so nothing changes; unknown paths answer `401` too, not `404`. The
//! buyer's payment page (`/pay/{id}`, see [`hosted_page_router`]) is the exception: the
//! buyer has no key, the session id in the URL is what lets them pay.
//!
//! `Idempotency-Key` has the core's semantics: the same key with the same body names the
//! same intent (returned as it stands now), the same checkout session (as it stands now),
//! the same refund or the same capture (the intent as it stands now: money is taken once),
//! with another body `422 idempotency_key_reused`; a rejected (invalid) request stores nothing. Errors are `{"error": {"type": …, "message": …}}` with 400
//! (invalid), 401 (API key), 404 (unknown, or evicted past the retention bounds of
//! [`crate::SandboxConfig`]), 409 (state conflict), 422, 503 (full of unsettled intents or
//! open sessions; retry later) or 504 (provider timeout).

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use ticket_core::gateway::{Capabilities, CaptureMethod};

#[cfg(feature = "server")]
mod page;
#[cfg(feature = "server")]
mod routes;
#[cfg(feature = "server")]
pub use page::hosted_page_router;
#[cfg(feature = "server")]
pub use routes::{ApiError, router, serve, serve_on, serve_until};

/// Body of `POST /v1/payment_intents` (unknown fields are refused).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CreateIntentBody {
    /// Amount in minor units.
    pub amount_minor: i64,
    /// Currency code (`KRW`, `USD`, …).
    pub currency: String,
    /// Test card number (see [`crate::cards`]).
    pub payment_method: String,
    /// `automatic` (the default: charged at once) or `manual` (authorized only, until
    /// `POST /v1/payment_intents/{id}/capture`).
    #[serde(default)]
    pub capture_method: CaptureMethod,
    /// Free-form metadata.
    #[serde(default)]
    pub metadata: BTreeMap<String, String>,
}

/// Body of `POST /v1/checkout_sessions` (unknown fields are refused).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CreateCheckoutSessionBody {
    /// Amount in minor units.
    pub amount_minor: i64,
    /// Currency code (`KRW`, `USD`, …).
    pub currency: String,
    /// `automatic` (the default) or `manual` (the page authorizes only).
    #[serde(default)]
    pub capture_method: CaptureMethod,
    /// Where the buyer is sent back (an absolute `http(s)` URL, see
    /// [`crate::webhook_url::validate_return_url`]).
    pub return_url: String,
    /// Shown on the page (at most 500 characters).
    #[serde(default)]
    pub description: String,
    /// Copied to every intent the session creates.
    #[serde(default)]
    pub metadata: BTreeMap<String, String>,
    /// When the session stops taking payments, milliseconds since the Unix epoch.
    pub expires_at_ms: i64,
}

/// Body of `POST /v1/payment_intents/{id}/refunds` (unknown fields are refused).
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RefundBody {
    /// Minor units to refund; absent refunds what is left.
    #[serde(default)]
    pub amount_minor: Option<i64>,
    /// Why.
    #[serde(default)]
    pub reason: String,
}

/// Query of the list routes: at most `limit` items (1 to [`MAX_PAGE`], default 100) after
/// the item whose id is `starting_after` (from the start when absent).
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct ListQuery {
    /// Page size, 1 to [`MAX_PAGE`].
    #[serde(default)]
    pub limit: Option<usize>,
    /// The id of the last item of the previous page.
    #[serde(default)]
    pub starting_after: Option<String>,
}

/// The largest page the list routes give.
pub const MAX_PAGE: usize = 10_000;

/// One page of a list: its items in list order, and whether more follow the last one.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Page<T> {
    /// The items.
    pub data: Vec<T>,
    /// Whether items follow the last one (ask again with `starting_after` = its id).
    pub has_more: bool,
}

/// What the sandbox offers beyond immediate charges (the answer of
/// [`PaymentGateway::capabilities`](ticket_core::gateway::PaymentGateway::capabilities) for
/// the in-process [`crate::Sandbox`] and for [`crate::client::HttpGateway`]): manual capture,
/// partial capture and the hosted payment page (checkout sessions).
pub const CAPABILITIES: Capabilities = Capabilities {
    manual_capture: true,
    partial_capture: true,
    hosted_checkout: true,
};

/// Body of `POST /v1/payment_intents/{id}/capture` (unknown fields are refused).
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CaptureBody {
    /// Minor units to take, 1..=`amount_capturable`; absent takes everything authorized
    /// (the rest of a partial capture is released).
    #[serde(default)]
    pub amount_minor: Option<i64>,
}
