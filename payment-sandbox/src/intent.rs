//! The PaymentIntent state machine, as pure functions over
//! [`ticket_core::gateway::PaymentIntent`]: every move either applies whole or is a typed
//! error that changes nothing (a function that refuses returns before touching the intent).
//!
//! ```text
//!                        ┌──(challenge card)──► requires_action ──authenticate──┐
//!                        │                         │      └──wrong code──► failed│
//! requires_confirmation ─┴──confirm──► processing ◄─────────────────────────────┘
//!          │                             ├──► failed
//!          │                             ├──(automatic)──► succeeded ──refund*──► (refunded ≤ received)
//!          │                             └──(manual)──► requires_capture ──capture──► succeeded
//!          │                                                 │  (void, authorization expiry)
//!          └──cancel (also from requires_action)──► canceled ◄┘
//! ```
//!
//! * `processing` → `requires_capture` ([`authorize`], manual capture only): the whole
//!   amount becomes `amount_capturable`, and `authorization_expires_at` says when the
//!   sandbox cancels it if it is not captured ([`expire_authorization`]).
//! * [`capture`] takes 1..=`amount_capturable` minor units: `amount_received` is what was
//!   taken, the rest of the authorization is released (`amount_capturable` = 0).
//! * Refunds are bounded by `amount_received`, never by the authorized amount.

use std::collections::BTreeMap;

use ticket_core::Timestamp;
use ticket_core::gateway::{
    CaptureMethod, GatewayError, IntentId, IntentStatus, PaymentFailure, PaymentIntent,
};
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

/// A new intent in `requires_confirmation`, charged the way `capture_method` says (nothing
/// received, nothing capturable, no checkout session: the caller sets one).
pub fn open(
    id: IntentId,
    amount: Money,
    capture_method: CaptureMethod,
    metadata: BTreeMap<String, String>,
    now: Timestamp,
) -> Result<PaymentIntent, GatewayError> {
    validate_amount(&amount)?;
    Ok(PaymentIntent {
        id,
        amount,
        status: IntentStatus::RequiresConfirmation,
        capture_method,
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
/// (`requires_action` waiting for its challenge, processing, requires_capture, succeeded or
/// failed: a repeat changes nothing, and never skips a challenge); `Conflict` when canceled.
pub fn confirm(intent: &mut PaymentIntent) -> Result<bool, GatewayError> {
    match intent.status {
        IntentStatus::RequiresConfirmation => {
            intent.status = IntentStatus::Processing;
            Ok(true)
        }
        IntentStatus::RequiresAction
        | IntentStatus::Processing
        | IntentStatus::RequiresCapture
        | IntentStatus::Succeeded
        | IntentStatus::Failed => Ok(false),
        IntentStatus::Canceled => Err(conflict("confirm", intent.status)),
    }
}

/// `requires_confirmation` → `requires_action`: confirming a card that asks for a challenge
/// (3-D Secure). `Ok(false)` when it already waits for it; `Conflict` otherwise.
pub fn require_action(intent: &mut PaymentIntent) -> Result<bool, GatewayError> {
    match intent.status {
        IntentStatus::RequiresConfirmation => {
            intent.status = IntentStatus::RequiresAction;
            Ok(true)
        }
        IntentStatus::RequiresAction => Ok(false),
        s => Err(conflict("require action on", s)),
    }
}

/// `requires_action` → `processing`: the buyer passed the challenge. `Ok(false)` when it was
/// passed before (processing, requires_capture, succeeded); `Conflict` otherwise (not
/// confirmed yet, failed, canceled).
pub fn authenticate(intent: &mut PaymentIntent) -> Result<bool, GatewayError> {
    match intent.status {
        IntentStatus::RequiresAction => {
            intent.status = IntentStatus::Processing;
            Ok(true)
        }
        IntentStatus::Processing | IntentStatus::RequiresCapture | IntentStatus::Succeeded => {
            Ok(false)
        }
        s => Err(conflict("authenticate", s)),
    }
}

/// `processing` → `succeeded` for an automatic intent: the whole amount is received
/// (`Ok(false)` if it already succeeded). A manual intent is authorized instead
/// ([`authorize`]): succeeding it is `Conflict`.
pub fn succeed(intent: &mut PaymentIntent) -> Result<bool, GatewayError> {
    match (intent.status, intent.capture_method) {
        (IntentStatus::Processing, CaptureMethod::Automatic) => {
            intent.status = IntentStatus::Succeeded;
            intent.amount_received = intent.amount.amount_minor;
            Ok(true)
        }
        (IntentStatus::Succeeded, _) => Ok(false),
        (s, _) => Err(conflict("succeed", s)),
    }
}

/// `processing` → `requires_capture` for a manual intent: the whole amount is capturable
/// until `expires_at` (`Ok(false)` if it already is authorized). An automatic intent
/// succeeds instead ([`succeed`]): authorizing it is `Conflict`.
pub fn authorize(intent: &mut PaymentIntent, expires_at: Timestamp) -> Result<bool, GatewayError> {
    match (intent.status, intent.capture_method) {
        (IntentStatus::Processing, CaptureMethod::Manual) => {
            intent.status = IntentStatus::RequiresCapture;
            intent.amount_capturable = intent.amount.amount_minor;
            intent.authorization_expires_at = Some(expires_at);
            Ok(true)
        }
        (IntentStatus::RequiresCapture, _) => Ok(false),
        (s, _) => Err(conflict("authorize", s)),
    }
}

/// `requires_capture` → `succeeded`: takes `amount_minor` (everything authorized when
/// `None`), 1..=`amount_capturable`; the rest of the authorization is released. Returns
/// the amount taken. A succeeded (already captured) or canceled (voided, expired) intent is
/// `Conflict` with its status, as is one not authorized yet; an amount out of range is
/// `Invalid`. Either way nothing changes.
pub fn capture(intent: &mut PaymentIntent, amount_minor: Option<i64>) -> Result<i64, GatewayError> {
    if intent.status != IntentStatus::RequiresCapture {
        return Err(conflict("capture", intent.status));
    }
    let capturable = intent.amount_capturable;
    let asked = amount_minor.unwrap_or(capturable);
    if asked < 1 || asked > capturable {
        return Err(GatewayError::Invalid(format!(
            "capture must be between 1 and {capturable} minor units, got {asked}"
        )));
    }
    intent.status = IntentStatus::Succeeded;
    intent.amount_received = asked;
    intent.amount_capturable = 0;
    intent.authorization_expires_at = None;
    Ok(asked)
}

/// `processing` or `requires_action` (a failed challenge) → `failed` with its reason
/// (`Ok(false)` if it already failed).
pub fn fail(intent: &mut PaymentIntent, failure: PaymentFailure) -> Result<bool, GatewayError> {
    match intent.status {
        IntentStatus::Processing | IntentStatus::RequiresAction => {
            intent.status = IntentStatus::Failed;
            intent.failure = Some(failure);
            Ok(true)
        }
        IntentStatus::Failed => Ok(false),
        s => Err(conflict("fail", s)),
    }
}

/// `requires_confirmation`, `requires_action` or `requires_capture` (a void: the
/// authorization is released) → `canceled` (`Ok(false)` if already canceled). A
/// `processing` intent is being charged and cannot be canceled, nor a succeeded one (it is
/// refunded instead) or a failed one: `Conflict`.
pub fn cancel(intent: &mut PaymentIntent) -> Result<bool, GatewayError> {
    match intent.status {
        IntentStatus::RequiresConfirmation
        | IntentStatus::RequiresAction
        | IntentStatus::RequiresCapture => {
            intent.status = IntentStatus::Canceled;
            intent.amount_capturable = 0;
            intent.authorization_expires_at = None;
            Ok(true)
        }
        IntentStatus::Canceled => Ok(false),
        s => Err(conflict("cancel", s)),
    }
}

/// The authorization's lifetime ended: `requires_capture` → `canceled`. `Ok(false)` for an
/// intent that left `requires_capture` meanwhile (captured or voided: nothing to expire).
pub fn expire_authorization(intent: &mut PaymentIntent) -> Result<bool, GatewayError> {
    match intent.status {
        IntentStatus::RequiresCapture => cancel(intent),
        _ => Ok(false),
    }
}

/// Refunds `amount_minor` (or all that is left when `None`) of a succeeded intent and
/// returns the amount refunded. The refunded total never exceeds what was received (the
/// captured amount of a partial capture, not the amount authorized): asking for more than
/// is left is `Conflict` (nothing left) or `Invalid` (too much), and changes nothing.
pub fn refund(
    intent: &mut PaymentIntent,
    amount_minor: Option<i64>,
) -> Result<Money, GatewayError> {
    if intent.status != IntentStatus::Succeeded {
        return Err(conflict("refund", intent.status));
    }
    let left = intent.amount_received - intent.amount_refunded;
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
            CaptureMethod::Automatic,
            BTreeMap::new(),
            Timestamp::from_millis(0),
        )
        .unwrap()
    }

    fn manual(amount: i64) -> PaymentIntent {
        open(
            IntentId::new("pi_manual").unwrap(),
            krw(amount),
            CaptureMethod::Manual,
            BTreeMap::new(),
            Timestamp::from_millis(0),
        )
        .unwrap()
    }

    const EXPIRES: Timestamp = Timestamp::from_millis(7_000);

    fn authorized(amount: i64) -> PaymentIntent {
        let mut i = manual(amount);
        assert!(confirm(&mut i).unwrap());
        assert!(authorize(&mut i, EXPIRES).unwrap());
        i
    }

    fn declined() -> PaymentFailure {
        PaymentFailure {
            code: "card_declined".into(),
            message: "declined".into(),
        }
    }

    /// Asserts that `step` is refused with `Conflict` carrying the intent's status, and
    /// that the intent did not change.
    #[track_caller]
    fn refused<T: std::fmt::Debug>(
        i: &PaymentIntent,
        step: impl FnOnce(&mut PaymentIntent) -> Result<T, GatewayError>,
    ) -> GatewayError {
        let mut copy = i.clone();
        let err = step(&mut copy).expect_err("the move is refused");
        assert_eq!(&copy, i, "a refused move changes nothing");
        err
    }

    #[track_caller]
    fn conflict_with(err: GatewayError, expected: IntentStatus) {
        match err {
            GatewayError::Conflict { status, .. } => assert_eq!(status, expected),
            other => panic!("expected a conflict, got {other:?}"),
        }
    }

    #[test]
    fn manual_confirmation_authorizes_the_whole_amount() {
        let mut i = manual(1_000);
        assert!(confirm(&mut i).unwrap());
        assert_eq!(i.status, IntentStatus::Processing);
        conflict_with(refused(&i, succeed), IntentStatus::Processing);
        assert!(authorize(&mut i, EXPIRES).unwrap());
        assert_eq!(i.status, IntentStatus::RequiresCapture);
        assert_eq!(i.amount_capturable, 1_000);
        assert_eq!(i.amount_received, 0);
        assert_eq!(i.authorization_expires_at, Some(EXPIRES));
        assert!(
            !authorize(&mut i, EXPIRES).unwrap(),
            "a repeat changes nothing"
        );
        assert!(
            !confirm(&mut i).unwrap(),
            "confirming again changes nothing"
        );
        assert_eq!(i.status, IntentStatus::RequiresCapture);
    }

    #[test]
    fn an_automatic_intent_is_never_authorized_only() {
        let mut i = new_intent(1_000);
        confirm(&mut i).unwrap();
        conflict_with(
            refused(&i, |i| authorize(i, EXPIRES)),
            IntentStatus::Processing,
        );
        succeed(&mut i).unwrap();
        assert_eq!(i.amount_received, 1_000);
        assert_eq!(i.amount_capturable, 0);
        conflict_with(refused(&i, |i| capture(i, None)), IntentStatus::Succeeded);
    }

    #[test]
    fn a_full_capture_takes_everything_authorized() {
        let mut i = authorized(1_000);
        assert_eq!(capture(&mut i, None).unwrap(), 1_000);
        assert_eq!(i.status, IntentStatus::Succeeded);
        assert_eq!((i.amount_received, i.amount_capturable), (1_000, 0));
        assert_eq!(i.authorization_expires_at, None);
    }

    #[test]
    fn a_partial_capture_releases_the_rest_and_bounds_refunds() {
        let mut i = authorized(1_000);
        assert_eq!(capture(&mut i, Some(600)).unwrap(), 600);
        assert_eq!((i.amount_received, i.amount_capturable), (600, 0));
        assert!(matches!(
            refused(&i, |i| refund(i, Some(601))),
            GatewayError::Invalid(_)
        ));
        assert_eq!(refund(&mut i, None).unwrap(), krw(600), "what was taken");
        assert!(i.fully_refunded());
        conflict_with(refused(&i, |i| refund(i, Some(1))), IntentStatus::Succeeded);
    }

    #[test]
    fn capture_amounts_out_of_range_are_invalid_and_change_nothing() {
        let i = authorized(1_000);
        for bad in [0, -1, 1_001, i64::MIN, i64::MAX] {
            assert!(
                matches!(
                    refused(&i, |i| capture(i, Some(bad))),
                    GatewayError::Invalid(_)
                ),
                "{bad}"
            );
        }
        assert_eq!(i.status, IntentStatus::RequiresCapture);
    }

    #[test]
    fn capturing_twice_or_after_a_void_is_a_conflict_with_the_status() {
        let mut i = authorized(1_000);
        capture(&mut i, Some(10)).unwrap();
        conflict_with(refused(&i, |i| capture(i, None)), IntentStatus::Succeeded);
        conflict_with(refused(&i, cancel), IntentStatus::Succeeded);
        let mut v = authorized(1_000);
        assert!(cancel(&mut v).unwrap(), "void");
        assert_eq!(v.status, IntentStatus::Canceled);
        assert_eq!(v.amount_capturable, 0);
        assert!(!cancel(&mut v).unwrap(), "a repeated void changes nothing");
        conflict_with(refused(&v, |i| capture(i, None)), IntentStatus::Canceled);
        conflict_with(refused(&v, |i| refund(i, None)), IntentStatus::Canceled);
        assert_eq!(v.amount_received, 0);
    }

    #[test]
    fn capture_before_authorization_is_a_conflict() {
        let i = manual(1_000);
        conflict_with(
            refused(&i, |i| capture(i, None)),
            IntentStatus::RequiresConfirmation,
        );
        let mut p = manual(1_000);
        confirm(&mut p).unwrap();
        conflict_with(refused(&p, |i| capture(i, None)), IntentStatus::Processing);
    }

    #[test]
    fn an_authorization_expires_into_canceled_unless_it_moved_on() {
        let mut i = authorized(1_000);
        assert!(expire_authorization(&mut i).unwrap());
        assert_eq!(i.status, IntentStatus::Canceled);
        assert_eq!(i.amount_capturable, 0);
        assert!(!expire_authorization(&mut i).unwrap());
        let mut c = authorized(1_000);
        capture(&mut c, None).unwrap();
        let before = c.clone();
        assert!(
            !expire_authorization(&mut c).unwrap(),
            "captured: nothing to expire"
        );
        assert_eq!(c, before);
    }

    #[test]
    fn a_challenge_waits_for_the_buyer() {
        let mut i = manual(1_000);
        assert!(require_action(&mut i).unwrap());
        assert_eq!(i.status, IntentStatus::RequiresAction);
        assert!(!require_action(&mut i).unwrap());
        assert!(
            !confirm(&mut i).unwrap(),
            "confirming again never skips the challenge"
        );
        assert_eq!(i.status, IntentStatus::RequiresAction);
        conflict_with(
            refused(&i, |i| capture(i, None)),
            IntentStatus::RequiresAction,
        );
        assert!(authenticate(&mut i).unwrap());
        assert_eq!(i.status, IntentStatus::Processing);
        assert!(!authenticate(&mut i).unwrap());
        authorize(&mut i, EXPIRES).unwrap();
        assert!(!authenticate(&mut i).unwrap());

        let mut f = new_intent(1_000);
        require_action(&mut f).unwrap();
        assert!(fail(&mut f, declined()).unwrap(), "a failed challenge");
        assert_eq!(f.status, IntentStatus::Failed);
        conflict_with(refused(&f, authenticate), IntentStatus::Failed);

        let mut c = new_intent(1_000);
        require_action(&mut c).unwrap();
        assert!(
            cancel(&mut c).unwrap(),
            "an unfinished challenge can be canceled"
        );
        conflict_with(refused(&c, authenticate), IntentStatus::Canceled);
        conflict_with(refused(&c, require_action), IntentStatus::Canceled);
        conflict_with(
            refused(&new_intent(1), authenticate),
            IntentStatus::RequiresConfirmation,
        );
    }

    #[test]
    fn failed_intents_cannot_be_captured_voided_or_refunded() {
        let mut i = manual(1_000);
        confirm(&mut i).unwrap();
        fail(&mut i, declined()).unwrap();
        conflict_with(refused(&i, |i| capture(i, None)), IntentStatus::Failed);
        conflict_with(refused(&i, cancel), IntentStatus::Failed);
        conflict_with(refused(&i, |i| authorize(i, EXPIRES)), IntentStatus::Failed);
        conflict_with(refused(&i, |i| refund(i, None)), IntentStatus::Failed);
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
                    CaptureMethod::Automatic,
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
