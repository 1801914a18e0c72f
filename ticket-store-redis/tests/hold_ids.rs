//! Hold ids are unique across sessions: a second hold under a used id is refused as invalid
//! and leaves the stock of its session as it was (the compensation path of the batched hold).

mod common;

use std::time::Duration;

use ticket_core::ids::{EventId, HoldId, SessionId};
use ticket_core::model::audit::Actor;
use ticket_core::model::hold::{AdmissionCheck, NewHold, Selection};
use ticket_core::model::inventory::{GradeStock, InventoryPlan};
use ticket_core::model::money::{Currency, Money};
use ticket_core::model::session::{Event, SalesWindow, Session};
use ticket_core::store::{Inventory, Reservations};
use ticket_core::testkit::{T0, grade, user};
use ticket_core::{Error, InvalidInput};

fn session(event_id: EventId) -> Session {
    Session {
        id: SessionId::new_at(T0),
        event_id,
        starts_at: T0.plus(Duration::from_secs(86_400)),
        sales: SalesWindow {
            open_at: T0,
            close_at: T0.plus(Duration::from_secs(86_400)),
        },
        inventory: InventoryPlan::General {
            grades: vec![GradeStock {
                grade: grade("GA"),
                capacity: 5,
                price: Money::new(1_000, Currency::new("KRW").expect("KRW")).expect("price"),
            }],
        },
    }
}

fn new_hold(id: HoldId, session: SessionId) -> NewHold {
    NewHold {
        id,
        session,
        user: user(1),
        selection: Selection::Units {
            grade: grade("GA"),
            quantity: 2,
        },
        now: T0,
        expires_at: T0.plus(Duration::from_secs(300)),
        per_user_limit: None,
        admission: AdmissionCheck::NotRequired,
        actor: Actor::User(user(1)),
        correlation_id: None,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_hold_id_used_in_another_session_is_refused_and_changes_nothing() {
    for max_batch in [1, 64] {
        let store = common::isolated_store(max_batch).await;
        let event_id = EventId::new_at(T0);
        let (a, b) = (session(event_id), session(event_id));
        store
            .create_event(&Event {
                id: event_id,
                name: "two sessions".into(),
                sessions: vec![a.clone(), b.clone()],
            })
            .await
            .expect("event");
        let id = HoldId::new_at(T0);
        store.hold(new_hold(id, a.id)).await.expect("first hold");
        let err = store
            .hold(new_hold(id, b.id))
            .await
            .expect_err("same id in another session");
        assert!(
            matches!(err, Error::Invalid(InvalidInput::Definition(_))),
            "{err:?}"
        );
        let b_totals = store.snapshot(b.id).await.expect("snapshot").totals();
        assert_eq!((b_totals.available, b_totals.held), (5, 0), "{b_totals:?}");
        let kept = store
            .get(id)
            .await
            .expect("the first hold is still reachable");
        assert_eq!(kept.session, a.id);
        let a_totals = store.snapshot(a.id).await.expect("snapshot").totals();
        assert_eq!((a_totals.available, a_totals.held), (3, 2));
        // Same id again in the same session: refused too, nothing overwritten.
        let err = store
            .hold(new_hold(id, a.id))
            .await
            .expect_err("same id, same session");
        assert!(matches!(err, Error::Invalid(_)), "{err:?}");
        assert_eq!(store.get(id).await.expect("hold"), kept);
    }
}
