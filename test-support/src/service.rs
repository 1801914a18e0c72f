//! The services backend tests need, where to find them, and names that never collide.

use std::fmt;

use crate::missing::Unreachable;

/// A service some tests need: where it is (an environment variable with a local default) and
/// how to start it on this machine.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Service {
    /// Redis, at `REDIS_URL` (default `redis://127.0.0.1:6379`).
    Redis,
    /// PostgreSQL, at `DATABASE_URL` (default `postgres://postgres@127.0.0.1:5432/test`).
    Postgres,
}

impl Service {
    /// The service's name in messages (`Redis`, `PostgreSQL`).
    pub const fn name(self) -> &'static str {
        match self {
            Self::Redis => "Redis",
            Self::Postgres => "PostgreSQL",
        }
    }

    /// The environment variable that points at the service.
    pub const fn env_var(self) -> &'static str {
        match self {
            Self::Redis => "REDIS_URL",
            Self::Postgres => "DATABASE_URL",
        }
    }

    /// The URL used when [`env_var`](Self::env_var) is unset: the local server that
    /// [`how_to_start`](Self::how_to_start) starts.
    pub const fn default_url(self) -> &'static str {
        match self {
            Self::Redis => "redis://127.0.0.1:6379",
            Self::Postgres => "postgres://postgres@127.0.0.1:5432/test",
        }
    }

    /// The service's URL: [`env_var`](Self::env_var) read now (never at compile time), else
    /// [`default_url`](Self::default_url).
    pub fn url(self) -> String {
        std::env::var(self.env_var()).unwrap_or_else(|_| self.default_url().to_owned())
    }

    /// A shell command that starts the service on this machine (as CI does, `.ci/run`).
    pub const fn how_to_start(self) -> &'static str {
        match self {
            Self::Redis => {
                r#"redis-server --daemonize yes --bind 127.0.0.1 -::1 --port 6379 --save "" --appendonly no"#
            }
            Self::Postgres => {
                "pg_ctlcluster --skip-systemctl-redirect $(ls /etc/postgresql) main start"
            }
        }
    }

    /// The service's name in the repository's `docker-compose.yml`.
    pub const fn compose_service(self) -> &'static str {
        match self {
            Self::Redis => "redis",
            Self::Postgres => "postgres",
        }
    }

    /// Says that the service at `url` could not be reached, and why; see [`Unreachable`].
    pub fn unreachable(
        self,
        url: &str,
        cause: impl Into<Box<dyn std::error::Error + Send + Sync>>,
    ) -> Unreachable {
        Unreachable {
            service: self,
            url: url.to_owned(),
            cause: cause.into(),
        }
    }

    /// The value of a connection attempt to the service at `url`, or the loud failure of
    /// [`Unreachable::fail`] when the attempt failed (any error counts as "not reachable":
    /// the message carries the cause).
    ///
    /// # Panics
    /// When `connected` is an error: a missing service fails the test, it never skips it.
    #[track_caller]
    pub fn connected<T, E>(self, url: &str, connected: Result<T, E>) -> T
    where
        E: Into<Box<dyn std::error::Error + Send + Sync>>,
    {
        match connected {
            Ok(value) => value,
            Err(e) => self.unreachable(url, e).fail(),
        }
    }
}

impl fmt::Display for Service {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// `REDIS_URL`, or `redis://127.0.0.1:6379`.
pub fn redis_url() -> String {
    Service::Redis.url()
}

/// `DATABASE_URL`, or `postgres://postgres@127.0.0.1:5432/test`.
pub fn database_url() -> String {
    Service::Postgres.url()
}

/// Whether the tests run in CI: `CI` is `true` or `1` (as CI services set it).
pub fn is_ci() -> bool {
    std::env::var("CI").is_ok_and(|v| v == "true" || v == "1")
}

/// How every [`unique_name`] starts: leftovers of test runs are easy to find
/// (`redis-cli --scan --pattern 'tr_test_*'`, `\dn tr_test_*`).
pub const NAME_PREFIX: &str = "tr_test_";

/// The longest label [`unique_name`] takes.
pub const MAX_LABEL_LEN: usize = 12;

/// A name no other test (in this process or another) uses: `tr_test_<label>_<uuid>`, where
/// `<uuid>` is a fresh UUIDv7 in 32 hex digits.
///
/// The name is at most 53 characters of `a-z`, `0-9` and `_`, starting with a letter, so it
/// is at once a Redis key prefix (no glob characters: a `SCAN MATCH <name>*` finds exactly
/// its keys), a PostgreSQL schema name that needs no quoting, with room for a suffix such as
/// `_app` within PostgreSQL's 63, and, with a label of up to 7 characters, a ticket-server
/// `--namespace` (at most 48).
///
/// # Panics
/// When `label` is empty, longer than [`MAX_LABEL_LEN`] or has a character other than
/// `a-z` and `0-9`: a mistake in the test, not in the service.
#[track_caller]
pub fn unique_name(label: &str) -> String {
    assert!(
        !label.is_empty()
            && label.len() <= MAX_LABEL_LEN
            && label
                .chars()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit()),
        "a test label is 1 to {MAX_LABEL_LEN} of a-z and 0-9, not {label:?}"
    );
    format!("{NAME_PREFIX}{label}_{}", uuid::Uuid::now_v7().simple())
}
