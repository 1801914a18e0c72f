//! What a buyer asks for (a [`Selection`]) and what a hold covers once priced ([`HoldItems`]).

use serde::{Deserialize, Serialize};

use super::inventory::{Grade, InventoryPlan, SeatId};
use super::money::Money;
use crate::error::{Error, InvalidInput, Refusal};

/// Largest number of units or seats one hold may cover.
pub const MAX_UNITS_PER_HOLD: u32 = 100;

/// What a buyer asks to hold.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Selection {
    /// `quantity` interchangeable units of one grade (general admission).
    Units {
        /// The grade.
        grade: Grade,
        /// How many.
        quantity: u32,
    },
    /// These exact seats, all or nothing.
    Seats {
        /// The seats.
        seats: Vec<SeatId>,
    },
}

impl Selection {
    /// Number of units asked for.
    pub fn units(&self) -> u32 {
        match self {
            Self::Units { quantity, .. } => *quantity,
            Self::Seats { seats } => u32::try_from(seats.len()).unwrap_or(u32::MAX),
        }
    }
}

/// One seat inside a hold, with the grade and price it was held at.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct HeldSeat {
    /// The seat.
    pub id: SeatId,
    /// Its grade.
    pub grade: Grade,
    /// Its price at hold time.
    pub price: Money,
}

/// What a hold covers, priced at hold time.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum HoldItems {
    /// Units of one grade.
    Units {
        /// The grade.
        grade: Grade,
        /// How many.
        quantity: u32,
        /// Price of one unit.
        unit_price: Money,
    },
    /// Specific seats.
    Seats {
        /// The seats.
        seats: Vec<HeldSeat>,
    },
}

impl HoldItems {
    /// Number of units covered.
    pub fn units(&self) -> u32 {
        match self {
            Self::Units { quantity, .. } => *quantity,
            Self::Seats { seats } => u32::try_from(seats.len()).unwrap_or(u32::MAX),
        }
    }

    /// Units per grade, for the stock counters.
    pub fn per_grade(&self) -> Vec<(Grade, u32)> {
        match self {
            Self::Units {
                grade, quantity, ..
            } => vec![(grade.clone(), *quantity)],
            Self::Seats { seats } => {
                let mut out: Vec<(Grade, u32)> = Vec::new();
                for s in seats {
                    match out.iter_mut().find(|(g, _)| g == &s.grade) {
                        Some((_, n)) => *n += 1,
                        None => out.push((s.grade.clone(), 1)),
                    }
                }
                out
            }
        }
    }

    /// Seat ids, empty for units.
    pub fn seat_ids(&self) -> Vec<SeatId> {
        match self {
            Self::Units { .. } => Vec::new(),
            Self::Seats { seats } => seats.iter().map(|s| s.id.clone()).collect(),
        }
    }
}

/// Checks a selection against a session's plan and prices it. Shared by every backend so
/// pricing and validation are one rule.
///
/// Errors: [`InvalidInput`] for an empty, oversized or repeated selection or a selection of
/// the wrong kind; [`Refusal::UnknownItem`] for a grade or seat the session does not sell.
pub fn price_selection(
    plan: &InventoryPlan,
    selection: &Selection,
) -> Result<(HoldItems, Money), Error> {
    let n = selection.units();
    if n == 0 || n > MAX_UNITS_PER_HOLD {
        return Err(InvalidInput::Quantity {
            max: MAX_UNITS_PER_HOLD,
            got: n,
        }
        .into());
    }
    match (plan, selection) {
        (InventoryPlan::General { grades }, Selection::Units { grade, quantity }) => {
            let stock =
                grades
                    .iter()
                    .find(|g| &g.grade == grade)
                    .ok_or_else(|| Refusal::UnknownItem {
                        what: "grade".into(),
                        name: grade.to_string(),
                    })?;
            let total = stock.price.checked_mul(*quantity)?;
            Ok((
                HoldItems::Units {
                    grade: grade.clone(),
                    quantity: *quantity,
                    unit_price: stock.price,
                },
                total,
            ))
        }
        (InventoryPlan::Seated { seats: plan_seats }, Selection::Seats { seats }) => {
            let mut out: Vec<HeldSeat> = Vec::with_capacity(seats.len());
            for id in seats {
                if out.iter().any(|s| &s.id == id) {
                    return Err(InvalidInput::Seats(format!("seat {id} asked twice")).into());
                }
                let seat = plan_seats.iter().find(|s| &s.id == id).ok_or_else(|| {
                    Refusal::UnknownItem {
                        what: "seat".into(),
                        name: id.to_string(),
                    }
                })?;
                out.push(HeldSeat {
                    id: seat.id.clone(),
                    grade: seat.grade.clone(),
                    price: seat.price,
                });
            }
            let mut total = Money::zero(out[0].price.currency);
            for s in &out {
                total = total.checked_add(s.price)?;
            }
            Ok((HoldItems::Seats { seats: out }, total))
        }
        _ => Err(InvalidInput::SelectionKind.into()),
    }
}
