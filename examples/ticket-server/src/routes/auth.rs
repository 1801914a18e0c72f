//! Accounts and tokens: signup, login, refresh-token rotation, logout and `GET /api/me`.
//!
//! * `POST /api/auth/signup` {email, password} → 201 {id, email}
//! * `POST /api/auth/login` {email, password} → 200 [`TokenAnswer`]
//! * `POST /api/auth/refresh` {refresh_token} → 200 [`TokenAnswer`]
//! * `POST /api/auth/logout` (bearer) → 204; every refresh token of the caller is revoked
//!   (access tokens already issued stay valid until they expire: they are not stored)
//! * `GET /api/me` (bearer) → {id, email, role, created_at}
//!
//! Password hashing and checking (argon2id, CPU-heavy by design) run on the blocking pool.
//! Every handler is described for `GET /openapi.json` by its `#[utoipa::path]` (tag `auth`).

use std::sync::OnceLock;
use std::time::Duration;

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::IntoResponse;
use axum::routing::{get, post};
use axum::{Json, Router};
use serde::{Deserialize, Serialize};

use crate::accounts::{AccountError, FamilyId, Role, UserId, normalize_email};
use crate::auth::{self, AuthError};
use crate::error::{ApiError, ErrorBody};
use crate::extract::{AuthUser, JsonBody};
use crate::state::AppState;

/// The routes of this group.
pub fn router() -> Router<AppState> {
    Router::new()
        .route("/api/auth/signup", post(signup))
        .route("/api/auth/login", post(login))
        .route("/api/auth/refresh", post(refresh))
        .route("/api/auth/logout", post(logout))
        .route("/api/me", get(me))
}

/// `POST /api/auth/signup` and `POST /api/auth/login` bodies.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
pub struct Credentials {
    /// The email (normalised: trimmed, lower-cased).
    #[schema(examples("buyer@example.com"))]
    pub email: String,
    /// The password (8 to 128 characters, letters and digits).
    #[schema(examples("correct-horse-1"))]
    pub password: String,
}

/// `POST /api/auth/refresh` body.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
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
    /// Lifetime of the refresh token, seconds.
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
    /// `USER` or `ADMIN`.
    #[schema(schema_with = role_schema)]
    pub role: Role,
    /// Creation time, milliseconds since the epoch.
    pub created_at: i64,
}

/// The schema of [`MeAnswer::role`]: every [`Role`], as the API spells it.
fn role_schema() -> utoipa::openapi::Object {
    crate::openapi::text_enum(
        [Role::User, Role::Admin].map(Role::as_str),
        "`USER` or `ADMIN`",
    )
}

/// 500 for a blocking task that panicked or was cancelled.
fn join_error(e: tokio::task::JoinError) -> ApiError {
    tracing::error!("blocking task failed: {e}");
    ApiError::new(
        StatusCode::INTERNAL_SERVER_ERROR,
        "INTERNAL",
        "internal error",
    )
}

/// Creates an account with the `USER` role.
#[utoipa::path(
    post,
    path = "/api/auth/signup",
    tag = "auth",
    summary = "Create an account",
    request_body = Credentials,
    responses(
        (status = 201, description = "The new account", body = SignupAnswer),
        (status = 400, description = "Malformed body, invalid email or weak password: `VALIDATION`", body = ErrorBody),
        (status = 409, description = "The email is taken: `EMAIL_TAKEN`", body = ErrorBody),
        (status = 503, description = "Account storage unavailable: `UNAVAILABLE` (with `Retry-After`)", body = ErrorBody),
    )
)]
async fn signup(
    State(state): State<AppState>,
    JsonBody(body): JsonBody<Credentials>,
) -> Result<impl IntoResponse, ApiError> {
    let email = normalize_email(&body.email)?;
    let password = body.password;
    let hash = tokio::task::spawn_blocking(move || auth::hash_password(&password))
        .await
        .map_err(join_error)??;
    let user = state
        .accounts
        .create_user(&email, &hash, Role::User, state.clock.now())
        .await?;
    tracing::info!(user = %user.id, "signed up");
    Ok((
        StatusCode::CREATED,
        Json(SignupAnswer {
            id: user.id,
            email: user.email,
        }),
    ))
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
        (status = 200, description = "The tokens", body = TokenAnswer),
        (status = 400, description = "Malformed body: `VALIDATION`", body = ErrorBody),
        (status = 401, description = "Unknown email or wrong password (the same answer for both): `UNAUTHORIZED`", body = ErrorBody),
        (status = 503, description = "Account storage unavailable: `UNAVAILABLE` (with `Retry-After`)", body = ErrorBody),
    )
)]
async fn login(
    State(state): State<AppState>,
    JsonBody(body): JsonBody<Credentials>,
) -> Result<Json<TokenAnswer>, ApiError> {
    let user = match state.accounts.user_by_email(&body.email).await {
        Ok(user) => Some(user),
        Err(AccountError::NotFound) => None,
        Err(e) => return Err(e.into()),
    };
    let password = body.password;
    let stored = user.as_ref().map(|u| u.password_hash.clone());
    let matches = tokio::task::spawn_blocking(move || match stored {
        Some(hash) => auth::verify_password(&password, &hash),
        None => {
            if let Some(dummy) = dummy_hash() {
                // Spend the time; the answer is "no" whatever it says.
                let _ = auth::verify_password(&password, dummy);
            }
            Ok(false)
        }
    })
    .await
    .map_err(join_error)??;
    let user = match user {
        Some(user) if matches => user,
        _ => return Err(AuthError::InvalidCredentials.into()),
    };
    let now = state.clock.now();
    let (refresh_token, hash) = auth::new_refresh_token()?;
    let refresh_ttl = Duration::from_secs(state.config.refresh_token_ttl_secs);
    state
        .accounts
        .issue_refresh(
            user.id,
            &hash,
            FamilyId::new_at(now),
            now.plus(refresh_ttl),
            now,
        )
        .await?;
    tracing::info!(user = %user.id, "logged in");
    tokens(&state, user.id, user.role, refresh_token)
}

/// The answer with a new access token for `user` and the given refresh token.
fn tokens(
    state: &AppState,
    user: UserId,
    role: Role,
    refresh_token: String,
) -> Result<Json<TokenAnswer>, ApiError> {
    let ttl = state.config.access_token_ttl_secs;
    let (access_token, _) = state.keys.issue(
        &user.to_string(),
        role.as_str(),
        state.clock.now(),
        Duration::from_secs(ttl),
    )?;
    Ok(Json(TokenAnswer {
        access_token,
        refresh_token,
        token_type: "Bearer",
        expires_in: ttl,
        refresh_expires_in: state.config.refresh_token_ttl_secs,
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
        (status = 200, description = "New tokens", body = TokenAnswer),
        (status = 400, description = "Malformed body: `VALIDATION`", body = ErrorBody),
        (status = 401, description = "Unknown or revoked (`UNAUTHORIZED`), expired (`TOKEN_EXPIRED`) or already used (`TOKEN_REUSED`) refresh token", body = ErrorBody),
        (status = 503, description = "Account storage unavailable: `UNAVAILABLE` (with `Retry-After`)", body = ErrorBody),
    )
)]
async fn refresh(
    State(state): State<AppState>,
    JsonBody(body): JsonBody<RefreshRequest>,
) -> Result<Json<TokenAnswer>, ApiError> {
    let old = crate::accounts::TokenHash::of(&body.refresh_token);
    let (refresh_token, new) = auth::new_refresh_token()?;
    let now = state.clock.now();
    let expires = now.plus(Duration::from_secs(state.config.refresh_token_ttl_secs));
    let (user, role) = state
        .accounts
        .rotate_refresh(&old, &new, now, expires)
        .await
        .inspect_err(|e| {
            if matches!(e, AccountError::TokenReused) {
                tracing::warn!("refresh token reused: its family is revoked");
            }
        })?;
    tokens(&state, user, role, refresh_token)
}

/// Revokes every refresh token of the caller (access tokens stay valid until they expire).
#[utoipa::path(
    post,
    path = "/api/auth/logout",
    tag = "auth",
    summary = "Log out everywhere",
    security(("bearer" = [])),
    responses(
        (status = 204, description = "Every refresh token of the caller is revoked"),
        (status = 401, description = "No valid access token: `UNAUTHORIZED`, `TOKEN_EXPIRED`", body = ErrorBody),
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
        (status = 401, description = "No valid access token, or its account is gone: `UNAUTHORIZED`, `TOKEN_EXPIRED`", body = ErrorBody),
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
        created_at: account.created_at.as_millis(),
    }))
}
