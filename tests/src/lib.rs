//! End-to-end harness: the whole checkout (ticket-core services on a backend, the payment
//! sandbox, signed webhooks over HTTP to a verifying receiver) and the fault matrix that
//! proves it under duplicate, delayed, reordered and failed deliveries.

pub mod backends;
pub mod counting_gateway;
pub mod fault_matrix;
pub mod receiver;
pub mod shop;

/// The workspace README's code blocks, compiled and run as doctests so its quickstart keeps
/// working (here, in a crate that is never published, since the README is outside every
/// published crate's directory).
#[cfg(doctest)]
#[doc = include_str!("../../README.md")]
pub struct ReadmeDoctests;
