//! Cache headers: answers carrying secrets are never stored by a cache.

use axum::http::{HeaderValue, header};
use axum::response::{IntoResponse, Response};

/// Marks an answer as never to be stored by a cache: `Cache-Control: no-store`,
/// `Pragma: no-cache` (for HTTP/1.0 caches). Every answer carrying a token goes through it.
pub fn no_store(answer: impl IntoResponse) -> Response {
    let mut resp = answer.into_response();
    let headers = resp.headers_mut();
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    headers.insert(header::PRAGMA, HeaderValue::from_static("no-cache"));
    resp
}
