//! The hold state machine: illegal moves refused, repeats idempotent, expiry, audit.

use std::collections::HashSet;
use std::sync::Arc;
use std::time::Duration;

use super::fixture::{Fixture, user};
use crate::error::{Error, Refusal};
use crate::model::audit::{Actor, AuditScope, Subject};
use crate::model::hold::{Hold, HoldState, TransitionRequest};
use crate::store::Stores;

fn request(f: &Fixture, hold: &Hold, to: HoldState) -> TransitionRequest {
    TransitionRequest {
        hold: hold.id,
        to,
        now: crate::clock::Clock::now(&f.clock),
        actor: Actor::system("conformance"),
        reason: "conformance".into(),
        correlation_id: None,
        payment_ref: None,
    }
}

/// Drives a fresh hold into `state` through legal moves.
async fn hold_in(f: &Fixture, i: usize, state: HoldState) -> Hold {
    let r = &f.rush.stores().reservations;
    let h = f.hold(&user(i), 1).await;
    let path: &[HoldState] = match state {
        HoldState::Held => &[],
        HoldState::Paying => &[HoldState::Paying],
        HoldState::Confirmed => &[HoldState::Paying, HoldState::Confirmed],
        HoldState::Released => &[HoldState::Released],
        HoldState::PaymentFailed => &[HoldState::Paying, HoldState::PaymentFailed],
        HoldState::Cancelled => &[
            HoldState::Paying,
            HoldState::Confirmed,
            HoldState::Cancelled,
        ],
        HoldState::Refunded => &[
            HoldState::Paying,
            HoldState::Confirmed,
            HoldState::Cancelled,
            HoldState::Refunded,
        ],
        HoldState::Expired => &[HoldState::Expired],
    };
    for to in path {
        if *to == HoldState::Expired {
            // Expire only this hold: move its clock past the TTL and back is not possible, so
            // expire through a transition at its expiry instant.
            let mut req = request(f, &h, HoldState::Expired);
            req.now = h.expires_at;
            r.transition(req).await.expect("expire at TTL");
        } else {
            r.transition(request(f, &h, *to)).await.expect("legal move");
        }
    }
    let h = f.reload(&h).await;
    assert_eq!(h.state, state);
    h
}

/// Every move the state machine does not allow is `IllegalTransition`, and changes neither
/// the hold, nor the stock, nor the audit trail.
pub async fn illegal_transitions_are_rejected_and_change_nothing(stores: Stores) {
    let f = Fixture::general(stores, 100, Duration::ZERO).await;
    let r = f.rush.stores().reservations.clone();
    let mut i = 0;
    for from in HoldState::ALL {
        for to in HoldState::ALL {
            i += 1;
            let legal = crate::model::hold::decide_state(
                from,
                crate::Timestamp::from_millis(i64::MAX),
                to,
                crate::Timestamp::from_millis(0),
            );
            if from == to || legal.is_ok() || matches!(legal, Err(Refusal::NotDue { .. })) {
                continue;
            }
            let h = hold_in(&f, i, from).await;
            let before = (
                f.totals().await,
                r.audit(&AuditScope::Hold(h.id), 100)
                    .await
                    .expect("audit")
                    .len(),
            );
            let err = r
                .transition(request(&f, &h, to))
                .await
                .expect_err("illegal move");
            assert!(
                matches!(err, Error::Refused(Refusal::IllegalTransition { from: a, to: b }) if a == from && b == to),
                "{from:?} -> {to:?} gave {err:?}"
            );
            assert_eq!(f.reload(&h).await, h, "{from:?} -> {to:?} changed the hold");
            let after = (
                f.totals().await,
                r.audit(&AuditScope::Hold(h.id), 100)
                    .await
                    .expect("audit")
                    .len(),
            );
            assert_eq!(before, after, "{from:?} -> {to:?} changed stock or audit");
        }
    }
    let missing = crate::ids::HoldId::new_at(super::T0);
    let err = r
        .transition(TransitionRequest {
            hold: missing,
            ..request(&f, &f.hold(&user(0), 1).await, HoldState::Paying)
        })
        .await;
    assert!(matches!(err, Err(Error::NotFound { .. })), "{err:?}");
}

/// Repeating a transition that already happened returns the hold unchanged
/// (`changed: false`), moves no stock and writes no audit record.
pub async fn repeated_transitions_are_idempotent(stores: Stores) {
    let f = Fixture::general(stores, 10, Duration::ZERO).await;
    let r = f.rush.stores().reservations.clone();
    let h = f.hold(&user(1), 2).await;
    for to in [
        HoldState::Paying,
        HoldState::Confirmed,
        HoldState::Cancelled,
        HoldState::Refunded,
    ] {
        let first = r.transition(request(&f, &h, to)).await.expect("first");
        assert!(first.changed);
        let stock = f.totals().await;
        let audit = r
            .audit(&AuditScope::Hold(h.id), 100)
            .await
            .expect("audit")
            .len();
        for _ in 0..2 {
            let again = r.transition(request(&f, &h, to)).await.expect("repeat");
            assert!(!again.changed, "repeat of {to:?} reported a change");
            assert_eq!(again.hold, first.hold);
        }
        assert_eq!(f.totals().await, stock, "repeat of {to:?} moved stock");
        assert_eq!(
            r.audit(&AuditScope::Hold(h.id), 100)
                .await
                .expect("audit")
                .len(),
            audit
        );
    }
    assert_eq!(f.ga().await, (10, 0, 0), "cancelled units are back on sale");
}

/// A hold past its TTL cannot be paid, even with no sweeper: the attempt expires it on the
/// spot and its units go back on sale.
pub async fn expired_hold_cannot_be_paid_without_sweeper(stores: Stores) {
    let f = Fixture::general(stores, 10, Duration::ZERO).await;
    let a = f.hold(&user(1), 2).await;
    let b = f.hold(&user(2), 3).await;
    f.rush
        .payments
        .start(b.id, &b.user, "pay-b")
        .await
        .expect("start");
    f.clock.advance(f.rush.limits().hold_ttl);
    let err = f
        .rush
        .payments
        .start(a.id, &a.user, "pay-a")
        .await
        .expect_err("expired");
    assert!(
        matches!(err, Error::Refused(Refusal::HoldExpired { .. })),
        "{err:?}"
    );
    assert_eq!(f.reload(&a).await.state, HoldState::Expired);
    let r = f.rush.stores().reservations.clone();
    let mut req = request(&f, &b, HoldState::Confirmed);
    req.payment_ref = Some("pay-b".into());
    let err = r.transition(req).await.expect_err("expired while paying");
    assert!(
        matches!(err, Error::Refused(Refusal::HoldExpired { .. })),
        "{err:?}"
    );
    assert_eq!(f.reload(&b).await.state, HoldState::Expired);
    assert_eq!(f.ga().await, (10, 0, 0));
    // Nothing left for a sweeper to return twice.
    assert!(
        r.expire_due(crate::clock::Clock::now(&f.clock), 100)
            .await
            .expect("sweep")
            .is_empty()
    );
}

/// 8 sweepers race over the same due holds: each hold is expired by exactly one of them and
/// its units come back exactly once.
pub async fn racing_sweepers_return_units_exactly_once(stores: Stores) {
    let f = Arc::new(Fixture::general(stores, 100, Duration::ZERO).await);
    let mut ids = HashSet::new();
    for i in 0..40 {
        ids.insert(f.hold(&user(i), 1 + (i as u32 % 2)).await.id);
    }
    let keep = f.hold(&user(99), 1).await;
    f.clock.advance(Duration::from_secs(1));
    let late = f.hold(&user(100), 1).await; // not due yet after the advance below
    f.clock
        .advance(f.rush.limits().hold_ttl - Duration::from_secs(1));
    f.rush
        .stores()
        .reservations
        .transition(request(&f, &keep, HoldState::Paying))
        .await
        .expect_err("keep is due too");
    ids.remove(&keep.id);
    let sweepers: Vec<_> = (0..8)
        .map(|_| {
            let f = f.clone();
            tokio::spawn(async move {
                let mut mine = Vec::new();
                loop {
                    let batch = f.rush.expiry.sweep(3).await.expect("sweep").expired;
                    if batch.is_empty() {
                        break mine;
                    }
                    mine.extend(batch.into_iter().map(|h| h.id));
                }
            })
        })
        .collect();
    let mut expired = Vec::new();
    for s in sweepers {
        expired.extend(s.await.expect("sweeper"));
    }
    let unique: HashSet<_> = expired.iter().copied().collect();
    assert_eq!(unique.len(), expired.len(), "a hold was expired twice");
    assert_eq!(unique, ids, "sweepers missed or invented holds");
    assert_eq!(
        f.ga().await,
        (99, 1, 0),
        "only the not-yet-due hold stays held"
    );
    assert_eq!(f.reload(&late).await.state, HoldState::Held);
}

/// Every state change appends one audit record with actor, from, to, time and reason,
/// listable per hold, per user and per session.
pub async fn every_transition_is_audited(stores: Stores) {
    let f = Fixture::general(stores, 10, Duration::ZERO).await;
    let r = f.rush.stores().reservations.clone();
    let u = user(7);
    let h = f.hold(&u, 1).await;
    f.pay(&h).await;
    f.rush
        .cancellations
        .cancel(h.id, &u, "changed plans")
        .await
        .expect("cancel");
    f.rush
        .cancellations
        .record_refund(h.id, "re_1", Actor::system("payments"))
        .await
        .expect("refund");
    let trail = r.audit(&AuditScope::Hold(h.id), 100).await.expect("audit");
    let moves: Vec<(Option<&str>, &str)> = trail
        .iter()
        .map(|a| (a.from.as_deref(), a.to.as_str()))
        .collect();
    assert_eq!(
        moves,
        vec![
            (None, "HELD"),
            (Some("HELD"), "PAYING"),
            (Some("PAYING"), "CONFIRMED"),
            (Some("CONFIRMED"), "CANCELLED"),
            (Some("CANCELLED"), "REFUNDED"),
        ]
    );
    assert!(
        trail
            .iter()
            .all(|a| a.subject == Subject::Hold(h.id) && a.owner == u && a.session == f.session)
    );
    assert_eq!(trail[0].actor, Actor::User(u.clone()));
    assert_eq!(trail[3].reason, "changed plans");
    assert_eq!(trail[4].correlation_id.as_deref(), Some("re_1"));
    assert!(trail.windows(2).all(|w| w[0].at <= w[1].at));
    let by_user = r
        .audit(&AuditScope::User(u.clone()), 100)
        .await
        .expect("audit");
    assert_eq!(by_user.len(), 5);
    let other = f.hold(&user(8), 1).await;
    let by_session = r
        .audit(&AuditScope::Session(f.session), 100)
        .await
        .expect("audit");
    assert_eq!(by_session.len(), 6);
    assert!(
        by_session
            .iter()
            .any(|a| a.subject == Subject::Hold(other.id))
    );
    assert_eq!(
        r.audit(&AuditScope::Session(f.session), 2)
            .await
            .expect("audit")
            .len(),
        2
    );
}
