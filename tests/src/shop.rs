//! One general-admission session on the system clock, sold without a queue.

use std::sync::Arc;
use std::time::Duration;

use ticket_core::model::inventory::{Grade, GradeStock, InventoryPlan};
use ticket_core::model::money::{Currency, Money};
use ticket_core::model::session::{Event, SalesWindow, Session};
use ticket_core::{Clock, EventId, SessionId, Stores, SystemClock, TicketRush, TimeLimits};

/// Price of one unit.
pub fn unit_price() -> Money {
    Money::new(50_000, Currency::new("KRW").expect("currency")).expect("amount")
}

/// Services on `stores` with `limits`, and one open session of `capacity` `GA` units.
pub async fn open_session(
    stores: Stores,
    capacity: u32,
    limits: TimeLimits,
) -> (TicketRush, SessionId) {
    let clock = Arc::new(SystemClock);
    let now = clock.now();
    let rush = TicketRush::new(stores, clock, limits).expect("valid limits");
    let event_id = EventId::new_at(now);
    let session = SessionId::new_at(now);
    let day = Duration::from_secs(86_400);
    let open_at = now.minus(Duration::from_secs(60));
    let event = Event {
        id: event_id,
        name: "End to end".into(),
        sessions: vec![Session {
            id: session,
            event_id,
            starts_at: now.plus(2 * day),
            sales: SalesWindow {
                open_at,
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
    };
    rush.create_event(&event).await.expect("create event");
    let mut policy = rush
        .stores()
        .policies
        .policy(session)
        .await
        .expect("default policy");
    policy.queue.require_admission = false;
    policy.max_units_per_user = None;
    rush.set_policy(session, &policy).await.expect("policy");
    (rush, session)
}
