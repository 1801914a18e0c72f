//! Admission: pacing, stock awareness, admission expiry, and units that come back waking the
//! queue.

use std::time::Duration;

use super::fixture::user;
use super::queue::queued;
use crate::error::{Error, Refusal};
use crate::model::queue::{AdmissionLimit, Outlook, TicketState};
use crate::store::Stores;

/// Admission never exceeds the concurrent ACTIVE cap nor the per-minute rate.
pub async fn admission_respects_active_cap_and_rate(stores: Stores) {
    let f = queued(stores, 1_000).await;
    f.set_policy(|p| {
        p.queue.max_active = 5;
        p.queue.max_admissions_per_minute = 8;
    })
    .await;
    f.join_all(30).await;
    let r1 = f.admit().await;
    assert_eq!(
        (r1.admitted.len(), r1.limit),
        (5, AdmissionLimit::ActiveCap)
    );
    let r2 = f.admit().await;
    assert_eq!(r2.admitted.len(), 0, "active cap exceeded");
    for t in &r1.admitted {
        f.hold(&t.user, 1).await; // USED frees the ACTIVE slot
    }
    let r3 = f.admit().await;
    assert_eq!(
        (r3.admitted.len(), r3.limit),
        (3, AdmissionLimit::Rate),
        "rate of 8/min exceeded"
    );
    f.clock.advance(Duration::from_secs(60));
    let r4 = f.admit().await;
    assert_eq!(r4.admitted.len(), 2, "3 still ACTIVE of a cap of 5");
    let stats = f.stats().await;
    assert_eq!((stats.active, stats.waiting), (5, 20));
    let v = f.view(29).await;
    assert_eq!(v.position, Some(20));
    assert!(
        v.eta.is_some(),
        "an admission rate was measured, so an ETA exists"
    );
}

/// Admission stops while the units on sale cannot serve another admitted user; when the
/// session sells out every waiting user sees `SoldOut` at once; positions carry an outlook.
pub async fn admission_follows_stock_and_sold_out_is_announced(stores: Stores) {
    let f = queued(stores, 3).await;
    f.join_all(10).await;
    let r = f.admit().await;
    assert_eq!((r.admitted.len(), r.limit), (3, AdmissionLimit::Stock));
    assert_eq!(f.view(3).await.outlook, Outlook::Unlikely);
    let h = f.hold(&user(0), 2).await;
    // 1 unit left, 2 admitted users still ACTIVE: nobody else gets in, but holds may lapse.
    assert!(f.admit().await.admitted.is_empty());
    assert_eq!(f.view(3).await.outlook, Outlook::Possible);
    let h1 = f.hold(&user(1), 1).await;
    f.pay(&h).await;
    assert_eq!(f.view(3).await.outlook, Outlook::Unlikely);
    f.pay(&h1).await;
    for i in 3..10 {
        let v = f.view(i).await;
        assert_eq!(
            v.outlook,
            Outlook::SoldOut,
            "user {i} not told the session sold out"
        );
        assert_eq!(v.ticket.state, TicketState::Waiting);
    }
    // A cancellation puts a unit back: the outlook recovers and the next user is admitted.
    f.rush
        .cancellations
        .cancel(h1.id, &user(1), "cannot come")
        .await
        .expect("cancel");
    let v = f.view(4).await;
    assert_ne!(v.outlook, Outlook::SoldOut);
}

/// An ACTIVE ticket past its admission TTL is unusable at once and frees its slot.
pub async fn expired_admission_is_unusable_and_frees_its_slot(stores: Stores) {
    let f = queued(stores, 100).await;
    f.set_policy(|p| p.queue.max_active = 1).await;
    f.join(0).await;
    f.join(1).await;
    assert_eq!(f.admit().await.admitted.len(), 1);
    assert!(f.admit().await.admitted.is_empty());
    f.clock.advance(f.rush.limits().admission_ttl);
    let err = f
        .rush
        .holds
        .hold(f.units(&user(0), 1), None)
        .await
        .expect_err("expired admission");
    assert!(
        matches!(
            err,
            Error::Refused(Refusal::AdmissionExpired { .. } | Refusal::NotAdmitted)
        ),
        "{err:?}"
    );
    assert_eq!(f.ga().await, (100, 0, 0));
    let v = f.view(0).await;
    assert_eq!(v.ticket.state, TicketState::Expired);
    let r = f.admit().await;
    assert_eq!(
        r.admitted
            .iter()
            .map(|t| t.user.clone())
            .collect::<Vec<_>>(),
        vec![user(1)]
    );
    // Joining again after expiry issues a new ticket at the back.
    let again = f.join(0).await;
    assert_ne!(again.id, v.ticket.id);
    assert_eq!(again.state, TicketState::Waiting);
}

/// Units that come back (expiry, release, failure, cancellation) wake the next waiting user.
pub async fn returned_units_wake_the_next_waiting_user(stores: Stores) {
    let f = queued(stores, 1).await;
    f.join_all(5).await;
    assert_eq!(f.admit().await.admitted.len(), 1);
    let h = f.hold(&user(0), 1).await;
    assert!(f.admit().await.admitted.is_empty());
    f.clock.advance(f.rush.limits().hold_ttl);
    let sweep = f.rush.expiry.sweep(10).await.expect("sweep");
    assert_eq!(sweep.expired.len(), 1);
    assert_eq!(
        sweep.admitted, 1,
        "expired units did not wake the next user"
    );
    let v = f.view(1).await;
    assert_eq!(v.ticket.state, TicketState::Active);
    let h1 = f.hold(&user(1), 1).await;
    f.rush
        .holds
        .release(h1.id, &user(1))
        .await
        .expect("release");
    let v = f.view(2).await;
    assert_eq!(
        v.ticket.state,
        TicketState::Active,
        "released units did not wake the next user"
    );
    assert_eq!(
        f.reload(&h).await.state,
        crate::model::hold::HoldState::Expired
    );
    let h2 = f.hold(&user(2), 1).await;
    f.rush
        .payments
        .start(h2.id, &user(2), "pay-2")
        .await
        .expect("start");
    f.rush
        .payments
        .failed(h2.id, "pay-2", "declined")
        .await
        .expect("failed");
    let v = f.view(3).await;
    assert_eq!(
        v.ticket.state,
        TicketState::Active,
        "a failed payment did not wake the next user"
    );
    let h3 = f.hold(&user(3), 1).await;
    f.pay(&h3).await;
    assert!(f.admit().await.admitted.is_empty());
    f.rush
        .cancellations
        .cancel(h3.id, &user(3), "resale")
        .await
        .expect("cancel");
    let v = f.view(4).await;
    assert_eq!(
        v.ticket.state,
        TicketState::Active,
        "a cancellation did not wake the next user"
    );
}
