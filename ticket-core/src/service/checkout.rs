//! Checkout against a payment provider: start a payment, apply the provider's results
//! (webhooks), and poll the provider for checkouts whose result never came.
//!
//! The service talks only to a [`PaymentGateway`] and the stores. Its guarantees:
//! * **Once per event**: [`CheckoutService::handle_event`] runs at most once per event id
//!   (the `webhook-id`, through the idempotency layer); a duplicate delivery gets the stored
//!   result.
//! * **Once per intent**: the hold's state machine makes every result idempotent: a success
//!   confirms a hold once, a second success report changes nothing, a failure after a
//!   success changes nothing, refunds use the provider's idempotency key
//!   `ticketrush-refund-<intent>` so no money goes back twice.
//! * **Order does not matter**: events are applied for what they say about the intent, and
//!   the hold only moves forward, so delayed and reordered deliveries end in the same state.
//! * **Nobody pays for nothing**: a payment that succeeds after its hold ended is re-booked
//!   or, when its units were resold, refunded automatically (the hold becomes REFUNDED, an
//!   audit record names the intent).
//! * **No lost results**: [`CheckoutService::reconcile`] polls the provider for PAYING holds
//!   close to expiry, so a checkout whose webhook never arrives is resolved before its hold
//!   expires; an intent never confirmed is canceled at the provider so it can never charge.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::error::{Error, Refusal, Result};
use crate::gateway::{
    EventKind, GatewayError, HOLD_METADATA_KEY, IntentId, IntentStatus, NewIntent, PaymentEvent,
    PaymentGateway, PaymentIntent, Refund, RefundRequest,
};
use crate::ids::{HoldId, UserId};
use crate::model::hold::{Hold, HoldState};
use crate::model::idempotency::IdempotencyKey;

use super::hold::owned;
use super::{Context, FailureOutcome, Idempotency, PaymentService, RefundReason, Settlement};

/// What a provider result did to the ticket side.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "outcome", rename_all = "snake_case")]
#[non_exhaustive]
pub enum PaymentResult {
    /// The hold is confirmed by this payment (now, or by an earlier report).
    Confirmed {
        /// The confirmed hold.
        hold: Hold,
    },
    /// The payment came after its hold ended; the same units were taken again.
    Rebooked {
        /// The ended hold, linked to `confirmed`.
        ended: Hold,
        /// The new, confirmed hold.
        confirmed: Hold,
    },
    /// Nothing was sold for this payment and the money was returned.
    Refunded {
        /// The hold, as it stands.
        hold: Hold,
        /// Why.
        reason: RefundReason,
        /// The refund, or `None` when an earlier refund had already returned everything.
        refund: Option<Refund>,
    },
    /// The payment failed; the hold is PAYMENT_FAILED and its units are back on sale.
    Failed {
        /// The hold.
        hold: Hold,
    },
    /// Nothing to do: the intent is still processing, the event is stale, or the intent was
    /// not made by this checkout.
    Ignored {
        /// Why.
        reason: String,
    },
}

/// A started checkout.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Checkout {
    /// The hold, as it stands after the start (PAYING, or already settled).
    pub hold: Hold,
    /// The provider's intent, as last seen.
    pub intent: Option<PaymentIntent>,
    /// The result, when the provider answered at once (a success or a decline); `None`
    /// while it is processing or did not answer: a webhook or [`CheckoutService::reconcile`]
    /// will settle it.
    pub result: Option<PaymentResult>,
}

/// Counters of one [`CheckoutService::reconcile`] pass.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct ReconcileReport {
    /// PAYING holds looked at.
    pub polled: usize,
    /// Confirmed (or re-booked) from the provider's answer.
    pub confirmed: usize,
    /// Failed: declined, or canceled here because never confirmed.
    pub failed: usize,
    /// Refunded (late or mismatched payments).
    pub refunded: usize,
    /// Still processing at the provider: left to expire; a success that still comes follows
    /// the late-payment policy.
    pub pending: usize,
    /// The provider could not be asked (try again next pass).
    pub errors: usize,
}

/// Checkout over one payment provider. Cheap to clone.
#[derive(Clone, Debug)]
pub struct CheckoutService {
    ctx: Context,
    payments: PaymentService,
    idempotency: Idempotency,
    gateway: Arc<dyn PaymentGateway>,
}

/// The idempotency key scope of provider events.
const EVENT_SCOPE: &str = "payment-provider-event";

impl CheckoutService {
    pub(crate) fn new(
        ctx: Context,
        payments: PaymentService,
        idempotency: Idempotency,
        gateway: Arc<dyn PaymentGateway>,
    ) -> Self {
        Self {
            ctx,
            payments,
            idempotency,
            gateway,
        }
    }

    /// The provider this checkout talks to.
    pub fn gateway(&self) -> &Arc<dyn PaymentGateway> {
        &self.gateway
    }

    /// The buyer pays hold `id` with `payment_method`.
    ///
    /// Creates the provider intent (idempotent per hold: a retried call reuses it), moves
    /// the hold HELD → PAYING with the intent as payment reference, then confirms the intent.
    /// A hold past its TTL is `HoldExpired` before any intent exists, also when the sweeper
    /// expires it while the checkout starts (the unused intent is canceled).
    /// A malformed payment method is refused by the provider before the hold changes. Calling
    /// it again for a hold already in checkout returns that checkout (confirming the intent
    /// if an earlier confirmation never reached the provider). A hold priced at zero is
    /// confirmed without the provider.
    pub async fn begin(&self, id: HoldId, user: &UserId, payment_method: &str) -> Result<Checkout> {
        let hold = owned(&self.ctx, id, user).await?;
        if hold.state == HoldState::Paying
            && let Some(r) = hold.payment_ref.as_deref()
        {
            // Confirming again is harmless, and completes a confirmation that never reached
            // the provider.
            return self.confirm_and_settle(hold.id, &IntentId::new(r)?).await;
        }
        if hold.state == HoldState::Expired || hold.is_due(self.ctx.clock.now()) {
            // Refused before an intent exists, so nothing can be charged for it (a due hold's
            // units go back with the next sweep).
            return Err(Refusal::HoldExpired {
                expired_at: hold.expires_at,
            }
            .into());
        }
        if hold.amount.amount_minor == 0 {
            return self.confirm_free(hold, user).await;
        }
        let intent = self
            .gateway
            .create_intent(NewIntent {
                amount: hold.amount,
                payment_method: payment_method.to_owned(),
                metadata: BTreeMap::from([(HOLD_METADATA_KEY.to_owned(), id.to_string())]),
                idempotency_key: format!("ticketrush-checkout-{id}"),
            })
            .await?;
        if let Err(e) = self.payments.start(id, user, intent.id.as_str()).await {
            // A racing call for the same hold started checkout with this very intent (the
            // provider's key is per hold): join it rather than cancel the intent under it.
            if let Ok(now) = self.ctx.stores.reservations.get(id).await
                && now.payment_ref.as_deref() == Some(intent.id.as_str())
            {
                return self.confirm_and_settle(id, &intent.id).await;
            }
            // The sweeper may have expired the hold since it was read: say so as such.
            let e = match e {
                Error::Refused(Refusal::IllegalTransition {
                    from: HoldState::Expired,
                    ..
                }) => Refusal::HoldExpired {
                    expired_at: hold.expires_at,
                }
                .into(),
                e => e,
            };
            // Never confirmed: cancel so it can never charge (best effort; an intent left in
            // requires_confirmation charges nothing either).
            if let Err(c) = self.gateway.cancel_intent(&intent.id).await {
                tracing::warn!(intent = %intent.id, "could not cancel an unused intent: {c}");
            }
            return Err(e);
        }
        self.confirm_and_settle(id, &intent.id).await
    }

    /// Confirms the intent and settles the hold when the answer is final. A transient
    /// failure leaves it to the webhook or the poller; an intent canceled meanwhile (the
    /// poller gave up on it) is settled from what it is now.
    async fn confirm_and_settle(&self, hold: HoldId, intent: &IntentId) -> Result<Checkout> {
        let confirmed = match self.gateway.confirm_intent(intent).await {
            Err(GatewayError::Conflict { .. }) => self.gateway.get_intent(intent).await,
            other => other,
        };
        let intent = match confirmed {
            Ok(i) => Some(i),
            Err(e) if e.is_transient() => {
                tracing::warn!(intent = %intent, %hold, "confirmation unanswered: {e}");
                None
            }
            Err(e) => return Err(e.into()),
        };
        let result = match &intent {
            Some(i) if i.status.is_final() => Some(self.apply_intent(i).await?),
            _ => None,
        };
        Ok(Checkout {
            hold: self.ctx.stores.reservations.get(hold).await?,
            intent,
            result,
        })
    }

    async fn confirm_free(&self, hold: Hold, user: &UserId) -> Result<Checkout> {
        let reference = format!("free-{}", hold.id);
        self.payments.start(hold.id, user, &reference).await?;
        let settlement = self.payments.succeeded(hold.id, &reference).await?;
        let result = self.settled(settlement, None).await?;
        Ok(Checkout {
            hold: self.ctx.stores.reservations.get(hold.id).await?,
            intent: None,
            result: Some(result),
        })
    }

    /// Applies a verified provider event. Runs once per event id (a repeat returns the first
    /// result); safe under duplicate, delayed and reordered delivery (see the module docs).
    /// An error (store or provider unreachable) stores nothing: answer the webhook with a
    /// non-2xx status so the provider delivers it again.
    pub async fn handle_event(&self, event: &PaymentEvent) -> Result<PaymentResult> {
        let key = IdempotencyKey::new("provider", EVENT_SCOPE, &event.id)?;
        self.idempotency
            .run(&key, event, || async {
                match event.kind {
                    EventKind::Succeeded | EventKind::PaymentFailed | EventKind::Canceled => {
                        self.apply_intent(&event.intent).await
                    }
                    EventKind::Processing | EventKind::Refunded | EventKind::Other => {
                        Ok(PaymentResult::Ignored {
                            reason: "informational event".into(),
                        })
                    }
                }
            })
            .await
    }

    /// Applies what the provider says about an intent to its hold: success confirms (or
    /// re-books, or refunds), failure or cancellation fails the hold, anything else is
    /// ignored. Idempotent.
    pub async fn apply_intent(&self, intent: &PaymentIntent) -> Result<PaymentResult> {
        let Some(hold_id) = intent.hold() else {
            return Ok(PaymentResult::Ignored {
                reason: format!("intent {} was not made by this checkout", intent.id),
            });
        };
        let reference = intent.id.as_str();
        match intent.status {
            IntentStatus::Succeeded => {
                let hold = self.ctx.stores.reservations.get(hold_id).await?;
                if hold.amount != intent.amount {
                    return self.mismatch(hold, intent).await;
                }
                let settlement = self.payments.succeeded(hold_id, reference).await?;
                self.settled(settlement, Some(intent)).await
            }
            IntentStatus::Failed | IntentStatus::Canceled => {
                let hold = self.ctx.stores.reservations.get(hold_id).await?;
                if hold.payment_ref.as_deref() != Some(reference) {
                    // Never this hold's checkout (e.g. canceled because starting it failed):
                    // the hold stays as it is, free to be paid again.
                    return Ok(PaymentResult::Ignored {
                        reason: format!("intent {} is not the hold's checkout", intent.id),
                    });
                }
                let why = intent.failure.as_ref().map_or_else(
                    || format!("payment {}", intent.status.as_str()),
                    |f| format!("payment failed: {}", f.code),
                );
                match self.payments.failed(hold_id, reference, &why).await? {
                    FailureOutcome::Failed(hold) => Ok(PaymentResult::Failed { hold }),
                    FailureOutcome::Ignored(hold) => Ok(PaymentResult::Ignored {
                        reason: format!("stale failure: hold is {}", hold.state.as_str()),
                    }),
                }
            }
            IntentStatus::Processing | IntentStatus::RequiresConfirmation => {
                Ok(PaymentResult::Ignored {
                    reason: format!("intent is {}", intent.status.as_str()),
                })
            }
        }
    }

    async fn settled(
        &self,
        settlement: Settlement,
        intent: Option<&PaymentIntent>,
    ) -> Result<PaymentResult> {
        match settlement {
            Settlement::Confirmed(hold) => Ok(PaymentResult::Confirmed { hold }),
            Settlement::Rebooked { ended, confirmed } => {
                Ok(PaymentResult::Rebooked { ended, confirmed })
            }
            Settlement::Refund { hold, reason, .. } => {
                let Some(intent) = intent else {
                    return Err(Error::Corrupt(format!(
                        "free hold {} settled with a refund",
                        hold.id
                    )));
                };
                let refund = self.refund_in_full(&intent.id, reason).await?;
                Ok(PaymentResult::Refunded {
                    hold,
                    reason,
                    refund,
                })
            }
        }
    }

    /// A success for another amount than the hold's price: the hold fails (when still live)
    /// and the money goes back.
    async fn mismatch(&self, hold: Hold, intent: &PaymentIntent) -> Result<PaymentResult> {
        tracing::error!(hold = %hold.id, intent = %intent.id, "paid {:?}, price {:?}", intent.amount, hold.amount);
        let hold = match self
            .payments
            .failed(
                hold.id,
                intent.id.as_str(),
                "amount paid differs from the price",
            )
            .await?
        {
            FailureOutcome::Failed(h) | FailureOutcome::Ignored(h) => h,
        };
        let refund = self
            .refund_in_full(&intent.id, RefundReason::AmountMismatch)
            .await?;
        Ok(PaymentResult::Refunded {
            hold,
            reason: RefundReason::AmountMismatch,
            refund,
        })
    }

    /// Refunds what is left of an intent, once: the provider key is per intent, and an
    /// intent already refunded in full (by any earlier refund) needs nothing more.
    async fn refund_in_full(
        &self,
        intent: &IntentId,
        reason: RefundReason,
    ) -> Result<Option<Refund>> {
        let req = RefundRequest {
            intent: intent.clone(),
            amount_minor: None,
            reason: format!("{reason:?}"),
            idempotency_key: format!("ticketrush-refund-{intent}"),
        };
        match self.gateway.refund(req).await {
            Ok(r) => {
                tracing::info!(intent = %intent, refund = %r.id, ?reason, "payment refunded");
                Ok(Some(r))
            }
            Err(GatewayError::Conflict { .. }) => {
                let now = self.gateway.get_intent(intent).await?;
                if now.fully_refunded() {
                    Ok(None)
                } else {
                    Err(Error::Corrupt(format!(
                        "intent {intent} cannot be refunded: {:?}",
                        now.status
                    )))
                }
            }
            Err(e) => Err(e.into()),
        }
    }

    /// Polls the provider for up to `limit` PAYING holds that expire within `lead`, and
    /// settles each from the provider's answer: a final status is applied as a webhook
    /// would; an intent not confirmed `payment_timeout` after its checkout started is
    /// canceled (it can no longer charge) and its hold fails; one still processing is left
    /// (see [`ReconcileReport::pending`]). Safe to run
    /// on any number of servers at once: everything it applies is idempotent.
    pub async fn reconcile(&self, lead: Duration, limit: usize) -> Result<ReconcileReport> {
        let before = self.ctx.clock.now().plus(lead);
        let due = self
            .ctx
            .stores
            .reservations
            .paying_due(before, limit)
            .await?;
        let mut report = ReconcileReport::default();
        for hold in due {
            report.polled += 1;
            match self.poll(&hold).await {
                Ok(PaymentResult::Confirmed { .. } | PaymentResult::Rebooked { .. }) => {
                    report.confirmed += 1;
                }
                Ok(PaymentResult::Failed { .. }) => report.failed += 1,
                Ok(PaymentResult::Refunded { .. }) => report.refunded += 1,
                Ok(PaymentResult::Ignored { .. }) => report.pending += 1,
                Err(e) => {
                    tracing::warn!(hold = %hold.id, "could not reconcile: {e}");
                    report.errors += 1;
                }
            }
        }
        Ok(report)
    }

    async fn poll(&self, hold: &Hold) -> Result<PaymentResult> {
        let Some(reference) = hold.payment_ref.as_deref() else {
            return Err(Error::Corrupt(format!(
                "PAYING hold {} has no payment",
                hold.id
            )));
        };
        let id = IntentId::new(reference)?;
        let intent = self.gateway.get_intent(&id).await?;
        if intent.status != IntentStatus::RequiresConfirmation {
            return self.apply_intent(&intent).await;
        }
        // Give a checkout that is still starting (between its start and its confirmation)
        // the provider's answer time before calling it abandoned.
        let paying_for = self.ctx.clock.now().since(hold.updated_at);
        if paying_for < self.ctx.limits.payment_timeout {
            return Ok(PaymentResult::Ignored {
                reason: "checkout still starting".into(),
            });
        }
        match self.gateway.cancel_intent(&id).await {
            Ok(canceled) => self.apply_intent(&canceled).await,
            // Confirmed meanwhile: apply whatever it is now.
            Err(GatewayError::Conflict { .. }) => {
                let now = self.gateway.get_intent(&id).await?;
                self.apply_intent(&now).await
            }
            Err(e) => Err(e.into()),
        }
    }
}
