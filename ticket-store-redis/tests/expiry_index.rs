//! The sweeper's per-second expiry index: holds spread over several seconds, some ended
//! early, swept in small batches at instants inside and after those seconds. Every live
//! hold is expired exactly once and only when due, ended holds are skipped, and the index
//! empties once everything is past.

mod common;

use std::collections::HashSet;
use std::time::Duration;

use ticket_core::model::audit::Actor;
use ticket_core::model::hold::{HoldState, TransitionRequest};
use ticket_core::store::{Inventory, Reservations};
use ticket_core::testkit::{Fixture, T0, user};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn holds_expire_once_when_due_and_the_index_drains() {
    let store = common::isolated_store(64).await;
    let f = Fixture::general(store.stores(), 1_000, Duration::ZERO).await;
    // 300 holds expiring over three seconds, 250 ms apart per group of 25.
    let mut ids = Vec::new();
    for i in 0..300u64 {
        let expires_at = T0.plus(Duration::from_millis(10_000 + (i / 25) * 250));
        let h = store
            .hold(f.new_hold(&user(i as usize), 1, T0, expires_at))
            .await
            .expect("hold");
        ids.push((h.id, expires_at));
    }
    // Every third hold is released early: it must never be reported as expired.
    let mut released = HashSet::new();
    for (id, _) in ids.iter().step_by(3) {
        store
            .transition(TransitionRequest {
                hold: *id,
                to: HoldState::Released,
                now: T0,
                actor: Actor::system("test"),
                reason: "released early".into(),
                correlation_id: None,
                payment_ref: None,
            })
            .await
            .expect("release");
        released.insert(*id);
    }
    let mut expired = HashSet::new();
    // Sweep at instants inside the seconds (partly due) and after them, 7 at a time.
    for ms in (9_900..13_500).step_by(130) {
        let now = T0.plus(Duration::from_millis(ms));
        loop {
            let batch = store.expire_due(now, 7).await.expect("sweep");
            assert!(batch.len() <= 7, "limit exceeded: {}", batch.len());
            for h in &batch {
                assert!(h.expires_at <= now, "{} expired before its TTL", h.id);
                assert!(!released.contains(&h.id), "{} was released, not live", h.id);
                assert!(expired.insert(h.id), "{} expired twice", h.id);
            }
            if batch.is_empty() {
                break;
            }
        }
        // Everything due by now is expired.
        for (id, exp) in &ids {
            if *exp <= now && !released.contains(id) {
                assert!(
                    expired.contains(id),
                    "{id} due at {exp:?} not expired by {now:?}"
                );
            }
        }
    }
    assert_eq!(expired.len(), 200);
    let totals = store.snapshot(f.session).await.expect("snapshot").totals();
    assert_eq!((totals.available, totals.held), (1_000, 0));
    let mut conn = redis::Client::open(ticketrush_test_support::redis_url())
        .expect("url")
        .get_multiplexed_async_connection()
        .await
        .expect("connection");
    let prefix = &store.config().prefix;
    let left: u64 = redis::cmd("ZCARD")
        .arg(format!("{prefix}:{{s:{}}}:expb", f.session))
        .query_async(&mut conn)
        .await
        .expect("ZCARD");
    assert_eq!(
        left, 0,
        "expiry seconds left in the index after everything passed"
    );
}
