//! Route groups, one module each.

pub mod admin;
pub mod auth;
pub mod catalog;
pub mod queue_events;
pub mod reservations;
pub mod rush;
pub mod wallet;
