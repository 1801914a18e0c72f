//! The `Reservations` trait on Redis: holds, rebooking, the sweeper, reads and audit queries.

use async_trait::async_trait;
use ticket_core::ids::{AuditId, HoldId, SessionId, UserId};
use ticket_core::model::audit::{Actor, AuditRecord, AuditScope, Subject};
use ticket_core::model::check_in::{CheckInOutcome, CheckInRequest, TicketUse};
use ticket_core::model::hold::{
    AdmissionCheck, Hold, HoldState, NewHold, RebookRequest, TransitionOutcome, TransitionRequest,
    price_selection,
};
use ticket_core::model::page::{
    AuditCursor, AuditPage, AuditQuery, HoldCursor, HoldPage, check_limit,
};
use ticket_core::store::Reservations;
use ticket_core::{Error, InvalidInput, Refusal, Result, Timestamp};

use crate::codec::{HoldDoc, check_text, grade_counts, hold, pack_audit, seat_list};
use crate::hold_batch::HoldArgs;
use crate::reply::{array, at, opt_text, refusal, tagged, text, to_json};
use crate::store::RedisStore;
use crate::transitions::REBOOKABLE_STATES;
use crate::user_index::time_key;

fn limit_arg(limit: Option<u32>) -> String {
    limit.map(|l| l.to_string()).unwrap_or_default()
}

impl RedisStore {
    async fn expire_in(
        &self,
        session: SessionId,
        now: Timestamp,
        limit: usize,
    ) -> Result<Vec<Hold>> {
        let mut inv = self.session_call(&self.inner.scripts.expire, session);
        inv.arg(now.as_millis())
            .arg(to_json(&Actor::system("sweeper"))?)
            .arg(limit);
        let reply = self.run(&inv).await?;
        array(&reply, "expire")?
            .iter()
            .map(|pair| {
                let p = array(pair, "expired hold")?;
                let id: HoldId = text(at(p, 0, "expired hold")?, "hold id")?
                    .parse()
                    .map_err(|_| Error::Corrupt("expired hold id".into()))?;
                hold(session, id, at(p, 1, "expired hold")?)
            })
            .collect()
    }
}

#[async_trait]
impl Reservations for RedisStore {
    /// Claims the hold id, then runs the `hold` script (coalesced with concurrent holds of
    /// the same session): the sale switch, admission, per-user limit and stock are checked
    /// and taken in one atomic step per request.
    async fn hold(&self, req: NewHold) -> Result<Hold> {
        if let Some(c) = &req.correlation_id {
            check_text("correlation id", c)?;
        }
        let plan = self.current_plan(req.session).await?;
        let (items, amount) = match price_selection(&plan, &req.selection) {
            Ok(priced) => priced,
            // Seats added since this process read the plan: read it again, once. (Removed
            // seats are refused by the script: their state is gone.)
            Err(Error::Refused(Refusal::UnknownItem { .. })) => {
                price_selection(&*self.fresh_plan(req.session).await?, &req.selection)?
            }
            Err(e) => return Err(e),
        };
        // The id is a placeholder: the script numbers the record (AuditId::sequenced).
        let created = pack_audit(&AuditRecord {
            id: AuditId::sequenced(req.now, 0, req.session),
            at: req.now,
            session: req.session,
            subject: Subject::Hold(req.id),
            owner: req.user.clone(),
            actor: req.actor.clone(),
            from: None,
            to: HoldState::Held.as_str().to_owned(),
            reason: "hold created".to_owned(),
            correlation_id: req.correlation_id.clone(),
        })?;
        let doc = to_json(&HoldDoc {
            items: items.clone(),
            amount,
        })?;
        let args = HoldArgs {
            now: req.now,
            args: [
                req.id.to_string(),
                req.user.as_str().to_owned(),
                req.now.as_millis().to_string(),
                req.expires_at.as_millis().to_string(),
                limit_arg(req.per_user_limit),
                match req.admission {
                    AdmissionCheck::Required => "1".into(),
                    AdmissionCheck::NotRequired => "0".into(),
                },
                to_json(&req.actor)?,
                req.correlation_id.clone().unwrap_or_default(),
                doc,
                items.units().to_string(),
                grade_counts(&items),
                seat_list(&items),
                created,
                time_key(req.now),
            ],
        };
        let reply = self
            .inner
            .batches
            .holds
            .submit(self, req.session, args)
            .await?;
        let (tag, rest) = tagged(&reply, "hold")?;
        match tag {
            "ok" => {
                let admission = opt_text(at(rest, 0, "hold")?, "admission")?
                    .map(|s| {
                        s.parse()
                            .map_err(|_| Error::Corrupt(format!("admission ticket {s:?}")))
                    })
                    .transpose()?;
                Ok(req.held(items, amount, admission))
            }
            "err" => Err(refusal(at(rest, 0, "hold")?)),
            "dup" => {
                Err(InvalidInput::Definition(format!("hold id {} already used", req.id)).into())
            }
            other => Err(Error::Corrupt(format!("hold reply tag {other:?}"))),
        }
    }

    async fn get(&self, id: HoldId) -> Result<Hold> {
        let session = self.session_of(id).await?;
        let mut inv = self.session_call(&self.inner.scripts.hold_read, session);
        inv.arg("one").arg(id.to_string());
        hold(session, id, &self.run(&inv).await?)
    }

    /// One script: looks the decision up in the table computed from `decision_codes`, and
    /// applies it with its stock effect and audit record.
    async fn transition(&self, req: TransitionRequest) -> Result<TransitionOutcome> {
        check_text("reason", &req.reason)?;
        for (what, v) in [
            ("correlation id", &req.correlation_id),
            ("payment reference", &req.payment_ref),
        ] {
            if let Some(v) = v {
                check_text(what, v)?;
            }
        }
        let session = self.session_of(req.hold).await?;
        self.transition_in(session, req).await
    }

    /// One `lua/check_in.lua` call in the hold's session slot.
    async fn check_in(&self, req: CheckInRequest) -> Result<CheckInOutcome> {
        self.check_in_ticket(req).await
    }

    async fn check_ins(&self, id: HoldId) -> Result<Vec<TicketUse>> {
        self.ticket_uses(id).await
    }

    async fn rebook(&self, req: RebookRequest) -> Result<Hold> {
        check_text("payment reference", &req.payment_ref)?;
        let session = self.session_of(req.hold).await?;
        self.claim_hold_id(req.new_id, session).await?;
        let mut inv = self.session_call(&self.inner.scripts.rebook, session);
        inv.arg(req.now.as_millis())
            .arg(to_json(&req.actor)?)
            .arg(req.hold.to_string())
            .arg(req.new_id.to_string())
            .arg(&req.payment_ref)
            .arg(limit_arg(req.per_user_limit))
            .arg(REBOOKABLE_STATES.as_str())
            .arg(format!("late payment for {} re-booked", req.hold))
            .arg(time_key(req.now));
        let reply = self.run(&inv).await?;
        let (tag, rest) = tagged(&reply, "rebook")?;
        let out = match tag {
            "ok" => {
                let id: HoldId = text(at(rest, 0, "rebook")?, "hold id")?
                    .parse()
                    .map_err(|_| Error::Corrupt("rebooked hold id".into()))?;
                hold(session, id, at(rest, 1, "rebook")?)
            }
            "err" => Err(refusal(at(rest, 0, "rebook")?)),
            "nf" => Err(Error::not_found("hold", req.hold)),
            "dup" => {
                Err(InvalidInput::Definition(format!("hold id {} already used", req.new_id)).into())
            }
            other => Err(Error::Corrupt(format!("rebook reply tag {other:?}"))),
        };
        // The new id is only used if this call created the hold.
        if out.as_ref().map_or(true, |h| h.id != req.new_id) {
            self.unclaim_hold_id(req.new_id).await?;
        }
        out
    }

    /// Finds the sessions with due seconds in their expiry index (one pipelined read), then
    /// expires holds session by session; each script claims its holds from the expiry
    /// index, so racing sweepers on any number of servers expire each hold once.
    async fn expire_due(&self, now: Timestamp, limit: usize) -> Result<Vec<Hold>> {
        let mut out = Vec::new();
        for session in self.sessions_expiring_by(now).await? {
            if out.len() >= limit {
                break;
            }
            out.extend(self.expire_in(session, now, limit - out.len()).await?);
        }
        Ok(out)
    }

    /// Reads each session's expiry index up to `before` (`lua/paying_read.lua`, no write)
    /// and merges the sessions' PAYING holds by (expiry, id).
    async fn paying_due(&self, before: Timestamp, limit: usize) -> Result<Vec<Hold>> {
        self.paying_due_all(before, limit).await
    }

    async fn holds_of(&self, session: SessionId, user: &UserId) -> Result<Vec<Hold>> {
        self.session_def(session).await?;
        let mut inv = self.session_call(&self.inner.scripts.hold_read, session);
        inv.arg("user").arg(user.as_str());
        let reply = self.run(&inv).await?;
        array(&reply, "holds_of")?
            .iter()
            .map(|pair| {
                let p = array(pair, "hold")?;
                let id: HoldId = text(at(p, 0, "hold")?, "hold id")?
                    .parse()
                    .map_err(|_| Error::Corrupt("hold id".into()))?;
                hold(session, id, at(p, 1, "hold")?)
            })
            .collect()
    }

    /// Pages through [`Reservations::audit_page`], oldest first, until `limit` records.
    async fn audit(&self, scope: &AuditScope, limit: usize) -> Result<Vec<AuditRecord>> {
        match scope {
            AuditScope::Session(id) => drop(self.session_def(*id).await?),
            AuditScope::Hold(id) => drop(self.session_of(*id).await?),
            AuditScope::User(_) => {}
        }
        self.audit_all(scope, limit).await
    }

    /// From the user's index (`P:{u:<user>}`, written by the hold scripts), then the page's
    /// holds in one pipeline.
    async fn holds_of_user(
        &self,
        user: &UserId,
        after: Option<HoldCursor>,
        limit: usize,
    ) -> Result<HoldPage> {
        check_limit(limit)?;
        self.user_holds(user, after, limit).await
    }

    /// Session and hold scopes in one script (`lua/audit_page.lua`); the user scope from the
    /// user's index, then the records in one pipeline.
    async fn audit_page(&self, query: &AuditQuery) -> Result<AuditPage> {
        check_limit(query.limit)?;
        let records = match &query.scope {
            AuditScope::Session(id) => self.audit_page_in(*id, None, query).await?,
            AuditScope::Hold(id) => match self.session_of(*id).await {
                Ok(session) => self.audit_page_in(session, Some(*id), query).await?,
                Err(Error::NotFound { .. }) => Vec::new(),
                Err(e) => return Err(e),
            },
            AuditScope::User(user) => self.user_audit(user, query).await?,
        };
        Ok(AuditPage::of(records, query.limit, AuditCursor::of))
    }
}
