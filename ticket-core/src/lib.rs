//! # ticket-core
//!
//! The heart of ticketrush: the domain model of a ticket rush (events, sessions, stock,
//! waiting queue, holds, payments, audit), the storage traits every backend implements, the
//! services that orchestrate the flows, an in-memory backend, and the conformance suite that
//! states the contract.
//!
//! ```
//! use std::sync::Arc;
//! use ticket_core::{memory::MemoryStore, SystemClock, TicketRush, TimeLimits};
//!
//! let rush = TicketRush::new(MemoryStore::new().stores(), Arc::new(SystemClock), TimeLimits::default())
//!     .expect("default limits are valid");
//! # let _ = rush;
//! ```
//!
//! See `examples/quickstart` for the whole flow: join → admit → hold → pay → confirm.
//!
//! ## Guarantees
//! Every backend, proven by `testkit`:
//! * **No oversell**: `available + held + sold == capacity` at every instant; a hold takes all
//!   of its units or seats or none.
//! * **Fair queue**: FIFO admission behind a pre-queue shuffled once at the open with a
//!   recorded seed; one live ticket per user and session; a length cap (`QueueFull`).
//! * **Expiry**: a hold or admission past its TTL is unusable at once; a sweeper returns its
//!   units exactly once however many sweepers race.
//! * **State machine**: illegal transitions are typed errors; repeated ones are idempotent;
//!   every change appends one audit record.
//! * **Idempotency**: one execution per key; replays return the stored outcome.
//! * **Gate**: a ticket is checked in once, only while its reservation is CONFIRMED and only
//!   at its own session; a check-in and a cancellation of the same reservation are atomic
//!   with respect to each other, so a holder is never both let in and refunded.
//!
//! ## Layout
//! [`model`] (plain data and pure rules) · [`store`] (one trait per concept) · [`service`]
//! (flows) · [`memory`] (in-memory backend) · [`backend`] (for backend authors: request
//! coalescing, rule tables for scripts and SQL) · `testkit` (conformance suite, feature
//! `testkit`) · [`clock`] · [`config`] · [`error`].

pub mod backend;
pub mod clock;
pub mod config;
pub mod error;
pub mod gateway;
pub mod ids;
pub mod memory;
pub mod model;
pub mod service;
pub mod store;
#[cfg(feature = "testkit")]
pub mod testkit;

pub use clock::{Clock, ManualClock, SystemClock, Timestamp};
pub use config::TimeLimits;
pub use error::{Error, InvalidInput, Refusal, Result};
pub use ids::{EventId, HoldId, SessionId, TicketId, UserId};
pub use service::TicketRush;
pub use store::Stores;

/// The crate's README, compiled and run as a doctest so its quickstart keeps working (the
/// workspace README's are run by `ticketrush-e2e`: a published crate holds only its own
/// directory).
#[cfg(doctest)]
#[doc = include_str!("../README.md")]
pub struct ReadmeDoctests;
