//! The gate: tickets of confirmed reservations are checked in once, at their own session.

use crate::error::Result;
use crate::ids::{HoldId, SessionId};
use crate::model::check_in::{CheckInOutcome, CheckInRequest, TicketUse};

use super::Context;

/// Checks tickets in at the gate. A check-in and a cancellation of the same reservation
/// exclude each other on every backend (one atomic store step each, see
/// [`crate::store::Reservations::check_in`]): a holder who went in is never refunded, and a
/// cancelled reservation lets nobody in.
#[derive(Clone, Debug)]
pub struct GateService {
    ctx: Context,
}

impl GateService {
    pub(crate) fn new(ctx: Context) -> Self {
        Self { ctx }
    }

    /// Checks ticket `ticket` (1-based) of reservation `hold` in at the gate of `session`,
    /// scanned by `gate`, now. `FirstUse` lets the holder in; `AlreadyUsed` says when and by
    /// whom it was first scanned. Refused with `WrongSession` (a ticket of another session),
    /// `TicketOutOfRange`, `NotConfirmed`, or `NotFound` for an unknown reservation; a
    /// refused or repeated scan writes nothing. Each first use appends an audit record to the
    /// reservation's trail (`VALID` → `USED`, actor `Operator(gate)`).
    pub async fn check_in(
        &self,
        hold: HoldId,
        session: SessionId,
        ticket: u32,
        gate: &str,
    ) -> Result<CheckInOutcome> {
        let req = CheckInRequest {
            hold,
            session,
            ticket,
            gate: gate.to_owned(),
            now: self.ctx.clock.now(),
            correlation_id: None,
        };
        req.validate()?;
        self.ctx.stores.reservations.check_in(req).await
    }

    /// The tickets of reservation `hold` checked in so far, by ticket number.
    pub async fn check_ins(&self, hold: HoldId) -> Result<Vec<TicketUse>> {
        self.ctx.stores.reservations.check_ins(hold).await
    }
}
