//! Hold state changes: the transition script and the tables it looks its answers up in.

use std::sync::LazyLock;

use ticket_core::backend::encoding::{
    check_in_blocked_list, decision_codes, rebookable_states_list,
};
use ticket_core::ids::SessionId;
use ticket_core::model::hold::{HoldState, TransitionOutcome, TransitionRequest};
use ticket_core::{Error, Result};

use crate::codec::hold;
use crate::reply::{at, int, refusal, tagged, to_json};
use crate::store::RedisStore;

/// For each target state, the states from which the move is refused once a ticket of the
/// hold was checked in (`",CONFIRMED,"` toward CANCELLED, `""` for most). Computed once.
static CHECK_IN_GUARDS: LazyLock<Vec<(HoldState, String)>> = LazyLock::new(|| {
    HoldState::ALL
        .into_iter()
        .map(|to| (to, check_in_blocked_list(to)))
        .collect()
});

/// For each target state, the script's code for each
/// `(from, due, rebooked)` from `decision_codes` (see `lua/transition.lua`): the state machine
/// stays in `ticket-core`, the script only looks the answer up. Computed once.
static DECISION_TABLES: LazyLock<Vec<(HoldState, String)>> = LazyLock::new(|| {
    HoldState::ALL
        .into_iter()
        .map(|to| (to, decision_table(to)))
        .collect()
});

fn decision_table(to: HoldState) -> String {
    let mut table = String::new();
    for (from, codes) in decision_codes(to) {
        table.push(',');
        table.push_str(from.as_str());
        table.push(':');
        table.push_str(&codes);
    }
    table
}

/// `",EXPIRED,RELEASED,…,"`: the states `rebook_allowed_from` accepts. Computed once.
pub(crate) static REBOOKABLE_STATES: LazyLock<String> = LazyLock::new(rebookable_states_list);

impl RedisStore {
    /// Runs the transition script on a hold of `session`.
    pub(crate) async fn transition_in(
        &self,
        session: SessionId,
        req: TransitionRequest,
    ) -> Result<TransitionOutcome> {
        let table = DECISION_TABLES
            .iter()
            .find(|(to, _)| *to == req.to)
            .map(|(_, t)| t.as_str())
            .ok_or_else(|| Error::Corrupt(format!("no decision table for {:?}", req.to)))?;
        let guarded = CHECK_IN_GUARDS
            .iter()
            .find(|(to, _)| *to == req.to)
            .map(|(_, g)| g.as_str())
            .unwrap_or("");
        let mut inv = self.session_call(&self.inner.scripts.transition, session);
        inv.arg(req.now.as_millis())
            .arg(to_json(&req.actor)?)
            .arg(req.hold.to_string())
            .arg(req.to.as_str())
            .arg(table)
            .arg(&req.reason)
            .arg(req.correlation_id.as_deref().unwrap_or(""))
            .arg(req.payment_ref.as_deref().unwrap_or(""))
            .arg(guarded);
        let reply = self.run(&inv).await?;
        let (tag, rest) = tagged(&reply, "transition")?;
        match tag {
            "ok" => Ok(TransitionOutcome {
                changed: int(at(rest, 0, "transition")?, "changed")? == 1,
                hold: hold(session, req.hold, at(rest, 1, "transition")?)?,
            }),
            "err" => Err(refusal(at(rest, 0, "transition")?)),
            "nf" => Err(Error::not_found("hold", req.hold)),
            other => Err(Error::Corrupt(format!("transition reply tag {other:?}"))),
        }
    }
}
