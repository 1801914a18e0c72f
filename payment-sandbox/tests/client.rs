//! `HttpGateway` against a served sandbox: the same answers and typed errors as in-process.

use std::collections::BTreeMap;
use std::time::Duration;

use payment_sandbox::auth::ApiKey;
use payment_sandbox::cards::numbers;
use payment_sandbox::client::HttpGateway;
use payment_sandbox::{Sandbox, SandboxConfig, http};
use ticket_core::gateway::{
    GatewayError, IntentId, IntentStatus, NewIntent, PaymentGateway, RefundRequest,
};
use ticket_core::model::money::{Currency, Money};

/// The API key of the served sandboxes.
const KEY: &str = "sk_test_client_tests_0123456789abcdef";

fn key() -> ApiKey {
    ApiKey::new(KEY).expect("a valid key")
}

async fn served(config: SandboxConfig) -> (Sandbox, String) {
    let sandbox = Sandbox::new(config).expect("sandbox");
    let (addr, _task) = http::serve(sandbox.clone(), key(), "127.0.0.1:0".parse().expect("addr"))
        .await
        .expect("serve");
    (sandbox, format!("http://{addr}"))
}

fn new_intent(card: &str, key: &str, currency: &str) -> NewIntent {
    NewIntent {
        capture_method: Default::default(),
        amount: Money {
            amount_minor: 50_000,
            currency: Currency::new(currency).expect("currency"),
        },
        payment_method: card.into(),
        metadata: BTreeMap::from([("order".to_owned(), "42".to_owned())]),
        idempotency_key: key.into(),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_http_gateway_behaves_like_the_sandbox() {
    let (sandbox, url) = served(SandboxConfig::default()).await;
    let gw = HttpGateway::new(&url, key(), Duration::from_secs(5)).expect("client");

    let created = gw
        .create_intent(new_intent(numbers::SUCCEEDS, "k1", "KRW"))
        .await
        .expect("create");
    assert_eq!(created.status, IntentStatus::RequiresConfirmation);
    assert_eq!(
        created.metadata.get("order").map(String::as_str),
        Some("42")
    );
    let again = gw
        .create_intent(new_intent(numbers::SUCCEEDS, "k1", "KRW"))
        .await
        .expect("repeat");
    assert_eq!(again.id, created.id, "same key, same intent");
    assert_eq!(
        gw.create_intent(new_intent(numbers::DECLINED, "k1", "KRW"))
            .await,
        Err(GatewayError::KeyReused)
    );
    assert!(matches!(
        gw.create_intent(new_intent(numbers::SUCCEEDS, "k2", "XXX"))
            .await,
        Err(GatewayError::Invalid(_))
    ));
    assert!(matches!(
        gw.create_intent(new_intent("4242", "k3", "KRW")).await,
        Err(GatewayError::Invalid(_))
    ));

    let paid = gw.confirm_intent(&created.id).await.expect("confirm");
    assert_eq!(paid.status, IntentStatus::Succeeded);
    assert_eq!(gw.get_intent(&created.id).await.expect("get"), paid);
    assert_eq!(
        gw.cancel_intent(&created.id).await,
        Err(GatewayError::Conflict {
            action: "cancel".into(),
            status: IntentStatus::Succeeded
        })
    );
    let refund = |amount_minor, key: &str| RefundRequest {
        intent: created.id.clone(),
        amount_minor,
        reason: "test".into(),
        idempotency_key: key.into(),
    };
    let part = gw.refund(refund(Some(100), "r1")).await.expect("partial");
    assert_eq!(part.amount.amount_minor, 100);
    assert_eq!(
        gw.refund(refund(Some(100), "r1")).await,
        Ok(part),
        "replayed"
    );
    assert!(matches!(
        gw.refund(refund(Some(60_000), "r2")).await,
        Err(GatewayError::Invalid(_))
    ));
    let rest = gw.refund(refund(None, "r3")).await.expect("rest");
    assert_eq!(rest.amount.amount_minor, 49_900);
    assert!(matches!(
        gw.refund(refund(None, "r4")).await,
        Err(GatewayError::Conflict { .. })
    ));
    assert_eq!(sandbox.refunds().len(), 2);

    let unknown = IntentId::new("pi_unknown").expect("id");
    assert!(matches!(
        gw.get_intent(&unknown).await,
        Err(GatewayError::NotFound(_))
    ));
    let sneaky = IntentId::new("pi/../../v1/deliveries").expect("id");
    assert!(matches!(
        gw.get_intent(&sneaky).await,
        Err(GatewayError::Invalid(_))
    ));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_slow_or_absent_provider_is_a_timeout_or_unavailable() {
    let (sandbox, url) = served(SandboxConfig {
        confirm_timeout: Duration::from_secs(3),
        ..SandboxConfig::default()
    })
    .await;
    let gw = HttpGateway::new(&url, key(), Duration::from_millis(300)).expect("client");
    let intent = gw
        .create_intent(new_intent(numbers::NEVER_ANSWERS, "n1", "KRW"))
        .await
        .expect("create");
    assert_eq!(
        gw.confirm_intent(&intent.id).await,
        Err(GatewayError::Timeout)
    );
    assert_eq!(
        sandbox.intents()[0].status,
        IntentStatus::Processing,
        "the provider went on"
    );

    let nobody =
        HttpGateway::new("http://127.0.0.1:1", key(), Duration::from_secs(1)).expect("client");
    assert!(matches!(
        nobody.get_intent(&intent.id).await,
        Err(GatewayError::Unavailable(_))
    ));
    assert!(matches!(
        HttpGateway::new("ftp://example", key(), Duration::from_secs(1)),
        Err(GatewayError::Invalid(_))
    ));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_lists_page_through_every_intent_and_refund_in_order() {
    let (sandbox, url) = served(SandboxConfig::default()).await;
    let gw = HttpGateway::new(&url, key(), Duration::from_secs(5)).expect("client");
    // More than one page of the client's size would be slow here; the server's own paging
    // is checked with small pages below, the client's loop with the whole list.
    for i in 0..25 {
        let intent = gw
            .create_intent(new_intent(numbers::SUCCEEDS, &format!("k{i}"), "KRW"))
            .await
            .expect("create");
        if i % 5 == 0 {
            gw.confirm_intent(&intent.id).await.expect("confirm");
            gw.refund(RefundRequest {
                intent: intent.id.clone(),
                amount_minor: None,
                reason: "test".into(),
                idempotency_key: format!("r{i}"),
            })
            .await
            .expect("refund");
        }
    }
    let listed = gw.list_intents().await.expect("list");
    assert_eq!(
        listed,
        sandbox.intents(),
        "every intent, oldest first, as stored"
    );
    assert_eq!(gw.list_refunds().await.expect("refunds"), sandbox.refunds());
    assert_eq!(listed.len(), 25);

    // The server's pages: `limit`, `starting_after`, `has_more`.
    let client = reqwest::Client::new();
    let page = |q: String| {
        let client = client.clone();
        let url = format!("{url}/v1/payment_intents{q}");
        async move {
            let resp = client.get(url).bearer_auth(KEY).send().await.expect("get");
            let status = resp.status().as_u16();
            let body = resp.bytes().await.expect("body");
            (
                status,
                serde_json::from_slice(&body).unwrap_or(serde_json::Value::Null),
            )
        }
    };
    let (status, first) = page("?limit=10".into()).await;
    assert_eq!(status, 200);
    assert_eq!(first["data"].as_array().map(Vec::len), Some(10));
    assert_eq!(first["has_more"], true);
    let tenth = listed[9].id.as_str();
    let (_, last) = page(format!("?limit=20&starting_after={tenth}")).await;
    assert_eq!(last["has_more"], false, "{last}");
    assert_eq!(last["data"][0]["id"], listed[10].id.as_str());
    assert_eq!(last["data"].as_array().map(Vec::len), Some(15));
    for bad in [
        "?limit=0",
        "?limit=10001",
        "?starting_after=pi_nope",
        "?limit=x",
    ] {
        let (status, body) = page(bad.into()).await;
        assert_eq!(status, 400, "{bad}: {body}");
    }
}
