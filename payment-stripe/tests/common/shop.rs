//! A ticketrush shop on the in-memory backend, paying through `StripeGateway` against the
//! fake Stripe, and a webhook receiver as a host writes one.

use std::sync::Arc;
use std::time::Duration;

use payment_stripe::{
    StripeConfig, StripeGateway, StripeWebhookSigner, StripeWebhookVerifier, WebhookError,
};
use serde_json::Value;
use ticket_core::gateway::CheckoutSession;
use ticket_core::memory::MemoryStore;
use ticket_core::model::hold::{Hold, Selection};
use ticket_core::model::inventory::{Grade, GradeStock, GradeTotals, InventoryPlan};
use ticket_core::model::money::{Currency, Money};
use ticket_core::model::session::{Event, SalesWindow, Session};
use ticket_core::service::{CheckoutService, HoldCommand, PaymentResult, ReconcileReport};
use ticket_core::{Clock, EventId, HoldId, SessionId, SystemClock, TicketRush, TimeLimits, UserId};
use wiremock::MockServer;

use super::fake::{FakeConfig, FakeStripe};
use super::fixtures::{SECRET_KEY, WEBHOOK_SECRET};

/// The price of one unit: 50 000 KRW (a zero-decimal currency: `amount=50000` at Stripe).
pub fn unit_price() -> Money {
    Money::new(50_000, Currency::new("KRW").expect("KRW")).expect("amount")
}

/// Everything a test needs.
pub struct Shop {
    pub rush: TicketRush,
    pub session: SessionId,
    pub checkout: CheckoutService,
    pub stripe: FakeStripe,
    pub server: MockServer,
    pub verifier: StripeWebhookVerifier,
    pub signer: StripeWebhookSigner,
}

impl Shop {
    /// A shop of `capacity` general-admission units, sold without a queue, over the fake
    /// Stripe (`fake`), each request to it limited to `timeout`.
    pub async fn open(
        capacity: u32,
        limits: TimeLimits,
        fake: FakeConfig,
        timeout: Duration,
    ) -> Self {
        let clock = Arc::new(SystemClock);
        let now = clock.now();
        let rush = TicketRush::new(MemoryStore::new().stores(), clock, limits).expect("limits");
        let event_id = EventId::new_at(now);
        let session = SessionId::new_at(now);
        let day = Duration::from_secs(86_400);
        rush.create_event(&Event {
            id: event_id,
            name: "Stripe fault matrix".into(),
            sessions: vec![Session {
                id: session,
                event_id,
                starts_at: now.plus(2 * day),
                sales: SalesWindow {
                    open_at: now.minus(Duration::from_secs(60)),
                    close_at: now.plus(day),
                },
                inventory: InventoryPlan::General {
                    grades: vec![GradeStock {
                        grade: Grade::new("GA").expect("grade"),
                        capacity,
                        price: unit_price(),
                    }],
                },
            }],
        })
        .await
        .expect("event");
        let mut policy = rush
            .stores()
            .policies
            .policy(session)
            .await
            .expect("policy");
        policy.queue.require_admission = false;
        policy.max_units_per_user = None;
        rush.set_policy(session, &policy).await.expect("policy set");

        let server = MockServer::start().await;
        let stripe = FakeStripe::new(fake);
        stripe.mount(&server).await;
        let mut config = StripeConfig::new(SECRET_KEY)
            .with_api_base(server.uri())
            .with_timeout(timeout);
        config.max_retry_wait = Duration::from_millis(100);
        let gateway = StripeGateway::new(config).expect("gateway");
        let checkout = rush.checkout(Arc::new(gateway));
        Self {
            rush,
            session,
            checkout,
            stripe,
            server,
            verifier: StripeWebhookVerifier::new(WEBHOOK_SECRET).expect("verifier"),
            signer: StripeWebhookSigner::new(WEBHOOK_SECRET).expect("signer"),
        }
    }

    /// A hold of one unit for `user`.
    pub fn command(&self, user: &UserId) -> HoldCommand {
        HoldCommand {
            session: self.session,
            user: user.clone(),
            tier: None,
            selection: Selection::Units {
                grade: Grade::new("GA").expect("grade"),
                quantity: 1,
            },
        }
    }

    /// Holds one unit for `user`.
    pub async fn hold_for(&self, user: &UserId) -> Hold {
        self.rush
            .holds
            .hold(self.command(user), None)
            .await
            .expect("hold")
    }

    /// The hold `id` as the store has it now.
    pub async fn reservation(&self, id: HoldId) -> Hold {
        self.rush.stores().reservations.get(id).await.expect("hold")
    }

    /// The session's available, held and sold units now.
    pub async fn totals(&self) -> GradeTotals {
        self.rush
            .stores()
            .inventory
            .snapshot(self.session)
            .await
            .expect("snapshot")
            .totals()
    }

    /// Starts `hold`'s checkout on Stripe's hosted page (coming back to `return_url`) and
    /// returns the page's session.
    pub async fn hosted_session(
        &self,
        hold: &Hold,
        user: &UserId,
        return_url: &str,
    ) -> CheckoutSession {
        self.checkout
            .begin_hosted(hold.id, user, return_url)
            .await
            .expect("checkout")
            .session
            .expect("session")
    }

    /// One reconciler pass over every paying hold (all are due within the hour).
    pub async fn reconcile_all(&self) -> ReconcileReport {
        self.checkout
            .reconcile(Duration::from_secs(3600), 100)
            .await
            .expect("reconcile")
    }

    /// Delivers one event as Stripe would (signed now), through the verifier, to the
    /// checkout: what a host's webhook route does.
    pub async fn deliver(&self, event: &Value) -> Result<PaymentResult, Undelivered> {
        deliver(&self.checkout, &self.verifier, &self.signer, event).await
    }

    /// Delivers every event produced so far, in order.
    pub async fn deliver_all(&self) {
        for event in self.stripe.take_events() {
            self.deliver(&event).await.expect("event applied");
        }
    }
}

/// Why a delivery was not applied.
#[derive(Debug)]
pub enum Undelivered {
    /// The receiver refused it (answer 400): signature, timestamp, or body.
    Refused(WebhookError),
    /// The checkout could not apply it now (answer 409/500: Stripe delivers it again).
    Failed(ticket_core::Error),
}

/// Unix seconds now.
pub fn now_secs() -> i64 {
    i64::try_from(
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .expect("clock")
            .as_secs(),
    )
    .expect("secs")
}

/// Signs `event` now, verifies it as a receiver does, and hands it to the checkout.
pub async fn deliver(
    checkout: &CheckoutService,
    verifier: &StripeWebhookVerifier,
    signer: &StripeWebhookSigner,
    event: &Value,
) -> Result<PaymentResult, Undelivered> {
    let body = serde_json::to_vec(event).expect("an event serializes");
    let header = signer.header(&body, now_secs());
    let parsed = verifier
        .verify_event(&body, Some(&header))
        .map_err(Undelivered::Refused)?;
    checkout
        .handle_event(&parsed)
        .await
        .map_err(Undelivered::Failed)
}
