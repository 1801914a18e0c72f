//! The organiser's controls on Redis ([`SaleControl`]): the sale switch and capacity changes.
//!
//! The switch lives in the session's `stock` hash (`sw`: the state's index in
//! [`SaleState::ALL`], `swat`: since when; absent = OPEN since creation) with its reason in
//! the `def` hash (`swr`). The hold and re-booking scripts load the `stock` hash anyway, so
//! they read the switch in the same step as they take stock, at no extra cost
//! (`lua/lib/stock.lua`, `sale_refusal`). A move is one script (`lua/sale_state.lua`) that
//! looks the decision up in a table computed from [`decide_sale_transition`] and writes the
//! switch with its audit record and change.
//!
//! A capacity change computes the new plan in Rust ([`CapacityDelta::apply_to`]) from the
//! current plan and its version (the `def` hash's `plan` and `pv`), then one script
//! (`lua/capacity.lua`) checks the version (compare-and-set, retried on a concurrent change)
//! and the stock, and moves counters, seats, plan, audit record and changes together.

use async_trait::async_trait;
use redis::Value;
use ticket_core::ids::SessionId;
use ticket_core::model::inventory::{Grade, InventoryPlan};
use ticket_core::model::sale::{
    CapacityChange, CapacityDelta, CapacityOutcome, SaleState, SaleStateChange, SaleStateOutcome,
    SaleSwitch, decide_sale_transition,
};
use ticket_core::store::SaleControl;
use ticket_core::{Error, Result, Timestamp};

use crate::codec::check_text;
use crate::inventory::{StockHash, grade_state_counts};
use crate::reply::{array, at, int, opt_int, refusal, tagged, text, to_json, unavailable};
use crate::store::RedisStore;

/// How many times a capacity change is computed again after another one changed the plan
/// between its read and its write.
const CAPACITY_ATTEMPTS: usize = 5;

/// The decision table of `lua/sale_state.lua` for a move to `to`: `",STATE:c"` per current
/// state, `c` being `A` (already there), `M` (a legal move) or `I` (illegal), from
/// [`decide_sale_transition`]: the rules stay in `ticket-core`.
fn sale_table(to: SaleState) -> String {
    SaleState::ALL
        .into_iter()
        .map(|from| {
            let code = match decide_sale_transition(from, to) {
                Ok(false) => 'A',
                Ok(true) => 'M',
                Err(_) => 'I',
            };
            format!(",{}:{code}", from.as_str())
        })
        .collect()
}

/// The switch from its stored fields: the state's index, since (`None`: never moved) and
/// reason (`None`: never moved).
fn switch_of(state: Option<i64>, since: Option<i64>, reason: Option<String>) -> Result<SaleSwitch> {
    let index = state.unwrap_or(0);
    let state = usize::try_from(index)
        .ok()
        .and_then(|i| SaleState::ALL.get(i).copied())
        .ok_or_else(|| Error::Corrupt(format!("sale switch in state {index}")))?;
    Ok(SaleSwitch {
        state,
        since: since.filter(|s| *s != 0).map(Timestamp::from_millis),
        reason,
    })
}

/// An optional string that may be empty (unlike `reply::opt_text`, `""` is `Some`).
fn opt_string(v: &Value, what: &str) -> Result<Option<String>> {
    match v {
        Value::Nil => Ok(None),
        _ => text(v, what).map(|s| Some(s.to_owned())),
    }
}

/// The script's name of a change and its arguments after it: grade and units, or `"" ""`
/// then seat id and grade pairs (the grades of removed seats from `plan`, the plan the change
/// is applied to).
fn change_args(delta: &CapacityDelta, plan: &InventoryPlan) -> Result<Vec<String>> {
    let units = |op: &str, grade: &Grade, n: u32| {
        vec![op.to_owned(), grade.as_str().to_owned(), n.to_string()]
    };
    Ok(match delta {
        CapacityDelta::AddUnits { grade, units: n } => units("add_units", grade, *n),
        CapacityDelta::RemoveUnits { grade, units: n } => units("remove_units", grade, *n),
        CapacityDelta::AddSeats { seats } => {
            let mut out = vec!["add_seats".to_owned(), String::new(), String::new()];
            for s in seats {
                out.push(s.id.as_str().to_owned());
                out.push(s.grade.as_str().to_owned());
            }
            out
        }
        CapacityDelta::RemoveSeats { seats } => {
            let InventoryPlan::Seated { seats: existing } = plan else {
                return Err(ticket_core::InvalidInput::SelectionKind.into());
            };
            let mut out = vec!["remove_seats".to_owned(), String::new(), String::new()];
            for id in seats {
                let seat = existing.iter().find(|s| &s.id == id).ok_or_else(|| {
                    Error::Corrupt(format!(
                        "seat {id} vanished from the plan it was checked in"
                    ))
                })?;
                out.push(id.as_str().to_owned());
                out.push(seat.grade.as_str().to_owned());
            }
            out
        }
    })
}

/// The grades a change touches: the request's, or for removed seats their grades in `plan`.
fn touched_grades(delta: &CapacityDelta, plan: &InventoryPlan) -> Vec<Grade> {
    match (delta, plan) {
        (CapacityDelta::RemoveSeats { seats: gone }, InventoryPlan::Seated { seats }) => {
            let mut out: Vec<Grade> = Vec::new();
            for s in seats.iter().filter(|s| gone.contains(&s.id)) {
                if !out.contains(&s.grade) {
                    out.push(s.grade.clone());
                }
            }
            out
        }
        _ => delta.grades(),
    }
}

impl RedisStore {
    /// The current plan's stored form and version, and the switch's state and since, read
    /// at one instant (`MULTI`: both hashes are in the session's slot).
    async fn plan_and_switch(
        &self,
        session: SessionId,
    ) -> Result<(Option<String>, i64, Option<i64>, Option<i64>)> {
        let keys = &self.inner.keys;
        let (def, stock): (Vec<Value>, Vec<Value>) = redis::pipe()
            .atomic()
            .cmd("HMGET")
            .arg(keys.session_key(session, "def"))
            .arg("plan")
            .arg("pv")
            .cmd("HMGET")
            .arg(keys.session_key(session, "stock"))
            .arg("sw")
            .arg("swat")
            .query_async(&mut self.conn())
            .await
            .map_err(unavailable)?;
        let field = |v: &[Value], i: usize| -> Result<Value> { Ok(at(v, i, "plan")?.clone()) };
        Ok((
            opt_string(&field(&def, 0)?, "plan")?,
            opt_int(&field(&def, 1)?, "plan version")?.unwrap_or(0),
            opt_int(&field(&stock, 0)?, "sale switch")?,
            opt_int(&field(&stock, 1)?, "sale switch since")?,
        ))
    }
}

#[async_trait]
impl SaleControl for RedisStore {
    /// The switch's fields, read in one `MULTI`.
    async fn sale_switch(&self, session: SessionId) -> Result<SaleSwitch> {
        self.session_def(session).await?;
        let keys = &self.inner.keys;
        let (stock, reason): (Vec<Option<i64>>, Option<String>) = redis::pipe()
            .atomic()
            .cmd("HMGET")
            .arg(keys.session_key(session, "stock"))
            .arg("sw")
            .arg("swat")
            .cmd("HGET")
            .arg(keys.session_key(session, "def"))
            .arg("swr")
            .query_async(&mut self.conn())
            .await
            .map_err(unavailable)?;
        let field = |i: usize| stock.get(i).copied().flatten();
        switch_of(field(0), field(1), reason)
    }

    /// One `lua/sale_state.lua` call: decision, switch, audit record and change together.
    async fn set_sale_state(&self, req: SaleStateChange) -> Result<SaleStateOutcome> {
        req.validate()?;
        check_text("reason", &req.reason)?;
        let owner = req.actor.owner()?;
        let mut inv = self.session_call(&self.inner.scripts.sale_state, req.session);
        inv.arg(req.now.as_millis())
            .arg(to_json(&req.actor)?)
            .arg(owner.as_str())
            .arg(req.to.as_str())
            .arg(sale_table(req.to))
            .arg(&req.reason);
        let reply = self.run(&inv).await?;
        let (tag, rest) = tagged(&reply, "sale_state")?;
        match tag {
            "ok" => {
                let changed = int(at(rest, 0, "sale_state")?, "changed")? == 1;
                let since = match text(at(rest, 2, "sale_state")?, "since")? {
                    "" => None,
                    s => Some(
                        s.parse::<i64>()
                            .map_err(|_| Error::Corrupt(format!("sale switch since {s:?}")))?,
                    ),
                };
                let switch = switch_of(
                    Some(int(at(rest, 1, "sale_state")?, "state")?),
                    since,
                    opt_string(at(rest, 3, "sale_state")?, "reason")?,
                )?;
                Ok(SaleStateOutcome { switch, changed })
            }
            "err" => Err(refusal(at(rest, 0, "sale_state")?)),
            "nf" => Err(Error::not_found("session", req.session)),
            other => Err(Error::Corrupt(format!("sale_state reply tag {other:?}"))),
        }
    }

    /// Reads the current plan, its version and the switch at one instant, applies the
    /// change to the plan in Rust, then one `lua/capacity.lua` call checks the version and
    /// the stock and writes everything; a concurrent change to the plan makes it start over
    /// (up to 5 times, then `Unavailable`: nothing was written).
    async fn change_capacity(&self, req: CapacityChange) -> Result<CapacityOutcome> {
        req.validate()?;
        check_text("reason", &req.reason)?;
        let owner = req.actor.owner()?;
        let created = self.session_def(req.session).await?;
        let reason = if req.reason.is_empty() {
            req.delta.describe()
        } else {
            format!("{}: {}", req.delta.describe(), req.reason)
        };
        let actor = to_json(&req.actor)?;
        for _ in 0..CAPACITY_ATTEMPTS {
            let (stored, version, state, since) = self.plan_and_switch(req.session).await?;
            let switch = switch_of(state, since, None)?;
            if switch.state == SaleState::Cancelled
                && let Some(r) = switch.refusal()
            {
                return Err(r.into());
            }
            let plan = self.remember_plan(req.session, &created, stored.as_deref())?;
            let next = req.delta.apply_to(&plan)?;
            let mut inv = self.session_call(&self.inner.scripts.capacity, req.session);
            inv.arg(req.now.as_millis())
                .arg(&actor)
                .arg(owner.as_str())
                .arg(version)
                .arg(to_json(&next)?)
                .arg(&reason)
                .arg(change_args(&req.delta, &plan)?);
            let reply = self.run(&inv).await?;
            let (tag, rest) = tagged(&reply, "capacity")?;
            match tag {
                "ok" => {
                    let stock: StockHash = array(at(rest, 0, "capacity")?, "stock")?
                        .chunks(2)
                        .map(|kv| match kv {
                            [k, v] => Ok((text(k, "stock field")?.to_owned(), int(v, "counter")?)),
                            _ => Err(Error::Corrupt("odd-length stock hash".into())),
                        })
                        .collect::<Result<_>>()?;
                    let touched = touched_grades(&req.delta, &plan);
                    let grades = created
                        .inventory
                        .grades()
                        .into_iter()
                        .filter(|g| touched.contains(g))
                        .map(|g| grade_state_counts(req.session, g, &stock))
                        .collect::<Result<Vec<_>>>()?;
                    self.inner
                        .plans
                        .insert(req.session, std::sync::Arc::new(next.clone()));
                    return Ok(CapacityOutcome { plan: next, grades });
                }
                "stale" => continue,
                "err" => return Err(refusal(at(rest, 0, "capacity")?)),
                "nf" => return Err(Error::not_found("session", req.session)),
                other => return Err(Error::Corrupt(format!("capacity reply tag {other:?}"))),
            }
        }
        Err(Error::Unavailable(
            format!(
                "the plan of session {} changed concurrently {CAPACITY_ATTEMPTS} times: \
                 nothing was written, try again",
                req.session
            )
            .into(),
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_decision_table_follows_ticket_core() {
        assert_eq!(
            sale_table(SaleState::Paused),
            ",OPEN:M,PAUSED:A,CLOSED:I,CANCELLED:I"
        );
        assert_eq!(
            sale_table(SaleState::Cancelled),
            ",OPEN:M,PAUSED:M,CLOSED:M,CANCELLED:A"
        );
    }

    #[test]
    fn an_absent_switch_is_open_since_creation() {
        assert_eq!(
            switch_of(None, None, None).ok(),
            Some(SaleSwitch::default())
        );
        assert!(switch_of(Some(7), None, None).is_err());
    }
}
