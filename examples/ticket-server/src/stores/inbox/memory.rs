//! The inbox in this process's memory.

use std::collections::{BTreeMap, HashMap};

use async_trait::async_trait;
use parking_lot::Mutex;
use ticket_core::{SessionId, UserId};

use super::{InboxStore, Item, ItemPage, NewItem, Result};

#[derive(Debug, Default)]
struct UserInbox {
    items: BTreeMap<u64, Item>,
    keys: HashMap<(SessionId, u64), u64>,
    unread: u64,
}

#[derive(Debug, Default)]
struct Inner {
    next: u64,
    users: HashMap<UserId, UserInbox>,
}

/// The inbox in memory.
#[derive(Debug, Default)]
pub struct MemoryInbox {
    inner: Mutex<Inner>,
}

impl MemoryInbox {
    /// An empty inbox.
    pub fn new() -> Self {
        Self::default()
    }
}

#[async_trait]
impl InboxStore for MemoryInbox {
    async fn add(&self, item: &NewItem) -> Result<u64> {
        let mut inner = self.inner.lock();
        let next = inner.next + 1;
        let inbox = inner.users.entry(item.user.clone()).or_default();
        if let Some(id) = inbox.keys.get(&(item.session, item.seq)) {
            return Ok(*id);
        }
        inbox.keys.insert((item.session, item.seq), next);
        inbox.items.insert(
            next,
            Item {
                id: next,
                item: item.clone(),
                read: false,
            },
        );
        inbox.unread += 1;
        inner.next = next;
        Ok(next)
    }

    async fn page(&self, user: &UserId, before: Option<u64>, limit: usize) -> Result<ItemPage> {
        let inner = self.inner.lock();
        let Some(inbox) = inner.users.get(user) else {
            return Ok(ItemPage {
                items: Vec::new(),
                unread: 0,
            });
        };
        let items = inbox
            .items
            .range(..before.unwrap_or(u64::MAX))
            .rev()
            .take(limit)
            .map(|(_, i)| i.clone())
            .collect();
        Ok(ItemPage {
            items,
            unread: inbox.unread,
        })
    }

    async fn mark_read(&self, user: &UserId, id: u64) -> Result<Option<Item>> {
        let mut inner = self.inner.lock();
        let Some(inbox) = inner.users.get_mut(user) else {
            return Ok(None);
        };
        let Some(item) = inbox.items.get_mut(&id) else {
            return Ok(None);
        };
        if !item.read {
            item.read = true;
            inbox.unread -= 1;
        }
        Ok(Some(item.clone()))
    }
}
