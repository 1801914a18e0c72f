//! The security audit: a record of every refusal for abuse (a rate limit, a throttled login,
//! a blocked user), with who (the user, when known), why, from where (client IP), which route
//! and when, readable by admins newest first (`GET /api/admin/security-audit`).
//!
//! Bounded twice, so a flood cannot grow it or turn it into a store round trip per request:
//!
//! * **Retention**: each store keeps at most the newest `--security-audit-retain` records
//!   (default 100 000); older ones are dropped as new ones are written.
//! * **At most one record per key per window**: [`SecurityAudit::record`] writes a refusal
//!   only if no refusal with the same reason, route and actor (or client IP, for anonymous
//!   callers) was written by this process in the last `--security-audit-window-secs`
//!   (default 10 s); the others are counted as suppressed, not written. The window's keys
//!   live in this process (at most [`MAX_TRACKED_KEYS`]; when full, new keys are suppressed
//!   too until the window frees some), so each process writes at most
//!   `MAX_TRACKED_KEYS` records per window however hard it is flooded.
//!
//! | backend | how |
//! |---|---|
//! | [`MemoryAudit`] | a ring buffer in this process |
//! | [`RedisAudit`] | one stream, `XADD … MAXLEN = retain` (the id is the cursor) |
//! | [`PgAudit`] | one table; the insert and the trim of rows past `retain` are one statement |

mod memory;
mod pg;
mod redis;

use std::collections::HashMap;
use std::fmt;
use std::net::IpAddr;
use std::str::FromStr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use async_trait::async_trait;
use parking_lot::Mutex;
use ticket_core::Timestamp;

pub use self::redis::RedisAudit;
pub use memory::MemoryAudit;
pub use pg::PgAudit;

use crate::stores::accounts::UserId;

/// The most (reason, route, actor) keys one process remembers within a window.
pub const MAX_TRACKED_KEYS: usize = 10_000;

/// The longest `route` and `detail` kept, in bytes (longer ones are cut).
pub const MAX_TEXT_LEN: usize = 200;

/// Why a request was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum AbuseReason {
    /// A per-user or per-IP rate limit (429 `RATE_LIMITED`).
    RateLimited,
    /// An account's login backoff (429 `LOGIN_THROTTLED`).
    LoginThrottled,
    /// A blocked user (403).
    UserBlocked,
}

impl AbuseReason {
    /// Every reason.
    pub const ALL: [Self; 3] = [Self::RateLimited, Self::LoginThrottled, Self::UserBlocked];

    /// As the API spells it.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::RateLimited => "RATE_LIMITED",
            Self::LoginThrottled => "LOGIN_THROTTLED",
            Self::UserBlocked => "USER_BLOCKED",
        }
    }
}

impl FromStr for AbuseReason {
    type Err = AuditError;
    fn from_str(s: &str) -> Result<Self> {
        Self::ALL
            .into_iter()
            .find(|r| r.as_str() == s)
            .ok_or_else(|| AuditError::Corrupt(format!("reason {s:?}")))
    }
}

/// One refusal for abuse.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AbuseRecord {
    /// When.
    pub at: Timestamp,
    /// The user, when the request named one (a valid token, a known login email).
    pub actor: Option<UserId>,
    /// Why.
    pub reason: AbuseReason,
    /// The client's address (after `--trusted-proxies`), when known.
    pub client_ip: Option<IpAddr>,
    /// `METHOD /route/template`, e.g. `POST /api/auth/login`.
    pub route: String,
    /// Which limit, in a few words (e.g. `login per IP`).
    pub detail: String,
}

impl AbuseRecord {
    /// The record with `route` and `detail` cut to [`MAX_TEXT_LEN`] bytes.
    fn bounded(mut self) -> Self {
        for text in [&mut self.route, &mut self.detail] {
            if text.len() > MAX_TEXT_LEN {
                let mut end = MAX_TEXT_LEN;
                while !text.is_char_boundary(end) {
                    end -= 1;
                }
                text.truncate(end);
            }
        }
        self
    }
}

/// A record's place: `<ms>-<seq>` (a Redis stream id; elsewhere the record's time and
/// sequence number). Pages run strictly before a cursor.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct AuditCursor {
    /// The first part.
    pub ms: u64,
    /// The second part (the sequence number on memory and PostgreSQL).
    pub seq: u64,
}

/// The pattern of a cursor, for the API's schema.
pub const CURSOR_PATTERN: &str = "^[0-9]{1,19}-[0-9]{1,19}$";

impl FromStr for AuditCursor {
    type Err = AuditError;
    fn from_str(s: &str) -> Result<Self> {
        let bad = || AuditError::InvalidCursor(format!("{s:?} is not <digits>-<digits>"));
        let (a, b) = s.split_once('-').ok_or_else(bad)?;
        let part = |p: &str| {
            if p.is_empty() || p.len() > 19 || !p.bytes().all(|c| c.is_ascii_digit()) {
                return Err(bad());
            }
            p.parse::<u64>().map_err(|_| bad())
        };
        Ok(Self {
            ms: part(a)?,
            seq: part(b)?,
        })
    }
}

impl fmt::Display for AuditCursor {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}-{}", self.ms, self.seq)
    }
}

/// A stored record and its place.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredAbuse {
    /// Its place (pass it as the cursor to read older records).
    pub id: AuditCursor,
    /// The record.
    pub record: AbuseRecord,
}

/// What an audit store call can fail with.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum AuditError {
    /// The cursor is malformed.
    #[error("invalid cursor: {0}")]
    InvalidCursor(String),
    /// The configuration is unusable (a prefix, a schema, a URL).
    #[error("invalid security audit configuration: {0}")]
    Invalid(String),
    /// The store failed or did not answer.
    #[error("security audit store unavailable")]
    Unavailable(#[source] Box<dyn std::error::Error + Send + Sync>),
    /// The store holds something this code never writes.
    #[error("security audit store corrupt: {0}")]
    Corrupt(String),
}

/// Results of the audit.
pub type Result<T> = std::result::Result<T, AuditError>;

/// Where abuse records live.
#[async_trait]
pub trait SecurityAuditStore: Send + Sync + fmt::Debug {
    /// Appends `record` after every record already stored, and drops the oldest records past
    /// the store's retention. One atomic step (a record is stored whole or not at all).
    async fn append(&self, record: &AbuseRecord) -> Result<()>;

    /// At most `limit` records strictly older than `before` (all when `None`), newest first.
    async fn page(&self, before: Option<AuditCursor>, limit: usize) -> Result<Vec<StoredAbuse>>;
}

/// How a [`SecurityAudit::record`] call ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Recorded {
    /// Written to the store.
    Written,
    /// Not written: the same key was written within the window (or too many keys are).
    Suppressed,
    /// The store failed (logged); the refusal itself stands.
    Failed,
}

/// The audit as the server uses it: a store behind the per-window de-duplication.
#[derive(Debug)]
pub struct SecurityAudit {
    store: Arc<dyn SecurityAuditStore>,
    window_ms: i64,
    recent: Mutex<HashMap<(AbuseReason, String, String), i64>>,
    suppressed: AtomicU64,
}

impl SecurityAudit {
    /// `store`, writing at most one record per key per `window_ms`.
    pub fn new(store: Arc<dyn SecurityAuditStore>, window_ms: i64) -> Self {
        Self {
            store,
            window_ms: window_ms.max(1),
            recent: Mutex::new(HashMap::new()),
            suppressed: AtomicU64::new(0),
        }
    }

    /// Records a refusal for abuse: written unless a refusal with the same reason, route and
    /// actor (or client IP when there is no actor) was written within the window. Never
    /// fails the request: a store fault is logged and answered [`Recorded::Failed`].
    pub async fn record(&self, record: AbuseRecord) -> Recorded {
        let record = record.bounded();
        let who = match (&record.actor, &record.client_ip) {
            (Some(u), _) => format!("u:{u}"),
            (None, Some(ip)) => format!("ip:{ip}"),
            (None, None) => String::new(),
        };
        let key = (record.reason, record.route.clone(), who);
        let now = record.at.as_millis();
        {
            let mut recent = self.recent.lock();
            let fresh = |at: &i64| now - *at < self.window_ms;
            if recent.get(&key).is_some_and(fresh) {
                self.suppressed.fetch_add(1, Ordering::Relaxed);
                return Recorded::Suppressed;
            }
            if recent.len() >= MAX_TRACKED_KEYS {
                recent.retain(|_, at| fresh(at));
                if recent.len() >= MAX_TRACKED_KEYS {
                    self.suppressed.fetch_add(1, Ordering::Relaxed);
                    return Recorded::Suppressed;
                }
            }
            recent.insert(key, now);
        }
        match self.store.append(&record).await {
            Ok(()) => Recorded::Written,
            Err(e) => {
                tracing::warn!(
                    reason = record.reason.as_str(),
                    "security audit write failed: {e}"
                );
                Recorded::Failed
            }
        }
    }

    /// How many refusals were not written because of the window, since start.
    pub fn suppressed(&self) -> u64 {
        self.suppressed.load(Ordering::Relaxed)
    }

    /// At most `limit` records strictly older than `before`, newest first.
    pub async fn page(
        &self,
        before: Option<AuditCursor>,
        limit: usize,
    ) -> Result<Vec<StoredAbuse>> {
        self.store.page(before, limit).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn refusal(at: i64, ip: &str) -> AbuseRecord {
        AbuseRecord {
            at: Timestamp::from_millis(at),
            actor: None,
            reason: AbuseReason::RateLimited,
            client_ip: Some(ip.parse().unwrap()),
            route: "POST /api/auth/login".into(),
            detail: "login per IP".into(),
        }
    }

    #[tokio::test]
    async fn one_record_per_key_per_window() {
        let audit = SecurityAudit::new(Arc::new(MemoryAudit::new(100)), 10_000);
        assert_eq!(
            audit.record(refusal(0, "192.0.2.1")).await,
            Recorded::Written
        );
        for at in [1, 5_000, 9_999] {
            assert_eq!(
                audit.record(refusal(at, "192.0.2.1")).await,
                Recorded::Suppressed
            );
        }
        assert_eq!(
            audit.record(refusal(2, "192.0.2.2")).await,
            Recorded::Written
        );
        assert_eq!(
            audit.record(refusal(10_000, "192.0.2.1")).await,
            Recorded::Written
        );
        assert_eq!(audit.suppressed(), 3);
        assert_eq!(audit.page(None, 10).await.unwrap().len(), 3);
    }

    #[tokio::test]
    async fn the_window_remembers_a_bounded_number_of_keys() {
        let audit = SecurityAudit::new(Arc::new(MemoryAudit::new(5)), 60_000);
        for i in 0..MAX_TRACKED_KEYS + 50 {
            let mut r = refusal(0, "192.0.2.1");
            r.client_ip = Some(IpAddr::from(u32::try_from(i).unwrap().to_be_bytes()));
            audit.record(r).await;
        }
        assert_eq!(audit.suppressed(), 50);
        assert_eq!(audit.page(None, 100).await.unwrap().len(), 5, "retention");
    }

    #[test]
    fn cursors_parse_strictly_and_texts_are_cut() {
        let c: AuditCursor = "1700000000000-42".parse().unwrap();
        assert_eq!((c.ms, c.seq), (1_700_000_000_000, 42));
        assert_eq!(c.to_string(), "1700000000000-42");
        for bad in [
            "",
            "1",
            "-1",
            "1-",
            "a-1",
            "1-2-3",
            "12345678901234567890-1",
            "+1-2",
        ] {
            assert!(bad.parse::<AuditCursor>().is_err(), "{bad:?}");
        }
        let mut r = refusal(0, "192.0.2.1");
        r.route = "é".repeat(MAX_TEXT_LEN);
        assert!(r.bounded().route.len() <= MAX_TEXT_LEN);
    }
}
