//! # payment-stripe
//!
//! Stripe as a ticketrush payment provider: [`StripeGateway`] implements
//! [`ticket_core::gateway::PaymentGateway`] over Stripe's REST API, and
//! [`StripeWebhookVerifier`] / [`parse_event`] turn Stripe's signed webhooks into the
//! library's [`PaymentEvent`](ticket_core::gateway::PaymentEvent)s for
//! [`CheckoutService::handle_event`](ticket_core::service::CheckoutService::handle_event).
//!
//! ```no_run
//! use std::sync::Arc;
//! use payment_stripe::{StripeConfig, StripeGateway};
//! use ticket_core::gateway::PaymentGateway;
//!
//! # fn host() -> Result<(), Box<dyn std::error::Error>> {
//! // Where a host built `Arc::new(Sandbox::new(...)?)`:
//! let gateway: Arc<dyn PaymentGateway> = Arc::new(StripeGateway::new(StripeConfig::from_env()?)?);
//! # let _ = gateway;
//! # Ok(())
//! # }
//! ```
//!
//! ## The mapping
//!
//! | trait | Stripe |
//! |---|---|
//! | `create_intent` | `POST /v1/payment_intents` (`amount`, `currency` in lower case, `payment_method`, `capture_method`, `metadata[…]`) |
//! | `confirm_intent` | `POST /v1/payment_intents/{id}/confirm` |
//! | `get_intent` | `GET /v1/payment_intents/{id}?expand[]=latest_charge` |
//! | `cancel_intent`, `void` | `POST /v1/payment_intents/{id}/cancel` |
//! | `capture` | `POST /v1/payment_intents/{id}/capture` (`amount_to_capture`) |
//! | `refund` | `POST /v1/refunds` (`payment_intent`, `amount`, `metadata[reason]`) |
//! | `create_checkout_session` | `POST /v1/checkout/sessions` (`mode=payment`, one `price_data` line item) |
//! | `get_checkout_session` | `GET /v1/checkout/sessions/{id}` |
//! | `expire_checkout_session` | `POST /v1/checkout/sessions/{id}/expire` |
//!
//! Statuses map one to one, except Stripe's `requires_payment_method`: after a failed
//! attempt (the intent has a `last_payment_error`) it is `failed`, with the error's code and
//! message; the library never re-confirms an intent with another card (it cancels it and a
//! new checkout makes a new intent), so for it the attempt is final. The intents of a hosted
//! checkout session are the exception: there the buyer may pay the same intent with another
//! card while the session is open, so a failed attempt is `requires_confirmation` (the
//! failure kept in `failure`) and the session's end decides. Without an error it is
//! `requires_confirmation`. Amounts are Stripe's smallest-unit integers, equal to
//! `amount_minor` (zero-decimal currencies such as KRW and JPY included: 50 000 KRW is
//! `amount=50000`).
//!
//! ## Errors
//!
//! Stripe's error object (`error.type`, `code`, `decline_code`, `message`,
//! `payment_intent`) becomes a [`GatewayError`](ticket_core::gateway::GatewayError): a
//! declined card on confirm is the failed intent (not an error); `idempotency_error` is
//! `KeyReused`; `429` is `RateLimited`; `404` is `NotFound`; a refusal for the intent's
//! status (`payment_intent_unexpected_state`) is `Conflict` with the intent's current
//! status; other `400`s are `Invalid`; `5xx`, `api_error` and connection failures are
//! `Unavailable`; a timeout is `Timeout`.
//!
//! ## Features
//!
//! `rustls` (default): HTTPS, as `api.stripe.com` requires (reqwest's rustls with the
//! webpki roots and the ring provider: a C compiler, no cmake). Without it the gateway speaks
//! plain HTTP to a loopback address only.

mod config;
mod form;
mod gateway;
mod objects;
pub mod webhook;

pub use config::{
    API_VERSION, ConfigError, DEFAULT_API_BASE, ENV_API_BASE, ENV_SECRET_KEY, StripeConfig,
};
pub use gateway::StripeGateway;
pub use webhook::{
    DEFAULT_TOLERANCE, SIGNATURE_HEADER, StripeWebhookSigner, StripeWebhookVerifier, WebhookError,
    parse_event,
};

/// The crate's README, compiled and run as a doctest so its examples keep working.
#[cfg(doctest)]
#[doc = include_str!("../README.md")]
pub struct ReadmeDoctests;
