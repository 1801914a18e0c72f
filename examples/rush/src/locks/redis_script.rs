//! The Redis side: the atomic script strategy, and the lock (with its fencing token) that
//! the `redis-lock` strategy takes around its PostgreSQL update.

use std::time::{Duration, Instant};

use redis::aio::MultiplexedConnection;

use super::drive::{Attempt, Books, Contender, Location};
use super::{LocksError, Workload};
use crate::backend::START_REDIS;
use crate::error::chain;

/// The run's key prefix: `locks:<uuid>:`.
fn prefix() -> String {
    format!("locks:{}:", uuid::Uuid::now_v7().simple())
}

async fn connect(url: &str) -> Result<MultiplexedConnection, redis::RedisError> {
    redis::Client::open(url)?
        .get_multiplexed_async_connection()
        .await
}

/// `redis-script`: stock and orders in Redis, one script per buy.
pub(crate) struct ScriptStock {
    conn: MultiplexedConnection,
    prefix: String,
    stock: String,
    orders: String,
    buy: redis::Script,
}

impl ScriptStock {
    /// Connects and puts `units` in stock under a fresh prefix.
    pub(crate) async fn create(w: &Workload) -> Result<Self, LocksError> {
        let mut conn = connect(&w.redis_url)
            .await
            .map_err(|e| LocksError::Unreachable {
                what: "Redis",
                url: w.redis_url.clone(),
                start: START_REDIS,
                detail: chain(&e),
            })?;
        let p = prefix();
        let me = Self {
            stock: format!("{p}stock"),
            orders: format!("{p}orders"),
            buy: redis::Script::new(include_str!("buy.lua")),
            conn: conn.clone(),
            prefix: p,
        };
        redis::cmd("SET")
            .arg(&me.stock)
            .arg(w.units)
            .query_async::<()>(&mut conn)
            .await
            .map_err(LocksError::redis("putting the stock"))?;
        Ok(me)
    }

    /// Deletes the run's keys.
    pub(crate) async fn remove(&self) -> Result<(), LocksError> {
        redis::cmd("DEL")
            .arg(&self.stock)
            .arg(&self.orders)
            .query_async::<()>(&mut self.conn.clone())
            .await
            .map_err(LocksError::redis("deleting the run's keys"))
    }
}

impl Contender for ScriptStock {
    async fn buy(&self, buyer: u64) -> Result<Attempt, LocksError> {
        let left: i64 = self
            .buy
            .key(&self.stock)
            .key(&self.orders)
            .arg(buyer)
            .invoke_async(&mut self.conn.clone())
            .await
            .map_err(LocksError::redis("running the buy script"))?;
        Ok(if left < 0 {
            Attempt::SoldOut { retries: 0 }
        } else {
            Attempt::Bought { retries: 0 }
        })
    }

    fn location(&self) -> Location {
        Location {
            pg_schema: None,
            redis_prefix: Some(self.prefix.clone()),
        }
    }

    async fn books(&self) -> Result<Books, LocksError> {
        let mut conn = self.conn.clone();
        let orders: u64 = redis::cmd("LLEN")
            .arg(&self.orders)
            .query_async(&mut conn)
            .await
            .map_err(LocksError::redis("counting the orders"))?;
        let stock_left: i64 = redis::cmd("GET")
            .arg(&self.stock)
            .query_async(&mut conn)
            .await
            .map_err(LocksError::redis("reading the stock left"))?;
        Ok(Books { orders, stock_left })
    }
}

/// A Redis lock (`SET NX PX`) with a fencing token (`INCR`), for `redis-lock`.
pub(crate) struct RedisLock {
    conn: MultiplexedConnection,
    prefix: String,
    lock: String,
    fence: String,
    release: redis::Script,
    lease: Duration,
    wait: Duration,
    retry: Duration,
}

/// The lock, held.
pub(crate) struct Held {
    /// This holder's unique value of the lock key.
    pub token: String,
    /// The fencing token: larger than every earlier holder's.
    pub fence: i64,
    /// Failed tries to take the lock before it was taken.
    pub retries: u64,
}

impl RedisLock {
    /// Connects; the keys are under a fresh prefix.
    pub(crate) async fn connect(w: &Workload) -> Result<Self, redis::RedisError> {
        let p = prefix();
        Ok(Self {
            conn: connect(&w.redis_url).await?,
            lock: format!("{p}lock"),
            fence: format!("{p}fence"),
            prefix: p,
            release: redis::Script::new(include_str!("release.lua")),
            lease: w.lock_lease,
            wait: w.lock_wait,
            retry: w.lock_retry,
        })
    }

    /// The lock's key prefix.
    pub(crate) fn prefix(&self) -> String {
        self.prefix.clone()
    }

    /// Tries to take the lock every `retry` for up to `wait`; then takes a fencing token.
    /// `Err(retries)` when the wait ran out.
    pub(crate) async fn acquire(&self) -> Result<Result<Held, u64>, LocksError> {
        let mut conn = self.conn.clone();
        let token = uuid::Uuid::now_v7().simple().to_string();
        let lease_ms = u64::try_from(self.lease.as_millis()).unwrap_or(u64::MAX);
        let deadline = Instant::now() + self.wait;
        let mut retries = 0;
        loop {
            let taken: Option<String> = redis::cmd("SET")
                .arg(&self.lock)
                .arg(&token)
                .arg("NX")
                .arg("PX")
                .arg(lease_ms)
                .query_async(&mut conn)
                .await
                .map_err(LocksError::redis("taking the lock"))?;
            if taken.is_some() {
                break;
            }
            if Instant::now() >= deadline {
                return Ok(Err(retries));
            }
            retries += 1;
            tokio::time::sleep(self.retry).await;
        }
        let fence = match redis::cmd("INCR")
            .arg(&self.fence)
            .query_async::<i64>(&mut conn)
            .await
        {
            Ok(f) => f,
            Err(e) => {
                let _ = self.release(&token).await;
                return Err(LocksError::redis("taking a fencing token")(e));
            }
        };
        Ok(Ok(Held {
            token,
            fence,
            retries,
        }))
    }

    /// Releases the lock if `token` still holds it.
    pub(crate) async fn release(&self, token: &str) -> Result<(), LocksError> {
        self.release
            .key(&self.lock)
            .arg(token)
            .invoke_async::<i64>(&mut self.conn.clone())
            .await
            .map(drop)
            .map_err(LocksError::redis("releasing the lock"))
    }

    /// Deletes the lock's keys.
    pub(crate) async fn remove(&self) -> Result<(), LocksError> {
        redis::cmd("DEL")
            .arg(&self.lock)
            .arg(&self.fence)
            .query_async::<()>(&mut self.conn.clone())
            .await
            .map_err(LocksError::redis("deleting the lock's keys"))
    }
}
