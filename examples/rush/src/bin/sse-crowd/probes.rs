//! What the crowd bench reads beside the server: Redis's command counters and a process's
//! resident memory.

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use crate::BenchError;

/// Total calls of every command Redis has served, from `INFO commandstats`.
pub async fn redis_calls(addr: &str) -> Result<u64, BenchError> {
    let fail = |e: std::io::Error| BenchError::Setup(format!("INFO commandstats at {addr}: {e}"));
    let mut s = TcpStream::connect(addr).await.map_err(fail)?;
    s.write_all(b"INFO commandstats\r\n").await.map_err(fail)?;
    let mut out = Vec::new();
    let mut buf = [0u8; 8192];
    // A bulk reply: `$<len>\r\n<body>\r\n`.
    loop {
        let n = s.read(&mut buf).await.map_err(fail)?;
        if n == 0 {
            break;
        }
        out.extend_from_slice(&buf[..n]);
        let text = String::from_utf8_lossy(&out);
        if let Some(header_end) = text.find("\r\n") {
            let len: usize = text[1..header_end].parse().unwrap_or(0);
            if out.len() >= header_end + 2 + len {
                break;
            }
        }
    }
    let text = String::from_utf8_lossy(&out);
    Ok(text
        .lines()
        .filter(|l| l.starts_with("cmdstat_"))
        .filter_map(|l| {
            l.split(':')
                .nth(1)?
                .split(',')
                .find_map(|kv| kv.strip_prefix("calls="))?
                .parse::<u64>()
                .ok()
        })
        .sum())
}

/// Resident memory of `pid` in bytes (`VmRSS`).
pub fn rss_bytes(pid: u32) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let kb: u64 = status
        .lines()
        .find(|l| l.starts_with("VmRSS:"))?
        .split_whitespace()
        .nth(1)?
        .parse()
        .ok()?;
    Some(kb * 1024)
}

/// The soft limit on open files of this process (from `/proc/self/limits`).
pub fn open_file_limit() -> Option<u64> {
    let limits = std::fs::read_to_string("/proc/self/limits").ok()?;
    limits
        .lines()
        .find(|l| l.starts_with("Max open files"))?
        .split_whitespace()
        .nth(3)?
        .parse()
        .ok()
}
