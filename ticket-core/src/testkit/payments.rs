//! Payments: late payments, cancellation with resale and refund, stale failures.

use std::time::Duration;

use super::fixture::{Fixture, user};
use crate::error::{Error, Refusal};
use crate::model::audit::{Actor, AuditScope};
use crate::model::hold::HoldState;
use crate::service::{FailureOutcome, RefundReason, Settlement};
use crate::store::Stores;

/// A payment that succeeds after its hold expired takes the units again when they are still
/// on sale, otherwise refunds (exactly once); both recorded in the audit trail.
pub async fn late_payment_is_rebooked_or_refunded(stores: Stores) {
    let f = Fixture::general(stores, 1, Duration::ZERO).await;
    let a = f.hold(&user(1), 1).await;
    f.rush
        .payments
        .start(a.id, &a.user, "pay-a")
        .await
        .expect("start");
    f.clock.advance(f.rush.limits().hold_ttl);
    assert_eq!(
        f.rush.expiry.sweep(10).await.expect("sweep").expired.len(),
        1
    );
    // Still on sale: re-booked.
    let s = f
        .rush
        .payments
        .succeeded(a.id, "pay-a")
        .await
        .expect("late payment");
    let Settlement::Rebooked { ended, confirmed } = s else {
        panic!("expected a re-booking, got {s:?}")
    };
    assert_eq!(
        (ended.state, ended.rebooked_as),
        (HoldState::Expired, Some(confirmed.id))
    );
    assert_eq!(
        (confirmed.state, confirmed.rebooked_from),
        (HoldState::Confirmed, Some(a.id))
    );
    assert_eq!(f.ga().await, (0, 0, 1));
    let again = f
        .rush
        .payments
        .succeeded(a.id, "pay-a")
        .await
        .expect("duplicate report");
    assert!(
        matches!(again, Settlement::Rebooked { confirmed: ref c, .. } if c.id == confirmed.id),
        "{again:?}"
    );
    assert_eq!(
        f.ga().await,
        (0, 0, 1),
        "a duplicate report re-booked twice"
    );
    let err = f
        .rush
        .stores()
        .reservations
        .transition(crate::model::hold::TransitionRequest {
            hold: a.id,
            to: HoldState::Refunded,
            now: crate::clock::Clock::now(&f.clock),
            actor: Actor::system("conformance"),
            reason: "refund a re-booked payment".into(),
            correlation_id: None,
            payment_ref: None,
        })
        .await
        .expect_err("a re-booked hold is not refunded");
    assert!(
        matches!(err, Error::Refused(Refusal::IllegalTransition { .. })),
        "{err:?}"
    );
    // Resold meanwhile: refunded, once.
    f.rush
        .cancellations
        .cancel(confirmed.id, &user(1), "resale")
        .await
        .expect("cancel");
    let b = f.hold(&user(2), 1).await;
    f.rush
        .payments
        .start(b.id, &b.user, "pay-b")
        .await
        .expect("start");
    f.clock.advance(f.rush.limits().hold_ttl);
    f.rush.expiry.sweep(10).await.expect("sweep");
    let c = f.hold(&user(3), 1).await;
    let s = f
        .rush
        .payments
        .succeeded(b.id, "pay-b")
        .await
        .expect("late payment");
    assert!(
        matches!(s, Settlement::Refund { reason: RefundReason::LatePayment, first: true, ref hold, .. } if hold.state == HoldState::Refunded),
        "{s:?}"
    );
    let s = f
        .rush
        .payments
        .succeeded(b.id, "pay-b")
        .await
        .expect("duplicate");
    assert!(
        matches!(s, Settlement::Refund { first: false, .. }),
        "refund decided twice: {s:?}"
    );
    assert_eq!(
        f.reload(&c).await.state,
        HoldState::Held,
        "the new buyer lost their hold"
    );
    let trail = f
        .rush
        .stores()
        .reservations
        .audit(&AuditScope::Hold(b.id), 100)
        .await
        .expect("audit");
    assert_eq!(trail.last().map(|r| r.to.as_str()), Some("REFUNDED"));
    assert_eq!(f.ga().await, (0, 1, 0));
}

/// Cancelling a confirmed reservation puts its units back on sale at once (resale) and the
/// refund can be recorded exactly once.
pub async fn cancellation_returns_units_and_refunds_once(stores: Stores) {
    let f = Fixture::general(stores, 2, Duration::ZERO).await;
    let h = f.hold(&user(1), 2).await;
    f.pay(&h).await;
    assert_eq!(f.ga().await, (0, 0, 2));
    let err = f
        .rush
        .cancellations
        .cancel(h.id, &user(2), "not mine")
        .await
        .expect_err("owner only");
    assert!(matches!(err, Error::Refused(Refusal::NotOwner)), "{err:?}");
    let c = f
        .rush
        .cancellations
        .cancel(h.id, &user(1), "cannot come")
        .await
        .expect("cancel");
    assert_eq!(c.state, HoldState::Cancelled);
    assert_eq!(
        f.ga().await,
        (2, 0, 0),
        "cancelled units were not put back on sale"
    );
    f.hold(&user(3), 2).await;
    let r = f
        .rush
        .cancellations
        .record_refund(h.id, "re_1", Actor::system("payments"))
        .await
        .expect("refund");
    assert_eq!(r.state, HoldState::Refunded);
    let again = f
        .rush
        .cancellations
        .record_refund(h.id, "re_1", Actor::system("payments"))
        .await
        .expect("repeat");
    assert_eq!(again, r);
    let trail = f
        .rush
        .stores()
        .reservations
        .audit(&AuditScope::Hold(h.id), 100)
        .await
        .expect("audit");
    assert_eq!(
        trail.iter().filter(|a| a.to == "REFUNDED").count(),
        1,
        "refunded twice"
    );
}

/// A payment failure that arrives after the payment succeeded changes nothing; a failure of
/// a live hold returns its units.
pub async fn stale_payment_failure_changes_nothing(stores: Stores) {
    let f = Fixture::general(stores, 5, Duration::ZERO).await;
    let h = f.hold(&user(1), 2).await;
    let paid = f.pay(&h).await;
    let out = f
        .rush
        .payments
        .failed(h.id, "pay", "declined")
        .await
        .expect("stale failure");
    assert_eq!(out, FailureOutcome::Ignored(paid));
    assert_eq!(f.ga().await, (3, 0, 2));
    let g = f.hold(&user(2), 3).await;
    f.rush
        .payments
        .start(g.id, &g.user, "pay-g")
        .await
        .expect("start");
    let out = f
        .rush
        .payments
        .failed(g.id, "pay-g", "insufficient funds")
        .await
        .expect("failure");
    assert!(
        matches!(out, FailureOutcome::Failed(ref x) if x.state == HoldState::PaymentFailed),
        "{out:?}"
    );
    assert_eq!(f.ga().await, (3, 0, 2));
    let out = f
        .rush
        .payments
        .failed(g.id, "pay-g", "insufficient funds")
        .await
        .expect("repeat");
    assert!(matches!(out, FailureOutcome::Failed(_)));
    assert_eq!(f.ga().await, (3, 0, 2));
}

/// `paying_due` lists PAYING holds due by an instant, soonest first, past-due ones until a
/// sweeper expires them, and nothing else (HELD, CONFIRMED, ended holds).
pub async fn paying_due_lists_checkouts_to_poll(stores: Stores) {
    let f = Fixture::general(stores, 10, Duration::ZERO).await;
    let r = f.rush.stores().reservations.clone();
    let ids = |hs: Vec<crate::model::hold::Hold>| hs.into_iter().map(|h| h.id).collect::<Vec<_>>();
    let a = f.hold(&user(1), 1).await;
    f.rush
        .payments
        .start(a.id, &a.user, "pay-a")
        .await
        .expect("start a");
    f.clock.advance(Duration::from_secs(1));
    let held = f.hold(&user(2), 1).await;
    let paid = f.hold(&user(3), 1).await;
    f.pay(&paid).await;
    f.clock.advance(Duration::from_secs(1));
    let c = f.hold(&user(4), 1).await;
    f.rush
        .payments
        .start(c.id, &c.user, "pay-c")
        .await
        .expect("start c");
    assert!(a.expires_at < held.expires_at && held.expires_at < c.expires_at);

    let early = a.expires_at.minus(Duration::from_millis(1));
    assert_eq!(ids(r.paying_due(early, 10).await.expect("due")), vec![]);
    assert_eq!(
        ids(r.paying_due(a.expires_at, 10).await.expect("due")),
        vec![a.id]
    );
    assert_eq!(
        ids(r.paying_due(c.expires_at, 10).await.expect("due")),
        vec![a.id, c.id],
        "soonest first; HELD and CONFIRMED holds are not listed"
    );
    assert_eq!(
        ids(r.paying_due(c.expires_at, 1).await.expect("due")),
        vec![a.id]
    );

    // Past its TTL but not swept yet: still listed; once swept: gone.
    f.clock.set(a.expires_at);
    assert_eq!(
        ids(r.paying_due(c.expires_at, 10).await.expect("due")),
        vec![a.id, c.id]
    );
    assert_eq!(
        f.rush.expiry.sweep(10).await.expect("sweep").expired.len(),
        1
    );
    assert_eq!(
        ids(r.paying_due(c.expires_at, 10).await.expect("due")),
        vec![c.id]
    );
    assert_eq!(f.reload(&held).await.state, HoldState::Held);
}
