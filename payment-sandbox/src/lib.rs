//! A fake payment provider for ticketrush (not implemented yet; tracked as an open issue).
//!
//! This crate will hold a PaymentIntent state machine modelled on the big providers, an
//! in-process and an HTTP (axum) gateway, webhooks signed per the Standard Webhooks scheme
//! with seeded delay / duplicate / reorder / drop faults, and the verifier a receiver uses.
//!
//! It deliberately contains no code yet: nothing here pretends to work before it does.
#![warn(missing_docs)]
