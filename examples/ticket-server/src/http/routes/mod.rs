//! Route groups, one module per resource; the admin routes are grouped under [`admin`].

pub mod admin;
pub mod auth;
pub mod catalog;
pub mod demo_page;
pub mod gate_page;
pub mod holds;
pub mod meta;
pub mod my_events;
pub mod notifications;
pub mod oauth;
pub mod payments;
pub mod queue;
pub mod queue_events;
pub mod reservations;
pub mod tickets;
pub mod wallet;
pub mod wallet_topups;
