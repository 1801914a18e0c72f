//! The security audit in PostgreSQL: one table in the app's schema
//! (`migrations/0004_security_audit.sql`); an append and the trim past the retention are one
//! statement (`sql/append.sql`), pages are read by the primary key (`sql/page.sql`).

use std::time::Duration;

use async_trait::async_trait;
use sqlx::postgres::PgPool;
use ticket_core::Timestamp;

use super::{AbuseRecord, AuditCursor, AuditError, Result, SecurityAuditStore, StoredAbuse};

const APPEND_SQL: &str = include_str!("sql/append.sql");
const PAGE_SQL: &str = include_str!("sql/page.sql");

/// The audit in PostgreSQL. Cheap to clone (a pool).
#[derive(Debug, Clone)]
pub struct PgAudit {
    pool: PgPool,
    schema: String,
    retain: i64,
}

fn db(e: sqlx::Error) -> AuditError {
    AuditError::Unavailable(Box::new(e))
}

fn corrupt(what: &str) -> AuditError {
    AuditError::Corrupt(what.to_owned())
}

/// `seq, at_ms, actor, reason, client_ip, route, detail`.
type Row = (
    i64,
    i64,
    Option<String>,
    String,
    Option<String>,
    String,
    String,
);

fn from_row((seq, at, actor, reason, ip, route, detail): Row) -> Result<StoredAbuse> {
    Ok(StoredAbuse {
        id: AuditCursor {
            ms: u64::try_from(at).unwrap_or(0),
            seq: u64::try_from(seq).map_err(|_| corrupt("seq"))?,
        },
        record: AbuseRecord {
            at: Timestamp::from_millis(at),
            actor: actor
                .map(|a| a.parse().map_err(|_| corrupt("actor")))
                .transpose()?,
            reason: reason.parse()?,
            client_ip: ip
                .map(|i| i.parse().map_err(|_| corrupt("client_ip")))
                .transpose()?,
            route,
            detail,
        },
    })
}

impl PgAudit {
    /// Connects a pool (3 connections) to `url` with `search_path` set to `schema`; the
    /// newest `retain` records are kept. Creates nothing: call [`PgAudit::migrate`].
    pub async fn connect(url: &str, schema: &str, retain: u64) -> Result<Self> {
        let options =
            crate::stores::support::pg::options(url, schema).map_err(AuditError::Invalid)?;
        let pool = crate::stores::support::pg::pool(options, 3, Duration::from_secs(5))
            .await
            .map_err(db)?;
        Ok(Self {
            pool,
            schema: schema.to_owned(),
            retain: i64::try_from(retain.max(1)).unwrap_or(i64::MAX),
        })
    }

    /// Creates the schema if needed and applies the app's migrations not applied yet
    /// ([`crate::stores::migrate`]). Safe at every start and from several processes at once.
    pub async fn migrate(&self) -> Result<()> {
        crate::stores::migrate(&self.pool, &self.schema)
            .await
            .map_err(db)
    }
}

#[async_trait]
impl SecurityAuditStore for PgAudit {
    async fn append(&self, record: &AbuseRecord) -> Result<()> {
        sqlx::query(APPEND_SQL)
            .bind(record.at.as_millis())
            .bind(record.actor.map(|a| a.to_string()))
            .bind(record.reason.as_str())
            .bind(record.client_ip.map(|ip| ip.to_string()))
            .bind(&record.route)
            .bind(&record.detail)
            .bind(self.retain)
            .execute(&self.pool)
            .await
            .map_err(db)?;
        Ok(())
    }

    async fn page(&self, before: Option<AuditCursor>, limit: usize) -> Result<Vec<StoredAbuse>> {
        let before = before.map_or(i64::MAX, |c| i64::try_from(c.seq).unwrap_or(i64::MAX));
        let rows: Vec<Row> = sqlx::query_as(PAGE_SQL)
            .bind(before)
            .bind(i64::try_from(limit).unwrap_or(i64::MAX))
            .fetch_all(&self.pool)
            .await
            .map_err(db)?;
        rows.into_iter().map(from_row).collect()
    }
}
