//! The PaymentIntent state machine, as pure functions over
//! [`ticket_core::gateway::PaymentIntent`]: every move either applies whole or is a typed
//! error that changes nothing.
//!
//! ```text
//! requires_confirmation ──confirm──► processing ──► succeeded ──refund*──► (refunded ≤ amount)
//!          │                                   └──► failed
//!          └──cancel──► canceled
//! ```

use std::collections::BTreeMap;

use ticket_core::Timestamp;
use ticket_core::gateway::{GatewayError, IntentId, IntentStatus, PaymentFailure, PaymentIntent};
use ticket_core::model::money::{Currency, Money};

/// Currencies the sandbox accepts, with their minor-unit exponent.
pub const CURRENCIES: [(&str, u32); 6] = [
    ("KRW", 0),
    ("JPY", 0),
    ("USD", 2),
    ("EUR", 2),
    ("GBP", 2),
    ("SGD", 2),
];

/// The largest amount the sandbox charges in one intent, in minor units.
pub const MAX_AMOUNT_MINOR: i64 = 99_999_999_999;

/// Validates an amount: a supported currency, and 1..=[`MAX_AMOUNT_MINOR`] minor units.
pub fn validate_amount(amount: &Money) -> Result<(), GatewayError> {
    if !CURRENCIES
        .iter()
        .any(|(c, _)| *c == amount.currency.as_str())
    {
        return Err(GatewayError::Invalid(format!(
            "unsupported currency {}",
            amount.currency
        )));
    }
    if amount.amount_minor < 1 || amount.amount_minor > MAX_AMOUNT_MINOR {
        return Err(GatewayError::Invalid(format!(
            "amount must be between 1 and {MAX_AMOUNT_MINOR} minor units, got {}",
            amount.amount_minor
        )));
    }
    Ok(())
}

/// A new intent in `requires_confirmation`.
pub fn open(
    id: IntentId,
    amount: Money,
    metadata: BTreeMap<String, String>,
    now: Timestamp,
) -> Result<PaymentIntent, GatewayError> {
    validate_amount(&amount)?;
    Ok(PaymentIntent {
        id,
        amount,
        status: IntentStatus::RequiresConfirmation,
        capture_method: ticket_core::gateway::CaptureMethod::Automatic,
        amount_capturable: 0,
        amount_received: 0,
        amount_refunded: 0,
        failure: None,
        metadata,
        created_at: now,
        authorization_expires_at: None,
        checkout_session: None,
    })
}

fn conflict(action: &str, status: IntentStatus) -> GatewayError {
    GatewayError::Conflict {
        action: action.to_owned(),
        status,
    }
}

/// `requires_confirmation` → `processing`. `Ok(false)` when the intent was already confirmed
/// (processing, succeeded or failed: a repeat changes nothing); `Conflict` when canceled.
pub fn confirm(intent: &mut PaymentIntent) -> Result<bool, GatewayError> {
    match intent.status {
        IntentStatus::RequiresConfirmation | IntentStatus::RequiresAction => {
            intent.status = IntentStatus::Processing;
            Ok(true)
        }
        IntentStatus::Processing
        | IntentStatus::RequiresCapture
        | IntentStatus::Succeeded
        | IntentStatus::Failed => Ok(false),
        IntentStatus::Canceled => Err(conflict("confirm", intent.status)),
    }
}

/// `processing` → `succeeded` (`Ok(false)` if it already is).
pub fn succeed(intent: &mut PaymentIntent) -> Result<bool, GatewayError> {
    match intent.status {
        IntentStatus::Processing => {
            intent.status = IntentStatus::Succeeded;
            intent.amount_received = intent.amount.amount_minor;
            Ok(true)
        }
        IntentStatus::Succeeded => Ok(false),
        s => Err(conflict("succeed", s)),
    }
}

/// `processing` → `failed` with its reason (`Ok(false)` if it already failed).
pub fn fail(intent: &mut PaymentIntent, failure: PaymentFailure) -> Result<bool, GatewayError> {
    match intent.status {
        IntentStatus::Processing => {
            intent.status = IntentStatus::Failed;
            intent.failure = Some(failure);
            Ok(true)
        }
        IntentStatus::Failed => Ok(false),
        s => Err(conflict("fail", s)),
    }
}

/// `requires_confirmation` → `canceled` (`Ok(false)` if already canceled). Once confirmed an
/// intent is being charged and cannot be canceled: it is refunded after success instead.
pub fn cancel(intent: &mut PaymentIntent) -> Result<bool, GatewayError> {
    match intent.status {
        IntentStatus::RequiresConfirmation => {
            intent.status = IntentStatus::Canceled;
            Ok(true)
        }
        IntentStatus::Canceled => Ok(false),
        s => Err(conflict("cancel", s)),
    }
}

/// Refunds `amount_minor` (or all that is left when `None`) of a succeeded intent and
/// returns the amount refunded. The refunded total never exceeds the amount: asking for
/// more than is left is `Conflict` (nothing left) or `Invalid` (too much), and changes
/// nothing.
pub fn refund(
    intent: &mut PaymentIntent,
    amount_minor: Option<i64>,
) -> Result<Money, GatewayError> {
    if intent.status != IntentStatus::Succeeded {
        return Err(conflict("refund", intent.status));
    }
    let left = intent.amount.amount_minor - intent.amount_refunded;
    if left <= 0 {
        return Err(conflict("refund (already fully refunded)", intent.status));
    }
    let asked = amount_minor.unwrap_or(left);
    if asked < 1 || asked > left {
        return Err(GatewayError::Invalid(format!(
            "refund must be between 1 and {left} minor units, got {asked}"
        )));
    }
    intent.amount_refunded += asked;
    Ok(Money {
        amount_minor: asked,
        currency: intent.amount.currency,
    })
}

/// Parses a currency code for the sandbox (upper-case ISO code it supports).
pub fn currency(code: &str) -> Result<Currency, GatewayError> {
    let c = Currency::new(code).map_err(|e| GatewayError::Invalid(e.to_string()))?;
    validate_amount(&Money {
        amount_minor: 1,
        currency: c,
    })?;
    Ok(c)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn krw(n: i64) -> Money {
        Money {
            amount_minor: n,
            currency: Currency::new("KRW").unwrap(),
        }
    }

    fn new_intent(amount: i64) -> PaymentIntent {
        open(
            IntentId::new("pi_test").unwrap(),
            krw(amount),
            BTreeMap::new(),
            Timestamp::from_millis(0),
        )
        .unwrap()
    }

    #[test]
    fn happy_path_and_repeats() {
        let mut i = new_intent(1_000);
        assert!(confirm(&mut i).unwrap());
        assert!(!confirm(&mut i).unwrap(), "repeat confirm is harmless");
        assert!(succeed(&mut i).unwrap());
        assert!(!succeed(&mut i).unwrap());
        assert_eq!(i.status, IntentStatus::Succeeded);
        assert!(!confirm(&mut i).unwrap());
    }

    #[test]
    fn illegal_moves_are_conflicts_and_change_nothing() {
        let mut i = new_intent(1_000);
        assert!(matches!(
            succeed(&mut i),
            Err(GatewayError::Conflict { .. })
        ));
        assert!(
            fail(
                &mut i,
                PaymentFailure {
                    code: "x".into(),
                    message: "x".into()
                }
            )
            .is_err()
        );
        assert!(refund(&mut i, None).is_err());
        assert_eq!(i, new_intent(1_000));
        assert!(cancel(&mut i).unwrap());
        assert!(!cancel(&mut i).unwrap());
        assert!(matches!(
            confirm(&mut i),
            Err(GatewayError::Conflict { .. })
        ));
        let mut p = new_intent(1_000);
        confirm(&mut p).unwrap();
        assert!(
            matches!(cancel(&mut p), Err(GatewayError::Conflict { .. })),
            "processing cannot be canceled"
        );
        succeed(&mut p).unwrap();
        assert!(cancel(&mut p).is_err());
        assert!(
            fail(
                &mut p,
                PaymentFailure {
                    code: "x".into(),
                    message: "x".into()
                }
            )
            .is_err()
        );
        assert_eq!(p.status, IntentStatus::Succeeded);
    }

    #[test]
    fn refunds_never_exceed_the_amount() {
        let mut i = new_intent(1_000);
        confirm(&mut i).unwrap();
        succeed(&mut i).unwrap();
        assert_eq!(refund(&mut i, Some(300)).unwrap(), krw(300));
        assert!(matches!(
            refund(&mut i, Some(701)),
            Err(GatewayError::Invalid(_))
        ));
        assert!(matches!(
            refund(&mut i, Some(0)),
            Err(GatewayError::Invalid(_))
        ));
        assert!(matches!(
            refund(&mut i, Some(-5)),
            Err(GatewayError::Invalid(_))
        ));
        assert_eq!(i.amount_refunded, 300);
        assert_eq!(refund(&mut i, None).unwrap(), krw(700), "the rest");
        assert!(i.fully_refunded());
        assert!(matches!(
            refund(&mut i, None),
            Err(GatewayError::Conflict { .. })
        ));
        assert_eq!(i.amount_refunded, 1_000);
    }

    #[test]
    fn amounts_and_currencies_are_validated() {
        for bad in [0, -1, MAX_AMOUNT_MINOR + 1] {
            assert!(matches!(
                open(
                    IntentId::new("pi").unwrap(),
                    krw(bad),
                    BTreeMap::new(),
                    Timestamp::from_millis(0)
                ),
                Err(GatewayError::Invalid(_))
            ));
        }
        assert!(currency("KRW").is_ok());
        assert!(matches!(currency("XXX"), Err(GatewayError::Invalid(_))));
        assert!(matches!(currency("usd"), Err(GatewayError::Invalid(_))));
    }
}
