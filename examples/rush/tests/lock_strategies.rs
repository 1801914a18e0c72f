//! The lock-strategies harness (issue 20), small (100 units, 8 clients), against the real
//! PostgreSQL and Redis: every safe strategy sells exactly its units and no more, with the
//! store's books balanced; the naive one is reported with consistent counters (whether it
//! oversells depends on the interleaving, so that is not asserted). Each strategy's schema
//! and keys are gone afterwards (both checked here).
//!
//! Redis and PostgreSQL must be running (`REDIS_URL`, `DATABASE_URL`, defaults on
//! 127.0.0.1): a missing server fails the test with how to start it, never skips it.

use rush::locks::{self, LocksError, Outcome, Strategy, Workload};
use ticketrush_test_support::Service;

fn workload() -> Workload {
    let mut w = Workload::new(100, 8);
    w.pg_connections = 8;
    w
}

async fn run(strategy: Strategy, w: &Workload) -> Outcome {
    match locks::run(strategy, w).await {
        Ok(o) => o,
        Err(e) => match e.unreachable() {
            Some((what, url, detail)) => {
                let service = if what == "Redis" {
                    Service::Redis
                } else {
                    Service::Postgres
                };
                service.unreachable(url, detail.to_owned()).fail()
            }
            None => panic!("{}: {e}", strategy.name()),
        },
    }
}

/// Whether the run's schema or keys are still there.
async fn leftovers(w: &Workload, o: &Outcome) -> Vec<String> {
    let mut left = Vec::new();
    if let Some(schema) = &o.location.pg_schema {
        use sqlx::Connection;
        let mut c = sqlx::PgConnection::connect(&w.database_url)
            .await
            .expect("PostgreSQL for the clean-up check");
        let n: i64 = sqlx::query_scalar("SELECT count(*) FROM pg_namespace WHERE nspname = $1")
            .bind(schema)
            .fetch_one(&mut c)
            .await
            .expect("looking the schema up");
        if n > 0 {
            left.push(format!("schema {schema}"));
        }
    }
    if let Some(prefix) = &o.location.redis_prefix {
        let mut c = redis::Client::open(w.redis_url.as_str())
            .expect("Redis URL")
            .get_multiplexed_async_connection()
            .await
            .expect("Redis for the clean-up check");
        let keys: Vec<String> = redis::cmd("KEYS")
            .arg(format!("{prefix}*"))
            .query_async(&mut c)
            .await
            .expect("listing the prefix's keys");
        left.extend(keys);
    }
    left
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn safe_strategies_sell_exactly_the_units_and_naive_is_reported() {
    let w = workload();
    let mut outcomes = Vec::new();
    for s in Strategy::ALL {
        outcomes.push(run(s, &w).await);
    }
    let table = locks::markdown(&outcomes);
    println!("{table}");
    for o in &outcomes {
        let name = o.strategy.name();
        // The store and the clients agree on every strategy, the naive one included: every
        // buy a client was told of is an order row, and no other.
        assert!(o.orders_match_buys, "{name}: orders ≠ buys\n{table}");
        assert_eq!(o.bought, o.sold, "{name}\n{table}");
        assert!(o.attempts <= w.attempts, "{name}\n{table}");
        assert!(o.sold_out_answers <= w.clients as u64, "{name}\n{table}");
        if o.strategy.is_safe() {
            assert_eq!(o.oversold, 0, "{name} oversold\n{table}");
            assert_eq!(
                o.sold,
                u64::from(w.units),
                "{name} did not sell out\n{table}"
            );
            assert_eq!(o.stock_left, 0, "{name}\n{table}");
            assert_eq!(o.lost_updates, 0, "{name}\n{table}");
            assert!(o.conserved, "{name}: stock + sold ≠ units\n{table}");
            assert_eq!(o.errors, 0, "{name}: {:?}\n{table}", o.first_error);
            // Every client ends on a sold-out answer.
            assert_eq!(o.sold_out_answers, w.clients as u64, "{name}\n{table}");
        } else {
            // Naive: the counters describe one another, whatever the interleaving did.
            assert_eq!(o.oversold, o.sold.saturating_sub(u64::from(w.units)));
            let decremented = i64::from(w.units) - o.stock_left;
            assert_eq!(
                o.lost_updates,
                (i64::try_from(o.sold).expect("sold") - decremented).max(0),
                "{table}"
            );
        }
        assert!(o.p50_ms <= o.p99_ms, "{name}\n{table}");
        // Each run removed its schema and keys.
        assert!(
            o.location.pg_schema.is_some() || o.location.redis_prefix.is_some(),
            "{name}"
        );
        let left = leftovers(&w, o).await;
        assert!(left.is_empty(), "{name} left {left:?}");
    }
}

#[tokio::test]
async fn bad_workloads_are_refused() {
    let mut w = workload();
    w.attempts = 10; // fewer attempts than units
    assert!(matches!(
        locks::run(Strategy::Pessimistic, &w).await,
        Err(LocksError::Config(_))
    ));
    let mut w = workload();
    w.clients = 0;
    assert!(matches!(
        locks::run(Strategy::RedisScript, &w).await,
        Err(LocksError::Config(_))
    ));
}
