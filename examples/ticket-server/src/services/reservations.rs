//! A buyer's reservations beyond the library's single-hold calls: a user's holds page by page, and
//! cancelling a confirmed one with a full refund.
//!
//! A cancellation puts the units back on sale at once and the library admits the next
//! waiting user; the payment is then refunded through the provider (its idempotency key is
//! per hold, so no money goes back twice) and the refund is recorded on the hold
//! (CANCELLED → REFUNDED). Every step is idempotent, so a retry after a failure part-way
//! finishes the job.

use ticket_core::gateway::{GatewayError, IntentId, RefundRequest};
use ticket_core::model::audit::{Actor, AuditScope};
use ticket_core::model::hold::HoldState;
use ticket_core::model::page::{AuditQuery, HoldCursor, HoldPage, MAX_PAGE_LIMIT, PageOrder};
use ticket_core::service::CheckoutService;
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
    /// The provider's refund (or a `none-…` reference for a free reservation); `None` only
    /// when a reservation refunded earlier has no refund recorded in its trail.
    pub refund_id: Option<String>,
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

/// Cancels hold `id` of `user`, refunds its payment in full and records the refund. Every
/// step is idempotent, so a retry after a failure part-way finishes the job.
pub async fn cancel_and_refund(
    rush: &TicketRush,
    checkout: &CheckoutService,
    id: HoldId,
    user: &UserId,
) -> Result<Cancelled, Error> {
    let current = rush.holds.get(id, user).await?;
    if current.state == HoldState::Refunded {
        // Finished earlier (under another key): answer as then.
        return Ok(Cancelled {
            id,
            state: HoldState::Refunded,
            refund_id: recorded_refund(rush, id).await?,
        });
    }
    let hold = rush.cancellations.cancel(id, user, CANCEL_REASON).await?;
    let refund_id = match &hold.payment_ref {
        Some(payment) => refund_in_full(checkout, id, payment).await?,
        // Nothing was paid (a free reservation): nothing to return.
        None => format!("none-{id}"),
    };
    let hold = rush
        .cancellations
        .record_refund(id, &refund_id, Actor::User(user.clone()))
        .await?;
    Ok(Cancelled {
        id: hold.id,
        state: hold.state,
        refund_id: Some(refund_id),
    })
}

/// Refunds everything left of the payment `payment` of hold `id`; the provider's key is per
/// hold, so a repeat returns the first refund. When the provider says the intent cannot be
/// refunded and it turns out already refunded in full (by some other refund), the intent's
/// id stands as the refund's reference.
async fn refund_in_full(
    checkout: &CheckoutService,
    id: HoldId,
    payment: &str,
) -> Result<String, Error> {
    let intent = IntentId::new(payment.to_owned()).map_err(Error::Payment)?;
    let gateway = checkout.gateway();
    let req = RefundRequest {
        intent: intent.clone(),
        amount_minor: None,
        reason: CANCEL_REASON.to_owned(),
        idempotency_key: format!("ticketrush-cancel-{id}"),
    };
    match gateway.refund(req).await {
        Ok(refund) => {
            tracing::info!(hold = %id, refund = %refund.id, "cancelled reservation refunded");
            Ok(refund.id)
        }
        Err(conflict @ GatewayError::Conflict { .. }) => {
            let now = gateway.get_intent(&intent).await.map_err(Error::Payment)?;
            if now.fully_refunded() {
                tracing::info!(hold = %id, intent = %intent, "payment was already refunded");
                Ok(intent.to_string())
            } else {
                Err(Error::Payment(conflict))
            }
        }
        Err(e) => Err(Error::Payment(e)),
    }
}

/// The refund reference recorded when hold `id` became REFUNDED, if any: the hold's
/// newest audit records (a hold has a handful; REFUNDED is its last state).
async fn recorded_refund(rush: &TicketRush, id: HoldId) -> Result<Option<String>, Error> {
    let page = rush
        .stores()
        .reservations
        .audit_page(&AuditQuery {
            scope: AuditScope::Hold(id),
            order: PageOrder::NewestFirst,
            after: None,
            limit: MAX_PAGE_LIMIT,
        })
        .await?;
    Ok(page
        .items
        .into_iter()
        .find(|r| r.to == HoldState::Refunded.as_str())
        .and_then(|r| r.correlation_id))
}
