//! Coalesced queue views and leaves under real concurrency: many tasks on one real Redis,
//! their calls batched per session, checked against what FIFO and "leave once" promise.

mod common;

use std::collections::HashSet;
use std::time::Duration;

use ticket_core::ids::UserId;
use ticket_core::model::audit::{AuditScope, Subject};
use ticket_core::model::queue::{AdmissionPacing, JoinRequest, TicketState};
use ticket_core::store::{Reservations, WaitingQueue};
use ticket_core::testkit::{Fixture, T0, user};

const USERS: usize = 400;
const ADMITTED: usize = 40;
const TASKS: usize = 32;

/// Users `0..ADMITTED` are ACTIVE and the rest wait in join order. Then, all at once, every
/// even user is made to leave by two racing tasks while other tasks keep reading the odd
/// users' positions. Every leave answers the one LEFT ticket, each user leaves exactly once
/// (one audit record), positions only move forward while people leave, and afterwards the
/// waiting odd users hold the positions 1, 2, 3, … in join order.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn racing_views_and_leaves_keep_fifo_and_leave_once() {
    let store = common::isolated_store(64).await;
    let f = Fixture::general(store.stores(), 10_000, Duration::ZERO).await;
    let session = f.session;
    for i in 0..USERS {
        let t = store
            .join(JoinRequest {
                session,
                user: user(i),
                now: T0,
                pre_queue: false,
                max_waiting: None,
            })
            .await
            .expect("join");
        assert_eq!(t.seq, Some(i as u64), "joined one after another");
    }
    let pacing = AdmissionPacing {
        max_active: ADMITTED as u32,
        max_per_minute: 10_000,
        admission_ttl: Duration::from_secs(600),
        units_per_user: 1,
    };
    let round = store.admit(session, pacing, T0).await.expect("admit");
    assert_eq!(round.admitted.len(), ADMITTED);

    let mut tasks = Vec::new();
    for k in 0..TASKS {
        let store = store.clone();
        tasks.push(tokio::spawn(async move {
            if k % 2 == 0 {
                // Leavers: each even user is left by two tasks at once.
                for i in (0..USERS).filter(|i| i % 2 == 0 && (i / 2) % (TASKS / 2) == k / 2) {
                    let u = user(i);
                    let (a, b) = tokio::join!(store.leave(session, &u, T0), async {
                        tokio::task::yield_now().await;
                        store.leave(session, &u, T0).await
                    });
                    let (a, b) = (a.expect("leave"), b.expect("leave again"));
                    assert_eq!(a.state, TicketState::Left, "{u}");
                    assert_eq!(a, b, "{u}: two leaves, two different tickets");
                }
            } else {
                // Readers: the odd waiting users' positions never move back.
                let mut last = vec![u64::MAX; USERS];
                for _ in 0..4 {
                    for i in (ADMITTED..USERS).filter(|i| i % 2 == 1) {
                        let v = store.view(session, &user(i), T0).await.expect("view");
                        assert_eq!(v.ticket.state, TicketState::Waiting, "user {i}");
                        let p = v.position.expect("a waiting user has a position");
                        assert!(p >= 1 && p <= (i - ADMITTED + 1) as u64, "user {i} at {p}");
                        assert!(p <= last[i], "user {i} moved back: {} -> {p}", last[i]);
                        last[i] = p;
                    }
                }
            }
        }));
    }
    for t in tasks {
        t.await.expect("task");
    }

    let stats = store.stats(session, T0).await.expect("stats");
    assert_eq!(
        stats.active,
        (ADMITTED / 2) as u64,
        "left admissions still counted"
    );
    assert_eq!(stats.waiting, ((USERS - ADMITTED) / 2) as u64);
    for (n, i) in (ADMITTED..USERS).filter(|i| i % 2 == 1).enumerate() {
        let v = store.view(session, &user(i), T0).await.expect("view");
        assert_eq!(v.position, Some(n as u64 + 1), "user {i} out of FIFO order");
    }
    for i in (0..USERS).filter(|i| i % 2 == 0) {
        let v = store.view(session, &user(i), T0).await.expect("view");
        assert_eq!(v.ticket.state, TicketState::Left, "user {i}");
        assert_eq!(v.position, None);
    }
    let records = store
        .audit(&AuditScope::Session(session), 1_000_000)
        .await
        .expect("audit");
    let mut left = HashSet::new();
    for r in records.iter().filter(|r| r.to == "LEFT") {
        assert!(matches!(r.subject, Subject::Ticket(_)), "{r:?}");
        assert!(left.insert(r.owner.clone()), "{} left twice", r.owner);
    }
    assert_eq!(left.len(), USERS / 2, "one LEFT record per even user");
}

/// A batch of views over users who never joined, joined, and left: each gets its own answer.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_view_batch_answers_each_user_on_its_own() {
    let store = common::isolated_store(64).await;
    let f = Fixture::general(store.stores(), 100, Duration::ZERO).await;
    let session = f.session;
    for i in 0..3 {
        f.join(i).await;
    }
    store.leave(session, &user(1), T0).await.expect("leave");
    let stranger = UserId::new("never-joined").expect("user");
    let views = futures_join_all(
        (0..64)
            .map(|k| {
                let store = store.clone();
                let u = match k % 4 {
                    0 => user(0),
                    1 => user(1),
                    2 => user(2),
                    _ => stranger.clone(),
                };
                tokio::spawn(async move { (k, store.view(session, &u, T0).await) })
            })
            .collect(),
    )
    .await;
    for (k, v) in views {
        match k % 4 {
            0 => assert_eq!(v.expect("view").position, Some(1)),
            1 => assert_eq!(v.expect("view").ticket.state, TicketState::Left),
            2 => assert_eq!(v.expect("view").position, Some(2)),
            _ => assert!(
                matches!(v, Err(ticket_core::Error::NotFound { .. })),
                "{v:?}"
            ),
        }
    }
}

async fn futures_join_all<T: Send + 'static>(tasks: Vec<tokio::task::JoinHandle<T>>) -> Vec<T> {
    let mut out = Vec::with_capacity(tasks.len());
    for t in tasks {
        out.push(t.await.expect("task"));
    }
    out
}
