//! The schema itself refuses what would oversell or rewrite history, whatever code runs
//! against it: these statements bypass the library's functions and must all fail.

mod common;

use std::time::Duration;

use sqlx::PgConnection;
use ticket_core::model::hold::Selection;
use ticket_core::testkit::{Fixture, T0, seat, user};

/// Runs `sql` and returns the SQLSTATE it failed with.
async fn refused(conn: &mut PgConnection, sql: &str) -> String {
    match sqlx::query(sql).execute(conn).await {
        Ok(done) => panic!("{sql} was accepted ({} rows)", done.rows_affected()),
        Err(e) => e
            .as_database_error()
            .and_then(|d| d.code())
            .map(|c| c.into_owned())
            .unwrap_or_else(|| panic!("{sql}: {e}")),
    }
}

#[tokio::test]
async fn stock_counters_cannot_leave_their_range_or_break_conservation() {
    let store = common::isolated_store(64).await;
    let f = Fixture::general(store.stores(), 10, Duration::ZERO).await;
    let mut c = common::side_connection(&store).await;
    let check = "23514";
    assert_eq!(
        refused(&mut c, "UPDATE stock SET available = -1, held = held + 11").await,
        check
    );
    assert_eq!(
        refused(&mut c, "UPDATE stock SET available = capacity + 1").await,
        check
    );
    assert_eq!(
        refused(&mut c, "UPDATE stock SET available = available - 1").await,
        check
    );
    assert_eq!(
        refused(
            &mut c,
            "UPDATE stock SET held = -1, available = available + 1"
        )
        .await,
        check
    );
    assert_eq!(f.ga().await, (10, 0, 0));
}

#[tokio::test]
async fn a_seat_cannot_be_in_two_live_holds() {
    let store = common::isolated_store(64).await;
    let f = Fixture::seated(store.stores(), &["A-1", "A-2"]).await;
    let mut req = f.new_hold(&user(1), 1, T0, T0.plus(Duration::from_secs(60)));
    req.selection = Selection::Seats {
        seats: vec![seat("A-1")],
    };
    store
        .stores()
        .reservations
        .hold(req)
        .await
        .expect("seat hold");
    let mut c = common::side_connection(&store).await;
    // A second live row for A-1, through another hold row copied from the first.
    let sql = "WITH h AS (INSERT INTO holds (id, session_id, user_id, state, seated, grades,
                   counts, units, items, amount, currency, created_at, expires_at, updated_at)
                 SELECT gen_random_uuid(), session_id, 'intruder', 'HELD', true, grades, counts,
                        units, items, amount, currency, created_at, expires_at, updated_at
                   FROM holds LIMIT 1 RETURNING id, session_id)
               INSERT INTO hold_seats (hold_id, session_id, seat_id, state)
               SELECT id, session_id, 'A-1', 'PAYING' FROM h";
    assert_eq!(refused(&mut c, sql).await, "23505");
}

#[tokio::test]
async fn a_user_cannot_have_two_live_queue_tickets() {
    let store = common::isolated_store(64).await;
    let f = Fixture::general(store.stores(), 10, Duration::ZERO).await;
    f.join(1).await;
    let mut c = common::side_connection(&store).await;
    let sql = "INSERT INTO queue_tickets (id, session_id, user_id, state, pre_queue, seq, joined_at)
               SELECT gen_random_uuid(), session_id, user_id, 'WAITING', false, seq + 1000, joined_at
                 FROM queue_tickets LIMIT 1";
    assert_eq!(refused(&mut c, sql).await, "23505");
}

#[tokio::test]
async fn the_audit_trail_is_append_only() {
    let store = common::isolated_store(64).await;
    let f = Fixture::general(store.stores(), 10, Duration::ZERO).await;
    f.join(1).await;
    let mut c = common::side_connection(&store).await;
    let privilege = "42501";
    assert_eq!(
        refused(&mut c, "UPDATE audit SET reason = 'rewritten'").await,
        privilege
    );
    assert_eq!(refused(&mut c, "DELETE FROM audit").await, privilege);
    assert_eq!(refused(&mut c, "TRUNCATE audit").await, privilege);
    let n: i64 = sqlx::query_scalar("SELECT count(*) FROM audit")
        .fetch_one(&mut c)
        .await
        .expect("count");
    assert!(n > 0);
}

#[tokio::test]
async fn check_in_marks_are_final_and_a_checked_in_hold_cannot_be_cancelled() {
    let store = common::isolated_store(64).await;
    let f = Fixture::general(store.stores(), 10, Duration::ZERO).await;
    let h = f.hold(&user(1), 2).await;
    f.pay(&h).await;
    f.rush
        .gate
        .check_in(h.id, f.session, 1, "gate-a")
        .await
        .expect("check in");
    let mut c = common::side_connection(&store).await;
    let privilege = "42501";
    assert_eq!(
        refused(&mut c, "UPDATE ticket_uses SET gate = 'someone else'").await,
        privilege
    );
    assert_eq!(refused(&mut c, "DELETE FROM ticket_uses").await, privilege);
    assert_eq!(refused(&mut c, "TRUNCATE ticket_uses").await, privilege);
    assert_eq!(
        refused(
            &mut c,
            "INSERT INTO ticket_uses SELECT hold_id, 0, at, gate FROM ticket_uses"
        )
        .await,
        "23514",
        "tickets are numbered from 1"
    );
    // Bypassing tr_transition does not cancel it either.
    assert_eq!(
        refused(
            &mut c,
            "UPDATE holds SET state = 'CANCELLED' WHERE state = 'CONFIRMED'"
        )
        .await,
        "23514"
    );
    assert_eq!(f.ga().await, (8, 0, 2));
}

#[tokio::test]
async fn migrating_again_changes_nothing() {
    let store = common::isolated_store(64).await;
    let f = Fixture::general(store.stores(), 10, Duration::ZERO).await;
    store.migrate().await.expect("second migrate");
    let other = common::another_server(&store).await;
    other.migrate().await.expect("migrate from another server");
    assert_eq!(f.ga().await, (10, 0, 0));
}
