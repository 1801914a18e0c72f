use async_trait::async_trait;

use crate::error::Result;
use crate::ids::{EventId, SessionId};
use crate::model::counts::SessionCounts;
use crate::model::inventory::InventorySnapshot;
use crate::model::session::{Event, Session};

/// Sessions and their stock.
///
/// Guarantees, for every backend:
/// * Stock is created whole with the event: every unit and seat starts available.
/// * Counters never go below zero nor above capacity, and
///   `available + held + sold == capacity` holds for every grade at every instant a
///   snapshot can observe (stock only moves inside [`crate::store::Reservations`] operations,
///   each atomic).
/// * A snapshot is consistent: all counters and seat states are read at one instant.
#[async_trait]
pub trait Inventory: Send + Sync {
    /// Registers an event and its sessions with all stock available.
    ///
    /// Idempotent: creating the same event again is `Ok`; a different definition under an
    /// existing event or session id is `Invalid(Definition)` and changes nothing.
    async fn create_event(&self, event: &Event) -> Result<()>;

    /// The event, or `NotFound`.
    async fn event(&self, id: EventId) -> Result<Event>;

    /// Every stored event, ordered by id, starting after `after` (exclusive; `None` starts
    /// at the first) and at most `limit` of them: keyset paging.
    ///
    /// Event ids are UUIDv7, so id order is creation order. A read that changes nothing.
    /// Paging with `after` set to the last id of the previous page returns each event
    /// exactly once over all pages, whatever was created in between; an event created
    /// concurrently with the paging may or may not appear (it appears at most once). An
    /// empty page means there is nothing after `after`. `limit == 0` answers an empty page.
    async fn events(&self, after: Option<EventId>, limit: usize) -> Result<Vec<Event>>;

    /// The session, or `NotFound`.
    async fn session(&self, id: SessionId) -> Result<Session>;

    /// A consistent snapshot of the session's stock, or `NotFound`.
    async fn snapshot(&self, id: SessionId) -> Result<InventorySnapshot>;

    /// The session's units by state per grade and holds by state, all read at one instant,
    /// or `NotFound`. Maintained in the same atomic step as every change, so the read costs
    /// the same whatever the number of holds (no scan of holds or audit records).
    async fn counts(&self, id: SessionId) -> Result<SessionCounts>;
}
