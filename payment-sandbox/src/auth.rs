//! The secret API key that guards the sandbox's HTTP API ([`crate::http`]).
//!
//! Every request to the served sandbox must carry `Authorization: Bearer sk_test_…`: a
//! missing, malformed or wrong key is answered `401` with the API's error shape
//! (`{"error": {"type": "unauthorized", "message": …}}`) and a `WWW-Authenticate: Bearer`
//! header before any handler runs, so nothing changes. Keys are compared in constant time
//! (both sides hashed with SHA-256 first, so not even the length leaks).
//!
//! The in-process [`crate::Sandbox`] (library use, no HTTP) needs no key.
//!
//! ```
//! use payment_sandbox::auth::ApiKey;
//!
//! let key = ApiKey::new("sk_test_0123456789abcdefABCDEF0123").unwrap();
//! assert!(key.matches("sk_test_0123456789abcdefABCDEF0123"));
//! assert!(!key.matches("sk_test_0123456789abcdefABCDEF0124"));
//! assert!(ApiKey::new("sk_live_0123456789abcdefABCDEF0123").is_err());
//! assert!(ApiKey::generate().unwrap().expose_secret().starts_with("sk_test_"));
//! ```

use std::fmt;
use std::str::FromStr;
use std::sync::Arc;

use ::http::HeaderValue;
#[cfg(feature = "server")]
use ::http::{HeaderMap, StatusCode, header};
#[cfg(feature = "server")]
use axum::extract::{Request, State};
#[cfg(feature = "server")]
use axum::middleware::Next;
#[cfg(feature = "server")]
use axum::response::{IntoResponse, Response};
use rand_core::{OsRng, TryRngCore};
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

use crate::error::SandboxError;
#[cfg(feature = "server")]
use crate::http::ApiError;

/// Every API key starts with this.
pub const API_KEY_PREFIX: &str = "sk_test_";
/// The fewest characters after [`API_KEY_PREFIX`] a key may have.
pub const API_KEY_MIN_SECRET_LEN: usize = 24;
/// The most characters after [`API_KEY_PREFIX`] a key may have.
pub const API_KEY_MAX_SECRET_LEN: usize = 120;
/// Characters after the prefix in a key from [`ApiKey::generate`] (about 238 random bits).
pub const GENERATED_SECRET_LEN: usize = 40;

const ALPHANUMERIC: &[u8; 62] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";

/// The sandbox's secret API key: `sk_test_` followed by [`API_KEY_MIN_SECRET_LEN`] to
/// [`API_KEY_MAX_SECRET_LEN`] characters of `[A-Za-z0-9_-]`.
///
/// `Debug` never shows the key; [`ApiKey::expose_secret`] does, for the one place that must
/// send or print it. Cheap to clone.
#[derive(Clone)]
pub struct ApiKey {
    key: Arc<str>,
    digest: [u8; 32],
}

impl ApiKey {
    /// Validates a key given by the operator (`--api-key`); a malformed one is
    /// [`SandboxError::InvalidApiKey`], whose message never repeats the key.
    pub fn new(key: impl Into<String>) -> Result<Self, SandboxError> {
        let key: String = key.into();
        let Some(secret) = key.strip_prefix(API_KEY_PREFIX) else {
            return Err(SandboxError::InvalidApiKey(format!(
                "it must start with {API_KEY_PREFIX}"
            )));
        };
        if !(API_KEY_MIN_SECRET_LEN..=API_KEY_MAX_SECRET_LEN).contains(&secret.len()) {
            return Err(SandboxError::InvalidApiKey(format!(
                "it needs {API_KEY_MIN_SECRET_LEN} to {API_KEY_MAX_SECRET_LEN} characters \
                 after {API_KEY_PREFIX}"
            )));
        }
        if !secret
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
        {
            return Err(SandboxError::InvalidApiKey(format!(
                "only A-Z, a-z, 0-9, _ and - may follow {API_KEY_PREFIX}"
            )));
        }
        let digest = Sha256::digest(key.as_bytes()).into();
        Ok(Self {
            key: key.into(),
            digest,
        })
    }

    /// A new key: `sk_test_` and [`GENERATED_SECRET_LEN`] alphanumerics from the operating
    /// system's random number generator (uniform, by rejection sampling).
    pub fn generate() -> Result<Self, SandboxError> {
        let mut key = String::with_capacity(API_KEY_PREFIX.len() + GENERATED_SECRET_LEN);
        key.push_str(API_KEY_PREFIX);
        let mut buf = [0u8; 64];
        while key.len() < API_KEY_PREFIX.len() + GENERATED_SECRET_LEN {
            OsRng
                .try_fill_bytes(&mut buf)
                .map_err(|_| SandboxError::InvalidApiKey("no randomness available".into()))?;
            // 248 = 4 × 62: bytes above it would favour the first letters.
            for b in buf.iter().filter(|b| **b < 248) {
                if key.len() == API_KEY_PREFIX.len() + GENERATED_SECRET_LEN {
                    break;
                }
                key.push(char::from(ALPHANUMERIC[usize::from(*b % 62)]));
            }
        }
        Self::new(key)
    }

    /// The key itself, to send (`Authorization: Bearer …`) or to print once at start.
    pub fn expose_secret(&self) -> &str {
        &self.key
    }

    /// Whether `presented` is this key, compared in constant time.
    pub fn matches(&self, presented: &str) -> bool {
        let other: [u8; 32] = Sha256::digest(presented.as_bytes()).into();
        self.digest.ct_eq(&other).into()
    }

    /// The `Authorization` header value that carries this key (marked sensitive, so HTTP
    /// libraries keep it out of their logs).
    pub fn header_value(&self) -> Result<HeaderValue, SandboxError> {
        let mut v = HeaderValue::from_str(&format!("Bearer {}", self.key))
            .map_err(|_| SandboxError::InvalidApiKey("not a valid header value".into()))?;
        v.set_sensitive(true);
        Ok(v)
    }

    /// Why `headers` are refused, or `None` when they carry this key.
    #[cfg(feature = "server")]
    fn refusal(&self, headers: &HeaderMap) -> Option<&'static str> {
        let Some(value) = headers.get(header::AUTHORIZATION) else {
            return Some("missing API key: send Authorization: Bearer sk_test_…");
        };
        let presented = value
            .to_str()
            .ok()
            .and_then(|v| v.split_once(' '))
            .filter(|(scheme, _)| scheme.eq_ignore_ascii_case("bearer"))
            .map(|(_, token)| token.trim());
        match presented {
            None => Some("malformed Authorization header: expected Bearer sk_test_…"),
            Some(token) if self.matches(token) => None,
            Some(_) => Some("invalid API key"),
        }
    }
}

impl fmt::Debug for ApiKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("ApiKey(sk_test_…)")
    }
}

impl FromStr for ApiKey {
    type Err = SandboxError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::new(s)
    }
}

/// Middleware of [`crate::http::router`]: passes a request on only when it carries `key`;
/// otherwise answers `401` before any handler (or body parsing) runs.
#[cfg(feature = "server")]
pub(crate) async fn require_api_key(
    State(key): State<ApiKey>,
    request: Request,
    next: Next,
) -> Response {
    match key.refusal(request.headers()) {
        None => next.run(request).await,
        Some(why) => {
            let mut answer =
                ApiError::new(StatusCode::UNAUTHORIZED, "unauthorized", why.into()).into_response();
            answer.headers_mut().insert(
                header::WWW_AUTHENTICATE,
                HeaderValue::from_static("Bearer realm=\"payment-sandbox\""),
            );
            answer
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_are_validated_without_echoing_them() {
        let good = "sk_test_abcdefghijklmnopqrstuvwx";
        assert!(ApiKey::new(good).is_ok());
        for bad in [
            "",
            "sk_test_",
            "sk_test_short",
            "sk_live_abcdefghijklmnopqrstuvwx",
            "abcdefghijklmnopqrstuvwxabcdefgh",
            "sk_test_abcdefghijklmnopqrstuvw x",
            "sk_test_abcdefghijklmnopqrstuvwx\n",
        ] {
            let err = ApiKey::new(bad).expect_err(bad).to_string();
            assert!(bad.len() < 9 || !err.contains(&bad[8..]), "{err}");
        }
        let long = format!("sk_test_{}", "a".repeat(API_KEY_MAX_SECRET_LEN + 1));
        assert!(ApiKey::new(long).is_err());
    }

    #[test]
    fn generated_keys_are_long_random_and_alphanumeric() {
        let a = ApiKey::generate().unwrap();
        let b = ApiKey::generate().unwrap();
        assert_ne!(a.expose_secret(), b.expose_secret());
        let secret = a.expose_secret().strip_prefix(API_KEY_PREFIX).unwrap();
        assert_eq!(secret.len(), GENERATED_SECRET_LEN);
        assert!(secret.bytes().all(|c| c.is_ascii_alphanumeric()));
        assert_eq!(format!("{a:?}"), "ApiKey(sk_test_…)", "Debug hides the key");
    }

    #[test]
    fn only_the_exact_key_matches() {
        let key = ApiKey::new("sk_test_abcdefghijklmnopqrstuvwx").unwrap();
        assert!(key.matches("sk_test_abcdefghijklmnopqrstuvwx"));
        for other in [
            "",
            "sk_test_abcdefghijklmnopqrstuvw",
            "sk_test_abcdefghijklmnopqrstuvwxy",
            "SK_TEST_abcdefghijklmnopqrstuvwx",
        ] {
            assert!(!key.matches(other), "{other}");
        }
    }
}
