//! A buyer's tickets: one per unit or seat of each of their CONFIRMED reservations, each
//! with its signed code and whether the gate already let it in.

use std::collections::HashMap;

use ticket_core::model::hold::HoldState;
use ticket_core::{Error, HoldId, SessionId, TicketRush, Timestamp, UserId};

use super::{TicketClaims, TicketId, TicketLine, TicketSigner, tickets_of};
use crate::services::reservations::holds_of;

/// One ticket of a buyer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OwnedTicket {
    /// The ticket, its grade and seat.
    pub line: TicketLine,
    /// Its reservation (hold).
    pub hold: HoldId,
    /// Its session.
    pub session: SessionId,
    /// Its signed code, to show at the gate.
    pub code: String,
    /// When the gate let it in; `None` while it is still valid.
    pub used_at: Option<Timestamp>,
}

/// The tickets of `user`'s CONFIRMED reservations (newest reservation first, each in its own
/// order of units or seats), signed with `signer`, with their check-ins read from the
/// shared store (one read per reservation).
pub async fn owned_tickets(
    rush: &TicketRush,
    signer: &TicketSigner,
    user: &UserId,
) -> Result<Vec<OwnedTicket>, Error> {
    let mut holds = holds_of(rush, user).await?;
    holds.retain(|h| h.state == HoldState::Confirmed);
    let mut used: HashMap<TicketId, Timestamp> = HashMap::new();
    for hold in &holds {
        for mark in rush.gate.check_ins(hold.id).await? {
            if let Ok(id) = TicketId::new(hold.id, mark.ticket) {
                used.insert(id, mark.at);
            }
        }
    }
    Ok(holds
        .iter()
        .flat_map(|hold| {
            let used = &used;
            tickets_of(hold).into_iter().map(move |line| OwnedTicket {
                hold: hold.id,
                session: hold.session,
                code: signer.sign(&TicketClaims {
                    ticket: line.id,
                    session: hold.session,
                    user: hold.user.clone(),
                }),
                used_at: used.get(&line.id).copied(),
                line,
            })
        })
        .collect())
}
