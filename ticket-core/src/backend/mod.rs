//! Building blocks for backend authors: what a storage backend needs beyond the
//! [`crate::store`] traits, written once so every backend behaves alike.
//!
//! * [`coalesce`]: group commit. Concurrent requests of one kind are sent to the store as
//!   one call (one script run, one transaction), with bounded batch sizes, bounded batches
//!   in flight, exclusivity per key and one rule for failures.
//! * [`fenwick`]: order-statistic counts over places in line, for queue positions in
//!   O(log n) (the memory backend's, and a live view's that copies the line).
//! * [`encoding`]: the tables and code strings a backend hands to code that runs inside the
//!   store (a Lua script, a PL/pgSQL function), so that a domain rule of [`crate::model`]
//!   is written once in Rust and only looked up where atomicity demands it.
//!
//! Nothing here talks to a store: backends supply the call that runs a batch and the
//! encoding of each request, and keep only that part.

pub mod coalesce;
pub mod encoding;
pub mod fenwick;
