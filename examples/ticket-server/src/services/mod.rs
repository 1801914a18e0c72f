//! The app's rules that are neither HTTP nor storage, called by the handlers in
//! [`crate::http::routes`] and by the background jobs.

pub mod account_tiers;
pub mod admission_rounds;
pub mod auth;
pub mod blocking;
pub mod catalog;
pub mod hashing;
pub mod login;
pub mod oauth;
pub mod payments;
pub mod refund_runs;
pub mod reservations;
pub mod session_stats;
pub mod sign_in;
pub mod tickets;
pub mod topups;
pub mod wallet_gateway;
