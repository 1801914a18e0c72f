//! Keyset paging: pages of a list read by cursor, so every list a person sees is complete,
//! ordered and stable while writers keep writing.
//!
//! A page ends with the cursor of its last item; the next page starts strictly after it.
//! Paging through a list returns every item that existed when the paging started exactly
//! once, in order; an item written during the paging appears at most once.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

use crate::clock::Timestamp;
use crate::error::InvalidInput;
use crate::ids::{AuditId, HoldId};
use crate::model::audit::{AuditRecord, AuditScope};
use crate::model::hold::Hold;

/// The largest page any list read answers.
pub const MAX_PAGE_LIMIT: usize = 500;

/// Checks a page size: `1..=MAX_PAGE_LIMIT`, or `InvalidInput::PageLimit`.
pub fn check_limit(limit: usize) -> Result<(), InvalidInput> {
    if (1..=MAX_PAGE_LIMIT).contains(&limit) {
        Ok(())
    } else {
        Err(InvalidInput::PageLimit {
            max: MAX_PAGE_LIMIT,
            got: limit,
        })
    }
}

/// Which way a list runs.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PageOrder {
    /// Newest first (the default: what a person usually wants to see).
    #[default]
    NewestFirst,
    /// Oldest first (replaying history).
    OldestFirst,
}

/// One page of a list and the cursor to ask for the next.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Page<T, C> {
    /// The items, in the list's order.
    pub items: Vec<T>,
    /// The cursor of the last item when the page is full (more may follow); `None` when
    /// the list ended within this page.
    pub next: Option<C>,
}

impl<T, C> Page<T, C> {
    /// A page of `items` read with page size `limit`: full pages carry the cursor of their
    /// last item.
    pub fn of(items: Vec<T>, limit: usize, cursor: impl Fn(&T) -> C) -> Self {
        let next = if items.len() >= limit {
            items.last().map(cursor)
        } else {
            None
        };
        Self { items, next }
    }
}

/// A stable position in a time-ordered list: `(at, id)`, ordered by time and then by id.
macro_rules! time_cursor {
    ($(#[$doc:meta])* $name:ident, $id:ty) => {
        $(#[$doc])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
        pub struct $name {
            /// The item's time.
            pub at: Timestamp,
            /// The item's id (breaks ties between items of the same millisecond).
            pub id: $id,
        }

        /// `<milliseconds>_<uuid>`: the token form a cursor travels in (URLs, headers).
        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                write!(f, "{}_{}", self.at.as_millis(), self.id)
            }
        }

        impl FromStr for $name {
            type Err = InvalidInput;
            fn from_str(s: &str) -> Result<Self, Self::Err> {
                let malformed = || InvalidInput::MalformedId {
                    kind: stringify!($name),
                    value: s.chars().take(64).collect(),
                };
                let (at, id) = s.split_once('_').ok_or_else(malformed)?;
                let at = at.parse::<i64>().map_err(|_| malformed())?;
                let id = id.parse::<$id>().map_err(|_| malformed())?;
                Ok(Self { at: Timestamp::from_millis(at), id })
            }
        }
    };
}

time_cursor!(
    /// A position in a user's holds: `(created_at, id)`.
    HoldCursor,
    HoldId
);

time_cursor!(
    /// A position in an audit trail: `(at, id)`.
    AuditCursor,
    AuditId
);

impl HoldCursor {
    /// The cursor of `hold`.
    pub fn of(hold: &Hold) -> Self {
        Self {
            at: hold.created_at,
            id: hold.id,
        }
    }
}

impl AuditCursor {
    /// The cursor of `record`.
    pub fn of(record: &AuditRecord) -> Self {
        Self {
            at: record.at,
            id: record.id,
        }
    }
}

/// A page of a user's holds across every session, newest first.
pub type HoldPage = Page<Hold, HoldCursor>;

/// A page of an audit trail.
pub type AuditPage = Page<AuditRecord, AuditCursor>;

/// Which page of an audit trail to read.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AuditQuery {
    /// Whose records.
    pub scope: AuditScope,
    /// Which way the list runs; records are ordered by `(at, id)`.
    pub order: PageOrder,
    /// Start strictly after this record (in `order`); `None` starts at the first.
    pub after: Option<AuditCursor>,
    /// Page size, `1..=MAX_PAGE_LIMIT`.
    pub limit: usize,
}

impl AuditQuery {
    /// Whether `c` lies strictly after the query's cursor in its order.
    pub fn admits(&self, c: &AuditCursor) -> bool {
        match (&self.after, self.order) {
            (None, _) => true,
            (Some(a), PageOrder::OldestFirst) => c > a,
            (Some(a), PageOrder::NewestFirst) => c < a,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cursors_round_trip_through_their_token() {
        let c = HoldCursor {
            at: Timestamp::from_millis(1_900_000_000_123),
            id: HoldId::new_at(Timestamp::from_millis(1_900_000_000_123)),
        };
        assert_eq!(c.to_string().parse::<HoldCursor>(), Ok(c));
        assert!("12_nope".parse::<HoldCursor>().is_err());
        assert!("nope".parse::<AuditCursor>().is_err());
        assert!(format!("x_{}", c.id).parse::<HoldCursor>().is_err());
    }

    #[test]
    fn page_limits_are_bounded() {
        assert!(check_limit(0).is_err());
        assert!(check_limit(1).is_ok());
        assert!(check_limit(MAX_PAGE_LIMIT).is_ok());
        assert!(check_limit(MAX_PAGE_LIMIT + 1).is_err());
    }

    #[test]
    fn only_full_pages_carry_a_cursor() {
        let p = Page::of(vec![1, 2, 3], 3, |x| *x);
        assert_eq!(p.next, Some(3));
        let p = Page::of(vec![1, 2], 3, |x| *x);
        assert_eq!(p.next, None);
    }
}
