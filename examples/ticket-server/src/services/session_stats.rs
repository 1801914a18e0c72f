//! A session's live figures for operators: stock, queue and reservations by state, all from
//! counters the library keeps with every change, so the answer costs the same whatever the
//! number of holds (no scan of holds or audit records).

use std::collections::BTreeMap;

use ticket_core::model::counts::SessionCounts;
use ticket_core::model::hold::HoldState;
use ticket_core::{Error, SessionId, TicketRush, Timestamp};

/// A session's figures: the stock and reservation counts are read at one instant, the
/// queue's at another.
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
    /// How many reservations are in each state (lower-case: `held`, `confirmed`, …); states
    /// no reservation is in are left out.
    pub reservations_by_status: BTreeMap<String, u64>,
}

/// Reads `session`'s counts and queue statistics (at `now`): two O(1) reads.
pub async fn figures(
    rush: &TicketRush,
    session: SessionId,
    now: Timestamp,
) -> Result<SessionFigures, Error> {
    let stores = rush.stores();
    let (counts, queue) = tokio::try_join!(
        stores.inventory.counts(session),
        stores.queue.stats(session, now)
    )?;
    let sum = |f: fn(&ticket_core::model::counts::GradeStateCounts) -> u32| -> u64 {
        counts.grades.iter().map(|g| u64::from(f(g))).sum()
    };
    Ok(SessionFigures {
        capacity: sum(|g| g.capacity),
        available: sum(|g| g.available),
        held: sum(|g| g.held),
        sold: sum(|g| g.sold),
        queue_length: queue.waiting,
        active: queue.active,
        reservations_by_status: by_status(&counts),
    })
}

/// The number of holds in each state (lower-case), states with none left out.
pub fn by_status(counts: &SessionCounts) -> BTreeMap<String, u64> {
    HoldState::ALL
        .into_iter()
        .map(|s| (s.as_str().to_lowercase(), counts.holds.get(s)))
        .filter(|(_, n)| *n > 0)
        .collect()
}
