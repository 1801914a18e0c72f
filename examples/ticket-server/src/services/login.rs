//! Accounts' sign-in flows: signing up, logging in and rotating refresh tokens, with the
//! rules they share: per-IP limits on every flow and per-account backoff on logins
//! ([`crate::services::sign_in`]), password hashing on the bounded pool
//! ([`crate::services::hashing`]), a login as slow for an unknown email as for a known one,
//! and a refresh token living `--refresh-token-ttl-secs` from its last rotation but never past
//! `--refresh-absolute-ttl-secs` after its login.

use std::sync::OnceLock;
use std::time::Duration;

use ticket_core::Timestamp;

use crate::http::middleware::client_ip::ClientIp;
use crate::runtime::state::AppState;
use crate::services::auth::{self, AuthError};
use crate::services::hashing::Overloaded;
use crate::services::sign_in::{self, SignInError, SignInRoute};
use crate::stores::accounts::{
    AccountError, FamilyId, NO_PASSWORD, Role, TokenHash, User, UserId, normalize_email,
};

/// Why a sign-in flow failed; nothing was issued.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum LoginError {
    /// A sign-in limit refused the request.
    #[error(transparent)]
    Limited(#[from] SignInError),
    /// The account store refused (email taken, unknown or spent refresh token, …) or failed.
    #[error(transparent)]
    Account(#[from] AccountError),
    /// The credentials or the password are refused, or a token could not be made.
    #[error(transparent)]
    Auth(#[from] AuthError),
    /// Too many password hashes at once.
    #[error(transparent)]
    Overloaded(#[from] Overloaded),
}

/// The tokens a login or a refresh hands out.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Tokens {
    /// The JWT to send as `Authorization: Bearer …`.
    pub access_token: String,
    /// The opaque, single-use refresh token.
    pub refresh_token: String,
    /// Lifetime of the access token, seconds.
    pub expires_in: u64,
    /// Lifetime of the refresh token, seconds (never past the login's absolute end).
    pub refresh_expires_in: u64,
}

/// Creates an account with the `USER` role for `email` (normalised) and `password` (the
/// password policy applies), after the per-IP signup limit.
pub async fn sign_up(
    state: &AppState,
    client: ClientIp,
    email: &str,
    password: String,
) -> Result<User, LoginError> {
    sign_in::limit_ip(state, SignInRoute::Signup, client).await?;
    let email = normalize_email(email)?;
    let hash = state
        .hashing
        .run(move || auth::hash_password(&password))
        .await??;
    let user = state
        .accounts
        .create_user(&email, &hash, Role::User, state.clock.now())
        .await?;
    tracing::info!(user = %user.id, "signed up");
    Ok(user)
}

/// A hash of a password nobody knows, checked when the email is unknown so that a login
/// takes about as long whether or not the account exists. Computed once.
fn dummy_hash() -> Option<&'static str> {
    static DUMMY: OnceLock<Option<String>> = OnceLock::new();
    DUMMY
        .get_or_init(|| auth::hash_password("no-such-account-0").ok())
        .as_deref()
}

/// Checks `email` and `password` and issues an access token and a refresh token starting a
/// new refresh family. The attempt is counted before the password is checked (racing
/// guesses cannot pass the backoff); an unknown email and a wrong password both answer
/// `InvalidCredentials` after about the same time.
pub async fn log_in(
    state: &AppState,
    client: ClientIp,
    email: &str,
    password: String,
) -> Result<Tokens, LoginError> {
    sign_in::limit_ip(state, SignInRoute::Login, client).await?;
    let user = match state.accounts.user_by_email(email).await {
        Ok(user) => Some(user),
        Err(AccountError::NotFound) => None,
        Err(e) => return Err(e.into()),
    };
    // Counted before the password is checked: racing guesses cannot pass the backoff.
    let attempt = sign_in::begin_login(state, client, email, user.as_ref().map(|u| u.id)).await?;
    // An account made by social login has no password: checked like an unknown email.
    let stored = user
        .as_ref()
        .map(|u| u.password_hash.clone())
        .filter(|h| h != NO_PASSWORD);
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
    sign_in::login_succeeded(state, attempt).await;
    start_session(state, &user).await
}

/// Issues an access token and a refresh token starting a new refresh family for `user`, who
/// has just proven who they are (a password login, or a social login's one-time code).
pub async fn start_session(state: &AppState, user: &User) -> Result<Tokens, LoginError> {
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
    tokens(state, issued)
}

/// Trades `refresh_token` for new tokens; the old one is spent (a reused one revokes its
/// whole family), after the per-IP refresh limit.
pub async fn rotate(
    state: &AppState,
    client: ClientIp,
    refresh_token: &str,
) -> Result<Tokens, LoginError> {
    sign_in::limit_ip(state, SignInRoute::Refresh, client).await?;
    let old = TokenHash::of(refresh_token);
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
    tokens(state, issued)
}

/// What a login or a refresh hands out.
struct Issued {
    user: UserId,
    role: Role,
    token_version: u64,
    refresh_token: String,
    refresh_expires_at: Timestamp,
}

/// A new access token (carrying the user's token version) beside the given refresh token.
fn tokens(state: &AppState, issued: Issued) -> Result<Tokens, LoginError> {
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
    Ok(Tokens {
        access_token,
        refresh_token: issued.refresh_token,
        expires_in: ttl,
        refresh_expires_in: u64::try_from(refresh_ms / 1000).unwrap_or(0),
    })
}
