//! A backend connection terminated mid-transaction (`pg_terminate_backend`) leaves the whole
//! operation or none of it: no half-taken stock, no hold without its audit record, no state
//! change without its stock effect. The caller gets `Unavailable` and a retry completes.

mod common;

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;

use sqlx::PgConnection;
use ticket_core::ids::HoldId;
use ticket_core::model::audit::{Actor, AuditScope};
use ticket_core::model::hold::{Hold, HoldState, TransitionRequest};
use ticket_core::store::Stores;
use ticket_core::testkit::{Fixture, T0, user};
use ticket_core::{Error, Timestamp};
use ticket_store_pg::PgStore;

const TTL: Duration = Duration::from_secs(600);

/// Terminates every backend of the store's pool; returns how many.
async fn terminate_store_backends(side: &mut PgConnection, store: &PgStore) -> i64 {
    sqlx::query_scalar(
        "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity
          WHERE application_name = $1 AND pid <> pg_backend_pid()",
    )
    .bind(&store.config().application_name)
    .fetch_one(side)
    .await
    .expect("terminate")
}

/// Waits until one of the store's backends waits on a lock (it is inside a transaction).
async fn wait_for_lock_wait(side: &mut PgConnection, store: &PgStore) {
    for _ in 0..500 {
        let waiting: i64 = sqlx::query_scalar(
            "SELECT count(*) FROM pg_stat_activity
              WHERE application_name = $1 AND wait_event_type = 'Lock'",
        )
        .bind(&store.config().application_name)
        .fetch_one(&mut *side)
        .await
        .expect("pg_stat_activity");
        if waiting > 0 {
            return;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    panic!("no backend of the store ever waited on the blocked stock row");
}

/// Locks the session's stock rows in a transaction of `side`, so the store's next stock
/// change blocks mid-transaction.
async fn block_stock(side: &mut PgConnection) {
    sqlx::query("BEGIN")
        .execute(&mut *side)
        .await
        .expect("begin");
    sqlx::query("SELECT 1 FROM stock FOR UPDATE")
        .execute(&mut *side)
        .await
        .expect("lock stock");
}

async fn unblock_stock(side: &mut PgConnection) {
    sqlx::query("ROLLBACK")
        .execute(&mut *side)
        .await
        .expect("rollback");
}

async fn audit_count(side: &mut PgConnection, id: HoldId) -> i64 {
    sqlx::query_scalar("SELECT count(*) FROM audit WHERE subject_id = $1")
        .bind(id.as_uuid())
        .fetch_one(side)
        .await
        .expect("audit count")
}

fn request(hold: &Hold, to: HoldState, now: Timestamp) -> TransitionRequest {
    TransitionRequest {
        hold: hold.id,
        to,
        now,
        actor: Actor::system("test"),
        reason: "test".into(),
        correlation_id: None,
        payment_ref: Some(format!("pay-{}", hold.id)),
    }
}

/// Every stored hold has exactly one audit record per state it went through, and the
/// counters equal the units of the holds in each state.
async fn assert_whole(f: &Fixture, side: &mut PgConnection, stores: &Stores, ids: &[HoldId]) {
    let (mut held, mut sold) = (0u64, 0u64);
    for id in ids {
        match stores.reservations.get(*id).await {
            Ok(h) => {
                let steps = match h.state {
                    HoldState::Held => 1,
                    HoldState::Paying => 2,
                    HoldState::Confirmed => 3,
                    other => panic!("unexpected state {other:?}"),
                };
                assert_eq!(audit_count(side, *id).await, steps, "audit of {h:?}");
                match h.state {
                    HoldState::Confirmed => sold += u64::from(h.units()),
                    _ => held += u64::from(h.units()),
                }
            }
            Err(Error::NotFound { .. }) => {
                assert_eq!(
                    audit_count(side, *id).await,
                    0,
                    "audit of a hold never made"
                );
            }
            Err(e) => panic!("get: {e:?}"),
        }
    }
    let t = f.totals().await; // asserts conservation
    assert_eq!(
        (t.held, t.sold),
        (held, sold),
        "counters disagree with the holds"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn terminated_hold_batch_commits_nothing_and_a_retry_completes() {
    let store = common::isolated_store(64).await;
    let stores = store.stores();
    let f = Fixture::general(stores.clone(), 100, Duration::ZERO).await;
    let mut side = common::side_connection(&store).await;
    block_stock(&mut side).await;
    let requests: Vec<_> = (0..10)
        .map(|i| f.new_hold(&user(i), 1, T0, T0.plus(TTL)))
        .collect();
    let tasks: Vec<_> = requests
        .iter()
        .cloned()
        .map(|r| {
            let stores = stores.clone();
            tokio::spawn(async move { stores.reservations.hold(r).await })
        })
        .collect();
    wait_for_lock_wait(&mut side, &store).await;
    let mut killer = common::side_connection(&store).await;
    assert!(terminate_store_backends(&mut killer, &store).await > 0);
    unblock_stock(&mut side).await;
    let mut failed = Vec::new();
    for (t, r) in tasks.into_iter().zip(&requests) {
        match t.await.expect("task") {
            Ok(h) => assert_eq!(h.id, r.id),
            Err(Error::Unavailable(_)) => failed.push(r.clone()),
            Err(e) => panic!("hold: {e:?}"),
        }
    }
    assert!(!failed.is_empty(), "no hold was cut off mid-transaction");
    let ids: Vec<HoldId> = requests.iter().map(|r| r.id).collect();
    assert_whole(&f, &mut side, &stores, &ids).await;
    // Retrying with the same hold ids completes each cut-off hold.
    for r in failed {
        stores.reservations.hold(r).await.expect("retry");
    }
    assert_whole(&f, &mut side, &stores, &ids).await;
    assert_eq!(f.ga().await, (90, 10, 0));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn terminated_confirmation_changes_nothing_and_a_retry_confirms_once() {
    let store = common::isolated_store(64).await;
    let stores = store.stores();
    let f = Fixture::general(stores.clone(), 10, Duration::ZERO).await;
    let hold = stores
        .reservations
        .hold(f.new_hold(&user(1), 2, T0, T0.plus(TTL)))
        .await
        .expect("hold");
    let paying = stores
        .reservations
        .transition(request(&hold, HoldState::Paying, T0))
        .await
        .expect("paying")
        .hold;
    let mut side = common::side_connection(&store).await;
    block_stock(&mut side).await;
    let confirm = {
        let (stores, req) = (stores.clone(), request(&paying, HoldState::Confirmed, T0));
        tokio::spawn(async move { stores.reservations.transition(req).await })
    };
    wait_for_lock_wait(&mut side, &store).await;
    let mut killer = common::side_connection(&store).await;
    assert!(terminate_store_backends(&mut killer, &store).await > 0);
    unblock_stock(&mut side).await;
    let err = confirm.await.expect("task").expect_err("cut off");
    assert!(matches!(err, Error::Unavailable(_)), "{err:?}");
    assert_eq!(
        stores.reservations.get(hold.id).await.expect("get").state,
        HoldState::Paying
    );
    assert_whole(&f, &mut side, &stores, &[hold.id]).await;
    assert_eq!(f.ga().await, (8, 2, 0));
    let done = stores
        .reservations
        .transition(request(&paying, HoldState::Confirmed, T0))
        .await
        .expect("retry");
    assert!(done.changed);
    assert_eq!(done.hold.state, HoldState::Confirmed);
    assert_whole(&f, &mut side, &stores, &[hold.id]).await;
    let trail = stores
        .reservations
        .audit(&AuditScope::Hold(hold.id), 10)
        .await
        .expect("audit");
    assert_eq!(trail.iter().filter(|r| r.to == "CONFIRMED").count(), 1);
}

/// A storm: buyers hold and pay while a killer terminates the pool's backends every few
/// milliseconds. Every answer is `Unavailable` or correct, and every hold is whole.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn terminations_during_a_rush_leave_every_hold_whole() {
    let store = common::isolated_store(64).await;
    let stores = store.stores();
    let f = Arc::new(Fixture::general(stores.clone(), 150, Duration::ZERO).await);
    let stop = Arc::new(AtomicBool::new(false));
    let kills = Arc::new(AtomicU64::new(0));
    let killer = {
        let (store, stop, kills) = (store.clone(), stop.clone(), kills.clone());
        tokio::spawn(async move {
            let mut side = common::side_connection(&store).await;
            while !stop.load(Ordering::SeqCst) {
                let n = terminate_store_backends(&mut side, &store).await;
                kills.fetch_add(u64::try_from(n).unwrap_or(0), Ordering::Relaxed);
                tokio::time::sleep(Duration::from_millis(15)).await;
            }
        })
    };
    let buyers: Vec<_> = (0..200)
        .map(|i| {
            let (stores, f) = (stores.clone(), f.clone());
            tokio::spawn(async move {
                let req = f.new_hold(&user(i), 1, T0, T0.plus(TTL));
                let id = req.id;
                let hold = match stores.reservations.hold(req).await {
                    Ok(h) => h,
                    Err(Error::Unavailable(_) | Error::Refused(_)) => return id,
                    Err(e) => panic!("hold: {e:?}"),
                };
                for to in [HoldState::Paying, HoldState::Confirmed] {
                    match stores.reservations.transition(request(&hold, to, T0)).await {
                        Ok(o) => assert_eq!(o.hold.state, to),
                        Err(Error::Unavailable(_)) => break,
                        Err(e) => panic!("transition: {e:?}"),
                    }
                }
                id
            })
        })
        .collect();
    let mut ids = Vec::new();
    for b in buyers {
        ids.push(b.await.expect("buyer"));
    }
    stop.store(true, Ordering::SeqCst);
    killer.await.expect("killer");
    assert!(
        kills.load(Ordering::Relaxed) > 0,
        "the killer never hit a backend"
    );
    let mut side = common::side_connection(&store).await;
    assert_whole(&f, &mut side, &stores, &ids).await;
}
