//! What a run simulates: the crowd, the stock, the backend, the behaviour mix and the pacing.
//!
//! [`Args`] is the command line (clap); [`Config`] is the validated form the simulator runs
//! with, and what a test builds directly ([`Config::new`] then field updates).

use std::time::Duration;

use clap::{Parser, ValueEnum};
use serde::{Deserialize, Serialize};

use crate::error::RushError;

/// Default Redis URL (`REDIS_URL` overrides it).
pub const DEFAULT_REDIS_URL: &str = "redis://127.0.0.1:6379";
/// Default PostgreSQL URL (`DATABASE_URL` overrides it).
pub const DEFAULT_DATABASE_URL: &str = "postgres://postgres@127.0.0.1:5432/test";

/// Which backend holds the session.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ValueEnum)]
#[serde(rename_all = "snake_case")]
pub enum StoreKind {
    /// `ticket_core::memory::MemoryStore`, in this process.
    Memory,
    /// `ticket_store_redis::RedisStore` under a fresh key prefix.
    Redis,
    /// `ticket_store_pg::PgStore` in a fresh schema.
    Pg,
}

impl StoreKind {
    /// `memory`, `redis` or `pg`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Memory => "memory",
            Self::Redis => "redis",
            Self::Pg => "pg",
        }
    }
}

/// What admitted users do once they hold units: fractions of admitted users that add up
/// to 1.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Mix {
    /// Pay with the sandbox's succeeding card (`4242424242424242`) and keep the tickets.
    pub pay_success: f64,
    /// Pay with the declined card (`4000000000000002`): the hold fails, units go back.
    pub decline: f64,
    /// Never pay: the hold expires after its TTL and the sweeper returns the units.
    pub abandon: f64,
    /// Pay, then cancel later (resale) and get a full refund through the gateway.
    pub cancel_later: f64,
}

impl Default for Mix {
    fn default() -> Self {
        Self {
            pay_success: 0.8,
            decline: 0.1,
            abandon: 0.05,
            cancel_later: 0.05,
        }
    }
}

impl Mix {
    /// Each fraction is within `[0, 1]` and they add up to 1 (within 1e-6).
    pub fn validate(&self) -> Result<(), RushError> {
        let all = [
            self.pay_success,
            self.decline,
            self.abandon,
            self.cancel_later,
        ];
        if all.iter().any(|f| !f.is_finite() || *f < 0.0 || *f > 1.0) {
            return Err(RushError::Config(format!(
                "behaviour fractions must be within [0, 1]: {self:?}"
            )));
        }
        let sum: f64 = all.iter().sum();
        if (sum - 1.0).abs() > 1e-6 {
            return Err(RushError::Config(format!(
                "--pay-success + --decline + --abandon + --cancel-later must be 1, got {sum}"
            )));
        }
        Ok(())
    }
}

/// The rush simulator's command line.
#[derive(Debug, Clone, Parser)]
#[command(
    name = "rush",
    about = "Simulates a ticket rush against the ticketrush library: a crowd joins one session's \
             queue, is admitted FIFO, holds, pays, abandons or cancels; then prints throughput, \
             latency and correctness counters checked against the store. Exit code 1 when a \
             correctness counter is not 0."
)]
pub struct Args {
    /// Simulated buyers, all joining the queue in one burst.
    #[arg(long, default_value_t = 100_000)]
    pub users: u32,
    /// Units of the session's only grade (`GA`).
    #[arg(long, default_value_t = 5_000)]
    pub units: u32,
    /// Backend holding the session.
    #[arg(long, value_enum, default_value_t = StoreKind::Memory)]
    pub store: StoreKind,
    /// Redis URL for `--store redis`.
    #[arg(long, env = "REDIS_URL", default_value = DEFAULT_REDIS_URL)]
    pub redis_url: String,
    /// PostgreSQL URL for `--store pg`.
    #[arg(long, env = "DATABASE_URL", default_value = DEFAULT_DATABASE_URL)]
    pub database_url: String,
    /// Keep the run's Redis keys or PostgreSQL schema instead of removing them at the end.
    #[arg(long)]
    pub keep: bool,
    /// Tokio tasks that drive the users (each advances many users' state machines).
    #[arg(long, default_value_t = 64)]
    pub workers: usize,
    /// Threads of the binary's tokio runtime; 0: one for `--store memory` (every call of
    /// the one session serialises on its lock, and a second thread only adds lock
    /// hand-offs between cores), the machine's cores otherwise.
    #[arg(long, default_value_t = 0)]
    pub threads: usize,
    /// Fraction of admitted users who pay successfully.
    #[arg(long, default_value_t = 0.8)]
    pub pay_success: f64,
    /// Fraction of admitted users whose card is declined.
    #[arg(long, default_value_t = 0.1)]
    pub decline: f64,
    /// Fraction of admitted users who never pay (their hold expires).
    #[arg(long, default_value_t = 0.05)]
    pub abandon: f64,
    /// Fraction of admitted users who pay, then cancel with a refund.
    #[arg(long, default_value_t = 0.05)]
    pub cancel_later: f64,
    /// Most units per user (the sales policy's limit); each user wants 1..=this many.
    #[arg(long, default_value_t = 4)]
    pub max_per_user: u32,
    /// Most users admitted (ACTIVE) at once (the queue policy).
    #[arg(long, default_value_t = 1_000)]
    pub queue_max_active: u32,
    /// Most admissions per sliding minute (the queue policy).
    #[arg(long, default_value_t = 60_000)]
    pub queue_rate_per_minute: u32,
    /// Hold TTL in seconds (at least 2: the payment timeout must be shorter). Without
    /// --sim-clock, abandoned holds keep their units this long in real time, and the run
    /// waits for them while users still wait: use a short TTL there.
    #[arg(long, default_value_t = 300)]
    pub hold_ttl_secs: u64,
    /// Run on a simulated clock: time moves only when everybody who can act has acted
    /// (to let holds or admissions expire, or the admission rate window slide), so a
    /// 5-minute hold TTL costs nothing.
    #[arg(long)]
    pub sim_clock: bool,
    /// Seed of the behaviour and quantity of every user (same seed, same crowd).
    #[arg(long, default_value_t = 7)]
    pub seed: u64,
    /// Print the report as JSON on stdout (and no progress bar).
    #[arg(long)]
    pub json: bool,
    /// No progress bar.
    #[arg(long)]
    pub quiet: bool,
    /// Also draw admissions, holds and sales over time as an SVG to this file.
    #[arg(long, value_name = "FILE")]
    pub plot: Option<std::path::PathBuf>,
    /// HTTP mode: sell through the running `ticket-server` at this URL instead of the
    /// library in this process. The server must run with `--store redis|pg` (the same as
    /// `--store` here, with the same URL), a shared payment sandbox (`--sandbox-url`) and
    /// the same `--jwt-secret`; its rate limits should be off for a rush. The checks read
    /// the server's store (`--namespace`) and the sandbox directly.
    #[arg(long, value_name = "URL")]
    pub url: Option<String>,
    /// HTTP mode: the server's `--jwt-secret`, to sign the users' and the admin's tokens.
    #[arg(long, env = "JWT_SECRET", hide_env_values = true)]
    pub jwt_secret: Option<String>,
    /// HTTP mode: the payment sandbox the server uses (its `--payment-sandbox-url`); the
    /// checks list its intents and refunds.
    #[arg(long, env = "PAYMENT_SANDBOX_URL", value_name = "URL")]
    pub sandbox_url: Option<String>,
    /// HTTP mode: that sandbox's API key (`sk_test_…`, the server's `--payment-sandbox-key`).
    #[arg(long, env = "PAYMENT_SANDBOX_KEY", hide_env_values = true)]
    pub sandbox_key: Option<String>,
    /// HTTP mode: the server's `--namespace` (its Redis key prefix or PostgreSQL schema).
    #[arg(long, env = "NAMESPACE", default_value = "ticketrush")]
    pub namespace: String,
}

/// HTTP mode: the running server and what the checks need to read behind it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Remote {
    /// The server's base URL (`http://127.0.0.1:8080`).
    pub url: String,
    /// Its `--jwt-secret`.
    #[serde(skip_serializing, default)]
    pub jwt_secret: String,
    /// The payment sandbox it uses.
    pub sandbox_url: String,
    /// That sandbox's API key.
    #[serde(skip_serializing, default)]
    pub sandbox_key: String,
    /// Its `--namespace`.
    pub namespace: String,
}

/// A validated run configuration.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Config {
    /// Simulated buyers.
    pub users: u32,
    /// Units for sale (one `GA` grade).
    pub units: u32,
    /// Backend.
    pub store: StoreKind,
    /// Redis URL (used with [`StoreKind::Redis`]).
    pub redis_url: String,
    /// PostgreSQL URL (used with [`StoreKind::Pg`]).
    pub database_url: String,
    /// Keep the run's keys or schema.
    pub keep: bool,
    /// Worker tasks.
    pub workers: usize,
    /// Runtime threads the binary runs on (see [`Config::runtime_threads`]); 0 for the
    /// default. [`crate::run`] runs on its caller's runtime and ignores it.
    pub threads: usize,
    /// Behaviour of admitted users.
    pub mix: Mix,
    /// Per-user unit limit; users want `1..=max_per_user` units.
    pub max_per_user: u32,
    /// Concurrent ACTIVE admissions.
    pub queue_max_active: u32,
    /// Admissions per sliding minute.
    pub queue_rate_per_minute: u32,
    /// Hold TTL.
    pub hold_ttl: Duration,
    /// Simulated clock.
    pub sim_clock: bool,
    /// Behaviour seed.
    pub seed: u64,
    /// Show a progress bar on stderr.
    pub progress: bool,
    /// HTTP mode: sell through this server instead of the library in this process.
    pub remote: Option<Remote>,
}

impl Config {
    /// `users` buyers for `units` units on `store`, everything else at the command line's
    /// defaults (URLs from `REDIS_URL` / `DATABASE_URL` when set), no progress bar.
    pub fn new(users: u32, units: u32, store: StoreKind) -> Self {
        let args = Args::parse_from(["rush"]);
        Self {
            users,
            units,
            store,
            progress: false,
            ..Self::from_args_unchecked(args)
        }
    }

    fn from_args_unchecked(a: Args) -> Self {
        Self {
            users: a.users,
            units: a.units,
            store: a.store,
            redis_url: a.redis_url,
            database_url: a.database_url,
            keep: a.keep,
            workers: a.workers,
            threads: a.threads,
            mix: Mix {
                pay_success: a.pay_success,
                decline: a.decline,
                abandon: a.abandon,
                cancel_later: a.cancel_later,
            },
            max_per_user: a.max_per_user,
            queue_max_active: a.queue_max_active,
            queue_rate_per_minute: a.queue_rate_per_minute,
            hold_ttl: Duration::from_secs(a.hold_ttl_secs),
            sim_clock: a.sim_clock,
            seed: a.seed,
            progress: !(a.quiet || a.json),
            remote: a.url.map(|url| Remote {
                url,
                jwt_secret: a.jwt_secret.unwrap_or_default(),
                sandbox_url: a.sandbox_url.unwrap_or_default(),
                sandbox_key: a.sandbox_key.unwrap_or_default(),
                namespace: a.namespace,
            }),
        }
    }

    /// The binary's runtime threads: [`Config::threads`], or by default one for the memory
    /// backend and the machine's cores for Redis, PostgreSQL and HTTP mode.
    pub fn runtime_threads(&self) -> usize {
        match (self.threads, self.store) {
            (0, StoreKind::Memory) if self.remote.is_none() => 1,
            (0, _) => std::thread::available_parallelism().map_or(2, usize::from),
            (n, _) => n,
        }
    }

    /// Checks the settings as a whole.
    pub fn validate(&self) -> Result<(), RushError> {
        let bad = |m: &str| Err(RushError::Config(m.to_owned()));
        if self.users == 0 {
            return bad("--users must be at least 1");
        }
        if self.units == 0 || self.units > ticket_core::model::inventory::MAX_SESSION_CAPACITY {
            return bad("--units must be within 1..=10000000");
        }
        if self.workers == 0 {
            return bad("--workers must be at least 1");
        }
        if !(1..=ticket_core::model::hold::MAX_UNITS_PER_HOLD).contains(&self.max_per_user) {
            return bad("--max-per-user must be within 1..=100");
        }
        if self.queue_max_active == 0 || self.queue_rate_per_minute == 0 {
            return bad("--queue-max-active and --queue-rate-per-minute must be at least 1");
        }
        if self.hold_ttl < Duration::from_secs(2) {
            return bad("--hold-ttl-secs must be at least 2");
        }
        if let Some(r) = &self.remote {
            if !(r.url.starts_with("http://") || r.url.starts_with("https://")) {
                return bad("--url must be an http:// or https:// URL");
            }
            if self.store == StoreKind::Memory {
                return bad(
                    "--url needs --store redis or pg (the server's backend): the checks read the \
                     server's store, which a memory server keeps to itself",
                );
            }
            if r.jwt_secret.len() < ticket_server::services::auth::MIN_SECRET_LEN {
                return bad("--url needs the server's --jwt-secret (at least 32 bytes)");
            }
            if !r.sandbox_url.starts_with("http://") {
                return bad(
                    "--url needs --sandbox-url, the http:// payment sandbox the server uses \
                     (its --payment-sandbox-url): the checks list its payments",
                );
            }
            if payment_sandbox::auth::ApiKey::new(r.sandbox_key.as_str()).is_err() {
                return bad(
                    "--url needs --sandbox-key, the sk_test_… API key of the payment sandbox \
                     (the server's --payment-sandbox-key)",
                );
            }
            if self.sim_clock {
                return bad("--sim-clock runs in-process only: over HTTP the server's clock rules");
            }
        }
        self.mix.validate()
    }

    /// The library's time limits for this run: the hold TTL asked for, a payment timeout
    /// shorter than it (at most the default 2 min), the other limits at their defaults.
    pub fn time_limits(&self) -> ticket_core::TimeLimits {
        let defaults = ticket_core::TimeLimits::default();
        ticket_core::TimeLimits {
            hold_ttl: self.hold_ttl,
            payment_timeout: defaults
                .payment_timeout
                .min(self.hold_ttl - Duration::from_secs(1)),
            idempotency_retention: defaults.idempotency_retention.max(self.hold_ttl),
            ..defaults
        }
    }
}

impl TryFrom<Args> for Config {
    type Error = RushError;

    fn try_from(a: Args) -> Result<Self, RushError> {
        let c = Self::from_args_unchecked(a);
        c.validate()?;
        Ok(c)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_are_valid_and_fractions_must_add_up() {
        let c = Config::new(10, 5, StoreKind::Memory);
        c.validate().expect("defaults are valid");
        assert!(c.time_limits().validate().is_ok());
        let mut bad = c.clone();
        bad.mix.decline = 0.2;
        assert!(matches!(bad.validate(), Err(RushError::Config(_))));
        let mut short = c;
        short.hold_ttl = Duration::from_secs(2);
        assert!(short.time_limits().validate().is_ok());
    }

    #[test]
    fn http_mode_needs_what_its_checks_read() {
        let secret = "s".repeat(32);
        let args = |extra: &[&str]| {
            let mut all = vec!["rush", "--url", "http://127.0.0.1:8080", "--store", "redis"];
            all.extend_from_slice(extra);
            Config::try_from(Args::parse_from(all))
        };
        let full = [
            "--jwt-secret",
            &secret,
            "--sandbox-url",
            "http://127.0.0.1:8090",
            "--sandbox-key",
            "sk_test_0123456789abcdef01234567",
        ];
        let ok = args(&full).expect("complete HTTP settings are valid");
        assert_eq!(
            ok.remote.as_ref().map(|r| r.namespace.as_str()),
            Some("ticketrush")
        );
        let without = |skip: &str| {
            let kept: Vec<&str> = full
                .chunks(2)
                .filter(|kv| kv[0] != skip)
                .flatten()
                .copied()
                .collect();
            args(&kept)
        };
        for missing in ["--jwt-secret", "--sandbox-url", "--sandbox-key"] {
            let e = without(missing).expect_err(missing).to_string();
            assert!(e.contains(missing), "{e}");
        }
        let mut sim = full.to_vec();
        sim.push("--sim-clock");
        assert!(args(&sim).is_err(), "no simulated clock over HTTP");
        let memory = Config::try_from(Args::parse_from([
            "rush",
            "--url",
            "http://x",
            "--jwt-secret",
            &secret,
            "--sandbox-url",
            "http://y",
        ]));
        assert!(memory.expect_err("memory").to_string().contains("--store"));
        let not_http = Config::try_from(Args::parse_from([
            "rush",
            "--url",
            "ftp://x",
            "--store",
            "pg",
            "--jwt-secret",
            &secret,
            "--sandbox-url",
            "http://y",
        ]));
        assert!(not_http.is_err());
    }
}
