//! The ticketrush example server: the whole ticket rush over HTTP on any backend (REST,
//! Server-Sent Events, a demo page, `/openapi.json`, `/metrics`). This crate is the
//! application around the library: accounts, a wallet, ticket codes and the HTTP API live
//! here; the ticket rush itself lives in `ticket-core`. The README's "The example server"
//! section lists every route.
//!
//! Everything correctness needs is stored in the chosen backend (memory, Redis or
//! PostgreSQL), never only in one process's memory, so several server processes can share
//! one Redis or PostgreSQL.

pub mod account_tiers;
pub mod accounts;
pub mod admin;
pub mod admission_rounds;
pub mod app;
pub mod auth;
pub mod background;
pub mod blocking;
pub mod client_ip;
pub mod config;
pub mod demo;
pub mod error;
pub mod extract;
pub mod metrics;
pub mod openapi;
mod pg_support;
pub mod rate_limit;
mod redis_support;
pub mod routes;
pub mod security_audit;
pub mod state;
pub mod throttle;
pub mod tickets;
pub mod wallet;
