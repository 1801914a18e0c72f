//! Check-in at the gate: one `tr_check_in` call (`sql/check_in.sql`) locks the
//! hold row, applies the rules and writes the mark with its audit record; `tr_transition`
//! locks the same row and refuses CONFIRMED → CANCELLED once a mark exists, so a scan and a
//! cancellation of one hold run one after the other.

use ticket_core::ids::HoldId;
use ticket_core::model::audit::Actor;
use ticket_core::model::check_in::{
    CHECK_IN_STATE, CheckInOutcome, CheckInRequest, TICKET_USED, TICKET_VALID, TicketUse,
    check_in_reason,
};
use ticket_core::model::hold::HoldState;
use ticket_core::{Error, Result, Timestamp};

use crate::answers::{err_code, refusal};
use crate::reservations::actor_json;
use crate::rows::int;
use crate::store::{PgStore, db_error, decode};

#[derive(serde::Deserialize)]
struct UseRow {
    ticket: u32,
    at: i64,
    gate: String,
}

impl PgStore {
    /// See `Reservations::check_in`.
    pub(crate) async fn check_in_ticket(&self, req: CheckInRequest) -> Result<CheckInOutcome> {
        req.validate()?;
        let ticket = i32::try_from(req.ticket)
            .map_err(|_| Error::Corrupt(format!("ticket number {}", req.ticket)))?;
        let answer: serde_json::Value =
            sqlx::query_scalar("SELECT tr_check_in($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)")
                .bind(req.hold.as_uuid())
                .bind(req.session.as_uuid())
                .bind(ticket)
                .bind(CHECK_IN_STATE.as_str())
                .bind(&req.gate)
                .bind(actor_json(&Actor::Operator(req.gate.clone()))?)
                .bind(check_in_reason(req.ticket))
                .bind(req.correlation_id.as_deref())
                .bind(TICKET_VALID)
                .bind(TICKET_USED)
                .bind(req.now.as_millis())
                .fetch_one(&self.inner.pool)
                .await
                .map_err(db_error)?;
        if answer.get("nf").is_some() {
            return Err(Error::not_found("hold", req.hold));
        }
        if err_code(&answer).is_some() {
            // `to` only matters for `IllegalTransition`, which a check-in never answers.
            return Err(refusal(&answer, HoldState::Confirmed));
        }
        if answer.get("first").is_some() {
            return Ok(CheckInOutcome::FirstUse {
                at: Timestamp::from_millis(int(&answer, "first")?),
            });
        }
        Ok(CheckInOutcome::AlreadyUsed {
            at: Timestamp::from_millis(int(&answer, "used")?),
            gate: decode(
                answer.get("gate").cloned().unwrap_or_default(),
                "check-in gate",
            )?,
        })
    }

    /// See `Reservations::check_ins`: one read of the hold's marks (and of the hold, so an
    /// unknown one is `NotFound`).
    pub(crate) async fn ticket_uses(&self, id: HoldId) -> Result<Vec<TicketUse>> {
        let rows: Option<serde_json::Value> = sqlx::query_scalar(
            "SELECT (SELECT coalesce(jsonb_agg(to_jsonb(u) ORDER BY u.ticket), '[]')
                       FROM ticket_uses u WHERE u.hold_id = h.id)
               FROM holds h WHERE h.id = $1",
        )
        .bind(id.as_uuid())
        .fetch_optional(&self.inner.pool)
        .await
        .map_err(db_error)?;
        let rows: Vec<UseRow> = decode(
            rows.ok_or_else(|| Error::not_found("hold", id))?,
            "check-in marks",
        )?;
        Ok(rows
            .into_iter()
            .map(|r| TicketUse {
                ticket: r.ticket,
                at: Timestamp::from_millis(r.at),
                gate: r.gate,
            })
            .collect())
    }
}
