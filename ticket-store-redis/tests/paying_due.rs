//! `paying_due` on Redis: PAYING holds of several sessions, spread over several seconds of
//! their expiry indexes (several per second, some sharing an instant across sessions), mixed
//! with HELD and ended holds, are merged by (expiry, id) and cut to the limit at instants
//! inside and between those seconds; and the read writes nothing (every key of the store is
//! byte-identical afterwards).

mod common;

use std::time::Duration;

use ticket_core::Timestamp;
use ticket_core::ids::HoldId;
use ticket_core::model::audit::Actor;
use ticket_core::model::hold::{HoldState, TransitionRequest};
use ticket_core::store::Reservations;
use ticket_core::testkit::{Fixture, T0, user};
use ticket_store_redis::RedisStore;

fn move_to(hold: HoldId, to: HoldState) -> TransitionRequest {
    TransitionRequest {
        hold,
        to,
        now: T0,
        actor: Actor::system("test"),
        reason: "test".into(),
        correlation_id: None,
        payment_ref: Some(format!("pay-{hold}")),
    }
}

/// Every key under the store's prefix with its `DUMP`, sorted by key.
async fn dump_all(store: &RedisStore) -> Vec<(String, Vec<u8>)> {
    let mut conn = redis::Client::open(ticketrush_test_support::redis_url())
        .expect("url")
        .get_multiplexed_async_connection()
        .await
        .expect("connection");
    let pattern = format!("{}:*", store.config().prefix);
    let mut keys = Vec::new();
    let mut cursor: u64 = 0;
    loop {
        let (next, batch): (u64, Vec<String>) = redis::cmd("SCAN")
            .arg(cursor)
            .arg("MATCH")
            .arg(&pattern)
            .arg("COUNT")
            .arg(1000)
            .query_async(&mut conn)
            .await
            .expect("SCAN");
        keys.extend(batch);
        if next == 0 {
            break;
        }
        cursor = next;
    }
    keys.sort();
    let mut out = Vec::new();
    for key in keys {
        let dump: Vec<u8> = redis::cmd("DUMP")
            .arg(&key)
            .query_async(&mut conn)
            .await
            .expect("DUMP");
        out.push((key, dump));
    }
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn paying_holds_of_every_session_are_merged_by_expiry_and_nothing_is_written() {
    let store = common::isolated_store(64).await;
    let sessions = [
        Fixture::general(store.stores(), 1_000, Duration::ZERO).await,
        Fixture::general(store.stores(), 1_000, Duration::ZERO).await,
        Fixture::general(store.stores(), 1_000, Duration::ZERO).await,
    ];
    // 90 holds expiring over about four seconds, 150 ms apart per group of 3 (one per
    // session: the same instant in every session). Every fourth stays HELD, every seventh
    // paying one is released again (ended, still listed in the index). Created in a
    // scrambled order, so a second's list is not in expiry order.
    let mut paying: Vec<(Timestamp, HoldId)> = Vec::new();
    for i in (0..90u64).map(|k| k * 37 % 90) {
        let f = &sessions[(i % 3) as usize];
        let expires_at = T0.plus(Duration::from_millis(10_000 + (i / 3) * 150));
        let h = store
            .hold(f.new_hold(&user(i as usize), 1, T0, expires_at))
            .await
            .expect("hold");
        if i % 4 == 0 {
            continue;
        }
        store
            .transition(move_to(h.id, HoldState::Paying))
            .await
            .expect("start");
        if i % 7 == 0 {
            store
                .transition(move_to(h.id, HoldState::Released))
                .await
                .expect("release");
            continue;
        }
        paying.push((expires_at, h.id));
    }
    paying.sort();

    let before_reads = dump_all(&store).await;
    for ms in (9_000..15_500).step_by(275) {
        let before = T0.plus(Duration::from_millis(ms));
        for limit in [0, 1, 5, 17, 1_000] {
            let got: Vec<(Timestamp, HoldId)> = store
                .paying_due(before, limit)
                .await
                .expect("paying_due")
                .into_iter()
                .map(|h| {
                    assert_eq!(h.state, HoldState::Paying, "{} listed", h.id);
                    (h.expires_at, h.id)
                })
                .collect();
            let want: Vec<(Timestamp, HoldId)> = paying
                .iter()
                .filter(|(exp, _)| *exp <= before)
                .take(limit)
                .copied()
                .collect();
            assert_eq!(got, want, "before {ms} ms after T0, limit {limit}");
        }
    }
    assert_eq!(
        dump_all(&store).await,
        before_reads,
        "paying_due changed the store"
    );
}
