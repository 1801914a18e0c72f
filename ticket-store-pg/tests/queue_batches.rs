//! Coalesced joins and leaves under real concurrency: many tasks on one session of a real
//! PostgreSQL, their joins, leaves and holds batched, checked against "one live ticket per
//! user", a gapless FIFO line, and "a ticket is used or left, never both".

mod common;

use std::collections::{HashMap, HashSet};
use std::time::Duration;

use ticket_core::model::audit::AuditScope;
use ticket_core::model::queue::{AdmissionPacing, JoinRequest, TicketState};
use ticket_core::store::{Reservations, WaitingQueue};
use ticket_core::testkit::{Fixture, T0, user};
use ticket_core::{Error, Refusal};

const USERS: usize = 300;
const TASKS: usize = 32;

/// 32 tasks join 300 users, every user by two racing calls, each task in ascending user
/// order. Both calls of a user answer the same ticket; the line holds every user once with
/// the sequence numbers 0..300 without a gap; each task's users got ascending sequence
/// numbers (a task's joins do not overlap, so their order is kept); one audit record per
/// user; the queue counts 300 waiting.
async fn join(
    store: ticket_store_pg::PgStore,
    session: ticket_core::ids::SessionId,
    i: usize,
) -> ticket_core::model::queue::QueueTicket {
    store
        .join(JoinRequest {
            session,
            user: user(i),
            now: T0,
            pre_queue: false,
            max_waiting: None,
        })
        .await
        .expect("join")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn racing_joins_give_one_ticket_per_user_and_a_gapless_line() {
    let store = common::isolated_store(64).await;
    let f = Fixture::general(store.stores(), 1_000, Duration::ZERO).await;
    let session = f.session;
    let tasks: Vec<_> = (0..TASKS)
        .map(|k| {
            let store = store.clone();
            tokio::spawn(async move {
                let mut mine = Vec::new();
                for i in (0..USERS).filter(|i| i % TASKS == k) {
                    let (a, b) = tokio::join!(join(store.clone(), session, i), async {
                        tokio::task::yield_now().await;
                        join(store.clone(), session, i).await
                    });
                    assert_eq!(a, b, "user {i}: two live tickets");
                    mine.push(a.seq.expect("a FIFO join has a sequence number"));
                }
                assert!(mine.windows(2).all(|w| w[0] < w[1]), "task {k}: {mine:?}");
                mine
            })
        })
        .collect();
    let mut seqs = Vec::new();
    for t in tasks {
        seqs.extend(t.await.expect("task"));
    }
    seqs.sort_unstable();
    assert_eq!(
        seqs,
        (0..USERS as u64).collect::<Vec<_>>(),
        "gaps or repeats"
    );
    let stats = store.stats(session, T0).await.expect("stats");
    assert_eq!(stats.waiting, USERS as u64);
    let records = store
        .audit(&AuditScope::Session(session), 1_000_000)
        .await
        .expect("audit");
    let mut joined: HashMap<String, usize> = HashMap::new();
    for r in records.iter().filter(|r| r.to == "WAITING") {
        *joined.entry(r.owner.as_str().to_owned()).or_default() += 1;
    }
    assert_eq!(joined.len(), USERS);
    assert!(joined.values().all(|&n| n == 1), "a user joined twice");
    let positions: HashSet<u64> = {
        let mut p = HashSet::new();
        for i in 0..USERS {
            let v = store.view(session, &user(i), T0).await.expect("view");
            p.insert(v.position.expect("waiting"));
        }
        p
    };
    assert_eq!(positions.len(), USERS, "two users share a position");
}

/// 200 admitted users each race a hold (which uses up their admission) against a leave of
/// their own ticket, from 32 tasks, so hold batches and leave batches lock several users'
/// tickets at once. For each user exactly one wins: the hold (the leave is refused
/// `NotInQueue`) or the leave (the hold is refused `NotAdmitted`). Nothing fails (a deadlock
/// between the batches would surface as `Unavailable`), the held units match the holds made,
/// and nobody stays active.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn racing_holds_and_leaves_use_or_leave_each_ticket_once() {
    const ADMITTED: usize = 200;
    let store = common::isolated_store(64).await;
    let f = std::sync::Arc::new(Fixture::general(store.stores(), 10_000, Duration::ZERO).await);
    f.set_policy(|p| p.queue.require_admission = true).await;
    for i in 0..ADMITTED {
        join(store.clone(), f.session, i).await;
    }
    let pacing = AdmissionPacing {
        max_active: ADMITTED as u32,
        max_per_minute: 10_000,
        admission_ttl: Duration::from_secs(600),
        units_per_user: 1,
    };
    let round = store.admit(f.session, pacing, T0).await.expect("admit");
    assert_eq!(round.admitted.len(), ADMITTED);
    let tasks: Vec<_> = (0..TASKS)
        .map(|k| {
            let f = f.clone();
            tokio::spawn(async move {
                let mut held = 0u32;
                for i in (0..ADMITTED).filter(|i| i % TASKS == k) {
                    let u = user(i);
                    let (hold, leave) = tokio::join!(
                        f.rush.holds.hold(f.units(&u, 1), None),
                        f.rush.admission.leave(f.session, &u)
                    );
                    match (hold, leave) {
                        (Ok(_), Err(Error::Refused(Refusal::NotInQueue))) => held += 1,
                        (Err(Error::Refused(Refusal::NotAdmitted)), Ok(t)) => {
                            assert_eq!(t.state, TicketState::Left, "{u}");
                        }
                        other => panic!("{u}: {other:?}"),
                    }
                }
                held
            })
        })
        .collect();
    let mut held = 0;
    for t in tasks {
        held += t.await.expect("task");
    }
    assert_eq!(f.ga().await.1, held, "held units against holds made");
    let stats = store.stats(f.session, T0).await.expect("stats");
    assert_eq!(stats.active, 0);
}
