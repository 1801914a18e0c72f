//! A buyer's reservations beyond the library's single-hold calls: a user's holds page by page,
//! the quote of a cancellation, and cancelling a confirmed one by the session's refund
//! policy (or on a buyer's behalf, by the policy or in full).
//!
//! The cancellation is the library's [`ticket_core::service::RefundService`]: the decision
//! (fee, refund, rule) is made once and recorded with CONFIRMED → CANCELLED (the units go
//! back on sale at once and the next waiting user is admitted), the decided amount is
//! refunded through the provider (its idempotency key is per hold, so no money goes back
//! twice), and the refund is recorded (CANCELLED → REFUNDED). Every step is idempotent, so a
//! retry after a failure part-way finishes the job with the first decision.

use ticket_core::model::audit::Actor;
use ticket_core::model::hold::HoldState;
use ticket_core::model::page::{HoldCursor, HoldPage};
use ticket_core::model::refund_policy::{CancellationQuote, RefundBasis, RefundDecision};
use ticket_core::service::{CancellationOutcome, CheckoutService};
use ticket_core::{Error, HoldId, TicketRush, UserId};

/// Why a buyer's cancellation happened, as recorded in the audit trail and at the provider.
pub const CANCEL_REASON: &str = "cancelled by the buyer";

/// A reservation cancelled and refunded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Cancelled {
    /// The reservation (hold).
    pub id: HoldId,
    /// Its state now: `Refunded`.
    pub state: HoldState,
    /// The provider's refund (or a `none-…` reference for a free reservation or a 100 %
    /// fee).
    pub refund_id: Option<String>,
    /// What the cancellation returned and why (the fee, the rule).
    pub decision: RefundDecision,
}

/// A page of `user`'s holds across sessions, newest first by `(created_at, id)`, after
/// `after`: one keyset read of the library's per-user index (no audit scan, no read per
/// hold). `limit` is `1..=500`.
pub async fn holds_page(
    rush: &TicketRush,
    user: &UserId,
    after: Option<HoldCursor>,
    limit: usize,
) -> Result<HoldPage, Error> {
    rush.stores()
        .reservations
        .holds_of_user(user, after, limit)
        .await
}

/// Cancels hold `id` of `user` by the session's refund policy (the fee the quote showed is
/// kept, the rest goes back) and records the refund, through the library's
/// [`ticket_core::service::RefundService`]. Every step is idempotent, so a retry after a
/// failure part-way finishes the job with the decision made the first time.
pub async fn cancel_and_refund(
    rush: &TicketRush,
    checkout: &CheckoutService,
    id: HoldId,
    user: &UserId,
) -> Result<Cancelled, Error> {
    let done = rush
        .refunds(checkout.gateway().clone())
        .cancel(id, user)
        .await?;
    tracing::info!(hold = %id, refund = %done.refund_id, fee = %done.decision.fee, "reservation cancelled by the buyer");
    Ok(cancelled(done))
}

/// Cancels hold `id` on a buyer's behalf (an admin), refunding by `basis`, whoever owns it.
/// Idempotent as [`cancel_and_refund`].
pub async fn cancel_on_behalf(
    rush: &TicketRush,
    checkout: &CheckoutService,
    id: HoldId,
    actor: Actor,
    basis: RefundBasis,
    reason: &str,
) -> Result<Cancelled, Error> {
    let done = rush
        .refunds(checkout.gateway().clone())
        .cancel_as(id, actor, basis, reason)
        .await?;
    tracing::info!(hold = %id, refund = %done.refund_id, fee = %done.decision.fee, "reservation cancelled on the buyer's behalf");
    Ok(cancelled(done))
}

fn cancelled(done: CancellationOutcome) -> Cancelled {
    Cancelled {
        id: done.hold.id,
        state: done.hold.state,
        refund_id: Some(done.refund_id),
        decision: done.decision,
    }
}

/// What cancelling `user`'s reservation `id` now would cost (a read).
pub async fn quote(
    rush: &TicketRush,
    checkout: &CheckoutService,
    id: HoldId,
    user: &UserId,
) -> Result<CancellationQuote, Error> {
    rush.refunds(checkout.gateway().clone())
        .quote(id, user)
        .await
}
