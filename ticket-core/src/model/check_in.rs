//! Check-in at the gate: a ticket of a CONFIRMED reservation is let in once, at its own
//! session, and a reservation one of whose tickets went in is never cancelled.
//!
//! A hold covering `k` units or seats has the tickets `1..=k`, numbered in the hold's own
//! order of units or seats. A check-in marks one ticket used; the mark is written once and
//! never changed or removed. The rules are pure functions here ([`decide_check_in`],
//! [`blocked_by_check_in`]); backends apply them in the same atomic step as the mark and as
//! the state transition, so a scan and a cancellation of one reservation exclude each other.

use serde::{Deserialize, Serialize};

use crate::clock::Timestamp;
use crate::error::{InvalidInput, Refusal};
use crate::ids::{HoldId, SessionId};
use crate::model::hold::{HoldState, MAX_UNITS_PER_HOLD};

/// The longest gate name accepted, in bytes.
pub const MAX_GATE_LEN: usize = 256;

/// The reason written in the audit record of a check-in of ticket `ticket`.
pub fn check_in_reason(ticket: u32) -> String {
    format!("ticket {ticket} checked in")
}

/// The audit record of a check-in goes from this ticket state …
pub const TICKET_VALID: &str = "VALID";
/// … to this one. The hold's own state does not change.
pub const TICKET_USED: &str = "USED";

/// A scan at the gate, as passed to [`crate::store::Reservations::check_in`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CheckInRequest {
    /// The reservation (hold) the ticket belongs to.
    pub hold: HoldId,
    /// The session the gate is checking in: a ticket of another session is refused.
    pub session: SessionId,
    /// The ticket's number within its hold, from 1.
    pub ticket: u32,
    /// Who scans (the gate's account), kept in the mark and the audit record (as an
    /// [`crate::model::audit::Actor::Operator`]).
    pub gate: String,
    /// The instant of the scan (the mark's time).
    pub now: Timestamp,
    /// Correlation id for the audit trail.
    pub correlation_id: Option<String>,
}

impl CheckInRequest {
    /// Checks the request's shape before anything runs: the ticket number is
    /// 1..=[`MAX_UNITS_PER_HOLD`], the gate 1..=[`MAX_GATE_LEN`] bytes without control
    /// characters.
    pub fn validate(&self) -> Result<(), InvalidInput> {
        if self.ticket == 0 || self.ticket > MAX_UNITS_PER_HOLD {
            return Err(InvalidInput::CheckIn(format!(
                "ticket number must be 1..={MAX_UNITS_PER_HOLD}, got {}",
                self.ticket
            )));
        }
        if self.gate.is_empty()
            || self.gate.len() > MAX_GATE_LEN
            || self.gate.chars().any(char::is_control)
        {
            return Err(InvalidInput::CheckIn(format!(
                "gate must be 1..={MAX_GATE_LEN} bytes without control characters"
            )));
        }
        Ok(())
    }
}

/// The mark of a ticket's first check-in. Written once, never changed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TicketUse {
    /// The ticket's number within its hold.
    pub ticket: u32,
    /// When it was first scanned (the `now` of that check-in).
    pub at: Timestamp,
    /// Who scanned it first.
    pub gate: String,
}

/// What a check-in that was not refused found.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum CheckInOutcome {
    /// This call marked the ticket used: let the holder in.
    FirstUse {
        /// The mark's time (the call's `now`).
        at: Timestamp,
    },
    /// The ticket was checked in before (by this gate or another): the first mark,
    /// unchanged. Nothing was written.
    AlreadyUsed {
        /// When it was first checked in.
        at: Timestamp,
        /// Who scanned it first.
        gate: String,
    },
}

/// The only state whose tickets are let in.
pub const CHECK_IN_STATE: HoldState = HoldState::Confirmed;

/// May ticket `ticket` of a hold of `hold_session`, in `state`, covering `units` tickets, be
/// checked in at the gate of `gate_session`? Refusals in this order: another session
/// ([`Refusal::WrongSession`]), a ticket the hold does not have
/// ([`Refusal::TicketOutOfRange`]), a hold that is not CONFIRMED ([`Refusal::NotConfirmed`]).
/// Whether the ticket was used already is the store's part (`FirstUse` / `AlreadyUsed`).
pub fn decide_check_in(
    hold_session: SessionId,
    state: HoldState,
    units: u32,
    gate_session: SessionId,
    ticket: u32,
) -> Result<(), Refusal> {
    if hold_session != gate_session {
        return Err(Refusal::WrongSession {
            session: hold_session,
        });
    }
    if ticket == 0 || ticket > units {
        return Err(Refusal::TicketOutOfRange {
            ticket,
            tickets: units,
        });
    }
    if state != CHECK_IN_STATE {
        return Err(Refusal::NotConfirmed { state });
    }
    Ok(())
}

/// Whether the move `from` → `to` is refused once a ticket of the hold was checked in
/// ([`Refusal::TicketUsed`]): CONFIRMED → CANCELLED, the move that puts the units back on
/// sale and owes a refund. A holder who went in is neither refunded nor resold. Backends
/// check it in the same atomic step as the transition.
pub fn blocked_by_check_in(from: HoldState, to: HoldState) -> bool {
    from == HoldState::Confirmed && to == HoldState::Cancelled
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::clock::Timestamp;

    #[test]
    fn check_in_refusals_come_in_order() {
        let now = Timestamp::from_millis(1);
        let (s, other) = (SessionId::new_at(now), SessionId::new_at(now));
        assert_eq!(
            decide_check_in(s, HoldState::Cancelled, 2, other, 9),
            Err(Refusal::WrongSession { session: s })
        );
        assert_eq!(
            decide_check_in(s, HoldState::Cancelled, 2, s, 3),
            Err(Refusal::TicketOutOfRange {
                ticket: 3,
                tickets: 2
            })
        );
        for state in HoldState::ALL {
            let d = decide_check_in(s, state, 2, s, 2);
            if state == HoldState::Confirmed {
                assert_eq!(d, Ok(()));
            } else {
                assert_eq!(d, Err(Refusal::NotConfirmed { state }));
            }
        }
    }

    #[test]
    fn only_cancelling_a_confirmed_hold_is_blocked() {
        for from in HoldState::ALL {
            for to in HoldState::ALL {
                assert_eq!(
                    blocked_by_check_in(from, to),
                    (from, to) == (HoldState::Confirmed, HoldState::Cancelled)
                );
            }
        }
    }

    #[test]
    fn requests_are_validated() {
        let now = Timestamp::from_millis(1);
        let ok = CheckInRequest {
            hold: HoldId::new_at(now),
            session: SessionId::new_at(now),
            ticket: 1,
            gate: "gate-1".into(),
            now,
            correlation_id: None,
        };
        assert_eq!(ok.validate(), Ok(()));
        for bad in [
            CheckInRequest {
                ticket: 0,
                ..ok.clone()
            },
            CheckInRequest {
                ticket: MAX_UNITS_PER_HOLD + 1,
                ..ok.clone()
            },
            CheckInRequest {
                gate: String::new(),
                ..ok.clone()
            },
            CheckInRequest {
                gate: "g".repeat(MAX_GATE_LEN + 1),
                ..ok.clone()
            },
            CheckInRequest {
                gate: "a\u{1f}b".into(),
                ..ok.clone()
            },
        ] {
            assert!(bad.validate().is_err(), "{bad:?}");
        }
    }
}
