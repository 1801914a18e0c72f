//! One queue watcher: a raw HTTP/1.1 connection reading `GET /api/sessions/{id}/queue/events`
//! (Server-Sent Events). Raw sockets instead of an HTTP client per watcher, so 50 000 of
//! them fit in the bench's memory, each bound to one of several loopback addresses so the
//! ephemeral ports of one address pair do not run out.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use parking_lot::Mutex;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpSocket;

use crate::setup::now_millis;

/// What every watcher adds to.
#[derive(Default)]
pub struct Tally {
    /// Watchers whose stream answered 200 and is open.
    pub connected: AtomicU64,
    /// Events received (any name).
    pub events: AtomicU64,
    /// `admitted` events received.
    pub admitted: AtomicU64,
    /// Streams that failed to open or ended with an error.
    pub failed: AtomicU64,
    /// Milliseconds from the admission in the store to the event's arrival, for admissions
    /// made after the watcher connected.
    pub delays: Mutex<Vec<u64>>,
    /// Whether delays are recorded now (the measured window).
    pub measuring: std::sync::atomic::AtomicBool,
}

/// Watches until the stream ends or the task is aborted.
pub async fn watch(
    local: std::net::IpAddr,
    server: SocketAddr,
    session: String,
    token: String,
    admission_ttl_ms: i64,
    tally: Arc<Tally>,
) {
    if run(local, server, &session, &token, admission_ttl_ms, &tally)
        .await
        .is_err()
    {
        tally.failed.fetch_add(1, Ordering::Relaxed);
    }
}

async fn run(
    local: std::net::IpAddr,
    server: SocketAddr,
    session: &str,
    token: &str,
    admission_ttl_ms: i64,
    tally: &Tally,
) -> std::io::Result<()> {
    let socket = TcpSocket::new_v4()?;
    socket.bind(SocketAddr::new(local, 0))?;
    let mut stream = socket.connect(server).await?;
    stream.set_nodelay(true)?;
    let request = format!(
        "GET /api/sessions/{session}/queue/events HTTP/1.1\r\nHost: {server}\r\nAuthorization: Bearer {token}\r\nAccept: text/event-stream\r\n\r\n"
    );
    stream.write_all(request.as_bytes()).await?;
    let connected_at = now_millis().unwrap_or(0);
    let mut buf = vec![0u8; 4096];
    let mut pending = String::new();
    let mut headers_done = false;
    let mut event = String::new();
    loop {
        let n = stream.read(&mut buf).await?;
        if n == 0 {
            return Ok(());
        }
        pending.push_str(&String::from_utf8_lossy(&buf[..n]));
        if !headers_done {
            let Some(end) = pending.find("\r\n\r\n") else {
                continue;
            };
            if !pending.starts_with("HTTP/1.1 200") {
                return Err(std::io::Error::other(
                    pending.lines().next().unwrap_or("").to_owned(),
                ));
            }
            tally.connected.fetch_add(1, Ordering::Relaxed);
            pending.drain(..end + 4);
            headers_done = true;
        }
        while let Some(nl) = pending.find('\n') {
            let line: String = pending.drain(..=nl).collect();
            let line = line.trim_end();
            if let Some(name) = line.strip_prefix("event:") {
                event = name.trim().to_owned();
            } else if let Some(data) = line.strip_prefix("data:") {
                tally.events.fetch_add(1, Ordering::Relaxed);
                if event == "admitted" {
                    tally.admitted.fetch_add(1, Ordering::Relaxed);
                    record_delay(data, connected_at, admission_ttl_ms, tally);
                }
                if matches!(
                    event.as_str(),
                    "admitted" | "expired" | "sold_out" | "error"
                ) {
                    return Ok(());
                }
            }
        }
    }
}

/// The admission instant is `admission_expires_at - admission_ttl`.
fn record_delay(data: &str, connected_at: i64, ttl_ms: i64, tally: &Tally) {
    let Ok(v) = serde_json::from_str::<serde_json::Value>(data.trim()) else {
        return;
    };
    let Some(expires) = v["admission_expires_at"].as_i64() else {
        return;
    };
    let admitted_at = expires - ttl_ms;
    let now = now_millis().unwrap_or(0);
    if admitted_at >= connected_at && tally.measuring.load(Ordering::Relaxed) {
        tally
            .delays
            .lock()
            .push(u64::try_from(now - admitted_at).unwrap_or(0));
    }
}
