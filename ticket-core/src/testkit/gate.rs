//! Check-in at the gate: each ticket once, at its own session, only while CONFIRMED; and a
//! scan and a cancellation of one reservation exclude each other.

use std::sync::Arc;
use std::time::Duration;

use super::fixture::{Fixture, user};
use crate::error::{Error, InvalidInput, Refusal};
use crate::ids::{HoldId, SessionId};
use crate::model::audit::{Actor, AuditScope};
use crate::model::check_in::{CheckInOutcome, TicketUse};
use crate::model::hold::{Hold, HoldState};
use crate::store::Stores;

/// How many records the hold's audit trail holds.
async fn trail_len(f: &Fixture, h: &Hold) -> usize {
    f.rush
        .stores()
        .reservations
        .audit(&AuditScope::Hold(h.id), 1_000)
        .await
        .expect("audit")
        .len()
}

async fn scan(f: &Fixture, h: &Hold, ticket: u32, gate: &str) -> crate::Result<CheckInOutcome> {
    f.rush.gate.check_in(h.id, f.session, ticket, gate).await
}

async fn marks(f: &Fixture, h: &Hold) -> Vec<TicketUse> {
    f.rush.gate.check_ins(h.id).await.expect("check-ins")
}

fn refusal(r: crate::Result<CheckInOutcome>) -> Refusal {
    match r {
        Err(Error::Refused(r)) => r,
        other => panic!("expected a refusal, got {other:?}"),
    }
}

/// A ticket of a CONFIRMED reservation is checked in once: the first scan marks it and is
/// audited, every later scan answers the first mark and writes nothing. A ticket of another
/// session, a number the reservation does not have, a reservation that is not CONFIRMED and
/// an unknown one are refused and mark nothing.
pub async fn check_in_admits_each_ticket_once_at_its_own_session(stores: Stores) {
    let f = Fixture::general(stores, 10, Duration::ZERO).await;
    let h = f.hold(&user(1), 2).await;

    // Not confirmed yet: HELD, then PAYING.
    assert_eq!(
        refusal(scan(&f, &h, 1, "gate-a").await),
        Refusal::NotConfirmed {
            state: HoldState::Held
        }
    );
    f.rush
        .payments
        .start(h.id, &h.user, "pay-1")
        .await
        .expect("start");
    assert_eq!(
        refusal(scan(&f, &h, 1, "gate-a").await),
        Refusal::NotConfirmed {
            state: HoldState::Paying
        }
    );
    let paid = f
        .rush
        .payments
        .succeeded(h.id, "pay-1")
        .await
        .expect("paid");
    assert!(
        matches!(paid, crate::service::Settlement::Confirmed(_)),
        "{paid:?}"
    );
    let trail = trail_len(&f, &h).await;

    // Another session's gate, a ticket the reservation does not have.
    let elsewhere = SessionId::new_at(super::T0);
    assert_eq!(
        refusal(f.rush.gate.check_in(h.id, elsewhere, 1, "gate-a").await),
        Refusal::WrongSession { session: f.session },
        "a ticket is valid only at its own session"
    );
    assert_eq!(
        refusal(scan(&f, &h, 3, "gate-a").await),
        Refusal::TicketOutOfRange {
            ticket: 3,
            tickets: 2
        }
    );
    for (ticket, gate) in [(0, "gate-a"), (101, "gate-a"), (1, ""), (1, "g\na")] {
        let err = scan(&f, &h, ticket, gate).await.expect_err("malformed");
        assert!(
            matches!(err, Error::Invalid(InvalidInput::CheckIn(_))),
            "{ticket} {gate:?}: {err:?}"
        );
    }
    let missing = HoldId::new_at(super::T0);
    let err = f
        .rush
        .gate
        .check_in(missing, f.session, 1, "gate-a")
        .await
        .expect_err("unknown hold");
    assert!(matches!(err, Error::NotFound { .. }), "{err:?}");
    let err = f.rush.gate.check_ins(missing).await.expect_err("unknown");
    assert!(matches!(err, Error::NotFound { .. }), "{err:?}");
    assert!(marks(&f, &h).await.is_empty(), "refusals marked nothing");
    assert_eq!(trail_len(&f, &h).await, trail, "refusals audited nothing");

    // First use, then the first mark for every later scan, by any gate.
    let first_at = crate::clock::Clock::now(&f.clock);
    assert_eq!(
        scan(&f, &h, 2, "gate-a").await.expect("first scan"),
        CheckInOutcome::FirstUse { at: first_at }
    );
    f.clock.advance(Duration::from_secs(5));
    for gate in ["gate-a", "gate-b"] {
        assert_eq!(
            scan(&f, &h, 2, gate).await.expect("second scan"),
            CheckInOutcome::AlreadyUsed {
                at: first_at,
                gate: "gate-a".into()
            }
        );
    }
    assert_eq!(
        marks(&f, &h).await,
        vec![TicketUse {
            ticket: 2,
            at: first_at,
            gate: "gate-a".into()
        }]
    );
    // The other ticket is its own.
    let later = crate::clock::Clock::now(&f.clock);
    assert_eq!(
        scan(&f, &h, 1, "gate-b").await.expect("ticket 1"),
        CheckInOutcome::FirstUse { at: later }
    );
    assert_eq!(
        marks(&f, &h)
            .await
            .iter()
            .map(|m| (m.ticket, m.gate.as_str()))
            .collect::<Vec<_>>(),
        vec![(1, "gate-b"), (2, "gate-a")]
    );
    let records = f
        .rush
        .stores()
        .reservations
        .audit(&AuditScope::Hold(h.id), 1_000)
        .await
        .expect("audit");
    assert_eq!(records.len(), trail + 2, "one record per first use");
    let scan_record = &records[trail];
    assert_eq!(
        (
            scan_record.from.as_deref(),
            scan_record.to.as_str(),
            &scan_record.actor,
            scan_record.reason.as_str(),
            scan_record.at,
        ),
        (
            Some("VALID"),
            "USED",
            &Actor::Operator("gate-a".into()),
            "ticket 2 checked in",
            first_at
        )
    );
    assert_eq!(f.reload(&h).await.state, HoldState::Confirmed);
    assert_eq!(f.ga().await, (8, 0, 2), "a check-in moves no stock");
}

/// Once a ticket of a reservation went in, the reservation cannot be cancelled
/// (`TicketUsed`, nothing changes); once it is cancelled, its tickets are refused.
pub async fn check_in_and_cancel_refuse_each_other(stores: Stores) {
    let f = Fixture::general(stores, 10, Duration::ZERO).await;
    let scanned = f.hold(&user(1), 2).await;
    f.pay(&scanned).await;
    let at = crate::clock::Clock::now(&f.clock);
    scan(&f, &scanned, 1, "gate-a").await.expect("scan");
    f.clock.advance(Duration::from_secs(1));
    let trail = trail_len(&f, &scanned).await;
    for _ in 0..2 {
        let err = f
            .rush
            .cancellations
            .cancel(scanned.id, &user(1), "after going in")
            .await
            .expect_err("cancel after a scan");
        assert!(
            matches!(err, Error::Refused(Refusal::TicketUsed { first_used_at }) if first_used_at == at),
            "{err:?}"
        );
    }
    assert_eq!(f.reload(&scanned).await.state, HoldState::Confirmed);
    assert_eq!(trail_len(&f, &scanned).await, trail, "refusal audited");
    assert_eq!(f.ga().await, (8, 0, 2), "the scanned units stay sold");

    let cancelled = f.hold(&user(2), 1).await;
    f.pay(&cancelled).await;
    f.rush
        .cancellations
        .cancel(cancelled.id, &user(2), "cannot come")
        .await
        .expect("cancel before any scan");
    for state in [HoldState::Cancelled, HoldState::Refunded] {
        if state == HoldState::Refunded {
            f.rush
                .cancellations
                .record_refund(cancelled.id, "re_1", Actor::system("payments"))
                .await
                .expect("refund");
        }
        assert_eq!(
            refusal(scan(&f, &cancelled, 1, "gate-a").await),
            Refusal::NotConfirmed { state }
        );
    }
    assert!(marks(&f, &cancelled).await.is_empty());
    assert_eq!(f.ga().await, (8, 0, 2));
}

/// 200 rounds of a scan racing a cancellation of the same confirmed reservation, as real
/// tasks: in every round exactly one of them wins (the holder goes in and keeps the sale, or
/// is refunded and the ticket is refused), never both, and stock stays conserved.
pub async fn check_in_and_cancel_exclude_each_other_under_race(stores: Stores) {
    const ROUNDS: usize = 200;
    let f = Arc::new(Fixture::general(stores, ROUNDS as u32, Duration::ZERO).await);
    let mut scans_won = 0u32;
    for round in 0..ROUNDS {
        let u = user(round);
        let h = f.hold(&u, 1).await;
        f.pay(&h).await;
        let start = Arc::new(tokio::sync::Barrier::new(2));
        let scan_task = {
            let (f, start) = (f.clone(), start.clone());
            let id = h.id;
            tokio::spawn(async move {
                start.wait().await;
                f.rush.gate.check_in(id, f.session, 1, "gate-race").await
            })
        };
        let cancel_task = {
            let (f, start, u) = (f.clone(), start.clone(), u.clone());
            let id = h.id;
            tokio::spawn(async move {
                start.wait().await;
                f.rush.cancellations.cancel(id, &u, "race").await
            })
        };
        let scanned = scan_task.await.expect("scan task");
        let cancelled = cancel_task.await.expect("cancel task");
        match (&scanned, &cancelled) {
            (
                Ok(CheckInOutcome::FirstUse { .. }),
                Err(Error::Refused(Refusal::TicketUsed { .. })),
            ) => {
                scans_won += 1;
                assert_eq!(f.reload(&h).await.state, HoldState::Confirmed);
                assert_eq!(marks(&f, &h).await.len(), 1);
            }
            (
                Err(Error::Refused(Refusal::NotConfirmed {
                    state: HoldState::Cancelled,
                })),
                Ok(c),
            ) if c.state == HoldState::Cancelled => {
                assert!(
                    marks(&f, &h).await.is_empty(),
                    "round {round}: marked and cancelled"
                );
            }
            _ => panic!(
                "round {round}: scan {scanned:?} and cancel {cancelled:?}: not exactly one winner"
            ),
        }
    }
    let (available, held, sold) = f.ga().await;
    assert_eq!(
        (available, held, sold),
        (ROUNDS as u32 - scans_won, 0, scans_won),
        "a scanned ticket stays sold, a cancelled one is back on sale"
    );
}
