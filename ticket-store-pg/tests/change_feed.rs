//! The PostgreSQL read side beyond the conformance suite: ids and change kinds built in SQL
//! match ticket-core's, retention answers `ChangesPruned`, `wait_for_change` wakes on a
//! commit made through another pool (also after the listening connection was killed), the
//! feed stays dense and the counts exact under 64 concurrent writers on two pools.

mod common;

use std::sync::Arc;
use std::time::{Duration, Instant};

use ticket_core::ids::{AuditId, HoldId, SessionId, TicketId};
use ticket_core::model::audit::{Actor, Subject};
use ticket_core::model::change::{ChangeKind, FeedRetention};
use ticket_core::model::hold::{HoldState, TransitionRequest};
use ticket_core::model::queue::JoinRequest;
use ticket_core::store::Stores;
use ticket_core::testkit::{Fixture, T0, user};
use ticket_core::{Error, Refusal, Timestamp};
use ticket_store_pg::PgStore;

const TTL: Duration = Duration::from_secs(600);

async fn store_with_retention(keep: u64) -> PgStore {
    let mut config = common::isolated_config();
    config.feed_retention = FeedRetention {
        max_changes_per_session: keep,
    };
    let store = PgStore::connect(config).await.expect("connect");
    store.migrate().await.expect("migrate");
    store
}

async fn hold(stores: &Stores, f: &Fixture, i: usize, now: Timestamp) -> HoldId {
    let req = f.new_hold(&user(i), 1, now, now.plus(TTL));
    stores.reservations.hold(req).await.expect("hold").id
}

fn to(hold: HoldId, state: HoldState, now: Timestamp) -> TransitionRequest {
    TransitionRequest {
        hold,
        to: state,
        now,
        actor: Actor::system("test"),
        reason: "test".into(),
        correlation_id: None,
        payment_ref: None,
    }
}

#[tokio::test]
async fn sql_audit_ids_and_change_kinds_match_ticket_core() {
    let store = common::isolated_store(64).await;
    let mut c = common::side_connection(&store).await;
    let session = SessionId::new_at(T0);
    for (at, n) in [
        (T0, 1u64),
        (T0, 2),
        (Timestamp::from_millis(0), 7),
        (T0, (1 << 30) - 1),
        (T0, 1 << 30),
        (T0, (1 << 42) - 1),
    ] {
        let sql: String = sqlx::query_scalar("SELECT tr_audit_id($1, $2, $3)::text")
            .bind(at.as_millis())
            .bind(i64::try_from(n).expect("n"))
            .bind(session.as_uuid())
            .fetch_one(&mut c)
            .await
            .expect("tr_audit_id");
        assert_eq!(sql, AuditId::sequenced(at, n, session).to_string(), "{n}");
    }
    let h = Subject::Hold(HoldId::new_at(T0));
    let t = Subject::Ticket(TicketId::new_at(T0));
    let states = HoldState::ALL.map(|s| s.as_str().to_owned());
    let tickets = ["WAITING", "ACTIVE", "EXPIRED", "USED", "LEFT", "VALID"];
    for (subject, kind, names) in [
        (
            h,
            "hold",
            states
                .iter()
                .map(String::as_str)
                .chain(["USED"])
                .collect::<Vec<_>>(),
        ),
        (t, "ticket", tickets.to_vec()),
    ] {
        for name in names {
            let sql: Option<String> = sqlx::query_scalar("SELECT tr_change_kind($1, $2)")
                .bind(kind)
                .bind(name)
                .fetch_one(&mut c)
                .await
                .expect("tr_change_kind");
            let rust = ChangeKind::of_transition(&subject, name).map(ChangeKind::as_str);
            assert_eq!(sql.as_deref(), rust, "{kind} {name}");
        }
    }
}

#[tokio::test]
async fn a_pruned_cursor_is_refused_with_the_first_kept_change() {
    let store = store_with_retention(10).await;
    let stores = store.stores();
    let f = Fixture::general(stores.clone(), 100, Duration::ZERO).await;
    for i in 0..30 {
        hold(&stores, &f, i, T0).await;
    }
    let head = stores
        .feed
        .changes(f.session, 0, 500)
        .await
        .expect("read")
        .head;
    assert_eq!(head, 30);
    assert_eq!(store.prune_changes().await.expect("prune"), 20);
    assert_eq!(
        store.prune_changes().await.expect("prune"),
        0,
        "nothing more"
    );
    match stores.feed.changes(f.session, 0, 500).await {
        Err(Error::Refused(Refusal::ChangesPruned { first_kept })) => assert_eq!(first_kept, 21),
        other => panic!("expected ChangesPruned, got {other:?}"),
    }
    match stores.feed.changes(f.session, 19, 500).await {
        Err(Error::Refused(Refusal::ChangesPruned { first_kept: 21 })) => {}
        other => panic!("expected ChangesPruned, got {other:?}"),
    }
    let kept = stores.feed.changes(f.session, 20, 500).await.expect("kept");
    let seqs: Vec<u64> = kept.changes.iter().map(|c| c.seq).collect();
    assert_eq!(seqs, (21..=30).collect::<Vec<_>>());
    // the sweeper prunes too
    for i in 30..45 {
        hold(&stores, &f, i, T0).await;
    }
    stores
        .reservations
        .expire_due(T0.plus(TTL), 1)
        .await
        .expect("sweep");
    let page = stores.feed.changes(f.session, 40, 500).await.expect("read");
    assert_eq!(page.head, 46);
    assert!(matches!(
        stores.feed.changes(f.session, 35, 500).await,
        Err(Error::Refused(Refusal::ChangesPruned { first_kept: 37 }))
    ));
}

/// Waits for a change after the head from `store`, while `writer` (another pool) writes
/// after `delay`; returns how long after the write's commit the wait returned.
async fn wake_after(store: &PgStore, writer: &PgStore, f: &Fixture, i: usize) -> Duration {
    let stores = store.stores();
    let head = stores
        .feed
        .changes(f.session, 0, 1)
        .await
        .expect("head")
        .head;
    let writer = writer.stores();
    let session = f.session;
    let write = async {
        tokio::time::sleep(Duration::from_millis(300)).await;
        let req = f.new_hold(&user(i), 1, T0, T0.plus(TTL));
        writer.reservations.hold(req).await.expect("hold");
        Instant::now()
    };
    let wait = async {
        stores
            .feed
            .wait_for_change(session, head, Duration::from_secs(10))
            .await
            .expect("wait");
        Instant::now()
    };
    let (written, woke) = tokio::join!(write, wait);
    let after = stores.feed.changes(session, head, 10).await.expect("read");
    assert_eq!(after.head, head + 1, "woke for the write");
    woke.saturating_duration_since(written)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn waiting_wakes_within_a_second_of_a_commit_from_another_pool() {
    let store = common::isolated_store(64).await;
    let other = common::another_server(&store).await;
    let f = Fixture::general(store.stores(), 100, Duration::ZERO).await;
    for i in 0..3 {
        let late = wake_after(&store, &other, &f, i).await;
        assert!(
            late < Duration::from_secs(1),
            "woke {late:?} after the commit"
        );
    }
    // a wait whose change never comes returns at its timeout
    let head = store
        .stores()
        .feed
        .changes(f.session, 0, 1)
        .await
        .expect("h")
        .head;
    let started = Instant::now();
    store
        .stores()
        .feed
        .wait_for_change(f.session, head, Duration::from_millis(300))
        .await
        .expect("timeout is Ok");
    let waited = started.elapsed();
    assert!(waited >= Duration::from_millis(290) && waited < Duration::from_secs(2));
    // unknown session
    assert!(matches!(
        store
            .stores()
            .feed
            .wait_for_change(SessionId::new_at(T0), 0, Duration::from_millis(10))
            .await,
        Err(Error::NotFound { .. })
    ));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn waiting_survives_the_listening_connection_being_killed() {
    let store = common::isolated_store(64).await;
    let other = common::another_server(&store).await;
    let f = Fixture::general(store.stores(), 100, Duration::ZERO).await;
    wake_after(&store, &other, &f, 0).await;
    let mut side = common::side_connection(&store).await;
    let killed: i64 = sqlx::query_scalar(
        "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity
          WHERE application_name = $1 AND query ILIKE 'LISTEN%' AND pid <> pg_backend_pid()",
    )
    .bind(&store.config().application_name)
    .fetch_one(&mut side)
    .await
    .expect("terminate");
    assert!(killed >= 1, "the listener's backend was found");
    for i in 1..3 {
        let late = wake_after(&store, &other, &f, i).await;
        assert!(
            late < Duration::from_secs(1),
            "woke {late:?} after the commit"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_feed_is_dense_and_counts_exact_under_64_writers_on_two_pools() {
    let store = common::isolated_store(64).await;
    let other = common::another_server(&store).await;
    let f = Arc::new(Fixture::general(store.stores(), 100, Duration::ZERO).await);
    let pools = [store.stores(), other.stores()];
    let mut tasks = Vec::new();
    for i in 0..64 {
        let stores = pools[i % 2].clone();
        let f = f.clone();
        tasks.push(tokio::spawn(async move {
            let now = T0.plus(Duration::from_millis(i as u64));
            match i % 4 {
                0 => {
                    stores
                        .queue
                        .join(JoinRequest {
                            session: f.session,
                            user: user(1000 + i),
                            now,
                            pre_queue: false,
                            max_waiting: None,
                        })
                        .await
                        .expect("join");
                }
                _ => {
                    let mut ids = Vec::new();
                    for k in 0..3 {
                        let req = f.new_hold(&user(i * 10 + k), 1, now, now.plus(TTL));
                        match stores.reservations.hold(req).await {
                            Ok(h) => ids.push(h.id),
                            Err(Error::Refused(Refusal::SoldOut { .. })) => {}
                            Err(e) => panic!("hold: {e}"),
                        }
                    }
                    for (k, id) in ids.into_iter().enumerate() {
                        let state = [HoldState::Paying, HoldState::Released, HoldState::Held][k];
                        if state != HoldState::Held {
                            // a racing sweep may have expired it first
                            match stores.reservations.transition(to(id, state, now)).await {
                                Ok(_) | Err(Error::Refused(_)) => {}
                                Err(e) => panic!("transition: {e}"),
                            }
                        }
                    }
                }
            }
            if i % 8 == 1 {
                stores
                    .reservations
                    .expire_due(T0.plus(TTL).plus(TTL), 5)
                    .await
                    .expect("sweep");
            }
        }));
    }
    for t in tasks {
        t.await.expect("task");
    }
    let mut c = common::side_connection(&store).await;
    let (n, min, max, head): (i64, Option<i64>, Option<i64>, i64) = sqlx::query_as(
        "SELECT count(*), min(seq), max(seq), (SELECT head FROM session_log WHERE session_id = $1)
           FROM changes WHERE session_id = $1",
    )
    .bind(f.session.as_uuid())
    .fetch_one(&mut c)
    .await
    .expect("feed");
    assert_eq!((n, min, max), (head, Some(1), Some(head)), "dense 1..=head");
    let (mirrored, audited, ids_in_order): (i64, i64, bool) = sqlx::query_as(
        "SELECT count(*) FILTER (WHERE tr_change_kind(subject_kind, to_state) IS NOT NULL),
                count(*), bool_and(id = tr_audit_id(at, n, session_id))
           FROM (SELECT *, row_number() OVER (ORDER BY ord) AS n FROM audit
                  WHERE session_id = $1) a",
    )
    .bind(f.session.as_uuid())
    .fetch_one(&mut c)
    .await
    .expect("audit");
    let unmirrored: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM changes
          WHERE session_id = $1 AND kind IN ('sold_out', 'queue_drawn')",
    )
    .bind(f.session.as_uuid())
    .fetch_one(&mut c)
    .await
    .expect("session-wide changes");
    assert_eq!(
        mirrored + unmirrored,
        head,
        "one change per mirrored record"
    );
    assert!(ids_in_order, "audit ids are sequenced in write order");
    let logged: i64 = sqlx::query_scalar("SELECT audited FROM session_log WHERE session_id = $1")
        .bind(f.session.as_uuid())
        .fetch_one(&mut c)
        .await
        .expect("audited");
    assert_eq!(logged, audited);

    let counts = store
        .stores()
        .inventory
        .counts(f.session)
        .await
        .expect("counts");
    assert!(counts.is_consistent(), "{counts:?}");
    let by_state: Vec<(String, i64)> =
        sqlx::query_as("SELECT state, count(*) FROM holds WHERE session_id = $1 GROUP BY 1")
            .bind(f.session.as_uuid())
            .fetch_all(&mut c)
            .await
            .expect("holds");
    for state in HoldState::ALL {
        let stored = by_state
            .iter()
            .find(|(s, _)| s == state.as_str())
            .map_or(0, |(_, n)| u64::try_from(*n).expect("count"));
        assert_eq!(counts.holds.get(state), stored, "{state:?}");
    }
    let paying_units: i64 = sqlx::query_scalar(
        "SELECT coalesce(sum(units), 0)::bigint FROM holds
          WHERE session_id = $1 AND state = 'PAYING'",
    )
    .bind(f.session.as_uuid())
    .fetch_one(&mut c)
    .await
    .expect("paying");
    assert_eq!(i64::from(counts.grades[0].paying), paying_units);
    let snapshot = store
        .stores()
        .inventory
        .snapshot(f.session)
        .await
        .expect("snap");
    assert_eq!(counts.grades[0].available, snapshot.grades[0].available);
    assert_eq!(counts.grades[0].held, snapshot.grades[0].held);
    assert_eq!(counts.grades[0].sold, snapshot.grades[0].sold);
}
