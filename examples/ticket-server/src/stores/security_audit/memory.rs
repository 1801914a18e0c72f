//! The security audit in this process's memory: a ring buffer of the newest `retain`
//! records under one mutex.

use std::collections::VecDeque;

use async_trait::async_trait;
use parking_lot::Mutex;

use super::{AbuseRecord, AuditCursor, Result, SecurityAuditStore, StoredAbuse};

#[derive(Debug, Default)]
struct Inner {
    records: VecDeque<StoredAbuse>,
    next_seq: u64,
}

/// Abuse records of one process, the newest `retain` kept.
#[derive(Debug)]
pub struct MemoryAudit {
    retain: usize,
    inner: Mutex<Inner>,
}

impl MemoryAudit {
    /// Keeps the newest `retain` records (at least 1).
    pub fn new(retain: u64) -> Self {
        Self {
            retain: usize::try_from(retain).unwrap_or(usize::MAX).max(1),
            inner: Mutex::new(Inner {
                records: VecDeque::new(),
                next_seq: 1,
            }),
        }
    }
}

#[async_trait]
impl SecurityAuditStore for MemoryAudit {
    async fn append(&self, record: &AbuseRecord) -> Result<()> {
        let mut inner = self.inner.lock();
        let seq = inner.next_seq;
        inner.next_seq += 1;
        let id = AuditCursor {
            ms: u64::try_from(record.at.as_millis()).unwrap_or(0),
            seq,
        };
        inner.records.push_back(StoredAbuse {
            id,
            record: record.clone(),
        });
        while inner.records.len() > self.retain {
            inner.records.pop_front();
        }
        Ok(())
    }

    async fn page(&self, before: Option<AuditCursor>, limit: usize) -> Result<Vec<StoredAbuse>> {
        let inner = self.inner.lock();
        let before = before.map_or(u64::MAX, |c| c.seq);
        // Sequence numbers grow with the buffer: a binary search finds the page's start.
        let end = inner.records.partition_point(|r| r.id.seq < before);
        Ok(inner
            .records
            .range(..end)
            .rev()
            .take(limit)
            .cloned()
            .collect())
    }
}
