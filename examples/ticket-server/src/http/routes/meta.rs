//! The meta routes: liveness and a constant answer through the API's middleware.

use axum::routing::get;
use axum::{Json, Router};
use serde::Serialize;

use crate::runtime::state::AppState;

/// The routes of this group.
pub fn router() -> Router<AppState> {
    Router::new()
        .route("/healthz", get(healthz))
        .route("/api/ping", get(ping))
}

/// Liveness: the process answers.
#[utoipa::path(
    get,
    path = "/healthz",
    tag = "meta",
    summary = "Liveness",
    responses((status = 200, description = "`ok`: the process answers", body = String, content_type = "text/plain")),
)]
pub(crate) async fn healthz() -> &'static str {
    "ok"
}

/// The answer of `GET /api/ping`: always `{"pong": true}`.
#[derive(Debug, Clone, Copy, Serialize, utoipa::ToSchema)]
pub(crate) struct Pong {
    /// Always `true`.
    pong: bool,
}

/// A trivial API route: a constant JSON answer through the same middleware as every other
/// API route (request id, tracing, CORS, timeout, body limit, rate-limit check, metrics),
/// with no token, no storage and no library call. It is the baseline of the HTTP load
/// benchmark (`rush-http-bench --scenario ping`): what a request costs before the handler
/// does any work.
#[utoipa::path(
    get,
    path = "/api/ping",
    tag = "meta",
    summary = "A constant answer through the API's middleware (load-test baseline)",
    responses((status = 200, description = "`{\"pong\": true}`", body = Pong)),
)]
pub(crate) async fn ping() -> Json<Pong> {
    Json(Pong { pong: true })
}
