//! # payment-sandbox
//!
//! A fake payment provider to test a checkout against, faults included: teams run their
//! ticketrush checkout on it instead of a real provider.
//!
//! * **Gateway**: [`Sandbox`] implements [`ticket_core::gateway::PaymentGateway`] in-process,
//!   with a PaymentIntent state machine modelled on the big providers ([`intent`], diagram
//!   below): `requires_confirmation` → `processing` → `succeeded` | `failed`, `canceled`
//!   before any charge, full and partial refunds after success (never above what was
//!   received). Amounts are integer minor units of a supported currency.
//!   [`PaymentGateway::capabilities`](ticket_core::gateway::PaymentGateway::capabilities)
//!   says all of manual capture, partial capture and hosted checkout
//!   ([`http::CAPABILITIES`]).
//! * **Manual capture** (authorize, then capture): an intent created with
//!   `capture_method: manual` stops at `requires_capture` once its card is accepted
//!   (`payment_intent.amount_capturable_updated`); it is captured (all or part: the rest is
//!   released; idempotent per key) with
//!   [`PaymentGateway::capture`](ticket_core::gateway::PaymentGateway::capture), voided with
//!   `void` / `cancel`, or canceled by the sandbox itself (`payment_intent.canceled`) when
//!   its [`SandboxConfig::authorization_lifetime`] (7 days, scaled by the time scale) ends.
//! * **Hosted payment page** (checkout sessions):
//!   [`PaymentGateway::create_checkout_session`](ticket_core::gateway::PaymentGateway::create_checkout_session)
//!   answers a session whose `url` (under [`SandboxConfig::public_url`]) is the buyer's page
//!   ([`http::hosted_page_router`]): a plain HTML form that takes a test card, asks for a
//!   one-time code when the card wants a challenge, and sends the buyer back to the
//!   session's `return_url` with `session_id=<id>`. Declines leave the session open for
//!   another card; a session expires at its `expires_at` or when expired through the API.
//!   In-process: [`Sandbox::pay_checkout_session`], [`Sandbox::answer_checkout_challenge`].
//! * **HTTP**: [`http::router`] serves the same sandbox as
//!   a REST API (axum), with `Idempotency-Key` on creation, capture, refunds and checkout
//!   sessions, plus the buyer's page; [`client::HttpGateway`] is the trait over that API,
//!   for apps with several processes.
//! * **API key** ([`auth`]): every `/v1` HTTP route needs `Authorization: Bearer sk_test_…`
//!   ([`auth::ApiKey`], passed to [`http::router`] / [`http::serve`] and to
//!   [`client::HttpGateway::new`]); without it, or with another, `401` and nothing changes.
//!   The binary takes `--api-key` (or `PAYMENT_SANDBOX_KEY`), or makes one and prints it
//!   once. The in-process [`Sandbox`] needs no key, nor does the buyer's page (`/pay/…`).
//! * **Outcomes by test card** ([`cards`], table below).
//! * **Webhooks** ([`delivery`]) signed per the Standard Webhooks scheme ([`signature`]):
//!   `webhook-id`, `webhook-timestamp`, `webhook-signature: v1,<base64 HMAC-SHA256>` with
//!   `whsec_` secrets, or `v1a,<base64 ed25519>` with `whsk_`/`whpk_` keys; several
//!   signatures during a rotation. Delivery follows the scheme's advice: request timeout,
//!   retry schedule (immediately, 5 s, 5 min, 30 min, 2 h, …) under a time scale, `410 Gone`
//!   disables the endpoint, `429`/`503` honour `Retry-After`; a delivery log records every
//!   attempt. Each event carries a per-intent `sequence`.
//! * **Faults** ([`faults`]), per endpoint, seeded and reproducible: delay, duplicate,
//!   reorder, fail the first N attempts, corrupt the signature.
//! * **Verifier** ([`signature::Verifier`]) for receivers: constant-time comparison,
//!   timestamp tolerance, any one valid signature passes, typed errors.
//! * **Webhook URLs** ([`webhook_url`]) are checked when an endpoint is registered (absolute
//!   `http://` with a host, no credentials, no fragment, at most 2 048 bytes), and the
//!   delivery client never follows redirects: a `3xx` is a failed attempt, retried and logged.
//!
//! ## Intents
//!
//! ```text
//!                        ┌──(challenge card)──► requires_action ──code 123456──┐
//!                        │                         │     └──other code──► failed
//! requires_confirmation ─┴──confirm──► processing ◄┘
//!          │                             ├──► failed
//!          │                             ├──(automatic)──► succeeded ──refund*──► (refunded ≤ received)
//!          │                             └──(manual)──► requires_capture ──capture──► succeeded
//!          │                                                 │  (void, authorization expiry)
//!          └──cancel (also from requires_action)──► canceled ◄┘
//! ```
//!
//! Events: `payment_intent.processing`, then `.succeeded` or `.payment_failed`; for a manual
//! capture `.amount_capturable_updated` once authorized, then `.succeeded` at the capture or
//! `.canceled` at a void or the authorization's expiry; `.requires_action` when a card asks
//! for a challenge; `charge.refunded` per refund. Each intent's events carry a strictly
//! increasing `sequence`.
//!
//! ## Test cards
//!
//! | card number | outcome |
//! |---|---|
//! | `4242424242424242` | succeeds at once (manual capture: authorized at once) |
//! | `4000000000000002` | declined: `card_declined` |
//! | `4000000000009995` | declined: `insufficient_funds` |
//! | `4000000000000069` | declined: `expired_card` |
//! | `4000000000000127` | declined: `incorrect_cvc` |
//! | `4000000000000119` | fails: `processing_error` |
//! | `4000000000003220` | stays `processing`, succeeds (or is authorized) after [`SandboxConfig::slow_delay`] |
//! | `4000000000000341` | stays `processing`, declined after the same delay |
//! | `4000000000000101` | never answers: confirm times out, the intent stays `processing` |
//! | `4000002760003184` | asks for a challenge: `requires_action`; the one-time code `123456` pays, any other fails it (`authentication_failed`) |
//! | any other 12–19 digit number passing the Luhn check | succeeds at once |
//!
//! ## Hosted payment page
//!
//! | route | does |
//! |---|---|
//! | `POST /v1/checkout_sessions` (API key) | open a session: `amount_minor`, `currency`, `capture_method`, `return_url`, `description`, `metadata`, `expires_at_ms`; `Idempotency-Key` |
//! | `GET /v1/checkout_sessions/{id}` (API key) | read it |
//! | `POST /v1/checkout_sessions/{id}/expire` (API key) | open → expired; `409` once complete |
//! | `GET /pay/{id}` | the buyer's form (`410` expired, "already paid" once complete) |
//! | `POST /pay/{id}` | one payment attempt: `303` to `return_url?…&session_id=<id>` when paid or authorized, the form again with the reason (`402`) when declined, the one-time-code form for a challenge card |
//! | `POST /pay/{id}/challenge` | the one-time code |
//! | `GET /pay/{id}/cancel` | `303` to `return_url?…&session_id=<id>&canceled=1`; the session stays open |
//!
//! Each attempt is an intent of the session's amount, capture method and metadata whose
//! `checkout_session` names the session; the session's `intent` is the latest attempt. A
//! session is `complete` once an attempt succeeded, was authorized, or stays processing
//! (a slow card: its outcome comes by webhook as for any intent).
//!
//! ## Bounded memory
//!
//! A long rush cannot exhaust the sandbox's memory: [`SandboxConfig`] bounds what it keeps.
//!
//! | field | default | past it |
//! |---|---|---|
//! | [`SandboxConfig::max_intents`] | 100 000 | the oldest *settled* intent is evicted (succeeded, failed or canceled, every webhook about it delivered or abandoned); an intent still `requires_confirmation`, `requires_action`, `processing` or `requires_capture`, or with webhooks on their way, never is; when none can go, creation answers `503` (`GatewayError::Unavailable`) and nothing changes |
//! | [`SandboxConfig::max_refunds`] | 100 000 | the oldest refund whose intent has no webhook on its way is evicted |
//! | [`SandboxConfig::max_delivery_log`] | 100 000 | the oldest attempts leave the log (the counters keep counting) |
//! | [`SandboxConfig::max_endpoints`] | 100 | registering another is refused (`409 limit_reached`) |
//! | [`SandboxConfig::max_sessions`] | 100 000 | the oldest complete or expired checkout session is evicted with its idempotency key; an open one never is; when all are open, creation answers `503` |
//!
//! An evicted intent or refund is forgotten whole, its idempotency key included: reading it
//! answers `404` like an unknown one, a refund of an evicted intent too, and a request
//! repeated with its key is a new request. Size the bounds above the number of payments one
//! run must still see (the rush's checks list every intent and refund).
//!
//! Where the trait lives: `PaymentGateway` is defined in `ticket-core` (which must not
//! depend on any provider) and implemented here; see [`ticket_core::gateway`].
//!
//! ```no_run
//! use payment_sandbox::{Sandbox, SandboxConfig};
//! use payment_sandbox::delivery::EndpointConfig;
//!
//! # async fn demo() -> Result<(), Box<dyn std::error::Error>> {
//! let sandbox = Sandbox::new(SandboxConfig::default())?;
//! let endpoint = sandbox.register_endpoint(EndpointConfig {
//!     url: "http://127.0.0.1:8080/webhooks/payments".into(),
//!     ..EndpointConfig::default()
//! })?;
//! // Give `endpoint.verification_key` (a `whsec_…` secret) to the receiver's verifier.
//! # let _ = endpoint;
//! # Ok(()) }
//! ```
//!
//! ## Features
//!
//! | feature | what |
//! |---|---|
//! | *(always)* | [`signature`]: the signer and the receiver's verifier, nothing else (no async runtime, no HTTP stack) |
//! | `server` | [`Sandbox`], [`delivery`], [`http`] (router and server), [`intent`], with the shared types below |
//! | `client` | [`client::HttpGateway`], with the shared types below |
//! | `cli` | the `payment-sandbox` binary; implies `server` |
//!
//! `server` and `client` share the API's types: [`auth::ApiKey`], [`cards`], [`faults`],
//! [`webhook_url`], [`error::SandboxError`], the endpoint types of [`delivery`] and the bodies
//! of [`http`].
#![cfg_attr(docsrs, feature(doc_cfg))]

#[cfg(any(feature = "server", feature = "client"))]
pub mod auth;
#[cfg(feature = "server")]
mod book;
#[cfg(any(feature = "server", feature = "client"))]
pub mod cards;
#[cfg(feature = "client")]
pub mod client;
#[cfg(any(feature = "server", feature = "client"))]
pub mod delivery;
#[cfg(any(feature = "server", feature = "client"))]
pub mod error;
#[cfg(any(feature = "server", feature = "client"))]
pub mod faults;
#[cfg(feature = "server")]
pub mod gateway;
#[cfg(any(feature = "server", feature = "client"))]
pub mod http;
#[cfg(feature = "server")]
pub mod intent;
pub mod signature;
#[cfg(any(feature = "server", feature = "client"))]
pub mod webhook_url;

#[cfg(any(feature = "server", feature = "client"))]
pub use error::SandboxError;
#[cfg(feature = "server")]
pub use gateway::{Sandbox, SandboxConfig};

/// The crate's README, compiled and run as a doctest (its quickstart must work).
#[cfg(doctest)]
#[doc = include_str!("../README.md")]
pub struct ReadmeDoctests;
