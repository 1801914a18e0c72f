//! How holds, queue tickets and audit records are laid out in Redis, and read back.
//!
//! A hold is one packed field of the session's `holds` hash: its attributes joined by
//! [`SEP`], the JSON of what scripts never read (items, amount) last, so scripts change
//! states and timestamps without parsing JSON. Queue tickets are packed the same way in the
//! `tickets` hash, and each audit record is one packed field of a stream entry.

use redis::Value;
use serde::{Deserialize, Serialize};
use ticket_core::ids::{HoldId, SessionId, TicketId, UserId};
use ticket_core::model::audit::{Actor, AuditRecord, Subject};
use ticket_core::model::hold::{Hold, HoldItems, HoldState};
use ticket_core::model::money::Money;
use ticket_core::model::queue::{QueueTicket, TicketState};
use ticket_core::{Error, Result, Timestamp};

use crate::reply::{array, at, int, json, opt_int, opt_text, text};

/// The immutable part of a hold that the scripts never read, stored as JSON (the session is
/// the key's, the user has its own field).
#[derive(Debug, Serialize, Deserialize)]
pub(crate) struct HoldDoc {
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

/// A hold from its packed form (`lua/lib/holds.lua`): user, state, crt, exp, upd, units, gq,
/// seats, pref, adm, rbf, rbas, aud, doc — joined by [`SEP`], the JSON document last.
pub(crate) fn hold(session: SessionId, id: HoldId, v: &Value) -> Result<Hold> {
    let Some(packed) = opt_text(v, "hold")? else {
        return Err(Error::not_found("hold", id));
    };
    let f: Vec<&str> = packed.splitn(14, SEP).collect();
    let [
        user,
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
        session,
        user: UserId::new(*user).map_err(|e| Error::Corrupt(format!("hold {id} user: {e}")))?,
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

/// A queue ticket from `TICKET_FIELDS` (`lua/lib/tickets.lua`): id, st, pq, seq, jat, aat, exp.
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

/// Packs an audit record the way the scripts do: id, at, kind (`h`/`t`/`s`), subject, owner,
/// actor (JSON), from, to, reason, correlation id, joined by [`SEP`].
pub(crate) fn pack_audit(r: &AuditRecord) -> Result<String> {
    let (kind, subject) = match r.subject {
        Subject::Hold(h) => ("h", h.to_string()),
        Subject::Ticket(t) => ("t", t.to_string()),
        Subject::Session(s) => ("s", s.to_string()),
    };
    let actor = crate::reply::to_json(&r.actor)?;
    let at = r.at.as_millis().to_string();
    let id = r.id.as_uuid().simple().to_string();
    let fields = [
        id.as_str(),
        at.as_str(),
        kind,
        subject.as_str(),
        r.owner.as_str(),
        actor.as_str(),
        r.from.as_deref().unwrap_or(""),
        r.to.as_str(),
        r.reason.as_str(),
        r.correlation_id.as_deref().unwrap_or(""),
    ];
    Ok(fields.join(SEP.encode_utf8(&mut [0; 4])))
}

/// One audit record from its packed form.
pub(crate) fn audit_record(session: SessionId, packed: &str) -> Result<AuditRecord> {
    let f: Vec<&str> = packed.splitn(10, SEP).collect();
    let [
        id,
        at_ms,
        kind,
        subject,
        owner,
        actor,
        from,
        to,
        reason,
        corr,
    ] = f.as_slice()
    else {
        return Err(Error::Corrupt(format!(
            "audit record with {} fields",
            f.len()
        )));
    };
    let opt = |s: &&str| (!s.is_empty()).then(|| (*s).to_owned());
    Ok(AuditRecord {
        id: uuid(id, "audit id")?,
        at: Timestamp::from_millis(
            at_ms
                .parse()
                .map_err(|_| Error::Corrupt(format!("audit time {at_ms:?}")))?,
        ),
        session,
        subject: match *kind {
            "h" => Subject::Hold(uuid(subject, "hold id")?),
            "t" => Subject::Ticket(uuid(subject, "ticket id")?),
            "s" => Subject::Session(uuid(subject, "session id")?),
            other => return Err(Error::Corrupt(format!("audit subject kind {other:?}"))),
        },
        owner: UserId::new(*owner).map_err(|e| Error::Corrupt(format!("audit owner: {e}")))?,
        actor: json::<Actor>(actor, "audit actor")?,
        from: opt(from),
        to: (*to).to_owned(),
        reason: (*reason).to_owned(),
        correlation_id: opt(corr),
    })
}

/// Free text that goes into packed records must not contain [`SEP`].
pub(crate) fn check_text(what: &str, value: &str) -> Result<()> {
    if value.contains(SEP) {
        return Err(ticket_core::InvalidInput::Definition(format!(
            "{what} must not contain the control character U+001F"
        ))
        .into());
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use ticket_core::ids::AuditId;

    #[test]
    fn audit_records_round_trip_through_their_packed_form() {
        let at = Timestamp::from_millis(1_900_000_000_123);
        let session = SessionId::new_at(at);
        let record = AuditRecord {
            id: AuditId::new_at(at),
            at,
            session,
            subject: Subject::Hold(HoldId::new_at(at)),
            owner: UserId::new("user with spaces & ünïcode").expect("user"),
            actor: Actor::Operator("ops: \"quoted\"\nnewline".into()),
            from: Some("HELD".into()),
            to: "PAYING".into(),
            reason: "checkout; started\ttab".into(),
            correlation_id: None,
        };
        let packed = pack_audit(&record).expect("pack");
        assert_eq!(audit_record(session, &packed).expect("unpack"), record);
    }

    #[test]
    fn session_records_round_trip_through_their_packed_form() {
        let at = Timestamp::from_millis(1_900_000_000_123);
        let session = SessionId::new_at(at);
        let record = AuditRecord {
            id: AuditId::new_at(at),
            at,
            session,
            subject: Subject::Session(session),
            owner: UserId::new("organiser").expect("user"),
            actor: Actor::Operator("organiser".into()),
            from: Some("OPEN".into()),
            to: "PAUSED".into(),
            reason: "sound check".into(),
            correlation_id: None,
        };
        let packed = pack_audit(&record).expect("pack");
        assert_eq!(audit_record(session, &packed).expect("unpack"), record);
    }

    #[test]
    fn the_separator_is_refused_in_free_text() {
        assert!(check_text("reason", "fine\ttext\n").is_ok());
        assert!(matches!(
            check_text("reason", "bad\u{1f}text"),
            Err(Error::Invalid(_))
        ));
    }
}
