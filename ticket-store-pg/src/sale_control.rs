//! The organiser's controls ([`SaleControl`]): the sale switch and capacity changes, each one
//! function call (`sql/sale_control.sql`) under the session's advisory lock, which holds and
//! re-bookings take before they read the switch.

use std::sync::LazyLock;

use async_trait::async_trait;
use ticket_core::ids::SessionId;
use ticket_core::model::counts::GradeStateCounts;
use ticket_core::model::hold::HoldState;
use ticket_core::model::inventory::Grade;
use ticket_core::model::sale::{
    CapacityChange, CapacityOutcome, SaleState, SaleStateChange, SaleStateOutcome, SaleSwitch,
    decide_sale_transition,
};
use ticket_core::store::SaleControl;
use ticket_core::{Error, Refusal, Result, Timestamp};

use crate::answers::{err_code, refusal};
use crate::reservations::actor_json;
use crate::rows::{count, text};
use crate::store::{PgStore, db_error, decode};

/// How many times a capacity change is computed again when another one changed the plan
/// between its read and its transaction.
const CAPACITY_ATTEMPTS: usize = 5;

/// For each target state, what `tr_set_sale_state` does from each current state ('same',
/// 'move' or 'illegal'), as [`decide_sale_transition`] decides: the state machine stays in
/// `ticket-core`. Computed once.
static SALE_DECISIONS: LazyLock<Vec<(SaleState, serde_json::Value)>> = LazyLock::new(|| {
    SaleState::ALL
        .into_iter()
        .map(|to| {
            let table: serde_json::Map<String, serde_json::Value> = SaleState::ALL
                .into_iter()
                .map(|from| {
                    let decision = match decide_sale_transition(from, to) {
                        Ok(false) => "same",
                        Ok(true) => "move",
                        Err(_) => "illegal",
                    };
                    (from.as_str().to_owned(), decision.into())
                })
                .collect();
            (to, table.into())
        })
        .collect()
});

fn state(name: &str) -> Result<SaleState> {
    SaleState::parse(name).ok_or_else(|| Error::Corrupt(format!("stored sale state {name:?}")))
}

/// A switch as `tr_set_sale_state` answers it (`state`, `since`, `reason`).
fn switch(answer: &serde_json::Value) -> Result<SaleSwitch> {
    Ok(SaleSwitch {
        state: state(text(answer, "state")?)?,
        since: answer
            .get("since")
            .and_then(serde_json::Value::as_i64)
            .map(Timestamp::from_millis),
        reason: answer
            .get("reason")
            .and_then(serde_json::Value::as_str)
            .map(str::to_owned),
    })
}

/// The error of an answer about `session`, if any (`nf`, `err`).
fn check(answer: &serde_json::Value, session: SessionId) -> Result<()> {
    if answer.get("nf").is_some() {
        return Err(Error::not_found("session", session));
    }
    if err_code(answer).is_some() {
        // no hold state is involved: `refusal` uses it for hold transitions only
        return Err(refusal(answer, HoldState::Held));
    }
    Ok(())
}

/// The counters of a grade as `tr_change_capacity` answers them.
fn grade_counts(g: &serde_json::Value) -> Result<GradeStateCounts> {
    let n = |f: &str| -> Result<u32> {
        u32::try_from(count(g, f)?).map_err(|_| Error::Corrupt(format!("{f} out of range")))
    };
    Ok(GradeStateCounts {
        grade: Grade::new(text(g, "grade")?)
            .map_err(|e| Error::Corrupt(format!("stored grade: {e}")))?,
        capacity: n("capacity")?,
        available: n("available")?,
        held: n("held")?,
        paying: n("paying")?,
        sold: n("sold")?,
    })
}

#[async_trait]
impl SaleControl for PgStore {
    /// One primary-key read of the session's row.
    async fn sale_switch(&self, session: SessionId) -> Result<SaleSwitch> {
        let row: Option<(String, Option<i64>, Option<String>)> = sqlx::query_as(
            "SELECT sale_state, sale_since, sale_reason FROM sessions WHERE id = $1",
        )
        .bind(session.as_uuid())
        .fetch_optional(&self.inner.pool)
        .await
        .map_err(db_error)?;
        let (name, since, reason) = row.ok_or_else(|| Error::not_found("session", session))?;
        Ok(SaleSwitch {
            state: state(&name)?,
            since: since.map(Timestamp::from_millis),
            reason,
        })
    }

    /// One `tr_set_sale_state` call: decides with the table of [`decide_sale_transition`],
    /// stores the switch and writes its audit record and change in one transaction.
    async fn set_sale_state(&self, req: SaleStateChange) -> Result<SaleStateOutcome> {
        req.validate()?;
        let owner = req.actor.owner()?;
        let table = SALE_DECISIONS
            .iter()
            .find(|(to, _)| *to == req.to)
            .map(|(_, t)| t.clone())
            .ok_or_else(|| Error::Corrupt(format!("no decision table for {:?}", req.to)))?;
        let answer: serde_json::Value =
            sqlx::query_scalar("SELECT tr_set_sale_state($1, $2, $3, $4, $5, $6, $7)")
                .bind(req.session.as_uuid())
                .bind(req.to.as_str())
                .bind(table)
                .bind(owner.as_str())
                .bind(actor_json(&req.actor)?)
                .bind(&req.reason)
                .bind(req.now.as_millis())
                .fetch_one(&self.inner.pool)
                .await
                .map_err(db_error)?;
        if err_code(&answer) == Some("illegal_sale") {
            return Err(Refusal::IllegalSaleTransition {
                from: state(text(&answer, "from")?)?,
                to: req.to,
            }
            .into());
        }
        check(&answer, req.session)?;
        Ok(SaleStateOutcome {
            switch: switch(&answer)?,
            changed: answer.get("changed").and_then(serde_json::Value::as_bool) == Some(true),
        })
    }

    /// Reads the current plan, applies the change to it here
    /// ([`CapacityDelta::apply_to`](ticket_core::model::sale::CapacityDelta::apply_to)), then
    /// one `tr_change_capacity` call checks that the plan is still that one (else computes
    /// again) and moves the stock, the seats and the plan with the audit record in one
    /// transaction.
    async fn change_capacity(&self, req: CapacityChange) -> Result<CapacityOutcome> {
        req.validate()?;
        let owner = req.actor.owner()?;
        let reason = if req.reason.is_empty() {
            req.delta.describe()
        } else {
            format!("{}: {}", req.delta.describe(), req.reason)
        };
        let delta = serde_json::to_value(&req.delta)
            .map_err(|e| Error::Corrupt(format!("capacity change: {e}")))?;
        for _ in 0..CAPACITY_ATTEMPTS {
            let (session, version) = self.current_session(req.session).await?;
            // a cancelled show is refused before the change is looked at, as in memory
            let current = self.sale_switch(req.session).await?;
            if current.state == SaleState::Cancelled
                && let Some(r) = current.refusal()
            {
                return Err(r.into());
            }
            let plan = req.delta.apply_to(&session.inventory)?;
            let plan_json =
                serde_json::to_value(&plan).map_err(|e| Error::Corrupt(format!("plan: {e}")))?;
            let answer: serde_json::Value =
                sqlx::query_scalar("SELECT tr_change_capacity($1, $2, $3, $4, $5, $6, $7, $8)")
                    .bind(req.session.as_uuid())
                    .bind(version)
                    .bind(&delta)
                    .bind(&plan_json)
                    .bind(owner.as_str())
                    .bind(actor_json(&req.actor)?)
                    .bind(&reason)
                    .bind(req.now.as_millis())
                    .fetch_one(&self.inner.pool)
                    .await
                    .map_err(db_error)?;
            if err_code(&answer) == Some("stale") {
                continue;
            }
            check(&answer, req.session)?;
            let grades: Vec<serde_json::Value> = decode(
                answer.get("grades").cloned().unwrap_or_default(),
                "grade counts",
            )?;
            let grades = grades
                .iter()
                .map(grade_counts)
                .collect::<Result<Vec<_>>>()?;
            // this store prices holds with the new plan from now on
            let mut updated = session.as_ref().clone();
            updated.inventory = plan.clone();
            self.inner
                .sessions
                .insert(req.session, std::sync::Arc::new(updated));
            return Ok(CapacityOutcome { plan, grades });
        }
        Err(Error::Unavailable(
            format!(
                "the plan of session {} kept changing under {CAPACITY_ATTEMPTS} capacity changes",
                req.session
            )
            .into(),
        ))
    }
}
