//! The `{"err": …}` answers of the functions, mapped to `ticket-core` errors.

use ticket_core::model::hold::HoldState;
use ticket_core::model::inventory::{Grade, SeatId};
use ticket_core::{Error, InvalidInput, Refusal, Result, Timestamp};

use crate::rows::{int, text};
use crate::store::decode;

/// The error code of an answer, if it is an error.
pub(crate) fn err_code(answer: &serde_json::Value) -> Option<&str> {
    answer.get("err").and_then(serde_json::Value::as_str)
}

fn count32(answer: &serde_json::Value, field: &str) -> Result<u32> {
    let n = int(answer, field)?;
    u32::try_from(n).map_err(|_| Error::Corrupt(format!("{field} = {n} out of range")))
}

fn at(answer: &serde_json::Value) -> Result<Timestamp> {
    Ok(Timestamp::from_millis(int(answer, "at")?))
}

/// The seats listed in an answer's `seats` field.
fn seat_list(answer: &serde_json::Value) -> Result<Vec<SeatId>> {
    answer
        .get("seats")
        .and_then(serde_json::Value::as_array)
        .ok_or_else(|| Error::Corrupt(format!("seats answer {answer}")))?
        .iter()
        .map(|s| {
            s.as_str()
                .and_then(|s| SeatId::new(s).ok())
                .ok_or_else(|| Error::Corrupt(format!("stored seat {s}")))
        })
        .collect()
}

/// The error an `{"err": code, …}` answer stands for. `to` is the state a transition asked
/// for (for `IllegalTransition`).
pub(crate) fn refusal(answer: &serde_json::Value, to: HoldState) -> Error {
    match decode_refusal(answer, to) {
        Ok(e) | Err(e) => e,
    }
}

fn decode_refusal(answer: &serde_json::Value, to: HoldState) -> Result<Error> {
    let code = err_code(answer).unwrap_or("");
    let refusal = match code {
        "dup_id" => {
            return Ok(InvalidInput::Definition("hold id already used".into()).into());
        }
        "sold_out" => Refusal::SoldOut {
            grade: Grade::new(text(answer, "grade")?)
                .map_err(|e| Error::Corrupt(format!("stored grade: {e}")))?,
            requested: count32(answer, "requested")?,
            available: count32(answer, "available")?,
        },
        "seats" => Refusal::SeatsUnavailable {
            seats: seat_list(answer)?,
        },
        "seats_exist" => Refusal::SeatsExist {
            seats: seat_list(answer)?,
        },
        "unknown_seat" => Refusal::UnknownItem {
            what: "seat".to_owned(),
            name: text(answer, "seat")?.to_owned(),
        },
        "sales_paused" => Refusal::SalesPaused,
        "sales_closed" => Refusal::SalesClosed {
            closed_at: at(answer)?,
        },
        "session_cancelled" => Refusal::SessionCancelled {
            cancelled_at: at(answer)?,
        },
        "capacity_in_use" => Refusal::CapacityInUse {
            grade: Grade::new(text(answer, "grade")?)
                .map_err(|e| Error::Corrupt(format!("stored grade: {e}")))?,
            requested: count32(answer, "requested")?,
            removable: count32(answer, "removable")?,
        },
        "limit" => Refusal::LimitExceeded {
            limit: count32(answer, "limit")?,
            current: count32(answer, "current")?,
            requested: count32(answer, "requested")?,
        },
        "not_admitted" => Refusal::NotAdmitted,
        "admission_expired" => Refusal::AdmissionExpired {
            expired_at: at(answer)?,
        },
        "hold_expired" => Refusal::HoldExpired {
            expired_at: at(answer)?,
        },
        "not_due" => Refusal::NotDue {
            expires_at: at(answer)?,
        },
        "illegal" => {
            let from: HoldState = serde_json::from_value(
                answer
                    .get("from")
                    .cloned()
                    .unwrap_or(serde_json::Value::Null),
            )
            .map_err(|e| Error::Corrupt(format!("stored state: {e}")))?;
            Refusal::IllegalTransition { from, to }
        }
        "queue_full" => Refusal::QueueFull {
            cap: count32(answer, "cap")?,
        },
        "not_in_queue" => Refusal::NotInQueue,
        "ticket_used" => Refusal::TicketUsed {
            first_used_at: at(answer)?,
        },
        "wrong_session" => Refusal::WrongSession {
            session: decode(
                answer
                    .get("session")
                    .cloned()
                    .unwrap_or(serde_json::Value::Null),
                "session id",
            )?,
        },
        "ticket_out_of_range" => Refusal::TicketOutOfRange {
            ticket: count32(answer, "ticket")?,
            tickets: count32(answer, "tickets")?,
        },
        "not_confirmed" => Refusal::NotConfirmed {
            state: serde_json::from_value(
                answer
                    .get("state")
                    .cloned()
                    .unwrap_or(serde_json::Value::Null),
            )
            .map_err(|e| Error::Corrupt(format!("stored state: {e}")))?,
        },
        other => {
            return Ok(Error::Corrupt(format!(
                "unknown answer {other:?}: {answer}"
            )));
        }
    };
    Ok(refusal.into())
}
