//! The rush over HTTP on the memory backend: queue, holds, checkout, webhooks, payments;
//! bad input answers the documented error and changes nothing.

mod common;

use std::time::Duration;

use common::{Server, call, ga_session, memory_server};
use ticket_core::SessionId;

/// A bad request: token, headers, body, expected status and code.
type Case<'a> = (
    Option<&'a str>,
    &'a [(&'a str, &'a str)],
    String,
    u16,
    &'a str,
);

/// An access token for a fresh user.
fn token(server: &Server) -> String {
    common::user_token(server).0
}

async fn totals(server: &Server, session: SessionId) -> (u64, u64, u64) {
    let t = server
        .state
        .rush
        .stores()
        .inventory
        .snapshot(session)
        .await
        .unwrap()
        .totals();
    (t.available, t.held, t.sold)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn queue_hold_and_pay_by_card() {
    let s = memory_server(&[]).await;
    let session = ga_session(&s, 2).await;
    let me = token(&s);
    let q = format!("/api/sessions/{session}/queue");

    let joined = call(&s, "POST", &q, Some(&me), &[], None).await;
    assert_eq!(joined.status, 200, "{joined:?}");
    assert_eq!(joined.json["status"], "active", "{joined:?}");
    let again = call(&s, "POST", &q, Some(&me), &[], None).await;
    assert_eq!(
        again.json["ticket_id"], joined.json["ticket_id"],
        "idempotent join"
    );
    assert_eq!(
        call(&s, "GET", &q, Some(&me), &[], None).await.json["ticket_id"],
        joined.json["ticket_id"]
    );

    let body = format!(r#"{{"session_id":"{session}","grade":"GA","quantity":1}}"#);
    let key = [("idempotency-key", "hold-1")];
    let held = call(&s, "POST", "/api/holds", Some(&me), &key, Some(&body)).await;
    assert_eq!(held.status, 201, "{held:?}");
    assert_eq!(
        (held.json["status"].as_str(), held.json["amount"].as_i64()),
        (Some("held"), Some(50_000))
    );
    let repeat = call(&s, "POST", "/api/holds", Some(&me), &key, Some(&body)).await;
    assert_eq!(repeat.json["id"], held.json["id"], "same key, same hold");
    assert_eq!(totals(&s, session).await, (1, 1, 0));

    let hold_id = held.json["id"].as_str().unwrap().to_owned();
    let pay = call(
        &s,
        "POST",
        &format!("/api/holds/{hold_id}/checkout"),
        Some(&me),
        &[("idempotency-key", "pay-1")],
        Some(r#"{"method":"card","card_number":"4242424242424242"}"#),
    )
    .await;
    assert_eq!(pay.status, 200, "{pay:?}");
    assert_eq!(pay.json["status"], "succeeded");
    assert_eq!(pay.json["hold"]["status"], "confirmed");
    assert_eq!(totals(&s, session).await, (1, 0, 1));

    let payment = pay.json["payment_id"].as_str().unwrap().to_owned();
    let read = call(
        &s,
        "GET",
        &format!("/api/payments/{payment}"),
        Some(&me),
        &[],
        None,
    )
    .await;
    assert_eq!(
        (read.status, read.json["status"].as_str()),
        (200, Some("succeeded"))
    );
    let stranger = token(&s);
    assert_eq!(
        call(
            &s,
            "GET",
            &format!("/api/payments/{payment}"),
            Some(&stranger),
            &[],
            None
        )
        .await
        .status,
        404
    );
    assert_eq!(
        call(
            &s,
            "GET",
            &format!("/api/holds/{hold_id}"),
            Some(&stranger),
            &[],
            None
        )
        .await
        .status,
        404
    );
    assert_eq!(
        call(
            &s,
            "DELETE",
            &format!("/api/holds/{hold_id}"),
            Some(&stranger),
            &[],
            None
        )
        .await
        .status,
        404
    );
    assert_eq!(
        totals(&s, session).await,
        (1, 0, 1),
        "strangers changed nothing"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_hold_requests_answer_errors_and_change_nothing() {
    let s = memory_server(&[]).await;
    let session = ga_session(&s, 2).await;
    let me = token(&s);
    call(
        &s,
        "POST",
        &format!("/api/sessions/{session}/queue"),
        Some(&me),
        &[],
        None,
    )
    .await;
    let key = [("idempotency-key", "k")];
    let cases: Vec<Case> = vec![
        (
            Some(&me),
            &[],
            format!(r#"{{"session_id":"{session}","grade":"GA","quantity":1}}"#),
            400,
            "VALIDATION",
        ),
        (Some(&me), &key, "{not json".into(), 400, "VALIDATION"),
        (
            Some(&me),
            &key,
            format!(r#"{{"session_id":"{session}","grade":"GA","quantity":"one"}}"#),
            400,
            "VALIDATION",
        ),
        (
            Some(&me),
            &key,
            format!(r#"{{"session_id":"{session}","grade":"GA","quantity":-1}}"#),
            400,
            "VALIDATION",
        ),
        (
            Some(&me),
            &key,
            format!(r#"{{"session_id":"{session}","grade":"GA","quantity":4294967296}}"#),
            400,
            "VALIDATION",
        ),
        (
            Some(&me),
            &key,
            format!(r#"{{"session_id":"{session}","grade":"GA","quantity":0}}"#),
            422,
            "VALIDATION",
        ),
        (
            Some(&me),
            &key,
            format!(r#"{{"session_id":"{session}","grade":"VIP","quantity":1}}"#),
            422,
            "UNKNOWN_ITEM",
        ),
        (
            Some(&me),
            &key,
            r#"{"session_id":"nope","grade":"GA","quantity":1}"#.into(),
            400,
            "VALIDATION",
        ),
        (
            Some(&me),
            &key,
            format!(r#"{{"session_id":"{session}","seat_ids":["Z9"],"grade":"GA"}}"#),
            400,
            "VALIDATION",
        ),
        (
            None,
            &key,
            format!(r#"{{"session_id":"{session}","grade":"GA","quantity":1}}"#),
            401,
            "UNAUTHORIZED",
        ),
        (
            Some("forged.token.here"),
            &key,
            format!(r#"{{"session_id":"{session}","grade":"GA","quantity":1}}"#),
            401,
            "UNAUTHORIZED",
        ),
    ];
    for (tok, headers, body, status, code) in cases {
        let a = call(&s, "POST", "/api/holds", tok, headers, Some(&body)).await;
        assert_eq!(
            (a.status, a.json["error"]["code"].as_str()),
            (status, Some(code)),
            "{body}: {a:?}"
        );
    }
    assert_eq!(totals(&s, session).await, (2, 0, 0), "nothing was held");

    // Without an admission: a user who never joined the queue.
    let other = token(&s);
    let a = call(
        &s,
        "POST",
        "/api/holds",
        Some(&other),
        &key,
        Some(&format!(
            r#"{{"session_id":"{session}","grade":"GA","quantity":1}}"#
        )),
    )
    .await;
    assert_eq!(a.status, 403, "{a:?}");
    assert_eq!(totals(&s, session).await, (2, 0, 0));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_slow_payment_is_settled_by_the_signed_webhook_and_forgeries_change_nothing() {
    let s = memory_server(&["--sandbox-slow-delay-ms", "300"]).await;
    let session = ga_session(&s, 1).await;
    let me = token(&s);
    call(
        &s,
        "POST",
        &format!("/api/sessions/{session}/queue"),
        Some(&me),
        &[],
        None,
    )
    .await;
    let held = call(
        &s,
        "POST",
        "/api/holds",
        Some(&me),
        &[("idempotency-key", "h")],
        Some(&format!(
            r#"{{"session_id":"{session}","grade":"GA","quantity":1}}"#
        )),
    )
    .await;
    let hold_id = held.json["id"].as_str().unwrap().to_owned();

    // A forged webhook claiming success is refused and changes nothing.
    let forged = call(
        &s,
        "POST",
        "/api/payments/webhook",
        None,
        &[
            ("webhook-id", "msg_x"),
            ("webhook-timestamp", "1"),
            ("webhook-signature", "v1,AAAA"),
        ],
        Some("{}"),
    )
    .await;
    assert_eq!(
        (forged.status, forged.json["error"]["code"].as_str()),
        (400, Some("BAD_SIGNATURE"))
    );

    let pay = call(
        &s,
        "POST",
        &format!("/api/holds/{hold_id}/checkout"),
        Some(&me),
        &[("idempotency-key", "p")],
        Some(r#"{"method":"card","card_number":"4000000000003220"}"#),
    )
    .await;
    assert_eq!(pay.json["hold"]["status"], "paying", "{pay:?}");
    assert_eq!(totals(&s, session).await, (0, 1, 0));
    // The sandbox settles after its slow delay (300 ms here): wait for the webhook to
    // confirm the hold.
    let path = format!("/api/holds/{hold_id}");
    let mut status = String::new();
    for _ in 0..150 {
        status = call(&s, "GET", &path, Some(&me), &[], None).await.json["status"]
            .as_str()
            .unwrap_or_default()
            .to_owned();
        if status == "confirmed" {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(status, "confirmed");
    assert_eq!(totals(&s, session).await, (0, 0, 1));
}
