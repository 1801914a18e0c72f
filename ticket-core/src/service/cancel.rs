//! Cancellation (units go back on sale: resale) and refunds.

use crate::error::{Refusal, Result};
use crate::ids::{HoldId, UserId};
use crate::model::audit::Actor;
use crate::model::hold::{Hold, HoldState};

use super::hold::owned;
use super::{AdmissionService, Context};

/// Cancels confirmed reservations and records refunds.
#[derive(Clone, Debug)]
pub struct CancelService {
    ctx: Context,
    admission: AdmissionService,
}

impl CancelService {
    pub(crate) fn new(ctx: Context, admission: AdmissionService) -> Self {
        Self { ctx, admission }
    }

    /// The buyer cancels a confirmed reservation: CONFIRMED → CANCELLED, its units go back
    /// on sale at once and the queue is woken (resale). Idempotent. Refused with
    /// `TicketUsed` once a ticket of it was checked in at the gate (atomically with the
    /// check-in: see [`crate::service::GateService`]). The refund is owed from
    /// here on: issue it with the payment provider, then call [`CancelService::record_refund`].
    pub async fn cancel(&self, id: HoldId, user: &UserId, reason: &str) -> Result<Hold> {
        owned(&self.ctx, id, user).await?;
        self.cancel_as(id, Actor::User(user.clone()), reason).await
    }

    /// Cancels on behalf of the business (an operator or the system), without an owner check.
    pub async fn cancel_as(&self, id: HoldId, actor: Actor, reason: &str) -> Result<Hold> {
        let out = self
            .ctx
            .stores
            .reservations
            .transition(self.ctx.request(id, HoldState::Cancelled, actor, reason))
            .await?;
        if out.changed {
            self.admission.admit_next(out.hold.session).await?;
        }
        Ok(out.hold)
    }

    /// Records that the money of a CANCELLED reservation was returned: CANCELLED → REFUNDED.
    /// Idempotent; refunding twice is impossible because the second call finds REFUNDED.
    /// Refused with `IllegalTransition` for a hold that is not CANCELLED (refunds of late
    /// payments are decided by [`crate::service::PaymentService::succeeded`]).
    pub async fn record_refund(&self, id: HoldId, refund_ref: &str, actor: Actor) -> Result<Hold> {
        let hold = self.ctx.stores.reservations.get(id).await?;
        if !matches!(hold.state, HoldState::Cancelled | HoldState::Refunded) {
            return Err(Refusal::IllegalTransition {
                from: hold.state,
                to: HoldState::Refunded,
            }
            .into());
        }
        let mut req = self.ctx.request(id, HoldState::Refunded, actor, "refunded");
        req.correlation_id = Some(refund_ref.to_owned());
        let out = self.ctx.stores.reservations.transition(req).await?;
        Ok(out.hold)
    }
}
