//! Route groups, one module each.

pub mod auth;
pub mod catalog;
pub mod rush;
