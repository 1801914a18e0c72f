//! The fault matrix: many buyers pay through the sandbox while its webhooks are duplicated,
//! reordered, delayed up to twice the hold TTL and fail their first attempt; slow cards
//! succeed after their hold expired and its units were resold. At the end the money and
//! the tickets must agree exactly.
//!
//! It runs in both capture modes. With manual capture the checkout authorizes, confirms the
//! hold, then captures; a late authorization whose units were resold is voided, so nothing
//! is captured without a confirmed reservation and nothing is refunded late, and after the
//! capture follower caught up no reservation is confirmed without a capture and no
//! authorization is left open.

use std::collections::HashMap;
use std::fmt;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use payment_sandbox::cards::numbers;
use payment_sandbox::delivery::{
    AttemptOutcome, DeliveryConfig, DeliveryStats, EndpointConfig, SigningScheme,
};
use payment_sandbox::faults::{Delay, Faults};
use payment_sandbox::signature::Verifier;
use payment_sandbox::{Sandbox, SandboxConfig};
use rand_chacha::ChaCha8Rng;
use rand_core::{RngCore, SeedableRng};
use ticket_core::gateway::IntentStatus;
use ticket_core::model::audit::AuditScope;
use ticket_core::model::hold::{Hold, HoldState, Selection};
use ticket_core::model::inventory::Grade;
use ticket_core::service::{CapturePreference, HoldCommand};
use ticket_core::{Error, Refusal, TimeLimits, UserId};

use crate::backends::Backend;
use crate::counting_gateway::CountingGateway;
use crate::receiver::{Receiver, ReceiverStats};
use crate::shop;

/// The matrix's knobs.
#[derive(Debug, Clone)]
pub struct MatrixConfig {
    /// Buyers; each makes at most one payment. More buyers than units keep demand waiting,
    /// so units released by expiry are resold before slow payments land.
    pub buyers: usize,
    /// Payments to make: buyers who get a hold after this many checkouts began release it.
    pub payments: usize,
    /// Units on sale.
    pub capacity: u32,
    /// Seed of the card mix and of the delivery faults.
    pub seed: u64,
    /// Hold TTL (webhook delays go up to twice this).
    pub hold_ttl: Duration,
    /// Automatic capture, or authorize-then-capture.
    pub capture: CapturePreference,
}

impl Default for MatrixConfig {
    fn default() -> Self {
        Self {
            buyers: 1_400,
            payments: 1_000,
            capacity: 600,
            seed: 20_261_123,
            hold_ttl: Duration::from_secs(2),
            capture: CapturePreference::Automatic,
        }
    }
}

/// What the matrix counted. The first group must be all zero.
#[derive(Debug, Default, Clone)]
pub struct MatrixReport {
    /// Backend name.
    pub backend: &'static str,
    /// Intents that succeeded but back two confirmed holds, or holds confirmed twice.
    pub double_confirmations: usize,
    /// Confirmed holds whose intent did not succeed (or was refunded).
    pub confirmed_unpaid: usize,
    /// Succeeded intents neither backing a confirmed hold nor fully refunded.
    pub paid_neither: usize,
    /// Refunded holds without an audit record naming their payment.
    pub refunds_unaudited: usize,
    /// Units not conserved (`available + held + sold != capacity`, or sold != confirmed).
    pub conservation_errors: usize,
    /// Intents the checkout captured under more than one key.
    pub double_captures: usize,
    /// Manual capture: intents captured that back no confirmed reservation (a charge that
    /// needed a refund, which authorize-then-capture exists to avoid).
    pub captured_unconfirmed: usize,
    /// Authorizations still open (`requires_capture`) once every hold ended.
    pub open_authorizations: usize,

    /// Which capture mode ran.
    pub capture: CapturePreference,
    /// Authorizations voided (late authorizations whose units were resold, and holds whose
    /// authorization the checkout gave back).
    pub voided: usize,

    /// Payments (intents created, including ones canceled because their hold expired while
    /// the checkout started).
    pub payments: usize,
    /// Buyers whose checkout began.
    pub checkouts: usize,
    /// Buyers that never got a hold before the deadline.
    pub buyers_without_hold: usize,
    /// Buyers that came after enough payments began (and released a hold they had).
    pub buyers_released: usize,
    /// Holds that expired before their checkout began (the buyer held again).
    pub expired_before_checkout: usize,
    /// Intents per final status.
    pub succeeded: usize,
    /// Failed intents.
    pub failed: usize,
    /// Canceled intents.
    pub canceled: usize,
    /// Intents still processing (the never-answering card).
    pub processing: usize,
    /// Succeeded and backing a confirmed hold in time.
    pub confirmed_in_time: usize,
    /// Succeeded after their hold ended, re-booked.
    pub rebooked: usize,
    /// Succeeded after their hold ended and its units were resold: refunded.
    pub refunded_late: usize,
    /// Checkouts the reconciler settled from the provider's answer before their webhook came.
    pub settled_by_polling: usize,
    /// Units sold at the end.
    pub sold: u32,
    /// Units available at the end.
    pub available: u32,
    /// Webhook delivery counters (sender side).
    pub delivery: DeliveryStats,
    /// Attempts failed on purpose.
    pub injected_failures: usize,
    /// Receiver: requests, duplicates, out-of-order, 409s, 500s, bad signatures.
    pub received: u64,
    /// Duplicate deliveries the receiver saw.
    pub duplicates_seen: u64,
    /// Events the receiver saw after a newer one of the same intent.
    pub out_of_order_seen: u64,
    /// Concurrent repeats answered 409.
    pub in_flight_conflicts: u64,
    /// Answered 500.
    pub receiver_errors: u64,
    /// Refused signatures.
    pub bad_signatures: u64,
    /// Wall time of the run.
    pub elapsed: Duration,
}

impl MatrixReport {
    /// Panics with the report unless every invariant held.
    pub fn assert_clean(&self) {
        assert_eq!(
            (
                self.double_confirmations,
                self.confirmed_unpaid,
                self.paid_neither,
                self.refunds_unaudited,
                self.conservation_errors,
                self.double_captures,
                self.captured_unconfirmed,
                self.open_authorizations,
            ),
            (0, 0, 0, 0, 0, 0, 0, 0),
            "invariants broken:\n{self}"
        );
    }
}

impl fmt::Display for MatrixReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(
            f,
            "fault matrix on {}, capture {:?} ({:.1?})",
            self.backend, self.capture, self.elapsed
        )?;
        writeln!(
            f,
            "  double confirmations {} | confirmed but unpaid {} | paid but neither confirmed nor refunded {} | refunds unaudited {} | conservation errors {} | double captures {} | captured unconfirmed {} | authorizations left open {}",
            self.double_confirmations,
            self.confirmed_unpaid,
            self.paid_neither,
            self.refunds_unaudited,
            self.conservation_errors,
            self.double_captures,
            self.captured_unconfirmed,
            self.open_authorizations
        )?;
        writeln!(
            f,
            "  payments {} by {} buyers (buyers without a hold {}, turned away after enough payments {}, holds expired before checkout {}): succeeded {}, failed {}, canceled {}, never answered {}",
            self.payments,
            self.checkouts,
            self.buyers_without_hold,
            self.buyers_released,
            self.expired_before_checkout,
            self.succeeded,
            self.failed,
            self.canceled,
            self.processing
        )?;
        writeln!(
            f,
            "  succeeded -> confirmed in time {}, re-booked late {}, refunded late {} | voided {} | settled by polling before the webhook {} | sold {}, available {}",
            self.confirmed_in_time,
            self.rebooked,
            self.refunded_late,
            self.voided,
            self.settled_by_polling,
            self.sold,
            self.available
        )?;
        let d = &self.delivery;
        writeln!(
            f,
            "  webhooks: events {}, copies {} (duplicates {}), held back {}, attempts {} (injected failures {}), delivered {}, abandoned {}",
            d.events,
            d.copies,
            d.copies - d.events,
            d.held_back,
            d.attempts,
            self.injected_failures,
            d.delivered,
            d.abandoned
        )?;
        write!(
            f,
            "  receiver: requests {}, duplicates {}, out of order {}, 409 in flight {}, 500 {}, bad signatures {}",
            self.received,
            self.duplicates_seen,
            self.out_of_order_seen,
            self.in_flight_conflicts,
            self.receiver_errors,
            self.bad_signatures
        )
    }
}

fn user(i: usize) -> UserId {
    UserId::new(format!("buyer-{i}")).expect("user id")
}

/// The card mix: mostly successes, some declines, slow cards that succeed or fail after the
/// hold expired, and cards that never answer.
fn card(rng: &mut ChaCha8Rng) -> &'static str {
    match rng.next_u32() % 100 {
        0..45 => numbers::SUCCEEDS,
        45..53 => numbers::DECLINED,
        53..58 => numbers::INSUFFICIENT_FUNDS,
        58..83 => numbers::SUCCEEDS_SLOWLY,
        83..91 => numbers::DECLINED_SLOWLY,
        _ => numbers::NEVER_ANSWERS,
    }
}

enum Bought {
    Checkout,
    NoHold,
    Enough,
}

/// Runs the matrix on `backend`.
pub async fn run(backend: &Backend, cfg: &MatrixConfig) -> MatrixReport {
    let started = Instant::now();
    let limits = TimeLimits {
        hold_ttl: cfg.hold_ttl,
        payment_timeout: cfg.hold_ttl / 2,
        admission_ttl: cfg.hold_ttl,
        ..TimeLimits::default()
    };
    let (rush, session) = shop::open_session(backend.stores(), cfg.capacity, limits).await;
    let time_scale = 0.001;
    let sandbox = Sandbox::new(SandboxConfig {
        time_scale,
        // Slow cards settle 0.75 TTL after confirmation: before their hold expires for quick
        // buyers (whose webhook may still come late: polling settles them), after it for
        // slow ones (late payments: re-booked or refunded).
        slow_delay: cfg.hold_ttl.mul_f64(0.75 / time_scale),
        confirm_timeout: Duration::from_secs(15),
        delivery: DeliveryConfig {
            request_timeout: Duration::from_secs(10),
            ..DeliveryConfig::default()
        },
        ..SandboxConfig::default()
    })
    .expect("sandbox");
    let gateway = Arc::new(CountingGateway::new(Arc::new(sandbox.clone())));
    let checkout = rush
        .checkout(gateway.clone())
        .with_capture_preference(cfg.capture);
    let captures = Arc::new(
        checkout
            .capture_follower("fault-matrix")
            .expect("capture follower"),
    );
    let receiver = Receiver::start(checkout.clone()).await;
    let ttl_ms = u64::try_from(cfg.hold_ttl.as_millis()).expect("ttl");
    let endpoint = sandbox
        .register_endpoint(EndpointConfig {
            url: receiver.url.clone(),
            signing: SigningScheme::Symmetric,
            faults: Faults {
                seed: cfg.seed,
                delay: Delay::Range {
                    min_ms: 0,
                    max_ms: 2 * ttl_ms,
                },
                duplicate_probability: 0.3,
                duplicate_copies: 1,
                reorder_probability: 0.3,
                reorder_max_hold_ms: ttl_ms / 2,
                fail_first_probability: 0.1,
                fail_first_attempts: 1,
                corrupt_signature_probability: 0.0,
            },
        })
        .expect("endpoint");
    receiver.trust(Verifier::new([endpoint
        .verification_key
        .parse()
        .expect("verification key")]));

    // The host's background jobs: the sweeper and the reconciler.
    let stop = Arc::new(AtomicBool::new(false));
    let polled_settled = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let background = {
        let (rush, checkout, stop) = (rush.clone(), checkout.clone(), stop.clone());
        let captures = captures.clone();
        let polled_settled = polled_settled.clone();
        let lead = cfg.hold_ttl / 2;
        tokio::spawn(async move {
            while !stop.load(Ordering::Relaxed) {
                match rush.expiry.sweep(1_000).await {
                    Ok(swept) => {
                        if let Err(e) = checkout.settle_expired(&swept.expired).await {
                            tracing::warn!("settle expired: {e}");
                        }
                    }
                    Err(e) => tracing::warn!("sweep: {e}"),
                }
                match checkout.reconcile(lead, 1_000).await {
                    Ok(r) => {
                        polled_settled
                            .fetch_add(r.confirmed + r.failed + r.refunded, Ordering::Relaxed);
                    }
                    Err(e) => tracing::warn!("reconcile: {e}"),
                }
                if let Err(e) = captures.dispatch(session).await {
                    tracing::warn!("capture follower: {e}");
                }
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        })
    };

    let mut rng = ChaCha8Rng::seed_from_u64(cfg.seed);
    // Each buyer picks a card and takes 0 to 0.8 TTL to type it in.
    let ttl_ms_u32 = u32::try_from(ttl_ms).expect("ttl");
    let cards: Vec<(&'static str, Duration)> = (0..cfg.buyers)
        .map(|_| {
            let think = u64::from(rng.next_u32() % (ttl_ms_u32 * 4 / 5).max(1));
            (card(&mut rng), Duration::from_millis(think))
        })
        .collect();
    // A buyer without a payment slot gives up on a sold-out session after 30 s. One who holds
    // a slot (its hold expired while it typed its card) keeps trying for up to 120 s: on a
    // loaded machine units turn over slowly, and giving up would leave a payment unmade.
    let buying_from = Instant::now();
    let deadline = buying_from + Duration::from_secs(30);
    let slot_deadline = buying_from + Duration::from_secs(120);
    let begun = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let mut buyers = tokio::task::JoinSet::new();
    for (i, (card, think)) in cards.into_iter().enumerate() {
        let (rush, checkout, begun) = (rush.clone(), checkout.clone(), begun.clone());
        let payments = cfg.payments;
        buyers.spawn(async move {
            tokio::time::sleep(Duration::from_millis(5 * i as u64)).await;
            let buyer = user(i);
            let cmd = HoldCommand {
                session,
                user: buyer.clone(),
                tier: None,
                selection: Selection::Units {
                    grade: Grade::new("GA").expect("grade"),
                    quantity: 1,
                },
            };
            // A buyer holds, thinks, pays. Sold out: try again later, backing off like a
            // patient client (a storm of retries would only measure the retries). Hold
            // expired while thinking: hold again and pay again, on the same payment slot.
            let mut slot = false;
            let mut expired = 0;
            loop {
                let mut backoff = Duration::from_millis(50);
                let hold = loop {
                    if !slot && begun.load(Ordering::SeqCst) >= payments {
                        return (Bought::Enough, expired);
                    }
                    match rush.holds.hold(cmd.clone(), None).await {
                        Ok(h) => break h,
                        Err(Error::Refused(Refusal::SoldOut { .. }))
                            if Instant::now() < if slot { slot_deadline } else { deadline } =>
                        {
                            tokio::time::sleep(backoff).await;
                            backoff = (backoff * 2).min(Duration::from_millis(400));
                        }
                        Err(Error::Refused(Refusal::SoldOut { .. })) => {
                            return (Bought::NoHold, expired);
                        }
                        Err(e) => panic!("hold failed: {e}"),
                    }
                };
                if !slot {
                    if begun.fetch_add(1, Ordering::SeqCst) >= payments {
                        match rush.holds.release(hold.id, &buyer).await {
                            // A refusal means the hold already ended: nothing to give back.
                            Ok(_) | Err(Error::Refused(_)) => {}
                            Err(e) => panic!("release failed: {e}"),
                        }
                        return (Bought::Enough, expired);
                    }
                    slot = true;
                }
                tokio::time::sleep(think).await;
                match checkout.begin(hold.id, &buyer, card).await {
                    Ok(_) => return (Bought::Checkout, expired),
                    Err(Error::Refused(Refusal::HoldExpired { .. })) => expired += 1,
                    Err(e) => panic!("checkout failed: {e}"),
                }
            }
        });
    }
    let mut report = MatrixReport {
        backend: backend.name(),
        capture: cfg.capture,
        ..MatrixReport::default()
    };
    while let Some(done) = buyers.join_next().await {
        let (bought, expired) = done.expect("buyer task");
        report.expired_before_checkout += expired;
        match bought {
            Bought::Checkout => report.checkouts += 1,
            Bought::NoHold => report.buyers_without_hold += 1,
            Bought::Enough => report.buyers_released += 1,
        }
    }

    // Let slow cards settle and every delivery end; keep sweeping and reconciling.
    tokio::time::sleep(cfg.hold_ttl.mul_f64(1.6)).await;
    for _ in 0..60 {
        let idle = sandbox.wait_idle(Duration::from_secs(5)).await;
        let expired = rush.expiry.sweep(10_000).await.expect("sweep").expired;
        checkout
            .settle_expired(&expired)
            .await
            .expect("settle expired");
        let swept = expired.len();
        let polled = checkout
            .reconcile(Duration::ZERO, 10_000)
            .await
            .expect("reconcile")
            .polled;
        let followed = captures.dispatch(session).await.expect("capture follower");
        let captures_owed = followed.sent > 0;
        if idle
            && swept == 0
            && polled == 0
            && !captures_owed
            && sandbox.wait_idle(Duration::ZERO).await
        {
            break;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    stop.store(true, Ordering::Relaxed);
    background.await.expect("background jobs");

    check(&rush, session, cfg, &sandbox, &gateway, &mut report).await;
    report.settled_by_polling = polled_settled.load(Ordering::Relaxed);
    report.delivery = sandbox.delivery_stats();
    report.injected_failures = sandbox
        .deliveries(None)
        .iter()
        .filter(|a| a.outcome == AttemptOutcome::InjectedFailure)
        .count();
    let s = &receiver.stats;
    report.received = ReceiverStats::get(&s.received);
    report.duplicates_seen = ReceiverStats::get(&s.duplicates);
    report.out_of_order_seen = ReceiverStats::get(&s.out_of_order);
    report.in_flight_conflicts = ReceiverStats::get(&s.in_flight);
    report.receiver_errors = ReceiverStats::get(&s.failed);
    report.bad_signatures = ReceiverStats::get(&s.bad_signature);
    report.elapsed = started.elapsed();
    report
}

/// Compares the provider's books with the tickets.
async fn check(
    rush: &ticket_core::TicketRush,
    session: ticket_core::SessionId,
    cfg: &MatrixConfig,
    sandbox: &Sandbox,
    gateway: &CountingGateway,
    report: &mut MatrixReport,
) {
    report.double_captures = gateway.captured_twice();
    let captured = gateway.captured();
    let reservations = &rush.stores().reservations;
    let mut holds: Vec<Hold> = Vec::new();
    for i in 0..cfg.buyers {
        holds.extend(
            reservations
                .holds_of(session, &user(i))
                .await
                .expect("holds of a buyer"),
        );
    }
    let mut by_payment: HashMap<&str, Vec<&Hold>> = HashMap::new();
    for h in &holds {
        if let Some(p) = h.payment_ref.as_deref() {
            by_payment.entry(p).or_default().push(h);
        }
    }
    let intents = sandbox.intents();
    report.payments = intents.len();
    for intent in &intents {
        let backing: Vec<&&Hold> = by_payment
            .get(intent.id.as_str())
            .map(|v| {
                v.iter()
                    .filter(|h| h.state == HoldState::Confirmed)
                    .collect()
            })
            .unwrap_or_default();
        if backing.len() > 1 {
            report.double_confirmations += 1;
        }
        match intent.status {
            IntentStatus::Succeeded => {
                report.succeeded += 1;
                if intent.amount_received > intent.amount.amount_minor {
                    report.double_captures += 1;
                }
                if captured.contains(&intent.id) && backing.is_empty() {
                    report.captured_unconfirmed += 1;
                }
                match (backing.first(), intent.amount_refunded) {
                    (Some(h), 0) if h.rebooked_from.is_some() => report.rebooked += 1,
                    (Some(_), 0) => report.confirmed_in_time += 1,
                    (Some(_), _) => report.confirmed_unpaid += 1,
                    (None, _) if intent.fully_refunded() => report.refunded_late += 1,
                    (None, _) => report.paid_neither += 1,
                }
            }
            other => {
                match other {
                    IntentStatus::Failed => report.failed += 1,
                    IntentStatus::Canceled => {
                        report.canceled += 1;
                        // Voided because its hold had ended (the hold names the payment
                        // and says its money went back).
                        let gave_back = by_payment
                            .get(intent.id.as_str())
                            .is_some_and(|v| v.iter().any(|h| h.state == HoldState::Refunded));
                        if gave_back {
                            report.voided += 1;
                        }
                    }
                    IntentStatus::RequiresCapture => report.open_authorizations += 1,
                    _ => report.processing += 1,
                }
                if !backing.is_empty() {
                    report.confirmed_unpaid += 1;
                }
            }
        }
    }
    let known: std::collections::HashSet<&str> = intents.iter().map(|i| i.id.as_str()).collect();
    let mut confirmed = 0u32;
    for h in &holds {
        let audit = reservations
            .audit(&AuditScope::Hold(h.id), 100)
            .await
            .expect("audit");
        if audit.iter().filter(|r| r.to == "CONFIRMED").count() > 1 {
            report.double_confirmations += 1;
        }
        if h.state == HoldState::Confirmed {
            confirmed += h.units();
            if !h.payment_ref.as_deref().is_some_and(|p| known.contains(p)) {
                report.confirmed_unpaid += 1;
            }
        }
        if h.state == HoldState::Refunded {
            let named = audit.iter().any(|r| {
                r.to == "REFUNDED" && r.correlation_id.as_deref() == h.payment_ref.as_deref()
            });
            if !named {
                report.refunds_unaudited += 1;
            }
        }
    }
    let snap = rush
        .stores()
        .inventory
        .snapshot(session)
        .await
        .expect("snapshot");
    let t = snap.totals();
    report.sold = u32::try_from(t.sold).unwrap_or(u32::MAX);
    report.available = u32::try_from(t.available).unwrap_or(u32::MAX);
    if !t.is_conserved() || t.held != 0 || u64::from(confirmed) != t.sold {
        report.conservation_errors += 1;
    }
}
