//! Route groups, one module each.

pub mod admin;
pub mod auth;
pub mod catalog;
pub mod reservations;
pub mod rush;
