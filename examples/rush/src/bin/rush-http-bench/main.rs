//! `rush-http-bench`: closed-loop HTTP load on a running `ticket-server`, for the HTTP
//! figures of `docs/BENCHMARKS.md`.
//!
//! For each client count it measures, back to back, `GET /api/ping` (a constant answer
//! through the API's middleware: the baseline), `GET /api/sessions/{id}` and
//! `POST /api/holds`, and reports requests per second, HDR latency percentiles, errors by
//! status and each scenario's ratio to `ping` in the same run. It prepares its own event
//! through the admin API with tokens minted from the server's `--jwt-secret`.
//!
//! Start the server with the rate limits off, for example:
//!
//! ```sh
//! ticket-server --store redis --namespace httpbench_x --no-demo --jwt-secret "$S" \
//!     --rate-limit-per-minute 0 --rate-limit-per-ip-per-minute 0
//! rush-http-bench --jwt-secret "$S" --clients 16,64 --duration-secs 10
//! ```
//!
//! `--scenario crowd` measures an SSE crowd instead ([`crowd`]): for each `--watchers`
//! count, that many users watch one session's queue while it admits `--admit-per-sec`;
//! it reports the Redis commands per second (`--redis-url`), the delay from an admission
//! in the store to the watcher's event, events per second and the server's RSS
//! (`--watch-pid`, the server's pid first):
//!
//! ```sh
//! ulimit -n 200000   # for the server too
//! rush-http-bench --jwt-secret "$S" --scenario crowd --watchers 100,10000,50000 \
//!     --redis-url redis://127.0.0.1:6379 --watch-pid "$SERVER_PID" --duration-secs 20
//! ```
//!
//! Exit status: 0 after a clean run, 2 when a measured window had errors (the report shows
//! them), 1 when the run could not start (a bad flag, the server unreachable or refusing
//! the set-up; the reason is printed).

mod args;
mod cpu;
mod crowd;
mod load;
mod report;
mod setup;

use std::sync::Arc;
use std::time::Duration;

use clap::Parser;

use args::Args;
use report::{Report, ScenarioReport};

/// Why a run could not be made.
#[derive(Debug, thiserror::Error)]
pub enum BenchError {
    /// A flag is wrong.
    #[error("{0}")]
    Args(String),
    /// Preparing the run failed (client, tokens, the benchmark's event).
    #[error("set-up: {0}")]
    Setup(String),
    /// The request before a measurement did not succeed.
    #[error("{scenario}: {url} did not succeed before the measurement: {message}")]
    Probe {
        /// The scenario.
        scenario: &'static str,
        /// What was called.
        url: String,
        /// The answer or the transport error.
        message: String,
    },
}

pub use rush::error::chain;

/// Exit status of a run that could not be made.
const EXIT_FAILED: i32 = 1;
/// Exit status of a run whose measured windows had errors.
const EXIT_ERRORS: i32 = 2;

fn main() {
    let args = Args::parse();
    if args.scenario == args::Scenario::Crowd {
        std::process::exit(crowd_main(&args));
    }
    let code = match args
        .validate()
        .map_err(BenchError::Args)
        .and_then(|()| runtime(args.client_threads))
        .and_then(|rt| rt.block_on(run(&args)))
    {
        Ok(report) => {
            if args.json {
                match serde_json::to_string_pretty(&report) {
                    Ok(s) => println!("{s}"),
                    Err(e) => {
                        eprintln!("rush-http-bench: the report as JSON: {e}");
                        std::process::exit(EXIT_FAILED);
                    }
                }
            } else {
                print!("{}", report.to_text());
            }
            if report.error_count() > 0 {
                EXIT_ERRORS
            } else {
                0
            }
        }
        Err(e) => {
            eprintln!("rush-http-bench: {e}");
            EXIT_FAILED
        }
    };
    std::process::exit(code);
}

/// `--scenario crowd`: one crowd per `--watchers` count; the exit status.
fn crowd_main(args: &Args) -> i32 {
    let run = async {
        let limit = crowd::raise_file_limit();
        if let Some(most) = args.watchers.iter().max()
            && u64::try_from(*most).unwrap_or(u64::MAX) + 100 > limit
        {
            eprintln!("rush-http-bench: the open-file limit ({limit}) is below {most} watchers");
        }
        let tokens = Arc::new(setup::Tokens::new(&args.jwt_secret)?);
        let crowd_args = crowd::CrowdArgs {
            base: args.base_url(),
            tokens,
            admit_per_sec: args.admit_per_sec,
            duration: args.duration(),
            admission_ttl: Duration::from_secs(args.admission_ttl_secs),
            redis_url: args.redis_url.as_deref(),
            server_pid: args.watch_pid.first().copied(),
        };
        let mut reports = Vec::new();
        for &n in &args.watchers {
            let one = crowd::run(&crowd_args, n).await?;
            if !args.json {
                print!("{}", one.to_text());
            }
            reports.push(one);
        }
        Ok::<_, BenchError>(reports)
    };
    match args
        .validate()
        .map_err(BenchError::Args)
        .and_then(|()| runtime(args.client_threads))
        .and_then(|rt| rt.block_on(run))
    {
        Ok(reports) => {
            if args.json {
                match serde_json::to_string_pretty(&reports) {
                    Ok(s) => println!("{s}"),
                    Err(e) => {
                        eprintln!("rush-http-bench: the report as JSON: {e}");
                        return EXIT_FAILED;
                    }
                }
            }
            0
        }
        Err(e) => {
            eprintln!("rush-http-bench: {e}");
            EXIT_FAILED
        }
    }
}

/// The client's runtime.
fn runtime(threads: usize) -> Result<tokio::runtime::Runtime, BenchError> {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(threads)
        .enable_all()
        .build()
        .map_err(|e| BenchError::Setup(format!("tokio runtime: {e}")))
}

/// Prepares the session, then measures every scenario at every client count.
async fn run(args: &Args) -> Result<Report, BenchError> {
    let started_at_unix_ms = setup::now_millis()?;
    let base = args.base_url();
    let timeout = Duration::from_secs(args.timeout_secs);
    let tokens = Arc::new(setup::Tokens::new(&args.jwt_secret)?);
    let session = if args.scenario.needs_session() {
        let client = load::one_connection_client(timeout)?;
        Some(setup::create_session(&client, base, &tokens).await?)
    } else {
        None
    };
    let mut results = Vec::new();
    for &clients in &args.clients {
        for scenario in args.scenario.steps() {
            let target = Arc::new(load::Target::new(
                scenario,
                base,
                session.as_deref(),
                tokens.clone(),
            )?);
            load::probe(&target, timeout).await?;
            let measured = load::measure(
                target,
                clients,
                args.warmup(),
                args.duration(),
                timeout,
                &args.watch_pid,
            )
            .await?;
            let one = ScenarioReport::new(scenario, clients, measured);
            if !args.json {
                eprintln!(
                    "{} at {clients} clients: {:.0} req/s, p99 {:.2} ms, {} errors",
                    scenario.name(),
                    one.requests_per_sec,
                    one.p99_ms,
                    one.error_count()
                );
            }
            results.push(one);
        }
    }
    report::fill_ratios(&mut results);
    Ok(Report {
        url: base.to_owned(),
        started_at_unix_ms,
        duration_secs: args.duration_secs,
        warmup_secs: args.warmup_secs,
        client_threads: args.client_threads,
        session_id: session,
        results,
    })
}
