//! Webhook endpoints over the HTTP API: URLs are validated when registered (400 with the
//! reason, nothing registered), the number of endpoints is bounded, and the delivery client
//! never follows a redirect (a 3xx is a failed attempt, retried and logged; the redirect's
//! target receives nothing).

mod common;

use std::time::Duration;

use common::{assert_error, id_of, start};
use payment_sandbox::SandboxConfig;
use payment_sandbox::delivery::{AttemptOutcome, DeliveryConfig};
use serde_json::json;
use wiremock::matchers::{any, method, path};
use wiremock::{Mock, MockServer, ResponseTemplate};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn endpoint_urls_are_validated_and_a_refused_one_registers_nothing() {
    let api = start(SandboxConfig::default()).await;
    let long = format!("http://127.0.0.1:9/{}", "x".repeat(2_100));
    for (url, why) in [
        ("", "empty"),
        ("/api/payments/webhook", "absolute"),
        ("127.0.0.1:9/hook", "absolute"),
        ("ftp://127.0.0.1/hook", "http"),
        ("https://127.0.0.1:9/hook", "http"),
        ("file:///etc/passwd", "http"),
        ("javascript:alert(1)", "http"),
        ("http://user:secret@127.0.0.1:9/hook", "credentials"),
        ("http://user@127.0.0.1:9/hook", "credentials"),
        ("http://127.0.0.1:9/hook#part", "fragment"),
        ("http://127.0.0.1:9/hook#", "fragment"),
        ("http://127.0.0.1:9/ho ok", "whitespace"),
        ("http://127.0.0.1:9/hook\r\nX-Injected: 1", "whitespace"),
        (long.as_str(), "longer than"),
    ] {
        let (status, answer) = api.register(url).await;
        assert_error(status, &answer, 400, "invalid_request");
        let message = answer["error"]["message"].as_str().unwrap_or_default();
        assert!(message.contains(why), "{url:?}: {message}");
    }
    for body in [
        json!({"url": 42}),
        json!({"url": "http://127.0.0.1:9/hook", "forward_to": "http://elsewhere"}),
        json!({"url": "http://127.0.0.1:9/hook", "faults": {"seed": 1, "typo": 0.5}}),
    ] {
        let (status, answer) = api.post("/v1/webhook_endpoints", &body).await;
        assert!(status == 400 || status == 422, "{body}: {status} {answer}");
    }

    // Nothing was registered: an event goes nowhere.
    api.paid(1_000).await;
    assert!(api.sandbox.wait_idle(Duration::from_secs(5)).await);
    assert_eq!(api.sandbox.delivery_stats().events, 0);
    assert!(api.sandbox.deliveries(None).is_empty());

    let (status, ep) = api
        .register("http://127.0.0.1:9/api/payments/webhook?x=1")
        .await;
    assert_eq!(status, 201, "{ep}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_number_of_endpoints_is_bounded() {
    let api = start(SandboxConfig {
        max_endpoints: 2,
        ..SandboxConfig::default()
    })
    .await;
    for i in 0..2 {
        let (status, ep) = api.register(&format!("http://127.0.0.1:9/hook{i}")).await;
        assert_eq!(status, 201, "{ep}");
    }
    let (status, answer) = api.register("http://127.0.0.1:9/hook3").await;
    assert_error(status, &answer, 409, "limit_reached");
    // Two events (processing, succeeded), dispatched to the two endpoints only.
    api.paid(1_000).await;
    assert_eq!(api.sandbox.delivery_stats().events, 4);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redirects_are_not_followed_and_count_as_failed_attempts() {
    let target = MockServer::start().await;
    // Any method: a followed 302 would arrive as a GET.
    Mock::given(any())
        .respond_with(ResponseTemplate::new(200))
        .expect(0)
        .named("the redirect's target")
        .mount(&target)
        .await;
    let receiver = MockServer::start().await;
    for status in [302, 307, 308] {
        Mock::given(method("POST"))
            .and(path(format!("/hook{status}")))
            .respond_with(
                ResponseTemplate::new(status)
                    .insert_header("location", format!("{}/stolen", target.uri())),
            )
            .expect(3)
            .mount(&receiver)
            .await;
    }
    let api = start(SandboxConfig {
        delivery: DeliveryConfig {
            schedule: vec![
                Duration::ZERO,
                Duration::from_millis(20),
                Duration::from_millis(20),
            ],
            ..DeliveryConfig::default()
        },
        ..SandboxConfig::default()
    })
    .await;
    let mut endpoints = Vec::new();
    for status in [302, 307, 308] {
        let (code, ep) = api
            .register(&format!("{}/hook{status}", receiver.uri()))
            .await;
        assert_eq!(code, 201, "{ep}");
        endpoints.push((status, id_of(&ep)));
    }

    // One event (cancel emits payment_intent.canceled): three attempts per endpoint.
    let id = api
        .created(1_000, payment_sandbox::cards::numbers::SUCCEEDS)
        .await;
    let (code, canceled) = api
        .post(&format!("/v1/payment_intents/{id}/cancel"), &json!({}))
        .await;
    assert_eq!(code, 200, "{canceled}");
    assert!(api.sandbox.wait_idle(Duration::from_secs(10)).await);

    receiver.verify().await;
    target.verify().await;
    for (status, endpoint) in endpoints {
        let (code, log) = api
            .get(&format!("/v1/webhook_endpoints/{endpoint}/deliveries"))
            .await;
        assert_eq!(code, 200, "{log}");
        let log = log.as_array().expect("a JSON array");
        assert_eq!(log.len(), 3, "retried like any failure: {log:?}");
        for attempt in log {
            assert_eq!(
                attempt["outcome"],
                json!({"kind": "rejected", "status": status, "retry_after_secs": null})
            );
        }
    }
    let stats = api.sandbox.delivery_stats();
    assert_eq!((stats.delivered, stats.abandoned), (0, 3), "{stats:?}");
    assert!(
        api.sandbox
            .deliveries(None)
            .iter()
            .all(|a| !matches!(a.outcome, AttemptOutcome::Delivered { .. }))
    );
}
