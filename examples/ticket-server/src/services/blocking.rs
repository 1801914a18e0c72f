//! What blocking a user does beyond the account store: their waiting queue tickets leave
//! every queue. (Each refusal of a blocked user is reported for the abuse audit by the
//! [`crate::http::extract::Buyer`] extractor.)
//!
//! The account store blocks atomically (flag, token version, refresh families, audit
//! record: [`crate::stores::accounts::AccountStore::set_blocked`]); from then on [`crate::http::extract::Buyer`]
//! refuses the user on the queue, hold and payment routes. What is left is the queue: a
//! blocked user's place in line would still be admitted (and take an admission slot from
//! someone else), so [`leave_all_queues`] takes it out.

use ticket_core::model::session::Event;
use ticket_core::{Error, SessionId};

use crate::runtime::state::AppState;
use crate::stores::accounts::{AccountError, UserId};

/// How many events are read per page while looking for sessions to leave.
const EVENT_PAGE: usize = 200;

/// Takes `user` out of every queue they wait in (or hold an unused admission of): the
/// library's idempotent `leave` for every session whose sales have not closed, found by
/// paging through the catalogue (`inventory.events`, 200 events at a time).
///
/// Why the catalogue and not a record of the user's joins: a record would cost a write on
/// every join (the hottest route of a rush) to speed up a rare admin action; the catalogue
/// is small (sessions, not buyers) and already paged by cursor. Cost: one `leave` per open
/// session. A session where the user has no ticket, or a ticket already used or expired,
/// is skipped. Answers how many tickets left a queue.
///
/// Not atomic with the block: a join that passed its checks just before the block can
/// land after this sweep. Such a ticket is harmless (the user cannot hold or pay) and is
/// taken out by the next block or when its admission expires.
pub async fn leave_all_queues(state: &AppState, user: UserId) -> Result<u64, Error> {
    let lib_user = ticket_core::UserId::new(user.to_string()).map_err(Error::from)?;
    let inventory = &state.rush.stores().inventory;
    let mut after = None;
    let mut left = 0;
    loop {
        let page: Vec<Event> = inventory.events(after, EVENT_PAGE).await?;
        let now = state.clock.now();
        let open: Vec<SessionId> = page
            .iter()
            .flat_map(|e| &e.sessions)
            .filter(|s| now < s.sales.close_at)
            .map(|s| s.id)
            .collect();
        for session in open {
            match state.rush.admission.leave(session, &lib_user).await {
                Ok(_) => left += 1,
                Err(Error::NotFound { .. } | Error::Refused(_)) => {}
                Err(e) => return Err(e),
            }
        }
        match page.last() {
            Some(last) if page.len() == EVENT_PAGE => after = Some(last.id),
            _ => return Ok(left),
        }
    }
}

/// Why a block did not finish.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum BlockError {
    /// The account store refused (own account, an admin, no such account) or failed:
    /// nothing changed.
    #[error(transparent)]
    Account(#[from] AccountError),
    /// The account is blocked, but leaving the queues failed part-way; a repeat of the block
    /// sweeps them again.
    #[error(transparent)]
    Queues(#[from] Error),
}

/// Blocks `target` for `admin` (atomically with its audit record and the end of its
/// tokens: [`crate::stores::accounts::AccountStore::set_blocked`]), then takes it out of
/// every queue ([`leave_all_queues`]). Answers how many tickets left a queue. A repeat only
/// sweeps the queues again.
pub async fn block(state: &AppState, admin: UserId, target: UserId) -> Result<u64, BlockError> {
    state
        .accounts
        .set_blocked(admin, target, true, state.clock.now())
        .await?;
    let left = leave_all_queues(state, target).await?;
    tracing::warn!(admin = %admin, user = %target, queues_left = left, "user blocked");
    Ok(left)
}
