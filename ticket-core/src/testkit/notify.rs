//! Deliveries, leases and the notification dispatcher: each notification sent once however
//! many dispatchers race; a failing notifier is retried, then given up and recorded.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use async_trait::async_trait;
use parking_lot::Mutex;

use super::fixture::{Fixture, T0, user};
use crate::model::delivery::{DeliveryClaim, DeliveryKey, DeliveryRecord, DeliveryStatus};
use crate::service::{DispatchConfig, Notification, NotificationDispatcher, Notifier, NotifyError};
use crate::store::Stores;

fn key(f: &Fixture, seq: u64) -> DeliveryKey {
    DeliveryKey {
        session: f.session,
        seq,
        recipient: user(1),
    }
}

/// Of 16 racing claims one wins; a finish is recorded once; a lease that ran out can be
/// claimed again; checkpoints only move forward.
pub async fn deliveries_are_claimed_once_and_finished_once(stores: Stores) {
    let f = Fixture::general(stores.clone(), 5, Duration::ZERO).await;
    let k = key(&f, 7);
    let lease = Duration::from_secs(30);
    let mut tasks = Vec::new();
    for i in 0..16 {
        let d = stores.deliveries.clone();
        let k = k.clone();
        tasks.push(tokio::spawn(async move {
            d.claim_delivery(&k, &format!("d{i}"), T0, lease)
                .await
                .expect("claim")
        }));
    }
    let mut claimed = 0;
    for t in tasks {
        match t.await.expect("task") {
            DeliveryClaim::Claimed => claimed += 1,
            DeliveryClaim::Busy => {}
            other => panic!("unexpected {other:?}"),
        }
    }
    assert_eq!(
        claimed, 1,
        "a delivery was claimed by several dispatchers at once"
    );
    // The lease ran out: another dispatcher may take it over.
    let later = T0.plus(Duration::from_secs(31));
    assert_eq!(
        stores
            .deliveries
            .claim_delivery(&k, "late", later, lease)
            .await
            .expect("claim"),
        DeliveryClaim::Claimed
    );
    assert_eq!(
        stores
            .deliveries
            .claim_delivery(&k, "other", later, lease)
            .await
            .expect("claim"),
        DeliveryClaim::Busy
    );
    let record = DeliveryRecord {
        key: k.clone(),
        status: DeliveryStatus::Sent,
        attempts: 2,
        last_error: Some("timeout".into()),
        at: later,
        by: "late".into(),
    };
    assert!(
        stores
            .deliveries
            .finish_delivery(&record)
            .await
            .expect("finish")
    );
    let again = DeliveryRecord {
        by: "other".into(),
        ..record.clone()
    };
    assert!(
        !stores
            .deliveries
            .finish_delivery(&again)
            .await
            .expect("finish")
    );
    assert_eq!(
        stores.deliveries.delivery(&k).await.expect("read"),
        Some(record.clone())
    );
    assert_eq!(
        stores
            .deliveries
            .claim_delivery(&k, "x", later, lease)
            .await
            .expect("claim"),
        DeliveryClaim::Done(record)
    );
    assert_eq!(
        stores.deliveries.delivery(&key(&f, 8)).await.expect("read"),
        None
    );

    let d = &stores.deliveries;
    assert_eq!(d.checkpoint("c", f.session).await.expect("cp"), 0);
    d.advance_checkpoint("c", f.session, 10)
        .await
        .expect("advance");
    d.advance_checkpoint("c", f.session, 4)
        .await
        .expect("advance");
    assert_eq!(d.checkpoint("c", f.session).await.expect("cp"), 10);
    assert_eq!(d.checkpoint("other", f.session).await.expect("cp"), 0);
}

/// Of 16 racing callers for a free lease exactly one gets it; its holder renews it; after
/// it runs out another holder gets it.
pub async fn leases_are_granted_to_one_holder_at_a_time(stores: Stores) {
    let f = Fixture::general(stores.clone(), 5, Duration::ZERO).await;
    let name = format!("admission:{}", f.session);
    let ttl = Duration::from_secs(1);
    let mut tasks = Vec::new();
    for i in 0..16 {
        let l = stores.leases.clone();
        let name = name.clone();
        tasks.push(tokio::spawn(async move {
            (
                i,
                l.try_lease(&name, &format!("p{i}"), T0, ttl)
                    .await
                    .expect("lease"),
            )
        }));
    }
    let mut winners = Vec::new();
    for t in tasks {
        let (i, won) = t.await.expect("task");
        if won {
            winners.push(i);
        }
    }
    assert_eq!(winners.len(), 1, "the lease was granted to {winners:?}");
    let holder = format!("p{}", winners[0]);
    let soon = T0.plus(Duration::from_millis(500));
    assert!(
        stores
            .leases
            .try_lease(&name, &holder, soon, ttl)
            .await
            .expect("renew")
    );
    assert!(
        !stores
            .leases
            .try_lease(&name, "intruder", soon, ttl)
            .await
            .expect("busy")
    );
    let after = soon.plus(ttl);
    assert!(
        stores
            .leases
            .try_lease(&name, "intruder", after, ttl)
            .await
            .expect("free")
    );
    assert!(
        !stores
            .leases
            .try_lease(&name, &holder, after, ttl)
            .await
            .expect("taken")
    );
}

/// Records every notification; fails the first `failures` calls per notification.
#[derive(Default)]
struct Recorder {
    sent: Mutex<Vec<Notification>>,
    calls: AtomicUsize,
    failures: usize,
    attempts: Mutex<std::collections::HashMap<u64, usize>>,
}

#[async_trait]
impl Notifier for Recorder {
    async fn notify(&self, n: &Notification) -> Result<(), NotifyError> {
        self.calls.fetch_add(1, Ordering::SeqCst);
        let attempt = {
            let mut a = self.attempts.lock();
            let e = a.entry(n.key.seq).or_default();
            *e += 1;
            *e
        };
        if attempt <= self.failures {
            return Err(NotifyError(format!("provider down (attempt {attempt})")));
        }
        tokio::task::yield_now().await;
        self.sent.lock().push(n.clone());
        Ok(())
    }
}

fn config(holder: &str, attempts: u32) -> DispatchConfig {
    DispatchConfig {
        max_attempts: attempts,
        backoff: Duration::from_millis(1),
        max_backoff: Duration::from_millis(4),
        ..DispatchConfig::new(holder)
    }
}

/// Two dispatchers racing over the same feed send each notification exactly once, to the
/// change's owner, only for the configured kinds.
pub async fn two_dispatchers_send_each_notification_once(stores: Stores) {
    let f = Arc::new(Fixture::general(stores.clone(), 50, Duration::ZERO).await);
    for i in 0..20 {
        let h = f.hold(&user(i), 1).await;
        if i % 2 == 0 {
            f.pay(&h).await;
        } else {
            f.rush.holds.release(h.id, &user(i)).await.expect("release");
        }
    }
    let notifier = Arc::new(Recorder::default());
    let clock: Arc<dyn crate::Clock> = Arc::new(f.clock.clone());
    let a = NotificationDispatcher::new(
        stores.clone(),
        notifier.clone(),
        clock.clone(),
        config("a", 3),
    )
    .expect("dispatcher");
    let b = NotificationDispatcher::new(stores.clone(), notifier.clone(), clock, config("b", 3))
        .expect("dispatcher");
    let (ra, rb) = tokio::join!(a.dispatch(f.session), b.dispatch(f.session));
    let (ra, rb) = (ra.expect("a"), rb.expect("b"));
    // Whatever one left to the other (Busy), a second pass finishes.
    let ra2 = a.dispatch(f.session).await.expect("a again");
    let rb2 = b.dispatch(f.session).await.expect("b again");
    let sent = notifier.sent.lock().clone();
    assert_eq!(
        sent.len(),
        10,
        "one confirmation each for 10 paid holds, none for releases"
    );
    let seqs: std::collections::HashSet<u64> = sent.iter().map(|n| n.key.seq).collect();
    assert_eq!(seqs.len(), sent.len(), "a notification was sent twice");
    assert_eq!(ra.sent + rb.sent + ra2.sent + rb2.sent, 10);
    for n in &sent {
        assert_eq!(
            n.change.kind,
            crate::model::change::ChangeKind::HoldConfirmed
        );
        assert_eq!(Some(n.recipient()), n.change.owner.as_ref());
        let rec = stores
            .deliveries
            .delivery(&n.key)
            .await
            .expect("read")
            .expect("recorded");
        assert_eq!(rec.status, DeliveryStatus::Sent);
    }
    let head = stores
        .feed
        .changes(f.session, 0, 1)
        .await
        .expect("head")
        .head;
    assert_eq!(ra2.checkpoint.max(rb2.checkpoint), head);
    assert_eq!(
        stores
            .deliveries
            .checkpoint("notifications", f.session)
            .await
            .expect("cp"),
        head
    );
}

/// A notifier that keeps failing is retried with backoff up to the attempt limit, then the
/// delivery is recorded as given up (with the last error) and the dispatcher moves on; one
/// that fails twice then succeeds is recorded as sent after three attempts.
pub async fn a_failing_notifier_is_retried_then_given_up(stores: Stores) {
    let f = Fixture::general(stores.clone(), 5, Duration::ZERO).await;
    let h = f.hold(&user(1), 1).await;
    f.pay(&h).await;
    let clock: Arc<dyn crate::Clock> = Arc::new(f.clock.clone());
    let failing = Arc::new(Recorder {
        failures: usize::MAX,
        ..Recorder::default()
    });
    let d = NotificationDispatcher::new(
        stores.clone(),
        failing.clone(),
        clock.clone(),
        config("a", 4),
    )
    .expect("dispatcher");
    let r = d.dispatch(f.session).await.expect("dispatch");
    assert_eq!((r.sent, r.gave_up), (0, 1));
    assert_eq!(
        failing.calls.load(Ordering::SeqCst),
        4,
        "not retried up to the limit"
    );
    let confirmed = stores
        .feed
        .changes(f.session, 0, 100)
        .await
        .expect("changes")
        .changes
        .into_iter()
        .find(|c| c.kind == crate::model::change::ChangeKind::HoldConfirmed)
        .expect("confirmed change");
    let k = DeliveryKey {
        session: f.session,
        seq: confirmed.seq,
        recipient: user(1),
    };
    let rec = stores
        .deliveries
        .delivery(&k)
        .await
        .expect("read")
        .expect("recorded");
    assert_eq!((rec.status, rec.attempts), (DeliveryStatus::GaveUp, 4));
    assert!(rec.last_error.is_some_and(|e| e.contains("provider down")));
    // Given up is final: another pass does not call the notifier again.
    d.dispatch(f.session).await.expect("again");
    assert_eq!(failing.calls.load(Ordering::SeqCst), 4);

    let h2 = f.hold(&user(2), 1).await;
    f.pay(&h2).await;
    let flaky = Arc::new(Recorder {
        failures: 2,
        ..Recorder::default()
    });
    let d = NotificationDispatcher::new(stores.clone(), flaky.clone(), clock, config("b", 4))
        .expect("dispatcher");
    let r = d.dispatch(f.session).await.expect("dispatch");
    assert_eq!((r.sent, r.gave_up), (1, 0));
    let sent = flaky.sent.lock().clone();
    let rec = stores
        .deliveries
        .delivery(&sent[0].key)
        .await
        .expect("read")
        .expect("recorded");
    assert_eq!((rec.status, rec.attempts), (DeliveryStatus::Sent, 3));
}
