//! Rows as the functions return them (`to_jsonb(row)`), decoded into `ticket-core` types.

use serde::Deserialize;
use ticket_core::ids::{AuditId, HoldId, SessionId, TicketId};
use ticket_core::model::audit::{Actor, AuditRecord, Subject};
use ticket_core::model::change::{Change, ChangeKind};
use ticket_core::model::hold::{Hold, HoldItems, HoldState};
use ticket_core::model::money::{Currency, Money};
use ticket_core::model::queue::{QueueTicket, TicketState};
use ticket_core::{Error, Result, Timestamp, UserId};
use uuid::Uuid;

use crate::store::decode;

fn user(id: String) -> Result<UserId> {
    UserId::new(id).map_err(|e| Error::Corrupt(format!("stored user id: {e}")))
}

fn ts(ms: i64) -> Timestamp {
    Timestamp::from_millis(ms)
}

#[derive(Deserialize)]
struct HoldRow {
    id: Uuid,
    session_id: Uuid,
    user_id: String,
    state: HoldState,
    items: HoldItems,
    amount: i64,
    currency: String,
    created_at: i64,
    expires_at: i64,
    updated_at: i64,
    payment_ref: Option<String>,
    admission: Option<Uuid>,
    rebooked_from: Option<Uuid>,
    rebooked_as: Option<Uuid>,
}

/// A `holds` row.
pub(crate) fn hold(value: serde_json::Value) -> Result<Hold> {
    let r: HoldRow = decode(value, "hold row")?;
    let currency =
        Currency::new(&r.currency).map_err(|e| Error::Corrupt(format!("stored currency: {e}")))?;
    Ok(Hold {
        id: HoldId::from_uuid(r.id),
        session: SessionId::from_uuid(r.session_id),
        user: user(r.user_id)?,
        items: r.items,
        amount: Money::new(r.amount, currency)
            .map_err(|e| Error::Corrupt(format!("stored amount: {e}")))?,
        state: r.state,
        created_at: ts(r.created_at),
        expires_at: ts(r.expires_at),
        updated_at: ts(r.updated_at),
        payment_ref: r.payment_ref,
        admission: r.admission.map(TicketId::from_uuid),
        rebooked_from: r.rebooked_from.map(HoldId::from_uuid),
        rebooked_as: r.rebooked_as.map(HoldId::from_uuid),
    })
}

#[derive(Deserialize)]
struct TicketRow {
    id: Uuid,
    session_id: Uuid,
    user_id: String,
    state: TicketState,
    pre_queue: bool,
    seq: Option<i64>,
    joined_at: i64,
    admitted_at: Option<i64>,
    expires_at: Option<i64>,
}

/// A `queue_tickets` row.
pub(crate) fn ticket(value: serde_json::Value) -> Result<QueueTicket> {
    let r: TicketRow = decode(value, "ticket row")?;
    let seq = r
        .seq
        .map(|s| u64::try_from(s).map_err(|_| Error::Corrupt(format!("negative sequence {s}"))))
        .transpose()?;
    Ok(QueueTicket {
        id: TicketId::from_uuid(r.id),
        session: SessionId::from_uuid(r.session_id),
        user: user(r.user_id)?,
        state: r.state,
        pre_queue: r.pre_queue,
        seq,
        joined_at: ts(r.joined_at),
        admitted_at: r.admitted_at.map(ts),
        expires_at: r.expires_at.map(ts),
    })
}

#[derive(Deserialize)]
struct AuditRow {
    id: Uuid,
    at: i64,
    session_id: Uuid,
    subject_kind: String,
    subject_id: Uuid,
    owner: String,
    actor: Actor,
    from_state: Option<String>,
    to_state: String,
    reason: String,
    correlation_id: Option<String>,
}

/// An `audit` row.
pub(crate) fn audit(value: serde_json::Value) -> Result<AuditRecord> {
    let r: AuditRow = decode(value, "audit row")?;
    let subject = match r.subject_kind.as_str() {
        "hold" => Subject::Hold(HoldId::from_uuid(r.subject_id)),
        "ticket" => Subject::Ticket(TicketId::from_uuid(r.subject_id)),
        "session" => Subject::Session(SessionId::from_uuid(r.subject_id)),
        other => return Err(Error::Corrupt(format!("audit subject kind {other:?}"))),
    };
    Ok(AuditRecord {
        id: AuditId::from_uuid(r.id),
        at: ts(r.at),
        session: SessionId::from_uuid(r.session_id),
        subject,
        owner: user(r.owner)?,
        actor: r.actor,
        from: r.from_state,
        to: r.to_state,
        reason: r.reason,
        correlation_id: r.correlation_id,
    })
}

#[derive(Deserialize)]
struct ChangeRow {
    session_id: Uuid,
    seq: i64,
    at: i64,
    kind: String,
    subject_kind: Option<String>,
    subject_id: Option<Uuid>,
    owner: Option<String>,
    line: Option<i64>,
}

fn unsigned(n: i64, what: &str) -> Result<u64> {
    u64::try_from(n).map_err(|_| Error::Corrupt(format!("negative {what} {n}")))
}

/// A `changes` row.
pub(crate) fn change(value: serde_json::Value) -> Result<Change> {
    let r: ChangeRow = decode(value, "change row")?;
    let kind = ChangeKind::parse(&r.kind)
        .ok_or_else(|| Error::Corrupt(format!("change kind {:?}", r.kind)))?;
    let subject = match (r.subject_kind.as_deref(), r.subject_id) {
        (Some("hold"), Some(id)) => Some(Subject::Hold(HoldId::from_uuid(id))),
        (Some("ticket"), Some(id)) => Some(Subject::Ticket(TicketId::from_uuid(id))),
        (Some("session"), Some(id)) => Some(Subject::Session(SessionId::from_uuid(id))),
        (None, None) => None,
        (k, _) => return Err(Error::Corrupt(format!("change subject kind {k:?}"))),
    };
    Ok(Change {
        session: SessionId::from_uuid(r.session_id),
        seq: unsigned(r.seq, "sequence")?,
        at: ts(r.at),
        kind,
        subject,
        owner: r.owner.map(user).transpose()?,
        line: r.line.map(|l| unsigned(l, "line")).transpose()?,
    })
}

/// A JSON field as `u64`.
pub(crate) fn count(value: &serde_json::Value, field: &str) -> Result<u64> {
    value
        .get(field)
        .and_then(serde_json::Value::as_u64)
        .ok_or_else(|| Error::Corrupt(format!("missing count {field:?} in {value}")))
}

/// A JSON field as `i64`.
pub(crate) fn int(value: &serde_json::Value, field: &str) -> Result<i64> {
    value
        .get(field)
        .and_then(serde_json::Value::as_i64)
        .ok_or_else(|| Error::Corrupt(format!("missing number {field:?} in {value}")))
}

/// A JSON field as text.
pub(crate) fn text<'a>(value: &'a serde_json::Value, field: &str) -> Result<&'a str> {
    value
        .get(field)
        .and_then(serde_json::Value::as_str)
        .ok_or_else(|| Error::Corrupt(format!("missing text {field:?} in {value}")))
}
