use async_trait::async_trait;

use crate::error::Result;
use crate::ids::SessionId;
use crate::model::sale::{
    CapacityChange, CapacityOutcome, SaleStateChange, SaleStateOutcome, SaleSwitch,
};

/// The organiser's controls over a session's sale: the sale switch and capacity changes.
///
/// Guarantees, for every backend:
/// * [`set_sale_state`](SaleControl::set_sale_state) is **one atomic step**: it follows
///   [`crate::model::sale::decide_sale_transition`] (`IllegalSaleTransition` changes
///   nothing; a repeat answers `changed: false` and writes nothing), stores the switch, and
///   appends one audit record (subject [`crate::model::audit::Subject::Session`], `from`/`to`
///   the switch's names, owner the actor's id) and its change-feed event.
/// * [`crate::store::Reservations::hold`] and [`crate::store::Reservations::rebook`] read the
///   switch **in the same atomic step** as they take stock: once `set_sale_state` to PAUSED,
///   CLOSED or CANCELLED returned, no hold is made (`SalesPaused`, `SalesClosed`,
///   `SessionCancelled`), so in the session's feed no `HoldCreated` follows the
///   `SalePaused` change until a `SaleResumed`. Payments of holds made before go on.
/// * [`change_capacity`](SaleControl::change_capacity) is **one atomic step** with every hold:
///   it applies [`crate::model::sale::CapacityDelta::apply_to`] to the current plan, moves
///   the stock (`available` and `capacity` by the same amount, so
///   `available + held + sold == capacity` holds at every instant), stores the new plan
///   ([`crate::store::Inventory::session`] answers it from then on) and appends one audit
///   record (`to` = [`crate::model::sale::CAPACITY_CHANGED`]) and its change. Units or seats
///   that are held or sold never go: `CapacityInUse` / `SeatsUnavailable` change nothing.
///   A removed seat can no longer be held (`UnknownItem` or `SeatsUnavailable`).
/// * A cancelled show is final: its switch moves no more (`IllegalSaleTransition`) and its
///   capacity does not change (`SessionCancelled`).
#[async_trait]
pub trait SaleControl: Send + Sync {
    /// The session's switch, or `NotFound`. A read that changes nothing.
    async fn sale_switch(&self, session: SessionId) -> Result<SaleSwitch>;

    /// Moves the switch; see the trait docs. `Invalid` for a malformed request.
    async fn set_sale_state(&self, req: SaleStateChange) -> Result<SaleStateOutcome>;

    /// Changes what the session sells; see the trait docs. `Invalid` for a malformed
    /// request.
    async fn change_capacity(&self, req: CapacityChange) -> Result<CapacityOutcome>;
}
