//! Checkout against the payment sandbox: the library starts payments, the sandbox sends
//! signed webhooks (some twice), a receiver verifies them and hands them to the library.
//!
//! Run with `cargo run -p checkout`.

use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::routing::post;
use payment_sandbox::cards::numbers;
use payment_sandbox::delivery::{EndpointConfig, SigningScheme};
use payment_sandbox::faults::Faults;
use payment_sandbox::signature::Verifier;
use payment_sandbox::{Sandbox, SandboxConfig};
use ticket_core::gateway::PaymentEvent;
use ticket_core::model::hold::Selection;
use ticket_core::model::inventory::{Grade, GradeStock, InventoryPlan};
use ticket_core::model::money::{Currency, Money};
use ticket_core::model::session::{Event, SalesWindow, Session};
use ticket_core::service::{CheckoutService, HoldCommand};
use ticket_core::{Clock, Error, EventId, SessionId, SystemClock, TicketRush, TimeLimits, UserId};

/// The receiver: verify, parse, apply; 2xx only once applied, so the sandbox retries failures.
async fn webhook(
    State((checkout, verifier)): State<(CheckoutService, Arc<Verifier>)>,
    headers: HeaderMap,
    body: Bytes,
) -> StatusCode {
    let header = |name: &str| headers.get(name).and_then(|v| v.to_str().ok());
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() as i64);
    if let Err(e) = verifier.verify_headers(header, &body, now) {
        eprintln!("  webhook refused: {e}");
        return StatusCode::BAD_REQUEST;
    }
    let Ok(event) = serde_json::from_slice::<PaymentEvent>(&body) else {
        return StatusCode::BAD_REQUEST;
    };
    match checkout.handle_event(&event).await {
        Ok(result) => {
            let what = serde_json::to_value(&result).ok();
            let outcome = what
                .as_ref()
                .and_then(|v| v["outcome"].as_str())
                .unwrap_or("?");
            println!(
                "  webhook {:?} #{} -> {outcome}",
                event.kind, event.sequence
            );
            StatusCode::OK
        }
        Err(Error::InFlight) => StatusCode::CONFLICT,
        Err(e) => {
            eprintln!("  webhook not applied (will be retried): {e}");
            StatusCode::INTERNAL_SERVER_ERROR
        }
    }
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let clock = Arc::new(SystemClock);
    let rush = TicketRush::new(
        ticket_core::memory::MemoryStore::new().stores(),
        clock.clone(),
        TimeLimits::default(),
    )?;
    let now = clock.now();
    let (event_id, session) = (EventId::new_at(now), SessionId::new_at(now));
    let price = Money::new(50_000, Currency::new("KRW")?)?;
    rush.create_event(&Event {
        id: event_id,
        name: "Sandbox Live".into(),
        sessions: vec![Session {
            id: session,
            event_id,
            starts_at: now.plus(Duration::from_secs(7 * 86_400)),
            sales: SalesWindow {
                open_at: now,
                close_at: now.plus(Duration::from_secs(86_400)),
            },
            inventory: InventoryPlan::General {
                grades: vec![GradeStock {
                    grade: Grade::new("GA")?,
                    capacity: 3,
                    price,
                }],
            },
        }],
    })
    .await?;
    let mut policy = rush.stores().policies.policy(session).await?;
    policy.queue.require_admission = false; // no waiting queue in this example
    rush.set_policy(session, &policy).await?;

    // The provider, and the library's checkout over it.
    let sandbox = Sandbox::new(SandboxConfig {
        slow_delay: Duration::from_millis(300),
        ..SandboxConfig::default()
    })?;
    let checkout = rush.checkout(Arc::new(sandbox.clone()));

    // The webhook receiver, registered with the sandbox (which then duplicates half of
    // its deliveries, to show they change nothing).
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let url = format!("http://{}/webhooks", listener.local_addr()?);
    let endpoint = sandbox.register_endpoint(EndpointConfig {
        url,
        signing: SigningScheme::Symmetric,
        faults: Faults {
            seed: 7,
            duplicate_probability: 0.5,
            duplicate_copies: 1,
            ..Faults::none()
        },
    })?;
    let verifier = Arc::new(Verifier::new([endpoint.verification_key.parse()?]));
    let app = Router::new()
        .route("/webhooks", post(webhook))
        .with_state((checkout.clone(), verifier));
    tokio::spawn(async move { axum::serve(listener, app).await });

    for (name, card) in [
        ("ana", numbers::SUCCEEDS),
        ("ben", numbers::DECLINED),
        ("cho", numbers::SUCCEEDS_SLOWLY),
    ] {
        let user = UserId::new(name)?;
        let cmd = HoldCommand {
            session,
            user: user.clone(),
            tier: None,
            selection: Selection::Units {
                grade: Grade::new("GA")?,
                quantity: 1,
            },
        };
        let hold = rush.holds.hold(cmd, None).await?;
        let started = checkout.begin(hold.id, &user, card).await?;
        println!(
            "{name} pays with {card}: hold {}",
            started.hold.state.as_str()
        );
    }

    // Let the slow card settle and every webhook arrive.
    tokio::time::sleep(Duration::from_millis(500)).await;
    sandbox.wait_idle(Duration::from_secs(10)).await;
    let stock = rush.stores().inventory.snapshot(session).await?.totals();
    println!(
        "sold {}, held {}, available {} of 3; {} webhook deliveries logged",
        stock.sold,
        stock.held,
        stock.available,
        sandbox.deliveries(None).len()
    );
    Ok(())
}
