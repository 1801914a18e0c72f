//! Accounts and tokens: signup, login, refresh-token rotation, logout and `GET /api/me`.
//!
//! * `POST /api/auth/signup` {email, password} → 201 {id, email}
//! * `POST /api/auth/login` {email, password} → 200 [`TokenAnswer`]
//! * `POST /api/auth/refresh` {refresh_token} → 200 [`TokenAnswer`]
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

use axum::extract::State;
use axum::http::StatusCode;
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
        (status = 200, description = "The tokens", body = TokenAnswer, headers(("Cache-Control" = String, description = "`no-store`"), ("Pragma" = String, description = "`no-cache`"))),
        (status = 400, description = "Malformed body: `VALIDATION`", body = ErrorBody),
        (status = 401, description = "Unknown email or wrong password (the same answer for both): `UNAUTHORIZED`", body = ErrorBody),
        (status = 429, description = "Too many logins from this client address (`RATE_LIMITED`) or too many failed logins for this email (`LOGIN_THROTTLED`), with `Retry-After`", body = ErrorBody),
        (status = 503, description = "Account storage unavailable (`UNAVAILABLE`) or too many password checks at once (`OVERLOADED`), with `Retry-After`", body = ErrorBody),
    )
)]
async fn login(
    State(state): State<AppState>,
    client: ClientIp,
    JsonBody(body): JsonBody<Credentials>,
) -> Result<Response, ApiError> {
    let tokens = login::log_in(&state, client, &body.email, body.password).await?;
    Ok(token_answer(tokens))
}

/// The answer carrying `tokens`, marked `no-store`.
pub(crate) fn token_answer(tokens: Tokens) -> Response {
    no_store(Json(TokenAnswer {
        access_token: tokens.access_token,
        refresh_token: tokens.refresh_token,
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
    request_body = RefreshRequest,
    responses(
        (status = 200, description = "New tokens", body = TokenAnswer, headers(("Cache-Control" = String, description = "`no-store`"), ("Pragma" = String, description = "`no-cache`"))),
        (status = 400, description = "Malformed body: `VALIDATION`", body = ErrorBody),
        (status = 401, description = "Unknown or revoked (`UNAUTHORIZED`), expired or past the login's absolute lifetime (`TOKEN_EXPIRED`) or already used (`TOKEN_REUSED`) refresh token", body = ErrorBody),
        (status = 429, description = "Too many refreshes from this client address: `RATE_LIMITED` (with `Retry-After`)", body = ErrorBody),
        (status = 503, description = "Account storage unavailable: `UNAVAILABLE` (with `Retry-After`)", body = ErrorBody),
    )
)]
async fn refresh(
    State(state): State<AppState>,
    client: ClientIp,
    JsonBody(body): JsonBody<RefreshRequest>,
) -> Result<Response, ApiError> {
    let tokens = login::rotate(&state, client, &body.refresh_token).await?;
    Ok(token_answer(tokens))
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
async fn logout(State(state): State<AppState>, user: AuthUser) -> Result<StatusCode, ApiError> {
    state.accounts.revoke_user_tokens(user.id).await?;
    tracing::info!(user = %user.id, "logged out");
    Ok(StatusCode::NO_CONTENT)
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
