//! Giving a payment back, once: void it while it is only authorized, refund it once it was
//! charged. Shared by the checkout (late, duplicate and mismatched payments) and the
//! cancellation flow, so both treat an uncaptured authorization the same way.

use crate::error::{Error, Result};
use crate::gateway::{
    CaptureRequest, GatewayError, IntentId, IntentStatus, PaymentGateway, Refund, RefundRequest,
};

/// How the money went back.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum MoneyBack {
    /// The authorization was voided (or the intent canceled): nothing had been taken.
    Voided,
    /// Refunded; `None` when an earlier refund had already returned everything taken, or
    /// nothing was to be returned.
    Refunded(Option<Refund>),
    /// The authorization was captured for what is kept (a cancellation fee) and the rest
    /// released: nothing to refund.
    KeptOnly {
        /// Minor units captured.
        captured: i64,
    },
}

/// Returns `amount_minor` (everything when `None`) of `intent` under the provider key
/// `key`, so a repeat never returns money twice. An intent that was only authorized is
/// captured for what is kept (the amount minus what is returned; partially where the
/// provider allows, else captured whole and the rest refunded) or voided when nothing is
/// kept; one never confirmed is voided. A conflict that the intent's current state explains
/// (already fully refunded, already voided) is success.
pub(crate) async fn return_money(
    gateway: &dyn PaymentGateway,
    intent: &IntentId,
    amount_minor: Option<i64>,
    reason: &str,
    key: &str,
) -> Result<MoneyBack> {
    let current = gateway.get_intent(intent).await?;
    let authorized = current.amount.amount_minor;
    let give_back = amount_minor.unwrap_or(authorized).clamp(0, authorized);
    if current.status == IntentStatus::RequiresCapture && give_back < authorized {
        let keep = authorized - give_back;
        let partial = gateway.capabilities().partial_capture;
        let captured = gateway
            .capture(CaptureRequest {
                intent: intent.clone(),
                amount_minor: partial.then_some(keep),
                idempotency_key: format!("{key}-capture"),
            })
            .await;
        match captured {
            Ok(_) if partial => return Ok(MoneyBack::KeptOnly { captured: keep }),
            // Captured whole: refund what is returned below.
            Ok(_) | Err(GatewayError::Conflict { .. }) => {}
            Err(e) => return Err(e.into()),
        }
    } else if current.received_minor() == 0 && void(gateway, intent).await? {
        return Ok(MoneyBack::Voided);
    }
    if give_back == 0 {
        return Ok(MoneyBack::Refunded(None));
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
