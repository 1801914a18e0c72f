//! Wallet top-ups over HTTP on every backend (memory, Redis, PostgreSQL): money enters a
//! wallet only through a card payment that succeeded, exactly once per payment, whatever
//! reports arrive how often (the confirmation's answer, duplicated signed webhooks, the
//! reconciler, repeated requests); a declined, invalid, timed-out or late card credits
//! nothing.

mod common;

use std::sync::Arc;
use std::time::Duration;

use common::{Answer, Kind, Server, call, server, user_token};
use payment_sandbox::signature::WebhookSecret;
use serde_json::Value;
use ticket_core::gateway::{EventKind, IntentStatus, PaymentEvent, PaymentIntent};
use ticket_server::stores::wallet::TopUpStatus;

const SUCCEEDS: &str = "4242424242424242";
const DECLINED: &str = "4000000000000002";
const NEVER_ANSWERS: &str = "4000000000000101";
const SUCCEEDS_SLOWLY: &str = "4000000000003220";

async fn topup(s: &Server, token: &str, key: &str, amount: i64, card: &str) -> Answer {
    call(
        s,
        "POST",
        "/api/me/wallet/topups",
        Some(token),
        &[("idempotency-key", key)],
        Some(&format!(r#"{{"amount":{amount},"card_number":"{card}"}}"#)),
    )
    .await
}

async fn read_topup(s: &Server, token: &str, id: &str) -> Answer {
    call(
        s,
        "GET",
        &format!("/api/me/wallet/topups/{id}"),
        Some(token),
        &[],
        None,
    )
    .await
}

/// Polls the top-up until it leaves `pending` (at most `within`).
async fn settled(s: &Server, token: &str, id: &str, within: Duration) -> Value {
    let until = tokio::time::Instant::now() + within;
    loop {
        let a = read_topup(s, token, id).await;
        assert_eq!(a.status, 200, "{a:?}");
        if a.json["status"] != "pending" || tokio::time::Instant::now() > until {
            return a.json;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

async fn wallet(s: &Server, token: &str) -> Value {
    let w = call(s, "GET", "/api/me/wallet", Some(token), &[], None).await;
    assert_eq!(w.status, 200, "{w:?}");
    w.json
}

fn sandbox(s: &Server) -> &payment_sandbox::Sandbox {
    s.state.sandbox.as_ref().expect("the in-process sandbox")
}

fn intent(s: &Server, id: &str) -> PaymentIntent {
    sandbox(s)
        .intents()
        .into_iter()
        .find(|i| i.id.as_str() == id)
        .expect("the intent")
}

/// Delivers a `payment_intent.succeeded` event for `intent`, signed with the server's
/// endpoint secret, as the provider would (`copies` times under one event id, plus once
/// under another id).
async fn deliver_success(s: &Server, intent: &PaymentIntent, copies: usize) {
    let sandbox = sandbox(s);
    assert!(sandbox.wait_idle(Duration::from_secs(5)).await);
    let endpoint = sandbox.deliveries(None)[0].endpoint.clone();
    let secret: WebhookSecret = sandbox
        .endpoint(&endpoint)
        .expect("endpoint")
        .verification_key
        .parse()
        .expect("whsec");
    for (n, event_id) in std::iter::repeat_n("evt_replayed", copies)
        .chain(["evt_other"])
        .enumerate()
    {
        let event = PaymentEvent {
            id: event_id.to_owned(),
            kind: EventKind::Succeeded,
            sequence: 100 + n as u64,
            created_at: s.state.clock.now(),
            intent: intent.clone(),
        };
        let body = serde_json::to_string(&event).expect("event");
        let ts = s.state.clock.now().as_millis() / 1000;
        let signature = secret.sign(event_id, ts, body.as_bytes());
        let a = call(
            s,
            "POST",
            "/api/payments/webhook",
            None,
            &[
                ("webhook-id", event_id),
                ("webhook-timestamp", &ts.to_string()),
                ("webhook-signature", &signature),
            ],
            Some(&body),
        )
        .await;
        assert_eq!(a.status, 200, "{a:?}");
    }
}

/// The success card credits the wallet once: the answer, repeated requests (racing), the
/// webhooks the sandbox sends, replayed signed webhooks and the reconciler all agree.
async fn success_card_credits_once(kind: Kind) {
    let s = Arc::new(server(kind, &[]).await);
    let (me, _) = user_token(&s);
    let first = topup(&s, &me, "t1", 30_000, SUCCEEDS).await;
    assert_eq!(first.status, 202, "{first:?}");
    assert_eq!(first.json["status"], "succeeded", "{first:?}");
    assert_eq!(first.json["card_last4"], "4242");
    let id = first.json["id"].as_str().expect("id").to_owned();
    let payment = first.json["payment_id"]
        .as_str()
        .expect("payment")
        .to_owned();

    // racing repeats of the request, reconciler rounds and replayed webhooks
    let mut tasks = Vec::new();
    for i in 0..8 {
        let (s, me) = (s.clone(), me.clone());
        tasks.push(tokio::spawn(async move {
            if i % 2 == 0 {
                let a = topup(&s, &me, "t1", 30_000, SUCCEEDS).await;
                assert_eq!(a.status, 202, "{a:?}");
                a.json["id"].as_str().map(str::to_owned)
            } else {
                s.state.topups.reconcile(100).await.expect("reconcile");
                None
            }
        }));
    }
    deliver_success(&s, &intent(&s, &payment), 3).await;
    for t in tasks {
        if let Some(again) = t.await.expect("task") {
            assert_eq!(again, id, "a repeat answers the same top-up");
        }
    }
    let w = wallet(&s, &me).await;
    assert_eq!(
        (w["balance"].as_i64(), w["entry_count"].as_u64()),
        (Some(30_000), Some(1)),
        "{w}"
    );
    assert_eq!(w["entries"][0]["kind"], "charge");
    assert_eq!(
        w["entries"][0]["idempotency_key"],
        format!("sys:topup:{payment}")
    );
    assert_eq!(w["entries"][0]["reference"], id.as_str());
    let topup_intents = sandbox(&s)
        .intents()
        .into_iter()
        .filter(|i| i.metadata.contains_key("ticketrush_wallet_topup"))
        .count();
    assert_eq!(topup_intents, 1, "one payment for one key");

    // the same key with another amount or card is refused, and pays nothing
    for (amount, card) in [(30_001, SUCCEEDS), (30_000, "4000056655665556")] {
        let a = topup(&s, &me, "t1", amount, card).await;
        assert_eq!(
            (a.status, a.json["error"]["code"].as_str()),
            (422, Some("IDEMPOTENCY_KEY_REUSED")),
            "{a:?}"
        );
    }
    // someone else's top-up is not found
    let (other, _) = user_token(&s);
    assert_eq!(read_topup(&s, &other, &id).await.status, 404);
    assert_eq!(wallet(&s, &me).await["balance"], 30_000);
}

/// A declined or invalid card credits nothing and the top-up ends failed; malformed
/// requests answer the documented error and open nothing.
async fn refused_cards_credit_nothing(kind: Kind) {
    let s = server(kind, &[]).await;
    let (me, _) = user_token(&s);
    for (key, card, code) in [
        ("d1", DECLINED, "card_declined"),
        ("d2", "4000000000009995", "insufficient_funds"),
        ("d3", "4242424242424241", "invalid_card"),
    ] {
        let a = topup(&s, &me, key, 10_000, card).await;
        assert_eq!(a.status, 202, "{a:?}");
        assert_eq!(
            (a.json["status"].as_str(), a.json["failure"].as_str()),
            (Some("failed"), Some(code)),
            "{a:?}"
        );
        let again = topup(&s, &me, key, 10_000, card).await;
        assert_eq!(again.json["id"], a.json["id"], "{again:?}");
        assert_eq!(again.json["status"], "failed", "{again:?}");
    }
    let key = [("idempotency-key", "bad")];
    for (headers, body, status, code) in [
        (
            &key[..],
            r#"{"amount":0,"card_number":"4242424242424242"}"#,
            422,
            "VALIDATION",
        ),
        (
            &key[..],
            r#"{"amount":10000001,"card_number":"4242424242424242"}"#,
            422,
            "VALIDATION",
        ),
        (
            &key[..],
            r#"{"amount":5,"card_number":"4242-4242-4242-4242"}"#,
            400,
            "VALIDATION",
        ),
        (
            &key[..],
            r#"{"amount":5,"card_number":"42"}"#,
            400,
            "VALIDATION",
        ),
        (&key[..], r#"{"amount":5}"#, 400, "VALIDATION"),
        (
            &key[..],
            r#"{"amount":5,"card_number":"4242424242424242","x":1}"#,
            400,
            "VALIDATION",
        ),
        (
            &[][..],
            r#"{"amount":5,"card_number":"4242424242424242"}"#,
            400,
            "VALIDATION",
        ),
    ] {
        let a = call(
            &s,
            "POST",
            "/api/me/wallet/topups",
            Some(&me),
            headers,
            Some(body),
        )
        .await;
        assert_eq!(
            (a.status, a.json["error"]["code"].as_str()),
            (status, Some(code)),
            "{body}: {a:?}"
        );
    }
    for bad in ["not-a-uuid", "0190f2d0-0000-7000-8000-000000000000"] {
        let a = read_topup(&s, &me, bad).await;
        assert!(matches!(a.status, 400 | 404), "{bad}: {a:?}");
    }
    let w = wallet(&s, &me).await;
    assert_eq!(
        (w["balance"].as_i64(), w["entry_count"].as_u64()),
        (Some(0), Some(0)),
        "{w}"
    );
}

/// The card that never answers: the top-up stays pending, then the reconciler gives it up
/// (failed, `timeout`) and nothing is ever credited.
async fn timeout_card_ends_failed(kind: Kind) {
    let s = server(kind, &["--topup-timeout-ms", "200"]).await;
    let (me, _) = user_token(&s);
    let a = topup(&s, &me, "t1", 10_000, NEVER_ANSWERS).await;
    assert_eq!(a.status, 202, "{a:?}");
    assert_eq!(a.json["status"], "pending", "{a:?}");
    let id = a.json["id"].as_str().expect("id").to_owned();
    tokio::time::sleep(Duration::from_millis(250)).await;
    for _ in 0..2 {
        s.state.topups.reconcile(100).await.expect("reconcile");
    }
    let t = read_topup(&s, &me, &id).await.json;
    assert_eq!(
        (t["status"].as_str(), t["failure"].as_str()),
        (Some("failed"), Some("timeout")),
        "{t}"
    );
    let again = topup(&s, &me, "t1", 10_000, NEVER_ANSWERS).await;
    assert_eq!(again.json["status"], "failed", "{again:?}");
    assert_eq!(wallet(&s, &me).await["balance"], 0);
}

/// A slow card settles by the sandbox's webhook (pending, then succeeded); one that
/// succeeds only after its top-up was given up is refunded at the provider, not credited.
async fn slow_cards_settle_by_webhook_or_are_refunded(kind: Kind) {
    let s = server(
        kind,
        &[
            "--sandbox-slow-delay-ms",
            "300",
            "--topup-timeout-ms",
            "60000",
        ],
    )
    .await;
    let (me, _) = user_token(&s);
    let a = topup(&s, &me, "slow", 20_000, SUCCEEDS_SLOWLY).await;
    assert_eq!(a.json["status"], "pending", "{a:?}");
    let id = a.json["id"].as_str().expect("id").to_owned();
    // the webhook settles it (GET polls the provider too: both are fine, once)
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert!(sandbox(&s).wait_idle(Duration::from_secs(5)).await);
    let t = settled(&s, &me, &id, Duration::from_secs(5)).await;
    assert_eq!(t["status"], "succeeded", "{t}");
    assert_eq!(wallet(&s, &me).await["balance"], 20_000);

    let s = server(
        kind,
        &[
            "--sandbox-slow-delay-ms",
            "800",
            "--topup-timeout-ms",
            "100",
        ],
    )
    .await;
    let (me, _) = user_token(&s);
    let a = topup(&s, &me, "late", 20_000, SUCCEEDS_SLOWLY).await;
    assert_eq!(a.json["status"], "pending", "{a:?}");
    let payment = a.json["payment_id"].as_str().expect("payment").to_owned();
    tokio::time::sleep(Duration::from_millis(150)).await;
    s.state.topups.reconcile(100).await.expect("reconcile");
    let id = a.json["id"].as_str().expect("id");
    assert_eq!(read_topup(&s, &me, id).await.json["status"], "failed");
    // the payment succeeds later: its webhook refunds it
    tokio::time::sleep(Duration::from_millis(900)).await;
    assert!(sandbox(&s).wait_idle(Duration::from_secs(5)).await);
    let paid = intent(&s, &payment);
    assert_eq!(paid.status, IntentStatus::Succeeded);
    assert_eq!(paid.amount_refunded, 20_000, "{paid:?}");
    assert_eq!(read_topup(&s, &me, id).await.json["status"], "failed");
    assert_eq!(wallet(&s, &me).await["balance"], 0);
}

/// Sixteen reports of one payment's success race on a pending top-up (as webhooks and the
/// reconciler would on several processes): the compare-and-set lets one move it to
/// `succeeded`, and its credit is written once.
async fn racing_reports_credit_once(kind: Kind) {
    let s = Arc::new(server(kind, &["--sandbox-slow-delay-ms", "60000"]).await);
    let (me, user) = user_token(&s);
    let a = topup(&s, &me, "race", 7_000, SUCCEEDS_SLOWLY).await;
    assert_eq!(a.json["status"], "pending", "{a:?}");
    let id: uuid::Uuid = a.json["id"].as_str().expect("id").parse().expect("uuid");
    let payment = a.json["payment_id"].as_str().expect("payment");
    let mut succeeded = intent(&s, payment);
    succeeded.status = IntentStatus::Succeeded;
    let tasks: Vec<_> = (0..16)
        .map(|_| {
            let (s, user, succeeded) = (s.clone(), user.clone(), succeeded.clone());
            tokio::spawn(async move {
                let stale = s
                    .state
                    .topups
                    .get(&user, id)
                    .await
                    .expect("read")
                    .expect("top-up");
                s.state
                    .topups
                    .apply(stale, &succeeded)
                    .await
                    .expect("apply")
                    .0
            })
        })
        .collect();
    for t in tasks {
        assert_eq!(t.await.expect("task").status, TopUpStatus::Succeeded);
    }
    let w = wallet(&s, &me).await;
    assert_eq!(
        (w["balance"].as_i64(), w["entry_count"].as_u64()),
        (Some(7_000), Some(1)),
        "{w}"
    );
}

common::on_all_backends!(
    racing_reports_credit_once,
    success_card_credits_once,
    refused_cards_credit_nothing,
    timeout_card_ends_failed,
    slow_cards_settle_by_webhook_or_are_refunded,
);
