//! How holds, queue tickets and audit records are laid out in Redis, and read back.
//!
//! A hold is a hash: `doc` (immutable JSON: session, user, items, amount) plus one field per
//! mutable attribute, so scripts change states and timestamps without parsing JSON. Queue
//! tickets are hashes of plain fields. Audit records are stream entries of plain fields.

use redis::Value;
use serde::{Deserialize, Serialize};
use ticket_core::ids::{AuditId, HoldId, SessionId, TicketId, UserId};
use ticket_core::model::audit::{Actor, AuditRecord, Subject};
use ticket_core::model::hold::{Hold, HoldItems, HoldState};
use ticket_core::model::money::Money;
use ticket_core::model::queue::{QueueTicket, TicketState};
use ticket_core::{Error, Result, Timestamp};

use crate::reply::{array, at, int, json, opt_int, opt_text, text};

/// The immutable part of a hold, stored as JSON in its `doc` field.
#[derive(Debug, Serialize, Deserialize)]
pub(crate) struct HoldDoc {
    pub(crate) session: SessionId,
    pub(crate) user: UserId,
    pub(crate) items: HoldItems,
    pub(crate) amount: Money,
}

/// `"grade:qty;grade:qty"`: the units per grade, as the scripts move them.
pub(crate) fn grade_counts(items: &HoldItems) -> String {
    items
        .per_grade()
        .iter()
        .map(|(g, n)| format!("{g}:{n}"))
        .collect::<Vec<_>>()
        .join(";")
}

/// `"seat;seat"` (empty for general admission).
pub(crate) fn seat_list(items: &HoldItems) -> String {
    items
        .seat_ids()
        .iter()
        .map(|s| s.as_str())
        .collect::<Vec<_>>()
        .join(";")
}

pub(crate) fn hold_state(s: &str) -> Result<HoldState> {
    HoldState::ALL
        .into_iter()
        .find(|h| h.as_str() == s)
        .ok_or_else(|| Error::Corrupt(format!("unknown hold state {s:?}")))
}

fn ts(v: &Value, what: &str) -> Result<Timestamp> {
    int(v, what).map(Timestamp::from_millis)
}

fn opt_ts(v: &Value, what: &str) -> Result<Option<Timestamp>> {
    Ok(opt_int(v, what)?.map(Timestamp::from_millis))
}

fn uuid<T: std::str::FromStr>(s: &str, what: &str) -> Result<T> {
    s.parse()
        .map_err(|_| Error::Corrupt(format!("stored {what} is not a UUID: {s:?}")))
}

fn opt_uuid<T: std::str::FromStr>(v: &Value, what: &str) -> Result<Option<T>> {
    opt_text(v, what)?.map(|s| uuid(s, what)).transpose()
}

/// A hold from the fields the scripts return (`HOLD_FIELDS` in `lua/common.lua`):
/// doc, state, crt, exp, upd, pref, adm, rbf, rbas.
pub(crate) fn hold(id: HoldId, v: &Value) -> Result<Hold> {
    let f = array(v, "hold")?;
    let Some(doc) = opt_text(at(f, 0, "hold")?, "hold doc")? else {
        return Err(Error::not_found("hold", id));
    };
    let doc: HoldDoc = json(doc, "hold")?;
    Ok(Hold {
        id,
        session: doc.session,
        user: doc.user,
        items: doc.items,
        amount: doc.amount,
        state: hold_state(text(at(f, 1, "hold")?, "hold state")?)?,
        created_at: ts(at(f, 2, "hold")?, "created_at")?,
        expires_at: ts(at(f, 3, "hold")?, "expires_at")?,
        updated_at: ts(at(f, 4, "hold")?, "updated_at")?,
        payment_ref: opt_text(at(f, 5, "hold")?, "payment_ref")?.map(str::to_owned),
        admission: opt_uuid(at(f, 6, "hold")?, "admission")?,
        rebooked_from: opt_uuid(at(f, 7, "hold")?, "rebooked_from")?,
        rebooked_as: opt_uuid(at(f, 8, "hold")?, "rebooked_as")?,
    })
}

fn ticket_state(s: &str) -> Result<TicketState> {
    Ok(match s {
        "WAITING" => TicketState::Waiting,
        "ACTIVE" => TicketState::Active,
        "USED" => TicketState::Used,
        "EXPIRED" => TicketState::Expired,
        "LEFT" => TicketState::Left,
        _ => return Err(Error::Corrupt(format!("unknown ticket state {s:?}"))),
    })
}

/// A queue ticket from `TICKET_FIELDS` (`lua/common.lua`): id, st, pq, seq, jat, aat, exp.
pub(crate) fn ticket(session: SessionId, user: &UserId, v: &Value) -> Result<QueueTicket> {
    let f = array(v, "ticket")?;
    let id: TicketId = uuid(text(at(f, 0, "ticket")?, "ticket id")?, "ticket id")?;
    Ok(QueueTicket {
        id,
        session,
        user: user.clone(),
        state: ticket_state(text(at(f, 1, "ticket")?, "ticket state")?)?,
        pre_queue: opt_text(at(f, 2, "ticket")?, "pre_queue")? == Some("1"),
        seq: opt_int(at(f, 3, "ticket")?, "seq")?
            .map(|s| u64::try_from(s).map_err(|_| Error::Corrupt(format!("negative seq {s}"))))
            .transpose()?,
        joined_at: ts(at(f, 4, "ticket")?, "joined_at")?,
        admitted_at: opt_ts(at(f, 5, "ticket")?, "admitted_at")?,
        expires_at: opt_ts(at(f, 6, "ticket")?, "expires_at")?,
    })
}

/// An audit record from a stream entry `{id, {field, value, …}}` written by `audit()` in
/// `lua/common.lua`.
pub(crate) fn audit_record(session: SessionId, entry: &Value) -> Result<AuditRecord> {
    let e = array(entry, "audit entry")?;
    let fields = array(at(e, 1, "audit entry")?, "audit fields")?;
    let get = |name: &str| -> Result<Option<&str>> {
        let mut it = fields.chunks(2);
        it.find_map(|kv| match kv {
            [k, v] if text(k, "audit field").ok() == Some(name) => Some(opt_text(v, name)),
            _ => None,
        })
        .transpose()
        .map(Option::flatten)
    };
    let need = |v: Option<&str>, name: &str| {
        v.map(str::to_owned)
            .ok_or_else(|| Error::Corrupt(format!("audit record without {name}")))
    };
    let id: AuditId = uuid(&need(get("i")?, "id")?, "audit id")?;
    let at_ms: i64 = need(get("a")?, "at")?
        .parse()
        .map_err(|_| Error::Corrupt("audit time unreadable".into()))?;
    let subject_id = need(get("s")?, "subject")?;
    let subject = match get("k")? {
        Some("h") => Subject::Hold(uuid(&subject_id, "hold id")?),
        Some("t") => Subject::Ticket(uuid(&subject_id, "ticket id")?),
        other => return Err(Error::Corrupt(format!("audit subject kind {other:?}"))),
    };
    let owner = UserId::new(need(get("o")?, "owner")?)
        .map_err(|e| Error::Corrupt(format!("audit owner: {e}")))?;
    let actor: Actor = json(&need(get("c")?, "actor")?, "audit actor")?;
    Ok(AuditRecord {
        id,
        at: Timestamp::from_millis(at_ms),
        session,
        subject,
        owner,
        actor,
        from: get("f")?.map(str::to_owned),
        to: need(get("t")?, "to")?,
        reason: need(get("r")?, "reason")?,
        correlation_id: get("x")?.map(str::to_owned),
    })
}
