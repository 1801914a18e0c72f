//! The rush simulator, small (5 000 users for 500 units, simulated clock; 1 000 for 100 on
//! PostgreSQL), on the memory, Redis and PostgreSQL backends: every correctness counter read back from the store and
//! the sandbox is 0, nothing is oversold, and every unsold unit is explained. Each run
//! works in its own key prefix or schema and removes it (checked here).
//!
//! Redis and PostgreSQL must be running (`REDIS_URL`, `DATABASE_URL`, defaults on
//! 127.0.0.1): a missing server fails the test with how to start it, never skips it.

use rush::{Checks, Config, Mix, Report, RushError, StoreKind};
use ticket_store_pg::{PgConfig, PgStore};
use ticket_store_redis::{RedisConfig, RedisStore};
use ticketrush_test_support::Service;

/// Users and units per backend: PostgreSQL runs every queue change of a session as one
/// transaction under the session's queue row lock with a WAL flush (about 1 000 a second
/// on this 2-core machine), so it gets a fifth of the crowd to stay within seconds.
fn size(store: StoreKind) -> (u32, u32) {
    match store {
        StoreKind::Memory | StoreKind::Redis => (5_000, 500),
        StoreKind::Pg => (1_000, 100),
    }
}

async fn simulate(store: StoreKind) -> Report {
    let (users, units) = size(store);
    let mut config = Config::new(users, units, store);
    config.sim_clock = true;
    config.seed = 11;
    // More of the rarer behaviours than the default, so every path runs in a small crowd.
    config.mix = Mix {
        pay_success: 0.6,
        decline: 0.15,
        abandon: 0.1,
        cancel_later: 0.15,
    };
    match rush::run(&config).await {
        Ok(report) => report,
        Err(RushError::Unreachable { url, detail, .. }) => {
            let service = match store {
                StoreKind::Redis => Service::Redis,
                _ => Service::Postgres,
            };
            service.unreachable(&url, detail).fail()
        }
        Err(e) => panic!("the run failed: {e}"),
    }
}

fn assert_correct(report: &Report) {
    let text = report.to_text();
    let (users, units) = size(report.config.store);
    assert_eq!(report.checks, Checks::default(), "{text}");
    assert_eq!(report.exit_code(), 0, "{text}");
    assert_eq!((report.failed_calls, report.users.lost), (0, 0), "{text}");
    let u = &report.units;
    assert_eq!(u.capacity, u64::from(units), "{text}");
    assert!(u.sold <= u.capacity, "{text}");
    assert_eq!(u.sold, u.capacity - (u.held + u.available), "{text}");
    assert!(report.remainder_explained, "{text}");
    assert_eq!(
        (u.queue_waiting_at_end, u.queue_active_at_end),
        (0, 0),
        "{text}"
    );
    // The simulated clock expires every abandoned hold before the checks.
    assert_eq!(u.in_live_holds, 0, "{text}");
    // Whatever was not sold came back after the last sale or was never taken, by cause.
    let back = u.returned_after_last_sale.total();
    assert_eq!(
        i64::try_from(u.available).expect("units") - i64::try_from(back).expect("units"),
        u.on_sale_at_last_sale,
        "{text}"
    );
    // The run exercised every path.
    let t = &report.users;
    assert!(
        t.bought > 0 && t.declined > 0 && t.abandoned > 0 && t.cancelled > 0,
        "{text}"
    );
    assert!(t.saw_sold_out > 0, "{text}");
    assert_eq!(report.evidence.joins, u64::from(users), "{text}");
    assert!(report.evidence.admissions > 0, "{text}");
    assert!(report.ops.iter().all(|o| o.calls > 0), "{text}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn small_rush_on_memory_is_correct() {
    let report = simulate(StoreKind::Memory).await;
    assert_correct(&report);
    assert_eq!(report.location, "memory");
    // The report is JSON for machines and an SVG for people.
    let json = serde_json::to_value(&report).expect("JSON");
    assert_eq!(json["checks"]["fifo_inversions"], 0);
    let svg = std::env::temp_dir().join(format!("rush-small-{}.svg", std::process::id()));
    rush::plot::write_svg(&report, &svg).expect("plot");
    let drawn = std::fs::read_to_string(&svg).expect("SVG written");
    std::fs::remove_file(&svg).expect("remove the SVG");
    assert!(
        drawn.starts_with("<svg") && drawn.contains("units sold"),
        "{drawn}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn small_rush_on_redis_is_correct_and_leaves_no_key() {
    let report = simulate(StoreKind::Redis).await;
    assert_correct(&report);
    let prefix = report
        .location
        .strip_prefix("redis prefix ")
        .expect("a Redis location");
    let url = report.config.redis_url.clone();
    let store = RedisStore::connect(RedisConfig::new(&url).with_prefix(prefix))
        .await
        .expect("Redis still reachable");
    assert_eq!(
        store.delete_all_keys().await.expect("scan"),
        0,
        "the run left keys under {prefix}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn small_rush_on_postgres_is_correct_and_leaves_no_schema() {
    let report = simulate(StoreKind::Pg).await;
    assert_correct(&report);
    let schema = report
        .location
        .strip_prefix("pg schema ")
        .expect("a PostgreSQL location");
    let url = report.config.database_url.clone();
    let store = PgStore::connect(PgConfig::new(&url))
        .await
        .expect("PostgreSQL still reachable");
    let left: i64 = sqlx::query_scalar("SELECT count(*) FROM pg_namespace WHERE nspname = $1")
        .bind(schema)
        .fetch_one(store.pool())
        .await
        .expect("query");
    assert_eq!(left, 0, "the run left schema {schema}");
}
