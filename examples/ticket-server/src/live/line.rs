//! An exact in-memory copy of one session's waiting line: the WAITING tickets that have a
//! place (`seq`), loaded from `WaitingQueue::waiting_line` and kept up to date from the
//! change feed. Every operation is idempotent (adding a ticket already in line, removing
//! one that is not), so replaying changes the load already reflects converges to the same
//! line. A ticket's position is a Fenwick prefix count over the places: O(log n).

use std::collections::HashMap;

use ticket_core::TicketId;
use ticket_core::model::queue::InLine;

use ticket_core::backend::fenwick::Fenwick;

/// The waiting line of a session.
#[derive(Debug, Default, Clone)]
pub struct Line {
    /// The smallest place the tree indexes (index = place − base).
    base: u64,
    /// 1 at each occupied place.
    ranks: Fenwick,
    /// Each ticket in line and its place.
    places: HashMap<TicketId, u64>,
}

impl Line {
    /// A line of `entries` (any order).
    pub fn from_entries(entries: impl IntoIterator<Item = InLine>) -> Self {
        let entries: Vec<InLine> = entries.into_iter().collect();
        let base = entries.iter().map(|e| e.line).min().unwrap_or(0);
        let mut line = Self {
            base,
            ..Self::default()
        };
        for e in entries {
            line.insert(e.ticket, e.line);
        }
        line
    }

    /// Waiting tickets with a place.
    pub fn len(&self) -> u64 {
        self.places.len() as u64
    }

    /// Whether nobody is in line.
    pub fn is_empty(&self) -> bool {
        self.places.is_empty()
    }

    /// Puts `ticket` at `place`; `false` when it was there already (or the place is taken).
    pub fn insert(&mut self, ticket: TicketId, place: u64) -> bool {
        if self.places.contains_key(&ticket) {
            return false;
        }
        if place < self.base {
            self.rebase(place);
        }
        let i = self.index(place);
        if self.ranks.get(i) > 0 {
            // One ticket per place: a second one would be a corrupt feed; keep the first.
            return false;
        }
        self.ranks.add(i, 1);
        self.places.insert(ticket, place);
        true
    }

    /// Takes `ticket` out of line; its place, or `None` when it was not in line.
    pub fn remove(&mut self, ticket: TicketId) -> Option<u64> {
        let place = self.places.remove(&ticket)?;
        let i = self.index(place);
        self.ranks.add(i, -1);
        Some(place)
    }

    /// The ticket's place, when in line.
    pub fn place(&self, ticket: TicketId) -> Option<u64> {
        self.places.get(&ticket).copied()
    }

    /// The ticket's 1-based position (1 = admitted next), when in line.
    pub fn position(&self, ticket: TicketId) -> Option<u64> {
        let place = self.place(ticket)?;
        u64::try_from(self.ranks.prefix(self.index(place))).ok()
    }

    fn index(&self, place: u64) -> usize {
        usize::try_from(place - self.base).unwrap_or(usize::MAX)
    }

    /// Re-indexes from a lower base (rare: only a place below every loaded one).
    fn rebase(&mut self, base: u64) {
        self.base = base;
        self.ranks = Fenwick::default();
        let places: Vec<u64> = self.places.values().copied().collect();
        for p in places {
            let i = self.index(p);
            self.ranks.add(i, 1);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ticket_core::{Timestamp, UserId};

    fn t(n: i64) -> TicketId {
        TicketId::new_at(Timestamp::from_millis(1_700_000_000_000 + n))
    }

    #[test]
    fn positions_follow_joins_and_removals_idempotently() {
        let user = UserId::new("u").expect("user");
        let (a, b, c, d) = (t(1), t(2), t(3), t(4));
        let mut line = Line::from_entries([
            InLine {
                line: 10,
                ticket: a,
                user: user.clone(),
            },
            InLine {
                line: 12,
                ticket: b,
                user: user.clone(),
            },
        ]);
        assert_eq!(line.position(a), Some(1));
        assert_eq!(line.position(b), Some(2));
        assert!(line.insert(c, 15));
        assert!(!line.insert(c, 15), "idempotent");
        assert_eq!(line.position(c), Some(3));
        assert_eq!(line.remove(a), Some(10));
        assert_eq!(line.remove(a), None, "idempotent");
        assert_eq!((line.position(b), line.position(c)), (Some(1), Some(2)));
        // A place below the base re-indexes.
        assert!(line.insert(d, 3));
        assert_eq!((line.position(d), line.position(c)), (Some(1), Some(3)));
        assert_eq!(line.len(), 3);
        assert_eq!(line.position(a), None);
    }
}
