//! `lock-strategies`: the ways to keep one hot stock counter right, compared on the same
//! workload (issue 20; the table of `docs/LOCKS.md`). The logic is [`rush::locks`].
//!
//! ```sh
//! cargo run --release -p rush --bin lock-strategies -- --units 1000 --clients 64
//! cargo run --release -p rush --bin lock-strategies -- --strategies naive,pessimistic --json
//! ```
//!
//! PostgreSQL (`DATABASE_URL`) and Redis (`REDIS_URL`) must be running; each strategy works
//! in its own schema and key prefix and removes them. Exit status: 0 when every safe
//! strategy sold exactly its units with the books balanced, 2 when one did not (the table
//! shows it), 1 when the run could not be made.

use std::time::Duration;

use clap::Parser;
use rush::locks::{self, Strategy, Workload};

/// Flags.
#[derive(Debug, Parser)]
#[command(
    name = "lock-strategies",
    about = "Lock strategies for one hot counter, compared on one workload"
)]
struct Args {
    /// Strategies to run, comma-separated: naive, optimistic, pessimistic, redis-lock,
    /// redis-script, ticketrush-pg, ticketrush-redis (default: all, in that order).
    #[arg(long, value_delimiter = ',')]
    strategies: Vec<String>,
    /// Units of the hot item.
    #[arg(long, default_value_t = 1_000)]
    units: u32,
    /// Concurrent clients.
    #[arg(long, default_value_t = 64)]
    clients: usize,
    /// Buy attempts of all clients together at most (default: 5 × units).
    #[arg(long)]
    buyers: Option<u64>,
    /// Optimistic: retries of one attempt before it gives up (an error).
    #[arg(long, default_value_t = 100)]
    max_retries: u32,
    /// Connections of the raw PostgreSQL strategies' pool (ticketrush-pg uses the store's
    /// default, 16).
    #[arg(long, default_value_t = 16)]
    pg_connections: u32,
    /// Redis lock: lease of the lock (ms).
    #[arg(long, default_value_t = 1_000)]
    lock_lease_ms: u64,
    /// Redis lock: how long an attempt waits for the lock (ms).
    #[arg(long, default_value_t = 10_000)]
    lock_wait_ms: u64,
    /// Redis lock: pause between two tries to take it (ms).
    #[arg(long, default_value_t = 1)]
    lock_retry_ms: u64,
    /// Print JSON (one object per strategy) instead of the Markdown table.
    #[arg(long)]
    json: bool,
    /// PostgreSQL.
    #[arg(
        long,
        env = "DATABASE_URL",
        default_value = "postgres://postgres@127.0.0.1:5432/test"
    )]
    database_url: String,
    /// Redis.
    #[arg(long, env = "REDIS_URL", default_value = "redis://127.0.0.1:6379")]
    redis_url: String,
}

async fn run(args: Args) -> Result<i32, String> {
    let strategies = if args.strategies.is_empty() {
        Strategy::ALL.to_vec()
    } else {
        args.strategies
            .iter()
            .map(|n| Strategy::parse(n.trim()).ok_or_else(|| format!("unknown strategy {n:?}")))
            .collect::<Result<Vec<_>, _>>()?
    };
    let mut w = Workload::new(args.units, args.clients);
    w.attempts = args.buyers.unwrap_or(u64::from(args.units) * 5);
    w.max_retries = args.max_retries;
    w.pg_connections = args.pg_connections;
    w.lock_lease = Duration::from_millis(args.lock_lease_ms);
    w.lock_wait = Duration::from_millis(args.lock_wait_ms);
    w.lock_retry = Duration::from_millis(args.lock_retry_ms);
    w.database_url = args.database_url;
    w.redis_url = args.redis_url;
    let mut outcomes = Vec::new();
    for s in strategies {
        eprintln!("lock-strategies: {} …", s.name());
        outcomes.push(locks::run(s, &w).await.map_err(|e| e.to_string())?);
    }
    if args.json {
        println!(
            "{}",
            serde_json::to_string_pretty(&outcomes).map_err(|e| e.to_string())?
        );
    } else {
        println!(
            "{} units, {} clients, {} attempts at most, {} cores\n",
            w.units,
            w.clients,
            w.attempts,
            std::thread::available_parallelism().map_or(0, |n| n.get())
        );
        print!("{}", locks::markdown(&outcomes));
    }
    let wrong = outcomes.iter().any(|o| {
        o.strategy.is_safe() && (o.oversold > 0 || o.sold != u64::from(o.units) || !o.conserved)
    });
    Ok(if wrong { 2 } else { 0 })
}

#[tokio::main]
async fn main() {
    match run(Args::parse()).await {
        Ok(code) => std::process::exit(code),
        Err(e) => {
            eprintln!("lock-strategies: {e}");
            std::process::exit(1);
        }
    }
}
