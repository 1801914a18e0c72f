//! Authorize, confirm, capture: the checkout with manual capture against the sandbox, one
//! behaviour at a time (in-process, manual clock). A payment is captured only once its hold
//! is confirmed; a late authorization whose units were resold is voided, never charged; a
//! capture the provider does not answer is taken by the capture follower; an authorization
//! that ends uncaptured cancels the reservation; a cancellation before the capture voids.

use std::sync::Arc;
use std::time::Duration;

mod common;

use payment_sandbox::cards::numbers;
use ticket_core::gateway::{
    CaptureMethod, EventKind, IntentId, IntentStatus, PaymentGateway, PaymentIntent,
};
use ticket_core::model::audit::Actor;
use ticket_core::model::hold::{Hold, HoldState};
use ticket_core::model::refund_policy::{FeeTier, RefundBasis, RefundPolicy};
use ticket_core::service::{CapturePreference, CheckoutService, PaymentResult, RefundReason};
use ticket_core::testkit::user;

use common::shop::{Shop, shop_with};
use ticketrush_e2e::counting_gateway::CountingGateway;

async fn manual(capacity: u32) -> Shop {
    shop_with(capacity, CapturePreference::ManualWhenSupported).await
}

/// Waits until the slow card's intent left `processing`.
async fn authorized(s: &Shop, hold: &Hold) -> PaymentIntent {
    for _ in 0..500 {
        let i = s.intent_of(hold).await;
        if i.status != IntentStatus::Processing {
            return i;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    panic!("intent never authorized")
}

/// The sandbox, except that its first `failing` captures go unanswered.
fn unanswered(s: &Shop, failing: usize) -> Arc<CountingGateway> {
    Arc::new(CountingGateway::new(Arc::new(s.sandbox.clone())).with_unanswered_captures(failing))
}

/// User 1's payment is authorized and its hold confirmed, but the provider leaves the first
/// `failing` captures unanswered: the checkout answers `CapturePending`. Returns the gateway,
/// the checkout over it, and the hold.
async fn confirmed_uncaptured(
    s: &Shop,
    failing: usize,
) -> (Arc<CountingGateway>, CheckoutService, Hold) {
    let gateway = unanswered(s, failing);
    let checkout = s.f.rush.checkout(gateway.clone());
    let h = s.f.hold(&user(1), 1).await;
    let c = checkout
        .begin(h.id, &h.user, numbers::SUCCEEDS)
        .await
        .expect("checkout");
    assert!(
        matches!(c.result, Some(PaymentResult::CapturePending { .. })),
        "{c:?}"
    );
    assert_eq!(
        c.hold.state,
        HoldState::Confirmed,
        "confirmed before capture"
    );
    (gateway, checkout, h)
}

#[tokio::test]
async fn an_authorized_payment_confirms_the_hold_then_is_captured() {
    let s = manual(2).await;
    assert_eq!(s.checkout.capture_method(), CaptureMethod::Manual);
    let (h, c) = s.pay(1, numbers::SUCCEEDS).await;
    assert!(
        matches!(c.result, Some(PaymentResult::Confirmed { .. })),
        "{c:?}"
    );
    assert_eq!(c.hold.state, HoldState::Confirmed);
    let intent = s.intent_of(&h).await;
    assert_eq!(intent.capture_method, CaptureMethod::Manual);
    assert_eq!(intent.status, IntentStatus::Succeeded);
    assert_eq!(intent.amount_received, h.amount.amount_minor);
    assert_eq!(s.f.ga().await, (1, 0, 1));
    // Every later report of the same payment changes nothing and captures nothing more.
    for kind in [EventKind::AmountCapturableUpdated, EventKind::Succeeded] {
        let again = s
            .checkout
            .handle_event(&s.event(&format!("evt_{kind:?}"), kind, 9, &intent))
            .await
            .expect("repeat");
        assert!(
            matches!(again, PaymentResult::Confirmed { .. }),
            "{again:?}"
        );
    }
    assert_eq!(s.intent_of(&h).await.amount_received, h.amount.amount_minor);
    assert!(s.sandbox.refunds().is_empty());
}

#[tokio::test]
async fn a_late_authorization_after_resale_is_voided_never_charged() {
    let s = manual(1).await;
    let (a, _) = s.pay(1, numbers::SUCCEEDS_SLOWLY).await;
    s.expire_and_resell().await;
    let late = authorized(&s, &a).await;
    assert_eq!(late.status, IntentStatus::RequiresCapture);

    let event = s.event("evt_late", EventKind::AmountCapturableUpdated, 2, &late);
    let result = s.checkout.handle_event(&event).await.expect("late payment");
    let PaymentResult::Voided { hold, reason } = &result else {
        panic!("expected a void, got {result:?}")
    };
    assert_eq!(
        (hold.state, *reason),
        (HoldState::Refunded, RefundReason::LatePayment)
    );
    let now = s.intent_of(&a).await;
    assert_eq!(
        (now.status, now.amount_received),
        (IntentStatus::Canceled, 0)
    );
    assert!(
        s.sandbox.refunds().is_empty(),
        "nothing charged, nothing refunded"
    );
    // Duplicates and polls of the voided payment change nothing.
    assert_eq!(s.checkout.handle_event(&event).await.expect("dup"), result);
    s.checkout.apply_intent(&now).await.expect("applied again");
    assert_eq!(s.intent_of(&a).await.amount_received, 0);
    assert_eq!(s.f.ga().await, (0, 0, 1), "B's ticket stands");
}

#[tokio::test]
async fn a_late_authorization_with_units_on_sale_is_rebooked_then_captured() {
    let s = manual(1).await;
    let (a, _) = s.pay(1, numbers::SUCCEEDS_SLOWLY).await;
    s.expire().await;
    let late = authorized(&s, &a).await;
    let result = s
        .checkout
        .handle_event(&s.event("evt_late", EventKind::AmountCapturableUpdated, 2, &late))
        .await
        .expect("late payment");
    let PaymentResult::Rebooked { ended, confirmed } = result else {
        panic!("expected a re-booking, got {result:?}")
    };
    assert_eq!(
        (ended.state, confirmed.state),
        (HoldState::Expired, HoldState::Confirmed)
    );
    assert_eq!(s.intent_of(&a).await.status, IntentStatus::Succeeded);
    assert_eq!(s.f.ga().await, (0, 0, 1));
}

#[tokio::test]
async fn an_unanswered_capture_is_taken_by_the_capture_follower() {
    let s = manual(1).await;
    let (_, checkout, h) = confirmed_uncaptured(&s, 1).await;
    assert_eq!(s.intent_of(&h).await.status, IntentStatus::RequiresCapture);

    let follower = checkout.capture_follower("test").expect("follower");
    let report = follower.dispatch(s.f.session).await.expect("follow");
    assert_eq!(report.sent, 1, "{report:?}");
    let intent = s.intent_of(&h).await;
    assert_eq!(
        (intent.status, intent.amount_received),
        (IntentStatus::Succeeded, h.amount.amount_minor)
    );
    // A second pass finds nothing owed.
    let again = follower.dispatch(s.f.session).await.expect("follow again");
    assert_eq!(again.sent, 0);
    assert_eq!(s.f.reload(&h).await.state, HoldState::Confirmed);
}

#[tokio::test]
async fn an_authorization_that_expires_uncaptured_cancels_the_reservation() {
    let s = manual(1).await;
    let (_, checkout, h) = confirmed_uncaptured(&s, usize::MAX).await;
    let authorized = s.intent_of(&h).await;
    let expires = authorized
        .authorization_expires_at
        .expect("an authorization has a lifetime");
    // The provider never answers a capture, and the authorization's lifetime runs out.
    s.f.clock.set(expires.plus(Duration::from_secs(1)));
    let ended = s.intent_of(&h).await;
    assert_eq!(
        (ended.status, ended.amount_received),
        (IntentStatus::Canceled, 0)
    );
    // The follower finds the reservation unpaid and cancels it.
    let report = checkout
        .capture_follower("test")
        .expect("follower")
        .dispatch(s.f.session)
        .await
        .expect("follow");
    assert_eq!((report.sent, report.gave_up), (1, 0), "{report:?}");
    assert_eq!(s.f.reload(&h).await.state, HoldState::Cancelled);
    assert_eq!(s.f.ga().await, (1, 0, 0), "its unit is back on sale");
    // The provider's canceled event, arriving after, changes nothing more.
    let result = checkout
        .handle_event(&s.event("evt_canceled", EventKind::Canceled, 3, &ended))
        .await
        .expect("canceled");
    assert!(
        matches!(
            result,
            PaymentResult::Failed { .. } | PaymentResult::Ignored { .. }
        ),
        "{result:?}"
    );
    assert_eq!(s.f.ga().await, (1, 0, 0));
}

#[tokio::test]
async fn the_providers_canceled_event_alone_cancels_an_uncaptured_reservation() {
    let s = manual(1).await;
    let (_, checkout, h) = confirmed_uncaptured(&s, usize::MAX).await;
    let intent_id = IntentId::new(s.f.reload(&h).await.payment_ref.expect("paid")).expect("id");
    let ended = s
        .sandbox
        .void(&intent_id)
        .await
        .expect("voided at the provider");
    let result = checkout
        .handle_event(&s.event("evt_canceled", EventKind::Canceled, 3, &ended))
        .await
        .expect("canceled");
    let PaymentResult::Failed { hold } = result else {
        panic!("expected the reservation to fail, got {result:?}")
    };
    assert_eq!(hold.state, HoldState::Cancelled);
    assert_eq!(s.f.ga().await, (1, 0, 0));
}

#[tokio::test]
async fn cancelling_before_the_capture_voids_instead_of_refunding() {
    let s = manual(1).await;
    let (gateway, _, h) = confirmed_uncaptured(&s, usize::MAX).await;
    let out =
        s.f.rush
            .refunds(gateway.clone())
            .cancel_as(
                h.id,
                Actor::Operator("organiser".into()),
                RefundBasis::Full,
                "changed plans",
            )
            .await
            .expect("cancel");
    assert_eq!(out.hold.state, HoldState::Refunded);
    let intent = s.intent_of(&h).await;
    assert_eq!(
        (intent.status, intent.amount_received),
        (IntentStatus::Canceled, 0)
    );
    assert!(s.sandbox.refunds().is_empty(), "voided, not refunded");
    assert_eq!(s.f.ga().await, (1, 0, 0));
}

#[tokio::test]
async fn a_cancellation_fee_before_the_capture_captures_only_the_fee() {
    let s = manual(1).await;
    s.f.set_policy(|p| {
        p.refund = RefundPolicy {
            cancel_until_before_start_secs: 0,
            tiers: vec![FeeTier {
                before_start_secs: 0,
                fee_bps: 1_000,
            }],
        }
    })
    .await;
    let (gateway, _, h) = confirmed_uncaptured(&s, 1).await;
    let out =
        s.f.rush
            .refunds(gateway.clone())
            .cancel(h.id, &h.user)
            .await
            .expect("the buyer cancels");
    assert_eq!(out.hold.state, HoldState::Refunded);
    let fee = h.amount.amount_minor / 10;
    assert_eq!(out.decision.fee.amount_minor, fee);
    let intent = s.intent_of(&h).await;
    assert_eq!(
        (
            intent.status,
            intent.amount_received,
            intent.amount_refunded
        ),
        (IntentStatus::Succeeded, fee, 0),
        "only the fee was ever taken"
    );
    assert!(s.sandbox.refunds().is_empty());
}
