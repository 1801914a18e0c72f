//! `Stripe-Signature` verification and the reading of Stripe events.
// The fixtures are large `json!` literals.
#![recursion_limit = "256"]

mod common;

use std::time::Duration;

use common::fixtures::{self, Cs, HOLD, PI, Pi, WEBHOOK_SECRET, hold_metadata};
use common::shop::now_secs;
use payment_stripe::{StripeWebhookSigner, StripeWebhookVerifier, WebhookError, parse_event};
use serde_json::{Value, json};
use ticket_core::gateway::{EventKind, IntentStatus};

const NOW: i64 = 1_765_000_000;

/// The body Stripe posts for the event `id` of type `kind`, created at `created`, about
/// `object`.
fn event_body(id: &str, kind: &str, created: i64, object: Value) -> Vec<u8> {
    serde_json::to_vec(&fixtures::event(id, kind, created, object)).expect("json")
}

fn body() -> Vec<u8> {
    let pi = fixtures::payment_intent(&Pi {
        status: "requires_capture",
        amount_capturable: 50_000,
        latest_charge: json!("ch_3PtrTestCharge01"),
        ..Pi::default()
    });
    event_body(
        "evt_3PtrTestEvent01",
        "payment_intent.amount_capturable_updated",
        NOW,
        pi,
    )
}

/// The default verifier's verdict on `body` signed as `header`, at `now`.
fn verify(body: &[u8], header: &str, now: i64) -> Result<(), WebhookError> {
    verifier().verify_at(body, Some(header), now)
}

fn signer() -> StripeWebhookSigner {
    StripeWebhookSigner::new(WEBHOOK_SECRET).expect("signer")
}

fn verifier() -> StripeWebhookVerifier {
    StripeWebhookVerifier::new(WEBHOOK_SECRET).expect("verifier")
}

#[test]
fn a_valid_signature_verifies() {
    let body = body();
    let header = signer().header(&body, NOW);
    assert!(header.starts_with(&format!("t={NOW},v1=")));
    assert_eq!(verify(&body, &header, NOW + 10), Ok(()));
}

#[test]
fn the_signature_is_hmac_sha256_over_timestamp_dot_body() {
    // Computed independently (Python's hmac): HMAC-SHA256 keyed with the whole secret string
    // over "1700000000.{}", in hex.
    let signer = StripeWebhookSigner::new("whsec_test").expect("signer");
    assert_eq!(
        signer.signature(b"{}", 1_700_000_000),
        "35495024f4ef3f94e5a93e22221544c4b75e9a42300cd965ab81cb85cd994e91"
    );
    assert_eq!(
        signer.header(br#"{"id":"evt_1"}"#, 1_700_000_000),
        "t=1700000000,v1=c89214b5b5da833daed6f0b8c5bb6bd58cea9022bd80ccc78230f3942d632925"
    );
}

#[test]
fn a_tampered_body_is_refused() {
    let body = body();
    let header = signer().header(&body, NOW);
    let mut tampered = body.clone();
    let at = tampered
        .windows(5)
        .position(|w| w == b"50000")
        .expect("the amount");
    tampered[at] = b'9';
    assert_eq!(
        verify(&tampered, &header, NOW),
        Err(WebhookError::NoValidSignature)
    );
}

#[test]
fn another_secret_is_refused() {
    let body = body();
    let header = StripeWebhookSigner::new("whsec_someoneElse")
        .expect("signer")
        .header(&body, NOW);
    assert_eq!(
        verify(&body, &header, NOW),
        Err(WebhookError::NoValidSignature)
    );
}

#[test]
fn an_old_or_future_timestamp_is_refused() {
    let body = body();
    let header = signer().header(&body, NOW);
    assert!(matches!(
        verify(&body, &header, NOW + 301),
        Err(WebhookError::TimestampOutOfTolerance { timestamp: NOW, .. })
    ));
    assert!(matches!(
        verify(&body, &header, NOW - 301),
        Err(WebhookError::TimestampOutOfTolerance { .. })
    ));
    assert_eq!(verify(&body, &header, NOW + 300), Ok(()));
    let lenient = verifier().with_tolerance(Duration::from_secs(3600));
    assert_eq!(lenient.verify_at(&body, Some(&header), NOW + 3000), Ok(()));
}

#[test]
fn any_one_of_several_signatures_may_match() {
    let body = body();
    let good = signer().signature(&body, NOW);
    let other = StripeWebhookSigner::new("whsec_old")
        .expect("signer")
        .signature(&body, NOW);
    let header = format!("t={NOW},v1={other},v0=deadbeef,v1={good}");
    assert_eq!(verify(&body, &header, NOW), Ok(()));
    let header = format!("t={NOW}, v1=zz-not-hex, v1={good}");
    assert_eq!(verify(&body, &header, NOW), Ok(()));
    // While rolling the secret, the verifier trusts both.
    let rolled = verifier().also_trust("whsec_old").expect("second secret");
    let header = format!("t={NOW},v1={other}");
    assert_eq!(rolled.verify_at(&body, Some(&header), NOW), Ok(()));
}

#[test]
fn malformed_or_missing_headers_are_refused() {
    let body = body();
    let good = signer().signature(&body, NOW);
    assert_eq!(
        verifier().verify_at(&body, None, NOW),
        Err(WebhookError::MissingHeader)
    );
    for header in [
        String::new(),
        "garbage".to_owned(),
        format!("v1={good}"),
        format!("t=yesterday,v1={good}"),
        format!("t={NOW},t={NOW},v1={good}"),
    ] {
        assert!(
            matches!(
                verify(&body, &header, NOW),
                Err(WebhookError::MalformedHeader(_))
            ),
            "{header:?}"
        );
    }
    assert_eq!(
        verify(&body, &format!("t={NOW},v0={good}"), NOW),
        Err(WebhookError::NoValidSignature),
        "only v1 counts"
    );
    assert!(StripeWebhookVerifier::new("  ").is_err());
    assert!(!format!("{:?}", verifier()).contains(WEBHOOK_SECRET));
    assert!(!format!("{:?}", signer()).contains(WEBHOOK_SECRET));
}

#[test]
fn verify_event_verifies_then_parses() {
    let body = body();
    let header = signer().header(&body, now_secs());
    let event = verifier()
        .verify_event(&body, Some(&header))
        .expect("event");
    assert_eq!(event.kind, EventKind::AmountCapturableUpdated);
    assert!(verifier().verify_event(&body, Some("t=1,v1=00")).is_err());
}

#[test]
fn payment_intent_events_carry_the_intent() {
    let event = parse_event(&body()).expect("parsed");
    assert_eq!(event.id, "evt_3PtrTestEvent01");
    assert_eq!(event.kind, EventKind::AmountCapturableUpdated);
    assert_eq!(event.created_at.as_millis(), NOW * 1000);
    assert_eq!(event.intent.id.as_str(), PI);
    assert_eq!(event.intent.status, IntentStatus::RequiresCapture);
    assert_eq!(event.intent.amount_capturable, 50_000);
    assert_eq!(event.intent.metadata, hold_metadata(HOLD));
    // The same body parses to the same event: a redelivery is a duplicate, not a conflict.
    assert_eq!(parse_event(&body()).expect("again"), event);
}

#[test]
fn each_payment_intent_type_maps_to_its_kind() {
    for (kind, status, expected, intent_status) in [
        (
            "payment_intent.succeeded",
            "succeeded",
            EventKind::Succeeded,
            IntentStatus::Succeeded,
        ),
        (
            "payment_intent.canceled",
            "canceled",
            EventKind::Canceled,
            IntentStatus::Canceled,
        ),
        (
            "payment_intent.processing",
            "processing",
            EventKind::Processing,
            IntentStatus::Processing,
        ),
        (
            "payment_intent.requires_action",
            "requires_action",
            EventKind::RequiresAction,
            IntentStatus::RequiresAction,
        ),
        (
            "payment_intent.created",
            "requires_confirmation",
            EventKind::Other,
            IntentStatus::RequiresConfirmation,
        ),
    ] {
        let pi = fixtures::payment_intent(&Pi {
            status,
            amount_received: if status == "succeeded" { 50_000 } else { 0 },
            ..Pi::default()
        });
        let body = event_body("evt_1", kind, NOW, pi);
        let event = parse_event(&body).expect(kind);
        assert_eq!(
            (event.kind, event.intent.status),
            (expected, intent_status),
            "{kind}"
        );
    }
}

#[test]
fn a_payment_failed_event_is_a_failed_intent_with_the_decline() {
    let declined = fixtures::card_declined(
        PI,
        "insufficient_funds",
        "Your card has insufficient funds.",
    );
    let pi = declined["error"]["payment_intent"].clone();
    let body = event_body("evt_2", "payment_intent.payment_failed", NOW, pi);
    let event = parse_event(&body).expect("parsed");
    assert_eq!(event.kind, EventKind::PaymentFailed);
    assert_eq!(event.intent.status, IntentStatus::Failed);
    assert_eq!(
        event.intent.failure.expect("why").code,
        "insufficient_funds"
    );
}

#[test]
fn charge_refunded_rebuilds_the_intent_from_the_charge() {
    let charge = fixtures::the_charge(true, 20_000, None, &hold_metadata("h1"));
    let body = event_body("evt_3", "charge.refunded", NOW, charge);
    let event = parse_event(&body).expect("parsed");
    assert_eq!(event.kind, EventKind::Refunded);
    assert_eq!(event.intent.id.as_str(), PI);
    assert_eq!(event.intent.status, IntentStatus::Succeeded);
    assert_eq!(event.intent.amount_received, 50_000);
    assert_eq!(event.intent.amount_refunded, 20_000);
    assert_eq!(event.intent.amount.amount_minor, 50_000);
}

#[test]
fn other_events_are_acknowledged_with_a_placeholder_that_names_no_hold() {
    let session = fixtures::checkout_session(&Cs {
        status: "complete",
        payment_intent: json!(PI),
        ..Cs::default()
    });
    let body = event_body("evt_4", "checkout.session.completed", NOW, session);
    let event = parse_event(&body).expect("parsed");
    assert_eq!(event.kind, EventKind::Other);
    assert_eq!(event.intent.hold(), None);
    assert_eq!(event.intent.amount.amount_minor, 0);
    let customer = json!({"id": "cus_TrTest01", "object": "customer", "metadata": {}});
    let body = event_body("evt_5", "customer.created", NOW, customer);
    let event = parse_event(&body).expect("parsed");
    assert_eq!(event.kind, EventKind::Other);
    assert_eq!(event.intent.id.as_str(), "cus_TrTest01");
    assert_eq!(event.intent.amount.currency.as_str(), "XXX");
}

#[test]
fn sequence_follows_created_then_the_intents_life() {
    let at = |kind: &str, created: i64, status: &str| {
        let pi = fixtures::payment_intent(&Pi {
            status,
            ..Pi::default()
        });
        parse_event(&event_body("e", kind, created, pi))
            .expect("parsed")
            .sequence
    };
    let authorized = at(
        "payment_intent.amount_capturable_updated",
        NOW,
        "requires_capture",
    );
    let captured = at("payment_intent.succeeded", NOW, "succeeded");
    let later = at("payment_intent.processing", NOW + 1, "processing");
    assert!(
        authorized < captured,
        "same second: the intent's life decides"
    );
    assert!(captured < later, "a later second comes later");
}

#[test]
fn unreadable_events_are_refused() {
    for body in [
        &b"not json"[..],
        br#"{"id": "evt_1", "type": "payment_intent.succeeded"}"#,
        br#"{"id": "", "type": "x", "created": 1, "data": {"object": {}}}"#,
        br#"{"id": "evt_1", "type": "payment_intent.succeeded", "created": 1, "data": {"object": {"id": "x", "object": "customer"}}}"#,
        br#"{"id": "evt_1", "type": "charge.refunded", "created": 1, "data": {"object": {"id": "ch_1", "object": "charge", "amount": 1, "currency": "krw", "payment_intent": null}}}"#,
    ] {
        assert!(
            matches!(parse_event(body), Err(WebhookError::InvalidPayload(_))),
            "{}",
            String::from_utf8_lossy(body)
        );
    }
}
