//! Per-session append-only audit log with indexes by hold and by user.

use super::FastMap as HashMap;

use crate::ids::{HoldId, UserId};
use crate::model::audit::{AuditRecord, Subject};

#[derive(Debug, Default)]
pub(super) struct AuditLog {
    records: Vec<AuditRecord>,
    by_hold: HashMap<HoldId, Vec<usize>>,
    by_user: HashMap<UserId, Vec<usize>>,
}

impl AuditLog {
    pub(super) fn append(&mut self, record: AuditRecord) {
        let i = self.records.len();
        if let Subject::Hold(h) = record.subject {
            self.by_hold.entry(h).or_default().push(i);
        }
        self.by_user
            .entry(record.owner.clone())
            .or_default()
            .push(i);
        self.records.push(record);
    }

    pub(super) fn all(&self, limit: usize) -> Vec<AuditRecord> {
        self.records.iter().take(limit).cloned().collect()
    }

    pub(super) fn of_hold(&self, id: HoldId, limit: usize) -> Vec<AuditRecord> {
        self.pick(self.by_hold.get(&id), limit)
    }

    pub(super) fn of_user(&self, user: &UserId, limit: usize) -> Vec<AuditRecord> {
        self.pick(self.by_user.get(user), limit)
    }

    fn pick(&self, idx: Option<&Vec<usize>>, limit: usize) -> Vec<AuditRecord> {
        idx.map(|v| {
            v.iter()
                .take(limit)
                .filter_map(|&i| self.records.get(i).cloned())
                .collect()
        })
        .unwrap_or_default()
    }
}
