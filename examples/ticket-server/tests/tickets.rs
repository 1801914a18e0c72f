//! The ticket use marks' guarantees, one shared test body per property, run on every backend:
//! memory, Redis (`REDIS_URL`, default redis://127.0.0.1:6379) and PostgreSQL
//! (`DATABASE_URL`, default postgres://postgres@127.0.0.1:5432/test). Each test works under
//! its own key prefix or schema, removed at the end (also when the test fails). A backend
//! that cannot be reached fails the test: these tests never skip.

use std::collections::HashMap;
use std::sync::Arc;

use ticket_core::{HoldId, Timestamp};
use ticket_server::tickets::{
    MAX_GATE_LEN, MemoryTickets, PgTickets, PgTicketsConfig, RedisTickets, RedisTicketsConfig,
    TicketError, TicketId, TicketStore, UseOutcome, UsedMark,
};

// ---------------------------------------------------------------------------------------------
// backends

/// Two handles on one isolated store (for Redis and PostgreSQL: separate connections, as two
/// server processes would have), and the clean-up that runs when it is dropped.
struct Backend {
    a: Arc<dyn TicketStore>,
    b: Arc<dyn TicketStore>,
    guard: Guard,
}

/// What to remove when the test ends.
enum Cleanup {
    None,
    Redis(RedisTicketsConfig),
    Pg(PgTicketsConfig),
}

/// Runs its [`Cleanup`] when dropped.
struct Guard(Cleanup);

impl Drop for Guard {
    fn drop(&mut self) {
        let job = std::mem::replace(&mut self.0, Cleanup::None);
        if matches!(job, Cleanup::None) {
            return;
        }
        // Drop cannot await, and the test's runtime may be shutting down: clean up on a plain
        // thread with its own runtime and connection, and wait for it.
        let done = std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .expect("clean-up runtime");
            rt.block_on(async move {
                match job {
                    Cleanup::None => Ok(()),
                    Cleanup::Redis(config) => match RedisTickets::connect(config).await {
                        Ok(t) => t.delete_all().await.map(|_| ()),
                        Err(e) => Err(e),
                    },
                    Cleanup::Pg(config) => PgTickets::drop_schema(&config).await,
                }
            })
        })
        .join();
        if !matches!(done, Ok(Ok(()))) {
            eprintln!("ticket test clean-up failed: {done:?}");
        }
    }
}

fn loud_failure(service: &str, var: &str, url: &str, error: &TicketError, how: &str) -> ! {
    panic!(
        "{service} is not reachable at {url} ({error}). The tickets' {service} tests need a \
         real server: start one with `{how}`, or point {var} at one. {}",
        if std::env::var("CI").as_deref() == Ok("true") {
            "CI=true: this is a failure, not a skip."
        } else {
            "These tests are never skipped silently."
        }
    )
}

async fn memory() -> Backend {
    let t: Arc<dyn TicketStore> = Arc::new(MemoryTickets::new());
    Backend {
        a: t.clone(),
        b: t,
        guard: Guard(Cleanup::None),
    }
}

fn redis_config() -> (String, RedisTicketsConfig) {
    let url = std::env::var("REDIS_URL").unwrap_or_else(|_| "redis://127.0.0.1:6379".into());
    let config = RedisTicketsConfig::new(&url)
        .with_prefix(format!("tr-test:{}", uuid::Uuid::now_v7().simple()));
    (url, config)
}

async fn redis_connect(url: &str, config: &RedisTicketsConfig) -> RedisTickets {
    RedisTickets::connect(config.clone())
        .await
        .unwrap_or_else(|e| {
            loud_failure(
                "Redis",
                "REDIS_URL",
                url,
                &e,
                "redis-server --daemonize yes --port 6379 --save '' --appendonly no",
            )
        })
}

async fn redis() -> Backend {
    let (url, config) = redis_config();
    let guard = Guard(Cleanup::Redis(config.clone()));
    Backend {
        a: Arc::new(redis_connect(&url, &config).await),
        b: Arc::new(redis_connect(&url, &config).await),
        guard,
    }
}

async fn pg() -> Backend {
    let url = std::env::var("DATABASE_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/test".into());
    let config = PgTicketsConfig::new(&url)
        .with_schema(format!("tr_tickets_test_{}", uuid::Uuid::now_v7().simple()));
    let guard = Guard(Cleanup::Pg(config.clone()));
    let connect = || async {
        PgTickets::connect(config.clone())
            .await
            .unwrap_or_else(|e| {
                loud_failure(
                    "PostgreSQL",
                    "DATABASE_URL",
                    &url,
                    &e,
                    "pg_ctlcluster --skip-systemctl-redirect $(ls /etc/postgresql) main start",
                )
            })
    };
    let a = connect().await;
    let b = connect().await;
    // both "processes" migrate at once: idempotent and race-free
    let (ra, rb) = tokio::join!(a.migrate(), b.migrate());
    ra.expect("migrate");
    rb.expect("migrate");
    a.migrate().await.expect("migrate again");
    Backend {
        a: Arc::new(a),
        b: Arc::new(b),
        guard,
    }
}

// ---------------------------------------------------------------------------------------------
// helpers

fn at(ms: i64) -> Timestamp {
    Timestamp::from_millis(1_700_000_000_000 + ms)
}

fn hold() -> HoldId {
    HoldId::new_at(at(0))
}

fn ticket(hold: HoldId, n: u32) -> TicketId {
    TicketId::new(hold, n).expect("ticket id")
}

// ---------------------------------------------------------------------------------------------
// bodies

async fn first_use_then_already_used(bk: Backend) {
    let h = hold();
    let (t1, t2) = (ticket(h, 1), ticket(h, 2));
    assert_eq!(
        bk.a.mark_used(&t1, "gate-a", at(1_000)).await.unwrap(),
        UseOutcome::FirstUse { at: at(1_000) }
    );
    // another process, later, another gate: the first mark, unchanged
    assert_eq!(
        bk.b.mark_used(&t1, "gate-b", at(2_000)).await.unwrap(),
        UseOutcome::AlreadyUsed {
            at: at(1_000),
            by: "gate-a".into()
        }
    );
    assert_eq!(
        bk.a.mark_used(&t1, "gate-a", at(3_000)).await.unwrap(),
        UseOutcome::AlreadyUsed {
            at: at(1_000),
            by: "gate-a".into()
        }
    );
    // the hold's other ticket is its own
    let used = bk.b.used(&[t1, t2]).await.unwrap();
    assert_eq!(
        used,
        HashMap::from([(
            t1,
            UsedMark {
                at: at(1_000),
                by: "gate-a".into()
            }
        )])
    );
    assert_eq!(
        bk.b.mark_used(&t2, "gate-b", at(4_000)).await.unwrap(),
        UseOutcome::FirstUse { at: at(4_000) }
    );
    assert_eq!(bk.a.used(&[t1, t2]).await.unwrap().len(), 2);
}

async fn used_reads_many_holds(bk: Backend) {
    assert!(bk.a.used(&[]).await.unwrap().is_empty());
    let holds: Vec<HoldId> = (0..5).map(|_| hold()).collect();
    let mut all = Vec::new();
    let mut expected = HashMap::new();
    for (i, h) in holds.iter().enumerate() {
        for n in 1..=4u32 {
            let t = ticket(*h, n);
            all.push(t);
            // every other ticket is used, by a gate named after it
            if (i as u32 + n).is_multiple_of(2) {
                let by = format!("gate-{i}-{n}");
                let now = at(i64::from(n) * 10 + i as i64);
                let handle = if n.is_multiple_of(2) { &bk.a } else { &bk.b };
                assert_eq!(
                    handle.mark_used(&t, &by, now).await.unwrap(),
                    UseOutcome::FirstUse { at: now }
                );
                expected.insert(t, UsedMark { at: now, by });
            }
        }
    }
    // unknown holds and repeated ids are fine
    all.push(ticket(hold(), 1));
    all.push(all[0]);
    assert_eq!(bk.a.used(&all).await.unwrap(), expected);
    assert_eq!(bk.b.used(&all).await.unwrap(), expected);
}

async fn refusals_mark_nothing(bk: Backend) {
    let t = ticket(hold(), 1);
    for bad in [String::new(), "g".repeat(MAX_GATE_LEN + 1), "gate\n".into()] {
        assert!(
            matches!(
                bk.a.mark_used(&t, &bad, at(0)).await,
                Err(TicketError::InvalidRequest(_))
            ),
            "{bad:?}"
        );
    }
    assert!(bk.b.used(&[t]).await.unwrap().is_empty());
    let long_ok = "g".repeat(MAX_GATE_LEN);
    assert_eq!(
        bk.b.mark_used(&t, &long_ok, at(5)).await.unwrap(),
        UseOutcome::FirstUse { at: at(5) }
    );
}

/// Many gates on two "processes" scan one ticket at the same instant: exactly one first use,
/// and every other scan reports that one.
async fn racing_gates(bk: Backend) {
    for round in 0..3 {
        let t = ticket(hold(), 1);
        let barrier = Arc::new(tokio::sync::Barrier::new(48));
        let tasks: Vec<_> = (0..48)
            .map(|i| {
                let store = if i % 2 == 0 {
                    bk.a.clone()
                } else {
                    bk.b.clone()
                };
                let barrier = barrier.clone();
                tokio::spawn(async move {
                    barrier.wait().await;
                    let by = format!("gate-{i}");
                    let outcome = store.mark_used(&t, &by, at(i)).await.expect("mark");
                    (by, i, outcome)
                })
            })
            .collect();
        let mut firsts = Vec::new();
        let mut repeats = Vec::new();
        for task in tasks {
            let (by, i, outcome) = task.await.expect("task");
            match outcome {
                UseOutcome::FirstUse { at: first_at } => {
                    assert_eq!(first_at, at(i));
                    firsts.push(UsedMark { at: first_at, by });
                }
                UseOutcome::AlreadyUsed { at, by } => repeats.push(UsedMark { at, by }),
            }
        }
        assert_eq!(firsts.len(), 1, "round {round}: exactly one first use");
        assert_eq!(repeats.len(), 47);
        assert!(
            repeats.iter().all(|r| *r == firsts[0]),
            "round {round}: every repeat reports the winner"
        );
        assert_eq!(
            bk.a.used(&[t]).await.unwrap().get(&t),
            Some(&firsts[0]),
            "round {round}"
        );
    }
}

// ---------------------------------------------------------------------------------------------
// every body on every backend

macro_rules! on_backend {
    ($backend:ident: $($test:ident),* $(,)?) => {
        mod $backend {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
                async fn $test() {
                    super::$test(super::$backend().await).await;
                }
            )*
        }
    };
}

macro_rules! on_all_backends {
    ($($test:ident),* $(,)?) => {
        on_backend!(memory: $($test),*);
        on_backend!(redis: $($test),*);
        on_backend!(pg: $($test),*);
    };
}

on_all_backends!(
    first_use_then_already_used,
    used_reads_many_holds,
    refusals_mark_nothing,
    racing_gates,
);

/// The PostgreSQL marks refuse changes even from code that bypasses the store.
#[tokio::test]
async fn pg_marks_are_write_once() {
    let bk = pg().await;
    let t = ticket(hold(), 1);
    bk.a.mark_used(&t, "gate", at(0)).await.unwrap();
    let Cleanup::Pg(config) = &bk.guard.0 else {
        unreachable!()
    };
    let pool = sqlx::PgPool::connect(&config.url).await.expect("pool");
    let table = format!("\"{}\".ticket_uses", config.schema);
    for sql in [
        format!("UPDATE {table} SET used_by = 'someone else'"),
        format!("DELETE FROM {table}"),
    ] {
        let err = sqlx::query(&sql).execute(&pool).await.unwrap_err();
        assert!(err.to_string().contains("write-once"), "{sql}: {err}");
    }
    pool.close().await;
    assert_eq!(
        bk.b.mark_used(&t, "other", at(9)).await.unwrap(),
        UseOutcome::AlreadyUsed {
            at: at(0),
            by: "gate".into()
        }
    );
}

/// The Redis marks live under the store's prefix only, and `delete_all` removes them.
#[tokio::test]
async fn redis_keys_stay_under_the_prefix() {
    let (url, config) = redis_config();
    let _guard = Guard(Cleanup::Redis(config.clone()));
    let store = redis_connect(&url, &config).await;
    let (h1, h2) = (hold(), hold());
    for t in [ticket(h1, 1), ticket(h1, 2), ticket(h2, 3)] {
        store.mark_used(&t, "gate", at(0)).await.unwrap();
    }
    let client = ::redis::Client::open(url.as_str()).expect("client");
    let mut conn = client
        .get_multiplexed_async_connection()
        .await
        .expect("conn");
    let mut keys: Vec<String> = ::redis::cmd("KEYS")
        .arg(format!("{}:*", config.prefix))
        .query_async(&mut conn)
        .await
        .expect("keys");
    keys.sort();
    let mut expected = vec![
        format!("{}:tickets:{{{h1}}}:used", config.prefix),
        format!("{}:tickets:{{{h2}}}:used", config.prefix),
    ];
    expected.sort();
    assert_eq!(keys, expected, "one hash per hold");
    assert_eq!(store.delete_all().await.unwrap(), 2);
    assert!(store.used(&[ticket(h1, 1)]).await.unwrap().is_empty());
}
