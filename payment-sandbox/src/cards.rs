//! Test cards: the payment method chooses the outcome, as with the big providers.
//!
//! | card number | outcome |
//! |---|---|
//! | `4242424242424242` | succeeds at once |
//! | `4000000000000002` | declined: `card_declined` |
//! | `4000000000009995` | declined: `insufficient_funds` |
//! | `4000000000000069` | declined: `expired_card` |
//! | `4000000000000127` | declined: `incorrect_cvc` |
//! | `4000000000000119` | fails: `processing_error` |
//! | `4000000000003220` | stays `processing`, succeeds after [`crate::SandboxConfig::slow_delay`] |
//! | `4000000000000341` | stays `processing`, declined (`card_declined`) after the same delay |
//! | `4000000000000101` | never answers: confirm times out, the intent stays `processing` (its `processing` event is the last: no result ever comes) |
//! | `4000002760003184` | asks for a 3-D Secure-like challenge: confirm leaves the intent `requires_action` (`payment_intent.requires_action`); the one-time code [`CHALLENGE_CODE`] (`123456`) on the hosted payment page authorizes it (then as `4242…`), any other code fails it (`authentication_failed`) |
//! | any other number of 12–19 digits that passes the Luhn check | succeeds at once |
//!
//! Anything else (letters, wrong length, failed Luhn check) is refused when the intent is
//! created, before anything exists.

use ticket_core::gateway::{GatewayError, PaymentFailure};

/// What a test card does when its intent is confirmed.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum CardOutcome {
    /// Succeeds during confirmation.
    Succeeds,
    /// Fails during confirmation.
    Fails(PaymentFailure),
    /// Stays `processing`, then succeeds after the sandbox's slow delay.
    SucceedsAfterDelay,
    /// Stays `processing`, then fails after the sandbox's slow delay.
    FailsAfterDelay(PaymentFailure),
    /// Confirmation never answers (times out); the intent stays `processing` for ever.
    NeverAnswers,
    /// Confirmation stops at `requires_action` until the buyer answers a challenge with
    /// [`CHALLENGE_CODE`] (then it succeeds, or is authorized) or another code (then it
    /// fails with `authentication_failed`).
    RequiresChallenge,
}

/// The one-time code that passes the challenge of [`numbers::REQUIRES_CHALLENGE`]; any other
/// code fails the payment.
pub const CHALLENGE_CODE: &str = "123456";

/// Card numbers with a documented outcome (see the module table).
pub mod numbers {
    /// Succeeds.
    pub const SUCCEEDS: &str = "4242424242424242";
    /// Declined: `card_declined`.
    pub const DECLINED: &str = "4000000000000002";
    /// Declined: `insufficient_funds`.
    pub const INSUFFICIENT_FUNDS: &str = "4000000000009995";
    /// Declined: `expired_card`.
    pub const EXPIRED_CARD: &str = "4000000000000069";
    /// Declined: `incorrect_cvc`.
    pub const INCORRECT_CVC: &str = "4000000000000127";
    /// Fails: `processing_error`.
    pub const PROCESSING_ERROR: &str = "4000000000000119";
    /// Succeeds after the slow delay.
    pub const SUCCEEDS_SLOWLY: &str = "4000000000003220";
    /// Declined after the slow delay.
    pub const DECLINED_SLOWLY: &str = "4000000000000341";
    /// Never answers.
    pub const NEVER_ANSWERS: &str = "4000000000000101";
    /// Asks for a challenge (3-D Secure-like) before it is charged.
    pub const REQUIRES_CHALLENGE: &str = "4000002760003184";
}

fn failure(code: &str, message: &str) -> PaymentFailure {
    PaymentFailure {
        code: code.to_owned(),
        message: message.to_owned(),
    }
}

/// The outcome of a payment method, or `Invalid` for a malformed one.
pub fn outcome(payment_method: &str) -> Result<CardOutcome, GatewayError> {
    let digits = payment_method.trim();
    if !(12..=19).contains(&digits.len()) || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return Err(GatewayError::Invalid(
            "payment method must be a card number of 12 to 19 digits".into(),
        ));
    }
    if !luhn_valid(digits) {
        return Err(GatewayError::Invalid(
            "card number fails the Luhn check".into(),
        ));
    }
    use numbers::*;
    Ok(match digits {
        DECLINED => CardOutcome::Fails(failure("card_declined", "Your card was declined.")),
        INSUFFICIENT_FUNDS => CardOutcome::Fails(failure(
            "insufficient_funds",
            "Your card has insufficient funds.",
        )),
        EXPIRED_CARD => CardOutcome::Fails(failure("expired_card", "Your card has expired.")),
        INCORRECT_CVC => CardOutcome::Fails(failure(
            "incorrect_cvc",
            "Your card's security code is incorrect.",
        )),
        PROCESSING_ERROR => CardOutcome::Fails(failure(
            "processing_error",
            "An error occurred while processing your card.",
        )),
        SUCCEEDS_SLOWLY => CardOutcome::SucceedsAfterDelay,
        DECLINED_SLOWLY => {
            CardOutcome::FailsAfterDelay(failure("card_declined", "Your card was declined."))
        }
        NEVER_ANSWERS => CardOutcome::NeverAnswers,
        REQUIRES_CHALLENGE => CardOutcome::RequiresChallenge,
        _ => CardOutcome::Succeeds,
    })
}

/// The Luhn checksum every real card number passes.
fn luhn_valid(digits: &str) -> bool {
    let sum: u32 = digits
        .bytes()
        .rev()
        .enumerate()
        .map(|(i, b)| {
            let d = u32::from(b - b'0');
            if i % 2 == 1 {
                let d2 = d * 2;
                if d2 > 9 { d2 - 9 } else { d2 }
            } else {
                d
            }
        })
        .sum();
    sum.is_multiple_of(10)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_documented_card_is_valid_and_has_its_outcome() {
        use numbers::*;
        assert_eq!(outcome(SUCCEEDS).unwrap(), CardOutcome::Succeeds);
        for (card, code) in [
            (DECLINED, "card_declined"),
            (INSUFFICIENT_FUNDS, "insufficient_funds"),
            (EXPIRED_CARD, "expired_card"),
            (INCORRECT_CVC, "incorrect_cvc"),
            (PROCESSING_ERROR, "processing_error"),
        ] {
            match outcome(card).unwrap() {
                CardOutcome::Fails(f) => assert_eq!(f.code, code, "{card}"),
                other => panic!("{card}: {other:?}"),
            }
        }
        assert_eq!(
            outcome(SUCCEEDS_SLOWLY).unwrap(),
            CardOutcome::SucceedsAfterDelay
        );
        assert!(matches!(
            outcome(DECLINED_SLOWLY).unwrap(),
            CardOutcome::FailsAfterDelay(_)
        ));
        assert_eq!(outcome(NEVER_ANSWERS).unwrap(), CardOutcome::NeverAnswers);
        assert_eq!(
            outcome(REQUIRES_CHALLENGE).unwrap(),
            CardOutcome::RequiresChallenge
        );
        assert_eq!(
            outcome("5555555555554444").unwrap(),
            CardOutcome::Succeeds,
            "other valid numbers succeed"
        );
    }

    #[test]
    fn malformed_cards_are_invalid() {
        for bad in [
            "",
            "4242",
            "4242424242424241",
            "424242424242424a",
            "42424242424242424242",
            "4242 4242 4242 4242",
        ] {
            assert!(
                matches!(outcome(bad), Err(GatewayError::Invalid(_))),
                "{bad:?}"
            );
        }
    }
}
