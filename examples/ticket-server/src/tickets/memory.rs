//! The in-memory use marks: for tests and the single-process demo.

use std::collections::HashMap;
use std::collections::hash_map::Entry;

use async_trait::async_trait;
use parking_lot::Mutex;
use ticket_core::Timestamp;

use super::{Result, TicketId, TicketStore, UseOutcome, UsedMark, check_gate};

/// Use marks in this process's memory, behind one mutex: the look-up and the insert of a
/// mark happen under the lock, so racing scans see each other and exactly one of them is the
/// first use. Nothing survives the process, and other processes do not see it: use
/// [`super::RedisTickets`] or [`super::PgTickets`] for several servers.
#[derive(Debug, Default)]
pub struct MemoryTickets {
    marks: Mutex<HashMap<TicketId, UsedMark>>,
}

impl MemoryTickets {
    /// No ticket used yet.
    pub fn new() -> Self {
        Self::default()
    }
}

#[async_trait]
impl TicketStore for MemoryTickets {
    async fn mark_used(&self, ticket: &TicketId, by: &str, now: Timestamp) -> Result<UseOutcome> {
        check_gate(by)?;
        let mut marks = self.marks.lock();
        Ok(match marks.entry(*ticket) {
            Entry::Occupied(first) => UseOutcome::AlreadyUsed {
                at: first.get().at,
                by: first.get().by.clone(),
            },
            Entry::Vacant(slot) => {
                slot.insert(UsedMark {
                    at: now,
                    by: by.to_owned(),
                });
                UseOutcome::FirstUse { at: now }
            }
        })
    }

    async fn used(&self, tickets: &[TicketId]) -> Result<HashMap<TicketId, UsedMark>> {
        let marks = self.marks.lock();
        Ok(tickets
            .iter()
            .filter_map(|t| marks.get(t).map(|m| (*t, m.clone())))
            .collect())
    }
}
