//! Payments beyond the library's checkout: where a provider's event goes (a wallet top-up or
//! a checkout), and who may read a payment (its payer only).

use ticket_core::gateway::{
    CheckoutSessionId, GatewayError, IntentId, PaymentEvent, PaymentIntent,
};
use ticket_core::model::hold::Hold;
use ticket_core::service::{CheckoutService, PaymentResult};
use ticket_core::{Error, Refusal, TicketRush, UserId};

use crate::services::topups::{TOPUP_METADATA_KEY, TopUpError, TopUpOutcome, TopUps};

/// What a provider's event did.
#[derive(Debug)]
pub enum Settled {
    /// A checkout's payment, as the library reports it.
    Checkout(Box<PaymentResult>),
    /// A wallet top-up's payment.
    TopUp(TopUpOutcome),
}

/// Why a provider's event could not be applied (a retry of the delivery is safe).
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum SettleError {
    /// The top-up service refused or failed.
    #[error(transparent)]
    TopUp(#[from] TopUpError),
    /// The checkout refused or failed.
    #[error(transparent)]
    Checkout(#[from] Error),
}

/// Applies a verified provider event: a top-up's payment (its intent carries
/// [`TOPUP_METADATA_KEY`], which only the provider's signed word can say) goes to the
/// wallet's top-ups, every other one to the checkout. Both are idempotent per event.
pub async fn apply_event(
    topups: &TopUps,
    checkout: &CheckoutService,
    event: &PaymentEvent,
) -> Result<Settled, SettleError> {
    if event.intent.metadata.contains_key(TOPUP_METADATA_KEY) {
        Ok(Settled::TopUp(topups.apply_event(event).await?))
    } else {
        Ok(Settled::Checkout(Box::new(
            checkout.handle_event(event).await?,
        )))
    }
}

/// Why a payment cannot be shown.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum PaymentLookupError {
    /// No such payment, one not for a hold, or another user's: the same answer for all, so
    /// a caller learns nothing about payments that are not theirs.
    #[error("payment not found")]
    NotFound,
    /// The provider or the store failed.
    #[error(transparent)]
    Failed(Error),
}

/// The payment `id` (at the provider or the wallet) and the hold it pays, if `payer` owns
/// that hold. A hosted checkout session's id (the `payment_id` of a hold paying on the
/// provider's page) names the session's latest payment attempt: `NotFound` before the buyer
/// made one.
pub async fn payment_of(
    rush: &TicketRush,
    checkout: &CheckoutService,
    id: &IntentId,
    payer: &UserId,
) -> Result<(PaymentIntent, Hold), PaymentLookupError> {
    let failed = |e: GatewayError| match e {
        GatewayError::NotFound(_) => PaymentLookupError::NotFound,
        other => PaymentLookupError::Failed(Error::Payment(other)),
    };
    let gateway = checkout.gateway();
    let intent = match gateway.get_intent(id).await {
        Err(GatewayError::NotFound(_)) => {
            let session =
                CheckoutSessionId::new(id.as_str()).map_err(|_| PaymentLookupError::NotFound)?;
            let session = gateway
                .get_checkout_session(&session)
                .await
                .map_err(failed)?;
            let attempt = session.intent.clone().ok_or(PaymentLookupError::NotFound)?;
            let intent = gateway.get_intent(&attempt).await.map_err(failed)?;
            // The session's hold must be the attempt's (a provider's word, checked anyway).
            if intent.hold().is_none() || intent.hold() != session.hold() {
                return Err(PaymentLookupError::NotFound);
            }
            intent
        }
        other => other.map_err(failed)?,
    };
    let Some(hold) = intent.hold() else {
        return Err(PaymentLookupError::NotFound);
    };
    let hold = rush.holds.get(hold, payer).await.map_err(|e| match e {
        Error::Refused(Refusal::NotOwner) | Error::NotFound { .. } => PaymentLookupError::NotFound,
        other => PaymentLookupError::Failed(other),
    })?;
    Ok((intent, hold))
}
