//! Giving a payment back, once: void it while it is only authorized, refund it once it was
//! charged. Shared by the checkout (late, duplicate and mismatched payments) and the
//! cancellation flow, so both treat an uncaptured authorization the same way.

use crate::error::{Error, Result};
use crate::gateway::{GatewayError, IntentId, IntentStatus, PaymentGateway, Refund, RefundRequest};

/// How the money went back.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum MoneyBack {
    /// The authorization was voided (or the intent canceled): nothing had been taken.
    Voided,
    /// Refunded; `None` when an earlier refund had already returned everything taken.
    Refunded(Option<Refund>),
}

/// Returns `amount_minor` (everything when `None`) of `intent` under the provider key
/// `key`, so a repeat never returns money twice. An intent that was never charged
/// (authorized, or not yet confirmed) is voided instead; a conflict that the intent's
/// current state explains (already fully refunded, already voided) is success.
pub(crate) async fn return_money(
    gateway: &dyn PaymentGateway,
    intent: &IntentId,
    amount_minor: Option<i64>,
    reason: &str,
    key: &str,
) -> Result<MoneyBack> {
    let current = gateway.get_intent(intent).await?;
    if current.received_minor() == 0 && void(gateway, intent).await? {
        return Ok(MoneyBack::Voided);
    }
    let req = RefundRequest {
        intent: intent.clone(),
        amount_minor,
        reason: reason.to_owned(),
        idempotency_key: key.to_owned(),
    };
    match gateway.refund(req).await {
        Ok(r) => {
            tracing::info!(%intent, refund = %r.id, reason, "payment refunded");
            Ok(MoneyBack::Refunded(Some(r)))
        }
        Err(conflict @ GatewayError::Conflict { .. }) => {
            // Refunded by some other refund already (an operator at the provider)?
            let now = gateway.get_intent(intent).await?;
            if now.fully_refunded() {
                Ok(MoneyBack::Refunded(None))
            } else {
                Err(Error::Payment(conflict))
            }
        }
        Err(e) => Err(e.into()),
    }
}

/// Voids an intent that took no money: `true` when it is voided (or was canceled or
/// failed), `false` when it turns out to have been charged meanwhile (a capture racing
/// this void), so it must be refunded.
async fn void(gateway: &dyn PaymentGateway, intent: &IntentId) -> Result<bool> {
    match gateway.void(intent).await {
        Ok(_) => {
            tracing::info!(%intent, "authorization voided");
            Ok(true)
        }
        Err(GatewayError::Conflict { .. }) => {
            let now = gateway.get_intent(intent).await?;
            match now.status {
                IntentStatus::Canceled | IntentStatus::Failed => Ok(true),
                IntentStatus::Succeeded => Ok(false),
                status => Err(Error::Payment(GatewayError::Conflict {
                    action: "void".into(),
                    status,
                })),
            }
        }
        Err(e) => Err(e.into()),
    }
}
