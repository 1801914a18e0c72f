//! The command line, and the checks that need more than clap.

use std::time::Duration;

use clap::{Parser, ValueEnum};

/// Shortest accepted `--jwt-secret`, bytes (the server refuses shorter ones too).
pub const MIN_SECRET_LEN: usize = 32;

/// Most closed-loop clients of one measurement (each holds a connection and a task).
pub const MAX_CLIENTS: usize = 4_096;

/// What one measurement sends.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, ValueEnum, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Scenario {
    /// `GET /api/ping`: the trivial handler, the baseline.
    Ping,
    /// `GET /api/sessions/{id}`: one session's live stock (two store reads).
    Read,
    /// `POST /api/holds`: 1 unit of `GA`, a fresh user and `Idempotency-Key` each time.
    Hold,
    /// `ping`, then `read`, then `hold`, back to back at each client count.
    All,
    /// An SSE crowd: `--watchers` users watch the queue while it admits `--admit-per-sec`
    /// (Redis commands/s, admission → event delay, events/s, server RSS). Not in `all`.
    Crowd,
}

impl Scenario {
    /// The measurements this choice runs, in order.
    pub fn steps(self) -> Vec<Scenario> {
        match self {
            Self::All => vec![Self::Ping, Self::Read, Self::Hold],
            one => vec![one],
        }
    }

    /// Its name on the command line and in reports.
    pub fn name(self) -> &'static str {
        match self {
            Self::Ping => "ping",
            Self::Read => "read",
            Self::Hold => "hold",
            Self::All => "all",
            Self::Crowd => "crowd",
        }
    }

    /// Whether it needs the benchmark's own event (created through the admin API).
    pub fn needs_session(self) -> bool {
        self.steps()
            .iter()
            .any(|s| !matches!(s, Self::Ping | Self::Crowd))
    }
}

/// `rush-http-bench`: closed-loop HTTP load on a running ticket-server.
#[derive(Debug, Clone, Parser)]
#[command(
    name = "rush-http-bench",
    version,
    about = "Closed-loop HTTP load on a running ticket-server: requests/s and HDR latency \
             percentiles of GET /api/ping (the baseline), GET /api/sessions/{id} and \
             POST /api/holds, each with its ratio to ping measured in the same run",
    long_about = None
)]
pub struct Args {
    /// The server's base URL.
    #[arg(
        long,
        env = "TICKET_SERVER_URL",
        default_value = "http://127.0.0.1:8080"
    )]
    pub url: String,
    /// The server's `--jwt-secret` (at least 32 bytes): access tokens are minted with it.
    #[arg(long, env = "JWT_SECRET", hide_env_values = true)]
    pub jwt_secret: String,
    /// What to measure.
    #[arg(long, value_enum, default_value = "all")]
    pub scenario: Scenario,
    /// Concurrent closed-loop clients, each with its own keep-alive connection; several
    /// (comma-separated) run one after the other, each with its own ping baseline.
    #[arg(long, value_delimiter = ',', default_value = "64")]
    pub clients: Vec<usize>,
    /// Measured seconds per scenario and client count.
    #[arg(long, default_value_t = 10)]
    pub duration_secs: u64,
    /// Seconds of load before each measurement starts (not counted, errors reported apart).
    #[arg(long, default_value_t = 2)]
    pub warmup_secs: u64,
    /// Worker threads of the client's runtime.
    #[arg(long, default_value_t = 2)]
    pub client_threads: usize,
    /// Longest one request may take, seconds (a timeout counts as an error).
    #[arg(long, default_value_t = 30)]
    pub timeout_secs: u64,
    /// Process ids (comma-separated) whose CPU use over each measurement is reported, read
    /// from `/proc` (Linux): typically the server's and Redis's.
    #[arg(long, value_delimiter = ',')]
    pub watch_pid: Vec<u32>,
    /// Print the report as JSON.
    #[arg(long)]
    pub json: bool,
    /// `crowd`: watcher counts (comma-separated), one crowd after the other.
    #[arg(long, value_delimiter = ',', default_value = "100")]
    pub watchers: Vec<usize>,
    /// `crowd`: admissions per second while measuring.
    #[arg(long, default_value_t = 20)]
    pub admit_per_sec: u32,
    /// `crowd`: the server's `--admission-ttl-secs` (dates each admission from its expiry).
    #[arg(long, default_value_t = 120)]
    pub admission_ttl_secs: u64,
    /// `crowd`: the server's Redis, whose `INFO commandstats` gives the commands per second.
    #[arg(long, env = "REDIS_URL")]
    pub redis_url: Option<String>,
}

/// Most watchers of one crowd.
pub const MAX_WATCHERS: usize = 200_000;

impl Args {
    /// Checks the values clap cannot; the message names the flag.
    pub fn validate(&self) -> Result<(), String> {
        if self.jwt_secret.len() < MIN_SECRET_LEN {
            return Err(format!(
                "--jwt-secret must be at least {MIN_SECRET_LEN} bytes (the server's secret)"
            ));
        }
        if self.clients.is_empty() || self.clients.iter().any(|&c| c == 0 || c > MAX_CLIENTS) {
            return Err(format!(
                "--clients must be 1 to {MAX_CLIENTS} (each of them)"
            ));
        }
        if self.watchers.is_empty() || self.watchers.iter().any(|&w| w == 0 || w > MAX_WATCHERS) {
            return Err(format!(
                "--watchers must be 1 to {MAX_WATCHERS} (each of them)"
            ));
        }
        if self.admit_per_sec == 0 || self.admit_per_sec > 100_000 {
            return Err("--admit-per-sec must be 1 to 100000".into());
        }
        if self.scenario == Scenario::Crowd && self.duration_secs > 60 {
            return Err("--duration-secs must be at most 60 with --scenario crowd".into());
        }
        if self.duration_secs == 0 {
            return Err("--duration-secs must be at least 1".into());
        }
        if self.client_threads == 0 || self.timeout_secs == 0 {
            return Err("--client-threads and --timeout-secs must be at least 1".into());
        }
        if !(self.url.starts_with("http://") || self.url.starts_with("https://")) {
            return Err("--url must be an http:// URL".into());
        }
        Ok(())
    }

    /// The server's base URL without a trailing slash.
    pub fn base_url(&self) -> &str {
        self.url.trim_end_matches('/')
    }

    /// The measured window of one scenario.
    pub fn duration(&self) -> Duration {
        Duration::from_secs(self.duration_secs)
    }

    /// The warm-up before it.
    pub fn warmup(&self) -> Duration {
        Duration::from_secs(self.warmup_secs)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SECRET: &str = "a-secret-of-at-least-thirty-two-bytes!!";

    fn parse(extra: &[&str]) -> Args {
        let mut argv = vec!["rush-http-bench", "--jwt-secret", SECRET];
        argv.extend_from_slice(extra);
        Args::try_parse_from(argv).expect("parses")
    }

    #[test]
    fn defaults_are_valid_and_run_every_scenario_at_64_clients() {
        let a = parse(&[]);
        assert!(a.validate().is_ok());
        assert_eq!(a.clients, vec![64]);
        assert_eq!(
            a.scenario.steps(),
            vec![Scenario::Ping, Scenario::Read, Scenario::Hold]
        );
        assert_eq!(a.base_url(), "http://127.0.0.1:8080");
    }

    #[test]
    fn client_lists_and_bad_values_are_checked() {
        assert_eq!(parse(&["--clients", "16,32,64"]).clients, vec![16, 32, 64]);
        assert!(parse(&["--clients", "16,0"]).validate().is_err());
        assert!(parse(&["--clients", "5000"]).validate().is_err());
        assert!(parse(&["--duration-secs", "0"]).validate().is_err());
        assert!(parse(&["--client-threads", "0"]).validate().is_err());
        assert!(parse(&["--url", "127.0.0.1:8080"]).validate().is_err());
        assert_eq!(parse(&["--url", "http://h:1/"]).base_url(), "http://h:1");
        let short = Args::try_parse_from(["rush-http-bench", "--jwt-secret", "short"]).unwrap();
        assert!(short.validate().unwrap_err().contains("--jwt-secret"));
        assert!(
            Args::try_parse_from(["rush-http-bench"]).is_err(),
            "no secret"
        );
        assert!(
            Args::try_parse_from(["rush-http-bench", "--jwt-secret", SECRET, "--scenario", "x"])
                .is_err()
        );
    }

    #[test]
    fn only_ping_needs_no_session() {
        assert!(!Scenario::Ping.needs_session());
        assert!(Scenario::Read.needs_session());
        assert!(Scenario::Hold.needs_session());
        assert!(Scenario::All.needs_session());
        assert!(!Scenario::Crowd.needs_session());
        let crowd = parse(&["--scenario", "crowd", "--watchers", "100,10000,50000"]);
        assert!(crowd.validate().is_ok());
        assert_eq!(crowd.watchers, vec![100, 10_000, 50_000]);
        assert!(parse(&["--watchers", "0"]).validate().is_err());
        assert!(parse(&["--admit-per-sec", "0"]).validate().is_err());
    }
}
