//! The Lua code is one function library called by `FCALL`; after the server forgets it
//! (`FUNCTION FLUSH`, as after a restart without persistence) the next call reloads the
//! library and goes on: the pipelined hold batch, queue batches, writes and reads.

mod common;

use std::time::Duration;

use ticket_core::testkit::{Fixture, T0, user};

/// The tests of this file flush the server's functions: one at a time, so that one test's
/// flush never lands between another's reload and its retry (a call retries once).
static ONE_AT_A_TIME: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

async fn flush_functions() {
    let mut conn = redis::Client::open(ticketrush_test_support::redis_url())
        .expect("url")
        .get_multiplexed_async_connection()
        .await
        .expect("connection");
    redis::cmd("FUNCTION")
        .arg("FLUSH")
        .exec_async(&mut conn)
        .await
        .expect("FUNCTION FLUSH");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn operations_reload_the_library_after_a_flush() {
    let _one = ONE_AT_A_TIME.lock().await;
    for max_batch in [1, 64] {
        let store = common::isolated_store(max_batch).await;
        let f = Fixture::general(store.stores(), 10, Duration::ZERO).await;
        f.rush
            .holds
            .hold(f.units(&user(1), 1), None)
            .await
            .expect("hold");
        flush_functions().await;
        let h = f
            .rush
            .holds
            .hold(f.units(&user(2), 2), None)
            .await
            .expect("hold after FUNCTION FLUSH");
        flush_functions().await;
        f.rush
            .stores()
            .reservations
            .get(h.id)
            .await
            .expect("read after FUNCTION FLUSH");
        flush_functions().await;
        let totals = f
            .rush
            .stores()
            .inventory
            .snapshot(f.session)
            .await
            .expect("snapshot")
            .totals();
        assert_eq!((totals.available, totals.held), (7, 3), "{totals:?}");
        // Queue batches and a standalone function (the lease) after a flush as well.
        flush_functions().await;
        f.join(7).await;
        flush_functions().await;
        f.view(7).await;
        flush_functions().await;
        let leased = f
            .rush
            .stores()
            .leases
            .try_lease(
                &format!("flush-{max_batch}"),
                "me",
                T0,
                Duration::from_secs(5),
            )
            .await
            .expect("lease after FUNCTION FLUSH");
        assert!(leased);
    }
}

/// Holds in flight (batched, pipelined) while the library is flushed: every call succeeds
/// and every hold is counted once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_holds_survive_a_flush() {
    let _one = ONE_AT_A_TIME.lock().await;
    let store = common::isolated_store(64).await;
    let f = Fixture::general(store.stores(), 1000, Duration::ZERO).await;
    let flusher = tokio::spawn(async {
        tokio::time::sleep(Duration::from_millis(5)).await;
        flush_functions().await;
    });
    let mut tasks = Vec::new();
    for i in 0..32 {
        let rush = f.rush.clone();
        let units = f.units(&user(100 + i), 1);
        tasks.push(tokio::spawn(async move {
            for _ in 0..8 {
                rush.holds.hold(units.clone(), None).await.map(drop)?;
            }
            Ok::<(), ticket_core::Error>(())
        }));
    }
    for t in tasks {
        match t.await.expect("task") {
            Ok(()) => {}
            Err(e) => panic!("call failed around FUNCTION FLUSH: {e:?}"),
        }
    }
    flusher.await.expect("flusher");
    let totals = f
        .rush
        .stores()
        .inventory
        .snapshot(f.session)
        .await
        .expect("snapshot")
        .totals();
    assert_eq!(totals.available + totals.held, 1000, "{totals:?}");
    assert_eq!(totals.held, 256, "{totals:?}");
}
