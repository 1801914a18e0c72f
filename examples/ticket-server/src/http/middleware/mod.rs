//! The middleware every request passes, and what it reads: per-user and per-IP rate limits,
//! the client's address, CORS, cache headers and metrics.

pub mod cache;
pub mod client_ip;
pub mod cors;
pub mod metrics;
pub mod rate_limit;
