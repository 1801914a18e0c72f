//! Checkout: start payment, confirm it, fail it, and settle payments that arrive late.

use serde::{Deserialize, Serialize};

use crate::error::{Error, Refusal, Result};
use crate::ids::{HoldId, UserId};
use crate::model::audit::Actor;
use crate::model::hold::{Hold, HoldState, RebookRequest};

use super::hold::owned;
use super::{AdmissionService, Context};

/// What to do with a payment that succeeds after its hold ended (expired or released).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub enum LatePaymentPolicy {
    /// Take the same units again if they are still on sale and the buyer's per-user limit
    /// allows (a new CONFIRMED hold),
    /// otherwise refund.
    RebookOrRefund,
    /// Always refund.
    AlwaysRefund,
}

/// Why a payment must be refunded.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum RefundReason {
    /// The payment arrived after the hold ended and could not be (or by policy was not)
    /// re-booked. The hold is now REFUNDED.
    LatePayment,
    /// A second, different payment for a hold that is already paid.
    DuplicatePayment,
    /// The provider charged another amount or currency than the hold's price; the hold is
    /// PAYMENT_FAILED.
    AmountMismatch,
}

/// The outcome of a successful payment.
#[derive(Debug, Clone, PartialEq, Eq)]
#[must_use = "a Refund settlement means money must be returned"]
#[non_exhaustive]
pub enum Settlement {
    /// This payment is settled by this hold: confirmed now, or by an earlier report of the
    /// same payment (the hold may since have been cancelled or refunded).
    Confirmed(Hold),
    /// The hold had ended; its units were taken again as a new CONFIRMED hold.
    Rebooked {
        /// The ended hold (EXPIRED, RELEASED or PAYMENT_FAILED, now linked to `confirmed`).
        ended: Hold,
        /// The new, confirmed hold.
        confirmed: Hold,
    },
    /// Nothing was sold for this payment: return the money. For a late payment `first` is
    /// true for exactly one report (the one that moved the hold to REFUNDED), so a caller
    /// that refunds only when `first` never refunds twice. A duplicate payment changes no
    /// state, so `first` is always true: deduplicate its reports by the provider's event id
    /// (the idempotency layer does this for webhooks) and refund with the provider's own
    /// idempotency key.
    Refund {
        /// The hold, as it stands.
        hold: Hold,
        /// The payment to refund.
        payment_ref: String,
        /// Why.
        reason: RefundReason,
        /// Whether this call decided the refund.
        first: bool,
    },
}

/// How a payment failure report was handled.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FailureOutcome {
    /// The live hold moved to PAYMENT_FAILED (or already was); its units are back on sale.
    Failed(Hold),
    /// The hold had already ended or been paid: a stale failure changes nothing.
    Ignored(Hold),
}

/// Checkout flow.
#[derive(Clone, Debug)]
pub struct PaymentService {
    ctx: Context,
    admission: AdmissionService,
    late: LatePaymentPolicy,
}

impl PaymentService {
    pub(crate) fn new(ctx: Context, admission: AdmissionService, late: LatePaymentPolicy) -> Self {
        Self {
            ctx,
            admission,
            late,
        }
    }

    /// The same service with another late-payment policy.
    pub fn with_late_payment_policy(mut self, late: LatePaymentPolicy) -> Self {
        self.late = late;
        self
    }

    /// The buyer starts checkout: HELD → PAYING, recording the provider's reference.
    /// `HoldExpired` past the TTL (the hold is expired on the spot).
    ///
    /// `SessionCancelled` once the organiser cancelled the show (final, so this check
    /// cannot race a later change; a checkout that started just before is settled by
    /// [`crate::service::RefundService::refund_cancelled_show`]).
    pub async fn start(&self, id: HoldId, user: &UserId, payment_ref: &str) -> Result<Hold> {
        let hold = owned(&self.ctx, id, user).await?;
        let switch = self.ctx.stores.sales.sale_switch(hold.session).await?;
        if switch.state == crate::model::sale::SaleState::Cancelled
            && let Some(refusal) = switch.refusal()
        {
            return Err(refusal.into());
        }
        let mut req = self.ctx.request(
            id,
            HoldState::Paying,
            Actor::User(user.clone()),
            "checkout started",
        );
        req.payment_ref = Some(payment_ref.to_owned());
        req.correlation_id = Some(payment_ref.to_owned());
        match self.ctx.stores.reservations.transition(req).await {
            Ok(out) => Ok(out.hold),
            Err(e @ Error::Refused(Refusal::HoldExpired { .. })) => {
                // The store expired the hold on the spot: its units are back, wake the queue.
                let hold = self.ctx.stores.reservations.get(id).await?;
                self.admission.admit_next(hold.session).await?;
                Err(e)
            }
            Err(e) => Err(e),
        }
    }

    /// The provider reports that payment `payment_ref` for hold `id` succeeded.
    ///
    /// Safe to call any number of times, in any order with [`PaymentService::failed`]:
    /// a live hold is confirmed; a hold that ended follows the late-payment policy
    /// (re-book or refund, recorded in the audit trail: never a silent loss); a hold paid by
    /// another payment yields a `DuplicatePayment` refund.
    pub async fn succeeded(&self, id: HoldId, payment_ref: &str) -> Result<Settlement> {
        let reservations = &self.ctx.stores.reservations;
        let hold = reservations.get(id).await?;
        let actor = Actor::system("payments");
        if let Some(other) = hold.payment_ref.as_deref().filter(|p| *p != payment_ref)
            && matches!(
                hold.state,
                HoldState::Confirmed | HoldState::Cancelled | HoldState::Refunded
            )
        {
            tracing::warn!(hold = %id, paid_by = other, duplicate = payment_ref, "second payment for a paid hold");
            return Ok(duplicate(hold, payment_ref));
        }
        if hold.state == HoldState::Held {
            let mut req =
                self.ctx
                    .request(id, HoldState::Paying, actor.clone(), "payment reported");
            req.payment_ref = Some(payment_ref.to_owned());
            match reservations.transition(req).await {
                Ok(_) | Err(Error::Refused(Refusal::HoldExpired { .. })) => {}
                Err(e) => return Err(e),
            }
        }
        let mut req =
            self.ctx
                .request(id, HoldState::Confirmed, actor.clone(), "payment succeeded");
        req.payment_ref = Some(payment_ref.to_owned());
        req.correlation_id = Some(payment_ref.to_owned());
        match reservations.transition(req).await {
            Ok(out) => Ok(Settlement::Confirmed(out.hold)),
            Err(Error::Refused(
                Refusal::HoldExpired { .. } | Refusal::IllegalTransition { .. },
            )) => {
                let settlement = self.settle_late(id, payment_ref, actor).await?;
                if matches!(settlement, Settlement::Refund { first: true, .. }) {
                    // The hold may have just been expired on the spot: wake the queue.
                    self.admission.admit_next(hold.session).await?;
                }
                Ok(settlement)
            }
            Err(e) => Err(e),
        }
    }

    /// Settles a payment whose hold ended. Reports of one payment can race (a webhook, a
    /// duplicate, the poller, the checkout itself): one may re-book while another refunds.
    /// A refusal saying the hold moved meanwhile is answered by looking again, so every
    /// racer returns the outcome that stands.
    async fn settle_late(&self, id: HoldId, payment_ref: &str, actor: Actor) -> Result<Settlement> {
        let mut tries = 0;
        loop {
            tries += 1;
            match self.settle_late_once(id, payment_ref, actor.clone()).await {
                Err(Error::Refused(Refusal::IllegalTransition { .. })) if tries < 3 => {}
                other => return other,
            }
        }
    }

    async fn settle_late_once(
        &self,
        id: HoldId,
        payment_ref: &str,
        actor: Actor,
    ) -> Result<Settlement> {
        let reservations = &self.ctx.stores.reservations;
        let hold = reservations.get(id).await?;
        match hold.state {
            HoldState::Confirmed | HoldState::Cancelled => return Ok(Settlement::Confirmed(hold)),
            HoldState::Refunded
                if self
                    .ctx
                    .last_record(id, HoldState::Cancelled)
                    .await?
                    .is_some() =>
            {
                // This payment bought the reservation, which was then cancelled: the
                // cancellation returned what its policy returns (a fee may be kept), so a late
                // report of the payment has nothing left to give back.
                return Ok(Settlement::Confirmed(hold));
            }
            HoldState::Refunded if hold.rebooked_as.is_none() => {
                return Ok(Settlement::Refund {
                    hold,
                    payment_ref: payment_ref.to_owned(),
                    reason: RefundReason::LatePayment,
                    first: false,
                });
            }
            _ => {}
        }
        if self.late == LatePaymentPolicy::RebookOrRefund || hold.rebooked_as.is_some() {
            let now = self.ctx.clock.now();
            let policy = self.ctx.stores.policies.policy(hold.session).await?;
            let req = RebookRequest {
                hold: id,
                new_id: HoldId::new_at(now),
                payment_ref: payment_ref.to_owned(),
                per_user_limit: policy.max_units_per_user,
                actor: actor.clone(),
                now,
            };
            match reservations.rebook(req).await {
                Ok(confirmed) if confirmed.payment_ref.as_deref() != Some(payment_ref) => {
                    // Already re-booked with another payment: this one bought nothing.
                    return Ok(duplicate(confirmed, payment_ref));
                }
                Ok(confirmed) => {
                    let ended = reservations.get(id).await?;
                    return Ok(Settlement::Rebooked { ended, confirmed });
                }
                Err(Error::Refused(
                    Refusal::SoldOut { .. }
                    | Refusal::SeatsUnavailable { .. }
                    | Refusal::LimitExceeded { .. }
                    | Refusal::UnknownItem { .. }
                    | Refusal::SalesPaused
                    | Refusal::SalesClosed { .. }
                    | Refusal::SessionCancelled { .. },
                )) => {}
                Err(e) => return Err(e),
            }
        }
        let mut req = self.ctx.request(
            id,
            HoldState::Refunded,
            actor,
            "late payment: units no longer available to this buyer",
        );
        req.correlation_id = Some(payment_ref.to_owned());
        let out = reservations.transition(req).await?;
        Ok(Settlement::Refund {
            hold: out.hold,
            payment_ref: payment_ref.to_owned(),
            reason: RefundReason::LatePayment,
            first: out.changed,
        })
    }

    /// The provider reports that payment for hold `id` failed: a live hold becomes
    /// PAYMENT_FAILED, its units go back on sale and the queue is woken. A failure that
    /// arrives after the hold was paid or ended, or that names another payment than the one
    /// checkout started with, changes nothing ([`FailureOutcome::Ignored`]).
    pub async fn failed(
        &self,
        id: HoldId,
        payment_ref: &str,
        reason: &str,
    ) -> Result<FailureOutcome> {
        let reservations = &self.ctx.stores.reservations;
        let hold = reservations.get(id).await?;
        let other_payment = hold
            .payment_ref
            .as_deref()
            .is_some_and(|p| p != payment_ref);
        if other_payment || (!hold.state.is_live() && hold.state != HoldState::PaymentFailed) {
            return Ok(FailureOutcome::Ignored(hold));
        }
        let mut req = self.ctx.request(
            id,
            HoldState::PaymentFailed,
            Actor::system("payments"),
            reason,
        );
        req.correlation_id = Some(payment_ref.to_owned());
        match reservations.transition(req).await {
            Ok(out) => {
                if out.changed {
                    self.admission.admit_next(out.hold.session).await?;
                }
                Ok(FailureOutcome::Failed(out.hold))
            }
            // Raced with confirmation or expiry: the other outcome stands.
            Err(Error::Refused(Refusal::IllegalTransition { .. })) => {
                Ok(FailureOutcome::Ignored(reservations.get(id).await?))
            }
            Err(e) => Err(e),
        }
    }
}

impl PaymentService {
    /// A confirmed reservation whose payment `payment_ref` turned out to take no money (an
    /// authorization that ended before capture) is cancelled: CONFIRMED → CANCELLED, its
    /// units go back on sale and the queue is woken. Idempotent; a hold confirmed by another
    /// payment, or no longer confirmed, is left as it is.
    pub(crate) async fn cancel_unpaid(
        &self,
        id: HoldId,
        payment_ref: &str,
        reason: &str,
    ) -> Result<Hold> {
        let reservations = &self.ctx.stores.reservations;
        let hold = reservations.get(id).await?;
        if hold.state != HoldState::Confirmed || hold.payment_ref.as_deref() != Some(payment_ref) {
            return Ok(hold);
        }
        let mut req = self
            .ctx
            .request(id, HoldState::Cancelled, Actor::system("payments"), reason);
        req.correlation_id = Some(payment_ref.to_owned());
        match reservations.transition(req).await {
            Ok(out) => {
                if out.changed {
                    self.admission.admit_next(out.hold.session).await?;
                }
                Ok(out.hold)
            }
            Err(Error::Refused(Refusal::IllegalTransition { .. })) => reservations.get(id).await,
            Err(e) => Err(e),
        }
    }
}

fn duplicate(hold: Hold, payment_ref: &str) -> Settlement {
    Settlement::Refund {
        hold,
        payment_ref: payment_ref.to_owned(),
        reason: RefundReason::DuplicatePayment,
        first: true,
    }
}
