//! `sse-crowd`: a crowd of queue watchers on one running `ticket-server`, for the live-update
//! figures of `docs/BENCHMARKS.md`.
//!
//! For each crowd size N it creates a session through the admin API (a queue that admits
//! `--admit-per-minute` users a minute), joins N fresh users and opens each one's
//! `GET /api/sessions/{id}/queue/events` stream, then measures over `--window-secs`: Redis
//! commands per second (`INFO commandstats`, the store's work, which must not grow with N),
//! the delay from each admission in the store to its watcher's `admitted` event, the
//! server's resident memory and the events delivered per second.
//!
//! Open files: the bench needs one descriptor per watcher and so does the server; start
//! both under a raised limit (`ulimit -n 200000`, as root). The bench checks its own limit
//! and says so when it is too low.
//!
//! ```sh
//! sse-crowd --url http://127.0.0.1:18080 --jwt-secret "$S" --watchers 100,10000,50000 \
//!     --server-pid <pid> --redis 127.0.0.1:16379
//! ```

mod probes;
#[path = "../rush-http-bench/setup.rs"]
mod setup;
mod watcher;

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use clap::Parser;
use serde_json::json;

use watcher::Tally;

/// Why a run could not be made.
#[derive(Debug, thiserror::Error)]
pub enum BenchError {
    /// Preparing or probing failed.
    #[error("set-up: {0}")]
    Setup(String),
}

pub use rush::error::chain;

/// Flags.
#[derive(Debug, Parser)]
#[command(
    name = "sse-crowd",
    about = "Queue watchers at crowd scale on one ticket-server"
)]
struct Args {
    /// The server.
    #[arg(long, default_value = "http://127.0.0.1:18080")]
    url: String,
    /// The server's `--jwt-secret` (tokens are minted with it).
    #[arg(long, env = "JWT_SECRET")]
    jwt_secret: String,
    /// Crowd sizes, measured one after the other.
    #[arg(long, value_delimiter = ',', default_value = "100,10000,50000")]
    watchers: Vec<u64>,
    /// Admissions a minute (the steady stream the watchers wait on).
    #[arg(long, default_value_t = 1_200)]
    admit_per_minute: u32,
    /// The measured window, seconds.
    #[arg(long, default_value_t = 20)]
    window_secs: u64,
    /// The server's `--admission-ttl-secs` (an admission's instant is its expiry minus this).
    #[arg(long, default_value_t = 120)]
    admission_ttl_secs: i64,
    /// Redis `host:port`, for `INFO commandstats`.
    #[arg(long, default_value = "127.0.0.1:6379")]
    redis: String,
    /// The server's process id, for its resident memory.
    #[arg(long)]
    server_pid: Option<u32>,
    /// Loopback source addresses to spread connections over (127.0.0.1 …).
    #[arg(long, default_value_t = 4)]
    source_addrs: u8,
    /// Joins and stream openings in flight during set-up.
    #[arg(long, default_value_t = 128)]
    setup_concurrency: usize,
}

/// One crowd's figures.
#[derive(Debug, serde::Serialize)]
struct CrowdReport {
    watchers: u64,
    connected: u64,
    failed: u64,
    redis_commands_per_sec: f64,
    admitted_in_window: u64,
    delay_ms_p50: u64,
    delay_ms_p99: u64,
    delay_ms_max: u64,
    events_per_sec: f64,
    server_rss_mb: Option<f64>,
}

fn percentile(sorted: &[u64], p: f64) -> u64 {
    if sorted.is_empty() {
        return 0;
    }
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i.min(sorted.len() - 1)]
}

async fn crowd(
    args: &Args,
    client: &reqwest::Client,
    tokens: &setup::Tokens,
    n: u64,
) -> Result<CrowdReport, BenchError> {
    let base = args.url.trim_end_matches('/');
    let session = setup::create_session(client, base, tokens).await?;
    let admin = tokens.fresh("ADMIN")?;
    setup::admin_call(
        client,
        reqwest::Method::PUT,
        format!("{base}/api/admin/sessions/{session}/policy"),
        &admin,
        &json!({
            "max_units_per_user": null,
            "queue": {
                "require_admission": true,
                "max_active": 1_000_000,
                "max_admissions_per_minute": args.admit_per_minute,
                "max_waiting": null,
            },
        }),
    )
    .await?;
    let server: SocketAddr = base
        .trim_start_matches("http://")
        .parse()
        .map_err(|e| BenchError::Setup(format!("--url must be http://<ip>:<port>: {e}")))?;
    let tally = Arc::new(Tally::default());
    let sem = Arc::new(tokio::sync::Semaphore::new(args.setup_concurrency));
    let mut streams = Vec::with_capacity(n as usize);
    let started = Instant::now();
    for i in 0..n {
        let token = tokens.fresh("USER")?;
        let permit = sem
            .clone()
            .acquire_owned()
            .await
            .map_err(|e| BenchError::Setup(e.to_string()))?;
        let client = client.clone();
        let url = format!("{base}/api/sessions/{session}/queue");
        let session = session.clone();
        let tally = tally.clone();
        let local = IpAddr::V4(Ipv4Addr::new(
            127,
            0,
            0,
            1 + (i % u64::from(args.source_addrs.max(1))) as u8,
        ));
        let ttl = args.admission_ttl_secs * 1000;
        streams.push(tokio::spawn(async move {
            let joined = client.post(&url).bearer_auth(&token).send().await;
            drop(permit);
            match joined {
                Ok(r) if r.status().is_success() => {
                    watcher::watch(local, server, session, token, ttl, tally).await;
                }
                _ => {
                    tally.failed.fetch_add(1, Ordering::Relaxed);
                }
            }
        }));
    }
    // Wait until every stream answered (or failed), at most two minutes.
    let deadline = Instant::now() + Duration::from_secs(120);
    while tally.connected.load(Ordering::Relaxed) + tally.failed.load(Ordering::Relaxed) < n
        && Instant::now() < deadline
    {
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    eprintln!(
        "{n} watchers: {} connected, {} failed, set-up {:.1} s",
        tally.connected.load(Ordering::Relaxed),
        tally.failed.load(Ordering::Relaxed),
        started.elapsed().as_secs_f64()
    );
    // Settle, then measure.
    tokio::time::sleep(Duration::from_secs(2)).await;
    let calls0 = probes::redis_calls(&args.redis).await?;
    let events0 = tally.events.load(Ordering::Relaxed);
    let admitted0 = tally.admitted.load(Ordering::Relaxed);
    tally.measuring.store(true, Ordering::Relaxed);
    let t0 = Instant::now();
    tokio::time::sleep(Duration::from_secs(args.window_secs)).await;
    tally.measuring.store(false, Ordering::Relaxed);
    let secs = t0.elapsed().as_secs_f64();
    let calls1 = probes::redis_calls(&args.redis).await?;
    let rss = args.server_pid.and_then(probes::rss_bytes);
    let events = tally.events.load(Ordering::Relaxed) - events0;
    let admitted = tally.admitted.load(Ordering::Relaxed) - admitted0;
    let mut delays = std::mem::take(&mut *tally.delays.lock());
    delays.sort_unstable();
    for s in streams {
        s.abort();
    }
    Ok(CrowdReport {
        watchers: n,
        connected: tally.connected.load(Ordering::Relaxed),
        failed: tally.failed.load(Ordering::Relaxed),
        redis_commands_per_sec: (calls1 - calls0) as f64 / secs,
        admitted_in_window: admitted,
        delay_ms_p50: percentile(&delays, 0.50),
        delay_ms_p99: percentile(&delays, 0.99),
        delay_ms_max: delays.last().copied().unwrap_or(0),
        events_per_sec: events as f64 / secs,
        server_rss_mb: rss.map(|b| b as f64 / 1_048_576.0),
    })
}

async fn run(args: Args) -> Result<Vec<CrowdReport>, BenchError> {
    let biggest = args.watchers.iter().copied().max().unwrap_or(0);
    if let Some(limit) = probes::open_file_limit()
        && limit < biggest + 1_000
    {
        return Err(BenchError::Setup(format!(
            "open-file limit {limit} is below {biggest} watchers: run under `ulimit -n 200000`"
        )));
    }
    let tokens = setup::Tokens::new(&args.jwt_secret)?;
    let client = reqwest::Client::builder()
        .pool_max_idle_per_host(args.setup_concurrency)
        .build()
        .map_err(|e| BenchError::Setup(format!("HTTP client: {e}")))?;
    let mut out = Vec::new();
    for &n in &args.watchers {
        let r = crowd(&args, &client, &tokens, n).await?;
        println!("{}", serde_json::to_string(&r).unwrap_or_default());
        out.push(r);
    }
    Ok(out)
}

#[tokio::main]
async fn main() {
    let args = Args::parse();
    match run(args).await {
        Ok(reports) => {
            println!(
                "| watchers | connected | Redis cmd/s | admitted | delay p50 / p99 / max ms | events/s | server RSS MB |"
            );
            println!("|---:|---:|---:|---:|---|---:|---:|");
            for r in reports {
                println!(
                    "| {} | {} | {:.0} | {} | {} / {} / {} | {:.0} | {} |",
                    r.watchers,
                    r.connected,
                    r.redis_commands_per_sec,
                    r.admitted_in_window,
                    r.delay_ms_p50,
                    r.delay_ms_p99,
                    r.delay_ms_max,
                    r.events_per_sec,
                    r.server_rss_mb
                        .map_or("-".to_owned(), |m| format!("{m:.0}")),
                );
            }
        }
        Err(e) => {
            eprintln!("sse-crowd: {e}");
            std::process::exit(1);
        }
    }
}
