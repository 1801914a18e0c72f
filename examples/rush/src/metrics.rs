//! Timing of every library call (or HTTP request) the simulator makes: one [`Sample`] per call, gathered per
//! worker and folded into a [`Recorder`] (HDR histograms of latency, counts by result, the
//! span in which the operation ran).

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use hdrhistogram::Histogram;
use parking_lot::Mutex;
use serde::{Deserialize, Serialize};
use ticket_core::{Error, Refusal};

use crate::error::RushError;

/// A call the simulator times: a library call in-process, the matching route over HTTP.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Op {
    /// `AdmissionService::join` (`POST /api/sessions/{id}/queue`).
    Join,
    /// `AdmissionService::admit_next` (the host's timer round; in-process only: over HTTP
    /// the server runs rounds when users poll).
    Admit,
    /// `WaitingQueue::stats` (the host's view of the queue between rounds, read from the
    /// store in HTTP mode too).
    Stats,
    /// `AdmissionService::view` (a waiting user polls; `GET /api/sessions/{id}/queue`).
    View,
    /// `AdmissionService::leave` (a user gives up or sees sold out; `DELETE …/queue`).
    Leave,
    /// `HoldService::hold` (with an idempotency key; `POST /api/holds`).
    Hold,
    /// `CheckoutService::begin` with the sandbox (create, start, confirm, settle;
    /// `POST /api/holds/{id}/checkout`).
    Pay,
    /// `CancelService::cancel` (over HTTP `POST /api/reservations/{id}/cancel`, which also
    /// refunds and records the refund).
    Cancel,
    /// `PaymentGateway::refund` on the sandbox.
    Refund,
    /// `CancelService::record_refund`.
    RecordRefund,
    /// `ExpiryService::sweep`.
    Sweep,
}

impl Op {
    /// Every operation, in report order.
    pub const ALL: [Op; 11] = [
        Op::Join,
        Op::Admit,
        Op::Stats,
        Op::View,
        Op::Leave,
        Op::Hold,
        Op::Pay,
        Op::Cancel,
        Op::Refund,
        Op::RecordRefund,
        Op::Sweep,
    ];

    /// Snake-case name.
    pub fn name(self) -> &'static str {
        match self {
            Op::Join => "join",
            Op::Admit => "admit",
            Op::Stats => "stats",
            Op::View => "view",
            Op::Leave => "leave",
            Op::Hold => "hold",
            Op::Pay => "pay",
            Op::Cancel => "cancel",
            Op::Refund => "refund",
            Op::RecordRefund => "record_refund",
            Op::Sweep => "sweep",
        }
    }

    /// The phase of the rush the operation belongs to.
    pub fn phase(self) -> Phase {
        match self {
            Op::Join => Phase::Join,
            Op::Admit | Op::Stats | Op::View | Op::Leave => Phase::Admission,
            Op::Hold => Phase::Hold,
            Op::Pay | Op::Cancel | Op::Refund | Op::RecordRefund => Phase::Pay,
            Op::Sweep => Phase::Expiry,
        }
    }

    fn index(self) -> usize {
        self as usize
    }
}

/// A phase of the rush: a group of operations.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Phase {
    /// The burst of joins.
    Join,
    /// Waiting and admission: timer rounds, polls, leaving.
    Admission,
    /// Holding units.
    Hold,
    /// Checkout, cancellations and refunds.
    Pay,
    /// The sweeper.
    Expiry,
}

impl Phase {
    /// Every phase, in report order.
    pub const ALL: [Phase; 5] = [
        Phase::Join,
        Phase::Admission,
        Phase::Hold,
        Phase::Pay,
        Phase::Expiry,
    ];

    /// Snake-case name.
    pub fn name(self) -> &'static str {
        match self {
            Phase::Join => "join",
            Phase::Admission => "admission",
            Phase::Hold => "hold",
            Phase::Pay => "pay",
            Phase::Expiry => "expiry",
        }
    }
}

/// How a call ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// It succeeded.
    Ok,
    /// A domain rule refused it (the code, e.g. `SOLD_OUT`): expected in a rush.
    Refused(&'static str),
    /// Anything else: a backend or provider failure, or an answer the simulator did not
    /// expect.
    Failed,
}

/// One timed call.
#[derive(Debug, Clone, Copy)]
pub struct Sample {
    /// Which call.
    pub op: Op,
    /// When it started, since the run started.
    pub at: Duration,
    /// How long it took.
    pub took: Duration,
    /// How it ended.
    pub outcome: Outcome,
}

/// The stable code of a refusal (`SOLD_OUT`, `NOT_ADMITTED`, …).
pub fn refusal_code(r: &Refusal) -> &'static str {
    match r {
        Refusal::SoldOut { .. } => "SOLD_OUT",
        Refusal::SeatsUnavailable { .. } => "SEATS_UNAVAILABLE",
        Refusal::UnknownItem { .. } => "UNKNOWN_ITEM",
        Refusal::QueueFull { .. } => "QUEUE_FULL",
        Refusal::QueueNotOpen { .. } => "QUEUE_NOT_OPEN",
        Refusal::NotAdmitted => "NOT_ADMITTED",
        Refusal::AdmissionExpired { .. } => "ADMISSION_EXPIRED",
        Refusal::NotInQueue => "NOT_IN_QUEUE",
        Refusal::HoldExpired { .. } => "HOLD_EXPIRED",
        Refusal::NotDue { .. } => "NOT_DUE",
        Refusal::IllegalTransition { .. } => "ILLEGAL_TRANSITION",
        Refusal::NotOwner => "NOT_OWNER",
        Refusal::LimitExceeded { .. } => "LIMIT_EXCEEDED",
        Refusal::SalesNotOpen { .. } => "SALES_NOT_OPEN",
        Refusal::SalesClosed { .. } => "SALES_CLOSED",
        Refusal::GradeNotAllowed { .. } => "GRADE_NOT_ALLOWED",
        Refusal::UnknownTier { .. } => "UNKNOWN_TIER",
        _ => "OTHER_REFUSAL",
    }
}

/// What an error says about how a call ended: a refusal of the rules (expected in a
/// rush) or a failure.
pub trait Classify: std::fmt::Display {
    /// [`Outcome::Refused`] or [`Outcome::Failed`].
    fn outcome(&self) -> Outcome;
}

impl Classify for Error {
    fn outcome(&self) -> Outcome {
        match self {
            Error::Refused(refusal) => Outcome::Refused(refusal_code(refusal)),
            _ => Outcome::Failed,
        }
    }
}

/// The outcome of a call's result.
pub fn outcome_of<T, E: Classify>(r: &Result<T, E>) -> Outcome {
    match r {
        Ok(_) => Outcome::Ok,
        Err(e) => e.outcome(),
    }
}

/// A [`Recorder`] shared by the workers.
pub type SharedRecorder = Arc<Mutex<Recorder>>;

/// Samples of one worker, with the run's start as their time origin, folded into the
/// shared recorder every [`FLUSH_EVERY`] calls and when dropped (so a worker's buffer
/// stays small however many calls it makes).
#[derive(Debug)]
pub struct Samples {
    start: Instant,
    sink: SharedRecorder,
    /// The calls not folded in yet, in the order they ended.
    pub samples: Vec<Sample>,
    /// Messages of unexpected failures not folded in yet.
    pub failures: Vec<String>,
}

/// Failure messages kept per worker and per recorder.
const FAILURE_MESSAGES: usize = 20;
/// Samples a worker buffers before folding them into the recorder.
pub const FLUSH_EVERY: usize = 4_096;

impl Samples {
    /// An empty buffer timing from `start`, folding into `sink`.
    pub fn new(start: Instant, sink: SharedRecorder) -> Self {
        Self {
            start,
            sink,
            samples: Vec::with_capacity(FLUSH_EVERY),
            failures: Vec::new(),
        }
    }

    /// Folds the buffered samples into the recorder.
    pub fn flush(&mut self) {
        if self.samples.is_empty() && self.failures.is_empty() {
            return;
        }
        let sink = self.sink.clone();
        sink.lock().absorb(self);
    }

    /// Times `fut` as one `op` call and records how it ended.
    pub async fn time<T, E: Classify>(
        &mut self,
        op: Op,
        fut: impl Future<Output = Result<T, E>>,
    ) -> Result<T, E> {
        // Folding in before (not after) a call keeps its own sample in the buffer, where
        // `unexpected` can still mark it.
        if self.samples.len() >= FLUSH_EVERY {
            self.flush();
        }
        let t0 = Instant::now();
        let r = fut.await;
        let took = t0.elapsed();
        let outcome = outcome_of(&r);
        if let (Outcome::Failed, Err(e)) = (outcome, &r) {
            self.failure(format!("{}: {e}", op.name()));
        }
        self.samples.push(Sample {
            op,
            at: t0.saturating_duration_since(self.start),
            took,
            outcome,
        });
        r
    }

    /// Records a call that answered something the simulator did not expect (as a failure
    /// of that call) with why.
    pub fn unexpected(&mut self, op: Op, why: String) {
        match self.samples.last_mut() {
            Some(s) if s.op == op => s.outcome = Outcome::Failed,
            // Not a call just timed (e.g. no call was made): a failed call of its own.
            _ => self.samples.push(Sample {
                op,
                at: self.start.elapsed(),
                took: Duration::ZERO,
                outcome: Outcome::Failed,
            }),
        }
        self.failure(format!("{}: {why}", op.name()));
    }

    fn failure(&mut self, message: String) {
        if self.failures.len() < FAILURE_MESSAGES {
            self.failures.push(message);
        }
    }
}

impl Drop for Samples {
    fn drop(&mut self) {
        self.flush();
    }
}

/// Everything recorded about one operation.
#[derive(Debug)]
struct OpStats {
    latency_ns: Histogram<u64>,
    ok: u64,
    refused: BTreeMap<&'static str, u64>,
    failed: u64,
    first_start: Option<Duration>,
    last_end: Duration,
}

/// Latencies from 1 ns to one hour, three significant digits.
fn histogram() -> Result<Histogram<u64>, RushError> {
    Histogram::new_with_bounds(1, 3_600_000_000_000, 3)
        .map_err(|e| RushError::Config(format!("latency histogram: {e:?}")))
}

impl OpStats {
    fn new() -> Result<Self, RushError> {
        Ok(Self {
            latency_ns: histogram()?,
            ok: 0,
            refused: BTreeMap::new(),
            failed: 0,
            first_start: None,
            last_end: Duration::ZERO,
        })
    }

    fn count(&self) -> u64 {
        self.ok + self.failed + self.refused.values().sum::<u64>()
    }
}

/// Every sample of a run, folded per operation.
#[derive(Debug)]
pub struct Recorder {
    ops: Vec<OpStats>,
    failures: Vec<String>,
}

impl Recorder {
    /// An empty recorder.
    pub fn new() -> Result<Self, RushError> {
        Ok(Self {
            ops: Op::ALL
                .iter()
                .map(|_| OpStats::new())
                .collect::<Result<_, _>>()?,
            failures: Vec::new(),
        })
    }

    /// Folds a worker's buffered samples in (leaving its buffer empty).
    pub fn absorb(&mut self, samples: &mut Samples) {
        for s in samples.samples.drain(..) {
            let Some(st) = self.ops.get_mut(s.op.index()) else {
                continue;
            };
            let ns = u64::try_from(s.took.as_nanos()).unwrap_or(u64::MAX).max(1);
            st.latency_ns.saturating_record(ns);
            match s.outcome {
                Outcome::Ok => st.ok += 1,
                Outcome::Refused(code) => *st.refused.entry(code).or_default() += 1,
                Outcome::Failed => st.failed += 1,
            }
            st.first_start = Some(st.first_start.map_or(s.at, |f| f.min(s.at)));
            st.last_end = st.last_end.max(s.at + s.took);
        }
        for f in samples.failures.drain(..) {
            if self.failures.len() < FAILURE_MESSAGES {
                self.failures.push(f);
            }
        }
    }

    /// Calls that failed unexpectedly, over all operations.
    pub fn failed(&self) -> u64 {
        self.ops.iter().map(|o| o.failed).sum()
    }

    /// The first messages of unexpected failures.
    pub fn failure_messages(&self) -> &[String] {
        &self.failures
    }

    /// Per-operation figures, for operations that ran at least once.
    pub fn op_reports(&self) -> Vec<OpReport> {
        Op::ALL
            .iter()
            .zip(&self.ops)
            .filter(|(_, st)| st.count() > 0)
            .map(|(op, st)| {
                let span = st
                    .first_start
                    .map_or(Duration::ZERO, |f| st.last_end.saturating_sub(f));
                let h = &st.latency_ns;
                let us = |ns: u64| ns as f64 / 1_000.0;
                OpReport {
                    op: *op,
                    phase: op.phase(),
                    calls: st.count(),
                    ok: st.ok,
                    refused: st
                        .refused
                        .iter()
                        .map(|(k, v)| ((*k).to_owned(), *v))
                        .collect(),
                    failed: st.failed,
                    span_s: span.as_secs_f64(),
                    per_second: rate(st.count(), span),
                    p50_us: us(h.value_at_quantile(0.50)),
                    p95_us: us(h.value_at_quantile(0.95)),
                    p99_us: us(h.value_at_quantile(0.99)),
                    max_us: us(h.max()),
                    mean_us: h.mean() / 1_000.0,
                }
            })
            .collect()
    }

    /// Per-phase figures: calls of the phase's operations over the span from the first
    /// call's start to the last call's end.
    pub fn phase_reports(&self) -> Result<Vec<PhaseReport>, RushError> {
        let mut out = Vec::new();
        for phase in Phase::ALL {
            let mut calls = 0;
            let mut first: Option<Duration> = None;
            let mut last = Duration::ZERO;
            let mut latency = histogram()?;
            for (op, st) in Op::ALL.iter().zip(&self.ops) {
                if op.phase() != phase || st.count() == 0 {
                    continue;
                }
                calls += st.count();
                if let Some(f) = st.first_start {
                    first = Some(first.map_or(f, |x| x.min(f)));
                }
                last = last.max(st.last_end);
                // Same bounds: adding cannot fail; an error would only lose percentiles.
                let _ = latency.add(&st.latency_ns);
            }
            let Some(first) = first else {
                continue;
            };
            let span = last.saturating_sub(first);
            out.push(PhaseReport {
                phase,
                calls,
                started_s: first.as_secs_f64(),
                span_s: span.as_secs_f64(),
                per_second: rate(calls, span),
                p50_us: latency.value_at_quantile(0.5) as f64 / 1_000.0,
                p99_us: latency.value_at_quantile(0.99) as f64 / 1_000.0,
            });
        }
        Ok(out)
    }
}

fn rate(calls: u64, span: Duration) -> f64 {
    if span.is_zero() {
        0.0
    } else {
        calls as f64 / span.as_secs_f64()
    }
}

/// Throughput and latency of one operation.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct OpReport {
    /// The operation.
    pub op: Op,
    /// Its phase.
    pub phase: Phase,
    /// Calls made.
    pub calls: u64,
    /// Calls that succeeded.
    pub ok: u64,
    /// Calls refused by a domain rule, by refusal code.
    pub refused: BTreeMap<String, u64>,
    /// Calls that failed unexpectedly.
    pub failed: u64,
    /// Seconds from the first call's start to the last call's end.
    pub span_s: f64,
    /// `calls / span_s`: calls of this operation interleave with others, so this is the
    /// rate the run achieved, not the operation's peak.
    pub per_second: f64,
    /// Median latency, µs.
    pub p50_us: f64,
    /// 95th percentile, µs.
    pub p95_us: f64,
    /// 99th percentile, µs.
    pub p99_us: f64,
    /// Slowest call, µs.
    pub max_us: f64,
    /// Mean, µs.
    pub mean_us: f64,
}

/// Throughput of one phase.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PhaseReport {
    /// The phase.
    pub phase: Phase,
    /// Calls of its operations.
    pub calls: u64,
    /// When its first call started, seconds into the run.
    pub started_s: f64,
    /// Seconds from its first call's start to its last call's end.
    pub span_s: f64,
    /// `calls / span_s`.
    pub per_second: f64,
    /// Median latency over its calls, µs.
    pub p50_us: f64,
    /// 99th percentile over its calls, µs.
    pub p99_us: f64,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn samples_fold_into_counts_spans_and_percentiles() {
        let start = Instant::now();
        let r = Arc::new(Mutex::new(Recorder::new().expect("recorder")));
        let mut s = Samples::new(start, r.clone());
        for _ in 0..10 {
            let _ = s.time(Op::Hold, async { Ok::<_, Error>(()) }).await;
        }
        let _ = s
            .time(Op::Hold, async {
                Err::<(), _>(Error::Refused(Refusal::NotAdmitted))
            })
            .await;
        let _ = s
            .time(Op::Join, async { Err::<(), _>(Error::Corrupt("x".into())) })
            .await;
        drop(s);
        let r = r.lock();
        let ops = r.op_reports();
        let hold = ops.iter().find(|o| o.op == Op::Hold).expect("hold");
        assert_eq!((hold.calls, hold.ok, hold.failed), (11, 10, 0));
        assert_eq!(hold.refused.get("NOT_ADMITTED"), Some(&1));
        assert_eq!(r.failed(), 1);
        assert_eq!(r.failure_messages().len(), 1);
        let phases = r.phase_reports().expect("phases");
        assert!(
            phases
                .iter()
                .any(|p| p.phase == Phase::Hold && p.calls == 11)
        );
        assert!(!phases.iter().any(|p| p.phase == Phase::Pay));
    }
}
