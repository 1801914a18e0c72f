//! The queue's Server-Sent Events over HTTP: a waiting user sees `position`, then
//! `admitted` once a slot frees, and the stream ends; resuming continues the ids. On every
//! backend (memory, Redis, PostgreSQL).

mod common;

use std::time::Duration;

use common::{Kind, Server, call, ga_session, server, user_token};
use ticket_core::SessionId;

/// A GA session on sale now whose queue admits one user at a time.
async fn one_at_a_time(server: &Server) -> SessionId {
    let session = ga_session(server, 10).await;
    let rush = &server.state.rush;
    let mut policy = rush.stores().policies.policy(session).await.unwrap();
    policy.queue.require_admission = true;
    policy.queue.max_active = 1;
    rush.set_policy(session, &policy).await.unwrap();
    session
}

/// Reads the SSE stream until it ends or `limit` passes; returns (id, event) pairs.
async fn read_events(
    server: &Server,
    path: &str,
    token: &str,
    last_id: Option<&str>,
    limit: Duration,
    until: &str,
) -> Vec<(String, String)> {
    let mut req = reqwest::Client::new()
        .get(format!("{}{path}", server.url))
        .header("authorization", format!("Bearer {token}"));
    if let Some(id) = last_id {
        req = req.header("last-event-id", id);
    }
    let mut resp = req.send().await.unwrap();
    assert_eq!(resp.status(), 200);
    assert_eq!(
        resp.headers()["content-type"].to_str().unwrap(),
        "text/event-stream"
    );
    let mut text = String::new();
    let deadline = tokio::time::Instant::now() + limit;
    while let Ok(Ok(Some(chunk))) = tokio::time::timeout_at(deadline, resp.chunk()).await {
        text.push_str(&String::from_utf8_lossy(&chunk));
        if text.contains(&format!("event: {until}")) && text.ends_with("\n\n") {
            break;
        }
    }
    text.split("\n\n")
        .filter_map(|block| {
            let field = |name: &str| {
                block
                    .lines()
                    .find_map(|l| l.strip_prefix(&format!("{name}: ")).map(str::to_owned))
            };
            Some((field("id")?, field("event")?))
        })
        .collect()
}

/// A waiting user's stream says `position`, then `admitted` when the one ahead leaves.
async fn a_waiting_user_sees_position_then_admitted(kind: Kind) {
    let s = server(kind, &[]).await;
    let session = one_at_a_time(&s).await;
    let (first, second) = (user_token(&s).0, user_token(&s).0);
    let q = format!("/api/sessions/{session}/queue");
    assert_eq!(
        call(&s, "POST", &q, Some(&first), &[], None).await.json["status"],
        "active"
    );
    let waiting = call(&s, "POST", &q, Some(&second), &[], None).await;
    assert_eq!(
        (
            waiting.json["status"].as_str(),
            waiting.json["position"].as_u64()
        ),
        (Some("waiting"), Some(1))
    );

    let events = format!("{q}/events");
    let early = read_events(
        &s,
        &events,
        &second,
        None,
        Duration::from_secs(5),
        "position",
    )
    .await;
    assert_eq!(
        early.first().map(|e| e.1.as_str()),
        Some("position"),
        "{early:?}"
    );

    // The first user leaves: the slot frees and the stream announces the admission.
    let left = call(&s, "DELETE", &q, Some(&first), &[], None).await;
    assert_eq!(
        (left.status, left.json["status"].as_str()),
        (200, Some("left")),
        "{left:?}"
    );
    // The place is gone: reading it answers 404 `LEFT_QUEUE` (leaving again stays 200).
    let gone = call(&s, "GET", &q, Some(&first), &[], None).await;
    assert_eq!(
        (gone.status, gone.json["error"]["code"].as_str()),
        (404, Some("LEFT_QUEUE")),
        "{gone:?}"
    );
    let later = read_events(
        &s,
        &events,
        &second,
        Some("41"),
        Duration::from_secs(5),
        "admitted",
    )
    .await;
    let last = later.last().expect("events");
    assert_eq!(last.1, "admitted", "{later:?}");
    assert!(
        later.iter().all(|(id, _)| id.parse::<u64>().unwrap() > 41),
        "ids continue after Last-Event-ID: {later:?}"
    );
    assert_eq!(
        call(&s, "GET", &q, Some(&second), &[], None).await.json["status"],
        "active"
    );
}

/// No token: 401; no ticket in the queue: 404 or 403; a malformed session id: 400.
async fn watching_needs_a_ticket_and_a_token(kind: Kind) {
    let s = server(kind, &[]).await;
    let session = one_at_a_time(&s).await;
    let path = format!("/api/sessions/{session}/queue/events");
    assert_eq!(call(&s, "GET", &path, None, &[], None).await.status, 401);
    let stranger = user_token(&s).0;
    let answer = call(&s, "GET", &path, Some(&stranger), &[], None).await;
    assert!(answer.status == 404 || answer.status == 403, "{answer:?}");
    assert_eq!(
        call(
            &s,
            "GET",
            "/api/sessions/nope/queue/events",
            Some(&stranger),
            &[],
            None
        )
        .await
        .status,
        400
    );
}

/// A `Last-Event-ID` outside 0..=2^53 − 1, or not decimal digits, answers 400 (it used to
/// be read as 0, or to overflow the numbering); the largest one resumes the numbering.
async fn a_last_event_id_beyond_the_range_answers_400(kind: Kind) {
    let s = server(kind, &[]).await;
    let session = one_at_a_time(&s).await;
    let me = user_token(&s).0;
    let q = format!("/api/sessions/{session}/queue");
    assert_eq!(
        call(&s, "POST", &q, Some(&me), &[], None).await.json["status"],
        "active"
    );
    let path = format!("{q}/events");
    for bad in [
        "18446744073709551615",
        "18446744073709551616",
        "9007199254740992",
        "-1",
        "+5",
        "1.0",
        "abc",
    ] {
        let a = call(&s, "GET", &path, Some(&me), &[("last-event-id", bad)], None).await;
        assert_eq!(
            (a.status, a.json["error"]["code"].as_str()),
            (400, Some("VALIDATION")),
            "Last-Event-ID {bad}: {a:?}"
        );
    }
    let max = "9007199254740991";
    let events = read_events(
        &s,
        &path,
        &me,
        Some(max),
        Duration::from_secs(5),
        "admitted",
    )
    .await;
    assert_eq!(
        events,
        vec![("9007199254740992".to_owned(), "admitted".to_owned())]
    );
}

common::on_all_backends!(
    a_waiting_user_sees_position_then_admitted,
    watching_needs_a_ticket_and_a_token,
    a_last_event_id_beyond_the_range_answers_400,
);
