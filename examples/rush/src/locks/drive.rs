//! The clients: `clients` tasks buy one unit at a time until each sees the item sold out
//! or the demand is used up; then the store is read back.

use std::future::Future;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use hdrhistogram::Histogram;

use super::{LocksError, Workload};

/// How one buy attempt ended (an error is the `Err` beside it).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Attempt {
    /// A unit was taken and its order written, after `retries` retries.
    Bought {
        /// Retries (optimistic conflicts, failed tries to take the Redis lock).
        retries: u64,
    },
    /// The item was sold out.
    SoldOut {
        /// Retries before the answer.
        retries: u64,
    },
    /// The attempt gave up (retry cap, or no lock within the wait): counted as an error.
    GaveUp {
        /// Retries before giving up.
        retries: u64,
    },
}

/// What the store holds after a run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Books {
    /// Order rows (or holds) in the store.
    pub orders: u64,
    /// The stock counter left (negative when a strategy drove it below 0).
    pub stock_left: i64,
}

/// One strategy's buy, and how to read its store back.
pub(crate) trait Contender: Send + Sync + 'static {
    /// One attempt by buyer number `buyer` (unique per attempt).
    fn buy(&self, buyer: u64) -> impl Future<Output = Result<Attempt, LocksError>> + Send;
    /// Reads the store back.
    fn books(&self) -> impl Future<Output = Result<Books, LocksError>> + Send;
    /// Where the run's data lives: its PostgreSQL schema and Redis key prefix.
    fn location(&self) -> Location;
}

/// Where a run's data lives (removed when it ends).
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize)]
pub struct Location {
    /// The run's PostgreSQL schema.
    pub pg_schema: Option<String>,
    /// The run's Redis key prefix.
    pub redis_prefix: Option<String>,
}

/// What the clients saw, and the store afterwards.
#[derive(Debug)]
pub(crate) struct Measured {
    /// From the first attempt to the last client's end.
    pub wall: Duration,
    /// Attempts made.
    pub attempts: u64,
    /// Buys the clients were told succeeded.
    pub bought: u64,
    /// Sold-out answers.
    pub sold_out: u64,
    /// Retries over all attempts.
    pub retries: u64,
    /// Failed or given-up attempts.
    pub errors: u64,
    /// The first error's message.
    pub first_error: Option<String>,
    /// Latency of attempts that did not end in sold out, in µs.
    pub latency: Histogram<u64>,
    /// The store afterwards.
    pub books: Books,
    /// Where the run's data lived.
    pub location: Location,
}

/// Counters of one client.
struct Client {
    attempts: u64,
    bought: u64,
    sold_out: u64,
    retries: u64,
    errors: u64,
    first_error: Option<String>,
    latency: Histogram<u64>,
}

/// 1 µs to 10 min, 3 significant digits.
fn histogram() -> Result<Histogram<u64>, LocksError> {
    Histogram::new_with_bounds(1, 600_000_000, 3)
        .map_err(|e| LocksError::Histogram(format!("{e:?}")))
}

async fn client<C: Contender>(
    c: Arc<C>,
    next: Arc<AtomicU64>,
    attempts: u64,
    latency: Histogram<u64>,
) -> Client {
    let mut me = Client {
        attempts: 0,
        bought: 0,
        sold_out: 0,
        retries: 0,
        errors: 0,
        first_error: None,
        latency,
    };
    loop {
        let buyer = next.fetch_add(1, Ordering::Relaxed);
        if buyer >= attempts {
            break;
        }
        me.attempts += 1;
        let started = Instant::now();
        let result = c.buy(buyer).await;
        let micros = u64::try_from(started.elapsed().as_micros()).unwrap_or(u64::MAX);
        match result {
            Ok(Attempt::SoldOut { retries }) => {
                me.retries += retries;
                me.sold_out += 1;
                break;
            }
            Ok(Attempt::Bought { retries }) => {
                me.retries += retries;
                me.bought += 1;
            }
            Ok(Attempt::GaveUp { retries }) => {
                me.retries += retries;
                me.errors += 1;
                me.first_error
                    .get_or_insert_with(|| format!("gave up after {retries} retries"));
            }
            Err(e) => {
                me.errors += 1;
                me.first_error.get_or_insert_with(|| e.to_string());
            }
        }
        me.latency.saturating_record(micros.max(1));
    }
    me
}

/// Runs the workload's clients against `c`, then reads the store back.
pub(crate) async fn measure<C: Contender>(c: Arc<C>, w: &Workload) -> Result<Measured, LocksError> {
    let next = Arc::new(AtomicU64::new(0));
    let started = Instant::now();
    let mut tasks = Vec::with_capacity(w.clients);
    for _ in 0..w.clients {
        let latency = histogram()?;
        tasks.push(tokio::spawn(client(
            c.clone(),
            next.clone(),
            w.attempts,
            latency,
        )));
    }
    let mut m = Measured {
        wall: Duration::ZERO,
        attempts: 0,
        bought: 0,
        sold_out: 0,
        retries: 0,
        errors: 0,
        first_error: None,
        latency: histogram()?,
        books: Books::default(),
        location: c.location(),
    };
    for t in tasks {
        let one = t.await?;
        m.attempts += one.attempts;
        m.bought += one.bought;
        m.sold_out += one.sold_out;
        m.retries += one.retries;
        m.errors += one.errors;
        if m.first_error.is_none() {
            m.first_error = one.first_error;
        }
        m.latency
            .add(&one.latency)
            .map_err(|e| LocksError::Histogram(format!("{e:?}")))?;
    }
    m.wall = started.elapsed();
    m.books = c.books().await?;
    Ok(m)
}
