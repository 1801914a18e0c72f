//! A session on fresh stores, a manual clock, and assertions shared by the tests.

use std::sync::Arc;
use std::time::Duration;

use crate::clock::{ManualClock, Timestamp};
use crate::config::TimeLimits;
use crate::ids::{EventId, HoldId, SessionId, UserId};
use crate::model::audit::Actor;
use crate::model::hold::{AdmissionCheck, Hold, HoldState, NewHold, Selection};
use crate::model::inventory::{
    Grade, GradeStock, GradeTotals, InventoryPlan, InventorySnapshot, Seat, SeatId,
};
use crate::model::money::{Currency, Money};
use crate::model::policy::SalesPolicy;
use crate::model::queue::{AdmissionRound, QueueStats, QueueTicket, QueueView};
use crate::model::session::{Event, SalesWindow, Session};
use crate::service::{HoldCommand, TicketRush};
use crate::store::Stores;

/// The instant every fixture starts at (public sales open here unless a test says otherwise).
pub const T0: Timestamp = Timestamp::from_millis(1_900_000_000_000);

/// How long the fixture's sales window lasts.
pub const SALES_WINDOW: Duration = Duration::from_secs(30 * 86_400);

/// One event with one session on fresh stores, driven by a [`ManualClock`].
pub struct Fixture {
    /// The services.
    pub rush: TicketRush,
    /// The clock the services read; advance it to move time.
    pub clock: ManualClock,
    /// The event.
    pub event: Event,
    /// The session under test.
    pub session: SessionId,
}

fn krw(amount: i64) -> Money {
    Money::new(amount, Currency::new("KRW").expect("valid currency")).expect("valid amount")
}

/// A grade name.
pub fn grade(name: &str) -> Grade {
    Grade::new(name).expect("valid grade")
}

/// A seat id.
pub fn seat(name: &str) -> SeatId {
    SeatId::new(name).expect("valid seat id")
}

/// User number `i`.
pub fn user(i: usize) -> UserId {
    UserId::new(format!("user-{i}")).expect("valid user id")
}

impl Fixture {
    /// A general-admission session with `capacity` units of grade `GA`, public sales open at
    /// [`T0`] + `opens_in`, the clock at [`T0`], and a policy without queue or per-user limit
    /// (tests switch them on).
    pub async fn general(stores: Stores, capacity: u32, opens_in: Duration) -> Self {
        let plan = InventoryPlan::General {
            grades: vec![GradeStock {
                grade: grade("GA"),
                capacity,
                price: krw(50_000),
            }],
        };
        Self::with_plan(stores, plan, opens_in).await
    }

    /// Like [`Fixture::general`] with 10 units of `GA` and 10 of `VIP`, public sales opening
    /// at [`T0`] + `opens_in`.
    pub async fn graded(stores: Stores, opens_in: Duration) -> Self {
        let plan = InventoryPlan::General {
            grades: vec![
                GradeStock {
                    grade: grade("GA"),
                    capacity: 10,
                    price: krw(50_000),
                },
                GradeStock {
                    grade: grade("VIP"),
                    capacity: 10,
                    price: krw(150_000),
                },
            ],
        };
        Self::with_plan(stores, plan, opens_in).await
    }

    /// A seated session with the given seats (grade `R`, section `Floor`).
    pub async fn seated(stores: Stores, seats: &[&str]) -> Self {
        let plan = InventoryPlan::Seated {
            seats: seats
                .iter()
                .map(|s| Seat {
                    id: seat(s),
                    section: "Floor".into(),
                    grade: grade("R"),
                    price: krw(99_000),
                })
                .collect(),
        };
        Self::with_plan(stores, plan, Duration::ZERO).await
    }

    async fn with_plan(stores: Stores, plan: InventoryPlan, opens_in: Duration) -> Self {
        let clock = ManualClock::new(T0);
        let rush = TicketRush::new(stores, Arc::new(clock.clone()), TimeLimits::default())
            .expect("default limits are valid");
        let event_id = EventId::new_at(T0);
        let session = SessionId::new_at(T0);
        let open_at = T0.plus(opens_in);
        let event = Event {
            id: event_id,
            name: "Conformance".into(),
            sessions: vec![Session {
                id: session,
                event_id,
                starts_at: open_at.plus(SALES_WINDOW + Duration::from_secs(86_400)),
                sales: SalesWindow {
                    open_at,
                    close_at: open_at.plus(SALES_WINDOW),
                },
                inventory: plan,
            }],
        };
        rush.create_event(&event).await.expect("create event");
        let fixture = Self {
            rush,
            clock,
            event,
            session,
        };
        fixture
            .set_policy(|p| {
                p.queue.require_admission = false;
                p.max_units_per_user = None;
            })
            .await;
        fixture
    }

    /// Changes the session's policy starting from the current one.
    pub async fn set_policy(&self, change: impl FnOnce(&mut SalesPolicy)) {
        let mut p = self
            .rush
            .stores()
            .policies
            .policy(self.session)
            .await
            .expect("read policy");
        change(&mut p);
        self.rush
            .set_policy(self.session, &p)
            .await
            .expect("policy is valid");
    }

    /// Joins the queue as [`user`] `i`, panicking on failure.
    pub async fn join(&self, i: usize) -> QueueTicket {
        self.rush
            .admission
            .join(self.session, &user(i))
            .await
            .expect("join")
    }

    /// [`user`] `i`'s queue view, panicking on failure.
    pub async fn view(&self, i: usize) -> QueueView {
        self.rush
            .admission
            .view(self.session, &user(i))
            .await
            .expect("view")
    }

    /// One admission round, panicking on failure.
    pub async fn admit(&self) -> AdmissionRound {
        self.rush
            .admission
            .admit_next(self.session)
            .await
            .expect("admit")
    }

    /// Queue figures now.
    pub async fn stats(&self) -> QueueStats {
        let now = crate::clock::Clock::now(&self.clock);
        self.rush
            .stores()
            .queue
            .stats(self.session, now)
            .await
            .expect("stats")
    }

    /// Joins users `0..n` in order.
    pub async fn join_all(&self, n: usize) {
        for i in 0..n {
            self.join(i).await;
        }
    }

    /// A hold command for `quantity` units of `GA`.
    pub fn units(&self, user: &UserId, quantity: u32) -> HoldCommand {
        HoldCommand {
            session: self.session,
            user: user.clone(),
            tier: None,
            selection: Selection::Units {
                grade: grade("GA"),
                quantity,
            },
        }
    }

    /// A store-level request (what `Reservations::hold` takes) for `quantity` units of `GA`
    /// made by `user` at `now`, expiring at `expires_at`, with a fresh id, no per-user limit
    /// and no admission; tests override fields with struct update syntax.
    pub fn new_hold(
        &self,
        user: &UserId,
        quantity: u32,
        now: Timestamp,
        expires_at: Timestamp,
    ) -> NewHold {
        NewHold {
            id: HoldId::new_at(now),
            session: self.session,
            user: user.clone(),
            selection: Selection::Units {
                grade: grade("GA"),
                quantity,
            },
            now,
            expires_at,
            per_user_limit: None,
            admission: AdmissionCheck::NotRequired,
            actor: Actor::User(user.clone()),
            correlation_id: None,
        }
    }

    /// A hold command for the given seats.
    pub fn seats(&self, user: &UserId, seats: &[&str]) -> HoldCommand {
        HoldCommand {
            session: self.session,
            user: user.clone(),
            tier: None,
            selection: Selection::Seats {
                seats: seats.iter().map(|s| seat(s)).collect(),
            },
        }
    }

    /// Holds `quantity` GA units for `user`, panicking on failure.
    pub async fn hold(&self, user: &UserId, quantity: u32) -> Hold {
        self.rush
            .holds
            .hold(self.units(user, quantity), None)
            .await
            .expect("hold")
    }

    /// A snapshot of the session's stock, asserting conservation (`available + held + sold
    /// == capacity`, per grade and in total) and seat/counter agreement.
    pub async fn snapshot(&self) -> InventorySnapshot {
        let snap = self
            .rush
            .stores()
            .inventory
            .snapshot(self.session)
            .await
            .expect("snapshot");
        for g in &snap.grades {
            assert!(
                g.is_conserved(),
                "conservation broken for grade {}: {g:?}",
                g.grade
            );
        }
        if !snap.seats.is_empty() {
            use crate::model::inventory::SeatState;
            let count = |st| snap.seats.iter().filter(|s| s.state == st).count() as u64;
            let t = snap.totals();
            assert_eq!(
                (
                    count(SeatState::Available),
                    count(SeatState::Held),
                    count(SeatState::Sold)
                ),
                (t.available, t.held, t.sold),
                "seat states disagree with the counters"
            );
        }
        let t = snap.totals();
        assert!(t.is_conserved(), "conservation broken: {t:?}");
        snap
    }

    /// Totals over all grades (conservation asserted).
    pub async fn totals(&self) -> GradeTotals {
        self.snapshot().await.totals()
    }

    /// Counters `(available, held, sold)` of grade `GA` (conservation asserted).
    pub async fn ga(&self) -> (u32, u32, u32) {
        let snap = self.snapshot().await;
        let g = snap.grade(&grade("GA")).expect("GA grade");
        (g.available, g.held, g.sold)
    }

    /// The hold as stored now.
    pub async fn reload(&self, hold: &Hold) -> Hold {
        self.rush
            .stores()
            .reservations
            .get(hold.id)
            .await
            .expect("hold exists")
    }

    /// Drives a hold from HELD to CONFIRMED.
    pub async fn pay(&self, hold: &Hold) -> Hold {
        let r = format!("pay-{}", hold.id);
        self.rush
            .payments
            .start(hold.id, &hold.user, &r)
            .await
            .expect("start payment");
        match self
            .rush
            .payments
            .succeeded(hold.id, &r)
            .await
            .expect("payment")
        {
            crate::service::Settlement::Confirmed(h) => {
                assert_eq!(h.state, HoldState::Confirmed);
                h
            }
            other => panic!("expected a confirmation, got {other:?}"),
        }
    }
}
