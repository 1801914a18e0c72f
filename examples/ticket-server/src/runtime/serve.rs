//! Serving: the binary's whole life from a [`Config`] (connect the stores, bootstrap, listen,
//! run the background jobs) until Ctrl-C or SIGTERM, then a graceful stop: the listener
//! closes, open event streams end (clients resume elsewhere with `Last-Event-ID`), requests
//! in flight get [`SHUTDOWN_GRACE`] to finish, the background jobs stop.

use std::future::Future;
use std::net::SocketAddr;
use std::time::Duration;

use axum::Extension;
use tokio::sync::watch;

use crate::http::draining::Draining;

use crate::http;
use crate::runtime::config::Config;
use crate::runtime::state::{AppState, StartError};
use crate::runtime::{background, bootstrap, demo};

/// Why the server stopped with an error.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ServeError {
    /// The stores or the configuration could not be set up.
    #[error(transparent)]
    Start(#[from] StartError),
    /// A start-up step (admin account, demo event, webhooks) failed.
    #[error("start-up: {0}")]
    Bootstrap(String),
    /// The listen address could not be bound.
    #[error("cannot listen on {addr}: {source}")]
    Listen {
        /// The address asked for.
        addr: SocketAddr,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// Serving failed.
    #[error("serving: {0}")]
    Serve(#[source] std::io::Error),
}

/// Runs the server as the binary does: listens on `config.listen`, builds the state, makes
/// sure of the admin account and (unless `--no-demo`) the demo event, connects the in-process
/// sandbox's webhooks, starts the background jobs and serves until [`shutdown_signal`]
/// completes. Then it stops accepting, lets requests in flight finish, stops the background
/// jobs and returns `Ok(())`.
pub async fn run(config: Config) -> Result<(), ServeError> {
    // Listen for the signals before anything else, so one sent during start-up is not lost.
    let shutdown = shutdown_signal()?;
    let mut config = config;
    config
        .validate()
        .map_err(|e| ServeError::Start(StartError::Config(e)))?;
    let listen = config.listen;
    // Bind first: the address actually bound (a port 0 resolved) is the default public URL,
    // which the state needs (the hosted payment page's return URL, the in-process sandbox's
    // page). Connections wait in the backlog until serving starts.
    let listener = tokio::net::TcpListener::bind(listen)
        .await
        .map_err(|source| ServeError::Listen {
            addr: listen,
            source,
        })?;
    let addr = listener.local_addr().map_err(ServeError::Serve)?;
    config.listen = addr;
    if config.oauth.public_url.is_none() && addr.ip().is_unspecified() {
        tracing::warn!(%addr, "listening on every interface without --public-url: links for browsers (payment page, social login) use http://{addr}");
    }
    let state = AppState::build(config).await?;
    bootstrap::ensure_admin(&state)
        .await
        .map_err(|e| ServeError::Bootstrap(e.message))?;
    if !state.config.no_demo {
        let event = demo::ensure_demo_event(&state)
            .await
            .map_err(|e| ServeError::Bootstrap(e.message))?;
        tracing::info!(event = %event.id, "demo event on sale");
    }
    bootstrap::connect_sandbox_webhooks(&state, &format!("http://{addr}"))
        .map_err(|e| ServeError::Bootstrap(e.message))?;
    let jobs = background::spawn(state.clone());
    tracing::info!(%addr, store = ?state.config.store, "ticket-server listening");
    let served = serve(listener, state, shutdown).await;
    tracing::info!("listener closed; stopping background jobs");
    jobs.stop().await;
    served.map_err(ServeError::Serve)
}

/// How long requests in flight may take to finish once a stop was asked for; connections
/// still open after it are closed.
pub const SHUTDOWN_GRACE: Duration = Duration::from_secs(10);

/// Serves the API on `listener` as the binary does (with each connection's client address,
/// which the per-IP rate limit reads) until `shutdown` completes. Then it stops accepting,
/// ends the open event streams ([`Draining`]) and waits at most [`SHUTDOWN_GRACE`] for
/// requests in flight. For embedding the server in a test or a benchmark; [`run`] adds the
/// background jobs and the start-up account and demo event.
pub async fn serve<F>(
    listener: tokio::net::TcpListener,
    state: AppState,
    shutdown: F,
) -> std::io::Result<()>
where
    F: Future<Output = ()> + Send + 'static,
{
    let (draining, drained) = watch::channel(false);
    let app = http::router(state)
        .layer(Extension(Draining::new(drained.clone())))
        .into_make_service_with_connect_info::<SocketAddr>();
    let server = axum::serve(listener, app).with_graceful_shutdown(async move {
        shutdown.await;
        draining.send_replace(true);
    });
    let grace_over = async move {
        Draining::new(drained).started().await;
        tokio::time::sleep(SHUTDOWN_GRACE).await;
    };
    tokio::select! {
        served = server => served,
        () = grace_over => {
            tracing::warn!("requests still open {SHUTDOWN_GRACE:?} after the stop was asked for: closing them");
            Ok(())
        }
    }
}

/// A future that completes on Ctrl-C (SIGINT) or, on Unix, SIGTERM (what `kill`, systemd
/// and container runtimes send to stop a process). The handlers are installed when this is
/// called, so a signal arriving before the future is polled still counts.
pub fn shutdown_signal() -> Result<impl Future<Output = ()> + Send + 'static, ServeError> {
    #[cfg(unix)]
    let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
        .map_err(|e| ServeError::Bootstrap(format!("cannot listen for SIGTERM: {e}")))?;
    let ctrl_c = tokio::signal::ctrl_c();
    Ok(async move {
        #[cfg(unix)]
        let terminated = async move {
            term.recv().await;
        };
        #[cfg(not(unix))]
        let terminated = std::future::pending::<()>();
        tokio::select! {
            _ = ctrl_c => tracing::info!("Ctrl-C: shutting down"),
            () = terminated => tracing::info!("SIGTERM: shutting down"),
        }
    })
}
