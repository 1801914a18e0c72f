//! Sign-in throttling: rate-limit state kept in the shared store, so that limits hold across
//! every server process on one Redis or PostgreSQL (per process on memory), and a bound on
//! concurrent password hashing.
//!
//! Two kinds of state, each changed in **one atomic step per check** ([`ThrottleStore`]):
//!
//! * **Rates** ([`ThrottleStore::acquire`]): GCRA, the generic cell rate algorithm. A key
//!   keeps one instant, its theoretical arrival time (TAT). `count` per `period` allows a
//!   burst of `count`, then one more every `period / count`. A key whose TAT has passed is
//!   a full bucket, so the store drops it (Redis: a TTL; PostgreSQL: swept; memory: swept).
//! * **Failure backoff** ([`ThrottleStore::attempt`]): per account, every login attempt is
//!   counted *before* the password is checked (so concurrent attempts cannot all slip in
//!   before the first failure is written); the attempt that reaches `threshold` locks the
//!   key for `first`, each later one doubles the lock up to `max`; while locked, attempts
//!   are refused and not counted. A successful login clears the key
//!   ([`ThrottleStore::clear`]); `forget_after` past the later of the last attempt and the
//!   lock's end the key is forgotten.
//!
//! | backend | atomic step |
//! |---|---|
//! | [`MemoryThrottle`] | one mutex over two maps (one process) |
//! | [`RedisThrottle`] | one Lua script per step (`lua/gcra.lua`, `lua/attempt.lua`), keys with a TTL |
//! | [`PgThrottle`] | one `INSERT … ON CONFLICT DO UPDATE … RETURNING` per step (`sql/gcra.sql`, `sql/attempt.sql`) |
//!
//! Instants come from the server's clock; processes sharing a store should keep their clocks
//! in step (NTP): a skew of `d` shifts a shared limit by up to `d`.

mod memory;
mod pg;
mod policy;
mod redis;

use std::fmt;
use std::time::Duration;

use async_trait::async_trait;
use ticket_core::Timestamp;

pub use self::redis::{RedisThrottle, RedisThrottleConfig};
pub use memory::MemoryThrottle;
pub use pg::{PgThrottle, PgThrottleConfig};
pub use policy::{Failures, attempt_step, gcra_step};

/// The longest key accepted, in bytes.
pub const MAX_KEY_LEN: usize = 200;

/// A rate: `count` requests per `period`, in bursts of up to `count`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Rate {
    /// Milliseconds between two requests once the burst is spent (`period / count`, ≥ 1).
    pub interval_ms: i64,
    /// How far ahead of now the TAT may run: `interval_ms × (count − 1)`.
    pub tolerance_ms: i64,
}

impl Rate {
    /// `count` per `period`; `None` when `count` is 0 (the limit is off).
    pub fn new(count: u32, period: Duration) -> Option<Self> {
        if count == 0 {
            return None;
        }
        let period_ms = i64::try_from(period.as_millis()).unwrap_or(i64::MAX);
        let interval_ms = (period_ms / i64::from(count)).max(1);
        Some(Self {
            interval_ms,
            tolerance_ms: interval_ms.saturating_mul(i64::from(count) - 1),
        })
    }
}

/// The failure backoff of one kind of key.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Backoff {
    /// The attempt that makes this many counted attempts locks the key (≥ 1).
    pub threshold: u32,
    /// The first lock.
    pub first: Duration,
    /// The longest lock.
    pub max: Duration,
    /// A key is forgotten this long after the later of its last attempt and its lock's end.
    pub forget_after: Duration,
}

/// The answer of a step.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    /// Go ahead (the request was counted).
    Allowed,
    /// Refused; wait this long (at least 1 ms) before trying again. Nothing was counted.
    Refused {
        /// How long until a request would be allowed.
        retry_after: Duration,
    },
}

/// What a [`ThrottleStore`] call can fail with.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ThrottleError {
    /// The key is empty or longer than [`MAX_KEY_LEN`]; nothing was counted.
    #[error("invalid throttle key: {0}")]
    InvalidKey(String),
    /// The configuration is unusable (a prefix, a schema, a URL).
    #[error("invalid throttle configuration: {0}")]
    Invalid(String),
    /// The store failed or did not answer; the request may or may not have been counted.
    #[error("throttle store unavailable")]
    Unavailable(#[source] Box<dyn std::error::Error + Send + Sync>),
    /// The store answered something this code never writes.
    #[error("throttle store corrupt: {0}")]
    Corrupt(String),
}

/// Results of [`ThrottleStore`] calls.
pub type Result<T> = std::result::Result<T, ThrottleError>;

pub(crate) fn check_key(key: &str) -> Result<()> {
    if key.is_empty() || key.len() > MAX_KEY_LEN {
        return Err(ThrottleError::InvalidKey(format!(
            "must be 1 to {MAX_KEY_LEN} bytes"
        )));
    }
    Ok(())
}

/// Where rate-limit state lives. Every method is one atomic step on the store: callers on any
/// number of tasks and (for Redis and PostgreSQL) processes never both take the last request
/// of a bucket, and never both pass a lock.
#[async_trait]
pub trait ThrottleStore: Send + Sync + fmt::Debug {
    /// One GCRA step for `key` at `now` (see the module docs): counts the request and
    /// answers [`Verdict::Allowed`], or answers how long to wait and counts nothing.
    async fn acquire(&self, key: &str, rate: Rate, now: Timestamp) -> Result<Verdict>;

    /// One login attempt for `key` at `now` under `backoff`: refused while the key is locked
    /// (nothing counted), otherwise counted (and the key locked when this attempt reaches the
    /// threshold) and allowed.
    async fn attempt(&self, key: &str, backoff: Backoff, now: Timestamp) -> Result<Verdict>;

    /// Forgets `key`'s attempts and lock (after a successful login). Idempotent.
    async fn clear(&self, key: &str) -> Result<()>;
}
