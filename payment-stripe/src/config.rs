//! [`StripeConfig`]: the secret key, where Stripe is, which API version, how long to wait.

use std::fmt;
use std::time::Duration;

/// The Stripe API version every request is pinned to (`Stripe-Version` header): the newest
/// dated release published in Stripe's OpenAPI repository when this crate was written. The
/// object shapes this crate reads (PaymentIntent, Charge, Refund, Checkout Session, Event,
/// the error object) are the ones of this version. Pinning it means a change of the
/// account's default version in Stripe's dashboard never changes what this crate receives.
/// Webhook events are rendered in the version of the *webhook endpoint*: create the
/// endpoint with this version too.
pub const API_VERSION: &str = "2026-07-29.dahlia";

/// Stripe's API.
pub const DEFAULT_API_BASE: &str = "https://api.stripe.com";

/// The environment variable holding the secret key (`sk_live_…`, `sk_test_…` or a
/// restricted `rk_…` key).
pub const ENV_SECRET_KEY: &str = "STRIPE_SECRET_KEY";

/// The environment variable that overrides [`DEFAULT_API_BASE`] (a local fake, a proxy).
pub const ENV_API_BASE: &str = "STRIPE_API_BASE";

/// Errors building a [`StripeConfig`] or a [`crate::StripeGateway`].
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ConfigError {
    /// A required environment variable is not set (or not UTF-8).
    #[error("environment variable {0} is not set")]
    MissingEnv(&'static str),
    /// The secret key is not one (the reason never contains the key).
    #[error("invalid Stripe secret key: {0}")]
    InvalidSecretKey(&'static str),
    /// The API base URL is unusable.
    #[error("invalid Stripe API base {url:?}: {reason}")]
    InvalidApiBase {
        /// The URL given.
        url: String,
        /// Why it is refused.
        reason: String,
    },
    /// Another setting is out of range.
    #[error("invalid Stripe configuration: {0}")]
    Invalid(String),
    /// The HTTP client could not be built.
    #[error("HTTP client: {0}")]
    Client(String),
}

/// How to reach Stripe.
///
/// `Debug` never shows the secret key.
#[derive(Clone)]
pub struct StripeConfig {
    /// The secret (or restricted) API key, sent as `Authorization: Bearer <key>` and nowhere
    /// else (a header marked sensitive; redirects are never followed).
    pub secret_key: String,
    /// Where the API is: [`DEFAULT_API_BASE`], or a loopback `http://` URL for tests (plain
    /// HTTP is refused for any other host, so the key never crosses a network in clear).
    pub api_base: String,
    /// Sent as `Stripe-Version` on every request; [`API_VERSION`] unless you know better.
    pub api_version: String,
    /// The limit of one request, connection included. A request that exceeds it is
    /// [`ticket_core::gateway::GatewayError::Timeout`]: its outcome is unknown.
    pub timeout: Duration,
    /// The limit of establishing a connection.
    pub connect_timeout: Duration,
    /// How many times a GET is repeated after a rate limit (`429`), a server error (`5xx`)
    /// or a failed connection, unless Stripe answers `Stripe-Should-Retry: false`. POSTs are
    /// never repeated by the gateway: the caller repeats them with the same idempotency key.
    pub get_retries: u32,
    /// The longest wait before a repeated GET (a longer `Retry-After` is cut to this).
    pub max_retry_wait: Duration,
}

impl fmt::Debug for StripeConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("StripeConfig")
            .field("secret_key", &redacted(&self.secret_key))
            .field("api_base", &self.api_base)
            .field("api_version", &self.api_version)
            .field("timeout", &self.timeout)
            .field("connect_timeout", &self.connect_timeout)
            .field("get_retries", &self.get_retries)
            .field("max_retry_wait", &self.max_retry_wait)
            .finish()
    }
}

/// `sk_test_[redacted]`: the key's kind, never its secret part.
fn redacted(key: &str) -> String {
    let kind = ["sk_live_", "sk_test_", "rk_live_", "rk_test_"]
        .into_iter()
        .find(|p| key.starts_with(p))
        .unwrap_or("");
    format!("{kind}[redacted]")
}

impl StripeConfig {
    /// A configuration for `secret_key` against [`DEFAULT_API_BASE`], pinned to
    /// [`API_VERSION`], 30 s per request (Stripe's own libraries wait 80 s; a checkout
    /// would rather poll the intent than hold a buyer that long), 2 repeats of a failed GET
    /// waiting at most 2 s.
    pub fn new(secret_key: impl Into<String>) -> Self {
        Self {
            secret_key: secret_key.into(),
            api_base: DEFAULT_API_BASE.to_owned(),
            api_version: API_VERSION.to_owned(),
            timeout: Duration::from_secs(30),
            connect_timeout: Duration::from_secs(10),
            get_retries: 2,
            max_retry_wait: Duration::from_secs(2),
        }
    }

    /// [`StripeConfig::new`] with the key from `STRIPE_SECRET_KEY` and, when set, the API
    /// base from `STRIPE_API_BASE`. The key is checked ([`StripeConfig::validate`]).
    pub fn from_env() -> Result<Self, ConfigError> {
        let key =
            std::env::var(ENV_SECRET_KEY).map_err(|_| ConfigError::MissingEnv(ENV_SECRET_KEY))?;
        let mut config = Self::new(key.trim());
        if let Ok(base) = std::env::var(ENV_API_BASE)
            && !base.trim().is_empty()
        {
            config.api_base = base.trim().to_owned();
        }
        config.validate()?;
        Ok(config)
    }

    /// The same configuration against another API base (a local fake in tests).
    pub fn with_api_base(mut self, api_base: impl Into<String>) -> Self {
        self.api_base = api_base.into();
        self
    }

    /// The same configuration with another request timeout.
    pub fn with_timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }

    /// Checks the key's form (`sk_…` or `rk_…`, printable ASCII without spaces: a
    /// publishable `pk_…` key is refused), the API version and the timeouts. The API base is
    /// checked by [`crate::StripeGateway::new`], which knows whether TLS is compiled in.
    pub fn validate(&self) -> Result<(), ConfigError> {
        let key = &self.secret_key;
        if key.is_empty() {
            return Err(ConfigError::InvalidSecretKey("empty"));
        }
        if !key.bytes().all(|b| b.is_ascii_graphic()) {
            return Err(ConfigError::InvalidSecretKey(
                "must be printable ASCII without spaces",
            ));
        }
        if key.starts_with("pk_") {
            return Err(ConfigError::InvalidSecretKey(
                "a publishable key (pk_…) cannot call the API; use the secret key (sk_…)",
            ));
        }
        if !(key.starts_with("sk_") || key.starts_with("rk_")) {
            return Err(ConfigError::InvalidSecretKey(
                "must start with sk_ (secret) or rk_ (restricted)",
            ));
        }
        if self.api_version.is_empty() || !self.api_version.bytes().all(|b| b.is_ascii_graphic()) {
            return Err(ConfigError::Invalid(format!(
                "API version {:?}",
                self.api_version
            )));
        }
        if self.timeout.is_zero() || self.connect_timeout.is_zero() {
            return Err(ConfigError::Invalid("timeouts must be positive".into()));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_never_shows_the_key() {
        let config = StripeConfig::new("sk_test_4eC39HqLyjWDarjtT1zdp7dc");
        let shown = format!("{config:?}");
        assert!(!shown.contains("4eC39HqLyjWDarjtT1zdp7dc"), "{shown}");
        assert!(shown.contains("sk_test_[redacted]"), "{shown}");
    }

    #[test]
    fn keys_are_checked() {
        assert!(StripeConfig::new("sk_test_abc").validate().is_ok());
        assert!(StripeConfig::new("rk_live_abc").validate().is_ok());
        for bad in ["", "pk_test_abc", "abc", "sk_test abc", "sk_test_é"] {
            assert!(StripeConfig::new(bad).validate().is_err(), "{bad:?}");
        }
    }
}
