//! What every request passes: request ids, CORS, the body size limit.
//!
//! Memory backend only, on purpose: these layers wrap the router and answer (or refuse)
//! before any handler touches the store, so the backend changes nothing here. The routes
//! behind them run on every backend in the other `http_*.rs` files.

mod common;

use common::{call, memory_server};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_answer_carries_a_request_id_and_keeps_the_clients() {
    let s = memory_server(&[]).await;
    let client = reqwest::Client::new();
    let minted = client
        .get(format!("{}/healthz", s.url))
        .send()
        .await
        .unwrap();
    let id = minted.headers()["x-request-id"]
        .to_str()
        .unwrap()
        .to_owned();
    assert_eq!(id.len(), 36, "a UUID: {id}");
    let kept = client
        .get(format!("{}/healthz", s.url))
        .header("x-request-id", "client-chosen-1")
        .send()
        .await
        .unwrap();
    assert_eq!(kept.headers()["x-request-id"], "client-chosen-1");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cors_allows_only_the_configured_origins() {
    let s = memory_server(&["--cors-origins", "http://shop.test"]).await;
    let client = reqwest::Client::new();
    let preflight = |origin: &'static str| {
        client
            .request(reqwest::Method::OPTIONS, format!("{}/api/holds", s.url))
            .header("origin", origin)
            .header("access-control-request-method", "POST")
            .header(
                "access-control-request-headers",
                "authorization,idempotency-key",
            )
            .send()
    };
    let allowed = preflight("http://shop.test").await.unwrap();
    assert_eq!(
        allowed.headers()["access-control-allow-origin"],
        "http://shop.test"
    );
    let other = preflight("http://evil.test").await.unwrap();
    assert!(other.headers().get("access-control-allow-origin").is_none());
}

/// `--cors-origins '*'` (which panicked at start before) is the any-origin mode: every
/// origin gets `*`, never with credentials; `*` beside other origins is a start-up error.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cors_any_origin_is_a_mode_without_credentials() {
    let s = memory_server(&["--cors-origins", "*"]).await;
    let preflight = reqwest::Client::new()
        .request(reqwest::Method::OPTIONS, format!("{}/api/holds", s.url))
        .header("origin", "http://anywhere.test")
        .header("access-control-request-method", "POST")
        .header("access-control-request-headers", "authorization")
        .send()
        .await
        .unwrap();
    assert_eq!(preflight.headers()["access-control-allow-origin"], "*");
    assert!(
        preflight
            .headers()
            .get("access-control-allow-credentials")
            .is_none()
    );
    let ping = call(&s, "GET", "/api/ping", None, &[], None).await;
    assert_eq!(ping.status, 200);

    let mixed = common::config(
        common::Kind::Memory,
        "cors",
        &["--cors-origins", "http://a.test,*"],
    );
    let refused = ticket_server::runtime::state::AppState::build(mixed).await;
    let Err(error) = refused else {
        panic!("`*` with other origins is refused at start");
    };
    let message = error.to_string();
    assert!(message.contains("--cors-origins"), "{message}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn oversized_bodies_are_refused_before_anything_runs() {
    let s = memory_server(&["--body-limit-bytes", "2048"]).await;
    let big = format!(
        r#"{{"email":"a@example.com","password":"{}"}}"#,
        "a1".repeat(2_000)
    );
    let a = call(&s, "POST", "/api/auth/signup", None, &[], Some(&big)).await;
    assert_eq!(
        (a.status, a.json["error"]["code"].as_str()),
        (413, Some("PAYLOAD_TOO_LARGE")),
        "{a:?}"
    );
    assert!(
        s.state
            .accounts
            .user_by_email("a@example.com")
            .await
            .is_err(),
        "no account was made"
    );
}
