//! Request extractors that answer with the API's error shape ([`ApiError`]) instead of
//! axum's plain-text rejections:
//!
//! * [`AuthUser`]: the caller, from `Authorization: Bearer <access token>`, whose token
//!   version is still current (one small read of the account store per request);
//! * [`AdminUser`]: the same, and the caller must be an admin;
//! * [`GateUser`]: the same, and the caller must be gate staff or an admin;
//! * [`Buyer`]: the same, and the caller may buy: not gate staff, not blocked;
//! * [`JsonBody`]: a JSON body, where malformed JSON, wrong types and missing fields answer
//!   400 `VALIDATION`.

use axum::Json;
use axum::extract::rejection::JsonRejection;
use axum::extract::{FromRequest, FromRequestParts, MatchedPath, Request};
use axum::http::request::Parts;
use axum::http::{StatusCode, header};
use serde::de::DeserializeOwned;

use crate::http::error::ApiError;
use crate::runtime::state::AppState;
use crate::stores::accounts::{Role, UserId};
use crate::stores::security_audit::{AbuseReason, AbuseRecord};

/// The authenticated caller, from a valid, unexpired access token in
/// `Authorization: Bearer <jwt>` whose `ver` claim equals the account's current token
/// version ([`crate::stores::accounts::AccountStore::token_state`]: one map lookup on memory, one
/// Redis `HMGET`, one primary-key `SELECT` on PostgreSQL). Logout, a role change, blocking
/// and a password change bump the version, so every access token issued before stops at
/// once, on every server process sharing the store.
///
/// Rejections: missing or malformed header, forged or malformed token → 401
/// `UNAUTHORIZED`; expired token → 401 `TOKEN_EXPIRED`; revoked token → 401
/// `TOKEN_REVOKED`; account storage down → 503 `UNAVAILABLE`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AuthUser {
    /// The caller's account.
    pub id: UserId,
    /// The role the token was issued with (current: a role change revokes the token).
    pub role: Role,
    /// The account is blocked (read with the token version).
    pub blocked: bool,
}

/// An authenticated caller with [`Role::Admin`]. Rejections as [`AuthUser`], and a
/// non-admin → 403 `FORBIDDEN`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AdminUser(pub AuthUser);

/// An authenticated caller who may scan tickets at the gate: [`Role::Gate`] or
/// [`Role::Admin`]. Rejections as [`AuthUser`], and anyone else → 403 `FORBIDDEN`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct GateUser(pub AuthUser);

/// An authenticated caller who may buy (join a queue, hold, pay): not [`Role::Gate`] (403
/// `FORBIDDEN`) and not blocked (403 `USER_BLOCKED`, reported to
/// the security audit). Rejections as [`AuthUser`] otherwise.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Buyer(pub AuthUser);

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
        let current = state.accounts.token_state(id).await?;
        if claims.ver != current.version {
            return Err(ApiError::new(
                StatusCode::UNAUTHORIZED,
                "TOKEN_REVOKED",
                "this access token was revoked (logout, role change or block): log in again",
            ));
        }
        parts.extensions.insert(CallerTiers(current.tiers));
        Ok(Self {
            id,
            role,
            blocked: current.blocked,
        })
    }
}

/// The caller's account tiers, read with the token version by [`AuthUser`] (one store read
/// per request for both). Extracted after [`AuthUser`] / [`Buyer`] it costs nothing; on its
/// own it authenticates the caller first. Rejections as [`AuthUser`].
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CallerTiers(pub Vec<String>);

impl FromRequestParts<AppState> for CallerTiers {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        if let Some(tiers) = parts.extensions.get::<CallerTiers>() {
            return Ok(tiers.clone());
        }
        AuthUser::from_request_parts(parts, state).await?;
        Ok(parts
            .extensions
            .get::<CallerTiers>()
            .cloned()
            .unwrap_or_default())
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

impl FromRequestParts<AppState> for GateUser {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        let user = AuthUser::from_request_parts(parts, state).await?;
        if !matches!(user.role, Role::Gate | Role::Admin) {
            return Err(ApiError::forbidden(
                "this route is for gate staff and admins",
            ));
        }
        Ok(Self(user))
    }
}

impl FromRequestParts<AppState> for Buyer {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        let user = AuthUser::from_request_parts(parts, state).await?;
        if user.role == Role::Gate {
            return Err(ApiError::forbidden("gate accounts can only scan tickets"));
        }
        if user.blocked {
            record_blocked_refusal(state, &user, parts).await;
            return Err(ApiError::new(
                StatusCode::FORBIDDEN,
                "USER_BLOCKED",
                "this account is blocked: it cannot join queues, hold or pay",
            ));
        }
        Ok(Self(user))
    }
}

/// Records a refusal of a blocked user (403 `USER_BLOCKED`) on the route `parts` names in
/// the security audit ([`crate::stores::security_audit`]): actor, reason `USER_BLOCKED`, the client
/// address (after `--trusted-proxies`) and the route template. Never fails the request: the
/// audit store drops what it cannot write and writes at most one record per user, route and
/// window, so a blocked client hammering a route cannot amplify into store writes.
async fn record_blocked_refusal(state: &AppState, user: &AuthUser, parts: &Parts) {
    let client_ip = crate::http::middleware::client_ip::of_request(
        &parts.extensions,
        &parts.headers,
        &state.config.throttle.trusted_proxies,
    );
    let path = parts
        .extensions
        .get::<MatchedPath>()
        .map_or_else(|| parts.uri.path().to_owned(), |p| p.as_str().to_owned());
    tracing::warn!(user = %user.id, method = %parts.method, route = %path, "refused a blocked user");
    state
        .security_audit
        .record(AbuseRecord {
            at: state.clock.now(),
            actor: Some(user.id),
            reason: AbuseReason::UserBlocked,
            client_ip,
            route: format!("{} {path}", parts.method),
            detail: "blocked user".to_owned(),
        })
        .await;
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
        let value = integral_numbers(value);
        serde_json::from_value(value)
            .map(Self)
            .map_err(|e| ApiError::validation(format!("invalid body: {e}")))
    }
}

/// `value` with every number that has no fractional part (`596.0`, `1e3`) turned into the
/// integer it is, as JSON Schema reads it (an `integer` is any number with a zero fraction):
/// a body valid by the API document is read as the document says. Numbers outside the
/// 64-bit integers, or with a fraction, stay as they are (and a field that wants an integer
/// refuses them with 400).
fn integral_numbers(value: serde_json::Value) -> serde_json::Value {
    use serde_json::Value;
    match value {
        Value::Number(n) if !n.is_i64() && !n.is_u64() => match n.as_f64() {
            // Inside ±2^63 an integral f64 converts exactly.
            Some(f) if f.fract() == 0.0 && f.abs() < 9.2e18 => Value::from(f as i64),
            _ => Value::Number(n),
        },
        Value::Array(items) => Value::Array(items.into_iter().map(integral_numbers).collect()),
        Value::Object(map) => Value::Object(
            map.into_iter()
                .map(|(k, v)| (k, integral_numbers(v)))
                .collect(),
        ),
        other => other,
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
