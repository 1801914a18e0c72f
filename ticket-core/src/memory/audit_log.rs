//! Per-session append-only audit log with indexes by hold and by user.
//!
//! Records are kept compact (issue 20): the record id and the session are derived from the
//! record's place in the log, state names, reasons and actors are interned per log, and the
//! owner is a shared [`UserId`]. A full [`AuditRecord`] is built only when read. Records
//! sit in fixed-size chunks, so the log grows without ever copying what it holds (a growing
//! `Vec` copied every record under the session's lock, a stall of a second at ~2 M records).
//!
//! The log is in `(at, id)` order by construction: the session clamps each record's instant
//! to the previous one and numbers ids in write order, so a record's index is its place in
//! time order and no time index is kept.

use super::FastMap as HashMap;
use super::session_state::Audit;
use super::sharded::ShardedMap;

use crate::clock::Timestamp;
use crate::ids::{AuditId, HoldId, SessionId, UserId};
use crate::model::audit::{Actor, AuditRecord, Subject};
use crate::model::page::{AuditQuery, PageOrder};

/// Records per chunk (a power of two).
const CHUNK_BITS: u32 = 14;
const CHUNK: usize = 1 << CHUNK_BITS;

/// The actor index that means "the record's owner, as a user".
const OWNER: u32 = u32::MAX;
/// The label index that means "none".
const NONE: u32 = u32::MAX;

/// One record as kept: 80 bytes, one heap allocation only for a correlation id.
#[derive(Debug)]
struct Entry {
    at: Timestamp,
    subject: Subject,
    owner: UserId,
    /// Index into `actors`, or [`OWNER`].
    actor: u32,
    /// Indexes into `labels` ([`NONE`] for no `from`).
    from: u32,
    to: u32,
    reason: u32,
    correlation_id: Option<Box<str>>,
}

/// Interned values: each distinct value stored once, numbered in first-use order.
#[derive(Debug)]
struct Interner<T> {
    values: Vec<T>,
    ids: HashMap<T, u32>,
}

impl<T> Default for Interner<T> {
    fn default() -> Self {
        Self {
            values: Vec::new(),
            ids: HashMap::default(),
        }
    }
}

impl<T: std::hash::Hash + Eq + Clone> Interner<T> {
    fn get(&self, i: u32) -> Option<&T> {
        self.values.get(i as usize)
    }
}

impl Interner<Box<str>> {
    fn intern(&mut self, s: &str) -> u32 {
        if let Some(&i) = self.ids.get(s) {
            return i;
        }
        let i = u32::try_from(self.values.len()).unwrap_or(NONE - 1);
        self.values.push(s.into());
        self.ids.insert(s.into(), i);
        i
    }
}

impl Interner<Actor> {
    fn intern(&mut self, a: &Actor) -> u32 {
        if let Some(&i) = self.ids.get(a) {
            return i;
        }
        let i = u32::try_from(self.values.len()).unwrap_or(OWNER - 1);
        self.values.push(a.clone());
        self.ids.insert(a.clone(), i);
        i
    }
}

/// Record indexes in log (so time) order.
type Indexes = Vec<u32>;

#[derive(Debug)]
pub(super) struct AuditLog {
    session: SessionId,
    /// Full chunks of [`CHUNK`] records each, then the last, partly filled one.
    chunks: Vec<Vec<Entry>>,
    len: usize,
    labels: Interner<Box<str>>,
    actors: Interner<Actor>,
    by_hold: HashMap<HoldId, Indexes>,
    /// Sharded: grows without a stop-the-world copy at a million users.
    by_user: ShardedMap<UserId, Indexes>,
}

impl AuditLog {
    pub(super) fn new(session: SessionId) -> Self {
        Self {
            session,
            chunks: Vec::new(),
            len: 0,
            labels: Interner::default(),
            actors: Interner::default(),
            by_hold: HashMap::default(),
            by_user: ShardedMap::default(),
        }
    }

    /// Appends record number `len() + 1` (its id is `AuditId::sequenced(at, len() + 1,
    /// session)`). The caller keeps `at` non-decreasing.
    pub(super) fn append(&mut self, a: &Audit<'_>) {
        let index = u32::try_from(self.len).unwrap_or(u32::MAX);
        let actor = match a.actor {
            Actor::User(u) if u == a.owner => OWNER,
            other => self.actors.intern(other),
        };
        let entry = Entry {
            at: a.at,
            subject: a.subject,
            owner: a.owner.clone(),
            actor,
            from: a.from.map_or(NONE, |f| self.labels.intern(f)),
            to: self.labels.intern(a.to),
            reason: self.labels.intern(a.reason),
            correlation_id: a.correlation_id.map(Box::from),
        };
        if let Subject::Hold(h) = a.subject {
            self.by_hold.entry(h).or_default().push(index);
        }
        match self.by_user.get_mut(a.owner) {
            Some(v) => v.push(index),
            None => {
                let mut v = Vec::with_capacity(2);
                v.push(index);
                self.by_user.insert(a.owner.clone(), v);
            }
        }
        match self.chunks.last_mut() {
            Some(c) if c.len() < CHUNK => c.push(entry),
            _ => {
                let mut c = Vec::with_capacity(CHUNK);
                c.push(entry);
                self.chunks.push(c);
            }
        }
        self.len += 1;
    }

    fn entry(&self, i: usize) -> Option<&Entry> {
        self.chunks.get(i >> CHUNK_BITS)?.get(i & (CHUNK - 1))
    }

    /// The record at index `i`, built in full.
    fn record(&self, i: usize) -> Option<AuditRecord> {
        let e = self.entry(i)?;
        let label = |l: u32| {
            self.labels
                .get(l)
                .map_or_else(String::new, |s| String::from(&**s))
        };
        let actor = match e.actor {
            OWNER => Actor::User(e.owner.clone()),
            a => self
                .actors
                .get(a)
                .cloned()
                .unwrap_or_else(|| Actor::User(e.owner.clone())),
        };
        Some(AuditRecord {
            id: self.id_at(i, e.at),
            at: e.at,
            session: self.session,
            subject: e.subject,
            owner: e.owner.clone(),
            actor,
            from: (e.from != NONE).then(|| label(e.from)),
            to: label(e.to),
            reason: label(e.reason),
            correlation_id: e.correlation_id.as_deref().map(str::to_owned),
        })
    }

    fn id_at(&self, i: usize, at: Timestamp) -> AuditId {
        AuditId::sequenced(at, i as u64 + 1, self.session)
    }

    /// The `(at, id)` of record `i`.
    fn key(&self, i: usize) -> Option<(Timestamp, AuditId)> {
        self.entry(i).map(|e| (e.at, self.id_at(i, e.at)))
    }

    pub(super) fn all(&self, limit: usize) -> Vec<AuditRecord> {
        let n = self.len.min(limit);
        let mut out = Vec::with_capacity(n);
        out.extend((0..n).filter_map(|i| self.record(i)));
        out
    }

    pub(super) fn of_hold(&self, id: HoldId, limit: usize) -> Vec<AuditRecord> {
        self.by_hold
            .get(&id)
            .map(|s| self.pick(s.iter().map(|&i| i as usize), limit))
            .unwrap_or_default()
    }

    pub(super) fn of_user(&self, user: &UserId, limit: usize) -> Vec<AuditRecord> {
        self.by_user
            .get(user)
            .map(|s| self.pick(s.iter().map(|&i| i as usize), limit))
            .unwrap_or_default()
    }

    /// One page of the session's records, of one hold's or of one user's, per `query`.
    pub(super) fn page(&self, query: &AuditQuery) -> Vec<AuditRecord> {
        use crate::model::audit::AuditScope;
        match &query.scope {
            AuditScope::Session(_) => {
                let (lo, hi) = self.bounds(query, self.len, |i| i);
                self.page_of(lo, hi, query, |i| i)
            }
            AuditScope::Hold(h) => match self.by_hold.get(h) {
                Some(ix) => self.index_page(ix, query),
                None => Vec::new(),
            },
            AuditScope::User(u) => match self.by_user.get(u) {
                Some(ix) => self.index_page(ix, query),
                None => Vec::new(),
            },
        }
    }

    fn index_page(&self, ix: &[u32], query: &AuditQuery) -> Vec<AuditRecord> {
        let (lo, hi) = self.bounds(query, ix.len(), |k| ix[k] as usize);
        self.page_of(lo, hi, query, |k| ix[k] as usize)
    }

    /// The positions `lo..hi` (of a sorted sequence of `n` record indexes, position `k`
    /// being record `at(k)`) that lie strictly after the query's cursor in its order.
    fn bounds(&self, query: &AuditQuery, n: usize, at: impl Fn(usize) -> usize) -> (usize, usize) {
        let Some(c) = query.after else {
            return (0, n);
        };
        let cursor = (c.at, c.id);
        // First position whose key is > cursor (oldest first) or >= cursor (newest first).
        let first = |strict: bool| {
            let (mut lo, mut hi) = (0, n);
            while lo < hi {
                let mid = lo + (hi - lo) / 2;
                let below = match self.key(at(mid)) {
                    Some(k) if strict => k <= cursor,
                    Some(k) => k < cursor,
                    None => false,
                };
                if below {
                    lo = mid + 1;
                } else {
                    hi = mid;
                }
            }
            lo
        };
        match query.order {
            PageOrder::OldestFirst => (first(true), n),
            PageOrder::NewestFirst => (0, first(false)),
        }
    }

    fn page_of(
        &self,
        lo: usize,
        hi: usize,
        query: &AuditQuery,
        at: impl Fn(usize) -> usize,
    ) -> Vec<AuditRecord> {
        match query.order {
            PageOrder::OldestFirst => self.pick((lo..hi).map(at), query.limit),
            PageOrder::NewestFirst => self.pick((lo..hi).rev().map(at), query.limit),
        }
    }

    fn pick(&self, indexes: impl Iterator<Item = usize>, limit: usize) -> Vec<AuditRecord> {
        indexes.take(limit).filter_map(|i| self.record(i)).collect()
    }
}
