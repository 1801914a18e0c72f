//! The waiting queue: a sorted set per session scored by a per-session sequence (`INCR`),
//! never by wall-clock time, so FIFO order is the order in which joins reached Redis,
//! whatever the clocks of the app servers say.

use async_trait::async_trait;
use redis::Value;
use ticket_core::ids::{SessionId, TicketId, UserId};
use ticket_core::model::audit::Actor;
use ticket_core::model::page::check_limit;
use ticket_core::model::queue::QueueTicket;
use ticket_core::model::queue::{
    AdmissionLimit, AdmissionPacing, AdmissionRound, InLine, JoinRequest, PreQueueDraw,
    QueueFigures, QueueStats, QueueView, fresh_draw_seed,
};
use ticket_core::store::WaitingQueue;
use ticket_core::{Error, Result, Timestamp};

use crate::codec::ticket;
use crate::queue_batch::{JoinArgs, LeaveArgs, ViewArgs};
use crate::reply::{array, at, count, int, json, opt_text, refusal, tagged, text, to_json};
use crate::store::RedisStore;

/// Draw attempts before giving up while the pre-queue keeps changing under the shuffle.
const DRAW_ATTEMPTS: usize = 64;

fn system(component: &str) -> Result<String> {
    to_json(&Actor::system(component))
}

impl RedisStore {
    /// Performs the pre-queue draw once: reads the pre-queue, shuffles it in Rust with
    /// `draw_order`, and records it with a script that refuses if the pre-queue changed in
    /// between (then it reads and shuffles again).
    async fn draw_once(
        &self,
        session: SessionId,
        seed: u64,
        now: Timestamp,
    ) -> Result<PreQueueDraw> {
        for _ in 0..DRAW_ATTEMPTS {
            let inv = self.session_call(&self.inner.scripts.draw_read, session);
            let reply = self.run(&inv).await?;
            let parts = array(&reply, "draw_read")?;
            if let Some(doc) = opt_text(at(parts, 0, "draw_read")?, "draw")? {
                return json(doc, "draw");
            }
            let version = text(at(parts, 1, "draw_read")?, "pre-queue version")?.to_owned();
            let joined = array(at(parts, 2, "draw_read")?, "pre-queue")?
                .iter()
                .map(|u| {
                    UserId::new(text(u, "pre-queue user")?)
                        .map_err(|e| Error::Corrupt(format!("pre-queue user: {e}")))
                })
                .collect::<Result<Vec<_>>>()?;
            let draw = PreQueueDraw::shuffle(session, joined, seed, now);
            let mut inv = self.session_call(&self.inner.scripts.draw_commit, session);
            inv.arg(version).arg(to_json(&draw)?).arg(now.as_millis());
            for u in &draw.order {
                inv.arg(u.as_str());
            }
            let reply = self.run(&inv).await?;
            let (tag, rest) = tagged(&reply, "draw_commit")?;
            if tag == "done" {
                return json(text(at(rest, 0, "draw_commit")?, "draw")?, "draw");
            }
        }
        Err(Error::Unavailable(
            "the pre-queue kept changing during the draw".into(),
        ))
    }
}

fn limit_code(s: &str) -> Result<AdmissionLimit> {
    Ok(match s {
        "empty" => AdmissionLimit::Empty,
        "active_cap" => AdmissionLimit::ActiveCap,
        "rate" => AdmissionLimit::Rate,
        "stock" => AdmissionLimit::Stock,
        _ => return Err(Error::Corrupt(format!("admission limit {s:?}"))),
    })
}

#[async_trait]
impl WaitingQueue for RedisStore {
    /// One script per join (coalesced with concurrent joins of the session): the per-user
    /// ticket, the length cap and the sequence number are checked and taken atomically.
    async fn join(&self, req: JoinRequest) -> Result<QueueTicket> {
        self.session_def(req.session).await?;
        loop {
            let args = JoinArgs {
                args: [
                    req.user.as_str().to_owned(),
                    req.now.as_millis().to_string(),
                    if req.pre_queue { "1" } else { "0" }.to_owned(),
                    req.max_waiting.map(|m| m.to_string()).unwrap_or_default(),
                    TicketId::new_at(req.now).to_string(),
                    to_json(&Actor::User(req.user.clone()))?,
                ],
            };
            let reply = self
                .inner
                .batches
                .joins
                .submit(self, req.session, args)
                .await?;
            let (tag, rest) = tagged(&reply, "join")?;
            match tag {
                "ok" => return ticket(req.session, &req.user, at(rest, 0, "join")?),
                "err" => return Err(refusal(at(rest, 0, "join")?)),
                "draw" => {
                    self.draw_once(req.session, fresh_draw_seed(), req.now)
                        .await?;
                }
                other => return Err(Error::Corrupt(format!("join reply tag {other:?}"))),
            }
        }
    }

    /// Coalesced with concurrent views of the session (one `view` script call per batch).
    async fn view(&self, session: SessionId, user: &UserId, now: Timestamp) -> Result<QueueView> {
        self.session_def(session).await?;
        let args = ViewArgs {
            now,
            user: user.as_str().to_owned(),
        };
        let reply = self.inner.batches.views.submit(self, session, args).await?;
        let (tag, rest) = tagged(&reply, "view")?;
        match tag {
            "ok" => {}
            "nf" => return Err(Error::not_found("queue ticket", user)),
            other => return Err(Error::Corrupt(format!("view reply tag {other:?}"))),
        }
        let t = ticket(session, user, at(rest, 0, "view")?)?;
        let rank = int(at(rest, 1, "view")?, "rank")?;
        let line = count(at(rest, 2, "view")?, "line")?;
        let pre_queue = count(at(rest, 3, "view")?, "pre-queue")?;
        let active = count(at(rest, 4, "view")?, "active")?;
        let admitted_last_minute = count(at(rest, 5, "view")?, "admissions")?;
        let available = count(at(rest, 6, "view")?, "available")?;
        let held = count(at(rest, 7, "view")?, "held")?;
        let position = u64::try_from(rank).ok().map(|r| r + 1);
        Ok(QueueView::assemble(
            t,
            now,
            QueueFigures {
                position,
                waiting: line + pre_queue,
                pre_queue,
                active,
                admitted_last_minute,
                available,
                held,
            },
        ))
    }

    async fn admit(
        &self,
        session: SessionId,
        pacing: AdmissionPacing,
        now: Timestamp,
    ) -> Result<AdmissionRound> {
        self.session_def(session).await?;
        loop {
            let mut inv = self.session_call(&self.inner.scripts.admit, session);
            inv.arg(now.as_millis())
                .arg(system("admission")?)
                .arg(pacing.max_active)
                .arg(pacing.max_per_minute)
                .arg(pacing.units_per_user)
                .arg(now.plus(pacing.admission_ttl).as_millis());
            let reply = self.run(&inv).await?;
            let (tag, rest) = tagged(&reply, "admit")?;
            match tag {
                "ok" => {
                    let limit = limit_code(text(at(rest, 0, "admit")?, "limit")?)?;
                    let admitted = array(at(rest, 1, "admit")?, "admitted")?
                        .iter()
                        .map(|v| {
                            let pair = array(v, "admitted ticket")?;
                            let user = UserId::new(text(at(pair, 0, "admitted")?, "user")?)
                                .map_err(|e| Error::Corrupt(format!("admitted user: {e}")))?;
                            ticket(session, &user, at(pair, 1, "admitted")?)
                        })
                        .collect::<Result<Vec<_>>>()?;
                    return Ok(AdmissionRound { admitted, limit });
                }
                "draw" => {
                    self.draw_once(session, fresh_draw_seed(), now).await?;
                }
                other => return Err(Error::Corrupt(format!("admit reply tag {other:?}"))),
            }
        }
    }

    /// Coalesced with concurrent leaves of the session (one `leave` script call per batch).
    async fn leave(
        &self,
        session: SessionId,
        user: &UserId,
        now: Timestamp,
    ) -> Result<QueueTicket> {
        self.session_def(session).await?;
        let reply = self
            .inner
            .batches
            .leaves
            .submit(self, session, LeaveArgs::new(user, now)?)
            .await?;
        let (tag, rest) = tagged(&reply, "leave")?;
        match tag {
            "ok" => ticket(session, user, at(rest, 0, "leave")?),
            "err" => Err(refusal(at(rest, 0, "leave")?)),
            "nf" => Err(Error::not_found("queue ticket", user)),
            other => Err(Error::Corrupt(format!("leave reply tag {other:?}"))),
        }
    }

    async fn draw(&self, session: SessionId, seed: u64, now: Timestamp) -> Result<PreQueueDraw> {
        self.session_def(session).await?;
        self.draw_once(session, seed, now).await
    }

    async fn recorded_draw(&self, session: SessionId) -> Result<Option<PreQueueDraw>> {
        self.session_def(session).await?;
        let raw: Value = redis::cmd("GET")
            .arg(self.inner.keys.session_key(session, "draw"))
            .query_async(&mut self.conn())
            .await
            .map_err(crate::reply::unavailable)?;
        opt_text(&raw, "draw")?.map(|d| json(d, "draw")).transpose()
    }

    async fn stats(&self, session: SessionId, now: Timestamp) -> Result<QueueStats> {
        self.session_def(session).await?;
        let mut inv = self.session_call(&self.inner.scripts.stats, session);
        inv.arg(now.as_millis()).arg(system("queue")?);
        let reply = self.run(&inv).await?;
        let f = array(&reply, "stats")?;
        let line = count(at(f, 0, "stats")?, "line")?;
        let pre_queue = count(at(f, 1, "stats")?, "pre-queue")?;
        Ok(QueueStats {
            waiting: line + pre_queue,
            pre_queue,
            active: count(at(f, 2, "stats")?, "active")?,
            admitted_last_minute: count(at(f, 3, "stats")?, "admissions")?,
            drawn: int(at(f, 4, "stats")?, "drawn")? == 1,
        })
    }

    /// One script (`lua/line_read.lua`): a range of the `line` sorted set (WAITING users
    /// scored by their place) and their tickets, read at one instant.
    async fn waiting_line(
        &self,
        session: SessionId,
        after: Option<u64>,
        limit: usize,
    ) -> Result<Vec<InLine>> {
        check_limit(limit)?;
        let mut inv = self.session_call(&self.inner.scripts.line_read, session);
        inv.arg(after.map(|a| a.to_string()).unwrap_or_default())
            .arg(limit);
        let reply = self.run(&inv).await?;
        if reply == Value::Nil {
            return Err(Error::not_found("session", session));
        }
        array(&reply, "waiting line")?
            .chunks(3)
            .map(|t| match t {
                [user, line, ticket] => Ok(InLine {
                    user: UserId::new(text(user, "user")?)
                        .map_err(|e| Error::Corrupt(format!("waiting user: {e}")))?,
                    line: text(line, "place")?
                        .parse()
                        .map_err(|_| Error::Corrupt("place in line".into()))?,
                    ticket: text(ticket, "ticket id")?
                        .parse()
                        .map_err(|_| Error::Corrupt("ticket id".into()))?,
                }),
                _ => Err(Error::Corrupt("waiting line reply".into())),
            })
            .collect()
    }
}
