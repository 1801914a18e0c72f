//! CORS for the configured origins (`--cors-origins`).

use axum::http::{HeaderValue, Method, header};
use tower_http::cors::{AllowOrigin, CorsLayer};

/// The `--cors-origins` value that allows every origin (without credentials).
pub const ANY_ORIGIN: &str = "*";

/// CORS for exactly the configured origins (malformed ones are skipped with a warning);
/// none configured means same-origin only. `*` is the any-origin mode ([`ANY_ORIGIN`]):
/// every origin may call the API, never with credentials (cookies or HTTP auth are not
/// allowed by the layer; the API's bearer tokens are sent explicitly by the client).
/// `Config::validate` refuses `*` beside other origins; if such a list reaches this
/// function anyway, `*` wins rather than panicking.
pub fn cors(origins: &[String]) -> CorsLayer {
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
