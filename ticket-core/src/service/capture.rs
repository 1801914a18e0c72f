//! Manual capture: authorize, confirm the hold, then take the money.
//!
//! With a provider that offers it ([`crate::gateway::Capabilities::manual_capture`]) the
//! checkout creates intents with [`CaptureMethod::Manual`](crate::gateway::CaptureMethod).
//! An authorized intent (`requires_capture`, by webhook, poll or the confirmation's answer)
//! is settled in this order:
//!
//! 1. **Confirm the hold** in one atomic step of the store (or re-book a hold that ended,
//!    exactly as for a charged payment).
//! 2. **Capture** the intent under the key `ticketrush-capture-<intent>`: the provider takes
//!    the money at most once however often this runs.
//! 3. If the hold **cannot be confirmed** (it expired and its units were resold, the buyer's
//!    limit is used up, the show was cancelled), the authorization is **voided**: nothing
//!    was ever taken, so there is nothing to refund.
//!
//! If the capture does not go through after the hold was confirmed:
//! * the provider did not answer: the result is [`PaymentResult::CapturePending`] and the
//!   **capture follower** ([`CheckoutService::capture_follower`]) retries. It follows the
//!   session's change feed (every `HoldConfirmed` change, written in the same atomic step
//!   as the confirmation, so none is missed) with a checkpoint, so a capture owed by a
//!   crashed process is taken by the next one;
//! * the authorization ended (voided at the provider, or expired uncaptured): nothing was
//!   paid, so the reservation is **cancelled** (CONFIRMED → CANCELLED, its units go back on
//!   sale and the queue is woken) and an audit record says why.
//!
//! Invariants (checked by the fault matrix in both capture modes on every backend): no
//! intent is captured twice, none is captured without a confirmed reservation, and once
//! the follower has caught up no reservation is confirmed without a captured payment.

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;

use crate::error::{Error, Result};
use crate::gateway::{CaptureRequest, GatewayError, IntentStatus, PaymentIntent, PaymentRef};
use crate::ids::{HoldId, UserId};
use crate::model::change::ChangeKind;
use crate::model::hold::{Hold, HoldState};

use super::checkout::{CheckoutService, PaymentResult};
use super::notify::{DispatchConfig, Notification, NotificationDispatcher, Notifier, NotifyError};

/// The consumer name under which capture followers keep their checkpoints.
pub const CAPTURE_CONSUMER: &str = "captures";

/// The recipient of the capture follower's delivery records ([`DispatchConfig::job`]).
pub const CAPTURE_JOB: &str = "~ticketrush-captures";

impl DispatchConfig {
    /// The capture follower's settings for `holder`: `HoldConfirmed` changes, consumer
    /// [`CAPTURE_CONSUMER`], 12 attempts with backoff from 1 s doubling up to 60 s (about
    /// 7 minutes, well inside an authorization's lifetime of days).
    pub fn captures(holder: impl Into<String>) -> Result<Self> {
        Ok(Self {
            consumer: CAPTURE_CONSUMER.to_owned(),
            job: Some(UserId::new(CAPTURE_JOB)?),
            kinds: vec![ChangeKind::HoldConfirmed],
            max_attempts: 12,
            backoff: Duration::from_secs(1),
            max_backoff: Duration::from_secs(60),
            ..Self::new(holder)
        })
    }
}

impl CheckoutService {
    /// A follower of the change feed that makes sure every confirmed reservation's payment
    /// is captured: run [`NotificationDispatcher::dispatch`] on it for each session on sale
    /// (on any number of processes: deliveries are claimed). With automatic capture it only
    /// checks (one provider read per confirmation).
    pub fn capture_follower(&self, holder: impl Into<String>) -> Result<NotificationDispatcher> {
        NotificationDispatcher::new(
            self.ctx.stores.clone(),
            Arc::new(CaptureFollower {
                checkout: self.clone(),
            }),
            self.ctx.clock.clone(),
            DispatchConfig::captures(holder)?,
        )
    }

    /// Makes sure confirmed hold `id` is paid: captures its authorization if it is still
    /// only authorized, cancels the reservation if the authorization ended uncaptured.
    /// Idempotent. A hold that is not confirmed, or was confirmed without the provider (a
    /// free hold), is [`PaymentResult::Ignored`].
    pub async fn settle_capture(&self, id: HoldId) -> Result<PaymentResult> {
        let hold = self.ctx.stores.reservations.get(id).await?;
        let ignored = |reason: &str| {
            Ok(PaymentResult::Ignored {
                reason: reason.to_owned(),
            })
        };
        if hold.state != HoldState::Confirmed {
            return ignored("not confirmed");
        }
        if hold.amount.amount_minor == 0 {
            return ignored("free");
        }
        let Some(PaymentRef::Intent(intent)) = hold
            .payment_ref
            .as_deref()
            .map(PaymentRef::parse)
            .transpose()?
        else {
            return Err(Error::Corrupt(format!(
                "confirmed hold {id} names no payment intent"
            )));
        };
        let intent = self.gateway.get_intent(&intent).await?;
        match intent.status {
            IntentStatus::Succeeded => Ok(PaymentResult::Confirmed { hold }),
            IntentStatus::RequiresCapture => self.capture_confirmed(hold, &intent).await,
            IntentStatus::Canceled | IntentStatus::Failed => {
                self.authorization_lost(hold, &intent).await
            }
            IntentStatus::RequiresConfirmation
            | IntentStatus::RequiresAction
            | IntentStatus::Processing => Err(Error::Corrupt(format!(
                "confirmed hold {id} paid by intent {} that is {}",
                intent.id,
                intent.status.as_str()
            ))),
        }
    }

    /// Step 2: captures the authorization of a hold this payment just confirmed.
    pub(super) async fn capture_confirmed(
        &self,
        hold: Hold,
        intent: &PaymentIntent,
    ) -> Result<PaymentResult> {
        if hold.state != HoldState::Confirmed
            || hold.payment_ref.as_deref() != Some(intent.id.as_str())
        {
            // Confirmed by this payment earlier and cancelled since: the cancellation gave
            // the money back (voided the authorization); nothing to take.
            return Ok(PaymentResult::Confirmed { hold });
        }
        let req = CaptureRequest {
            intent: intent.id.clone(),
            amount_minor: None,
            idempotency_key: format!("ticketrush-capture-{}", intent.id),
        };
        match self.gateway.capture(req).await {
            Ok(now) if now.status == IntentStatus::Succeeded => {
                Ok(PaymentResult::Confirmed { hold })
            }
            Ok(now) => Err(Error::Corrupt(format!(
                "capture of intent {} left it {}",
                now.id,
                now.status.as_str()
            ))),
            Err(GatewayError::Conflict {
                status: IntentStatus::Succeeded,
                ..
            }) => Ok(PaymentResult::Confirmed { hold }),
            Err(GatewayError::Conflict {
                status: IntentStatus::Canceled | IntentStatus::Failed,
                ..
            }) => self.authorization_lost(hold, intent).await,
            Err(e) if e.is_transient() => {
                tracing::warn!(hold = %hold.id, intent = %intent.id, "capture unanswered, the follower retries: {e}");
                Ok(PaymentResult::CapturePending { hold })
            }
            Err(e) => Err(e.into()),
        }
    }

    /// The authorization of a confirmed hold ended before it was captured: nothing was
    /// paid, so the reservation is cancelled and its units go back on sale.
    pub(super) async fn authorization_lost(
        &self,
        hold: Hold,
        intent: &PaymentIntent,
    ) -> Result<PaymentResult> {
        if intent.received_minor() > 0 {
            return Err(Error::Corrupt(format!(
                "intent {} is {} yet took {} minor units",
                intent.id,
                intent.status.as_str(),
                intent.received_minor()
            )));
        }
        tracing::warn!(hold = %hold.id, intent = %intent.id, "authorization ended uncaptured: reservation cancelled");
        let hold = self
            .payments
            .cancel_unpaid(
                hold.id,
                intent.id.as_str(),
                "authorization ended before capture: nothing was paid",
            )
            .await?;
        Ok(PaymentResult::Failed { hold })
    }
}

/// Feeds `HoldConfirmed` changes to [`CheckoutService::settle_capture`]; a capture still
/// pending is an error, so the dispatcher retries it with backoff.
struct CaptureFollower {
    checkout: CheckoutService,
}

#[async_trait]
impl Notifier for CaptureFollower {
    async fn notify(&self, notification: &Notification) -> std::result::Result<(), NotifyError> {
        let Some(hold) = notification.change.hold() else {
            return Ok(());
        };
        match self.checkout.settle_capture(hold).await {
            Ok(PaymentResult::CapturePending { .. }) => {
                Err(NotifyError(format!("capture of hold {hold} still pending")))
            }
            Ok(_) => Ok(()),
            Err(e) => Err(NotifyError(e.to_string())),
        }
    }
}
