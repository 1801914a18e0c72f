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
//! * **Authorize, confirm, capture** (when the provider offers manual capture, see
//!   [`CapturePreference`]): an authorized payment confirms the hold first and is captured
//!   only then; a payment whose hold cannot be confirmed is voided, so it was never charged
//!   (no refund needed). A capture that fails after the confirmation is retried by the
//!   capture follower ([`CheckoutService::capture_follower`]) until the authorization
//!   ends; an authorization that ends uncaptured cancels the reservation (its units go back
//!   on sale, no money was taken). See [`crate::service::capture`] for the whole story.
//! * **Hosted payment page**: [`CheckoutService::begin_hosted`] opens a session on the
//!   provider's page; the app never sees a card number.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::error::{Error, Refusal, Result};
use crate::gateway::{
    CaptureMethod, CheckoutSession, CheckoutSessionStatus, EventKind, GatewayError,
    HOLD_METADATA_KEY, IntentId, IntentStatus, NewIntent, PaymentEvent, PaymentGateway,
    PaymentIntent, PaymentRef, Refund,
};
use crate::ids::{HoldId, UserId};
use crate::model::hold::{Hold, HoldState};
use crate::model::idempotency::IdempotencyKey;

use super::hold::owned;
use super::return_money::{MoneyBack, return_money};
use super::{Context, FailureOutcome, Idempotency, PaymentService, RefundReason, Settlement};

/// Whether the checkout authorizes first and captures after confirming the hold.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CapturePreference {
    /// Manual capture when the provider offers it
    /// ([`crate::gateway::Capabilities::manual_capture`]), else automatic. The default.
    #[default]
    ManualWhenSupported,
    /// Always charge at once (a late payment is refunded rather than voided).
    Automatic,
}

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
    /// Nothing was sold for this authorized payment: the authorization was voided, no money
    /// was ever taken.
    Voided {
        /// The hold, as it stands.
        hold: Hold,
        /// Why.
        reason: RefundReason,
    },
    /// The hold is confirmed by this authorized payment, but the capture did not go
    /// through yet (the provider did not answer): the capture follower retries it.
    CapturePending {
        /// The confirmed hold.
        hold: Hold,
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
    /// The hosted checkout session, for a checkout on the provider's page
    /// ([`CheckoutService::begin_hosted`]): send the buyer to its `url`.
    pub session: Option<CheckoutSession>,
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
    /// Authorizations voided (late or mismatched authorized payments, abandoned sessions).
    pub voided: usize,
    /// Still processing at the provider: left to expire; a success that still comes follows
    /// the late-payment policy.
    pub pending: usize,
    /// The provider could not be asked (try again next pass).
    pub errors: usize,
}

impl ReconcileReport {
    /// Counts one checkout looked at and what came of it (an error is logged and counted:
    /// the next pass tries again).
    fn count(&mut self, hold: HoldId, result: Result<PaymentResult>) {
        self.polled += 1;
        match result {
            Ok(PaymentResult::Confirmed { .. } | PaymentResult::Rebooked { .. }) => {
                self.confirmed += 1;
            }
            Ok(PaymentResult::CapturePending { .. }) => {
                self.confirmed += 1;
                self.pending += 1;
            }
            Ok(PaymentResult::Failed { .. }) => self.failed += 1,
            Ok(PaymentResult::Refunded { .. }) => self.refunded += 1,
            Ok(PaymentResult::Voided { .. }) => self.voided += 1,
            Ok(PaymentResult::Ignored { .. }) => self.pending += 1,
            Err(e) => {
                tracing::warn!(%hold, "could not settle a checkout with the provider: {e}");
                self.errors += 1;
            }
        }
    }
}

/// Checkout over one payment provider. Cheap to clone.
#[derive(Clone, Debug)]
pub struct CheckoutService {
    pub(super) ctx: Context,
    pub(super) payments: PaymentService,
    idempotency: Idempotency,
    pub(super) gateway: Arc<dyn PaymentGateway>,
    capture: CapturePreference,
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
            capture: CapturePreference::default(),
        }
    }

    /// The same checkout with another capture preference.
    pub fn with_capture_preference(mut self, capture: CapturePreference) -> Self {
        self.capture = capture;
        self
    }

    /// The provider this checkout talks to.
    pub fn gateway(&self) -> &Arc<dyn PaymentGateway> {
        &self.gateway
    }

    /// How new payments are taken: manual when preferred and the provider offers it.
    pub fn capture_method(&self) -> CaptureMethod {
        if self.capture == CapturePreference::ManualWhenSupported
            && self.gateway.capabilities().manual_capture
        {
            CaptureMethod::Manual
        } else {
            CaptureMethod::Automatic
        }
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
    /// confirmed without the provider. With manual capture (see [`CapturePreference`]) the
    /// intent is authorized, the hold confirmed, then the intent captured.
    ///
    /// A hold already paying on the provider's hosted page answers that checkout (with its
    /// session) and starts no second payment.
    pub async fn begin(&self, id: HoldId, user: &UserId, payment_method: &str) -> Result<Checkout> {
        let hold = owned(&self.ctx, id, user).await?;
        if hold.state == HoldState::Paying
            && let Some(r) = hold.payment_ref.as_deref()
        {
            return match PaymentRef::parse(r)? {
                // Confirming again is harmless, and completes a confirmation that never
                // reached the provider.
                PaymentRef::Intent(intent) => self.confirm_and_settle(hold.id, &intent).await,
                PaymentRef::CheckoutSession(session) => {
                    let session = self.gateway.get_checkout_session(&session).await?;
                    Ok(Checkout {
                        hold,
                        intent: None,
                        session: Some(session),
                        result: None,
                    })
                }
            };
        }
        self.refuse_due(&hold)?;
        if hold.amount.amount_minor == 0 {
            return self.confirm_free(hold, user).await;
        }
        let intent = self
            .gateway
            .create_intent(NewIntent {
                amount: hold.amount,
                payment_method: payment_method.to_owned(),
                capture_method: self.capture_method(),
                metadata: checkout_metadata(id),
                idempotency_key: format!("ticketrush-checkout-{id}"),
            })
            .await?;
        if let Err(e) = self.payments.start(id, user, intent.id.as_str()).await {
            return match self.start_refused(&hold, intent.id.as_str(), e).await {
                // A racing call started checkout with this very intent: join it rather than
                // cancel the intent under it.
                Ok(_) => self.confirm_and_settle(id, &intent.id).await,
                Err(e) => {
                    // Never confirmed: cancel so it can never charge (best effort; an intent
                    // left in requires_confirmation charges nothing either).
                    if let Err(c) = self.gateway.cancel_intent(&intent.id).await {
                        tracing::warn!(intent = %intent.id, "could not cancel an unused intent: {c}");
                    }
                    Err(e)
                }
            };
        }
        self.confirm_and_settle(id, &intent.id).await
    }

    /// Why moving `hold` to PAYING with payment `reference` was refused: `Ok` with the hold
    /// when a racing call for the same hold started with this very payment (the provider's
    /// key is per hold, so both made the same one: join it), else the error to answer, a
    /// hold the sweeper expired meanwhile said as `HoldExpired`.
    pub(super) async fn start_refused(
        &self,
        hold: &Hold,
        reference: &str,
        e: Error,
    ) -> std::result::Result<Hold, Error> {
        if let Ok(now) = self.ctx.stores.reservations.get(hold.id).await
            && now.payment_ref.as_deref() == Some(reference)
        {
            return Ok(now);
        }
        Err(match e {
            Error::Refused(Refusal::IllegalTransition {
                from: HoldState::Expired,
                ..
            }) => Refusal::HoldExpired {
                expired_at: hold.expires_at,
            }
            .into(),
            e => e,
        })
    }

    /// `HoldExpired` for a hold past its TTL: refused before any payment exists, so nothing
    /// can be charged for it (a due hold's units go back with the next sweep).
    pub(super) fn refuse_due(&self, hold: &Hold) -> Result<()> {
        if hold.state == HoldState::Expired || hold.is_due(self.ctx.clock.now()) {
            return Err(Refusal::HoldExpired {
                expired_at: hold.expires_at,
            }
            .into());
        }
        Ok(())
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
            Some(i) if i.status.is_final() || i.status == IntentStatus::RequiresCapture => {
                Some(self.apply_intent(i).await?)
            }
            _ => None,
        };
        Ok(Checkout {
            hold: self.ctx.stores.reservations.get(hold).await?,
            intent,
            session: None,
            result,
        })
    }

    pub(super) async fn confirm_free(&self, hold: Hold, user: &UserId) -> Result<Checkout> {
        let reference = format!("free-{}", hold.id);
        self.payments.start(hold.id, user, &reference).await?;
        let settlement = self.payments.succeeded(hold.id, &reference).await?;
        let result = self.settled(settlement, None).await?;
        Ok(Checkout {
            hold: self.ctx.stores.reservations.get(hold.id).await?,
            intent: None,
            session: None,
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
                    EventKind::Succeeded
                    | EventKind::AmountCapturableUpdated
                    | EventKind::PaymentFailed
                    | EventKind::Canceled => self.apply_intent(&event.intent).await,
                    EventKind::Processing
                    | EventKind::RequiresAction
                    | EventKind::Refunded
                    | EventKind::Other => Ok(PaymentResult::Ignored {
                        reason: "informational event".into(),
                    }),
                }
            })
            .await
    }

    /// Applies what the provider says about an intent to its hold: success (or, for a
    /// manual capture, authorization) confirms (or re-books, or refunds or voids), failure
    /// or cancellation fails the hold, anything else is ignored. Idempotent.
    pub async fn apply_intent(&self, intent: &PaymentIntent) -> Result<PaymentResult> {
        let Some(hold_id) = intent.hold() else {
            return Ok(PaymentResult::Ignored {
                reason: format!("intent {} was not made by this checkout", intent.id),
            });
        };
        let reference = intent.id.as_str();
        match intent.status {
            IntentStatus::Succeeded | IntentStatus::RequiresCapture => {
                let hold = self.ctx.stores.reservations.get(hold_id).await?;
                if hold.amount != intent.amount {
                    return self.mismatch(hold, intent).await;
                }
                let settlement = self.payments.succeeded(hold_id, reference).await?;
                self.settled(settlement, Some(intent)).await
            }
            IntentStatus::Failed | IntentStatus::Canceled => {
                let hold = self.ctx.stores.reservations.get(hold_id).await?;
                if hold.state == HoldState::Confirmed
                    && hold.payment_ref.as_deref() == Some(reference)
                    && intent.status == IntentStatus::Canceled
                {
                    // An authorization that ended before it was captured: nothing was paid.
                    return self.authorization_lost(hold, intent).await;
                }
                if let Some(reason) = self.failure_ignored(&hold, intent).await? {
                    return Ok(PaymentResult::Ignored { reason });
                }
                let why = intent.failure.as_ref().map_or_else(
                    || format!("payment {}", intent.status.as_str()),
                    |f| format!("payment failed: {}", f.code),
                );
                let payment = hold.payment_ref.clone().unwrap_or_default();
                match self.payments.failed(hold_id, &payment, &why).await? {
                    FailureOutcome::Failed(hold) => Ok(PaymentResult::Failed { hold }),
                    FailureOutcome::Ignored(hold) => Ok(PaymentResult::Ignored {
                        reason: format!("stale failure: hold is {}", hold.state.as_str()),
                    }),
                }
            }
            IntentStatus::Processing
            | IntentStatus::RequiresConfirmation
            | IntentStatus::RequiresAction => Ok(PaymentResult::Ignored {
                reason: format!("intent is {}", intent.status.as_str()),
            }),
        }
    }

    /// Why a failed or canceled `intent` leaves `hold` as it is, or `None` when the failure
    /// stands. It is ignored when it is not the payment the hold's checkout started (e.g.
    /// canceled because starting it failed: the hold stays free to be paid again) and, for a
    /// hold paying on the provider's hosted page, when the session is still open (a declined
    /// card leaves it open for another one) or another attempt completed it (that attempt's
    /// own events settle the hold). The session is read once, and only for a hosted checkout.
    async fn failure_ignored(&self, hold: &Hold, intent: &PaymentIntent) -> Result<Option<String>> {
        let not_ours = || Some(format!("intent {} is not the hold's checkout", intent.id));
        let Some(stored) = hold.payment_ref.as_deref() else {
            return Ok(not_ours());
        };
        let id = match PaymentRef::parse(stored)? {
            PaymentRef::Intent(id) => return Ok(if id == intent.id { None } else { not_ours() }),
            PaymentRef::CheckoutSession(id) => id,
        };
        // The intent names its session, or (for a provider that does not) the session names
        // its latest attempt.
        let named = intent.checkout_session.as_ref().map(|of| *of == id);
        if named == Some(false) {
            return Ok(not_ours());
        }
        let session = self.gateway.get_checkout_session(&id).await?;
        let latest = session.intent.as_ref() == Some(&intent.id);
        if named.is_none() && !latest {
            return Ok(not_ours());
        }
        Ok(match session.status {
            CheckoutSessionStatus::Open => Some(format!(
                "attempt {} failed; session {id} is still open",
                intent.id
            )),
            CheckoutSessionStatus::Complete if !latest => Some(format!(
                "attempt {} failed; session {id} was completed by another attempt",
                intent.id
            )),
            CheckoutSessionStatus::Complete | CheckoutSessionStatus::Expired => None,
        })
    }

    async fn settled(
        &self,
        settlement: Settlement,
        intent: Option<&PaymentIntent>,
    ) -> Result<PaymentResult> {
        let authorized = intent.is_some_and(|i| i.status == IntentStatus::RequiresCapture);
        match settlement {
            Settlement::Confirmed(hold) => match intent {
                Some(i) if authorized => self.capture_confirmed(hold, i).await,
                _ => Ok(PaymentResult::Confirmed { hold }),
            },
            Settlement::Rebooked { ended, confirmed } => match intent {
                Some(i) if authorized => match self.capture_confirmed(confirmed, i).await? {
                    PaymentResult::Confirmed { hold } => Ok(PaymentResult::Rebooked {
                        ended,
                        confirmed: hold,
                    }),
                    other => Ok(other),
                },
                _ => Ok(PaymentResult::Rebooked { ended, confirmed }),
            },
            Settlement::Refund { hold, reason, .. } => {
                let Some(intent) = intent else {
                    return Err(Error::Corrupt(format!(
                        "free hold {} settled with a refund",
                        hold.id
                    )));
                };
                self.give_back(hold, &intent.id, reason).await
            }
        }
    }

    /// Returns a payment nothing was sold for: voids it while it is only authorized,
    /// refunds it once it was charged.
    pub(super) async fn give_back(
        &self,
        hold: Hold,
        intent: &IntentId,
        reason: RefundReason,
    ) -> Result<PaymentResult> {
        let key = format!("ticketrush-refund-{intent}");
        match return_money(
            self.gateway.as_ref(),
            intent,
            None,
            &format!("{reason:?}"),
            &key,
        )
        .await?
        {
            MoneyBack::Voided | MoneyBack::KeptOnly { .. } => {
                Ok(PaymentResult::Voided { hold, reason })
            }
            MoneyBack::Refunded(refund) => Ok(PaymentResult::Refunded {
                hold,
                reason,
                refund,
            }),
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
        self.give_back(hold, &intent.id, RefundReason::AmountMismatch)
            .await
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
            let result = self.poll(&hold).await;
            report.count(hold.id, result);
        }
        Ok(report)
    }

    /// Settles the payments of holds the sweeper just expired (pass
    /// [`crate::service::SweepReport::expired`] after each sweep): a hosted page still open
    /// is closed so it takes no payment for a hold that is gone; a payment that was made
    /// anyway (paid or authorized before the close, its webhook not yet in) is applied as
    /// the late payment it is (re-booked, else voided or refunded); an intent never
    /// confirmed is canceled so it can never charge. Normally [`CheckoutService::reconcile`]
    /// settles checkouts before their holds expire; this closes the gap when it did not run
    /// in time. Idempotent.
    pub async fn settle_expired(&self, expired: &[Hold]) -> Result<ReconcileReport> {
        let mut report = ReconcileReport::default();
        for hold in expired {
            let Some(stored) = hold.payment_ref.as_deref() else {
                continue;
            };
            if hold.amount.amount_minor == 0 {
                continue;
            }
            let settled = match PaymentRef::parse(stored)? {
                PaymentRef::CheckoutSession(id) => self.close_session_of_ended(&id).await,
                PaymentRef::Intent(id) => self.settle_intent_of_ended(&id).await,
            };
            report.count(hold.id, settled);
        }
        Ok(report)
    }

    async fn settle_intent_of_ended(&self, id: &IntentId) -> Result<PaymentResult> {
        let intent = self.gateway.get_intent(id).await?;
        match intent.status {
            IntentStatus::RequiresConfirmation | IntentStatus::RequiresAction => {
                match self.gateway.cancel_intent(id).await {
                    Ok(canceled) => self.apply_intent(&canceled).await,
                    Err(GatewayError::Conflict { .. }) => {
                        let now = self.gateway.get_intent(id).await?;
                        self.apply_intent(&now).await
                    }
                    Err(e) => Err(e.into()),
                }
            }
            _ => self.apply_intent(&intent).await,
        }
    }

    async fn poll(&self, hold: &Hold) -> Result<PaymentResult> {
        let Some(reference) = hold.payment_ref.as_deref() else {
            return Err(Error::Corrupt(format!(
                "PAYING hold {} has no payment",
                hold.id
            )));
        };
        let id = match PaymentRef::parse(reference)? {
            PaymentRef::Intent(id) => id,
            PaymentRef::CheckoutSession(session) => {
                return self.poll_session(hold, &session).await;
            }
        };
        let intent = self.gateway.get_intent(&id).await?;
        if !matches!(
            intent.status,
            IntentStatus::RequiresConfirmation | IntentStatus::RequiresAction
        ) {
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

/// The metadata of every payment the checkout starts for `hold`.
pub(super) fn checkout_metadata(hold: HoldId) -> BTreeMap<String, String> {
    BTreeMap::from([(HOLD_METADATA_KEY.to_owned(), hold.to_string())])
}
