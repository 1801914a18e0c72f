//! Holds on the in-memory backend: each operation runs under its session's lock.

use crate::clock::Timestamp;
use crate::error::{Error, Refusal, Result};
use crate::ids::HoldId;
use crate::model::audit::{Actor, Subject};
use crate::model::hold::{
    AdmissionCheck, Decision, Hold, HoldState, NewHold, RebookRequest, StockEffect,
    TransitionOutcome, TransitionRequest, decide, decide_rebook, price_selection,
};
use crate::model::inventory::SeatState;

use super::session_state::{Audit, SessionState};

impl SessionState {
    /// Units the user holds or bought here, not counting live holds past their TTL.
    fn units_counted_for(&self, user: &crate::ids::UserId, now: Timestamp) -> u32 {
        self.holds_by_user
            .get(user)
            .into_iter()
            .flatten()
            .filter_map(|id| self.holds.get(id))
            .filter(|h| h.state.counts_toward_limit() && !h.is_due(now))
            .map(Hold::units)
            .sum()
    }

    /// The per-user limit: `requested` more units must keep the user's held and bought units
    /// in the session within `limit`.
    fn check_limit(
        &self,
        user: &crate::ids::UserId,
        limit: Option<u32>,
        requested: u32,
        now: Timestamp,
    ) -> Result<(), Refusal> {
        let Some(limit) = limit else { return Ok(()) };
        let current = self.units_counted_for(user, now);
        if current + requested > limit {
            return Err(Refusal::LimitExceeded {
                limit,
                current,
                requested,
            });
        }
        Ok(())
    }

    pub(super) fn hold(&mut self, req: NewHold) -> Result<Hold> {
        if let Some(refusal) = self.switch.refusal() {
            return Err(refusal.into());
        }
        let (items, amount) = price_selection(&self.session.inventory, &req.selection)?;
        let ticket = match req.admission {
            AdmissionCheck::Required => Some(self.queue.check_admission(&req.user, req.now)?),
            AdmissionCheck::NotRequired => None,
        };
        self.check_limit(&req.user, req.per_user_limit, items.units(), req.now)?;
        self.stock.take(&items, SeatState::Held)?;
        if let Some(ticket) = ticket {
            self.queue.mark_used(&req.user);
            self.record(Audit {
                at: req.now,
                subject: Subject::Ticket(ticket),
                owner: &req.user,
                actor: &req.actor,
                from: Some("ACTIVE"),
                to: "USED",
                reason: "hold made",
                correlation_id: req.correlation_id.as_deref(),
            });
        }
        let hold = req.held(items, amount, ticket);
        self.insert(hold.clone());
        self.record(Audit {
            at: req.now,
            subject: Subject::Hold(hold.id),
            owner: &hold.user,
            actor: &req.actor,
            from: None,
            to: HoldState::Held.as_str(),
            reason: "hold created",
            correlation_id: req.correlation_id.as_deref(),
        });
        Ok(hold)
    }

    fn insert(&mut self, hold: Hold) {
        self.users.add_hold(&hold.user, hold.created_at, hold.id);
        if hold.state.is_live() {
            self.expiry.insert((hold.expires_at, hold.id));
        }
        self.holds_by_user
            .entry(hold.user.clone())
            .or_default()
            .push(hold.id);
        self.holds.insert(hold.id, hold);
    }

    pub(super) fn transition(&mut self, req: TransitionRequest) -> Result<TransitionOutcome> {
        let hold = self
            .holds
            .get(&req.hold)
            .ok_or_else(|| Error::not_found("hold", req.hold))?;
        match decide(hold, req.to, req.now)? {
            Decision::AlreadyThere => Ok(TransitionOutcome {
                hold: hold.clone(),
                changed: false,
            }),
            Decision::ExpireInstead => {
                let expired_at = hold.expires_at;
                self.apply(
                    req.hold,
                    HoldState::Expired,
                    StockEffect::HeldToAvailable,
                    None,
                    req.now,
                    &req.actor,
                    "used after its TTL",
                    req.correlation_id.as_deref(),
                )?;
                Err(Refusal::HoldExpired { expired_at }.into())
            }
            Decision::Apply(effect) => {
                self.check_in_guard(req.hold, hold.state, req.to)?;
                let hold = self.apply(
                    req.hold,
                    req.to,
                    effect,
                    req.payment_ref,
                    req.now,
                    &req.actor,
                    &req.reason,
                    req.correlation_id.as_deref(),
                )?;
                Ok(TransitionOutcome {
                    hold,
                    changed: true,
                })
            }
        }
    }

    #[allow(clippy::too_many_arguments)]
    fn apply(
        &mut self,
        id: HoldId,
        to: HoldState,
        effect: StockEffect,
        payment_ref: Option<String>,
        now: Timestamp,
        actor: &Actor,
        reason: &str,
        correlation_id: Option<&str>,
    ) -> Result<Hold> {
        let hold = self
            .holds
            .get_mut(&id)
            .ok_or_else(|| Error::Corrupt(format!("hold {id} vanished under its lock")))?;
        let from = hold.state;
        hold.state = to;
        hold.updated_at = now;
        if payment_ref.is_some() {
            hold.payment_ref = payment_ref;
        }
        let hold = hold.clone();
        if from.is_live() && !to.is_live() {
            self.expiry.remove(&(hold.expires_at, id));
        }
        if to == HoldState::Paying && from != HoldState::Paying {
            self.paying.insert((hold.expires_at, id));
        } else if from == HoldState::Paying && to != HoldState::Paying {
            self.paying.remove(&(hold.expires_at, id));
        }
        self.stock.apply(&hold.items, effect);
        self.record(Audit {
            at: now,
            subject: Subject::Hold(id),
            owner: &hold.user,
            actor,
            from: Some(from.as_str()),
            to: to.as_str(),
            reason,
            correlation_id,
        });
        Ok(hold)
    }

    pub(super) fn rebook(&mut self, req: RebookRequest) -> Result<Hold> {
        let RebookRequest {
            hold: id,
            new_id,
            payment_ref,
            per_user_limit,
            actor,
            now,
        } = req;
        let actor = &actor;
        let old = self
            .holds
            .get(&id)
            .ok_or_else(|| Error::not_found("hold", id))?;
        if let Some(existing) = decide_rebook(old)? {
            return self
                .holds
                .get(&existing)
                .cloned()
                .ok_or_else(|| Error::Corrupt(format!("re-booked hold {existing} missing")));
        }
        let old = old.clone();
        if let Some(refusal) = self.switch.refusal() {
            return Err(refusal.into());
        }
        self.check_limit(&old.user, per_user_limit, old.units(), now)?;
        self.stock.take(&old.items, SeatState::Sold)?;
        let new = Hold {
            id: new_id,
            state: HoldState::Confirmed,
            created_at: now,
            expires_at: now,
            updated_at: now,
            payment_ref: Some(payment_ref),
            admission: None,
            rebooked_from: Some(id),
            rebooked_as: None,
            ..old.clone()
        };
        if let Some(o) = self.holds.get_mut(&id) {
            o.rebooked_as = Some(new_id);
            o.updated_at = now;
        }
        self.insert(new.clone());
        let reason = format!("late payment for {id} re-booked");
        self.record(Audit {
            at: now,
            subject: Subject::Hold(new_id),
            owner: &new.user,
            actor,
            from: None,
            to: HoldState::Confirmed.as_str(),
            reason: &reason,
            correlation_id: new.payment_ref.as_deref(),
        });
        Ok(new)
    }

    /// Up to `limit` PAYING holds due by `before`, soonest first.
    pub(super) fn paying_due(&self, before: Timestamp, limit: usize) -> Vec<Hold> {
        self.paying
            .iter()
            .take_while(|(at, _)| *at <= before)
            .take(limit)
            .filter_map(|(_, id)| self.holds.get(id))
            .cloned()
            .collect()
    }

    /// Expires up to `limit` due holds; returns them.
    pub(super) fn expire_due(&mut self, now: Timestamp, limit: usize) -> Result<Vec<Hold>> {
        let due: Vec<HoldId> = self
            .expiry
            .iter()
            .take_while(|(at, _)| *at <= now)
            .take(limit)
            .map(|(_, id)| *id)
            .collect();
        let sweeper = Actor::system("sweeper");
        due.into_iter()
            .map(|id| {
                self.apply(
                    id,
                    HoldState::Expired,
                    StockEffect::HeldToAvailable,
                    None,
                    now,
                    &sweeper,
                    "TTL elapsed",
                    None,
                )
            })
            .collect()
    }
}
