//! A webhook receiver as a ticketrush host would write one: verify the signature, parse the
//! event, hand it to the checkout, and answer 2xx only once it is applied (any error asks
//! the provider to deliver again).

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, OnceLock};

use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::routing::post;
use parking_lot::Mutex;
use payment_sandbox::signature::Verifier;
use ticket_core::Error;
use ticket_core::gateway::PaymentEvent;
use ticket_core::service::CheckoutService;

/// What the receiver saw.
#[derive(Debug, Default)]
pub struct ReceiverStats {
    /// Requests received.
    pub received: AtomicU64,
    /// Refused: signature, timestamp or headers did not verify.
    pub bad_signature: AtomicU64,
    /// Applied (answered 200), including replays of an event already applied.
    pub applied: AtomicU64,
    /// Answered 409 because the same event was being applied concurrently.
    pub in_flight: AtomicU64,
    /// Answered 500 (store or provider unavailable).
    pub failed: AtomicU64,
    /// Verified requests whose event id had been received before.
    pub duplicates: AtomicU64,
    /// Verified events older (lower `sequence`) than one already received for the intent.
    pub out_of_order: AtomicU64,
    seen: Mutex<HashMap<String, u32>>,
    newest: Mutex<HashMap<String, u64>>,
}

impl ReceiverStats {
    fn note(&self, event: &PaymentEvent) {
        let mut seen = self.seen.lock();
        let n = seen.entry(event.id.clone()).or_default();
        *n += 1;
        if *n > 1 {
            self.duplicates.fetch_add(1, Ordering::Relaxed);
            return;
        }
        drop(seen);
        let mut newest = self.newest.lock();
        let top = newest.entry(event.intent.id.to_string()).or_default();
        if event.sequence < *top {
            self.out_of_order.fetch_add(1, Ordering::Relaxed);
        }
        *top = (*top).max(event.sequence);
    }

    /// Reads a counter.
    pub fn get(counter: &AtomicU64) -> u64 {
        counter.load(Ordering::Relaxed)
    }
}

#[derive(Clone)]
struct Ctx {
    checkout: CheckoutService,
    verifier: Arc<OnceLock<Verifier>>,
    stats: Arc<ReceiverStats>,
}

/// A running receiver.
pub struct Receiver {
    /// Where to send webhooks.
    pub url: String,
    /// Counters.
    pub stats: Arc<ReceiverStats>,
    verifier: Arc<OnceLock<Verifier>>,
    task: tokio::task::JoinHandle<()>,
}

impl Receiver {
    /// Serves `POST /webhooks` on a free loopback port. Every request is refused until
    /// [`Receiver::trust`] sets the key to verify with.
    pub async fn start(checkout: CheckoutService) -> Self {
        let verifier = Arc::new(OnceLock::new());
        let stats = Arc::new(ReceiverStats::default());
        let ctx = Ctx {
            checkout,
            verifier: verifier.clone(),
            stats: stats.clone(),
        };
        let app = Router::new()
            .route("/webhooks", post(receive))
            .with_state(ctx);
        let listener = tokio::net::TcpListener::bind(SocketAddr::from(([127, 0, 0, 1], 0)))
            .await
            .expect("bind");
        let addr = listener.local_addr().expect("addr");
        let task = tokio::spawn(async move {
            axum::serve(listener, app).await.expect("serve");
        });
        Self {
            url: format!("http://{addr}/webhooks"),
            stats,
            verifier,
            task,
        }
    }

    /// Sets the verifier (built from the endpoint's verification key).
    pub fn trust(&self, verifier: Verifier) {
        assert!(self.verifier.set(verifier).is_ok(), "verifier set twice");
    }
}

impl Drop for Receiver {
    fn drop(&mut self) {
        self.task.abort();
    }
}

async fn receive(State(ctx): State<Ctx>, headers: HeaderMap, body: Bytes) -> StatusCode {
    ctx.stats.received.fetch_add(1, Ordering::Relaxed);
    let header = |name: &str| headers.get(name).and_then(|v| v.to_str().ok());
    let verified = ctx
        .verifier
        .get()
        .map(|v| v.verify_headers(header, &body, now_secs()));
    if !matches!(verified, Some(Ok(()))) {
        ctx.stats.bad_signature.fetch_add(1, Ordering::Relaxed);
        return StatusCode::BAD_REQUEST;
    }
    let Ok(event) = serde_json::from_slice::<PaymentEvent>(&body) else {
        return StatusCode::BAD_REQUEST;
    };
    ctx.stats.note(&event);
    match ctx.checkout.handle_event(&event).await {
        Ok(_) => {
            ctx.stats.applied.fetch_add(1, Ordering::Relaxed);
            StatusCode::OK
        }
        Err(Error::InFlight) => {
            ctx.stats.in_flight.fetch_add(1, Ordering::Relaxed);
            StatusCode::CONFLICT
        }
        Err(e) => {
            tracing::warn!(event = %event.id, "webhook not applied: {e}");
            ctx.stats.failed.fetch_add(1, Ordering::Relaxed);
            StatusCode::INTERNAL_SERVER_ERROR
        }
    }
}

fn now_secs() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX))
        .unwrap_or(0)
}
