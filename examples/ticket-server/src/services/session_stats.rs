//! A session's live figures for operators: stock, queue and reservations by state.

use std::collections::{BTreeMap, HashMap};

use ticket_core::model::audit::{AuditRecord, AuditScope, Subject};
use ticket_core::model::hold::HoldState;
use ticket_core::{Error, SessionId, TicketRush, Timestamp};

/// How many of a session's audit records are read to count its reservations by status.
pub const AUDIT_SCAN_LIMIT: usize = 100_000;

/// A session's figures; each part is read at its own instant (stock, queue, audit trail).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SessionFigures {
    /// Units or seats in the plan.
    pub capacity: u64,
    /// On sale now.
    pub available: u64,
    /// In live holds.
    pub held: u64,
    /// Sold.
    pub sold: u64,
    /// Users waiting in the queue.
    pub queue_length: u64,
    /// Users admitted now.
    pub active: u64,
    /// How many reservations are in each state (lower-case: `held`, `confirmed`, …), from
    /// the newest [`AUDIT_SCAN_LIMIT`] records of the session's audit trail.
    pub reservations_by_status: BTreeMap<String, u64>,
}

/// Reads `session`'s stock, queue (at `now`) and reservations by state.
pub async fn figures(
    rush: &TicketRush,
    session: SessionId,
    now: Timestamp,
) -> Result<SessionFigures, Error> {
    let stores = rush.stores();
    let totals = stores.inventory.snapshot(session).await?.totals();
    let queue = stores.queue.stats(session, now).await?;
    let records = stores
        .reservations
        .audit(&AuditScope::Session(session), AUDIT_SCAN_LIMIT)
        .await?;
    Ok(SessionFigures {
        capacity: totals.capacity,
        available: totals.available,
        held: totals.held,
        sold: totals.sold,
        queue_length: queue.waiting,
        active: queue.active,
        reservations_by_status: by_status(&records),
    })
}

/// The number of holds in each state (lower-case), from their latest audit record of a state
/// change; records come oldest first. Records that are not a move between hold states (a
/// ticket checked in at the gate: `VALID` → `USED`) leave the hold's state as it was.
pub fn by_status(records: &[AuditRecord]) -> BTreeMap<String, u64> {
    let mut latest = HashMap::new();
    for r in records {
        if let Subject::Hold(id) = r.subject
            && HoldState::ALL.iter().any(|s| s.as_str() == r.to)
        {
            latest.insert(id, r.to.as_str());
        }
    }
    let mut counts = BTreeMap::new();
    for state in latest.into_values() {
        *counts.entry(state.to_lowercase()).or_insert(0) += 1;
    }
    counts
}
