//! The PostgreSQL strategies on plain tables: naive, optimistic, pessimistic, and the Redis
//! lock around the PostgreSQL update.
//!
//! Tables, in the run's own schema: `item (id, stock, version, fence)` with one row, and
//! `orders (id, item_id, buyer, created_at)`. `stock` has no `CHECK (stock >= 0)` on
//! purpose: the naive strategy must be free to get it wrong, so the harness can count it.

use sqlx::postgres::{PgPool, PgPoolOptions};

use super::drive::{Attempt, Books, Contender, Location};
use super::redis_script::RedisLock;
use super::{LocksError, Strategy, Workload};
use crate::backend::{START_PG, START_REDIS};
use crate::error::chain;

/// The statements of one run, with its schema in every table name.
struct Sql {
    read: String,
    read_versioned: String,
    read_for_update: String,
    set_stock: String,
    set_versioned: String,
    take_one: String,
    set_fenced: String,
    order: String,
    count_orders: String,
}

impl Sql {
    fn new(schema: &str) -> Self {
        let item = format!("{schema}.item");
        Self {
            read: format!("SELECT stock FROM {item} WHERE id = 1"),
            read_versioned: format!("SELECT stock, version FROM {item} WHERE id = 1"),
            read_for_update: format!("SELECT stock FROM {item} WHERE id = 1 FOR UPDATE"),
            set_stock: format!("UPDATE {item} SET stock = $1 WHERE id = 1"),
            set_versioned: format!(
                "UPDATE {item} SET stock = $1, version = version + 1 WHERE id = 1 AND version = $2"
            ),
            take_one: format!("UPDATE {item} SET stock = stock - 1 WHERE id = 1"),
            set_fenced: format!(
                "UPDATE {item} SET stock = $1, fence = $2 WHERE id = 1 AND fence < $2"
            ),
            order: format!("INSERT INTO {schema}.orders (item_id, buyer) VALUES (1, $1)"),
            count_orders: format!("SELECT count(*) FROM {schema}.orders"),
        }
    }
}

/// One raw PostgreSQL strategy's tables and pool (and Redis lock, for `redis-lock`).
pub(crate) struct RawPg {
    strategy: Strategy,
    pool: PgPool,
    schema: String,
    sql: Sql,
    max_retries: u32,
    lock: Option<RedisLock>,
}

impl RawPg {
    /// Connects, creates the run's schema and tables with `units` in stock.
    pub(crate) async fn create(strategy: Strategy, w: &Workload) -> Result<Self, LocksError> {
        let pool = PgPoolOptions::new()
            .max_connections(w.pg_connections)
            .connect(&w.database_url)
            .await
            .map_err(|e| LocksError::Unreachable {
                what: "PostgreSQL",
                url: w.database_url.clone(),
                start: START_PG,
                detail: chain(&e),
            })?;
        let lock = match strategy {
            Strategy::RedisLock => {
                Some(
                    RedisLock::connect(w)
                        .await
                        .map_err(|e| LocksError::Unreachable {
                            what: "Redis",
                            url: w.redis_url.clone(),
                            start: START_REDIS,
                            detail: chain(&e),
                        })?,
                )
            }
            _ => None,
        };
        let schema = format!("locks_{}", uuid::Uuid::now_v7().simple());
        let me = Self {
            strategy,
            pool,
            sql: Sql::new(&schema),
            schema,
            max_retries: w.max_retries,
            lock,
        };
        if let Err(e) = me.tables(w.units).await {
            // Best effort: the schema may be half made.
            let _ = me.remove().await;
            return Err(e);
        }
        Ok(me)
    }

    async fn tables(&self, units: u32) -> Result<(), LocksError> {
        let s = &self.schema;
        for statement in [
            format!("CREATE SCHEMA {s}"),
            format!(
                "CREATE TABLE {s}.item (id int PRIMARY KEY, stock int NOT NULL, \
                 version bigint NOT NULL DEFAULT 0, fence bigint NOT NULL DEFAULT 0)"
            ),
            format!(
                "CREATE TABLE {s}.orders (id bigserial PRIMARY KEY, item_id int NOT NULL, \
                 buyer bigint NOT NULL, created_at timestamptz NOT NULL DEFAULT now())"
            ),
            format!("INSERT INTO {s}.item (id, stock) VALUES (1, {units})"),
        ] {
            sqlx::query(&statement)
                .execute(&self.pool)
                .await
                .map_err(LocksError::pg("creating the run's tables"))?;
        }
        Ok(())
    }

    /// Drops the run's schema and its Redis keys, and closes the pool.
    pub(crate) async fn remove(&self) -> Result<(), LocksError> {
        let dropped = sqlx::query(&format!("DROP SCHEMA IF EXISTS {} CASCADE", self.schema))
            .execute(&self.pool)
            .await
            .map_err(LocksError::pg("dropping the run's schema"));
        self.pool.close().await;
        if let Some(lock) = &self.lock {
            lock.remove().await?;
        }
        dropped.map(drop)
    }

    /// Naive: read, write `read − 1`, no lock (READ COMMITTED).
    async fn naive(&self, buyer: i64) -> Result<Attempt, LocksError> {
        let mut tx = self.pool.begin().await.map_err(LocksError::pg("begin"))?;
        let stock: i32 = sqlx::query_scalar(&self.sql.read)
            .fetch_one(&mut *tx)
            .await
            .map_err(LocksError::pg("reading the stock"))?;
        if stock <= 0 {
            tx.rollback().await.map_err(LocksError::pg("rollback"))?;
            return Ok(Attempt::SoldOut { retries: 0 });
        }
        sqlx::query(&self.sql.set_stock)
            .bind(stock - 1)
            .execute(&mut *tx)
            .await
            .map_err(LocksError::pg("writing the stock"))?;
        self.order(&mut tx, buyer).await?;
        tx.commit().await.map_err(LocksError::pg("commit"))?;
        Ok(Attempt::Bought { retries: 0 })
    }

    /// Optimistic: compare-and-set on the version, retried on a conflict.
    async fn optimistic(&self, buyer: i64) -> Result<Attempt, LocksError> {
        let mut retries = 0;
        loop {
            let (stock, version): (i32, i64) = sqlx::query_as(&self.sql.read_versioned)
                .fetch_one(&self.pool)
                .await
                .map_err(LocksError::pg("reading the stock and version"))?;
            if stock <= 0 {
                return Ok(Attempt::SoldOut { retries });
            }
            let mut tx = self.pool.begin().await.map_err(LocksError::pg("begin"))?;
            let changed = sqlx::query(&self.sql.set_versioned)
                .bind(stock - 1)
                .bind(version)
                .execute(&mut *tx)
                .await
                .map_err(LocksError::pg(
                    "writing the stock if the version is unchanged",
                ))?
                .rows_affected();
            if changed == 1 {
                self.order(&mut tx, buyer).await?;
                tx.commit().await.map_err(LocksError::pg("commit"))?;
                return Ok(Attempt::Bought { retries });
            }
            tx.rollback().await.map_err(LocksError::pg("rollback"))?;
            if retries >= u64::from(self.max_retries) {
                return Ok(Attempt::GaveUp { retries });
            }
            retries += 1;
        }
    }

    /// Pessimistic: the row locked for the whole transaction.
    async fn pessimistic(&self, buyer: i64) -> Result<Attempt, LocksError> {
        let mut tx = self.pool.begin().await.map_err(LocksError::pg("begin"))?;
        let stock: i32 = sqlx::query_scalar(&self.sql.read_for_update)
            .fetch_one(&mut *tx)
            .await
            .map_err(LocksError::pg("locking the stock row"))?;
        if stock <= 0 {
            tx.rollback().await.map_err(LocksError::pg("rollback"))?;
            return Ok(Attempt::SoldOut { retries: 0 });
        }
        sqlx::query(&self.sql.take_one)
            .execute(&mut *tx)
            .await
            .map_err(LocksError::pg("taking a unit"))?;
        self.order(&mut tx, buyer).await?;
        tx.commit().await.map_err(LocksError::pg("commit"))?;
        Ok(Attempt::Bought { retries: 0 })
    }

    /// Redis lock: take the lock, get a fencing token, read and write under the lock with
    /// the write refused for an older token, release.
    async fn redis_locked(&self, lock: &RedisLock, buyer: i64) -> Result<Attempt, LocksError> {
        let held = match lock.acquire().await? {
            Ok(held) => held,
            Err(retries) => return Ok(Attempt::GaveUp { retries }),
        };
        let result = self.fenced(held.fence, buyer).await;
        // Released whatever the update did; a lease that ran out is reported by the fence.
        let released = lock.release(&held.token).await;
        let attempt = match result? {
            Fenced::SoldOut => Attempt::SoldOut {
                retries: held.retries,
            },
            Fenced::Bought => Attempt::Bought {
                retries: held.retries,
            },
        };
        released?;
        Ok(attempt)
    }

    async fn fenced(&self, fence: i64, buyer: i64) -> Result<Fenced, LocksError> {
        let mut tx = self.pool.begin().await.map_err(LocksError::pg("begin"))?;
        let stock: i32 = sqlx::query_scalar(&self.sql.read)
            .fetch_one(&mut *tx)
            .await
            .map_err(LocksError::pg("reading the stock"))?;
        if stock <= 0 {
            tx.rollback().await.map_err(LocksError::pg("rollback"))?;
            return Ok(Fenced::SoldOut);
        }
        let changed = sqlx::query(&self.sql.set_fenced)
            .bind(stock - 1)
            .bind(fence)
            .execute(&mut *tx)
            .await
            .map_err(LocksError::pg("writing the stock under the fencing token"))?
            .rows_affected();
        if changed == 0 {
            tx.rollback().await.map_err(LocksError::pg("rollback"))?;
            return Err(LocksError::FencedOut(fence));
        }
        self.order(&mut tx, buyer).await?;
        tx.commit().await.map_err(LocksError::pg("commit"))?;
        Ok(Fenced::Bought)
    }

    async fn order(
        &self,
        tx: &mut sqlx::Transaction<'static, sqlx::Postgres>,
        buyer: i64,
    ) -> Result<(), LocksError> {
        sqlx::query(&self.sql.order)
            .bind(buyer)
            .execute(&mut **tx)
            .await
            .map_err(LocksError::pg("writing the order"))?;
        Ok(())
    }
}

/// How a fenced update ended.
enum Fenced {
    SoldOut,
    Bought,
}

impl Contender for RawPg {
    async fn buy(&self, buyer: u64) -> Result<Attempt, LocksError> {
        let buyer = i64::try_from(buyer).unwrap_or(i64::MAX);
        match (self.strategy, &self.lock) {
            (Strategy::Optimistic, _) => self.optimistic(buyer).await,
            (Strategy::Pessimistic, _) => self.pessimistic(buyer).await,
            (Strategy::RedisLock, Some(lock)) => self.redis_locked(lock, buyer).await,
            (Strategy::RedisLock, None) => Err(LocksError::Config(
                "the redis-lock strategy has no Redis connection".into(),
            )),
            // `create` is only called with the four strategies above and naive.
            _ => self.naive(buyer).await,
        }
    }

    fn location(&self) -> Location {
        Location {
            pg_schema: Some(self.schema.clone()),
            redis_prefix: self.lock.as_ref().map(RedisLock::prefix),
        }
    }

    async fn books(&self) -> Result<Books, LocksError> {
        let orders: i64 = sqlx::query_scalar(&self.sql.count_orders)
            .fetch_one(&self.pool)
            .await
            .map_err(LocksError::pg("counting the orders"))?;
        let stock: i32 = sqlx::query_scalar(&self.sql.read)
            .fetch_one(&self.pool)
            .await
            .map_err(LocksError::pg("reading the stock left"))?;
        Ok(Books {
            orders: u64::try_from(orders).unwrap_or(0),
            stock_left: i64::from(stock),
        })
    }
}
