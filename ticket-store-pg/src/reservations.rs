//! Holds, their state machine and the audit trail: each operation is one function call.

use std::sync::LazyLock;

use async_trait::async_trait;
use serde_json::json;
use ticket_core::backend::encoding::{decision_codes, rebookable_states_list};
use ticket_core::ids::{HoldId, SessionId, TicketId, UserId};
use ticket_core::model::audit::{Actor, AuditRecord, AuditScope};
use ticket_core::model::check_in::{CheckInOutcome, CheckInRequest, TicketUse};
use ticket_core::model::hold::{
    AdmissionCheck, Hold, HoldItems, HoldState, NewHold, RebookRequest, TransitionOutcome,
    TransitionRequest, price_selection,
};
use ticket_core::model::page::{
    AuditCursor, AuditPage, AuditQuery, HoldCursor, HoldPage, PageOrder, check_limit,
};
use ticket_core::store::Reservations;
use ticket_core::{Error, Refusal, Result, Timestamp};
use uuid::Uuid;

use crate::answers::{err_code, refusal};
use crate::rows::{audit, hold};
use crate::store::{PgStore, db_error, decode};

/// For each current state, the codes `tr_transition` looks its decision up in, for each
/// target state: the state machine stays in `ticket-core`. Computed once.
static DECISION_TABLES: LazyLock<Vec<(HoldState, serde_json::Value)>> = LazyLock::new(|| {
    HoldState::ALL
        .into_iter()
        .map(|to| (to, decision_table(to)))
        .collect()
});

fn decision_table(to: HoldState) -> serde_json::Value {
    decision_codes(to)
        .into_iter()
        .map(|(from, codes)| (from.as_str().to_owned(), codes.into()))
        .collect::<serde_json::Map<_, _>>()
        .into()
}

/// `",EXPIRED,RELEASED,…,"`: the states `rebook_allowed_from` accepts. Computed once.
static REBOOKABLE_STATES: LazyLock<String> = LazyLock::new(rebookable_states_list);

pub(crate) fn actor_json(actor: &Actor) -> Result<serde_json::Value> {
    serde_json::to_value(actor).map_err(|e| Error::Corrupt(format!("actor: {e}")))
}

/// The error a function's answer about hold `id` stands for, if any (`to`: the state asked
/// for).
fn hold_answer(answer: &serde_json::Value, id: HoldId, to: HoldState) -> Result<()> {
    if answer.get("nf").is_some() {
        return Err(Error::not_found("hold", id));
    }
    if err_code(answer).is_some() {
        return Err(refusal(answer, to));
    }
    Ok(())
}

fn limit_i32(limit: Option<u32>) -> Option<i32> {
    limit.map(|l| i32::try_from(l).unwrap_or(i32::MAX))
}

/// The hold request as `tr_hold_one` reads it.
fn hold_request(
    req: &NewHold,
    items: &HoldItems,
    amount: &ticket_core::model::money::Money,
) -> Result<serde_json::Value> {
    let mut per_grade = items.per_grade();
    per_grade.sort();
    let (grades, counts): (Vec<String>, Vec<u32>) = per_grade
        .into_iter()
        .map(|(g, n)| (String::from(g), n))
        .unzip();
    let seats: Vec<String> = items.seat_ids().into_iter().map(String::from).collect();
    Ok(json!({
        "id": req.id.as_uuid(),
        "session": req.session.as_uuid(),
        "user": req.user.as_str(),
        "now": req.now.as_millis(),
        "expires_at": req.expires_at.as_millis(),
        "limit": req.per_user_limit,
        "admission": req.admission == AdmissionCheck::Required,
        "actor": actor_json(&req.actor)?,
        "corr": req.correlation_id,
        "grades": grades,
        "counts": counts,
        "units": items.units(),
        "seated": matches!(items, HoldItems::Seats { .. }),
        "seats": seats,
        "items": serde_json::to_value(items).map_err(|e| Error::Corrupt(format!("items: {e}")))?,
        "amount": amount.amount_minor,
        "currency": amount.currency.as_str(),
    }))
}

impl PgStore {
    /// Runs a query that aggregates rows into one `jsonb` array, bound to an id and a limit.
    async fn rows_of(&self, sql: &str, id: Uuid, limit: i64) -> Result<Vec<serde_json::Value>> {
        let rows: serde_json::Value = sqlx::query_scalar(sql)
            .bind(id)
            .bind(limit)
            .fetch_one(&self.inner.pool)
            .await
            .map_err(db_error)?;
        decode(rows, "rows")
    }
}

#[async_trait]
impl Reservations for PgStore {
    /// Priced here (the plan is cached), then applied by `tr_hold_one` inside a coalesced
    /// `tr_hold_batch` call: the sale switch, admission, per-user limit, seats and stock
    /// checked and taken in one transaction under the session's advisory lock.
    ///
    /// The cached plan may predate a capacity change made through another store: a seat it
    /// does not know (added since), or one the function finds withdrawn or of another grade
    /// (`unknown_seat`), makes the plan be read again and the request priced once more.
    async fn hold(&self, req: NewHold) -> Result<Hold> {
        let mut session = self.session_def(req.session).await?;
        let mut fresh = false;
        loop {
            let (items, amount) = match price_selection(&session.inventory, &req.selection) {
                Err(Error::Refused(Refusal::UnknownItem { .. })) if !fresh => {
                    session = self.current_session(req.session).await?.0;
                    fresh = true;
                    continue;
                }
                priced => priced?,
            };
            let answer = self
                .inner
                .holds
                .submit(self, req.session, hold_request(&req, &items, &amount)?)
                .await?;
            match err_code(&answer) {
                Some("unknown_seat") if !fresh => {
                    session = self.current_session(req.session).await?.0;
                    fresh = true;
                    continue;
                }
                Some(_) => return Err(refusal(&answer, HoldState::Held)),
                None => {}
            }
            let ticket = match answer.get("ticket") {
                None | Some(serde_json::Value::Null) => None,
                Some(t) => Some(TicketId::from_uuid(decode(t.clone(), "ticket id")?)),
            };
            return Ok(req.held(items, amount, ticket));
        }
    }

    async fn get(&self, id: HoldId) -> Result<Hold> {
        let row: Option<serde_json::Value> =
            sqlx::query_scalar("SELECT to_jsonb(h) FROM holds h WHERE id = $1")
                .bind(id.as_uuid())
                .fetch_optional(&self.inner.pool)
                .await
                .map_err(db_error)?;
        hold(row.ok_or_else(|| Error::not_found("hold", id))?)
    }

    /// One `tr_transition` call: locks the hold row, looks the decision up, applies it with
    /// its stock effect and audit record, and commits synchronously.
    async fn transition(&self, req: TransitionRequest) -> Result<TransitionOutcome> {
        let table = DECISION_TABLES
            .iter()
            .find(|(to, _)| *to == req.to)
            .map(|(_, t)| t.clone())
            .ok_or_else(|| Error::Corrupt(format!("no decision table for {:?}", req.to)))?;
        let answer: serde_json::Value =
            sqlx::query_scalar("SELECT tr_transition($1, $2, $3, $4, $5, $6, $7, $8)")
                .bind(req.hold.as_uuid())
                .bind(req.to.as_str())
                .bind(table)
                .bind(req.now.as_millis())
                .bind(actor_json(&req.actor)?)
                .bind(&req.reason)
                .bind(req.correlation_id.as_deref())
                .bind(req.payment_ref.as_deref())
                .fetch_one(&self.inner.pool)
                .await
                .map_err(db_error)?;
        hold_answer(&answer, req.hold, req.to)?;
        Ok(TransitionOutcome {
            changed: answer.get("changed").and_then(serde_json::Value::as_bool) == Some(true),
            hold: hold(answer.get("hold").cloned().unwrap_or_default())?,
        })
    }

    /// One `tr_check_in` call: locks the hold row (as `tr_transition` does), checks, marks,
    /// audits and commits synchronously.
    async fn check_in(&self, req: CheckInRequest) -> Result<CheckInOutcome> {
        self.check_in_ticket(req).await
    }

    async fn check_ins(&self, id: HoldId) -> Result<Vec<TicketUse>> {
        self.ticket_uses(id).await
    }

    async fn rebook(&self, req: RebookRequest) -> Result<Hold> {
        let answer: serde_json::Value =
            sqlx::query_scalar("SELECT tr_rebook($1, $2, $3, $4, $5, $6, $7)")
                .bind(req.hold.as_uuid())
                .bind(req.new_id.as_uuid())
                .bind(&req.payment_ref)
                .bind(limit_i32(req.per_user_limit))
                .bind(REBOOKABLE_STATES.as_str())
                .bind(actor_json(&req.actor)?)
                .bind(req.now.as_millis())
                .fetch_one(&self.inner.pool)
                .await
                .map_err(db_error)?;
        hold_answer(&answer, req.hold, HoldState::Confirmed)?;
        hold(answer.get("hold").cloned().unwrap_or_default())
    }

    /// One `tr_expire_due` call: claims due holds with `FOR UPDATE SKIP LOCKED`, so sweepers
    /// on many app servers never expire one hold twice nor wait for each other. Then applies
    /// the feed's retention (at most once a second; see `feed.rs`).
    async fn expire_due(&self, now: Timestamp, limit: usize) -> Result<Vec<Hold>> {
        if limit == 0 {
            return Ok(Vec::new());
        }
        let answer: serde_json::Value = sqlx::query_scalar("SELECT tr_expire_due($1, $2, $3)")
            .bind(now.as_millis())
            .bind(i32::try_from(limit).unwrap_or(i32::MAX))
            .bind(actor_json(&Actor::system("sweeper"))?)
            .fetch_one(&self.inner.pool)
            .await
            .map_err(db_error)?;
        let rows: Vec<serde_json::Value> = decode(answer, "expired holds")?;
        let expired = rows.into_iter().map(hold).collect();
        self.prune_after_sweep().await;
        expired
    }

    /// One read through `holds_due`, the partial index of live holds by expiry: PAYING
    /// holds due by `before`, ordered by (expiry, id), no lock taken and nothing changed.
    async fn paying_due(&self, before: Timestamp, limit: usize) -> Result<Vec<Hold>> {
        if limit == 0 {
            return Ok(Vec::new());
        }
        let rows: serde_json::Value = sqlx::query_scalar(
            "SELECT coalesce(jsonb_agg(to_jsonb(h) ORDER BY h.expires_at, h.id), '[]') FROM
               (SELECT * FROM holds WHERE state = 'PAYING' AND expires_at <= $1
                 ORDER BY expires_at, id LIMIT $2) h",
        )
        .bind(before.as_millis())
        .bind(i64::try_from(limit).unwrap_or(i64::MAX))
        .fetch_one(&self.inner.pool)
        .await
        .map_err(db_error)?;
        let rows: Vec<serde_json::Value> = decode(rows, "paying holds")?;
        rows.into_iter().map(hold).collect()
    }

    async fn holds_of(&self, session: SessionId, user: &UserId) -> Result<Vec<Hold>> {
        self.session_def(session).await?;
        let rows: serde_json::Value = sqlx::query_scalar(
            "SELECT coalesce(jsonb_agg(to_jsonb(h) ORDER BY h.ord), '[]') FROM holds h
              WHERE session_id = $1 AND user_id = $2",
        )
        .bind(session.as_uuid())
        .bind(user.as_str())
        .fetch_one(&self.inner.pool)
        .await
        .map_err(db_error)?;
        let rows: Vec<serde_json::Value> = decode(rows, "holds")?;
        rows.into_iter().map(hold).collect()
    }

    /// Oldest first by `(at, id)` (ids are `AuditId::sequenced`, so a session's records of one
    /// millisecond come in write order), through the `(scope, at, id)` indexes.
    async fn audit(&self, scope: &AuditScope, limit: usize) -> Result<Vec<AuditRecord>> {
        let limit = i64::try_from(limit).unwrap_or(i64::MAX);
        let rows = match scope {
            AuditScope::Hold(id) => {
                let rows = self
                    .rows_of(
                        "SELECT coalesce(jsonb_agg(to_jsonb(a) ORDER BY a.at, a.id), '[]') FROM
                           (SELECT * FROM audit WHERE subject_id = $1 AND subject_kind = 'hold'
                             ORDER BY at, id LIMIT $2) a",
                        id.as_uuid(),
                        limit,
                    )
                    .await?;
                if rows.is_empty() {
                    self.get(*id).await?;
                }
                rows
            }
            AuditScope::Session(id) => {
                self.session_def(*id).await?;
                self.rows_of(
                    "SELECT coalesce(jsonb_agg(to_jsonb(a) ORDER BY a.at, a.id), '[]') FROM
                       (SELECT * FROM audit WHERE session_id = $1 ORDER BY at, id LIMIT $2) a",
                    id.as_uuid(),
                    limit,
                )
                .await?
            }
            AuditScope::User(user) => {
                let rows: serde_json::Value = sqlx::query_scalar(
                    "SELECT coalesce(jsonb_agg(to_jsonb(a) ORDER BY a.at, a.id), '[]') FROM
                       (SELECT * FROM audit WHERE owner = $1 ORDER BY at, id LIMIT $2) a",
                )
                .bind(user.as_str())
                .bind(limit)
                .fetch_one(&self.inner.pool)
                .await
                .map_err(db_error)?;
                decode(rows, "audit rows")?
            }
        };
        rows.into_iter().map(audit).collect()
    }

    /// One statement on the `holds_of_user` index `(user_id, created_at DESC, id DESC)`:
    /// a range scan from the cursor, no other user's rows read, each hold as it is now.
    async fn holds_of_user(
        &self,
        user: &UserId,
        after: Option<HoldCursor>,
        limit: usize,
    ) -> Result<HoldPage> {
        check_limit(limit)?;
        let (at, id) = match after {
            Some(c) => (Some(c.at.as_millis()), Some(c.id.as_uuid())),
            None => (None, None),
        };
        let rows: serde_json::Value = sqlx::query_scalar(if after.is_some() {
            "SELECT coalesce(jsonb_agg(to_jsonb(h) ORDER BY h.created_at DESC, h.id DESC), '[]')
               FROM (SELECT * FROM holds
                      WHERE user_id = $1 AND (created_at, id) < ($2, $3)
                      ORDER BY created_at DESC, id DESC LIMIT $4) h"
        } else {
            "SELECT coalesce(jsonb_agg(to_jsonb(h) ORDER BY h.created_at DESC, h.id DESC), '[]')
               FROM (SELECT * FROM holds
                      WHERE user_id = $1 AND $2::bigint IS NULL AND $3::uuid IS NULL
                      ORDER BY created_at DESC, id DESC LIMIT $4) h"
        })
        .bind(user.as_str())
        .bind(at)
        .bind(id)
        .bind(i64::try_from(limit).unwrap_or(i64::MAX))
        .fetch_one(&self.inner.pool)
        .await
        .map_err(db_error)?;
        let rows: Vec<serde_json::Value> = decode(rows, "holds")?;
        let holds = rows.into_iter().map(hold).collect::<Result<Vec<_>>>()?;
        Ok(HoldPage::of(holds, limit, HoldCursor::of))
    }

    /// One statement on the scope's `(…, at, id)` index (`audit_by_session`,
    /// `audit_by_subject`, `audit_by_owner`), a range scan from the cursor in either direction.
    async fn audit_page(&self, query: &AuditQuery) -> Result<AuditPage> {
        check_limit(query.limit)?;
        let (column, key): (&str, String) = match &query.scope {
            AuditScope::Session(id) => ("session_id = $1::uuid", id.to_string()),
            AuditScope::Hold(id) => (
                "subject_id = $1::uuid AND subject_kind = 'hold'",
                id.to_string(),
            ),
            AuditScope::User(user) => ("owner = $1", user.as_str().to_owned()),
        };
        let (cmp, order) = match query.order {
            PageOrder::OldestFirst => (">", "at, id"),
            PageOrder::NewestFirst => ("<", "at DESC, id DESC"),
        };
        let cursor = if query.after.is_some() {
            format!("(at, id) {cmp} ($2, $3)")
        } else {
            "$2::bigint IS NULL AND $3::uuid IS NULL".to_owned()
        };
        let sql = format!(
            "SELECT coalesce(jsonb_agg(to_jsonb(a) ORDER BY {order}), '[]')
               FROM (SELECT * FROM audit WHERE {column} AND {cursor}
                      ORDER BY {order} LIMIT $4) a"
        );
        let rows: serde_json::Value = sqlx::query_scalar(&sql)
            .bind(key)
            .bind(query.after.map(|c| c.at.as_millis()))
            .bind(query.after.map(|c| c.id.as_uuid()))
            .bind(i64::try_from(query.limit).unwrap_or(i64::MAX))
            .fetch_one(&self.inner.pool)
            .await
            .map_err(db_error)?;
        let rows: Vec<serde_json::Value> = decode(rows, "audit rows")?;
        let records = rows.into_iter().map(audit).collect::<Result<Vec<_>>>()?;
        Ok(AuditPage::of(records, query.limit, AuditCursor::of))
    }
}
