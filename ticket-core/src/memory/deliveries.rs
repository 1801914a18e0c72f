//! Notification deliveries, dispatcher checkpoints and leases on the in-memory backend.

use std::time::Duration;

use dashmap::DashMap;

use super::Hasher;
use crate::clock::Timestamp;
use crate::ids::SessionId;
use crate::model::delivery::{DeliveryClaim, DeliveryKey, DeliveryRecord};

/// Deliveries, claims, checkpoints and leases: each operation is one map-entry lock.
#[derive(Debug, Default)]
pub(super) struct Deliveries {
    /// Finished deliveries, or the live claim of an unfinished one.
    entries: DashMap<DeliveryKey, Entry, Hasher>,
    checkpoints: DashMap<(String, SessionId), u64, Hasher>,
    leases: DashMap<String, (String, Timestamp), Hasher>,
}

#[derive(Debug, Clone)]
enum Entry {
    Claimed { holder: String, until: Timestamp },
    Done(DeliveryRecord),
}

impl Deliveries {
    pub(super) fn claim(
        &self,
        key: &DeliveryKey,
        holder: &str,
        now: Timestamp,
        lease: Duration,
    ) -> DeliveryClaim {
        let claimed = Entry::Claimed {
            holder: holder.to_owned(),
            until: now.plus(lease),
        };
        match self.entries.entry(key.clone()) {
            dashmap::Entry::Vacant(v) => {
                v.insert(claimed);
                DeliveryClaim::Claimed
            }
            dashmap::Entry::Occupied(mut o) => match o.get() {
                Entry::Done(r) => DeliveryClaim::Done(r.clone()),
                Entry::Claimed { holder: h, until } if h != holder && *until > now => {
                    DeliveryClaim::Busy
                }
                Entry::Claimed { .. } => {
                    o.insert(claimed);
                    DeliveryClaim::Claimed
                }
            },
        }
    }

    pub(super) fn finish(&self, record: &DeliveryRecord) -> bool {
        match self.entries.entry(record.key.clone()) {
            dashmap::Entry::Occupied(o) if matches!(o.get(), Entry::Done(_)) => false,
            dashmap::Entry::Occupied(mut o) => {
                o.insert(Entry::Done(record.clone()));
                true
            }
            dashmap::Entry::Vacant(v) => {
                v.insert(Entry::Done(record.clone()));
                true
            }
        }
    }

    pub(super) fn get(&self, key: &DeliveryKey) -> Option<DeliveryRecord> {
        match self.entries.get(key).map(|e| e.value().clone()) {
            Some(Entry::Done(r)) => Some(r),
            _ => None,
        }
    }

    pub(super) fn checkpoint(&self, consumer: &str, session: SessionId) -> u64 {
        self.checkpoints
            .get(&(consumer.to_owned(), session))
            .map_or(0, |c| *c)
    }

    pub(super) fn advance(&self, consumer: &str, session: SessionId, seq: u64) {
        let mut c = self
            .checkpoints
            .entry((consumer.to_owned(), session))
            .or_default();
        *c = (*c).max(seq);
    }

    pub(super) fn try_lease(
        &self,
        name: &str,
        holder: &str,
        now: Timestamp,
        ttl: Duration,
    ) -> bool {
        let mut e = self
            .leases
            .entry(name.to_owned())
            .or_insert_with(|| (holder.to_owned(), Timestamp::from_millis(i64::MIN)));
        let (h, until) = e.value_mut();
        if h == holder || *until <= now {
            *h = holder.to_owned();
            *until = now.plus(ttl);
            true
        } else {
            false
        }
    }
}
