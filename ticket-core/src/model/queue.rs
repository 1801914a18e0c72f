//! The waiting queue: tickets, positions, pacing, the pre-queue draw and the stock outlook.

use std::time::Duration;

use rand_chacha::ChaCha8Rng;
use rand_core::{RngCore, SeedableRng};
use serde::{Deserialize, Serialize};

use crate::clock::Timestamp;
use crate::ids::{SessionId, TicketId, UserId};

/// The state of a queue ticket.
///
/// `WAITING → ACTIVE → USED | EXPIRED`, and `WAITING | ACTIVE → LEFT`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum TicketState {
    /// In line.
    Waiting,
    /// Admitted: may hold until `expires_at`.
    Active,
    /// A hold was made with it.
    Used,
    /// The admission ran out unused.
    Expired,
    /// The user left the queue.
    Left,
}

impl TicketState {
    /// WAITING or ACTIVE: the ticket still counts as the user's one ticket for the session.
    pub fn is_live(self) -> bool {
        matches!(self, Self::Waiting | Self::Active)
    }
}

/// A user's place in a session's queue. One live ticket per (user, session).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct QueueTicket {
    /// Id.
    pub id: TicketId,
    /// Session.
    pub session: SessionId,
    /// Owner.
    pub user: UserId,
    /// State as stored. Use [`QueueTicket::state_at`] for the state at an instant: an
    /// ACTIVE ticket past `expires_at` is EXPIRED even before anything rewrites it.
    pub state: TicketState,
    /// Joined before the open: the ticket waits for the shuffle and has no sequence yet.
    pub pre_queue: bool,
    /// Place in line (lower is earlier); `None` in the pre-queue before the draw.
    pub seq: Option<u64>,
    /// When the user joined.
    pub joined_at: Timestamp,
    /// When the user was admitted.
    pub admitted_at: Option<Timestamp>,
    /// When the admission ends.
    pub expires_at: Option<Timestamp>,
}

impl QueueTicket {
    /// The state at `now`, with admission expiry applied.
    pub fn state_at(&self, now: Timestamp) -> TicketState {
        match (self.state, self.expires_at) {
            (TicketState::Active, Some(exp)) if now >= exp => TicketState::Expired,
            (s, _) => s,
        }
    }
}

/// A WAITING ticket and its place in line, as [`crate::store::WaitingQueue::waiting_line`]
/// lists them.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct InLine {
    /// Place in line (the ticket's `seq`).
    pub line: u64,
    /// The ticket.
    pub ticket: TicketId,
    /// Its owner.
    pub user: UserId,
}

/// Whether the stock left is likely to reach a waiting position.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Outlook {
    /// Enough units are on sale for everyone ahead (one unit each) and this user.
    Likely,
    /// Only if some live holds expire or are released.
    Possible,
    /// Not with the units on sale or held now; cancellations could still help.
    Unlikely,
    /// Nothing is left on sale or in holds: stop waiting.
    SoldOut,
}

/// Where a ticket stands, computed in O(log n).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct QueueView {
    /// The ticket, with its state at the instant of the query.
    pub ticket: QueueTicket,
    /// 1-based position among the waiting (1 = admitted next); `None` unless WAITING and
    /// drawn.
    pub position: Option<u64>,
    /// Users waiting in the session.
    pub waiting: u64,
    /// Users in the undrawn pre-queue.
    pub pre_queue: u64,
    /// Estimated time to admission, from the measured admission rate; `None` when no rate
    /// has been measured yet or the ticket is not waiting.
    pub eta: Option<Duration>,
    /// Whether the stock left is likely to reach this position.
    pub outlook: Outlook,
}

/// What a backend reads, at one instant, to answer [`crate::store::WaitingQueue::view`];
/// [`QueueView::assemble`] turns it into the view, so every backend answers alike.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct QueueFigures {
    /// 1-based position of the ticket among the drawn waiting tickets (ignored unless the
    /// ticket is WAITING and drawn).
    pub position: Option<u64>,
    /// WAITING tickets, drawn or not.
    pub waiting: u64,
    /// WAITING tickets in the undrawn pre-queue.
    pub pre_queue: u64,
    /// ACTIVE, unexpired tickets.
    pub active: u64,
    /// Admissions in the last 60 seconds.
    pub admitted_last_minute: u64,
    /// Units on sale.
    pub available: u64,
    /// Units in live holds.
    pub held: u64,
}

impl QueueView {
    /// The view of `ticket` at `now`: its state with admission expiry applied, its position
    /// when WAITING and drawn, the ETA from the measured rate and the stock outlook.
    pub fn assemble(ticket: QueueTicket, now: Timestamp, f: QueueFigures) -> Self {
        let state = ticket.state_at(now);
        let position = match (state, ticket.seq) {
            (TicketState::Waiting, Some(_)) => f.position,
            _ => None,
        };
        let ahead = match (state, position) {
            (TicketState::Waiting, Some(p)) => p.saturating_sub(1),
            // Undrawn: the draw may put this user last.
            (TicketState::Waiting, None) => f.pre_queue.saturating_sub(1),
            _ => 0,
        };
        let outlook = match state {
            TicketState::Waiting | TicketState::Active => {
                outlook(ahead, f.active, f.available, f.held)
            }
            _ if f.available == 0 && f.held == 0 => Outlook::SoldOut,
            _ => Outlook::Unlikely,
        };
        Self {
            eta: position.and_then(|p| eta(p, f.admitted_last_minute)),
            position,
            waiting: f.waiting,
            pre_queue: f.pre_queue,
            outlook,
            ticket: QueueTicket { state, ..ticket },
        }
    }
}

/// Pacing of admissions for one session.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct AdmissionPacing {
    /// At most this many ACTIVE (admitted, unexpired, unused) users at once.
    pub max_active: u32,
    /// At most this many admissions in any sliding 60-second window.
    pub max_per_minute: u32,
    /// How long an admission lasts.
    pub admission_ttl: Duration,
    /// Units an admitted user is assumed to need; admission stops while
    /// `available < (active + 1) * units_per_user`.
    pub units_per_user: u32,
}

/// Why an admission round admitted fewer than it could have.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum AdmissionLimit {
    /// Nobody is waiting.
    Empty,
    /// The concurrent ACTIVE cap is reached.
    ActiveCap,
    /// The per-minute admission rate is reached.
    Rate,
    /// The units on sale cannot serve another admitted user.
    Stock,
}

/// The result of one admission round.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AdmissionRound {
    /// Tickets admitted in this round, in queue order.
    pub admitted: Vec<QueueTicket>,
    /// What stopped the round.
    pub limit: AdmissionLimit,
}

/// Aggregate figures of one session's queue.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct QueueStats {
    /// WAITING tickets (drawn or FIFO).
    pub waiting: u64,
    /// WAITING tickets still in the undrawn pre-queue.
    pub pre_queue: u64,
    /// ACTIVE, unexpired tickets.
    pub active: u64,
    /// Admissions in the last 60 seconds.
    pub admitted_last_minute: u64,
    /// Whether the pre-queue draw has happened.
    pub drawn: bool,
}

/// The recorded shuffle of the pre-queue at sales open.
///
/// Replay: `draw_order(&joined_in_order, seed) == order`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PreQueueDraw {
    /// Session.
    pub session: SessionId,
    /// The seed used.
    pub seed: u64,
    /// Pre-queue users in join order (the draw's input).
    pub joined: Vec<UserId>,
    /// Resulting queue order (the draw's output).
    pub order: Vec<UserId>,
    /// When the draw happened.
    pub drawn_at: Timestamp,
}

impl PreQueueDraw {
    /// The draw of `joined` (the pre-queue in join order) with `seed` at `drawn_at`: its
    /// order is [`draw_order`]`(&joined, seed)`.
    pub fn shuffle(
        session: SessionId,
        joined: Vec<UserId>,
        seed: u64,
        drawn_at: Timestamp,
    ) -> Self {
        let order = draw_order(&joined, seed);
        Self {
            session,
            seed,
            joined,
            order,
            drawn_at,
        }
    }
}

/// A join request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JoinRequest {
    /// Session.
    pub session: SessionId,
    /// User.
    pub user: UserId,
    /// The instant of the request.
    pub now: Timestamp,
    /// Join the pre-queue (before the open) rather than the FIFO line. Ignored once the
    /// draw has happened: from then on every join is FIFO.
    pub pre_queue: bool,
    /// Largest number of waiting users; a join beyond it is [`crate::Refusal::QueueFull`].
    pub max_waiting: Option<u32>,
}

/// The draw: a Fisher–Yates shuffle of `joined` driven by ChaCha8 seeded with `seed`, with
/// unbiased (rejection-sampled) indices. Anyone with the seed and the join order can replay
/// it; the output depends on nothing else.
pub fn draw_order(joined: &[UserId], seed: u64) -> Vec<UserId> {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let mut out = joined.to_vec();
    for i in (1..out.len()).rev() {
        let bound = (i + 1) as u64;
        let zone = u64::MAX - (u64::MAX % bound);
        let j = loop {
            let x = rng.next_u64();
            if x < zone {
                break (x % bound) as usize;
            }
        };
        out.swap(i, j);
    }
    out
}

/// A fresh, unpredictable seed for a draw (from the operating system's RNG).
pub fn fresh_draw_seed() -> u64 {
    let mut buf = [0u8; 8];
    // A failing OS RNG leaves zeros; the seed is recorded either way, so the draw stays
    // auditable.
    let _ = rand_core::TryRngCore::try_fill_bytes(&mut rand_core::OsRng, &mut buf);
    u64::from_le_bytes(buf)
}

/// The outlook for a user with `ahead` users waiting before them, given `active` admitted
/// users and the stock counters.
pub fn outlook(ahead: u64, active: u64, available: u64, held: u64) -> Outlook {
    if available == 0 && held == 0 {
        Outlook::SoldOut
    } else if ahead + active < available {
        Outlook::Likely
    } else if ahead + active < available + held {
        Outlook::Possible
    } else {
        Outlook::Unlikely
    }
}

/// Time to reach `position` (1-based) at `admitted_last_minute` admissions per minute.
pub fn eta(position: u64, admitted_last_minute: u64) -> Option<Duration> {
    if admitted_last_minute == 0 {
        return None;
    }
    let ms = position.saturating_mul(60_000) / admitted_last_minute;
    Some(Duration::from_millis(ms))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn users(n: usize) -> Vec<UserId> {
        (0..n)
            .map(|i| UserId::new(format!("u{i}")).unwrap())
            .collect()
    }

    #[test]
    fn draw_is_a_replayable_permutation() {
        let joined = users(50);
        let a = draw_order(&joined, 42);
        assert_eq!(a, draw_order(&joined, 42));
        assert_ne!(a, joined, "a 50-element shuffle left everything in place");
        assert_ne!(a, draw_order(&joined, 43));
        let mut sorted = a.clone();
        sorted.sort();
        let mut expected = joined.clone();
        expected.sort();
        assert_eq!(sorted, expected);
        assert!(draw_order(&[], 1).is_empty());
    }

    #[test]
    fn outlook_follows_stock() {
        assert_eq!(outlook(0, 0, 0, 0), Outlook::SoldOut);
        assert_eq!(outlook(3, 1, 5, 0), Outlook::Likely);
        assert_eq!(outlook(4, 1, 5, 2), Outlook::Possible);
        assert_eq!(outlook(9, 1, 5, 2), Outlook::Unlikely);
        assert_eq!(eta(10, 0), None);
        assert_eq!(eta(10, 60), Some(Duration::from_secs(10)));
    }

    #[test]
    fn admission_expiry_is_applied_on_read() {
        let t = QueueTicket {
            id: TicketId::new_at(Timestamp::from_millis(0)),
            session: SessionId::new_at(Timestamp::from_millis(0)),
            user: UserId::new("u").unwrap(),
            state: TicketState::Active,
            pre_queue: false,
            seq: Some(0),
            joined_at: Timestamp::from_millis(0),
            admitted_at: Some(Timestamp::from_millis(10)),
            expires_at: Some(Timestamp::from_millis(100)),
        };
        assert_eq!(t.state_at(Timestamp::from_millis(99)), TicketState::Active);
        assert_eq!(
            t.state_at(Timestamp::from_millis(100)),
            TicketState::Expired
        );
    }
}
