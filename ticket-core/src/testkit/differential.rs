//! Differential check: a backend and the in-memory reference run the same steps through the
//! services and must answer alike and end in the same state. Backends run it under proptest,
//! so random interleavings of joins, admissions, holds, payments, releases, cancellations,
//! time jumps and sweeps are compared, not only the scenarios the suite names.

use std::time::Duration;

use proptest::prelude::*;

use super::{Fixture, user};
use crate::clock::Clock;
use crate::error::Error;
use crate::memory::MemoryStore;
use crate::model::hold::Hold;
use crate::service::{FailureOutcome, Settlement};
use crate::store::Stores;

/// Units in the session: small, so sell-outs happen.
const CAPACITY: u32 = 6;

/// One step of a scenario. Users and holds are small indexes so that random steps meet.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Step {
    /// User joins the queue.
    Join(usize),
    /// User leaves the queue.
    Leave(usize),
    /// One admission round.
    Admit,
    /// User holds `quantity` GA units.
    Hold {
        /// The user.
        user: usize,
        /// Units asked for.
        quantity: u32,
    },
    /// Checkout starts for the hold made `n`-th (modulo the holds made so far).
    Start(usize),
    /// The `n`-th hold's payment succeeded.
    Succeed(usize),
    /// The `n`-th hold's payment failed.
    Fail(usize),
    /// The `n`-th hold's owner releases it.
    Release(usize),
    /// The `n`-th hold's owner cancels it.
    Cancel(usize),
    /// Time moves on by this many seconds.
    Advance(u64),
    /// One sweep of up to 10 due holds.
    Sweep,
}

/// One side of the comparison: a fixture and the holds it made, in order.
struct Side {
    f: Fixture,
    holds: Vec<Hold>,
}

/// An error with what differs between backends (ids) left out.
fn error_summary(e: &Error) -> String {
    match e {
        Error::Refused(r) => format!("refused {r:?}"),
        Error::NotFound { kind, .. } => format!("not found {kind}"),
        Error::Invalid(i) => format!("invalid {i:?}"),
        other => format!("{other:?}"),
    }
}

fn hold_summary(h: &Hold) -> String {
    format!("{:?} {} units", h.state, h.units())
}

impl Side {
    async fn new(stores: Stores) -> Self {
        let f = Fixture::general(stores, CAPACITY, Duration::ZERO).await;
        f.set_policy(|p| {
            p.queue.max_active = 3;
            p.max_units_per_user = Some(3);
        })
        .await;
        Self {
            f,
            holds: Vec::new(),
        }
    }

    fn nth(&self, n: usize) -> Option<Hold> {
        if self.holds.is_empty() {
            return None;
        }
        self.holds.get(n % self.holds.len()).cloned()
    }

    /// Runs one step; returns its answer with ids left out.
    async fn run(&mut self, step: Step) -> String {
        let rush = &self.f.rush;
        let session = self.f.session;
        let out: Result<String, Error> = match step {
            Step::Join(u) => rush
                .admission
                .join(session, &user(u))
                .await
                .map(|t| format!("ticket {:?} seq {:?}", t.state, t.seq)),
            Step::Leave(u) => rush
                .admission
                .leave(session, &user(u))
                .await
                .map(|t| format!("left {:?}", t.state)),
            Step::Admit => rush.admission.admit_next(session).await.map(|r| {
                let users: Vec<_> = r.admitted.iter().map(|t| t.user.clone()).collect();
                format!("admitted {users:?} {:?}", r.limit)
            }),
            Step::Hold { user: u, quantity } => {
                match rush
                    .holds
                    .hold(self.f.units(&user(u), quantity), None)
                    .await
                {
                    Ok(h) => {
                        let s = hold_summary(&h);
                        self.holds.push(h);
                        Ok(s)
                    }
                    Err(e) => Err(e),
                }
            }
            Step::Advance(secs) => {
                self.f.clock.advance(Duration::from_secs(secs));
                Ok(format!("now {:?}", self.f.clock.now()))
            }
            Step::Sweep => rush
                .expiry
                .sweep(10)
                .await
                .map(|r| format!("swept {} admitted {}", r.expired.len(), r.admitted)),
            Step::Start(n)
            | Step::Succeed(n)
            | Step::Fail(n)
            | Step::Release(n)
            | Step::Cancel(n) => {
                let Some(h) = self.nth(n) else {
                    return "no hold".into();
                };
                let pay = format!("pay-{}", n % self.holds.len());
                match step {
                    Step::Start(_) => rush
                        .payments
                        .start(h.id, &h.user, &pay)
                        .await
                        .map(|h| hold_summary(&h)),
                    Step::Succeed(_) => {
                        rush.payments.succeeded(h.id, &pay).await.map(|s| match s {
                            Settlement::Confirmed(h) => format!("confirmed {}", hold_summary(&h)),
                            Settlement::Rebooked { ended, confirmed } => format!(
                                "rebooked {} as {}",
                                hold_summary(&ended),
                                hold_summary(&confirmed)
                            ),
                            Settlement::Refund {
                                hold,
                                reason,
                                first,
                                ..
                            } => format!("refund {} {reason:?} first {first}", hold_summary(&hold)),
                        })
                    }
                    Step::Fail(_) => {
                        rush.payments
                            .failed(h.id, &pay, "declined")
                            .await
                            .map(|o| match o {
                                FailureOutcome::Failed(h) => format!("failed {}", hold_summary(&h)),
                                FailureOutcome::Ignored(h) => {
                                    format!("ignored {}", hold_summary(&h))
                                }
                            })
                    }
                    Step::Release(_) => rush
                        .holds
                        .release(h.id, &h.user)
                        .await
                        .map(|h| hold_summary(&h)),
                    _ => rush
                        .cancellations
                        .cancel(h.id, &h.user, "changed plans")
                        .await
                        .map(|h| hold_summary(&h)),
                }
            }
        };
        match out {
            Ok(s) => s,
            Err(e) => error_summary(&e),
        }
    }

    /// The end state: counters, every hold's state, queue figures.
    async fn end_state(&self) -> String {
        let snap = self.f.snapshot().await; // asserts conservation
        let mut states = Vec::new();
        for h in &self.holds {
            let h = self.f.reload(h).await;
            states.push(hold_summary(&h));
        }
        format!("{:?} {states:?} {:?}", snap.grades, self.f.stats().await)
    }
}

/// Runs `steps` on `stores` and on a fresh [`MemoryStore`], comparing every answer and the
/// end state; panics at the first difference, naming the step.
pub async fn agrees_with_the_memory_backend(stores: Stores, steps: &[Step]) {
    let mut reference = Side::new(MemoryStore::new().stores()).await;
    let mut backend = Side::new(stores).await;
    for (i, step) in steps.iter().enumerate() {
        let want = reference.run(*step).await;
        let got = backend.run(*step).await;
        assert_eq!(got, want, "step {i} {step:?} answered differently");
    }
    assert_eq!(
        backend.end_state().await,
        reference.end_state().await,
        "end states differ after {steps:?}"
    );
}

/// Random scenarios of up to `max_len` steps among 5 users, with time jumps around the hold
/// and admission TTLs.
pub fn scenarios(max_len: usize) -> impl Strategy<Value = Vec<Step>> {
    let step = prop_oneof![
        3 => (0usize..5).prop_map(Step::Join),
        1 => (0usize..5).prop_map(Step::Leave),
        3 => Just(Step::Admit),
        4 => ((0usize..5), (1u32..4)).prop_map(|(user, quantity)| Step::Hold { user, quantity }),
        2 => (0usize..8).prop_map(Step::Start),
        2 => (0usize..8).prop_map(Step::Succeed),
        1 => (0usize..8).prop_map(Step::Fail),
        1 => (0usize..8).prop_map(Step::Release),
        1 => (0usize..8).prop_map(Step::Cancel),
        1 => prop_oneof![Just(30u64), Just(119), Just(301), Just(900)].prop_map(Step::Advance),
        1 => Just(Step::Sweep),
    ];
    proptest::collection::vec(step, 1..max_len)
}

/// [`agrees_with_the_memory_backend`] on random [`scenarios`] of up to 40 steps:
/// `PROPTEST_CASES` cases (default 32), each on fresh stores from `fresh`, dropped after the
/// case (sweeps are global, so cases must not see each other's holds; a store that cleans up
/// when dropped leaves nothing behind). Builds its own runtime: call it from a plain `#[test]`.
pub fn agrees_on_random_scenarios<F, Fut>(fresh: F)
where
    F: Fn() -> Fut,
    Fut: std::future::Future<Output = Stores>,
{
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime");
    let cases = std::env::var("PROPTEST_CASES")
        .ok()
        .and_then(|c| c.parse().ok())
        .unwrap_or(32);
    let mut runner = proptest::test_runner::TestRunner::new(proptest::test_runner::Config {
        cases,
        ..proptest::test_runner::Config::default()
    });
    let result = runner.run(&scenarios(40), |steps| {
        rt.block_on(async { agrees_with_the_memory_backend(fresh().await, &steps).await });
        Ok(())
    });
    if let Err(e) = result {
        panic!("{e}");
    }
}
