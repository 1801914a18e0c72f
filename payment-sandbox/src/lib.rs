//! # payment-sandbox
//!
//! A fake payment provider to test a checkout against, faults included: teams run their
//! ticketrush checkout on it instead of a real provider.
//!
//! * **Gateway**: [`Sandbox`] implements [`ticket_core::gateway::PaymentGateway`] in-process,
//!   with a PaymentIntent state machine modelled on the big providers ([`intent`]):
//!   `requires_confirmation` → `processing` → `succeeded` | `failed`, `canceled` before any
//!   charge, full and partial refunds after success (never above the amount). Amounts are
//!   integer minor units of a supported currency. [`http::router`] serves the same sandbox as
//!   a REST API (axum), with `Idempotency-Key` on creation and refunds, and
//!   [`client::HttpGateway`] is the trait over that API, for apps with several processes.
//! * **Outcomes by test card** ([`cards`]): `4242424242424242` succeeds,
//!   `4000000000000002` is declined, `4000000000009995` has insufficient funds, one number
//!   succeeds only after a delay, one never answers. The full table is in [`cards`].
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
#![warn(missing_docs)]

pub mod cards;
pub mod client;
pub mod delivery;
pub mod error;
pub mod faults;
pub mod gateway;
pub mod http;
pub mod intent;
pub mod signature;

pub use error::SandboxError;
pub use gateway::{Sandbox, SandboxConfig};
