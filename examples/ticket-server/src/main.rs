//! `cargo run -p ticket-server`: the example server on 127.0.0.1:8080 (see `--help`).

use std::net::SocketAddr;
use std::process::ExitCode;

use clap::Parser;
use ticket_server::config::Config;
use ticket_server::state::AppState;
use ticket_server::{admin, app, background, demo};

#[tokio::main]
async fn main() -> ExitCode {
    let config = Config::parse();
    init_tracing(config.log_json);
    match run(config).await {
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

async fn run(config: Config) -> Result<(), String> {
    let listen = config.listen;
    let state = AppState::build(config).await.map_err(|e| e.to_string())?;
    admin::ensure_admin(&state).await.map_err(|e| e.message)?;
    if !state.config.no_demo {
        let event = demo::ensure_demo_event(&state)
            .await
            .map_err(|e| e.message)?;
        tracing::info!(event = %event.id, "demo event on sale");
    }
    let listener = tokio::net::TcpListener::bind(listen)
        .await
        .map_err(|e| format!("cannot listen on {listen}: {e}"))?;
    let addr = listener.local_addr().map_err(|e| e.to_string())?;
    admin::connect_sandbox_webhooks(&state, &format!("http://{addr}")).map_err(|e| e.message)?;
    let jobs = background::spawn(state.clone());
    tracing::info!(%addr, store = ?state.config.store, "ticket-server listening");
    // The client's address, for the per-IP rate limit.
    let app = app::router(state).into_make_service_with_connect_info::<SocketAddr>();
    let served = axum::serve(listener, app)
        .with_graceful_shutdown(async {
            let _ = tokio::signal::ctrl_c().await;
        })
        .await
        .map_err(|e| e.to_string());
    jobs.abort();
    served
}
