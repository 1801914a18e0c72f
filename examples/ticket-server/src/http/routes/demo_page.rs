//! The demo page: plain HTML, CSS and JavaScript compiled into the binary (no build step, no
//! CDN), driving the same public API as any other client.
//!
//! | route | answer |
//! |---|---|
//! | `GET /` | the page (`static/index.html`) |
//! | `GET /app.js` | its script |
//! | `GET /app.css` | its style sheet |
//!
//! Every answer carries a Content-Security-Policy that allows this origin only (scripts, styles,
//! `fetch`), no inline script or style, no framing, plus `nosniff` and `no-referrer`. The page
//! keeps its tokens in memory (a reload logs out) and never puts them in a URL: it reads the
//! queue's Server-Sent Events with `fetch`, which can send the `Authorization` header that
//! `EventSource` cannot. The three routes are described for `GET /openapi.json` by their
//! `#[utoipa::path]` (tag `demo_page`).

use axum::Router;
use axum::http::{HeaderValue, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;

use crate::runtime::state::AppState;

/// The page.
pub const INDEX_HTML: &str = include_str!("../../../static/index.html");
/// Its script.
pub const APP_JS: &str = include_str!("../../../static/app.js");
/// Its style sheet.
pub const APP_CSS: &str = include_str!("../../../static/app.css");

/// The policy every answer of this group carries: this origin only, nothing inline.
pub const CONTENT_SECURITY_POLICY: &str = "default-src 'none'; script-src 'self'; \
     style-src 'self'; connect-src 'self'; img-src 'self'; base-uri 'none'; \
     form-action 'self'; frame-ancestors 'none'";

/// The routes of the demo page.
pub fn router() -> Router<AppState> {
    Router::new()
        .route("/", get(index))
        .route("/app.js", get(script))
        .route("/app.css", get(style))
}

/// `body` with its content type and the security headers (the gate page's answers too).
pub(crate) fn asset(content_type: &'static str, body: &'static str) -> Response {
    let headers = [
        (header::CONTENT_TYPE, HeaderValue::from_static(content_type)),
        (
            header::CONTENT_SECURITY_POLICY,
            HeaderValue::from_static(CONTENT_SECURITY_POLICY),
        ),
        (
            header::X_CONTENT_TYPE_OPTIONS,
            HeaderValue::from_static("nosniff"),
        ),
        (
            header::REFERRER_POLICY,
            HeaderValue::from_static("no-referrer"),
        ),
        (header::CACHE_CONTROL, HeaderValue::from_static("no-cache")),
    ];
    (headers, body).into_response()
}

/// The demo page.
#[utoipa::path(
    get,
    path = "/",
    operation_id = "demo_page",
    tag = "demo_page",
    summary = "The demo page",
    responses((status = 200, description = "The page", body = String, content_type = "text/html")),
)]
async fn index() -> Response {
    asset("text/html; charset=utf-8", INDEX_HTML)
}

/// The demo page's script.
#[utoipa::path(
    get,
    path = "/app.js",
    operation_id = "demo_script",
    tag = "demo_page",
    summary = "The demo page's script",
    responses((status = 200, description = "The script", body = String, content_type = "text/javascript")),
)]
async fn script() -> Response {
    asset("text/javascript; charset=utf-8", APP_JS)
}

/// The demo page's style sheet.
#[utoipa::path(
    get,
    path = "/app.css",
    operation_id = "demo_style",
    tag = "demo_page",
    summary = "The demo page's style sheet",
    responses((status = 200, description = "The style sheet", body = String, content_type = "text/css")),
)]
async fn style() -> Response {
    asset("text/css; charset=utf-8", APP_CSS)
}
