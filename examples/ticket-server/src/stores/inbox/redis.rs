//! The inbox in Redis, per user under `<prefix>:inbox:<user>:`: `n` (the counter), `keys`
//! (change key → number), `items` (numbers, a sorted set), `bodies` (number → JSON) and
//! `unread` (a set of numbers). Each operation is one Lua script (`lua/*.lua`).

use std::time::Duration;

use async_trait::async_trait;
use redis::Script;
use redis::aio::ConnectionManager;
use serde::{Deserialize, Serialize};
use ticket_core::{HoldId, SessionId, TicketId, Timestamp, UserId};

use super::{InboxError, InboxStore, Item, ItemPage, NewItem, Result};

const ADD_LUA: &str = include_str!("lua/add.lua");
const PAGE_LUA: &str = include_str!("lua/page.lua");
const MARK_LUA: &str = include_str!("lua/mark.lua");

/// The inbox in Redis. Cheap to clone.
#[derive(Clone)]
pub struct RedisInbox {
    conn: ConnectionManager,
    prefix: String,
    add: Script,
    page: Script,
    mark: Script,
}

impl std::fmt::Debug for RedisInbox {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RedisInbox")
            .field("prefix", &self.prefix)
            .finish_non_exhaustive()
    }
}

fn unavailable(e: redis::RedisError) -> InboxError {
    InboxError::Unavailable(Box::new(e))
}

/// A notification's body as stored.
#[derive(Debug, Serialize, Deserialize)]
struct Body {
    session: SessionId,
    seq: u64,
    at: i64,
    kind: String,
    hold: Option<HoldId>,
    ticket: Option<TicketId>,
}

impl RedisInbox {
    /// Connects to `url` (checked with `PING`); keys go under `<prefix>:inbox:`.
    pub async fn connect(url: &str, prefix: &str) -> Result<Self> {
        crate::stores::support::redis::check_prefix(prefix).map_err(InboxError::Invalid)?;
        let timeout = Duration::from_secs(5);
        let conn = crate::stores::support::redis::connect(url, timeout, timeout)
            .await
            .map_err(|e| match e {
                crate::stores::support::redis::ConnectError::Url(m) => InboxError::Invalid(m),
                crate::stores::support::redis::ConnectError::Redis(e) => unavailable(e),
            })?;
        Ok(Self {
            conn,
            prefix: prefix.to_owned(),
            add: Script::new(ADD_LUA),
            page: Script::new(PAGE_LUA),
            mark: Script::new(MARK_LUA),
        })
    }

    fn key(&self, user: &UserId, what: &str) -> String {
        format!("{}:inbox:{}:{what}", self.prefix, user.as_str())
    }

    fn item(user: &UserId, id: u64, body: &str, read: bool) -> Result<Item> {
        let b: Body = serde_json::from_str(body)
            .map_err(|e| InboxError::Corrupt(format!("notification {id}: {e}")))?;
        Ok(Item {
            id,
            item: NewItem {
                user: user.clone(),
                session: b.session,
                seq: b.seq,
                at: Timestamp::from_millis(b.at),
                kind: b.kind,
                hold: b.hold,
                ticket: b.ticket,
            },
            read,
        })
    }
}

#[async_trait]
impl InboxStore for RedisInbox {
    async fn add(&self, item: &NewItem) -> Result<u64> {
        let body = serde_json::to_string(&Body {
            session: item.session,
            seq: item.seq,
            at: item.at.as_millis(),
            kind: item.kind.clone(),
            hold: item.hold,
            ticket: item.ticket,
        })
        .map_err(|e| InboxError::Corrupt(e.to_string()))?;
        let u = &item.user;
        self.add
            .key(self.key(u, "n"))
            .key(self.key(u, "keys"))
            .key(self.key(u, "items"))
            .key(self.key(u, "bodies"))
            .key(self.key(u, "unread"))
            .arg(format!("{}:{}", item.session, item.seq))
            .arg(body)
            .invoke_async(&mut self.conn.clone())
            .await
            .map_err(unavailable)
    }

    async fn page(&self, user: &UserId, before: Option<u64>, limit: usize) -> Result<ItemPage> {
        let bound = before.map_or_else(|| "+inf".to_owned(), |b| format!("({b}"));
        let out: Vec<String> = self
            .page
            .key(self.key(user, "items"))
            .key(self.key(user, "bodies"))
            .key(self.key(user, "unread"))
            .arg(bound)
            .arg(limit)
            .invoke_async(&mut self.conn.clone())
            .await
            .map_err(unavailable)?;
        let corrupt = || InboxError::Corrupt("page".into());
        let (unread, rest) = out.split_first().ok_or_else(corrupt)?;
        let unread = unread.parse().map_err(|_| corrupt())?;
        let items = rest
            .chunks(3)
            .map(|c| match c {
                [n, body, unread] => {
                    let n = n.parse().map_err(|_| corrupt())?;
                    Self::item(user, n, body, unread == "0")
                }
                _ => Err(corrupt()),
            })
            .collect::<Result<Vec<_>>>()?;
        Ok(ItemPage { items, unread })
    }

    async fn mark_read(&self, user: &UserId, id: u64) -> Result<Option<Item>> {
        let body: Option<String> = self
            .mark
            .key(self.key(user, "bodies"))
            .key(self.key(user, "unread"))
            .arg(id)
            .invoke_async(&mut self.conn.clone())
            .await
            .map_err(unavailable)?;
        body.map(|b| Self::item(user, id, &b, true)).transpose()
    }
}
