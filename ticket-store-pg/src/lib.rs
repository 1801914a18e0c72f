//! PostgreSQL backend for ticketrush (not implemented yet; tracked as an open issue).
//!
//! This crate will implement every `ticket-core` storage trait on PostgreSQL with sqlx:
//! embedded migrations applied by an explicit `migrate()`, a schema whose constraints make
//! overselling impossible (`CHECK (available >= 0)`, unique live seat holds), one-statement
//! hot paths and a `FOR UPDATE SKIP LOCKED` sweeper. It will run the `ticket_core::testkit`
//! conformance suite against a real database.
//!
//! It deliberately contains no code yet: nothing here pretends to work before it does.
#![warn(missing_docs)]
