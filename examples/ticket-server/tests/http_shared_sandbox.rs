//! Two `ticket-server` processes on one Redis share one payment sandbox over HTTP
//! (`--payment-sandbox-url`), the way a deployment of several servers would: a slow card paid
//! through one process is confirmed by the signed webhook the sandbox delivers to the other
//! (which trusts the endpoint's `--webhook-secret`), and a forged webhook changes nothing.

mod common;

use std::time::Duration;

use common::{Kind, Namespace, free_port, spawn_process_on, token_for};
use payment_sandbox::{Sandbox, SandboxConfig};
use serde_json::{Value, json};

/// The shared sandbox's API key (`--payment-sandbox-key`).
const SANDBOX_KEY: &str = "sk_test_shared_sandbox_0123456789abcdef";

async fn send(
    method: reqwest::Method,
    url: String,
    token: Option<&str>,
    body: Option<Value>,
) -> (u16, Value) {
    let mut req = reqwest::Client::new()
        .request(method, url)
        .header("idempotency-key", "k1");
    if let Some(t) = token {
        req = req.bearer_auth(t);
    }
    if let Some(b) = body {
        req = req
            .header("content-type", "application/json")
            .body(b.to_string());
    }
    let resp = req.send().await.expect("request");
    let status = resp.status().as_u16();
    let bytes = resp.bytes().await.expect("body");
    (
        status,
        serde_json::from_slice(&bytes).unwrap_or(Value::Null),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_webhook_to_one_process_settles_a_checkout_started_on_the_other() {
    use reqwest::Method;
    // The shared sandbox, over HTTP.
    let sandbox = Sandbox::new(SandboxConfig {
        slow_delay: Duration::from_millis(300),
        ..SandboxConfig::default()
    })
    .expect("sandbox");
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let sandbox_url = format!("http://{}", listener.local_addr().expect("addr"));
    let api = payment_sandbox::http::router(
        sandbox.clone(),
        payment_sandbox::auth::ApiKey::new(SANDBOX_KEY).expect("key"),
    );
    let serving = tokio::spawn(async move { axum::serve(listener, api).await.expect("serve") });

    // The deployment's webhook endpoint is the second process.
    let (port_a, port_b) = (free_port(), free_port());
    let (status, endpoint) = send(
        Method::POST,
        format!("{sandbox_url}/v1/webhook_endpoints"),
        Some(SANDBOX_KEY),
        Some(json!({"url": format!("http://127.0.0.1:{port_b}/api/payments/webhook")})),
    )
    .await;
    assert_eq!(status, 201, "{endpoint}");
    let secret = endpoint["verification_key"]
        .as_str()
        .expect("key")
        .to_owned();

    let ns = Namespace::new(Kind::Redis);
    let flags = [
        "--no-demo",
        "--payment-sandbox-url",
        &sandbox_url,
        "--payment-sandbox-key",
        SANDBOX_KEY,
        "--webhook-secret",
        &secret,
    ];
    let a = spawn_process_on(&ns, port_a, &flags).await;
    let b = spawn_process_on(&ns, port_b, &flags).await;

    // An event on sale, created through A.
    let admin = token_for(&uuid::Uuid::now_v7().to_string(), "ADMIN");
    let now = i64::try_from(
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .expect("clock")
            .as_millis(),
    )
    .expect("ms");
    let (status, event) = send(
        Method::POST,
        format!("{}/api/admin/events", a.url),
        Some(&admin),
        Some(json!({"name": "Shared", "sessions": [{
            "starts_at": now + 86_400_000, "sales_open_at": now - 60_000, "sales_close_at": now + 3_600_000,
            "grades": [{"grade": "GA", "capacity": 5, "price_minor": 10_000, "currency": "KRW"}]}]})),
    )
    .await;
    assert_eq!(status, 201, "{event}");
    let session = event["sessions"][0]["id"]
        .as_str()
        .expect("session")
        .to_owned();

    // A buyer joins and holds on B, pays with the slow card on A.
    let me = token_for(&uuid::Uuid::now_v7().to_string(), "USER");
    let (status, joined) = send(
        Method::POST,
        format!("{}/api/sessions/{session}/queue", b.url),
        Some(&me),
        None,
    )
    .await;
    assert_eq!(
        (status, joined["status"].as_str()),
        (200, Some("active")),
        "{joined}"
    );
    let (status, hold) = send(
        Method::POST,
        format!("{}/api/holds", b.url),
        Some(&me),
        Some(json!({"session_id": session, "grade": "GA", "quantity": 1})),
    )
    .await;
    assert_eq!(status, 201, "{hold}");
    let hold = hold["id"].as_str().expect("hold").to_owned();
    let (status, paid) = send(
        Method::POST,
        format!("{}/api/holds/{hold}/checkout", a.url),
        Some(&me),
        Some(json!({"method": "card", "card_number": "4000000000003220"})),
    )
    .await;
    assert_eq!(status, 200, "{paid}");
    assert_eq!(paid["hold"]["status"], "paying", "{paid}");

    // A forged webhook to B is refused.
    let forged = reqwest::Client::new()
        .post(format!("{}/api/payments/webhook", b.url))
        .header("webhook-id", "msg_forged")
        .header("webhook-timestamp", (now / 1000).to_string())
        .header(
            "webhook-signature",
            "v1,AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=",
        )
        .body("{}")
        .send()
        .await
        .expect("forged");
    assert_eq!(
        forged.status().as_u16(),
        401,
        "a forged signature is 401 BAD_SIGNATURE"
    );

    // The sandbox's signed webhook reaches B, which confirms the hold A started paying.
    let mut status_seen = Value::Null;
    for _ in 0..100 {
        let (_, h) = send(
            Method::GET,
            format!("{}/api/holds/{hold}", a.url),
            Some(&me),
            None,
        )
        .await;
        status_seen = h["status"].clone();
        if status_seen == "confirmed" {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(
        status_seen, "confirmed",
        "the webhook to B never confirmed the hold"
    );
    let delivered = sandbox.deliveries(endpoint["id"].as_str());
    assert!(
        delivered.iter().any(|d| matches!(
            d.outcome,
            payment_sandbox::delivery::AttemptOutcome::Delivered { status: 200 }
        )),
        "B acknowledged a delivery: {delivered:?}"
    );
    serving.abort();
}
