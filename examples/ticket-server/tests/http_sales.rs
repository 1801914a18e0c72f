//! The organiser's controls and the buyer's cancellation by refund policy over HTTP, on the
//! memory backend (and Redis for the switch): pause / resume / close / cancel with what
//! buyers see (holds refused, the queue view, the SSE streams, the catalogue), the cancelled
//! show's refund run (every confirmed reservation refunded once), quotes and cancellations by
//! policy (card and wallet), an admin's cancellation on a buyer's behalf, capacity changes,
//! and refusals (non-admins, bad bodies) that change nothing.

mod common;

use std::time::Duration;

use common::{
    Answer, Kind, Server, admin_token, buy, call, ga_session, join_and_hold, server, top_up,
    totals, user_token,
};
use ticket_core::SessionId;

const DAY: u64 = 86_400;

async fn admin_post(s: &Server, token: &str, path: &str, body: Option<&str>) -> Answer {
    call(s, "POST", path, Some(token), &[], body).await
}

async fn switch(s: &Server, admin: &str, session: SessionId, verb: &str) -> Answer {
    admin_post(
        s,
        admin,
        &format!("/api/admin/sessions/{session}/{verb}"),
        Some(r#"{"reason":"test"}"#),
    )
    .await
}

async fn hold(s: &Server, session: SessionId, token: &str, key: &str) -> Answer {
    call(
        s,
        "POST",
        "/api/holds",
        Some(token),
        &[("idempotency-key", key)],
        Some(&format!(
            r#"{{"session_id":"{session}","grade":"GA","quantity":1}}"#
        )),
    )
    .await
}

async fn queue(s: &Server, session: SessionId, token: &str) -> Answer {
    call(
        s,
        "GET",
        &format!("/api/sessions/{session}/queue"),
        Some(token),
        &[],
        None,
    )
    .await
}

/// Reads an SSE stream until an event named `until` arrives or `limit` passes; the event
/// names seen.
async fn events_until(
    s: &Server,
    path: &str,
    token: &str,
    until: &str,
    limit: Duration,
) -> Vec<String> {
    let mut resp = reqwest::Client::new()
        .get(format!("{}{path}", s.url))
        .header("authorization", format!("Bearer {token}"))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    let mut text = String::new();
    let deadline = tokio::time::Instant::now() + limit;
    while let Ok(Ok(Some(chunk))) = tokio::time::timeout_at(deadline, resp.chunk()).await {
        text.push_str(&String::from_utf8_lossy(&chunk));
        if text.contains(&format!("event: {until}\n")) {
            break;
        }
    }
    text.lines()
        .filter_map(|l| l.strip_prefix("event: ").map(str::to_owned))
        .collect()
}

/// Sets the session's refund policy through the admin route: free until 10 days before the
/// start, 10 % after (the test sessions start in 7 days: 10 %).
async fn ten_percent_policy(s: &Server, admin: &str, session: SessionId) {
    let body = serde_json::json!({
        "refund": {
            "cancel_until_before_start_secs": 0,
            "tiers": [
                {"before_start_secs": 10 * DAY, "fee_bps": 0},
                {"before_start_secs": 0, "fee_bps": 1000}
            ]
        }
    })
    .to_string();
    let set = call(
        s,
        "PUT",
        &format!("/api/admin/sessions/{session}/policy"),
        Some(admin),
        &[],
        Some(&body),
    )
    .await;
    assert_eq!(set.status, 200, "{set:?}");
    assert_eq!(set.json["refund"]["tiers"][1]["fee_bps"], 1000, "{set:?}");
}

/// Pause refuses holds (409 SALES_PAUSED) and waiting users see `paused` in the queue view,
/// on the queue's SSE stream, on `/api/me/events` and in the catalogue; resume sells again;
/// close ends the queue and is final.
async fn pause_resume_close(kind: Kind) {
    let s = server(kind, &[]).await;
    let session = ga_session(&s, 10).await;
    let rush = &s.state.rush;
    let mut policy = rush.stores().policies.policy(session).await.unwrap();
    policy.queue.max_active = 1;
    rush.set_policy(session, &policy).await.unwrap();
    s.state.live.refresh_soon();
    let admin = admin_token(&s).await;
    let (first, _) = user_token(&s);
    let (second, _) = user_token(&s);
    let q = format!("/api/sessions/{session}/queue");
    let joined = call(&s, "POST", &q, Some(&first), &[], None).await;
    assert_eq!(joined.json["status"], "active", "{joined:?}");
    assert_eq!(joined.json["sale"], "open", "{joined:?}");
    let waiting = call(&s, "POST", &q, Some(&second), &[], None).await;
    assert_eq!(waiting.json["status"], "waiting", "{waiting:?}");

    // The waiting user's streams, opened before the pause.
    let (s1, s2) = (&s, &s);
    let queue_stream = {
        let path = format!("{q}/events");
        let token = second.clone();
        async move { events_until(s1, &path, &token, "paused", Duration::from_secs(10)).await }
    };
    let my_stream = {
        let token = second.clone();
        async move {
            events_until(
                s2,
                "/api/me/events",
                &token,
                "sale_paused",
                Duration::from_secs(15),
            )
            .await
        }
    };
    let pause = async {
        tokio::time::sleep(Duration::from_millis(700)).await;
        switch(&s, &admin, session, "pause").await
    };
    let (seen_queue, seen_mine, paused) = tokio::join!(queue_stream, my_stream, pause);
    assert_eq!(paused.status, 200, "{paused:?}");
    assert_eq!(paused.json["switch"]["state"], "paused", "{paused:?}");
    assert_eq!(paused.json["changed"], true);
    assert!(seen_queue.contains(&"paused".to_owned()), "{seen_queue:?}");
    assert!(
        seen_mine.contains(&"sale_paused".to_owned()),
        "{seen_mine:?}"
    );

    let again = switch(&s, &admin, session, "pause").await;
    assert_eq!(
        (again.status, &again.json["changed"]),
        (200, &serde_json::json!(false))
    );
    let refused = hold(&s, session, &first, "h1").await;
    assert_eq!(
        (refused.status, refused.json["error"]["code"].as_str()),
        (409, Some("SALES_PAUSED")),
        "{refused:?}"
    );
    let view = queue(&s, session, &second).await;
    assert_eq!(view.json["sale"], "paused", "{view:?}");
    let stock = call(
        &s,
        "GET",
        &format!("/api/sessions/{session}"),
        None,
        &[],
        None,
    )
    .await;
    assert_eq!(stock.json["status"], "paused", "{stock:?}");
    let sale = call(
        &s,
        "GET",
        &format!("/api/admin/sessions/{session}/sale"),
        Some(&admin),
        &[],
        None,
    )
    .await;
    assert_eq!(
        (
            sale.json["switch"]["state"].as_str(),
            sale.json["status"].as_str()
        ),
        (Some("paused"), Some("paused")),
        "{sale:?}"
    );
    // The move is in the session's audit trail, by the admin.
    let audit = call(
        &s,
        "GET",
        &format!("/api/admin/audit?session_id={session}"),
        Some(&admin),
        &[],
        None,
    )
    .await;
    assert_eq!(audit.status, 200, "{audit:?}");
    assert!(
        audit.json["records"]
            .as_array()
            .unwrap()
            .iter()
            .any(|r| r["to"] == "PAUSED"
                && r["subject"]["kind"] == "session"
                && r["actor"]["kind"] == "operator"),
        "{audit:?}"
    );

    let resumed = switch(&s, &admin, session, "resume").await;
    assert_eq!(resumed.json["switch"]["state"], "open", "{resumed:?}");
    let held = hold(&s, session, &first, "h2").await;
    assert_eq!(held.status, 201, "{held:?}");
    assert_eq!(queue(&s, session, &second).await.json["sale"], "open");

    let closed = switch(&s, &admin, session, "close").await;
    assert_eq!(closed.json["switch"]["state"], "closed", "{closed:?}");
    let view = queue(&s, session, &second).await;
    assert_eq!(view.json["sale"], "closed", "{view:?}");
    let reopen = switch(&s, &admin, session, "resume").await;
    assert_eq!(
        (reopen.status, reopen.json["error"]["code"].as_str()),
        (409, Some("ILLEGAL_SALE_TRANSITION")),
        "{reopen:?}"
    );
    let stock = call(
        &s,
        "GET",
        &format!("/api/sessions/{session}"),
        None,
        &[],
        None,
    )
    .await;
    assert_eq!(stock.json["status"], "closed", "{stock:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn memory_pause_resume_close() {
    pause_resume_close(Kind::Memory).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redis_pause_resume_close() {
    pause_resume_close(Kind::Redis).await;
}

/// Cancelling the show refunds every confirmed reservation exactly once (in the background,
/// followed through the refund-run route), releases unpaid holds, and a repeat or a restart
/// of the run refunds nothing more.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cancelling_the_show_refunds_every_confirmed_reservation_once() {
    let s = server(Kind::Memory, &[]).await;
    let session = ga_session(&s, 10).await;
    let admin = admin_token(&s).await;
    // A 10 % policy: the show's cancellation still refunds in full.
    ten_percent_policy(&s, &admin, session).await;
    let mut bought = Vec::new();
    for i in 0..3 {
        let (me, _) = user_token(&s);
        bought.push(buy(&s, session, &me, &format!("buy-{i}"), 1).await.0);
    }
    let (late, _) = user_token(&s);
    join_and_hold(&s, session, &late, "unpaid", 1).await;
    assert_eq!(totals(&s, session).await, (6, 1, 3));

    let cancelled = switch(&s, &admin, session, "cancel").await;
    assert_eq!(cancelled.status, 200, "{cancelled:?}");
    assert_eq!(cancelled.json["switch"]["state"], "cancelled");
    let path = format!("/api/admin/sessions/{session}/refund-run");
    let mut run = serde_json::Value::Null;
    for _ in 0..100 {
        run = call(&s, "GET", &path, Some(&admin), &[], None).await.json;
        if run["run"]["complete"] == true && run["run"]["running"] == false {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(run["sale"], "cancelled", "{run}");
    assert_eq!(run["run"]["complete"], true, "{run}");
    assert_eq!(run["run"]["running"], false, "{run}");
    assert_eq!(run["run"]["refunded"], 3, "{run}");
    assert_eq!(run["run"]["released"], 1, "{run}");
    let refunds = s.state.sandbox.as_ref().unwrap().refunds();
    assert_eq!(refunds.len(), 3, "{refunds:?}");
    assert!(
        refunds.iter().all(|r| r.amount.amount_minor == 50_000),
        "{refunds:?}"
    );
    for id in &bought {
        let h = s
            .state
            .rush
            .stores()
            .reservations
            .get(id.parse().unwrap())
            .await
            .unwrap();
        assert_eq!(h.state, ticket_core::model::hold::HoldState::Refunded);
    }

    // A repeat, and the run resumed as at a restart: nothing more goes back.
    let again = switch(&s, &admin, session, "cancel").await;
    assert_eq!(
        (again.status, &again.json["changed"]),
        (200, &serde_json::json!(false))
    );
    ticket_server::services::refund_runs::resume_all(&s.state)
        .await
        .unwrap();
    tokio::time::sleep(Duration::from_millis(800)).await;
    assert_eq!(s.state.sandbox.as_ref().unwrap().refunds().len(), 3);

    // Nothing is sold any more.
    let (newcomer, _) = user_token(&s);
    let join = call(
        &s,
        "POST",
        &format!("/api/sessions/{session}/queue"),
        Some(&newcomer),
        &[],
        None,
    )
    .await;
    assert_eq!(
        (join.status, join.json["error"]["code"].as_str()),
        (409, Some("SESSION_CANCELLED")),
        "{join:?}"
    );
    let cap = call(
        &s,
        "POST",
        &format!("/api/admin/sessions/{session}/capacity"),
        Some(&admin),
        &[("idempotency-key", "cap-1")],
        Some(r#"{"kind":"add_units","grade":"GA","units":1}"#),
    )
    .await;
    assert_eq!(
        (cap.status, cap.json["error"]["code"].as_str()),
        (409, Some("SESSION_CANCELLED")),
        "{cap:?}"
    );
    let stock = call(
        &s,
        "GET",
        &format!("/api/sessions/{session}"),
        None,
        &[],
        None,
    )
    .await;
    assert_eq!(stock.json["status"], "cancelled", "{stock:?}");
    let reopen = switch(&s, &admin, session, "resume").await;
    assert_eq!(reopen.status, 409, "{reopen:?}");
}

/// The quote shows the policy's fee; cancelling keeps exactly that fee and refunds the rest
/// through the provider; someone else's reservation is not found.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_buyer_cancels_by_the_policy_as_quoted() {
    let s = server(Kind::Memory, &[]).await;
    let session = ga_session(&s, 10).await;
    let admin = admin_token(&s).await;
    ten_percent_policy(&s, &admin, session).await;
    let (me, _) = user_token(&s);
    let (other, _) = user_token(&s);
    let (bought, _) = buy(&s, session, &me, "buy", 1).await;

    let quote_path = format!("/api/reservations/{bought}/cancellation-quote");
    let quote = call(&s, "GET", &quote_path, Some(&me), &[], None).await;
    assert_eq!(quote.status, 200, "{quote:?}");
    assert_eq!(
        (quote.json["fee"].as_i64(), quote.json["refund"].as_i64()),
        (Some(5_000), Some(45_000)),
        "{quote:?}"
    );
    assert_eq!(quote.json["fee_bps"], 1000);
    assert!(
        quote.json["rule"].as_str().unwrap().contains("10 %"),
        "{quote:?}"
    );
    assert!(
        quote.json["valid_until"].as_i64().unwrap()
            <= quote.json["cancellable_until"].as_i64().unwrap()
    );
    let theirs = call(&s, "GET", &quote_path, Some(&other), &[], None).await;
    assert_eq!(
        (theirs.status, theirs.json["error"]["code"].as_str()),
        (404, Some("NOT_FOUND")),
        "{theirs:?}"
    );
    let stranger = call(
        &s,
        "POST",
        &format!("/api/reservations/{bought}/cancel"),
        Some(&other),
        &[("idempotency-key", "c")],
        None,
    )
    .await;
    assert_eq!(stranger.status, 404, "{stranger:?}");

    let done = call(
        &s,
        "POST",
        &format!("/api/reservations/{bought}/cancel"),
        Some(&me),
        &[("idempotency-key", "c1")],
        None,
    )
    .await;
    assert_eq!(done.status, 200, "{done:?}");
    assert_eq!(done.json["status"], "refunded");
    assert_eq!(
        (done.json["fee"].as_i64(), done.json["refund"].as_i64()),
        (Some(5_000), Some(45_000)),
        "{done:?}"
    );
    assert_eq!(done.json["rule"], quote.json["rule"]);
    assert_eq!(done.json["basis"], "policy");
    let refunds = s.state.sandbox.as_ref().unwrap().refunds();
    assert_eq!(refunds.len(), 1);
    assert_eq!(refunds[0].amount.amount_minor, 45_000);
    // A repeat under another key answers the same decision and refunds nothing more.
    let repeat = call(
        &s,
        "POST",
        &format!("/api/reservations/{bought}/cancel"),
        Some(&me),
        &[("idempotency-key", "c2")],
        None,
    )
    .await;
    assert_eq!(
        (repeat.status, repeat.json["refund"].as_i64()),
        (200, Some(45_000)),
        "{repeat:?}"
    );
    assert_eq!(s.state.sandbox.as_ref().unwrap().refunds().len(), 1);
    // A refunded reservation has no quote.
    let after = call(&s, "GET", &quote_path, Some(&me), &[], None).await;
    assert_eq!(after.status, 409, "{after:?}");
}

/// A 10 % fee cancellation of a wallet payment credits exactly 90 % back.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_wallet_payment_cancelled_with_a_fee_credits_the_rest() {
    let s = server(Kind::Memory, &[]).await;
    let session = ga_session(&s, 10).await;
    let admin = admin_token(&s).await;
    ten_percent_policy(&s, &admin, session).await;
    let (me, _) = user_token(&s);
    top_up(&s, &me, "top", 100_000).await;
    let hold_id = join_and_hold(&s, session, &me, "h", 1).await;
    let paid = call(
        &s,
        "POST",
        &format!("/api/holds/{hold_id}/checkout"),
        Some(&me),
        &[("idempotency-key", "pay")],
        Some(r#"{"method":"wallet"}"#),
    )
    .await;
    assert_eq!(paid.status, 200, "{paid:?}");
    async fn balance(s: &Server, me: String) -> Option<i64> {
        call(s, "GET", "/api/me/wallet", Some(&me), &[], None)
            .await
            .json["balance"]
            .as_i64()
    }
    assert_eq!(balance(&s, me.clone()).await, Some(50_000));
    let done = call(
        &s,
        "POST",
        &format!("/api/reservations/{hold_id}/cancel"),
        Some(&me),
        &[("idempotency-key", "c")],
        None,
    )
    .await;
    assert_eq!(
        (done.status, done.json["refund"].as_i64()),
        (200, Some(45_000)),
        "{done:?}"
    );
    assert_eq!(balance(&s, me.clone()).await, Some(95_000));
    let repeat = call(
        &s,
        "POST",
        &format!("/api/reservations/{hold_id}/cancel"),
        Some(&me),
        &[("idempotency-key", "c2")],
        None,
    )
    .await;
    assert_eq!(repeat.status, 200, "{repeat:?}");
    assert_eq!(balance(&s, me).await, Some(95_000), "credited once");
}

/// An admin cancels a buyer's reservation in full despite the policy's fee; a body without
/// a reason is refused and changes nothing.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_admin_cancels_on_a_buyers_behalf_with_a_full_refund() {
    let s = server(Kind::Memory, &[]).await;
    let session = ga_session(&s, 10).await;
    let admin = admin_token(&s).await;
    ten_percent_policy(&s, &admin, session).await;
    let (me, _) = user_token(&s);
    let (bought, _) = buy(&s, session, &me, "buy", 1).await;
    let path = format!("/api/admin/reservations/{bought}/cancel");
    for (body, status) in [
        (r#"{"refund":"full"}"#, 400),
        (r#"{"reason":"","refund":"full"}"#, 400),
        (r#"{"reason":"x","refund":"half"}"#, 400),
        (r#"{"reason":"x","refund":"full","extra":1}"#, 400),
        ("not json", 400),
    ] {
        let a = call(
            &s,
            "POST",
            &path,
            Some(&admin),
            &[("idempotency-key", "bad")],
            Some(body),
        )
        .await;
        assert_eq!(a.status, status, "{body}: {a:?}");
    }
    let no_key = call(
        &s,
        "POST",
        &path,
        Some(&admin),
        &[],
        Some(r#"{"reason":"x","refund":"full"}"#),
    )
    .await;
    assert_eq!(no_key.status, 400, "{no_key:?}");
    let buyer = call(
        &s,
        "POST",
        &path,
        Some(&me),
        &[("idempotency-key", "k")],
        Some(r#"{"reason":"x","refund":"full"}"#),
    )
    .await;
    assert_eq!(buyer.status, 403, "{buyer:?}");
    assert_eq!(totals(&s, session).await, (9, 0, 1), "nothing changed");
    assert!(s.state.sandbox.as_ref().unwrap().refunds().is_empty());

    let done = call(
        &s,
        "POST",
        &path,
        Some(&admin),
        &[("idempotency-key", "k")],
        Some(r#"{"reason":"the buyer is ill","refund":"full"}"#),
    )
    .await;
    assert_eq!(done.status, 200, "{done:?}");
    assert_eq!(
        (
            done.json["fee"].as_i64(),
            done.json["refund"].as_i64(),
            done.json["basis"].as_str()
        ),
        (Some(0), Some(50_000), Some("full")),
        "{done:?}"
    );
    assert_eq!(totals(&s, session).await, (10, 0, 0));
    let refunds = s.state.sandbox.as_ref().unwrap().refunds();
    assert_eq!(refunds.len(), 1);
    assert_eq!(refunds[0].amount.amount_minor, 50_000);
}

/// Adding units admits a waiting user; removing more than is on sale is 409 and bad bodies
/// are 400/422, all changing nothing.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn capacity_changes_admit_waiting_users_and_never_take_sold_units() {
    let s = server(Kind::Memory, &[]).await;
    let session = ga_session(&s, 1).await;
    let admin = admin_token(&s).await;
    let (first, _) = user_token(&s);
    buy(&s, session, &first, "buy", 1).await;
    let (second, _) = user_token(&s);
    let q = format!("/api/sessions/{session}/queue");
    let waiting = call(&s, "POST", &q, Some(&second), &[], None).await;
    assert_eq!(waiting.json["status"], "waiting", "{waiting:?}");
    let path = format!("/api/admin/sessions/{session}/capacity");
    let cap = |body: &'static str, key: &'static str| {
        let (s, admin, path) = (&s, admin.clone(), path.clone());
        async move {
            call(
                s,
                "POST",
                &path,
                Some(&admin),
                &[("idempotency-key", key)],
                Some(body),
            )
            .await
        }
    };
    for (body, status) in [
        (r#"{"kind":"add_units","grade":"GA","units":0}"#, 422),
        (r#"{"kind":"add_units","grade":"ZZ","units":1}"#, 422),
        (r#"{"kind":"add_seats","seats":[]}"#, 422),
        (r#"{"kind":"grow","grade":"GA","units":1}"#, 400),
        (
            r#"{"kind":"add_units","grade":"GA","units":1,"extra":true}"#,
            400,
        ),
        (r#"{"kind":"add_units","grade":"GA","units":-1}"#, 400),
        (
            r#"{"kind":"add_units","grade":"bad grade!","units":1}"#,
            400,
        ),
        (r#"{"grade":"GA","units":1}"#, 400),
    ] {
        let a = call(
            &s,
            "POST",
            &path,
            Some(&admin),
            &[("idempotency-key", body)],
            Some(body),
        )
        .await;
        assert_eq!(a.status, status, "{body}: {a:?}");
    }
    let remove_sold = cap(r#"{"kind":"remove_units","grade":"GA","units":1}"#, "r1").await;
    assert_eq!(
        (
            remove_sold.status,
            remove_sold.json["error"]["code"].as_str()
        ),
        (409, Some("CAPACITY_IN_USE")),
        "{remove_sold:?}"
    );
    assert_eq!(totals(&s, session).await, (0, 0, 1), "nothing changed");

    let added = cap(r#"{"kind":"add_units","grade":"GA","units":2}"#, "a1").await;
    assert_eq!(added.status, 200, "{added:?}");
    assert_eq!(added.json["capacity"], 3, "{added:?}");
    assert_eq!(added.json["grades"][0]["available"], 2, "{added:?}");
    // A repeat under the same key adds nothing more.
    let repeat = cap(r#"{"kind":"add_units","grade":"GA","units":2}"#, "a1").await;
    assert_eq!(
        (repeat.status, &repeat.json["capacity"]),
        (200, &serde_json::json!(3))
    );
    assert_eq!(totals(&s, session).await, (2, 0, 1));
    // The waiting user was admitted into the new units.
    let view = call(&s, "GET", &q, Some(&second), &[], None).await;
    assert_eq!(view.json["status"], "active", "{view:?}");
    let too_many = cap(r#"{"kind":"remove_units","grade":"GA","units":3}"#, "r2").await;
    assert_eq!(
        (too_many.status, too_many.json["error"]["code"].as_str()),
        (409, Some("CAPACITY_IN_USE")),
        "{too_many:?}"
    );
    let removed = cap(r#"{"kind":"remove_units","grade":"GA","units":1}"#, "r3").await;
    assert_eq!(
        (removed.status, &removed.json["capacity"]),
        (200, &serde_json::json!(2)),
        "{removed:?}"
    );
    let no_key = call(
        &s,
        "POST",
        &path,
        Some(&admin),
        &[],
        Some(r#"{"kind":"add_units","grade":"GA","units":1}"#),
    )
    .await;
    assert_eq!(no_key.status, 400);
    assert_eq!(totals(&s, session).await, (1, 0, 1));
}

/// Every admin route of the controls refuses a buyer (403) and an anonymous caller (401);
/// a malformed switch body is 400 and moves nothing; a bad refund policy is 400/422.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_controls_are_for_admins_and_refusals_change_nothing() {
    let s = server(Kind::Memory, &[]).await;
    let session = ga_session(&s, 5).await;
    let admin = admin_token(&s).await;
    let (me, _) = user_token(&s);
    let (bought, _) = buy(&s, session, &me, "buy", 1).await;
    let routes = [
        ("POST", format!("/api/admin/sessions/{session}/pause")),
        ("POST", format!("/api/admin/sessions/{session}/resume")),
        ("POST", format!("/api/admin/sessions/{session}/close")),
        ("POST", format!("/api/admin/sessions/{session}/cancel")),
        ("POST", format!("/api/admin/sessions/{session}/capacity")),
        ("GET", format!("/api/admin/sessions/{session}/sale")),
        ("GET", format!("/api/admin/sessions/{session}/refund-run")),
        ("POST", format!("/api/admin/reservations/{bought}/cancel")),
    ];
    for (method, path) in &routes {
        let body = if *method == "POST" {
            Some(r#"{"reason":"x","refund":"full"}"#)
        } else {
            None
        };
        let a = call(
            &s,
            method,
            path,
            Some(&me),
            &[("idempotency-key", "k")],
            body,
        )
        .await;
        assert_eq!(a.status, 403, "{method} {path}: {a:?}");
        let a = call(&s, method, path, None, &[("idempotency-key", "k")], body).await;
        assert_eq!(a.status, 401, "{method} {path}: {a:?}");
    }
    for body in [
        r#"{"reason":"x","extra":1}"#,
        r#"{"reason":5}"#,
        "nope",
        r#"["x"]"#,
    ] {
        let a = admin_post(
            &s,
            &admin,
            &format!("/api/admin/sessions/{session}/pause"),
            Some(body),
        )
        .await;
        assert_eq!(a.status, 400, "{body}: {a:?}");
    }
    let long = format!(r#"{{"reason":"{}"}}"#, "x".repeat(501));
    let a = admin_post(
        &s,
        &admin,
        &format!("/api/admin/sessions/{session}/pause"),
        Some(&long),
    )
    .await;
    assert_eq!(a.status, 400, "{a:?}");
    let unknown = admin_post(
        &s,
        &admin,
        &format!(
            "/api/admin/sessions/{}/pause",
            SessionId::new_at(s.state.clock.now())
        ),
        None,
    )
    .await;
    assert_eq!(unknown.status, 404, "{unknown:?}");
    let sale = call(
        &s,
        "GET",
        &format!("/api/admin/sessions/{session}/sale"),
        Some(&admin),
        &[],
        None,
    )
    .await;
    assert_eq!(sale.json["switch"]["state"], "open", "{sale:?}");
    assert_eq!(sale.json["status"], "on_sale", "{sale:?}");
    assert_eq!(totals(&s, session).await, (4, 0, 1));
    assert!(s.state.sandbox.as_ref().unwrap().refunds().is_empty());
    // A pause with a `null` body, or without one, is fine.
    let bare = admin_post(
        &s,
        &admin,
        &format!("/api/admin/sessions/{session}/pause"),
        None,
    )
    .await;
    assert_eq!(
        (bare.status, bare.json["switch"]["state"].as_str()),
        (200, Some("paused")),
        "{bare:?}"
    );
    let null = admin_post(
        &s,
        &admin,
        &format!("/api/admin/sessions/{session}/close"),
        Some("null"),
    )
    .await;
    assert_eq!(
        (null.status, null.json["switch"]["state"].as_str()),
        (200, Some("closed")),
        "{null:?}"
    );

    // Refund policies: refused by the schema (400) or the library (422), the old one kept.
    let policy = format!("/api/admin/sessions/{session}/policy");
    for (refund, status) in [
        (
            r#"{"cancel_until_before_start_secs":0,"tiers":[{"before_start_secs":0,"fee_bps":20000}]}"#,
            422,
        ),
        (r#"{"cancel_until_before_start_secs":0,"tiers":[]}"#, 422),
        (
            r#"{"cancel_until_before_start_secs":0,"tiers":[{"before_start_secs":60,"fee_bps":0}]}"#,
            422,
        ),
        (
            r#"{"cancel_until_before_start_secs":0,"tiers":[{"before_start_secs":0,"fee_bps":0,"x":1}]}"#,
            400,
        ),
        (r#"{"tiers":[{"before_start_secs":0,"fee_bps":0}]}"#, 400),
    ] {
        let a = call(
            &s,
            "PUT",
            &policy,
            Some(&admin),
            &[],
            Some(&format!(r#"{{"refund":{refund}}}"#)),
        )
        .await;
        assert_eq!(a.status, status, "{refund}: {a:?}");
    }
    let kept = s
        .state
        .rush
        .stores()
        .policies
        .policy(session)
        .await
        .unwrap();
    assert_eq!(
        kept.refund,
        ticket_core::model::refund_policy::RefundPolicy::default()
    );
}

/// A show cancelled while no server ran its refund run (a crash right after the cancel):
/// the run resumed at start refunds every confirmed reservation, once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_refund_run_cut_short_is_finished_at_start() {
    let s = server(Kind::Memory, &[]).await;
    let session = ga_session(&s, 10).await;
    for i in 0..2 {
        let (me, _) = user_token(&s);
        buy(&s, session, &me, &format!("buy-{i}"), 1).await;
    }
    // Cancelled behind the API's back: no run was started.
    s.state
        .rush
        .sales
        .cancel_show(
            session,
            ticket_core::model::audit::Actor::system("test"),
            "crash before the run",
        )
        .await
        .unwrap();
    assert!(s.state.sandbox.as_ref().unwrap().refunds().is_empty());
    let started = ticket_server::services::refund_runs::resume_all(&s.state)
        .await
        .unwrap();
    assert_eq!(started, 1);
    let admin = admin_token(&s).await;
    let path = format!("/api/admin/sessions/{session}/refund-run");
    let mut run = serde_json::Value::Null;
    for _ in 0..100 {
        run = call(&s, "GET", &path, Some(&admin), &[], None).await.json;
        if run["run"]["complete"] == true && run["run"]["running"] == false {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(
        (&run["run"]["complete"], &run["run"]["refunded"]),
        (&serde_json::json!(true), &serde_json::json!(2)),
        "{run}"
    );
    assert_eq!(s.state.sandbox.as_ref().unwrap().refunds().len(), 2);
    // Once more, as at the next start: nothing more goes back.
    ticket_server::services::refund_runs::resume_all(&s.state)
        .await
        .unwrap();
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(s.state.sandbox.as_ref().unwrap().refunds().len(), 2);
}
