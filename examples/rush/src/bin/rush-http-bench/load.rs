//! The closed loop: `clients` tasks, each with its own HTTP client holding one keep-alive
//! connection, sending the scenario's request, waiting for the whole answer, and sending
//! the next at once. Only requests that start and finish inside the measured window count;
//! answers outside 2xx are errors, counted by status, never successes.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use hdrhistogram::Histogram;
use reqwest::Url;
use reqwest::header::{AUTHORIZATION, CONTENT_TYPE, HeaderValue};

use crate::BenchError;
use crate::args::Scenario;
use crate::setup::{GRADE, Tokens};

/// Highest latency the histograms track, microseconds (longer ones are clamped to it).
const MAX_LATENCY_US: u64 = 120_000_000;

/// What every client of one measurement sends.
pub struct Target {
    /// The scenario (never `All`).
    pub scenario: Scenario,
    /// Its URL.
    url: Url,
    /// The hold body (same session, grade and quantity for every hold).
    hold_body: Option<String>,
    /// Mints a fresh user's token per hold.
    tokens: Arc<Tokens>,
}

impl Target {
    /// The target of `scenario` on the server at `base`; `session` is the benchmark's own
    /// (needed by `read` and `hold`).
    pub fn new(
        scenario: Scenario,
        base: &str,
        session: Option<&str>,
        tokens: Arc<Tokens>,
    ) -> Result<Self, BenchError> {
        let need = || {
            session.ok_or_else(|| BenchError::Setup(format!("{} needs a session", scenario.name())))
        };
        let (path, hold_body) = match scenario {
            Scenario::Ping => ("/api/ping".to_owned(), None),
            Scenario::Read => (format!("/api/sessions/{}", need()?), None),
            Scenario::Hold => {
                let body =
                    serde_json::json!({ "session_id": need()?, "grade": GRADE, "quantity": 1 });
                ("/api/holds".to_owned(), Some(body.to_string()))
            }
            Scenario::All => {
                return Err(BenchError::Setup("`all` is a list of scenarios".into()));
            }
            Scenario::Crowd => {
                return Err(BenchError::Setup(
                    "`crowd` is not a closed-loop scenario".into(),
                ));
            }
        };
        let url = Url::parse(&format!("{base}{path}"))
            .map_err(|e| BenchError::Setup(format!("the URL {base}{path}: {e}")))?;
        Ok(Self {
            scenario,
            url,
            hold_body,
            tokens,
        })
    }

    /// One request, ready to send (a hold's token is minted here, before its clock starts).
    fn request(&self, client: &reqwest::Client) -> Result<reqwest::RequestBuilder, BenchError> {
        Ok(match &self.hold_body {
            None => client.get(self.url.clone()),
            Some(body) => {
                let token = self.tokens.fresh("USER")?;
                let bearer = HeaderValue::from_str(&format!("Bearer {token}"))
                    .map_err(|e| BenchError::Setup(format!("token header: {e}")))?;
                let key = uuid::Uuid::now_v7().simple().to_string();
                client
                    .post(self.url.clone())
                    .header(AUTHORIZATION, bearer)
                    .header("idempotency-key", key)
                    .header(CONTENT_TYPE, HeaderValue::from_static("application/json"))
                    .body(body.clone())
            }
        })
    }
}

/// What one measurement saw.
#[derive(Debug)]
pub struct Tally {
    /// Latencies of the successful requests of the window, microseconds.
    pub latency: Histogram<u64>,
    /// Errors of the window by kind: the HTTP status (`"503"`), or `timeout`, `connect`,
    /// `transport` when no answer came.
    pub errors: BTreeMap<String, u64>,
    /// The same during the warm-up (not measured, but never hidden).
    pub warmup_errors: BTreeMap<String, u64>,
    /// The first error's status and answer, or its message.
    pub first_error: Option<String>,
}

impl Tally {
    fn new() -> Result<Self, BenchError> {
        Ok(Self {
            latency: Histogram::new_with_bounds(1, MAX_LATENCY_US, 3)
                .map_err(|e| BenchError::Setup(format!("histogram: {e}")))?,
            errors: BTreeMap::new(),
            warmup_errors: BTreeMap::new(),
            first_error: None,
        })
    }

    /// Adds `other` into this one.
    fn merge(&mut self, other: Tally) -> Result<(), BenchError> {
        self.latency
            .add(&other.latency)
            .map_err(|e| BenchError::Setup(format!("merging histograms: {e}")))?;
        for (k, n) in other.errors {
            *self.errors.entry(k).or_default() += n;
        }
        for (k, n) in other.warmup_errors {
            *self.warmup_errors.entry(k).or_default() += n;
        }
        if self.first_error.is_none() {
            self.first_error = other.first_error;
        }
        Ok(())
    }
}

/// An HTTP client that keeps exactly one connection: its task sends one request at a time,
/// so the connection is always idle when the next request starts and is reused.
pub fn one_connection_client(timeout: Duration) -> Result<reqwest::Client, BenchError> {
    reqwest::Client::builder()
        .pool_max_idle_per_host(1)
        .pool_idle_timeout(None)
        .tcp_nodelay(true)
        .timeout(timeout)
        .build()
        .map_err(|e| BenchError::Setup(format!("HTTP client: {e}")))
}

/// The error kind of a request that got no answer.
fn transport_kind(e: &reqwest::Error) -> &'static str {
    if e.is_timeout() {
        "timeout"
    } else if e.is_connect() {
        "connect"
    } else {
        "transport"
    }
}

/// Sends one request and reads its whole answer: `Ok(latency)` for a 2xx, else the error's
/// kind and a description.
async fn send(
    target: &Target,
    client: &reqwest::Client,
) -> Result<Result<Duration, (String, String)>, BenchError> {
    let request = target.request(client)?;
    let started = Instant::now();
    let outcome = match request.send().await {
        Ok(resp) => {
            let status = resp.status();
            match resp.bytes().await {
                Ok(_) if status.is_success() => Ok(started.elapsed()),
                Ok(body) => Err((
                    status.as_u16().to_string(),
                    format!("{status}: {}", String::from_utf8_lossy(&body)),
                )),
                Err(e) => Err((transport_kind(&e).to_owned(), crate::chain(&e))),
            }
        }
        Err(e) => Err((transport_kind(&e).to_owned(), crate::chain(&e))),
    };
    Ok(outcome)
}

/// One client's loop until `end`; counts what finished inside `[measure_from, end]`.
async fn client_loop(
    target: Arc<Target>,
    client: reqwest::Client,
    measure_from: Instant,
    end: Instant,
) -> Result<Tally, BenchError> {
    let mut tally = Tally::new()?;
    loop {
        let started = Instant::now();
        if started >= end {
            return Ok(tally);
        }
        let outcome = send(&target, &client).await?;
        let finished = Instant::now();
        let measured = started >= measure_from && finished <= end;
        match outcome {
            Ok(latency) if measured => {
                let us = u64::try_from(latency.as_micros()).unwrap_or(u64::MAX);
                tally.latency.saturating_record(us.clamp(1, MAX_LATENCY_US));
            }
            Ok(_) => {}
            Err((kind, message)) => {
                let map = if measured || finished > end {
                    &mut tally.errors
                } else {
                    &mut tally.warmup_errors
                };
                *map.entry(kind).or_default() += 1;
                tally.first_error.get_or_insert(message);
            }
        }
    }
}

/// What one measurement gives: the merged tally and the window's length.
pub struct Measured {
    /// Everything counted.
    pub tally: Tally,
    /// The measured window.
    pub window: Duration,
    /// CPU used by each watched process over the window, in cores (1.0 = one core busy).
    pub cpu: BTreeMap<String, f64>,
}

/// Runs `clients` closed-loop clients against `target`: `warmup`, then the measured
/// `duration` (the warm-up opens every connection before the window starts).
pub async fn measure(
    target: Arc<Target>,
    clients: usize,
    warmup: Duration,
    duration: Duration,
    timeout: Duration,
    watch: &[u32],
) -> Result<Measured, BenchError> {
    let start = Instant::now();
    let measure_from = start + warmup;
    let end = measure_from + duration;
    let mut tasks = Vec::with_capacity(clients);
    for _ in 0..clients {
        let client = one_connection_client(timeout)?;
        tasks.push(tokio::spawn(client_loop(
            target.clone(),
            client,
            measure_from,
            end,
        )));
    }
    // CPU use of the watched processes (and of this one) over the window.
    tokio::time::sleep_until(measure_from.into()).await;
    let before = crate::cpu::sample(watch);
    tokio::time::sleep_until(end.into()).await;
    let after = crate::cpu::sample(watch);
    let cpu = crate::cpu::cores_used(&before, &after, duration);

    let mut tally = Tally::new()?;
    for task in tasks {
        let one = task
            .await
            .map_err(|e| BenchError::Setup(format!("a client task failed: {e}")))??;
        tally.merge(one)?;
    }
    Ok(Measured {
        tally,
        window: duration,
        cpu,
    })
}

/// Sends one request of `target` and fails with its answer unless it succeeds: run before
/// each measurement, so a wrong secret or URL stops the run with the reason instead of
/// producing a table of errors.
pub async fn probe(target: &Target, timeout: Duration) -> Result<(), BenchError> {
    let client = one_connection_client(timeout)?;
    match send(target, &client).await? {
        Ok(_) => Ok(()),
        Err((_, message)) => Err(BenchError::Probe {
            scenario: target.scenario.name(),
            url: target.url.to_string(),
            message,
        }),
    }
}
