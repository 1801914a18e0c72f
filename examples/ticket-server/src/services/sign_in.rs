//! The sign-in limits as the sign-in flows apply them ([`crate::services::login`], called by
//! the handlers in `src/http/routes/auth.rs`):
//!
//! * per client IP (IPv6: per `/64`), a GCRA bucket for each of login, refresh and signup
//!   (`--login-limit-per-ip-per-minute`, `--refresh-limit-per-ip-per-minute`,
//!   `--signup-limit-per-ip-per-hour`): past it, 429 `RATE_LIMITED` with `Retry-After`;
//! * per account, the login failure backoff (`--login-failures-before-backoff`,
//!   `--login-backoff-max-secs`): 429 `LOGIN_THROTTLED` with `Retry-After`. The account
//!   is the login's email (normalised, then SHA-256, so no email is stored as a key), known
//!   or not: an unknown email is throttled exactly like a known one, so the answers say
//!   nothing about which emails have accounts. Refresh tokens are 256-bit random, so refresh
//!   has no per-account limit (guessing one is hopeless); signup has none (a taken email
//!   answers 409 at once).
//!
//! The state is in the shared store ([`crate::stores::throttle::ThrottleStore`]): on Redis or PostgreSQL the
//! limits hold across every server process. When the store fails, sign-in fails closed: 503
//! `UNAVAILABLE`. Every refusal is written to the security audit (at most one record per
//! key and window, see [`crate::stores::security_audit`]).
//!
//! Known trade-off: anyone may lock an account's logins by failing them (for at most
//! `--login-backoff-max-secs` after each failure); the lock never reveals or changes the
//! password, and a successful login (before the threshold) resets it.

use std::net::IpAddr;
use std::time::Duration;

use sha2::{Digest, Sha256};

use crate::http::middleware::client_ip::ClientIp;
use crate::runtime::state::AppState;
use crate::stores::accounts::{UserId, normalize_email};
use crate::stores::security_audit::{AbuseReason, AbuseRecord};
use crate::stores::throttle::{Rate, ThrottleError, Verdict};

/// The sign-in routes that are limited per IP.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SignInRoute {
    /// `POST /api/auth/signup`.
    Signup,
    /// `POST /api/auth/login`.
    Login,
    /// `POST /api/auth/refresh`.
    Refresh,
}

impl SignInRoute {
    fn name(self) -> &'static str {
        match self {
            Self::Signup => "signup",
            Self::Login => "login",
            Self::Refresh => "refresh",
        }
    }

    /// `METHOD /route`, as the security audit names it.
    pub fn label(self) -> &'static str {
        match self {
            Self::Signup => "POST /api/auth/signup",
            Self::Login => "POST /api/auth/login",
            Self::Refresh => "POST /api/auth/refresh",
        }
    }

    fn rate(self, state: &AppState) -> Option<Rate> {
        let c = &state.config.throttle;
        match self {
            Self::Signup => c.signup_per_ip(),
            Self::Login => c.login_per_ip(),
            Self::Refresh => c.refresh_per_ip(),
        }
    }
}

/// Why a sign-in flow was refused by its limits (nothing was counted against the account
/// beyond what the limit itself records).
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum SignInError {
    /// Too many requests of this flow from this client address (per IP, IPv6 per `/64`).
    #[error("too many requests")]
    RateLimited {
        /// When a retry may pass.
        retry_after: Duration,
    },
    /// Too many failed logins for this account.
    #[error("too many failed logins for this account, retry later")]
    LoginThrottled {
        /// When the account's lock ends.
        retry_after: Duration,
    },
    /// The throttle store could not be reached: the request is refused (fail closed).
    #[error("throttle store: {0}")]
    Unavailable(#[source] ThrottleError),
}

async fn audit(
    state: &AppState,
    reason: AbuseReason,
    actor: Option<UserId>,
    ip: Option<IpAddr>,
    route: SignInRoute,
    detail: &str,
) {
    state
        .security_audit
        .record(AbuseRecord {
            at: state.clock.now(),
            actor,
            reason,
            client_ip: ip,
            route: route.label().to_owned(),
            detail: detail.to_owned(),
        })
        .await;
}

/// Takes one request from the client address's bucket of `route`, or refuses with 429
/// `RATE_LIMITED` (recorded in the security audit). Nothing to check when the limit is off
/// or the address unknown.
pub async fn limit_ip(
    state: &AppState,
    route: SignInRoute,
    client: ClientIp,
) -> Result<(), SignInError> {
    let (Some(rate), Some(ip)) = (route.rate(state), client.0) else {
        return Ok(());
    };
    let key = format!(
        "{}:ip:{}",
        route.name(),
        crate::http::middleware::rate_limit::ip_key(ip)
    );
    let verdict = state
        .throttle
        .acquire(&key, rate, state.clock.now())
        .await
        .map_err(SignInError::Unavailable)?;
    match verdict {
        Verdict::Allowed => Ok(()),
        Verdict::Refused { retry_after } => {
            let detail = format!("{} per IP", route.name());
            audit(
                state,
                AbuseReason::RateLimited,
                None,
                Some(ip),
                route,
                &detail,
            )
            .await;
            Err(SignInError::RateLimited { retry_after })
        }
    }
}

/// The throttle key of a login email: its SHA-256 (after normalising, or lower-casing when
/// it is not a valid email), so keys are short and store no address.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AccountKey(String);

impl AccountKey {
    /// The key of `email`.
    pub fn of(email: &str) -> Self {
        let normal = normalize_email(email).unwrap_or_else(|_| email.trim().to_lowercase());
        Self(format!(
            "login:acct:{}",
            hex::encode(Sha256::digest(normal.as_bytes()))
        ))
    }
}

/// Counts a login attempt for `email` (before the password is checked), or refuses with 429
/// `LOGIN_THROTTLED` (recorded in the security audit with `actor`, the account when the email
/// has one). `None` when the backoff is off.
pub async fn begin_login(
    state: &AppState,
    client: ClientIp,
    email: &str,
    actor: Option<UserId>,
) -> Result<Option<AccountKey>, SignInError> {
    let Some(backoff) = state.config.throttle.login_backoff() else {
        return Ok(None);
    };
    let key = AccountKey::of(email);
    let verdict = state
        .throttle
        .attempt(&key.0, backoff, state.clock.now())
        .await
        .map_err(SignInError::Unavailable)?;
    match verdict {
        Verdict::Allowed => Ok(Some(key)),
        Verdict::Refused { retry_after } => {
            let route = SignInRoute::Login;
            let detail = "login failures per account";
            audit(
                state,
                AbuseReason::LoginThrottled,
                actor,
                client.0,
                route,
                detail,
            )
            .await;
            Err(SignInError::LoginThrottled { retry_after })
        }
    }
}

/// Forgets the account's failures after a successful login. A store fault is logged only:
/// the login stands, and the failures are forgotten later anyway.
pub async fn login_succeeded(state: &AppState, key: Option<AccountKey>) {
    if let Some(key) = key
        && let Err(e) = state.throttle.clear(&key.0).await
    {
        tracing::warn!("could not reset login failures: {e}");
    }
}
