//! Positions from the block counters of `queue_line_counts` (migration `0004_line_counts`)
//! stay exact under concurrent joins, leaves and admission rounds: afterwards every waiting
//! user's position is its rank in join order, and every counter equals a recount of the line.

mod common;

use std::time::Duration;

use sqlx::PgConnection;
use ticket_core::ids::SessionId;
use ticket_core::model::queue::{AdmissionPacing, JoinRequest};
use ticket_core::store::WaitingQueue;
use ticket_core::testkit::{Fixture, T0, user};

const USERS: usize = 600;
const TASKS: usize = 32;

/// Counter rows that differ from a recount of the WAITING tickets with a sequence number
/// (rows at 0 count as absent).
async fn counter_mismatches(conn: &mut PgConnection) -> Vec<(String, i16, i64, i64, i64)> {
    sqlx::query_as(
        "WITH truth AS (
             SELECT t.session_id, l.level::smallint AS level, t.seq >> (6 * l.level) AS bucket,
                    count(*) AS n
               FROM queue_tickets t, (VALUES (1), (2), (3), (4)) AS l(level)
              WHERE t.state = 'WAITING' AND t.seq IS NOT NULL
              GROUP BY 1, 2, 3)
         SELECT coalesce(c.session_id, t.session_id)::text, coalesce(c.level, t.level),
                coalesce(c.bucket, t.bucket), coalesce(c.n, 0), coalesce(t.n, 0)
           FROM queue_line_counts c
           FULL JOIN truth t USING (session_id, level, bucket)
          WHERE coalesce(c.n, 0) <> coalesce(t.n, 0)",
    )
    .fetch_all(conn)
    .await
    .expect("recount")
}

/// Every waiting user's position equals its 1-based rank by sequence number.
async fn positions_are_ranks(store: &ticket_store_pg::PgStore, session: SessionId) -> usize {
    let mut line = Vec::new();
    let mut after = None;
    loop {
        let page = store.waiting_line(session, after, 500).await.expect("line");
        let Some(last) = page.last() else { break };
        after = Some(last.line);
        line.extend(page);
    }
    for (rank, entry) in line.iter().enumerate() {
        let view = store.view(session, &entry.user, T0).await.expect("view");
        assert_eq!(
            view.position,
            Some(rank as u64 + 1),
            "{} at line {}",
            entry.user,
            entry.line
        );
    }
    line.len()
}

/// 32 tasks join 600 users (each task in its own order), every third user leaves right after
/// joining, and admission rounds run all along; then the positions are the ranks and the
/// counters match a recount. Then half of the rest leave concurrently and it holds again.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn positions_stay_ranks_under_racing_joins_leaves_and_admissions() {
    let store = common::isolated_store(64).await;
    let f = Fixture::general(store.stores(), 100_000, Duration::ZERO).await;
    let session = f.session;
    let pacing = AdmissionPacing {
        max_active: 10_000,
        max_per_minute: 7,
        admission_ttl: Duration::from_secs(86_400),
        units_per_user: 1,
    };
    let admitting = {
        let store = store.clone();
        tokio::spawn(async move {
            let mut admitted = 0;
            for round in 0..40u64 {
                let now = T0.plus(Duration::from_secs(61 * round));
                admitted += store
                    .admit(session, pacing, now)
                    .await
                    .expect("admit")
                    .admitted
                    .len();
                tokio::time::sleep(Duration::from_millis(5)).await;
            }
            admitted
        })
    };
    let tasks: Vec<_> = (0..TASKS)
        .map(|k| {
            let store = store.clone();
            tokio::spawn(async move {
                for i in (0..USERS).filter(|i| i % TASKS == k) {
                    store
                        .join(JoinRequest {
                            session,
                            user: user(i),
                            now: T0,
                            pre_queue: false,
                            max_waiting: None,
                        })
                        .await
                        .expect("join");
                    if i % 3 == 0 {
                        store.leave(session, &user(i), T0).await.expect("leave");
                    }
                }
            })
        })
        .collect();
    for t in tasks {
        t.await.expect("task");
    }
    let admitted = admitting.await.expect("admissions");
    assert!(admitted > 0, "no admission ran");
    let mut c = common::side_connection(&store).await;
    assert_eq!(counter_mismatches(&mut c).await, vec![]);
    let waiting = positions_are_ranks(&store, session).await;
    // some admitted users left afterwards, so the line is checked against the counters
    let stats = store.stats(session, T0).await.expect("stats");
    assert_eq!(waiting as u64, stats.waiting);
    assert!(
        waiting < USERS - USERS / 3,
        "nobody left the line by admission"
    );

    // half of the rest leave while admissions go on
    let admitting = {
        let store = store.clone();
        tokio::spawn(async move {
            for round in 40..60u64 {
                let now = T0.plus(Duration::from_secs(61 * round));
                store.admit(session, pacing, now).await.expect("admit");
            }
        })
    };
    let tasks: Vec<_> = (0..TASKS)
        .map(|k| {
            let store = store.clone();
            tokio::spawn(async move {
                for i in (0..USERS).filter(|i| i % TASKS == k && i % 2 == 1 && i % 3 != 0) {
                    store.leave(session, &user(i), T0).await.expect("leave");
                }
            })
        })
        .collect();
    for t in tasks {
        t.await.expect("task");
    }
    admitting.await.expect("admissions");
    assert_eq!(counter_mismatches(&mut c).await, vec![]);
    let waiting = positions_are_ranks(&store, session).await;
    let stats = store.stats(session, T0).await.expect("stats");
    assert_eq!(waiting as u64, stats.waiting);
}

/// The draw gives the pre-queue its sequence numbers in one statement: the counters follow,
/// and positions are the drawn order.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn drawn_pre_queue_positions_are_the_draw_order() {
    let store = common::isolated_store(64).await;
    let f = Fixture::general(store.stores(), 1_000, Duration::ZERO).await;
    for i in 0..150 {
        store
            .join(JoinRequest {
                session: f.session,
                user: user(i),
                now: T0,
                pre_queue: true,
                max_waiting: None,
            })
            .await
            .expect("join");
    }
    let draw = store.draw(f.session, 7, T0).await.expect("draw");
    let mut c = common::side_connection(&store).await;
    assert_eq!(counter_mismatches(&mut c).await, vec![]);
    for (rank, u) in draw.order.iter().enumerate() {
        let view = store.view(f.session, u, T0).await.expect("view");
        assert_eq!(view.position, Some(rank as u64 + 1), "{u}");
    }
    assert_eq!(positions_are_ranks(&store, f.session).await, 150);
}
