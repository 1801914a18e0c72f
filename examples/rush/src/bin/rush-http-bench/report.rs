//! The report: per client count and scenario, requests per second, latency percentiles,
//! errors by kind and the ratio to `ping` measured in the same run; as text or JSON.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use serde::Serialize;

use crate::args::Scenario;
use crate::load::Measured;

/// One scenario at one client count.
#[derive(Debug, Clone, Serialize)]
pub struct ScenarioReport {
    /// What was sent.
    pub scenario: Scenario,
    /// Concurrent closed-loop clients (connections).
    pub clients: usize,
    /// Successful (2xx) requests started and finished in the window.
    pub requests: u64,
    /// `requests` per second of the window.
    pub requests_per_sec: f64,
    /// Latency percentiles and maximum of the successful requests, milliseconds.
    pub p50_ms: f64,
    /// 95th percentile, ms.
    pub p95_ms: f64,
    /// 99th percentile, ms.
    pub p99_ms: f64,
    /// Slowest, ms.
    pub max_ms: f64,
    /// Errors in the window by HTTP status (`"503"`) or `timeout`, `connect`, `transport`.
    pub errors: BTreeMap<String, u64>,
    /// Errors during the warm-up, by the same kinds.
    pub warmup_errors: BTreeMap<String, u64>,
    /// The first error's status and answer, or message.
    pub first_error: Option<String>,
    /// `requests_per_sec` over the same run's `ping` at the same client count; `None` when
    /// the run measured no clean `ping` there.
    pub ratio_to_ping: Option<f64>,
    /// Cores used over the window by this client and each watched process.
    pub cpu_cores: BTreeMap<String, f64>,
}

impl ScenarioReport {
    /// The report of one measurement (its ratio is filled by [`fill_ratios`]).
    pub fn new(scenario: Scenario, clients: usize, m: Measured) -> Self {
        let h = &m.tally.latency;
        let ms = |us: u64| us as f64 / 1_000.0;
        let requests = h.len();
        let secs = m.window.as_secs_f64();
        Self {
            scenario,
            clients,
            requests,
            requests_per_sec: if secs > 0.0 {
                requests as f64 / secs
            } else {
                0.0
            },
            p50_ms: ms(h.value_at_quantile(0.50)),
            p95_ms: ms(h.value_at_quantile(0.95)),
            p99_ms: ms(h.value_at_quantile(0.99)),
            max_ms: ms(h.max()),
            errors: m.tally.errors.clone(),
            warmup_errors: m.tally.warmup_errors.clone(),
            first_error: m.tally.first_error.clone(),
            ratio_to_ping: None,
            cpu_cores: m.cpu,
        }
    }

    /// Errors in the measured window.
    pub fn error_count(&self) -> u64 {
        self.errors.values().sum()
    }
}

/// Sets each report's ratio to the `ping` of the same client count: `rps / ping rps`. A
/// `ping` with errors or no request is no baseline: the ratios of its client count stay
/// `None`.
pub fn fill_ratios(reports: &mut [ScenarioReport]) {
    let baselines: BTreeMap<usize, f64> = reports
        .iter()
        .filter(|r| r.scenario == Scenario::Ping && r.error_count() == 0 && r.requests > 0)
        .map(|r| (r.clients, r.requests_per_sec))
        .collect();
    for r in reports.iter_mut() {
        r.ratio_to_ping = baselines
            .get(&r.clients)
            .map(|ping| r.requests_per_sec / ping);
    }
}

/// The whole run.
#[derive(Debug, Clone, Serialize)]
pub struct Report {
    /// The server.
    pub url: String,
    /// When the run started, ms since the Unix epoch.
    pub started_at_unix_ms: i64,
    /// Measured seconds per scenario.
    pub duration_secs: u64,
    /// Warm-up seconds before each.
    pub warmup_secs: u64,
    /// Worker threads of the client.
    pub client_threads: usize,
    /// The benchmark's session (`read` and `hold`), when one was made.
    pub session_id: Option<String>,
    /// Every measurement, in the order run.
    pub results: Vec<ScenarioReport>,
}

impl Report {
    /// Errors in every measured window.
    pub fn error_count(&self) -> u64 {
        self.results.iter().map(ScenarioReport::error_count).sum()
    }

    /// A table for people, then the errors in detail.
    pub fn to_text(&self) -> String {
        let mut out = String::new();
        let _ = writeln!(
            out,
            "rush-http-bench: {}, {} s measured after {} s warm-up per scenario, client runtime {} thread(s)",
            self.url, self.duration_secs, self.warmup_secs, self.client_threads
        );
        let _ = writeln!(
            out,
            "{:>7}  {:<5} {:>10} {:>8} {:>8} {:>8} {:>8} {:>7} {:>7}  cpu (cores)",
            "clients", "scen.", "req/s", "p50 ms", "p95 ms", "p99 ms", "max ms", "errors", "/ping"
        );
        for r in &self.results {
            let ratio = r
                .ratio_to_ping
                .map_or_else(|| "-".to_owned(), |x| format!("{x:.3}"));
            let cpu: Vec<String> = r
                .cpu_cores
                .iter()
                .map(|(name, cores)| format!("{name} {cores:.2}"))
                .collect();
            let _ = writeln!(
                out,
                "{:>7}  {:<5} {:>10.0} {:>8.2} {:>8.2} {:>8.2} {:>8.1} {:>7} {:>7}  {}",
                r.clients,
                r.scenario.name(),
                r.requests_per_sec,
                r.p50_ms,
                r.p95_ms,
                r.p99_ms,
                r.max_ms,
                r.error_count(),
                ratio,
                cpu.join(", ")
            );
        }
        for r in &self.results {
            if r.errors.is_empty() && r.warmup_errors.is_empty() {
                continue;
            }
            let _ = writeln!(
                out,
                "errors, {} at {} clients: window {:?}, warm-up {:?}; first: {}",
                r.scenario.name(),
                r.clients,
                r.errors,
                r.warmup_errors,
                r.first_error.as_deref().unwrap_or("-")
            );
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn report(scenario: Scenario, clients: usize, rps: f64, errors: u64) -> ScenarioReport {
        ScenarioReport {
            scenario,
            clients,
            requests: rps as u64,
            requests_per_sec: rps,
            p50_ms: 1.0,
            p95_ms: 2.0,
            p99_ms: 3.0,
            max_ms: 4.0,
            errors: if errors > 0 {
                BTreeMap::from([("503".to_owned(), errors)])
            } else {
                BTreeMap::new()
            },
            warmup_errors: BTreeMap::new(),
            first_error: None,
            ratio_to_ping: None,
            cpu_cores: BTreeMap::new(),
        }
    }

    #[test]
    fn ratios_are_taken_against_the_ping_of_the_same_client_count() {
        let mut rs = vec![
            report(Scenario::Ping, 16, 10_000.0, 0),
            report(Scenario::Read, 16, 5_000.0, 0),
            report(Scenario::Hold, 16, 2_500.0, 0),
            report(Scenario::Ping, 64, 20_000.0, 0),
            report(Scenario::Hold, 64, 4_000.0, 0),
        ];
        fill_ratios(&mut rs);
        let ratios: Vec<Option<f64>> = rs.iter().map(|r| r.ratio_to_ping).collect();
        assert_eq!(
            ratios,
            vec![Some(1.0), Some(0.5), Some(0.25), Some(1.0), Some(0.2)]
        );
    }

    #[test]
    fn no_clean_ping_no_ratio() {
        let mut rs = vec![
            report(Scenario::Ping, 16, 10_000.0, 3),
            report(Scenario::Hold, 16, 2_500.0, 0),
            report(Scenario::Hold, 32, 2_500.0, 0),
        ];
        fill_ratios(&mut rs);
        assert!(rs.iter().all(|r| r.ratio_to_ping.is_none()));
        let text = Report {
            url: "http://x".into(),
            started_at_unix_ms: 0,
            duration_secs: 1,
            warmup_secs: 0,
            client_threads: 1,
            session_id: None,
            results: rs,
        };
        assert_eq!(text.error_count(), 3);
        let shown = text.to_text();
        assert!(shown.contains("errors, ping at 16 clients"), "{shown}");
    }
}
