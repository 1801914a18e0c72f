//! Holds, their state machine and the audit trail.

use std::sync::{Arc, LazyLock};

use async_trait::async_trait;
use dashmap::DashMap;
use redis::Value;
use ticket_core::ids::{AuditId, HoldId, SessionId, UserId};
use ticket_core::model::audit::{Actor, AuditRecord, AuditScope, Subject};
use ticket_core::model::hold::{
    AdmissionCheck, Decision, Hold, HoldState, NewHold, RebookRequest, StockEffect,
    TransitionOutcome, TransitionRequest, decide_parts, price_selection, rebook_allowed_from,
};
use ticket_core::store::Reservations;
use ticket_core::{Error, InvalidInput, Refusal, Result, Timestamp};

use crate::batch::{Batch, Batched};
use crate::codec::{
    HoldDoc, audit_entry, audit_record, check_text, grade_counts, hold, pack_audit, seat_list,
};
use crate::reply::{array, at, int, opt_text, refusal, tagged, text, to_json, unavailable};
use crate::store::{RedisStore, audit_id_prefix};

/// One hold request, as the `hold` script reads it (13 arguments, see `lua/hold.lua`).
pub(crate) struct HoldArgs {
    /// The request's instant (also `args[2]`), for the batch's audit ids.
    now: Timestamp,
    args: [String; 13],
}

impl HoldArgs {
    fn id(&self) -> &str {
        &self.args[0]
    }
}

impl Batched for HoldArgs {
    /// One pipeline, one round trip: the `claim_ids` script (`HSETNX` of every hold id in the
    /// global index), then the `hold` script for the whole batch. A request whose id was already
    /// taken in another session is compensated (its new hold released at once) and answered
    /// `dup`; refused requests give their index entry back.
    async fn run(store: &RedisStore, session: SessionId, reqs: &[Self]) -> Result<Vec<Value>> {
        let now = reqs.first().map_or(Timestamp::from_millis(0), |r| r.now);
        let keys = &store.inner.keys;
        let script = &store.inner.scripts.hold;
        let aid = audit_id_prefix(now);
        let index = keys.hold_index();
        // The id claims, then the batch, both by SHA, sent as one pipeline.
        let commands = || {
            let mut claim = redis::cmd("EVALSHA");
            claim
                .arg(store.inner.scripts.claim_ids.get_hash())
                .arg(1)
                .arg(&index)
                .arg(session.to_string());
            let mut batch = redis::cmd("EVALSHA");
            batch
                .arg(script.get_hash())
                .arg(1)
                .arg(keys.session(session))
                .arg(store.inner.config.audit_max_len)
                .arg(&aid)
                .arg(reqs.len());
            for r in reqs {
                claim.arg(r.id());
                batch.arg(&r.args[..]);
            }
            (claim, batch)
        };
        let (claim, batch) = commands();
        let mut pipe = redis::pipe();
        pipe.add_command(claim).add_command(batch);
        let mut conn = store.conn();
        let (claimed, replies) = match pipe.query_async::<(Value, Value)>(&mut conn).await {
            Ok((claimed, replies)) => {
                let claimed = array(&claimed, "claim_ids")?
                    .iter()
                    .map(|v| Ok(int(v, "claim")? == 1))
                    .collect::<Result<Vec<bool>>>()?;
                (claimed, replies)
            }
            Err(e) if e.kind() == redis::ErrorKind::NoScriptError => {
                // A restarted or flushed server: load both scripts and run them again, then
                // read back which claims are ours (the first claim may have run already).
                for s in [&store.inner.scripts.claim_ids, script] {
                    s.load_async(&mut conn).await.map_err(unavailable)?;
                }
                let (claim, batch) = commands();
                let _: Value = claim.query_async(&mut conn).await.map_err(unavailable)?;
                let replies: Value = batch.query_async(&mut conn).await.map_err(unavailable)?;
                let owners: Vec<Option<String>> = redis::cmd("HMGET")
                    .arg(&index)
                    .arg(reqs.iter().map(HoldArgs::id).collect::<Vec<_>>())
                    .query_async(&mut conn)
                    .await
                    .map_err(unavailable)?;
                let mine = session.to_string();
                let claimed = owners.iter().map(|o| o.as_deref() == Some(&mine)).collect();
                (claimed, replies)
            }
            Err(e) => return Err(unavailable(e)),
        };
        let Value::Array(mut replies) = replies else {
            return Err(Error::Corrupt(format!("hold batch reply: {replies:?}")));
        };
        let mut give_back = Vec::new();
        for ((req, claimed), reply) in reqs.iter().zip(claimed).zip(replies.iter_mut()) {
            let tag = tagged(reply, "hold")?.0.to_owned();
            match (tag.as_str(), claimed) {
                ("ok", false) => {
                    store.release_duplicate(session, req, now).await?;
                    *reply = Value::Array(vec![Value::SimpleString("dup".into())]);
                }
                ("err", true) => give_back.push(req.id().to_owned()),
                _ => {}
            }
        }
        if !give_back.is_empty() {
            // Best effort, off the callers' path: an index entry without a hold reads as
            // NotFound anyway.
            let mut conn = store.conn();
            tokio::spawn(async move {
                if let Err(e) = redis::cmd("HDEL")
                    .arg(index)
                    .arg(give_back)
                    .exec_async(&mut conn)
                    .await
                {
                    tracing::debug!(error = %e, "could not drop index entries of refused holds");
                }
            });
        }
        Ok(replies)
    }

    fn batchers(store: &RedisStore) -> &DashMap<SessionId, Arc<Batch<Self>>> {
        &store.inner.batchers.holds
    }
}

/// For each target state, the script's code for each
/// `(from, due, rebooked)` under `decide_parts` (see `lua/transition.lua`): the state machine
/// stays in `ticket-core`, the script only looks the answer up. Computed once.
static DECISION_TABLES: LazyLock<Vec<(HoldState, String)>> = LazyLock::new(|| {
    HoldState::ALL
        .into_iter()
        .map(|to| (to, decision_table(to)))
        .collect()
});

fn decision_table(to: HoldState) -> String {
    let expires = Timestamp::from_millis(1);
    let mut table = String::new();
    for from in HoldState::ALL {
        table.push(',');
        table.push_str(from.as_str());
        table.push(':');
        for (now, rebooked) in [(0, false), (0, true), (1, false), (1, true)] {
            let code = match decide_parts(from, expires, rebooked, to, Timestamp::from_millis(now))
            {
                Ok(Decision::AlreadyThere) => 'A',
                Ok(Decision::ExpireInstead) => 'X',
                Ok(Decision::Apply(StockEffect::None)) => '0',
                Ok(Decision::Apply(StockEffect::HeldToSold)) => 'S',
                Ok(Decision::Apply(StockEffect::HeldToAvailable)) => 'V',
                Ok(Decision::Apply(StockEffect::SoldToAvailable)) => 'C',
                Err(Refusal::NotDue { .. }) => 'D',
                Err(_) => 'I',
            };
            table.push(code);
        }
    }
    table
}

/// `",EXPIRED,RELEASED,…,"`: the states `rebook_allowed_from` accepts. Computed once.
static REBOOKABLE_STATES: LazyLock<String> = LazyLock::new(|| {
    let mut s = String::from(",");
    for st in HoldState::ALL {
        if rebook_allowed_from(st).is_ok() {
            s.push_str(st.as_str());
            s.push(',');
        }
    }
    s
});

fn limit_arg(limit: Option<u32>) -> String {
    limit.map(|l| l.to_string()).unwrap_or_default()
}

impl RedisStore {
    /// The session a hold belongs to, from the global hold index.
    async fn session_of(&self, id: HoldId) -> Result<SessionId> {
        let raw: Value = redis::cmd("HGET")
            .arg(self.inner.keys.hold_index())
            .arg(id.to_string())
            .query_async(&mut self.conn())
            .await
            .map_err(unavailable)?;
        match opt_text(&raw, "hold index")? {
            Some(s) => s
                .parse()
                .map_err(|_| Error::Corrupt(format!("hold index holds {s:?}"))),
            None => Err(Error::not_found("hold", id)),
        }
    }

    /// Claims `id` for `session` in the global index (`HSETNX`), so no two holds anywhere
    /// share an id.
    async fn claim_hold_id(&self, id: HoldId, session: SessionId) -> Result<()> {
        let set: i64 = redis::cmd("HSETNX")
            .arg(self.inner.keys.hold_index())
            .arg(id.to_string())
            .arg(session.to_string())
            .query_async(&mut self.conn())
            .await
            .map_err(unavailable)?;
        match set {
            1 => Ok(()),
            _ => Err(InvalidInput::Definition(format!("hold id {id} already used")).into()),
        }
    }

    async fn unclaim_hold_id(&self, id: HoldId) -> Result<()> {
        redis::cmd("HDEL")
            .arg(self.inner.keys.hold_index())
            .arg(id.to_string())
            .exec_async(&mut self.conn())
            .await
            .map_err(unavailable)
    }

    /// Runs the transition script on a hold of `session`.
    async fn transition_in(
        &self,
        session: SessionId,
        req: TransitionRequest,
    ) -> Result<TransitionOutcome> {
        let table = DECISION_TABLES
            .iter()
            .find(|(to, _)| *to == req.to)
            .map(|(_, t)| t.as_str())
            .ok_or_else(|| Error::Corrupt(format!("no decision table for {:?}", req.to)))?;
        let mut inv = self.session_call(&self.inner.scripts.transition, session, req.now);
        inv.arg(req.now.as_millis())
            .arg(to_json(&req.actor)?)
            .arg(req.hold.to_string())
            .arg(req.to.as_str())
            .arg(table)
            .arg(&req.reason)
            .arg(req.correlation_id.as_deref().unwrap_or(""))
            .arg(req.payment_ref.as_deref().unwrap_or(""));
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

    /// A hold was created under an id that another session already uses: release it at once
    /// (units back on sale, audited) so nothing is kept under an id that leads elsewhere.
    async fn release_duplicate(
        &self,
        session: SessionId,
        req: &HoldArgs,
        now: Timestamp,
    ) -> Result<()> {
        let id: HoldId = req
            .id()
            .parse()
            .map_err(|_| Error::Corrupt(format!("hold id {:?}", req.id())))?;
        self.transition_in(
            session,
            TransitionRequest {
                hold: id,
                to: HoldState::Released,
                now,
                actor: Actor::system("hold"),
                reason: "hold id already used in another session".into(),
                correlation_id: None,
                payment_ref: None,
            },
        )
        .await
        .map(drop)
    }

    async fn audit_of(
        &self,
        session: SessionId,
        scope: &str,
        subject: &str,
        limit: usize,
    ) -> Result<Vec<AuditRecord>> {
        let mut inv = self.session_call(
            &self.inner.scripts.audit_read,
            session,
            Timestamp::from_millis(0),
        );
        inv.arg(scope).arg(subject).arg(limit);
        let reply = self.run(&inv).await?;
        let items = array(&reply, "audit")?;
        if scope == "session" {
            let mut out = Vec::new();
            for entry in items {
                out.extend(audit_entry(session, entry)?);
            }
            out.truncate(limit);
            Ok(out)
        } else {
            items
                .iter()
                .map(|r| audit_record(session, text(r, "audit record")?))
                .collect()
        }
    }

    async fn expire_in(
        &self,
        session: SessionId,
        now: Timestamp,
        limit: usize,
    ) -> Result<Vec<Hold>> {
        let mut inv = self.session_call(&self.inner.scripts.expire, session, now);
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
    /// the same session): admission, per-user limit and stock are checked and taken in one
    /// atomic step per request.
    async fn hold(&self, req: NewHold) -> Result<Hold> {
        let session = self.session_def(req.session).await?;
        if let Some(c) = &req.correlation_id {
            check_text("correlation id", c)?;
        }
        let (items, amount) = price_selection(&session.inventory, &req.selection)?;
        let created = pack_audit(&AuditRecord {
            id: AuditId::new_at(req.now),
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
            ],
        };
        let reply = self.submit(req.session, args).await?;
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
        let mut inv = self.session_call(
            &self.inner.scripts.hold_read,
            session,
            Timestamp::from_millis(0),
        );
        inv.arg("one").arg(id.to_string());
        hold(session, id, &self.run(&inv).await?)
    }

    /// One script: looks the decision up in the table computed from `decide_parts`, and
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

    async fn rebook(&self, req: RebookRequest) -> Result<Hold> {
        check_text("payment reference", &req.payment_ref)?;
        let session = self.session_of(req.hold).await?;
        self.claim_hold_id(req.new_id, session).await?;
        let mut inv = self.session_call(&self.inner.scripts.rebook, session, req.now);
        inv.arg(req.now.as_millis())
            .arg(to_json(&req.actor)?)
            .arg(req.hold.to_string())
            .arg(req.new_id.to_string())
            .arg(&req.payment_ref)
            .arg(limit_arg(req.per_user_limit))
            .arg(REBOOKABLE_STATES.as_str())
            .arg(format!("late payment for {} re-booked", req.hold));
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

    /// Counts due holds in every session (one pipelined read), then expires them session by
    /// session; each script claims its holds from the expiry index, so racing sweepers on
    /// any number of servers expire each hold once.
    async fn expire_due(&self, now: Timestamp, limit: usize) -> Result<Vec<Hold>> {
        let sessions = self.all_sessions().await?;
        // Seconds of the expiry index up to now (the current one may hold nothing due yet).
        let second = now.as_millis().div_euclid(1000);
        let mut pipe = redis::pipe();
        for s in &sessions {
            pipe.cmd("ZCOUNT")
                .arg(self.inner.keys.session_key(*s, "expb"))
                .arg("-inf")
                .arg(second);
        }
        let due: Vec<u64> = if sessions.is_empty() {
            Vec::new()
        } else {
            pipe.query_async(&mut self.conn())
                .await
                .map_err(unavailable)?
        };
        let mut out = Vec::new();
        for (session, n) in sessions.into_iter().zip(due) {
            if out.len() >= limit {
                break;
            }
            if n > 0 {
                out.extend(self.expire_in(session, now, limit - out.len()).await?);
            }
        }
        Ok(out)
    }

    async fn holds_of(&self, session: SessionId, user: &UserId) -> Result<Vec<Hold>> {
        self.session_def(session).await?;
        let mut inv = self.session_call(
            &self.inner.scripts.hold_read,
            session,
            Timestamp::from_millis(0),
        );
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

    /// Reads the session's audit stream (through the per-hold and per-user indexes for
    /// those scopes). A user's records span sessions: every session is read and merged.
    async fn audit(&self, scope: &AuditScope, limit: usize) -> Result<Vec<AuditRecord>> {
        match scope {
            AuditScope::Session(id) => {
                self.session_def(*id).await?;
                self.audit_of(*id, "session", "", limit).await
            }
            AuditScope::Hold(id) => {
                let session = self.session_of(*id).await?;
                self.audit_of(session, "hold", &id.to_string(), limit).await
            }
            AuditScope::User(user) => {
                let mut all = Vec::new();
                for s in self.all_sessions().await? {
                    all.extend(self.audit_of(s, "user", user.as_str(), limit).await?);
                }
                all.sort_by_key(|r| (r.at, r.id));
                all.truncate(limit);
                Ok(all)
            }
        }
    }
}
