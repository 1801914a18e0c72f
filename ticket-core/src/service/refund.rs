//! Cancellations that return money: quoted by the session's refund policy, decided once,
//! refunded through the payment provider exactly once, and recorded.
//!
//! A cancellation runs in three idempotent steps, so a crash between any two is finished by
//! running it again:
//! 1. CONFIRMED → CANCELLED, in one atomic store step that records the [`RefundDecision`]
//!    (basis, fee, amount, the rule applied) in the audit record's correlation id; the units
//!    go back on sale and the queue is woken (resale).
//! 2. The provider refunds the decided amount under a key per hold
//!    (`ticketrush-cancel-<hold>`), so a repeat never returns money twice.
//! 3. CANCELLED → REFUNDED, recording the provider's refund id and the rule.
//!
//! A retry after step 1 reads the decision back from the trail, so a fee is never computed
//! twice (the clock and the policy may have moved since).

use std::sync::Arc;

use crate::error::{Error, Refusal, Result};
use crate::gateway::{IntentId, PaymentGateway};
use crate::ids::{HoldId, SessionId, UserId};
use crate::model::audit::{Actor, AuditScope};
use crate::model::hold::{Hold, HoldState};
use crate::model::page::{AuditQuery, MAX_PAGE_LIMIT, PageOrder};
use crate::model::refund_policy::{CancellationQuote, RefundBasis, RefundDecision};
use crate::model::sale::SaleState;

use super::hold::owned;
use super::return_money::{MoneyBack, return_money};
use super::{AdmissionService, Context};

/// A reservation cancelled and refunded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CancellationOutcome {
    /// The reservation, now REFUNDED.
    pub hold: Hold,
    /// What the cancellation returned and why.
    pub decision: RefundDecision,
    /// The provider's refund id, or `none-<hold>` when nothing was paid or nothing is
    /// returned (a 100 % fee).
    pub refund_id: String,
}

/// What one pass of [`RefundService::refund_cancelled_show`] did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RefundRunReport {
    /// Reservations this pass cancelled and refunded (or finished refunding).
    pub refunded: u64,
    /// Reservations refunded before this pass.
    pub already_refunded: u64,
    /// HELD holds this pass released (nothing was paid).
    pub released: u64,
    /// PAYING holds left alone: their payment is still being decided. Run the pass again
    /// once it is (a hold confirmed later is refunded then).
    pub pending: u64,
    /// Reservations whose refund failed this pass (provider errors), with the error; run the
    /// pass again.
    pub failed: Vec<(HoldId, String)>,
}

impl RefundRunReport {
    /// Whether every reservation of the show is settled: nothing pending, nothing failed.
    pub fn is_complete(&self) -> bool {
        self.pending == 0 && self.failed.is_empty()
    }
}

/// Cancels confirmed reservations with refunds through one payment provider.
#[derive(Clone, Debug)]
pub struct RefundService {
    ctx: Context,
    admission: AdmissionService,
    gateway: Arc<dyn PaymentGateway>,
}

impl RefundService {
    pub(crate) fn new(
        ctx: Context,
        admission: AdmissionService,
        gateway: Arc<dyn PaymentGateway>,
    ) -> Self {
        Self {
            ctx,
            admission,
            gateway,
        }
    }

    /// What cancelling the buyer's reservation now would cost, by the session's refund
    /// policy: the fee, the refund, the rule, and until when the quote holds. A read that
    /// changes nothing. `NotOwner` for someone else's hold; `IllegalTransition` for a hold
    /// that is not CONFIRMED; `CancellationClosed` past the policy's deadline.
    pub async fn quote(&self, id: HoldId, user: &UserId) -> Result<CancellationQuote> {
        let hold = owned(&self.ctx, id, user).await?;
        if hold.state != HoldState::Confirmed {
            return Err(Refusal::IllegalTransition {
                from: hold.state,
                to: HoldState::Cancelled,
            }
            .into());
        }
        self.decide(&hold, RefundBasis::Policy).await
    }

    /// The buyer cancels their reservation under the refund policy; see the module docs.
    /// Refusals (`NotOwner`, `CancellationClosed`, `TicketUsed`, `IllegalTransition`) change
    /// nothing. Idempotent: a repeat finishes an interrupted cancellation or answers the
    /// finished one.
    pub async fn cancel(&self, id: HoldId, user: &UserId) -> Result<CancellationOutcome> {
        owned(&self.ctx, id, user).await?;
        self.cancel_as(
            id,
            Actor::User(user.clone()),
            RefundBasis::Policy,
            "cancelled by the buyer",
        )
        .await
    }

    /// Cancels a reservation on someone's behalf (an operator, or the system for a cancelled
    /// show), without an owner check, refunding by `basis`. Idempotent as
    /// [`RefundService::cancel`].
    pub async fn cancel_as(
        &self,
        id: HoldId,
        actor: Actor,
        basis: RefundBasis,
        reason: &str,
    ) -> Result<CancellationOutcome> {
        let hold = self.ctx.stores.reservations.get(id).await?;
        let (hold, decision) = match hold.state {
            HoldState::Confirmed => {
                let decision = self.decide(&hold, basis).await?.decision;
                let mut req = self.ctx.request(
                    id,
                    HoldState::Cancelled,
                    actor.clone(),
                    &format!("{reason}; {}", decision.rule),
                );
                req.correlation_id = Some(decision.encode());
                let out = self.ctx.stores.reservations.transition(req).await?;
                if out.changed {
                    self.admission.admit_next(out.hold.session).await?;
                    (out.hold, decision)
                } else {
                    // A concurrent call cancelled it first: follow its decision.
                    let decision = self.recorded_decision(&out.hold).await?;
                    (out.hold, decision)
                }
            }
            HoldState::Cancelled | HoldState::Refunded => {
                let decision = self.recorded_decision(&hold).await?;
                (hold, decision)
            }
            from => {
                return Err(Refusal::IllegalTransition {
                    from,
                    to: HoldState::Cancelled,
                }
                .into());
            }
        };
        if hold.state == HoldState::Refunded {
            let refund_id = self
                .ctx
                .last_record(hold.id, HoldState::Refunded)
                .await?
                .and_then(|r| r.correlation_id)
                .unwrap_or_else(|| format!("none-{id}"));
            return Ok(CancellationOutcome {
                hold,
                decision,
                refund_id,
            });
        }
        let refund_id = self.refund(&hold, &decision).await?;
        let mut req = self.ctx.request(
            id,
            HoldState::Refunded,
            actor,
            &format!(
                "refunded {} of {} ({})",
                decision.refund, decision.paid, decision.rule
            ),
        );
        req.correlation_id = Some(refund_id.clone());
        let out = self.ctx.stores.reservations.transition(req).await?;
        Ok(CancellationOutcome {
            hold: out.hold,
            decision,
            refund_id,
        })
    }

    /// One pass over every reservation of a cancelled show: confirmed ones are cancelled and
    /// refunded in full, interrupted refunds are finished, HELD holds are released.
    /// `SessionCancelled` is the precondition: on a session whose switch is not CANCELLED
    /// the answer is `IllegalSaleTransition` and nothing changes.
    ///
    /// Safe to run any number of times, from any number of processes: each reservation is
    /// refunded exactly once (its state machine and the provider's key per hold see to it).
    /// A pass reads the session's complete audit trail page by page (every hold has exactly
    /// one creation record there), so a pass after a crash finds every reservation the
    /// crashed one did not finish. Run passes until [`RefundRunReport::is_complete`].
    pub async fn refund_cancelled_show(
        &self,
        session: SessionId,
        actor: Actor,
    ) -> Result<RefundRunReport> {
        let switch = self.ctx.stores.sales.sale_switch(session).await?;
        if switch.state != SaleState::Cancelled {
            return Err(Refusal::IllegalSaleTransition {
                from: switch.state,
                to: SaleState::Cancelled,
            }
            .into());
        }
        let mut report = RefundRunReport::default();
        let mut after = None;
        loop {
            let page = self
                .ctx
                .stores
                .reservations
                .audit_page(&AuditQuery {
                    scope: AuditScope::Session(session),
                    order: PageOrder::OldestFirst,
                    after,
                    limit: MAX_PAGE_LIMIT,
                })
                .await?;
            for record in &page.items {
                let crate::model::audit::Subject::Hold(id) = record.subject else {
                    continue;
                };
                if record.from.is_some() {
                    continue;
                }
                self.settle_for_cancelled_show(id, &actor, &mut report)
                    .await?;
            }
            match page.next {
                Some(next) => after = Some(next),
                None => break,
            }
        }
        Ok(report)
    }

    async fn settle_for_cancelled_show(
        &self,
        id: HoldId,
        actor: &Actor,
        report: &mut RefundRunReport,
    ) -> Result<()> {
        let hold = self.ctx.stores.reservations.get(id).await?;
        match hold.state {
            HoldState::Held => {
                let out = self
                    .ctx
                    .stores
                    .reservations
                    .transition(self.ctx.request(
                        id,
                        HoldState::Released,
                        actor.clone(),
                        "the show was cancelled",
                    ))
                    .await;
                match out {
                    Ok(_) => report.released += 1,
                    // It moved meanwhile (paid, expired): the next pass sees where it went.
                    Err(Error::Refused(_)) => report.pending += 1,
                    Err(e) => return Err(e),
                }
            }
            HoldState::Paying => report.pending += 1,
            HoldState::Refunded => report.already_refunded += 1,
            HoldState::Confirmed | HoldState::Cancelled => {
                match self
                    .cancel_as(
                        id,
                        actor.clone(),
                        RefundBasis::Full,
                        "the show was cancelled",
                    )
                    .await
                {
                    Ok(_) => report.refunded += 1,
                    Err(Error::Payment(e)) => report.failed.push((id, e.to_string())),
                    Err(Error::Refused(r)) => report.failed.push((id, r.to_string())),
                    Err(e) => return Err(e),
                }
            }
            // Expired, released, failed holds paid nothing (a late payment is refunded by
            // the checkout's late-payment policy).
            _ => {}
        }
        Ok(())
    }

    /// The decision a cancellation of `hold` now makes by `basis`.
    async fn decide(&self, hold: &Hold, basis: RefundBasis) -> Result<CancellationQuote> {
        let session = self.ctx.session(hold.session).await?;
        let policy = self.ctx.stores.policies.policy(hold.session).await?;
        Ok(policy.refund.decide(
            hold.id,
            hold.amount,
            session.starts_at,
            self.ctx.clock.now(),
            basis,
        )?)
    }

    /// The decision recorded when `hold` was cancelled. A cancellation recorded without one
    /// (by [`crate::service::CancelService`], or before refund policies existed) returned
    /// everything.
    async fn recorded_decision(&self, hold: &Hold) -> Result<RefundDecision> {
        let record = self.ctx.last_record(hold.id, HoldState::Cancelled).await?;
        if let Some(d) = record
            .as_ref()
            .and_then(|r| r.correlation_id.as_deref())
            .and_then(RefundDecision::decode)
        {
            return Ok(d);
        }
        Ok(RefundDecision {
            basis: RefundBasis::Full,
            paid: hold.amount,
            fee: crate::model::money::Money {
                amount_minor: 0,
                currency: hold.amount.currency,
            },
            refund: hold.amount,
            fee_bps: 0,
            rule: "full refund".to_owned(),
        })
    }

    /// Returns the decided amount through the provider, once: the key is per hold. A free
    /// reservation calls nobody; a 100 % fee returns nothing (an uncaptured authorization is
    /// captured whole for it).
    async fn refund(&self, hold: &Hold, decision: &RefundDecision) -> Result<String> {
        let (Some(payment), true) = (&hold.payment_ref, hold.amount.amount_minor > 0) else {
            return Ok(format!("none-{}", hold.id));
        };
        let intent = IntentId::new(payment.clone()).map_err(Error::Payment)?;
        // An authorization never captured is captured for the fee only (or voided): what
        // the buyer gets back was never taken.
        let back = return_money(
            self.gateway.as_ref(),
            &intent,
            Some(decision.refund.amount_minor),
            &decision.rule,
            &format!("ticketrush-cancel-{}", hold.id),
        )
        .await?;
        match back {
            MoneyBack::Refunded(Some(refund)) => Ok(refund.id),
            MoneyBack::Refunded(None) if decision.refund.amount_minor == 0 => {
                Ok(format!("none-{}", hold.id))
            }
            MoneyBack::Refunded(None) | MoneyBack::Voided | MoneyBack::KeptOnly { .. } => {
                Ok(intent.to_string())
            }
        }
    }
}
