//! Stripe objects as the API returns them. The field sets follow the fixtures Stripe
//! publishes with its OpenAPI specification (`payment_intent`, `charge`, `refund`,
//! `checkout.session`, `event`, and the error object); the values are this crate's own.

use std::collections::BTreeMap;

use serde_json::{Value, json};

/// The secret key the tests configure and the fake Stripe expects.
pub const SECRET_KEY: &str = "sk_test_51ticketrushFAKEkey0000000000";

/// The id of the fixtures' intent.
pub const PI: &str = "pi_3PtrTestIntent0001";

/// The id of the fixtures' checkout session.
pub const CS: &str = "cs_test_a1TrTestSession0001";

/// The hold the fixtures' intent and session are for.
pub const HOLD: &str = "0192a3b4-c5d6-7e8f-9a0b-1c2d3e4f5a6b";

/// A webhook endpoint secret.
pub const WEBHOOK_SECRET: &str = "whsec_ticketrushTestEndpointSecret000000";

/// The parameters of a fixture intent that vary between tests.
#[derive(Debug, Clone)]
pub struct Pi<'a> {
    pub id: &'a str,
    pub amount: i64,
    pub currency: &'a str,
    pub status: &'a str,
    pub capture_method: &'a str,
    pub amount_capturable: i64,
    pub amount_received: i64,
    pub metadata: BTreeMap<String, String>,
    pub payment_method: Option<&'a str>,
    pub latest_charge: Value,
    pub last_payment_error: Value,
    pub created: i64,
}

impl Default for Pi<'_> {
    fn default() -> Self {
        Self {
            id: PI,
            amount: 50_000,
            currency: "krw",
            status: "requires_confirmation",
            capture_method: "manual",
            amount_capturable: 0,
            amount_received: 0,
            metadata: hold_metadata(HOLD),
            payment_method: Some("pm_1PtrTestCardVisa"),
            latest_charge: Value::Null,
            last_payment_error: Value::Null,
            created: 1_765_000_000,
        }
    }
}

/// `{"ticketrush_hold": hold}`.
pub fn hold_metadata(hold: &str) -> BTreeMap<String, String> {
    BTreeMap::from([("ticketrush_hold".to_owned(), hold.to_owned())])
}

/// A PaymentIntent object.
pub fn payment_intent(p: &Pi<'_>) -> Value {
    let canceled = p.status == "canceled";
    json!({
        "id": p.id,
        "object": "payment_intent",
        "amount": p.amount,
        "amount_capturable": p.amount_capturable,
        "amount_details": {"tip": {}},
        "amount_received": p.amount_received,
        "application": null,
        "application_fee_amount": null,
        "automatic_payment_methods": {"allow_redirects": "never", "enabled": true},
        "canceled_at": if canceled { json!(p.created + 60) } else { Value::Null },
        "cancellation_reason": if canceled { json!("requested_by_customer") } else { Value::Null },
        "capture_method": p.capture_method,
        "client_secret": format!("{}_secret_tRfAkE", p.id),
        "confirmation_method": "automatic",
        "created": p.created,
        "currency": p.currency,
        "customer": null,
        "description": null,
        "last_payment_error": p.last_payment_error,
        "latest_charge": p.latest_charge,
        "livemode": false,
        "metadata": p.metadata,
        "next_action": if p.status == "requires_action" {
            json!({"type": "use_stripe_sdk", "use_stripe_sdk": {}})
        } else {
            Value::Null
        },
        "on_behalf_of": null,
        "payment_method": p.payment_method,
        "payment_method_configuration_details": null,
        "payment_method_options": {"card": {"request_three_d_secure": "automatic"}},
        "payment_method_types": ["card"],
        "processing": null,
        "receipt_email": null,
        "review": null,
        "setup_future_usage": null,
        "shipping": null,
        "source": null,
        "statement_descriptor": null,
        "statement_descriptor_suffix": null,
        "status": p.status,
        "transfer_data": null,
        "transfer_group": null
    })
}

/// The fixtures' intent's charge (`ch_3PtrTestCharge01`) of 50 000 KRW: `captured` or only
/// authorized (until `capture_before`), with `amount_refunded` of it refunded.
pub fn the_charge(
    captured: bool,
    amount_refunded: i64,
    capture_before: Option<i64>,
    metadata: &BTreeMap<String, String>,
) -> Value {
    charge(
        "ch_3PtrTestCharge01",
        PI,
        50_000,
        "krw",
        captured,
        amount_refunded,
        capture_before,
        metadata,
    )
}

/// A Charge object (the latest charge of an intent, or a `charge.*` event's object).
#[allow(clippy::too_many_arguments)]
pub fn charge(
    id: &str,
    intent: &str,
    amount: i64,
    currency: &str,
    captured: bool,
    amount_refunded: i64,
    capture_before: Option<i64>,
    metadata: &BTreeMap<String, String>,
) -> Value {
    json!({
        "id": id,
        "object": "charge",
        "amount": amount,
        "amount_captured": if captured { amount } else { 0 },
        "amount_refunded": amount_refunded,
        "application": null,
        "application_fee": null,
        "application_fee_amount": null,
        "balance_transaction": if captured { json!(format!("txn_{id}")) } else { Value::Null },
        "billing_details": {
            "address": {"city": null, "country": null, "line1": null, "line2": null, "postal_code": null, "state": null},
            "email": null, "name": null, "phone": null
        },
        "calculated_statement_descriptor": "TICKETRUSH",
        "captured": captured,
        "created": 1_765_000_010,
        "currency": currency,
        "customer": null,
        "description": null,
        "disputed": false,
        "failure_balance_transaction": null,
        "failure_code": null,
        "failure_message": null,
        "fraud_details": {},
        "livemode": false,
        "metadata": metadata,
        "on_behalf_of": null,
        "outcome": {
            "network_status": "approved_by_network", "reason": null, "risk_level": "normal",
            "seller_message": "Payment complete.", "type": "authorized"
        },
        "paid": true,
        "payment_intent": intent,
        "payment_method": "pm_1PtrTestCardVisa",
        "payment_method_details": {
            "card": {
                "amount_authorized": amount,
                "brand": "visa",
                "capture_before": capture_before,
                "country": "US",
                "exp_month": 12,
                "exp_year": 2034,
                "funding": "credit",
                "last4": "4242",
                "network": "visa"
            },
            "type": "card"
        },
        "receipt_email": null,
        "receipt_url": null,
        "refunded": amount_refunded > 0 && amount_refunded >= amount,
        "review": null,
        "shipping": null,
        "source_transfer": null,
        "statement_descriptor": null,
        "statement_descriptor_suffix": null,
        "status": "succeeded",
        "transfer_data": null,
        "transfer_group": null
    })
}

/// A Refund object.
pub fn refund(
    id: &str,
    intent: &str,
    charge: &str,
    amount: i64,
    currency: &str,
    status: &str,
    reason: &str,
) -> Value {
    json!({
        "id": id,
        "object": "refund",
        "amount": amount,
        "balance_transaction": format!("txn_{id}"),
        "charge": charge,
        "created": 1_765_000_100,
        "currency": currency,
        "destination_details": {"card": {"type": "refund"}, "type": "card"},
        "metadata": {"reason": reason},
        "payment_intent": intent,
        "reason": null,
        "receipt_number": null,
        "source_transfer_reversal": null,
        "status": status,
        "transfer_reversal": null
    })
}

/// The parameters of a fixture checkout session.
#[derive(Debug, Clone)]
pub struct Cs<'a> {
    pub id: &'a str,
    pub amount: i64,
    pub currency: &'a str,
    pub status: &'a str,
    pub payment_intent: Value,
    pub metadata: BTreeMap<String, String>,
    pub success_url: &'a str,
    pub expires_at: i64,
}

impl Default for Cs<'_> {
    fn default() -> Self {
        Self {
            id: CS,
            amount: 50_000,
            currency: "krw",
            status: "open",
            payment_intent: Value::Null,
            metadata: hold_metadata(HOLD),
            success_url: "https://shop.example/return?session_id={CHECKOUT_SESSION_ID}",
            expires_at: 1_765_001_860,
        }
    }
}

/// A Checkout Session object.
pub fn checkout_session(c: &Cs<'_>) -> Value {
    let open = c.status == "open";
    json!({
        "id": c.id,
        "object": "checkout.session",
        "after_expiration": null,
        "allow_promotion_codes": null,
        "amount_subtotal": c.amount,
        "amount_total": c.amount,
        "automatic_tax": {"enabled": false, "liability": null, "status": null},
        "billing_address_collection": null,
        "cancel_url": format!("{}&canceled=1", c.success_url),
        "client_reference_id": null,
        "client_secret": null,
        "consent": null,
        "consent_collection": null,
        "created": 1_765_000_000,
        "currency": c.currency,
        "custom_fields": [],
        "custom_text": {"after_submit": null, "shipping_address": null, "submit": null, "terms_of_service_acceptance": null},
        "customer": null,
        "customer_creation": "if_required",
        "customer_details": null,
        "customer_email": null,
        "expires_at": c.expires_at,
        "invoice": null,
        "invoice_creation": null,
        "livemode": false,
        "locale": null,
        "metadata": c.metadata,
        "mode": "payment",
        "payment_intent": c.payment_intent,
        "payment_link": null,
        "payment_method_collection": "if_required",
        "payment_method_configuration_details": null,
        "payment_method_options": {"card": {"request_three_d_secure": "automatic"}},
        "payment_method_types": ["card"],
        "payment_status": if c.status == "complete" { "paid" } else { "unpaid" },
        "phone_number_collection": {"enabled": false},
        "recovered_from": null,
        "saved_payment_method_options": null,
        "setup_intent": null,
        "shipping_address_collection": null,
        "shipping_cost": null,
        "shipping_options": [],
        "status": c.status,
        "submit_type": null,
        "subscription": null,
        "success_url": c.success_url,
        "total_details": {"amount_discount": 0, "amount_shipping": 0, "amount_tax": 0},
        "ui_mode": "hosted",
        "url": if open { json!(format!("https://checkout.stripe.com/c/pay/{}", c.id)) } else { Value::Null }
    })
}

/// An Event object.
pub fn event(id: &str, kind: &str, created: i64, object: Value) -> Value {
    json!({
        "id": id,
        "object": "event",
        "api_version": payment_stripe::API_VERSION,
        "created": created,
        "data": {"object": object},
        "livemode": false,
        "pending_webhooks": 1,
        "request": {"id": "req_TrTestRequest01", "idempotency_key": "ticketrush-confirm-pi_3PtrTestIntent0001"},
        "type": kind
    })
}

/// An error answer: `{"error": {...}}` with the given fields.
pub fn error(kind: &str, code: Option<&str>, message: &str) -> Value {
    let mut e = json!({
        "type": kind,
        "message": message,
        "request_log_url": "https://dashboard.stripe.com/test/logs/req_TrTestRequest01"
    });
    if let Some(c) = code {
        e["code"] = json!(c);
        e["doc_url"] = json!(format!(
            "https://stripe.com/docs/error-codes/{}",
            c.replace('_', "-")
        ));
    }
    json!({ "error": e })
}

/// The `402` a declined confirmation answers: the card error with the intent as it stands
/// (`requires_payment_method`, its `last_payment_error` set, the payment method cleared).
pub fn card_declined(intent_id: &str, decline_code: &str, message: &str) -> Value {
    let last_error = json!({
        "charge": "ch_3PtrTestDeclined01",
        "code": "card_declined",
        "decline_code": decline_code,
        "doc_url": "https://stripe.com/docs/error-codes/card-declined",
        "message": message,
        "type": "card_error"
    });
    let pi = payment_intent(&Pi {
        id: intent_id,
        status: "requires_payment_method",
        payment_method: None,
        latest_charge: json!("ch_3PtrTestDeclined01"),
        last_payment_error: last_error.clone(),
        ..Pi::default()
    });
    let mut error = last_error;
    error["payment_intent"] = pi;
    error["request_log_url"] = json!("https://dashboard.stripe.com/test/logs/req_TrTestRequest02");
    json!({ "error": error })
}

/// The `400` for an action the intent's status forbids, with the intent in the body.
pub fn unexpected_state(intent: Value, message: &str) -> Value {
    let mut e = error(
        "invalid_request_error",
        Some("payment_intent_unexpected_state"),
        message,
    );
    e["error"]["payment_intent"] = intent;
    e
}
