//! `read-latency`: the latency of the reads a person waits on, once the history is large,
//! for `docs/BENCHMARKS.md`.
//!
//! It creates a session through the admin API, makes `--user-holds` holds for one buyer and
//! more holds by fresh buyers until the session has `--audit-records` audit records (one
//! per hold), all through `POST /api/holds`, then measures closed-loop with `--clients`
//! connections for `--secs` each: `GET /api/me/reservations?limit=50` as that buyer (the
//! first page of 20 000) and `GET /api/admin/sessions/{id}/stats`. It prints p50, p99 and
//! max latency and the requests per second of each.
//!
//! ```sh
//! read-latency --url http://127.0.0.1:18080 --jwt-secret "$S" \
//!     --user-holds 20000 --audit-records 1000000
//! ```

#[path = "../rush-http-bench/setup.rs"]
mod setup;

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use clap::Parser;

/// Why a run could not be made.
#[derive(Debug, thiserror::Error)]
pub enum BenchError {
    /// Preparing or measuring failed.
    #[error("set-up: {0}")]
    Setup(String),
}

pub use rush::error::chain;

/// Flags.
#[derive(Debug, Parser)]
#[command(
    name = "read-latency",
    about = "Read latency over a large history on one ticket-server"
)]
struct Args {
    /// The server.
    #[arg(long, default_value = "http://127.0.0.1:18080")]
    url: String,
    /// The server's `--jwt-secret`.
    #[arg(long, env = "JWT_SECRET")]
    jwt_secret: String,
    /// Holds of the measured buyer.
    #[arg(long, default_value_t = 20_000)]
    user_holds: u64,
    /// Audit records of the session before measuring (one per hold).
    #[arg(long, default_value_t = 1_000_000)]
    audit_records: u64,
    /// Connections while filling and measuring.
    #[arg(long, default_value_t = 32)]
    clients: usize,
    /// Seconds per measured read.
    #[arg(long, default_value_t = 10)]
    secs: u64,
}

/// Makes `n` one-unit holds in `session`, each by `token()`'s user, with `clients` tasks.
async fn fill(
    client: &reqwest::Client,
    base: &str,
    session: &str,
    n: u64,
    clients: usize,
    token: Arc<dyn Fn() -> Result<String, BenchError> + Send + Sync>,
) -> Result<(), BenchError> {
    let next = Arc::new(AtomicU64::new(0));
    let body = serde_json::json!({ "session_id": session, "grade": setup::GRADE, "quantity": 1 })
        .to_string();
    let mut tasks = Vec::new();
    for _ in 0..clients {
        let (client, next, body, token) =
            (client.clone(), next.clone(), body.clone(), token.clone());
        let url = format!("{base}/api/holds");
        tasks.push(tokio::spawn(async move {
            while next.fetch_add(1, Ordering::Relaxed) < n {
                let resp = client
                    .post(&url)
                    .bearer_auth(token()?)
                    .header("idempotency-key", uuid::Uuid::now_v7().simple().to_string())
                    .header("content-type", "application/json")
                    .body(body.clone())
                    .send()
                    .await
                    .map_err(|e| BenchError::Setup(format!("hold: {}", chain(&e))))?;
                if !resp.status().is_success() {
                    let status = resp.status();
                    let text = resp.text().await.unwrap_or_default();
                    return Err(BenchError::Setup(format!("hold answered {status}: {text}")));
                }
            }
            Ok::<(), BenchError>(())
        }));
    }
    for t in tasks {
        t.await
            .map_err(|e| BenchError::Setup(format!("fill task: {e}")))??;
    }
    Ok(())
}

/// Closed-loop GETs of `url` with `token` for `secs`: sorted latencies in µs.
async fn measure(
    client: &reqwest::Client,
    url: String,
    token: String,
    clients: usize,
    secs: u64,
) -> Result<Vec<u64>, BenchError> {
    let end = Instant::now() + Duration::from_secs(secs);
    let mut tasks = Vec::new();
    for _ in 0..clients {
        let (client, url, token) = (client.clone(), url.clone(), token.clone());
        tasks.push(tokio::spawn(async move {
            let mut lat = Vec::new();
            while Instant::now() < end {
                let t = Instant::now();
                let resp = client
                    .get(&url)
                    .bearer_auth(&token)
                    .send()
                    .await
                    .map_err(|e| BenchError::Setup(format!("GET {url}: {}", chain(&e))))?;
                let status = resp.status();
                let body = resp
                    .bytes()
                    .await
                    .map_err(|e| BenchError::Setup(format!("GET {url}: {e}")))?;
                if !status.is_success() {
                    return Err(BenchError::Setup(format!(
                        "GET {url} answered {status}: {}",
                        String::from_utf8_lossy(&body)
                    )));
                }
                lat.push(u64::try_from(t.elapsed().as_micros()).unwrap_or(u64::MAX));
            }
            Ok::<Vec<u64>, BenchError>(lat)
        }));
    }
    let mut all = Vec::new();
    for t in tasks {
        all.extend(
            t.await
                .map_err(|e| BenchError::Setup(format!("measure task: {e}")))??,
        );
    }
    all.sort_unstable();
    Ok(all)
}

fn pct(sorted: &[u64], p: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i.min(sorted.len() - 1)] as f64 / 1000.0
}

async fn run(args: Args) -> Result<(), BenchError> {
    let base = args.url.trim_end_matches('/').to_owned();
    let tokens = Arc::new(setup::Tokens::new(&args.jwt_secret)?);
    let client = reqwest::Client::builder()
        .pool_max_idle_per_host(args.clients)
        .tcp_nodelay(true)
        .build()
        .map_err(|e| BenchError::Setup(format!("HTTP client: {e}")))?;
    let session = setup::create_session(&client, &base, &tokens).await?;
    let buyer = tokens.fresh("USER")?;
    let started = Instant::now();
    let b = buyer.clone();
    fill(
        &client,
        &base,
        &session,
        args.user_holds,
        args.clients,
        Arc::new(move || Ok(b.clone())),
    )
    .await?;
    let others = args.audit_records.saturating_sub(args.user_holds);
    let t = tokens.clone();
    fill(
        &client,
        &base,
        &session,
        others,
        args.clients,
        Arc::new(move || t.fresh("USER")),
    )
    .await?;
    eprintln!(
        "filled {} holds ({} of the buyer) in {:.0} s",
        args.audit_records.max(args.user_holds),
        args.user_holds,
        started.elapsed().as_secs_f64()
    );
    let admin = tokens.fresh("ADMIN")?;
    println!("| read | requests/s | p50 ms | p99 ms | max ms |");
    println!("|---|---:|---:|---:|---:|");
    for (name, url, token) in [
        (
            "GET /api/me/reservations?limit=50",
            format!("{base}/api/me/reservations?limit=50"),
            buyer.clone(),
        ),
        (
            "GET /api/admin/sessions/{id}/stats",
            format!("{base}/api/admin/sessions/{session}/stats"),
            admin.clone(),
        ),
    ] {
        let lat = measure(&client, url, token, args.clients, args.secs).await?;
        println!(
            "| {name} | {:.0} | {:.2} | {:.2} | {:.2} |",
            lat.len() as f64 / args.secs as f64,
            pct(&lat, 0.5),
            pct(&lat, 0.99),
            pct(&lat, 1.0)
        );
    }
    Ok(())
}

#[tokio::main]
async fn main() {
    if let Err(e) = run(Args::parse()).await {
        eprintln!("read-latency: {e}");
        std::process::exit(1);
    }
}
