//! Stripe's error answers as the library's `GatewayError`s.
// The fixtures are large `json!` literals.
#![recursion_limit = "256"]

mod common;

use std::time::Duration;

use common::answers::{
    Call, answer, answered, any, at, call_answered, intent_id, intent_read, new_intent, refused,
    session_id, stripe_error, stripe_within,
};
use common::fixtures::{self, CS, Cs, HOLD, PI, Pi, hold_metadata};
use common::posted;
use serde_json::{Value, json};
use ticket_core::gateway::{
    CaptureRequest, CheckoutSessionStatus, GatewayError, IntentStatus, PaymentGateway,
    RefundRequest,
};
use wiremock::matchers::{header, method, path};
use wiremock::{Mock, ResponseTemplate};

/// The fixtures' intent in `status`: a succeeded one received its amount, an authorized one
/// can capture it.
fn intent_in(status: &str) -> Value {
    fixtures::payment_intent(&Pi {
        status,
        amount_received: if status == "succeeded" { 50_000 } else { 0 },
        amount_capturable: if status == "requires_capture" {
            50_000
        } else {
            0
        },
        ..Pi::default()
    })
}

/// Stripe refusing a request because the intent `pi` is in the wrong state.
fn in_state(pi: &Value, message: &str) -> ResponseTemplate {
    answer(400, fixtures::unexpected_state(pi.clone(), message))
}

/// Stripe's answer to too many requests.
fn rate_limited() -> ResponseTemplate {
    stripe_error(
        429,
        "invalid_request_error",
        Some("rate_limit"),
        "Too many requests hit the API too quickly.",
    )
}

/// Stripe's answer when it failed itself.
fn api_error() -> ResponseTemplate {
    stripe_error(500, "api_error", None, "An unknown error occurred.")
}

/// Stripe's answer to a request for a missing resource (`param` names the request's field,
/// when given).
fn no_such(status: u16, what: &str, param: Option<&str>) -> ResponseTemplate {
    let mut body = fixtures::error("invalid_request_error", Some("resource_missing"), what);
    if let Some(param) = param {
        body["error"]["param"] = json!(param);
    }
    answer(status, body)
}

/// Stripe's answer to expiring a session that is not open.
fn not_open() -> ResponseTemplate {
    stripe_error(
        400,
        "invalid_request_error",
        None,
        "Only Checkout Sessions with a status in [\"open\"] can be expired.",
    )
}

/// A capture of all that is authorized, under `idempotency_key`.
fn capture_all(idempotency_key: &str) -> Call {
    Call::Capture(CaptureRequest {
        intent: intent_id(),
        amount_minor: None,
        idempotency_key: idempotency_key.into(),
    })
}

/// A refund of `amount_minor` (all that is left: `None`).
fn refund(amount_minor: Option<i64>) -> Call {
    Call::Refund(RefundRequest {
        intent: intent_id(),
        amount_minor,
        reason: "r".into(),
        idempotency_key: "k".into(),
    })
}

/// Makes `call` against Stripe answering with `mocks`, and checks that it failed as
/// `Unavailable`: the error, for more checks.
async fn unavailable(mocks: impl IntoIterator<Item = Mock>, call: Call) -> GatewayError {
    let err = refused(mocks, call, "Stripe did not serve it").await;
    assert!(matches!(err, GatewayError::Unavailable(_)), "{err:?}");
    err
}

#[tokio::test]
async fn a_declined_card_is_the_failed_intent_not_an_error() {
    let declined = posted(
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
    .expect(1);
    let intent = answered([declined], Call::Confirm(intent_id()), "an intent")
        .await
        .intent();
    assert_eq!(intent.status, IntentStatus::Failed);
    let failure = intent.failure.clone().expect("why");
    assert_eq!(failure.code, "insufficient_funds");
    assert_eq!(failure.message, "Your card has insufficient funds.");
    assert_eq!(intent.hold().map(|h| h.to_string()).as_deref(), Some(HOLD));
}

#[tokio::test]
async fn a_generic_decline_reports_card_declined() {
    let declined = fixtures::card_declined(PI, "generic_decline", "Your card was declined.");
    let intent = answered(
        [any("POST", answer(402, declined))],
        Call::Confirm(intent_id()),
        "an intent",
    )
    .await
    .intent();
    assert_eq!(intent.status, IntentStatus::Failed);
    assert_eq!(intent.failure.expect("why").code, "card_declined");
}

#[tokio::test]
async fn a_reused_idempotency_key_is_key_reused() {
    let reused = stripe_error(
        400,
        "idempotency_error",
        None,
        "Keys for idempotent requests can only be used with the same parameters they were first used with.",
    );
    assert_eq!(
        call_answered(
            [at("POST", "/v1/payment_intents", reused)],
            Call::Create(new_intent("k1"))
        )
        .await,
        Err(GatewayError::KeyReused)
    );
}

#[tokio::test]
async fn a_key_still_in_use_is_transient() {
    let busy = stripe_error(
        409,
        "idempotency_error",
        Some("idempotency_key_in_use"),
        "There is currently another in-progress request using this Idempotency-Key.",
    );
    let err = unavailable([any("POST", busy)], Call::Create(new_intent("k1"))).await;
    assert!(err.is_transient());
}

#[tokio::test]
async fn rate_limited_posts_are_not_repeated() {
    let limited = rate_limited().insert_header("stripe-should-retry", "true");
    assert_eq!(
        call_answered(
            [any("POST", limited).expect(1)],
            Call::Create(new_intent("k1"))
        )
        .await,
        Err(GatewayError::RateLimited)
    );
}

#[tokio::test]
async fn rate_limited_gets_are_repeated_after_retry_after() {
    let limited = rate_limited().insert_header("retry-after", "0");
    let intent = answered(
        [
            any("GET", limited).up_to_n_times(2).expect(2),
            intent_read(fixtures::payment_intent(&Pi::default())),
        ],
        Call::Get(intent_id()),
        "third time lucky",
    )
    .await
    .intent();
    assert_eq!(intent.status, IntentStatus::RequiresConfirmation);
}

#[tokio::test]
async fn gets_are_repeated_a_bounded_number_of_times() {
    unavailable([any("GET", api_error()).expect(3)], Call::Get(intent_id())).await;
}

#[tokio::test]
async fn stripe_should_retry_false_is_honoured() {
    let final_answer = api_error().insert_header("stripe-should-retry", "false");
    unavailable([any("GET", final_answer).expect(1)], Call::Get(intent_id())).await;
}

#[tokio::test]
async fn an_api_error_is_unavailable() {
    let err = unavailable(
        [any("POST", api_error()).expect(1)],
        Call::Confirm(intent_id()),
    )
    .await;
    assert!(err.is_transient());
}

#[tokio::test]
async fn a_non_json_error_page_is_unavailable() {
    let page = ResponseTemplate::new(502).set_body_string("<html>Bad Gateway</html>");
    let err = refused([any("POST", page)], Call::Cancel(intent_id()), "down").await;
    assert!(
        matches!(&err, GatewayError::Unavailable(m) if m.contains("Bad Gateway")),
        "{err:?}"
    );
}

#[tokio::test]
async fn a_missing_resource_is_not_found() {
    let missing = no_such(404, "No such payment_intent: 'pi_3PtrTestIntent0001'", None);
    assert_eq!(
        call_answered([any("GET", missing).expect(1)], Call::Get(intent_id())).await,
        Err(GatewayError::NotFound(PI.into()))
    );
}

#[tokio::test]
async fn a_missing_payment_method_is_invalid_not_not_found() {
    let missing = no_such(
        400,
        "No such PaymentMethod: 'pm_nope'",
        Some("payment_method"),
    );
    let err = refused(
        [any("POST", missing)],
        Call::Create(new_intent("k")),
        "refused",
    )
    .await;
    assert!(
        matches!(&err, GatewayError::Invalid(m) if m.contains("payment_method")),
        "{err:?}"
    );
}

#[tokio::test]
async fn an_unauthorized_key_is_unavailable_and_does_not_leak() {
    let refused = stripe_error(
        401,
        "invalid_request_error",
        None,
        "Invalid API Key provided: sk_test_********0000",
    );
    let err = unavailable([any("GET", refused).expect(1)], Call::Get(intent_id())).await;
    assert!(!err.to_string().contains(fixtures::SECRET_KEY));
}

#[tokio::test]
async fn capturing_a_captured_intent_is_a_conflict_with_succeeded() {
    let succeeded = intent_in("succeeded");
    let refusal = in_state(
        &succeeded,
        "This PaymentIntent could not be captured because it has a status of succeeded. Only a PaymentIntent with one of the following statuses may be captured: requires_capture.",
    );
    let err = refused(
        [
            at(
                "POST",
                &format!("/v1/payment_intents/{PI}/capture"),
                refusal,
            )
            .expect(1),
            intent_read(succeeded),
        ],
        capture_all("another-key"),
        "conflict",
    )
    .await;
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
    let canceled = intent_in("canceled");
    let refusal = in_state(
        &canceled,
        "This PaymentIntent could not be captured because it has a status of canceled.",
    );
    let err = refused(
        [any("POST", refusal), intent_read(canceled)],
        capture_all("k"),
        "conflict",
    )
    .await;
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
    let canceled = intent_in("canceled");
    let refusal = in_state(
        &canceled,
        "You cannot cancel this PaymentIntent because it has a status of canceled.",
    );
    let intent = answered(
        [
            at("POST", &format!("/v1/payment_intents/{PI}/cancel"), refusal).expect(1),
            intent_read(canceled),
        ],
        Call::Void(intent_id()),
        "idempotent",
    )
    .await
    .intent();
    assert_eq!(intent.status, IntentStatus::Canceled);
}

#[tokio::test]
async fn canceling_a_succeeded_intent_is_a_conflict() {
    let succeeded = intent_in("succeeded");
    let refusal = in_state(
        &succeeded,
        "You cannot cancel this PaymentIntent because it has a status of succeeded.",
    );
    assert_eq!(
        call_answered(
            [any("POST", refusal).expect(1), intent_read(succeeded)],
            Call::Cancel(intent_id()),
        )
        .await,
        Err(GatewayError::Conflict {
            action: "cancel".into(),
            status: IntentStatus::Succeeded
        })
    );
}

#[tokio::test]
async fn a_stale_refusal_replayed_under_the_cancel_key_is_asked_again() {
    // Stripe replays the first answer under `ticketrush-cancel-<pi>` (a refusal from when the
    // intent was processing); the intent is cancelable now.
    let replayed = Mock::given(method("POST"))
        .and(header(
            "idempotency-key",
            &*format!("ticketrush-cancel-{PI}"),
        ))
        .respond_with(in_state(
            &intent_in("processing"),
            "You cannot cancel this PaymentIntent because it has a status of processing.",
        ))
        .expect(1);
    let asked_again = posted(
        Mock::given(method("POST")),
        &format!("ticketrush-cancel-{PI}-from-requires_capture"),
    )
    .respond_with(answer(200, intent_in("canceled")))
    .expect(1);
    let intent = answered(
        [
            replayed,
            intent_read(intent_in("requires_capture")),
            asked_again,
        ],
        Call::Void(intent_id()),
        "voided",
    )
    .await
    .intent();
    assert_eq!(intent.status, IntentStatus::Canceled);
}

#[tokio::test]
async fn confirming_an_intent_past_confirmation_returns_it() {
    let succeeded = fixtures::payment_intent(&Pi {
        status: "succeeded",
        amount_received: 50_000,
        capture_method: "automatic",
        ..Pi::default()
    });
    let refusal = in_state(
        &succeeded,
        "This PaymentIntent's status is succeeded; it cannot be confirmed.",
    );
    let intent = answered(
        [any("POST", refusal), intent_read(succeeded)],
        Call::Confirm(intent_id()),
        "harmless",
    )
    .await
    .intent();
    assert_eq!(intent.status, IntentStatus::Succeeded);
}

#[tokio::test]
async fn refunding_a_fully_refunded_intent_is_a_conflict() {
    let refunded = stripe_error(
        400,
        "invalid_request_error",
        Some("charge_already_refunded"),
        "Charge ch_3PtrTestCharge01 has already been refunded.",
    );
    let charge = fixtures::the_charge(true, 50_000, None, &hold_metadata("h"));
    let pi = fixtures::payment_intent(&Pi {
        status: "succeeded",
        amount_received: 50_000,
        latest_charge: charge,
        ..Pi::default()
    });
    let err = refused(
        [at("POST", "/v1/refunds", refunded), intent_read(pi)],
        refund(None),
        "nothing left",
    )
    .await;
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
    let missing = no_such(
        400,
        "No such payment_intent: 'pi_3PtrTestIntent0001'",
        Some("payment_intent"),
    );
    let err = refused([any("POST", missing)], refund(Some(1)), "missing").await;
    assert_eq!(err, GatewayError::NotFound(PI.into()));
}

#[tokio::test]
async fn expiring_a_completed_session_is_a_conflict_with_its_intents_status() {
    let complete = fixtures::checkout_session(&Cs {
        status: "complete",
        payment_intent: json!(PI),
        ..Cs::default()
    });
    let err = refused(
        [
            at(
                "POST",
                &format!("/v1/checkout/sessions/{CS}/expire"),
                not_open(),
            ),
            at(
                "GET",
                &format!("/v1/checkout/sessions/{CS}"),
                answer(200, complete),
            ),
            intent_read(intent_in("requires_capture")),
        ],
        Call::ExpireSession(session_id()),
        "completed",
    )
    .await;
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
    let expired = fixtures::checkout_session(&Cs {
        status: "expired",
        ..Cs::default()
    });
    let session = answered(
        [any("POST", not_open()), any("GET", answer(200, expired))],
        Call::ExpireSession(session_id()),
        "idempotent",
    )
    .await
    .session();
    assert_eq!(session.status, CheckoutSessionStatus::Expired);
}

#[tokio::test]
async fn a_slow_answer_is_a_timeout() {
    let slow =
        answer(200, fixtures::payment_intent(&Pi::default())).set_delay(Duration::from_secs(2));
    let (_server, gateway) = stripe_within(Duration::from_millis(200), [any("POST", slow)]).await;
    assert_eq!(
        gateway.confirm_intent(&intent_id()).await,
        Err(GatewayError::Timeout)
    );
}

#[tokio::test]
async fn an_unknown_status_is_an_unreadable_answer() {
    let unknown = fixtures::payment_intent(&Pi {
        status: "some_future_status",
        ..Pi::default()
    });
    assert!(matches!(
        call_answered([intent_read(unknown)], Call::Get(intent_id())).await,
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
    let err = gateway
        .get_intent(&intent_id())
        .await
        .expect_err("nobody there");
    assert!(matches!(err, GatewayError::Unavailable(_)), "{err:?}");
}
