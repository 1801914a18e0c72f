//! The PaymentIntent state machine under random sequences of moves, in both capture modes:
//! a refused move changes nothing, and money is never taken twice, returned beyond what was
//! taken, or taken after an intent was canceled or failed.

use std::collections::BTreeMap;

use payment_sandbox::intent;
use proptest::prelude::*;
use ticket_core::Timestamp;
use ticket_core::gateway::{CaptureMethod, IntentId, IntentStatus, PaymentFailure, PaymentIntent};
use ticket_core::model::money::{Currency, Money};

#[derive(Debug, Clone)]
enum Move {
    Confirm,
    RequireAction,
    Authenticate,
    Succeed,
    Authorize,
    Capture(Option<i64>),
    Fail,
    Cancel,
    Expire,
    Refund(Option<i64>),
}

fn a_move() -> impl Strategy<Value = Move> {
    let amount = prop_oneof![Just(None), (-5i64..12_000).prop_map(Some)];
    prop_oneof![
        Just(Move::Confirm),
        Just(Move::RequireAction),
        Just(Move::Authenticate),
        Just(Move::Succeed),
        Just(Move::Authorize),
        amount.clone().prop_map(Move::Capture),
        Just(Move::Fail),
        Just(Move::Cancel),
        Just(Move::Expire),
        amount.prop_map(Move::Refund),
    ]
}

fn apply(i: &mut PaymentIntent, m: &Move) -> bool {
    let failure = PaymentFailure {
        code: "card_declined".into(),
        message: "declined".into(),
    };
    match m {
        Move::Confirm => intent::confirm(i).is_ok(),
        Move::RequireAction => intent::require_action(i).is_ok(),
        Move::Authenticate => intent::authenticate(i).is_ok(),
        Move::Succeed => intent::succeed(i).is_ok(),
        Move::Authorize => intent::authorize(i, Timestamp::from_millis(10_000)).is_ok(),
        Move::Capture(a) => intent::capture(i, *a).is_ok(),
        Move::Fail => intent::fail(i, failure).is_ok(),
        Move::Cancel => intent::cancel(i).is_ok(),
        Move::Expire => intent::expire_authorization(i).is_ok(),
        Move::Refund(a) => intent::refund(i, *a).is_ok(),
    }
}

fn check(i: &PaymentIntent) {
    let amount = i.amount.amount_minor;
    assert!(
        0 <= i.amount_refunded && i.amount_refunded <= i.amount_received,
        "refunded beyond what was taken: {i:?}"
    );
    assert!(
        i.amount_received <= amount,
        "took more than the amount: {i:?}"
    );
    assert_eq!(
        i.amount_capturable > 0,
        i.status == IntentStatus::RequiresCapture,
        "capturable only while authorized: {i:?}"
    );
    assert_eq!(
        i.amount_received > 0,
        i.status == IntentStatus::Succeeded,
        "money taken exactly when succeeded: {i:?}"
    );
    if i.capture_method == CaptureMethod::Automatic {
        assert_ne!(i.status, IntentStatus::RequiresCapture, "{i:?}");
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2_000))]

    #[test]
    fn random_moves_keep_the_money_straight(
        manual in any::<bool>(),
        amount in 1i64..10_000,
        moves in proptest::collection::vec(a_move(), 0..40),
    ) {
        let method = if manual { CaptureMethod::Manual } else { CaptureMethod::Automatic };
        let mut i = intent::open(
            IntentId::new("pi_prop").expect("id"),
            Money { amount_minor: amount, currency: Currency::new("KRW").expect("currency") },
            method,
            BTreeMap::new(),
            Timestamp::from_millis(0),
        )
        .expect("open");
        let mut received_at_success = None;
        for m in &moves {
            let before = i.clone();
            let accepted = apply(&mut i, m);
            if !accepted {
                prop_assert_eq!(&i, &before, "a refused {:?} changed the intent", m);
            }
            check(&i);
            match before.status {
                // Final for money: canceled and failed intents never change again.
                IntentStatus::Canceled | IntentStatus::Failed => {
                    prop_assert_eq!(&i, &before, "{:?} moved a final intent", m);
                }
                // A succeeded intent only sees refunds; what it received never changes.
                IntentStatus::Succeeded => {
                    prop_assert_eq!(i.status, IntentStatus::Succeeded);
                    prop_assert_eq!(i.amount_received, before.amount_received);
                }
                _ => {}
            }
            if i.status == IntentStatus::Succeeded {
                let got = *received_at_success.get_or_insert(i.amount_received);
                prop_assert_eq!(got, i.amount_received, "money taken twice");
            }
        }
    }
}
