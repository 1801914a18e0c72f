//! The whole flow on the in-memory backend: join → admit → hold → pay → confirm → cancel.
//!
//! Run with `cargo run -p quickstart`.

use std::sync::Arc;
use std::time::Duration;

use ticket_core::model::hold::Selection;
use ticket_core::model::inventory::{Grade, GradeStock, InventoryPlan};
use ticket_core::model::money::{Currency, Money};
use ticket_core::model::session::{Event, SalesWindow, Session};
use ticket_core::service::{HoldCommand, Settlement};
use ticket_core::{Clock, EventId, SessionId, SystemClock, TicketRush, TimeLimits, UserId};

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let clock = Arc::new(SystemClock);
    let rush = TicketRush::new(
        ticket_core::memory::MemoryStore::new().stores(),
        clock.clone(),
        TimeLimits::default(),
    )?;

    // An event with one general-admission session, on sale from now for a day.
    let now = clock.now();
    let (event_id, session) = (EventId::new_at(now), SessionId::new_at(now));
    let krw = Currency::new("KRW")?;
    rush.create_event(&Event {
        id: event_id,
        name: "Rust Conf Live".into(),
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
                    capacity: 100,
                    price: Money::new(55_000, krw)?,
                }],
            },
        }],
    })
    .await?;

    // The default policy requires a queue admission: join, then an admission round.
    let alice = UserId::new("alice")?;
    let ticket = rush.admission.join(session, &alice).await?;
    println!("joined: ticket {} ({:?})", ticket.id, ticket.state);
    let round = rush.admission.admit_next(session).await?;
    println!("admitted {} user(s)", round.admitted.len());

    // Hold two units (idempotent under the key "order-1"), pay, confirm.
    let cmd = HoldCommand {
        session,
        user: alice.clone(),
        tier: None,
        selection: Selection::Units {
            grade: Grade::new("GA")?,
            quantity: 2,
        },
    };
    let hold = rush.holds.hold(cmd, Some("order-1")).await?;
    println!(
        "held {} unit(s), {:?}, until {}",
        hold.units(),
        hold.amount,
        hold.expires_at
    );
    rush.payments.start(hold.id, &alice, "pi_demo_1").await?;
    match rush.payments.succeeded(hold.id, "pi_demo_1").await? {
        Settlement::Confirmed(h) => println!("confirmed: {:?}", h.state),
        other => println!("settled otherwise: {other:?}"),
    }

    let stock = rush.stores().inventory.snapshot(session).await?.totals();
    println!(
        "stock: {} available, {} held, {} sold of {}",
        stock.available, stock.held, stock.sold, stock.capacity
    );

    // Changed plans: cancel (the units go back on sale at once), then record the refund.
    rush.cancellations
        .cancel(hold.id, &alice, "changed plans")
        .await?;
    let refunded = rush
        .cancellations
        .record_refund(
            hold.id,
            "re_demo_1",
            ticket_core::model::audit::Actor::system("demo"),
        )
        .await?;
    println!("after cancellation: {:?}", refunded.state);
    Ok(())
}
