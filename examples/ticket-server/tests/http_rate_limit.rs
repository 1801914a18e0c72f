//! Rate limits on the queue and hold routes: 429 `RATE_LIMITED` with `Retry-After` past a
//! user's or an address's budget, per user and per IP; other routes are never limited.
//!
//! Memory backend only, on purpose: the buckets live in the server process's memory
//! (`src/http/middleware/rate_limit.rs`, "Per process") and are checked before any handler
//! reads the store, so the backend changes nothing here. The limited routes themselves run on every backend
//! in `http_rush.rs` and `http_queue_events.rs`.

mod common;

use std::time::Duration;

use common::{Answer, Server, call, ga_session, memory_server, user_token};
use ticket_core::SessionId;

/// One hold attempt by `token` (refused with 403 `NOT_ADMITTED` when under the limit: the
/// session queues and nobody joined).
async fn hold(s: &Server, session: SessionId, token: Option<&str>) -> Answer {
    let body = format!(r#"{{"session_id":"{session}","grade":"GA","quantity":1}}"#);
    call(
        s,
        "POST",
        "/api/holds",
        token,
        &[("idempotency-key", "k")],
        Some(&body),
    )
    .await
}

/// `Retry-After` in seconds, which must be a whole number of at least 1.
fn retry_after(a: &Answer) -> u64 {
    let secs: u64 = a
        .retry_after
        .as_deref()
        .expect("Retry-After")
        .parse()
        .expect("whole seconds");
    assert!(secs >= 1, "{a:?}");
    secs
}

fn is_rate_limited(a: &Answer) -> bool {
    a.status == 429 && a.json["error"]["code"] == "RATE_LIMITED"
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn past_its_budget_a_user_is_refused_and_others_are_not() {
    let s = memory_server(&[
        "--rate-limit-per-minute",
        "3",
        "--rate-limit-per-ip-per-minute",
        "0",
    ])
    .await;
    let session = ga_session(&s, 5).await;
    let (me, _) = user_token(&s);
    let (other, _) = user_token(&s);

    for i in 0..3 {
        let a = hold(&s, session, Some(&me)).await;
        assert_eq!(
            (a.status, a.json["error"]["code"].as_str()),
            (403, Some("NOT_ADMITTED")),
            "attempt {i}: {a:?}"
        );
    }
    let refused = hold(&s, session, Some(&me)).await;
    assert!(is_rate_limited(&refused), "{refused:?}");
    // 3 per minute: the next request is 20 s away.
    let wait = retry_after(&refused);
    assert!((15..=20).contains(&wait), "{refused:?}");
    // One budget for all the limited routes.
    let join = call(
        &s,
        "POST",
        &format!("/api/sessions/{session}/queue"),
        Some(&me),
        &[],
        None,
    )
    .await;
    assert!(is_rate_limited(&join), "{join:?}");

    let theirs = hold(&s, session, Some(&other)).await;
    assert_eq!(theirs.status, 403, "another user is unaffected: {theirs:?}");
    // A request without a valid token is the handler's to refuse, as before.
    assert_eq!(hold(&s, session, Some("not-a-token")).await.status, 401);

    // Routes outside the limited set are never limited.
    for _ in 0..5 {
        for path in [
            "/healthz",
            "/metrics",
            "/api/me/wallet",
            "/api/holds/01890a5d-ac96-774b-bcce-b302099a8057",
        ] {
            let a = call(&s, "GET", path, Some(&me), &[], None).await;
            assert_ne!(a.status, 429, "GET {path}: {a:?}");
        }
    }

    let text = reqwest::get(format!("{}/metrics", s.url))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        text.contains("ticketrush_rate_limited_total{limit=\"user\"} 2\n"),
        "{text}"
    );
    assert!(
        text.contains("ticketrush_holds_total{outcome=\"refused\",reason=\"RATE_LIMITED\"} 1\n"),
        "{text}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_ip_limit_trips_across_users_from_one_address() {
    let s = memory_server(&[
        "--rate-limit-per-minute",
        "100",
        "--rate-limit-per-ip-per-minute",
        "4",
    ])
    .await;
    let session = ga_session(&s, 5).await;
    for i in 0..4 {
        let (token, _) = user_token(&s);
        let a = hold(&s, session, Some(&token)).await;
        assert_eq!(a.status, 403, "user {i}: {a:?}");
    }
    let (fifth, _) = user_token(&s);
    let refused = hold(&s, session, Some(&fifth)).await;
    assert!(is_rate_limited(&refused), "{refused:?}");
    retry_after(&refused);
    // Without a token the address is limited all the same.
    assert!(is_rate_limited(&hold(&s, session, None).await));
    // Unlimited routes still answer.
    assert_eq!(
        call(&s, "GET", "/healthz", None, &[], None).await.status,
        200
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn after_retry_after_the_user_goes_again() {
    // 60 per minute: a burst of 60, then one a second.
    let s = memory_server(&[
        "--rate-limit-per-minute",
        "60",
        "--rate-limit-per-ip-per-minute",
        "0",
    ])
    .await;
    let session = ga_session(&s, 5).await;
    let (me, _) = user_token(&s);
    let mut refused = None;
    for _ in 0..200 {
        let a = hold(&s, session, Some(&me)).await;
        if a.status == 429 {
            refused = Some(a);
            break;
        }
        assert_eq!(a.status, 403, "{a:?}");
    }
    let refused = refused.expect("the burst ends");
    assert!(is_rate_limited(&refused), "{refused:?}");
    let wait = retry_after(&refused);
    assert_eq!(wait, 1, "{refused:?}");
    tokio::time::sleep(Duration::from_secs(wait)).await;
    let again = hold(&s, session, Some(&me)).await;
    assert_eq!(again.status, 403, "the user goes again: {again:?}");
}
