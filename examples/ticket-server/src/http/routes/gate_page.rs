//! The gate page: where gate staff (a `GATE` or `ADMIN` account) check tickets in, on a
//! phone or a desk. Plain HTML, CSS and JavaScript compiled into the binary like the demo
//! page ([`super::demo_page`]), with the same security headers, driving the same public
//! API: `POST /api/auth/login`, `GET /api/events` (the session being checked in) and
//! `POST /api/tickets/verify`, whose answer it shows as a large ADMITTED or REFUSED with
//! the reason.
//!
//! | route | answer |
//! |---|---|
//! | `GET /gate` | the page (`static/gate.html`) |
//! | `GET /gate.js` | its script |
//! | `GET /gate.css` | its style sheet (after the demo page's `/app.css`) |
//!
//! A code is pasted or typed (a scanner that types works too); where the browser has the
//! `BarcodeDetector` API the page can also read the QR code with the camera. The three
//! routes are described for `GET /openapi.json` by their `#[utoipa::path]` (tag
//! `demo_page`).

use axum::Router;
use axum::response::Response;
use axum::routing::get;

use super::demo_page::asset;
use crate::runtime::state::AppState;

/// The page.
pub const GATE_HTML: &str = include_str!("../../../static/gate.html");
/// Its script.
pub const GATE_JS: &str = include_str!("../../../static/gate.js");
/// Its style sheet.
pub const GATE_CSS: &str = include_str!("../../../static/gate.css");

/// The routes of the gate page.
pub fn router() -> Router<AppState> {
    Router::new()
        .route("/gate", get(gate))
        .route("/gate.js", get(gate_script))
        .route("/gate.css", get(gate_style))
}

/// The gate page.
#[utoipa::path(
    get,
    path = "/gate",
    operation_id = "gate_page",
    tag = "demo_page",
    summary = "The gate page (check tickets in)",
    responses((status = 200, description = "The page", body = String, content_type = "text/html")),
)]
async fn gate() -> Response {
    asset("text/html; charset=utf-8", GATE_HTML)
}

/// The gate page's script.
#[utoipa::path(
    get,
    path = "/gate.js",
    operation_id = "gate_script",
    tag = "demo_page",
    summary = "The gate page's script",
    responses((status = 200, description = "The script", body = String, content_type = "text/javascript")),
)]
async fn gate_script() -> Response {
    asset("text/javascript; charset=utf-8", GATE_JS)
}

/// The gate page's style sheet.
#[utoipa::path(
    get,
    path = "/gate.css",
    operation_id = "gate_style",
    tag = "demo_page",
    summary = "The gate page's style sheet",
    responses((status = 200, description = "The style sheet", body = String, content_type = "text/css")),
)]
async fn gate_style() -> Response {
    asset("text/css; charset=utf-8", GATE_CSS)
}
