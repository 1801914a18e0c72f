//! A stateful fake of Stripe's API for wiremock: PaymentIntents, Refunds and Checkout
//! Sessions in a map behind a mutex, with Stripe's status rules (confirm, capture at most
//! once, cancel, refund up to what was captured, sessions that expire or complete), its
//! idempotency layer (a repeat with the same key replays the stored answer; the same key
//! with other parameters is an `idempotency_error`), Stripe's test payment methods, and the
//! events Stripe would send, queued for the test to deliver as webhooks.
//!
//! Faults, seeded: an answer that fails before anything happened (`500 api_error` or
//! `429`, not stored under the key, as Stripe stores nothing when an endpoint did not
//! start), and an answer that is delayed after the change was made (the client times out
//! while the payment went through).

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use parking_lot::Mutex;
use rand_chacha::ChaCha8Rng;
use rand_core::{RngCore, SeedableRng};
use serde_json::{Value, json};
use wiremock::{Request, Respond, ResponseTemplate};

use super::fixtures::{self, Cs, Pi};

/// Stripe's test payment methods the fake knows.
pub mod pm {
    /// Authorizes (or charges).
    pub const VISA: &str = "pm_card_visa";
    /// Declined: `card_declined` / `generic_decline`.
    pub const DECLINED: &str = "pm_card_chargeDeclined";
    /// Declined: `card_declined` / `insufficient_funds`.
    pub const INSUFFICIENT_FUNDS: &str = "pm_card_chargeDeclinedInsufficientFunds";
    /// Asks for 3-D Secure: the intent stays `requires_action`.
    pub const AUTHENTICATION_REQUIRED: &str = "pm_card_authenticationRequired";
}

/// Faults to inject.
#[derive(Debug, Clone)]
pub struct FakeConfig {
    pub seed: u64,
    /// Probability that a request fails before it runs (`500`, or `429` one time in three).
    pub fault_probability: f64,
    /// Probability that a POST's answer is delayed by `slow_delay` after it ran.
    pub slow_probability: f64,
    pub slow_delay: Duration,
}

impl Default for FakeConfig {
    fn default() -> Self {
        Self {
            seed: 1,
            fault_probability: 0.0,
            slow_probability: 0.0,
            slow_delay: Duration::ZERO,
        }
    }
}

/// What the fake counted.
#[derive(Debug, Default, Clone)]
pub struct FakeStats {
    pub requests: u64,
    pub posts_without_key: u64,
    pub bad_auth: u64,
    pub replays: u64,
    pub key_reused: u64,
    pub injected_faults: u64,
    pub slow_answers: u64,
    /// Captures that ran (not replays), per intent.
    pub captures: HashMap<String, u32>,
}

#[derive(Debug, Clone)]
pub struct Intent {
    pub id: String,
    pub amount: i64,
    pub currency: String,
    pub status: String,
    pub capture_method: String,
    pub amount_capturable: i64,
    pub amount_received: i64,
    pub amount_refunded: i64,
    pub metadata: BTreeMap<String, String>,
    pub payment_method: Option<String>,
    pub last_payment_error: Option<Value>,
    pub charge: Option<String>,
    pub capture_before: Option<i64>,
    pub created: i64,
}

#[derive(Debug, Clone)]
pub struct Session {
    pub id: String,
    pub amount: i64,
    pub currency: String,
    pub status: String,
    pub payment_intent: Option<String>,
    pub metadata: BTreeMap<String, String>,
    pub intent_metadata: BTreeMap<String, String>,
    pub capture_method: String,
    pub success_url: String,
    pub expires_at: i64,
}

struct Stored {
    fingerprint: String,
    status: u16,
    body: Value,
}

struct State {
    rng: ChaCha8Rng,
    config: FakeConfig,
    next_id: u64,
    intents: BTreeMap<String, Intent>,
    sessions: BTreeMap<String, Session>,
    idempotency: HashMap<String, Stored>,
    events: Vec<Value>,
    stats: FakeStats,
}

/// The fake. Cheap to clone; mount it with [`FakeStripe::mount`].
#[derive(Clone)]
pub struct FakeStripe {
    state: Arc<Mutex<State>>,
}

type Answer = (u16, Value);

fn now() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_secs()).unwrap_or(0))
}

fn err(status: u16, kind: &str, code: Option<&str>, message: &str) -> Answer {
    (status, fixtures::error(kind, code, message))
}

fn missing(what: &str, id: &str) -> Answer {
    err(
        404,
        "invalid_request_error",
        Some("resource_missing"),
        &format!("No such {what}: '{id}'"),
    )
}

fn param<'a>(form: &'a [(String, String)], key: &str) -> Option<&'a str> {
    form.iter().find(|(k, _)| k == key).map(|(_, v)| v.as_str())
}

fn nested(form: &[(String, String)], prefix: &str) -> BTreeMap<String, String> {
    form.iter()
        .filter_map(|(k, v)| {
            k.strip_prefix(prefix)
                .and_then(|rest| rest.strip_prefix('['))
                .and_then(|rest| rest.strip_suffix(']'))
                .filter(|key| !key.contains('['))
                .map(|key| (key.to_owned(), v.clone()))
        })
        .collect()
}

impl Intent {
    fn charge_json(&self) -> Value {
        let id = self.charge.clone().unwrap_or_default();
        fixtures::charge(
            &id,
            &self.id,
            self.amount,
            &self.currency,
            self.amount_received > 0,
            self.amount_refunded,
            self.capture_before,
            &self.metadata,
        )
    }

    fn json(&self, expand_charge: bool) -> Value {
        let latest_charge = match (&self.charge, expand_charge) {
            (None, _) => Value::Null,
            (Some(_), true) => self.charge_json(),
            (Some(c), false) => json!(c),
        };
        fixtures::payment_intent(&Pi {
            id: &self.id,
            amount: self.amount,
            currency: &self.currency,
            status: &self.status,
            capture_method: &self.capture_method,
            amount_capturable: self.amount_capturable,
            amount_received: self.amount_received,
            metadata: self.metadata.clone(),
            payment_method: self.payment_method.as_deref(),
            latest_charge,
            last_payment_error: self.last_payment_error.clone().unwrap_or(Value::Null),
            created: self.created,
        })
    }
}

impl Session {
    fn json(&self) -> Value {
        fixtures::checkout_session(&Cs {
            id: &self.id,
            amount: self.amount,
            currency: &self.currency,
            status: &self.status,
            payment_intent: self
                .payment_intent
                .as_deref()
                .map_or(Value::Null, |p| json!(p)),
            metadata: self.metadata.clone(),
            success_url: &self.success_url,
            expires_at: self.expires_at,
        })
    }
}

impl State {
    fn id(&mut self, prefix: &str) -> String {
        self.next_id += 1;
        format!("{prefix}{:016}", self.next_id)
    }

    fn chance(&mut self, p: f64) -> bool {
        p > 0.0 && (f64::from(self.rng.next_u32()) / f64::from(u32::MAX)) < p
    }

    fn emit(&mut self, kind: &str, object: Value) {
        let id = self.id("evt_3Ptr");
        self.events.push(fixtures::event(&id, kind, now(), object));
    }

    fn emit_intent(&mut self, kind: &str, id: &str) {
        if let Some(pi) = self.intents.get(id).map(|i| i.json(false)) {
            self.emit(kind, pi);
        }
    }

    fn create_intent(&mut self, form: &[(String, String)]) -> Answer {
        let amount = param(form, "amount").and_then(|a| a.parse::<i64>().ok());
        let Some(amount) = amount.filter(|a| *a > 0) else {
            return err(
                400,
                "invalid_request_error",
                Some("parameter_invalid_integer"),
                "Invalid positive integer",
            );
        };
        let Some(currency) = param(form, "currency")
            .filter(|c| c.len() == 3 && c.bytes().all(|b| b.is_ascii_lowercase()))
        else {
            return err(
                400,
                "invalid_request_error",
                Some("parameter_invalid_string"),
                "Invalid currency",
            );
        };
        let pm = param(form, "payment_method").unwrap_or_default();
        if ![
            pm::VISA,
            pm::DECLINED,
            pm::INSUFFICIENT_FUNDS,
            pm::AUTHENTICATION_REQUIRED,
        ]
        .contains(&pm)
        {
            let mut e = missing("PaymentMethod", pm);
            e.0 = 400;
            e.1["error"]["param"] = json!("payment_method");
            return e;
        }
        let id = self.id("pi_3Ptr");
        let intent = Intent {
            id: id.clone(),
            amount,
            currency: currency.to_owned(),
            status: "requires_confirmation".into(),
            capture_method: param(form, "capture_method")
                .unwrap_or("automatic_async")
                .to_owned(),
            amount_capturable: 0,
            amount_received: 0,
            amount_refunded: 0,
            metadata: nested(form, "metadata"),
            payment_method: Some(pm.to_owned()),
            last_payment_error: None,
            charge: None,
            capture_before: None,
            created: now(),
        };
        let body = intent.json(false);
        self.intents.insert(id.clone(), intent);
        self.emit_intent("payment_intent.created", &id);
        (200, body)
    }

    /// Runs the payment method of intent `id` (Stripe's test cards).
    fn attempt(&mut self, id: &str, expand: bool) -> Answer {
        let charge = self.id("ch_3Ptr");
        let Some(i) = self.intents.get_mut(id) else {
            return missing("payment_intent", id);
        };
        let pm = i.payment_method.clone().unwrap_or_default();
        let decline = match pm.as_str() {
            pm::DECLINED => Some(("generic_decline", "Your card was declined.")),
            pm::INSUFFICIENT_FUNDS => {
                Some(("insufficient_funds", "Your card has insufficient funds."))
            }
            _ => None,
        };
        if let Some((decline_code, message)) = decline {
            let last_error = json!({
                "charge": charge,
                "code": "card_declined",
                "decline_code": decline_code,
                "doc_url": "https://stripe.com/docs/error-codes/card-declined",
                "message": message,
                "type": "card_error"
            });
            i.status = "requires_payment_method".into();
            i.payment_method = None;
            i.charge = Some(charge);
            i.last_payment_error = Some(last_error.clone());
            let mut error = last_error;
            error["payment_intent"] = i.json(false);
            self.emit_intent("payment_intent.payment_failed", id);
            return (402, json!({ "error": error }));
        }
        i.last_payment_error = None;
        if pm == pm::AUTHENTICATION_REQUIRED {
            i.status = "requires_action".into();
            let body = i.json(expand);
            self.emit_intent("payment_intent.requires_action", id);
            return (200, body);
        }
        i.charge = Some(charge);
        if i.capture_method == "manual" {
            i.status = "requires_capture".into();
            i.amount_capturable = i.amount;
            i.capture_before = Some(now() + 7 * 86_400);
            let body = i.json(expand);
            self.emit_intent("payment_intent.amount_capturable_updated", id);
            (200, body)
        } else {
            i.status = "succeeded".into();
            i.amount_received = i.amount;
            let body = i.json(expand);
            self.emit_intent("payment_intent.succeeded", id);
            (200, body)
        }
    }

    fn unexpected(&self, id: &str, message: String) -> Answer {
        let pi = self.intents.get(id).map_or(Value::Null, |i| i.json(false));
        (400, fixtures::unexpected_state(pi, &message))
    }

    fn confirm(&mut self, id: &str, expand: bool) -> Answer {
        let Some(i) = self.intents.get(id) else {
            return missing("payment_intent", id);
        };
        if i.status != "requires_confirmation" {
            let status = i.status.clone();
            return self.unexpected(
                id,
                format!("This PaymentIntent's status is {status}; it cannot be confirmed."),
            );
        }
        self.attempt(id, expand)
    }

    fn capture(&mut self, id: &str, form: &[(String, String)], expand: bool) -> Answer {
        let Some(i) = self.intents.get(id) else {
            return missing("payment_intent", id);
        };
        if i.status != "requires_capture" {
            let status = i.status.clone();
            return self.unexpected(id, format!("This PaymentIntent could not be captured because it has a status of {status}. Only a PaymentIntent with one of the following statuses may be captured: requires_capture."));
        }
        let amount = match param(form, "amount_to_capture").map(str::parse::<i64>) {
            None => i.amount_capturable,
            Some(Ok(a)) if a > 0 && a <= i.amount_capturable => a,
            Some(_) => {
                return err(
                    400,
                    "invalid_request_error",
                    Some("amount_too_large"),
                    "The amount to capture is larger than the amount capturable.",
                );
            }
        };
        let Some(i) = self.intents.get_mut(id) else {
            return missing("payment_intent", id);
        };
        i.status = "succeeded".into();
        i.amount_received = amount;
        i.amount_capturable = 0;
        let body = i.json(expand);
        *self.stats.captures.entry(id.to_owned()).or_default() += 1;
        self.emit_intent("payment_intent.succeeded", id);
        (200, body)
    }

    fn cancel(&mut self, id: &str, expand: bool) -> Answer {
        let Some(i) = self.intents.get_mut(id) else {
            return missing("payment_intent", id);
        };
        if ![
            "requires_payment_method",
            "requires_capture",
            "requires_confirmation",
            "requires_action",
        ]
        .contains(&i.status.as_str())
        {
            let status = i.status.clone();
            return self.unexpected(id, format!("You cannot cancel this PaymentIntent because it has a status of {status}. Only a PaymentIntent with one of the following statuses may be canceled: requires_payment_method, requires_capture, requires_confirmation, requires_action, processing."));
        }
        i.status = "canceled".into();
        i.amount_capturable = 0;
        let body = i.json(expand);
        self.emit_intent("payment_intent.canceled", id);
        (200, body)
    }

    fn refund(&mut self, form: &[(String, String)]) -> Answer {
        let id = param(form, "payment_intent").unwrap_or_default().to_owned();
        let Some(i) = self.intents.get(&id) else {
            let mut e = missing("payment_intent", &id);
            e.0 = 400;
            e.1["error"]["param"] = json!("payment_intent");
            return e;
        };
        if i.status != "succeeded" {
            return err(
                400,
                "invalid_request_error",
                None,
                &format!("This PaymentIntent ({id}) does not have a successful charge to refund."),
            );
        }
        let left = i.amount_received - i.amount_refunded;
        let charge = i.charge.clone().unwrap_or_default();
        if left <= 0 {
            return err(
                400,
                "invalid_request_error",
                Some("charge_already_refunded"),
                &format!("Charge {charge} has already been refunded."),
            );
        }
        let amount = match param(form, "amount").map(str::parse::<i64>) {
            None => left,
            Some(Ok(a)) if a > 0 && a <= left => a,
            Some(_) => {
                let mut e = err(
                    400,
                    "invalid_request_error",
                    None,
                    &format!("Refund amount is greater than unrefunded amount on charge ({left})"),
                );
                e.1["error"]["param"] = json!("amount");
                return e;
            }
        };
        let refund_id = self.id("re_3Ptr");
        let Some(i) = self.intents.get_mut(&id) else {
            return missing("payment_intent", &id);
        };
        i.amount_refunded += amount;
        let currency = i.currency.clone();
        let charge_json = i.charge_json();
        let reason = nested(form, "metadata")
            .remove("reason")
            .unwrap_or_default();
        self.emit("charge.refunded", charge_json);
        (
            200,
            fixtures::refund(
                &refund_id,
                &id,
                &charge,
                amount,
                &currency,
                "succeeded",
                &reason,
            ),
        )
    }

    fn create_session(&mut self, form: &[(String, String)]) -> Answer {
        let get = |k: &str| param(form, k);
        let amount =
            get("line_items[0][price_data][unit_amount]").and_then(|a| a.parse::<i64>().ok());
        let (Some("payment"), Some(amount), Some(currency), Some(_name), Some("1")) = (
            get("mode"),
            amount,
            get("line_items[0][price_data][currency]"),
            get("line_items[0][price_data][product_data][name]"),
            get("line_items[0][quantity]"),
        ) else {
            return err(
                400,
                "invalid_request_error",
                Some("parameter_missing"),
                "mode, line_items[0][price_data] and quantity are required",
            );
        };
        let (Some(success), Some(_cancel)) = (get("success_url"), get("cancel_url")) else {
            return err(
                400,
                "invalid_request_error",
                Some("parameter_missing"),
                "success_url and cancel_url are required",
            );
        };
        let expires_at = get("expires_at")
            .and_then(|e| e.parse::<i64>().ok())
            .unwrap_or(now() + 86_400);
        if expires_at < now() + 30 * 60 || expires_at > now() + 86_400 {
            let mut e = err(
                400,
                "invalid_request_error",
                Some("parameter_invalid_integer"),
                "The `expires_at` timestamp must be between 30 minutes and 24 hours from Checkout Session creation.",
            );
            e.1["error"]["param"] = json!("expires_at");
            return e;
        }
        let id = self.id("cs_test_a1Ptr");
        let session = Session {
            id: id.clone(),
            amount,
            currency: currency.to_owned(),
            status: "open".into(),
            payment_intent: None,
            metadata: nested(form, "metadata"),
            intent_metadata: nested(form, "payment_intent_data[metadata]"),
            capture_method: get("payment_intent_data[capture_method]")
                .unwrap_or("automatic_async")
                .to_owned(),
            success_url: success.to_owned(),
            expires_at,
        };
        let body = session.json();
        self.sessions.insert(id, session);
        (200, body)
    }

    fn expire(&mut self, id: &str) -> Answer {
        let Some(s) = self.sessions.get_mut(id) else {
            return missing("checkout.session", id);
        };
        if s.status != "open" {
            return err(
                400,
                "invalid_request_error",
                None,
                "Only Checkout Sessions with a status in [\"open\"] can be expired.",
            );
        }
        s.status = "expired".into();
        let body = s.json();
        let intent = s.payment_intent.clone();
        self.emit("checkout.session.expired", body.clone());
        if let Some(pi) = intent
            && self.intents.get(&pi).is_some_and(|i| {
                [
                    "requires_payment_method",
                    "requires_confirmation",
                    "requires_action",
                ]
                .contains(&i.status.as_str())
            })
            && let Some(i) = self.intents.get_mut(&pi)
        {
            i.status = "canceled".into();
            self.emit_intent("payment_intent.canceled", &pi);
        }
        (200, body)
    }

    /// The buyer pays session `id` with `pm` on Stripe's page.
    fn pay_session(&mut self, id: &str, pm: &str) -> Result<String, String> {
        let Some(s) = self.sessions.get(id).cloned() else {
            return Err(format!("no session {id}"));
        };
        if s.status != "open" {
            return Err(format!("session {id} is {}", s.status));
        }
        let reuse = s.payment_intent.clone().filter(|pi| {
            self.intents
                .get(pi)
                .is_some_and(|i| i.status == "requires_payment_method")
        });
        let pi = match reuse {
            Some(pi) => {
                if let Some(i) = self.intents.get_mut(&pi) {
                    i.payment_method = Some(pm.to_owned());
                }
                pi
            }
            None => {
                let pi = self.id("pi_3Ptr");
                self.intents.insert(
                    pi.clone(),
                    Intent {
                        id: pi.clone(),
                        amount: s.amount,
                        currency: s.currency.clone(),
                        status: "requires_confirmation".into(),
                        capture_method: s.capture_method.clone(),
                        amount_capturable: 0,
                        amount_received: 0,
                        amount_refunded: 0,
                        metadata: s.intent_metadata.clone(),
                        payment_method: Some(pm.to_owned()),
                        last_payment_error: None,
                        charge: None,
                        capture_before: None,
                        created: now(),
                    },
                );
                if let Some(session) = self.sessions.get_mut(id) {
                    session.payment_intent = Some(pi.clone());
                }
                self.emit_intent("payment_intent.created", &pi);
                pi
            }
        };
        if let Some(i) = self.intents.get_mut(&pi) {
            i.status = "requires_confirmation".into();
        }
        let (code, _) = self.attempt(&pi, false);
        let status = self
            .intents
            .get(&pi)
            .map(|i| i.status.clone())
            .unwrap_or_default();
        if code == 200 && matches!(status.as_str(), "requires_capture" | "succeeded") {
            if let Some(session) = self.sessions.get_mut(id) {
                session.status = "complete".into();
                session.expires_at = session.expires_at.min(now());
            }
            let body = self
                .sessions
                .get(id)
                .map(Session::json)
                .unwrap_or(Value::Null);
            self.emit("checkout.session.completed", body);
        }
        Ok(status)
    }

    fn route(
        &mut self,
        method: &str,
        path: &str,
        form: &[(String, String)],
        expand: bool,
    ) -> Answer {
        let parts: Vec<&str> = path.trim_start_matches('/').split('/').collect();
        match (method, parts.as_slice()) {
            ("POST", ["v1", "payment_intents"]) => self.create_intent(form),
            ("GET", ["v1", "payment_intents", id]) => match self.intents.get(*id) {
                Some(i) => (200, i.json(expand)),
                None => missing("payment_intent", id),
            },
            ("POST", ["v1", "payment_intents", id, "confirm"]) => self.confirm(id, expand),
            ("POST", ["v1", "payment_intents", id, "capture"]) => self.capture(id, form, expand),
            ("POST", ["v1", "payment_intents", id, "cancel"]) => self.cancel(id, expand),
            ("POST", ["v1", "refunds"]) => self.refund(form),
            ("POST", ["v1", "checkout", "sessions"]) => self.create_session(form),
            ("GET", ["v1", "checkout", "sessions", id]) => match self.sessions.get(*id) {
                Some(s) => (200, s.json()),
                None => missing("checkout.session", id),
            },
            ("POST", ["v1", "checkout", "sessions", id, "expire"]) => self.expire(id),
            _ => err(
                404,
                "invalid_request_error",
                None,
                &format!("Unrecognized request URL ({method}: {path})."),
            ),
        }
    }
}

impl FakeStripe {
    pub fn new(config: FakeConfig) -> Self {
        Self {
            state: Arc::new(Mutex::new(State {
                rng: ChaCha8Rng::seed_from_u64(config.seed),
                config,
                next_id: 0,
                intents: BTreeMap::new(),
                sessions: BTreeMap::new(),
                idempotency: HashMap::new(),
                events: Vec::new(),
                stats: FakeStats::default(),
            })),
        }
    }

    /// Serves every request of `server`.
    pub async fn mount(&self, server: &wiremock::MockServer) {
        wiremock::Mock::given(wiremock::matchers::any())
            .respond_with(self.clone())
            .mount(server)
            .await;
    }

    /// The events produced since the last call, oldest first.
    pub fn take_events(&self) -> Vec<Value> {
        std::mem::take(&mut self.state.lock().events)
    }

    /// The buyer pays session `id` with test payment method `pm` on the hosted page;
    /// returns the intent's status after the attempt.
    pub fn pay_session(&self, id: &str, pm: &str) -> Result<String, String> {
        self.state.lock().pay_session(id, pm)
    }

    pub fn intents(&self) -> Vec<Intent> {
        self.state.lock().intents.values().cloned().collect()
    }

    pub fn sessions(&self) -> Vec<Session> {
        self.state.lock().sessions.values().cloned().collect()
    }

    pub fn stats(&self) -> FakeStats {
        self.state.lock().stats.clone()
    }
}

impl Respond for FakeStripe {
    fn respond(&self, request: &Request) -> ResponseTemplate {
        let mut st = self.state.lock();
        st.stats.requests += 1;
        let header = |name: &str| request.headers.get(name).and_then(|v| v.to_str().ok());
        let answer = |(status, body): Answer| ResponseTemplate::new(status).set_body_json(body);
        if header("authorization") != Some(&*format!("Bearer {}", fixtures::SECRET_KEY))
            || header("stripe-version") != Some(payment_stripe::API_VERSION)
        {
            st.stats.bad_auth += 1;
            return answer(err(
                401,
                "invalid_request_error",
                None,
                "Invalid API Key provided.",
            ));
        }
        let method = request.method.as_str().to_owned();
        let path = request.url.path().to_owned();
        let form: Vec<(String, String)> = if method == "POST" {
            super::form_of(request)
        } else {
            request
                .url
                .query_pairs()
                .map(|(k, v)| (k.into_owned(), v.into_owned()))
                .collect()
        };
        let expand = form
            .iter()
            .any(|(k, v)| k == "expand[]" && v == "latest_charge");
        let key = header("idempotency-key").map(str::to_owned);
        if method == "POST" && key.is_none() {
            st.stats.posts_without_key += 1;
            return answer(err(
                400,
                "invalid_request_error",
                None,
                "POST without an Idempotency-Key (the fake demands one)",
            ));
        }
        let fault = st.config.fault_probability;
        if st.chance(fault) {
            st.stats.injected_faults += 1;
            return if st.rng.next_u32().is_multiple_of(3) {
                answer(err(
                    429,
                    "invalid_request_error",
                    Some("rate_limit"),
                    "Too many requests hit the API too quickly.",
                ))
                .insert_header("stripe-should-retry", "true")
                .insert_header("retry-after", "0")
            } else {
                answer(err(500, "api_error", None, "An unknown error occurred."))
                    .insert_header("stripe-should-retry", "true")
            };
        }
        let mut sorted = form.clone();
        sorted.sort();
        let fingerprint = format!("{method} {path} {sorted:?}");
        if let Some(k) = &key
            && let Some(stored) = st.idempotency.get(k)
        {
            if stored.fingerprint == fingerprint {
                let replay = answer((stored.status, stored.body.clone()))
                    .insert_header("idempotent-replayed", "true");
                st.stats.replays += 1;
                return replay;
            }
            st.stats.key_reused += 1;
            return answer(err(
                400,
                "idempotency_error",
                None,
                &format!(
                    "Keys for idempotent requests can only be used with the same parameters they were first used with. Try using a key other than '{k}' if you meant to execute a different request."
                ),
            ));
        }
        let (status, body) = st.route(&method, &path, &form, expand);
        if let Some(k) = key {
            st.idempotency.insert(
                k,
                Stored {
                    fingerprint,
                    status,
                    body: body.clone(),
                },
            );
        }
        let mut template = answer((status, body));
        let slow = st.config.slow_probability;
        if method == "POST" && st.chance(slow) {
            st.stats.slow_answers += 1;
            template = template.set_delay(st.config.slow_delay);
        }
        template
    }
}
