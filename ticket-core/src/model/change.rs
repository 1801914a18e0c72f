//! The change feed's events: every change of a session (holds, admissions, stock) as a
//! typed event with a per-session sequence number.
//!
//! Backends write a change in the same atomic step as what it describes, numbered
//! `1, 2, 3, …` per session with no gaps, so a reader that resumes after sequence `n` sees
//! every later change exactly once, in order. Most changes mirror an audit record
//! ([`ChangeKind::of_record`]); [`ChangeKind::SoldOut`] and [`ChangeKind::QueueDrawn`] have
//! no record of their own.

use serde::{Deserialize, Serialize};

use crate::clock::Timestamp;
use crate::ids::{HoldId, SessionId, TicketId, UserId};
use crate::model::audit::{AuditRecord, Subject};
use crate::model::hold::HoldState;

/// What happened.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum ChangeKind {
    /// A hold was made (HELD).
    HoldCreated,
    /// Checkout started (PAYING).
    HoldPaying,
    /// Paid (CONFIRMED); also a late payment re-booked as a new confirmed hold.
    HoldConfirmed,
    /// The hold's TTL ran out (EXPIRED).
    HoldExpired,
    /// The hold was let go (RELEASED).
    HoldReleased,
    /// The payment failed (PAYMENT_FAILED).
    HoldPaymentFailed,
    /// A confirmed reservation was cancelled (CANCELLED).
    HoldCancelled,
    /// The money was returned (REFUNDED).
    HoldRefunded,
    /// A user joined the queue (WAITING, or in the pre-queue).
    Joined,
    /// A user was admitted (ACTIVE).
    Admitted,
    /// An admission ran out unused (EXPIRED).
    AdmissionExpired,
    /// An admission was used to make a hold (USED).
    AdmissionUsed,
    /// A user left the queue (LEFT).
    Left,
    /// The pre-queue was shuffled: its tickets now have places in line.
    QueueDrawn,
    /// The last available unit of the session was taken.
    SoldOut,
    /// The organiser paused the sale.
    SalePaused,
    /// The organiser resumed a paused sale.
    SaleResumed,
    /// The organiser closed the sale: the queue ends.
    SaleClosed,
    /// The organiser cancelled the show.
    SaleCancelled,
    /// The organiser changed what the session sells (units or seats added or removed).
    CapacityChanged,
}

impl ChangeKind {
    /// The change a hold reaching `to` makes.
    pub fn of_hold_state(to: HoldState) -> Self {
        match to {
            HoldState::Held => Self::HoldCreated,
            HoldState::Paying => Self::HoldPaying,
            HoldState::Confirmed => Self::HoldConfirmed,
            HoldState::Expired => Self::HoldExpired,
            HoldState::Released => Self::HoldReleased,
            HoldState::PaymentFailed => Self::HoldPaymentFailed,
            HoldState::Cancelled => Self::HoldCancelled,
            HoldState::Refunded => Self::HoldRefunded,
        }
    }

    /// The change an audit record describes; `None` for a record no change mirrors (a gate
    /// scan, `VALID → USED`, is not a change of the session's sale).
    pub fn of_record(record: &AuditRecord) -> Option<Self> {
        Self::of_transition(&record.subject, &record.to)
    }

    /// The change of `subject` reaching state `to` (as stored: `"CONFIRMED"`, `"ACTIVE"`).
    pub fn of_transition(subject: &Subject, to: &str) -> Option<Self> {
        match subject {
            Subject::Hold(_) => HoldState::ALL
                .into_iter()
                .find(|s| s.as_str() == to)
                .map(Self::of_hold_state),
            Subject::Ticket(_) => match to {
                "WAITING" => Some(Self::Joined),
                "ACTIVE" => Some(Self::Admitted),
                "EXPIRED" => Some(Self::AdmissionExpired),
                "USED" => Some(Self::AdmissionUsed),
                "LEFT" => Some(Self::Left),
                _ => None,
            },
            Subject::Session(_) => match to {
                "PAUSED" => Some(Self::SalePaused),
                "OPEN" => Some(Self::SaleResumed),
                "CLOSED" => Some(Self::SaleClosed),
                "CANCELLED" => Some(Self::SaleCancelled),
                crate::model::sale::CAPACITY_CHANGED => Some(Self::CapacityChanged),
                _ => None,
            },
        }
    }

    /// Stable snake_case name (the SSE event name).
    pub fn as_str(self) -> &'static str {
        match self {
            Self::HoldCreated => "hold_created",
            Self::HoldPaying => "hold_paying",
            Self::HoldConfirmed => "hold_confirmed",
            Self::HoldExpired => "hold_expired",
            Self::HoldReleased => "hold_released",
            Self::HoldPaymentFailed => "hold_payment_failed",
            Self::HoldCancelled => "hold_cancelled",
            Self::HoldRefunded => "hold_refunded",
            Self::Joined => "joined",
            Self::Admitted => "admitted",
            Self::AdmissionExpired => "admission_expired",
            Self::AdmissionUsed => "admission_used",
            Self::Left => "left",
            Self::QueueDrawn => "queue_drawn",
            Self::SoldOut => "sold_out",
            Self::SalePaused => "sale_paused",
            Self::SaleResumed => "sale_resumed",
            Self::SaleClosed => "sale_closed",
            Self::SaleCancelled => "sale_cancelled",
            Self::CapacityChanged => "capacity_changed",
        }
    }

    /// Every kind, for exhaustive tests and encodings.
    pub const ALL: [ChangeKind; 20] = [
        Self::HoldCreated,
        Self::HoldPaying,
        Self::HoldConfirmed,
        Self::HoldExpired,
        Self::HoldReleased,
        Self::HoldPaymentFailed,
        Self::HoldCancelled,
        Self::HoldRefunded,
        Self::Joined,
        Self::Admitted,
        Self::AdmissionExpired,
        Self::AdmissionUsed,
        Self::Left,
        Self::QueueDrawn,
        Self::SoldOut,
        Self::SalePaused,
        Self::SaleResumed,
        Self::SaleClosed,
        Self::SaleCancelled,
        Self::CapacityChanged,
    ];

    /// The kind named `s` (see [`ChangeKind::as_str`]).
    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|k| k.as_str() == s)
    }
}

/// One change of a session.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Change {
    /// The session.
    pub session: SessionId,
    /// Position in the session's feed: `1, 2, 3, …` with no gaps.
    pub seq: u64,
    /// When (the instant of the operation that made it).
    pub at: Timestamp,
    /// What happened.
    pub kind: ChangeKind,
    /// The hold, queue ticket or session it is about (`None` for `SoldOut` and
    /// `QueueDrawn`).
    pub subject: Option<Subject>,
    /// The user the subject belongs to (`None` for session-wide changes).
    pub owner: Option<UserId>,
    /// For a queue ticket: its place in line (the sequence positions are counted by), when
    /// it has one.
    pub line: Option<u64>,
}

impl Change {
    /// The hold it is about, if any.
    pub fn hold(&self) -> Option<HoldId> {
        match self.subject {
            Some(Subject::Hold(h)) => Some(h),
            _ => None,
        }
    }

    /// The queue ticket it is about, if any.
    pub fn ticket(&self) -> Option<TicketId> {
        match self.subject {
            Some(Subject::Ticket(t)) => Some(t),
            _ => None,
        }
    }
}

/// A page of a session's feed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ChangePage {
    /// Changes after the cursor, oldest first.
    pub changes: Vec<Change>,
    /// The session's latest sequence number when the page was read (0 before any change).
    pub head: u64,
}

/// How long a feed keeps changes. Readers resuming from a cursor older than what is kept
/// are refused with `Refusal::ChangesPruned` and must resynchronise from the reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct FeedRetention {
    /// The newest changes kept per session; older ones may be dropped (backends trim in
    /// batches, so up to about 1 % more may be kept).
    pub max_changes_per_session: u64,
}

impl Default for FeedRetention {
    /// 1 000 000 changes per session: a sold-out rush of 100 000 users fits several times.
    fn default() -> Self {
        Self {
            max_changes_per_session: 1_000_000,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kinds_round_trip_through_their_names() {
        for k in ChangeKind::ALL {
            assert_eq!(ChangeKind::parse(k.as_str()), Some(k));
        }
    }

    #[test]
    fn every_hold_state_and_ticket_state_maps_to_a_change() {
        let hold = Subject::Hold(HoldId::new_at(Timestamp::from_millis(0)));
        for s in HoldState::ALL {
            assert_eq!(
                ChangeKind::of_transition(&hold, s.as_str()),
                Some(ChangeKind::of_hold_state(s))
            );
        }
        let ticket = Subject::Ticket(TicketId::new_at(Timestamp::from_millis(0)));
        for s in ["WAITING", "ACTIVE", "EXPIRED", "USED", "LEFT"] {
            assert!(ChangeKind::of_transition(&ticket, s).is_some(), "{s}");
        }
        assert_eq!(ChangeKind::of_transition(&hold, "VALID"), None);
    }
}
