//! The domain model: plain data and pure rules, no I/O.

pub mod audit;
pub mod change;
pub mod check_in;
pub mod counts;
pub mod delivery;
pub mod hold;
pub mod idempotency;
pub mod inventory;
pub mod money;
pub mod page;
pub mod policy;
pub mod queue;
pub mod refund_policy;
pub mod sale;
pub mod selection;
pub mod session;
