//! The rush over HTTP on every backend (memory, Redis, PostgreSQL): queue, holds, release,
//! checkout, webhooks, payments; bad input answers the documented error and changes
//! nothing.

mod common;

use std::time::Duration;

use common::{Kind, call, ga_session, join_and_hold, server, totals, user_token};

/// A bad request: token, headers, body, expected status and code.
type Case<'a> = (
    Option<&'a str>,
    &'a [(&'a str, &'a str)],
    String,
    u16,
    &'a str,
);

/// Join, hold (once per key) and pay by card; strangers read and release nothing.
async fn queue_hold_and_pay_by_card(kind: Kind) {
    let s = server(kind, &[]).await;
    let session = ga_session(&s, 2).await;
    let me = user_token(&s).0;
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
    // The next user to join gets a later number (join order), whatever their status.
    let next = call(&s, "POST", &q, Some(&user_token(&s).0), &[], None).await;
    let (mine, theirs) = (
        joined.json["number"].as_u64().expect("a number"),
        next.json["number"].as_u64().expect("a number"),
    );
    assert!(mine < theirs, "{joined:?} then {next:?}");

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
    let stranger = user_token(&s).0;
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

/// Bad hold requests answer the documented error and hold nothing.
async fn bad_hold_requests_answer_errors_and_change_nothing(kind: Kind) {
    let s = server(kind, &[]).await;
    let session = ga_session(&s, 2).await;
    let me = user_token(&s).0;
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
    let other = user_token(&s).0;
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

/// A slow card is settled by the provider's signed webhook; a forged one is refused.
async fn a_slow_payment_is_settled_by_the_signed_webhook_and_forgeries_change_nothing(kind: Kind) {
    let s = server(kind, &["--sandbox-slow-delay-ms", "300"]).await;
    let session = ga_session(&s, 1).await;
    let me = user_token(&s).0;
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
        (401, Some("BAD_SIGNATURE"))
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

/// The owner releases a hold (the units go back on sale); bad checkouts, and releases or
/// checkouts by anyone else, answer the documented error and change nothing.
async fn releases_and_bad_checkouts_change_nothing(kind: Kind) {
    let s = server(kind, &[]).await;
    let session = ga_session(&s, 3).await;
    let me = user_token(&s).0;
    let stranger = user_token(&s).0;
    let hold = join_and_hold(&s, session, &me, "h1", 1).await;
    let checkout = format!("/api/holds/{hold}/checkout");
    let good = r#"{"method":"card","card_number":"4242424242424242"}"#;
    let unknown = ticket_core::HoldId::new_at(s.state.clock.now());
    let key = [("idempotency-key", "pay")];
    let cases: Vec<Case> = vec![
        (Some(&me), &[], good.into(), 400, "VALIDATION"),
        (Some(&me), &key, "{}".into(), 400, "VALIDATION"),
        (Some(&me), &key, "{oops".into(), 400, "VALIDATION"),
        (
            Some(&me),
            &key,
            r#"{"method":"cash"}"#.into(),
            400,
            "VALIDATION",
        ),
        (
            Some(&me),
            &key,
            r#"{"method":"card"}"#.into(),
            400,
            "VALIDATION",
        ),
        (
            Some(&me),
            &key,
            r#"{"method":"card","card_number":"4242424242424242","cvc":1}"#.into(),
            400,
            "VALIDATION",
        ),
        (
            Some(&me),
            &key,
            r#"{"method":"card","card_number":"4242"}"#.into(),
            422,
            "PAYMENT_INVALID",
        ),
        (Some(&stranger), &key, good.into(), 404, "NOT_FOUND"),
        (None, &key, good.into(), 401, "UNAUTHORIZED"),
    ];
    for (tok, headers, body, status, code) in cases {
        let a = call(&s, "POST", &checkout, tok, headers, Some(&body)).await;
        assert_eq!(
            (a.status, a.json["error"]["code"].as_str()),
            (status, Some(code)),
            "{body}: {a:?}"
        );
    }
    for (path, status, code) in [
        ("/api/holds/nope/checkout".to_owned(), 400, "VALIDATION"),
        (format!("/api/holds/{unknown}/checkout"), 404, "NOT_FOUND"),
    ] {
        let a = call(&s, "POST", &path, Some(&me), &key, Some(good)).await;
        assert_eq!(
            (a.status, a.json["error"]["code"].as_str()),
            (status, Some(code)),
            "{path}: {a:?}"
        );
    }
    let path = format!("/api/holds/{hold}");
    for (tok, path, status, code) in [
        (Some(stranger.as_str()), path.as_str(), 404, "NOT_FOUND"),
        (None, path.as_str(), 401, "UNAUTHORIZED"),
        (Some(me.as_str()), "/api/holds/nope", 400, "VALIDATION"),
        (
            Some(me.as_str()),
            &format!("/api/holds/{unknown}"),
            404,
            "NOT_FOUND",
        ),
    ] {
        let a = call(&s, "DELETE", path, tok, &[], None).await;
        assert_eq!(
            (a.status, a.json["error"]["code"].as_str()),
            (status, Some(code)),
            "DELETE {path}: {a:?}"
        );
    }
    let read = call(&s, "GET", &path, Some(&me), &[], None).await;
    assert_eq!(read.json["status"], "held", "{read:?}");
    assert_eq!(
        totals(&s, session).await,
        (2, 1, 0),
        "refusals changed nothing"
    );

    // The owner lets it go: the unit is back on sale, and it cannot be paid any more.
    let released = call(&s, "DELETE", &path, Some(&me), &[], None).await;
    assert_eq!(released.status, 200, "{released:?}");
    assert_eq!(released.json["status"], "released", "{released:?}");
    assert_eq!(totals(&s, session).await, (3, 0, 0));
    let again = call(&s, "DELETE", &path, Some(&me), &[], None).await;
    assert_eq!(again.json["status"], "released", "{again:?}");
    let late = call(&s, "POST", &checkout, Some(&me), &key, Some(good)).await;
    assert_eq!(
        (late.status, late.json["error"]["code"].as_str()),
        (409, Some("ILLEGAL_TRANSITION")),
        "{late:?}"
    );
    assert_eq!(totals(&s, session).await, (3, 0, 0));
    assert_eq!(
        call(&s, "GET", &path, Some(&me), &[], None).await.json["status"],
        "released"
    );
}

/// Bad queue requests answer the documented error and put nobody in line.
async fn bad_queue_requests_change_nothing(kind: Kind) {
    let s = server(kind, &[]).await;
    let session = ga_session(&s, 2).await;
    let me = user_token(&s).0;
    let admin = common::admin_token(&s).await;
    let unknown = ticket_core::SessionId::new_at(s.state.clock.now());
    let now = s.state.clock.now().as_millis();
    let day = 86_400_000;
    let upcoming = call(
        &s,
        "POST",
        "/api/admin/events",
        Some(&admin),
        &[],
        Some(
            &serde_json::json!({"name": "Later", "sessions": [{
                "starts_at": now + 3 * day, "sales_open_at": now + day,
                "sales_close_at": now + 2 * day,
                "grades": [{"grade": "GA", "capacity": 1, "price_minor": 1, "currency": "KRW"}]}]})
            .to_string(),
        ),
    )
    .await;
    assert_eq!(upcoming.status, 201, "{upcoming:?}");
    let later = upcoming.json["sessions"][0]["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let q = format!("/api/sessions/{session}/queue");
    let not_yet = format!("/api/sessions/{later}/queue");
    for method in ["POST", "GET", "DELETE"] {
        // Sales open tomorrow: nobody joins; nobody has a ticket to read or leave.
        let (not_open, not_open_code) = match method {
            "POST" => (409, "QUEUE_NOT_OPEN"),
            _ => (404, "NOT_FOUND"),
        };
        for (tok, path, status, code) in [
            (None, q.clone(), 401, "UNAUTHORIZED"),
            (Some("forged.token.here"), q.clone(), 401, "UNAUTHORIZED"),
            (
                Some(me.as_str()),
                "/api/sessions/nope/queue".to_owned(),
                400,
                "VALIDATION",
            ),
            (
                Some(me.as_str()),
                format!("/api/sessions/{unknown}/queue"),
                404,
                "NOT_FOUND",
            ),
            (Some(me.as_str()), not_yet.clone(), not_open, not_open_code),
        ] {
            let a = call(&s, method, &path, tok, &[], None).await;
            assert_eq!(
                (a.status, a.json["error"]["code"].as_str()),
                (status, Some(code)),
                "{method} {path}: {a:?}"
            );
        }
    }
    // I never joined: no ticket to read or leave.
    for method in ["GET", "DELETE"] {
        let a = call(&s, method, &q, Some(&me), &[], None).await;
        assert_eq!(
            (a.status, a.json["error"]["code"].as_str()),
            (404, Some("NOT_FOUND")),
            "{method} {q}: {a:?}"
        );
    }
    // Nobody was put in line: my first join is admitted at once, with nobody waiting.
    let joined = call(&s, "POST", &q, Some(&me), &[], None).await;
    assert_eq!(
        (
            joined.status,
            joined.json["status"].as_str(),
            joined.json["waiting"].as_u64()
        ),
        (200, Some("active"), Some(0)),
        "{joined:?}"
    );
    let none = call(&s, "GET", &not_yet, Some(&me), &[], None).await;
    assert_eq!(none.status, 404, "{none:?}");
    assert_eq!(totals(&s, session).await, (2, 0, 0));
}

common::on_all_backends!(
    queue_hold_and_pay_by_card,
    bad_hold_requests_answer_errors_and_change_nothing,
    a_slow_payment_is_settled_by_the_signed_webhook_and_forgeries_change_nothing,
    releases_and_bad_checkouts_change_nothing,
    bad_queue_requests_change_nothing,
);
