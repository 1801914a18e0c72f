//! The storage traits: one concept each. Every backend implements all of them and proves it
//! with the `crate::testkit` conformance suite.
//!
//! Each operation that must be atomic is one trait method ("hold N if available", "move from
//! state A to B"), never a load/save pair, so a backend can make it one Lua script or one SQL
//! statement. Every method whose outcome depends on time receives the instant it runs at
//! (from the service's [`crate::Clock`]), so expiry is decided by the same clock in every
//! backend and tests can move time.

mod change_feed;
mod deliveries;
mod idempotency;
mod inventory;
mod leases;
mod policy;
mod queue;
mod reservations;
mod sale_control;

use std::sync::Arc;

pub use change_feed::{ChangeFeed, ChangeSubscription};
pub use deliveries::DeliveryLog;
pub use idempotency::IdempotencyStore;
pub use inventory::Inventory;
pub use leases::Leases;
pub use policy::SalesPolicyStore;
pub use queue::WaitingQueue;
pub use reservations::Reservations;
pub use sale_control::SaleControl;

/// The stores a set of services runs on, as trait objects so the backend can be chosen at
/// run time.
#[derive(Clone)]
pub struct Stores {
    /// Waiting queue.
    pub queue: Arc<dyn WaitingQueue>,
    /// Sessions and stock.
    pub inventory: Arc<dyn Inventory>,
    /// Holds, their state machine and the audit trail.
    pub reservations: Arc<dyn Reservations>,
    /// Sales policies.
    pub policies: Arc<dyn SalesPolicyStore>,
    /// Idempotency records.
    pub idempotency: Arc<dyn IdempotencyStore>,
    /// Every session's change feed.
    pub feed: Arc<dyn ChangeFeed>,
    /// Notification deliveries and dispatcher checkpoints.
    pub deliveries: Arc<dyn DeliveryLog>,
    /// Leases for periodic jobs shared by several processes.
    pub leases: Arc<dyn Leases>,
    /// The organiser's sale switch and capacity changes.
    pub sales: Arc<dyn SaleControl>,
}

impl Stores {
    /// Every store from one backend that implements every trait.
    pub fn from_backend<B>(backend: Arc<B>) -> Self
    where
        B: WaitingQueue
            + Inventory
            + Reservations
            + SalesPolicyStore
            + IdempotencyStore
            + ChangeFeed
            + DeliveryLog
            + Leases
            + SaleControl
            + 'static,
    {
        Self {
            queue: backend.clone(),
            inventory: backend.clone(),
            reservations: backend.clone(),
            policies: backend.clone(),
            idempotency: backend.clone(),
            feed: backend.clone(),
            deliveries: backend.clone(),
            leases: backend.clone(),
            sales: backend,
        }
    }
}

impl std::fmt::Debug for Stores {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Stores { .. }")
    }
}
