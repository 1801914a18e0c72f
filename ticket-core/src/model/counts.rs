//! A session's counts by state, kept by every backend in the same atomic step as each
//! change, so reading them is O(1) in the number of holds and audit records.

use serde::{Deserialize, Serialize};

use crate::ids::SessionId;
use crate::model::hold::HoldState;
use crate::model::inventory::Grade;

/// The units of one grade by state. `available + held + sold == capacity`, and `paying` is
/// the part of `held` whose checkout started.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct GradeStateCounts {
    /// The grade.
    pub grade: Grade,
    /// Units in the plan.
    pub capacity: u32,
    /// Units on sale.
    pub available: u32,
    /// Units in live holds (HELD or PAYING).
    pub held: u32,
    /// Units in PAYING holds (included in `held`).
    pub paying: u32,
    /// Units in confirmed reservations.
    pub sold: u32,
}

impl GradeStateCounts {
    /// `available + held + sold == capacity` and `paying <= held`.
    pub fn is_consistent(&self) -> bool {
        u64::from(self.available) + u64::from(self.held) + u64::from(self.sold)
            == u64::from(self.capacity)
            && self.paying <= self.held
    }
}

/// How many holds of a session are in each state (every hold ever made is in exactly one).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct HoldStateCounts {
    /// HELD.
    pub held: u64,
    /// PAYING.
    pub paying: u64,
    /// CONFIRMED.
    pub confirmed: u64,
    /// EXPIRED.
    pub expired: u64,
    /// RELEASED.
    pub released: u64,
    /// PAYMENT_FAILED.
    pub payment_failed: u64,
    /// CANCELLED.
    pub cancelled: u64,
    /// REFUNDED.
    pub refunded: u64,
}

impl HoldStateCounts {
    /// The counter of `state`.
    pub fn get(&self, state: HoldState) -> u64 {
        match state {
            HoldState::Held => self.held,
            HoldState::Paying => self.paying,
            HoldState::Confirmed => self.confirmed,
            HoldState::Expired => self.expired,
            HoldState::Released => self.released,
            HoldState::PaymentFailed => self.payment_failed,
            HoldState::Cancelled => self.cancelled,
            HoldState::Refunded => self.refunded,
        }
    }

    /// The counter of `state`, to change.
    pub fn get_mut(&mut self, state: HoldState) -> &mut u64 {
        match state {
            HoldState::Held => &mut self.held,
            HoldState::Paying => &mut self.paying,
            HoldState::Confirmed => &mut self.confirmed,
            HoldState::Expired => &mut self.expired,
            HoldState::Released => &mut self.released,
            HoldState::PaymentFailed => &mut self.payment_failed,
            HoldState::Cancelled => &mut self.cancelled,
            HoldState::Refunded => &mut self.refunded,
        }
    }

    /// Every hold counted once.
    pub fn total(&self) -> u64 {
        HoldState::ALL.into_iter().map(|s| self.get(s)).sum()
    }
}

/// A session's counts, all read at one instant.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SessionCounts {
    /// The session.
    pub session: SessionId,
    /// Units by state, per grade, in the plan's grade order.
    pub grades: Vec<GradeStateCounts>,
    /// Holds by state.
    pub holds: HoldStateCounts,
}

impl SessionCounts {
    /// Whether every grade conserves its capacity and `paying <= held`.
    pub fn is_consistent(&self) -> bool {
        self.grades.iter().all(GradeStateCounts::is_consistent)
    }
}
