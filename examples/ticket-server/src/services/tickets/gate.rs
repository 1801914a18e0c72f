//! The gate's scan: a ticket code checked and its ticket marked used, once.
//!
//! The marking is the library's check-in ([`ticket_core::service::GateService`]): one atomic
//! store step that marks the ticket only while its reservation is CONFIRMED and at its own
//! session, while a cancellation is refused once a ticket went in, so a holder is never both
//! let in and refunded. The marks live in the shared store, so gates on different server
//! processes admit each ticket once. A refused scan marks nothing.

use ticket_core::model::check_in::CheckInOutcome;
use ticket_core::model::hold::Hold;
use ticket_core::{Error, SessionId, TicketRush, Timestamp};

use super::{CodeError, TicketId, TicketLine, TicketSigner, tickets_of};

/// A ticket let in by its first scan.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Admitted {
    /// The ticket, its grade and seat.
    pub line: TicketLine,
    /// Its reservation.
    pub hold: Hold,
    /// This scan's time.
    pub at: Timestamp,
}

/// Why a scan let no one in; nothing was marked.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ScanError {
    /// The code is forged, tampered with or malformed.
    #[error(transparent)]
    Code(#[from] CodeError),
    /// The ticket's reservation does not exist.
    #[error("ticket {0}: its reservation does not exist")]
    NoReservation(TicketId),
    /// The reservation is not the one the code was issued for (e.g. another deployment's
    /// data under the same secret).
    #[error("ticket {0} does not match its reservation")]
    Mismatch(TicketId),
    /// The ticket was already let in, at `at` by the gate account `gate`.
    #[error("ticket {ticket} was already used")]
    AlreadyUsed {
        /// The ticket.
        ticket: TicketId,
        /// Its first scan.
        at: Timestamp,
        /// Who scanned it first.
        gate: String,
    },
    /// Reading the reservation failed (storage).
    #[error(transparent)]
    Lookup(Error),
    /// The library refused the check-in (wrong session, reservation not confirmed, …) or
    /// the store failed.
    #[error("ticket {ticket}: {source}")]
    CheckIn {
        /// The ticket.
        ticket: TicketId,
        /// The library's answer.
        #[source]
        source: Error,
    },
}

/// Checks `code` (signed by `signer`) and, on the ticket's first scan at `at_session`, marks
/// it used by the gate account `by`.
pub async fn scan(
    rush: &TicketRush,
    signer: &TicketSigner,
    code: &str,
    at_session: SessionId,
    by: &str,
) -> Result<Admitted, ScanError> {
    let claims = signer.verify(code)?;
    let ticket = claims.ticket;
    let hold = match rush.stores().reservations.get(ticket.hold()).await {
        Ok(hold) => hold,
        Err(Error::NotFound { .. }) => return Err(ScanError::NoReservation(ticket)),
        Err(e) => return Err(ScanError::Lookup(e)),
    };
    // A genuine code always matches its hold; a mismatch means the hold is not the one the
    // code was issued for. The owner, session and units of a hold never change, so reading
    // them before the check-in is safe; whether it admits anyone is decided by the check-in
    // itself, atomically.
    let line = tickets_of(&hold).into_iter().find(|l| l.id == ticket);
    let Some(line) = line.filter(|_| hold.user == claims.user && hold.session == claims.session)
    else {
        return Err(ScanError::Mismatch(ticket));
    };
    let outcome = rush
        .gate
        .check_in(hold.id, at_session, ticket.number(), by)
        .await
        .map_err(|source| ScanError::CheckIn { ticket, source })?;
    match outcome {
        CheckInOutcome::FirstUse { at } => {
            tracing::info!(ticket = %ticket, gate = %by, "ticket admitted");
            Ok(Admitted { line, hold, at })
        }
        CheckInOutcome::AlreadyUsed { at, gate } => {
            Err(ScanError::AlreadyUsed { ticket, at, gate })
        }
    }
}
