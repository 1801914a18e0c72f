//! Bounded memory: intents, refunds and the delivery log stay within the counts of
//! `SandboxConfig` under a burst of requests over HTTP; only settled items (succeeded,
//! failed or canceled, every webhook delivered) are evicted, oldest first; an evicted
//! intent reads as 404; when nothing can be evicted, creation answers 503 and nothing
//! changes.

mod common;

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use common::{Api, assert_error, id_of, start};
use payment_sandbox::cards::numbers;
use payment_sandbox::delivery::DeliveryConfig;
use payment_sandbox::{Sandbox, SandboxConfig};
use serde_json::json;
use ticket_core::gateway::IntentStatus;
use wiremock::matchers::method;
use wiremock::{Mock, MockServer, ResponseTemplate};

/// Fails the test if the sandbox ever holds more than `max` intents while it runs.
fn watch_bound(sandbox: Sandbox, max: usize) -> (Arc<AtomicBool>, tokio::task::JoinHandle<usize>) {
    let stop = Arc::new(AtomicBool::new(false));
    let stopping = stop.clone();
    let task = tokio::spawn(async move {
        let mut highest = 0;
        while !stopping.load(Ordering::SeqCst) {
            let n = sandbox.intents().len();
            assert!(n <= max, "{n} intents kept, bound {max}");
            highest = highest.max(n);
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
        highest
    });
    (stop, task)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_burst_of_payments_never_holds_more_intents_than_the_bound() {
    const MAX: usize = 20;
    let api = Arc::new(
        start(SandboxConfig {
            max_intents: MAX,
            ..SandboxConfig::default()
        })
        .await,
    );
    let first = api.paid(1_000).await;
    let (stop, watcher) = watch_bound(api.sandbox.clone(), MAX);

    // 8 clients × 25 payments, half succeeded, a quarter declined, a quarter canceled.
    let mut clients = Vec::new();
    for c in 0..8 {
        let api = api.clone();
        clients.push(tokio::spawn(async move {
            let mut ids = Vec::new();
            for i in 0..25 {
                let id = match (c + i) % 4 {
                    0 | 1 => api.paid(1_000).await,
                    2 => api.confirmed(1_000, numbers::DECLINED).await,
                    _ => {
                        let id = api.created(1_000, numbers::SUCCEEDS).await;
                        let (status, _) = api
                            .post(&format!("/v1/payment_intents/{id}/cancel"), &json!({}))
                            .await;
                        assert_eq!(status, 200);
                        id
                    }
                };
                ids.push(id);
            }
            ids
        }));
    }
    for c in clients {
        assert_eq!(c.await.expect("client").len(), 25);
    }
    stop.store(true, Ordering::SeqCst);
    assert_eq!(
        watcher.await.expect("watcher"),
        MAX,
        "the bound was reached"
    );

    let kept = api.sandbox.intents();
    assert_eq!(kept.len(), MAX);
    // The oldest went first: the very first intent is gone, and reads as unknown.
    let (status, answer) = api.get(&format!("/v1/payment_intents/{first}")).await;
    assert_error(status, &answer, 404, "not_found");
    let (status, answer) = api
        .post(&format!("/v1/payment_intents/{first}/refunds"), &json!({}))
        .await;
    assert_error(status, &answer, 404, "not_found");
    // The newest is kept.
    let newest = api.paid(1_000).await;
    let (status, intent) = api.get(&format!("/v1/payment_intents/{newest}")).await;
    assert_eq!(status, 200, "{intent}");
    let (status, page) = api.get("/v1/payment_intents?limit=100").await;
    assert_eq!(status, 200);
    assert_eq!(page["data"].as_array().map(Vec::len), Some(MAX));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unsettled_intents_are_never_evicted_and_a_full_sandbox_refuses_with_503() {
    const MAX: usize = 6;
    let api = start(SandboxConfig {
        max_intents: MAX,
        // The slow cards stay processing for the whole test.
        slow_delay: Duration::from_secs(3_600),
        ..SandboxConfig::default()
    })
    .await;
    let mut unsettled = Vec::new();
    for _ in 0..2 {
        unsettled.push(api.created(1_000, numbers::SUCCEEDS).await); // requires_confirmation
        unsettled.push(api.confirmed(1_000, numbers::SUCCEEDS_SLOWLY).await); // processing
    }
    for _ in 0..60 {
        api.paid(1_000).await;
    }
    assert_eq!(api.sandbox.intents().len(), MAX);
    for id in &unsettled {
        let (status, intent) = api.get(&format!("/v1/payment_intents/{id}")).await;
        assert_eq!(status, 200, "an unsettled intent was evicted: {intent}");
    }

    // Fill the rest with unsettled intents: nothing can go, creation is refused.
    while api
        .sandbox
        .intents()
        .iter()
        .any(|i| i.status == IntentStatus::Succeeded)
    {
        unsettled.push(api.created(1_000, numbers::SUCCEEDS).await);
    }
    let before = api.sandbox.intents();
    let (status, answer) = api
        .send(
            reqwest::Method::POST,
            "/v1/payment_intents",
            Some(&common::intent_body(1_000, numbers::SUCCEEDS)),
        )
        .await;
    assert_error(status, &answer, 503, "unavailable");
    assert_eq!(
        api.sandbox.intents(),
        before,
        "a refused creation changed nothing"
    );

    // Once one settles (canceled), there is room again, and that one goes.
    let canceled = &unsettled[0];
    let (status, _) = api
        .post(
            &format!("/v1/payment_intents/{canceled}/cancel"),
            &json!({}),
        )
        .await;
    assert_eq!(status, 200);
    let newest = api.created(1_000, numbers::SUCCEEDS).await;
    let (status, _) = api.get(&format!("/v1/payment_intents/{canceled}")).await;
    assert_eq!(status, 404);
    let (status, _) = api.get(&format!("/v1/payment_intents/{newest}")).await;
    assert_eq!(status, 200);
    assert_eq!(api.sandbox.intents().len(), MAX);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn intents_with_webhooks_still_on_their_way_are_not_evicted() {
    // The receiver fails every delivery; the sandbox retries once, 500 ms later.
    let receiver = MockServer::start().await;
    Mock::given(method("POST"))
        .respond_with(ResponseTemplate::new(500))
        .mount(&receiver)
        .await;
    let api = start(SandboxConfig {
        max_intents: 2,
        delivery: DeliveryConfig {
            schedule: vec![Duration::ZERO, Duration::from_millis(500)],
            ..DeliveryConfig::default()
        },
        ..SandboxConfig::default()
    })
    .await;
    let (status, ep) = api.register(&format!("{}/hook", receiver.uri())).await;
    assert_eq!(status, 201, "{ep}");
    let a = api.paid(1_000).await;
    api.paid(1_000).await;

    // Both succeeded, but their webhooks are still being retried: neither may go.
    let (status, answer) = api.create(1_000, numbers::SUCCEEDS).await;
    assert_error(status, &answer, 503, "unavailable");
    assert_eq!(api.sandbox.intents().len(), 2);

    // Once the deliveries are over (abandoned after the last retry), the oldest goes.
    assert!(api.sandbox.wait_idle(Duration::from_secs(10)).await);
    let (status, answer) = api.create(1_000, numbers::SUCCEEDS).await;
    assert_eq!(status, 200, "{answer}");
    let (status, _) = api.get(&format!("/v1/payment_intents/{a}")).await;
    assert_eq!(status, 404, "the oldest settled intent was evicted");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn refunds_and_the_delivery_log_are_bounded_too() {
    let receiver = MockServer::start().await;
    Mock::given(method("POST"))
        .respond_with(ResponseTemplate::new(200))
        .mount(&receiver)
        .await;
    let api: Api = start(SandboxConfig {
        max_refunds: 3,
        max_delivery_log: 5,
        ..SandboxConfig::default()
    })
    .await;
    let (status, ep) = api.register(&format!("{}/hook", receiver.uri())).await;
    assert_eq!(status, 201, "{ep}");
    let endpoint = id_of(&ep);
    let id = api.paid(10_000).await;
    let mut made = Vec::new();
    for i in 0..10 {
        // Let each refund's webhook be delivered, so the previous refunds are settled.
        assert!(api.sandbox.wait_idle(Duration::from_secs(10)).await);
        let (status, refund) = api
            .send(
                reqwest::Method::POST,
                &format!("/v1/payment_intents/{id}/refunds"),
                Some(&json!({"amount_minor": 100 + i})),
            )
            .await;
        assert_eq!(status, 200, "{refund}");
        made.push(id_of(&refund));
    }
    assert!(api.sandbox.wait_idle(Duration::from_secs(10)).await);
    let kept: Vec<String> = api.sandbox.refunds().into_iter().map(|r| r.id).collect();
    assert_eq!(kept, made[7..], "the newest three refunds, in order");
    let (status, page) = api.get("/v1/refunds").await;
    assert_eq!(status, 200);
    assert_eq!(page["data"].as_array().map(Vec::len), Some(3));
    let intent = api.sandbox.intents();
    assert_eq!(
        intent[0].amount_refunded,
        (0..10).map(|i| 100 + i).sum::<i64>(),
        "evicting refund records never changes what was refunded"
    );

    // 12 events (processing, succeeded, 10 refunds), one attempt each: the newest 5 kept.
    let stats = api.sandbox.delivery_stats();
    assert_eq!((stats.events, stats.attempts), (12, 12), "{stats:?}");
    let (status, log) = api
        .get(&format!("/v1/webhook_endpoints/{endpoint}/deliveries"))
        .await;
    assert_eq!(status, 200);
    let sequences: Vec<u64> = log
        .as_array()
        .expect("array")
        .iter()
        .map(|a| a["sequence"].as_u64().expect("sequence"))
        .collect();
    assert_eq!(sequences, [8, 9, 10, 11, 12]);
}

#[test]
fn zero_bounds_are_refused() {
    for config in [
        SandboxConfig {
            max_intents: 0,
            ..SandboxConfig::default()
        },
        SandboxConfig {
            max_refunds: 0,
            ..SandboxConfig::default()
        },
        SandboxConfig {
            max_delivery_log: 0,
            ..SandboxConfig::default()
        },
        SandboxConfig {
            max_endpoints: 0,
            ..SandboxConfig::default()
        },
    ] {
        assert!(Sandbox::new(config).is_err());
    }
    let defaults = SandboxConfig::default();
    assert_eq!(
        (
            defaults.max_intents,
            defaults.max_refunds,
            defaults.max_delivery_log
        ),
        (100_000, 100_000, 100_000)
    );
}
