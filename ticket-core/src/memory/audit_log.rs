//! Per-session append-only audit log with indexes by time, by hold and by user.

use std::collections::BTreeSet;
use std::ops::Bound;

use super::FastMap as HashMap;

use crate::clock::Timestamp;
use crate::ids::{AuditId, HoldId, UserId};
use crate::model::audit::{AuditRecord, Subject};
use crate::model::page::{AuditQuery, PageOrder};

/// A record's place: `(at, id, index in records)`.
type Key = (Timestamp, AuditId, usize);

#[derive(Debug, Default)]
pub(super) struct AuditLog {
    records: Vec<AuditRecord>,
    by_time: BTreeSet<Key>,
    by_hold: HashMap<HoldId, BTreeSet<Key>>,
    by_user: HashMap<UserId, BTreeSet<Key>>,
}

impl AuditLog {
    pub(super) fn append(&mut self, record: AuditRecord) {
        let key = (record.at, record.id, self.records.len());
        if let Subject::Hold(h) = record.subject {
            self.by_hold.entry(h).or_default().insert(key);
        }
        self.by_user
            .entry(record.owner.clone())
            .or_default()
            .insert(key);
        self.by_time.insert(key);
        self.records.push(record);
    }

    pub(super) fn all(&self, limit: usize) -> Vec<AuditRecord> {
        self.pick(self.by_time.iter(), limit)
    }

    pub(super) fn of_hold(&self, id: HoldId, limit: usize) -> Vec<AuditRecord> {
        self.by_hold
            .get(&id)
            .map(|s| self.pick(s.iter(), limit))
            .unwrap_or_default()
    }

    pub(super) fn of_user(&self, user: &UserId, limit: usize) -> Vec<AuditRecord> {
        self.by_user
            .get(user)
            .map(|s| self.pick(s.iter(), limit))
            .unwrap_or_default()
    }

    /// One page of the session's records, of one hold's or of one user's, per `query`.
    pub(super) fn page(&self, query: &AuditQuery) -> Vec<AuditRecord> {
        use crate::model::audit::AuditScope;
        let index = match &query.scope {
            AuditScope::Session(_) => Some(&self.by_time),
            AuditScope::Hold(h) => self.by_hold.get(h),
            AuditScope::User(u) => self.by_user.get(u),
        };
        let Some(index) = index else {
            return Vec::new();
        };
        match (query.order, query.after) {
            (PageOrder::OldestFirst, None) => self.pick(index.iter(), query.limit),
            (PageOrder::NewestFirst, None) => self.pick(index.iter().rev(), query.limit),
            (PageOrder::OldestFirst, Some(c)) => self.pick(
                index.range((Bound::Excluded((c.at, c.id, usize::MAX)), Bound::Unbounded)),
                query.limit,
            ),
            (PageOrder::NewestFirst, Some(c)) => self.pick(
                index
                    .range((Bound::Unbounded, Bound::Excluded((c.at, c.id, 0))))
                    .rev(),
                query.limit,
            ),
        }
    }

    fn pick<'a>(&self, keys: impl Iterator<Item = &'a Key>, limit: usize) -> Vec<AuditRecord> {
        keys.take(limit)
            .filter_map(|&(_, _, i)| self.records.get(i).cloned())
            .collect()
    }
}
