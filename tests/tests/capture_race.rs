//! Every report of one authorized payment at once: for each of 40 holds, webhooks (three
//! deliveries, each with its own event id), direct applications of the intent, the capture
//! follower and the reconciler race on a real backend. Each payment must be captured once
//! (one provider key, the amount received once), each hold confirmed once, and the units
//! conserved.

use std::sync::Arc;
use std::time::Duration;

use payment_sandbox::cards::numbers;
use payment_sandbox::{Sandbox, SandboxConfig};
use ticket_core::gateway::{
    CaptureMethod, EventKind, HOLD_METADATA_KEY, IntentStatus, NewIntent, PaymentEvent,
    PaymentGateway,
};
use ticket_core::model::audit::AuditScope;
use ticket_core::model::hold::{HoldState, Selection};
use ticket_core::model::inventory::Grade;
use ticket_core::service::{CapturePreference, HoldCommand};
use ticket_core::{Clock, SystemClock, TimeLimits, UserId};
use ticketrush_e2e::backends::Backend;
use ticketrush_e2e::counting_gateway::CountingGateway;
use ticketrush_e2e::shop;

const HOLDS: usize = 40;

async fn race(backend: Backend) {
    let limits = TimeLimits::default();
    let (rush, session) = shop::open_session(backend.stores(), HOLDS as u32, limits).await;
    let sandbox = Sandbox::new(SandboxConfig::default()).expect("sandbox");
    let gateway = Arc::new(CountingGateway::new(Arc::new(sandbox.clone())));
    let checkout = rush
        .checkout(gateway.clone())
        .with_capture_preference(CapturePreference::ManualWhenSupported);
    let follower = Arc::new(checkout.capture_follower("race").expect("follower"));

    // Each buyer's card is authorized, and nothing has told the checkout yet.
    let mut authorized = Vec::new();
    for i in 0..HOLDS {
        let user = UserId::new(format!("buyer-{i}")).expect("user");
        let hold = rush
            .holds
            .hold(
                HoldCommand {
                    session,
                    user: user.clone(),
                    tier: None,
                    selection: Selection::Units {
                        grade: Grade::new("GA").expect("grade"),
                        quantity: 1,
                    },
                },
                None,
            )
            .await
            .expect("hold");
        let intent = sandbox
            .create_intent(NewIntent {
                amount: hold.amount,
                payment_method: numbers::SUCCEEDS.into(),
                capture_method: CaptureMethod::Manual,
                metadata: [(HOLD_METADATA_KEY.to_owned(), hold.id.to_string())].into(),
                idempotency_key: format!("race-{}", hold.id),
            })
            .await
            .expect("intent");
        rush.payments
            .start(hold.id, &user, intent.id.as_str())
            .await
            .expect("checkout started");
        let intent = sandbox
            .confirm_intent(&intent.id)
            .await
            .expect("authorized");
        assert_eq!(intent.status, IntentStatus::RequiresCapture);
        authorized.push((hold, intent));
    }

    let mut racers = tokio::task::JoinSet::new();
    for (n, (_, intent)) in authorized.iter().enumerate() {
        for copy in 0..3 {
            let (checkout, intent) = (checkout.clone(), intent.clone());
            racers.spawn(async move {
                let event = PaymentEvent {
                    id: format!("evt_{n}_{copy}"),
                    kind: EventKind::AmountCapturableUpdated,
                    sequence: 2,
                    created_at: SystemClock.now(),
                    intent,
                };
                checkout.handle_event(&event).await.map(|_| ())
            });
        }
        for _ in 0..2 {
            let (checkout, intent) = (checkout.clone(), intent.clone());
            racers.spawn(async move { checkout.apply_intent(&intent).await.map(|_| ()) });
        }
    }
    for _ in 0..4 {
        let checkout = checkout.clone();
        racers.spawn(async move {
            checkout
                .reconcile(Duration::from_secs(600), 1_000)
                .await
                .map(|_| ())
        });
        let follower = follower.clone();
        racers.spawn(async move { follower.dispatch(session).await.map(|_| ()) });
    }
    while let Some(done) = racers.join_next().await {
        done.expect("racer")
            .expect("every report is applied without error");
    }
    follower
        .dispatch(session)
        .await
        .expect("follower catches up");

    assert_eq!(gateway.captured_twice(), 0, "one capture key per intent");
    for (hold, intent) in &authorized {
        let now = sandbox.get_intent(&intent.id).await.expect("intent");
        assert_eq!(
            (now.status, now.amount_received),
            (IntentStatus::Succeeded, hold.amount.amount_minor),
            "captured once, in full"
        );
        let stored = rush.stores().reservations.get(hold.id).await.expect("hold");
        assert_eq!(stored.state, HoldState::Confirmed);
        let audit = rush
            .stores()
            .reservations
            .audit(&AuditScope::Hold(hold.id), 100)
            .await
            .expect("audit");
        assert_eq!(
            audit.iter().filter(|r| r.to == "CONFIRMED").count(),
            1,
            "confirmed once: {audit:?}"
        );
    }
    assert_eq!(gateway.captured().len(), HOLDS);
    let totals = rush
        .stores()
        .inventory
        .snapshot(session)
        .await
        .expect("snapshot")
        .totals();
    assert!(totals.is_conserved(), "{totals:?}");
    assert_eq!((totals.sold, totals.held), (HOLDS as u64, 0));
    assert!(sandbox.refunds().is_empty(), "nothing to give back");
    backend.cleanup().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn racing_reports_capture_once_on_memory() {
    race(Backend::memory()).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn racing_reports_capture_once_on_redis() {
    race(Backend::redis().await).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn racing_reports_capture_once_on_postgres() {
    race(Backend::pg().await).await;
}
