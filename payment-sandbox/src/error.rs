//! The sandbox's own errors (the gateway's are [`ticket_core::gateway::GatewayError`]).

/// Errors of the sandbox's configuration and webhook-endpoint API.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum SandboxError {
    /// A fault configuration is out of range; nothing was registered.
    #[error("invalid faults: {0}")]
    InvalidFaults(String),
    /// An endpoint URL or signing choice is malformed; nothing was registered.
    #[error("invalid webhook endpoint: {0}")]
    InvalidEndpoint(String),
    /// No endpoint has this id.
    #[error("webhook endpoint {0} not found")]
    UnknownEndpoint(String),
    /// A sandbox configuration value is out of range.
    #[error("invalid sandbox configuration: {0}")]
    InvalidConfig(String),
    /// An API key is malformed (the message says why, never repeats the key).
    #[error("invalid API key: {0}")]
    InvalidApiKey(String),
    /// The sandbox already has its configured number of webhook endpoints.
    #[error("too many webhook endpoints: at most {0} may be registered")]
    TooManyEndpoints(usize),
}
