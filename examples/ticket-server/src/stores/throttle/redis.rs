//! Throttle state in Redis: one Lua script per step, so a check and its update are one
//! atomic step for every process on the same Redis and prefix.
//!
//! Keys: `<prefix>:throttle:rate:<key>` (a string: the TAT, epoch ms, expiring when the
//! bucket is full again) and `<prefix>:throttle:fail:<key>` (a hash `count`,
//! `locked_until`, `last`, expiring when the failures may be forgotten). Every key has a TTL,
//! so Redis holds only keys active within their rule's window.

use std::time::Duration;

use async_trait::async_trait;
use redis::Script;
use redis::aio::ConnectionManager;
use ticket_core::Timestamp;

use super::{Backoff, Rate, Result, ThrottleError, ThrottleStore, Verdict, check_key};

const GCRA_LUA: &str = include_str!("lua/gcra.lua");
const ATTEMPT_LUA: &str = include_str!("lua/attempt.lua");

/// How to reach Redis and where to keep the throttle keys.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RedisThrottleConfig {
    /// Connection URL, e.g. `redis://127.0.0.1:6379`.
    pub url: String,
    /// Prefix of every key (`<prefix>:throttle:…`); 1..=128 bytes of letters, digits and
    /// `-_:.`.
    pub prefix: String,
    /// A call waiting longer than this for Redis fails with `Unavailable`.
    pub response_timeout: Duration,
    /// Connecting longer than this fails with `Unavailable`.
    pub connection_timeout: Duration,
}

impl RedisThrottleConfig {
    /// Defaults for `url`: prefix `ticketrush`, 5 s timeouts.
    pub fn new(url: impl Into<String>) -> Self {
        Self {
            url: url.into(),
            prefix: "ticketrush".into(),
            response_timeout: Duration::from_secs(5),
            connection_timeout: Duration::from_secs(5),
        }
    }

    /// The same settings under another key prefix.
    pub fn with_prefix(mut self, prefix: impl Into<String>) -> Self {
        self.prefix = prefix.into();
        self
    }
}

/// Throttle state in Redis. Cheap to clone (one multiplexed, self-reconnecting connection).
#[derive(Clone)]
pub struct RedisThrottle {
    conn: ConnectionManager,
    prefix: String,
    gcra: Script,
    attempt: Script,
}

impl std::fmt::Debug for RedisThrottle {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RedisThrottle")
            .field("prefix", &self.prefix)
            .finish_non_exhaustive()
    }
}

fn unavailable(e: redis::RedisError) -> ThrottleError {
    ThrottleError::Unavailable(Box::new(e))
}

fn millis(d: Duration) -> i64 {
    i64::try_from(d.as_millis()).unwrap_or(i64::MAX)
}

fn verdict(wait_ms: i64) -> Result<Verdict> {
    match wait_ms {
        0 => Ok(Verdict::Allowed),
        w if w > 0 => Ok(Verdict::Refused {
            retry_after: Duration::from_millis(w.unsigned_abs()),
        }),
        w => Err(ThrottleError::Corrupt(format!("script answered {w}"))),
    }
}

impl RedisThrottle {
    /// Connects to `config.url` and checks Redis answers (`PING`).
    pub async fn connect(config: RedisThrottleConfig) -> Result<Self> {
        crate::stores::support::redis::check_prefix(&config.prefix)
            .map_err(ThrottleError::Invalid)?;
        let conn = crate::stores::support::redis::connect(
            &config.url,
            config.response_timeout,
            config.connection_timeout,
        )
        .await
        .map_err(|e| match e {
            crate::stores::support::redis::ConnectError::Url(m) => ThrottleError::Invalid(m),
            crate::stores::support::redis::ConnectError::Redis(e) => unavailable(e),
        })?;
        Ok(Self {
            conn,
            prefix: config.prefix,
            gcra: Script::new(GCRA_LUA),
            attempt: Script::new(ATTEMPT_LUA),
        })
    }
}

#[async_trait]
impl ThrottleStore for RedisThrottle {
    async fn acquire(&self, key: &str, rate: Rate, now: Timestamp) -> Result<Verdict> {
        check_key(key)?;
        let wait: i64 = self
            .gcra
            .key(format!("{}:throttle:rate:{key}", self.prefix))
            .arg(now.as_millis())
            .arg(rate.interval_ms)
            .arg(rate.tolerance_ms)
            .invoke_async(&mut self.conn.clone())
            .await
            .map_err(unavailable)?;
        verdict(wait)
    }

    async fn attempt(&self, key: &str, backoff: Backoff, now: Timestamp) -> Result<Verdict> {
        check_key(key)?;
        let wait: i64 = self
            .attempt
            .key(format!("{}:throttle:fail:{key}", self.prefix))
            .arg(now.as_millis())
            .arg(backoff.threshold)
            .arg(millis(backoff.first))
            .arg(millis(backoff.max))
            .arg(millis(backoff.forget_after))
            .invoke_async(&mut self.conn.clone())
            .await
            .map_err(unavailable)?;
        verdict(wait)
    }

    async fn clear(&self, key: &str) -> Result<()> {
        check_key(key)?;
        let _: i64 = redis::cmd("UNLINK")
            .arg(format!("{}:throttle:fail:{key}", self.prefix))
            .query_async(&mut self.conn.clone())
            .await
            .map_err(unavailable)?;
        Ok(())
    }
}
