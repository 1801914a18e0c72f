//! The change feed on Redis: retention answers `ChangesPruned`, `wait_for_change` wakes on a
//! write made through another connection, and any number of waiters share one blocked
//! connection.

mod common;

use std::sync::Arc;
use std::time::{Duration, Instant};

use ticket_core::ids::SessionId;
use ticket_core::model::change::{ChangeKind, FeedRetention};
use ticket_core::model::queue::JoinRequest;
use ticket_core::store::{ChangeFeed, WaitingQueue};
use ticket_core::testkit::{Fixture, T0, user};
use ticket_core::{Error, Refusal};

async fn join(q: &dyn WaitingQueue, session: SessionId, i: usize) {
    q.join(JoinRequest {
        session,
        user: user(i),
        now: T0,
        pre_queue: false,
        max_waiting: None,
    })
    .await
    .expect("join");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn retention_trims_the_feed_and_older_cursors_are_refused() {
    let store = common::isolated_store_with(|c| {
        c.feed_retention = FeedRetention {
            max_changes_per_session: 10,
        };
        c.max_batch = 1;
    })
    .await;
    let f = Fixture::general(store.stores(), 5, Duration::ZERO).await;
    for i in 0..30 {
        join(&store, f.session, i).await;
    }
    // The draw, then 30 joins.
    let head = store.changes(f.session, 30, 1).await.expect("head").head;
    assert_eq!(head, 31, "one change per join plus the draw");
    let err = store.changes(f.session, 0, 500).await.expect_err("pruned");
    let Error::Refused(Refusal::ChangesPruned { first_kept }) = err else {
        panic!("expected ChangesPruned, got {err:?}");
    };
    assert!(
        first_kept > 1 && first_kept <= head - 9,
        "keeps the newest 10 changes (and at most one call's more): first kept {first_kept}"
    );
    let page = store
        .changes(f.session, first_kept - 1, 500)
        .await
        .expect("read from the first kept");
    let seqs: Vec<u64> = page.changes.iter().map(|c| c.seq).collect();
    assert_eq!(seqs, (first_kept..=head).collect::<Vec<_>>(), "dense");
    assert!(
        page.changes.iter().all(|c| c.kind == ChangeKind::Joined),
        "{page:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn wait_for_change_wakes_on_a_write_from_another_connection() {
    let store = common::isolated_store(64).await;
    let other = common::another_server(&store).await;
    let f = Fixture::general(store.stores(), 5, Duration::ZERO).await;
    let head = store.changes(f.session, 0, 1).await.expect("head").head;

    // Nothing written: returns at the timeout.
    let t = Instant::now();
    store
        .wait_for_change(f.session, head, Duration::from_millis(300))
        .await
        .expect("wait");
    assert!(t.elapsed() >= Duration::from_millis(290), "returned early");

    let session = f.session;
    let writer = tokio::spawn(async move {
        tokio::time::sleep(Duration::from_millis(200)).await;
        join(&other, session, 1).await;
        Instant::now()
    });
    let t = Instant::now();
    store
        .wait_for_change(f.session, head, Duration::from_secs(10))
        .await
        .expect("wait");
    let woke = Instant::now();
    let written = writer.await.expect("writer");
    assert!(
        woke.saturating_duration_since(written) < Duration::from_secs(1)
            && t.elapsed() < Duration::from_secs(2),
        "woke {:?} after the write",
        woke.saturating_duration_since(written)
    );
    assert!(store.changes(f.session, head, 10).await.expect("read").head > head);

    // Already past: returns at once. Unknown session: NotFound.
    let t = Instant::now();
    store
        .wait_for_change(f.session, 0, Duration::from_secs(10))
        .await
        .expect("wait");
    assert!(t.elapsed() < Duration::from_secs(1));
    let err = store
        .wait_for_change(SessionId::new_at(T0), 0, Duration::from_millis(10))
        .await
        .expect_err("unknown session");
    assert!(matches!(err, Error::NotFound { .. }), "{err:?}");
}

/// Connections named `name` in `CLIENT LIST`.
async fn connections_named(name: &str) -> usize {
    let mut conn = redis::Client::open(ticketrush_test_support::redis_url())
        .expect("url")
        .get_multiplexed_async_connection()
        .await
        .expect("connection");
    let list: String = redis::cmd("CLIENT")
        .arg("LIST")
        .query_async(&mut conn)
        .await
        .expect("CLIENT LIST");
    list.lines()
        .filter(|l| l.split(' ').any(|kv| kv == format!("name={name}")))
        .count()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn many_waiters_share_one_blocked_connection() {
    let store = Arc::new(common::isolated_store(64).await);
    let writer = common::another_server(&store).await;
    let mut sessions = Vec::new();
    for _ in 0..8 {
        let f = Fixture::general(store.stores(), 5, Duration::ZERO).await;
        sessions.push(f.session);
    }
    let mut waiters = Vec::new();
    for i in 0..200 {
        let store = store.clone();
        let session = sessions[i % sessions.len()];
        waiters.push(tokio::spawn(async move {
            store
                .wait_for_change(session, 0, Duration::from_secs(20))
                .await
                .expect("wait");
            Instant::now()
        }));
    }
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(
        connections_named(store.feed_listener_name()).await,
        1,
        "200 waiters on 8 sessions hold one listener connection"
    );
    assert!(
        waiters.iter().all(|w| !w.is_finished()),
        "woke without a change"
    );
    let t = Instant::now();
    for (i, s) in sessions.iter().enumerate() {
        join(&writer, *s, i).await;
    }
    for w in waiters {
        let woke = w.await.expect("waiter");
        assert!(
            woke.duration_since(t) < Duration::from_secs(2),
            "a waiter slept on"
        );
    }
}
