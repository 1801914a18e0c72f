//! The event index behind `Inventory::events`: events stored before it existed are listed
//! once `index_events` ran (or once created again), and an interrupted creation is not.

mod common;

use std::time::Duration;

use ticket_core::ids::{EventId, SessionId};
use ticket_core::store::Inventory;
use ticket_core::testkit::{Fixture, T0};

/// A plain connection to the test Redis, to write keys as older data would have them.
async fn raw() -> redis::aio::MultiplexedConnection {
    redis::Client::open(ticketrush_test_support::redis_url())
        .expect("redis url")
        .get_multiplexed_async_connection()
        .await
        .expect("raw connection")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn events_stored_before_the_index_are_listed_after_reindexing() {
    let store = common::isolated_store(64).await;
    let prefix = store.config().prefix.clone();
    let f = Fixture::general(store.stores(), 5, Duration::ZERO).await;
    let mut conn = raw().await;

    // As data written before the index: drop it.
    redis::cmd("DEL")
        .arg(format!("{prefix}:events"))
        .exec_async(&mut conn)
        .await
        .expect("DEL index");
    // And an interrupted creation: the event key without its sessions.
    let mut half = f.event.clone();
    half.id = EventId::new_at(T0.plus(Duration::from_millis(1)));
    for s in &mut half.sessions {
        s.id = SessionId::new_at(T0.plus(Duration::from_millis(1)));
        s.event_id = half.id;
    }
    redis::cmd("SET")
        .arg(format!("{prefix}:ev:{}", half.id))
        .arg(serde_json::to_string(&half).expect("json"))
        .exec_async(&mut conn)
        .await
        .expect("SET half event");

    assert!(
        store.events(None, 10).await.expect("events").is_empty(),
        "listed without an index entry"
    );
    assert_eq!(store.index_events().await.expect("index"), 1);
    let listed = store.events(None, 10).await.expect("events");
    assert_eq!(listed, vec![f.event.clone()], "reindexed listing");
    assert_eq!(
        store.index_events().await.expect("index again"),
        0,
        "reindexing is not idempotent"
    );

    // Creating the same event again also indexes it (idempotently).
    redis::cmd("DEL")
        .arg(format!("{prefix}:events"))
        .exec_async(&mut conn)
        .await
        .expect("DEL index");
    store
        .create_event(&f.event)
        .await
        .expect("same event again");
    store.create_event(&f.event).await.expect("and again");
    let listed = store.events(None, 10).await.expect("events");
    assert_eq!(listed, vec![f.event.clone()], "re-created listing");
}
