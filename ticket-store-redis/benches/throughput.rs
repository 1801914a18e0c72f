//! Hold and join throughput on one hot session, beside raw Redis measured in the same run.
//!
//! ```text
//! cargo bench -p ticket-store-redis --bench throughput
//! ```
//! For each client count (`BENCH_CLIENTS`, default `1 16 64`) it runs, in this order:
//! * raw: `redis-benchmark -c <clients>` calling by `EVALSHA` a one-line conditional
//!   decrement (the script of `shared/bench/raw-limits.sh`), unpipelined;
//! * hold: `<clients>` tokio tasks calling `Reservations::hold` (1 unit, per-user limit 4,
//!   a new user each time) on one session (the conformance fixture's, 10 million units);
//! * join: `<clients>` tasks calling `WaitingQueue::join` (a new user each time) on one
//!   session.
//!
//! `BENCH_OPS` (default 60 000) operations per run, `BENCH_REPEAT` (default 3) rounds per
//! client count (medians are printed); `BENCH_ONLY=hold|join` skips the other;
//! `BENCH_MAX_BATCH`, `BENCH_IN_FLIGHT`, `BENCH_WORKERS` override the store's batching and the
//! runtime's threads; `REDIS_URL` (default db 9 of the local server). Everything runs under
//! fresh key prefixes (`tr_test_bench_<uuid>`, `tr_test_benchraw_<uuid>`) that are deleted
//! afterwards, also when a run panics.

use std::process::Command;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use ticket_core::ids::UserId;
use ticket_core::model::hold::NewHold;
use ticket_core::model::queue::JoinRequest;
use ticket_core::store::{Reservations, WaitingQueue};
use ticket_core::testkit::{Fixture, T0};
use ticket_store_redis::{RedisConfig, RedisStore};
use ticketrush_test_support::{Namespace, Service, unique_name};

const DECREMENT: &str = "local v=tonumber(redis.call('GET',KEYS[1])); \
    if v and v>=tonumber(ARGV[1]) then return redis.call('DECRBY',KEYS[1],ARGV[1]) else return -1 end";

fn env_or(name: &str, default: &str) -> String {
    std::env::var(name).unwrap_or_else(|_| default.to_owned())
}

fn main() {
    let url = env_or("REDIS_URL", "redis://127.0.0.1:6379/9");
    let ops: u64 = env_or("BENCH_OPS", "60000").parse().expect("BENCH_OPS");
    let clients: Vec<u64> = env_or("BENCH_CLIENTS", "1 16 64")
        .split_whitespace()
        .map(|c| c.parse().expect("BENCH_CLIENTS"))
        .collect();
    let workers: usize = env_or("BENCH_WORKERS", "2").parse().expect("BENCH_WORKERS");
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(workers)
        .enable_all()
        .build()
        .expect("runtime");
    let info = redis::Client::open(url.as_str())
        .expect("REDIS_URL")
        .get_connection_info()
        .clone();
    let (host, port) = match &info.addr {
        redis::ConnectionAddr::Tcp(h, p) => (h.clone(), *p),
        other => panic!("TCP Redis needed, got {other:?}"),
    };
    let db = info.redis.db;
    println!(
        "# ticket-store-redis throughput, {} cores, {ops} ops per run, Redis db {db}",
        std::thread::available_parallelism().map_or(0, |n| n.get())
    );
    println!("| clients | raw EVALSHA ops/s | hold ops/s | hold / raw | join ops/s | join / raw |");
    println!("|---|---|---|---|---|---|");
    let repeat: usize = env_or("BENCH_REPEAT", "3").parse().expect("BENCH_REPEAT");
    let only = std::env::var("BENCH_ONLY").unwrap_or_default();
    for c in clients {
        // Raw, hold and join measured back to back, `repeat` times; each figure is the
        // median of its runs and each ratio the median of the per-round ratios, so a slow
        // moment of the machine hits both sides of a ratio.
        let mut rounds = Vec::new();
        for _ in 0..repeat {
            let raw = raw_evalsha(&url, &host, port, db, c, ops);
            let (hold, join) = rt.block_on(async {
                let hold = if only == "join" {
                    f64::NAN
                } else {
                    ours(&url, c, ops, Op::Hold).await
                };
                let join = if only == "hold" {
                    f64::NAN
                } else {
                    ours(&url, c, ops, Op::Join).await
                };
                (hold, join)
            });
            rounds.push([raw, hold, join, hold / raw, join / raw]);
        }
        let m = |i: usize| median(rounds.iter().map(|r| r[i]).collect());
        println!(
            "| {c} | {:.0} | {:.0} | {:.2} | {:.0} | {:.2} |",
            m(0),
            m(1),
            m(3),
            m(2),
            m(4)
        );
    }
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v.get(v.len() / 2).copied().unwrap_or(f64::NAN)
}

/// redis-benchmark's rate for EVALSHA of the one-line conditional decrement.
fn raw_evalsha(url: &str, host: &str, port: u16, db: i64, clients: u64, ops: u64) -> f64 {
    // The key goes with `ns`, also if redis-benchmark fails.
    let ns = Namespace::redis_at(url, "benchraw");
    let mut conn = ns.connected(redis::Client::open(url).and_then(|c| c.get_connection()));
    let key = ns.name().to_owned();
    let sha: String = redis::cmd("SCRIPT")
        .arg("LOAD")
        .arg(DECREMENT)
        .query(&mut conn)
        .expect("script load");
    redis::cmd("SET")
        .arg(&key)
        .arg(1_000_000_000_000_000u64)
        .exec(&mut conn)
        .expect("set");
    let out = Command::new("redis-benchmark")
        .args([
            "-h",
            host,
            "-p",
            &port.to_string(),
            "--dbnum",
            &db.to_string(),
        ])
        .args([
            "-q",
            "--csv",
            "-n",
            &ops.to_string(),
            "-c",
            &clients.to_string(),
        ])
        .args(["EVALSHA", &sha, "1", &key, "1"])
        .output()
        .expect("redis-benchmark (Debian package redis-tools) must be installed");
    drop(ns);
    let text = String::from_utf8_lossy(&out.stdout);
    text.lines()
        .filter_map(|l| l.split("\",\"").nth(1))
        .find_map(|rps| rps.trim_matches('"').parse().ok())
        .unwrap_or_else(|| panic!("cannot read redis-benchmark output: {text}"))
}

#[derive(Clone, Copy)]
enum Op {
    Hold,
    Join,
}

/// Our operations per second with `clients` concurrent tasks on one session.
async fn ours(url: &str, clients: u64, ops: u64, op: Op) -> f64 {
    let mut config = RedisConfig::new(url).with_prefix(unique_name("bench"));
    config.delete_keys_on_drop = true;
    if let Ok(n) = std::env::var("BENCH_MAX_BATCH") {
        config.max_batch = n.parse().expect("BENCH_MAX_BATCH");
    }
    if let Ok(n) = std::env::var("BENCH_IN_FLIGHT") {
        config.max_in_flight = n.parse().expect("BENCH_IN_FLIGHT");
    }
    let store = Service::Redis.connected(url, RedisStore::connect(config).await);
    let fixture = Arc::new(Fixture::general(store.stores(), 10_000_000, Duration::ZERO).await);
    let session = fixture.session;
    if let Op::Join = op {
        store.draw(session, 1, T0).await.expect("draw");
    }
    let next = Arc::new(AtomicU64::new(0));
    let started = Instant::now();
    let tasks: Vec<_> = (0..clients)
        .map(|_| {
            let (store, next, fixture) = (store.clone(), next.clone(), fixture.clone());
            tokio::spawn(async move {
                loop {
                    let i = next.fetch_add(1, Ordering::Relaxed);
                    if i >= ops {
                        break;
                    }
                    let user = UserId::new(format!("user-{i}")).expect("user");
                    // The clock moves as in a real rush (holds expire at distinct instants).
                    let now = T0.plus(started.elapsed());
                    match op {
                        Op::Hold => {
                            store
                                .hold(NewHold {
                                    per_user_limit: Some(4),
                                    ..fixture.new_hold(
                                        &user,
                                        1,
                                        now,
                                        now.plus(Duration::from_secs(300)),
                                    )
                                })
                                .await
                                .expect("hold");
                        }
                        Op::Join => {
                            store
                                .join(JoinRequest {
                                    session,
                                    user,
                                    now,
                                    pre_queue: false,
                                    max_waiting: Some(10_000_000),
                                })
                                .await
                                .expect("join");
                        }
                    }
                }
            })
        })
        .collect();
    for t in tasks {
        t.await.expect("task");
    }
    let rate = ops as f64 / started.elapsed().as_secs_f64();
    drop((store, fixture));
    rate
}
