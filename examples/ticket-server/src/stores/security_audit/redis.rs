//! The security audit in Redis: one stream, `<prefix>:security_audit`. `XADD … MAXLEN =
//! retain` appends a record and trims the oldest past the retention in one command; the
//! stream id (`<ms>-<seq>`) is the record's cursor, and `XREVRANGE` reads pages newest
//! first.

use std::collections::HashMap;
use std::time::Duration;

use async_trait::async_trait;
use redis::aio::ConnectionManager;
use ticket_core::Timestamp;

use super::{AbuseRecord, AuditCursor, AuditError, Result, SecurityAuditStore, StoredAbuse};

/// The audit in Redis. Cheap to clone.
#[derive(Clone)]
pub struct RedisAudit {
    conn: ConnectionManager,
    key: String,
    retain: u64,
}

impl std::fmt::Debug for RedisAudit {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RedisAudit")
            .field("key", &self.key)
            .field("retain", &self.retain)
            .finish_non_exhaustive()
    }
}

fn unavailable(e: redis::RedisError) -> AuditError {
    AuditError::Unavailable(Box::new(e))
}

fn corrupt(what: &str) -> AuditError {
    AuditError::Corrupt(what.to_owned())
}

impl RedisAudit {
    /// Connects to `url` (checked with `PING`); records go to `<prefix>:security_audit`, the
    /// newest `retain` kept.
    pub async fn connect(url: &str, prefix: &str, retain: u64) -> Result<Self> {
        crate::stores::support::redis::check_prefix(prefix).map_err(AuditError::Invalid)?;
        let timeout = Duration::from_secs(5);
        let conn = crate::stores::support::redis::connect(url, timeout, timeout)
            .await
            .map_err(|e| match e {
                crate::stores::support::redis::ConnectError::Url(m) => AuditError::Invalid(m),
                crate::stores::support::redis::ConnectError::Redis(e) => unavailable(e),
            })?;
        Ok(Self {
            conn,
            key: format!("{prefix}:security_audit"),
            retain: retain.max(1),
        })
    }
}

fn parse(id: &str, mut fields: HashMap<String, String>) -> Result<StoredAbuse> {
    let cursor: AuditCursor = id.parse().map_err(|_| corrupt("stream id"))?;
    let mut take = |name: &str| fields.remove(name).ok_or_else(|| corrupt(name));
    let at: i64 = take("at")?.parse().map_err(|_| corrupt("at"))?;
    let actor = take("actor")?;
    let ip = take("ip")?;
    Ok(StoredAbuse {
        id: cursor,
        record: AbuseRecord {
            at: Timestamp::from_millis(at),
            actor: if actor.is_empty() {
                None
            } else {
                Some(actor.parse().map_err(|_| corrupt("actor"))?)
            },
            reason: take("reason")?.parse()?,
            client_ip: if ip.is_empty() {
                None
            } else {
                Some(ip.parse().map_err(|_| corrupt("ip"))?)
            },
            route: take("route")?,
            detail: take("detail")?,
        },
    })
}

#[async_trait]
impl SecurityAuditStore for RedisAudit {
    async fn append(&self, record: &AbuseRecord) -> Result<()> {
        let _: String = redis::cmd("XADD")
            .arg(&self.key)
            .arg("MAXLEN")
            .arg("=")
            .arg(self.retain)
            .arg("*")
            .arg("at")
            .arg(record.at.as_millis())
            .arg("actor")
            .arg(record.actor.map(|a| a.to_string()).unwrap_or_default())
            .arg("reason")
            .arg(record.reason.as_str())
            .arg("ip")
            .arg(
                record
                    .client_ip
                    .map(|ip| ip.to_string())
                    .unwrap_or_default(),
            )
            .arg("route")
            .arg(&record.route)
            .arg("detail")
            .arg(&record.detail)
            .query_async(&mut self.conn.clone())
            .await
            .map_err(unavailable)?;
        Ok(())
    }

    async fn page(&self, before: Option<AuditCursor>, limit: usize) -> Result<Vec<StoredAbuse>> {
        let end = match before {
            // Nothing is older than the first possible id.
            Some(AuditCursor { ms: 0, seq: 0 }) => return Ok(Vec::new()),
            Some(c) => format!("({c}"),
            None => "+".to_owned(),
        };
        if limit == 0 {
            return Ok(Vec::new());
        }
        let entries: Vec<(String, HashMap<String, String>)> = redis::cmd("XREVRANGE")
            .arg(&self.key)
            .arg(end)
            .arg("-")
            .arg("COUNT")
            .arg(limit)
            .query_async(&mut self.conn.clone())
            .await
            .map_err(unavailable)?;
        entries
            .into_iter()
            .map(|(id, fields)| parse(&id, fields))
            .collect()
    }
}
