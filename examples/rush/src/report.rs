//! The report of a run: throughput and latency per phase and per operation, what the users
//! did (the simulator's view), units sold and why any were not (the store's view), and the
//! correctness counters (the store's and the sandbox's view). Printed as text for people or
//! serialised as JSON for machines.

use std::fmt::Write as _;

use serde::{Deserialize, Serialize};

use crate::checks::{Checks, Evidence, Units};
use crate::config::Config;
use crate::metrics::{OpReport, PhaseReport};
use crate::progress::Point;
use crate::users::TurnResult;

/// Wall-clock seconds of each stage of the run.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize)]
pub struct Stages {
    /// Connecting, creating the session and its policy.
    pub setup_s: f64,
    /// The join burst.
    pub join_s: f64,
    /// Admission rounds to the last user leaving the line.
    pub sale_s: f64,
    /// Reading the store and the sandbox back.
    pub checks_s: f64,
    /// Removing the run's keys or schema.
    pub cleanup_s: f64,
    /// Everything, from the call to the report.
    pub total_s: f64,
}

/// What the users did, as the simulator saw it (the store's view is in [`Units`] and
/// [`Checks`]).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Tally {
    /// Users who paid and kept their tickets.
    pub bought: u64,
    /// Their units.
    pub bought_units: u64,
    /// Users who paid and later cancelled with a refund.
    pub cancelled: u64,
    /// Their units (back on sale).
    pub cancelled_units: u64,
    /// Users whose card was declined.
    pub declined: u64,
    /// Their units (back on sale at once).
    pub declined_units: u64,
    /// Users who walked away from their hold.
    pub abandoned: u64,
    /// Their units (back on sale when the hold expired).
    pub abandoned_units: u64,
    /// Users whose hold expired before they paid.
    pub too_late: u64,
    /// Admitted users for whom not even one unit was left.
    pub gave_up: u64,
    /// Users who saw the outlook `SoldOut` while waiting and left.
    pub saw_sold_out: u64,
    /// Users whose admission ran out before they used it (they joined again).
    pub rejoined: u64,
    /// Users stopped by an unexpected failure.
    pub lost: u64,
}

impl Tally {
    /// Counts one turn's result.
    pub fn count(&mut self, r: TurnResult) {
        match r {
            TurnResult::Bought { units } => {
                self.bought += 1;
                self.bought_units += u64::from(units);
            }
            TurnResult::Cancelled { units } => {
                self.cancelled += 1;
                self.cancelled_units += u64::from(units);
            }
            TurnResult::Declined { units } => {
                self.declined += 1;
                self.declined_units += u64::from(units);
            }
            TurnResult::Abandoned { units } => {
                self.abandoned += 1;
                self.abandoned_units += u64::from(units);
            }
            TurnResult::TooLate => self.too_late += 1,
            TurnResult::GaveUp => self.gave_up += 1,
            TurnResult::SawSoldOut => self.saw_sold_out += 1,
            TurnResult::Rejoined => self.rejoined += 1,
            TurnResult::Lost => self.lost += 1,
            TurnResult::Joined { .. } | TurnResult::Waiting | TurnResult::WillCancel { .. } => {}
        }
    }
}

/// Everything a run measured and found.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Report {
    /// What was simulated.
    pub config: Config,
    /// Where the run's data lived (`redis prefix …`, `pg schema …`, `memory`).
    pub location: String,
    /// Whether that data was kept.
    pub kept: bool,
    /// Threads of the tokio runtime the run was driven on.
    pub runtime_threads: usize,
    /// Wall time per stage.
    pub stages: Stages,
    /// Sale rounds played.
    pub rounds: u64,
    /// Seconds the simulated clock was moved forward (0 on the system clock).
    pub clock_advanced_s: f64,
    /// Seconds of library time from the start of the run to the checks.
    pub clock_elapsed_s: f64,
    /// Throughput per phase.
    pub phases: Vec<PhaseReport>,
    /// Throughput and latency per operation.
    pub ops: Vec<OpReport>,
    /// Calls that failed unexpectedly (not refusals).
    pub failed_calls: u64,
    /// The first messages of those failures.
    pub failure_messages: Vec<String>,
    /// What the users did (the simulator's view).
    pub users: Tally,
    /// Units sold against capacity and the remainder's causes (the store's view).
    pub units: Units,
    /// The correctness counters (the store's and the sandbox's view); all must be 0.
    pub checks: Checks,
    /// What the checks read.
    pub evidence: Evidence,
    /// Whether every unsold unit is accounted for ([`Units::remainder_explained`]).
    pub remainder_explained: bool,
    /// Why units were not sold, in one line.
    pub explanation: String,
    /// The live counters every 100 ms.
    pub timeline: Vec<Point>,
}

/// Exit code of a run whose correctness counters are not all 0.
pub const EXIT_INCORRECT: i32 = 1;
/// Exit code of a run that could not be carried out.
pub const EXIT_RUN_FAILED: i32 = 2;
/// Exit code of a correct run in which some calls failed unexpectedly (e.g. a backend
/// timeout): the counters are 0 but not every user could finish.
pub const EXIT_CALLS_FAILED: i32 = 4;

impl Report {
    /// 0 when every correctness counter is 0 and no call failed; [`EXIT_INCORRECT`] when a
    /// counter is not 0; [`EXIT_CALLS_FAILED`] when only calls failed.
    pub fn exit_code(&self) -> i32 {
        if self.checks.violations() > 0 {
            EXIT_INCORRECT
        } else if self.failed_calls > 0 || self.users.lost > 0 {
            EXIT_CALLS_FAILED
        } else {
            0
        }
    }

    /// The report as text for a terminal.
    pub fn to_text(&self) -> String {
        let mut o = String::new();
        let c = &self.config;
        let m = &c.mix;
        let _ = writeln!(
            o,
            "rush: {} users for {} units on {}{} ({}), {} workers on {} runtime threads, seed {}",
            c.users,
            c.units,
            c.store.as_str(),
            c.remote
                .as_ref()
                .map(|r| format!(" over HTTP through {}", r.url))
                .unwrap_or_default(),
            if c.sim_clock {
                "simulated clock"
            } else {
                "system clock"
            },
            c.workers,
            self.runtime_threads,
            c.seed
        );
        let _ = writeln!(
            o,
            "mix: pay {} · decline {} · abandon {} · cancel later {}; 1..={} units per user; \
             queue {} active, {}/min; hold TTL {}; data: {}{}",
            m.pay_success,
            m.decline,
            m.abandon,
            m.cancel_later,
            c.max_per_user,
            c.queue_max_active,
            c.queue_rate_per_minute,
            if c.remote.is_some() {
                "the server's".to_owned()
            } else {
                format!("{} s", c.hold_ttl.as_secs())
            },
            self.location,
            match (c.remote.is_some(), self.kept) {
                (true, _) => " (the server's, left as it is)",
                (false, true) => " (kept)",
                (false, false) => " (removed)",
            }
        );
        let s = &self.stages;
        let _ = writeln!(
            o,
            "\nwall time {:.2} s = setup {:.2} + join {:.2} + sale {:.2} + checks {:.2} + \
             cleanup {:.2}; {} rounds; library clock +{:.0} s ({:.0} s of it simulated jumps)",
            s.total_s,
            s.setup_s,
            s.join_s,
            s.sale_s,
            s.checks_s,
            s.cleanup_s,
            self.rounds,
            self.clock_elapsed_s,
            self.clock_advanced_s
        );

        let _ = writeln!(
            o,
            "\n{:<10} {:>10} {:>9} {:>12} {:>9} {:>9}",
            "phase", "calls", "span s", "calls/s", "p50 µs", "p99 µs"
        );
        for p in &self.phases {
            let _ = writeln!(
                o,
                "{:<10} {:>10} {:>9.3} {:>12.0} {:>9.1} {:>9.1}",
                p.phase.name(),
                p.calls,
                p.span_s,
                p.per_second,
                p.p50_us,
                p.p99_us
            );
        }

        let _ = writeln!(
            o,
            "\n{:<13} {:>9} {:>9} {:>9} {:>6} {:>11} {:>8} {:>8} {:>8} {:>8} {:>9}  refusals",
            "operation",
            "calls",
            "ok",
            "refused",
            "failed",
            "calls/s",
            "mean µs",
            "p50 µs",
            "p95 µs",
            "p99 µs",
            "max µs"
        );
        for r in &self.ops {
            let refused: u64 = r.refused.values().sum();
            let codes: Vec<String> = r.refused.iter().map(|(k, v)| format!("{k} {v}")).collect();
            let _ = writeln!(
                o,
                "{:<13} {:>9} {:>9} {:>9} {:>6} {:>11.0} {:>8.1} {:>8.1} {:>8.1} {:>8.1} {:>9.1}  {}",
                r.op.name(),
                r.calls,
                r.ok,
                refused,
                r.failed,
                r.per_second,
                r.mean_us,
                r.p50_us,
                r.p95_us,
                r.p99_us,
                r.max_us,
                codes.join(", ")
            );
        }

        let u = &self.users;
        let _ = writeln!(
            o,
            "\nusers (simulator's view): bought {} ({} units) · cancelled later {} ({} units) \
             · declined {} · abandoned {} ({} units) · too late {} · gave up {} · saw sold out \
             {} · rejoined {} · lost {}",
            u.bought,
            u.bought_units,
            u.cancelled,
            u.cancelled_units,
            u.declined,
            u.abandoned,
            u.abandoned_units,
            u.too_late,
            u.gave_up,
            u.saw_sold_out,
            u.rejoined,
            u.lost
        );
        let n = &self.units;
        let _ = writeln!(
            o,
            "units (store): capacity {} · sold {} · held {} · available {}",
            n.capacity, n.sold, n.held, n.available
        );
        let _ = writeln!(
            o,
            "remainder: {} [{}]",
            self.explanation,
            if self.remainder_explained {
                "explained"
            } else {
                "NOT EXPLAINED"
            }
        );

        let _ = writeln!(
            o,
            "\ncorrectness (read back from the store and the sandbox; each must be 0):"
        );
        for (name, value) in self.checks.counters() {
            let _ = writeln!(
                o,
                "  {name:<34} {value:>8}{}",
                if value > 0 { "  <-- VIOLATION" } else { "" }
            );
        }
        let e = &self.evidence;
        let _ = writeln!(
            o,
            "read: {} audit records ({} joins, {} admissions), {} holds, {} intents ({} \
             succeeded), {} refunds",
            e.audit_records,
            e.joins,
            e.admissions,
            e.holds,
            e.intents,
            e.succeeded_intents,
            e.refunds
        );
        if self.failed_calls > 0 {
            let _ = writeln!(
                o,
                "\n{} calls failed unexpectedly; first messages:",
                self.failed_calls
            );
            for m in &self.failure_messages {
                let _ = writeln!(o, "  {m}");
            }
        }
        let _ = writeln!(
            o,
            "\nresult: {}",
            match self.exit_code() {
                0 => "OK".to_owned(),
                EXIT_INCORRECT => format!(
                    "INCORRECT ({} by the counters above)",
                    self.checks.violations()
                ),
                _ => format!(
                    "correct, but {} calls failed and {} users were lost",
                    self.failed_calls, self.users.lost
                ),
            }
        );
        o
    }
}
