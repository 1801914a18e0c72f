//! The sandbox as a standalone HTTP service:
//! `cargo run -p payment-sandbox --features cli -- --listen 127.0.0.1:8090`.

use std::net::SocketAddr;
use std::time::Duration;

use clap::Parser;
use payment_sandbox::{Sandbox, SandboxConfig, http};

/// A fake payment provider with signed webhooks and injectable faults.
#[derive(Debug, Parser)]
#[command(version, about)]
struct Args {
    /// Address to listen on.
    #[arg(long, default_value = "127.0.0.1:8090")]
    listen: SocketAddr,
    /// Multiplies the provider's waits (retry schedule, Retry-After, slow cards); 0.001 runs
    /// the 5-minute retry step in 300 ms.
    #[arg(long, default_value_t = 1.0)]
    time_scale: f64,
    /// How long the slow test cards stay processing, in milliseconds (before the time scale).
    #[arg(long, default_value_t = 10_000)]
    slow_delay_ms: u64,
    /// Webhook request timeout, in milliseconds.
    #[arg(long, default_value_t = 15_000)]
    request_timeout_ms: u64,
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args = Args::parse();
    let mut config = SandboxConfig {
        time_scale: args.time_scale,
        slow_delay: Duration::from_millis(args.slow_delay_ms),
        ..SandboxConfig::default()
    };
    config.delivery.request_timeout = Duration::from_millis(args.request_timeout_ms);
    let sandbox = Sandbox::new(config)?;
    let (addr, server) = http::serve(sandbox, args.listen).await?;
    println!("payment sandbox listening on http://{addr}");
    tokio::select! {
        done = server => done??,
        _ = tokio::signal::ctrl_c() => println!("stopping"),
    }
    Ok(())
}
