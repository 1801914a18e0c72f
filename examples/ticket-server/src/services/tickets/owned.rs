//! A buyer's tickets: one per unit or seat of each of their CONFIRMED reservations, each
//! with its signed code and whether the gate already let it in.

use std::collections::HashMap;

use ticket_core::model::hold::{Hold, HoldState};
use ticket_core::model::page::HoldCursor;
use ticket_core::{Error, HoldId, SessionId, TicketRush, Timestamp, UserId};

use super::{TicketClaims, TicketId, TicketLine, TicketSigner, tickets_of};
use crate::services::reservations::holds_page;

/// The most pages of holds one request for tickets reads.
pub const MAX_SCAN_PAGES: usize = 4;

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

/// A page of `user`'s tickets: the tickets of their CONFIRMED reservations among their
/// holds after `after` (newest reservation first, each in its own order of units or seats),
/// signed with `signer`, with their check-ins read from the shared store (one read per
/// confirmed reservation on the page).
///
/// Reads holds a page of `limit` at a time until `limit` confirmed reservations are found,
/// the list ends, or [`MAX_SCAN_PAGES`] pages were read (so a buyer with many unpaid holds
/// costs a bounded read per request); the cursor returned is the last hold examined, `None`
/// when the list ended.
pub async fn owned_tickets(
    rush: &TicketRush,
    signer: &TicketSigner,
    user: &UserId,
    after: Option<HoldCursor>,
    limit: usize,
) -> Result<(Vec<OwnedTicket>, Option<HoldCursor>), Error> {
    let mut holds: Vec<Hold> = Vec::new();
    let mut cursor = after;
    let mut next = None;
    for _ in 0..MAX_SCAN_PAGES {
        let page = holds_page(rush, user, cursor, limit).await?;
        let ended = page.next.is_none();
        for hold in page.items {
            cursor = Some(HoldCursor::of(&hold));
            if hold.state == HoldState::Confirmed {
                holds.push(hold);
                if holds.len() == limit {
                    break;
                }
            }
        }
        next = if ended && holds.len() < limit {
            None
        } else {
            cursor
        };
        if ended || holds.len() == limit {
            break;
        }
    }
    let mut used: HashMap<TicketId, Timestamp> = HashMap::new();
    for hold in &holds {
        for mark in rush.gate.check_ins(hold.id).await? {
            if let Ok(id) = TicketId::new(hold.id, mark.ticket) {
                used.insert(id, mark.at);
            }
        }
    }
    let tickets = holds
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
        .collect();
    Ok((tickets, next))
}
