//! A session's change feed and counts on the in-memory backend, written under the
//! session's lock together with every change.

use std::collections::VecDeque;

use tokio::sync::watch;

use super::FastMap as HashMap;
use crate::error::{Refusal, Result};
use crate::model::change::{Change, ChangePage, FeedRetention};
use crate::model::counts::HoldStateCounts;
use crate::model::inventory::Grade;

/// The retained changes, the head, and a watch that wakes waiting readers.
#[derive(Debug)]
pub(super) struct Feed {
    changes: VecDeque<Change>,
    head: u64,
    retention: FeedRetention,
    head_tx: watch::Sender<u64>,
}

impl Feed {
    pub(super) fn new(retention: FeedRetention) -> Self {
        Self {
            changes: VecDeque::new(),
            head: 0,
            retention,
            head_tx: watch::Sender::new(0),
        }
    }

    /// The next sequence number.
    pub(super) fn next_seq(&self) -> u64 {
        self.head + 1
    }

    pub(super) fn push(&mut self, change: Change) {
        self.head = change.seq;
        self.changes.push_back(change);
        let keep =
            usize::try_from(self.retention.max_changes_per_session.max(1)).unwrap_or(usize::MAX);
        while self.changes.len() > keep {
            self.changes.pop_front();
        }
        self.head_tx.send_replace(self.head);
    }

    pub(super) fn read(&self, after: u64, limit: usize) -> Result<ChangePage> {
        let first_kept = self.changes.front().map_or(self.head + 1, |c| c.seq);
        if after + 1 < first_kept {
            return Err(Refusal::ChangesPruned { first_kept }.into());
        }
        let skip = usize::try_from(after + 1 - first_kept).unwrap_or(usize::MAX);
        Ok(ChangePage {
            changes: self
                .changes
                .iter()
                .skip(skip)
                .take(limit)
                .cloned()
                .collect(),
            head: self.head,
        })
    }

    pub(super) fn watch(&self) -> watch::Receiver<u64> {
        self.head_tx.subscribe()
    }
}

/// Counts kept with every hold change: holds by state and PAYING units per grade.
#[derive(Debug, Default)]
pub(super) struct Counts {
    pub(super) holds: HoldStateCounts,
    pub(super) paying: HashMap<Grade, u32>,
}
