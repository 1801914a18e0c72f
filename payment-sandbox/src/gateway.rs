//! The in-process sandbox: a [`PaymentGateway`] that keeps intents in memory, picks outcomes
//! by test card, and emits events to registered webhook endpoints.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use parking_lot::Mutex;
use serde::{Deserialize, Serialize};
use ticket_core::gateway::{
    EventKind, GatewayError, IntentId, NewIntent, PaymentEvent, PaymentGateway, PaymentIntent,
    Refund, RefundRequest,
};
use ticket_core::model::idempotency::Fingerprint;
use ticket_core::{Clock, SystemClock};

use crate::cards::{self, CardOutcome};
use crate::delivery::{
    DeliveryAttempt, DeliveryConfig, DeliveryStats, Dispatcher, EndpointConfig, EndpointInfo,
};
use crate::error::SandboxError;
use crate::intent;

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
    /// Webhook delivery.
    pub delivery: DeliveryConfig,
}

impl Default for SandboxConfig {
    fn default() -> Self {
        Self {
            time_scale: 1.0,
            slow_delay: Duration::from_secs(10),
            confirm_timeout: Duration::from_secs(15),
            delivery: DeliveryConfig::default(),
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
///   [`crate::faults`]).
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

#[derive(Debug, Default)]
struct Book {
    intents: HashMap<IntentId, Entry>,
    create_keys: HashMap<String, (Fingerprint, IntentId)>,
    refund_keys: HashMap<String, (Fingerprint, Refund)>,
    refunds: Vec<Refund>,
}

#[derive(Debug)]
struct Entry {
    intent: PaymentIntent,
    card: CardOutcome,
    sequence: u64,
}

fn scaled(d: Duration, scale: f64) -> Duration {
    d.mul_f64(scale)
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
        let dispatcher =
            Dispatcher::new(config.delivery.clone(), config.time_scale, clock.clone())?;
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

    /// Every intent, oldest first.
    pub fn intents(&self) -> Vec<PaymentIntent> {
        let mut all: Vec<_> = self
            .inner
            .book
            .lock()
            .intents
            .values()
            .map(|e| e.intent.clone())
            .collect();
        all.sort_by(|a, b| (a.created_at, &a.id).cmp(&(b.created_at, &b.id)));
        all
    }

    /// Every refund, in the order they were made.
    pub fn refunds(&self) -> Vec<Refund> {
        self.inner.book.lock().refunds.clone()
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
            .intents
            .get_mut(id)
            .ok_or_else(|| GatewayError::NotFound(id.to_string()))?;
        if change(&mut entry.intent)? {
            self.emit(entry, kind);
        }
        Ok(entry.intent.clone())
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

    fn settle_later(&self, id: IntentId, outcome: CardOutcome) {
        let this = self.clone();
        let wait = scaled(self.inner.config.slow_delay, self.inner.config.time_scale);
        tokio::spawn(async move {
            tokio::time::sleep(wait).await;
            let result = match outcome {
                CardOutcome::FailsAfterDelay(f) => {
                    this.apply(&id, EventKind::PaymentFailed, |i| intent::fail(i, f))
                }
                _ => this.apply(&id, EventKind::Succeeded, intent::succeed),
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
    async fn create_intent(&self, req: NewIntent) -> Result<PaymentIntent, GatewayError> {
        key_ok(&req.idempotency_key)?;
        let fp = fingerprint(&CreateFingerprint {
            amount: &req.amount,
            payment_method: &req.payment_method,
            metadata: &req.metadata,
        })?;
        let card = cards::outcome(&req.payment_method)?;
        intent::validate_amount(&req.amount)?;
        let mut book = self.inner.book.lock();
        if let Some((seen, id)) = book.create_keys.get(&req.idempotency_key) {
            if *seen != fp {
                return Err(GatewayError::KeyReused);
            }
            let id = id.clone();
            return book
                .intents
                .get(&id)
                .map(|e| e.intent.clone())
                .ok_or(GatewayError::NotFound(id.to_string()));
        }
        let id = IntentId::new(format!("pi_{}", uuid::Uuid::now_v7().simple()))?;
        let created = intent::open(id.clone(), req.amount, req.metadata, self.inner.clock.now())?;
        book.create_keys
            .insert(req.idempotency_key, (fp, id.clone()));
        book.intents.insert(
            id,
            Entry {
                intent: created.clone(),
                card,
                sequence: 0,
            },
        );
        Ok(created)
    }

    async fn confirm_intent(&self, id: &IntentId) -> Result<PaymentIntent, GatewayError> {
        let (intent, card, first) = {
            let mut book = self.inner.book.lock();
            let entry = book
                .intents
                .get_mut(id)
                .ok_or_else(|| GatewayError::NotFound(id.to_string()))?;
            let first = intent::confirm(&mut entry.intent)?;
            if first {
                self.emit(entry, EventKind::Processing);
                match entry.card.clone() {
                    CardOutcome::Succeeds => {
                        intent::succeed(&mut entry.intent)?;
                        self.emit(entry, EventKind::Succeeded);
                    }
                    CardOutcome::Fails(f) => {
                        intent::fail(&mut entry.intent, f)?;
                        self.emit(entry, EventKind::PaymentFailed);
                    }
                    CardOutcome::SucceedsAfterDelay
                    | CardOutcome::FailsAfterDelay(_)
                    | CardOutcome::NeverAnswers => {}
                }
            }
            (entry.intent.clone(), entry.card.clone(), first)
        };
        match card {
            CardOutcome::NeverAnswers => {
                let config = &self.inner.config;
                tokio::time::sleep(scaled(config.confirm_timeout, config.time_scale)).await;
                Err(GatewayError::Timeout)
            }
            slow @ (CardOutcome::SucceedsAfterDelay | CardOutcome::FailsAfterDelay(_)) => {
                if first {
                    self.settle_later(id.clone(), slow);
                }
                Ok(intent)
            }
            CardOutcome::Succeeds | CardOutcome::Fails(_) => Ok(intent),
        }
    }

    async fn get_intent(&self, id: &IntentId) -> Result<PaymentIntent, GatewayError> {
        self.inner
            .book
            .lock()
            .intents
            .get(id)
            .map(|e| e.intent.clone())
            .ok_or_else(|| GatewayError::NotFound(id.to_string()))
    }

    async fn cancel_intent(&self, id: &IntentId) -> Result<PaymentIntent, GatewayError> {
        self.apply(id, EventKind::Canceled, intent::cancel)
    }

    async fn refund(&self, req: RefundRequest) -> Result<Refund, GatewayError> {
        key_ok(&req.idempotency_key)?;
        let fp = fingerprint(&(&req.intent, req.amount_minor))?;
        let mut book = self.inner.book.lock();
        if let Some((seen, refund)) = book.refund_keys.get(&req.idempotency_key) {
            return if *seen == fp {
                Ok(refund.clone())
            } else {
                Err(GatewayError::KeyReused)
            };
        }
        let entry = book
            .intents
            .get_mut(&req.intent)
            .ok_or_else(|| GatewayError::NotFound(req.intent.to_string()))?;
        let amount = intent::refund(&mut entry.intent, req.amount_minor)?;
        self.emit(entry, EventKind::Refunded);
        let refund = Refund {
            id: format!("re_{}", uuid::Uuid::now_v7().simple()),
            intent: req.intent.clone(),
            amount,
        };
        tracing::info!(intent = %req.intent, refund = %refund.id, reason = %req.reason, "refunded");
        book.refund_keys
            .insert(req.idempotency_key, (fp, refund.clone()));
        book.refunds.push(refund.clone());
        Ok(refund)
    }
}
