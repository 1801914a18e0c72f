//! Stripe as a wiremock server with canned answers, and the gateway's calls to it.

use std::time::Duration;

use payment_stripe::StripeGateway;
use serde_json::Value;
use ticket_core::gateway::{
    CaptureMethod, CaptureRequest, CheckoutSession, CheckoutSessionId, GatewayError, IntentId,
    NewCheckoutSession, NewIntent, PaymentGateway, PaymentIntent, Refund, RefundRequest,
};
use ticket_core::model::money::{Currency, Money};
use wiremock::matchers::{method, path};
use wiremock::{Mock, MockServer, ResponseTemplate};

use super::fixtures::{self, CS, HOLD, PI, hold_metadata};
use super::{FormIs, gateway_on, posted};

/// `amount` won.
pub fn krw(amount: i64) -> Money {
    Money::new(amount, Currency::new("KRW").expect("KRW")).expect("amount")
}

/// The fixtures' intent id.
pub fn intent_id() -> IntentId {
    IntentId::new(PI).expect("id")
}

/// The fixtures' checkout session id.
pub fn session_id() -> CheckoutSessionId {
    CheckoutSessionId::new(CS).expect("id")
}

/// A manual-capture intent of 50 000 KRW for the fixtures' hold, paid with a Visa card,
/// under `idempotency_key`.
pub fn new_intent(idempotency_key: &str) -> NewIntent {
    NewIntent {
        amount: krw(50_000),
        payment_method: "pm_card_visa".into(),
        capture_method: CaptureMethod::Manual,
        metadata: hold_metadata(HOLD),
        idempotency_key: idempotency_key.into(),
    }
}

/// An answer of `status` with a JSON `body`.
pub fn answer(status: u16, body: Value) -> ResponseTemplate {
    ResponseTemplate::new(status).set_body_json(body)
}

/// An answer of `status` with Stripe's error object (see [`fixtures::error`]).
pub fn stripe_error(
    status: u16,
    kind: &str,
    code: Option<&str>,
    message: &str,
) -> ResponseTemplate {
    answer(status, fixtures::error(kind, code, message))
}

/// Any request of `verb` answered with `response`.
pub fn any(verb: &str, response: ResponseTemplate) -> Mock {
    Mock::given(method(verb)).respond_with(response)
}

/// Requests of `verb` to `at` answered with `response`.
pub fn at(verb: &str, at: &str, response: ResponseTemplate) -> Mock {
    Mock::given(method(verb))
        .and(path(at))
        .respond_with(response)
}

/// A GET of the fixtures' intent answered with `pi`.
pub fn intent_read(pi: Value) -> Mock {
    at("GET", &format!("/v1/payment_intents/{PI}"), answer(200, pi))
}

/// Exactly `times` authenticated form POSTs to `to` under `idempotency_key`, each with
/// exactly the pairs `form`, answered 200 with `body`.
pub fn form_posted(
    idempotency_key: &str,
    to: &str,
    form: &[(&str, &str)],
    body: Value,
    times: u64,
) -> Mock {
    posted(Mock::given(method("POST")), idempotency_key)
        .and(path(to))
        .and(FormIs::new(form))
        .respond_with(answer(200, body))
        .expect(times)
}

/// A mock server answering with `mocks` (mounted in order) and a gateway to it, `timeout`
/// per request.
pub async fn stripe_within(
    timeout: Duration,
    mocks: impl IntoIterator<Item = Mock>,
) -> (MockServer, StripeGateway) {
    let server = MockServer::start().await;
    for mock in mocks {
        mock.mount(&server).await;
    }
    let gateway = gateway_on(&server, timeout);
    (server, gateway)
}

/// [`stripe_within`] five seconds.
pub async fn stripe(mocks: impl IntoIterator<Item = Mock>) -> (MockServer, StripeGateway) {
    stripe_within(Duration::from_secs(5), mocks).await
}

/// Makes `call` through a gateway to a mock server answering with `mocks`. The server is
/// dropped on the way out, which checks each mock's expected number of requests.
pub async fn call_answered(
    mocks: impl IntoIterator<Item = Mock>,
    call: Call,
) -> Result<Answered, GatewayError> {
    let (_server, gateway) = stripe(mocks).await;
    call.on(&gateway).await
}

/// [`call_answered`], which must succeed (`why`, when it does not).
pub async fn answered(mocks: impl IntoIterator<Item = Mock>, call: Call, why: &str) -> Answered {
    call_answered(mocks, call).await.expect(why)
}

/// [`call_answered`], which must fail (`why`, when it does not): the error.
pub async fn refused(mocks: impl IntoIterator<Item = Mock>, call: Call, why: &str) -> GatewayError {
    call_answered(mocks, call).await.expect_err(why)
}

/// One operation of the gateway, with its argument.
#[derive(Debug, Clone)]
pub enum Call {
    Create(NewIntent),
    Confirm(IntentId),
    Get(IntentId),
    Cancel(IntentId),
    Void(IntentId),
    Capture(CaptureRequest),
    Refund(RefundRequest),
    CreateSession(NewCheckoutSession),
    GetSession(CheckoutSessionId),
    ExpireSession(CheckoutSessionId),
}

/// What a [`Call`] answers.
#[derive(Debug, Clone, PartialEq)]
pub enum Answered {
    Intent(PaymentIntent),
    Refund(Refund),
    Session(CheckoutSession),
}

impl Answered {
    /// The intent answered; panics on anything else.
    pub fn intent(self) -> PaymentIntent {
        match self {
            Self::Intent(intent) => intent,
            other => panic!("not an intent: {other:?}"),
        }
    }

    /// The refund answered; panics on anything else.
    pub fn refund(self) -> Refund {
        match self {
            Self::Refund(refund) => refund,
            other => panic!("not a refund: {other:?}"),
        }
    }

    /// The checkout session answered; panics on anything else.
    pub fn session(self) -> CheckoutSession {
        match self {
            Self::Session(session) => session,
            other => panic!("not a checkout session: {other:?}"),
        }
    }
}

impl Call {
    /// Makes this call through `gateway`.
    pub async fn on(self, gateway: &StripeGateway) -> Result<Answered, GatewayError> {
        match self {
            Self::Create(req) => gateway.create_intent(req).await.map(Answered::Intent),
            Self::Confirm(id) => gateway.confirm_intent(&id).await.map(Answered::Intent),
            Self::Get(id) => gateway.get_intent(&id).await.map(Answered::Intent),
            Self::Cancel(id) => gateway.cancel_intent(&id).await.map(Answered::Intent),
            Self::Void(id) => gateway.void(&id).await.map(Answered::Intent),
            Self::Capture(req) => gateway.capture(req).await.map(Answered::Intent),
            Self::Refund(req) => gateway.refund(req).await.map(Answered::Refund),
            Self::CreateSession(req) => gateway
                .create_checkout_session(req)
                .await
                .map(Answered::Session),
            Self::GetSession(id) => gateway
                .get_checkout_session(&id)
                .await
                .map(Answered::Session),
            Self::ExpireSession(id) => gateway
                .expire_checkout_session(&id)
                .await
                .map(Answered::Session),
        }
    }
}
