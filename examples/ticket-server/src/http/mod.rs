//! ticketrush behind axum: everything HTTP of the server, in one folder.
//!
//! | module | what it holds |
//! |---|---|
//! | [`router`] (here) | every route group merged into one router over [`AppState`], behind the middleware |
//! | [`routes`] | one module per resource (auth, catalog, queue, queue events, holds, payments, reservations, tickets, wallet, top-ups, the demo page, the gate page; admin routes under [`routes::admin`]); each handler parses, calls a library service, an app service ([`crate::services`]) or an app store, and maps the result |
//! | [`extract`] | the caller from the bearer token ([`extract::AuthUser`], [`extract::AdminUser`], [`extract::GateUser`], [`extract::Buyer`]) and JSON bodies, rejecting with the API's error shape |
//! | [`params`] | ids in paths, the caller's library user id, the `Idempotency-Key` header |
//! | [`error`] | [`error::ApiError`]: every library, account and auth error mapped to a status and a stable code |
//! | [`middleware`] | rate limits, the client's address, CORS, cache headers, metrics |
//! | [`openapi`] | `GET /openapi.json`, generated from the handlers' annotations |
//!
//! With the in-process payment sandbox, its hosted payment page (the provider's, not this
//! API) is mounted under `/sandbox` (`payment_sandbox::http::hosted_page_router`).
//!
//! The middleware every request passes: a request id (`x-request-id`, taken from the client
//! or minted, echoed back and on every log line of the request), request tracing, CORS for
//! the configured origins, a body size limit (413 `PAYLOAD_TOO_LARGE`) and a request timeout
//! (408). Outermost, [`metrics::track`] times and counts every answer (`GET /metrics`);
//! innermost, [`rate_limit::limit`] answers 429 on the queue and hold routes. Serving with a
//! graceful shutdown is [`crate::runtime::serve`].

use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::extract::DefaultBodyLimit;
use axum::http::{Request, StatusCode};
use tower_http::request_id::{MakeRequestUuid, PropagateRequestIdLayer, SetRequestIdLayer};
use tower_http::timeout::TimeoutLayer;
use tower_http::trace::TraceLayer;

use self::middleware::{metrics, rate_limit};
use crate::runtime::state::AppState;

pub mod draining;
pub mod error;
pub mod extract;
pub mod middleware;
pub mod openapi;
pub mod paging;
pub mod params;
pub mod routes;

pub use middleware::cors::ANY_ORIGIN;

/// The whole API.
pub fn router(state: AppState) -> Router {
    let config = state.config.clone();
    // The middleware get `Arc`s: a layer's state is cloned per request (and so is every
    // layer inside it), and `AppState` is a large struct of the library's services.
    let shared = Arc::new(state.clone());
    let app = Router::new()
        .merge(routes::meta::router())
        .merge(routes::auth::router())
        .merge(routes::oauth::router())
        .merge(routes::catalog::router())
        .merge(routes::queue::router())
        .merge(routes::holds::router())
        .merge(routes::payments::router())
        .merge(routes::queue_events::router())
        .merge(routes::my_events::router())
        .merge(routes::notifications::router())
        .merge(routes::reservations::router())
        .merge(routes::admin::router())
        .merge(routes::wallet::router())
        .merge(routes::tickets::router())
        .merge(metrics::router())
        .merge(routes::demo_page::router())
        .merge(routes::gate_page::router())
        .merge(openapi::router())
        .with_state(state.clone());
    // The in-process sandbox's hosted payment page, where the buyer's browser reaches this
    // server (the provider's page, not this API: it is not in the OpenAPI document). A
    // shared sandbox (`--payment-sandbox-url`) serves its own.
    let app = match &state.sandbox {
        Some(sandbox) => app.nest(
            crate::runtime::state::SANDBOX_PAGE_PREFIX,
            payment_sandbox::http::hosted_page_router(sandbox.clone()),
        ),
        None => app,
    };
    app.layer(axum::middleware::from_fn(metrics::tag_checkout))
        .layer(axum::middleware::from_fn_with_state(
            Arc::clone(&shared),
            rate_limit::limit,
        ))
        .layer(DefaultBodyLimit::max(config.body_limit_bytes))
        .layer(TimeoutLayer::with_status_code(
            StatusCode::REQUEST_TIMEOUT,
            Duration::from_secs(config.request_timeout_secs),
        ))
        .layer(middleware::cors::cors(&config.cors_origins))
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
