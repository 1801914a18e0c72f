//! Checkout on the provider's hosted payment page.
//!
//! [`CheckoutService::begin_hosted`] opens a checkout session at the provider for the
//! hold's price and moves the hold HELD → PAYING with the session as its payment reference
//! ([`PaymentRef::CheckoutSession`]); the app sends the buyer to the session's `url`. The
//! buyer enters a card on the provider's page (the app never sees it), completes a
//! challenge if the card asks for one, and is sent back to the app's `return_url`. The
//! outcome arrives as for any payment: the session's intent, by webhook and by polling.
//!
//! * A declined card leaves the session open for another card: the hold stays PAYING.
//! * The session closes when the hold's time is up: [`CheckoutService::reconcile`] expires
//!   a session still open within its `lead` before the hold's expiry, and fails the hold
//!   (its units go back on sale). A session the provider completed meanwhile is applied.
//! * A payment that still completes after its hold ended follows the late-payment policy
//!   (re-book, else void or refund), as for any payment.
//! * A hold the sweeper expired before the reconciler closed its page: pass the sweep's
//!   expired holds to [`CheckoutService::settle_expired`], which closes the page and
//!   applies any payment it took.

use crate::error::{Refusal, Result};
use crate::gateway::{
    CheckoutSession, CheckoutSessionId, CheckoutSessionStatus, GatewayError, IntentStatus,
    NewCheckoutSession, PaymentRef,
};
use crate::ids::{HoldId, UserId};
use crate::model::hold::{Hold, HoldState};

use super::FailureOutcome;
use super::checkout::{Checkout, CheckoutService, PaymentResult, checkout_metadata};
use super::hold::owned;

impl CheckoutService {
    /// The buyer pays hold `id` on the provider's page: answers the checkout with its
    /// [`Checkout::session`] (send the buyer to its `url`).
    ///
    /// Idempotent: calling it again for a hold already paying on the page answers the same
    /// session. A hold in a card checkout (`begin`) is `IllegalTransition`; a hold past its
    /// TTL is `HoldExpired` before any session exists; a hold priced at zero is confirmed at
    /// once, without the provider. `return_url` must be an absolute `http(s)` URL
    /// (the provider refuses others with [`GatewayError::Invalid`], and nothing changes).
    pub async fn begin_hosted(
        &self,
        id: HoldId,
        user: &UserId,
        return_url: &str,
    ) -> Result<Checkout> {
        let hold = owned(&self.ctx, id, user).await?;
        if hold.state == HoldState::Paying
            && let Some(r) = hold.payment_ref.as_deref()
        {
            return match PaymentRef::parse(r)? {
                PaymentRef::CheckoutSession(session) => self.answer(hold, &session).await,
                PaymentRef::Intent(_) => Err(Refusal::IllegalTransition {
                    from: HoldState::Paying,
                    to: HoldState::Paying,
                }
                .into()),
            };
        }
        self.refuse_due(&hold)?;
        if hold.amount.amount_minor == 0 {
            return self.confirm_free(hold, user).await;
        }
        let session = self
            .gateway
            .create_checkout_session(NewCheckoutSession {
                amount: hold.amount,
                capture_method: self.capture_method(),
                return_url: return_url.to_owned(),
                description: format!("{} ticket(s), reservation {id}", hold.units()),
                metadata: checkout_metadata(id),
                expires_at: hold.expires_at,
                idempotency_key: format!("ticketrush-checkout-session-{id}"),
            })
            .await?;
        let reference = PaymentRef::CheckoutSession(session.id.clone()).to_string();
        if let Err(e) = self.payments.start(id, user, &reference).await {
            return match self.start_refused(&hold, &reference, e).await {
                // A racing call for the same hold started with this very session: answer it.
                Ok(now) => self.answer(now, &session.id).await,
                Err(e) => {
                    // Close the page so it can never take a payment (best effort: a payment
                    // made on it anyway is late and follows the late-payment policy).
                    if let Err(x) = self.gateway.expire_checkout_session(&session.id).await {
                        tracing::warn!(session = %session.id, "could not expire an unused checkout session: {x}");
                    }
                    Err(e)
                }
            };
        }
        Ok(Checkout {
            hold: self.ctx.stores.reservations.get(id).await?,
            intent: None,
            session: Some(session),
            result: None,
        })
    }

    async fn answer(&self, hold: Hold, session: &CheckoutSessionId) -> Result<Checkout> {
        let session = self.gateway.get_checkout_session(session).await?;
        Ok(Checkout {
            hold,
            intent: None,
            session: Some(session),
            result: None,
        })
    }

    /// The reconciler's look at a hold paying through a hosted session: apply its paid (or
    /// authorized) intent; otherwise close the session, since the hold is about to expire.
    pub(super) async fn poll_session(
        &self,
        hold: &Hold,
        id: &CheckoutSessionId,
    ) -> Result<PaymentResult> {
        let session = self.gateway.get_checkout_session(id).await?;
        if let Some(result) = self.apply_session_payment(&session).await? {
            return Ok(result);
        }
        match session.status {
            CheckoutSessionStatus::Expired => self.session_ended(hold, &session).await,
            CheckoutSessionStatus::Complete => Ok(PaymentResult::Ignored {
                reason: format!("session {id} complete, its payment is processing"),
            }),
            CheckoutSessionStatus::Open => match self.gateway.expire_checkout_session(id).await {
                Ok(expired) => self.session_ended(hold, &expired).await,
                // Completed meanwhile: apply what it is now.
                Err(GatewayError::Conflict { .. }) => {
                    let now = self.gateway.get_checkout_session(id).await?;
                    Ok(self.apply_session_payment(&now).await?.unwrap_or_else(|| {
                        PaymentResult::Ignored {
                            reason: format!("session {id} completing"),
                        }
                    }))
                }
                Err(e) => Err(e.into()),
            },
        }
    }

    /// The session of a hold that ended: close it if it is still open, and apply a
    /// payment it took (a late payment).
    pub(super) async fn close_session_of_ended(
        &self,
        id: &CheckoutSessionId,
    ) -> Result<PaymentResult> {
        let session = self.gateway.get_checkout_session(id).await?;
        if session.status == CheckoutSessionStatus::Open {
            match self.gateway.expire_checkout_session(id).await {
                Ok(_) | Err(GatewayError::Conflict { .. }) => {}
                Err(e) => return Err(e.into()),
            }
        }
        let now = self.gateway.get_checkout_session(id).await?;
        Ok(self
            .apply_session_payment(&now)
            .await?
            .unwrap_or_else(|| PaymentResult::Ignored {
                reason: format!("session {id} is {:?} and took no payment", now.status),
            }))
    }

    /// Applies the session's intent when it paid or was authorized.
    async fn apply_session_payment(
        &self,
        session: &CheckoutSession,
    ) -> Result<Option<PaymentResult>> {
        let Some(intent) = &session.intent else {
            return Ok(None);
        };
        let intent = self.gateway.get_intent(intent).await?;
        if matches!(
            intent.status,
            IntentStatus::Succeeded | IntentStatus::RequiresCapture
        ) {
            return Ok(Some(self.apply_intent(&intent).await?));
        }
        Ok(None)
    }

    async fn session_ended(&self, hold: &Hold, session: &CheckoutSession) -> Result<PaymentResult> {
        let reference = PaymentRef::CheckoutSession(session.id.clone()).to_string();
        match self
            .payments
            .failed(hold.id, &reference, "checkout session expired unpaid")
            .await?
        {
            FailureOutcome::Failed(hold) => Ok(PaymentResult::Failed { hold }),
            FailureOutcome::Ignored(hold) => Ok(PaymentResult::Ignored {
                reason: format!("session ended; hold is {}", hold.state.as_str()),
            }),
        }
    }
}
