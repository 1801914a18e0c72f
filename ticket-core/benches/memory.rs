//! In-memory backend throughput: holds and queue joins through the services, on 1 and 2
//! runtime threads, one hot session and spread over 64 sessions, beside a raw baseline (a
//! mutex-guarded counter decrement plus a map insert: the least an in-process hold can cost).
//!
//! Run: `cargo bench -p ticket-core --bench memory`
// `criterion_group!` defines a public function it cannot document.
#![allow(missing_docs)]

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use parking_lot::Mutex;
use ticket_core::memory::MemoryStore;
use ticket_core::model::hold::Selection;
use ticket_core::model::inventory::{GradeStock, InventoryPlan, MAX_SESSION_CAPACITY};
use ticket_core::model::money::{Currency, Money};
use ticket_core::model::session::{Event, SalesWindow, Session};
use ticket_core::service::HoldCommand;
use ticket_core::testkit::{T0, grade};
use ticket_core::{EventId, ManualClock, SessionId, TicketRush, TimeLimits, UserId};

/// Concurrent tasks per run: enough to keep every runtime thread busy.
const TASKS: usize = 64;

fn runtime(threads: usize) -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(threads)
        .build()
        .expect("runtime")
}

/// Fresh services with `sessions` general-admission sessions of the largest capacity, on sale,
/// without queue or per-user limit (the bench measures the hold path itself).
async fn setup(sessions: usize) -> (TicketRush, Vec<SessionId>) {
    let clock = ManualClock::new(T0);
    let rush = TicketRush::new(
        MemoryStore::new().stores(),
        Arc::new(clock),
        TimeLimits::default(),
    )
    .expect("limits");
    let event_id = EventId::new_at(T0);
    let price = Money::new(50_000, Currency::new("KRW").expect("currency")).expect("price");
    let ids: Vec<SessionId> = (0..sessions).map(|_| SessionId::new_at(T0)).collect();
    let event = Event {
        id: event_id,
        name: "bench".into(),
        sessions: ids
            .iter()
            .map(|id| Session {
                id: *id,
                event_id,
                starts_at: T0.plus(Duration::from_secs(86_400 * 2)),
                sales: SalesWindow {
                    open_at: T0,
                    close_at: T0.plus(Duration::from_secs(86_400)),
                },
                inventory: InventoryPlan::General {
                    grades: vec![GradeStock {
                        grade: grade("GA"),
                        capacity: MAX_SESSION_CAPACITY,
                        price,
                    }],
                },
            })
            .collect(),
    };
    rush.create_event(&event).await.expect("event");
    for id in &ids {
        let mut p = rush.stores().policies.policy(*id).await.expect("policy");
        p.queue.require_admission = false;
        p.queue.max_waiting = None;
        p.max_units_per_user = None;
        rush.set_policy(*id, &p).await.expect("policy");
    }
    (rush, ids)
}

fn users(n: usize) -> Arc<Vec<UserId>> {
    Arc::new(
        (0..n)
            .map(|i| UserId::new(format!("u{i}")).expect("user"))
            .collect(),
    )
}

#[derive(Clone, Copy)]
enum Op {
    Hold,
    Join,
}

/// Runs `iters` operations split over [`TASKS`] tasks and returns the elapsed time.
fn run(rt: &tokio::runtime::Runtime, op: Op, sessions: usize, iters: u64) -> Duration {
    let n = usize::try_from(iters).expect("iters fit usize");
    let users = users(n);
    rt.block_on(async {
        let (rush, ids) = setup(sessions).await;
        let ids = Arc::new(ids);
        let start = Instant::now();
        let tasks: Vec<_> = (0..TASKS)
            .map(|t| {
                let (rush, ids, users) = (rush.clone(), ids.clone(), users.clone());
                tokio::spawn(async move {
                    for i in (t..n).step_by(TASKS) {
                        let session = ids[i % ids.len()];
                        match op {
                            Op::Hold => {
                                let cmd = HoldCommand {
                                    session,
                                    user: users[i].clone(),
                                    tier: None,
                                    selection: Selection::Units {
                                        grade: grade("GA"),
                                        quantity: 1,
                                    },
                                };
                                rush.holds.hold(cmd, None).await.expect("hold");
                            }
                            Op::Join => {
                                rush.admission.join(session, &users[i]).await.expect("join");
                            }
                        }
                    }
                })
            })
            .collect();
        for t in tasks {
            t.await.expect("task");
        }
        start.elapsed()
    })
}

/// The raw baseline: a mutex-guarded stock counter decrement and a map insert per operation.
fn run_raw(rt: &tokio::runtime::Runtime, iters: u64) -> Duration {
    let n = usize::try_from(iters).expect("iters fit usize");
    rt.block_on(async {
        let state = Arc::new(Mutex::new((u64::MAX, HashMap::<usize, u64>::new())));
        let start = Instant::now();
        let tasks: Vec<_> = (0..TASKS)
            .map(|t| {
                let state = state.clone();
                tokio::spawn(async move {
                    for i in (t..n).step_by(TASKS) {
                        let mut g = state.lock();
                        if g.0 >= 1 {
                            g.0 -= 1;
                            g.1.insert(i, 1);
                        }
                    }
                })
            })
            .collect();
        for t in tasks {
            t.await.expect("task");
        }
        start.elapsed()
    })
}

fn bench(c: &mut Criterion) {
    for threads in [1usize, 2] {
        let rt = runtime(threads);
        let mut g = c.benchmark_group(format!("memory/{threads}-thread"));
        g.throughput(Throughput::Elements(1));
        g.measurement_time(Duration::from_secs(5));
        g.bench_function("raw-baseline", |b| {
            b.iter_custom(|iters| run_raw(&rt, iters))
        });
        for (name, sessions) in [("hot-session", 1usize), ("64-sessions", 64)] {
            g.bench_with_input(BenchmarkId::new("hold", name), &sessions, |b, &s| {
                b.iter_custom(|iters| run(&rt, Op::Hold, s, iters))
            });
            g.bench_with_input(BenchmarkId::new("join", name), &sessions, |b, &s| {
                b.iter_custom(|iters| run(&rt, Op::Join, s, iters))
            });
        }
        g.finish();
    }
}

criterion_group!(benches, bench);
criterion_main!(benches);
