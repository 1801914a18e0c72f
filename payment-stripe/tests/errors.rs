//! Stripe's error answers as the library's `GatewayError`s.
// The fixtures are large `json!` literals.
#![recursion_limit = "256"]

mod common;

use std::time::Duration;

use common::fixtures::{self, Cs, Pi, hold_metadata};
use common::{gateway_on, posted};
use serde_json::json;
use ticket_core::gateway::{
    CaptureMethod, CaptureRequest, CheckoutSessionId, CheckoutSessionStatus, GatewayError,
    IntentId, IntentStatus, NewIntent, PaymentGateway, RefundRequest,
};
use ticket_core::model::money::{Currency, Money};
use wiremock::matchers::{header, method, path};
use wiremock::{Mock, MockServer, ResponseTemplate};

const PI: &str = "pi_3PtrTestIntent0001";
const CS: &str = "cs_test_a1TrTestSession0001";

fn id() -> IntentId {
    IntentId::new(PI).expect("id")
}

fn answer(status: u16, body: serde_json::Value) -> ResponseTemplate {
    ResponseTemplate::new(status).set_body_json(body)
}

async fn server() -> (MockServer, payment_stripe::StripeGateway) {
    let server = MockServer::start().await;
    let gateway = gateway_on(&server, Duration::from_secs(5));
    (server, gateway)
}

fn new_intent(key: &str) -> NewIntent {
    NewIntent {
        amount: Money::new(50_000, Currency::new("KRW").expect("KRW")).expect("amount"),
        payment_method: "pm_card_visa".into(),
        capture_method: CaptureMethod::Manual,
        metadata: hold_metadata("h"),
        idempotency_key: key.into(),
    }
}

async fn mount_get(server: &MockServer, pi: serde_json::Value) {
    Mock::given(method("GET"))
        .and(path(format!("/v1/payment_intents/{PI}")))
        .respond_with(answer(200, pi))
        .mount(server)
        .await;
}

#[tokio::test]
async fn a_declined_card_is_the_failed_intent_not_an_error() {
    let (server, gateway) = server().await;
    posted(
        Mock::given(method("POST")),
        &format!("ticketrush-confirm-{PI}"),
    )
    .and(path(format!("/v1/payment_intents/{PI}/confirm")))
    .respond_with(answer(
        402,
        fixtures::card_declined(
            PI,
            "insufficient_funds",
            "Your card has insufficient funds.",
        ),
    ))
    .expect(1)
    .mount(&server)
    .await;
    let intent = gateway.confirm_intent(&id()).await.expect("an intent");
    assert_eq!(intent.status, IntentStatus::Failed);
    let failure = intent.failure.clone().expect("why");
    assert_eq!(failure.code, "insufficient_funds");
    assert_eq!(failure.message, "Your card has insufficient funds.");
    assert_eq!(
        intent.hold().map(|h| h.to_string()).as_deref(),
        Some(fixtures_hold())
    );
}

fn fixtures_hold() -> &'static str {
    "0192a3b4-c5d6-7e8f-9a0b-1c2d3e4f5a6b"
}

#[tokio::test]
async fn a_generic_decline_reports_card_declined() {
    let (server, gateway) = server().await;
    Mock::given(method("POST"))
        .respond_with(answer(
            402,
            fixtures::card_declined(PI, "generic_decline", "Your card was declined."),
        ))
        .mount(&server)
        .await;
    let intent = gateway.confirm_intent(&id()).await.expect("an intent");
    assert_eq!(intent.status, IntentStatus::Failed);
    assert_eq!(intent.failure.expect("why").code, "card_declined");
}

#[tokio::test]
async fn a_reused_idempotency_key_is_key_reused() {
    let (server, gateway) = server().await;
    Mock::given(method("POST"))
        .and(path("/v1/payment_intents"))
        .respond_with(answer(
            400,
            fixtures::error(
                "idempotency_error",
                None,
                "Keys for idempotent requests can only be used with the same parameters they were first used with.",
            ),
        ))
        .mount(&server)
        .await;
    assert_eq!(
        gateway.create_intent(new_intent("k1")).await,
        Err(GatewayError::KeyReused)
    );
}

#[tokio::test]
async fn a_key_still_in_use_is_transient() {
    let (server, gateway) = server().await;
    Mock::given(method("POST"))
        .respond_with(answer(
            409,
            fixtures::error(
                "idempotency_error",
                Some("idempotency_key_in_use"),
                "There is currently another in-progress request using this Idempotency-Key.",
            ),
        ))
        .mount(&server)
        .await;
    let err = gateway
        .create_intent(new_intent("k1"))
        .await
        .expect_err("busy");
    assert!(matches!(err, GatewayError::Unavailable(_)), "{err:?}");
    assert!(err.is_transient());
}

#[tokio::test]
async fn rate_limited_posts_are_not_repeated() {
    let (server, gateway) = server().await;
    Mock::given(method("POST"))
        .respond_with(
            answer(
                429,
                fixtures::error(
                    "invalid_request_error",
                    Some("rate_limit"),
                    "Too many requests hit the API too quickly.",
                ),
            )
            .insert_header("stripe-should-retry", "true"),
        )
        .expect(1)
        .mount(&server)
        .await;
    assert_eq!(
        gateway.create_intent(new_intent("k1")).await,
        Err(GatewayError::RateLimited)
    );
}

#[tokio::test]
async fn rate_limited_gets_are_repeated_after_retry_after() {
    let (server, gateway) = server().await;
    Mock::given(method("GET"))
        .respond_with(
            answer(
                429,
                fixtures::error(
                    "invalid_request_error",
                    Some("rate_limit"),
                    "Too many requests hit the API too quickly.",
                ),
            )
            .insert_header("retry-after", "0"),
        )
        .up_to_n_times(2)
        .expect(2)
        .mount(&server)
        .await;
    mount_get(&server, fixtures::payment_intent(&Pi::default())).await;
    let intent = gateway.get_intent(&id()).await.expect("third time lucky");
    assert_eq!(intent.status, IntentStatus::RequiresConfirmation);
}

#[tokio::test]
async fn gets_are_repeated_a_bounded_number_of_times() {
    let (server, gateway) = server().await;
    Mock::given(method("GET"))
        .respond_with(answer(
            500,
            fixtures::error("api_error", None, "An unknown error occurred."),
        ))
        .expect(3)
        .mount(&server)
        .await;
    let err = gateway.get_intent(&id()).await.expect_err("down");
    assert!(matches!(err, GatewayError::Unavailable(_)), "{err:?}");
}

#[tokio::test]
async fn stripe_should_retry_false_is_honoured() {
    let (server, gateway) = server().await;
    Mock::given(method("GET"))
        .respond_with(
            answer(
                500,
                fixtures::error("api_error", None, "An unknown error occurred."),
            )
            .insert_header("stripe-should-retry", "false"),
        )
        .expect(1)
        .mount(&server)
        .await;
    assert!(matches!(
        gateway.get_intent(&id()).await,
        Err(GatewayError::Unavailable(_))
    ));
}

#[tokio::test]
async fn an_api_error_is_unavailable() {
    let (server, gateway) = server().await;
    Mock::given(method("POST"))
        .respond_with(answer(
            500,
            fixtures::error("api_error", None, "An unknown error occurred."),
        ))
        .expect(1)
        .mount(&server)
        .await;
    let err = gateway.confirm_intent(&id()).await.expect_err("down");
    assert!(matches!(err, GatewayError::Unavailable(_)), "{err:?}");
    assert!(err.is_transient());
}

#[tokio::test]
async fn a_non_json_error_page_is_unavailable() {
    let (server, gateway) = server().await;
    Mock::given(method("POST"))
        .respond_with(ResponseTemplate::new(502).set_body_string("<html>Bad Gateway</html>"))
        .mount(&server)
        .await;
    let err = gateway.cancel_intent(&id()).await.expect_err("down");
    assert!(
        matches!(&err, GatewayError::Unavailable(m) if m.contains("Bad Gateway")),
        "{err:?}"
    );
}

#[tokio::test]
async fn a_missing_resource_is_not_found() {
    let (server, gateway) = server().await;
    Mock::given(method("GET"))
        .respond_with(answer(
            404,
            fixtures::error(
                "invalid_request_error",
                Some("resource_missing"),
                "No such payment_intent: 'pi_3PtrTestIntent0001'",
            ),
        ))
        .expect(1)
        .mount(&server)
        .await;
    assert_eq!(
        gateway.get_intent(&id()).await,
        Err(GatewayError::NotFound(PI.into()))
    );
}

#[tokio::test]
async fn a_missing_payment_method_is_invalid_not_not_found() {
    let (server, gateway) = server().await;
    let mut body = fixtures::error(
        "invalid_request_error",
        Some("resource_missing"),
        "No such PaymentMethod: 'pm_nope'",
    );
    body["error"]["param"] = json!("payment_method");
    Mock::given(method("POST"))
        .respond_with(answer(400, body))
        .mount(&server)
        .await;
    let err = gateway
        .create_intent(new_intent("k"))
        .await
        .expect_err("refused");
    assert!(
        matches!(&err, GatewayError::Invalid(m) if m.contains("payment_method")),
        "{err:?}"
    );
}

#[tokio::test]
async fn an_unauthorized_key_is_unavailable_and_does_not_leak() {
    let (server, gateway) = server().await;
    Mock::given(method("GET"))
        .respond_with(answer(
            401,
            fixtures::error(
                "invalid_request_error",
                None,
                "Invalid API Key provided: sk_test_********0000",
            ),
        ))
        .expect(1)
        .mount(&server)
        .await;
    let err = gateway.get_intent(&id()).await.expect_err("refused");
    assert!(matches!(err, GatewayError::Unavailable(_)), "{err:?}");
    assert!(!err.to_string().contains(fixtures::SECRET_KEY));
}

#[tokio::test]
async fn capturing_a_captured_intent_is_a_conflict_with_succeeded() {
    let (server, gateway) = server().await;
    let succeeded = fixtures::payment_intent(&Pi {
        status: "succeeded",
        amount_received: 50_000,
        ..Pi::default()
    });
    Mock::given(method("POST"))
        .and(path(format!("/v1/payment_intents/{PI}/capture")))
        .respond_with(answer(
            400,
            fixtures::unexpected_state(
                succeeded.clone(),
                "This PaymentIntent could not be captured because it has a status of succeeded. Only a PaymentIntent with one of the following statuses may be captured: requires_capture.",
            ),
        ))
        .expect(1)
        .mount(&server)
        .await;
    mount_get(&server, succeeded).await;
    let err = gateway
        .capture(CaptureRequest {
            intent: id(),
            amount_minor: None,
            idempotency_key: "another-key".into(),
        })
        .await
        .expect_err("conflict");
    assert_eq!(
        err,
        GatewayError::Conflict {
            action: "capture".into(),
            status: IntentStatus::Succeeded
        }
    );
}

#[tokio::test]
async fn capturing_a_voided_intent_is_a_conflict_with_canceled() {
    let (server, gateway) = server().await;
    let canceled = fixtures::payment_intent(&Pi {
        status: "canceled",
        ..Pi::default()
    });
    Mock::given(method("POST"))
        .respond_with(answer(
            400,
            fixtures::unexpected_state(
                canceled.clone(),
                "This PaymentIntent could not be captured because it has a status of canceled.",
            ),
        ))
        .mount(&server)
        .await;
    mount_get(&server, canceled).await;
    let err = gateway
        .capture(CaptureRequest {
            intent: id(),
            amount_minor: None,
            idempotency_key: "k".into(),
        })
        .await
        .expect_err("conflict");
    assert!(
        matches!(
            err,
            GatewayError::Conflict {
                status: IntentStatus::Canceled,
                ..
            }
        ),
        "{err:?}"
    );
}

#[tokio::test]
async fn canceling_a_canceled_intent_succeeds() {
    let (server, gateway) = server().await;
    let canceled = fixtures::payment_intent(&Pi {
        status: "canceled",
        ..Pi::default()
    });
    Mock::given(method("POST"))
        .and(path(format!("/v1/payment_intents/{PI}/cancel")))
        .respond_with(answer(
            400,
            fixtures::unexpected_state(
                canceled.clone(),
                "You cannot cancel this PaymentIntent because it has a status of canceled.",
            ),
        ))
        .expect(1)
        .mount(&server)
        .await;
    mount_get(&server, canceled).await;
    let intent = gateway.void(&id()).await.expect("idempotent");
    assert_eq!(intent.status, IntentStatus::Canceled);
}

#[tokio::test]
async fn canceling_a_succeeded_intent_is_a_conflict() {
    let (server, gateway) = server().await;
    let succeeded = fixtures::payment_intent(&Pi {
        status: "succeeded",
        amount_received: 50_000,
        ..Pi::default()
    });
    Mock::given(method("POST"))
        .respond_with(answer(
            400,
            fixtures::unexpected_state(
                succeeded.clone(),
                "You cannot cancel this PaymentIntent because it has a status of succeeded.",
            ),
        ))
        .expect(1)
        .mount(&server)
        .await;
    mount_get(&server, succeeded).await;
    assert_eq!(
        gateway.cancel_intent(&id()).await,
        Err(GatewayError::Conflict {
            action: "cancel".into(),
            status: IntentStatus::Succeeded
        })
    );
}

#[tokio::test]
async fn a_stale_refusal_replayed_under_the_cancel_key_is_asked_again() {
    let (server, gateway) = server().await;
    // Stripe replays the first answer under `ticketrush-cancel-<pi>` (a refusal from when the
    // intent was processing); the intent is cancelable now.
    Mock::given(method("POST"))
        .and(header(
            "idempotency-key",
            &*format!("ticketrush-cancel-{PI}"),
        ))
        .respond_with(answer(
            400,
            fixtures::unexpected_state(
                fixtures::payment_intent(&Pi {
                    status: "processing",
                    ..Pi::default()
                }),
                "You cannot cancel this PaymentIntent because it has a status of processing.",
            ),
        ))
        .expect(1)
        .mount(&server)
        .await;
    mount_get(
        &server,
        fixtures::payment_intent(&Pi {
            status: "requires_capture",
            amount_capturable: 50_000,
            ..Pi::default()
        }),
    )
    .await;
    posted(
        Mock::given(method("POST")),
        &format!("ticketrush-cancel-{PI}-from-requires_capture"),
    )
    .respond_with(answer(
        200,
        fixtures::payment_intent(&Pi {
            status: "canceled",
            ..Pi::default()
        }),
    ))
    .expect(1)
    .mount(&server)
    .await;
    let intent = gateway.void(&id()).await.expect("voided");
    assert_eq!(intent.status, IntentStatus::Canceled);
}

#[tokio::test]
async fn confirming_an_intent_past_confirmation_returns_it() {
    let (server, gateway) = server().await;
    let succeeded = fixtures::payment_intent(&Pi {
        status: "succeeded",
        amount_received: 50_000,
        capture_method: "automatic",
        ..Pi::default()
    });
    Mock::given(method("POST"))
        .respond_with(answer(
            400,
            fixtures::unexpected_state(
                succeeded.clone(),
                "This PaymentIntent's status is succeeded; it cannot be confirmed.",
            ),
        ))
        .mount(&server)
        .await;
    mount_get(&server, succeeded).await;
    let intent = gateway.confirm_intent(&id()).await.expect("harmless");
    assert_eq!(intent.status, IntentStatus::Succeeded);
}

#[tokio::test]
async fn refunding_a_fully_refunded_intent_is_a_conflict() {
    let (server, gateway) = server().await;
    Mock::given(method("POST"))
        .and(path("/v1/refunds"))
        .respond_with(answer(
            400,
            fixtures::error(
                "invalid_request_error",
                Some("charge_already_refunded"),
                "Charge ch_3PtrTestCharge01 has already been refunded.",
            ),
        ))
        .mount(&server)
        .await;
    let charge = fixtures::charge(
        "ch_3PtrTestCharge01",
        PI,
        50_000,
        "krw",
        true,
        50_000,
        None,
        &hold_metadata("h"),
    );
    mount_get(
        &server,
        fixtures::payment_intent(&Pi {
            status: "succeeded",
            amount_received: 50_000,
            latest_charge: charge,
            ..Pi::default()
        }),
    )
    .await;
    let err = gateway
        .refund(RefundRequest {
            intent: id(),
            amount_minor: None,
            reason: "r".into(),
            idempotency_key: "k".into(),
        })
        .await
        .expect_err("nothing left");
    assert_eq!(
        err,
        GatewayError::Conflict {
            action: "refund".into(),
            status: IntentStatus::Succeeded
        }
    );
}

#[tokio::test]
async fn refunding_an_unknown_intent_is_not_found() {
    let (server, gateway) = server().await;
    let mut body = fixtures::error(
        "invalid_request_error",
        Some("resource_missing"),
        "No such payment_intent: 'pi_3PtrTestIntent0001'",
    );
    body["error"]["param"] = json!("payment_intent");
    Mock::given(method("POST"))
        .respond_with(answer(400, body))
        .mount(&server)
        .await;
    let err = gateway
        .refund(RefundRequest {
            intent: id(),
            amount_minor: Some(1),
            reason: "r".into(),
            idempotency_key: "k".into(),
        })
        .await
        .expect_err("missing");
    assert_eq!(err, GatewayError::NotFound(PI.into()));
}

#[tokio::test]
async fn expiring_a_completed_session_is_a_conflict_with_its_intents_status() {
    let (server, gateway) = server().await;
    Mock::given(method("POST"))
        .and(path(format!("/v1/checkout/sessions/{CS}/expire")))
        .respond_with(answer(
            400,
            fixtures::error(
                "invalid_request_error",
                None,
                "Only Checkout Sessions with a status in [\"open\"] can be expired.",
            ),
        ))
        .mount(&server)
        .await;
    Mock::given(method("GET"))
        .and(path(format!("/v1/checkout/sessions/{CS}")))
        .respond_with(answer(
            200,
            fixtures::checkout_session(&Cs {
                status: "complete",
                payment_intent: json!(PI),
                ..Cs::default()
            }),
        ))
        .mount(&server)
        .await;
    mount_get(
        &server,
        fixtures::payment_intent(&Pi {
            status: "requires_capture",
            amount_capturable: 50_000,
            ..Pi::default()
        }),
    )
    .await;
    let err = gateway
        .expire_checkout_session(&CheckoutSessionId::new(CS).expect("id"))
        .await
        .expect_err("completed");
    assert_eq!(
        err,
        GatewayError::Conflict {
            action: "expire checkout session".into(),
            status: IntentStatus::RequiresCapture
        }
    );
}

#[tokio::test]
async fn expiring_an_expired_session_succeeds() {
    let (server, gateway) = server().await;
    Mock::given(method("POST"))
        .respond_with(answer(
            400,
            fixtures::error(
                "invalid_request_error",
                None,
                "Only Checkout Sessions with a status in [\"open\"] can be expired.",
            ),
        ))
        .mount(&server)
        .await;
    Mock::given(method("GET"))
        .respond_with(answer(
            200,
            fixtures::checkout_session(&Cs {
                status: "expired",
                ..Cs::default()
            }),
        ))
        .mount(&server)
        .await;
    let session = gateway
        .expire_checkout_session(&CheckoutSessionId::new(CS).expect("id"))
        .await
        .expect("idempotent");
    assert_eq!(session.status, CheckoutSessionStatus::Expired);
}

#[tokio::test]
async fn a_slow_answer_is_a_timeout() {
    let server = MockServer::start().await;
    let gateway = gateway_on(&server, Duration::from_millis(200));
    Mock::given(method("POST"))
        .respond_with(
            answer(200, fixtures::payment_intent(&Pi::default())).set_delay(Duration::from_secs(2)),
        )
        .mount(&server)
        .await;
    assert_eq!(
        gateway.confirm_intent(&id()).await,
        Err(GatewayError::Timeout)
    );
}

#[tokio::test]
async fn an_unknown_status_is_an_unreadable_answer() {
    let (server, gateway) = server().await;
    mount_get(
        &server,
        fixtures::payment_intent(&Pi {
            status: "some_future_status",
            ..Pi::default()
        }),
    )
    .await;
    assert!(matches!(
        gateway.get_intent(&id()).await,
        Err(GatewayError::Unavailable(_))
    ));
}

#[tokio::test]
async fn an_unreachable_stripe_is_unavailable() {
    // A port nothing listens on.
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let addr = listener.local_addr().expect("addr");
    drop(listener);
    let mut config = payment_stripe::StripeConfig::new(fixtures::SECRET_KEY)
        .with_api_base(format!("http://{addr}"));
    config.get_retries = 1;
    config.max_retry_wait = Duration::from_millis(10);
    let gateway = payment_stripe::StripeGateway::new(config).expect("gateway");
    let err = gateway.get_intent(&id()).await.expect_err("nobody there");
    assert!(matches!(err, GatewayError::Unavailable(_)), "{err:?}");
}
