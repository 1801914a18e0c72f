//! Manual capture: authorize (`requires_capture`), then capture (all or part) or void, or let
//! the authorization expire. In-process through the `PaymentGateway` trait, over the REST
//! API with `reqwest`, and through `HttpGateway`; the webhooks each move emits, in order.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use payment_sandbox::auth::ApiKey;
use payment_sandbox::cards::numbers;
use payment_sandbox::client::HttpGateway;
use payment_sandbox::delivery::EndpointConfig;
use payment_sandbox::{Sandbox, SandboxConfig, http};
use serde_json::{Value, json};
use ticket_core::gateway::{
    CaptureMethod, CaptureRequest, EventKind, GatewayError, IntentId, IntentStatus, NewIntent,
    PaymentEvent, PaymentGateway, PaymentIntent, RefundRequest,
};
use ticket_core::model::money::{Currency, Money};
use ticket_core::{Clock, ManualClock, Timestamp};
use wiremock::matchers::method;
use wiremock::{Mock, MockServer, ResponseTemplate};

const KEY: &str = "sk_test_capture_tests_0123456789abcdef";
const WEEK: Duration = Duration::from_secs(7 * 24 * 3_600);
const IDLE: Duration = Duration::from_secs(30);

fn key() -> ApiKey {
    ApiKey::new(KEY).expect("a valid key")
}

fn krw(amount_minor: i64) -> Money {
    Money {
        amount_minor,
        currency: Currency::new("KRW").expect("KRW"),
    }
}

fn next_key(prefix: &str) -> String {
    static KEYS: AtomicU64 = AtomicU64::new(0);
    format!("{prefix}-{}", KEYS.fetch_add(1, Ordering::Relaxed))
}

async fn create(gw: &dyn PaymentGateway, card: &str, method: CaptureMethod) -> PaymentIntent {
    let created = gw
        .create_intent(NewIntent {
            amount: krw(10_000),
            payment_method: card.to_owned(),
            capture_method: method,
            metadata: BTreeMap::from([("order".to_owned(), "o-1".to_owned())]),
            idempotency_key: next_key("create"),
        })
        .await
        .expect("the intent is created");
    assert_eq!(created.status, IntentStatus::RequiresConfirmation);
    assert_eq!(created.capture_method, method);
    created
}

/// A manual intent of 10 000 KRW, confirmed with the card that succeeds: authorized.
async fn authorized(gw: &dyn PaymentGateway) -> PaymentIntent {
    let created = create(gw, numbers::SUCCEEDS, CaptureMethod::Manual).await;
    let intent = gw.confirm_intent(&created.id).await.expect("confirm");
    assert_eq!(intent.status, IntentStatus::RequiresCapture);
    assert_eq!(intent.amount_capturable, 10_000);
    assert_eq!(intent.amount_received, 0);
    intent
}

fn capture_req(id: &IntentId, amount_minor: Option<i64>, key: &str) -> CaptureRequest {
    CaptureRequest {
        intent: id.clone(),
        amount_minor,
        idempotency_key: key.to_owned(),
    }
}

#[track_caller]
fn assert_conflict<T: std::fmt::Debug>(got: Result<T, GatewayError>, expected: IntentStatus) {
    match got {
        Err(GatewayError::Conflict { status, .. }) => assert_eq!(status, expected),
        other => panic!("expected a conflict with {expected:?}, got {other:?}"),
    }
}

/// A webhook receiver that accepts everything, registered with `sandbox`.
async fn receiver(sandbox: &Sandbox) -> MockServer {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .respond_with(ResponseTemplate::new(204))
        .mount(&server)
        .await;
    sandbox
        .register_endpoint(EndpointConfig {
            url: format!("{}/hooks", server.uri()),
            ..EndpointConfig::default()
        })
        .expect("the endpoint registers");
    server
}

/// The events received about `intent`, in sequence order, as (type, sequence, status).
async fn events_of(server: &MockServer, intent: &IntentId) -> Vec<(EventKind, u64, IntentStatus)> {
    let mut events: Vec<PaymentEvent> = server
        .received_requests()
        .await
        .unwrap_or_default()
        .iter()
        .map(|r| serde_json::from_slice(&r.body).expect("an event"))
        .filter(|e: &PaymentEvent| e.intent.id == *intent)
        .collect();
    events.sort_by_key(|e| e.sequence);
    events
        .into_iter()
        .map(|e| (e.kind, e.sequence, e.intent.status))
        .collect()
}

// ---------------------------------------------------------------------------------------
// In-process
// ---------------------------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_sandbox_offers_manual_and_partial_capture() {
    let sandbox = Sandbox::new(SandboxConfig::default()).expect("sandbox");
    let caps = PaymentGateway::capabilities(&sandbox);
    assert!(caps.manual_capture && caps.partial_capture);
    let gw = HttpGateway::new("http://127.0.0.1:9", key(), Duration::from_secs(1)).expect("gw");
    assert_eq!(
        gw.capabilities(),
        caps,
        "the client says what the server offers"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_authorization_is_captured_once_and_emits_its_events_in_order() {
    let sandbox = Sandbox::new(SandboxConfig::default()).expect("sandbox");
    let hooks = receiver(&sandbox).await;
    let before = sandbox.config().authorization_lifetime;
    assert_eq!(before, WEEK, "the default lifetime is 7 days");
    let started = Timestamp::from_millis(
        i64::try_from(
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .expect("after 1970")
                .as_millis(),
        )
        .expect("fits"),
    );
    let intent = authorized(&sandbox).await;
    let expires = intent.authorization_expires_at.expect("an expiry");
    assert!(
        expires >= started.plus(WEEK) && expires <= started.plus(WEEK + Duration::from_secs(60)),
        "{expires:?}"
    );

    let key = next_key("capture");
    let captured = sandbox
        .capture(capture_req(&intent.id, None, &key))
        .await
        .expect("capture");
    assert_eq!(captured.status, IntentStatus::Succeeded);
    assert_eq!(
        (captured.amount_received, captured.amount_capturable),
        (10_000, 0)
    );
    assert_eq!(captured.authorization_expires_at, None);
    let again = sandbox
        .capture(capture_req(&intent.id, None, &key))
        .await
        .expect("a repeat with the same key");
    assert_eq!(
        again, captured,
        "the intent as it stands, nothing taken twice"
    );
    assert!(matches!(
        sandbox
            .capture(capture_req(&intent.id, Some(5), &key))
            .await,
        Err(GatewayError::KeyReused)
    ));
    assert_conflict(
        sandbox
            .capture(capture_req(&intent.id, None, &next_key("capture")))
            .await,
        IntentStatus::Succeeded,
    );
    assert_conflict(sandbox.void(&intent.id).await, IntentStatus::Succeeded);

    assert!(sandbox.wait_idle(IDLE).await);
    assert_eq!(
        events_of(&hooks, &intent.id).await,
        vec![
            (EventKind::Processing, 1, IntentStatus::Processing),
            (
                EventKind::AmountCapturableUpdated,
                2,
                IntentStatus::RequiresCapture
            ),
            (EventKind::Succeeded, 3, IntentStatus::Succeeded),
        ],
        "one capture, one succeeded event"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_partial_capture_bounds_the_refunds() {
    let sandbox = Sandbox::new(SandboxConfig::default()).expect("sandbox");
    let intent = authorized(&sandbox).await;
    assert!(matches!(
        sandbox
            .capture(capture_req(&intent.id, Some(10_001), &next_key("c")))
            .await,
        Err(GatewayError::Invalid(_))
    ));
    assert!(matches!(
        sandbox
            .capture(capture_req(&intent.id, Some(0), &next_key("c")))
            .await,
        Err(GatewayError::Invalid(_))
    ));
    let captured = sandbox
        .capture(capture_req(&intent.id, Some(6_000), &next_key("c")))
        .await
        .expect("a partial capture");
    assert_eq!(
        (
            captured.status,
            captured.amount_received,
            captured.amount_capturable
        ),
        (IntentStatus::Succeeded, 6_000, 0)
    );
    let refund = |amount_minor, key: &str| RefundRequest {
        intent: intent.id.clone(),
        amount_minor,
        reason: "test".into(),
        idempotency_key: key.to_owned(),
    };
    assert!(matches!(
        sandbox.refund(refund(Some(6_001), "r1")).await,
        Err(GatewayError::Invalid(_))
    ));
    let all = sandbox.refund(refund(None, "r2")).await.expect("refund");
    assert_eq!(
        all.amount,
        krw(6_000),
        "what was captured, not what was authorized"
    );
    assert_conflict(
        sandbox.refund(refund(Some(1), "r3")).await,
        IntentStatus::Succeeded,
    );
    let now = sandbox.get_intent(&intent.id).await.expect("read");
    assert_eq!((now.amount_received, now.amount_refunded), (6_000, 6_000));
    assert!(now.fully_refunded());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_voided_authorization_cannot_be_captured() {
    let sandbox = Sandbox::new(SandboxConfig::default()).expect("sandbox");
    let hooks = receiver(&sandbox).await;
    let intent = authorized(&sandbox).await;
    let voided = sandbox.void(&intent.id).await.expect("void");
    assert_eq!(voided.status, IntentStatus::Canceled);
    assert_eq!((voided.amount_capturable, voided.amount_received), (0, 0));
    let again = sandbox.void(&intent.id).await.expect("a repeated void");
    assert_eq!(again, voided);
    assert_conflict(
        sandbox
            .capture(capture_req(&intent.id, None, &next_key("c")))
            .await,
        IntentStatus::Canceled,
    );
    assert_conflict(
        sandbox
            .refund(RefundRequest {
                intent: intent.id.clone(),
                amount_minor: None,
                reason: "x".into(),
                idempotency_key: next_key("r"),
            })
            .await,
        IntentStatus::Canceled,
    );
    assert!(sandbox.wait_idle(IDLE).await);
    assert_eq!(
        events_of(&hooks, &intent.id).await,
        vec![
            (EventKind::Processing, 1, IntentStatus::Processing),
            (
                EventKind::AmountCapturableUpdated,
                2,
                IntentStatus::RequiresCapture
            ),
            (EventKind::Canceled, 3, IntentStatus::Canceled),
        ]
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn capturing_an_automatic_or_unconfirmed_intent_is_a_conflict() {
    let sandbox = Sandbox::new(SandboxConfig::default()).expect("sandbox");
    let auto = create(&sandbox, numbers::SUCCEEDS, CaptureMethod::Automatic).await;
    let paid = sandbox.confirm_intent(&auto.id).await.expect("confirm");
    assert_eq!(
        (paid.status, paid.amount_received, paid.amount_capturable),
        (IntentStatus::Succeeded, 10_000, 0)
    );
    assert_conflict(
        sandbox
            .capture(capture_req(&auto.id, None, &next_key("c")))
            .await,
        IntentStatus::Succeeded,
    );
    let fresh = create(&sandbox, numbers::SUCCEEDS, CaptureMethod::Manual).await;
    assert_conflict(
        sandbox
            .capture(capture_req(&fresh.id, None, &next_key("c")))
            .await,
        IntentStatus::RequiresConfirmation,
    );
    let declined = create(&sandbox, numbers::DECLINED, CaptureMethod::Manual).await;
    let failed = sandbox.confirm_intent(&declined.id).await.expect("confirm");
    assert_eq!(failed.status, IntentStatus::Failed);
    assert_conflict(
        sandbox
            .capture(capture_req(&declined.id, None, &next_key("c")))
            .await,
        IntentStatus::Failed,
    );
    assert!(matches!(
        sandbox
            .capture(capture_req(
                &IntentId::new("pi_unknown").expect("id"),
                None,
                &next_key("c")
            ))
            .await,
        Err(GatewayError::NotFound(_))
    ));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_uncaptured_authorization_expires_into_canceled() {
    // 7 days at this scale: about 0.6 s.
    let sandbox = Sandbox::new(SandboxConfig {
        time_scale: 0.000_001,
        ..SandboxConfig::default()
    })
    .expect("sandbox");
    let hooks = receiver(&sandbox).await;
    let started = Instant::now();
    let intent = authorized(&sandbox).await;
    let expires = intent.authorization_expires_at.expect("an expiry");
    assert!(
        expires.since(intent.created_at) <= Duration::from_secs(5),
        "scaled"
    );
    let deadline = Instant::now() + Duration::from_secs(20);
    let canceled = loop {
        let now = sandbox.get_intent(&intent.id).await.expect("read");
        if now.status != IntentStatus::RequiresCapture {
            break now;
        }
        assert!(Instant::now() < deadline, "never expired");
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    assert!(
        started.elapsed() >= Duration::from_millis(500),
        "not before its lifetime"
    );
    assert_eq!(canceled.status, IntentStatus::Canceled);
    assert_eq!(
        (canceled.amount_capturable, canceled.amount_received),
        (0, 0)
    );
    assert_conflict(
        sandbox
            .capture(capture_req(&intent.id, None, &next_key("c")))
            .await,
        IntentStatus::Canceled,
    );
    assert!(sandbox.wait_idle(IDLE).await);
    let events = events_of(&hooks, &intent.id).await;
    assert_eq!(
        events.last(),
        Some(&(EventKind::Canceled, 3, IntentStatus::Canceled)),
        "{events:?}"
    );
    assert_eq!(events.len(), 3, "canceled once: {events:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_authorization_expires_when_the_sandbox_clock_passes_its_expiry() {
    let clock = Arc::new(ManualClock::new(Timestamp::from_millis(1_000_000)));
    let sandbox = Sandbox::with_clock(SandboxConfig::default(), clock.clone()).expect("sandbox");
    let intent = authorized(&sandbox).await;
    assert_eq!(
        intent.authorization_expires_at,
        Some(clock.now().plus(WEEK))
    );
    clock.advance(WEEK - Duration::from_millis(1));
    let still = sandbox.get_intent(&intent.id).await.expect("read");
    assert_eq!(still.status, IntentStatus::RequiresCapture);
    clock.advance(Duration::from_millis(1));
    let listed = sandbox.intents();
    assert_eq!(
        listed[0].status,
        IntentStatus::Canceled,
        "the list sees it too"
    );
    assert_conflict(
        sandbox
            .capture(capture_req(&intent.id, None, &next_key("c")))
            .await,
        IntentStatus::Canceled,
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn slow_cards_with_manual_capture_are_authorized_after_their_delay() {
    let sandbox = Sandbox::new(SandboxConfig {
        slow_delay: Duration::from_millis(50),
        confirm_timeout: Duration::from_millis(50),
        ..SandboxConfig::default()
    })
    .expect("sandbox");
    let slow = create(&sandbox, numbers::SUCCEEDS_SLOWLY, CaptureMethod::Manual).await;
    let processing = sandbox.confirm_intent(&slow.id).await.expect("confirm");
    assert_eq!(processing.status, IntentStatus::Processing);
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let now = sandbox.get_intent(&slow.id).await.expect("read");
        if now.status == IntentStatus::RequiresCapture {
            assert_eq!(now.amount_capturable, 10_000);
            assert!(now.authorization_expires_at.is_some());
            break;
        }
        assert_eq!(now.status, IntentStatus::Processing);
        assert!(Instant::now() < deadline, "never authorized");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let never = create(&sandbox, numbers::NEVER_ANSWERS, CaptureMethod::Manual).await;
    assert!(matches!(
        sandbox.confirm_intent(&never.id).await,
        Err(GatewayError::Timeout)
    ));
    assert_eq!(
        sandbox.get_intent(&never.id).await.expect("read").status,
        IntentStatus::Processing
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn authorizations_are_never_evicted() {
    let sandbox = Sandbox::new(SandboxConfig {
        max_intents: 1,
        ..SandboxConfig::default()
    })
    .expect("sandbox");
    let intent = authorized(&sandbox).await;
    assert!(sandbox.wait_idle(IDLE).await);
    let refused = sandbox
        .create_intent(NewIntent {
            amount: krw(1),
            payment_method: numbers::SUCCEEDS.into(),
            capture_method: CaptureMethod::Automatic,
            metadata: BTreeMap::new(),
            idempotency_key: next_key("create"),
        })
        .await;
    assert!(
        matches!(refused, Err(GatewayError::Unavailable(_))),
        "{refused:?}"
    );
    sandbox
        .capture(capture_req(&intent.id, None, "cap"))
        .await
        .expect("still there to capture");
    // Captured (settled): now it may go, and its capture key with it.
    sandbox
        .create_intent(NewIntent {
            amount: krw(1),
            payment_method: numbers::SUCCEEDS.into(),
            capture_method: CaptureMethod::Automatic,
            metadata: BTreeMap::new(),
            idempotency_key: next_key("create"),
        })
        .await
        .expect("room once it is settled");
    assert!(matches!(
        sandbox.capture(capture_req(&intent.id, None, "cap")).await,
        Err(GatewayError::NotFound(_))
    ));
}

// ---------------------------------------------------------------------------------------
// Over HTTP
// ---------------------------------------------------------------------------------------

struct Api {
    http: reqwest::Client,
    base: String,
    sandbox: Sandbox,
    server: tokio::task::JoinHandle<std::io::Result<()>>,
}

impl Drop for Api {
    fn drop(&mut self) {
        self.server.abort();
    }
}

async fn served() -> Api {
    let sandbox = Sandbox::new(SandboxConfig::default()).expect("sandbox");
    let (addr, server) = http::serve(sandbox.clone(), key(), "127.0.0.1:0".parse().expect("addr"))
        .await
        .expect("serve");
    Api {
        http: reqwest::Client::new(),
        base: format!("http://{addr}"),
        sandbox,
        server,
    }
}

impl Api {
    async fn post(&self, path: &str, body: &Value, key: Option<&str>) -> (u16, Value) {
        let mut req = self
            .http
            .post(format!("{}{path}", self.base))
            .bearer_auth(KEY)
            .header("content-type", "application/json")
            .body(serde_json::to_vec(body).expect("JSON"));
        if let Some(k) = key {
            req = req.header("idempotency-key", k);
        }
        let resp = req.send().await.expect("the API answers");
        let status = resp.status().as_u16();
        let text = resp.text().await.expect("a body");
        (
            status,
            serde_json::from_str(&text).unwrap_or(Value::String(text)),
        )
    }

    /// A manual intent created and confirmed over HTTP: its id.
    async fn authorized(&self, amount_minor: i64) -> String {
        let (status, created) = self
            .post(
                "/v1/payment_intents",
                &json!({
                    "amount_minor": amount_minor,
                    "currency": "KRW",
                    "payment_method": numbers::SUCCEEDS,
                    "capture_method": "manual",
                }),
                None,
            )
            .await;
        assert_eq!(status, 200, "{created}");
        assert_eq!(created["capture_method"], "manual");
        let id = created["id"].as_str().expect("an id").to_owned();
        let (status, confirmed) = self
            .post(
                &format!("/v1/payment_intents/{id}/confirm"),
                &json!({}),
                None,
            )
            .await;
        assert_eq!(status, 200, "{confirmed}");
        assert_eq!(confirmed["status"], "requires_capture");
        assert_eq!(confirmed["amount_capturable"], amount_minor);
        assert!(
            confirmed["authorization_expires_at"].is_i64(),
            "{confirmed}"
        );
        id
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn capture_over_http_is_idempotent_per_key() {
    let api = served().await;
    let id = api.authorized(20_000).await;
    let path = format!("/v1/payment_intents/{id}/capture");
    let (status, bad) = api
        .post(&path, &json!({"amount_minor": 0}), Some("k"))
        .await;
    assert_eq!(
        (status, &bad["error"]["type"]),
        (400, &json!("invalid_request"))
    );
    let (status, bad) = api.post(&path, &json!({"amount": 5}), Some("k")).await;
    assert_eq!(status, 422, "unknown fields are refused: {bad}");
    let (status, captured) = api
        .post(&path, &json!({"amount_minor": 15_000}), Some("k"))
        .await;
    assert_eq!(status, 200, "{captured}");
    assert_eq!(captured["status"], "succeeded");
    assert_eq!(captured["amount_received"], 15_000);
    assert_eq!(captured["amount_capturable"], 0);
    let (status, again) = api
        .post(&path, &json!({"amount_minor": 15_000}), Some("k"))
        .await;
    assert_eq!(
        (status, &again),
        (200, &captured),
        "the same key: the same capture"
    );
    let (status, reused) = api.post(&path, &json!({}), Some("k")).await;
    assert_eq!(
        (status, &reused["error"]["type"]),
        (422, &json!("idempotency_key_reused"))
    );
    let (status, twice) = api.post(&path, &json!({}), Some("other")).await;
    assert_eq!(
        (status, &twice["error"]["type"]),
        (409, &json!("invalid_state"))
    );
    assert_eq!(
        twice["error"]["gateway_error"]["detail"]["status"],
        "succeeded"
    );
    let (status, too_much) = api
        .post(
            &format!("/v1/payment_intents/{id}/refunds"),
            &json!({"amount_minor": 15_001}),
            None,
        )
        .await;
    assert_eq!(
        status, 400,
        "refunds are bounded by the capture: {too_much}"
    );
    let (status, refund) = api
        .post(
            &format!("/v1/payment_intents/{id}/refunds"),
            &json!({}),
            None,
        )
        .await;
    assert_eq!(status, 200, "{refund}");
    assert_eq!(refund["amount"]["amount_minor"], 15_000);
    let intent = api
        .sandbox
        .get_intent(&IntentId::new(id).expect("id"))
        .await
        .expect("read");
    assert_eq!(
        (intent.amount_received, intent.amount_refunded),
        (15_000, 15_000)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cancel_over_http_voids_an_authorization() {
    let api = served().await;
    let id = api.authorized(5_000).await;
    let (status, voided) = api
        .post(
            &format!("/v1/payment_intents/{id}/cancel"),
            &json!({}),
            None,
        )
        .await;
    assert_eq!((status, &voided["status"]), (200, &json!("canceled")));
    assert_eq!(voided["amount_capturable"], 0);
    let (status, conflict) = api
        .post(
            &format!("/v1/payment_intents/{id}/capture"),
            &json!({}),
            None,
        )
        .await;
    assert_eq!(status, 409, "{conflict}");
    assert_eq!(
        conflict["error"]["gateway_error"]["detail"]["status"],
        "canceled"
    );
    let (status, bad) = api
        .post(
            "/v1/payment_intents",
            &json!({
                "amount_minor": 1,
                "currency": "KRW",
                "payment_method": numbers::SUCCEEDS,
                "capture_method": "later",
            }),
            None,
        )
        .await;
    assert_eq!(status, 422, "an unknown capture method is refused: {bad}");
    assert_eq!(api.sandbox.intents().len(), 1, "nothing created");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_http_gateway_captures_and_voids() {
    let api = served().await;
    let gw = HttpGateway::new(&api.base, key(), Duration::from_secs(5)).expect("client");
    let intent = authorized(&gw).await;
    assert_eq!(intent.capture_method, CaptureMethod::Manual);
    let captured = gw
        .capture(capture_req(&intent.id, Some(4_000), "k1"))
        .await
        .expect("capture");
    assert_eq!(
        (captured.status, captured.amount_received),
        (IntentStatus::Succeeded, 4_000)
    );
    assert_eq!(
        gw.capture(capture_req(&intent.id, Some(4_000), "k1"))
            .await
            .expect("repeat"),
        captured
    );
    assert!(matches!(
        gw.capture(capture_req(&intent.id, None, "k1")).await,
        Err(GatewayError::KeyReused)
    ));
    assert_conflict(
        gw.capture(capture_req(&intent.id, None, "k2")).await,
        IntentStatus::Succeeded,
    );
    assert_conflict(gw.void(&intent.id).await, IntentStatus::Succeeded);

    let other = authorized(&gw).await;
    let voided = gw.void(&other.id).await.expect("void");
    assert_eq!(voided.status, IntentStatus::Canceled);
    assert_conflict(
        gw.capture(capture_req(&other.id, None, "k3")).await,
        IntentStatus::Canceled,
    );
    assert_eq!(
        api.sandbox.get_intent(&other.id).await.expect("read"),
        voided,
        "the served sandbox agrees"
    );
}
