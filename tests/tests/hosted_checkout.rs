//! Checkout on the provider's hosted page (in-process sandbox, manual clock): the buyer's
//! attempts are made as the sandbox's page makes them, and the provider's reports reach the
//! checkout as webhooks would. A declined card leaves the hold paying for another card; a
//! late decline of an earlier attempt never pre-empts the attempt that paid; a challenge
//! card pays once its code is given; a session still open when the hold ends is closed and
//! the hold fails; a payment made on the page after the hold ended and was resold is voided.

use std::time::Duration;

mod common;

use payment_sandbox::cards::{CHALLENGE_CODE, numbers};
use payment_sandbox::gateway::PayOutcome;
use ticket_core::Error;
use ticket_core::Refusal;
use ticket_core::gateway::{
    CheckoutSession, CheckoutSessionStatus, EventKind, IntentStatus, PaymentGateway, PaymentIntent,
    PaymentRef,
};
use ticket_core::model::hold::{Hold, HoldState};
use ticket_core::service::{CapturePreference, PaymentResult, RefundReason};
use ticket_core::testkit::user;

use common::shop::{Shop, shop_with};

const RETURN_URL: &str = "http://shop.example/checkout/return?order=7";

async fn shop(capacity: u32) -> Shop {
    shop_with(capacity, CapturePreference::ManualWhenSupported).await
}

/// User `i` holds one unit and opens the provider's page for it.
async fn on_the_page(s: &Shop, i: usize) -> (Hold, CheckoutSession) {
    let h = s.f.hold(&user(i), 1).await;
    let c = s
        .checkout
        .begin_hosted(h.id, &h.user, RETURN_URL)
        .await
        .expect("hosted checkout");
    assert_eq!(c.hold.state, HoldState::Paying);
    assert_eq!(
        c.hold.payment_ref,
        Some(PaymentRef::CheckoutSession(c.session.clone().expect("session").id).to_string())
    );
    (h, c.session.expect("session"))
}

/// The session's latest attempt at the provider.
async fn attempt(s: &Shop, session: &CheckoutSession) -> PaymentIntent {
    let now = s
        .sandbox
        .get_checkout_session(&session.id)
        .await
        .expect("session");
    s.sandbox
        .get_intent(&now.intent.expect("an attempt"))
        .await
        .expect("intent")
}

/// The session is expired at the provider and its page takes no payment.
async fn assert_closed(s: &Shop, session: &CheckoutSession) {
    let closed = s
        .sandbox
        .get_checkout_session(&session.id)
        .await
        .expect("session");
    assert_eq!(closed.status, CheckoutSessionStatus::Expired);
    assert!(
        s.sandbox
            .pay_checkout_session(&session.id, numbers::SUCCEEDS)
            .is_err(),
        "a closed page takes no payment"
    );
}

/// The provider reports `intent` as a webhook would.
async fn report(s: &Shop, n: &str, kind: EventKind, intent: &PaymentIntent) -> PaymentResult {
    s.checkout
        .handle_event(&s.event(n, kind, 5, intent))
        .await
        .expect("event applied")
}

#[tokio::test]
async fn paying_on_the_page_confirms_then_captures() {
    let s = shop(2).await;
    let (h, session) = on_the_page(&s, 1).await;
    assert_eq!(session.amount, h.amount);
    assert!(session.url.contains(session.id.as_str()), "{}", session.url);
    let paid = s
        .sandbox
        .pay_checkout_session(&session.id, numbers::SUCCEEDS)
        .expect("pay");
    let PayOutcome::Completed { return_to } = paid else {
        panic!("expected the session to complete, got {paid:?}")
    };
    assert!(
        return_to.starts_with("http://shop.example/checkout/return?order=7&")
            && return_to.contains(&format!("session_id={}", session.id)),
        "{return_to}"
    );
    let authorized = attempt(&s, &session).await;
    assert_eq!(authorized.status, IntentStatus::RequiresCapture);
    let result = report(
        &s,
        "evt_auth",
        EventKind::AmountCapturableUpdated,
        &authorized,
    )
    .await;
    assert!(
        matches!(result, PaymentResult::Confirmed { .. }),
        "{result:?}"
    );
    let hold = s.f.reload(&h).await;
    assert_eq!(hold.state, HoldState::Confirmed);
    assert_eq!(
        hold.payment_ref.as_deref(),
        Some(authorized.id.as_str()),
        "the intent that paid replaces the session as the payment"
    );
    let captured = attempt(&s, &session).await;
    assert_eq!(
        (captured.status, captured.amount_received),
        (IntentStatus::Succeeded, h.amount.amount_minor)
    );
    assert_eq!(s.f.ga().await, (1, 0, 1));
}

#[tokio::test]
async fn a_declined_card_leaves_the_hold_paying_for_another_card() {
    let s = shop(1).await;
    let (h, session) = on_the_page(&s, 1).await;
    let declined = s
        .sandbox
        .pay_checkout_session(&session.id, numbers::DECLINED)
        .expect("attempt");
    assert!(matches!(declined, PayOutcome::Declined(_)), "{declined:?}");
    let failed = attempt(&s, &session).await;
    assert_eq!(failed.status, IntentStatus::Failed);
    let result = report(&s, "evt_declined", EventKind::PaymentFailed, &failed).await;
    assert!(
        matches!(result, PaymentResult::Ignored { .. }),
        "{result:?}"
    );
    assert_eq!(s.f.reload(&h).await.state, HoldState::Paying);
    assert_eq!(s.f.ga().await, (0, 1, 0), "the unit stays the buyer's");

    s.sandbox
        .pay_checkout_session(&session.id, numbers::SUCCEEDS)
        .expect("second card");
    let paid = attempt(&s, &session).await;
    let result = report(&s, "evt_auth", EventKind::AmountCapturableUpdated, &paid).await;
    assert!(
        matches!(result, PaymentResult::Confirmed { .. }),
        "{result:?}"
    );
    // The first attempt's decline, delivered again late, changes nothing.
    let again = report(&s, "evt_declined_copy", EventKind::PaymentFailed, &failed).await;
    assert!(matches!(again, PaymentResult::Ignored { .. }), "{again:?}");
    assert_eq!(s.f.reload(&h).await.state, HoldState::Confirmed);
    assert_eq!(s.f.ga().await, (0, 0, 1));
}

#[tokio::test]
async fn an_earlier_decline_reported_after_another_attempt_paid_does_not_fail_the_hold() {
    let s = shop(1).await;
    let (h, session) = on_the_page(&s, 1).await;
    s.sandbox
        .pay_checkout_session(&session.id, numbers::DECLINED)
        .expect("attempt");
    let failed = attempt(&s, &session).await;
    s.sandbox
        .pay_checkout_session(&session.id, numbers::SUCCEEDS)
        .expect("second card");
    let paid = attempt(&s, &session).await;
    // The webhooks arrive in the wrong order: the decline first, after the session completed.
    let early = report(&s, "evt_declined", EventKind::PaymentFailed, &failed).await;
    assert!(matches!(early, PaymentResult::Ignored { .. }), "{early:?}");
    assert_eq!(s.f.reload(&h).await.state, HoldState::Paying);
    let result = report(&s, "evt_auth", EventKind::AmountCapturableUpdated, &paid).await;
    assert!(
        matches!(result, PaymentResult::Confirmed { .. }),
        "{result:?}"
    );
    assert_eq!(s.f.ga().await, (0, 0, 1));
}

#[tokio::test]
async fn a_challenge_card_pays_once_its_code_is_given() {
    let s = shop(1).await;
    let (h, session) = on_the_page(&s, 1).await;
    let asked = s
        .sandbox
        .pay_checkout_session(&session.id, numbers::REQUIRES_CHALLENGE)
        .expect("attempt");
    assert!(matches!(asked, PayOutcome::ChallengeRequired), "{asked:?}");
    let waiting = attempt(&s, &session).await;
    assert_eq!(waiting.status, IntentStatus::RequiresAction);
    let result = report(&s, "evt_action", EventKind::RequiresAction, &waiting).await;
    assert!(
        matches!(result, PaymentResult::Ignored { .. }),
        "{result:?}"
    );
    // The reconciler leaves a buyer who is answering the challenge alone.
    let report_now = s
        .checkout
        .reconcile(Duration::from_secs(1), 10)
        .await
        .expect("reconcile");
    assert_eq!(report_now.polled, 0);

    let done = s
        .sandbox
        .answer_checkout_challenge(&session.id, CHALLENGE_CODE)
        .expect("code");
    assert!(matches!(done, PayOutcome::Completed { .. }), "{done:?}");
    let paid = attempt(&s, &session).await;
    let result = report(&s, "evt_auth", EventKind::AmountCapturableUpdated, &paid).await;
    assert!(
        matches!(result, PaymentResult::Confirmed { .. }),
        "{result:?}"
    );
    assert_eq!(s.f.reload(&h).await.state, HoldState::Confirmed);
}

#[tokio::test]
async fn a_session_still_open_when_the_hold_ends_is_closed_and_the_hold_fails() {
    let s = shop(1).await;
    let (h, session) = on_the_page(&s, 1).await;
    // Asking again answers the same session; a card checkout of the same hold answers it too
    // and starts no second payment.
    let again = s
        .checkout
        .begin_hosted(h.id, &h.user, RETURN_URL)
        .await
        .expect("again");
    assert_eq!(again.session.map(|x| x.id), Some(session.id.clone()));
    let by_card = s
        .checkout
        .begin(h.id, &h.user, numbers::SUCCEEDS)
        .await
        .expect("card");
    assert_eq!(by_card.session.map(|x| x.id), Some(session.id.clone()));
    assert!(s.sandbox.intents().is_empty(), "no payment was started");

    let lead = Duration::from_secs(30);
    s.f.clock.set(h.expires_at.minus(Duration::from_secs(10)));
    let report = s.checkout.reconcile(lead, 10).await.expect("reconcile");
    assert_eq!((report.polled, report.failed), (1, 1), "{report:?}");
    assert_eq!(s.f.reload(&h).await.state, HoldState::PaymentFailed);
    assert_closed(&s, &session).await;
    assert_eq!(s.f.ga().await, (1, 0, 0));
}

#[tokio::test]
async fn a_session_completed_while_the_reconciler_looks_is_applied() {
    let s = shop(1).await;
    let (h, session) = on_the_page(&s, 1).await;
    s.sandbox
        .pay_checkout_session(&session.id, numbers::SUCCEEDS)
        .expect("pay");
    // The webhook is lost; the reconciler finds the paid session before the hold expires.
    s.f.clock.set(h.expires_at.minus(Duration::from_secs(10)));
    let report = s
        .checkout
        .reconcile(Duration::from_secs(30), 10)
        .await
        .expect("reconcile");
    assert_eq!((report.polled, report.confirmed), (1, 1), "{report:?}");
    assert_eq!(s.f.reload(&h).await.state, HoldState::Confirmed);
    assert_eq!(attempt(&s, &session).await.status, IntentStatus::Succeeded);
}

#[tokio::test]
async fn paying_on_the_page_after_the_hold_ended_and_was_resold_is_voided() {
    let s = shop(1).await;
    let (a, session) = on_the_page(&s, 1).await;
    // The buyer pays in the hold's last second; the provider's report is slow to come.
    s.f.clock.set(a.expires_at.minus(Duration::from_secs(1)));
    let paid = s
        .sandbox
        .pay_checkout_session(&session.id, numbers::SUCCEEDS)
        .expect("pay");
    assert!(matches!(paid, PayOutcome::Completed { .. }), "{paid:?}");
    // Meanwhile the hold expires and its unit is sold to someone else.
    s.f.clock.set(a.expires_at);
    let swept = s.f.rush.expiry.sweep(10).await.expect("sweep");
    assert_eq!(swept.expired.len(), 1);
    let b = s.f.hold(&user(2), 1).await;
    s.checkout
        .begin(b.id, &b.user, numbers::SUCCEEDS)
        .await
        .expect("resale");
    let authorized = attempt(&s, &session).await;
    let result = report(
        &s,
        "evt_late",
        EventKind::AmountCapturableUpdated,
        &authorized,
    )
    .await;
    let PaymentResult::Voided { hold, reason } = result else {
        panic!("expected a void, got {result:?}")
    };
    assert_eq!(
        (hold.state, reason, hold.id),
        (HoldState::Refunded, RefundReason::LatePayment, a.id)
    );
    let now = attempt(&s, &session).await;
    assert_eq!(
        (now.status, now.amount_received),
        (IntentStatus::Canceled, 0)
    );
    assert_eq!(s.f.ga().await, (0, 0, 1), "B's ticket stands");
}

#[tokio::test]
async fn a_card_checkout_in_progress_cannot_also_open_a_page() {
    let s = shop(2).await;
    let h = s.f.hold(&user(1), 1).await;
    s.checkout
        .begin(h.id, &h.user, numbers::SUCCEEDS_SLOWLY)
        .await
        .expect("card");
    let refused = s
        .checkout
        .begin_hosted(h.id, &h.user, RETURN_URL)
        .await
        .expect_err("already paying by card");
    assert!(
        matches!(refused, Error::Refused(Refusal::IllegalTransition { .. })),
        "{refused:?}"
    );
    let other = s.f.hold(&user(2), 1).await;
    let stranger = s
        .checkout
        .begin_hosted(other.id, &user(3), RETURN_URL)
        .await
        .expect_err("not the owner");
    assert!(
        matches!(stranger, Error::Refused(Refusal::NotOwner)),
        "{stranger:?}"
    );
    let bad_return = s
        .checkout
        .begin_hosted(other.id, &other.user, "javascript:alert(1)")
        .await
        .expect_err("a return URL must be http(s)");
    assert!(matches!(bad_return, Error::Payment(_)), "{bad_return:?}");
    assert_eq!(
        s.f.reload(&other).await.state,
        HoldState::Held,
        "nothing changed"
    );
}

#[tokio::test]
async fn a_page_outliving_its_swept_hold_is_closed_after_the_sweep() {
    let s = shop(1).await;
    let (h, session) = on_the_page(&s, 1).await;
    // The reconciler did not run in time: the sweeper expires the paying hold first.
    s.f.clock.set(h.expires_at);
    let swept = s.f.rush.expiry.sweep(10).await.expect("sweep");
    assert_eq!(swept.expired.len(), 1);
    let report = s
        .checkout
        .settle_expired(&swept.expired)
        .await
        .expect("settle");
    assert_eq!((report.polled, report.errors), (1, 0), "{report:?}");
    assert_closed(&s, &session).await;
    assert_eq!(s.f.ga().await, (1, 0, 0));
}

#[tokio::test]
async fn a_payment_taken_just_before_the_sweep_is_settled_without_its_webhook() {
    let s = shop(1).await;
    let (h, session) = on_the_page(&s, 1).await;
    s.f.clock.set(h.expires_at.minus(Duration::from_secs(1)));
    s.sandbox
        .pay_checkout_session(&session.id, numbers::SUCCEEDS)
        .expect("pay");
    // Its webhook never comes; the hold expires.
    s.f.clock.set(h.expires_at);
    let swept = s.f.rush.expiry.sweep(10).await.expect("sweep");
    let report = s
        .checkout
        .settle_expired(&swept.expired)
        .await
        .expect("settle");
    assert_eq!(
        report.confirmed, 1,
        "re-booked: its unit was still on sale: {report:?}"
    );
    assert_eq!(attempt(&s, &session).await.status, IntentStatus::Succeeded);
    assert_eq!(s.f.ga().await, (0, 0, 1));
    // A second pass over the same holds changes nothing.
    let again = s
        .checkout
        .settle_expired(&swept.expired)
        .await
        .expect("again");
    assert_eq!(again.errors, 0);
    assert_eq!(s.f.ga().await, (0, 0, 1));
}
