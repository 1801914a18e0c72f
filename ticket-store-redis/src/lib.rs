//! Redis backend for ticketrush (not implemented yet; tracked as the next issue).
//!
//! This crate will implement every `ticket-core` storage trait on Redis so that many app
//! servers can sell one session together: each atomic operation is one Lua script called by
//! SHA, keys carry a Redis Cluster hash tag per session (`{s:<id>}`), and the crate runs the
//! `ticket_core::testkit` conformance suite against a real Redis.
//!
//! It deliberately contains no code yet: nothing here pretends to work before it does.
#![warn(missing_docs)]
