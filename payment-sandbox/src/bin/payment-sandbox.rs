//! The sandbox as a standalone HTTP service:
//! `cargo run -p payment-sandbox --features cli -- --listen 127.0.0.1:8090`.
//!
//! Every route needs the API key (`Authorization: Bearer sk_test_…`): give one with
//! `--api-key` or `PAYMENT_SANDBOX_KEY`, or the sandbox makes one and prints it once.

use std::net::SocketAddr;
use std::time::Duration;

use clap::Parser;
use payment_sandbox::auth::ApiKey;
use payment_sandbox::gateway::{
    DEFAULT_AUTHORIZATION_LIFETIME, DEFAULT_MAX_DELIVERY_LOG, DEFAULT_MAX_ENDPOINTS,
    DEFAULT_MAX_INTENTS, DEFAULT_MAX_REFUNDS, DEFAULT_MAX_SESSIONS,
};
use payment_sandbox::{Sandbox, SandboxConfig, http};

/// How long a stop waits for the requests in progress.
const SHUTDOWN_GRACE: Duration = Duration::from_secs(10);

/// A fake payment provider with signed webhooks and injectable faults.
#[derive(Debug, Parser)]
#[command(version, about)]
struct Args {
    /// Address to listen on.
    #[arg(long, default_value = "127.0.0.1:8090")]
    listen: SocketAddr,
    /// The secret API key every request must carry (`Authorization: Bearer …`):
    /// `sk_test_` and 24 to 120 of A-Z, a-z, 0-9, _ and -. Without it a random key is made
    /// and printed once at start.
    #[arg(long, env = "PAYMENT_SANDBOX_KEY", hide_env_values = true)]
    api_key: Option<String>,
    /// Multiplies the provider's waits (retry schedule, Retry-After, slow cards); 0.001 runs
    /// the 5-minute retry step in 300 ms.
    #[arg(long, default_value_t = 1.0)]
    time_scale: f64,
    /// How long the slow test cards stay processing, in milliseconds (before the time scale).
    #[arg(long, default_value_t = 10_000)]
    slow_delay_ms: u64,
    /// How long an authorization (manual capture) stays capturable, in seconds (before the
    /// time scale); then the sandbox cancels it. Default 7 days.
    #[arg(long, default_value_t = DEFAULT_AUTHORIZATION_LIFETIME.as_secs())]
    authorization_lifetime_secs: u64,
    /// Webhook request timeout, in milliseconds.
    #[arg(long, default_value_t = 15_000)]
    request_timeout_ms: u64,
    /// The most intents kept; past it the oldest settled ones (every webhook delivered) are
    /// evicted, and creation is refused (503) while none is settled.
    #[arg(long, default_value_t = DEFAULT_MAX_INTENTS)]
    max_intents: usize,
    /// The most refunds kept; past it the oldest settled ones are evicted.
    #[arg(long, default_value_t = DEFAULT_MAX_REFUNDS)]
    max_refunds: usize,
    /// The most delivery attempts the log keeps; past it the oldest are dropped.
    #[arg(long, default_value_t = DEFAULT_MAX_DELIVERY_LOG)]
    max_delivery_log: usize,
    /// The most webhook endpoints that can be registered.
    #[arg(long, default_value_t = DEFAULT_MAX_ENDPOINTS)]
    max_endpoints: usize,
    /// The most checkout sessions kept; past it the oldest complete or expired ones are
    /// evicted, and creation is refused (503) while every one is open.
    #[arg(long, default_value_t = DEFAULT_MAX_SESSIONS)]
    max_sessions: usize,
    /// The base URL under which buyers reach the hosted payment page (`{url}/pay/{id}`),
    /// e.g. behind a proxy. Default: `http://` and the address the sandbox listens on
    /// (127.0.0.1 when it listens on all interfaces).
    #[arg(long)]
    public_url: Option<String>,
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args = Args::parse();
    let (api_key, generated) = match &args.api_key {
        Some(key) => (
            ApiKey::new(key.as_str()).map_err(|e| format!("--api-key: {e}"))?,
            false,
        ),
        None => (ApiKey::generate()?, true),
    };
    // Bound first: the page's public URL defaults to the address actually bound.
    let listener = tokio::net::TcpListener::bind(args.listen).await?;
    let bound = listener.local_addr()?;
    let public_url = match &args.public_url {
        Some(url) => url.clone(),
        None => {
            let mut shown = bound;
            if shown.ip().is_unspecified() {
                shown.set_ip(std::net::Ipv4Addr::LOCALHOST.into());
            }
            format!("http://{shown}")
        }
    };
    let mut config = SandboxConfig {
        time_scale: args.time_scale,
        slow_delay: Duration::from_millis(args.slow_delay_ms),
        authorization_lifetime: Duration::from_secs(args.authorization_lifetime_secs),
        max_intents: args.max_intents,
        max_refunds: args.max_refunds,
        max_delivery_log: args.max_delivery_log,
        max_endpoints: args.max_endpoints,
        max_sessions: args.max_sessions,
        public_url,
        ..SandboxConfig::default()
    };
    config.delivery.request_timeout = Duration::from_millis(args.request_timeout_ms);
    let sandbox = Sandbox::new(config)?;
    let pages = sandbox.config().public_url.clone();
    let mut stop = StopSignals::install()?;
    let (stopping, stopped) = tokio::sync::oneshot::channel::<()>();
    let (addr, mut server) = http::serve_on(sandbox, api_key.clone(), listener, async {
        let _ = stopped.await;
    })?;
    println!("payment sandbox listening on http://{addr}");
    println!("hosted payment pages at {pages}/pay/{{session id}}");
    if generated {
        // Shown this once only: the clients need it (ticket-server --payment-sandbox-key).
        println!(
            "API key (generated; pass --api-key or PAYMENT_SANDBOX_KEY to choose one): {}",
            api_key.expose_secret()
        );
    } else {
        println!("API key: the one given with --api-key / PAYMENT_SANDBOX_KEY");
    }
    tokio::select! {
        done = &mut server => return Ok(done??),
        () = stop.recv() => println!("stopping"),
    }
    let _ = stopping.send(());
    match tokio::time::timeout(SHUTDOWN_GRACE, server).await {
        Ok(done) => done??,
        Err(_) => println!("requests still in progress after {SHUTDOWN_GRACE:?}: stopping anyway"),
    }
    Ok(())
}

/// Ctrl-C, and SIGTERM on Unix (what `kill`, systemd and container runtimes send), installed
/// at start so a failure to listen for them is an error at start, not a process that cannot
/// be stopped.
struct StopSignals {
    #[cfg(unix)]
    terminate: tokio::signal::unix::Signal,
}

impl StopSignals {
    fn install() -> std::io::Result<Self> {
        Ok(Self {
            #[cfg(unix)]
            terminate: tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())?,
        })
    }

    /// Resolves at the first Ctrl-C or SIGTERM.
    async fn recv(&mut self) {
        #[cfg(unix)]
        let terminate = self.terminate.recv();
        #[cfg(not(unix))]
        let terminate = std::future::pending::<Option<()>>();
        tokio::pin!(terminate);
        tokio::select! {
            done = tokio::signal::ctrl_c() => {
                // Without a Ctrl-C handler only SIGTERM can stop the process.
                if done.is_err() {
                    (&mut terminate).await;
                }
            }
            _ = &mut terminate => {}
        }
    }
}
