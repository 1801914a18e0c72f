//! The dispatcher: sends each event to every endpoint, retries, logs (feature `server`).

use std::collections::{HashMap, VecDeque};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use parking_lot::Mutex;
use ticket_core::Clock;
use ticket_core::Timestamp;
use ticket_core::gateway::{EventKind, IntentId, PaymentEvent};
use tokio::sync::{Notify, watch};

use super::{
    AttemptOutcome, DeliveryAttempt, DeliveryConfig, DeliveryStats, EndpointConfig, EndpointInfo,
    SigningScheme,
};
use crate::error::SandboxError;
use crate::faults::{CopyPlan, Dice, Faults};
use crate::signature::{self, Signer, SigningKey, WebhookSecret};

/// The longest any single wait lasts (a `Retry-After` asking for more is capped here).
const MAX_WAIT: Duration = Duration::from_secs(24 * 3_600);

struct Endpoint {
    info: EndpointInfo,
    /// Newest last; every key signs, so a receiver with either secret verifies during a
    /// rotation.
    keys: Vec<Signer>,
    faults: Faults,
    dice: Dice,
    /// Events dispatched to this endpoint so far (each job's `order` is its position).
    dispatched: u64,
    /// The highest `order` of a not-held-back job that made an attempt: a copy held back
    /// is released once this passes its own `order` (a later event was attempted).
    attempted: Arc<watch::Sender<u64>>,
}

/// Sends events to endpoints; shared by the sandbox's clones.
#[derive(Clone)]
pub(crate) struct Dispatcher {
    inner: Arc<Inner>,
}

struct Inner {
    client: reqwest::Client,
    config: DeliveryConfig,
    time_scale: f64,
    clock: Arc<dyn Clock>,
    endpoints: Mutex<HashMap<String, Endpoint>>,
    max_endpoints: usize,
    log: Mutex<VecDeque<DeliveryAttempt>>,
    max_log: usize,
    /// Copies not yet delivered nor abandoned, per intent: an intent with any is never
    /// evicted (its events are still on their way).
    pending: Mutex<HashMap<IntentId, usize>>,
    stats: Mutex<DeliveryStats>,
    in_flight: AtomicUsize,
    idle: Notify,
}

impl std::fmt::Debug for Dispatcher {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Dispatcher")
            .field("endpoints", &self.inner.endpoints.lock().len())
            .field("in_flight", &self.inner.in_flight.load(Ordering::SeqCst))
            .finish()
    }
}

/// Counts a copy as in flight (overall and for its intent) until its delivery ends, however
/// it ends.
struct InFlight(Arc<Inner>, IntentId);

impl InFlight {
    fn start(inner: &Arc<Inner>, intent: &IntentId) -> Self {
        inner.in_flight.fetch_add(1, Ordering::SeqCst);
        *inner.pending.lock().entry(intent.clone()).or_insert(0) += 1;
        Self(inner.clone(), intent.clone())
    }
}

impl Drop for InFlight {
    fn drop(&mut self) {
        {
            let mut pending = self.0.pending.lock();
            if let Some(n) = pending.get_mut(&self.1) {
                *n -= 1;
                if *n == 0 {
                    pending.remove(&self.1);
                }
            }
        }
        if self.0.in_flight.fetch_sub(1, Ordering::SeqCst) == 1 {
            self.0.idle.notify_waiters();
        }
    }
}

impl Dispatcher {
    pub(crate) fn new(
        config: DeliveryConfig,
        time_scale: f64,
        clock: Arc<dyn Clock>,
        max_endpoints: usize,
        max_log: usize,
    ) -> Result<Self, SandboxError> {
        if config.schedule.is_empty() {
            return Err(SandboxError::InvalidConfig(
                "the retry schedule needs at least one attempt".into(),
            ));
        }
        if config.request_timeout.is_zero() {
            return Err(SandboxError::InvalidConfig(
                "request_timeout must be positive".into(),
            ));
        }
        let client = reqwest::Client::builder()
            .timeout(config.request_timeout)
            // A 3xx is the receiver's answer, never a new destination.
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .map_err(|e| SandboxError::InvalidConfig(format!("HTTP client: {e}")))?;
        Ok(Self {
            inner: Arc::new(Inner {
                client,
                config,
                time_scale,
                clock,
                endpoints: Mutex::new(HashMap::new()),
                max_endpoints,
                log: Mutex::new(VecDeque::new()),
                max_log,
                pending: Mutex::new(HashMap::new()),
                stats: Mutex::new(DeliveryStats::default()),
                in_flight: AtomicUsize::new(0),
                idle: Notify::new(),
            }),
        })
    }

    /// `d` times the time scale; never panics (an unrepresentable result is capped).
    fn scaled(&self, d: Duration) -> Duration {
        Duration::try_from_secs_f64(d.as_secs_f64() * self.inner.time_scale)
            .unwrap_or(MAX_WAIT)
            .min(MAX_WAIT)
    }

    pub(crate) fn register(&self, config: EndpointConfig) -> Result<EndpointInfo, SandboxError> {
        config.faults.validate()?;
        crate::webhook_url::validate(&config.url)?;
        let key = new_signer(config.signing)?;
        let info = EndpointInfo {
            id: format!("ep_{}", uuid::Uuid::now_v7().simple()),
            url: config.url,
            verification_key: key.verification_key().to_string(),
            enabled: true,
        };
        let mut endpoints = self.inner.endpoints.lock();
        if endpoints.len() >= self.inner.max_endpoints {
            return Err(SandboxError::TooManyEndpoints(self.inner.max_endpoints));
        }
        endpoints.insert(
            info.id.clone(),
            Endpoint {
                info: info.clone(),
                keys: vec![key],
                dice: Dice::new(config.faults.seed),
                faults: config.faults,
                dispatched: 0,
                attempted: Arc::new(watch::Sender::new(0)),
            },
        );
        Ok(info)
    }

    pub(crate) fn endpoint(&self, id: &str) -> Result<EndpointInfo, SandboxError> {
        self.inner
            .endpoints
            .lock()
            .get(id)
            .map(|e| e.info.clone())
            .ok_or_else(|| SandboxError::UnknownEndpoint(id.to_owned()))
    }

    /// Adds a new signing key; the previous one keeps signing too (the header carries both
    /// signatures) until the next rotation, so receivers can switch without a gap.
    pub(crate) fn rotate(&self, id: &str) -> Result<EndpointInfo, SandboxError> {
        let mut endpoints = self.inner.endpoints.lock();
        let e = endpoints
            .get_mut(id)
            .ok_or_else(|| SandboxError::UnknownEndpoint(id.to_owned()))?;
        let scheme = match e.keys.last() {
            Some(Signer::Asymmetric(_)) => SigningScheme::Asymmetric,
            _ => SigningScheme::Symmetric,
        };
        let key = new_signer(scheme)?;
        e.info.verification_key = key.verification_key().to_string();
        e.keys.push(key);
        if e.keys.len() > 2 {
            e.keys.remove(0);
        }
        Ok(e.info.clone())
    }

    pub(crate) fn attempts(&self, endpoint: Option<&str>) -> Vec<DeliveryAttempt> {
        self.inner
            .log
            .lock()
            .iter()
            .filter(|a| endpoint.is_none_or(|e| a.endpoint == e))
            .cloned()
            .collect()
    }

    /// Whether copies of events about `intent` are still being delivered.
    pub(crate) fn has_pending(&self, intent: &IntentId) -> bool {
        self.inner.pending.lock().contains_key(intent)
    }

    pub(crate) fn stats(&self) -> DeliveryStats {
        *self.inner.stats.lock()
    }

    /// Waits until no delivery is pending, or `timeout` passes; true when idle.
    pub(crate) async fn idle(&self, timeout: Duration) -> bool {
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            let notified = self.inner.idle.notified();
            if self.inner.in_flight.load(Ordering::SeqCst) == 0 {
                return true;
            }
            if tokio::time::timeout_at(deadline, notified).await.is_err() {
                return self.inner.in_flight.load(Ordering::SeqCst) == 0;
            }
        }
    }

    /// Schedules `event` to every enabled endpoint, drawing each endpoint's faults now (in
    /// emission order, so a seed reproduces them).
    pub(crate) fn dispatch(&self, event: &PaymentEvent) {
        let body: Arc<[u8]> = match serde_json::to_vec(event) {
            Ok(b) => b.into(),
            Err(e) => {
                tracing::error!(event = %event.id, "event not serialisable: {e}");
                return;
            }
        };
        let mut endpoints = self.inner.endpoints.lock();
        for e in endpoints.values_mut().filter(|e| e.info.enabled) {
            let plans = e.dice.plan(&e.faults);
            e.dispatched += 1;
            let order = e.dispatched;
            {
                let mut s = self.inner.stats.lock();
                s.events += 1;
                s.copies += plans.len() as u64;
                s.held_back += plans.iter().filter(|p| p.held_back).count() as u64;
            }
            for (copy, plan) in plans.into_iter().enumerate() {
                let job = Job {
                    endpoint: e.info.id.clone(),
                    url: e.info.url.clone(),
                    order,
                    attempted: e.attempted.clone(),
                    max_hold: Duration::from_millis(e.faults.reorder_max_hold_ms),
                    event_id: event.id.clone(),
                    event_type: event.kind,
                    intent: event.intent.id.clone(),
                    sequence: event.sequence,
                    copy: u32::try_from(copy).unwrap_or(u32::MAX),
                    body: body.clone(),
                    plan,
                };
                let guard = InFlight::start(&self.inner, &event.intent.id);
                let this = self.clone();
                tokio::spawn(async move {
                    let _guard = guard;
                    this.deliver(job).await;
                });
            }
        }
    }

    async fn deliver(&self, job: Job) {
        // Fault delays are network time: real, not scaled.
        tokio::time::sleep(job.plan.delay).await;
        if job.plan.held_back {
            let mut attempted = job.attempted.subscribe();
            let later = attempted.wait_for(|top| *top > job.order);
            let _ = tokio::time::timeout(job.max_hold, later).await;
        }
        let mut retry_after: Option<Duration> = None;
        let schedule = self.inner.config.schedule.clone();
        for (i, step) in schedule.iter().enumerate() {
            let wait = retry_after.take().unwrap_or(*step);
            tokio::time::sleep(self.scaled(wait)).await;
            let attempt = u32::try_from(i + 1).unwrap_or(u32::MAX);
            let Some(keys) = self.enabled_keys(&job.endpoint) else {
                break;
            };
            let at = self.inner.clock.now();
            let started = Instant::now();
            let outcome = if attempt <= job.plan.fail_first {
                AttemptOutcome::InjectedFailure
            } else {
                self.send(&job, &keys, at).await
            };
            if !job.plan.held_back {
                job.attempted.send_if_modified(|top| {
                    let later = job.order > *top;
                    if later {
                        *top = job.order;
                    }
                    later
                });
            }
            let latency_ms = u64::try_from(started.elapsed().as_millis()).unwrap_or(u64::MAX);
            self.record(&job, attempt, at, latency_ms, outcome.clone());
            match outcome {
                AttemptOutcome::Delivered { .. } => {
                    self.inner.stats.lock().delivered += 1;
                    return;
                }
                AttemptOutcome::Rejected { status: 410, .. } => {
                    self.disable(&job.endpoint);
                    break;
                }
                AttemptOutcome::Rejected {
                    status: 429 | 503,
                    retry_after_secs: Some(secs),
                } => retry_after = Some(Duration::from_secs(secs)),
                _ => {}
            }
        }
        self.inner.stats.lock().abandoned += 1;
    }

    fn enabled_keys(&self, endpoint: &str) -> Option<Vec<Signer>> {
        self.inner
            .endpoints
            .lock()
            .get(endpoint)
            .filter(|e| e.info.enabled)
            .map(|e| e.keys.clone())
    }

    fn disable(&self, endpoint: &str) {
        if let Some(e) = self.inner.endpoints.lock().get_mut(endpoint) {
            e.info.enabled = false;
            tracing::warn!(endpoint, "endpoint answered 410 Gone: disabled");
        }
    }

    async fn send(&self, job: &Job, keys: &[Signer], at: Timestamp) -> AttemptOutcome {
        let timestamp = at.as_millis().div_euclid(1000);
        let signed_body: &[u8] = &job.body;
        let signatures = if job.plan.corrupt_signature {
            // Signed over other bytes: well-formed, and wrong.
            let mut tampered = signed_body.to_vec();
            tampered.push(b' ');
            signature::signature_header(keys, &job.event_id, timestamp, &tampered)
        } else {
            signature::signature_header(keys, &job.event_id, timestamp, signed_body)
        };
        let request = self
            .inner
            .client
            .post(&job.url)
            .header("content-type", "application/json")
            .header(signature::HEADER_ID, &job.event_id)
            .header(signature::HEADER_TIMESTAMP, timestamp.to_string())
            .header(signature::HEADER_SIGNATURE, signatures)
            .body(job.body.to_vec());
        match request.send().await {
            Ok(resp) => {
                let status = resp.status().as_u16();
                if resp.status().is_success() {
                    AttemptOutcome::Delivered { status }
                } else {
                    let retry_after_secs = resp
                        .headers()
                        .get("retry-after")
                        .and_then(|v| v.to_str().ok())
                        .and_then(|v| v.trim().parse::<u64>().ok());
                    AttemptOutcome::Rejected {
                        status,
                        retry_after_secs,
                    }
                }
            }
            Err(e) if e.is_timeout() => AttemptOutcome::TimedOut,
            Err(e) => AttemptOutcome::NetworkError {
                message: e.to_string(),
            },
        }
    }

    fn record(
        &self,
        job: &Job,
        attempt: u32,
        at: Timestamp,
        latency_ms: u64,
        outcome: AttemptOutcome,
    ) {
        self.inner.stats.lock().attempts += 1;
        let mut log = self.inner.log.lock();
        if log.len() >= self.inner.max_log {
            log.pop_front();
        }
        log.push_back(DeliveryAttempt {
            endpoint: job.endpoint.clone(),
            event_id: job.event_id.clone(),
            event_type: job.event_type,
            intent: job.intent.clone(),
            sequence: job.sequence,
            copy: job.copy,
            attempt,
            at,
            latency_ms,
            signature_corrupted: job.plan.corrupt_signature,
            outcome,
        });
    }
}

fn new_signer(scheme: SigningScheme) -> Result<Signer, SandboxError> {
    let key_error =
        |e: signature::KeyError| SandboxError::InvalidConfig(format!("key generation: {e}"));
    Ok(match scheme {
        SigningScheme::Symmetric => Signer::from(WebhookSecret::generate().map_err(key_error)?),
        SigningScheme::Asymmetric => Signer::from(SigningKey::generate().map_err(key_error)?),
    })
}

/// One copy of one event on its way to one endpoint.
struct Job {
    endpoint: String,
    url: String,
    /// Position among the events dispatched to the endpoint.
    order: u64,
    attempted: Arc<watch::Sender<u64>>,
    max_hold: Duration,
    event_id: String,
    event_type: EventKind,
    intent: IntentId,
    sequence: u64,
    copy: u32,
    body: Arc<[u8]>,
    plan: CopyPlan,
}
