//! Cancellations that return money, through the payment sandbox, on every backend:
//! a buyer's cancellation by the session's refund policy (a partial refund of exactly the
//! quoted amount), and a cancelled show whose refund run stops partway (the provider fails)
//! and is run again: every reservation is refunded exactly once, in full.

use std::sync::Arc;
use std::time::Duration;

use payment_sandbox::cards::numbers;
use payment_sandbox::{Sandbox, SandboxConfig};
use ticket_core::gateway::{IntentId, IntentStatus, PaymentGateway, PaymentIntent, Refund};
use ticket_core::model::audit::{Actor, AuditScope};
use ticket_core::model::hold::{Hold, HoldState};
use ticket_core::model::page::{AuditQuery, PageOrder};
use ticket_core::model::refund_policy::{FeeTier, RefundPolicy};
use ticket_core::service::CheckoutService;
use ticket_core::testkit::{Fixture, user};
use ticket_core::{Error, Refusal};
use ticketrush_e2e::backends::Backend;
use ticketrush_e2e::counting_gateway::CountingGateway;

const DAY: u64 = 86_400;

/// Free until 10 days before the start, 10 % until 3 days before, 30 % after; none after
/// the start.
fn schedule() -> RefundPolicy {
    RefundPolicy {
        cancel_until_before_start_secs: 0,
        tiers: vec![
            FeeTier {
                before_start_secs: 10 * DAY,
                fee_bps: 0,
            },
            FeeTier {
                before_start_secs: 3 * DAY,
                fee_bps: 1_000,
            },
            FeeTier {
                before_start_secs: 0,
                fee_bps: 3_000,
            },
        ],
    }
}

struct Shop {
    f: Fixture,
    sandbox: Sandbox,
    checkout: CheckoutService,
}

async fn shop(backend: &Backend, capacity: u32) -> Shop {
    let f = Fixture::general(backend.stores(), capacity, Duration::ZERO).await;
    f.set_policy(|p| p.refund = schedule()).await;
    let sandbox =
        Sandbox::with_clock(SandboxConfig::default(), Arc::new(f.clock.clone())).expect("sandbox");
    let checkout = f.rush.checkout(Arc::new(sandbox.clone()));
    Shop {
        f,
        sandbox,
        checkout,
    }
}

impl Shop {
    /// User `i` holds one unit and pays for it: a confirmed reservation.
    async fn bought(&self, i: usize) -> Hold {
        let h = self.f.hold(&user(i), 1).await;
        self.checkout
            .begin(h.id, &h.user, numbers::SUCCEEDS)
            .await
            .expect("checkout");
        let h = self.f.reload(&h).await;
        assert_eq!(h.state, HoldState::Confirmed, "a succeeding card confirms");
        h
    }

    /// The refunds the provider made, per intent.
    fn refunds_of(&self, hold: &Hold) -> Vec<Refund> {
        let intent = hold.payment_ref.clone().expect("paid");
        self.sandbox
            .refunds()
            .into_iter()
            .filter(|r| r.intent.as_str() == intent)
            .collect()
    }
}

/// Seconds from the fixture's clock to the session's start.
fn move_to_days_before_start(f: &Fixture, days: u64) {
    let start = f.event.sessions[0].starts_at;
    f.clock.set(start.minus(Duration::from_secs(days * DAY)));
}

async fn a_buyer_cancels_by_the_policy_and_gets_exactly_the_quote(backend: Backend) {
    let s = shop(&backend, 10).await;
    let h = s.bought(1).await;
    move_to_days_before_start(&s.f, 5);
    let refunds = s.f.rush.refunds(Arc::new(s.sandbox.clone()));
    let q = refunds.quote(h.id, &user(1)).await.expect("quote");
    assert_eq!(
        q.decision.fee.amount_minor,
        h.amount.amount_minor / 10,
        "10 % fee"
    );
    assert!(
        matches!(
            refunds.quote(h.id, &user(2)).await,
            Err(Error::Refused(Refusal::NotOwner))
        ),
        "someone else's reservation"
    );
    let out = refunds.cancel(h.id, &user(1)).await.expect("cancel");
    assert_eq!(out.hold.state, HoldState::Refunded);
    assert_eq!(out.decision, q.decision, "the refund is the quote");
    let made = s.refunds_of(&h);
    assert_eq!(made.len(), 1, "one refund at the provider");
    assert_eq!(
        made[0].amount, q.decision.refund,
        "exactly the quoted amount"
    );
    assert_eq!(s.f.ga().await, (10, 0, 0), "the unit is back on sale");
    let again = refunds.cancel(h.id, &user(1)).await.expect("repeat");
    assert_eq!(
        again.refund_id, out.refund_id,
        "a repeat answers the first refund"
    );
    assert_eq!(s.refunds_of(&h).len(), 1, "and returns no money twice");
    let trail =
        s.f.rush
            .stores()
            .reservations
            .audit_page(&AuditQuery {
                scope: AuditScope::Hold(h.id),
                order: PageOrder::OldestFirst,
                after: None,
                limit: 100,
            })
            .await
            .expect("trail");
    let refunded = trail
        .items
        .iter()
        .find(|r| r.to == "REFUNDED")
        .expect("a REFUNDED record");
    assert!(
        refunded.reason.contains("10 % fee"),
        "the record names the rule: {}",
        refunded.reason
    );
    let h2 = s.bought(2).await;
    move_to_days_before_start(&s.f, 0);
    assert!(
        matches!(
            refunds.cancel(h2.id, &user(2)).await,
            Err(Error::Refused(Refusal::CancellationClosed { .. }))
        ),
        "no cancellation from the start on"
    );
    assert_eq!(
        s.f.reload(&h2).await.state,
        HoldState::Confirmed,
        "nothing changed"
    );
    backend.cleanup().await;
}

/// A report of the payment that arrives after the buyer cancelled with a fee (a delayed or
/// repeated webhook, the reconciler's poll) finds a reservation the cancellation settled:
/// the fee stays kept and no second refund is made.
async fn a_late_report_after_a_cancellation_keeps_the_fee(backend: Backend) {
    let s = shop(&backend, 10).await;
    let h = s.bought(1).await;
    let intent = payment_sandbox_intent(&s, &h).await;
    move_to_days_before_start(&s.f, 5);
    let refunds = s.f.rush.refunds(Arc::new(s.sandbox.clone()));
    let out = refunds.cancel(h.id, &user(1)).await.expect("cancel");
    assert_eq!(out.hold.state, HoldState::Refunded);
    let kept = out.decision.fee.amount_minor;
    assert!(kept > 0, "a 10 % fee");
    // The authorization and the success as they were reported before the cancellation,
    // then the intent as it stands now.
    let authorized = PaymentIntent {
        status: IntentStatus::RequiresCapture,
        amount_capturable: intent.amount.amount_minor,
        amount_received: 0,
        ..intent.clone()
    };
    let now = payment_sandbox_intent(&s, &h).await;
    for report in [&authorized, &intent, &now] {
        s.checkout.apply_intent(report).await.expect("late report");
    }
    let made = s.refunds_of(&h);
    assert_eq!(made.len(), 1, "one refund, the cancellation's: {made:?}");
    assert_eq!(made[0].amount, out.decision.refund);
    let after = payment_sandbox_intent(&s, &h).await;
    assert_eq!(
        after.received_minor() - after.amount_refunded,
        kept,
        "the fee stays kept"
    );
    assert_eq!(s.f.reload(&h).await.state, HoldState::Refunded);
    backend.cleanup().await;
}

async fn payment_sandbox_intent(s: &Shop, hold: &Hold) -> PaymentIntent {
    let id = IntentId::new(hold.payment_ref.clone().expect("paid")).expect("intent id");
    s.sandbox.get_intent(&id).await.expect("intent")
}

async fn a_cancelled_shows_refund_run_resumes_and_refunds_each_once(backend: Backend) {
    let s = shop(&backend, 40).await;
    let mut bought = Vec::new();
    for i in 0..20 {
        bought.push(s.bought(i).await);
    }
    // One buyer had already cancelled under the policy (free this early): settled.
    let early = s.f.rush.refunds(Arc::new(s.sandbox.clone()));
    early
        .cancel(bought[0].id, &user(0))
        .await
        .expect("early cancel");
    let unpaid = s.f.hold(&user(100), 2).await;
    move_to_days_before_start(&s.f, 1);
    let organiser = Actor::Operator("organiser-1".into());
    s.f.rush
        .sales
        .cancel_show(s.f.session, organiser.clone(), "venue flooded")
        .await
        .expect("cancel the show");

    // The first run stops partway: the provider fails after 7 refunds.
    // A provider that fails every refund once 7 went through.
    let flaky =
        Arc::new(CountingGateway::new(Arc::new(s.sandbox.clone())).with_refunds_failing_after(7));
    let first =
        s.f.rush
            .refunds(flaky)
            .refund_cancelled_show(s.f.session, organiser.clone())
            .await
            .expect("first pass");
    assert_eq!(first.refunded, 7);
    assert_eq!(first.already_refunded, 1);
    assert_eq!(first.released, 1, "the unpaid hold is let go");
    assert_eq!(first.failed.len(), 12, "the rest failed at the provider");
    assert!(!first.is_complete());

    // Run again with the provider back: it finishes where the first stopped.
    let refunds = s.f.rush.refunds(Arc::new(s.sandbox.clone()));
    let second = refunds
        .refund_cancelled_show(s.f.session, organiser.clone())
        .await
        .expect("second pass");
    assert_eq!((second.refunded, second.already_refunded), (12, 8));
    assert!(second.is_complete(), "{second:?}");
    let third = refunds
        .refund_cancelled_show(s.f.session, organiser)
        .await
        .expect("third pass");
    assert_eq!((third.refunded, third.already_refunded), (0, 20));

    for (i, h) in bought.iter().enumerate() {
        let now = s.f.reload(h).await;
        assert_eq!(now.state, HoldState::Refunded, "reservation {i}");
        let made = s.refunds_of(h);
        assert_eq!(made.len(), 1, "reservation {i} refunded exactly once");
        assert_eq!(made[0].amount, h.amount, "in full, whatever the policy");
    }
    assert_eq!(s.f.reload(&unpaid).await.state, HoldState::Released);
    assert_eq!(
        s.f.ga().await,
        (40, 0, 0),
        "every unit is back; none is sold"
    );
    // The store itself refuses (the sales window is over by now, so the service would
    // answer SalesClosed before asking it).
    let now = ticket_core::Clock::now(&s.f.clock);
    assert!(
        matches!(
            s.f.rush
                .stores()
                .reservations
                .hold(s.f.new_hold(&user(200), 1, now, now.plus(Duration::from_secs(60))))
                .await,
            Err(Error::Refused(Refusal::SessionCancelled { .. }))
        ),
        "a cancelled show sells nothing"
    );
    backend.cleanup().await;
}

macro_rules! on_every_backend {
    ($($name:ident),+ $(,)?) => {
        mod memory {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    super::$name(ticketrush_e2e::backends::Backend::memory()).await;
                }
            )+
        }
        mod redis {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    super::$name(ticketrush_e2e::backends::Backend::redis().await).await;
                }
            )+
        }
        mod postgres {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    super::$name(ticketrush_e2e::backends::Backend::pg().await).await;
                }
            )+
        }
    };
}

on_every_backend!(
    a_buyer_cancels_by_the_policy_and_gets_exactly_the_quote,
    a_cancelled_shows_refund_run_resumes_and_refunds_each_once,
    a_late_report_after_a_cancellation_keeps_the_fee,
);
