//! Route groups, one module each.

pub mod admin;
pub mod auth;
pub mod catalog;
pub mod demo_page;
pub mod holds;
mod params;
pub mod payments;
pub mod policy;
pub mod queue;
pub mod queue_events;
pub mod reservations;
pub mod security_audit;
pub mod tickets;
pub mod users;
pub mod wallet;
pub mod wallet_topups;
