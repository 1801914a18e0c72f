//! The PostgreSQL use marks: one row per used ticket.
//!
//! Table (in the store's own schema, created by [`PgTickets::migrate`]):
//! `ticket_uses (ticket_id PRIMARY KEY, hold_id, used_at_ms, used_by)`, with triggers that
//! refuse `UPDATE` and `DELETE` (a mark is written once and never changed).
//!
//! Marking is one `INSERT … ON CONFLICT (ticket_id) DO NOTHING RETURNING`: the primary key
//! lets exactly one of any number of racing inserts write the row (a racing insert waits for
//! the winner's commit and then does nothing), and only the writer gets a row back. The
//! others then read the winner's row, which can no longer change.

use std::collections::HashMap;
use std::time::Duration;

use async_trait::async_trait;
use sqlx::Row;
use sqlx::postgres::{PgConnectOptions, PgPool};
use ticket_core::Timestamp;

use super::{Result, TicketError, TicketId, TicketStore, UseOutcome, UsedMark, check_gate};

/// How to reach PostgreSQL and where to keep the use marks.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PgTicketsConfig {
    /// Connection URL, e.g. `postgres://postgres@127.0.0.1:5432/test`.
    pub url: String,
    /// Schema of the table, set as `search_path` on every connection of the pool; 1..=63
    /// lower-case letters, digits or `_`, not starting with a digit.
    pub schema: String,
    /// Connections in the pool.
    pub max_connections: u32,
    /// Waiting longer than this for a pooled connection fails with `Unavailable`.
    pub acquire_timeout: Duration,
}

impl PgTicketsConfig {
    /// Defaults for `url`: schema `ticketrush_tickets`, 5 connections, 5 s acquire timeout.
    pub fn new(url: impl Into<String>) -> Self {
        Self {
            url: url.into(),
            schema: "ticketrush_tickets".into(),
            max_connections: 5,
            acquire_timeout: Duration::from_secs(5),
        }
    }

    /// The same settings under another schema.
    pub fn with_schema(mut self, schema: impl Into<String>) -> Self {
        self.schema = schema.into();
        self
    }

    fn options(&self) -> Result<PgConnectOptions> {
        crate::pg_support::options(&self.url, &self.schema).map_err(TicketError::InvalidRequest)
    }
}

/// The use marks in PostgreSQL. Cheap to clone (a pool). Every process using the same
/// database and schema sees the same marks.
#[derive(Debug, Clone)]
pub struct PgTickets {
    pool: PgPool,
    config: PgTicketsConfig,
}

/// Schema DDL, idempotent; `{s}` is the quoted schema.
const DDL: &str = r#"
CREATE TABLE IF NOT EXISTS {s}.ticket_uses (
    ticket_id  text PRIMARY KEY CHECK (octet_length(ticket_id) BETWEEN 1 AND 64),
    hold_id    uuid NOT NULL,
    used_at_ms bigint NOT NULL,
    used_by    text NOT NULL CHECK (octet_length(used_by) BETWEEN 1 AND 256)
);
CREATE OR REPLACE FUNCTION {s}.ticket_uses_write_once() RETURNS trigger
    LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'ticket_uses is write-once: % refused', TG_OP;
END
$$;
DO $$
BEGIN
    IF NOT EXISTS (SELECT 1 FROM pg_trigger
                   WHERE tgrelid = '{s}.ticket_uses'::regclass
                     AND tgname = 'ticket_uses_no_update_or_delete') THEN
        CREATE TRIGGER ticket_uses_no_update_or_delete BEFORE UPDATE OR DELETE
            ON {s}.ticket_uses FOR EACH ROW EXECUTE FUNCTION {s}.ticket_uses_write_once();
    END IF;
END
$$;
"#;

impl PgTickets {
    /// Connects a pool with `search_path` set to `config.schema` and checks the server
    /// answers. Creates nothing: call [`PgTickets::migrate`] (idempotent) before use.
    pub async fn connect(config: PgTicketsConfig) -> Result<Self> {
        let options = config.options()?;
        let pool = crate::pg_support::pool(options, config.max_connections, config.acquire_timeout)
            .await
            .map_err(db_error)?;
        Ok(Self { pool, config })
    }

    /// The settings this store was connected with.
    pub fn config(&self) -> &PgTicketsConfig {
        &self.config
    }

    /// Creates the schema, table and triggers that do not exist yet; leaves existing ones
    /// (and their rows) alone. Safe to run at every start and from several processes at
    /// once (serialised by a transaction-scoped advisory lock).
    pub async fn migrate(&self) -> Result<()> {
        crate::pg_support::migrate(
            &self.pool,
            &self.config.schema,
            "ticketrush-tickets-migrate",
            DDL,
        )
        .await
        .map_err(db_error)
    }

    /// Drops the store's schema and everything in it. Irreversible: for tests and tearing
    /// down a demo only. Runs on a connection of its own, so it works after the pool closed.
    pub async fn drop_schema(config: &PgTicketsConfig) -> Result<()> {
        crate::pg_support::drop_schema(&config.options()?, &config.schema)
            .await
            .map_err(db_error)
    }

    /// Closes the pool (waits for connections in use to come back).
    pub async fn close(&self) {
        self.pool.close().await;
    }
}

fn db_error(e: sqlx::Error) -> TicketError {
    TicketError::Unavailable(format!("postgres: {e}"))
}

fn corrupt(what: &str) -> TicketError {
    TicketError::Unavailable(format!("postgres: unreadable ticket data ({what})"))
}

fn mark_from_row(row: &sqlx::postgres::PgRow) -> Result<UsedMark> {
    Ok(UsedMark {
        at: Timestamp::from_millis(row.try_get("used_at_ms").map_err(db_error)?),
        by: row.try_get("used_by").map_err(db_error)?,
    })
}

#[async_trait]
impl TicketStore for PgTickets {
    async fn mark_used(&self, ticket: &TicketId, by: &str, now: Timestamp) -> Result<UseOutcome> {
        check_gate(by)?;
        let s = &self.config.schema;
        let id = ticket.to_string();
        let inserted = sqlx::query(&format!(
            "INSERT INTO \"{s}\".ticket_uses (ticket_id, hold_id, used_at_ms, used_by) \
             VALUES ($1, $2::uuid, $3, $4) ON CONFLICT (ticket_id) DO NOTHING \
             RETURNING used_at_ms"
        ))
        .bind(&id)
        .bind(ticket.hold().to_string())
        .bind(now.as_millis())
        .bind(by)
        .fetch_optional(&self.pool)
        .await
        .map_err(db_error)?;
        if inserted.is_some() {
            return Ok(UseOutcome::FirstUse { at: now });
        }
        // The conflicting row is committed (ON CONFLICT waited for it) and write-once.
        let first = sqlx::query(&format!(
            "SELECT used_at_ms, used_by FROM \"{s}\".ticket_uses WHERE ticket_id = $1"
        ))
        .bind(&id)
        .fetch_optional(&self.pool)
        .await
        .map_err(db_error)?
        .ok_or_else(|| corrupt("mark missing after a conflict"))?;
        let first = mark_from_row(&first)?;
        Ok(UseOutcome::AlreadyUsed {
            at: first.at,
            by: first.by,
        })
    }

    async fn used(&self, tickets: &[TicketId]) -> Result<HashMap<TicketId, UsedMark>> {
        if tickets.is_empty() {
            return Ok(HashMap::new());
        }
        let s = &self.config.schema;
        let ids: Vec<String> = tickets.iter().map(ToString::to_string).collect();
        let rows = sqlx::query(&format!(
            "SELECT ticket_id, used_at_ms, used_by FROM \"{s}\".ticket_uses \
             WHERE ticket_id = ANY($1)"
        ))
        .bind(&ids)
        .fetch_all(&self.pool)
        .await
        .map_err(db_error)?;
        let mut marks = HashMap::with_capacity(rows.len());
        for row in &rows {
            let id: String = row.try_get("ticket_id").map_err(db_error)?;
            let id: TicketId = id.parse().map_err(|_| corrupt("ticket id"))?;
            marks.insert(id, mark_from_row(row)?);
        }
        Ok(marks)
    }
}
