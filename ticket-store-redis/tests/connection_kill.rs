//! A connection killed mid-operation (`CLIENT KILL`) gives `Unavailable` or a correct
//! result, never a corrupted count: after the storm, the stock is conserved and every held
//! unit belongs to a hold that exists.

mod common;

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use ticket_core::testkit::{Fixture, user};
use ticket_core::{Error, Refusal};

/// The test's store talks to its own logical database, so the killer can pick out exactly
/// its connections (`CLIENT LIST` shows each client's db) without touching parallel tests.
const DB: u8 = 7;

fn url_on_db(db: u8) -> String {
    let info = redis::Client::open(ticketrush_test_support::redis_url())
        .expect("REDIS_URL")
        .get_connection_info()
        .clone();
    match info.addr {
        redis::ConnectionAddr::Tcp(host, port) => format!("redis://{host}:{port}/{db}"),
        other => panic!("this test needs Redis over TCP, got {other:?}"),
    }
}

/// Kills every client connected to `DB`, except itself (which sits on db 0).
async fn kill_clients_on_db(killer: &mut redis::aio::MultiplexedConnection) -> usize {
    let list: String = redis::cmd("CLIENT")
        .arg("LIST")
        .query_async(killer)
        .await
        .expect("CLIENT LIST");
    let mut killed = 0;
    for line in list.lines() {
        let field = |name: &str| {
            line.split(' ')
                .find_map(|kv| kv.strip_prefix(name).and_then(|v| v.strip_prefix('=')))
        };
        if field("db") == Some(&DB.to_string())
            && let Some(id) = field("id")
        {
            {
                let _: redis::RedisResult<i64> = redis::cmd("CLIENT")
                    .arg("KILL")
                    .arg("ID")
                    .arg(id)
                    .query_async(killer)
                    .await;
                killed += 1;
            }
        }
    }
    killed
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn killed_connections_never_corrupt_counts() {
    const CAPACITY: u32 = 200;
    let store = common::isolated_store_at(&url_on_db(DB), 64).await;
    let f = Arc::new(Fixture::general(store.stores(), CAPACITY, Duration::ZERO).await);
    let mut killer = redis::Client::open(ticketrush_test_support::redis_url())
        .expect("url")
        .get_multiplexed_async_connection()
        .await
        .expect("killer connection");

    let done = Arc::new(AtomicBool::new(false));
    let storm = {
        let done = done.clone();
        tokio::spawn(async move {
            // Ten rounds of kills while the racers run, then the connection may recover.
            let mut kills = 0;
            for _ in 0..10 {
                if done.load(Ordering::SeqCst) {
                    break;
                }
                kills += kill_clients_on_db(&mut killer).await;
                tokio::time::sleep(Duration::from_millis(5)).await;
            }
            kills
        })
    };
    let racers: Vec<_> = (0..300)
        .map(|i| {
            let f = f.clone();
            tokio::spawn(async move {
                let u = user(i % 150);
                let mut outcomes = Vec::new();
                for _ in 0..4 {
                    outcomes.push(f.rush.holds.hold(f.units(&u, 1), None).await);
                    tokio::time::sleep(Duration::from_millis(10)).await;
                }
                outcomes
            })
        })
        .collect();
    let (mut ok, mut unavailable, mut refused) = (Vec::new(), 0, 0);
    for r in racers {
        for outcome in r.await.expect("racer") {
            match outcome {
                Ok(h) => ok.push(h),
                Err(Error::Unavailable(_)) => unavailable += 1,
                Err(Error::Refused(Refusal::SoldOut { .. } | Refusal::LimitExceeded { .. })) => {
                    refused += 1
                }
                Err(other) => panic!("a killed connection produced {other:?}"),
            }
        }
    }
    done.store(true, Ordering::SeqCst);
    let kills = storm.await.expect("storm");
    assert!(kills > 0, "the storm killed no connection");
    assert!(unavailable > 0, "no operation saw a killed connection");
    assert!(
        !ok.is_empty(),
        "no hold succeeded once the connection came back"
    );

    // The connection comes back by itself.
    let snap = loop {
        match f.rush.stores().inventory.snapshot(f.session).await {
            Ok(s) => break s,
            Err(Error::Unavailable(_)) => tokio::time::sleep(Duration::from_millis(20)).await,
            Err(e) => panic!("{e:?}"),
        }
    };
    let totals = snap.totals();
    assert!(totals.is_conserved(), "stock not conserved: {totals:?}");
    // Every held unit belongs to a stored hold, and every hold reported Ok is stored.
    let mut stored_units = 0u64;
    for i in 0..150 {
        for h in f
            .rush
            .stores()
            .reservations
            .holds_of(f.session, &user(i))
            .await
            .expect("holds_of")
        {
            stored_units += u64::from(h.units());
        }
    }
    assert_eq!(
        stored_units, totals.held,
        "held counter and stored holds disagree"
    );
    for h in &ok {
        f.rush
            .stores()
            .reservations
            .get(h.id)
            .await
            .expect("a hold reported Ok is stored");
    }
    assert!(ok.len() as u64 <= totals.held);
    eprintln!(
        "kills={kills} ok={} unavailable={unavailable} refused={refused} held={}",
        ok.len(),
        totals.held
    );
}
