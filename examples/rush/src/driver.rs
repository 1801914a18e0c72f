//! The run: sets up one session, lets the crowd join in a burst, then sells in rounds until
//! nobody is left in line, and checks the store.
//!
//! # Rounds
//! Each round the host runs its timer admission round (`admit_next`) and reads the queue
//! figures; then the users who can act get a turn, played by up to `workers` tasks at once:
//! the first `active` users of the line look at their ticket (the admitted ones hold and
//! pay, decline or walk away), users who paid to cancel later cancel, and the head of the
//! line polls. The simulator keeps the line in join order, so the users the store admitted
//! (FIFO) are at its head; users further back are not polled every round (a real client
//! polls rarely while far from the head), which keeps a round's cost proportional to the
//! admissions, not to the crowd. When a poll sees the outlook `SoldOut`, every user in line
//! gets a turn: each sees it too and leaves the queue.
//!
//! # Time
//! With the system clock, a round in which nobody could act sleeps a little and runs the
//! sweeper. With the simulated clock ([`ticket_core::ManualClock`]) time stands still while
//! anybody can act; when nobody can, the clock jumps just far enough for the admission limit
//! that stopped the round: one second for the per-minute rate, the hold TTL (plus a second)
//! when the stock is all in holds, then the sweeper returns expired holds' units and wakes
//! the queue. At the end, on the simulated clock, the remaining holds are expired the same
//! way, so the final stock has no live hold.

use std::collections::VecDeque;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use payment_sandbox::client::HttpGateway;
use payment_sandbox::{Sandbox, SandboxConfig};
use ticket_core::model::inventory::{Grade, GradeStock, InventoryPlan};
use ticket_core::model::money::{Currency, Money};
use ticket_core::model::queue::AdmissionLimit;
use ticket_core::model::session::{Event, SalesWindow, Session};
use ticket_core::{
    Clock, EventId, HoldId, ManualClock, SessionId, Stores, SystemClock, TicketRush, Timestamp,
};

use crate::backend::Backend;
use crate::checks;
use crate::config::Config;
use crate::error::RushError;
use crate::http::HttpSeller;
use crate::metrics::{Op, Recorder, Samples, SharedRecorder};
use crate::progress::Progress;
use crate::report::{Report, Stages, Tally};
use crate::seller::{Library, Seller};
use crate::users::{Crowd, Shop, Turn, TurnResult, play};

/// Holds the sweeper expires per call.
const SWEEP_BATCH: usize = 10_000;
/// How often the sweeper runs while users act (system clock only).
const SWEEP_EVERY: Duration = Duration::from_secs(1);
/// Wall-clock pause of a round in which nobody could act (system clock only).
const IDLE_PAUSE: Duration = Duration::from_millis(20);

/// Runs the simulation described by `config` on a fresh prefix or schema of its backend
/// (in-process), or through the example server at `config.remote` (HTTP mode); checks the
/// store, removes the run's data (in-process, unless `config.keep`), and reports.
///
/// Refusals and failures of single operations do not fail the run: they are counted in the
/// report. An error means the run could not be carried out (configuration, unreachable
/// backend or server, setup or check reads failing).
pub async fn run(config: &Config) -> Result<Report, RushError> {
    config.validate()?;
    let started = Instant::now();
    let backend = Backend::connect(config).await?;
    let outcome = simulate(config, &backend, started).await;
    let cleanup_started = Instant::now();
    let cleaned = if config.keep || config.remote.is_some() {
        Ok(())
    } else {
        backend.cleanup().await
    };
    let mut report = outcome?;
    cleaned?;
    report.location = backend.location();
    report.kept = config.keep || config.remote.is_some();
    report.stages.cleanup_s = cleanup_started.elapsed().as_secs_f64();
    report.stages.total_s = started.elapsed().as_secs_f64();
    if let Backend::Memory(_) = backend {
        // Freeing a big in-memory store (millions of tickets and audit records) takes
        // seconds and nobody waits for it.
        std::thread::spawn(move || drop(backend));
    }
    Ok(report)
}

/// Price of one unit (KRW, as the project's examples use).
pub const UNIT_PRICE: i64 = 50_000;

/// The session of a run: one general-admission grade, on sale since a minute ago for 30
/// days, so every join is a FIFO join (no pre-queue draw).
pub(crate) fn session_of(config: &Config, now: Timestamp) -> Result<Event, RushError> {
    let bad = |e: ticket_core::InvalidInput| RushError::Config(e.to_string());
    let event = EventId::new_at(now);
    let session = SessionId::new_at(now);
    let day = Duration::from_secs(86_400);
    let open_at = now.minus(Duration::from_secs(60));
    let close_at = now.plus(30 * day);
    Ok(Event {
        id: event,
        name: "Rush simulation".into(),
        sessions: vec![Session {
            id: session,
            event_id: event,
            starts_at: close_at.plus(day),
            sales: SalesWindow { open_at, close_at },
            inventory: InventoryPlan::General {
                grades: vec![GradeStock {
                    grade: Grade::new("GA").map_err(bad)?,
                    capacity: config.units,
                    price: Money::new(UNIT_PRICE, Currency::new("KRW").map_err(bad)?)
                        .map_err(bad)?,
                }],
            },
        }],
    })
}

/// The clock the library reads, and the handle that moves it when simulated.
struct Time {
    clock: Arc<dyn Clock>,
    manual: Option<ManualClock>,
}

impl Time {
    fn now(&self) -> Timestamp {
        self.clock.now()
    }
}

/// Sets the session up in this process: the library's services on `backend`, an
/// in-process sandbox, the event and its sales policy.
async fn library_seller(
    config: &Config,
    backend: &Backend,
    time: &Time,
) -> Result<Library, RushError> {
    let limits = config.time_limits();
    let rush = TicketRush::new(backend.stores(), time.clock.clone(), limits)
        .map_err(RushError::library("building the services"))?;
    let sandbox = Sandbox::with_clock(SandboxConfig::default(), time.clock.clone())?;
    let checkout = rush.checkout(Arc::new(sandbox.clone()));
    let event = session_of(config, time.now())?;
    let session = event
        .sessions
        .first()
        .ok_or_else(|| RushError::Config("no session".into()))?
        .id;
    let grade = Grade::new("GA").map_err(|e| RushError::Config(e.to_string()))?;
    rush.create_event(&event)
        .await
        .map_err(RushError::library("creating the event"))?;
    let mut policy = rush
        .stores()
        .policies
        .policy(session)
        .await
        .map_err(RushError::library("reading the default policy"))?;
    policy.queue.require_admission = true;
    policy.queue.max_active = config.queue_max_active;
    policy.queue.max_admissions_per_minute = config.queue_rate_per_minute;
    policy.queue.max_waiting = None;
    policy.max_units_per_user = Some(config.max_per_user);
    rush.set_policy(session, &policy)
        .await
        .map_err(RushError::library("setting the sales policy"))?;
    Ok(Library {
        rush,
        checkout,
        sandbox,
        session,
        grade,
    })
}

/// The payment provider's books after the run: the in-process sandbox's, or the shared
/// sandbox's listed over HTTP.
async fn money_of(seller: &Seller, config: &Config) -> Result<checks::Money, RushError> {
    match (seller, &config.remote) {
        (Seller::Library(l), _) => Ok(checks::Money {
            intents: l.sandbox.intents(),
            refunds: l.sandbox.refunds().len() as u64,
        }),
        (Seller::Http(_), Some(remote)) => {
            let failed = |e: ticket_core::gateway::GatewayError| RushError::Http {
                context: format!(
                    "listing the payments of the sandbox at {}",
                    remote.sandbox_url
                ),
                detail: e.to_string(),
            };
            let key = payment_sandbox::auth::ApiKey::new(remote.sandbox_key.as_str())
                .map_err(|e| RushError::Config(format!("--sandbox-key: {e}")))?;
            let gateway = HttpGateway::new(&remote.sandbox_url, key, Duration::from_secs(60))
                .map_err(failed)?;
            let intents = gateway.list_intents().await.map_err(failed)?;
            let refunds = gateway.list_refunds().await.map_err(failed)?.len() as u64;
            Ok(checks::Money { intents, refunds })
        }
        (Seller::Http(_), None) => Err(RushError::Config("HTTP mode without --url".into())),
    }
}

async fn simulate(
    config: &Config,
    backend: &Backend,
    started: Instant,
) -> Result<Report, RushError> {
    let t0 = SystemClock.now();
    let time = if config.sim_clock {
        let m = ManualClock::new(t0);
        Time {
            clock: Arc::new(m.clone()),
            manual: Some(m),
        }
    } else {
        Time {
            clock: Arc::new(SystemClock),
            manual: None,
        }
    };
    let seller = match &config.remote {
        None => Seller::Library(Box::new(library_seller(config, backend, &time).await?)),
        Some(remote) => Seller::Http(HttpSeller::open(remote, config, t0).await?),
    };
    let session_id = seller.session();
    let open_at = t0.minus(Duration::from_secs(60));

    let progress = Arc::new(Progress::new(
        config.users,
        config.progress,
        started,
        time.clock.clone(),
        open_at,
    ));
    let shop = Arc::new(Shop {
        seller,
        crowd: Crowd::new(config.users, &config.mix, config.max_per_user, config.seed),
        progress: progress.clone(),
        start: started,
    });
    let recorder: SharedRecorder = Arc::new(parking_lot::Mutex::new(Recorder::new()?));
    let mut tally = Tally::default();
    let mut stages = Stages {
        setup_s: started.elapsed().as_secs_f64(),
        ..Stages::default()
    };
    let ticking = progress.start_ticking();

    // The burst: everybody joins at once.
    let join_started = Instant::now();
    let mut joined: Vec<(u64, u32)> = Vec::with_capacity(config.users as usize);
    for worker in play_all(&shop, Turns::Joins(config.users), config.workers, &recorder).await? {
        for p in worker {
            match p.result {
                TurnResult::Joined { seq } => joined.push((seq, p.user)),
                other => tally.count(other),
            }
        }
    }
    joined.sort_unstable();
    let line: VecDeque<u32> = joined.into_iter().map(|(_, u)| u).collect();
    stages.join_s = join_started.elapsed().as_secs_f64();

    // The sale.
    let sale_started = Instant::now();
    let mut sale = Sale {
        shop: &shop,
        stores: backend.stores(),
        config,
        time: &time,
        line,
        later: Vec::new(),
        drain: false,
        coordinator: Samples::new(started, recorder.clone()),
        recorder: recorder.clone(),
        rounds: 0,
        clock_jumps: Duration::ZERO,
    };
    let sold = sale.run(&mut tally).await;
    let (rounds, clock_jumps) = (sale.rounds, sale.clock_jumps);
    drop(sale);
    sold?;
    stages.sale_s = sale_started.elapsed().as_secs_f64();
    let timeline = ticking.finish();

    // The checks, from the store and the payment provider.
    let checks_started = Instant::now();
    let money = money_of(&shop.seller, config).await?;
    let findings = checks::check(
        &backend.stores(),
        session_id,
        &money,
        time.now(),
        config.workers.min(32),
        // In memory, the trail a page at a time: read whole, a million users' records
        // would be the run's peak memory.
        matches!(backend, Backend::Memory(_)).then_some(ticket_core::model::page::MAX_PAGE_LIMIT),
    )
    .await?;
    stages.checks_s = checks_started.elapsed().as_secs_f64();

    let recorded = recorder.lock();
    Ok(Report {
        config: config.clone(),
        location: String::new(),
        kept: config.keep,
        runtime_threads: tokio::runtime::Handle::current().metrics().num_workers(),
        stages,
        rounds,
        clock_advanced_s: clock_jumps.as_secs_f64(),
        clock_elapsed_s: time.now().since(t0).as_secs_f64(),
        phases: recorded.phase_reports()?,
        ops: recorded.op_reports(),
        failed_calls: recorded.failed(),
        failure_messages: recorded.failure_messages().to_vec(),
        users: tally,
        units: findings.units,
        checks: findings.checks,
        evidence: findings.evidence,
        remainder_explained: findings.units.remainder_explained(),
        explanation: findings.units.explanation(),
        timeline,
    })
}

/// The turns of one round.
#[derive(Debug)]
enum Turns {
    /// Users `0..n` join (generated on the fly: no list of a million turns).
    Joins(u32),
    /// These turns.
    List(Vec<Turn>),
}

impl Turns {
    fn len(&self) -> usize {
        match self {
            Turns::Joins(n) => *n as usize,
            Turns::List(v) => v.len(),
        }
    }

    fn get(&self, i: usize) -> Option<Turn> {
        match self {
            Turns::Joins(n) => u32::try_from(i).ok().filter(|u| u < n).map(Turn::Join),
            Turns::List(v) => v.get(i).copied(),
        }
    }
}

/// A turn played: its position in the round's list, its user, and how it ended.
#[derive(Debug, Clone, Copy)]
struct Played {
    index: u32,
    user: u32,
    result: TurnResult,
}

/// Plays `turns` on up to `workers` tasks; returns what each worker played (the turns of
/// a round end in any order; `index` gives the list order back).
async fn play_all(
    shop: &Arc<Shop>,
    turns: Turns,
    workers: usize,
    recorder: &SharedRecorder,
) -> Result<Vec<Vec<Played>>, RushError> {
    let n = turns.len();
    let turns = Arc::new(turns);
    let next = Arc::new(AtomicUsize::new(0));
    let mut tasks = Vec::new();
    for _ in 0..workers.min(n).max(1) {
        let (shop, turns, next) = (shop.clone(), turns.clone(), next.clone());
        let mut samples = Samples::new(shop.start, recorder.clone());
        tasks.push(tokio::spawn(async move {
            let mut done = Vec::new();
            loop {
                let i = next.fetch_add(1, Ordering::Relaxed);
                let Some(turn) = turns.get(i) else {
                    break;
                };
                let result = play(&shop, turn, &mut samples).await;
                done.push(Played {
                    index: u32::try_from(i).unwrap_or(u32::MAX),
                    user: turn.user(),
                    result,
                });
            }
            samples.flush();
            done
        }));
    }
    let mut out = Vec::with_capacity(tasks.len());
    for task in tasks {
        out.push(task.await?);
    }
    Ok(out)
}

/// The sale loop's state.
struct Sale<'a> {
    shop: &'a Arc<Shop>,
    /// The store behind the seller (in HTTP mode the server's), read for the queue's
    /// figures between rounds.
    stores: Stores,
    config: &'a Config,
    time: &'a Time,
    /// Users still in line, in join order (the store's FIFO order).
    line: VecDeque<u32>,
    /// Users who paid and will cancel in the next round (user, hold, units).
    later: Vec<(u32, HoldId, u32)>,
    /// Every user in line polls next round (someone saw the outlook `SoldOut`).
    drain: bool,
    /// The host's own calls (timer rounds, queue figures, sweeps).
    coordinator: Samples,
    /// Where every call's timing goes.
    recorder: SharedRecorder,
    rounds: u64,
    clock_jumps: Duration,
}

impl Sale<'_> {
    async fn run(&mut self, tally: &mut Tally) -> Result<(), RushError> {
        let seller = &self.shop.seller;
        let limits = seller.limits();
        // Nobody acting for this long (library time) means something is stuck.
        let patience = limits.hold_ttl + limits.admission_ttl + Duration::from_secs(120);
        let mut last_progress = self.time.now();
        let mut last_sweep = Instant::now();
        while !(self.line.is_empty() && self.later.is_empty()) {
            self.rounds += 1;
            // In-process the host runs the timer's admission round; over HTTP the server
            // runs rounds itself when users poll.
            let round = match seller {
                Seller::Library(l) => Some(
                    self.coordinator
                        .time(Op::Admit, l.rush.admission.admit_next(l.session))
                        .await,
                ),
                Seller::Http(_) => None,
            };
            // How many users the store has admitted now: the host's pacing aid, read from
            // the store (over HTTP too: the server's admin stats route scans the audit
            // trail, too slow to ask every round).
            let active = self
                .coordinator
                .time(
                    Op::Stats,
                    self.stores.queue.stats(seller.session(), self.time.now()),
                )
                .await
                .map_or(0, |s| s.active);
            let polls = if self.drain {
                self.line.len()
            } else {
                usize::try_from(active)
                    .unwrap_or(usize::MAX)
                    .max(1)
                    .min(self.line.len())
            };
            self.drain = false;
            let mut turns: Vec<Turn> = self.line.drain(..polls).map(Turn::Visit).collect();
            turns.extend(
                self.later
                    .drain(..)
                    .map(|(user, hold, units)| Turn::Cancel { user, hold, units }),
            );
            let played = play_all(
                self.shop,
                Turns::List(turns),
                self.config.workers,
                &self.recorder,
            )
            .await?;
            let mut back = Vec::new();
            let mut rejoined = Vec::new();
            let mut progressed = false;
            for p in played.into_iter().flatten() {
                progressed |= p.result != TurnResult::Waiting;
                tally.count(p.result);
                match p.result {
                    TurnResult::Waiting => back.push((p.index, p.user)),
                    TurnResult::Rejoined => rejoined.push((p.index, p.user)),
                    TurnResult::WillCancel { hold, units } => {
                        self.later.push((p.user, hold, units));
                    }
                    TurnResult::SawSoldOut => self.drain = true,
                    _ => {}
                }
            }
            // Users still waiting go back to the head in their order; those who joined
            // again go to the back.
            back.sort_unstable();
            rejoined.sort_unstable();
            for (_, user) in back.into_iter().rev() {
                self.line.push_front(user);
            }
            self.line.extend(rejoined.into_iter().map(|(_, user)| user));
            if progressed {
                last_progress = self.time.now();
                if self.time.manual.is_none() && last_sweep.elapsed() >= SWEEP_EVERY {
                    // The host's sweeper timer (on the simulated clock nothing expires
                    // while anybody can act).
                    self.sweep().await;
                    last_sweep = Instant::now();
                }
                continue;
            }
            if self.time.now().since(last_progress) > patience {
                // Give up on whoever is left rather than loop for ever; they show in the
                // report (lost users, and the store's queue at the end).
                self.coordinator.unexpected(
                    Op::Admit,
                    format!(
                        "nobody could act for {patience:?}: {} users left in line",
                        self.line.len()
                    ),
                );
                tally.lost += self.line.len() as u64;
                self.line.clear();
                break;
            }
            let limit = match round {
                Some(Ok(r)) => r.limit,
                _ => AdmissionLimit::Empty,
            };
            self.let_time_pass(limit, &limits).await;
        }
        self.finish(&limits).await;
        Ok(())
    }

    /// Nobody could act this round: lets the time pass that the admission limit needs,
    /// then sweeps expired holds (which wakes the queue).
    async fn let_time_pass(&mut self, limit: AdmissionLimit, limits: &ticket_core::TimeLimits) {
        match &self.time.manual {
            Some(clock) => {
                let jump = match limit {
                    AdmissionLimit::Rate => Duration::from_secs(1),
                    AdmissionLimit::ActiveCap => limits.admission_ttl + Duration::from_secs(1),
                    AdmissionLimit::Stock | AdmissionLimit::Empty => {
                        limits.hold_ttl + Duration::from_secs(1)
                    }
                    // a limit a newer ticket-core adds: the longest wait, a hold's lifetime
                    _ => limits.hold_ttl + Duration::from_secs(1),
                };
                clock.advance(jump);
                self.clock_jumps += jump;
            }
            None => tokio::time::sleep(IDLE_PAUSE).await,
        }
        self.sweep().await;
    }

    /// Runs the host's sweeper in-process (over HTTP the server sweeps on its own timer).
    async fn sweep(&mut self) {
        let Seller::Library(l) = &self.shop.seller else {
            return;
        };
        loop {
            match self
                .coordinator
                .time(Op::Sweep, l.rush.expiry.sweep(SWEEP_BATCH))
                .await
            {
                Ok(r) if r.expired.len() == SWEEP_BATCH => {}
                _ => break,
            }
        }
    }

    /// Nobody is left in line. On the simulated clock, lets the remaining holds expire so
    /// the final stock has none; on the system clock, sweeps what is due.
    async fn finish(&mut self, limits: &ticket_core::TimeLimits) {
        if let Some(clock) = &self.time.manual {
            let jump = limits.hold_ttl + Duration::from_secs(1);
            clock.advance(jump);
            self.clock_jumps += jump;
        }
        self.sweep().await;
    }
}
