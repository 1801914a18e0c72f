//! Hold throughput on one hot session and spread over many sessions, beside `pgbench`
//! measured in the same run with the same client count.
//!
//! ```text
//! cargo bench -p ticket-store-pg --bench throughput
//! ```
//! For each layout (hot: one session / one inventory row; spread: `BENCH_SESSIONS`, default
//! 1 000, sessions / inventory rows) and each client count (`BENCH_CLIENTS`, default
//! `1 8 32`) it runs, `BENCH_REPEAT` (default 3) times back to back:
//! * (a) `pgbench -n -M prepared -c <clients> -j min(2, clients) -T <seconds> -D nrows=<rows>`
//!   running `benches/pgbench/hold_cte.sql`: the hold as one statement (`WITH u AS (UPDATE
//!   inventory … WHERE remaining >= 1 RETURNING id) INSERT INTO holds …`), the script of
//!   `shared/bench/raw-limits.sh`;
//! * (b) the same with `benches/pgbench/hold_lock.sql`: the pessimistic-lock transaction
//!   (`BEGIN`, `SELECT … FOR UPDATE`, `UPDATE`, `INSERT`, `COMMIT`);
//! * ours: `<clients>` tokio tasks calling `Reservations::hold` (1 unit of `GA`, per-user limit
//!   4, a new user each time, no admission) for the same duration, on one session of 10
//!   million units (hot) or on a random one of the sessions of 100 000 units each (spread),
//!   through the production path (coalesced `tr_hold_batch` calls).
//!
//! The raw tables (`inventory`, `holds`, as in `raw-limits.sh`) live in a fresh schema
//! `tr_test_benchraw_<uuid>`, reset before every pgbench run (truncate, reload with
//! 2 000 000 000 per row, `VACUUM ANALYZE`, `CHECKPOINT`); ours runs in a fresh schema
//! `tr_test_bench_<uuid>` per run whose events, sessions and stock are vacuumed and analysed
//! once its sessions exist, then checkpointed (`holds` and `audit` stay unanalysed, see `ours`). The table printed
//! gives medians over the rounds; each ratio is the median of the per-round ratios, so a slow
//! moment of the machine hits both sides of it.
//!
//! Knobs: `DATABASE_URL` (default `postgres://postgres@127.0.0.1:5432/test`), `BENCH_SECONDS`
//! (default 10, per run), `BENCH_REPEAT`, `BENCH_CLIENTS`, `BENCH_SESSIONS`,
//! `BENCH_ONLY=hot|spread`, `BENCH_MAX_BATCH`, `BENCH_IN_FLIGHT`, `BENCH_CONNECTIONS` (the
//! store's `max_batch`, `max_in_flight`, `max_connections`), `BENCH_WORKERS` (runtime threads,
//! default 2), `PGBENCH` (the binary; default `pgbench` on `PATH`, else
//! `/usr/lib/postgresql/<version>/bin/pgbench`), `BENCH_WAITS=1` (sample `pg_stat_activity`
//! during every run and print the wait events of the measured backends on stderr).
//! pgbench connects with `PGSSLMODE` matching our connections (sqlx here is built without TLS),
//! unless `PGSSLMODE` is set. Every schema it creates is dropped afterwards, also when a run
//! panics (the raw schema by a `ticketrush-test-support` namespace, ours by the store's
//! `drop_schema_on_drop`).

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::process::Command;
use std::str::FromStr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use sqlx::postgres::PgConnectOptions;
use sqlx::{Connection, PgConnection};
use ticket_core::ids::UserId;
use ticket_core::model::hold::NewHold;
use ticket_core::store::Stores;
use ticket_core::testkit::{Fixture, T0};
use ticket_store_pg::{PgConfig, PgStore};
use ticketrush_test_support::{Namespace, Service, unique_name};

/// (a): the hold as one statement.
const SCRIPT_CTE: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/benches/pgbench/hold_cte.sql");
/// (b): the pessimistic-lock transaction.
const SCRIPT_LOCK: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/benches/pgbench/hold_lock.sql");

fn env_or(name: &str, default: &str) -> String {
    std::env::var(name).unwrap_or_else(|_| default.to_owned())
}

fn env_opt<T: FromStr>(name: &str) -> Option<T> {
    std::env::var(name).ok().map(|v| {
        v.parse()
            .unwrap_or_else(|_| panic!("{name}={v} is not valid"))
    })
}

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Layout {
    Hot,
    Spread,
}

struct Settings {
    url: String,
    seconds: u64,
    sessions: usize,
    max_batch: Option<usize>,
    in_flight: Option<usize>,
    connections: Option<u32>,
    waits: bool,
}

fn main() {
    let settings = Arc::new(Settings {
        url: env_or("DATABASE_URL", "postgres://postgres@127.0.0.1:5432/test"),
        seconds: env_or("BENCH_SECONDS", "10")
            .parse()
            .expect("BENCH_SECONDS"),
        sessions: env_or("BENCH_SESSIONS", "1000")
            .parse()
            .expect("BENCH_SESSIONS"),
        max_batch: env_opt("BENCH_MAX_BATCH"),
        in_flight: env_opt("BENCH_IN_FLIGHT"),
        connections: env_opt("BENCH_CONNECTIONS"),
        waits: env_or("BENCH_WAITS", "0") == "1",
    });
    let clients: Vec<u32> = env_or("BENCH_CLIENTS", "1 8 32")
        .split_whitespace()
        .map(|c| c.parse().expect("BENCH_CLIENTS"))
        .collect();
    let repeat: usize = env_or("BENCH_REPEAT", "3").parse().expect("BENCH_REPEAT");
    let workers: usize = env_or("BENCH_WORKERS", "2").parse().expect("BENCH_WORKERS");
    let only = std::env::var("BENCH_ONLY").unwrap_or_default();
    let layouts: Vec<Layout> = [Layout::Hot, Layout::Spread]
        .into_iter()
        .filter(|l| match only.as_str() {
            "hot" => *l == Layout::Hot,
            "spread" => *l == Layout::Spread,
            _ => true,
        })
        .collect();
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(workers)
        .enable_all()
        .build()
        .expect("runtime");

    let raw = rt.block_on(RawSchema::create(&settings.url));
    let (version, ssl) = rt.block_on(server_facts(&settings.url));
    let pgbench = pgbench_binary(&version);
    let defaults = PgConfig::new(&settings.url);
    println!(
        "# ticket-store-pg hold throughput, {} cores, PostgreSQL {version}, {} s per run, \
         median of {repeat} rounds",
        std::thread::available_parallelism().map_or(0, |n| n.get()),
        settings.seconds
    );
    println!(
        "# ours: max_batch {}, max_in_flight {}, max_connections {}, {workers} runtime threads; \
         pgbench: {} -n -M prepared -c <clients> -j min(2, clients) -T {} -D nrows=<1|{}> \
         (ssl: {})",
        settings.max_batch.unwrap_or(defaults.max_batch),
        settings.in_flight.unwrap_or(defaults.max_in_flight),
        settings.connections.unwrap_or(defaults.max_connections),
        pgbench.display(),
        settings.seconds,
        settings.sessions,
        if ssl { "on" } else { "off" },
    );
    println!(
        "| layout | clients | pgbench (a) TPS | pgbench (b) TPS | ours holds/s | ours / (a) | ours / (b) |"
    );
    println!("|---|---|---|---|---|---|---|");
    for &layout in &layouts {
        let rows = match layout {
            Layout::Hot => 1,
            Layout::Spread => settings.sessions,
        };
        for &c in &clients {
            let mut rounds = Vec::new();
            for round in 0..repeat {
                let run_pgbench = |script: &str| {
                    rt.block_on(raw.reset(rows));
                    let sampler = settings
                        .waits
                        .then(|| WaitSampler::start(&rt, &settings.url, Filter::Pgbench));
                    let tps = pgbench_tps(&pgbench, &settings, &raw.schema, ssl, c, rows, script);
                    if let Some(s) = sampler {
                        eprintln!("  waits pgbench {script}: {}", rt.block_on(s.finish()));
                    }
                    tps
                };
                let a = run_pgbench(SCRIPT_CTE);
                let b = run_pgbench(SCRIPT_LOCK);
                let ours = rt.block_on(ours(settings.clone(), layout, c));
                eprintln!(
                    "{layout:?} c={c} round {}: (a) {a:.0} (b) {b:.0} ours {ours:.0}",
                    round + 1
                );
                rounds.push([a, b, ours, ours / a, ours / b]);
            }
            let m = |i: usize| median(rounds.iter().map(|r| r[i]).collect());
            println!(
                "| {} | {c} | {:.0} | {:.0} | {:.0} | {:.2} | {:.2} |",
                match layout {
                    Layout::Hot => "hot (1 session)".to_owned(),
                    Layout::Spread => format!("spread ({} sessions)", settings.sessions),
                },
                m(0),
                m(1),
                m(2),
                m(3),
                m(4)
            );
        }
    }
    drop(raw);
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v.get(v.len() / 2).copied().unwrap_or(f64::NAN)
}

async fn connect(url: &str) -> PgConnection {
    let options = PgConnectOptions::from_str(url).expect("DATABASE_URL");
    Service::Postgres.connected(url, PgConnection::connect_with(&options).await)
}

/// The server's version, and whether our (sqlx) connections use TLS: pgbench is told to do
/// the same, so both sides pay the same per-message cost.
async fn server_facts(url: &str) -> (String, bool) {
    let mut conn = connect(url).await;
    let version: String = sqlx::query_scalar("SHOW server_version")
        .fetch_one(&mut conn)
        .await
        .expect("server_version");
    let ssl: bool = sqlx::query_scalar(
        "SELECT coalesce((SELECT ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid()), false)",
    )
    .fetch_one(&mut conn)
    .await
    .expect("pg_stat_ssl");
    conn.close().await.expect("close");
    (version, ssl)
}

fn pgbench_binary(version: &str) -> PathBuf {
    if let Ok(p) = std::env::var("PGBENCH") {
        return p.into();
    }
    let on_path = Command::new("pgbench")
        .arg("--version")
        .output()
        .is_ok_and(|o| o.status.success());
    if on_path {
        return "pgbench".into();
    }
    let major = version.split(['.', ' ']).next().unwrap_or_default();
    let fallback = PathBuf::from(format!("/usr/lib/postgresql/{major}/bin/pgbench"));
    assert!(
        fallback.exists(),
        "pgbench not found on PATH nor at {}; set PGBENCH",
        fallback.display()
    );
    fallback
}

/// pgbench's transactions per second for `script` with `clients` connections.
fn pgbench_tps(
    pgbench: &PathBuf,
    settings: &Settings,
    schema: &str,
    ssl: bool,
    clients: u32,
    rows: usize,
    script: &str,
) -> f64 {
    let mut cmd = Command::new(pgbench);
    cmd.args(["-n", "-M", "prepared"])
        .args(["-c", &clients.to_string()])
        .args(["-j", &clients.min(2).to_string()])
        .args(["-T", &settings.seconds.to_string()])
        .args(["-D", &format!("nrows={rows}")])
        .args(["-f", script])
        .arg(&settings.url)
        .env("PGOPTIONS", format!("-c search_path={schema}"));
    if std::env::var_os("PGSSLMODE").is_none() {
        cmd.env("PGSSLMODE", if ssl { "require" } else { "disable" });
    }
    let out = cmd.output().expect("pgbench runs");
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "pgbench failed: {text}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let failed = text
        .lines()
        .find_map(|l| l.strip_prefix("number of failed transactions: "))
        .and_then(|f| f.split_whitespace().next())
        .unwrap_or("0");
    assert_eq!(failed, "0", "pgbench transactions failed: {text}");
    text.lines()
        .filter_map(|l| l.strip_prefix("tps = "))
        .filter_map(|l| l.split_whitespace().next()?.parse().ok())
        .next_back()
        .unwrap_or_else(|| panic!("cannot read pgbench output: {text}"))
}

/// The raw tables of `raw-limits.sh` in a schema of their own, dropped with this value.
struct RawSchema {
    url: String,
    schema: String,
    /// Drops the schema when this value goes, also when a run panics.
    _namespace: Namespace,
}

impl RawSchema {
    async fn create(url: &str) -> Self {
        let namespace = Namespace::postgres_at(url, "benchraw");
        let this = Self {
            url: url.to_owned(),
            schema: namespace.name().to_owned(),
            _namespace: namespace,
        };
        let s = &this.schema;
        let mut conn = connect(url).await;
        for sql in [
            format!("CREATE SCHEMA {s}"),
            format!(
                "CREATE TABLE {s}.inventory(id int PRIMARY KEY, \
                 remaining int NOT NULL CHECK (remaining >= 0))"
            ),
            format!(
                "CREATE TABLE {s}.holds(id uuid PRIMARY KEY DEFAULT gen_random_uuid(), \
                 inventory_id int NOT NULL, qty int NOT NULL, \
                 created_at timestamptz NOT NULL DEFAULT now())"
            ),
        ] {
            sqlx::raw_sql(&sql).execute(&mut conn).await.expect(&sql);
        }
        conn.close().await.expect("close");
        this
    }

    /// As `raw-limits.sh` does before each run.
    async fn reset(&self, rows: usize) {
        let s = &self.schema;
        let mut conn = connect(&self.url).await;
        for sql in [
            format!("TRUNCATE {s}.inventory, {s}.holds"),
            format!(
                "INSERT INTO {s}.inventory SELECT g, 2000000000 FROM generate_series(1, {rows}) g"
            ),
            format!("VACUUM ANALYZE {s}.inventory"),
            format!("VACUUM ANALYZE {s}.holds"),
            "CHECKPOINT".to_owned(),
        ] {
            sqlx::raw_sql(&sql).execute(&mut conn).await.expect(&sql);
        }
        conn.close().await.expect("close");
    }
}

/// Our holds per second with `clients` concurrent tasks for `settings.seconds`.
async fn ours(settings: Arc<Settings>, layout: Layout, clients: u32) -> f64 {
    let mut config = PgConfig::new(&settings.url).with_schema(unique_name("bench"));
    config.drop_schema_on_drop = true;
    config.application_name = APPLICATION_NAME.to_owned();
    if let Some(n) = settings.max_batch {
        config.max_batch = n;
    }
    if let Some(n) = settings.in_flight {
        config.max_in_flight = n;
    }
    if let Some(n) = settings.connections {
        config.max_connections = n;
    }
    let store = Service::Postgres.connected(&settings.url, PgStore::connect(config).await);
    store.migrate().await.expect("migrate");
    let stores = store.stores();
    let fixtures: Arc<Vec<Fixture>> = Arc::new(match layout {
        Layout::Hot => vec![Fixture::general(stores.clone(), 10_000_000, Duration::ZERO).await],
        Layout::Spread => {
            let mut v = Vec::with_capacity(settings.sessions);
            for _ in 0..settings.sessions {
                v.push(Fixture::general(stores.clone(), 100_000, Duration::ZERO).await);
            }
            v
        }
    });
    // The raw tables' reset, for the tables that have rows: `holds` and `audit` are left
    // unanalysed, as a fresh deployment's are. Analysed while empty, they would make every
    // connection cache sequential-scan plans for the functions' lookups by hold id and by
    // user (this server runs without autovacuum, so nothing would replan them).
    for table in ["events", "sessions", "stock"] {
        sqlx::raw_sql(&format!("VACUUM ANALYZE {table}"))
            .execute(store.pool())
            .await
            .expect("vacuum");
    }
    sqlx::raw_sql("CHECKPOINT")
        .execute(store.pool())
        .await
        .expect("checkpoint");

    let sampler = settings
        .waits
        .then(|| WaitSampler::spawn(&settings.url, Filter::Ours));
    let started = Instant::now();
    let deadline = started + Duration::from_secs(settings.seconds);
    let run_seed = uuid::Uuid::now_v7().as_u64_pair().1;
    let tasks: Vec<_> = (0..clients)
        .map(|task| {
            let (stores, fixtures): (Stores, _) = (stores.clone(), fixtures.clone());
            tokio::spawn(async move {
                let mut done = 0u64;
                // each task picks sessions at random, independently of the others (splitmix64
                // from a random start: two tasks never walk the same sequence)
                let mut state = splitmix64(run_seed ^ u64::from(task));
                while Instant::now() < deadline {
                    state = state.wrapping_add(GOLDEN_GAMMA);
                    let pick = splitmix64(state) % fixtures.len() as u64;
                    let fixture = &fixtures[pick as usize];
                    let user = UserId::new(format!("user-{task}-{done}")).expect("user");
                    // The clock moves as in a real rush (holds expire at distinct instants).
                    let now = T0.plus(started.elapsed());
                    stores
                        .reservations
                        .hold(NewHold {
                            per_user_limit: Some(4),
                            ..fixture.new_hold(&user, 1, now, now.plus(Duration::from_secs(300)))
                        })
                        .await
                        .expect("hold");
                    done += 1;
                }
                done
            })
        })
        .collect();
    let mut total = 0;
    for t in tasks {
        total += t.await.expect("task");
    }
    let rate = total as f64 / started.elapsed().as_secs_f64();
    if let Some(s) = sampler {
        eprintln!("  waits ours: {}", s.finish().await);
    }
    drop((stores, fixtures));
    store.drop_schema().await.expect("drop schema");
    rate
}

/// The `application_name` of our connections (the wait sampler looks for it).
const APPLICATION_NAME: &str = "ticketrush-bench";

const GOLDEN_GAMMA: u64 = 0x9E37_79B9_7F4A_7C15;

/// The splitmix64 output function.
fn splitmix64(x: u64) -> u64 {
    let mut z = x;
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

#[derive(Clone, Copy)]
enum Filter {
    Pgbench,
    Ours,
}

/// Samples `pg_stat_activity` every 10 ms and counts what the measured backends are doing.
struct WaitSampler {
    stop: Arc<AtomicBool>,
    task: tokio::task::JoinHandle<BTreeMap<String, u64>>,
}

impl WaitSampler {
    fn start(rt: &tokio::runtime::Runtime, url: &str, filter: Filter) -> Self {
        let _guard = rt.enter();
        Self::spawn(url, filter)
    }

    fn spawn(url: &str, filter: Filter) -> Self {
        let stop = Arc::new(AtomicBool::new(false));
        let (url, flag) = (url.to_owned(), stop.clone());
        let sql = match filter {
            Filter::Pgbench => {
                "SELECT coalesce(wait_event_type || ':' || wait_event, 'CPU'), state \
                 FROM pg_stat_activity WHERE application_name = 'pgbench'"
            }
            Filter::Ours => {
                "SELECT coalesce(wait_event_type || ':' || wait_event, 'CPU'), state \
                 FROM pg_stat_activity WHERE application_name = 'ticketrush-bench'"
            }
        };
        let task = tokio::spawn(async move {
            let mut conn = connect(&url).await;
            let mut counts = BTreeMap::new();
            while !flag.load(Ordering::Relaxed) {
                let rows: Vec<(String, Option<String>)> = sqlx::query_as(sql)
                    .fetch_all(&mut conn)
                    .await
                    .expect("pg_stat_activity");
                *counts.entry("(samples)".to_owned()).or_insert(0) += 1;
                for (wait, state) in rows {
                    let key = match state.as_deref() {
                        Some("active") => wait,
                        other => other.unwrap_or("?").to_owned(),
                    };
                    *counts.entry(key).or_insert(0) += 1;
                }
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
            let _ = conn.close().await;
            counts
        });
        Self { stop, task }
    }

    async fn finish(self) -> String {
        self.stop.store(true, Ordering::Relaxed);
        let counts = self.task.await.expect("sampler");
        let samples = counts.get("(samples)").copied().unwrap_or(1).max(1) as f64;
        let mut v: Vec<_> = counts
            .into_iter()
            .filter(|(k, _)| k != "(samples)")
            .collect();
        v.sort_by_key(|e| std::cmp::Reverse(e.1));
        v.iter()
            .map(|(k, n)| format!("{k} {:.1}", *n as f64 / samples))
            .collect::<Vec<_>>()
            .join(", ")
    }
}
