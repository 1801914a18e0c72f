//! Every operation's request (method, path, form body, headers) and the mapping of Stripe's
//! answer, against wiremock.
// The fixtures are large `json!` literals.
#![recursion_limit = "256"]

mod common;

use common::answers::{
    Call, answer, answered, any, at, form_posted, intent_id, krw, new_intent, refused, session_id,
    stripe,
};
use common::fixtures::{self, CS, Cs, HOLD, PI, Pi, hold_metadata};
use common::shop::now_secs;
use common::{authenticated, map, posted};
use payment_stripe::{ConfigError, StripeConfig, StripeGateway};
use serde_json::json;
use ticket_core::Timestamp;
use ticket_core::gateway::{
    CaptureMethod, CaptureRequest, CheckoutSessionStatus, GatewayError, IntentId, IntentStatus,
    NewCheckoutSession, NewIntent, PaymentGateway, RefundRequest,
};
use ticket_core::model::money::{Currency, Money};
use wiremock::matchers::{method, path, query_param};
use wiremock::{Match, Mock, Request};

/// Matches a request without this header.
struct NoHeader(&'static str);

impl Match for NoHeader {
    fn matches(&self, request: &Request) -> bool {
        !request.headers.contains_key(self.0)
    }
}

/// The form of an intent created with automatic payment methods but no redirects.
fn intent_form<'a>(
    amount: &'a str,
    currency: &'a str,
    capture_method: &'a str,
) -> Vec<(&'a str, &'a str)> {
    vec![
        ("amount", amount),
        ("currency", currency),
        ("payment_method", "pm_card_visa"),
        ("capture_method", capture_method),
        ("automatic_payment_methods[enabled]", "true"),
        ("automatic_payment_methods[allow_redirects]", "never"),
    ]
}

/// Exactly `times` POSTs of `action` on the fixtures' intent under the key derived from it,
/// expanding the latest charge, answered 200 with `pi`.
fn intent_action(action: &str, pi: serde_json::Value, times: u64) -> Mock {
    form_posted(
        &format!("ticketrush-{action}-{PI}"),
        &format!("/v1/payment_intents/{PI}/{action}"),
        &[("expand[]", "latest_charge")],
        pi,
        times,
    )
}

#[tokio::test]
async fn create_intent_posts_the_form_under_the_requests_key() {
    let mut form = intent_form("50000", "krw", "manual");
    form.push(("metadata[ticketrush_hold]", HOLD));
    let created = form_posted(
        "ticketrush-checkout-h1",
        "/v1/payment_intents",
        &form,
        fixtures::payment_intent(&Pi::default()),
        1,
    );
    let intent = answered(
        [created],
        Call::Create(new_intent("ticketrush-checkout-h1")),
        "created",
    )
    .await
    .intent();
    assert_eq!(intent.id, intent_id());
    assert_eq!(intent.status, IntentStatus::RequiresConfirmation);
    assert_eq!(intent.amount, krw(50_000));
    assert_eq!(intent.capture_method, CaptureMethod::Manual);
    assert_eq!(intent.metadata, hold_metadata(HOLD));
    assert_eq!(intent.hold().map(|h| h.to_string()).as_deref(), Some(HOLD));
    assert_eq!(intent.created_at, Timestamp::from_millis(1_765_000_000_000));
}

#[tokio::test]
async fn a_zero_decimal_currency_is_sent_as_is() {
    let created = form_posted(
        "k-jpy",
        "/v1/payment_intents",
        &intent_form("1200", "jpy", "automatic"),
        fixtures::payment_intent(&Pi {
            amount: 1200,
            currency: "jpy",
            capture_method: "automatic",
            metadata: Default::default(),
            ..Pi::default()
        }),
        1,
    );
    let yen = Money::new(1200, Currency::new("JPY").expect("JPY")).expect("amount");
    let request = NewIntent {
        amount: yen,
        payment_method: "pm_card_visa".into(),
        capture_method: CaptureMethod::Automatic,
        metadata: Default::default(),
        idempotency_key: "k-jpy".into(),
    };
    let intent = answered([created], Call::Create(request), "created")
        .await
        .intent();
    assert_eq!(intent.amount, yen);
    assert_eq!(intent.capture_method, CaptureMethod::Automatic);
}

#[tokio::test]
async fn confirm_uses_a_key_derived_from_the_intent_and_reads_the_authorization() {
    let charge = fixtures::the_charge(false, 0, Some(1_765_604_800), &hold_metadata(HOLD));
    let (_server, gateway) = stripe([intent_action(
        "confirm",
        fixtures::payment_intent(&Pi {
            status: "requires_capture",
            amount_capturable: 50_000,
            latest_charge: charge,
            ..Pi::default()
        }),
        2,
    )])
    .await;
    for _ in 0..2 {
        let intent = gateway
            .confirm_intent(&intent_id())
            .await
            .expect("confirmed");
        assert_eq!(intent.status, IntentStatus::RequiresCapture);
        assert_eq!(intent.amount_capturable, 50_000);
        assert_eq!(intent.amount_received, 0);
        assert_eq!(
            intent.authorization_expires_at,
            Some(Timestamp::from_millis(1_765_604_800_000))
        );
    }
}

#[tokio::test]
async fn get_intent_expands_the_latest_charge_for_refunds_and_sends_no_key() {
    let charge = fixtures::the_charge(true, 20_000, None, &hold_metadata(HOLD));
    let read = authenticated(Mock::given(method("GET")))
        .and(path(format!("/v1/payment_intents/{PI}")))
        .and(query_param("expand[]", "latest_charge"))
        .and(NoHeader("idempotency-key"))
        .respond_with(answer(
            200,
            fixtures::payment_intent(&Pi {
                status: "succeeded",
                amount_received: 50_000,
                latest_charge: charge,
                ..Pi::default()
            }),
        ))
        .expect(1);
    let intent = answered([read], Call::Get(intent_id()), "read")
        .await
        .intent();
    assert_eq!(intent.status, IntentStatus::Succeeded);
    assert_eq!(intent.amount_received, 50_000);
    assert_eq!(intent.amount_refunded, 20_000);
    assert!(!intent.fully_refunded());
    assert_eq!(intent.authorization_expires_at, None);
}

#[tokio::test]
async fn an_unexpanded_charge_is_read_as_nothing_refunded() {
    let pi = fixtures::payment_intent(&Pi {
        status: "succeeded",
        capture_method: "automatic_async",
        amount_received: 50_000,
        latest_charge: json!("ch_3PtrTestCharge01"),
        ..Pi::default()
    });
    let intent = answered(
        [any("GET", answer(200, pi))],
        Call::Get(intent_id()),
        "read",
    )
    .await
    .intent();
    assert_eq!(intent.amount_refunded, 0);
    assert_eq!(intent.capture_method, CaptureMethod::Automatic);
}

#[tokio::test]
async fn cancel_and_void_are_the_same_cancel_under_the_same_key() {
    let (_server, gateway) = stripe([intent_action(
        "cancel",
        fixtures::payment_intent(&Pi {
            status: "canceled",
            ..Pi::default()
        }),
        2,
    )])
    .await;
    let canceled = gateway.cancel_intent(&intent_id()).await.expect("canceled");
    assert_eq!(canceled.status, IntentStatus::Canceled);
    let voided = gateway.void(&intent_id()).await.expect("voided");
    assert_eq!(voided.status, IntentStatus::Canceled);
}

#[tokio::test]
async fn capture_sends_amount_to_capture_only_for_a_partial_capture() {
    let captured = |key: &str, form: &[(&str, &str)], received: i64| {
        form_posted(
            key,
            &format!("/v1/payment_intents/{PI}/capture"),
            form,
            fixtures::payment_intent(&Pi {
                status: "succeeded",
                amount_received: received,
                latest_charge: json!("ch_3PtrTestCharge01"),
                ..Pi::default()
            }),
            1,
        )
    };
    let (_server, gateway) = stripe([
        captured(
            "cap-part",
            &[
                ("amount_to_capture", "30000"),
                ("expand[]", "latest_charge"),
            ],
            30_000,
        ),
        captured("cap-all", &[("expand[]", "latest_charge")], 50_000),
    ])
    .await;
    let capture = |amount_minor: Option<i64>, key: &str| CaptureRequest {
        intent: intent_id(),
        amount_minor,
        idempotency_key: key.into(),
    };
    let part = gateway
        .capture(capture(Some(30_000), "cap-part"))
        .await
        .expect("captured");
    assert_eq!(
        (part.status, part.amount_received),
        (IntentStatus::Succeeded, 30_000)
    );
    let all = gateway
        .capture(capture(None, "cap-all"))
        .await
        .expect("captured");
    assert_eq!(all.received_minor(), 50_000);
}

/// A refund of the fixtures' charge, as Stripe answers it.
fn refund_of(id: &str, amount: i64, status: &str, reason: &str) -> serde_json::Value {
    fixtures::refund(id, PI, "ch_3PtrTestCharge01", amount, "krw", status, reason)
}

/// A refund of `amount_minor` (all that is left: `None`) for `reason`, under `key`.
fn refund_request(amount_minor: Option<i64>, reason: &str, key: &str) -> RefundRequest {
    RefundRequest {
        intent: intent_id(),
        amount_minor,
        reason: reason.into(),
        idempotency_key: key.into(),
    }
}

#[tokio::test]
async fn refund_posts_the_intent_amount_and_reason() {
    let (_server, gateway) = stripe([
        form_posted(
            "ticketrush-refund-pi",
            "/v1/refunds",
            &[
                ("payment_intent", PI),
                ("amount", "20000"),
                ("metadata[reason]", "LatePayment"),
            ],
            refund_of("re_3PtrTestRefund01", 20_000, "succeeded", "LatePayment"),
            1,
        ),
        form_posted(
            "refund-all",
            "/v1/refunds",
            &[
                ("payment_intent", PI),
                ("metadata[reason]", "DuplicatePayment"),
            ],
            refund_of("re_3PtrTestRefund02", 50_000, "pending", "DuplicatePayment"),
            1,
        ),
    ])
    .await;
    let refund = gateway
        .refund(refund_request(
            Some(20_000),
            "LatePayment",
            "ticketrush-refund-pi",
        ))
        .await
        .expect("refunded");
    assert_eq!(refund.id, "re_3PtrTestRefund01");
    assert_eq!(refund.intent, intent_id());
    assert_eq!(refund.amount, krw(20_000));
    let all = gateway
        .refund(refund_request(None, "DuplicatePayment", "refund-all"))
        .await
        .expect("a pending refund is a refund");
    assert_eq!(all.amount, krw(50_000));
}

#[tokio::test]
async fn a_failed_refund_is_declined() {
    let failed = refund_of("re_3PtrTestRefund03", 50_000, "failed", "x");
    let err = refused(
        [at("POST", "/v1/refunds", answer(200, failed))],
        Call::Refund(refund_request(None, "x", "k")),
        "failed refund",
    )
    .await;
    assert!(
        matches!(&err, GatewayError::Declined { code, .. } if code == "refund_failed"),
        "{err:?}"
    );
}

#[tokio::test]
async fn create_checkout_session_posts_one_line_item_and_both_metadata() {
    let hold_ends = now_secs() + 600;
    let created = posted(
        Mock::given(method("POST")),
        "ticketrush-checkout-session-h1",
    )
    .and(path("/v1/checkout/sessions"))
    .respond_with(answer(
        200,
        fixtures::checkout_session(&Cs {
            metadata: map(&[
                ("ticketrush_hold", HOLD),
                ("ticketrush_capture_method", "manual"),
            ]),
            success_url: "https://shop.example/return?hold=1&session_id={CHECKOUT_SESSION_ID}",
            expires_at: hold_ends + 1860,
            ..Cs::default()
        }),
    ))
    .expect(1);
    let (server, gateway) = stripe([created]).await;
    let session = gateway
        .create_checkout_session(NewCheckoutSession {
            amount: krw(50_000),
            capture_method: CaptureMethod::Manual,
            return_url: "https://shop.example/return?hold=1".into(),
            description: "1 ticket(s), reservation h1".into(),
            metadata: hold_metadata(HOLD),
            expires_at: Timestamp::from_millis(hold_ends * 1000),
            idempotency_key: "ticketrush-checkout-session-h1".into(),
        })
        .await
        .expect("session");
    assert_eq!(session.id.as_str(), CS);
    assert_eq!(session.status, CheckoutSessionStatus::Open);
    assert_eq!(
        session.url,
        format!("https://checkout.stripe.com/c/pay/{CS}")
    );
    assert_eq!(session.amount, krw(50_000));
    assert_eq!(session.capture_method, CaptureMethod::Manual);
    assert_eq!(
        session.metadata,
        hold_metadata(HOLD),
        "the private key is not shown"
    );
    assert_eq!(session.return_url, "https://shop.example/return?hold=1");
    assert_eq!(session.intent, None);

    let requests = server.received_requests().await.expect("recorded");
    let form = common::form_of(&requests[0]);
    let get = |k: &str| {
        form.iter()
            .find(|(key, _)| key == k)
            .map(|(_, v)| v.as_str())
    };
    assert_eq!(get("mode"), Some("payment"));
    assert_eq!(get("line_items[0][quantity]"), Some("1"));
    assert_eq!(get("line_items[0][price_data][currency]"), Some("krw"));
    assert_eq!(get("line_items[0][price_data][unit_amount]"), Some("50000"));
    assert_eq!(
        get("line_items[0][price_data][product_data][name]"),
        Some("1 ticket(s), reservation h1")
    );
    assert_eq!(get("payment_intent_data[capture_method]"), Some("manual"));
    assert_eq!(
        get("payment_intent_data[metadata][ticketrush_hold]"),
        Some(HOLD)
    );
    assert_eq!(
        get("payment_intent_data[metadata][ticketrush_hosted_checkout]"),
        Some("true"),
        "the session's intents are marked as the hosted page's"
    );
    assert_eq!(get("metadata[ticketrush_hold]"), Some(HOLD));
    assert_eq!(get("metadata[ticketrush_capture_method]"), Some("manual"));
    assert_eq!(
        get("success_url"),
        Some("https://shop.example/return?hold=1&session_id={CHECKOUT_SESSION_ID}")
    );
    assert_eq!(
        get("cancel_url"),
        Some("https://shop.example/return?hold=1&session_id={CHECKOUT_SESSION_ID}&canceled=1")
    );
    // A hold ending in 10 minutes: Stripe's minimum of 30 minutes applies, counted from the
    // hold's end so a repeated creation sends the same value.
    assert_eq!(get("expires_at"), Some(&*(hold_ends + 1860).to_string()));
    assert_eq!(form.len(), 13, "{form:?}");
}

#[tokio::test]
async fn get_checkout_session_reads_a_completed_session() {
    let read = authenticated(Mock::given(method("GET")))
        .and(path(format!("/v1/checkout/sessions/{CS}")))
        .and(NoHeader("idempotency-key"))
        .respond_with(answer(
            200,
            fixtures::checkout_session(&Cs {
                status: "complete",
                payment_intent: json!(PI),
                metadata: map(&[
                    ("ticketrush_hold", HOLD),
                    ("ticketrush_capture_method", "manual"),
                ]),
                ..Cs::default()
            }),
        ))
        .expect(1);
    let session = answered([read], Call::GetSession(session_id()), "read")
        .await
        .session();
    assert_eq!(session.status, CheckoutSessionStatus::Complete);
    assert_eq!(session.intent, Some(intent_id()));
    assert_eq!(
        session.url, "",
        "Stripe clears the url of a session no longer open"
    );
    assert_eq!(session.capture_method, CaptureMethod::Manual);
    assert_eq!(session.hold().map(|h| h.to_string()).as_deref(), Some(HOLD));
    assert_eq!(session.return_url, "https://shop.example/return");
    assert_eq!(
        session.expires_at,
        Timestamp::from_millis(1_765_001_860_000)
    );
}

#[tokio::test]
async fn expire_uses_a_key_derived_from_the_session() {
    let expired = form_posted(
        &format!("ticketrush-expire-{CS}"),
        &format!("/v1/checkout/sessions/{CS}/expire"),
        &[],
        fixtures::checkout_session(&Cs {
            status: "expired",
            ..Cs::default()
        }),
        1,
    );
    let session = answered([expired], Call::ExpireSession(session_id()), "expired")
        .await
        .session();
    assert_eq!(session.status, CheckoutSessionStatus::Expired);
}

#[tokio::test]
async fn malformed_requests_are_refused_before_anything_is_sent() {
    let (server, gateway) = stripe([]).await;
    let new = |amount: i64, pm: &str, key: &str| NewIntent {
        amount: krw(amount),
        payment_method: pm.into(),
        capture_method: CaptureMethod::Manual,
        metadata: hold_metadata(HOLD),
        idempotency_key: key.into(),
    };
    for req in [
        new(0, "pm_card_visa", "k"),
        new(100, "", "k"),
        new(100, "pm card", "k"),
        new(100, "pm_card_visa", ""),
        new(100, "pm_card_visa", "key with spaces"),
    ] {
        let err = gateway.create_intent(req).await.expect_err("refused");
        assert!(matches!(err, GatewayError::Invalid(_)), "{err:?}");
    }
    let sneaky = IntentId::new("pi_1/../../v1/refunds").expect("a valid IntentId");
    assert!(matches!(
        gateway.get_intent(&sneaky).await,
        Err(GatewayError::Invalid(_))
    ));
    let session = |url: &str, description: &str| NewCheckoutSession {
        amount: krw(100),
        capture_method: CaptureMethod::Manual,
        return_url: url.into(),
        description: description.into(),
        metadata: hold_metadata(HOLD),
        expires_at: Timestamp::from_millis(0),
        idempotency_key: "k".into(),
    };
    for req in [
        session("/relative", "tickets"),
        session("ftp://x.example/", "tickets"),
        session("https://shop.example/", "  "),
    ] {
        let err = gateway
            .create_checkout_session(req)
            .await
            .expect_err("refused");
        assert!(matches!(err, GatewayError::Invalid(_)), "{err:?}");
    }
    assert!(
        server
            .received_requests()
            .await
            .expect("recorded")
            .is_empty(),
        "nothing reached Stripe"
    );
}

#[test]
fn capabilities_are_all_offered() {
    let gateway = StripeGateway::new(
        StripeConfig::new(fixtures::SECRET_KEY).with_api_base("http://127.0.0.1:9"),
    )
    .expect("gateway");
    let c = gateway.capabilities();
    assert!(c.manual_capture && c.partial_capture && c.hosted_checkout);
}

#[test]
fn the_api_base_is_https_or_loopback() {
    let build = |base: &str| {
        StripeGateway::new(StripeConfig::new(fixtures::SECRET_KEY).with_api_base(base))
    };
    // HTTPS needs the (default) `rustls` feature; without it only loopback HTTP is built.
    assert_eq!(
        build("https://api.stripe.com").is_ok(),
        cfg!(feature = "rustls")
    );
    assert!(build("http://127.0.0.1:12111").is_ok());
    assert!(build("http://localhost:12111/").is_ok());
    assert!(build("http://[::1]:12111").is_ok());
    for bad in [
        "http://api.stripe.com",
        "http://10.0.0.8:80",
        "ftp://api.stripe.com",
        "https://api.stripe.com/?x=1",
        "https://user@api.stripe.com",
        "not a url",
    ] {
        assert!(
            matches!(build(bad), Err(ConfigError::InvalidApiBase { .. })),
            "{bad}"
        );
    }
    assert!(matches!(
        StripeGateway::new(StripeConfig::new("pk_test_123")),
        Err(ConfigError::InvalidSecretKey(_))
    ));
    let shown = format!("{:?}", build("http://127.0.0.1:12111").expect("gateway"));
    assert!(!shown.contains("ticketrushFAKEkey"), "{shown}");
}

#[tokio::test]
async fn a_declined_attempt_on_the_hosted_page_is_not_final() {
    let declined = fixtures::card_declined(PI, "generic_decline", "Your card was declined.");
    let mut pi = declined["error"]["payment_intent"].clone();
    pi["metadata"]["ticketrush_hosted_checkout"] = json!("true");
    let (_server, gateway) = stripe([authenticated(Mock::given(method("GET")))
        .and(path(format!("/v1/payment_intents/{PI}")))
        .respond_with(answer(200, pi))])
    .await;
    let intent = gateway.get_intent(&intent_id()).await.expect("read");
    assert_eq!(
        intent.status,
        IntentStatus::RequiresConfirmation,
        "the buyer may try another card on the same intent"
    );
    assert_eq!(
        intent.failure.as_ref().map(|f| f.code.as_str()),
        Some("card_declined"),
        "the last attempt's failure is kept"
    );
    assert_eq!(
        intent.metadata,
        hold_metadata(HOLD),
        "the marker is not shown"
    );
    let reserved = NewIntent {
        amount: krw(100),
        payment_method: "pm_card_visa".into(),
        capture_method: CaptureMethod::Manual,
        metadata: map(&[("ticketrush_hosted_checkout", "true")]),
        idempotency_key: "k".into(),
    };
    assert!(matches!(
        gateway.create_intent(reserved).await,
        Err(GatewayError::Invalid(_))
    ));
}
