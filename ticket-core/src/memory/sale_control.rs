//! The organiser's sale switch and capacity changes, each under the session's lock.

use super::session_state::{Audit, SessionState};
use crate::error::{Refusal, Result};
use crate::model::audit::Subject;
use crate::model::counts::GradeStateCounts;
use crate::model::sale::{
    CAPACITY_CHANGED, CapacityChange, CapacityOutcome, SaleState, SaleStateChange,
    SaleStateOutcome, SaleSwitch, decide_sale_transition,
};

impl SessionState {
    /// Moves the switch with its audit record and change.
    pub(super) fn set_sale_state(&mut self, req: &SaleStateChange) -> Result<SaleStateOutcome> {
        let owner = req.actor.owner()?;
        let from = self.switch.state;
        if !decide_sale_transition(from, req.to)? {
            return Ok(SaleStateOutcome {
                switch: self.switch.clone(),
                changed: false,
            });
        }
        let at = self.record(Audit {
            at: req.now,
            subject: Subject::Session(self.session.id),
            owner: &owner,
            actor: &req.actor,
            from: Some(from.as_str()),
            to: req.to.as_str(),
            reason: &req.reason,
            correlation_id: None,
        });
        self.switch = SaleSwitch {
            state: req.to,
            since: Some(at),
            reason: Some(req.reason.clone()),
        };
        Ok(SaleStateOutcome {
            switch: self.switch.clone(),
            changed: true,
        })
    }

    /// Applies a capacity change to the plan and the stock, all or nothing.
    pub(super) fn change_capacity(&mut self, req: &CapacityChange) -> Result<CapacityOutcome> {
        let owner = req.actor.owner()?;
        if self.switch.state == SaleState::Cancelled {
            return Err(self.switch.refusal().unwrap_or(Refusal::SalesPaused).into());
        }
        let plan = req.delta.apply_to(&self.session.inventory)?;
        self.stock.change_capacity(&req.delta)?;
        self.session.inventory = plan.clone();
        let reason = if req.reason.is_empty() {
            req.delta.describe()
        } else {
            format!("{}: {}", req.delta.describe(), req.reason)
        };
        self.record(Audit {
            at: req.now,
            subject: Subject::Session(self.session.id),
            owner: &owner,
            actor: &req.actor,
            from: None,
            to: CAPACITY_CHANGED,
            reason: &reason,
            correlation_id: None,
        });
        let touched = req.delta.grades();
        let grades: Vec<GradeStateCounts> = self
            .counts()
            .grades
            .into_iter()
            .filter(|g| touched.contains(&g.grade))
            .collect();
        Ok(CapacityOutcome { plan, grades })
    }
}
