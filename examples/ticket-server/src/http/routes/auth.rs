//! Accounts and tokens: signup, login, refresh-token rotation, logout and `GET /api/me`.
//!
//! * `POST /api/auth/signup` {email, password} → 201 {id, email}
//! * `POST /api/auth/login` {email, password} → 200 [`TokenAnswer`]
//! * `POST /api/auth/refresh` {refresh_token} (or no body: the refresh cookie) → 200
//!   [`TokenAnswer`]
//!
//! Login and refresh also set the refresh token as the cookie `tr_refresh` (`HttpOnly;
//! SameSite=Strict; Path=/api/auth`, `Secure` over HTTPS), so a browser page keeps its login
//! across reloads without any script being able to read the token; logout clears it.
//! * `POST /api/auth/logout` (bearer) → 204; every refresh token of the caller is revoked
//!   and their token version bumped: every access token already issued stops at once
//! * `GET /api/me` (bearer) → {id, email, role, tiers, blocked, created_at}
//!
//! Answers carrying tokens (signup too) have `Cache-Control: no-store` and
//! `Pragma: no-cache`. A refresh token lives `--refresh-token-ttl-secs` from its last
//! rotation, and never past `--refresh-absolute-ttl-secs` after its login.
//!
//! Password hashing and checking (argon2id, CPU-heavy by design) run on the blocking pool,
//! at most `--hash-concurrency` at once ([`crate::services::hashing::HashingPool`]; past it 503
//! `OVERLOADED`). Signup, login and refresh are limited per client IP, and login per account
//! ([`crate::services::sign_in`]; 429 `RATE_LIMITED` / `LOGIN_THROTTLED`).
//! Every handler is described for `GET /openapi.json` by its `#[utoipa::path]` (tag `auth`).

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde::{Deserialize, Serialize};

use crate::http::error::{ApiError, ErrorBody};
use crate::http::extract::{AuthUser, JsonBody};
use crate::http::middleware::cache::no_store;
use crate::http::middleware::client_ip::ClientIp;
use crate::runtime::state::AppState;
use crate::services::login::{self, Tokens};
use crate::stores::accounts::{AccountError, Role, UserId};

/// The routes of this group.
pub fn router() -> Router<AppState> {
    Router::new()
        .route("/api/auth/signup", post(signup))
        .route("/api/auth/login", post(login))
        .route("/api/auth/refresh", post(refresh))
        .route("/api/auth/logout", post(logout))
        .route("/api/me", get(me))
}

/// `POST /api/auth/signup` and `POST /api/auth/login` bodies (unknown fields: 400). The
/// schema states what signup accepts; a login with anything else simply fails (401).
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Credentials {
    /// The email (normalised: trimmed, lower-cased): `name@domain.tld`, at most 254
    /// characters, no whitespace or control characters.
    #[schema(
        examples("buyer@example.com"),
        max_length = 254,
        pattern = r"^[^@\s\x00-\x1f\x7f-\x9f]+@[^@\s.\x00-\x1f\x7f-\x9f]+(\.[^@\s.\x00-\x1f\x7f-\x9f]+)+$"
    )]
    pub email: String,
    /// The password: 8 to 128 characters with at least one ASCII letter and one digit.
    #[schema(
        examples("correct-horse-1"),
        min_length = 8,
        max_length = 128,
        pattern = r"^[\s\S]*([A-Za-z][\s\S]*[0-9]|[0-9][\s\S]*[A-Za-z])[\s\S]*$"
    )]
    pub password: String,
}

/// `POST /api/auth/refresh` body (unknown fields: 400).
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RefreshRequest {
    /// The refresh token from the last login or refresh.
    pub refresh_token: String,
}

/// A new account.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct SignupAnswer {
    /// Its id.
    #[schema(value_type = String, format = "uuid")]
    pub id: UserId,
    /// Its normalised email.
    pub email: String,
}

/// Tokens, from a login or a refresh.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct TokenAnswer {
    /// The JWT to send as `Authorization: Bearer …`.
    pub access_token: String,
    /// The opaque token for `POST /api/auth/refresh`; single use.
    pub refresh_token: String,
    /// Always `Bearer`.
    #[schema(value_type = String, examples("Bearer"))]
    pub token_type: &'static str,
    /// Lifetime of the access token, seconds.
    pub expires_in: u64,
    /// Lifetime of the refresh token, seconds (never past the login's absolute end).
    pub refresh_expires_in: u64,
}

/// The caller's account.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct MeAnswer {
    /// The account's id.
    #[schema(value_type = String, format = "uuid")]
    pub id: UserId,
    /// Its normalised email.
    pub email: String,
    /// `USER`, `ADMIN` or `GATE`.
    #[schema(schema_with = role_schema)]
    pub role: Role,
    /// The tiers an admin gave the account (presales, tier-reserved grades).
    pub tiers: Vec<String>,
    /// Blocked by an admin: cannot join queues, hold or pay.
    pub blocked: bool,
    /// Creation time, milliseconds since the epoch.
    pub created_at: i64,
}

/// The schema of a role: every [`Role`], as the API spells it.
pub(crate) fn role_schema() -> utoipa::openapi::Object {
    crate::http::openapi::text_enum(Role::ALL.map(Role::as_str), "`USER`, `ADMIN` or `GATE`")
}

/// Creates an account with the `USER` role.
#[utoipa::path(
    post,
    path = "/api/auth/signup",
    tag = "auth",
    summary = "Create an account",
    request_body = Credentials,
    responses(
        (status = 201, description = "The new account", body = SignupAnswer, headers(("Cache-Control" = String, description = "`no-store`"), ("Pragma" = String, description = "`no-cache`"))),
        (status = 400, description = "Malformed body, invalid email or weak password: `VALIDATION`", body = ErrorBody),
        (status = 409, description = "The email is taken: `EMAIL_TAKEN`", body = ErrorBody),
        (status = 429, description = "Too many signups from this client address: `RATE_LIMITED` (with `Retry-After`)", body = ErrorBody),
        (status = 503, description = "Account storage unavailable (`UNAVAILABLE`) or too many password hashes at once (`OVERLOADED`), with `Retry-After`", body = ErrorBody),
    )
)]
async fn signup(
    State(state): State<AppState>,
    client: ClientIp,
    JsonBody(body): JsonBody<Credentials>,
) -> Result<impl IntoResponse, ApiError> {
    let user = login::sign_up(&state, client, &body.email, body.password).await?;
    Ok(no_store((
        StatusCode::CREATED,
        Json(SignupAnswer {
            id: user.id,
            email: user.email,
        }),
    )))
}

/// Checks the credentials and issues an access token and a refresh token.
#[utoipa::path(
    post,
    path = "/api/auth/login",
    tag = "auth",
    summary = "Log in",
    request_body = Credentials,
    responses(
        (status = 200, description = "The tokens (the refresh token also as the `tr_refresh` cookie)", body = TokenAnswer, headers(("Cache-Control" = String, description = "`no-store`"), ("Pragma" = String, description = "`no-cache`"), ("Set-Cookie" = String, description = "`tr_refresh=…; HttpOnly; SameSite=Strict; Path=/api/auth`"))),
        (status = 400, description = "Malformed body: `VALIDATION`", body = ErrorBody),
        (status = 401, description = "Unknown email or wrong password (the same answer for both): `UNAUTHORIZED`", body = ErrorBody),
        (status = 429, description = "Too many logins from this client address (`RATE_LIMITED`) or too many failed logins for this email (`LOGIN_THROTTLED`), with `Retry-After`", body = ErrorBody),
        (status = 503, description = "Account storage unavailable (`UNAVAILABLE`) or too many password checks at once (`OVERLOADED`), with `Retry-After`", body = ErrorBody),
    )
)]
async fn login(
    State(state): State<AppState>,
    client: ClientIp,
    headers: HeaderMap,
    JsonBody(body): JsonBody<Credentials>,
) -> Result<Response, ApiError> {
    let tokens = login::log_in(&state, client, &body.email, body.password).await?;
    Ok(with_refresh_cookie(
        token_answer_of(&tokens),
        &tokens,
        &headers,
    ))
}

// ---------------------------------------------------------------------------------------
// The refresh-token cookie (for the demo page and other browsers)

/// The name of the cookie holding the refresh token.
pub const REFRESH_COOKIE: &str = "tr_refresh";

/// Whether the request came over HTTPS (as a proxy in front says): the cookie is `Secure`
/// then.
fn over_https(headers: &HeaderMap) -> bool {
    headers
        .get("x-forwarded-proto")
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.trim().eq_ignore_ascii_case("https"))
        || headers
            .get("forwarded")
            .and_then(|v| v.to_str().ok())
            .is_some_and(|v| v.to_ascii_lowercase().contains("proto=https"))
}

/// `Set-Cookie` for `value` (empty with `Max-Age=0` clears it): `HttpOnly` (no script reads
/// it), `SameSite=Strict` (no other site's request carries it), `Path=/api/auth` (only the
/// auth routes get it), `Secure` over HTTPS.
fn refresh_cookie(value: &str, max_age: u64, headers: &HeaderMap) -> Option<HeaderValue> {
    let secure = if over_https(headers) { "; Secure" } else { "" };
    HeaderValue::from_str(&format!(
        "{REFRESH_COOKIE}={value}; HttpOnly; SameSite=Strict; Path=/api/auth; Max-Age={max_age}{secure}"
    ))
    .ok()
}

/// The answer with the refresh token also set as the cookie.
pub(crate) fn with_refresh_cookie(
    mut resp: Response,
    tokens: &Tokens,
    headers: &HeaderMap,
) -> Response {
    if let Some(v) = refresh_cookie(&tokens.refresh_token, tokens.refresh_expires_in, headers) {
        resp.headers_mut().append(header::SET_COOKIE, v);
    }
    resp
}

/// The answer with the cookie cleared.
fn clearing_refresh_cookie(mut resp: Response, headers: &HeaderMap) -> Response {
    if let Some(v) = refresh_cookie("", 0, headers) {
        resp.headers_mut().append(header::SET_COOKIE, v);
    }
    resp
}

/// The refresh token in the request's cookie, if any.
fn cookie_token(headers: &HeaderMap) -> Option<String> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|kv| kv.trim().split_once('='))
        .find(|(k, v)| *k == REFRESH_COOKIE && !v.is_empty())
        .map(|(_, v)| v.to_owned())
}

/// The answer carrying `tokens`, marked `no-store`.
pub(crate) fn token_answer_of(tokens: &Tokens) -> Response {
    no_store(Json(TokenAnswer {
        access_token: tokens.access_token.clone(),
        refresh_token: tokens.refresh_token.clone(),
        token_type: "Bearer",
        expires_in: tokens.expires_in,
        refresh_expires_in: tokens.refresh_expires_in,
    }))
}

/// Trades a refresh token for new tokens; the old refresh token is spent (a reused one
/// revokes its whole family).
#[utoipa::path(
    post,
    path = "/api/auth/refresh",
    tag = "auth",
    summary = "Rotate the refresh token",
    request_body(content = Option<RefreshRequest>, description = "The refresh token; without a body, the `tr_refresh` cookie's", content_type = "application/json"),
    responses(
        (status = 200, description = "New tokens (the new refresh token also as the `tr_refresh` cookie)", body = TokenAnswer, headers(("Cache-Control" = String, description = "`no-store`"), ("Pragma" = String, description = "`no-cache`"), ("Set-Cookie" = String, description = "`tr_refresh=…; HttpOnly; SameSite=Strict; Path=/api/auth`"))),
        (status = 400, description = "Malformed body: `VALIDATION`", body = ErrorBody),
        (status = 401, description = "Neither a body nor the cookie, unknown or revoked (`UNAUTHORIZED`), expired or past the login's absolute lifetime (`TOKEN_EXPIRED`) or already used (`TOKEN_REUSED`) refresh token", body = ErrorBody),
        (status = 429, description = "Too many refreshes from this client address: `RATE_LIMITED` (with `Retry-After`)", body = ErrorBody),
        (status = 503, description = "Account storage unavailable: `UNAVAILABLE` (with `Retry-After`)", body = ErrorBody),
    )
)]
async fn refresh(
    State(state): State<AppState>,
    client: ClientIp,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, ApiError> {
    // A body names the token (API clients); no body: the cookie's (browsers).
    let token = if body.iter().all(u8::is_ascii_whitespace) || body.trim_ascii() == b"null" {
        cookie_token(&headers).ok_or_else(|| {
            ApiError::new(
                StatusCode::UNAUTHORIZED,
                "UNAUTHORIZED",
                "give {\"refresh_token\"} or the refresh cookie",
            )
        })?
    } else {
        let value: serde_json::Value = serde_json::from_slice(&body)
            .map_err(|e| ApiError::validation(format!("invalid body: {e}")))?;
        if !value.is_object() {
            return Err(ApiError::validation("the body must be a JSON object"));
        }
        serde_json::from_value::<RefreshRequest>(value)
            .map_err(|e| ApiError::validation(format!("invalid body: {e}")))?
            .refresh_token
    };
    match login::rotate(&state, client, &token).await {
        Ok(tokens) => Ok(with_refresh_cookie(
            token_answer_of(&tokens),
            &tokens,
            &headers,
        )),
        // A dead cookie goes, so the page stops trying it.
        Err(e) => Ok(clearing_refresh_cookie(
            ApiError::from(e).into_response(),
            &headers,
        )),
    }
}

/// Logs the caller out everywhere: revokes every refresh token and bumps the token version,
/// so every access token already issued (this one included) stops at once.
#[utoipa::path(
    post,
    path = "/api/auth/logout",
    tag = "auth",
    summary = "Log out everywhere",
    security(("bearer" = [])),
    responses(
        (status = 204, description = "Every refresh and access token of the caller is revoked"),
        (status = 401, description = "No valid access token: `UNAUTHORIZED`, `TOKEN_EXPIRED`, `TOKEN_REVOKED`", body = ErrorBody),
        (status = 503, description = "Account storage unavailable: `UNAVAILABLE` (with `Retry-After`)", body = ErrorBody),
    )
)]
async fn logout(
    State(state): State<AppState>,
    user: AuthUser,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    state.accounts.revoke_user_tokens(user.id).await?;
    tracing::info!(user = %user.id, "logged out");
    Ok(clearing_refresh_cookie(
        StatusCode::NO_CONTENT.into_response(),
        &headers,
    ))
}

/// The caller's account.
#[utoipa::path(
    get,
    path = "/api/me",
    tag = "auth",
    summary = "My account",
    security(("bearer" = [])),
    responses(
        (status = 200, description = "The caller's account", body = MeAnswer),
        (status = 401, description = "No valid access token, or its account is gone: `UNAUTHORIZED`, `TOKEN_EXPIRED`, `TOKEN_REVOKED`", body = ErrorBody),
        (status = 503, description = "Account storage unavailable: `UNAVAILABLE` (with `Retry-After`)", body = ErrorBody),
    )
)]
async fn me(State(state): State<AppState>, user: AuthUser) -> Result<Json<MeAnswer>, ApiError> {
    let account = match state.accounts.user(user.id).await {
        Ok(account) => account,
        // A valid token for an account that is gone (e.g. a memory store restarted).
        Err(AccountError::NotFound) => return Err(ApiError::unauthorized("no such account")),
        Err(e) => return Err(e.into()),
    };
    Ok(Json(MeAnswer {
        id: account.id,
        email: account.email,
        role: account.role,
        tiers: account.tiers,
        blocked: account.blocked,
        created_at: account.created_at.as_millis(),
    }))
}
