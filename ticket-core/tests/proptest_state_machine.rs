//! Property tests: random sequences of join / admit / hold / pay / succeed / fail / release /
//! cancel / refund / sweep / leave / clock-advance on the in-memory backend never break the
//! invariants the library promises.

use std::collections::HashMap;
use std::time::Duration;

use proptest::prelude::*;
use ticket_core::model::audit::{Actor, AuditScope};
use ticket_core::model::hold::{Hold, HoldState};
use ticket_core::service::{RefundReason, Settlement};
use ticket_core::testkit::{Fixture, T0};
use ticket_core::{Clock, Error, HoldId, memory::MemoryStore};

const CAPACITY: u32 = 6;
const USERS: usize = 4;
const LIMIT: u32 = 3;
const MAX_ACTIVE: u32 = 2;

#[derive(Debug, Clone)]
enum Op {
    Join(usize),
    Leave(usize),
    Admit,
    Hold(usize, u32),
    Start(usize),
    Succeed(usize),
    Fail(usize),
    Release(usize),
    Cancel(usize),
    Refund(usize),
    Sweep,
    Advance(u64),
}

fn op() -> impl Strategy<Value = Op> {
    let u = 0..USERS;
    let h = 0..8usize;
    prop_oneof![
        3 => u.clone().prop_map(Op::Join),
        1 => u.clone().prop_map(Op::Leave),
        3 => Just(Op::Admit),
        4 => (u, 1..=3u32).prop_map(|(u, q)| Op::Hold(u, q)),
        3 => h.clone().prop_map(Op::Start),
        3 => h.clone().prop_map(Op::Succeed),
        1 => h.clone().prop_map(Op::Fail),
        1 => h.clone().prop_map(Op::Release),
        1 => h.clone().prop_map(Op::Cancel),
        1 => h.prop_map(Op::Refund),
        2 => Just(Op::Sweep),
        3 => (1..400u64).prop_map(Op::Advance),
    ]
}

/// Errors a random sequence may legitimately hit: refusals, invalid input, missing subjects.
fn expected(e: &Error) -> bool {
    matches!(
        e,
        Error::Refused(_) | Error::Invalid(_) | Error::NotFound { .. }
    )
}

async fn run(ops: Vec<Op>) -> Result<(), TestCaseError> {
    let f = Fixture::general(MemoryStore::new().stores(), CAPACITY, Duration::ZERO).await;
    f.set_policy(|p| {
        p.max_units_per_user = Some(LIMIT);
        p.queue.require_admission = true;
        p.queue.max_active = MAX_ACTIVE;
    })
    .await;
    let users: Vec<_> = (0..USERS).map(ticket_core::testkit::user).collect();
    let mut holds: Vec<HoldId> = Vec::new();
    let mut refunds_decided: HashMap<HoldId, u32> = HashMap::new();
    let pick = |holds: &Vec<HoldId>, i: usize| holds.get(i % holds.len().max(1)).copied();
    for op in ops {
        let result: Result<(), Error> = async {
            match &op {
                Op::Join(u) => f.rush.admission.join(f.session, &users[*u]).await.map(drop),
                Op::Leave(u) => f
                    .rush
                    .admission
                    .leave(f.session, &users[*u])
                    .await
                    .map(drop),
                Op::Admit => {
                    let round = f.rush.admission.admit_next(f.session).await?;
                    let seqs: Vec<_> = round.admitted.iter().map(|t| t.seq).collect();
                    assert!(
                        seqs.windows(2).all(|w| w[0] < w[1]),
                        "admission out of order"
                    );
                    Ok(())
                }
                Op::Hold(u, q) => {
                    let h = f.rush.holds.hold(f.units(&users[*u], *q), None).await?;
                    holds.push(h.id);
                    Ok(())
                }
                Op::Start(i) => match pick(&holds, *i) {
                    Some(id) => {
                        let h = f.rush.stores().reservations.get(id).await?;
                        f.rush
                            .payments
                            .start(id, &h.user, &format!("pay-{id}"))
                            .await
                            .map(drop)
                    }
                    None => Ok(()),
                },
                Op::Succeed(i) => match pick(&holds, *i) {
                    Some(id) => {
                        // "Never confirm an expired hold" is checked on the audit trail in
                        // `check`: a repeat report may return a hold confirmed earlier.
                        match f.rush.payments.succeeded(id, &format!("pay-{id}")).await? {
                            Settlement::Rebooked { confirmed, .. }
                                if !holds.contains(&confirmed.id) =>
                            {
                                holds.push(confirmed.id);
                            }
                            // Duplicate payments change no state and are deduplicated by the
                            // caller (documented); late-payment refunds must be decided once.
                            Settlement::Refund {
                                first: true,
                                hold,
                                reason: RefundReason::LatePayment,
                                ..
                            } => {
                                *refunds_decided.entry(hold.id).or_default() += 1;
                            }
                            _ => {}
                        }
                        Ok(())
                    }
                    None => Ok(()),
                },
                Op::Fail(i) => match pick(&holds, *i) {
                    Some(id) => f
                        .rush
                        .payments
                        .failed(id, &format!("pay-{id}"), "declined")
                        .await
                        .map(drop),
                    None => Ok(()),
                },
                Op::Release(i) => match pick(&holds, *i) {
                    Some(id) => {
                        let h = f.rush.stores().reservations.get(id).await?;
                        f.rush.holds.release(id, &h.user).await.map(drop)
                    }
                    None => Ok(()),
                },
                Op::Cancel(i) => match pick(&holds, *i) {
                    Some(id) => {
                        let h = f.rush.stores().reservations.get(id).await?;
                        f.rush
                            .cancellations
                            .cancel(id, &h.user, "prop")
                            .await
                            .map(drop)
                    }
                    None => Ok(()),
                },
                Op::Refund(i) => match pick(&holds, *i) {
                    Some(id) => f
                        .rush
                        .cancellations
                        .record_refund(id, "re", Actor::system("prop"))
                        .await
                        .map(drop),
                    None => Ok(()),
                },
                Op::Sweep => f.rush.expiry.sweep(100).await.map(drop),
                Op::Advance(s) => {
                    f.clock.advance(Duration::from_secs(*s));
                    Ok(())
                }
            }
        }
        .await;
        if let Err(e) = &result {
            prop_assert!(expected(e), "{op:?} failed unexpectedly: {e:?}");
        }
        check(&f, &holds).await?;
    }
    for (id, n) in &refunds_decided {
        prop_assert!(*n <= 1, "refund of {id} decided {n} times");
    }
    Ok(())
}

/// The invariants, checked after every step.
async fn check(f: &Fixture, ids: &[HoldId]) -> Result<(), TestCaseError> {
    let t = f.totals().await; // asserts available + held + sold == capacity
    let now = f.clock.now();
    let r = &f.rush.stores().reservations;
    let mut all: Vec<Hold> = Vec::new();
    for id in ids {
        all.push(
            r.get(*id)
                .await
                .map_err(|e| TestCaseError::fail(format!("{e:?}")))?,
        );
    }
    let units = |pred: &dyn Fn(&Hold) -> bool| -> u64 {
        all.iter()
            .filter(|h| pred(h))
            .map(|h| u64::from(h.units()))
            .sum()
    };
    prop_assert_eq!(
        t.held,
        units(&|h| h.state.is_live()),
        "held counter vs live holds"
    );
    prop_assert_eq!(
        t.sold,
        units(&|h| h.state == HoldState::Confirmed),
        "sold counter vs confirmed holds"
    );
    for u in 0..USERS {
        let user = ticket_core::testkit::user(u);
        let counted = units(&|h| h.user == user && h.state.counts_toward_limit() && !h.is_due(now));
        prop_assert!(
            counted <= u64::from(LIMIT),
            "user {u} holds {counted} > {LIMIT}"
        );
    }
    for h in &all {
        let trail = r
            .audit(&AuditScope::Hold(h.id), 100)
            .await
            .map_err(|e| TestCaseError::fail(format!("{e:?}")))?;
        let refunded = trail.iter().filter(|a| a.to == "REFUNDED").count();
        prop_assert!(refunded <= 1, "hold {} refunded {refunded} times", h.id);
        if h.rebooked_from.is_none() {
            for a in trail.iter().filter(|a| a.to == "CONFIRMED") {
                prop_assert!(a.at < h.expires_at, "hold {} confirmed after its TTL", h.id);
            }
        }
        prop_assert_eq!(trail.last().map(|a| a.to.as_str()), Some(h.state.as_str()));
    }
    let stats = f
        .rush
        .stores()
        .queue
        .stats(f.session, now)
        .await
        .map_err(|e| TestCaseError::fail(format!("{e:?}")))?;
    prop_assert!(
        stats.active <= u64::from(MAX_ACTIVE),
        "{} active > cap",
        stats.active
    );
    prop_assert!(now >= T0);
    Ok(())
}

proptest! {
    // 256 cases by default; PROPTEST_CASES=N for a longer search.

    #[test]
    fn random_flows_keep_every_invariant(ops in prop::collection::vec(op(), 1..60)) {
        let rt = tokio::runtime::Builder::new_current_thread().build().expect("runtime");
        rt.block_on(run(ops))?;
    }
}
