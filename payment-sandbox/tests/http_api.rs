//! The sandbox's REST API (`payment_sandbox::http`), served on a free port and called with
//! `reqwest`: idempotency keys, validation (400 and nothing created), the state machine's
//! conflicts (409), refunds that never exceed the amount, 404s, webhook-endpoint validation,
//! delivery counters and the provider timeout (504).
//!
//! What the API created is checked on the test's own `Sandbox` handle (a clone shares the
//! served sandbox's intents and refunds).

use std::time::{Duration, Instant};

use payment_sandbox::cards::numbers;
use payment_sandbox::{Sandbox, SandboxConfig};
use reqwest::Method;
use serde_json::{Value, json};
use wiremock::matchers::method;
use wiremock::{Mock, MockServer, ResponseTemplate};

/// A sandbox served on `127.0.0.1:<free port>`, with a handle on the same sandbox.
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

/// The API key of the served sandboxes.
const KEY: &str = "sk_test_http_api_tests_0123456789abcdef";

async fn start(config: SandboxConfig) -> Api {
    let sandbox = Sandbox::new(config).expect("sandbox");
    let key = payment_sandbox::auth::ApiKey::new(KEY).expect("a valid key");
    let (addr, server) =
        payment_sandbox::http::serve(sandbox.clone(), key, "127.0.0.1:0".parse().expect("addr"))
            .await
            .expect("the API binds");
    Api {
        http: reqwest::Client::new(),
        base: format!("http://{addr}"),
        sandbox,
        server,
    }
}

async fn api() -> Api {
    start(SandboxConfig::default()).await
}

impl Api {
    /// Sends a request (a JSON body when given) and returns the status and the JSON answer.
    async fn send(
        &self,
        method: Method,
        path: &str,
        body: Option<&Value>,
        key: Option<&str>,
    ) -> (u16, Value) {
        let mut req = self
            .http
            .request(method, format!("{}{path}", self.base))
            .bearer_auth(KEY);
        if let Some(body) = body {
            req = req
                .header("content-type", "application/json")
                .body(serde_json::to_vec(body).expect("JSON"));
        }
        if let Some(key) = key {
            req = req.header("idempotency-key", key);
        }
        let resp = req.send().await.expect("the API answers");
        let status = resp.status().as_u16();
        let bytes = resp.bytes().await.expect("the body is read");
        let json = serde_json::from_slice(&bytes).unwrap_or_else(|e| {
            panic!(
                "{path} answered {status} with a body that is not JSON ({e}): {}",
                String::from_utf8_lossy(&bytes)
            )
        });
        (status, json)
    }

    async fn get(&self, path: &str) -> (u16, Value) {
        self.send(Method::GET, path, None, None).await
    }

    async fn post(&self, path: &str, body: &Value, key: Option<&str>) -> (u16, Value) {
        self.send(Method::POST, path, Some(body), key).await
    }

    async fn create(&self, body: &Value, key: Option<&str>) -> (u16, Value) {
        self.post("/v1/payment_intents", body, key).await
    }

    /// Creates an intent that must be accepted, and returns it.
    async fn created(&self, amount_minor: i64, card: &str) -> Value {
        let (status, intent) = self.create(&intent_body(amount_minor, card), None).await;
        assert_eq!(status, 200, "{intent}");
        assert_eq!(intent["status"], "requires_confirmation");
        intent
    }

    async fn confirm(&self, id: &str) -> (u16, Value) {
        self.post(
            &format!("/v1/payment_intents/{id}/confirm"),
            &json!({}),
            None,
        )
        .await
    }

    async fn cancel(&self, id: &str) -> (u16, Value) {
        self.post(
            &format!("/v1/payment_intents/{id}/cancel"),
            &json!({}),
            None,
        )
        .await
    }

    async fn refund(&self, id: &str, body: &Value, key: Option<&str>) -> (u16, Value) {
        self.post(&format!("/v1/payment_intents/{id}/refunds"), body, key)
            .await
    }

    async fn intent(&self, id: &str) -> Value {
        let (status, intent) = self.get(&format!("/v1/payment_intents/{id}")).await;
        assert_eq!(status, 200, "{intent}");
        intent
    }

    /// A paid intent of `amount_minor` KRW.
    async fn paid(&self, amount_minor: i64) -> String {
        let id = id_of(&self.created(amount_minor, numbers::SUCCEEDS).await);
        let (status, intent) = self.confirm(&id).await;
        assert_eq!((status, &intent["status"]), (200, &json!("succeeded")));
        id
    }
}

fn intent_body(amount_minor: i64, card: &str) -> Value {
    json!({
        "amount_minor": amount_minor,
        "currency": "KRW",
        "payment_method": card,
        "metadata": {"order": "o-1"},
    })
}

fn id_of(v: &Value) -> String {
    v["id"]
        .as_str()
        .unwrap_or_else(|| panic!("no id in {v}"))
        .to_owned()
}

/// Asserts an error answer: its status and `error.type`.
fn assert_error(answer: &(u16, Value), status: u16, kind: &str) {
    assert_eq!(answer.0, status, "{}", answer.1);
    assert_eq!(
        answer.1["error"]["type"], kind,
        "error type of {}",
        answer.1
    );
    assert!(
        answer.1["error"]["message"].is_string(),
        "an error carries a message: {}",
        answer.1
    );
}

// ---------------------------------------------------------------------------------------
// Creation and idempotency
// ---------------------------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_repeated_creation_with_the_same_key_returns_the_same_intent() {
    let api = api().await;
    let body = intent_body(15_000, numbers::SUCCEEDS);

    let first = api.create(&body, Some("order-1")).await;
    assert_eq!(first.0, 200, "{}", first.1);
    assert_eq!(first.1["status"], "requires_confirmation");
    assert_eq!(
        first.1["amount"],
        json!({"amount_minor": 15_000, "currency": "KRW"})
    );
    assert_eq!(first.1["metadata"], json!({"order": "o-1"}));
    let again = api.create(&body, Some("order-1")).await;
    assert_eq!(again, first, "same key, same body: the same answer");

    let other = api
        .create(&intent_body(16_000, numbers::SUCCEEDS), Some("order-1"))
        .await;
    assert_error(&other, 422, "idempotency_key_reused");

    let intents = api.sandbox.intents();
    assert_eq!(intents.len(), 1, "{intents:?}");
    assert_eq!(intents[0].id.as_str(), id_of(&first.1));
    assert_eq!(
        intents[0].amount.amount_minor, 15_000,
        "the reuse changed nothing"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn creations_without_a_key_are_distinct() {
    let api = api().await;
    let body = intent_body(15_000, numbers::SUCCEEDS);
    let a = api.create(&body, None).await;
    let b = api.create(&body, None).await;
    assert_eq!((a.0, b.0), (200, 200));
    assert_ne!(id_of(&a.1), id_of(&b.1), "no key: two intents");
    assert_eq!(api.sandbox.intents().len(), 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn invalid_creations_are_400_and_create_nothing() {
    let api = api().await;
    let valid = intent_body(15_000, numbers::SUCCEEDS);
    let with = |field: &str, value: Value| {
        let mut body = valid.clone();
        body[field] = value;
        body
    };
    let cases = [
        ("lower-case currency", with("currency", json!("usd"))),
        ("unsupported currency", with("currency", json!("XXX"))),
        ("zero amount", with("amount_minor", json!(0))),
        ("negative amount", with("amount_minor", json!(-500))),
        ("short card", with("payment_method", json!("4242"))),
        (
            "card with letters",
            with("payment_method", json!("424242424242424a")),
        ),
        (
            "card failing the Luhn check",
            with("payment_method", json!("4242424242424241")),
        ),
    ];
    for (i, (what, body)) in cases.iter().enumerate() {
        // With a key: a rejected request must not burn it either.
        let key = format!("invalid-{i}");
        let answer = api.create(body, Some(&key)).await;
        assert_eq!(answer.0, 400, "{what}: {}", answer.1);
        assert_error(&answer, 400, "invalid_request");
        assert!(api.sandbox.intents().is_empty(), "{what} created an intent");
    }
    assert!(api.sandbox.intents().is_empty());

    // The keys of rejected requests are still free.
    let answer = api.create(&valid, Some("invalid-0")).await;
    assert_eq!(answer.0, 200, "{}", answer.1);
    assert_eq!(api.sandbox.intents().len(), 1);
}

// ---------------------------------------------------------------------------------------
// Confirmation
// ---------------------------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn confirmation_outcomes_follow_the_test_card() {
    let api = api().await;

    let ok = id_of(&api.created(15_000, numbers::SUCCEEDS).await);
    let (status, intent) = api.confirm(&ok).await;
    assert_eq!(status, 200, "{intent}");
    assert_eq!(intent["status"], "succeeded");
    assert!(intent["failure"].is_null());
    assert_eq!(api.intent(&ok).await, intent, "GET reads the same");
    let (status, again) = api.confirm(&ok).await;
    assert_eq!(
        (status, &again["status"]),
        (200, &json!("succeeded")),
        "a repeat is harmless"
    );

    let declined = id_of(&api.created(15_000, numbers::DECLINED).await);
    let (status, intent) = api.confirm(&declined).await;
    assert_eq!(status, 200, "{intent}");
    assert_eq!(intent["status"], "failed");
    assert_eq!(intent["failure"]["code"], "card_declined");
    assert_eq!(api.intent(&declined).await["status"], "failed");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_card_that_never_answers_times_out_with_504_and_stays_processing() {
    // The 15 s confirm timeout, scaled to 150 ms.
    let config = SandboxConfig {
        time_scale: 0.01,
        ..SandboxConfig::default()
    };
    let waited = config.confirm_timeout.mul_f64(config.time_scale);
    let api = start(config).await;
    let id = id_of(&api.created(15_000, numbers::NEVER_ANSWERS).await);

    let started = Instant::now();
    let answer = api.confirm(&id).await;
    let took = started.elapsed();
    assert_error(&answer, 504, "timeout");
    assert!(
        took >= waited,
        "answered after {took:?}, before the {waited:?} timeout"
    );
    assert!(
        took < Duration::from_secs(10),
        "the timeout was not scaled: {took:?}"
    );

    assert_eq!(api.intent(&id).await["status"], "processing");
    assert_eq!(
        api.sandbox.intents()[0].status,
        ticket_core::gateway::IntentStatus::Processing
    );
}

// ---------------------------------------------------------------------------------------
// Refunds
// ---------------------------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn refunds_never_exceed_the_amount() {
    let api = api().await;
    let id = api.paid(1_000).await;

    let (status, first) = api.refund(&id, &json!({"amount_minor": 100}), None).await;
    assert_eq!(status, 200, "{first}");
    assert_eq!(
        first["amount"],
        json!({"amount_minor": 100, "currency": "KRW"})
    );
    assert_eq!(first["intent"], json!(id));

    let too_much = api.refund(&id, &json!({"amount_minor": 901}), None).await;
    assert_error(&too_much, 400, "invalid_request");
    let zero = api.refund(&id, &json!({"amount_minor": 0}), None).await;
    assert_error(&zero, 400, "invalid_request");
    assert_eq!(
        api.intent(&id).await["amount_refunded"],
        100,
        "nothing changed"
    );

    let (status, rest) = api.refund(&id, &json!({"reason": "the rest"}), None).await;
    assert_eq!(status, 200, "{rest}");
    assert_eq!(rest["amount"]["amount_minor"], 900);
    let intent = api.intent(&id).await;
    assert_eq!(intent["amount_refunded"], intent["amount"]["amount_minor"]);
    assert_eq!(intent["status"], "succeeded");

    let more = api.refund(&id, &json!({}), None).await;
    assert_error(&more, 409, "invalid_state");
    let one = api.refund(&id, &json!({"amount_minor": 1}), None).await;
    assert_error(&one, 409, "invalid_state");
    assert_eq!(api.sandbox.refunds().len(), 2);
    assert_eq!(api.intent(&id).await["amount_refunded"], 1_000);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_repeated_refund_key_returns_the_first_refund() {
    let api = api().await;
    let id = api.paid(1_000).await;
    let body = json!({"amount_minor": 300, "reason": "seat changed"});

    let first = api.refund(&id, &body, Some("refund-1")).await;
    assert_eq!(first.0, 200, "{}", first.1);
    let again = api.refund(&id, &body, Some("refund-1")).await;
    assert_eq!(again, first, "the same refund");
    assert_eq!(
        api.intent(&id).await["amount_refunded"],
        300,
        "refunded once"
    );
    assert_eq!(api.sandbox.refunds().len(), 1);

    let other = api
        .refund(&id, &json!({"amount_minor": 200}), Some("refund-1"))
        .await;
    assert_error(&other, 422, "idempotency_key_reused");
    assert_eq!(api.intent(&id).await["amount_refunded"], 300);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn refunding_an_unpaid_intent_is_a_conflict() {
    let api = api().await;
    let id = id_of(&api.created(1_000, numbers::SUCCEEDS).await);
    let answer = api.refund(&id, &json!({}), None).await;
    assert_error(&answer, 409, "invalid_state");
    assert!(api.sandbox.refunds().is_empty());
}

// ---------------------------------------------------------------------------------------
// Cancellation
// ---------------------------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cancel_is_only_possible_before_confirmation() {
    let api = api().await;

    let paid = api.paid(1_000).await;
    let answer = api.cancel(&paid).await;
    assert_error(&answer, 409, "invalid_state");
    assert_eq!(api.intent(&paid).await["status"], "succeeded");

    let unconfirmed = id_of(&api.created(1_000, numbers::SUCCEEDS).await);
    let (status, canceled) = api.cancel(&unconfirmed).await;
    assert_eq!((status, &canceled["status"]), (200, &json!("canceled")));
    let (status, again) = api.cancel(&unconfirmed).await;
    assert_eq!(
        (status, &again["status"]),
        (200, &json!("canceled")),
        "idempotent"
    );
    let answer = api.confirm(&unconfirmed).await;
    assert_error(&answer, 409, "invalid_state");
    assert_eq!(api.intent(&unconfirmed).await["status"], "canceled");
}

// ---------------------------------------------------------------------------------------
// Unknown resources
// ---------------------------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unknown_intents_and_endpoints_are_404() {
    let api = api().await;
    assert_error(
        &api.get("/v1/payment_intents/pi_unknown").await,
        404,
        "not_found",
    );
    assert_error(&api.confirm("pi_unknown").await, 404, "not_found");
    assert_error(&api.cancel("pi_unknown").await, 404, "not_found");
    assert_error(
        &api.refund("pi_unknown", &json!({}), None).await,
        404,
        "not_found",
    );
    assert_error(
        &api.get("/v1/webhook_endpoints/ep_unknown").await,
        404,
        "not_found",
    );
    assert_error(
        &api.get("/v1/webhook_endpoints/ep_unknown/deliveries").await,
        404,
        "not_found",
    );
    assert_error(
        &api.post(
            "/v1/webhook_endpoints/ep_unknown/rotate_secret",
            &json!({}),
            None,
        )
        .await,
        404,
        "not_found",
    );
    assert!(api.sandbox.intents().is_empty());
}

// ---------------------------------------------------------------------------------------
// Webhook endpoints and delivery counters
// ---------------------------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn invalid_webhook_endpoints_are_400() {
    let api = api().await;
    for (what, body) in [
        ("ftp URL", json!({"url": "ftp://x"})),
        ("not a URL", json!({"url": "not a url"})),
        (
            "probability above 1",
            json!({"url": "http://127.0.0.1:9/hook", "faults": {"duplicate_probability": 2.0}}),
        ),
        (
            "negative probability",
            json!({"url": "http://127.0.0.1:9/hook", "faults": {"reorder_probability": -0.1}}),
        ),
    ] {
        let answer = api.post("/v1/webhook_endpoints", &body, None).await;
        assert_eq!(answer.0, 400, "{what}: {}", answer.1);
        assert_error(&answer, 400, "invalid_request");
    }
    assert_eq!(api.sandbox.delivery_stats().events, 0);

    let (status, ep) = api
        .post(
            "/v1/webhook_endpoints",
            &json!({"url": "http://127.0.0.1:9/hook"}),
            None,
        )
        .await;
    assert_eq!(status, 201, "{ep}");
    assert!(
        ep["verification_key"]
            .as_str()
            .is_some_and(|k| k.starts_with("whsec_"))
    );
    assert_eq!(ep["enabled"], true);
    let id = id_of(&ep);
    assert_eq!(
        api.get(&format!("/v1/webhook_endpoints/{id}")).await,
        (200, ep)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn delivery_stats_and_the_log_are_served_as_json() {
    let receiver = MockServer::start().await;
    Mock::given(method("POST"))
        .respond_with(ResponseTemplate::new(200))
        .expect(3)
        .mount(&receiver)
        .await;
    let api = api().await;

    let (status, stats) = api.get("/v1/deliveries/stats").await;
    assert_eq!(status, 200, "{stats}");
    assert_eq!(
        stats,
        json!({"events": 0, "copies": 0, "delivered": 0, "abandoned": 0, "attempts": 0, "held_back": 0})
    );

    let (status, ep) = api
        .post(
            "/v1/webhook_endpoints",
            &json!({"url": format!("{}/hook", receiver.uri()), "signing": "asymmetric"}),
            None,
        )
        .await;
    assert_eq!(status, 201, "{ep}");
    assert!(
        ep["verification_key"]
            .as_str()
            .is_some_and(|k| k.starts_with("whpk_"))
    );
    let ep_id = id_of(&ep);

    // processing + succeeded, then charge.refunded.
    let id = api.paid(2_000).await;
    let (status, _) = api.refund(&id, &json!({"amount_minor": 500}), None).await;
    assert_eq!(status, 200);
    assert!(api.sandbox.wait_idle(Duration::from_secs(30)).await);
    receiver.verify().await;

    let (status, stats) = api.get("/v1/deliveries/stats").await;
    assert_eq!(status, 200);
    assert_eq!(
        stats,
        json!({"events": 3, "copies": 3, "delivered": 3, "abandoned": 0, "attempts": 3, "held_back": 0})
    );

    let (status, log) = api
        .get(&format!("/v1/webhook_endpoints/{ep_id}/deliveries"))
        .await;
    assert_eq!(status, 200, "{log}");
    let log = log.as_array().expect("the log is a JSON array");
    assert_eq!(log.len(), 3);
    let mut types: Vec<&str> = log
        .iter()
        .map(|a| {
            assert_eq!(a["outcome"], json!({"kind": "delivered", "status": 200}));
            assert_eq!(a["endpoint"], json!(ep_id));
            assert_eq!(a["intent"], json!(id));
            a["event_type"].as_str().expect("event type")
        })
        .collect();
    types.sort_unstable();
    assert_eq!(
        types,
        [
            "charge.refunded",
            "payment_intent.processing",
            "payment_intent.succeeded"
        ]
    );

    let (status, rotated) = api
        .post(
            &format!("/v1/webhook_endpoints/{ep_id}/rotate_secret"),
            &json!({}),
            None,
        )
        .await;
    assert_eq!(status, 200, "{rotated}");
    assert_ne!(rotated["verification_key"], ep["verification_key"]);
}
