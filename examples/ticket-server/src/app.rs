//! The HTTP application: every route group merged into one router over [`AppState`].

use axum::Router;
use axum::routing::get;

use crate::routes;
use crate::state::AppState;

/// The whole API.
pub fn router(state: AppState) -> Router {
    Router::new()
        .route("/healthz", get(healthz))
        .merge(routes::auth::router())
        .merge(routes::catalog::router())
        .merge(routes::rush::router())
        .merge(routes::queue_events::router())
        .merge(routes::reservations::router())
        .merge(routes::admin::router())
        .with_state(state)
}

/// Liveness: the process answers.
async fn healthz() -> &'static str {
    "ok"
}
