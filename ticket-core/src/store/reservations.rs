use async_trait::async_trait;

use crate::clock::Timestamp;
use crate::error::Result;
use crate::ids::{HoldId, SessionId, UserId};
use crate::model::audit::{AuditRecord, AuditScope};
use crate::model::check_in::{CheckInOutcome, CheckInRequest, TicketUse};
use crate::model::hold::{Hold, NewHold, RebookRequest, TransitionOutcome, TransitionRequest};
use crate::model::page::{AuditPage, AuditQuery, HoldCursor, HoldPage};

/// Holds, their state machine, and the audit trail.
///
/// Guarantees, for every backend:
/// * [`hold`](Reservations::hold) is **one atomic step**: it checks the per-user limit
///   (HELD + PAYING + CONFIRMED units in the session, not counting holds past their TTL),
///   consumes the user's ACTIVE admission when required, takes every unit or seat asked for
///   or none (`SoldOut` / `SeatsUnavailable`), writes the hold and its audit record. No
///   oversell, whatever the concurrency.
/// * [`transition`](Reservations::transition) follows [`crate::model::hold::decide`]: legal
///   moves apply with their stock effect and an audit record in one atomic step; repeating a
///   move that already happened returns the hold unchanged (`changed: false`); illegal ones
///   are `IllegalTransition` and change nothing. A hold past its TTL asked to move toward
///   payment is expired in the same step and the answer is `HoldExpired`. CONFIRMED →
///   CANCELLED is refused with `TicketUsed` when a ticket of the hold was checked in
///   ([`crate::model::check_in::blocked_by_check_in`]), checked in the same atomic step.
/// * [`check_in`](Reservations::check_in) is **one atomic step** with every transition of
///   the same hold: a scan and a cancellation of one reservation exclude each other, so a
///   holder is never both let in and refunded.
/// * [`expire_due`](Reservations::expire_due) claims due holds atomically: however many
///   sweepers race, each hold is expired (and its units returned) exactly once.
/// * Every state change appends exactly one [`AuditRecord`].
/// * The reads [`holds_of_user`](Reservations::holds_of_user) and
///   [`audit_page`](Reservations::audit_page) come from indexes written in the same atomic
///   step as each change: complete (no cap, no scan of other users' data), ordered, and
///   stable under keyset paging while writers write.
#[async_trait]
pub trait Reservations: Send + Sync {
    /// Creates a hold; see the trait docs.
    async fn hold(&self, req: NewHold) -> Result<Hold>;

    /// The hold, or `NotFound`.
    async fn get(&self, id: HoldId) -> Result<Hold>;

    /// Moves a hold to another state; see the trait docs.
    async fn transition(&self, req: TransitionRequest) -> Result<TransitionOutcome>;

    /// Checks ticket `req.ticket` of hold `req.hold` in at the gate of session `req.session`,
    /// in one atomic step with every other change of the hold:
    /// * an unknown hold is `NotFound`; otherwise the refusals of
    ///   [`crate::model::check_in::decide_check_in`] (`WrongSession`, `TicketOutOfRange`,
    ///   `NotConfirmed`) change nothing;
    /// * a ticket not used yet is marked used by `req.gate` at `req.now`, an audit record
    ///   (hold subject, `VALID` → `USED`, actor `Operator(gate)`) is appended, and the answer
    ///   is `FirstUse`; of any number of racing scans of one ticket exactly one gets it;
    /// * a ticket used before answers `AlreadyUsed` with the first mark; nothing is written.
    ///
    /// `InvalidInput::CheckIn` for a malformed request (nothing runs).
    async fn check_in(&self, req: CheckInRequest) -> Result<CheckInOutcome>;

    /// The tickets of hold `id` checked in so far, by ticket number; `NotFound` for an unknown
    /// hold. A read that changes nothing.
    async fn check_ins(&self, id: HoldId) -> Result<Vec<TicketUse>>;

    /// Late payment: the payment for the ended hold `id` (EXPIRED, RELEASED or
    /// PAYMENT_FAILED) succeeded.
    /// Atomically takes the same units or seats again as a new CONFIRMED hold carrying
    /// `payment_ref`, and links the two (`rebooked_as` / `rebooked_from`). Idempotent: a
    /// hold already re-booked returns the existing new hold. `SoldOut` / `SeatsUnavailable`
    /// when the units were resold; `LimitExceeded` when the buyer's held and bought units
    /// plus these would pass `per_user_limit`; `IllegalTransition` for a hold in any other
    /// state. Refusals change nothing.
    async fn rebook(&self, req: RebookRequest) -> Result<Hold>;

    /// Expires up to `limit` live holds whose TTL passed by `now`, returning the holds this
    /// call expired (each hold is returned by exactly one call, ever).
    async fn expire_due(&self, now: Timestamp, limit: usize) -> Result<Vec<Hold>>;

    /// Up to `limit` PAYING holds whose TTL ends at or before `before` (past-due ones
    /// included until a sweeper expires them), soonest expiry first, across every session.
    /// A read that changes nothing: the checkout polls the payment provider for these, so a
    /// checkout whose webhook never arrives is resolved before its hold expires.
    async fn paying_due(&self, before: Timestamp, limit: usize) -> Result<Vec<Hold>>;

    /// The user's holds in the session, in creation order.
    async fn holds_of(&self, session: SessionId, user: &UserId) -> Result<Vec<Hold>>;

    /// Audit records in `scope`, oldest first, at most `limit`.
    async fn audit(&self, scope: &AuditScope, limit: usize) -> Result<Vec<AuditRecord>>;

    /// The user's holds across every session, newest first by `(created_at, id)`, starting
    /// strictly after `after`, at most `limit` (`1..=MAX_PAGE_LIMIT`, else
    /// `InvalidInput::PageLimit`). Each hold is read as it is now. Paging returns every hold
    /// that existed when the paging started exactly once; an unknown user has no holds.
    async fn holds_of_user(
        &self,
        user: &UserId,
        after: Option<HoldCursor>,
        limit: usize,
    ) -> Result<HoldPage>;

    /// A page of the audit trail of `query.scope`, ordered by `(at, id)` in `query.order`,
    /// starting strictly after `query.after`. Complete (every record ever written, no cap)
    /// and stable under paging. `InvalidInput::PageLimit` for a bad page size; an unknown
    /// hold, session or user has an empty trail.
    async fn audit_page(&self, query: &AuditQuery) -> Result<AuditPage>;
}
