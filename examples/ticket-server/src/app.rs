//! The HTTP application: every route group merged into one router over [`AppState`], behind
//! the middleware every request passes: a request id (`x-request-id`, taken from the client
//! or minted, echoed back and on every log line of the request), request tracing, CORS for
//! the configured origins, a body size limit (413 `PAYLOAD_TOO_LARGE`) and a request timeout
//! (408). Outermost, [`metrics::track`] times and counts every answer (`GET /metrics`);
//! innermost, [`rate_limit::limit`] answers 429 on the queue and hold routes.

use std::sync::Arc;
use std::time::Duration;

use axum::extract::DefaultBodyLimit;
use axum::http::{HeaderValue, Method, Request, StatusCode, header};
use axum::routing::get;
use axum::{Json, Router};
use serde::Serialize;
use tower_http::cors::{AllowOrigin, CorsLayer};
use tower_http::request_id::{MakeRequestUuid, PropagateRequestIdLayer, SetRequestIdLayer};
use tower_http::timeout::TimeoutLayer;
use tower_http::trace::TraceLayer;

use crate::metrics;
use crate::openapi;
use crate::rate_limit;
use crate::routes;
use crate::state::AppState;

/// The `--cors-origins` value that allows every origin (without credentials).
pub const ANY_ORIGIN: &str = "*";

/// The whole API.
pub fn router(state: AppState) -> Router {
    let config = state.config.clone();
    // The middleware get `Arc`s: a layer's state is cloned per request (and so is every
    // layer inside it), and `AppState` is a large struct of the library's services.
    let shared = Arc::new(state.clone());
    Router::new()
        .route("/healthz", get(healthz))
        .route("/api/ping", get(ping))
        .merge(routes::auth::router())
        .merge(routes::catalog::router())
        .merge(routes::policy::router())
        .merge(routes::queue::router())
        .merge(routes::holds::router())
        .merge(routes::payments::router())
        .merge(routes::queue_events::router())
        .merge(routes::reservations::router())
        .merge(routes::admin::router())
        .merge(routes::security_audit::router())
        .merge(routes::users::router())
        .merge(routes::wallet::router())
        .merge(routes::tickets::router())
        .merge(metrics::router())
        .merge(routes::demo_page::router())
        .merge(openapi::router())
        .with_state(state.clone())
        .layer(axum::middleware::from_fn(metrics::tag_checkout))
        .layer(axum::middleware::from_fn_with_state(
            Arc::clone(&shared),
            rate_limit::limit,
        ))
        .layer(DefaultBodyLimit::max(config.body_limit_bytes))
        .layer(TimeoutLayer::with_status_code(
            StatusCode::REQUEST_TIMEOUT,
            Duration::from_secs(config.request_timeout_secs),
        ))
        .layer(cors(&config.cors_origins))
        .layer(PropagateRequestIdLayer::x_request_id())
        .layer(
            TraceLayer::new_for_http().make_span_with(|req: &Request<_>| {
                let id = req
                    .headers()
                    .get("x-request-id")
                    .and_then(|v| v.to_str().ok())
                    .unwrap_or("-");
                tracing::info_span!("request", request_id = %id, method = %req.method(), path = %req.uri().path())
            }),
        )
        .layer(SetRequestIdLayer::x_request_id(MakeRequestUuid))
        .layer(axum::middleware::from_fn_with_state(
            Arc::clone(&state.metrics),
            metrics::track,
        ))
}

/// Serves the API on `listener` as the binary does (with each connection's client address,
/// which the per-IP rate limit reads) until `shutdown` completes; requests in flight then
/// finish. For embedding the server in a test or a benchmark; the binary adds the
/// background jobs and the start-up account and demo event.
pub async fn serve<F>(
    listener: tokio::net::TcpListener,
    state: AppState,
    shutdown: F,
) -> std::io::Result<()>
where
    F: std::future::Future<Output = ()> + Send + 'static,
{
    let app = router(state).into_make_service_with_connect_info::<std::net::SocketAddr>();
    axum::serve(listener, app)
        .with_graceful_shutdown(shutdown)
        .await
}

/// CORS for exactly the configured origins (malformed ones are skipped with a warning);
/// none configured means same-origin only. `*` is the any-origin mode ([`ANY_ORIGIN`]):
/// every origin may call the API, never with credentials (cookies or HTTP auth are not
/// allowed by the layer; the API's bearer tokens are sent explicitly by the client).
/// `Config::validate` refuses `*` beside other origins; if such a list reaches this
/// function anyway, `*` wins rather than panicking.
fn cors(origins: &[String]) -> CorsLayer {
    let any = origins.iter().any(|o| o.trim() == ANY_ORIGIN);
    let allowed: Vec<HeaderValue> = origins
        .iter()
        .filter(|o| o.trim() != ANY_ORIGIN)
        .filter_map(|o| match HeaderValue::from_str(o.trim()) {
            Ok(v) => Some(v),
            Err(_) => {
                tracing::warn!(origin = %o, "ignoring a malformed CORS origin");
                None
            }
        })
        .collect();
    let allow_origin = if any {
        AllowOrigin::any()
    } else {
        AllowOrigin::list(allowed)
    };
    CorsLayer::new()
        .allow_origin(allow_origin)
        .allow_methods([Method::GET, Method::POST, Method::PUT, Method::DELETE])
        .allow_headers([
            header::AUTHORIZATION,
            header::CONTENT_TYPE,
            header::HeaderName::from_static("idempotency-key"),
            header::HeaderName::from_static("last-event-id"),
        ])
        .expose_headers([
            header::RETRY_AFTER,
            header::HeaderName::from_static("x-request-id"),
        ])
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
