//! Request extractors that answer with the API's error shape ([`ApiError`]) instead of
//! axum's plain-text rejections:
//!
//! * [`AuthUser`]: the caller, from `Authorization: Bearer <access token>`;
//! * [`AdminUser`]: the same, and the caller must be an admin;
//! * [`JsonBody`]: a JSON body, where malformed JSON, wrong types and missing fields answer
//!   400 `VALIDATION`.

use axum::Json;
use axum::extract::rejection::JsonRejection;
use axum::extract::{FromRequest, FromRequestParts, Request};
use axum::http::request::Parts;
use axum::http::{StatusCode, header};
use serde::de::DeserializeOwned;

use crate::accounts::{Role, UserId};
use crate::error::ApiError;
use crate::state::AppState;

/// The authenticated caller, from a valid, unexpired access token in
/// `Authorization: Bearer <jwt>`.
///
/// Rejections: missing or malformed header, forged or malformed token → 401
/// `UNAUTHORIZED`; expired token → 401 `TOKEN_EXPIRED`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AuthUser {
    /// The caller's account.
    pub id: UserId,
    /// The role the token was issued with.
    pub role: Role,
}

/// An authenticated caller with [`Role::Admin`]. Rejections as [`AuthUser`], and a
/// non-admin → 403 `FORBIDDEN`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AdminUser(pub AuthUser);

/// The bearer token of the `Authorization` header (scheme matched case-insensitively).
fn bearer_token(parts: &Parts) -> Result<&str, ApiError> {
    let value = parts
        .headers
        .get(header::AUTHORIZATION)
        .ok_or_else(|| ApiError::unauthorized("missing Authorization: Bearer token"))?;
    let value = value
        .to_str()
        .map_err(|_| ApiError::unauthorized("malformed Authorization header"))?;
    match value.trim().split_once(' ') {
        Some((scheme, token)) if scheme.eq_ignore_ascii_case("bearer") => {
            let token = token.trim();
            if token.is_empty() {
                Err(ApiError::unauthorized("empty bearer token"))
            } else {
                Ok(token)
            }
        }
        _ => Err(ApiError::unauthorized(
            "the Authorization header must be `Bearer <token>`",
        )),
    }
}

impl FromRequestParts<AppState> for AuthUser {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        let token = bearer_token(parts)?;
        let claims = state.keys.verify(token, state.clock.now())?;
        // A correctly signed token always carries these; anything else is not ours.
        let id = claims
            .sub
            .parse::<UserId>()
            .map_err(|_| ApiError::unauthorized("invalid token"))?;
        let role = claims
            .role
            .parse::<Role>()
            .map_err(|_| ApiError::unauthorized("invalid token"))?;
        Ok(Self { id, role })
    }
}

impl FromRequestParts<AppState> for AdminUser {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        let user = AuthUser::from_request_parts(parts, state).await?;
        if user.role != Role::Admin {
            return Err(ApiError::forbidden("this route is for admins"));
        }
        Ok(Self(user))
    }
}

/// A JSON request body deserialised into `T`; the body must be a JSON object. Malformed
/// JSON, another top-level value (array, string, …), wrong types, missing fields and a
/// missing `Content-Type: application/json` answer 400 `VALIDATION`; a body over the size
/// limit answers 413 `PAYLOAD_TOO_LARGE`.
#[derive(Debug, Clone, Copy, Default)]
pub struct JsonBody<T>(pub T);

impl<T, S> FromRequest<S> for JsonBody<T>
where
    T: DeserializeOwned,
    S: Send + Sync,
{
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, ApiError> {
        let Json(value) = Json::<serde_json::Value>::from_request(req, state)
            .await
            .map_err(|rejection| json_rejection(&rejection))?;
        // serde's derived structs also accept a JSON array of the fields in order: refuse it.
        if !value.is_object() {
            return Err(ApiError::validation("the body must be a JSON object"));
        }
        serde_json::from_value(value)
            .map(Self)
            .map_err(|e| ApiError::validation(format!("invalid body: {e}")))
    }
}

/// The API's answer to a rejected JSON body.
pub fn json_rejection(rejection: &JsonRejection) -> ApiError {
    match rejection {
        JsonRejection::MissingJsonContentType(_) => {
            ApiError::validation("expected a JSON body with Content-Type: application/json")
        }
        JsonRejection::BytesRejection(_) if rejection.status() == StatusCode::PAYLOAD_TOO_LARGE => {
            ApiError::new(
                StatusCode::PAYLOAD_TOO_LARGE,
                "PAYLOAD_TOO_LARGE",
                "request body too large",
            )
        }
        other => ApiError::validation(other.body_text()),
    }
}
