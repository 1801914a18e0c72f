//! The checkout against the sandbox, one behaviour at a time (in-process, manual clock):
//! immediate and slow outcomes, late payments re-booked or refunded with an audit record,
//! stale, duplicate and reordered events, polling for lost webhooks, amounts that do not
//! match, and cards that never answer.

use std::sync::Arc;
use std::time::Duration;

mod common;

use payment_sandbox::cards::numbers;
use payment_sandbox::{Sandbox, SandboxConfig};
use ticket_core::gateway::{EventKind, GatewayError, IntentStatus, PaymentEvent, PaymentGateway};
use ticket_core::memory::MemoryStore;
use ticket_core::model::audit::AuditScope;
use ticket_core::model::hold::HoldState;
use ticket_core::service::{PaymentResult, RefundReason};
use ticket_core::testkit::{Fixture, user};
use ticket_core::{Clock, Error};

use common::shop::shop;

#[tokio::test]
async fn a_succeeding_card_confirms_at_once() {
    let s = shop(2).await;
    let (h, c) = s.pay(1, numbers::SUCCEEDS).await;
    assert!(
        matches!(c.result, Some(PaymentResult::Confirmed { .. })),
        "{c:?}"
    );
    assert_eq!(c.hold.state, HoldState::Confirmed);
    let intent = c.intent.expect("intent");
    assert_eq!(
        (intent.status, intent.amount),
        (IntentStatus::Succeeded, h.amount)
    );
    assert_eq!(c.hold.payment_ref.as_deref(), Some(intent.id.as_str()));
    assert_eq!(s.f.ga().await, (1, 0, 1));
}

#[tokio::test]
async fn a_declined_card_fails_the_hold_and_returns_its_units() {
    let s = shop(1).await;
    let (_, c) = s.pay(1, numbers::INSUFFICIENT_FUNDS).await;
    assert!(
        matches!(c.result, Some(PaymentResult::Failed { .. })),
        "{c:?}"
    );
    assert_eq!(c.hold.state, HoldState::PaymentFailed);
    assert_eq!(s.f.ga().await, (1, 0, 0));
}

#[tokio::test]
async fn a_malformed_card_changes_nothing() {
    let s = shop(1).await;
    let h = s.f.hold(&user(1), 1).await;
    let err = s
        .checkout
        .begin(h.id, &h.user, "4242424242424241")
        .await
        .expect_err("bad card");
    assert!(
        matches!(err, Error::Payment(GatewayError::Invalid(_))),
        "{err:?}"
    );
    assert_eq!(s.f.reload(&h).await.state, HoldState::Held);
    assert!(s.sandbox.intents().is_empty());
    assert_eq!(s.f.ga().await, (0, 1, 0));
}

#[tokio::test]
async fn only_the_owner_can_pay_and_beginning_twice_reuses_the_intent() {
    let s = shop(1).await;
    let h = s.f.hold(&user(1), 1).await;
    let err = s
        .checkout
        .begin(h.id, &user(2), numbers::SUCCEEDS)
        .await
        .expect_err("not owner");
    assert!(err.refusal().is_some(), "{err:?}");
    let a = s
        .checkout
        .begin(h.id, &h.user, numbers::SUCCEEDS_SLOWLY)
        .await
        .expect("first");
    let b = s
        .checkout
        .begin(h.id, &h.user, numbers::SUCCEEDS_SLOWLY)
        .await
        .expect("again");
    assert_eq!(a.intent.map(|i| i.id), b.intent.map(|i| i.id));
    assert_eq!(s.sandbox.intents().len(), 1);
}

/// Checkouts of one hold racing each other share the one intent: none cancels it under
/// another, every one answers the same confirmed hold, and the card is charged once.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn racing_checkouts_of_one_hold_charge_once_and_all_answer_it() {
    let s = Arc::new(shop(3).await);
    for round in 0..20 {
        let h = s.f.hold(&user(round), 1).await;
        let racers: Vec<_> = (0..8)
            .map(|_| {
                let (s, h) = (s.clone(), h.clone());
                tokio::spawn(
                    async move { s.checkout.begin(h.id, &h.user, numbers::SUCCEEDS).await },
                )
            })
            .collect();
        for r in racers {
            let c = r
                .await
                .expect("task")
                .expect("every racer answers the checkout");
            assert_eq!(c.hold.state, HoldState::Confirmed, "{c:?}");
        }
        let intent = s.intent_of(&h).await;
        assert_eq!(intent.status, IntentStatus::Succeeded);
        assert_eq!(s.f.ga().await, (2, 0, 1), "round {round}");
        // release the unit for the next round
        s.f.rush
            .cancellations
            .cancel(h.id, &h.user, "next round")
            .await
            .expect("cancel");
    }
    let charged = s
        .sandbox
        .intents()
        .iter()
        .filter(|i| i.status == IntentStatus::Succeeded)
        .count();
    assert_eq!((s.sandbox.intents().len(), charged), (20, 20));
}

#[tokio::test]
async fn reordered_duplicate_and_stale_events_settle_once() {
    let s = shop(2).await;
    let (h, c) = s.pay(1, numbers::SUCCEEDS_SLOWLY).await;
    assert_eq!((c.hold.state, c.result), (HoldState::Paying, None));
    let paid = s.settled(&h).await;
    let mut processing = paid.clone();
    processing.status = IntentStatus::Processing;
    let succeeded = s.event("evt_2", EventKind::Succeeded, 2, &paid);
    // The newer event first, then the older one, then the newer again (a duplicate).
    let first = s
        .checkout
        .handle_event(&succeeded)
        .await
        .expect("succeeded");
    assert!(
        matches!(first, PaymentResult::Confirmed { .. }),
        "{first:?}"
    );
    let old = s
        .checkout
        .handle_event(&s.event("evt_1", EventKind::Processing, 1, &processing))
        .await
        .expect("processing");
    assert!(matches!(old, PaymentResult::Ignored { .. }), "{old:?}");
    assert_eq!(
        s.checkout
            .handle_event(&succeeded)
            .await
            .expect("duplicate"),
        first
    );
    // A failure report after the success changes nothing.
    let mut failed = paid.clone();
    failed.status = IntentStatus::Failed;
    let stale = s
        .checkout
        .handle_event(&s.event("evt_3", EventKind::PaymentFailed, 3, &failed))
        .await
        .expect("stale failure");
    assert!(matches!(stale, PaymentResult::Ignored { .. }), "{stale:?}");
    assert_eq!(s.f.reload(&h).await.state, HoldState::Confirmed);
    assert_eq!(s.f.ga().await, (1, 0, 1));
    let audit =
        s.f.rush
            .stores()
            .reservations
            .audit(&AuditScope::Hold(h.id), 50)
            .await
            .expect("audit");
    assert_eq!(audit.iter().filter(|r| r.to == "CONFIRMED").count(), 1);
    // The same event id with another body is a key reuse, not a second settlement.
    let mut forged = succeeded.clone();
    forged.sequence = 9;
    assert!(matches!(
        s.checkout.handle_event(&forged).await,
        Err(Error::KeyReused)
    ));
}

#[tokio::test]
async fn a_late_payment_after_resale_is_refunded_once_and_audited() {
    let s = shop(1).await;
    let (a, _) = s.pay(1, numbers::SUCCEEDS_SLOWLY).await;
    // The hold expires before the provider answers, and its unit is sold to someone else.
    s.expire_and_resell().await;
    let paid = s.settled(&a).await;
    assert_eq!(paid.status, IntentStatus::Succeeded);

    let event = s.event("evt_late", EventKind::Succeeded, 2, &paid);
    let result = s.checkout.handle_event(&event).await.expect("late payment");
    let PaymentResult::Refunded {
        hold,
        reason,
        refund,
    } = &result
    else {
        panic!("expected a refund, got {result:?}")
    };
    assert_eq!(
        (hold.state, *reason),
        (HoldState::Refunded, RefundReason::LatePayment)
    );
    let refund = refund.as_ref().expect("money returned");
    assert_eq!(refund.amount, a.amount);
    // A duplicate delivery and a poll of the same intent return no money twice.
    assert_eq!(
        s.checkout.handle_event(&event).await.expect("duplicate"),
        result
    );
    s.checkout.apply_intent(&paid).await.expect("applied again");
    assert_eq!(s.sandbox.refunds().len(), 1);
    assert!(s.intent_of(&a).await.fully_refunded());
    let audit =
        s.f.rush
            .stores()
            .reservations
            .audit(&AuditScope::Hold(a.id), 50)
            .await
            .expect("audit");
    assert!(
        audit
            .iter()
            .any(|r| r.to == "REFUNDED" && r.correlation_id.as_deref() == Some(paid.id.as_str())),
        "the refund is in the audit trail: {audit:?}"
    );
    assert_eq!(s.f.ga().await, (0, 0, 1), "B's ticket stands");
}

#[tokio::test]
async fn a_late_payment_with_units_still_on_sale_is_rebooked() {
    let s = shop(1).await;
    let (a, _) = s.pay(1, numbers::SUCCEEDS_SLOWLY).await;
    s.expire().await;
    let paid = s.settled(&a).await;
    let result = s
        .checkout
        .handle_event(&s.event("evt_late", EventKind::Succeeded, 2, &paid))
        .await
        .expect("late payment");
    let PaymentResult::Rebooked { ended, confirmed } = result else {
        panic!("expected a re-booking, got {result:?}")
    };
    assert_eq!(
        (ended.state, confirmed.state),
        (HoldState::Expired, HoldState::Confirmed)
    );
    assert!(s.sandbox.refunds().is_empty());
    assert_eq!(s.f.ga().await, (0, 0, 1));
}

#[tokio::test]
async fn a_lost_webhook_is_resolved_by_polling_before_expiry() {
    let s = shop(1).await;
    let (h, _) = s.pay(1, numbers::SUCCEEDS_SLOWLY).await;
    s.settled(&h).await;
    let lead = Duration::from_secs(30);
    // Too early to poll: nothing is due.
    assert_eq!(
        s.checkout.reconcile(lead, 10).await.expect("poll").polled,
        0
    );
    s.f.clock.set(h.expires_at.minus(Duration::from_secs(10)));
    let report = s.checkout.reconcile(lead, 10).await.expect("poll");
    assert_eq!((report.polled, report.confirmed), (1, 1), "{report:?}");
    let now = s.f.reload(&h).await;
    assert_eq!(now.state, HoldState::Confirmed);
    assert!(s.f.clock.now() < now.expires_at, "settled before expiry");
}

#[tokio::test]
async fn polling_cancels_an_intent_that_was_never_confirmed() {
    let s = shop(1).await;
    let h = s.f.hold(&user(1), 1).await;
    // A host that created the intent and started checkout, then crashed before confirming.
    let intent = s.unconfirmed_intent(&h, "crashed").await;
    s.f.rush
        .payments
        .start(h.id, &h.user, intent.id.as_str())
        .await
        .expect("start");
    s.f.clock.set(h.expires_at.minus(Duration::from_secs(1)));
    let report = s
        .checkout
        .reconcile(Duration::from_secs(5), 10)
        .await
        .expect("poll");
    assert_eq!(report.failed, 1, "{report:?}");
    assert_eq!(s.intent_of(&h).await.status, IntentStatus::Canceled);
    assert_eq!(s.f.reload(&h).await.state, HoldState::PaymentFailed);
    assert_eq!(s.f.ga().await, (1, 0, 0));
}

#[tokio::test]
async fn a_card_that_never_answers_charges_nothing() {
    let s = shop(1).await;
    let (h, c) = s.pay(1, numbers::NEVER_ANSWERS).await;
    assert_eq!(
        (c.hold.state, c.intent, c.result),
        (HoldState::Paying, None, None)
    );
    s.f.clock.set(h.expires_at.minus(Duration::from_secs(1)));
    let report = s
        .checkout
        .reconcile(Duration::from_secs(5), 10)
        .await
        .expect("poll");
    assert_eq!(report.pending, 1, "still processing: {report:?}");
    s.f.clock.set(h.expires_at);
    s.f.rush.expiry.sweep(10).await.expect("sweep");
    assert_eq!(s.f.reload(&h).await.state, HoldState::Expired);
    assert_eq!(s.intent_of(&h).await.status, IntentStatus::Processing);
    assert!(s.sandbox.refunds().is_empty());
    assert_eq!(s.f.ga().await, (1, 0, 0));
}

#[tokio::test]
async fn a_payment_of_another_amount_is_refunded_and_fails_the_hold() {
    let s = shop(1).await;
    let (h, _) = s.pay(1, numbers::SUCCEEDS_SLOWLY).await;
    let mut paid = s.settled(&h).await;
    paid.amount.amount_minor -= 1;
    let result = s
        .checkout
        .handle_event(&s.event("evt_odd", EventKind::Succeeded, 2, &paid))
        .await
        .expect("mismatch");
    let PaymentResult::Refunded {
        hold,
        reason,
        refund,
    } = result
    else {
        panic!("expected a refund, got {result:?}")
    };
    assert_eq!(
        (hold.state, reason),
        (HoldState::PaymentFailed, RefundReason::AmountMismatch)
    );
    assert!(refund.is_some());
    assert_eq!(s.f.ga().await, (1, 0, 0));
}

#[tokio::test]
async fn a_failed_intent_that_never_started_checkout_leaves_the_hold_alone() {
    let s = shop(1).await;
    let h = s.f.hold(&user(1), 1).await;
    let intent = s.unconfirmed_intent(&h, "abandoned").await;
    let canceled = s.sandbox.cancel_intent(&intent.id).await.expect("cancel");
    let result = s.checkout.apply_intent(&canceled).await.expect("applied");
    assert!(
        matches!(result, PaymentResult::Ignored { .. }),
        "{result:?}"
    );
    assert_eq!(s.f.reload(&h).await.state, HoldState::Held, "still payable");
    let c = s
        .checkout
        .begin(h.id, &h.user, numbers::SUCCEEDS)
        .await
        .expect("pay");
    assert_eq!(c.hold.state, HoldState::Confirmed);
}

#[tokio::test]
async fn unknown_event_types_are_acknowledged_and_ignored() {
    let s = shop(1).await;
    let (h, _) = s.pay(1, numbers::SUCCEEDS_SLOWLY).await;
    let intent = s.intent_of(&h).await;
    let mut json =
        serde_json::to_value(s.event("evt_new", EventKind::Processing, 1, &intent)).expect("json");
    json["type"] = "charge.dispute.created".into();
    let event: PaymentEvent = serde_json::from_value(json).expect("unknown types parse");
    assert_eq!(event.kind, EventKind::Other);
    let result = s.checkout.handle_event(&event).await.expect("handled");
    assert!(
        matches!(result, PaymentResult::Ignored { .. }),
        "{result:?}"
    );
    assert_eq!(s.f.reload(&h).await.state, HoldState::Paying);
}

#[tokio::test]
async fn paying_an_expired_hold_is_refused_before_any_intent_exists() {
    let s = shop(1).await;
    let h = s.f.hold(&user(1), 1).await;
    s.f.clock.set(h.expires_at);
    for swept in [false, true] {
        if swept {
            assert_eq!(
                s.f.rush
                    .expiry
                    .sweep(10)
                    .await
                    .expect("sweep")
                    .expired
                    .len(),
                1
            );
        }
        let err = s
            .checkout
            .begin(h.id, &h.user, numbers::SUCCEEDS)
            .await
            .expect_err("expired");
        assert!(
            matches!(
                err,
                Error::Refused(ticket_core::Refusal::HoldExpired { .. })
            ),
            "swept {swept}: {err:?}"
        );
    }
    assert!(s.sandbox.intents().is_empty(), "nothing to charge");
    assert_eq!(s.f.ga().await, (1, 0, 0));
}

#[tokio::test]
async fn polling_leaves_a_checkout_that_is_still_starting() {
    let s = shop(1).await;
    let h = s.f.hold(&user(1), 1).await;
    let intent = s.unconfirmed_intent(&h, "starting").await;
    // Checkout starts 5 s before the hold expires; the confirmation is still on its way.
    s.f.clock.set(h.expires_at.minus(Duration::from_secs(5)));
    s.f.rush
        .payments
        .start(h.id, &h.user, intent.id.as_str())
        .await
        .expect("start");
    let report = s
        .checkout
        .reconcile(Duration::from_secs(30), 10)
        .await
        .expect("poll");
    assert_eq!(
        (report.polled, report.pending, report.failed),
        (1, 1, 0),
        "{report:?}"
    );
    assert_eq!(
        s.intent_of(&h).await.status,
        IntentStatus::RequiresConfirmation
    );
    assert_eq!(s.f.reload(&h).await.state, HoldState::Paying);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_checkout_works_over_the_sandbox_http_api() {
    let f = Fixture::general(MemoryStore::new().stores(), 2, Duration::ZERO).await;
    let sandbox =
        Sandbox::with_clock(SandboxConfig::default(), Arc::new(f.clock.clone())).expect("sandbox");
    let key = payment_sandbox::auth::ApiKey::generate().expect("key");
    let (addr, _server) = payment_sandbox::http::serve(
        sandbox.clone(),
        key.clone(),
        "127.0.0.1:0".parse().expect("addr"),
    )
    .await
    .expect("serve");
    let gateway = payment_sandbox::client::HttpGateway::new(
        &format!("http://{addr}"),
        key,
        Duration::from_secs(5),
    )
    .expect("client");
    let checkout = f.rush.checkout(Arc::new(gateway));
    let a = f.hold(&user(1), 1).await;
    let paid = checkout
        .begin(a.id, &a.user, numbers::SUCCEEDS)
        .await
        .expect("paid");
    assert!(
        matches!(paid.result, Some(PaymentResult::Confirmed { .. })),
        "{paid:?}"
    );
    let b = f.hold(&user(2), 1).await;
    let declined = checkout
        .begin(b.id, &b.user, numbers::DECLINED)
        .await
        .expect("declined");
    assert!(
        matches!(declined.result, Some(PaymentResult::Failed { .. })),
        "{declined:?}"
    );
    let bad = checkout.begin(b.id, &b.user, "nope").await;
    assert!(bad.is_err(), "a failed hold cannot be paid: {bad:?}");
    assert_eq!(sandbox.intents().len(), 2);
    assert_eq!(f.ga().await, (1, 0, 1));
}
