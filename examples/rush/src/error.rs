//! Why a run could not be carried out (as opposed to what it found: see [`crate::Checks`]).

/// A run that could not start, or whose setup or clean-up failed. Operations refused or
/// failed *during* the simulation are not errors of the run: they are counted in the report.
#[derive(Debug, thiserror::Error)]
pub enum RushError {
    /// The configuration is inconsistent (e.g. the behaviour fractions do not add up to 1).
    #[error("invalid configuration: {0}")]
    Config(String),
    /// The backend's server could not be reached; the message says how to start it.
    #[error("{what} is not reachable at {url} ({detail}). Start it with `{start}`.")]
    Unreachable {
        /// `Redis` or `PostgreSQL`.
        what: &'static str,
        /// The URL tried.
        url: String,
        /// A command that starts it on this machine.
        start: &'static str,
        /// The connection error and its causes, in one line.
        detail: String,
        /// The connection error.
        source: Box<ticket_core::Error>,
    },
    /// A library call needed to set up, drive or check the run failed.
    #[error("{context}: {source}")]
    Library {
        /// What the simulator was doing.
        context: String,
        /// The library's error.
        source: ticket_core::Error,
    },
    /// The example server (HTTP mode) could not be used to set up or check the run.
    #[error("{context}: {detail}")]
    Http {
        /// What the simulator was doing.
        context: String,
        /// What went wrong.
        detail: String,
    },
    /// The payment sandbox could not be built.
    #[error("payment sandbox: {0}")]
    Sandbox(#[from] payment_sandbox::SandboxError),
    /// The plot could not be drawn or written.
    #[error("plot: {0}")]
    Plot(String),
    /// A worker task panicked or was cancelled.
    #[error("worker task failed: {0}")]
    Worker(#[from] tokio::task::JoinError),
}

/// An error and its chain of causes, joined by `: ` (reqwest's and sqlx's own messages hide
/// the cause).
pub fn chain(e: &dyn std::error::Error) -> String {
    let mut out = e.to_string();
    let mut cause = e.source();
    while let Some(c) = cause {
        out.push_str(": ");
        out.push_str(&c.to_string());
        cause = c.source();
    }
    out
}

impl RushError {
    /// Wraps a library error with what the simulator was doing.
    pub(crate) fn library(context: impl Into<String>) -> impl FnOnce(ticket_core::Error) -> Self {
        let context = context.into();
        move |source| Self::Library { context, source }
    }
}
