//! Check-in at the gate: `lua/check_in.lua` checks and marks a ticket in one script, and the
//! transition script refuses CONFIRMED → CANCELLED once a mark exists, so the two exclude
//! each other. Marks live in the session's slot, in `P:{s:ID}:used:<hold id>` (a hash:
//! ticket number → `<at>U+001F<gate>`), written once and never changed.

use std::collections::HashMap;

use ticket_core::ids::HoldId;
use ticket_core::model::audit::Actor;
use ticket_core::model::check_in::{
    CHECK_IN_STATE, CheckInOutcome, CheckInRequest, TICKET_USED, TICKET_VALID, TicketUse,
    check_in_reason,
};
use ticket_core::{Error, Refusal, Result, Timestamp};

use crate::codec::check_text;
use crate::reply::{at, int, refusal, tagged, text, to_json, unavailable};
use crate::store::RedisStore;

/// The separator of a packed mark.
const SEP: char = '\u{1f}';

fn used_key(id: HoldId) -> String {
    format!("used:{id}")
}

impl RedisStore {
    /// See `Reservations::check_in`. A hold's session never changes, so comparing it with
    /// the gate's session before the script (from the global hold index) is as atomic as
    /// comparing it inside.
    pub(crate) async fn check_in_ticket(&self, req: CheckInRequest) -> Result<CheckInOutcome> {
        req.validate()?;
        if let Some(c) = &req.correlation_id {
            check_text("correlation id", c)?;
        }
        let session = self.session_of(req.hold).await?;
        if session != req.session {
            // decide_check_in's first rule: another session's ticket is refused whatever its
            // number or state.
            return Err(Refusal::WrongSession { session }.into());
        }
        let mut inv = self.session_call(&self.inner.scripts.check_in, session);
        inv.arg(req.now.as_millis())
            .arg(req.hold.to_string())
            .arg(req.ticket)
            .arg(CHECK_IN_STATE.as_str())
            .arg(&req.gate)
            .arg(to_json(&Actor::Operator(req.gate.clone()))?)
            .arg(check_in_reason(req.ticket))
            .arg(req.correlation_id.as_deref().unwrap_or(""))
            .arg(TICKET_VALID)
            .arg(TICKET_USED);
        let reply = self.run(&inv).await?;
        let (tag, rest) = tagged(&reply, "check_in")?;
        match tag {
            "first" => Ok(CheckInOutcome::FirstUse {
                at: Timestamp::from_millis(int(at(rest, 0, "check_in")?, "at")?),
            }),
            "used" => Ok(CheckInOutcome::AlreadyUsed {
                at: Timestamp::from_millis(int(at(rest, 0, "check_in")?, "at")?),
                gate: text(at(rest, 1, "check_in")?, "gate")?.to_owned(),
            }),
            "err" => Err(refusal(at(rest, 0, "check_in")?)),
            "nf" => Err(Error::not_found("hold", req.hold)),
            other => Err(Error::Corrupt(format!("check_in reply tag {other:?}"))),
        }
    }

    /// See `Reservations::check_ins`: one `HGETALL` of the hold's marks.
    pub(crate) async fn ticket_uses(&self, id: HoldId) -> Result<Vec<TicketUse>> {
        let session = self.session_of(id).await?;
        let raw: HashMap<String, String> = redis::cmd("HGETALL")
            .arg(self.inner.keys.session_key(session, &used_key(id)))
            .query_async(&mut self.conn())
            .await
            .map_err(unavailable)?;
        let mut uses = raw
            .into_iter()
            .map(|(n, mark)| {
                let bad = || Error::Corrupt(format!("check-in mark {n:?} = {mark:?}"));
                let (at, gate) = mark.split_once(SEP).ok_or_else(bad)?;
                Ok(TicketUse {
                    ticket: n.parse().map_err(|_| bad())?,
                    at: Timestamp::from_millis(at.parse().map_err(|_| bad())?),
                    gate: gate.to_owned(),
                })
            })
            .collect::<Result<Vec<_>>>()?;
        uses.sort_by_key(|u| u.ticket);
        Ok(uses)
    }
}
