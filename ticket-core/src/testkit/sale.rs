//! The organiser's controls: the sale switch and capacity changes.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicI64, Ordering};
use std::time::Duration;

use super::fixture::{Fixture, grade, seat, user};
use crate::error::{Error, Refusal};
use crate::model::audit::{Actor, AuditScope, Subject};
use crate::model::change::ChangeKind;
use crate::model::hold::{HoldState, RebookRequest};
use crate::model::inventory::{InventoryPlan, Seat};
use crate::model::money::{Currency, Money};
use crate::model::page::{AuditQuery, PageOrder};
use crate::model::sale::{CapacityDelta, SaleState};
use crate::store::Stores;

fn organiser() -> Actor {
    Actor::Operator("organiser-1".into())
}

async fn all_changes(f: &Fixture) -> Vec<crate::model::change::Change> {
    let mut out = Vec::new();
    let mut after = 0;
    loop {
        let page = f
            .rush
            .stores()
            .feed
            .changes(f.session, after, 500)
            .await
            .expect("read the feed");
        if page.changes.is_empty() {
            return out;
        }
        after = page.changes.last().map_or(after, |c| c.seq);
        out.extend(page.changes);
    }
}

async fn session_records(f: &Fixture) -> Vec<crate::model::audit::AuditRecord> {
    f.rush
        .stores()
        .reservations
        .audit_page(&AuditQuery {
            scope: AuditScope::Session(f.session),
            order: PageOrder::OldestFirst,
            after: None,
            limit: 500,
        })
        .await
        .expect("read the session's trail")
        .items
        .into_iter()
        .filter(|r| matches!(r.subject, Subject::Session(_)))
        .collect()
}

fn refused(r: Result<impl std::fmt::Debug, Error>) -> Refusal {
    match r {
        Err(Error::Refused(x)) => x,
        other => panic!("expected a refusal, got {other:?}"),
    }
}

/// The switch moves along the lifecycle (OPEN ⇄ PAUSED → CLOSED → CANCELLED); a repeat
/// changes nothing; an illegal move is refused and changes nothing; each move is one
/// session audit record (owner: the actor) and one change in the feed, in order.
pub async fn the_sale_switch_follows_its_lifecycle_with_one_record_and_change_per_move(
    stores: Stores,
) {
    let f = Fixture::general(stores, 10, Duration::ZERO).await;
    let sales = &f.rush.sales;
    let sw = sales.switch(f.session).await.expect("read the switch");
    assert_eq!((sw.state, sw.since), (SaleState::Open, None), "starts OPEN");

    let p = sales.pause(f.session, organiser(), "artist delayed").await;
    let p = p.expect("pause");
    assert!(p.changed && p.switch.state == SaleState::Paused);
    assert_eq!(p.switch.reason.as_deref(), Some("artist delayed"));
    assert!(p.switch.since.is_some(), "a moved switch says since when");
    let again = sales.pause(f.session, organiser(), "again").await;
    assert!(!again.expect("repeat").changed, "a repeat changes nothing");
    assert!(
        sales
            .resume(f.session, organiser(), "")
            .await
            .expect("resume")
            .changed
    );
    assert!(
        sales
            .pause(f.session, organiser(), "")
            .await
            .expect("pause")
            .changed
    );
    assert!(
        sales
            .close(f.session, organiser(), "done")
            .await
            .expect("close")
            .changed
    );
    assert_eq!(
        refused(sales.resume(f.session, organiser(), "").await),
        Refusal::IllegalSaleTransition {
            from: SaleState::Closed,
            to: SaleState::Open
        },
        "a closed sale does not reopen"
    );
    assert!(matches!(
        refused(sales.pause(f.session, organiser(), "").await),
        Refusal::IllegalSaleTransition { .. }
    ));
    let c = sales
        .cancel_show(f.session, organiser(), "venue flooded")
        .await;
    assert!(c.expect("cancel").changed);
    assert!(
        !sales
            .cancel_show(f.session, organiser(), "")
            .await
            .expect("repeat")
            .changed
    );
    assert!(matches!(
        refused(sales.close(f.session, organiser(), "").await),
        Refusal::IllegalSaleTransition { .. }
    ));
    let sw = sales.switch(f.session).await.expect("read the switch");
    assert_eq!(sw.state, SaleState::Cancelled);
    assert_eq!(sw.reason.as_deref(), Some("venue flooded"));

    let moves: Vec<(Option<String>, String)> = session_records(&f)
        .await
        .into_iter()
        .map(|r| {
            assert_eq!(r.owner.as_str(), "organiser-1", "owner is the actor's id");
            assert_eq!(r.actor, organiser());
            (r.from, r.to)
        })
        .collect();
    let m = |a: &str, b: &str| (Some(a.to_owned()), b.to_owned());
    assert_eq!(
        moves,
        vec![
            m("OPEN", "PAUSED"),
            m("PAUSED", "OPEN"),
            m("OPEN", "PAUSED"),
            m("PAUSED", "CLOSED"),
            m("CLOSED", "CANCELLED"),
        ],
        "one record per move, none for repeats or refusals"
    );
    let kinds: Vec<ChangeKind> = all_changes(&f)
        .await
        .into_iter()
        .filter(|c| matches!(c.subject, Some(Subject::Session(_))))
        .map(|c| c.kind)
        .collect();
    assert_eq!(
        kinds,
        vec![
            ChangeKind::SalePaused,
            ChangeKind::SaleResumed,
            ChangeKind::SalePaused,
            ChangeKind::SaleClosed,
            ChangeKind::SaleCancelled,
        ],
        "one change per move, in order"
    );
    let by_owner = f
        .rush
        .stores()
        .reservations
        .audit_page(&AuditQuery {
            scope: AuditScope::User(organiser().owner().expect("owner")),
            order: PageOrder::OldestFirst,
            after: None,
            limit: 500,
        })
        .await
        .expect("the organiser's trail");
    assert_eq!(
        by_owner.items.len(),
        5,
        "the organiser's trail lists the moves"
    );
}

/// Paused: new holds and late re-bookings are refused with `SalesPaused` and change nothing;
/// a hold made before pays; resuming sells again. Closed and cancelled refuse too.
pub async fn a_paused_sale_refuses_new_holds_and_lets_earlier_holds_pay(stores: Stores) {
    let f = Fixture::general(stores, 10, Duration::ZERO).await;
    let before = f.hold(&user(1), 2).await;
    let late = f.hold(&user(2), 1).await;
    f.rush
        .stores()
        .reservations
        .transition(f.rush_request(late.id, HoldState::Released))
        .await
        .expect("release");
    f.rush
        .sales
        .pause(f.session, organiser(), "")
        .await
        .expect("pause");
    let counts_before = f.ga().await;
    assert_eq!(
        refused(f.rush.holds.hold(f.units(&user(3), 1), None).await),
        Refusal::SalesPaused
    );
    let rebook = f
        .rush
        .stores()
        .reservations
        .rebook(RebookRequest {
            hold: late.id,
            new_id: crate::ids::HoldId::new_at(super::T0),
            payment_ref: "late-pay".into(),
            per_user_limit: None,
            actor: Actor::system("test"),
            now: super::T0,
        })
        .await;
    assert_eq!(
        refused(rebook),
        Refusal::SalesPaused,
        "no re-booking while paused"
    );
    assert_eq!(f.ga().await, counts_before, "refusals change nothing");
    let paid = f.pay(&before).await;
    assert_eq!(paid.state, HoldState::Confirmed, "a hold made before pays");
    f.rush
        .sales
        .resume(f.session, organiser(), "")
        .await
        .expect("resume");
    f.hold(&user(3), 1).await;
    f.rush
        .sales
        .close(f.session, organiser(), "")
        .await
        .expect("close");
    assert!(matches!(
        refused(f.rush.holds.hold(f.units(&user(4), 1), None).await),
        Refusal::SalesClosed { .. }
    ));
    f.rush
        .sales
        .cancel_show(f.session, organiser(), "")
        .await
        .expect("cancel");
    assert!(matches!(
        refused(f.rush.holds.hold(f.units(&user(4), 1), None).await),
        Refusal::SessionCancelled { .. }
    ));
    assert!(matches!(
        refused(
            f.rush
                .sales
                .change_capacity(
                    f.session,
                    CapacityDelta::AddUnits {
                        grade: grade("GA"),
                        units: 1
                    },
                    organiser(),
                    ""
                )
                .await
        ),
        Refusal::SessionCancelled { .. }
    ));
    f.snapshot().await;
}

/// 64 tasks hold while the organiser pauses: once the pause is in the feed, no hold follows
/// it (the switch is read in the same atomic step as the stock), and every hold tried after
/// the pause returned is refused.
pub async fn no_hold_lands_after_a_pause_under_race(stores: Stores) {
    let f = Arc::new(Fixture::general(stores, 100_000, Duration::ZERO).await);
    let paused = Arc::new(AtomicBool::new(false));
    let mut tasks = Vec::new();
    for t in 0..64usize {
        let (f, paused) = (f.clone(), paused.clone());
        // Each task holds until it is refused after the pause returned, so holds are in
        // flight while the pause runs, whatever the backend's speed.
        tasks.push(tokio::spawn(async move {
            let mut made = 0u32;
            for i in 0..1_000usize {
                let was_paused = paused.load(Ordering::SeqCst);
                let r = f
                    .rush
                    .holds
                    .hold(f.units(&user(t * 1000 + i), 1), None)
                    .await;
                match r {
                    Ok(_) => {
                        assert!(!was_paused, "a hold landed after the pause returned");
                        made += 1;
                    }
                    Err(Error::Refused(Refusal::SalesPaused)) if was_paused => return made,
                    Err(Error::Refused(Refusal::SalesPaused)) => {}
                    Err(e) => panic!("unexpected {e:?}"),
                }
            }
            panic!("task {t} was never refused after the pause");
        }));
    }
    // Let the holds flow before pausing.
    while f.ga().await.1 < 64 {
        tokio::task::yield_now().await;
    }
    f.rush
        .sales
        .pause(f.session, organiser(), "kill switch")
        .await
        .expect("pause");
    paused.store(true, Ordering::SeqCst);
    let mut made = 0;
    for t in tasks {
        made += t.await.expect("task");
    }
    assert!(made >= 64, "holds were made before the pause");
    let changes = all_changes(&f).await;
    let pause_at = changes
        .iter()
        .position(|c| c.kind == ChangeKind::SalePaused)
        .expect("the pause is in the feed");
    assert!(
        changes[pause_at..]
            .iter()
            .all(|c| c.kind != ChangeKind::HoldCreated),
        "a hold was created after the pause in the feed's order"
    );
    let (_, held, _) = f.ga().await;
    let created = changes
        .iter()
        .filter(|c| c.kind == ChangeKind::HoldCreated)
        .count();
    assert_eq!(
        u64::from(held),
        created as u64,
        "every hold made is counted"
    );
}

/// Units added are on sale at once and shown by `session`, `event`, counts and snapshot;
/// only units on sale can be removed (`CapacityInUse` changes nothing); each change is a
/// record and a `CapacityChanged` change; creating the event again as first defined stays
/// idempotent.
pub async fn capacity_changes_move_plan_and_stock_together_and_keep_what_is_taken(stores: Stores) {
    let f = Fixture::general(stores, 10, Duration::ZERO).await;
    let sold = f.hold(&user(1), 4).await;
    f.pay(&sold).await;
    f.hold(&user(2), 3).await;
    let sales = &f.rush.sales;
    let out = sales
        .change_capacity(
            f.session,
            CapacityDelta::AddUnits {
                grade: grade("GA"),
                units: 5,
            },
            organiser(),
            "second balcony opened",
        )
        .await
        .expect("add units");
    assert_eq!(out.grades.len(), 1);
    let g = &out.grades[0];
    assert_eq!((g.capacity, g.available, g.held, g.sold), (15, 8, 3, 4));
    let plan_capacity = |p: &InventoryPlan| match p {
        InventoryPlan::General { grades } => grades[0].capacity,
        other => panic!("{other:?}"),
    };
    assert_eq!(plan_capacity(&out.plan), 15);
    let session = f
        .rush
        .stores()
        .inventory
        .session(f.session)
        .await
        .expect("session");
    assert_eq!(
        plan_capacity(&session.inventory),
        15,
        "session answers the plan now"
    );
    let event = f
        .rush
        .stores()
        .inventory
        .event(f.event.id)
        .await
        .expect("event");
    assert_eq!(plan_capacity(&event.sessions[0].inventory), 15);
    f.rush
        .create_event(&f.event)
        .await
        .expect("creating the event again as first defined stays idempotent");

    let before = f.ga().await;
    assert_eq!(
        refused(
            sales
                .change_capacity(
                    f.session,
                    CapacityDelta::RemoveUnits {
                        grade: grade("GA"),
                        units: 9
                    },
                    organiser(),
                    ""
                )
                .await
        ),
        Refusal::CapacityInUse {
            grade: grade("GA"),
            requested: 9,
            removable: 8
        },
        "held and sold units never go"
    );
    assert_eq!(f.ga().await, before, "a refused change changes nothing");
    sales
        .change_capacity(
            f.session,
            CapacityDelta::RemoveUnits {
                grade: grade("GA"),
                units: 8,
            },
            organiser(),
            "",
        )
        .await
        .expect("remove every unit on sale");
    assert_eq!(f.ga().await, (0, 3, 4));
    let counts = f
        .rush
        .stores()
        .inventory
        .counts(f.session)
        .await
        .expect("counts");
    assert!(
        counts.grades.iter().all(|g| g.is_consistent()),
        "{counts:?}"
    );
    assert_eq!(counts.grades[0].capacity, 7);
    assert!(matches!(
        refused(f.rush.holds.hold(f.units(&user(5), 1), None).await),
        Refusal::SoldOut { .. }
    ));
    let records: Vec<String> = session_records(&f)
        .await
        .into_iter()
        .map(|r| r.to)
        .collect();
    assert_eq!(records, vec!["CAPACITY_CHANGED", "CAPACITY_CHANGED"]);
    let kinds: Vec<ChangeKind> = all_changes(&f).await.into_iter().map(|c| c.kind).collect();
    assert_eq!(
        kinds
            .iter()
            .filter(|k| **k == ChangeKind::CapacityChanged)
            .count(),
        2
    );
    assert_eq!(
        kinds.last(),
        Some(&ChangeKind::SoldOut),
        "removing the last unit on sale sells out"
    );
}

/// Seated: seats added can be held; a held seat cannot be removed (`SeatsUnavailable`); a
/// removed seat can no longer be held; an existing seat cannot be added twice.
pub async fn seats_can_be_added_and_free_seats_removed(stores: Stores) {
    let f = Fixture::seated(stores, &["A-1", "A-2"]).await;
    let krw = |n| Money::new(n, Currency::new("KRW").expect("KRW")).expect("money");
    let new_seat = |id: &str| Seat {
        id: seat(id),
        section: "Balcony".into(),
        grade: grade("R"),
        price: krw(99_000),
    };
    f.rush
        .holds
        .hold(f.seats(&user(1), &["A-1"]), None)
        .await
        .expect("hold A-1");
    let sales = &f.rush.sales;
    sales
        .change_capacity(
            f.session,
            CapacityDelta::AddSeats {
                seats: vec![new_seat("B-1"), new_seat("B-2")],
            },
            organiser(),
            "",
        )
        .await
        .expect("add seats");
    f.rush
        .holds
        .hold(f.seats(&user(2), &["B-1"]), None)
        .await
        .expect("a new seat can be held");
    assert_eq!(
        refused(
            sales
                .change_capacity(
                    f.session,
                    CapacityDelta::AddSeats {
                        seats: vec![new_seat("A-2")]
                    },
                    organiser(),
                    ""
                )
                .await
        ),
        Refusal::SeatsExist {
            seats: vec![seat("A-2")]
        }
    );
    let before = f.totals().await;
    assert!(matches!(
        refused(
            sales
                .change_capacity(
                    f.session,
                    CapacityDelta::RemoveSeats {
                        seats: vec![seat("A-2"), seat("A-1")]
                    },
                    organiser(),
                    ""
                )
                .await
        ),
        Refusal::SeatsUnavailable { seats } if seats == vec![seat("A-1")]
    ));
    assert_eq!(
        f.totals().await,
        before,
        "a refused removal changes nothing"
    );
    sales
        .change_capacity(
            f.session,
            CapacityDelta::RemoveSeats {
                seats: vec![seat("A-2")],
            },
            organiser(),
            "",
        )
        .await
        .expect("remove a free seat");
    let r = f.rush.holds.hold(f.seats(&user(3), &["A-2"]), None).await;
    assert!(
        matches!(
            refused(r),
            Refusal::UnknownItem { .. } | Refusal::SeatsUnavailable { .. }
        ),
        "a removed seat cannot be held"
    );
    let t = f.totals().await;
    assert_eq!(
        (t.available, t.held, t.sold),
        (1, 2, 0),
        "A-1 and B-1 held, B-2 free, A-2 gone"
    );
    let snap = f.snapshot().await;
    assert!(snap.seats.iter().all(|s| s.seat.id != seat("A-2")));
    assert!(snap.seats.iter().any(|s| s.seat.id == seat("B-2")));
}

/// 64 tasks hold, pay and release while the organiser adds and removes units: at every
/// instant a read can observe, `available + held + sold == capacity` and nothing is
/// negative; at the end, capacity is what was created plus what was added minus what was
/// removed.
pub async fn capacity_changes_race_holds_and_payments_without_losing_a_unit(stores: Stores) {
    let f = Arc::new(Fixture::general(stores, 200, Duration::ZERO).await);
    let done = Arc::new(AtomicBool::new(false));
    let net = Arc::new(AtomicI64::new(0));
    let mut tasks = Vec::new();
    for t in 0..64usize {
        let f = f.clone();
        tasks.push(tokio::spawn(async move {
            for i in 0..6usize {
                let u = user(t * 100 + i);
                match f
                    .rush
                    .holds
                    .hold(f.units(&u, 1 + (i % 2) as u32), None)
                    .await
                {
                    Ok(h) if i % 3 == 0 => {
                        f.rush.holds.release(h.id, &u).await.expect("release");
                    }
                    Ok(h) => {
                        f.pay(&h).await;
                    }
                    Err(Error::Refused(Refusal::SoldOut { .. })) => {}
                    Err(e) => panic!("unexpected {e:?}"),
                }
            }
        }));
    }
    let organiser_task = {
        let (f, done, net) = (f.clone(), done.clone(), net.clone());
        tokio::spawn(async move {
            let mut i = 0u32;
            while !done.load(Ordering::SeqCst) {
                let units = 1 + i % 7;
                let delta = if i.is_multiple_of(2) {
                    CapacityDelta::AddUnits {
                        grade: grade("GA"),
                        units,
                    }
                } else {
                    CapacityDelta::RemoveUnits {
                        grade: grade("GA"),
                        units,
                    }
                };
                match f
                    .rush
                    .sales
                    .change_capacity(f.session, delta, organiser(), "")
                    .await
                {
                    Ok(_) if i.is_multiple_of(2) => {
                        net.fetch_add(i64::from(units), Ordering::SeqCst);
                    }
                    Ok(_) => {
                        net.fetch_sub(i64::from(units), Ordering::SeqCst);
                    }
                    Err(Error::Refused(Refusal::CapacityInUse { .. })) => {}
                    Err(e) => panic!("unexpected {e:?}"),
                }
                i += 1;
                tokio::task::yield_now().await;
            }
        })
    };
    let sampler = {
        let (f, done) = (f.clone(), done.clone());
        tokio::spawn(async move {
            let mut reads = 0u32;
            while !done.load(Ordering::SeqCst) {
                let c = f
                    .rush
                    .stores()
                    .inventory
                    .counts(f.session)
                    .await
                    .expect("counts");
                for g in &c.grades {
                    assert!(g.is_consistent(), "counts broke conservation: {g:?}");
                }
                f.snapshot().await;
                reads += 1;
                tokio::task::yield_now().await;
            }
            reads
        })
    };
    for t in tasks {
        t.await.expect("buyer task");
    }
    done.store(true, Ordering::SeqCst);
    organiser_task.await.expect("organiser task");
    let reads = sampler.await.expect("sampler");
    assert!(reads > 0, "the sampler read during the race");
    let counts = f
        .rush
        .stores()
        .inventory
        .counts(f.session)
        .await
        .expect("counts");
    let g = &counts.grades[0];
    assert!(g.is_consistent(), "{g:?}");
    assert_eq!(
        i64::from(g.capacity),
        200 + net.load(Ordering::SeqCst),
        "capacity is created + added - removed"
    );
    assert_eq!(
        u64::from(g.sold),
        sold_units(&f).await,
        "sold units are the confirmed holds' units"
    );
}

async fn sold_units(f: &Fixture) -> u64 {
    let mut total = 0u64;
    for t in 0..64usize {
        for i in 0..6usize {
            for h in f
                .rush
                .stores()
                .reservations
                .holds_of(f.session, &user(t * 100 + i))
                .await
                .expect("holds of")
            {
                if h.state == HoldState::Confirmed {
                    total += u64::from(h.units());
                }
            }
        }
    }
    total
}

impl Fixture {
    /// A transition request for hold `id` to `to`, now, by the system.
    pub fn rush_request(
        &self,
        id: crate::ids::HoldId,
        to: HoldState,
    ) -> crate::model::hold::TransitionRequest {
        crate::model::hold::TransitionRequest {
            hold: id,
            to,
            now: crate::clock::Clock::now(&self.clock),
            actor: Actor::system("test"),
            reason: "test".into(),
            correlation_id: None,
            payment_ref: None,
        }
    }
}
