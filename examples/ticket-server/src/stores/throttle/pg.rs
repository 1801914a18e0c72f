//! Throttle state in PostgreSQL: two unlogged tables in the app's schema
//! (`migrations/0003_throttle.sql`)
//! and one `INSERT … ON CONFLICT DO UPDATE … RETURNING` per step (`sql/gcra.sql`,
//! `sql/attempt.sql`): the upsert locks the key's row, so racing steps from every process on
//! the database are serialised.
//!
//! Spent rows (full buckets, forgotten failures) are deleted by a sweep that one call starts
//! in the background at most every [`SWEEP_EVERY_MS`]; the tables hold only keys active within
//! their rule's window (plus up to one sweep period).

use std::sync::Arc;
use std::sync::atomic::{AtomicI64, Ordering};
use std::time::Duration;

use async_trait::async_trait;
use sqlx::postgres::PgPool;
use ticket_core::Timestamp;

use super::{Backoff, Rate, Result, ThrottleError, ThrottleStore, Verdict, check_key};

const GCRA_SQL: &str = include_str!("sql/gcra.sql");
const ATTEMPT_SQL: &str = include_str!("sql/attempt.sql");

/// How often (clock milliseconds) a call starts a sweep of spent rows.
pub const SWEEP_EVERY_MS: i64 = 30_000;

/// How to reach PostgreSQL and where to keep the throttle tables.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PgThrottleConfig {
    /// Connection URL, e.g. `postgres://postgres@127.0.0.1:5432/test`.
    pub url: String,
    /// Schema of the tables (set as `search_path`); 1..=63 lower-case letters, digits or
    /// `_`, not starting with a digit.
    pub schema: String,
    /// Connections in the pool.
    pub max_connections: u32,
    /// Waiting longer than this for a pooled connection fails with `Unavailable`.
    pub acquire_timeout: Duration,
}

impl PgThrottleConfig {
    /// Defaults for `url`: schema `ticketrush_app`, 5 connections, 5 s acquire timeout.
    pub fn new(url: impl Into<String>) -> Self {
        Self {
            url: url.into(),
            schema: "ticketrush_app".into(),
            max_connections: 5,
            acquire_timeout: Duration::from_secs(5),
        }
    }

    /// The same settings under another schema.
    pub fn with_schema(mut self, schema: impl Into<String>) -> Self {
        self.schema = schema.into();
        self
    }
}

/// Throttle state in PostgreSQL. Cheap to clone (a pool).
#[derive(Debug, Clone)]
pub struct PgThrottle {
    pool: PgPool,
    schema: String,
    last_sweep_ms: Arc<AtomicI64>,
}

fn db(e: sqlx::Error) -> ThrottleError {
    ThrottleError::Unavailable(Box::new(e))
}

fn millis(d: Duration) -> i64 {
    i64::try_from(d.as_millis()).unwrap_or(i64::MAX)
}

fn refused(wait_ms: i64) -> Verdict {
    Verdict::Refused {
        retry_after: Duration::from_millis(wait_ms.max(1).unsigned_abs()),
    }
}

impl PgThrottle {
    /// Connects a pool with `search_path` set to `config.schema`. Creates nothing: call
    /// [`PgThrottle::migrate`] (idempotent) before use.
    pub async fn connect(config: PgThrottleConfig) -> Result<Self> {
        let options = crate::stores::support::pg::options(&config.url, &config.schema)
            .map_err(ThrottleError::Invalid)?;
        let pool = crate::stores::support::pg::pool(
            options,
            config.max_connections,
            config.acquire_timeout,
        )
        .await
        .map_err(db)?;
        Ok(Self {
            pool,
            schema: config.schema,
            last_sweep_ms: Arc::new(AtomicI64::new(0)),
        })
    }

    /// Creates the schema if needed and applies the app's migrations not applied yet
    /// ([`crate::stores::migrate`]). Safe at every start and from several processes at once.
    pub async fn migrate(&self) -> Result<()> {
        crate::stores::migrate(&self.pool, &self.schema)
            .await
            .map_err(db)
    }

    /// Deletes spent rows (full buckets, forgotten failures) as of `now`; how many went.
    pub async fn sweep(&self, now: Timestamp) -> Result<u64> {
        let now = now.as_millis();
        let rates = sqlx::query("DELETE FROM throttle_rates WHERE tat_ms <= $1")
            .bind(now)
            .execute(&self.pool)
            .await
            .map_err(db)?;
        let failures = sqlx::query(
            "DELETE FROM throttle_failures \
             WHERE GREATEST(locked_until_ms, last_ms) + forget_ms <= $1",
        )
        .bind(now)
        .execute(&self.pool)
        .await
        .map_err(db)?;
        Ok(rates.rows_affected() + failures.rows_affected())
    }

    /// Starts a background sweep when the last one is [`SWEEP_EVERY_MS`] old (one caller
    /// wins the race to start it).
    fn sweep_if_due(&self, now: Timestamp) {
        let now_ms = now.as_millis();
        let last = self.last_sweep_ms.load(Ordering::Relaxed);
        if now_ms - last < SWEEP_EVERY_MS
            || self
                .last_sweep_ms
                .compare_exchange(last, now_ms, Ordering::AcqRel, Ordering::Relaxed)
                .is_err()
        {
            return;
        }
        let this = self.clone();
        tokio::spawn(async move {
            if let Err(e) = this.sweep(now).await {
                tracing::warn!("throttle sweep failed: {e}");
            }
        });
    }
}

#[async_trait]
impl ThrottleStore for PgThrottle {
    async fn acquire(&self, key: &str, rate: Rate, now: Timestamp) -> Result<Verdict> {
        check_key(key)?;
        self.sweep_if_due(now);
        let now_ms = now.as_millis();
        let (allowed, tat): (bool, i64) = sqlx::query_as(GCRA_SQL)
            .bind(key)
            .bind(now_ms)
            .bind(rate.interval_ms)
            .bind(rate.tolerance_ms)
            .fetch_one(&self.pool)
            .await
            .map_err(db)?;
        Ok(if allowed {
            Verdict::Allowed
        } else {
            refused(tat - rate.tolerance_ms - now_ms)
        })
    }

    async fn attempt(&self, key: &str, backoff: Backoff, now: Timestamp) -> Result<Verdict> {
        check_key(key)?;
        self.sweep_if_due(now);
        let now_ms = now.as_millis();
        let (allowed, locked_until): (bool, i64) = sqlx::query_as(ATTEMPT_SQL)
            .bind(key)
            .bind(now_ms)
            .bind(i64::from(backoff.threshold))
            .bind(millis(backoff.first))
            .bind(millis(backoff.max))
            .bind(millis(backoff.forget_after))
            .fetch_one(&self.pool)
            .await
            .map_err(db)?;
        Ok(if allowed {
            Verdict::Allowed
        } else {
            refused(locked_until - now_ms)
        })
    }

    async fn clear(&self, key: &str) -> Result<()> {
        check_key(key)?;
        sqlx::query("DELETE FROM throttle_failures WHERE key = $1")
            .bind(key)
            .execute(&self.pool)
            .await
            .map_err(db)?;
        Ok(())
    }
}
