//! The lock strategies, compared (issue 20): ways to keep one hot stock counter right,
//! run on the same workload and read back from the store.
//!
//! Every strategy sells one hot item of [`Workload::units`] units to [`Workload::clients`]
//! concurrent clients. Each client buys one unit at a time (take a unit and write an order
//! row, or a ticketrush hold) until it sees the item sold out, or until
//! [`Workload::attempts`] buy attempts were made by all clients together (the demand; more
//! than the units, so contention is real). The strategies ([`Strategy`]):
//!
//! 1. **naive**: `SELECT stock`, then `UPDATE … SET stock = <read − 1>` and the order, in a
//!    READ COMMITTED transaction, no lock: lost updates and oversold units.
//! 2. **optimistic**: a version column, `UPDATE … WHERE version = <read>`, retried on 0 rows
//!    up to [`Workload::max_retries`] times (then the attempt gives up: an error).
//! 3. **pessimistic**: `SELECT … FOR UPDATE` in the transaction.
//! 4. **redis-lock**: `SET lock <token> NX PX <lease>` in Redis, a fencing token from
//!    `INCR`, the PostgreSQL update guarded by it (`WHERE fence < <token>`), released by a
//!    compare-and-delete script.
//! 5. **redis-script**: one Lua script: conditional decrement and append of the order.
//! 6. **ticketrush-pg** / 7. **ticketrush-redis**: `Holds::hold` of one unit by a new user
//!    on a one-session general-admission event, on ticket-store-pg / ticket-store-redis.
//!
//! Each run works in its own PostgreSQL schema (`locks_<uuid>`) and Redis key prefix
//! (`locks:<uuid>:`), and removes them afterwards, also when the run fails after
//! connecting. The [`Outcome`] of a strategy counts what the clients saw (buys, retries,
//! errors, latency) and what the store holds afterwards (order rows or holds, stock left):
//! oversold units and lost updates come from the store, not from the clients.
//!
//! ```no_run
//! # async fn demo() -> Result<(), rush::locks::LocksError> {
//! let workload = rush::locks::Workload::new(100, 8);
//! let outcome = rush::locks::run(rush::locks::Strategy::Pessimistic, &workload).await?;
//! assert_eq!(outcome.oversold, 0);
//! println!("{}", rush::locks::markdown(&[outcome]));
//! # Ok(()) }
//! ```

mod drive;
mod raw_pg;
mod redis_script;
mod report;
mod tr;

use std::time::Duration;

pub use drive::{Attempt, Books, Location};
pub use report::{Outcome, markdown};

use crate::error::RushError;

/// One way to keep the hot counter right (or not).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Strategy {
    /// Read, then write `read − 1`, no lock.
    Naive,
    /// Version column, compare-and-set update, retries.
    Optimistic,
    /// `SELECT … FOR UPDATE`.
    Pessimistic,
    /// A Redis lock with a fencing token around the PostgreSQL update.
    RedisLock,
    /// One atomic Redis script.
    RedisScript,
    /// ticketrush's hold on PostgreSQL.
    TicketrushPg,
    /// ticketrush's hold on Redis.
    TicketrushRedis,
}

impl Strategy {
    /// Every strategy, in the table's order.
    pub const ALL: [Self; 7] = [
        Self::Naive,
        Self::Optimistic,
        Self::Pessimistic,
        Self::RedisLock,
        Self::RedisScript,
        Self::TicketrushPg,
        Self::TicketrushRedis,
    ];

    /// The strategy's name on the command line and in the table.
    pub fn name(self) -> &'static str {
        match self {
            Self::Naive => "naive",
            Self::Optimistic => "optimistic",
            Self::Pessimistic => "pessimistic",
            Self::RedisLock => "redis-lock",
            Self::RedisScript => "redis-script",
            Self::TicketrushPg => "ticketrush-pg",
            Self::TicketrushRedis => "ticketrush-redis",
        }
    }

    /// The strategy named `name` (see [`Strategy::name`]).
    pub fn parse(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|s| s.name() == name)
    }

    /// Whether the strategy is meant to be safe (never oversells); only `naive` is not.
    pub fn is_safe(self) -> bool {
        self != Self::Naive
    }
}

/// The workload every strategy runs, and the services it runs on.
#[derive(Debug, Clone)]
pub struct Workload {
    /// Units of the hot item.
    pub units: u32,
    /// Concurrent clients.
    pub clients: usize,
    /// Buy attempts of all clients together at most (the demand).
    pub attempts: u64,
    /// Optimistic: retries of one attempt before it gives up (counted as an error).
    pub max_retries: u32,
    /// Pool size of the raw PostgreSQL strategies (the clients share it).
    pub pg_connections: u32,
    /// Redis lock: the lock's lease.
    pub lock_lease: Duration,
    /// Redis lock: how long an attempt waits for the lock before it gives up.
    pub lock_wait: Duration,
    /// Redis lock: pause between two tries to take the lock.
    pub lock_retry: Duration,
    /// PostgreSQL URL.
    pub database_url: String,
    /// Redis URL.
    pub redis_url: String,
}

impl Workload {
    /// `units` units for `clients` clients, a demand of five attempts per unit, the other
    /// knobs at the binary's defaults, and the services at `DATABASE_URL` / `REDIS_URL`
    /// (defaults on 127.0.0.1).
    pub fn new(units: u32, clients: usize) -> Self {
        Self {
            units,
            clients,
            attempts: u64::from(units) * 5,
            max_retries: 100,
            pg_connections: 16,
            lock_lease: Duration::from_millis(1_000),
            lock_wait: Duration::from_secs(10),
            lock_retry: Duration::from_millis(1),
            database_url: std::env::var("DATABASE_URL")
                .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/test".to_owned()),
            redis_url: std::env::var("REDIS_URL")
                .unwrap_or_else(|_| "redis://127.0.0.1:6379".to_owned()),
        }
    }

    /// Checks the numbers are usable.
    pub fn validate(&self) -> Result<(), LocksError> {
        if self.units == 0 || self.clients == 0 || self.pg_connections == 0 {
            return Err(LocksError::Config(
                "units, clients and PostgreSQL connections must be at least 1".into(),
            ));
        }
        if self.attempts < u64::from(self.units) {
            return Err(LocksError::Config(format!(
                "{} attempts cannot sell {} units",
                self.attempts, self.units
            )));
        }
        Ok(())
    }
}

/// Why a strategy could not be run (what it got wrong is in its [`Outcome`]).
#[derive(Debug, thiserror::Error)]
pub enum LocksError {
    /// The workload is not usable.
    #[error("invalid workload: {0}")]
    Config(String),
    /// A server could not be reached; the message says how to start it.
    #[error("{what} is not reachable at {url} ({detail}). Start it with `{start}`.")]
    Unreachable {
        /// `Redis` or `PostgreSQL`.
        what: &'static str,
        /// The URL tried.
        url: String,
        /// A command that starts it on this machine.
        start: &'static str,
        /// The connection error and its causes, in one line.
        detail: String,
    },
    /// A PostgreSQL statement failed.
    #[error("PostgreSQL, {context}: {source}")]
    Pg {
        /// What the harness was doing.
        context: &'static str,
        /// The driver's error.
        source: sqlx::Error,
    },
    /// A Redis command failed.
    #[error("Redis, {context}: {source}")]
    Redis {
        /// What the harness was doing.
        context: &'static str,
        /// The driver's error.
        source: redis::RedisError,
    },
    /// ticketrush refused or failed otherwise than by selling out.
    #[error("ticketrush, {context}: {source}")]
    Library {
        /// What the harness was doing.
        context: &'static str,
        /// The library's error.
        source: ticket_core::Error,
    },
    /// Setting up or removing a ticketrush backend failed.
    #[error(transparent)]
    Rush(#[from] RushError),
    /// The fencing token of a Redis-lock attempt was older than the last one written: the
    /// lock had been lost (its lease ran out) and PostgreSQL refused the write.
    #[error("fenced out: token {0} is older than the last write's")]
    FencedOut(i64),
    /// A latency histogram could not be made or merged.
    #[error("latency histogram: {0}")]
    Histogram(String),
    /// A client task panicked.
    #[error("client task failed: {0}")]
    Join(#[from] tokio::task::JoinError),
}

impl LocksError {
    /// `(service, url, detail)` when a server could not be reached (for tests that fail
    /// with how to start it).
    pub fn unreachable(&self) -> Option<(&'static str, &str, &str)> {
        match self {
            Self::Unreachable {
                what, url, detail, ..
            }
            | Self::Rush(RushError::Unreachable {
                what, url, detail, ..
            }) => Some((what, url, detail)),
            _ => None,
        }
    }

    pub(crate) fn pg(context: &'static str) -> impl FnOnce(sqlx::Error) -> Self {
        move |source| Self::Pg { context, source }
    }

    pub(crate) fn redis(context: &'static str) -> impl FnOnce(redis::RedisError) -> Self {
        move |source| Self::Redis { context, source }
    }
}

/// Runs `strategy` on `workload` in a fresh schema / key prefix, reads the store back,
/// removes what it created, and reports.
pub async fn run(strategy: Strategy, workload: &Workload) -> Result<Outcome, LocksError> {
    workload.validate()?;
    match strategy {
        Strategy::Naive | Strategy::Optimistic | Strategy::Pessimistic | Strategy::RedisLock => {
            let pg = raw_pg::RawPg::create(strategy, workload).await?;
            let pg = std::sync::Arc::new(pg);
            let measured = drive::measure(pg.clone(), workload).await;
            let removed = pg.remove().await;
            let outcome = measured?;
            removed?;
            Ok(report::outcome(strategy, workload, outcome))
        }
        Strategy::RedisScript => {
            let r = std::sync::Arc::new(redis_script::ScriptStock::create(workload).await?);
            let measured = drive::measure(r.clone(), workload).await;
            let removed = r.remove().await;
            let outcome = measured?;
            removed?;
            Ok(report::outcome(strategy, workload, outcome))
        }
        Strategy::TicketrushPg | Strategy::TicketrushRedis => {
            let t = std::sync::Arc::new(tr::Ticketrush::create(strategy, workload).await?);
            let measured = drive::measure(t.clone(), workload).await;
            let removed = t.remove().await;
            let outcome = measured?;
            removed?;
            Ok(report::outcome(strategy, workload, outcome))
        }
    }
}

/// Runs `strategies` one after the other on `workload`.
pub async fn run_all(
    strategies: &[Strategy],
    workload: &Workload,
) -> Result<Vec<Outcome>, LocksError> {
    let mut out = Vec::new();
    for s in strategies {
        out.push(run(*s, workload).await?);
    }
    Ok(out)
}
