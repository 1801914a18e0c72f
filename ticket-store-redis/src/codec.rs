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

/// The separator of a packed hold (ASCII unit separator): it cannot occur in JSON text, in
/// ids, in user ids (no control characters) or in timestamps.
pub(crate) const SEP: char = '\u{1f}';

/// A hold from its packed form (`lua/common.lua`): user, state, crt, exp, upd, units, gq,
/// seats, pref, adm, rbf, rbas, aud, doc — joined by [`SEP`], the JSON document last.
pub(crate) fn hold(id: HoldId, v: &Value) -> Result<Hold> {
    let Some(packed) = opt_text(v, "hold")? else {
        return Err(Error::not_found("hold", id));
    };
    let f: Vec<&str> = packed.splitn(14, SEP).collect();
    let [
        _user,
        state,
        crt,
        exp,
        upd,
        _units,
        _gq,
        _seats,
        pref,
        adm,
        rbf,
        rbas,
        _aud,
        doc,
    ] = f.as_slice()
    else {
        return Err(Error::Corrupt(format!("hold {id} has {} fields", f.len())));
    };
    let doc: HoldDoc = json(doc, "hold")?;
    let millis = |s: &str, what: &str| -> Result<Timestamp> {
        s.parse()
            .map(Timestamp::from_millis)
            .map_err(|_| Error::Corrupt(format!("hold {id}: {what} {s:?}")))
    };
    let opt = |s: &&str| (!s.is_empty()).then(|| (*s).to_owned());
    Ok(Hold {
        id,
        session: doc.session,
        user: doc.user,
        items: doc.items,
        amount: doc.amount,
        state: hold_state(state)?,
        created_at: millis(crt, "created_at")?,
        expires_at: millis(exp, "expires_at")?,
        updated_at: millis(upd, "updated_at")?,
        payment_ref: opt(pref),
        admission: opt(adm).map(|s| uuid(&s, "admission")).transpose()?,
        rebooked_from: opt(rbf).map(|s| uuid(&s, "rebooked_from")).transpose()?,
        rebooked_as: opt(rbas).map(|s| uuid(&s, "rebooked_as")).transpose()?,
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

/// Audit records of one stream entry `{id, {field, value, …}}` (ten pairs per record, as
/// `commit()` in `lua/common.lua` writes them).
pub(crate) fn audit_entry(session: SessionId, entry: &Value) -> Result<Vec<AuditRecord>> {
    let e = array(entry, "audit entry")?;
    array(at(e, 1, "audit entry")?, "audit fields")?
        .chunks(20)
        .map(|record| audit_record(session, record))
        .collect()
}

/// One audit record from its ten field-value pairs.
pub(crate) fn audit_record(session: SessionId, fields: &[Value]) -> Result<AuditRecord> {
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
