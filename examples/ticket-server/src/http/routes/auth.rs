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

use std::sync::OnceLock;
use std::time::Duration;

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
use crate::services::auth::{self, AuthError};
use crate::services::sign_in::{self, SignInRoute};
use crate::stores::accounts::{AccountError, FamilyId, Role, UserId, normalize_email};
use ticket_core::Timestamp;

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
    sign_in::limit_ip(&state, SignInRoute::Signup, client).await?;
    let email = normalize_email(&body.email)?;
    let password = body.password;
    let hash = state
        .hashing
        .run(move || auth::hash_password(&password))
        .await??;
    let user = state
        .accounts
        .create_user(&email, &hash, Role::User, state.clock.now())
        .await?;
    tracing::info!(user = %user.id, "signed up");
    Ok(no_store((
        StatusCode::CREATED,
        Json(SignupAnswer {
            id: user.id,
            email: user.email,
        }),
    )))
}

/// A hash of a password nobody knows, checked when the email is unknown so that a login
/// takes about as long whether or not the account exists. Computed once.
fn dummy_hash() -> Option<&'static str> {
    static DUMMY: OnceLock<Option<String>> = OnceLock::new();
    DUMMY
        .get_or_init(|| auth::hash_password("no-such-account-0").ok())
        .as_deref()
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
    sign_in::limit_ip(&state, SignInRoute::Login, client).await?;
    let user = match state.accounts.user_by_email(&body.email).await {
        Ok(user) => Some(user),
        Err(AccountError::NotFound) => None,
        Err(e) => return Err(e.into()),
    };
    // Counted before the password is checked: racing guesses cannot pass the backoff.
    let attempt =
        sign_in::begin_login(&state, client, &body.email, user.as_ref().map(|u| u.id)).await?;
    let password = body.password;
    let stored = user.as_ref().map(|u| u.password_hash.clone());
    let matches = state
        .hashing
        .run(move || match stored {
            Some(hash) => auth::verify_password(&password, &hash),
            None => {
                if let Some(dummy) = dummy_hash() {
                    // Spend the time; the answer is "no" whatever it says.
                    let _ = auth::verify_password(&password, dummy);
                }
                Ok(false)
            }
        })
        .await??;
    let user = match user {
        Some(user) if matches => user,
        _ => return Err(AuthError::InvalidCredentials.into()),
    };
    sign_in::login_succeeded(&state, attempt).await;
    let now = state.clock.now();
    let (refresh_token, hash) = auth::new_refresh_token()?;
    let config = &state.config;
    let ends_at = now.plus(Duration::from_secs(config.refresh_absolute_ttl_secs));
    let expires_at = now
        .plus(Duration::from_secs(config.refresh_token_ttl_secs))
        .min(ends_at);
    state
        .accounts
        .issue_refresh(
            user.id,
            &hash,
            FamilyId::new_at(now),
            expires_at,
            ends_at,
            now,
        )
        .await?;
    tracing::info!(user = %user.id, "logged in");
    let issued = Issued {
        user: user.id,
        role: user.role,
        token_version: user.token_version,
        refresh_token,
        refresh_expires_at: expires_at,
    };
    tokens(&state, issued)
}

/// What a login or a refresh hands out.
struct Issued {
    user: UserId,
    role: Role,
    token_version: u64,
    refresh_token: String,
    refresh_expires_at: Timestamp,
}

/// The answer with a new access token (carrying the user's token version) and the given
/// refresh token, marked `no-store`.
fn tokens(state: &AppState, issued: Issued) -> Result<Response, ApiError> {
    let ttl = state.config.access_token_ttl_secs;
    let now = state.clock.now();
    let (access_token, _) = state.keys.issue_versioned(
        &issued.user.to_string(),
        issued.role.as_str(),
        issued.token_version,
        now,
        Duration::from_secs(ttl),
    )?;
    let refresh_ms = issued
        .refresh_expires_at
        .as_millis()
        .saturating_sub(now.as_millis());
    Ok(no_store(Json(TokenAnswer {
        access_token,
        refresh_token: issued.refresh_token,
        token_type: "Bearer",
        expires_in: ttl,
        refresh_expires_in: u64::try_from(refresh_ms / 1000).unwrap_or(0),
    })))
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
    sign_in::limit_ip(&state, SignInRoute::Refresh, client).await?;
    let old = crate::stores::accounts::TokenHash::of(&body.refresh_token);
    let (refresh_token, new) = auth::new_refresh_token()?;
    let now = state.clock.now();
    let expires = now.plus(Duration::from_secs(state.config.refresh_token_ttl_secs));
    let rotated = state
        .accounts
        .rotate_refresh(&old, &new, now, expires)
        .await
        .inspect_err(|e| {
            if matches!(e, AccountError::TokenReused) {
                tracing::warn!("refresh token reused: its family is revoked");
            }
        })?;
    let issued = Issued {
        user: rotated.user,
        role: rotated.role,
        token_version: rotated.token_version,
        refresh_token,
        refresh_expires_at: rotated.expires_at,
    };
    tokens(&state, issued)
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
