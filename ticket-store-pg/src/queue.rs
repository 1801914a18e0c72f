//! The waiting queue: ticket rows ordered by a per-session sequence taken under the queue
//! row's lock (never by wall-clock time), positions read from per-block counters in O(log n)
//! (`sql/lib/line.sql`, migration `0004_line_counts`).

use async_trait::async_trait;
use ticket_core::ids::{SessionId, TicketId, UserId};
use ticket_core::model::audit::Actor;
use ticket_core::model::hold::HoldState;
use ticket_core::model::page::check_limit;
use ticket_core::model::queue::{
    AdmissionLimit, AdmissionPacing, AdmissionRound, InLine, JoinRequest, PreQueueDraw,
    QueueFigures, QueueStats, QueueTicket, QueueView, fresh_draw_seed,
};
use ticket_core::store::WaitingQueue;
use ticket_core::{Error, Result, Timestamp};

use crate::answers::{err_code, refusal};
use crate::reservations::actor_json;
use crate::rows::{count, ticket};
use crate::store::{PgStore, db_error, decode};

/// A function answered "draw first": it runs once per session, at the first FIFO join or
/// admission after the open when nobody called `draw`.
fn needs_draw(answer: &serde_json::Value) -> bool {
    answer.get("need_draw").is_some()
}

fn queue_refusal(answer: &serde_json::Value) -> Error {
    // no queue answer names a hold state; the argument only serves transitions
    refusal(answer, HoldState::Held)
}

fn ticket_of(answer: &serde_json::Value) -> Result<QueueTicket> {
    ticket(answer.get("ticket").cloned().unwrap_or_default())
}

fn not_found(answer: &serde_json::Value, session: SessionId, user: &UserId) -> Option<Error> {
    match answer.get("nf")?.as_str() {
        Some("ticket") => Some(Error::not_found("queue ticket", user)),
        _ => Some(Error::not_found("session", session)),
    }
}

impl PgStore {
    /// One join, coalesced with concurrent joins of the session (see `queue_batch.rs`).
    async fn join_once(&self, req: &JoinRequest, id: TicketId) -> Result<serde_json::Value> {
        let request = serde_json::json!({
            "user": req.user.as_str(),
            "now": req.now.as_millis(),
            "pre": req.pre_queue,
            "max": req.max_waiting.map(|m| i32::try_from(m).unwrap_or(i32::MAX)),
            "id": id.as_uuid(),
            "actor": actor_json(&Actor::User(req.user.clone()))?,
        });
        self.inner.joins.submit(self, req.session, request).await
    }

    async fn admit_once(
        &self,
        session: SessionId,
        pacing: AdmissionPacing,
        now: Timestamp,
    ) -> Result<serde_json::Value> {
        sqlx::query_scalar("SELECT tr_admit($1, $2, $3, $4, $5, $6, $7)")
            .bind(session.as_uuid())
            .bind(now.as_millis())
            .bind(i64::from(pacing.max_active))
            .bind(i64::from(pacing.max_per_minute))
            .bind(i64::try_from(pacing.admission_ttl.as_millis()).unwrap_or(i64::MAX))
            .bind(i64::from(pacing.units_per_user))
            .bind(actor_json(&Actor::system("admission"))?)
            .fetch_one(&self.inner.pool)
            .await
            .map_err(db_error)
    }
}

#[async_trait]
impl WaitingQueue for PgStore {
    /// One `tr_join` call under the queue row's lock: settle expired admissions, return the
    /// live ticket if any, check the length cap, take the next sequence.
    async fn join(&self, req: JoinRequest) -> Result<QueueTicket> {
        let id = TicketId::new_at(req.now);
        let mut answer = self.join_once(&req, id).await?;
        if needs_draw(&answer) {
            self.draw(req.session, fresh_draw_seed(), req.now).await?;
            answer = self.join_once(&req, id).await?;
        }
        if let Some(e) = not_found(&answer, req.session, &req.user) {
            return Err(e);
        }
        if err_code(&answer).is_some() {
            return Err(queue_refusal(&answer));
        }
        if needs_draw(&answer) {
            return Err(Error::Corrupt("the queue asked for its draw twice".into()));
        }
        ticket_of(&answer)
    }

    async fn view(&self, session: SessionId, user: &UserId, now: Timestamp) -> Result<QueueView> {
        let answer: serde_json::Value = sqlx::query_scalar("SELECT tr_view($1, $2, $3, $4)")
            .bind(session.as_uuid())
            .bind(user.as_str())
            .bind(now.as_millis())
            .bind(actor_json(&Actor::system("queue"))?)
            .fetch_one(&self.inner.pool)
            .await
            .map_err(db_error)?;
        if let Some(e) = not_found(&answer, session, user) {
            return Err(e);
        }
        let figures = QueueFigures {
            position: answer.get("position").and_then(serde_json::Value::as_u64),
            waiting: count(&answer, "waiting")?,
            pre_queue: count(&answer, "pre_queue")?,
            active: count(&answer, "active")?,
            admitted_last_minute: count(&answer, "admitted_last_minute")?,
            available: count(&answer, "available")?,
            held: count(&answer, "held")?,
        };
        Ok(QueueView::assemble(ticket_of(&answer)?, now, figures))
    }

    /// One `tr_admit` call under the queue row's lock.
    async fn admit(
        &self,
        session: SessionId,
        pacing: AdmissionPacing,
        now: Timestamp,
    ) -> Result<AdmissionRound> {
        let mut answer = self.admit_once(session, pacing, now).await?;
        if needs_draw(&answer) {
            self.draw(session, fresh_draw_seed(), now).await?;
            answer = self.admit_once(session, pacing, now).await?;
        }
        if answer.get("nf").is_some() {
            return Err(Error::not_found("session", session));
        }
        if needs_draw(&answer) {
            return Err(Error::Corrupt("the queue asked for its draw twice".into()));
        }
        let admitted: Vec<serde_json::Value> = decode(
            answer.get("admitted").cloned().unwrap_or_default(),
            "admitted",
        )?;
        let limit: AdmissionLimit =
            decode(answer.get("limit").cloned().unwrap_or_default(), "limit")?;
        Ok(AdmissionRound {
            admitted: admitted.into_iter().map(ticket).collect::<Result<_>>()?,
            limit,
        })
    }

    async fn leave(
        &self,
        session: SessionId,
        user: &UserId,
        now: Timestamp,
    ) -> Result<QueueTicket> {
        let request = serde_json::json!({
            "user": user.as_str(),
            "now": now.as_millis(),
            "actor": actor_json(&Actor::User(user.clone()))?,
        });
        let answer = self.inner.leaves.submit(self, session, request).await?;
        if let Some(e) = not_found(&answer, session, user) {
            return Err(e);
        }
        if err_code(&answer).is_some() {
            return Err(queue_refusal(&answer));
        }
        ticket_of(&answer)
    }

    /// One transaction holding the queue row's lock: read the pre-queue in join order,
    /// shuffle it in Rust ([`PreQueueDraw::shuffle`]), give each drawn ticket its sequence, record
    /// the draw and append `QueueDrawn` to the feed (`tr_emit`, the session's log row last). A
    /// concurrent draw waits for the lock and then returns this one.
    async fn draw(&self, session: SessionId, seed: u64, now: Timestamp) -> Result<PreQueueDraw> {
        let mut tx = self.inner.pool.begin().await.map_err(db_error)?;
        let row: Option<(Option<serde_json::Value>, i64)> =
            sqlx::query_as("SELECT draw, next_seq FROM queues WHERE session_id = $1 FOR UPDATE")
                .bind(session.as_uuid())
                .fetch_optional(&mut *tx)
                .await
                .map_err(db_error)?;
        let (recorded, next_seq) = row.ok_or_else(|| Error::not_found("session", session))?;
        if let Some(d) = recorded {
            return decode(d, "recorded draw");
        }
        let joined: Vec<String> = sqlx::query_scalar(
            "SELECT user_id FROM queue_tickets
              WHERE session_id = $1 AND state = 'WAITING' AND seq IS NULL ORDER BY ord",
        )
        .bind(session.as_uuid())
        .fetch_all(&mut *tx)
        .await
        .map_err(db_error)?;
        let joined = joined
            .into_iter()
            .map(|u| UserId::new(u).map_err(|e| Error::Corrupt(format!("stored user: {e}"))))
            .collect::<Result<Vec<_>>>()?;
        let draw = PreQueueDraw::shuffle(session, joined, seed, now);
        let order: Vec<&str> = draw.order.iter().map(UserId::as_str).collect();
        sqlx::query(
            "UPDATE queue_tickets t SET seq = $2 + u.o - 1
               FROM unnest($3::text[]) WITH ORDINALITY AS u(user_id, o)
              WHERE t.session_id = $1 AND t.user_id = u.user_id
                AND t.state = 'WAITING' AND t.seq IS NULL",
        )
        .bind(session.as_uuid())
        .bind(next_seq)
        .bind(&order)
        .execute(&mut *tx)
        .await
        .map_err(db_error)?;
        let json = serde_json::to_value(&draw)
            .map_err(|e| Error::Corrupt(format!("draw not serialisable: {e}")))?;
        sqlx::query(
            "UPDATE queues SET draw = $2, next_seq = next_seq + $3, pre_queue = 0
              WHERE session_id = $1",
        )
        .bind(session.as_uuid())
        .bind(json)
        .bind(i64::try_from(order.len()).unwrap_or(i64::MAX))
        .execute(&mut *tx)
        .await
        .map_err(db_error)?;
        sqlx::query("SELECT tr_emit($1, $2, 'queue_drawn')")
            .bind(session.as_uuid())
            .bind(now.as_millis())
            .execute(&mut *tx)
            .await
            .map_err(db_error)?;
        tx.commit().await.map_err(db_error)?;
        Ok(draw)
    }

    async fn recorded_draw(&self, session: SessionId) -> Result<Option<PreQueueDraw>> {
        let row: Option<Option<serde_json::Value>> =
            sqlx::query_scalar("SELECT draw FROM queues WHERE session_id = $1")
                .bind(session.as_uuid())
                .fetch_optional(&self.inner.pool)
                .await
                .map_err(db_error)?;
        match row {
            None => Err(Error::not_found("session", session)),
            Some(d) => d.map(|d| decode(d, "recorded draw")).transpose(),
        }
    }

    async fn stats(&self, session: SessionId, now: Timestamp) -> Result<QueueStats> {
        let answer: serde_json::Value = sqlx::query_scalar("SELECT tr_stats($1, $2, $3)")
            .bind(session.as_uuid())
            .bind(now.as_millis())
            .bind(actor_json(&Actor::system("queue"))?)
            .fetch_one(&self.inner.pool)
            .await
            .map_err(db_error)?;
        if answer.get("nf").is_some() {
            return Err(Error::not_found("session", session));
        }
        Ok(QueueStats {
            waiting: count(&answer, "waiting")?,
            pre_queue: count(&answer, "pre_queue")?,
            active: count(&answer, "active")?,
            admitted_last_minute: count(&answer, "admitted_last_minute")?,
            drawn: answer.get("drawn").and_then(serde_json::Value::as_bool) == Some(true),
        })
    }

    /// One statement through the line index (`queue_tickets_line`: WAITING tickets by
    /// sequence), after the cursor, in line order; `NotFound` when the session has no queue.
    async fn waiting_line(
        &self,
        session: SessionId,
        after: Option<u64>,
        limit: usize,
    ) -> Result<Vec<InLine>> {
        check_limit(limit)?;
        let after = after.map_or(-1, |a| i64::try_from(a).unwrap_or(i64::MAX));
        let row: Option<serde_json::Value> = sqlx::query_scalar(
            "SELECT coalesce((SELECT jsonb_agg(jsonb_build_array(t.seq, t.id, t.user_id)
                                               ORDER BY t.seq)
                                FROM (SELECT seq, id, user_id FROM queue_tickets
                                       WHERE session_id = $1 AND state = 'WAITING' AND seq > $2
                                       ORDER BY seq LIMIT $3) t), '[]')
               FROM queues WHERE session_id = $1",
        )
        .bind(session.as_uuid())
        .bind(after)
        .bind(i64::try_from(limit).unwrap_or(i64::MAX))
        .fetch_optional(&self.inner.pool)
        .await
        .map_err(db_error)?;
        let rows: Vec<(u64, uuid::Uuid, String)> = decode(
            row.ok_or_else(|| Error::not_found("session", session))?,
            "waiting line",
        )?;
        rows.into_iter()
            .map(|(line, ticket, user)| {
                Ok(InLine {
                    line,
                    ticket: TicketId::from_uuid(ticket),
                    user: UserId::new(user)
                        .map_err(|e| Error::Corrupt(format!("stored user: {e}")))?,
                })
            })
            .collect()
    }
}
