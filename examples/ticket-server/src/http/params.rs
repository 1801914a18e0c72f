//! What every route reads from a request the same way: ids in the path, the caller's
//! library user id, the `Idempotency-Key` header.

use axum::http::HeaderMap;
use ticket_core::UserId;
use ticket_core::error::InvalidInput;

use crate::http::error::ApiError;
use crate::http::extract::AuthUser;

/// An id from a path segment or query (400 `VALIDATION` when malformed).
pub(crate) fn path_id<T>(raw: &str) -> Result<T, ApiError>
where
    T: std::str::FromStr<Err = InvalidInput>,
{
    raw.parse::<T>()
        .map_err(|e: InvalidInput| ApiError::validation(e.to_string()))
}

/// The library's user id of the caller.
pub(crate) fn user_of(me: &AuthUser) -> Result<UserId, ApiError> {
    UserId::new(me.id.to_string()).map_err(|e| ApiError::validation(e.to_string()))
}

/// The required `Idempotency-Key` header (400 when missing or malformed).
pub(crate) fn idempotency_key(headers: &HeaderMap) -> Result<String, ApiError> {
    let key = headers
        .get("idempotency-key")
        .ok_or_else(|| ApiError::validation("the Idempotency-Key header is required"))?
        .to_str()
        .map_err(|_| ApiError::validation("Idempotency-Key must be printable ASCII"))?;
    // Printable ASCII and spaces (no tab, which `to_str` lets through); HTTP trims the ends.
    if !key.bytes().all(|b| (0x20..=0x7e).contains(&b)) {
        return Err(ApiError::validation(
            "Idempotency-Key must be printable ASCII",
        ));
    }
    if key.is_empty() || key.len() > 255 {
        return Err(ApiError::validation(
            "Idempotency-Key must be 1 to 255 characters",
        ));
    }
    Ok(key.to_owned())
}
