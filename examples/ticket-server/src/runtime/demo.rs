//! The demo event: one general-admission session and one seated session, on sale from the
//! moment the first server starts. Its ids derive from the namespace, so every process of a
//! deployment finds the same event, and a restart keeps the one already stored.

use std::time::Duration;

use sha2::{Digest, Sha256};
use ticket_core::model::inventory::{Grade, GradeStock, InventoryPlan, Seat, SeatId};
use ticket_core::model::money::{Currency, Money};
use ticket_core::model::session::{Event, SalesWindow, Session};
use ticket_core::{Error, EventId, SessionId};

use crate::http::error::ApiError;
use crate::runtime::state::AppState;
use crate::services::catalog::publish_event;

/// Stable per-namespace UUID for `what`.
fn stable_uuid(namespace: &str, what: &str) -> uuid::Uuid {
    let digest = Sha256::digest(format!("ticketrush-demo:{namespace}:{what}").as_bytes());
    let mut bytes = [0u8; 16];
    bytes.copy_from_slice(&digest[..16]);
    uuid::Builder::from_custom_bytes(bytes).into_uuid()
}

/// The demo event's id in `namespace`.
pub fn demo_event_id(namespace: &str) -> EventId {
    EventId::from_uuid(stable_uuid(namespace, "event"))
}

/// Creates the demo event unless the store already has it, and lists it.
pub async fn ensure_demo_event(state: &AppState) -> Result<Event, ApiError> {
    let ns = &state.config.namespace;
    let id = demo_event_id(ns);
    let event = match state.rush.stores().inventory.event(id).await {
        Ok(stored) => stored,
        Err(Error::NotFound { .. }) => demo_event(state, ns)?,
        Err(e) => return Err(e.into()),
    };
    // Identical to what is stored (or new): create_event is idempotent for it. Two processes
    // starting at once may build two windows; the loser reads the winner's event.
    match publish_event(&state.rush, &event).await {
        Ok(()) => Ok(event),
        Err(_) => {
            let stored = state.rush.stores().inventory.event(id).await?;
            publish_event(&state.rush, &stored).await?;
            Ok(stored)
        }
    }
}

fn demo_event(state: &AppState, ns: &str) -> Result<Event, ApiError> {
    let now = state.clock.now();
    let krw = Currency::new("KRW").map_err(Error::from)?;
    let price = |amount| Money::new(amount, krw).map_err(Error::from);
    let grade = |name: &str| Grade::new(name).map_err(Error::from);
    let id = demo_event_id(ns);
    let sales = SalesWindow {
        open_at: now,
        close_at: now.plus(Duration::from_secs(30 * 86_400)),
    };
    let starts_at = now.plus(Duration::from_secs(31 * 86_400));
    let mut seats = Vec::new();
    for row in ["A", "B", "C", "D"] {
        for n in 1..=10 {
            seats.push(Seat {
                id: SeatId::new(format!("{row}{n}")).map_err(Error::from)?,
                section: "Floor".into(),
                grade: grade(if row == "A" { "VIP" } else { "R" })?,
                price: price(if row == "A" { 150_000 } else { 99_000 })?,
            });
        }
    }
    Ok(Event {
        id,
        name: "ticketrush live (demo)".into(),
        sessions: vec![
            Session {
                id: SessionId::from_uuid(stable_uuid(ns, "ga")),
                event_id: id,
                starts_at,
                sales,
                inventory: InventoryPlan::General {
                    grades: vec![GradeStock {
                        grade: grade("GA")?,
                        capacity: 100,
                        price: price(50_000)?,
                    }],
                },
            },
            Session {
                id: SessionId::from_uuid(stable_uuid(ns, "seated")),
                event_id: id,
                starts_at,
                sales,
                inventory: InventoryPlan::Seated { seats },
            },
        ],
    })
}
