//! The Redis use marks: one hash per hold.
//!
//! Keys: `<prefix>:tickets:{<hold id>}:used`, a hash with one field per used ticket (its
//! number within the hold) holding the mark as JSON `{"at": <epoch ms>, "by": "<gate>"}`.
//! The hold id in braces is the cluster hash tag, so a hold's marks share one slot.
//!
//! Marking is `HSETNX` of the ticket's field followed by `HGET` of it, in one
//! `MULTI`/`EXEC`: the field is written only when absent, and the reply carries the mark
//! that won, so racing gates on any number of processes get exactly one first use. Fields
//! are never overwritten or deleted by the store (only [`RedisTickets::delete_all`] removes
//! keys). The marks last as long as Redis keeps its data: run it with persistence (AOF) if a
//! restart must not forget which tickets were used.

use std::collections::{BTreeMap, HashMap};
use std::time::Duration;

use async_trait::async_trait;
use redis::aio::ConnectionManager;
use ticket_core::{HoldId, Timestamp};

use super::{Result, TicketError, TicketId, TicketStore, UseOutcome, UsedMark, check_gate};

/// How to reach Redis and where to keep the use marks.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RedisTicketsConfig {
    /// Connection URL, e.g. `redis://127.0.0.1:6379`.
    pub url: String,
    /// Prefix of every key (`<prefix>:tickets:…`); several deployments or tests can share one
    /// Redis under different prefixes. Must be 1..=128 bytes of letters, digits and `-_:.`.
    pub prefix: String,
    /// A call waiting longer than this for Redis fails with `Unavailable`.
    pub response_timeout: Duration,
    /// Connecting longer than this fails with `Unavailable`.
    pub connection_timeout: Duration,
}

impl RedisTicketsConfig {
    /// Defaults for `url`: prefix `ticketrush`, 5 s timeouts.
    pub fn new(url: impl Into<String>) -> Self {
        Self {
            url: url.into(),
            prefix: "ticketrush".into(),
            response_timeout: Duration::from_secs(5),
            connection_timeout: Duration::from_secs(5),
        }
    }

    /// The same settings under another key prefix.
    pub fn with_prefix(mut self, prefix: impl Into<String>) -> Self {
        self.prefix = prefix.into();
        self
    }
}

fn check_prefix(prefix: &str) -> Result<()> {
    crate::redis_support::check_prefix(prefix).map_err(TicketError::InvalidRequest)
}

/// The use marks in Redis. Cheap to clone (one multiplexed, self-reconnecting connection).
/// Every process using the same Redis and prefix sees the same marks.
#[derive(Clone)]
pub struct RedisTickets {
    conn: ConnectionManager,
    prefix: String,
}

impl std::fmt::Debug for RedisTickets {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RedisTickets")
            .field("prefix", &self.prefix)
            .finish_non_exhaustive()
    }
}

impl RedisTickets {
    /// Connects to `config.url` and checks Redis answers (`PING`).
    pub async fn connect(config: RedisTicketsConfig) -> Result<Self> {
        check_prefix(&config.prefix)?;
        let conn = crate::redis_support::connect(
            &config.url,
            config.response_timeout,
            config.connection_timeout,
        )
        .await
        .map_err(|e| match e {
            crate::redis_support::ConnectError::Url(m) => TicketError::InvalidRequest(m),
            crate::redis_support::ConnectError::Redis(e) => unavailable(e),
        })?;
        Self::with_connection(conn, config.prefix)
    }

    /// The marks on an existing connection (e.g. shared with the rest of the server), under
    /// `prefix` (checked as [`RedisTicketsConfig::prefix`]).
    pub fn with_connection(conn: ConnectionManager, prefix: impl Into<String>) -> Result<Self> {
        let prefix = prefix.into();
        check_prefix(&prefix)?;
        Ok(Self { conn, prefix })
    }

    /// The key prefix.
    pub fn prefix(&self) -> &str {
        &self.prefix
    }

    /// Deletes every use mark under this prefix (`SCAN` + `UNLINK`) and returns how many
    /// keys went. Irreversible, and not atomic with concurrent scans: for tests and tearing
    /// down a demo only.
    pub async fn delete_all(&self) -> Result<u64> {
        let mut conn = self.conn.clone();
        crate::redis_support::unlink_matching(&mut conn, &format!("{}:tickets:*", self.prefix))
            .await
            .map_err(unavailable)
    }

    fn key(&self, hold: HoldId) -> String {
        format!("{}:tickets:{{{hold}}}:used", self.prefix)
    }
}

fn unavailable(e: redis::RedisError) -> TicketError {
    TicketError::Unavailable(format!("redis: {e}"))
}

fn corrupt(what: &str) -> TicketError {
    TicketError::Unavailable(format!("redis: unreadable ticket data ({what})"))
}

fn parse_mark(text: &str) -> Result<UsedMark> {
    serde_json::from_str(text).map_err(|e| corrupt(&format!("mark: {e}")))
}

#[async_trait]
impl TicketStore for RedisTickets {
    async fn mark_used(&self, ticket: &TicketId, by: &str, now: Timestamp) -> Result<UseOutcome> {
        check_gate(by)?;
        let mark = UsedMark {
            at: now,
            by: by.to_owned(),
        };
        let json = serde_json::to_string(&mark)
            .map_err(|e| TicketError::Unavailable(format!("encoding a mark: {e}")))?;
        let key = self.key(ticket.hold());
        let field = ticket.number();
        let (written, stored): (bool, Option<String>) = redis::pipe()
            .atomic()
            .cmd("HSETNX")
            .arg(&key)
            .arg(field)
            .arg(&json)
            .cmd("HGET")
            .arg(&key)
            .arg(field)
            .query_async(&mut self.conn.clone())
            .await
            .map_err(unavailable)?;
        let stored = stored.ok_or_else(|| corrupt("mark missing right after HSETNX"))?;
        if written {
            return Ok(UseOutcome::FirstUse { at: now });
        }
        let first = parse_mark(&stored)?;
        Ok(UseOutcome::AlreadyUsed {
            at: first.at,
            by: first.by,
        })
    }

    async fn used(&self, tickets: &[TicketId]) -> Result<HashMap<TicketId, UsedMark>> {
        let mut by_hold: BTreeMap<HoldId, Vec<TicketId>> = BTreeMap::new();
        for t in tickets {
            by_hold.entry(t.hold()).or_default().push(*t);
        }
        if by_hold.is_empty() {
            return Ok(HashMap::new());
        }
        // One HMGET per hold, pipelined: each mark is written once, so reading them in one
        // round trip without MULTI is consistent per ticket.
        let mut pipe = redis::pipe();
        for (hold, ids) in &by_hold {
            let cmd = pipe.cmd("HMGET").arg(self.key(*hold));
            for t in ids {
                cmd.arg(t.number());
            }
        }
        let replies: Vec<Vec<Option<String>>> = pipe
            .query_async(&mut self.conn.clone())
            .await
            .map_err(unavailable)?;
        if replies.len() != by_hold.len() {
            return Err(corrupt("pipeline reply"));
        }
        let mut marks = HashMap::new();
        for ((_, ids), values) in by_hold.iter().zip(replies) {
            if values.len() != ids.len() {
                return Err(corrupt("HMGET reply"));
            }
            for (t, value) in ids.iter().zip(values) {
                if let Some(text) = value {
                    marks.insert(*t, parse_mark(&text)?);
                }
            }
        }
        Ok(marks)
    }
}
