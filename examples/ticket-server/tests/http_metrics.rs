//! `GET /metrics`: after a join, a refused and a created hold, a card checkout and a forged
//! webhook, the counters carry the expected labels and values, and the latency histogram is
//! labelled by route template, never by a raw id. On every backend (memory, Redis,
//! PostgreSQL): the counters are per process, but what they count goes through the store.

mod common;

use std::time::Duration;

use common::{Kind, Server, call, ga_session, server, user_token};

/// The metrics text and its content type.
async fn scrape(s: &Server) -> (String, String) {
    let resp = reqwest::Client::new()
        .get(format!("{}/metrics", s.url))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status().as_u16(), 200);
    let content_type = resp.headers()["content-type"].to_str().unwrap().to_owned();
    (resp.text().await.unwrap(), content_type)
}

/// The value of the sample line `name{labels}` (or `name` without labels), if present.
fn sample(text: &str, series: &str) -> Option<f64> {
    text.lines().find_map(|line| {
        let rest = line.strip_prefix(series)?;
        rest.strip_prefix(' ')?.trim().parse().ok()
    })
}

/// Each counted answer shows once under its labels; latency is labelled by route template.
async fn counters_and_latency_by_route_template(kind: Kind) {
    let s = server(kind, &[]).await;
    let session = ga_session(&s, 5).await;
    let (me, _) = user_token(&s);
    let (stranger, _) = user_token(&s);

    let joined = call(
        &s,
        "POST",
        &format!("/api/sessions/{session}/queue"),
        Some(&me),
        &[],
        None,
    )
    .await;
    assert_eq!(joined.json["status"], "active", "{joined:?}");

    let body = format!(r#"{{"session_id":"{session}","grade":"GA","quantity":1}}"#);
    let refused = call(
        &s,
        "POST",
        "/api/holds",
        Some(&stranger),
        &[("idempotency-key", "h-1")],
        Some(&body),
    )
    .await;
    assert_eq!(refused.json["error"]["code"], "NOT_ADMITTED", "{refused:?}");
    let held = call(
        &s,
        "POST",
        "/api/holds",
        Some(&me),
        &[("idempotency-key", "h-2")],
        Some(&body),
    )
    .await;
    assert_eq!(held.status, 201, "{held:?}");
    let hold_id = held.json["id"].as_str().unwrap().to_owned();

    let paid = call(
        &s,
        "POST",
        &format!("/api/holds/{hold_id}/checkout"),
        Some(&me),
        &[("idempotency-key", "pay-1")],
        Some(r#"{"method":"card","card_number":"4242424242424242"}"#),
    )
    .await;
    assert_eq!(paid.json["hold"]["status"], "confirmed", "{paid:?}");

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
    assert_eq!(forged.json["error"]["code"], "BAD_SIGNATURE");

    let (text, content_type) = scrape(&s).await;
    assert!(
        content_type.starts_with("application/openmetrics-text"),
        "{content_type}"
    );
    assert!(text.ends_with("# EOF\n"));
    for (series, value) in [
        (
            r#"ticketrush_queue_joins_total{outcome="joined",reason="none"}"#,
            1.0,
        ),
        (
            r#"ticketrush_holds_total{outcome="refused",reason="NOT_ADMITTED"}"#,
            1.0,
        ),
        (
            r#"ticketrush_holds_total{outcome="created",reason="none"}"#,
            1.0,
        ),
        (
            r#"ticketrush_checkouts_total{method="card",outcome="confirmed",reason="none"}"#,
            1.0,
        ),
        ("ticketrush_webhook_verification_failures_total", 1.0),
        (
            r#"http_request_duration_seconds_count{method="POST",route="/api/holds",status="201"}"#,
            1.0,
        ),
        (
            r#"http_request_duration_seconds_count{method="POST",route="/api/holds",status="403"}"#,
            1.0,
        ),
        (
            r#"http_request_duration_seconds_count{method="POST",route="/api/sessions/{id}/queue",status="200"}"#,
            1.0,
        ),
        (
            r#"http_request_duration_seconds_count{method="POST",route="/api/holds/{id}/checkout",status="200"}"#,
            1.0,
        ),
        (
            r#"http_request_duration_seconds_bucket{le="+Inf",method="POST",route="/api/payments/webhook",status="401"}"#,
            1.0,
        ),
    ] {
        assert_eq!(sample(&text, series), Some(value), "{series} in\n{text}");
    }
    assert!(
        sample(&text, "ticketrush_admissions_total").is_some_and(|n| n >= 1.0),
        "the join's round admitted me:\n{text}"
    );
    for raw in [session.to_string(), hold_id.clone()] {
        assert!(!text.contains(&raw), "a raw id {raw} in the metrics");
    }

    // The provider's own webhooks for the payment arrive and are counted by their result:
    // with manual capture (the sandbox's) the authorization's and the capture's, each
    // reporting the hold confirmed; with automatic capture the one success.
    let expected = match s.state.checkout.capture_method() {
        ticket_core::gateway::CaptureMethod::Manual => 2.0,
        ticket_core::gateway::CaptureMethod::Automatic => 1.0,
    };
    let mut applied = None;
    // (Up to 15 s: the webhook is an HTTP request of its own, slower on a loaded machine.)
    for _ in 0..150 {
        let (text, _) = scrape(&s).await;
        applied = sample(
            &text,
            r#"ticketrush_payment_webhooks_total{result="confirmed"}"#,
        );
        if applied == Some(expected) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(applied, Some(expected));

    // The scrape itself is timed under its route; unknown paths share one label.
    let _ = call(&s, "GET", &format!("/nope/{hold_id}"), None, &[], None).await;
    let (text, _) = scrape(&s).await;
    assert!(
        sample(
            &text,
            r#"http_request_duration_seconds_count{method="GET",route="/metrics",status="200"}"#
        )
        .is_some_and(|n| n >= 1.0),
        "{text}"
    );
    assert_eq!(
        sample(
            &text,
            r#"http_request_duration_seconds_count{method="GET",route="unmatched",status="404"}"#
        ),
        Some(1.0),
        "{text}"
    );
    assert!(!text.contains(&hold_id));
}

common::on_all_backends!(counters_and_latency_by_route_template);
