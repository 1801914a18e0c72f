//! One strategy's row: what the clients saw and what the store holds.

use std::fmt::Write as _;

use super::drive::Measured;
use super::{Strategy, Workload};

/// The result of one strategy on one workload.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Outcome {
    /// The strategy.
    pub strategy: Strategy,
    /// Units of the hot item.
    pub units: u32,
    /// Concurrent clients.
    pub clients: usize,
    /// From the first attempt to the end of the last client, in seconds.
    pub wall_s: f64,
    /// Successful buys per second of wall time.
    pub buys_per_s: f64,
    /// Median latency of an attempt that did not end in sold out (ms; retries included).
    pub p50_ms: f64,
    /// 99th percentile of the same (ms).
    pub p99_ms: f64,
    /// Attempts made by all clients.
    pub attempts: u64,
    /// Buys the clients were told succeeded.
    pub bought: u64,
    /// Sold-out answers (each ends its client).
    pub sold_out_answers: u64,
    /// Order rows (or holds) in the store afterwards: the units sold.
    pub sold: u64,
    /// Orders beyond the stock: `sold − units`.
    pub oversold: u64,
    /// The stock counter afterwards (negative if it went below 0).
    pub stock_left: i64,
    /// Orders the stock counter does not account for: `sold − (units − stock_left)`
    /// (a write of `read − 1` that overwrote another buyer's decrement).
    pub lost_updates: i64,
    /// Retries over all attempts (optimistic conflicts, failed tries of the Redis lock).
    pub retries: u64,
    /// Attempts that failed or gave up.
    pub errors: u64,
    /// The first error, if any.
    pub first_error: Option<String>,
    /// Whether the order rows in the store are the buys the clients were told of.
    pub orders_match_buys: bool,
    /// Whether stock left + orders = units (no unit lost or made up).
    pub conserved: bool,
    /// Where the run's data lived (removed at its end).
    pub location: super::Location,
}

fn ms(micros: u64) -> f64 {
    micros as f64 / 1_000.0
}

/// The row of `strategy` from what was measured.
pub(crate) fn outcome(strategy: Strategy, w: &Workload, m: Measured) -> Outcome {
    let units = i64::from(w.units);
    let sold = m.books.orders;
    let sold_i = i64::try_from(sold).unwrap_or(i64::MAX);
    let decremented = units - m.books.stock_left;
    let wall_s = m.wall.as_secs_f64();
    Outcome {
        strategy,
        units: w.units,
        clients: w.clients,
        wall_s,
        buys_per_s: if wall_s > 0.0 {
            m.bought as f64 / wall_s
        } else {
            0.0
        },
        p50_ms: ms(m.latency.value_at_quantile(0.5)),
        p99_ms: ms(m.latency.value_at_quantile(0.99)),
        attempts: m.attempts,
        bought: m.bought,
        sold_out_answers: m.sold_out,
        sold,
        oversold: sold.saturating_sub(u64::from(w.units)),
        stock_left: m.books.stock_left,
        lost_updates: (sold_i - decremented).max(0),
        retries: m.retries,
        errors: m.errors,
        first_error: m.first_error,
        orders_match_buys: sold == m.bought,
        conserved: m.books.stock_left + sold_i == units,
        location: m.location,
    }
}

fn yes(b: bool) -> &'static str {
    if b { "yes" } else { "no" }
}

/// The outcomes as a Markdown table (one row per strategy), with the first error of each
/// strategy that had one below it.
pub fn markdown(outcomes: &[Outcome]) -> String {
    let mut out = String::from(
        "| strategy | wall s | buys/s | p50 ms | p99 ms | sold | oversold | stock left | \
         lost updates | retries | errors | orders = buys | stock + sold = units |\n\
         |---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|---|\n",
    );
    for o in outcomes {
        let _ = writeln!(
            out,
            "| {} | {:.2} | {:.0} | {:.2} | {:.2} | {} | {} | {} | {} | {} | {} | {} | {} |",
            o.strategy.name(),
            o.wall_s,
            o.buys_per_s,
            o.p50_ms,
            o.p99_ms,
            o.sold,
            o.oversold,
            o.stock_left,
            o.lost_updates,
            o.retries,
            o.errors,
            yes(o.orders_match_buys),
            yes(o.conserved),
        );
    }
    for o in outcomes {
        if let Some(e) = &o.first_error {
            let _ = writeln!(out, "\n{}: first error: {e}", o.strategy.name());
        }
    }
    out
}
