//! What a session sells: general-admission capacity per grade, or individual seats.

use std::collections::HashSet;
use std::fmt;

use serde::{Deserialize, Serialize};

use super::money::{Currency, Money};
use crate::error::InvalidInput;

macro_rules! name_type {
    ($(#[$doc:meta])* $name:ident, $max:expr) => {
        $(#[$doc])*
        #[derive(Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
        #[serde(try_from = "String", into = "String")]
        pub struct $name(String);

        impl $name {
            /// Validates a name: 1 to
            #[doc = stringify!($max)]
            /// characters of letters, digits, `-`, `_` or `.`.
            pub fn new(name: impl Into<String>) -> Result<Self, InvalidInput> {
                let name = name.into();
                let ok = !name.is_empty()
                    && name.len() <= $max
                    && name.chars().all(|c| c.is_ascii_alphanumeric() || "-_.".contains(c));
                if ok {
                    Ok(Self(name))
                } else {
                    Err(InvalidInput::Definition(format!(
                        "{} must be 1..={} letters, digits, '-', '_' or '.', got {:?}",
                        stringify!($name), $max, name
                    )))
                }
            }

            /// The name as a string.
            pub fn as_str(&self) -> &str {
                &self.0
            }
        }

        impl TryFrom<String> for $name {
            type Error = InvalidInput;
            fn try_from(s: String) -> Result<Self, Self::Error> {
                Self::new(s)
            }
        }

        impl From<$name> for String {
            fn from(n: $name) -> Self {
                n.0
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.0)
            }
        }

        impl fmt::Debug for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                write!(f, "{:?}", self.0)
            }
        }
    };
}

name_type!(
    /// A price grade (`GA`, `VIP`, `R`, `S`, …).
    Grade,
    32
);
name_type!(
    /// A seat's id within its session (`A-12`).
    SeatId,
    32
);

/// General-admission stock of one grade.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct GradeStock {
    /// The grade.
    pub grade: Grade,
    /// Units for sale in total.
    pub capacity: u32,
    /// Price of one unit.
    pub price: Money,
}

/// One seat of a seated session.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Seat {
    /// Seat id, unique within the session.
    pub id: SeatId,
    /// Section label (`Floor`, `Balcony 2`); free text for display.
    pub section: String,
    /// Price grade.
    pub grade: Grade,
    /// Price.
    pub price: Money,
}

/// What a session sells.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum InventoryPlan {
    /// Interchangeable units per grade.
    General {
        /// One entry per grade.
        grades: Vec<GradeStock>,
    },
    /// Individually identified seats.
    Seated {
        /// Every seat.
        seats: Vec<Seat>,
    },
}

const NO_PRICE: &str = "no price given";

/// Largest number of units or seats a session may sell (keeps counters far from overflow).
pub const MAX_SESSION_CAPACITY: u32 = 10_000_000;

impl InventoryPlan {
    /// Checks the plan: non-empty, unique grade and seat names, positive capacities, a single
    /// currency, total capacity at most [`MAX_SESSION_CAPACITY`].
    pub fn validate(&self) -> Result<Currency, InvalidInput> {
        self.check(false)
    }

    /// [`InventoryPlan::validate`] for a plan changed while selling: a grade may have been
    /// brought down to zero units (its sold units were never there, or were all removed),
    /// so zero capacities and an empty plan pass; every other check holds.
    pub fn validate_allowing_empty_grades(&self) -> Result<Option<Currency>, InvalidInput> {
        match self.check(true) {
            Ok(c) => Ok(Some(c)),
            Err(InvalidInput::Definition(m)) if m == NO_PRICE => Ok(None),
            Err(e) => Err(e),
        }
    }

    fn check(&self, allow_empty: bool) -> Result<Currency, InvalidInput> {
        let bad = |m: String| InvalidInput::Definition(m);
        let mut currency: Option<Currency> = None;
        let mut same_currency = |m: &Money| -> Result<(), InvalidInput> {
            match currency {
                Some(c) if c != m.currency => Err(bad(format!(
                    "one currency per session: {} and {}",
                    c, m.currency
                ))),
                _ => {
                    currency = Some(m.currency);
                    Ok(())
                }
            }
        };
        let total: u64 = match self {
            Self::General { grades } => {
                let mut seen = HashSet::new();
                for g in grades {
                    if !seen.insert(&g.grade) {
                        return Err(bad(format!("grade {} listed twice", g.grade)));
                    }
                    if g.capacity == 0 && !allow_empty {
                        return Err(bad(format!("grade {} has zero capacity", g.grade)));
                    }
                    same_currency(&g.price)?;
                }
                grades.iter().map(|g| u64::from(g.capacity)).sum()
            }
            Self::Seated { seats } => {
                let mut seen = HashSet::new();
                for s in seats {
                    if !seen.insert(&s.id) {
                        return Err(bad(format!("seat {} listed twice", s.id)));
                    }
                    same_currency(&s.price)?;
                }
                seats.len() as u64
            }
        };
        if total == 0 && !allow_empty {
            return Err(bad("a session must sell at least one unit".into()));
        }
        if total > u64::from(MAX_SESSION_CAPACITY) {
            return Err(bad(format!(
                "capacity {total} exceeds {MAX_SESSION_CAPACITY}"
            )));
        }
        currency.ok_or_else(|| bad(NO_PRICE.into()))
    }

    /// Grades in the plan, in plan order, without repeats.
    pub fn grades(&self) -> Vec<Grade> {
        let mut out: Vec<Grade> = Vec::new();
        let mut push = |g: &Grade| {
            if !out.contains(g) {
                out.push(g.clone());
            }
        };
        match self {
            Self::General { grades } => grades.iter().for_each(|g| push(&g.grade)),
            Self::Seated { seats } => seats.iter().for_each(|s| push(&s.grade)),
        }
        out
    }

    /// Total capacity over all grades.
    pub fn capacity(&self) -> u32 {
        match self {
            Self::General { grades } => grades.iter().map(|g| g.capacity).sum(),
            Self::Seated { seats } => u32::try_from(seats.len()).unwrap_or(u32::MAX),
        }
    }

    /// Whether this is a seated plan.
    pub fn is_seated(&self) -> bool {
        matches!(self, Self::Seated { .. })
    }
}

/// Counters of one grade at one instant. Every backend keeps
/// `available + held + sold == capacity`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct GradeCounts {
    /// The grade.
    pub grade: Grade,
    /// Units in the plan.
    pub capacity: u32,
    /// Units on sale now.
    pub available: u32,
    /// Units in live holds (HELD or PAYING).
    pub held: u32,
    /// Units in confirmed reservations.
    pub sold: u32,
}

impl GradeCounts {
    /// `available + held + sold == capacity`.
    pub fn is_conserved(&self) -> bool {
        u64::from(self.available) + u64::from(self.held) + u64::from(self.sold)
            == u64::from(self.capacity)
    }
}

/// State of one seat.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum SeatState {
    /// On sale.
    Available,
    /// In a live hold.
    Held,
    /// In a confirmed reservation.
    Sold,
}

/// A seat and its state.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SeatStatus {
    /// The seat.
    pub seat: Seat,
    /// Its state.
    pub state: SeatState,
}

/// A consistent view of a session's stock: all counters read at one instant.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct InventorySnapshot {
    /// Counters per grade (for seated sessions, derived from the seats).
    pub grades: Vec<GradeCounts>,
    /// Seats and their states; empty for general admission.
    pub seats: Vec<SeatStatus>,
}

impl InventorySnapshot {
    /// Sum over grades.
    pub fn totals(&self) -> GradeTotals {
        let mut t = GradeTotals::default();
        for g in &self.grades {
            t.capacity += u64::from(g.capacity);
            t.available += u64::from(g.available);
            t.held += u64::from(g.held);
            t.sold += u64::from(g.sold);
        }
        t
    }

    /// Counters of one grade.
    pub fn grade(&self, grade: &Grade) -> Option<&GradeCounts> {
        self.grades.iter().find(|g| &g.grade == grade)
    }
}

/// Sum of [`GradeCounts`] over all grades of a session.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct GradeTotals {
    /// Total capacity.
    pub capacity: u64,
    /// Total available.
    pub available: u64,
    /// Total held.
    pub held: u64,
    /// Total sold.
    pub sold: u64,
}

impl GradeTotals {
    /// `available + held + sold == capacity`.
    pub fn is_conserved(&self) -> bool {
        self.available + self.held + self.sold == self.capacity
    }
}
