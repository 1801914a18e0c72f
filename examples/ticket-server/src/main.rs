//! `cargo run -p ticket-server`: the example server on 127.0.0.1:8080 (see `--help`), on
//! memory with the demo event unless told otherwise. Stops gracefully on Ctrl-C or SIGTERM.

use std::process::ExitCode;

use clap::Parser;
use ticket_server::runtime::config::Config;
use ticket_server::runtime::serve;

#[tokio::main]
async fn main() -> ExitCode {
    let config = Config::parse();
    init_tracing(config.log_json);
    match serve::run(config).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            tracing::error!("ticket-server: {e}");
            eprintln!("ticket-server: {e}");
            ExitCode::FAILURE
        }
    }
}

fn init_tracing(json: bool) {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt().with_env_filter(filter);
    if json {
        builder.json().init();
    } else {
        builder.init();
    }
}
