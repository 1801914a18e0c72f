//! Admission rounds shared by concurrent requests ("group commit").
//!
//! Every join, poll and leave runs an admission round so a freed or open slot is taken at
//! once (besides the timer's round per session and tick, [`crate::runtime::background`]).
//! Under a rush that is thousands of rounds a second for one session, each one
//! an atomic step in the shared store that admits nobody new the others would not have. So
//! within a process, rounds of one session run one at a time, and a caller that arrives
//! while one runs waits for the next round to finish instead of starting its own: every
//! caller still gets a round that *started after it arrived* (so its own join is counted),
//! and a process never has more than one round per session in flight.
//!
//! This is an optimisation only: rounds are atomic in the store, so processes (and callers
//! that skip this type) stay correct whatever runs beside them.

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use parking_lot::Mutex;
use ticket_core::service::AdmissionService;
use ticket_core::{Result, SessionId};

/// Per session: how many rounds started and finished, and the lock that orders them.
#[derive(Debug, Default)]
struct Slot {
    started: AtomicU64,
    finished: AtomicU64,
    turn: tokio::sync::Mutex<()>,
}

/// Coalesces concurrent admission rounds of a session in this process.
#[derive(Debug, Default)]
pub struct AdmissionRounds {
    slots: Mutex<HashMap<SessionId, Arc<Slot>>>,
}

impl AdmissionRounds {
    /// No round run yet.
    pub fn new() -> Self {
        Self::default()
    }

    /// Makes sure an admission round of `session` that started after this call began has
    /// finished: runs one, or waits for one that another caller runs. Returns how many users
    /// the round this call ran admitted (0 when it waited for another caller's round).
    /// An error of the round is returned to the caller that ran it; callers that waited run
    /// their own round then.
    pub async fn run(&self, admission: &AdmissionService, session: SessionId) -> Result<usize> {
        let slot = self.slots.lock().entry(session).or_default().clone();
        let arrived_after = slot.started.load(Ordering::Acquire);
        let _turn = slot.turn.lock().await;
        if slot.finished.load(Ordering::Acquire) > arrived_after {
            // A round that started after we arrived has finished.
            return Ok(0);
        }
        let number = slot.started.fetch_add(1, Ordering::AcqRel) + 1;
        let round = admission.admit_next(session).await;
        if round.is_ok() {
            slot.finished.fetch_max(number, Ordering::AcqRel);
        }
        Ok(round?.admitted.len())
    }
}
