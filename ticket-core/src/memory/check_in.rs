//! Check-in at the gate on the in-memory backend: each scan runs under its session's lock,
//! the same lock every transition of the session's holds takes, so a scan and a
//! cancellation of one hold exclude each other.

use std::collections::BTreeMap;

use crate::error::{Error, Refusal, Result};
use crate::ids::HoldId;
use crate::model::audit::{Actor, Subject};
use crate::model::check_in::{
    CheckInOutcome, CheckInRequest, TICKET_USED, TICKET_VALID, TicketUse, blocked_by_check_in,
    check_in_reason, decide_check_in,
};
use crate::model::hold::HoldState;

use super::session_state::{Audit, SessionState};

/// The check-in marks of one hold, by ticket number.
pub(super) type Marks = BTreeMap<u32, TicketUse>;

impl SessionState {
    pub(super) fn check_in(&mut self, req: CheckInRequest) -> Result<CheckInOutcome> {
        let hold = self
            .holds
            .get(&req.hold)
            .ok_or_else(|| Error::not_found("hold", req.hold))?;
        decide_check_in(
            hold.session,
            hold.state,
            hold.units(),
            req.session,
            req.ticket,
        )?;
        let owner = hold.user.clone();
        let marks = self.check_ins.entry(req.hold).or_default();
        if let Some(first) = marks.get(&req.ticket) {
            return Ok(CheckInOutcome::AlreadyUsed {
                at: first.at,
                gate: first.gate.clone(),
            });
        }
        marks.insert(
            req.ticket,
            TicketUse {
                ticket: req.ticket,
                at: req.now,
                gate: req.gate.clone(),
            },
        );
        self.record(Audit {
            at: req.now,
            subject: Subject::Hold(req.hold),
            owner: &owner,
            actor: &Actor::Operator(req.gate),
            from: Some(TICKET_VALID),
            to: TICKET_USED,
            reason: &check_in_reason(req.ticket),
            correlation_id: req.correlation_id.as_deref(),
        });
        Ok(CheckInOutcome::FirstUse { at: req.now })
    }

    pub(super) fn checked_in(&self, id: HoldId) -> Vec<TicketUse> {
        self.check_ins
            .get(&id)
            .map(|m| m.values().cloned().collect())
            .unwrap_or_default()
    }

    /// `TicketUsed` when moving hold `id` from `from` to `to` is blocked by a check-in.
    pub(super) fn check_in_guard(&self, id: HoldId, from: HoldState, to: HoldState) -> Result<()> {
        if !blocked_by_check_in(from, to) {
            return Ok(());
        }
        match self
            .check_ins
            .get(&id)
            .and_then(|m| m.values().map(|u| u.at).min())
        {
            None => Ok(()),
            Some(first_used_at) => Err(Refusal::TicketUsed { first_used_at }.into()),
        }
    }
}
