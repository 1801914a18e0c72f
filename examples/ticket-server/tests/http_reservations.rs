//! Reservations and the admin views over HTTP on every backend (memory, Redis, PostgreSQL):
//! list my reservations,
//! cancel a confirmed one with a full refund (once per key, never twice), strangers and
//! unpaid holds refused without changing anything; session stats and the audit trail for
//! admins only, bad queries refused.

mod common;

use common::{
    Answer, Kind, Server, admin_token, buy, call, ga_session, join_and_hold, server, totals,
    user_token,
};
use ticket_core::SessionId;

async fn cancel(server: &Server, hold: &str, token: Option<&str>, key: Option<&str>) -> Answer {
    let headers: Vec<(&str, &str)> = key.map(|k| ("idempotency-key", k)).into_iter().collect();
    call(
        server,
        "POST",
        &format!("/api/reservations/{hold}/cancel"),
        token,
        &headers,
        None,
    )
    .await
}

async fn reservations(server: &Server, token: &str) -> Answer {
    call(
        server,
        "GET",
        "/api/me/reservations",
        Some(token),
        &[],
        None,
    )
    .await
}

fn refunds(server: &Server) -> Vec<ticket_core::gateway::Refund> {
    server.state.sandbox.as_ref().unwrap().refunds()
}

/// My reservations, newest first; a confirmed one cancelled with one full refund whatever
/// is repeated; refusals change nothing.
async fn buyers_list_and_cancel_reservations_with_one_refund(kind: Kind) {
    let s = server(kind, &[]).await;
    let session = ga_session(&s, 5).await;
    let (me, _) = user_token(&s);
    let (bought, payment) = buy(&s, session, &me, "buy-1", 1).await;
    let unpaid = join_and_hold(&s, session, &me, "hold-2", 1).await;
    assert_eq!(totals(&s, session).await, (3, 1, 1));

    let list = reservations(&s, &me).await;
    assert_eq!(list.status, 200, "{list:?}");
    let items = list.json["reservations"].as_array().unwrap();
    assert_eq!(items.len(), 2, "{list:?}");
    assert_eq!(
        items[0]["id"].as_str(),
        Some(unpaid.as_str()),
        "newest first"
    );
    assert_eq!(items[0]["status"], "held");
    assert_eq!(items[1]["id"].as_str(), Some(bought.as_str()));
    assert_eq!(items[1]["status"], "confirmed");
    assert_eq!(items[1]["payment_id"].as_str(), Some(payment.as_str()));
    assert_eq!(
        (
            items[1]["units"].as_u64(),
            items[1]["amount"].as_i64(),
            items[1]["currency"].as_str()
        ),
        (Some(1), Some(50_000), Some("KRW"))
    );
    assert_eq!(
        items[1]["session_id"].as_str(),
        Some(session.to_string().as_str())
    );
    assert!(items[1]["created_at"].as_i64().unwrap() > 0);
    assert!(items[1]["expires_at"].as_i64().is_some());
    let (other, _) = user_token(&s);
    let none = reservations(&s, &other).await;
    assert_eq!(
        (none.status, none.json.clone()),
        (
            200,
            serde_json::json!({ "reservations": [], "next_cursor": null })
        )
    );
    assert_eq!(
        call(&s, "GET", "/api/me/reservations", None, &[], None)
            .await
            .status,
        401
    );

    // Refusals change nothing.
    let no_key = cancel(&s, &bought, Some(&me), None).await;
    assert_eq!(
        (no_key.status, no_key.json["error"]["code"].as_str()),
        (400, Some("VALIDATION"))
    );
    let stranger = cancel(&s, &bought, Some(&other), Some("c-1")).await;
    assert_eq!(
        (stranger.status, stranger.json["error"]["code"].as_str()),
        (404, Some("NOT_FOUND")),
        "{stranger:?}"
    );
    let unpaid_cancel = cancel(&s, &unpaid, Some(&me), Some("c-unpaid")).await;
    assert_eq!(
        (
            unpaid_cancel.status,
            unpaid_cancel.json["error"]["code"].as_str()
        ),
        (409, Some("ILLEGAL_TRANSITION")),
        "{unpaid_cancel:?}"
    );
    assert_eq!(
        cancel(&s, "not-an-id", Some(&me), Some("c-x")).await.status,
        400
    );
    assert_eq!(cancel(&s, &bought, None, Some("c-1")).await.status, 401);
    assert_eq!(
        totals(&s, session).await,
        (3, 1, 1),
        "refusals changed nothing"
    );
    assert!(refunds(&s).is_empty(), "no refund yet");
    assert_eq!(
        reservations(&s, &me).await.json["reservations"][1]["status"],
        "confirmed"
    );

    // The cancellation: refunded in full, the unit back on sale.
    let done = cancel(&s, &bought, Some(&me), Some("c-1")).await;
    assert_eq!(done.status, 200, "{done:?}");
    assert_eq!(done.json["id"].as_str(), Some(bought.as_str()));
    assert_eq!(done.json["status"], "refunded");
    let refund_id = done.json["refund_id"].as_str().unwrap().to_owned();
    let issued = refunds(&s);
    assert_eq!(issued.len(), 1, "{issued:?}");
    assert_eq!(issued[0].id, refund_id);
    assert_eq!(issued[0].intent.to_string(), payment);
    assert_eq!(issued[0].amount.amount_minor, 50_000);
    assert_eq!(
        totals(&s, session).await,
        (4, 1, 0),
        "the unit is back on sale"
    );
    let paid = call(
        &s,
        "GET",
        &format!("/api/payments/{payment}"),
        Some(&me),
        &[],
        None,
    )
    .await;
    assert_eq!(paid.json["amount_refunded"], 50_000, "{paid:?}");

    // Repeats: the same answer, no second refund.
    let again = cancel(&s, &bought, Some(&me), Some("c-1")).await;
    assert_eq!((again.status, &again.json), (200, &done.json));
    let other_key = cancel(&s, &bought, Some(&me), Some("c-2")).await;
    assert_eq!((other_key.status, &other_key.json), (200, &done.json));
    assert_eq!(refunds(&s).len(), 1, "money goes back once");
    assert_eq!(totals(&s, session).await, (4, 1, 0));
    let stranger_after = cancel(&s, &bought, Some(&other), Some("c-3")).await;
    assert_eq!(stranger_after.status, 404);

    let list = reservations(&s, &me).await;
    let items = list.json["reservations"].as_array().unwrap();
    assert_eq!(
        (items[0]["status"].as_str(), items[1]["status"].as_str()),
        (Some("held"), Some("refunded"))
    );
}

/// A cancellation frees a unit, and the next waiting user is admitted.
async fn a_cancellation_admits_the_next_waiting_user(kind: Kind) {
    let s = server(kind, &[]).await;
    let session = ga_session(&s, 1).await;
    let (me, _) = user_token(&s);
    let (bought, _) = buy(&s, session, &me, "buy", 1).await;
    let (next, _) = user_token(&s);
    let q = format!("/api/sessions/{session}/queue");
    let waiting = call(&s, "POST", &q, Some(&next), &[], None).await;
    assert_eq!(waiting.json["status"], "waiting", "{waiting:?}");

    let done = cancel(&s, &bought, Some(&me), Some("c")).await;
    assert_eq!(done.json["status"], "refunded", "{done:?}");
    assert_eq!(totals(&s, session).await, (1, 0, 0));
    let admitted = call(&s, "GET", &q, Some(&next), &[], None).await;
    assert_eq!(admitted.json["status"], "active", "{admitted:?}");
}

/// Session stats and the audit trail, for admins only; bad queries answer 400.
async fn admins_read_session_stats_and_the_audit_trail(kind: Kind) {
    let s = server(kind, &[]).await;
    let session = ga_session(&s, 3).await;
    let admin = admin_token(&s).await;
    let (me, me_id) = user_token(&s);
    let (bought, _) = buy(&s, session, &me, "buy", 1).await;
    let (late, _) = user_token(&s);
    let _unpaid = join_and_hold(&s, session, &late, "hold", 1).await;

    let stats_path = format!("/api/admin/sessions/{session}/stats");
    let stats = call(&s, "GET", &stats_path, Some(&admin), &[], None).await;
    assert_eq!(stats.status, 200, "{stats:?}");
    assert_eq!(
        stats.json,
        serde_json::json!({
            "capacity": 3,
            "available": 1,
            "held": 1,
            "sold": 1,
            "queue_length": 0,
            "active": 0,
            "reservations_by_status": { "confirmed": 1, "held": 1 },
        })
    );
    let forbidden = call(&s, "GET", &stats_path, Some(&me), &[], None).await;
    assert_eq!(
        (forbidden.status, forbidden.json["error"]["code"].as_str()),
        (403, Some("FORBIDDEN"))
    );
    let anonymous = call(&s, "GET", &stats_path, None, &[], None).await;
    assert_eq!(
        (anonymous.status, anonymous.json["error"]["code"].as_str()),
        (401, Some("UNAUTHORIZED"))
    );
    let unknown = SessionId::new_at(s.state.clock.now());
    let missing = call(
        &s,
        "GET",
        &format!("/api/admin/sessions/{unknown}/stats"),
        Some(&admin),
        &[],
        None,
    )
    .await;
    assert_eq!(missing.status, 404, "{missing:?}");
    assert_eq!(
        call(
            &s,
            "GET",
            "/api/admin/sessions/nope/stats",
            Some(&admin),
            &[],
            None
        )
        .await
        .status,
        400
    );

    // After a cancellation the counts follow.
    assert_eq!(cancel(&s, &bought, Some(&me), Some("c")).await.status, 200);
    let stats = call(&s, "GET", &stats_path, Some(&admin), &[], None).await;
    assert_eq!(
        (
            stats.json["available"].as_u64(),
            stats.json["sold"].as_u64()
        ),
        (Some(2), Some(0))
    );
    assert_eq!(
        stats.json["reservations_by_status"],
        serde_json::json!({ "refunded": 1, "held": 1 })
    );

    // The audit trail, by session and by user.
    let by_session = call(
        &s,
        "GET",
        &format!("/api/admin/audit?session_id={session}"),
        Some(&admin),
        &[],
        None,
    )
    .await;
    assert_eq!(by_session.status, 200, "{by_session:?}");
    let records = by_session.json["records"].as_array().unwrap();
    let to: Vec<&str> = records
        .iter()
        .filter(|r| r["subject"]["id"].as_str() == Some(bought.as_str()))
        .map(|r| r["to"].as_str().unwrap())
        .collect();
    assert_eq!(
        to,
        ["HELD", "PAYING", "CONFIRMED", "CANCELLED", "REFUNDED"],
        "{records:?}"
    );
    let first = &records[0];
    for field in [
        "at",
        "subject",
        "owner",
        "actor",
        "from",
        "to",
        "reason",
        "correlation_id",
    ] {
        assert!(first.get(field).is_some(), "{field} missing in {first}");
    }
    let by_user = call(
        &s,
        "GET",
        &format!("/api/admin/audit?user_id={me_id}"),
        Some(&admin),
        &[],
        None,
    )
    .await;
    assert_eq!(by_user.status, 200, "{by_user:?}");
    let mine = by_user.json["records"].as_array().unwrap().clone();
    assert!(mine.len() >= 5, "{mine:?}");
    assert!(
        mine.iter()
            .all(|r| r["owner"].as_str() == Some(me_id.as_str()))
    );
    let limited = call(
        &s,
        "GET",
        &format!("/api/admin/audit?user_id={me_id}&limit=2"),
        Some(&admin),
        &[],
        None,
    )
    .await;
    assert_eq!(limited.json["records"].as_array().map(Vec::len), Some(2));
    // Paging by cursor walks the whole trail once, in order, both ways.
    for (order, expected) in [
        ("oldest_first", mine.clone()),
        ("newest_first", mine.iter().rev().cloned().collect()),
    ] {
        let mut paged = Vec::new();
        let mut cursor: Option<String> = None;
        loop {
            let more = cursor
                .as_ref()
                .map_or(String::new(), |c| format!("&cursor={c}"));
            let page = call(
                &s,
                "GET",
                &format!("/api/admin/audit?user_id={me_id}&limit=2&order={order}{more}"),
                Some(&admin),
                &[],
                None,
            )
            .await;
            assert_eq!(page.status, 200, "{page:?}");
            paged.extend(page.json["records"].as_array().unwrap().iter().cloned());
            match page.json["next_cursor"].as_str() {
                Some(c) => cursor = Some(c.to_owned()),
                None => break,
            }
        }
        assert_eq!(paged, expected, "{order}");
    }
    assert_eq!(
        call(
            &s,
            "GET",
            &format!("/api/admin/audit?session_id={session}"),
            Some(&me),
            &[],
            None
        )
        .await
        .status,
        403
    );

    for query in [
        String::new(),
        "?limit=10".to_owned(),
        format!("?session_id={session}&user_id={me_id}"),
        format!("?session_id={session}&limit=0"),
        format!("?session_id={session}&limit=501"),
        format!("?session_id={session}&order=sideways"),
        format!("?session_id={session}&cursor=nope"),
        format!("?session_id={session}&limit=ten"),
        format!("?session_id={session}&limit=-1"),
        "?session_id=nope".to_owned(),
        format!("?session_id={session}&extra=1"),
    ] {
        let bad = call(
            &s,
            "GET",
            &format!("/api/admin/audit{query}"),
            Some(&admin),
            &[],
            None,
        )
        .await;
        assert_eq!(
            (bad.status, bad.json["error"]["code"].as_str()),
            (400, Some("VALIDATION")),
            "{query}: {bad:?}"
        );
    }
}

common::on_all_backends!(
    buyers_list_and_cancel_reservations_with_one_refund,
    a_cancellation_admits_the_next_waiting_user,
    admins_read_session_stats_and_the_audit_trail,
);
