//! The checkout harness shared by the checkout and capture tests: one general-admission
//! session on a memory store with a manual clock, and the sandbox on the same clock.
#![allow(dead_code)]

use std::sync::Arc;
use std::time::Duration;

use payment_sandbox::cards::numbers;
use payment_sandbox::{Sandbox, SandboxConfig};
use ticket_core::Clock;
use ticket_core::gateway::{
    EventKind, HOLD_METADATA_KEY, IntentId, NewIntent, PaymentEvent, PaymentGateway, PaymentIntent,
};
use ticket_core::memory::MemoryStore;
use ticket_core::model::hold::Hold;
use ticket_core::service::{CapturePreference, Checkout, CheckoutService};
use ticket_core::testkit::{Fixture, user};

/// The services on a memory store with a manual clock, the sandbox on the same clock, and
/// the checkout over it.
pub struct Shop {
    pub f: Fixture,
    pub sandbox: Sandbox,
    pub checkout: CheckoutService,
}

/// A shop of `capacity` units that charges at once.
pub async fn shop(capacity: u32) -> Shop {
    shop_with(capacity, CapturePreference::Automatic).await
}

/// A shop of `capacity` units with the given capture preference.
pub async fn shop_with(capacity: u32, capture: CapturePreference) -> Shop {
    let f = Fixture::general(MemoryStore::new().stores(), capacity, Duration::ZERO).await;
    let sandbox = Sandbox::with_clock(
        SandboxConfig {
            slow_delay: Duration::from_millis(30),
            confirm_timeout: Duration::from_millis(30),
            ..SandboxConfig::default()
        },
        Arc::new(f.clock.clone()),
    )
    .expect("sandbox");
    let checkout = f
        .rush
        .checkout(Arc::new(sandbox.clone()))
        .with_capture_preference(capture);
    Shop {
        f,
        sandbox,
        checkout,
    }
}

impl Shop {
    pub async fn intent_of(&self, hold: &Hold) -> PaymentIntent {
        let r = self
            .f
            .reload(hold)
            .await
            .payment_ref
            .expect("payment started");
        self.sandbox
            .get_intent(&IntentId::new(r).expect("id"))
            .await
            .expect("intent")
    }

    /// User `i` holds one unit and pays for it with `card`.
    pub async fn pay(&self, i: usize, card: &str) -> (Hold, Checkout) {
        let h = self.f.hold(&user(i), 1).await;
        let c = self
            .checkout
            .begin(h.id, &h.user, card)
            .await
            .expect("checkout");
        (h, c)
    }

    /// An intent for `hold` created behind the checkout's back and never confirmed.
    pub async fn unconfirmed_intent(&self, hold: &Hold, key: &str) -> PaymentIntent {
        self.sandbox
            .create_intent(NewIntent {
                amount: hold.amount,
                payment_method: numbers::SUCCEEDS.into(),
                capture_method: ticket_core::gateway::CaptureMethod::Automatic,
                metadata: [(HOLD_METADATA_KEY.to_owned(), hold.id.to_string())].into(),
                idempotency_key: key.into(),
            })
            .await
            .expect("intent")
    }

    /// Waits until the slow card's intent has settled at the provider.
    pub async fn settled(&self, hold: &Hold) -> PaymentIntent {
        for _ in 0..500 {
            let i = self.intent_of(hold).await;
            if i.status.is_final() {
                return i;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        panic!("intent never settled")
    }

    pub fn event(
        &self,
        id: &str,
        kind: EventKind,
        sequence: u64,
        intent: &PaymentIntent,
    ) -> PaymentEvent {
        PaymentEvent {
            id: id.into(),
            kind,
            sequence,
            created_at: self.f.clock.now(),
            intent: intent.clone(),
        }
    }

    /// The TTL of every live hold runs out and the sweeper expires them: how many.
    pub async fn expire(&self) -> usize {
        self.f.clock.advance(self.f.rush.limits().hold_ttl);
        let swept = self.f.rush.expiry.sweep(10).await.expect("sweep");
        swept.expired.len()
    }

    /// The TTL of every live hold runs out and the sweeper expires them; then user 2 buys
    /// the units that came back (the expired buyers' payments are late now).
    pub async fn expire_and_resell(&self) {
        assert_eq!(self.expire().await, 1, "one hold expired");
        let b = self.f.hold(&user(2), 1).await;
        self.checkout
            .begin(b.id, &b.user, numbers::SUCCEEDS)
            .await
            .expect("resale");
    }
}
