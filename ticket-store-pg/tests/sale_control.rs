//! `SaleControl` on PostgreSQL: the sale switch read by holds and re-bookings in their own
//! transaction, capacity changes with the stock, the plan, the trail and the feed.

mod common;

use std::time::Duration;

use ticket_core::ids::HoldId;
use ticket_core::model::audit::{Actor, AuditScope, Subject};
use ticket_core::model::change::ChangeKind;
use ticket_core::model::hold::{
    AdmissionCheck, HoldState, NewHold, RebookRequest, TransitionRequest,
};
use ticket_core::model::inventory::{InventoryPlan, Seat};
use ticket_core::model::money::{Currency, Money};
use ticket_core::model::page::{AuditQuery, PageOrder};
use ticket_core::model::sale::{
    CAPACITY_CHANGED, CapacityChange, CapacityDelta, SaleState, SaleStateChange,
};
use ticket_core::model::selection::Selection;
use ticket_core::testkit::{Fixture, T0, grade, seat, user};
use ticket_core::{Error, Refusal, Stores, Timestamp};

fn organiser() -> Actor {
    Actor::Operator("organiser".into())
}

fn move_to(f: &Fixture, to: SaleState, now: Timestamp) -> SaleStateChange {
    SaleStateChange {
        session: f.session,
        to,
        actor: organiser(),
        reason: format!("to {}", to.as_str()),
        now,
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

fn later(f: &Fixture, n: u64) -> NewHold {
    let now = T0.plus(Duration::from_secs(n));
    f.new_hold(
        &user(n as usize),
        1,
        now,
        now.plus(Duration::from_secs(600)),
    )
}

async fn kinds(stores: &Stores, f: &Fixture) -> Vec<ChangeKind> {
    stores
        .feed
        .changes(f.session, 0, 500)
        .await
        .expect("feed")
        .changes
        .into_iter()
        .map(|c| c.kind)
        .collect()
}

#[tokio::test]
async fn pause_refuses_holds_in_their_transaction_and_resume_sells_again() {
    let store = common::isolated_store(64).await;
    let stores = store.stores();
    let f = Fixture::general(stores.clone(), 10, Duration::ZERO).await;
    let paused = stores
        .sales
        .set_sale_state(move_to(
            &f,
            SaleState::Paused,
            T0.plus(Duration::from_secs(1)),
        ))
        .await
        .expect("pause");
    assert!(paused.changed);
    assert_eq!(paused.switch.state, SaleState::Paused);
    let again = stores
        .sales
        .set_sale_state(move_to(
            &f,
            SaleState::Paused,
            T0.plus(Duration::from_secs(2)),
        ))
        .await
        .expect("repeat");
    assert!(!again.changed);
    assert_eq!(again.switch, paused.switch);
    // lone and batched holds meet the switch
    let racers: Vec<_> = (0..8)
        .map(|i| {
            let (stores, req) = (stores.clone(), later(&f, 10 + i));
            tokio::spawn(async move { stores.reservations.hold(req).await })
        })
        .collect();
    for r in racers {
        assert!(matches!(
            r.await.expect("task"),
            Err(Error::Refused(Refusal::SalesPaused))
        ));
    }
    assert_eq!(f.ga().await, (10, 0, 0));
    let resumed = stores
        .sales
        .set_sale_state(move_to(&f, SaleState::Open, T0))
        .await
        .expect("resume");
    // the record's instant never goes back in time
    assert_eq!(resumed.switch.since, paused.switch.since);
    stores.reservations.hold(later(&f, 20)).await.expect("hold");
    assert_eq!(f.ga().await, (9, 1, 0));
    let records = stores
        .reservations
        .audit_page(&AuditQuery {
            scope: AuditScope::User(organiser().owner().expect("owner")),
            order: PageOrder::OldestFirst,
            after: None,
            limit: 10,
        })
        .await
        .expect("audit");
    assert_eq!(records.items.len(), 2);
    assert_eq!(records.items[0].subject, Subject::Session(f.session));
    assert_eq!(records.items[0].from.as_deref(), Some("OPEN"));
    assert_eq!(records.items[0].to, "PAUSED");
    assert_eq!(
        kinds(&stores, &f).await,
        vec![
            ChangeKind::SalePaused,
            ChangeKind::SaleResumed,
            ChangeKind::HoldCreated
        ]
    );
    let feed = stores.feed.changes(f.session, 0, 10).await.expect("feed");
    assert_eq!(feed.changes[0].subject, Some(Subject::Session(f.session)));
}

#[tokio::test]
async fn close_and_cancel_refuse_holds_rebookings_and_capacity() {
    let store = common::isolated_store(1).await;
    let stores = store.stores();
    let f = Fixture::general(stores.clone(), 10, Duration::ZERO).await;
    let closed = stores
        .sales
        .set_sale_state(move_to(
            &f,
            SaleState::Closed,
            T0.plus(Duration::from_secs(3)),
        ))
        .await
        .expect("close");
    let at = closed.switch.since.expect("since");
    assert!(matches!(
        stores.reservations.hold(later(&f, 4)).await,
        Err(Error::Refused(Refusal::SalesClosed { closed_at })) if closed_at == at
    ));
    assert!(matches!(
        stores
            .sales
            .set_sale_state(move_to(&f, SaleState::Open, T0))
            .await,
        Err(Error::Refused(Refusal::IllegalSaleTransition { .. }))
    ));
    let cancelled = stores
        .sales
        .set_sale_state(move_to(
            &f,
            SaleState::Cancelled,
            T0.plus(Duration::from_secs(6)),
        ))
        .await
        .expect("cancel");
    let at = cancelled.switch.since.expect("since");
    assert_eq!(
        stores.sales.sale_switch(f.session).await.expect("switch"),
        cancelled.switch
    );
    assert!(matches!(
        stores.reservations.hold(later(&f, 7)).await,
        Err(Error::Refused(Refusal::SessionCancelled { cancelled_at })) if cancelled_at == at
    ));
    let add = CapacityDelta::AddUnits {
        grade: grade("GA"),
        units: 1,
    };
    assert!(matches!(
        stores.sales.change_capacity(capacity(&f, add, "")).await,
        Err(Error::Refused(Refusal::SessionCancelled { .. }))
    ));
    assert_eq!(f.ga().await, (10, 0, 0));
}

#[tokio::test]
async fn units_added_and_removed_keep_counts_plan_trail_and_feed_exact() {
    let store = common::isolated_store(64).await;
    let stores = store.stores();
    let f = Fixture::general(stores.clone(), 10, Duration::ZERO).await;
    stores.reservations.hold(later(&f, 1)).await.expect("hold");
    let out = stores
        .sales
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
        (15, 14, 1)
    );
    assert_eq!(f.ga().await, (14, 1, 0));
    let session = stores.inventory.session(f.session).await.expect("session");
    assert_eq!(session.inventory, out.plan);
    let event = stores.inventory.event(f.event.id).await.expect("event");
    assert_eq!(event.sessions[0].inventory, out.plan);
    stores
        .inventory
        .create_event(&f.event)
        .await
        .expect("a repeat of the definition as created");
    assert!(matches!(
        stores
            .sales
            .change_capacity(capacity(
                &f,
                CapacityDelta::RemoveUnits {
                    grade: grade("GA"),
                    units: 15,
                },
                "",
            ))
            .await,
        Err(Error::Refused(Refusal::CapacityInUse { removable: 14, .. }))
    ));
    let out = stores
        .sales
        .change_capacity(capacity(
            &f,
            CapacityDelta::RemoveUnits {
                grade: grade("GA"),
                units: 14,
            },
            "",
        ))
        .await
        .expect("remove");
    assert_eq!(f.ga().await, (0, 1, 0));
    assert!(matches!(&out.plan, InventoryPlan::General { grades } if grades[0].capacity == 1));
    let counts = stores.inventory.counts(f.session).await.expect("counts");
    assert_eq!(counts.grades[0].capacity, 1);
    assert_eq!(counts.holds.held, 1);
    assert_eq!(
        kinds(&stores, &f).await,
        vec![
            ChangeKind::HoldCreated,
            ChangeKind::CapacityChanged,
            ChangeKind::CapacityChanged,
            ChangeKind::SoldOut
        ]
    );
    let trail = stores
        .reservations
        .audit(&AuditScope::Session(f.session), 10)
        .await
        .expect("trail");
    let changed: Vec<_> = trail.iter().filter(|r| r.to == CAPACITY_CHANGED).collect();
    assert_eq!(changed.len(), 2);
    assert_eq!(changed[0].reason, "grade GA: +5 units: second balcony");
    assert_eq!(changed[1].reason, "grade GA: -14 units");
    assert_eq!(changed[0].from, None);
    assert!(matches!(
        stores.reservations.hold(later(&f, 9)).await,
        Err(Error::Refused(Refusal::SoldOut { .. }))
    ));
}

fn krw(n: i64) -> Money {
    Money::new(n, Currency::new("KRW").expect("currency")).expect("money")
}

fn seat_hold(f: &Fixture, i: usize, seats: &[&str]) -> NewHold {
    NewHold {
        id: HoldId::new_at(T0),
        selection: Selection::Seats {
            seats: seats.iter().map(|s| seat(s)).collect(),
        },
        admission: AdmissionCheck::NotRequired,
        ..f.new_hold(&user(i), 1, T0, T0.plus(Duration::from_secs(600)))
    }
}

#[tokio::test]
async fn seats_withdrawn_are_not_sold_and_seats_added_elsewhere_are() {
    let store = common::isolated_store(64).await;
    let other = common::another_server(&store).await;
    let stores = store.stores();
    let f = Fixture::seated(stores.clone(), &["A1", "A2", "A3"]).await;
    // the second server prices with the plan as it first read it
    other
        .stores()
        .reservations
        .hold(seat_hold(&f, 0, &["A1"]))
        .await
        .expect("hold A1");
    let remove = |s: &str| CapacityDelta::RemoveSeats {
        seats: vec![seat(s)],
    };
    assert!(matches!(
        stores.sales.change_capacity(capacity(&f, remove("A1"), "")).await,
        Err(Error::Refused(Refusal::SeatsUnavailable { seats })) if seats == vec![seat("A1")]
    ));
    let out = stores
        .sales
        .change_capacity(capacity(&f, remove("A2"), ""))
        .await
        .expect("remove A2");
    assert_eq!(out.grades[0].capacity, 2);
    let snap = f.snapshot().await;
    assert_eq!(snap.seats.len(), 2);
    assert!(matches!(
        other
            .stores()
            .reservations
            .hold(seat_hold(&f, 1, &["A2"]))
            .await,
        Err(Error::Refused(Refusal::UnknownItem { .. }))
    ));
    let new_seat = |s: &str| Seat {
        id: seat(s),
        section: "Floor".into(),
        grade: grade("R"),
        price: krw(99_000),
    };
    assert!(matches!(
        stores
            .sales
            .change_capacity(capacity(
                &f,
                CapacityDelta::AddSeats {
                    seats: vec![new_seat("A3")]
                },
                ""
            ))
            .await,
        Err(Error::Refused(Refusal::SeatsExist { .. }))
    ));
    stores
        .sales
        .change_capacity(capacity(
            &f,
            CapacityDelta::AddSeats {
                seats: vec![new_seat("A2"), new_seat("A4")],
            },
            "",
        ))
        .await
        .expect("add A2 back and A4");
    let held = other
        .stores()
        .reservations
        .hold(seat_hold(&f, 2, &["A2", "A4"]))
        .await
        .expect("seats added through the other server");
    assert_eq!(held.units(), 2);
    let snap = f.snapshot().await;
    assert_eq!(snap.seats.len(), 4);
    assert_eq!(snap.totals().held, 3);
}

#[tokio::test]
async fn rebookings_meet_the_switch_and_withdrawn_seats() {
    let store = common::isolated_store(64).await;
    let stores = store.stores();
    let f = Fixture::seated(stores.clone(), &["A1", "A2"]).await;
    let held = stores
        .reservations
        .hold(seat_hold(&f, 0, &["A1"]))
        .await
        .expect("hold A1");
    stores
        .reservations
        .transition(TransitionRequest {
            hold: held.id,
            to: HoldState::Released,
            now: T0.plus(Duration::from_secs(1)),
            actor: Actor::User(user(0)),
            reason: "released".into(),
            correlation_id: None,
            payment_ref: None,
        })
        .await
        .expect("release");
    let rebook = || RebookRequest {
        hold: held.id,
        new_id: HoldId::new_at(T0.plus(Duration::from_secs(2))),
        payment_ref: "late".into(),
        per_user_limit: None,
        actor: Actor::System("checkout".into()),
        now: T0.plus(Duration::from_secs(2)),
    };
    stores
        .sales
        .set_sale_state(move_to(
            &f,
            SaleState::Paused,
            T0.plus(Duration::from_secs(2)),
        ))
        .await
        .expect("pause");
    assert!(matches!(
        stores.reservations.rebook(rebook()).await,
        Err(Error::Refused(Refusal::SalesPaused))
    ));
    stores
        .sales
        .set_sale_state(move_to(
            &f,
            SaleState::Open,
            T0.plus(Duration::from_secs(2)),
        ))
        .await
        .expect("resume");
    stores
        .sales
        .change_capacity(capacity(
            &f,
            CapacityDelta::RemoveSeats {
                seats: vec![seat("A1")],
            },
            "",
        ))
        .await
        .expect("A1 is free again");
    assert!(matches!(
        stores.reservations.rebook(rebook()).await,
        Err(Error::Refused(Refusal::SeatsUnavailable { seats })) if seats == vec![seat("A1")]
    ));
    let snap = f.snapshot().await;
    assert_eq!((snap.seats.len(), snap.totals().sold), (1, 0));
}
