//! The sign-in limits' flags (flattened into [`crate::runtime::config::Config`]), with
//! `--trusted-proxies`, which every per-IP limit reads.

use std::time::Duration;

use clap::Args;

use crate::http::middleware::client_ip::Cidr;
use crate::stores::throttle::{Backoff, Rate};

/// How long the failures of an account are remembered after its last counted attempt (or
/// after its current backoff ends, when that is later).
pub const FORGET_FAILURES_AFTER: Duration = Duration::from_secs(15 * 60);

/// The first backoff after `--login-failures-before-backoff` failures; it doubles with every
/// further failure up to `--login-backoff-max-secs`.
pub const FIRST_BACKOFF: Duration = Duration::from_secs(1);

/// The most hashing permits `--hash-concurrency` takes.
pub const MAX_HASH_CONCURRENCY: usize = 1024;

/// Sign-in throttling, password hashing bound and the client address.
#[derive(Debug, Clone, Args)]
#[command(next_help_heading = "Sign-in throttling and client addresses")]
pub struct ThrottleConfig {
    /// Networks of reverse proxies whose `X-Forwarded-For` is believed (comma-separated
    /// CIDRs, e.g. `10.0.0.0/8,2001:db8::/32`). The client is the first address from the
    /// right of `X-Forwarded-For` that is not such a proxy. Without it the header is ignored
    /// and the connection's address is the client. Every per-IP limit uses this address.
    #[arg(long, env = "TRUSTED_PROXIES", value_delimiter = ',')]
    pub trusted_proxies: Vec<Cidr>,
    /// `POST /api/auth/login` requests per minute per client IP (IPv6: per /64), bursts of
    /// as many; shared by every process on Redis or PostgreSQL. 0 turns it off.
    #[arg(long, env = "LOGIN_LIMIT_PER_IP_PER_MINUTE", default_value_t = 60)]
    pub login_limit_per_ip_per_minute: u32,
    /// `POST /api/auth/refresh` requests per minute per client IP, bursts of as many; shared.
    /// 0 turns it off.
    #[arg(long, env = "REFRESH_LIMIT_PER_IP_PER_MINUTE", default_value_t = 120)]
    pub refresh_limit_per_ip_per_minute: u32,
    /// `POST /api/auth/signup` requests per hour per client IP, bursts of as many; shared.
    /// 0 turns it off.
    #[arg(long, env = "SIGNUP_LIMIT_PER_IP_PER_HOUR", default_value_t = 60)]
    pub signup_limit_per_ip_per_hour: u32,
    /// Login attempts for one account (email) before it backs off: the attempt that reaches
    /// this many failures locks the account's logins for 1 s, each further failure doubles
    /// the lock (429 `LOGIN_THROTTLED`), a successful login resets it. Shared by every
    /// process on Redis or PostgreSQL. 0 turns it off.
    #[arg(long, env = "LOGIN_FAILURES_BEFORE_BACKOFF", default_value_t = 5)]
    pub login_failures_before_backoff: u32,
    /// The longest lock of an account's logins, seconds (1 to 86400).
    #[arg(long, env = "LOGIN_BACKOFF_MAX_SECS", default_value_t = 900)]
    pub login_backoff_max_secs: u64,
    /// Password hashes computed at once (signup, login); past them requests wait up to
    /// `--hash-wait-ms`, then answer 503 `OVERLOADED`. Default: twice the CPU cores.
    #[arg(long, env = "HASH_CONCURRENCY")]
    pub hash_concurrency: Option<usize>,
    /// How long a request waits for a hashing permit, milliseconds (0 to 60000).
    #[arg(long, env = "HASH_WAIT_MS", default_value_t = 1_000)]
    pub hash_wait_ms: u64,
}

impl ThrottleConfig {
    /// Checks the values; the message names the flag.
    pub fn validate(&self) -> Result<(), String> {
        if !(1..=86_400).contains(&self.login_backoff_max_secs) {
            return Err("--login-backoff-max-secs must be 1 to 86400".into());
        }
        if self
            .hash_concurrency
            .is_some_and(|n| !(1..=MAX_HASH_CONCURRENCY).contains(&n))
        {
            return Err(format!(
                "--hash-concurrency must be 1 to {MAX_HASH_CONCURRENCY}"
            ));
        }
        if self.hash_wait_ms > 60_000 {
            return Err("--hash-wait-ms must be 0 to 60000".into());
        }
        Ok(())
    }

    /// The login limit per IP, if on.
    pub fn login_per_ip(&self) -> Option<Rate> {
        Rate::new(self.login_limit_per_ip_per_minute, Duration::from_secs(60))
    }

    /// The refresh limit per IP, if on.
    pub fn refresh_per_ip(&self) -> Option<Rate> {
        Rate::new(
            self.refresh_limit_per_ip_per_minute,
            Duration::from_secs(60),
        )
    }

    /// The signup limit per IP, if on.
    pub fn signup_per_ip(&self) -> Option<Rate> {
        Rate::new(
            self.signup_limit_per_ip_per_hour,
            Duration::from_secs(3_600),
        )
    }

    /// The per-account backoff, if on.
    pub fn login_backoff(&self) -> Option<Backoff> {
        (self.login_failures_before_backoff > 0).then(|| Backoff {
            threshold: self.login_failures_before_backoff,
            first: FIRST_BACKOFF,
            max: Duration::from_secs(self.login_backoff_max_secs),
            forget_after: FORGET_FAILURES_AFTER,
        })
    }

    /// Hashing permits: `--hash-concurrency`, or twice the CPU cores.
    pub fn hash_permits(&self) -> usize {
        self.hash_concurrency.unwrap_or_else(|| {
            std::thread::available_parallelism().map_or(2, |n| n.get().saturating_mul(2))
        })
    }
}

#[cfg(test)]
mod tests {
    use clap::Parser;

    use crate::runtime::config::Config;

    #[test]
    fn flags_parse_and_bad_values_are_refused() {
        let c = Config::try_parse_from([
            "ticket-server",
            "--trusted-proxies",
            "10.0.0.0/8,::1",
            "--login-failures-before-backoff",
            "0",
        ])
        .unwrap();
        assert_eq!(c.throttle.trusted_proxies.len(), 2);
        assert!(c.throttle.login_backoff().is_none(), "0 turns it off");
        assert!(c.validate().is_ok());
        let defaults = Config::try_parse_from(["ticket-server"]).unwrap();
        assert!(defaults.throttle.trusted_proxies.is_empty());
        assert_eq!(
            defaults.throttle.login_backoff().map(|b| b.threshold),
            Some(5)
        );
        assert!(defaults.throttle.hash_permits() >= 2);
        // A malformed network is refused when parsing, naming it.
        let err = Config::try_parse_from(["ticket-server", "--trusted-proxies", "10.0.0.1/8"])
            .unwrap_err()
            .to_string();
        assert!(err.contains("10.0.0.1/8"), "{err}");
        for bad in [
            ["--hash-concurrency", "0"],
            ["--hash-wait-ms", "60001"],
            ["--login-backoff-max-secs", "0"],
            ["--security-audit-retain", "0"],
            ["--security-audit-window-secs", "0"],
        ] {
            let c = Config::try_parse_from(["ticket-server", bad[0], bad[1]]).unwrap();
            let message = c.validate().unwrap_err();
            assert!(message.contains(bad[0]), "{message}");
        }
    }
}
