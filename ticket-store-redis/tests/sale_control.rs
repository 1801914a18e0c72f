//! The organiser's controls on Redis: the switch refuses holds in the hold script itself,
//! capacity changes keep the counters whole, and both leave an audit record and a change.

mod common;

use std::time::Duration;

use ticket_core::model::audit::{Actor, AuditScope, Subject};
use ticket_core::model::change::ChangeKind;
use ticket_core::model::hold::Selection;
use ticket_core::model::inventory::{InventoryPlan, Seat};
use ticket_core::model::money::{Currency, Money};
use ticket_core::model::page::{AuditQuery, PageOrder};
use ticket_core::model::sale::{
    CAPACITY_CHANGED, CapacityChange, CapacityDelta, SaleState, SaleStateChange,
};
use ticket_core::store::{ChangeFeed, Inventory, Reservations, SaleControl};
use ticket_core::testkit::{Fixture, T0, grade, seat, user};
use ticket_core::{Error, Refusal, Timestamp};

fn organiser() -> Actor {
    Actor::Operator("organiser".into())
}

fn switch_to(f: &Fixture, to: SaleState, at: Timestamp) -> SaleStateChange {
    SaleStateChange {
        session: f.session,
        to,
        actor: organiser(),
        reason: format!("to {}", to.as_str()),
        now: at,
    }
}

fn capacity(f: &Fixture, delta: CapacityDelta, reason: &str) -> CapacityChange {
    CapacityChange {
        session: f.session,
        delta,
        actor: organiser(),
        reason: reason.into(),
        now: T0.plus(Duration::from_secs(5)),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_paused_sale_refuses_holds_until_it_resumes() {
    for batch in [1, 64] {
        let store = common::isolated_store(batch).await;
        let f = Fixture::general(store.stores(), 10, Duration::ZERO).await;
        let later = T0.plus(Duration::from_secs(60));
        assert_eq!(
            store.sale_switch(f.session).await.expect("switch").state,
            SaleState::Open
        );
        let paused = store
            .set_sale_state(switch_to(&f, SaleState::Paused, T0))
            .await
            .expect("pause");
        assert!(paused.changed);
        assert_eq!(paused.switch.since, Some(T0));
        let again = store
            .set_sale_state(switch_to(&f, SaleState::Paused, later))
            .await
            .expect("pause again");
        assert!(!again.changed, "a repeat changes nothing");
        assert_eq!(again.switch, paused.switch);
        assert_eq!(
            store.sale_switch(f.session).await.expect("read"),
            paused.switch
        );
        let err = store
            .hold(f.new_hold(&user(1), 1, T0, later))
            .await
            .expect_err("paused");
        assert!(
            matches!(err, Error::Refused(Refusal::SalesPaused)),
            "{err:?}"
        );
        store
            .set_sale_state(switch_to(&f, SaleState::Open, T0))
            .await
            .expect("resume");
        store
            .hold(f.new_hold(&user(1), 2, T0, later))
            .await
            .expect("hold after resuming");
        let closed = store
            .set_sale_state(switch_to(&f, SaleState::Closed, T0))
            .await
            .expect("close");
        let err = store
            .hold(f.new_hold(&user(2), 1, T0, later))
            .await
            .expect_err("closed");
        assert_eq!(
            err.to_string(),
            Error::from(Refusal::SalesClosed {
                closed_at: closed.switch.since.expect("since")
            })
            .to_string()
        );
        let err = store
            .set_sale_state(switch_to(&f, SaleState::Open, T0))
            .await
            .expect_err("a closed sale does not reopen");
        assert!(
            matches!(err, Error::Refused(Refusal::IllegalSaleTransition { .. })),
            "{err:?}"
        );
        store
            .set_sale_state(switch_to(&f, SaleState::Cancelled, T0))
            .await
            .expect("cancel");
        let err = store
            .hold(f.new_hold(&user(2), 1, T0, later))
            .await
            .expect_err("cancelled");
        assert!(
            matches!(err, Error::Refused(Refusal::SessionCancelled { .. })),
            "{err:?}"
        );
        let err = store
            .change_capacity(capacity(
                &f,
                CapacityDelta::AddUnits {
                    grade: grade("GA"),
                    units: 1,
                },
                "",
            ))
            .await
            .expect_err("cancelled");
        assert!(
            matches!(err, Error::Refused(Refusal::SessionCancelled { .. })),
            "{err:?}"
        );

        // The trail: by session and by the organiser, and the feed.
        let page = store
            .audit_page(&AuditQuery {
                scope: AuditScope::Session(f.session),
                order: PageOrder::OldestFirst,
                after: None,
                limit: 100,
            })
            .await
            .expect("audit");
        let moves: Vec<(Option<String>, String)> = page
            .items
            .iter()
            .filter(|r| r.subject == Subject::Session(f.session))
            .map(|r| (r.from.clone(), r.to.clone()))
            .collect();
        let s = |x: &str| x.to_owned();
        assert_eq!(
            moves,
            vec![
                (Some(s("OPEN")), s("PAUSED")),
                (Some(s("PAUSED")), s("OPEN")),
                (Some(s("OPEN")), s("CLOSED")),
                (Some(s("CLOSED")), s("CANCELLED")),
            ]
        );
        let mine = store
            .audit(
                &AuditScope::User(ticket_core::ids::UserId::new("organiser").expect("id")),
                100,
            )
            .await
            .expect("by owner");
        assert_eq!(mine.len(), 4, "the organiser's records");
        let kinds: Vec<ChangeKind> = store
            .changes(f.session, 0, 100)
            .await
            .expect("feed")
            .changes
            .into_iter()
            .map(|c| c.kind)
            .filter(|k| *k != ChangeKind::QueueDrawn)
            .collect();
        assert_eq!(
            kinds,
            vec![
                ChangeKind::SalePaused,
                ChangeKind::SaleResumed,
                ChangeKind::HoldCreated,
                ChangeKind::SaleClosed,
                ChangeKind::SaleCancelled,
            ]
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn units_added_and_removed_keep_the_counts_whole() {
    let store = common::isolated_store(64).await;
    let f = Fixture::general(store.stores(), 10, Duration::ZERO).await;
    let later = T0.plus(Duration::from_secs(60));
    store
        .hold(f.new_hold(&user(1), 4, T0, later))
        .await
        .expect("hold");
    let out = store
        .change_capacity(capacity(
            &f,
            CapacityDelta::AddUnits {
                grade: grade("GA"),
                units: 5,
            },
            "second balcony",
        ))
        .await
        .expect("add");
    assert_eq!(out.grades.len(), 1);
    assert_eq!(
        (
            out.grades[0].capacity,
            out.grades[0].available,
            out.grades[0].held
        ),
        (15, 11, 4)
    );
    assert_eq!(
        store.session(f.session).await.expect("session").inventory,
        out.plan
    );
    let event = store.event(f.event.id).await.expect("event");
    assert_eq!(
        event.sessions[0].inventory, out.plan,
        "event answers the current plan"
    );
    // create_event still compares the definition as created.
    store.create_event(&f.event).await.expect("idempotent");
    let err = store
        .change_capacity(capacity(
            &f,
            CapacityDelta::RemoveUnits {
                grade: grade("GA"),
                units: 12,
            },
            "",
        ))
        .await
        .expect_err("held units stay");
    assert!(
        matches!(
            err,
            Error::Refused(Refusal::CapacityInUse { removable: 11, .. })
        ),
        "{err:?}"
    );
    let out = store
        .change_capacity(capacity(
            &f,
            CapacityDelta::RemoveUnits {
                grade: grade("GA"),
                units: 11,
            },
            "",
        ))
        .await
        .expect("remove every free unit");
    assert_eq!((out.grades[0].capacity, out.grades[0].available), (4, 0));
    let counts = store.counts(f.session).await.expect("counts");
    assert_eq!(counts.grades, out.grades);
    let snap = f.snapshot().await;
    assert_eq!(snap.grades[0].capacity, 4);
    let trail = store
        .audit(&AuditScope::Session(f.session), 100)
        .await
        .expect("audit");
    let reasons: Vec<&str> = trail
        .iter()
        .filter(|r| r.to == CAPACITY_CHANGED)
        .map(|r| r.reason.as_str())
        .collect();
    assert_eq!(
        reasons,
        vec!["grade GA: +5 units: second balcony", "grade GA: -11 units"]
    );
    let kinds: Vec<ChangeKind> = store
        .changes(f.session, 0, 100)
        .await
        .expect("feed")
        .changes
        .into_iter()
        .map(|c| c.kind)
        .filter(|k| *k != ChangeKind::QueueDrawn)
        .collect();
    assert_eq!(
        kinds,
        vec![
            ChangeKind::HoldCreated,
            ChangeKind::CapacityChanged,
            ChangeKind::CapacityChanged,
            ChangeKind::SoldOut,
        ]
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn seats_come_and_go_only_when_free() {
    let store = common::isolated_store(64).await;
    let other = common::another_server(&store).await;
    let f = Fixture::seated(store.stores(), &["A1", "A2", "A3"]).await;
    let later = T0.plus(Duration::from_secs(60));
    let mut held = f.new_hold(&user(1), 1, T0, later);
    held.selection = Selection::Seats {
        seats: vec![seat("A1")],
    };
    store.hold(held).await.expect("hold A1");
    // The other server reads the plan before the change.
    assert_eq!(
        other
            .session(f.session)
            .await
            .expect("plan")
            .inventory
            .capacity(),
        3
    );
    let err = store
        .change_capacity(capacity(
            &f,
            CapacityDelta::RemoveSeats {
                seats: vec![seat("A1"), seat("A2")],
            },
            "",
        ))
        .await
        .expect_err("A1 is held");
    assert!(
        matches!(err, Error::Refused(Refusal::SeatsUnavailable { .. })),
        "{err:?}"
    );
    let out = store
        .change_capacity(capacity(
            &f,
            CapacityDelta::RemoveSeats {
                seats: vec![seat("A2")],
            },
            "",
        ))
        .await
        .expect("remove A2");
    assert_eq!((out.grades[0].capacity, out.grades[0].available), (2, 1));
    let krw = Money::new(99_000, Currency::new("KRW").expect("KRW")).expect("money");
    let out = store
        .change_capacity(capacity(
            &f,
            CapacityDelta::AddSeats {
                seats: vec![Seat {
                    id: seat("B1"),
                    section: "Floor".into(),
                    grade: grade("R"),
                    price: krw,
                }],
            },
            "",
        ))
        .await
        .expect("add B1");
    let InventoryPlan::Seated { seats } = &out.plan else {
        panic!("seated")
    };
    let ids: Vec<&str> = seats.iter().map(|s| s.id.as_str()).collect();
    assert_eq!(ids, vec!["A1", "A3", "B1"]);
    // A removed seat is refused; an added one is sold, also by a server with an old plan.
    let mut gone = f.new_hold(&user(2), 1, T0, later);
    gone.selection = Selection::Seats {
        seats: vec![seat("A2")],
    };
    let err = other.hold(gone).await.expect_err("removed seat");
    assert!(
        matches!(
            err,
            Error::Refused(Refusal::SeatsUnavailable { .. } | Refusal::UnknownItem { .. })
        ),
        "{err:?}"
    );
    let mut new = f.new_hold(&user(2), 1, T0, later);
    new.selection = Selection::Seats {
        seats: vec![seat("B1")],
    };
    other.hold(new).await.expect("hold the new seat");
    let snap = f.snapshot().await;
    let states: Vec<(&str, _)> = snap
        .seats
        .iter()
        .map(|s| (s.seat.id.as_str(), s.state))
        .collect();
    assert_eq!(states.len(), 3);
    assert_eq!(snap.grades[0].capacity, 3);
    assert_eq!(snap.grades[0].held, 2);
}
