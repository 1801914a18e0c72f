//! The inbox in PostgreSQL: one table in the app's schema (`migrations/0005_inbox.sql`),
//! queries in `sql/*.sql`.

use std::time::Duration;

use async_trait::async_trait;
use sqlx::postgres::PgPool;
use ticket_core::{HoldId, TicketId, Timestamp, UserId};

use super::{InboxError, InboxStore, Item, ItemPage, NewItem, Result};

const ADD_SQL: &str = include_str!("sql/add.sql");
const PAGE_SQL: &str = include_str!("sql/page.sql");
const MARK_SQL: &str = include_str!("sql/mark.sql");

/// The inbox in PostgreSQL. Cheap to clone (a pool).
#[derive(Debug, Clone)]
pub struct PgInbox {
    pool: PgPool,
    schema: String,
}

fn db(e: sqlx::Error) -> InboxError {
    InboxError::Unavailable(Box::new(e))
}

/// `n, session_id, seq, at_ms, kind, hold_id, ticket_id, read`.
type Row = (
    i64,
    String,
    i64,
    i64,
    String,
    Option<String>,
    Option<String>,
    bool,
);

fn from_row(user: &UserId, row: Row) -> Result<Item> {
    let (n, session, seq, at, kind, hold, ticket, read) = row;
    let corrupt = |what: &str| InboxError::Corrupt(what.to_owned());
    Ok(Item {
        id: u64::try_from(n).map_err(|_| corrupt("n"))?,
        item: NewItem {
            user: user.clone(),
            session: session.parse().map_err(|_| corrupt("session_id"))?,
            seq: u64::try_from(seq).map_err(|_| corrupt("seq"))?,
            at: Timestamp::from_millis(at),
            kind,
            hold: hold
                .map(|h| h.parse::<HoldId>().map_err(|_| corrupt("hold_id")))
                .transpose()?,
            ticket: ticket
                .map(|t| t.parse::<TicketId>().map_err(|_| corrupt("ticket_id")))
                .transpose()?,
        },
        read,
    })
}

impl PgInbox {
    /// Connects a pool (3 connections) to `url` with `search_path` set to `schema`. Creates
    /// nothing: call [`PgInbox::migrate`].
    pub async fn connect(url: &str, schema: &str) -> Result<Self> {
        let options =
            crate::stores::support::pg::options(url, schema).map_err(InboxError::Invalid)?;
        let pool = crate::stores::support::pg::pool(options, 3, Duration::from_secs(5))
            .await
            .map_err(db)?;
        Ok(Self {
            pool,
            schema: schema.to_owned(),
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
impl InboxStore for PgInbox {
    async fn add(&self, item: &NewItem) -> Result<u64> {
        let n: i64 = sqlx::query_scalar(ADD_SQL)
            .bind(item.user.as_str())
            .bind(item.session.to_string())
            .bind(i64::try_from(item.seq).map_err(|_| InboxError::Corrupt("seq".into()))?)
            .bind(item.at.as_millis())
            .bind(&item.kind)
            .bind(item.hold.map(|h| h.to_string()))
            .bind(item.ticket.map(|t| t.to_string()))
            .fetch_one(&self.pool)
            .await
            .map_err(db)?;
        u64::try_from(n).map_err(|_| InboxError::Corrupt("n".into()))
    }

    async fn page(&self, user: &UserId, before: Option<u64>, limit: usize) -> Result<ItemPage> {
        let before = before.map_or(i64::MAX, |b| i64::try_from(b).unwrap_or(i64::MAX));
        let rows: Vec<Row> = sqlx::query_as(PAGE_SQL)
            .bind(user.as_str())
            .bind(before)
            .bind(i64::try_from(limit).unwrap_or(i64::MAX))
            .fetch_all(&self.pool)
            .await
            .map_err(db)?;
        let unread: i64 = sqlx::query_scalar(
            "SELECT count(*) FROM inbox WHERE user_id = $1 AND read_at_ms IS NULL",
        )
        .bind(user.as_str())
        .fetch_one(&self.pool)
        .await
        .map_err(db)?;
        Ok(ItemPage {
            items: rows
                .into_iter()
                .map(|r| from_row(user, r))
                .collect::<Result<_>>()?,
            unread: u64::try_from(unread).unwrap_or(0),
        })
    }

    async fn mark_read(&self, user: &UserId, id: u64) -> Result<Option<Item>> {
        let Ok(n) = i64::try_from(id) else {
            return Ok(None);
        };
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX));
        let row: Option<Row> = sqlx::query_as(MARK_SQL)
            .bind(user.as_str())
            .bind(n)
            .bind(now)
            .fetch_optional(&self.pool)
            .await
            .map_err(db)?;
        row.map(|r| from_row(user, r)).transpose()
    }
}
