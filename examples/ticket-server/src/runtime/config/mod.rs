//! Configuration from flags and environment variables (clap): every flag has an env
//! variable of the same name in upper case, and flags win.

use std::net::SocketAddr;

pub mod oauth;
pub mod security_audit;
pub mod throttle;

use clap::{Parser, ValueEnum};

/// Where the server keeps everything correctness needs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum StoreKind {
    /// In this process only (one server; nothing to install).
    Memory,
    /// One Redis shared by every server process.
    Redis,
    /// One PostgreSQL database shared by every server process.
    Pg,
}

/// The server's settings.
#[derive(Debug, Clone, Parser)]
#[command(
    name = "ticket-server",
    version,
    about = "The ticketrush example server"
)]
pub struct Config {
    /// Address to listen on.
    #[arg(long, env = "LISTEN", default_value = "127.0.0.1:8080")]
    pub listen: SocketAddr,
    /// Backend: memory, redis or pg.
    #[arg(long, env = "STORE", value_enum, default_value = "memory")]
    pub store: StoreKind,
    /// Redis URL (with `--store redis`).
    #[arg(long, env = "REDIS_URL", default_value = "redis://127.0.0.1:6379")]
    pub redis_url: String,
    /// PostgreSQL URL (with `--store pg`).
    #[arg(
        long,
        env = "DATABASE_URL",
        default_value = "postgres://postgres@127.0.0.1:5432/test"
    )]
    pub database_url: String,
    /// Key prefix (Redis) or schema (PostgreSQL) of this deployment: servers that share it
    /// sell the same sessions.
    #[arg(long, env = "NAMESPACE", default_value = "ticketrush")]
    pub namespace: String,
    /// The admin account created (or promoted) at start.
    #[arg(long, env = "ADMIN_EMAIL")]
    pub admin_email: Option<String>,
    /// Its password.
    #[arg(long, env = "ADMIN_PASSWORD", hide_env_values = true)]
    pub admin_password: Option<String>,
    /// Secret (at least 32 bytes) that signs access tokens; every process of a deployment
    /// needs the same. Without it a random one is made, which suits one process only.
    #[arg(long, env = "JWT_SECRET", hide_env_values = true)]
    pub jwt_secret: Option<String>,
    /// Access token lifetime, seconds.
    #[arg(long, env = "ACCESS_TOKEN_TTL_SECS", default_value_t = 900)]
    pub access_token_ttl_secs: u64,
    /// Refresh token lifetime, seconds (idle: each rotation starts it again).
    #[arg(long, env = "REFRESH_TOKEN_TTL_SECS", default_value_t = 14 * 86_400)]
    pub refresh_token_ttl_secs: u64,
    /// Absolute lifetime of a login's refresh tokens, seconds: rotation never extends a
    /// login past this after it began (at least `--refresh-token-ttl-secs`).
    #[arg(long, env = "REFRESH_ABSOLUTE_TTL_SECS", default_value_t = 30 * 86_400)]
    pub refresh_absolute_ttl_secs: u64,
    /// A payment sandbox served over HTTP, shared by every process; without it each process
    /// runs one in-process (one process only).
    #[arg(long, env = "PAYMENT_SANDBOX_URL")]
    pub payment_sandbox_url: Option<String>,
    /// With `--payment-sandbox-url` (and required by it): that sandbox's secret API key
    /// (`sk_test_…`, its `--api-key`), sent as `Authorization: Bearer` on every call.
    #[arg(long, env = "PAYMENT_SANDBOX_KEY", hide_env_values = true)]
    pub payment_sandbox_key: Option<String>,
    /// With `--payment-sandbox-url`: the verification key (`whsec_…`) of the webhook endpoint
    /// registered for this deployment at that sandbox (`POST /v1/webhook_endpoints`). Without
    /// it, webhooks are refused (503) and payments settle by polling only.
    #[arg(long, env = "WEBHOOK_SECRET", hide_env_values = true)]
    pub webhook_secret: Option<String>,
    /// How long the in-process sandbox's slow test cards stay processing, milliseconds.
    #[arg(long, env = "SANDBOX_SLOW_DELAY_MS", default_value_t = 10_000)]
    pub sandbox_slow_delay_ms: u64,
    /// How long a wallet top-up may stay pending before the reconciler gives it up (its
    /// payment canceled, or refunded should it succeed later; nothing credited),
    /// milliseconds. Keep it above the provider's slowest confirmation.
    #[arg(long, env = "TOPUP_TIMEOUT_MS", default_value_t = 600_000,
          value_parser = clap::value_parser!(u64).range(1..=86_400_000))]
    pub topup_timeout_ms: u64,
    /// Do not create the demo event (one GA and one seated session) at start.
    #[arg(long, env = "NO_DEMO")]
    pub no_demo: bool,
    /// Log as JSON lines instead of text.
    #[arg(long, env = "LOG_JSON")]
    pub log_json: bool,
    /// Read `GET /api/sessions/{id}` from the store every time instead of from this
    /// process's snapshot kept by the change feed (`live::Live::session_stock`).
    #[arg(long, env = "NO_STOCK_CACHE")]
    pub no_stock_cache: bool,
    /// Origins allowed by CORS (comma-separated); none allows same-origin only; `*` alone
    /// allows every origin, without credentials.
    #[arg(long, env = "CORS_ORIGINS", value_delimiter = ',')]
    pub cors_origins: Vec<String>,
    /// Requests per minute per user on the queue and hold routes (bursts of as many), per
    /// process; 0 turns the limit off. See `rate_limit`.
    #[arg(long, env = "RATE_LIMIT_PER_MINUTE", default_value_t = 120)]
    pub rate_limit_per_minute: u32,
    /// Requests per minute per client IP (IPv6: per /64) on the same routes, per process;
    /// 0 turns it off. Default: ten times `--rate-limit-per-minute`.
    #[arg(long, env = "RATE_LIMIT_PER_IP_PER_MINUTE")]
    pub rate_limit_per_ip_per_minute: Option<u32>,
    /// How long an admission from the queue lasts, seconds (the library's `admission_ttl`).
    #[arg(long, env = "ADMISSION_TTL_SECS", default_value_t = 120)]
    pub admission_ttl_secs: u64,
    /// How long a hold lasts before it expires, seconds (`hold_ttl`; longer than the payment
    /// timeout).
    #[arg(long, env = "HOLD_TTL_SECS", default_value_t = 300)]
    pub hold_ttl_secs: u64,
    /// The longest the payment provider may take to answer a checkout, seconds
    /// (`payment_timeout`).
    #[arg(long, env = "PAYMENT_TIMEOUT_SECS", default_value_t = 120)]
    pub payment_timeout_secs: u64,
    /// Largest accepted request body, bytes.
    #[arg(long, env = "BODY_LIMIT_BYTES", default_value_t = 64 * 1024)]
    pub body_limit_bytes: usize,
    /// Longest a request may run, seconds.
    #[arg(long, env = "REQUEST_TIMEOUT_SECS", default_value_t = 10)]
    pub request_timeout_secs: u64,
    /// Sign-in limits, the password hashing bound and `--trusted-proxies`.
    #[command(flatten)]
    pub throttle: throttle::ThrottleConfig,
    /// Retention and write rate of the security audit.
    #[command(flatten)]
    pub security_audit: security_audit::SecurityAuditConfig,
    /// Social login providers (OAuth 2.0 / OpenID Connect).
    #[command(flatten)]
    pub oauth: oauth::OAuthConfig,
}

impl Config {
    /// This server's public base URL as browsers reach it, without a trailing slash:
    /// `--public-url`, or `http://<--listen>` (the address actually bound: the server binds
    /// before it builds its state, so a port 0 is resolved). Redirect URIs of social logins,
    /// the hosted payment page's return URL and the in-process sandbox's page are built on it.
    pub fn public_url(&self) -> String {
        self.oauth
            .public_url
            .clone()
            .unwrap_or_else(|| format!("http://{}", self.listen))
            .trim_end_matches('/')
            .to_owned()
    }

    /// The library's time limits: the three TTL flags, the library's defaults for the rest.
    pub fn time_limits(&self) -> ticket_core::TimeLimits {
        ticket_core::TimeLimits {
            admission_ttl: std::time::Duration::from_secs(self.admission_ttl_secs),
            hold_ttl: std::time::Duration::from_secs(self.hold_ttl_secs),
            payment_timeout: std::time::Duration::from_secs(self.payment_timeout_secs),
            ..ticket_core::TimeLimits::default()
        }
    }

    /// Checks values against each other; the message names the flag.
    pub fn validate(&self) -> Result<(), String> {
        if self.admin_email.is_some() != self.admin_password.is_some() {
            return Err("--admin-email and --admin-password go together".into());
        }
        if let Some(s) = &self.jwt_secret
            && s.len() < crate::services::auth::MIN_SECRET_LEN
        {
            return Err(format!(
                "--jwt-secret must be at least {} bytes",
                crate::services::auth::MIN_SECRET_LEN
            ));
        }
        if self.access_token_ttl_secs == 0
            || self.refresh_token_ttl_secs <= self.access_token_ttl_secs
        {
            return Err("token lifetimes must be positive, refresh longer than access".into());
        }
        if self.refresh_absolute_ttl_secs < self.refresh_token_ttl_secs {
            return Err(
                "--refresh-absolute-ttl-secs must be at least --refresh-token-ttl-secs".into(),
            );
        }
        if self.body_limit_bytes < 1024 || self.request_timeout_secs == 0 {
            return Err("body limit (>= 1024) and request timeout must be positive".into());
        }
        self.time_limits().validate().map_err(|e| {
            format!("--admission-ttl-secs, --hold-ttl-secs, --payment-timeout-secs: {e}")
        })?;
        if self.payment_sandbox_url.is_some() {
            let Some(key) = &self.payment_sandbox_key else {
                return Err(
                    "--payment-sandbox-url needs --payment-sandbox-key (the sandbox's \
                            sk_test_… API key, printed when it starts)"
                        .into(),
                );
            };
            payment_sandbox::auth::ApiKey::new(key.as_str())
                .map_err(|e| format!("--payment-sandbox-key: {e}"))?;
        }
        if self.cors_origins.len() > 1
            && self
                .cors_origins
                .iter()
                .any(|o| o.trim() == crate::http::ANY_ORIGIN)
        {
            return Err(
                "--cors-origins: `*` (every origin) cannot be combined with other origins".into(),
            );
        }
        let ns_ok = !self.namespace.is_empty()
            && self.namespace.len() <= 48
            && self
                .namespace
                .chars()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_');
        if !ns_ok {
            return Err("--namespace must be 1 to 48 of a-z, 0-9 and _".into());
        }
        self.throttle.validate()?;
        self.security_audit.validate()?;
        self.oauth.validate()?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_need_no_service_and_are_valid() {
        let c = Config::try_parse_from(["ticket-server"]).unwrap();
        assert_eq!(c.store, StoreKind::Memory);
        assert_eq!(c.listen, "127.0.0.1:8080".parse().unwrap());
        assert!(c.validate().is_ok());
    }

    #[test]
    fn time_limits_come_from_the_flags_and_are_checked_together() {
        let c = Config::try_parse_from([
            "ticket-server",
            "--hold-ttl-secs",
            "30",
            "--payment-timeout-secs",
            "10",
            "--admission-ttl-secs",
            "20",
        ])
        .unwrap();
        assert!(c.validate().is_ok());
        assert_eq!(c.time_limits().hold_ttl.as_secs(), 30);
        assert_eq!(c.time_limits().admission_ttl.as_secs(), 20);
        // A hold that does not outlive the payment timeout is refused, naming the flags.
        let bad = Config::try_parse_from(["ticket-server", "--hold-ttl-secs", "60"]).unwrap();
        let message = bad.validate().unwrap_err();
        assert!(message.contains("--hold-ttl-secs"), "{message}");
        let zero = Config::try_parse_from(["ticket-server", "--admission-ttl-secs", "0"]).unwrap();
        assert!(zero.validate().is_err());
    }

    #[test]
    fn flags_are_parsed_and_checked() {
        let c = Config::try_parse_from([
            "ticket-server",
            "--store",
            "pg",
            "--cors-origins",
            "http://a.test,http://b.test",
            "--admin-email",
            "admin@example.com",
        ])
        .unwrap();
        assert_eq!(c.store, StoreKind::Pg);
        assert_eq!(c.cors_origins.len(), 2);
        assert!(c.validate().is_err(), "admin email without password");
        assert!(Config::try_parse_from(["ticket-server", "--store", "mongo"]).is_err());
        let short = Config::try_parse_from(["ticket-server", "--jwt-secret", "short"]).unwrap();
        assert!(short.validate().is_err());
        let ns = Config::try_parse_from(["ticket-server", "--namespace", "Bad-NS"]).unwrap();
        assert!(ns.validate().is_err());
    }

    #[test]
    fn a_shared_payment_sandbox_needs_its_api_key() {
        let url = [
            "ticket-server",
            "--payment-sandbox-url",
            "http://127.0.0.1:8090",
        ];
        let without = Config::try_parse_from(url).unwrap();
        let message = without.validate().unwrap_err();
        assert!(message.contains("--payment-sandbox-key"), "{message}");
        let malformed = Config::try_parse_from(
            url.into_iter()
                .chain(["--payment-sandbox-key", "sk_live_0123456789abcdef01234567"]),
        )
        .unwrap();
        let message = malformed.validate().unwrap_err();
        assert!(message.contains("--payment-sandbox-key"), "{message}");
        assert!(
            !message.contains("0123456789abcdef"),
            "never echoes the key"
        );
        let with = Config::try_parse_from(
            url.into_iter()
                .chain(["--payment-sandbox-key", "sk_test_0123456789abcdef01234567"]),
        )
        .unwrap();
        assert!(with.validate().is_ok());
    }

    #[test]
    fn any_origin_stands_alone() {
        let any = Config::try_parse_from(["ticket-server", "--cors-origins", "*"]).unwrap();
        assert!(any.validate().is_ok());
        let mixed =
            Config::try_parse_from(["ticket-server", "--cors-origins", "http://a.test,*"]).unwrap();
        let message = mixed.validate().unwrap_err();
        assert!(message.contains("--cors-origins"), "{message}");
    }

    #[test]
    fn rate_limits_default_per_user_and_zero_turns_them_off() {
        let c = Config::try_parse_from(["ticket-server"]).unwrap();
        assert_eq!(
            (c.rate_limit_per_minute, c.rate_limit_per_ip_per_minute),
            (120, None)
        );
        let off = Config::try_parse_from([
            "ticket-server",
            "--rate-limit-per-minute",
            "0",
            "--rate-limit-per-ip-per-minute",
            "0",
        ])
        .unwrap();
        assert!(off.validate().is_ok());
        assert_eq!(off.rate_limit_per_ip_per_minute, Some(0));
    }
}
