use async_trait::async_trait;

use crate::clock::Timestamp;
use crate::error::Result;
use crate::ids::{SessionId, UserId};
use crate::model::queue::{
    AdmissionPacing, AdmissionRound, InLine, JoinRequest, PreQueueDraw, QueueStats, QueueTicket,
    QueueView,
};

/// A session's waiting queue.
///
/// Guarantees, for every backend:
/// * **One live ticket per (user, session)**: joining while WAITING or ACTIVE returns that
///   ticket, with the same position. After USED, EXPIRED or LEFT a join issues a new ticket
///   at the back.
/// * **Length cap**: a join that would make the line longer than `max_waiting` is refused
///   with `QueueFull` and changes nothing.
/// * **Fair start**: joins flagged `pre_queue` before the draw wait unordered; the draw
///   shuffles them once with a recorded seed ([`crate::model::queue::draw_order`]), and they
///   go ahead of everyone who joins after it, who are served FIFO. The first FIFO join or
///   admission after the open performs the draw if [`WaitingQueue::draw`] was not called.
/// * **FIFO admission**: nobody is admitted while someone earlier in line is still waiting.
/// * **Pacing**: a round never makes more than `max_active` tickets ACTIVE at once, never
///   admits more than `max_per_minute` in any 60-second window, and stops while the units
///   on sale cannot serve another admitted user (stock-aware). ACTIVE tickets past their
///   expiry stop counting at once.
/// * **Position** and **ETA** are computed in O(log n).
#[async_trait]
pub trait WaitingQueue: Send + Sync {
    /// Joins the queue (idempotent per user and session while the ticket is live).
    async fn join(&self, req: JoinRequest) -> Result<QueueTicket>;

    /// The user's current ticket with position, ETA and stock outlook; `NotFound` if the
    /// user never joined.
    async fn view(&self, session: SessionId, user: &UserId, now: Timestamp) -> Result<QueueView>;

    /// Admits the next users in line, as many as the pacing allows.
    async fn admit(
        &self,
        session: SessionId,
        pacing: AdmissionPacing,
        now: Timestamp,
    ) -> Result<AdmissionRound>;

    /// Leaves the queue: a WAITING or ACTIVE ticket becomes LEFT (idempotent: leaving again
    /// returns the LEFT ticket). Refused with `NotInQueue` for a ticket that already ended
    /// otherwise.
    async fn leave(&self, session: SessionId, user: &UserId, now: Timestamp)
    -> Result<QueueTicket>;

    /// Shuffles the pre-queue with `seed`, once. Later calls, whatever their seed, return
    /// the recorded draw unchanged.
    async fn draw(&self, session: SessionId, seed: u64, now: Timestamp) -> Result<PreQueueDraw>;

    /// The recorded draw, if it happened.
    async fn recorded_draw(&self, session: SessionId) -> Result<Option<PreQueueDraw>>;

    /// Aggregate figures.
    async fn stats(&self, session: SessionId, now: Timestamp) -> Result<QueueStats>;

    /// The WAITING tickets with a place in line after `after` (`None`: from the head), in
    /// line order, at most
    /// `limit` (`1..=MAX_PAGE_LIMIT`): a keyset-paged read of the line (pre-queue tickets
    /// have no place until the draw). With the change feed followed from a sequence read
    /// before the first page, a reader keeps an exact copy of the line and derives every
    /// waiting user's position without a store read per user. `NotFound` for an unknown
    /// session.
    async fn waiting_line(
        &self,
        session: SessionId,
        after: Option<u64>,
        limit: usize,
    ) -> Result<Vec<InLine>>;
}
