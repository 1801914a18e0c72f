//! Every route of the served sandbox needs its API key: without one, with a wrong one or a
//! malformed header, the answer is `401` in the sandbox's error shape with a
//! `WWW-Authenticate: Bearer` challenge, and nothing changes; with the key, it works. The
//! client (`HttpGateway`) sends the key on every call.

mod common;

use std::time::Duration;

use common::{Api, Auth, KEY, assert_error, id_of, start};
use payment_sandbox::SandboxConfig;
use payment_sandbox::auth::ApiKey;
use payment_sandbox::cards::numbers;
use payment_sandbox::client::HttpGateway;
use payment_sandbox::delivery::EndpointConfig;
use reqwest::Method;
use serde_json::{Value, json};
use ticket_core::gateway::{GatewayError, IntentStatus, NewIntent, PaymentGateway, RefundRequest};
use ticket_core::model::money::{Currency, Money};
use wiremock::matchers::method;
use wiremock::{Mock, MockServer, ResponseTemplate};

/// Everything an API call could change, read on the sandbox itself.
#[derive(Debug, PartialEq)]
struct Snapshot {
    intents: Vec<ticket_core::gateway::PaymentIntent>,
    refunds: Vec<ticket_core::gateway::Refund>,
    endpoint: payment_sandbox::delivery::EndpointInfo,
    stats: payment_sandbox::delivery::DeliveryStats,
    deliveries: usize,
}

async fn snapshot(api: &Api, endpoint: &str) -> Snapshot {
    assert!(api.sandbox.wait_idle(Duration::from_secs(10)).await);
    Snapshot {
        intents: api.sandbox.intents(),
        refunds: api.sandbox.refunds(),
        endpoint: api.sandbox.endpoint(endpoint).expect("endpoint"),
        stats: api.sandbox.delivery_stats(),
        deliveries: api.sandbox.deliveries(None).len(),
    }
}

/// Every route of the API, with real ids, and a body where it takes one.
fn every_route(open: &str, paid: &str, endpoint: &str) -> Vec<(Method, String, Option<Value>)> {
    let post = |path: String, body: Value| (Method::POST, path, Some(body));
    let get = |path: String| (Method::GET, path, None);
    vec![
        post(
            "/v1/payment_intents".into(),
            common::intent_body(1_000, numbers::SUCCEEDS),
        ),
        get("/v1/payment_intents".into()),
        get("/v1/payment_intents?limit=1".into()),
        get(format!("/v1/payment_intents/{open}")),
        post(format!("/v1/payment_intents/{open}/confirm"), json!({})),
        post(format!("/v1/payment_intents/{open}/cancel"), json!({})),
        post(
            format!("/v1/payment_intents/{paid}/refunds"),
            json!({"amount_minor": 100}),
        ),
        get("/v1/refunds".into()),
        post(
            "/v1/webhook_endpoints".into(),
            json!({"url": "http://127.0.0.1:9/other"}),
        ),
        get(format!("/v1/webhook_endpoints/{endpoint}")),
        post(
            format!("/v1/webhook_endpoints/{endpoint}/rotate_secret"),
            json!({}),
        ),
        get(format!("/v1/webhook_endpoints/{endpoint}/deliveries")),
        get("/v1/deliveries/stats".into()),
        // An unknown path gives nothing away either.
        get("/v1/no_such_route".into()),
        post("/v1/payment_intents".into(), json!({"not": "valid"})),
    ]
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_route_refuses_a_missing_or_wrong_key_with_401_and_changes_nothing() {
    let receiver = MockServer::start().await;
    Mock::given(method("POST"))
        .respond_with(ResponseTemplate::new(200))
        .mount(&receiver)
        .await;
    let api = start(SandboxConfig::default()).await;
    let (status, ep) = api.register(&format!("{}/hook", receiver.uri())).await;
    assert_eq!(status, 201, "{ep}");
    let endpoint = id_of(&ep);
    let open = api.created(1_000, numbers::SUCCEEDS).await;
    let paid = api.paid(1_000).await;
    let before = snapshot(&api, &endpoint).await;

    let wrong = ApiKey::generate().expect("key");
    let one_off = format!("{}x", &KEY[..KEY.len() - 1]);
    let basic = format!("Basic {KEY}");
    let no_scheme = KEY.to_owned();
    let presented = [
        Auth::None,
        Auth::Bearer(wrong.expose_secret()),
        Auth::Bearer(&one_off),
        Auth::Bearer(""),
        Auth::Bearer("sk_test_"),
        Auth::Raw(&basic),
        Auth::Raw(&no_scheme),
        Auth::Raw("Bearer"),
    ];
    for auth in presented {
        for (method, path, body) in every_route(&open, &paid, &endpoint) {
            let (status, challenge, answer) = api
                .send_as(auth, method.clone(), &path, body.as_ref())
                .await;
            assert_error(status, &answer, 401, "unauthorized");
            assert_eq!(
                challenge.as_deref(),
                Some("Bearer realm=\"payment-sandbox\""),
                "{method} {path} with {auth:?}"
            );
            let message = answer["error"]["message"].as_str().unwrap_or_default();
            assert!(
                !message.contains(KEY),
                "the answer leaks the key: {message}"
            );
        }
    }
    assert_eq!(
        snapshot(&api, &endpoint).await,
        before,
        "a refused request changed the sandbox"
    );

    // With the key, the same routes work.
    let (status, intent) = api.get(&format!("/v1/payment_intents/{open}")).await;
    assert_eq!(
        (status, &intent["status"]),
        (200, &json!("requires_confirmation"))
    );
    let (status, refund) = api
        .post(
            &format!("/v1/payment_intents/{paid}/refunds"),
            &json!({"amount_minor": 100}),
        )
        .await;
    assert_eq!(status, 200, "{refund}");
    let (status, rotated) = api
        .post(
            &format!("/v1/webhook_endpoints/{endpoint}/rotate_secret"),
            &json!({}),
        )
        .await;
    assert_eq!(status, 200, "{rotated}");
    assert_ne!(rotated["verification_key"], ep["verification_key"]);
    // The scheme is case-insensitive (RFC 7235), the key is not.
    let (status, _, _) = api
        .send_as(
            Auth::Raw(&format!("bearer {KEY}")),
            Method::GET,
            "/v1/deliveries/stats",
            None,
        )
        .await;
    assert_eq!(status, 200);
    let (status, _, _) = api
        .send_as(
            Auth::Bearer(&KEY.to_uppercase()),
            Method::GET,
            "/v1/deliveries/stats",
            None,
        )
        .await;
    assert_eq!(status, 401);
}

fn new_intent(key: &str) -> NewIntent {
    NewIntent {
        amount: Money {
            amount_minor: 5_000,
            currency: Currency::new("KRW").expect("currency"),
        },
        payment_method: numbers::SUCCEEDS.into(),
        capture_method: Default::default(),
        metadata: Default::default(),
        idempotency_key: key.into(),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_client_sends_the_key_on_every_call_and_a_wrong_key_changes_nothing() {
    let api = start(SandboxConfig::default()).await;
    let url = &api.base;

    let gw = HttpGateway::new(url, common::key(), Duration::from_secs(5)).expect("client");
    let intent = gw.create_intent(new_intent("k1")).await.expect("create");
    let paid = gw.confirm_intent(&intent.id).await.expect("confirm");
    assert_eq!(paid.status, IntentStatus::Succeeded);
    assert_eq!(gw.get_intent(&intent.id).await.expect("get"), paid);
    gw.refund(RefundRequest {
        intent: intent.id.clone(),
        amount_minor: Some(1_000),
        reason: "test".into(),
        idempotency_key: "r1".into(),
    })
    .await
    .expect("refund");
    let open = gw.create_intent(new_intent("k2")).await.expect("create");
    gw.cancel_intent(&open.id).await.expect("cancel");
    assert_eq!(gw.list_intents().await.expect("list").len(), 2);
    assert_eq!(gw.list_refunds().await.expect("refunds").len(), 1);
    let endpoint = gw
        .register_endpoint(&EndpointConfig {
            url: "http://127.0.0.1:9/hook".into(),
            ..EndpointConfig::default()
        })
        .await
        .expect("register");
    assert!(api.sandbox.endpoint(&endpoint.id).is_ok());

    let intents = api.sandbox.intents();
    let refunds = api.sandbox.refunds();
    let wrong = HttpGateway::new(
        url,
        ApiKey::generate().expect("key"),
        Duration::from_secs(5),
    )
    .expect("client");
    let refused = |r: Result<_, GatewayError>| {
        assert!(
            matches!(&r, Err(GatewayError::Unavailable(m)) if m.contains("401")),
            "{r:?}"
        );
    };
    refused(wrong.create_intent(new_intent("k3")).await.map(|_| ()));
    refused(wrong.get_intent(&intent.id).await.map(|_| ()));
    refused(wrong.confirm_intent(&intent.id).await.map(|_| ()));
    refused(wrong.cancel_intent(&open.id).await.map(|_| ()));
    refused(
        wrong
            .refund(RefundRequest {
                intent: intent.id.clone(),
                amount_minor: Some(1),
                reason: "x".into(),
                idempotency_key: "r2".into(),
            })
            .await
            .map(|_| ()),
    );
    refused(wrong.list_intents().await.map(|_| ()));
    refused(wrong.list_refunds().await.map(|_| ()));
    refused(
        wrong
            .register_endpoint(&EndpointConfig {
                url: "http://127.0.0.1:9/other".into(),
                ..EndpointConfig::default()
            })
            .await
            .map(|_| ()),
    );
    assert_eq!(api.sandbox.intents(), intents, "nothing changed");
    assert_eq!(api.sandbox.refunds(), refunds, "nothing changed");
}

#[test]
fn a_malformed_key_is_refused_before_anything_is_served() {
    for bad in [
        "",
        "sk_live_0123456789abcdef0123456789",
        "sk_test_short",
        "secret",
    ] {
        let err = ApiKey::new(bad).expect_err(bad);
        assert!(
            err.to_string().starts_with("invalid API key"),
            "{bad:?}: {err}"
        );
    }
}
