//! Deliveries, checkpoints and leases on Redis: one winner per race, leases that lapse by
//! the caller's clock, records written once, checkpoints that only move forward.

mod common;

use std::sync::Arc;
use std::time::Duration;

use ticket_core::ids::SessionId;
use ticket_core::model::delivery::{DeliveryClaim, DeliveryKey, DeliveryRecord, DeliveryStatus};
use ticket_core::store::{DeliveryLog, Leases};
use ticket_core::testkit::{T0, user};

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_delivery_is_claimed_by_one_and_finished_once() {
    let store = Arc::new(common::isolated_store(64).await);
    let key = DeliveryKey {
        session: SessionId::new_at(T0),
        seq: 7,
        recipient: user(1),
    };
    let lease = Duration::from_secs(30);
    let mut racers = Vec::new();
    for i in 0..16 {
        let (store, key) = (store.clone(), key.clone());
        racers.push(tokio::spawn(async move {
            store
                .claim_delivery(&key, &format!("d{i}"), T0, lease)
                .await
                .expect("claim")
        }));
    }
    let mut claimed = 0;
    for r in racers {
        match r.await.expect("racer") {
            DeliveryClaim::Claimed => claimed += 1,
            DeliveryClaim::Busy => {}
            other => panic!("unexpected {other:?}"),
        }
    }
    assert_eq!(claimed, 1, "one claim wins");
    // The lease runs out by the caller's clock: another dispatcher may take it.
    let later = T0.plus(lease);
    assert_eq!(
        store
            .claim_delivery(&key, "late", later, lease)
            .await
            .expect("claim"),
        DeliveryClaim::Claimed
    );
    assert_eq!(
        store
            .claim_delivery(&key, "late", later, lease)
            .await
            .expect("renew"),
        DeliveryClaim::Claimed,
        "its holder claims again"
    );
    assert_eq!(store.delivery(&key).await.expect("read"), None);
    let record = DeliveryRecord {
        key: key.clone(),
        status: DeliveryStatus::Sent,
        attempts: 2,
        last_error: Some("timeout".into()),
        at: later,
        by: "late".into(),
    };
    assert!(store.finish_delivery(&record).await.expect("finish"));
    let again = DeliveryRecord {
        status: DeliveryStatus::GaveUp,
        ..record.clone()
    };
    assert!(!store.finish_delivery(&again).await.expect("finish again"));
    assert_eq!(
        store.delivery(&key).await.expect("read"),
        Some(record.clone())
    );
    assert_eq!(
        store
            .claim_delivery(&key, "x", later, lease)
            .await
            .expect("claim"),
        DeliveryClaim::Done(record)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn checkpoints_only_move_forward() {
    let store = common::isolated_store(64).await;
    let s = SessionId::new_at(T0);
    assert_eq!(store.checkpoint("mail", s).await.expect("read"), 0);
    store
        .advance_checkpoint("mail", s, 10)
        .await
        .expect("advance");
    store.advance_checkpoint("mail", s, 4).await.expect("back");
    assert_eq!(store.checkpoint("mail", s).await.expect("read"), 10);
    assert_eq!(store.checkpoint("sms", s).await.expect("read"), 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_free_lease_goes_to_exactly_one_racer() {
    let store = Arc::new(common::isolated_store(64).await);
    let ttl = Duration::from_secs(5);
    let mut racers = Vec::new();
    for i in 0..16 {
        let store = store.clone();
        racers.push(tokio::spawn(async move {
            store
                .try_lease("admit", &format!("p{i}"), T0, ttl)
                .await
                .expect("lease")
        }));
    }
    let mut winners = 0;
    for r in racers {
        winners += usize::from(r.await.expect("racer"));
    }
    assert_eq!(winners, 1);
    let soon = T0.plus(Duration::from_secs(1));
    assert!(
        !store
            .try_lease("admit", "other", soon, ttl)
            .await
            .expect("held")
    );
    let lapsed = T0.plus(ttl);
    assert!(
        store
            .try_lease("admit", "other", lapsed, ttl)
            .await
            .expect("lapsed")
    );
    assert!(
        store
            .try_lease("admit", "other", lapsed, ttl)
            .await
            .expect("renew"),
        "the holder renews"
    );
    assert!(
        !store
            .try_lease("admit", "p0", lapsed, ttl)
            .await
            .expect("held again")
    );
}
