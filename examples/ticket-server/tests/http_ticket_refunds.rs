//! A reservation whose ticket was scanned at the gate cannot be cancelled and refunded
//! (the buyer went in); one with unscanned tickets can, and then lets nobody in. On every
//! backend.

mod common;

use common::{Kind, admin_token, buy, call, ga_session, join_and_hold, server, totals, user_token};

async fn scanned_tickets_block_the_refund(kind: Kind) {
    let s = server(kind, &[]).await;
    let session = ga_session(&s, 5).await;
    let gate = admin_token(&s).await;
    let (me, _) = user_token(&s);
    let (hold, _) = buy(&s, session, &me, "h1", 2).await;
    let tickets = call(&s, "GET", "/api/me/tickets", Some(&me), &[], None).await;
    let code = tickets.json["tickets"][1]["code"]
        .as_str()
        .unwrap()
        .to_owned();
    let scanned = call(
        &s,
        "POST",
        "/api/tickets/verify",
        Some(&gate),
        &[],
        Some(&format!(r#"{{"code":"{code}","session_id":"{session}"}}"#)),
    )
    .await;
    assert_eq!(scanned.status, 200, "{scanned:?}");

    let refunds_before = s.state.sandbox.as_ref().unwrap().refunds().len();
    for key in ["c1", "c1", "c2"] {
        let refused = call(
            &s,
            "POST",
            &format!("/api/reservations/{hold}/cancel"),
            Some(&me),
            &[("idempotency-key", key)],
            None,
        )
        .await;
        assert_eq!(
            (refused.status, refused.json["error"]["code"].as_str()),
            (409, Some("TICKET_ALREADY_USED")),
            "{refused:?}"
        );
    }
    // nothing changed: still sold, still confirmed, no refund
    assert_eq!(totals(&s, session).await, (3, 0, 2));
    let mine = call(&s, "GET", "/api/me/reservations", Some(&me), &[], None).await;
    assert_eq!(
        mine.json["reservations"][0]["status"], "confirmed",
        "{mine:?}"
    );
    assert_eq!(
        s.state.sandbox.as_ref().unwrap().refunds().len(),
        refunds_before
    );

    // another reservation, never scanned, is cancelled and refunded as usual
    let (other, _) = user_token(&s);
    let hold2 = join_and_hold(&s, session, &other, "h2", 1).await;
    let paid = call(
        &s,
        "POST",
        &format!("/api/holds/{hold2}/checkout"),
        Some(&other),
        &[("idempotency-key", "pay")],
        Some(r#"{"method":"card","card_number":"4242424242424242"}"#),
    )
    .await;
    assert_eq!(paid.json["hold"]["status"], "confirmed", "{paid:?}");
    let cancelled = call(
        &s,
        "POST",
        &format!("/api/reservations/{hold2}/cancel"),
        Some(&other),
        &[("idempotency-key", "c1")],
        None,
    )
    .await;
    assert_eq!(cancelled.json["status"], "refunded", "{cancelled:?}");
    assert_eq!(totals(&s, session).await, (3, 0, 2));
}

/// A reservation cancelled before any scan lets nobody in: its codes are refused and
/// nothing is marked.
async fn a_cancelled_reservation_is_refused_at_the_gate(kind: Kind) {
    let s = server(kind, &[]).await;
    let session = ga_session(&s, 5).await;
    let gate = admin_token(&s).await;
    let (me, _) = user_token(&s);
    let (hold, _) = buy(&s, session, &me, "h1", 1).await;
    let tickets = call(&s, "GET", "/api/me/tickets", Some(&me), &[], None).await;
    let code = tickets.json["tickets"][0]["code"]
        .as_str()
        .unwrap()
        .to_owned();
    let cancelled = call(
        &s,
        "POST",
        &format!("/api/reservations/{hold}/cancel"),
        Some(&me),
        &[("idempotency-key", "c1")],
        None,
    )
    .await;
    assert_eq!(cancelled.json["status"], "refunded", "{cancelled:?}");
    let scanned = call(
        &s,
        "POST",
        "/api/tickets/verify",
        Some(&gate),
        &[],
        Some(&format!(r#"{{"code":"{code}","session_id":"{session}"}}"#)),
    )
    .await;
    assert_eq!(
        (scanned.status, scanned.json["error"]["code"].as_str()),
        (409, Some("TICKET_NOT_VALID")),
        "{scanned:?}"
    );
    let id: ticket_core::HoldId = hold.parse().unwrap();
    assert!(
        s.state.rush.gate.check_ins(id).await.unwrap().is_empty(),
        "nothing marked"
    );
    assert_eq!(totals(&s, session).await, (5, 0, 0));
}

common::on_all_backends!(
    scanned_tickets_block_the_refund,
    a_cancelled_reservation_is_refused_at_the_gate,
);
