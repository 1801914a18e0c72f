//! Inventory and holds: event creation and listing, no oversell, all-or-nothing, per-user
//! limits, admission.

use std::collections::HashSet;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use super::fixture::{Fixture, T0, user};
use crate::error::{Error, InvalidInput, Refusal};
use crate::model::hold::HoldState;
use crate::model::session::Event;
use crate::store::Stores;

/// `create_event` is idempotent for an identical event; a different definition under the
/// same id is refused and changes nothing.
pub async fn create_event_is_idempotent_and_conflicts_change_nothing(stores: Stores) {
    let f = Fixture::general(stores, 5, Duration::ZERO).await;
    f.rush
        .create_event(&f.event)
        .await
        .expect("same event again is Ok");
    let mut other: Event = f.event.clone();
    other.name = "Another name".into();
    let err = f.rush.create_event(&other).await.expect_err("conflict");
    assert!(
        matches!(err, Error::Invalid(InvalidInput::Definition(_))),
        "{err:?}"
    );
    let stored = f
        .rush
        .stores()
        .inventory
        .event(f.event.id)
        .await
        .expect("event");
    assert_eq!(
        stored, f.event,
        "a refused definition changed the stored event"
    );
    assert_eq!(f.ga().await, (5, 0, 0));
    let missing = crate::ids::SessionId::new_at(T0);
    assert!(matches!(
        f.rush.stores().inventory.snapshot(missing).await,
        Err(Error::NotFound { .. })
    ));
}

/// `events` lists every stored event in id order, each once over keyset pages; a page
/// after the last event and a page of `limit == 0` are empty.
pub async fn events_are_listed_once_in_id_order_by_keyset_pages(stores: Stores) {
    let f = Fixture::general(stores, 5, Duration::ZERO).await;
    let inventory = f.rush.stores().inventory.clone();
    let mut expected = vec![f.event.id];
    for i in 1..5u64 {
        let at = T0.plus(Duration::from_millis(i));
        let mut event = f.event.clone();
        event.id = crate::ids::EventId::new_at(at);
        event.name = format!("Listed {i}");
        for s in &mut event.sessions {
            s.id = crate::ids::SessionId::new_at(at);
            s.event_id = event.id;
        }
        f.rush.create_event(&event).await.expect("create event");
        expected.push(event.id);
    }
    expected.sort();

    let mut listed = Vec::new();
    let mut after = None;
    let mut pages = 0;
    loop {
        let page = inventory.events(after, 2).await.expect("events page");
        assert!(page.len() <= 2, "a page holds more than its limit");
        pages += 1;
        assert!(pages <= 4, "paging does not end: {listed:?}");
        let Some(last) = page.last() else { break };
        after = Some(last.id);
        for e in &page {
            let stored = inventory
                .event(e.id)
                .await
                .expect("listed event reads back");
            assert_eq!(*e, stored, "a listed event differs from the stored one");
        }
        listed.extend(page.iter().map(|e| e.id));
    }
    assert_eq!(
        listed, expected,
        "events are not listed once each in id order"
    );
    let tail = inventory
        .events(expected.last().copied(), 2)
        .await
        .expect("tail");
    assert!(
        tail.is_empty(),
        "events listed after the last one: {tail:?}"
    );
    let none = inventory.events(None, 0).await.expect("limit 0");
    assert!(none.is_empty(), "limit 0 listed events");
    let all = inventory.events(None, 100).await.expect("one page");
    assert_eq!(
        all.iter().map(|e| e.id).collect::<Vec<_>>(),
        expected,
        "a single large page disagrees with the keyset pages"
    );
}

/// 64 tasks race for the last units: exactly as many units as exist are held, and
/// `available + held + sold == capacity` at every observed instant.
pub async fn hold_never_oversells_under_race(stores: Stores) {
    const CAPACITY: u32 = 10;
    let f = Arc::new(Fixture::general(stores, CAPACITY, Duration::ZERO).await);
    let done = Arc::new(AtomicBool::new(false));
    let watcher = {
        let (f, done) = (f.clone(), done.clone());
        tokio::spawn(async move {
            let mut checks = 0u32;
            while !done.load(Ordering::SeqCst) {
                let (a, h, s) = f.ga().await;
                assert_eq!(a + h + s, CAPACITY);
                checks += 1;
                tokio::task::yield_now().await;
            }
            checks
        })
    };
    let racers: Vec<_> = (0..64)
        .map(|i| {
            let f = f.clone();
            tokio::spawn(async move {
                let qty = if i % 3 == 0 { 2 } else { 1 };
                f.rush.holds.hold(f.units(&user(i), qty), None).await
            })
        })
        .collect();
    let mut held = 0;
    for r in racers {
        match r.await.expect("task") {
            Ok(h) => held += h.units(),
            Err(Error::Refused(Refusal::SoldOut { .. })) => {}
            Err(e) => panic!("unexpected error: {e:?}"),
        }
    }
    done.store(true, Ordering::SeqCst);
    let checks = watcher.await.expect("watcher");
    assert!(checks > 0);
    let (a, h, s) = f.ga().await;
    assert_eq!(h, held, "held counter disagrees with the holds granted");
    assert!(held <= CAPACITY, "oversold: {held} of {CAPACITY}");
    assert!(
        held >= CAPACITY - 1,
        "stock left unsold while racers were refused: {a} left"
    );
    assert_eq!((a, s), (CAPACITY - held, 0));
}

/// 64 tasks race for overlapping seat sets, then 64 for one seat: every seat is held at most
/// once, and a hold takes all of its seats or none.
pub async fn seat_holds_are_all_or_nothing_under_race(stores: Stores) {
    let names: Vec<String> = (1..=8).map(|i| format!("A-{i}")).collect();
    let mut refs: Vec<&str> = names.iter().map(String::as_str).collect();
    refs.push("B-1");
    let f = Arc::new(Fixture::seated(stores, &refs).await);
    let racers: Vec<_> = (0..64usize)
        .map(|i| {
            let f = f.clone();
            let names = names.clone();
            tokio::spawn(async move {
                // Pairs that overlap, (A-2,A-3), ... and the single last seat.
                let a = &names[i % 8];
                let b = &names[(i + 1) % 8];
                let want: Vec<&str> = if i % 5 == 0 { vec![a] } else { vec![a, b] };
                f.rush.holds.hold(f.seats(&user(i), &want), None).await
            })
        })
        .collect();
    let mut taken = HashSet::new();
    for r in racers {
        match r.await.expect("task") {
            Ok(h) => {
                for s in h.items.seat_ids() {
                    assert!(taken.insert(s.clone()), "seat {s} held twice");
                }
            }
            Err(Error::Refused(Refusal::SeatsUnavailable { seats })) => {
                assert!(!seats.is_empty());
            }
            Err(e) => panic!("unexpected error: {e:?}"),
        }
    }
    let t = f.totals().await;
    assert_eq!(
        t.held,
        taken.len() as u64,
        "a refused hold left seats behind"
    );
    for s in &f.snapshot().await.seats {
        let held = s.state == crate::model::inventory::SeatState::Held;
        assert_eq!(held, taken.contains(&s.seat.id), "seat {} state", s.seat.id);
    }
    // Then 64 tasks race for the very same seat, B-1: exactly one wins.
    let racers: Vec<_> = (100..164usize)
        .map(|i| {
            let f = f.clone();
            tokio::spawn(async move { f.rush.holds.hold(f.seats(&user(i), &["B-1"]), None).await })
        })
        .collect();
    let mut winners = 0;
    for r in racers {
        match r.await.expect("task") {
            Ok(_) => winners += 1,
            Err(Error::Refused(Refusal::SeatsUnavailable { .. })) => {}
            Err(e) => panic!("unexpected error: {e:?}"),
        }
    }
    assert_eq!(winners, 1, "seat B-1 held by {winners} racers");
    assert_eq!(f.totals().await.held, taken.len() as u64 + 1);
}

/// One user's concurrent holds never exceed the per-user limit (held + confirmed).
pub async fn per_user_limit_holds_under_concurrent_holds(stores: Stores) {
    let f = Arc::new(Fixture::general(stores, 100, Duration::ZERO).await);
    f.set_policy(|p| p.max_units_per_user = Some(4)).await;
    let buyer = user(1);
    let first = f.hold(&buyer, 1).await;
    f.pay(&first).await;
    let racers: Vec<_> = (0..16)
        .map(|_| {
            let (f, buyer) = (f.clone(), buyer.clone());
            tokio::spawn(async move { f.rush.holds.hold(f.units(&buyer, 1), None).await })
        })
        .collect();
    let mut ok = 0;
    for r in racers {
        match r.await.expect("task") {
            Ok(_) => ok += 1,
            Err(Error::Refused(Refusal::LimitExceeded { limit: 4, .. })) => {}
            Err(e) => panic!("unexpected error: {e:?}"),
        }
    }
    assert_eq!(ok, 3, "limit 4 with 1 confirmed allows exactly 3 more");
    assert_eq!(f.ga().await, (96, 3, 1));
    // Another user is unaffected.
    f.hold(&user(2), 4).await;
    // An expired hold stops counting at once, even before the sweeper runs.
    f.clock.advance(f.rush.limits().hold_ttl);
    f.hold(&buyer, 3).await;
}

/// With admission required, a hold needs an ACTIVE ticket, and consumes it (USED).
pub async fn hold_requires_and_consumes_an_active_admission(stores: Stores) {
    let f = Fixture::general(stores, 10, Duration::ZERO).await;
    f.set_policy(|p| p.queue.require_admission = true).await;
    let u = user(1);
    let err = f
        .rush
        .holds
        .hold(f.units(&u, 1), None)
        .await
        .expect_err("not admitted");
    assert!(
        matches!(err, Error::Refused(Refusal::NotAdmitted)),
        "{err:?}"
    );
    f.rush.admission.join(f.session, &u).await.expect("join");
    let err = f
        .rush
        .holds
        .hold(f.units(&u, 1), None)
        .await
        .expect_err("still waiting");
    assert!(
        matches!(err, Error::Refused(Refusal::NotAdmitted)),
        "{err:?}"
    );
    let round = f.admit().await;
    assert_eq!(round.admitted.len(), 1);
    let hold = f.hold(&u, 2).await;
    assert_eq!(hold.admission, Some(round.admitted[0].id));
    let view = f.rush.admission.view(f.session, &u).await.expect("view");
    assert_eq!(view.ticket.state, crate::model::queue::TicketState::Used);
    let err = f
        .rush
        .holds
        .hold(f.units(&u, 1), None)
        .await
        .expect_err("ticket used");
    assert!(
        matches!(err, Error::Refused(Refusal::NotAdmitted)),
        "{err:?}"
    );
    assert_eq!(f.ga().await, (8, 2, 0));
    assert_eq!(f.reload(&hold).await.state, HoldState::Held);
}
