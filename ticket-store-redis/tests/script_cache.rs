//! Scripts are called by SHA; after the server forgets them (`SCRIPT FLUSH`, as after a
//! restart) every operation reloads its script and goes on, including the pipelined hold
//! batch.

mod common;

use std::time::Duration;

use ticket_core::testkit::{Fixture, user};

async fn flush_scripts() {
    let mut conn = redis::Client::open(ticketrush_test_support::redis_url())
        .expect("url")
        .get_multiplexed_async_connection()
        .await
        .expect("connection");
    redis::cmd("SCRIPT")
        .arg("FLUSH")
        .exec_async(&mut conn)
        .await
        .expect("SCRIPT FLUSH");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn operations_reload_their_scripts_after_a_flush() {
    for max_batch in [1, 64] {
        let store = common::isolated_store(max_batch).await;
        let f = Fixture::general(store.stores(), 10, Duration::ZERO).await;
        f.rush
            .holds
            .hold(f.units(&user(1), 1), None)
            .await
            .expect("hold");
        flush_scripts().await;
        let h = f
            .rush
            .holds
            .hold(f.units(&user(2), 2), None)
            .await
            .expect("hold after SCRIPT FLUSH");
        flush_scripts().await;
        f.rush
            .stores()
            .reservations
            .get(h.id)
            .await
            .expect("read after SCRIPT FLUSH");
        flush_scripts().await;
        let totals = f
            .rush
            .stores()
            .inventory
            .snapshot(f.session)
            .await
            .expect("snapshot")
            .totals();
        assert_eq!((totals.available, totals.held), (7, 3), "{totals:?}");
    }
}
