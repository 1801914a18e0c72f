//! The hosted payment page: checkout sessions created over the API (and through
//! `HttpGateway`), paid by a "buyer" posting the page's form with `reqwest` (redirects not
//! followed, so the `303` to the shop's `return_url` is seen as such).

use std::collections::BTreeMap;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use payment_sandbox::auth::ApiKey;
use payment_sandbox::cards::{CHALLENGE_CODE, numbers};
use payment_sandbox::client::HttpGateway;
use payment_sandbox::delivery::EndpointConfig;
use payment_sandbox::{Sandbox, SandboxConfig, http};
use serde_json::{Value, json};
use ticket_core::gateway::{
    CaptureMethod, CheckoutSession, CheckoutSessionId, CheckoutSessionStatus, EventKind,
    GatewayError, IntentStatus, NewCheckoutSession, PaymentEvent, PaymentGateway, PaymentIntent,
};
use ticket_core::model::money::{Currency, Money};
use ticket_core::{Clock, SystemClock, Timestamp};
use wiremock::matchers::method;
use wiremock::{Mock, MockServer, ResponseTemplate};

const KEY: &str = "sk_test_hosted_page_tests_0123456789abcdef";
const RETURN: &str = "https://shop.test/orders/42?step=paid";
const IDLE: Duration = Duration::from_secs(30);

fn key() -> ApiKey {
    ApiKey::new(KEY).expect("a valid key")
}

/// A sandbox served on a free port whose `public_url` is that address.
struct Served {
    sandbox: Sandbox,
    base: String,
    /// The buyer's browser: no API key, redirects not followed.
    browser: reqwest::Client,
    /// The shop's server: the API key, JSON.
    shop: reqwest::Client,
    server: tokio::task::JoinHandle<std::io::Result<()>>,
}

impl Drop for Served {
    fn drop(&mut self) {
        self.server.abort();
    }
}

async fn served_with(config: SandboxConfig) -> Served {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let base = format!("http://{}", listener.local_addr().expect("addr"));
    let sandbox = Sandbox::new(SandboxConfig {
        public_url: base.clone(),
        ..config
    })
    .expect("sandbox");
    let (_, server) =
        http::serve_on(sandbox.clone(), key(), listener, std::future::pending()).expect("serve");
    Served {
        sandbox,
        base,
        browser: reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .expect("client"),
        shop: reqwest::Client::new(),
        server,
    }
}

async fn served() -> Served {
    served_with(SandboxConfig::default()).await
}

fn now_ms() -> i64 {
    i64::try_from(
        SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .expect("after 1970")
            .as_millis(),
    )
    .expect("fits")
}

fn session_body(capture: &str) -> Value {
    json!({
        "amount_minor": 15_000,
        "currency": "KRW",
        "capture_method": capture,
        "return_url": RETURN,
        "description": "2 ticket(s), Hall A row 3",
        "metadata": {"ticketrush_hold": "h-1"},
        "expires_at_ms": now_ms() + 15 * 60 * 1_000,
    })
}

/// `application/x-www-form-urlencoded` of `fields`.
fn form(fields: &[(&str, &str)]) -> String {
    fields
        .iter()
        .map(|(k, v)| format!("{}={}", enc(k), enc(v)))
        .collect::<Vec<_>>()
        .join("&")
}

fn enc(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                (b as char).to_string()
            }
            b' ' => "+".to_owned(),
            b => format!("%{b:02X}"),
        })
        .collect()
}

fn card(number: &str) -> String {
    form(&[
        ("card_number", number),
        ("expiry", "12/34"),
        ("cvc", "123"),
        ("name", "Kim Min-ji"),
    ])
}

/// What the browser got: status, `Location`, body.
#[derive(Debug)]
struct Answer {
    status: u16,
    location: Option<String>,
    body: String,
}

impl Served {
    async fn api(&self, path: &str, body: Option<&Value>, key: Option<&str>) -> (u16, Value) {
        let url = format!("{}{path}", self.base);
        let mut req = match body {
            Some(b) => self
                .shop
                .post(url)
                .header("content-type", "application/json")
                .body(serde_json::to_vec(b).expect("JSON")),
            None => self.shop.get(url),
        }
        .bearer_auth(KEY);
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

    /// Opens a session over the API: its JSON.
    async fn open(&self, capture: &str) -> Value {
        let (status, session) = self
            .api("/v1/checkout_sessions", Some(&session_body(capture)), None)
            .await;
        assert_eq!(status, 200, "{session}");
        assert_eq!(session["status"], "open");
        session
    }

    async fn session(&self, id: &str) -> CheckoutSession {
        self.sandbox
            .get_checkout_session(&CheckoutSessionId::new(id).expect("id"))
            .await
            .expect("the session")
    }

    async fn intent_of(&self, session: &CheckoutSession) -> PaymentIntent {
        self.sandbox
            .get_intent(session.intent.as_ref().expect("an attempt"))
            .await
            .expect("the intent")
    }

    async fn browse(&self, req: reqwest::RequestBuilder) -> Answer {
        let resp = req.send().await.expect("the page answers");
        let status = resp.status().as_u16();
        let location = resp
            .headers()
            .get("location")
            .map(|v| v.to_str().expect("ASCII").to_owned());
        let body = resp.text().await.expect("a body");
        Answer {
            status,
            location,
            body,
        }
    }

    async fn get_page(&self, url: &str) -> Answer {
        self.browse(self.browser.get(url)).await
    }

    async fn post_page(&self, url: &str, body: String) -> Answer {
        self.browse(
            self.browser
                .post(url)
                .header("content-type", "application/x-www-form-urlencoded")
                .body(body),
        )
        .await
    }
}

fn url_of(session: &Value) -> String {
    session["url"].as_str().expect("a url").to_owned()
}

fn id_of(session: &Value) -> String {
    session["id"].as_str().expect("an id").to_owned()
}

#[track_caller]
fn assert_back_to_shop(answer: &Answer, id: &str, canceled: bool) {
    assert_eq!(answer.status, 303, "{}", answer.body);
    let expected = if canceled {
        format!("{RETURN}&session_id={id}&canceled=1")
    } else {
        format!("{RETURN}&session_id={id}")
    };
    assert_eq!(answer.location.as_deref(), Some(expected.as_str()));
}

// ---------------------------------------------------------------------------------------
// Paying
// ---------------------------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn paying_on_the_page_completes_the_session_and_sends_the_buyer_back() {
    let s = served().await;
    let session = s.open("automatic").await;
    let (id, url) = (id_of(&session), url_of(&session));
    assert_eq!(
        url,
        format!("{}/pay/{id}", s.base),
        "the page is under public_url"
    );
    assert!(session["intent"].is_null());

    let page = s.get_page(&url).await;
    assert_eq!(page.status, 200);
    assert!(page.body.contains("15,000 KRW"), "{}", page.body);
    assert!(page.body.contains("2 ticket(s), Hall A row 3"));
    assert!(page.body.contains("name=\"card_number\""));
    assert!(page.body.contains(&format!("/pay/{id}/cancel")));
    assert!(!page.body.contains("<script"), "no JavaScript");

    let paid = s.post_page(&url, card("4242 4242 4242 4242")).await;
    assert_back_to_shop(&paid, &id, false);
    let now = s.session(&id).await;
    assert_eq!(now.status, CheckoutSessionStatus::Complete);
    let intent = s.intent_of(&now).await;
    assert_eq!(intent.status, IntentStatus::Succeeded);
    assert_eq!(intent.amount_received, 15_000);
    assert_eq!(intent.capture_method, CaptureMethod::Automatic);
    assert_eq!(
        intent
            .checkout_session
            .as_ref()
            .map(CheckoutSessionId::as_str),
        Some(id.as_str())
    );
    assert_eq!(
        intent.metadata.get("ticketrush_hold").map(String::as_str),
        Some("h-1"),
        "the session's metadata"
    );
    assert_eq!(now.hold(), None, "h-1 is not a hold id; only copied");

    // Paid: the page says so and takes nothing more.
    let again = s.get_page(&url).await;
    assert_eq!(again.status, 200);
    assert!(again.body.contains("already paid"), "{}", again.body);
    let twice = s.post_page(&url, card(numbers::SUCCEEDS)).await;
    assert_eq!(twice.status, 200);
    assert!(twice.body.contains("already paid"));
    assert_eq!(s.sandbox.intents().len(), 1, "one payment only");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_manual_session_is_complete_once_the_card_is_authorized() {
    let s = served().await;
    let session = s.open("manual").await;
    let id = id_of(&session);
    let page = s.get_page(&url_of(&session)).await;
    assert!(page.body.contains("Authorize 15,000 KRW"), "{}", page.body);
    let paid = s
        .post_page(&url_of(&session), card(numbers::SUCCEEDS))
        .await;
    assert_back_to_shop(&paid, &id, false);
    let now = s.session(&id).await;
    assert_eq!(now.status, CheckoutSessionStatus::Complete);
    assert_eq!(now.capture_method, CaptureMethod::Manual);
    let intent = s.intent_of(&now).await;
    assert_eq!(intent.status, IntentStatus::RequiresCapture);
    assert_eq!(intent.amount_capturable, 15_000);
    assert_eq!(intent.amount_received, 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_declined_card_leaves_the_session_open_for_another() {
    let s = served().await;
    let hooks = MockServer::start().await;
    Mock::given(method("POST"))
        .respond_with(ResponseTemplate::new(204))
        .mount(&hooks)
        .await;
    s.sandbox
        .register_endpoint(EndpointConfig {
            url: format!("{}/hooks", hooks.uri()),
            ..EndpointConfig::default()
        })
        .expect("endpoint");
    let session = s.open("automatic").await;
    let (id, url) = (id_of(&session), url_of(&session));

    let declined = s.post_page(&url, card(numbers::DECLINED)).await;
    assert_eq!(declined.status, 402, "{}", declined.body);
    assert!(declined.body.contains("Your card was declined."));
    assert!(declined.body.contains("card_declined"));
    assert!(
        declined.body.contains("name=\"card_number\""),
        "the form again"
    );
    let open = s.session(&id).await;
    assert_eq!(open.status, CheckoutSessionStatus::Open);
    let first = s.intent_of(&open).await;
    assert_eq!(first.status, IntentStatus::Failed);
    assert_eq!(
        first
            .checkout_session
            .as_ref()
            .map(CheckoutSessionId::as_str),
        Some(id.as_str())
    );

    let paid = s.post_page(&url, card(numbers::SUCCEEDS)).await;
    assert_back_to_shop(&paid, &id, false);
    let done = s.session(&id).await;
    assert_eq!(done.status, CheckoutSessionStatus::Complete);
    assert_ne!(
        done.intent, open.intent,
        "the paying attempt is the session's intent"
    );
    assert_eq!(s.intent_of(&done).await.status, IntentStatus::Succeeded);
    assert_eq!(s.sandbox.intents().len(), 2);

    assert!(s.sandbox.wait_idle(IDLE).await);
    let kinds: Vec<(String, EventKind)> = hooks
        .received_requests()
        .await
        .unwrap_or_default()
        .iter()
        .map(|r| serde_json::from_slice::<PaymentEvent>(&r.body).expect("event"))
        .map(|e| (e.intent.id.to_string(), e.kind))
        .collect();
    let of = |intent: &PaymentIntent| {
        let mut k: Vec<EventKind> = kinds
            .iter()
            .filter(|(i, _)| *i == intent.id.as_str())
            .map(|(_, k)| *k)
            .collect();
        k.sort_by_key(|k| format!("{k:?}"));
        k
    };
    assert_eq!(
        of(&first),
        vec![EventKind::PaymentFailed, EventKind::Processing]
    );
    assert_eq!(
        of(&s.intent_of(&done).await),
        vec![EventKind::Processing, EventKind::Succeeded]
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_malformed_card_creates_nothing() {
    let s = served().await;
    let session = s.open("automatic").await;
    let url = url_of(&session);
    for body in [
        card("4242424242424241"),
        card("not a card"),
        form(&[("card_number", numbers::SUCCEEDS)]),
        form(&[
            ("card_number", numbers::SUCCEEDS),
            ("expiry", "13/30"),
            ("cvc", "123"),
            ("name", "A"),
        ]),
    ] {
        let answer = s.post_page(&url, body).await;
        assert_eq!(answer.status, 400, "{}", answer.body);
        assert!(
            !answer.body.contains("4242424242424241"),
            "a card number is never shown back"
        );
        assert!(answer.body.contains("class=\"error\""));
    }
    assert!(s.sandbox.intents().is_empty());
    assert_eq!(
        s.session(&id_of(&session)).await.status,
        CheckoutSessionStatus::Open
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_right_one_time_code_pays_a_challenged_card() {
    let s = served().await;
    let session = s.open("automatic").await;
    let (id, url) = (id_of(&session), url_of(&session));
    let asked = s.post_page(&url, card(numbers::REQUIRES_CHALLENGE)).await;
    assert_eq!(asked.status, 200, "{}", asked.body);
    assert!(asked.body.contains("one-time code"), "{}", asked.body);
    assert!(asked.body.contains(&format!("/pay/{id}/challenge")));
    let waiting = s.session(&id).await;
    assert_eq!(waiting.status, CheckoutSessionStatus::Open);
    let intent = s.intent_of(&waiting).await;
    assert_eq!(intent.status, IntentStatus::RequiresAction);
    // A reload shows the challenge again.
    assert!(s.get_page(&url).await.body.contains("one-time code"));

    let paid = s
        .post_page(
            &format!("{url}/challenge"),
            form(&[("code", CHALLENGE_CODE)]),
        )
        .await;
    assert_back_to_shop(&paid, &id, false);
    let done = s.session(&id).await;
    assert_eq!(done.status, CheckoutSessionStatus::Complete);
    assert_eq!(done.intent, waiting.intent, "the challenged attempt paid");
    assert_eq!(s.intent_of(&done).await.status, IntentStatus::Succeeded);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_wrong_one_time_code_fails_the_attempt_only() {
    let s = served().await;
    let session = s.open("manual").await;
    let (id, url) = (id_of(&session), url_of(&session));
    s.post_page(&url, card(numbers::REQUIRES_CHALLENGE)).await;
    let wrong = s
        .post_page(&format!("{url}/challenge"), form(&[("code", "000000")]))
        .await;
    assert_eq!(wrong.status, 402, "{}", wrong.body);
    assert!(wrong.body.contains("authentication_failed"));
    let open = s.session(&id).await;
    assert_eq!(open.status, CheckoutSessionStatus::Open);
    let failed = s.intent_of(&open).await;
    assert_eq!(failed.status, IntentStatus::Failed);
    assert_eq!(
        failed.failure.as_ref().map(|f| f.code.as_str()),
        Some("authentication_failed")
    );
    // No challenge is pending any more; another card pays.
    let late = s
        .post_page(
            &format!("{url}/challenge"),
            form(&[("code", CHALLENGE_CODE)]),
        )
        .await;
    assert_eq!(late.status, 409, "{}", late.body);
    let paid = s.post_page(&url, card(numbers::SUCCEEDS)).await;
    assert_back_to_shop(&paid, &id, false);
    assert_eq!(
        s.intent_of(&s.session(&id).await).await.status,
        IntentStatus::RequiresCapture
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_new_card_cancels_a_pending_challenge() {
    let s = served().await;
    let session = s.open("automatic").await;
    let (id, url) = (id_of(&session), url_of(&session));
    s.post_page(&url, card(numbers::REQUIRES_CHALLENGE)).await;
    let challenged = s.session(&id).await.intent.expect("an attempt");
    let paid = s.post_page(&url, card(numbers::SUCCEEDS)).await;
    assert_back_to_shop(&paid, &id, false);
    let left = s.sandbox.get_intent(&challenged).await.expect("kept");
    assert_eq!(left.status, IntentStatus::Canceled, "it can never charge");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_cancel_link_sends_the_buyer_back_and_leaves_the_session_open() {
    let s = served().await;
    let session = s.open("automatic").await;
    let (id, url) = (id_of(&session), url_of(&session));
    let back = s.get_page(&format!("{url}/cancel")).await;
    assert_back_to_shop(&back, &id, true);
    assert_eq!(s.session(&id).await.status, CheckoutSessionStatus::Open);
    let unknown = s
        .get_page(&format!("{}/pay/cs_unknown/cancel", s.base))
        .await;
    assert_eq!(unknown.status, 404);
    assert_eq!(
        s.get_page(&format!("{}/pay/cs_unknown", s.base))
            .await
            .status,
        404
    );
}

// ---------------------------------------------------------------------------------------
// Expiry
// ---------------------------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_expired_session_takes_no_payment() {
    let s = served().await;
    // Expired by its own time.
    let mut body = session_body("automatic");
    body["expires_at_ms"] = json!(now_ms() + 300);
    let (status, session) = s.api("/v1/checkout_sessions", Some(&body), None).await;
    assert_eq!(status, 200, "{session}");
    tokio::time::sleep(Duration::from_millis(400)).await;
    let (id, url) = (id_of(&session), url_of(&session));
    let page = s.get_page(&url).await;
    assert_eq!(page.status, 410, "{}", page.body);
    assert!(page.body.contains("expired"));
    let refused = s.post_page(&url, card(numbers::SUCCEEDS)).await;
    assert_eq!(refused.status, 410);
    assert_eq!(s.session(&id).await.status, CheckoutSessionStatus::Expired);

    // Expired by the shop.
    let session = s.open("automatic").await;
    let (id, url) = (id_of(&session), url_of(&session));
    let (status, expired) = s
        .api(
            &format!("/v1/checkout_sessions/{id}/expire"),
            Some(&json!({})),
            None,
        )
        .await;
    assert_eq!((status, &expired["status"]), (200, &json!("expired")));
    let (status, again) = s
        .api(
            &format!("/v1/checkout_sessions/{id}/expire"),
            Some(&json!({})),
            None,
        )
        .await;
    assert_eq!((status, &again), (200, &expired), "idempotent");
    assert_eq!(s.post_page(&url, card(numbers::SUCCEEDS)).await.status, 410);
    let challenge = s
        .post_page(
            &format!("{url}/challenge"),
            form(&[("code", CHALLENGE_CODE)]),
        )
        .await;
    assert_eq!(challenge.status, 410);
    assert!(s.sandbox.intents().is_empty(), "no payment was taken");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn expiring_cancels_a_pending_challenge() {
    let s = served().await;
    let session = s.open("automatic").await;
    let (id, url) = (id_of(&session), url_of(&session));
    s.post_page(&url, card(numbers::REQUIRES_CHALLENGE)).await;
    let pending = s.session(&id).await.intent.expect("an attempt");
    let expired = s
        .sandbox
        .expire_checkout_session(&CheckoutSessionId::new(id).expect("id"))
        .await
        .expect("expire");
    assert_eq!(expired.status, CheckoutSessionStatus::Expired);
    assert_eq!(
        s.sandbox.get_intent(&pending).await.expect("kept").status,
        IntentStatus::Canceled
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn expiring_a_complete_session_is_a_conflict_with_its_intent_status() {
    let s = served().await;
    let session = s.open("manual").await;
    let (id, url) = (id_of(&session), url_of(&session));
    assert_back_to_shop(
        &s.post_page(&url, card(numbers::SUCCEEDS)).await,
        &id,
        false,
    );
    let (status, conflict) = s
        .api(
            &format!("/v1/checkout_sessions/{id}/expire"),
            Some(&json!({})),
            None,
        )
        .await;
    assert_eq!(status, 409, "{conflict}");
    assert_eq!(
        conflict["error"]["gateway_error"]["detail"]["status"],
        "requires_capture"
    );
    let gw = HttpGateway::new(&s.base, key(), Duration::from_secs(5)).expect("client");
    match gw
        .expire_checkout_session(&CheckoutSessionId::new(id.clone()).expect("id"))
        .await
    {
        Err(GatewayError::Conflict { status, .. }) => {
            assert_eq!(status, IntentStatus::RequiresCapture);
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(s.session(&id).await.status, CheckoutSessionStatus::Complete);
}

// ---------------------------------------------------------------------------------------
// The API
// ---------------------------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn session_creation_is_idempotent_per_key() {
    let s = served().await;
    let body = session_body("automatic");
    let (status, first) = s.api("/v1/checkout_sessions", Some(&body), Some("k")).await;
    assert_eq!(status, 200, "{first}");
    let (status, again) = s.api("/v1/checkout_sessions", Some(&body), Some("k")).await;
    assert_eq!((status, &again), (200, &first));
    let mut other = body.clone();
    other["amount_minor"] = json!(16_000);
    let (status, reused) = s
        .api("/v1/checkout_sessions", Some(&other), Some("k"))
        .await;
    assert_eq!(
        (status, &reused["error"]["type"]),
        (422, &json!("idempotency_key_reused"))
    );
    let (status, read) = s
        .api(
            &format!("/v1/checkout_sessions/{}", id_of(&first)),
            None,
            None,
        )
        .await;
    assert_eq!((status, &read), (200, &first));
    assert_eq!(s.sandbox.checkout_sessions().len(), 1);
    let (status, unknown) = s.api("/v1/checkout_sessions/cs_nope", None, None).await;
    assert_eq!(status, 404, "{unknown}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn invalid_sessions_are_400_and_create_nothing() {
    let s = served().await;
    let long = format!("https://shop.test/{}", "x".repeat(2_100));
    let mut cases: Vec<(&str, Value)> = Vec::new();
    for bad in [
        "/relative",
        "javascript:alert(1)",
        "https://user:pw@shop.test/x",
        "https://shop.test/x#frag",
        "",
        long.as_str(),
    ] {
        cases.push(("return_url", json!(bad)));
    }
    cases.push(("description", json!("x".repeat(501))));
    cases.push(("amount_minor", json!(0)));
    cases.push(("currency", json!("XXX")));
    for (field, value) in cases {
        let mut body = session_body("automatic");
        body[field] = value;
        let (status, answer) = s
            .api("/v1/checkout_sessions", Some(&body), Some("same-key"))
            .await;
        assert_eq!(status, 400, "{field}: {answer}");
        assert_eq!(answer["error"]["type"], "invalid_request");
    }
    assert!(s.sandbox.checkout_sessions().is_empty());
    let (status, ok) = s
        .api(
            "/v1/checkout_sessions",
            Some(&session_body("automatic")),
            Some("same-key"),
        )
        .await;
    assert_eq!(
        status, 200,
        "a refused request stored nothing, not even its key: {ok}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_api_needs_the_key_but_the_page_does_not() {
    let s = served().await;
    let resp = s
        .browser
        .post(format!("{}/v1/checkout_sessions", s.base))
        .header("content-type", "application/json")
        .body(session_body("automatic").to_string())
        .send()
        .await
        .expect("answer");
    assert_eq!(resp.status().as_u16(), 401);
    assert!(s.sandbox.checkout_sessions().is_empty());
    let session = s.open("automatic").await;
    assert_eq!(s.get_page(&url_of(&session)).await.status, 200);
    let unknown = s.get_page(&format!("{}/nowhere", s.base)).await;
    assert_eq!(unknown.status, 401, "unknown paths stay behind the key");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn user_strings_are_escaped_on_the_page() {
    let s = served().await;
    let mut body = session_body("automatic");
    body["description"] = json!("<script>alert('x')</script> & \"more\"");
    body["metadata"] = json!({"<b>key</b>": "<img src=x onerror=alert(1)>"});
    let (status, session) = s.api("/v1/checkout_sessions", Some(&body), None).await;
    assert_eq!(status, 200, "{session}");
    let page = s.get_page(&url_of(&session)).await;
    assert_eq!(page.status, 200);
    assert!(!page.body.contains("<script"), "{}", page.body);
    assert!(!page.body.contains("<img"));
    assert!(!page.body.contains("<b>"));
    assert!(
        page.body
            .contains("&lt;script&gt;alert(&#x27;x&#x27;)&lt;/script&gt; &amp; &quot;more&quot;")
    );
    assert!(page.body.contains("&lt;img src=x onerror=alert(1)&gt;"));
    let declined = s
        .post_page(&url_of(&session), card(numbers::DECLINED))
        .await;
    assert!(!declined.body.contains("<script"));
    let resp = s.browser.get(url_of(&session)).send().await.expect("page");
    let csp = resp
        .headers()
        .get("content-security-policy")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_owned();
    assert!(csp.contains("default-src 'none'"), "{csp}");
    assert_eq!(
        resp.headers()
            .get("cache-control")
            .and_then(|v| v.to_str().ok()),
        Some("no-store")
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_http_gateway_opens_reads_and_expires_sessions() {
    let s = served().await;
    let gw = HttpGateway::new(&s.base, key(), Duration::from_secs(5)).expect("client");
    assert!(gw.capabilities().hosted_checkout);
    assert!(PaymentGateway::capabilities(&s.sandbox).hosted_checkout);
    let req = NewCheckoutSession {
        amount: Money {
            amount_minor: 2_500,
            currency: Currency::new("USD").expect("USD"),
        },
        capture_method: CaptureMethod::Manual,
        return_url: "http://127.0.0.1:9/back".into(),
        description: "1 ticket".into(),
        metadata: BTreeMap::from([("order".to_owned(), "7".to_owned())]),
        expires_at: SystemClock.now().plus(Duration::from_secs(600)),
        idempotency_key: "gw-1".into(),
    };
    let created = gw
        .create_checkout_session(req.clone())
        .await
        .expect("create");
    assert_eq!(created.status, CheckoutSessionStatus::Open);
    assert_eq!(created.url, format!("{}/pay/{}", s.base, created.id));
    assert_eq!(
        gw.create_checkout_session(req.clone())
            .await
            .expect("repeat"),
        created
    );
    assert_eq!(
        gw.get_checkout_session(&created.id).await.expect("read"),
        created
    );
    let page = s.get_page(&created.url).await;
    assert!(page.body.contains("25.00 USD"), "{}", page.body);
    let expired = gw
        .expire_checkout_session(&created.id)
        .await
        .expect("expire");
    assert_eq!(expired.status, CheckoutSessionStatus::Expired);
    assert!(matches!(
        gw.create_checkout_session(NewCheckoutSession {
            return_url: "ftp://x.test/".into(),
            idempotency_key: "gw-2".into(),
            ..req
        })
        .await,
        Err(GatewayError::Invalid(_))
    ));
    assert!(matches!(
        gw.get_checkout_session(&CheckoutSessionId::new("cs_nope").expect("id"))
            .await,
        Err(GatewayError::NotFound(_))
    ));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_page_can_be_mounted_under_a_prefix() {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let base = format!("http://{}", listener.local_addr().expect("addr"));
    let sandbox = Sandbox::new(SandboxConfig {
        public_url: format!("{base}/sandbox/"),
        ..SandboxConfig::default()
    })
    .expect("sandbox");
    let app = axum::Router::new().nest("/sandbox", http::hosted_page_router(sandbox.clone()));
    let server = tokio::spawn(async move { axum::serve(listener, app).await });
    let session = sandbox
        .create_checkout_session(NewCheckoutSession {
            amount: Money {
                amount_minor: 1_000,
                currency: Currency::new("KRW").expect("KRW"),
            },
            capture_method: CaptureMethod::Automatic,
            return_url: RETURN.into(),
            description: String::new(),
            metadata: BTreeMap::new(),
            expires_at: Timestamp::from_millis(now_ms() + 60_000),
            idempotency_key: "prefixed".into(),
        })
        .await
        .expect("create");
    assert_eq!(session.url, format!("{base}/sandbox/pay/{}", session.id));
    let browser = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .expect("client");
    let page = browser.get(&session.url).send().await.expect("page");
    assert_eq!(page.status().as_u16(), 200);
    let html = page.text().await.expect("body");
    assert!(
        html.contains(&format!("action=\"/sandbox/pay/{}\"", session.id)),
        "{html}"
    );
    let paid = browser
        .post(&session.url)
        .header("content-type", "application/x-www-form-urlencoded")
        .body(card(numbers::SUCCEEDS))
        .send()
        .await
        .expect("pay");
    assert_eq!(paid.status().as_u16(), 303);
    server.abort();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_invalid_public_url_is_refused() {
    for bad in [
        "",
        "ftp://x.test",
        "http://x.test/?q=1",
        "http://x.test/#f",
        "/pay",
    ] {
        assert!(
            Sandbox::new(SandboxConfig {
                public_url: bad.into(),
                ..SandboxConfig::default()
            })
            .is_err(),
            "{bad:?}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn open_sessions_are_never_evicted() {
    let sandbox = Sandbox::new(SandboxConfig {
        max_sessions: 1,
        ..SandboxConfig::default()
    })
    .expect("sandbox");
    let req = |key: &str| NewCheckoutSession {
        amount: Money {
            amount_minor: 1_000,
            currency: Currency::new("KRW").expect("KRW"),
        },
        capture_method: CaptureMethod::Automatic,
        return_url: RETURN.into(),
        description: String::new(),
        metadata: BTreeMap::new(),
        expires_at: Timestamp::from_millis(now_ms() + 60_000),
        idempotency_key: key.into(),
    };
    let first = sandbox
        .create_checkout_session(req("a"))
        .await
        .expect("create");
    assert!(matches!(
        sandbox.create_checkout_session(req("b")).await,
        Err(GatewayError::Unavailable(_))
    ));
    sandbox
        .expire_checkout_session(&first.id)
        .await
        .expect("expire");
    let second = sandbox
        .create_checkout_session(req("b"))
        .await
        .expect("room once the first expired");
    assert!(matches!(
        sandbox.get_checkout_session(&first.id).await,
        Err(GatewayError::NotFound(_))
    ));
    assert_eq!(sandbox.checkout_sessions(), vec![second]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_slow_card_completes_the_session_while_its_payment_processes() {
    let s = served_with(SandboxConfig {
        slow_delay: Duration::from_millis(50),
        ..SandboxConfig::default()
    })
    .await;
    let session = s.open("manual").await;
    let (id, url) = (id_of(&session), url_of(&session));
    let answer = s.post_page(&url, card(numbers::SUCCEEDS_SLOWLY)).await;
    assert_back_to_shop(&answer, &id, false);
    let done = s.session(&id).await;
    assert_eq!(done.status, CheckoutSessionStatus::Complete);
    let intent = done.intent.clone().expect("an attempt");
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    loop {
        let now = s.sandbox.get_intent(&intent).await.expect("read");
        if now.status == IntentStatus::RequiresCapture {
            break;
        }
        assert_eq!(now.status, IntentStatus::Processing);
        assert!(std::time::Instant::now() < deadline, "never authorized");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}
