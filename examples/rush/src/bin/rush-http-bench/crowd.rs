//! `--scenario crowd`: an SSE crowd on one ticket-server. For each watcher count N, N users
//! join one session's queue and each watches `GET /api/sessions/{id}/queue/events`; once
//! every watcher has its first event, the queue admits a steady stream
//! (`--admit-per-sec`: the policy's per-minute cap is raised by that much every second, so
//! windows up to 60 s admit steadily) for `--duration-secs`. Reported per N: the backend's Redis
//! commands per second (from `INFO commandstats`, with the crowd idle and while admitting),
//! the p50/p99/max delay from an admission in the store to the watcher's `admitted` event,
//! SSE events per second, and the server's resident memory (`--watch-pid`, the first one).
//!
//! Many connections from one machine: the tool raises its own open-file limit to the hard
//! limit, and spreads its connections over loopback source addresses 127.0.0.1,
//! 127.0.0.2, … ([`PER_SOURCE`] each) so the ephemeral ports of one source address do not
//! run out. The server needs a file limit above N too (`ulimit -n` before starting it).

use std::net::{IpAddr, Ipv4Addr};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use hdrhistogram::Histogram;
use parking_lot::Mutex;
use serde::Serialize;
use serde_json::{Value, json};
use tokio::sync::Semaphore;
use tokio::task::JoinSet;

use crate::BenchError;
use crate::setup::{Tokens, admin_call, now_millis};

/// Connections per loopback source address.
pub const PER_SOURCE: usize = 20_000;

/// The pause between the last watcher's first event and the idle window.
const SETTLE: Duration = Duration::from_secs(3);

/// Stream requests awaiting their answer at once while the crowd connects.
const CONNECT_CONCURRENCY: usize = 256;

/// Joins in flight while the crowd forms.
const JOIN_CONCURRENCY: usize = 256;

/// One crowd's figures.
#[derive(Debug, Clone, Serialize)]
pub struct CrowdReport {
    /// Watchers connected.
    pub watchers: usize,
    /// Seconds it took every watcher to get its first event.
    pub connect_secs: f64,
    /// Redis commands per second with every watcher connected and the queue still.
    pub redis_commands_per_sec_idle: Option<f64>,
    /// Redis commands per second while the queue admitted.
    pub redis_commands_per_sec_admitting: Option<f64>,
    /// Admissions seen by their watchers in the window.
    pub admitted_seen: u64,
    /// Delay from the admission in the store to the watcher's `admitted` event, ms.
    pub delay_p50_ms: f64,
    /// The same, 99th percentile.
    pub delay_p99_ms: f64,
    /// The same, largest.
    pub delay_max_ms: f64,
    /// SSE events received per second in the window (all watchers).
    pub events_per_sec: f64,
    /// The server's resident memory at the end of the window, MiB (`--watch-pid`).
    pub server_rss_mib: Option<f64>,
}

impl CrowdReport {
    /// One line of text.
    pub fn to_text(&self) -> String {
        let opt = |v: Option<f64>| v.map_or("-".to_owned(), |v| format!("{v:.0}"));
        format!(
            "crowd {:>6} watchers: connected in {:.1} s; Redis cmd/s idle {} admitting {}; \
             admitted seen {} (delay p50 {:.0} ms, p99 {:.0} ms, max {:.0} ms); {:.0} events/s; \
             server RSS {} MiB\n",
            self.watchers,
            self.connect_secs,
            opt(self.redis_commands_per_sec_idle),
            opt(self.redis_commands_per_sec_admitting),
            self.admitted_seen,
            self.delay_p50_ms,
            self.delay_p99_ms,
            self.delay_max_ms,
            self.events_per_sec,
            self.server_rss_mib
                .map_or("-".to_owned(), |v| format!("{v:.0}")),
        )
    }
}

/// What a crowd run needs.
pub struct CrowdArgs<'a> {
    /// The server's base URL.
    pub base: &'a str,
    /// Token minting.
    pub tokens: Arc<Tokens>,
    /// Admissions per second while measuring.
    pub admit_per_sec: u32,
    /// The measured window.
    pub duration: Duration,
    /// The server's admission TTL (`--admission-ttl-secs`), to date admissions.
    pub admission_ttl: Duration,
    /// Redis to read `INFO commandstats` from, if any.
    pub redis_url: Option<&'a str>,
    /// The server's process id, for its RSS.
    pub server_pid: Option<u32>,
}

/// Raises this process's open-file limit to its hard limit; the limit now.
pub fn raise_file_limit() -> u64 {
    use rustix::process::{Resource, getrlimit, setrlimit};
    let mut limit = getrlimit(Resource::Nofile);
    if limit.current != limit.maximum {
        limit.current = limit.maximum;
        if let Err(e) = setrlimit(Resource::Nofile, limit) {
            eprintln!("rush-http-bench: cannot raise the open-file limit: {e}");
        }
    }
    getrlimit(Resource::Nofile).current.unwrap_or(u64::MAX)
}

/// The total of `calls=` over every command of `INFO commandstats`.
pub fn total_calls(info: &str) -> u64 {
    info.lines()
        .filter(|l| l.starts_with("cmdstat_"))
        .filter_map(|l| {
            l.split(',')
                .find_map(|f| f.split_once("calls=").map(|(_, n)| n))
                .and_then(|n| n.parse::<u64>().ok())
        })
        .sum()
}

async fn redis_calls(url: &str) -> Result<u64, BenchError> {
    let client = redis::Client::open(url).map_err(|e| BenchError::Setup(format!("redis: {e}")))?;
    let mut conn = client
        .get_multiplexed_async_connection()
        .await
        .map_err(|e| BenchError::Setup(format!("redis: {e}")))?;
    let info: String = redis::cmd("INFO")
        .arg("commandstats")
        .query_async(&mut conn)
        .await
        .map_err(|e| BenchError::Setup(format!("redis INFO: {e}")))?;
    Ok(total_calls(&info))
}

/// The resident memory of `pid`, MiB (Linux `/proc`).
fn rss_mib(pid: u32) -> Option<f64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let kb: f64 = status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))?
        .trim()
        .trim_end_matches("kB")
        .trim()
        .parse()
        .ok()?;
    Some(kb / 1024.0)
}

/// A session whose queue admits nobody yet (one a minute) from a line of up to `watchers`.
async fn crowd_session(
    client: &reqwest::Client,
    args: &CrowdArgs<'_>,
    watchers: usize,
) -> Result<(String, String), BenchError> {
    let admin = args.tokens.fresh("ADMIN")?;
    let now = now_millis()?;
    let day = 86_400_000;
    let capacity = u32::try_from(watchers * 2 + 10).unwrap_or(u32::MAX);
    let event = json!({
        "name": format!("rush-http-bench crowd {now}"),
        "sessions": [{
            "starts_at": now + 7 * day,
            "sales_open_at": now - 60_000,
            "sales_close_at": now + day,
            "grades": [{ "grade": "GA", "capacity": capacity, "price_minor": 50_000, "currency": "KRW" }],
        }],
    });
    let created = admin_call(
        client,
        reqwest::Method::POST,
        format!("{}/api/admin/events", args.base),
        &admin,
        &event,
    )
    .await?;
    let session = created["sessions"][0]["id"]
        .as_str()
        .ok_or_else(|| BenchError::Setup(format!("no session id: {created}")))?
        .to_owned();
    set_pace(client, args, &session, &admin, 1).await?;
    Ok((session, admin))
}

/// Sets the session's admissions per minute.
async fn set_pace(
    client: &reqwest::Client,
    args: &CrowdArgs<'_>,
    session: &str,
    admin: &str,
    per_minute: u32,
) -> Result<Value, BenchError> {
    let policy = json!({
        "max_units_per_user": null,
        "queue": {
            "require_admission": true,
            "max_active": 1_000_000,
            "max_admissions_per_minute": per_minute,
            "max_waiting": null,
        },
    });
    admin_call(
        client,
        reqwest::Method::PUT,
        format!("{}/api/admin/sessions/{session}/policy", args.base),
        admin,
        &policy,
    )
    .await
}

/// Shared counters of the watchers.
#[derive(Default)]
struct Tally {
    first: AtomicU64,
    failed: AtomicU64,
    events: AtomicU64,
    admitted: AtomicU64,
    delays: Mutex<Option<Histogram<u64>>>,
    measuring: std::sync::atomic::AtomicBool,
}

/// One watcher: reads its stream, counts events, dates its `admitted` event.
async fn watch(
    client: reqwest::Client,
    url: String,
    token: String,
    tally: Arc<Tally>,
    ttl_ms: i64,
    connecting: Arc<Semaphore>,
) {
    let failed = || {
        tally.failed.fetch_add(1, Ordering::Relaxed);
    };
    // A bounded number of connection attempts at once (the server's accept backlog).
    let permit = connecting.acquire_owned().await;
    let Ok(mut resp) = client
        .get(url)
        .header("authorization", format!("Bearer {token}"))
        .send()
        .await
    else {
        return failed();
    };
    drop(permit);
    if !resp.status().is_success() {
        return failed();
    }
    let mut text = String::new();
    let mut first = true;
    while let Ok(Some(chunk)) = resp.chunk().await {
        text.push_str(&String::from_utf8_lossy(&chunk));
        while let Some(end) = text.find("\n\n") {
            let block: String = text.drain(..end + 2).collect();
            let Some(event) = block.lines().find_map(|l| l.strip_prefix("event: ")) else {
                continue;
            };
            if first {
                first = false;
                tally.first.fetch_add(1, Ordering::Relaxed);
            }
            if tally.measuring.load(Ordering::Relaxed) {
                tally.events.fetch_add(1, Ordering::Relaxed);
            }
            if event == "admitted" {
                let data = block.lines().find_map(|l| l.strip_prefix("data: "));
                let expires = data
                    .and_then(|d| serde_json::from_str::<Value>(d).ok())
                    .and_then(|v| v["admission_expires_at"].as_i64());
                if let (Some(expires), Ok(now)) = (expires, now_millis()) {
                    let delay = u64::try_from(now - (expires - ttl_ms)).unwrap_or(0);
                    tally.admitted.fetch_add(1, Ordering::Relaxed);
                    if let Some(h) = tally.delays.lock().as_mut() {
                        let _ = h.record(delay);
                    }
                }
                return;
            }
        }
    }
}

/// Clients bound to loopback source addresses, [`PER_SOURCE`] connections each.
fn clients(watchers: usize) -> Result<Vec<reqwest::Client>, BenchError> {
    (0..watchers.div_ceil(PER_SOURCE).max(1))
        .map(|i| {
            let last = u8::try_from(i + 1).unwrap_or(u8::MAX);
            reqwest::Client::builder()
                .local_address(IpAddr::V4(Ipv4Addr::new(127, 0, 0, last)))
                .pool_idle_timeout(None)
                .tcp_nodelay(true)
                .build()
                .map_err(|e| BenchError::Setup(format!("HTTP client: {e}")))
        })
        .collect()
}

/// Runs one crowd of `watchers`.
pub async fn run(args: &CrowdArgs<'_>, watchers: usize) -> Result<CrowdReport, BenchError> {
    let control = crate::load::one_connection_client(Duration::from_secs(30))?;
    let (session, admin) = crowd_session(&control, args, watchers).await?;
    let queue = format!("{}/api/sessions/{session}/queue", args.base);
    // The crowd joins (admissions paused: one a minute).
    let pool = clients(watchers)?;
    let mut tokens = Vec::with_capacity(watchers);
    let gate = Arc::new(Semaphore::new(JOIN_CONCURRENCY));
    let mut joins = JoinSet::new();
    for i in 0..watchers {
        let token = args.tokens.fresh("USER")?;
        tokens.push(token.clone());
        let client = pool[i / PER_SOURCE].clone();
        let (url, gate) = (queue.clone(), gate.clone());
        joins.spawn(async move {
            let _permit = gate.acquire_owned().await;
            client
                .post(url)
                .header("authorization", format!("Bearer {token}"))
                .send()
                .await
                .map(|r| r.status())
        });
    }
    while let Some(joined) = joins.join_next().await {
        match joined {
            Ok(Ok(status)) if status.is_success() => {}
            other => return Err(BenchError::Setup(format!("a join failed: {other:?}"))),
        }
    }
    // Every watcher connects and gets its first event.
    let tally = Arc::new(Tally::default());
    *tally.delays.lock() = Histogram::new_with_bounds(1, 600_000, 3).ok();
    let ttl_ms = i64::try_from(args.admission_ttl.as_millis()).unwrap_or(i64::MAX);
    let started = Instant::now();
    let mut streams = JoinSet::new();
    let connecting = Arc::new(Semaphore::new(CONNECT_CONCURRENCY));
    for (i, token) in tokens.into_iter().enumerate() {
        streams.spawn(watch(
            pool[i / PER_SOURCE].clone(),
            format!("{queue}/events"),
            token,
            tally.clone(),
            ttl_ms,
            connecting.clone(),
        ));
    }
    let target = u64::try_from(watchers).unwrap_or(u64::MAX);
    while tally.first.load(Ordering::Relaxed) + tally.failed.load(Ordering::Relaxed) < target {
        if started.elapsed() > Duration::from_secs(600) {
            return Err(BenchError::Setup(format!(
                "only {} of {watchers} watchers connected in 10 min",
                tally.first.load(Ordering::Relaxed)
            )));
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let connect_secs = started.elapsed().as_secs_f64();
    let failed = tally.failed.load(Ordering::Relaxed);
    if failed > 0 {
        return Err(BenchError::Setup(format!(
            "{failed} of {watchers} watchers could not connect (the open-file limits?)"
        )));
    }
    // Let the last connections' requests settle before the idle window.
    tokio::time::sleep(SETTLE).await;
    // Idle: everyone watching, nobody admitted.
    let idle = args.duration / 2;
    let c0 = match args.redis_url {
        Some(url) => Some(redis_calls(url).await?),
        None => None,
    };
    tokio::time::sleep(idle).await;
    let c1 = match args.redis_url {
        Some(url) => Some(redis_calls(url).await?),
        None => None,
    };
    // Admitting: a steady stream for the window.
    tally.measuring.store(true, Ordering::Relaxed);
    let window = Instant::now();
    // The policy caps admissions in any 60 s window: raising the cap by `admit_per_sec`
    // every second admits a steady stream (for windows up to a minute).
    let mut allowed = 0u32;
    let mut second = 0u64;
    while window.elapsed() < args.duration {
        allowed = allowed.saturating_add(args.admit_per_sec);
        set_pace(&control, args, &session, &admin, allowed).await?;
        second += 1;
        let until = Duration::from_secs(second).min(args.duration);
        tokio::time::sleep(until.saturating_sub(window.elapsed())).await;
    }
    let c2 = match args.redis_url {
        Some(url) => Some(redis_calls(url).await?),
        None => None,
    };
    let took = window.elapsed().as_secs_f64();
    tally.measuring.store(false, Ordering::Relaxed);
    let _ = set_pace(&control, args, &session, &admin, 1).await;
    let rss = args.server_pid.and_then(rss_mib);
    streams.abort_all();
    let per_sec = |a: Option<u64>, b: Option<u64>, secs: f64| match (a, b) {
        (Some(a), Some(b)) => Some(b.saturating_sub(a) as f64 / secs),
        _ => None,
    };
    let delays = tally.delays.lock().take();
    let q = |p: f64| {
        delays
            .as_ref()
            .map_or(0.0, |h| h.value_at_quantile(p) as f64)
    };
    Ok(CrowdReport {
        watchers,
        connect_secs,
        redis_commands_per_sec_idle: per_sec(c0, c1, idle.as_secs_f64()),
        redis_commands_per_sec_admitting: per_sec(c1, c2, took),
        admitted_seen: tally.admitted.load(Ordering::Relaxed),
        delay_p50_ms: q(0.5),
        delay_p99_ms: q(0.99),
        delay_max_ms: delays.as_ref().map_or(0.0, |h| h.max() as f64),
        events_per_sec: tally.events.load(Ordering::Relaxed) as f64 / took,
        server_rss_mib: rss,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn commandstats_calls_are_summed() {
        let info = "# Commandstats\r\ncmdstat_get:calls=10,usec=5,usec_per_call=0.5\r\n\
                    cmdstat_evalsha:calls=32,usec=100,usec_per_call=3.1,rejected_calls=0\r\n";
        assert_eq!(total_calls(info), 42);
    }
}
