//! The in-app inbox: each user's notifications (their reservations confirmed, expired,
//! failed, cancelled or refunded; their admissions and their end), written by
//! [`InboxNotifier`], the example server's [`Notifier`], which a
//! `NotificationDispatcher` feeds from the change feed ([`crate::runtime::background`]), and
//! read with read marks (`GET /api/me/notifications`, `POST
//! /api/me/notifications/{id}/read`).
//!
//! Each notification is stored once per change and recipient (a repeated delivery of the
//! same change is a no-op), numbered in arrival order per store; pages run newest first,
//! strictly before a cursor (the number).
//!
//! | backend | how |
//! |---|---|
//! | [`MemoryInbox`] | maps in this process |
//! | [`RedisInbox`] | per user: a sorted set of numbers, a hash of bodies, a hash of change keys (the dedupe) and a set of unread numbers, written by one Lua script |
//! | [`PgInbox`] | one table, unique on (user, session, seq); read marks are a timestamp column |

mod memory;
mod pg;
mod redis;

use std::sync::Arc;

use async_trait::async_trait;
use ticket_core::service::{Notification, Notifier, NotifyError};
use ticket_core::{HoldId, SessionId, TicketId, Timestamp, UserId};

pub use self::redis::RedisInbox;
pub use memory::MemoryInbox;
pub use pg::PgInbox;

/// Why the inbox failed.
#[derive(Debug, thiserror::Error)]
pub enum InboxError {
    /// The configuration is unusable (a prefix, a schema, a URL).
    #[error("invalid inbox configuration: {0}")]
    Invalid(String),
    /// The store failed or did not answer.
    #[error("inbox store unavailable")]
    Unavailable(#[source] Box<dyn std::error::Error + Send + Sync>),
    /// The store holds something this code never writes.
    #[error("inbox store corrupt: {0}")]
    Corrupt(String),
}

/// Results of the inbox.
pub type Result<T> = std::result::Result<T, InboxError>;

/// A notification to store.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewItem {
    /// The recipient.
    pub user: UserId,
    /// The change's session.
    pub session: SessionId,
    /// The change's sequence in the session's feed.
    pub seq: u64,
    /// When the change happened.
    pub at: Timestamp,
    /// What happened (a change kind's name: `hold_confirmed`, `admitted`, …).
    pub kind: String,
    /// The reservation it is about.
    pub hold: Option<HoldId>,
    /// The queue ticket it is about.
    pub ticket: Option<TicketId>,
}

/// A stored notification.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Item {
    /// Its number (increasing in arrival order; the paging cursor and the id to mark read).
    pub id: u64,
    /// What was stored.
    pub item: NewItem,
    /// Whether the user marked it read.
    pub read: bool,
}

/// A page of a user's notifications, newest first.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ItemPage {
    /// The notifications.
    pub items: Vec<Item>,
    /// The user's unread notifications, all pages together.
    pub unread: u64,
}

/// Where notifications live.
#[async_trait]
pub trait InboxStore: Send + Sync + std::fmt::Debug {
    /// Stores `item` unless this (user, session, seq) is stored already; its number either
    /// way.
    async fn add(&self, item: &NewItem) -> Result<u64>;

    /// At most `limit` of `user`'s notifications numbered below `before` (all when `None`),
    /// newest first, and the unread count.
    async fn page(&self, user: &UserId, before: Option<u64>, limit: usize) -> Result<ItemPage>;

    /// Marks `user`'s notification `id` read (idempotent); `None` when they have no such
    /// notification.
    async fn mark_read(&self, user: &UserId, id: u64) -> Result<Option<Item>>;
}

/// The example server's [`Notifier`]: writes each notification into the recipient's inbox.
#[derive(Debug, Clone)]
pub struct InboxNotifier {
    store: Arc<dyn InboxStore>,
}

impl InboxNotifier {
    /// A notifier writing to `store`.
    pub fn new(store: Arc<dyn InboxStore>) -> Self {
        Self { store }
    }
}

#[async_trait]
impl Notifier for InboxNotifier {
    async fn notify(&self, n: &Notification) -> std::result::Result<(), NotifyError> {
        let item = NewItem {
            user: n.recipient().clone(),
            session: n.change.session,
            seq: n.change.seq,
            at: n.change.at,
            kind: n.change.kind.as_str().to_owned(),
            hold: n.change.hold(),
            ticket: n.change.ticket(),
        };
        self.store
            .add(&item)
            .await
            .map(|_| ())
            .map_err(|e| NotifyError(e.to_string()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn item(user: &str, seq: u64) -> NewItem {
        NewItem {
            user: UserId::new(user).expect("user"),
            session: SessionId::from_uuid(uuid::Uuid::from_u128(1)),
            seq,
            at: Timestamp::from_millis(1_700_000_000_000 + seq as i64),
            kind: "hold_confirmed".into(),
            hold: Some(HoldId::new_at(Timestamp::from_millis(2))),
            ticket: None,
        }
    }

    #[tokio::test]
    async fn memory_inbox_dedupes_pages_and_marks() {
        let inbox = MemoryInbox::new();
        let a = inbox.add(&item("a", 1)).await.expect("add");
        assert_eq!(inbox.add(&item("a", 1)).await.expect("again"), a);
        let b = inbox.add(&item("a", 2)).await.expect("add");
        inbox.add(&item("b", 3)).await.expect("add");
        let me = UserId::new("a").expect("user");
        let page = inbox.page(&me, None, 10).await.expect("page");
        assert_eq!(page.items.iter().map(|i| i.id).collect::<Vec<_>>(), [b, a]);
        assert_eq!(page.unread, 2);
        let older = inbox.page(&me, Some(b), 10).await.expect("page");
        assert_eq!(older.items.len(), 1);
        let marked = inbox.mark_read(&me, a).await.expect("mark").expect("mine");
        assert!(marked.read);
        assert!(inbox.mark_read(&me, a).await.expect("again").is_some());
        assert_eq!(inbox.page(&me, None, 10).await.expect("page").unread, 1);
        let other = UserId::new("b").expect("user");
        assert!(inbox.mark_read(&other, a).await.expect("mark").is_none());
    }
}
