//! The in-process sandbox: a [`PaymentGateway`] that keeps intents in memory, picks outcomes
//! by test card, and emits events to registered webhook endpoints.

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use parking_lot::Mutex;
use serde::{Deserialize, Serialize};
use ticket_core::gateway::{
    Capabilities, CaptureMethod, CaptureRequest, CheckoutSession, CheckoutSessionId, EventKind,
    GatewayError, IntentId, IntentStatus, NewCheckoutSession, NewIntent, PaymentEvent,
    PaymentFailure, PaymentGateway, PaymentIntent, Refund, RefundRequest,
};
use ticket_core::model::idempotency::Fingerprint;
use ticket_core::{Clock, SystemClock};

use crate::book::{Book, Entry};
use crate::cards::{self, CardOutcome};
use crate::delivery::{
    DeliveryAttempt, DeliveryConfig, DeliveryStats, Dispatcher, EndpointConfig, EndpointInfo,
};
use crate::error::SandboxError;
use crate::intent;

mod sessions;

pub use sessions::{HostedSession, PayError, PayOutcome};

/// Sandbox settings.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct SandboxConfig {
    /// Multiplies every simulated wait: the slow cards' delay, the never-answering card's
    /// timeout, fault delays, the retry schedule and `Retry-After`. `1.0` is real time;
    /// `0.001` runs the 5-minute retry step in 300 ms.
    pub time_scale: f64,
    /// How long the slow test cards stay `processing` (default 10 s, scaled).
    pub slow_delay: Duration,
    /// How long confirming the never-answering card waits before `Timeout` (default 15 s,
    /// scaled).
    pub confirm_timeout: Duration,
    /// How long an authorization ([`CaptureMethod::Manual`], `requires_capture`) stays
    /// capturable (default 7 days, like the card networks'; scaled). The intent's
    /// `authorization_expires_at` is its authorization time plus this (scaled) lifetime; an
    /// authorization neither captured nor voided by then is canceled by the sandbox itself
    /// (`payment_intent.canceled`): when that much real time has passed, or as soon as the
    /// sandbox's clock reads past `authorization_expires_at` (for a test clock that jumps),
    /// whichever comes first.
    pub authorization_lifetime: Duration,
    /// Webhook delivery.
    pub delivery: DeliveryConfig,
    /// The most intents kept (default [`DEFAULT_MAX_INTENTS`]). Past it, creating one evicts
    /// the oldest *settled* intent: succeeded, failed or canceled, with every webhook about it
    /// delivered or abandoned. One still `requires_confirmation`, `requires_action`,
    /// `processing` or `requires_capture` (an authorization not yet captured, voided or
    /// expired), or with webhooks on their way, is never evicted; when no intent can go, creation is refused
    /// ([`GatewayError::Unavailable`], HTTP `503`) and nothing changes. An evicted intent
    /// and its idempotency key are forgotten: reading it is `NotFound` (`404`), and its key
    /// may create a new intent.
    pub max_intents: usize,
    /// The most refunds kept (default [`DEFAULT_MAX_REFUNDS`]); past it the oldest refund
    /// whose intent has no webhook on its way is evicted, with its idempotency key.
    pub max_refunds: usize,
    /// The most delivery attempts the log keeps (default [`DEFAULT_MAX_DELIVERY_LOG`]);
    /// past it the oldest attempts are dropped ([`DeliveryStats`] still counts them).
    pub max_delivery_log: usize,
    /// The most webhook endpoints that can be registered (default
    /// [`DEFAULT_MAX_ENDPOINTS`]); one more is refused.
    pub max_endpoints: usize,
    /// The most checkout sessions kept (default [`DEFAULT_MAX_SESSIONS`]). Past it, creating
    /// one evicts the oldest complete or expired session (with its idempotency key); an open
    /// one never is, and when every session is open creation is refused
    /// ([`GatewayError::Unavailable`], HTTP `503`).
    pub max_sessions: usize,
    /// The base URL under which the hosted payment page ([`crate::http::hosted_page_router`])
    /// is reachable by buyers: a session's `url` is `{public_url}/pay/{session id}`
    /// (default [`DEFAULT_PUBLIC_URL`]). An absolute `http(s)` URL; a path is kept (for a
    /// page mounted under a prefix), a trailing `/` is not. The binary sets it from the
    /// address it listens on unless `--public-url` is given.
    pub public_url: String,
}

/// Default of [`SandboxConfig::authorization_lifetime`]: 7 days.
pub const DEFAULT_AUTHORIZATION_LIFETIME: Duration = Duration::from_secs(7 * 24 * 3_600);
/// Default of [`SandboxConfig::public_url`].
pub const DEFAULT_PUBLIC_URL: &str = "http://127.0.0.1:4242";
/// Default of [`SandboxConfig::max_sessions`].
pub const DEFAULT_MAX_SESSIONS: usize = 100_000;
/// Default of [`SandboxConfig::max_intents`].
pub const DEFAULT_MAX_INTENTS: usize = 100_000;
/// Default of [`SandboxConfig::max_refunds`].
pub const DEFAULT_MAX_REFUNDS: usize = 100_000;
/// Default of [`SandboxConfig::max_delivery_log`].
pub const DEFAULT_MAX_DELIVERY_LOG: usize = 100_000;
/// Default of [`SandboxConfig::max_endpoints`].
pub const DEFAULT_MAX_ENDPOINTS: usize = 100;

impl Default for SandboxConfig {
    fn default() -> Self {
        Self {
            time_scale: 1.0,
            slow_delay: Duration::from_secs(10),
            confirm_timeout: Duration::from_secs(15),
            authorization_lifetime: DEFAULT_AUTHORIZATION_LIFETIME,
            delivery: DeliveryConfig::default(),
            max_intents: DEFAULT_MAX_INTENTS,
            max_refunds: DEFAULT_MAX_REFUNDS,
            max_delivery_log: DEFAULT_MAX_DELIVERY_LOG,
            max_endpoints: DEFAULT_MAX_ENDPOINTS,
            max_sessions: DEFAULT_MAX_SESSIONS,
            public_url: DEFAULT_PUBLIC_URL.to_owned(),
        }
    }
}

/// A fake payment provider. Cheap to clone: clones share the same intents and endpoints.
///
/// Guarantees, like a real provider's:
/// * intent creation and refunds are idempotent per key (same key and request: the same
///   intent, as it stands now, or the same refund; same key, other request:
///   [`GatewayError::KeyReused`]);
/// * intents follow the state machine of [`crate::intent`]; refunds never exceed the amount;
/// * each intent's events carry a strictly increasing `sequence`, in the order the status
///   changed; delivery may still reorder, duplicate, delay or drop them (see
///   [`crate::faults`]);
/// * memory is bounded: intents, refunds, the delivery log and endpoints are kept up to the
///   counts of [`SandboxConfig`], evicting only settled items (see
///   [`SandboxConfig::max_intents`]).
#[derive(Clone, Debug)]
pub struct Sandbox {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    config: SandboxConfig,
    clock: Arc<dyn Clock>,
    book: Mutex<Book>,
    dispatcher: Dispatcher,
}

/// Runs `task` on the current Tokio runtime; outside one (a sandbox driven from plain
/// threads) the timer cannot run, which is logged instead of panicking (an authorization
/// still expires when the clock passes its expiry).
fn spawn(what: &str, task: impl Future<Output = ()> + Send + 'static) {
    match tokio::runtime::Handle::try_current() {
        Ok(runtime) => {
            runtime.spawn(task);
        }
        Err(e) => tracing::error!("cannot start the {what} timer outside a Tokio runtime: {e}"),
    }
}

/// `d` times `scale` (finite, >= 0: checked at construction), saturating at
/// [`Duration::MAX`] instead of panicking on overflow.
fn scaled(d: Duration, scale: f64) -> Duration {
    Duration::try_from_secs_f64(d.as_secs_f64() * scale).unwrap_or(Duration::MAX)
}

impl Sandbox {
    /// A sandbox on the system clock.
    pub fn new(config: SandboxConfig) -> Result<Self, SandboxError> {
        Self::with_clock(config, Arc::new(SystemClock))
    }

    /// A sandbox whose timestamps (intents, events, `webhook-timestamp`) come from `clock`.
    pub fn with_clock(config: SandboxConfig, clock: Arc<dyn Clock>) -> Result<Self, SandboxError> {
        if !(config.time_scale.is_finite() && config.time_scale >= 0.0) {
            return Err(SandboxError::InvalidConfig(format!(
                "time_scale must be a finite number >= 0, got {}",
                config.time_scale
            )));
        }
        for (name, value) in [
            ("max_intents", config.max_intents),
            ("max_refunds", config.max_refunds),
            ("max_delivery_log", config.max_delivery_log),
            ("max_endpoints", config.max_endpoints),
            ("max_sessions", config.max_sessions),
        ] {
            if value == 0 {
                return Err(SandboxError::InvalidConfig(format!(
                    "{name} must be at least 1"
                )));
            }
        }
        let mut config = config;
        config.public_url = sessions::public_base(&config.public_url)?;
        let dispatcher = Dispatcher::new(
            config.delivery.clone(),
            config.time_scale,
            clock.clone(),
            config.max_endpoints,
            config.max_delivery_log,
        )?;
        Ok(Self {
            inner: Arc::new(Inner {
                config,
                clock,
                book: Mutex::new(Book::default()),
                dispatcher,
            }),
        })
    }

    /// The settings in force.
    pub fn config(&self) -> &SandboxConfig {
        &self.inner.config
    }

    /// Registers a webhook endpoint; every later event is delivered to it. Returns its id and
    /// the key its receiver verifies with.
    pub fn register_endpoint(&self, config: EndpointConfig) -> Result<EndpointInfo, SandboxError> {
        self.inner.dispatcher.register(config)
    }

    /// An endpoint as it stands (e.g. disabled after `410 Gone`).
    pub fn endpoint(&self, id: &str) -> Result<EndpointInfo, SandboxError> {
        self.inner.dispatcher.endpoint(id)
    }

    /// Rotates an endpoint's signing key: webhooks carry signatures by the new and the
    /// previous key until the next rotation.
    pub fn rotate_secret(&self, id: &str) -> Result<EndpointInfo, SandboxError> {
        self.inner.dispatcher.rotate(id)
    }

    /// The delivery log: every attempt, to one endpoint or all, in the order they ended.
    pub fn deliveries(&self, endpoint: Option<&str>) -> Vec<DeliveryAttempt> {
        self.inner.dispatcher.attempts(endpoint)
    }

    /// Delivery counters.
    pub fn delivery_stats(&self) -> DeliveryStats {
        self.inner.dispatcher.stats()
    }

    /// Waits until every scheduled delivery has ended (delivered or abandoned), at most
    /// `timeout`; true when nothing is pending.
    pub async fn wait_idle(&self, timeout: Duration) -> bool {
        self.inner.dispatcher.idle(timeout).await
    }

    /// What the sandbox offers beyond immediate charges: manual capture, partial capture and
    /// hosted checkout sessions (see [`crate::http::CAPABILITIES`]).
    pub fn capabilities(&self) -> Capabilities {
        crate::http::CAPABILITIES
    }

    /// Every intent kept (see [`SandboxConfig::max_intents`]), oldest first.
    pub fn intents(&self) -> Vec<PaymentIntent> {
        let mut book = self.inner.book.lock();
        for entry in book.entries_mut() {
            self.expire_if_due(entry);
        }
        let mut all: Vec<_> = book.intents().cloned().collect();
        drop(book);
        all.sort_by(|a, b| (a.created_at, &a.id).cmp(&(b.created_at, &b.id)));
        all
    }

    /// Every refund kept (see [`SandboxConfig::max_refunds`]), in the order they were made.
    pub fn refunds(&self) -> Vec<Refund> {
        self.inner.book.lock().refunds()
    }

    /// Changes the intent under the book's lock and, when it changed, emits `kind`.
    fn apply(
        &self,
        id: &IntentId,
        kind: EventKind,
        change: impl FnOnce(&mut PaymentIntent) -> Result<bool, GatewayError>,
    ) -> Result<PaymentIntent, GatewayError> {
        let mut book = self.inner.book.lock();
        let entry = book
            .entry_mut(id)
            .ok_or_else(|| GatewayError::NotFound(id.to_string()))?;
        self.expire_if_due(entry);
        if change(&mut entry.intent)? {
            self.emit(entry, kind);
        }
        Ok(entry.intent.clone())
    }

    /// Under the book's lock: intent `id` as it stands now (its authorization expired first
    /// if due), for a request repeated with its idempotency key.
    fn current(&self, book: &mut Book, id: &IntentId) -> Result<PaymentIntent, GatewayError> {
        let entry = book
            .entry_mut(id)
            .ok_or_else(|| GatewayError::NotFound(id.to_string()))?;
        self.expire_if_due(entry);
        Ok(entry.intent.clone())
    }

    /// Under the book's lock: cancels an authorization the sandbox's clock says has
    /// expired (emits `payment_intent.canceled`). Called before every read or move of an
    /// intent, so no one sees an authorization past its expiry as capturable.
    fn expire_if_due(&self, entry: &mut Entry) {
        let due = entry
            .intent
            .authorization_expires_at
            .is_some_and(|at| at <= self.inner.clock.now());
        if due && matches!(intent::expire_authorization(&mut entry.intent), Ok(true)) {
            tracing::info!(intent = %entry.intent.id, "authorization expired uncaptured");
            self.emit(entry, EventKind::Canceled);
        }
    }

    /// Under the book's lock: the card of a `processing` intent was accepted. An automatic
    /// intent succeeds (`payment_intent.succeeded`); a manual one is authorized
    /// (`payment_intent.amount_capturable_updated`) until its lifetime ends, when the
    /// sandbox cancels it unless it was captured or voided.
    fn accept(&self, entry: &mut Entry) -> Result<(), GatewayError> {
        match entry.intent.capture_method {
            CaptureMethod::Automatic => {
                if intent::succeed(&mut entry.intent)? {
                    self.emit(entry, EventKind::Succeeded);
                }
            }
            CaptureMethod::Manual => {
                let config = &self.inner.config;
                let lifetime = scaled(config.authorization_lifetime, config.time_scale);
                let expires_at = self.inner.clock.now().plus(lifetime);
                if intent::authorize(&mut entry.intent, expires_at)? {
                    self.emit(entry, EventKind::AmountCapturableUpdated);
                    self.expire_later(entry.intent.id.clone(), lifetime);
                }
            }
        }
        Ok(())
    }

    /// Cancels the authorization of `id` after `lifetime` (real time), unless it was
    /// captured or voided by then.
    fn expire_later(&self, id: IntentId, lifetime: Duration) {
        let this = self.clone();
        spawn("authorization expiry", async move {
            tokio::time::sleep(lifetime).await;
            let expired = this.apply(&id, EventKind::Canceled, |i| {
                let expired = intent::expire_authorization(i)?;
                if expired {
                    tracing::info!(intent = %i.id, "authorization expired uncaptured");
                }
                Ok(expired)
            });
            // NotFound cannot happen (an intent in requires_capture is never evicted, and
            // one that left it may be): nothing to do either way.
            if let Err(e) = expired {
                tracing::debug!(intent = %id, "authorization expiry: {e}");
            }
        });
    }

    /// Emits an event for the intent's current state (called under the book's lock, so each
    /// intent's sequence follows its status changes).
    fn emit(&self, entry: &mut Entry, kind: EventKind) {
        entry.sequence += 1;
        let event = PaymentEvent {
            id: format!("msg_{}", uuid::Uuid::now_v7().simple()),
            kind,
            sequence: entry.sequence,
            created_at: self.inner.clock.now(),
            intent: entry.intent.clone(),
        };
        self.inner.dispatcher.dispatch(&event);
    }

    /// [`Self::accept`] for the intent `id`, under the book's lock.
    fn accept_later(&self, id: &IntentId) -> Result<PaymentIntent, GatewayError> {
        let mut book = self.inner.book.lock();
        let entry = book
            .entry_mut(id)
            .ok_or_else(|| GatewayError::NotFound(id.to_string()))?;
        self.accept(entry)?;
        Ok(entry.intent.clone())
    }

    /// Under the book's lock: confirms the entry's intent and applies at once what its card
    /// does (succeeds or is authorized, fails, asks for a challenge; a slow card settles
    /// later, by a timer started here). A repeat changes nothing. Returns whether this call
    /// confirmed it.
    fn confirm_locked(&self, entry: &mut Entry) -> Result<bool, GatewayError> {
        self.expire_if_due(entry);
        if entry.card == CardOutcome::RequiresChallenge
            && entry.intent.status == IntentStatus::RequiresConfirmation
        {
            intent::require_action(&mut entry.intent)?;
            self.emit(entry, EventKind::RequiresAction);
            return Ok(true);
        }
        let first = intent::confirm(&mut entry.intent)?;
        if first {
            self.emit(entry, EventKind::Processing);
            match entry.card.clone() {
                CardOutcome::Succeeds | CardOutcome::RequiresChallenge => self.accept(entry)?,
                CardOutcome::Fails(f) => {
                    intent::fail(&mut entry.intent, f)?;
                    self.emit(entry, EventKind::PaymentFailed);
                }
                slow @ (CardOutcome::SucceedsAfterDelay | CardOutcome::FailsAfterDelay(_)) => {
                    self.settle_later(entry.intent.id.clone(), slow);
                }
                CardOutcome::NeverAnswers => {}
            }
        }
        Ok(first)
    }

    /// Under the book's lock: the buyer answered the challenge of a `requires_action`
    /// intent. [`cards::CHALLENGE_CODE`] passes it (`processing`, then succeeded or
    /// authorized as the card that succeeds); any other code fails the intent with
    /// `authentication_failed`. `Conflict` when no challenge is pending; nothing changes.
    fn answer_challenge_locked(&self, entry: &mut Entry, code: &str) -> Result<(), GatewayError> {
        self.expire_if_due(entry);
        if entry.intent.status != IntentStatus::RequiresAction {
            return Err(GatewayError::Conflict {
                action: "answer the challenge of".into(),
                status: entry.intent.status,
            });
        }
        let right: bool =
            subtle::ConstantTimeEq::ct_eq(code.trim().as_bytes(), cards::CHALLENGE_CODE.as_bytes())
                .into();
        if right {
            intent::authenticate(&mut entry.intent)?;
            self.emit(entry, EventKind::Processing);
            self.accept(entry)?;
        } else {
            intent::fail(
                &mut entry.intent,
                PaymentFailure {
                    code: "authentication_failed".into(),
                    message: "The one-time code was not accepted: the card was not charged.".into(),
                },
            )?;
            self.emit(entry, EventKind::PaymentFailed);
        }
        Ok(())
    }

    /// Answers the challenge of a `requires_action` intent (a card like
    /// [`cards::numbers::REQUIRES_CHALLENGE`]), as the buyer does on the hosted payment page:
    /// [`cards::CHALLENGE_CODE`] authenticates it (`payment_intent.processing`, then
    /// `succeeded`, or `amount_capturable_updated` for a manual capture), any other code
    /// fails it (`payment_intent.payment_failed`, code `authentication_failed`). An intent
    /// with no challenge pending is `Conflict` and does not change.
    pub fn complete_challenge(
        &self,
        id: &IntentId,
        code: &str,
    ) -> Result<PaymentIntent, GatewayError> {
        let mut book = self.inner.book.lock();
        let entry = book
            .entry_mut(id)
            .ok_or_else(|| GatewayError::NotFound(id.to_string()))?;
        self.answer_challenge_locked(entry, code)?;
        Ok(entry.intent.clone())
    }

    fn settle_later(&self, id: IntentId, outcome: CardOutcome) {
        let this = self.clone();
        let wait = scaled(self.inner.config.slow_delay, self.inner.config.time_scale);
        spawn("slow card", async move {
            tokio::time::sleep(wait).await;
            let result = match outcome {
                CardOutcome::FailsAfterDelay(f) => {
                    this.apply(&id, EventKind::PaymentFailed, |i| intent::fail(i, f))
                }
                _ => this.accept_later(&id),
            };
            if let Err(e) = result {
                tracing::error!(intent = %id, "slow card could not settle: {e}");
            }
        });
    }
}

#[derive(Serialize)]
struct CreateFingerprint<'a> {
    amount: &'a ticket_core::model::money::Money,
    payment_method: &'a str,
    capture_method: CaptureMethod,
    metadata: &'a std::collections::BTreeMap<String, String>,
}

fn key_ok(key: &str) -> Result<(), GatewayError> {
    if key.is_empty() || key.len() > 255 || key.chars().any(char::is_control) {
        return Err(GatewayError::Invalid(
            "idempotency key must be 1..=255 printable characters".into(),
        ));
    }
    Ok(())
}

fn fingerprint<T: Serialize>(v: &T) -> Result<Fingerprint, GatewayError> {
    Fingerprint::of(v).map_err(|e| GatewayError::Invalid(e.to_string()))
}

#[async_trait]
impl PaymentGateway for Sandbox {
    fn capabilities(&self) -> Capabilities {
        Sandbox::capabilities(self)
    }

    async fn create_intent(&self, req: NewIntent) -> Result<PaymentIntent, GatewayError> {
        key_ok(&req.idempotency_key)?;
        let fp = fingerprint(&CreateFingerprint {
            amount: &req.amount,
            payment_method: &req.payment_method,
            capture_method: req.capture_method,
            metadata: &req.metadata,
        })?;
        let card = cards::outcome(&req.payment_method)?;
        intent::validate_amount(&req.amount)?;
        let mut book = self.inner.book.lock();
        if let Some((seen, id)) = book.created_by(&req.idempotency_key) {
            if *seen != fp {
                return Err(GatewayError::KeyReused);
            }
            let id = id.clone();
            return self.current(&mut book, &id);
        }
        let id = IntentId::new(format!("pi_{}", uuid::Uuid::now_v7().simple()))?;
        let created = intent::open(
            id,
            req.amount,
            req.capture_method,
            req.metadata,
            self.inner.clock.now(),
        )?;
        self.make_room_for_intent(&mut book)?;
        book.insert_intent(fp, Entry::new(created.clone(), card, req.idempotency_key));
        Ok(created)
    }

    async fn confirm_intent(&self, id: &IntentId) -> Result<PaymentIntent, GatewayError> {
        let (intent, card) = {
            let mut book = self.inner.book.lock();
            let entry = book
                .entry_mut(id)
                .ok_or_else(|| GatewayError::NotFound(id.to_string()))?;
            self.confirm_locked(entry)?;
            (entry.intent.clone(), entry.card.clone())
        };
        if card == CardOutcome::NeverAnswers {
            let config = &self.inner.config;
            tokio::time::sleep(scaled(config.confirm_timeout, config.time_scale)).await;
            return Err(GatewayError::Timeout);
        }
        Ok(intent)
    }

    async fn get_intent(&self, id: &IntentId) -> Result<PaymentIntent, GatewayError> {
        self.apply(id, EventKind::Canceled, |_| Ok(false))
    }

    async fn cancel_intent(&self, id: &IntentId) -> Result<PaymentIntent, GatewayError> {
        self.apply(id, EventKind::Canceled, intent::cancel)
    }

    async fn capture(&self, req: CaptureRequest) -> Result<PaymentIntent, GatewayError> {
        key_ok(&req.idempotency_key)?;
        let fp = fingerprint(&(&req.intent, req.amount_minor))?;
        let mut book = self.inner.book.lock();
        if let Some((seen, id)) = book.captured_by(&req.idempotency_key) {
            if *seen != fp {
                return Err(GatewayError::KeyReused);
            }
            let id = id.clone();
            return self.current(&mut book, &id);
        }
        let entry = book
            .entry_mut(&req.intent)
            .ok_or_else(|| GatewayError::NotFound(req.intent.to_string()))?;
        self.expire_if_due(entry);
        let taken = intent::capture(&mut entry.intent, req.amount_minor)?;
        self.emit(entry, EventKind::Succeeded);
        let captured = entry.intent.clone();
        tracing::info!(intent = %req.intent, taken, "captured");
        book.record_capture(req.idempotency_key, fp, &req.intent);
        Ok(captured)
    }

    async fn void(&self, id: &IntentId) -> Result<PaymentIntent, GatewayError> {
        self.apply(id, EventKind::Canceled, intent::cancel)
    }

    async fn create_checkout_session(
        &self,
        req: NewCheckoutSession,
    ) -> Result<CheckoutSession, GatewayError> {
        self.create_session(req)
    }

    async fn get_checkout_session(
        &self,
        id: &CheckoutSessionId,
    ) -> Result<CheckoutSession, GatewayError> {
        self.read_session(id)
    }

    async fn expire_checkout_session(
        &self,
        id: &CheckoutSessionId,
    ) -> Result<CheckoutSession, GatewayError> {
        self.expire_session(id)
    }

    async fn refund(&self, req: RefundRequest) -> Result<Refund, GatewayError> {
        key_ok(&req.idempotency_key)?;
        let fp = fingerprint(&(&req.intent, req.amount_minor))?;
        let mut book = self.inner.book.lock();
        if let Some((seen, refund)) = book.refunded_by(&req.idempotency_key) {
            return if *seen == fp {
                Ok(refund.clone())
            } else {
                Err(GatewayError::KeyReused)
            };
        }
        let not_found = || GatewayError::NotFound(req.intent.to_string());
        // Refund a copy first: a refused refund, or no room for one, changes nothing.
        let entry = book.entry_mut(&req.intent).ok_or_else(not_found)?;
        self.expire_if_due(entry);
        let mut refunded = entry.intent.clone();
        let amount = intent::refund(&mut refunded, req.amount_minor)?;
        let dispatcher = &self.inner.dispatcher;
        book.make_room_for_refund(self.inner.config.max_refunds, |id| {
            dispatcher.has_pending(id)
        })?;
        let entry = book.entry_mut(&req.intent).ok_or_else(not_found)?;
        entry.intent = refunded;
        self.emit(entry, EventKind::Refunded);
        let refund = Refund {
            id: format!("re_{}", uuid::Uuid::now_v7().simple()),
            intent: req.intent.clone(),
            amount,
        };
        tracing::info!(intent = %req.intent, refund = %refund.id, reason = %req.reason, "refunded");
        book.insert_refund(req.idempotency_key, fp, refund.clone());
        Ok(refund)
    }
}
