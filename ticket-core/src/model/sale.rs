//! The organiser's controls over a session's sale: the sale switch (pause, resume, close,
//! cancel) and capacity changes while selling.
//!
//! The switch is stored per session and combined with the sales window into the session's
//! [`SessionStatus`]:
//!
//! ```text
//! SCHEDULED → ON_SALE ⇄ PAUSED → CLOSED
//!     └──────────┴────────┴───────┴──→ CANCELLED (the show is cancelled; final)
//! ```
//!
//! `SCHEDULED`, `ON_SALE` and the window's own `CLOSED` follow the clock; `PAUSED`, an early
//! `CLOSED` and `CANCELLED` are the organiser's.

use serde::{Deserialize, Serialize};

use crate::clock::Timestamp;
use crate::error::{InvalidInput, Refusal};
use crate::ids::SessionId;
use crate::model::audit::Actor;
use crate::model::counts::GradeStateCounts;
use crate::model::inventory::{Grade, InventoryPlan, MAX_SESSION_CAPACITY, Seat, SeatId};
use crate::model::session::{Session, SessionStatus};

/// The organiser's switch for a session's sale.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum SaleState {
    /// Selling as the sales window says (the state every session starts in).
    #[default]
    Open,
    /// Paused: no admissions and no new holds; holds made before may still be paid within
    /// their TTL; waiting users keep their place.
    Paused,
    /// Closed early (or on time) by the organiser: the queue ends and nothing new is sold.
    /// Final, except that the show can still be cancelled.
    Closed,
    /// The show is cancelled: nothing is sold and every confirmed reservation is refunded in
    /// full. Final.
    Cancelled,
}

impl SaleState {
    /// Every state.
    pub const ALL: [SaleState; 4] = [Self::Open, Self::Paused, Self::Closed, Self::Cancelled];

    /// The stored name (`"OPEN"`, `"PAUSED"`, `"CLOSED"`, `"CANCELLED"`), also the `to` of
    /// the audit record that made it.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Open => "OPEN",
            Self::Paused => "PAUSED",
            Self::Closed => "CLOSED",
            Self::Cancelled => "CANCELLED",
        }
    }

    /// The state named `s` (see [`SaleState::as_str`]).
    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|x| x.as_str() == s)
    }

    /// Whether new holds, re-bookings and admissions may happen in this state (the sales
    /// window and policy still apply on top).
    pub fn sells(self) -> bool {
        self == Self::Open
    }

    /// The refusal a new hold, re-booking or admission meets in this state, if any.
    pub fn refusal(self, since: Option<Timestamp>) -> Option<Refusal> {
        let at = since.unwrap_or(Timestamp::from_millis(0));
        match self {
            Self::Open => None,
            Self::Paused => Some(Refusal::SalesPaused),
            Self::Closed => Some(Refusal::SalesClosed { closed_at: at }),
            Self::Cancelled => Some(Refusal::SessionCancelled { cancelled_at: at }),
        }
    }
}

/// Whether the switch may go `from` → `to`. `Ok(false)`: already there (a repeat changes
/// nothing); `Ok(true)`: a legal move; `IllegalSaleTransition` otherwise.
///
/// Legal: OPEN → PAUSED, PAUSED → OPEN, OPEN/PAUSED → CLOSED, any but CANCELLED → CANCELLED.
pub fn decide_sale_transition(from: SaleState, to: SaleState) -> Result<bool, Refusal> {
    use SaleState::*;
    if from == to {
        return Ok(false);
    }
    match (from, to) {
        (Open, Paused) | (Paused, Open) | (Open | Paused, Closed) => Ok(true),
        (Open | Paused | Closed, Cancelled) => Ok(true),
        _ => Err(Refusal::IllegalSaleTransition { from, to }),
    }
}

/// A session's switch as stored.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct SaleSwitch {
    /// Where the switch stands.
    pub state: SaleState,
    /// When it was last moved (`None`: never moved, OPEN since creation).
    pub since: Option<Timestamp>,
    /// Why it was last moved.
    pub reason: Option<String>,
}

impl SaleSwitch {
    /// The session's status at `now`: the organiser's switch over the sales window.
    pub fn status(&self, session: &Session, now: Timestamp) -> SessionStatus {
        match self.state {
            SaleState::Cancelled => SessionStatus::Cancelled,
            SaleState::Closed => SessionStatus::Closed,
            SaleState::Paused if now < session.sales.close_at => SessionStatus::Paused,
            _ => session.status_at(now),
        }
    }

    /// The refusal a new hold, re-booking or admission meets, if any.
    pub fn refusal(&self) -> Option<Refusal> {
        self.state.refusal(self.since)
    }
}

/// Longest reason accepted for a switch move or capacity change, in bytes.
pub const MAX_REASON_LEN: usize = 500;

fn check_reason(reason: &str) -> Result<(), InvalidInput> {
    if reason.len() > MAX_REASON_LEN || reason.chars().any(char::is_control) {
        return Err(InvalidInput::Definition(format!(
            "reason must be at most {MAX_REASON_LEN} bytes without control characters"
        )));
    }
    Ok(())
}

/// Move a session's switch.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SaleStateChange {
    /// The session.
    pub session: SessionId,
    /// Where to move it.
    pub to: SaleState,
    /// Who asks (recorded; the audit record's owner is the actor's id).
    pub actor: Actor,
    /// Why (recorded).
    pub reason: String,
    /// The instant of the request.
    pub now: Timestamp,
}

impl SaleStateChange {
    /// Checks the request's own fields.
    pub fn validate(&self) -> Result<(), InvalidInput> {
        check_reason(&self.reason)
    }
}

/// What a switch move did.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SaleStateOutcome {
    /// The switch after the call.
    pub switch: SaleSwitch,
    /// `false` when it already stood there (nothing was written).
    pub changed: bool,
}

/// A change to what a session sells, made while it sells.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum CapacityDelta {
    /// More units of a general-admission grade (waiting users can be admitted into them).
    AddUnits {
        /// The grade.
        grade: Grade,
        /// How many.
        units: u32,
    },
    /// Fewer units of a general-admission grade: only units on sale can go, so capacity
    /// never falls below held + sold (else `CapacityInUse`).
    RemoveUnits {
        /// The grade.
        grade: Grade,
        /// How many.
        units: u32,
    },
    /// New seats in a seated session (their grade must use the session's currency).
    AddSeats {
        /// The seats.
        seats: Vec<Seat>,
    },
    /// Seats withdrawn from a seated session: only free seats (else `SeatsUnavailable`).
    RemoveSeats {
        /// The seats.
        seats: Vec<SeatId>,
    },
}

/// Most seats one capacity change may add or remove.
pub const MAX_SEATS_PER_CHANGE: usize = 10_000;

impl CapacityDelta {
    /// Checks the change on its own (positive counts, seat lists non-empty, bounded and
    /// without repeats).
    pub fn validate(&self) -> Result<(), InvalidInput> {
        let bad = |m: &str| Err(InvalidInput::Definition(m.to_owned()));
        match self {
            Self::AddUnits { units, .. } | Self::RemoveUnits { units, .. } => {
                if *units == 0 || *units > MAX_SESSION_CAPACITY {
                    return bad("units must be between 1 and 10000000");
                }
            }
            Self::AddSeats { seats } => {
                if seats.is_empty() || seats.len() > MAX_SEATS_PER_CHANGE {
                    return bad("between 1 and 10000 seats per change");
                }
                let mut ids = std::collections::HashSet::new();
                if !seats.iter().all(|s| ids.insert(&s.id)) {
                    return Err(InvalidInput::Seats("a seat is listed twice".into()));
                }
            }
            Self::RemoveSeats { seats } => {
                if seats.is_empty() || seats.len() > MAX_SEATS_PER_CHANGE {
                    return bad("between 1 and 10000 seats per change");
                }
                let mut ids = std::collections::HashSet::new();
                if !seats.iter().all(|s| ids.insert(s)) {
                    return Err(InvalidInput::Seats("a seat is listed twice".into()));
                }
            }
        }
        Ok(())
    }

    /// The grades the change touches, without repeats.
    pub fn grades(&self) -> Vec<Grade> {
        let mut out: Vec<Grade> = Vec::new();
        match self {
            Self::AddUnits { grade, .. } | Self::RemoveUnits { grade, .. } => {
                out.push(grade.clone())
            }
            Self::AddSeats { seats } => {
                for s in seats {
                    if !out.contains(&s.grade) {
                        out.push(s.grade.clone());
                    }
                }
            }
            // Removed seats' grades are known to the store, not to the request.
            Self::RemoveSeats { .. } => {}
        }
        out
    }

    /// A one-line description for the audit record (`"grade A: +20 units"`).
    pub fn describe(&self) -> String {
        match self {
            Self::AddUnits { grade, units } => format!("grade {grade}: +{units} units"),
            Self::RemoveUnits { grade, units } => format!("grade {grade}: -{units} units"),
            Self::AddSeats { seats } => format!("+{} seats", seats.len()),
            Self::RemoveSeats { seats } => format!("-{} seats", seats.len()),
        }
    }

    /// The plan with this change applied, checked as a whole (currency, unique seats, the
    /// session's total capacity). Only the plan: whether units are free to go is the
    /// store's atomic check. Refusals: `UnknownItem` for an unknown grade or seat,
    /// `SeatsExist` for a seat id already in the plan; `InvalidInput::SelectionKind` for
    /// units in a seated session or seats in a general one.
    pub fn apply_to(&self, plan: &InventoryPlan) -> crate::error::Result<InventoryPlan> {
        self.validate()?;
        let unknown = |what: &str, name: String| {
            crate::error::Error::from(Refusal::UnknownItem {
                what: what.to_owned(),
                name,
            })
        };
        let next = match (self, plan) {
            (Self::AddUnits { grade, units }, InventoryPlan::General { grades }) => {
                let mut grades = grades.clone();
                let g = grades
                    .iter_mut()
                    .find(|g| &g.grade == grade)
                    .ok_or_else(|| unknown("grade", grade.to_string()))?;
                g.capacity = g.capacity.checked_add(*units).ok_or_else(|| {
                    InvalidInput::Definition("capacity would overflow".to_owned())
                })?;
                InventoryPlan::General { grades }
            }
            (Self::RemoveUnits { grade, units }, InventoryPlan::General { grades }) => {
                let mut grades = grades.clone();
                let g = grades
                    .iter_mut()
                    .find(|g| &g.grade == grade)
                    .ok_or_else(|| unknown("grade", grade.to_string()))?;
                g.capacity = g.capacity.checked_sub(*units).ok_or_else(|| {
                    crate::error::Error::from(Refusal::CapacityInUse {
                        grade: grade.clone(),
                        requested: *units,
                        removable: g.capacity,
                    })
                })?;
                InventoryPlan::General { grades }
            }
            (Self::AddSeats { seats: new }, InventoryPlan::Seated { seats }) => {
                // New seats join grades the session sells (each grade's stock exists).
                let grades = plan.grades();
                if let Some(s) = new.iter().find(|s| !grades.contains(&s.grade)) {
                    return Err(unknown("grade", s.grade.to_string()));
                }
                let existing: std::collections::HashSet<&SeatId> =
                    seats.iter().map(|s| &s.id).collect();
                let clash: Vec<SeatId> = new
                    .iter()
                    .filter(|s| existing.contains(&s.id))
                    .map(|s| s.id.clone())
                    .collect();
                if !clash.is_empty() {
                    return Err(Refusal::SeatsExist { seats: clash }.into());
                }
                let mut seats = seats.clone();
                seats.extend(new.iter().cloned());
                InventoryPlan::Seated { seats }
            }
            (Self::RemoveSeats { seats: gone }, InventoryPlan::Seated { seats }) => {
                let gone_set: std::collections::HashSet<&SeatId> = gone.iter().collect();
                if let Some(missing) = gone.iter().find(|id| !seats.iter().any(|s| &s.id == *id)) {
                    return Err(unknown("seat", missing.to_string()));
                }
                InventoryPlan::Seated {
                    seats: seats
                        .iter()
                        .filter(|s| !gone_set.contains(&s.id))
                        .cloned()
                        .collect(),
                }
            }
            _ => return Err(InvalidInput::SelectionKind.into()),
        };
        next.validate_allowing_empty_grades()?;
        Ok(next)
    }
}

/// Change what a session sells, atomically with the stock.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CapacityChange {
    /// The session.
    pub session: SessionId,
    /// The change.
    pub delta: CapacityDelta,
    /// Who asks (recorded).
    pub actor: Actor,
    /// Why (recorded).
    pub reason: String,
    /// The instant of the request.
    pub now: Timestamp,
}

impl CapacityChange {
    /// Checks the request's own fields.
    pub fn validate(&self) -> Result<(), InvalidInput> {
        check_reason(&self.reason)?;
        self.delta.validate()
    }
}

/// What a capacity change did.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CapacityOutcome {
    /// The session's plan after the change (what [`crate::store::Inventory::session`] now
    /// answers).
    pub plan: InventoryPlan,
    /// The counts of the grades the change touched, read in the same atomic step.
    pub grades: Vec<GradeStateCounts>,
}

/// The `to` of the audit record a capacity change writes.
pub const CAPACITY_CHANGED: &str = "CAPACITY_CHANGED";

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::inventory::GradeStock;
    use crate::model::money::{Currency, Money};

    fn krw(n: i64) -> Money {
        Money::new(n, Currency::new("KRW").unwrap()).unwrap()
    }

    #[test]
    fn the_switch_moves_only_along_the_lifecycle() {
        use SaleState::*;
        for from in SaleState::ALL {
            for to in SaleState::ALL {
                let legal = matches!(
                    (from, to),
                    (Open, Paused)
                        | (Paused, Open)
                        | (Open | Paused, Closed)
                        | (Open | Paused | Closed, Cancelled)
                );
                match decide_sale_transition(from, to) {
                    Ok(changed) => assert_eq!(changed, from != to, "{from:?} -> {to:?}"),
                    Err(_) => assert!(!legal && from != to, "{from:?} -> {to:?}"),
                }
                if legal {
                    assert_eq!(decide_sale_transition(from, to), Ok(true));
                }
            }
            assert_eq!(SaleState::parse(from.as_str()), Some(from));
        }
    }

    #[test]
    fn removing_more_units_than_the_plan_has_is_refused_and_seats_must_be_new() {
        let plan = InventoryPlan::General {
            grades: vec![GradeStock {
                grade: Grade::new("A").unwrap(),
                capacity: 10,
                price: krw(100),
            }],
        };
        let add = CapacityDelta::AddUnits {
            grade: Grade::new("A").unwrap(),
            units: 5,
        };
        match add.apply_to(&plan).unwrap() {
            InventoryPlan::General { grades } => assert_eq!(grades[0].capacity, 15),
            other => panic!("{other:?}"),
        }
        let remove = CapacityDelta::RemoveUnits {
            grade: Grade::new("A").unwrap(),
            units: 11,
        };
        assert!(matches!(
            remove.apply_to(&plan),
            Err(crate::Error::Refused(Refusal::CapacityInUse { .. }))
        ));
        let unknown = CapacityDelta::AddUnits {
            grade: Grade::new("Z").unwrap(),
            units: 1,
        };
        assert!(matches!(
            unknown.apply_to(&plan),
            Err(crate::Error::Refused(Refusal::UnknownItem { .. }))
        ));
        let seats = CapacityDelta::RemoveSeats {
            seats: vec![SeatId::new("A-1").unwrap()],
        };
        assert!(matches!(
            seats.apply_to(&plan),
            Err(crate::Error::Invalid(InvalidInput::SelectionKind))
        ));
        let seated = InventoryPlan::Seated {
            seats: vec![Seat {
                id: SeatId::new("A-1").unwrap(),
                section: "Floor".into(),
                grade: Grade::new("A").unwrap(),
                price: krw(100),
            }],
        };
        let again = CapacityDelta::AddSeats {
            seats: match &seated {
                InventoryPlan::Seated { seats } => seats.clone(),
                _ => unreachable!(),
            },
        };
        assert!(matches!(
            again.apply_to(&seated),
            Err(crate::Error::Refused(Refusal::SeatsExist { .. }))
        ));
        let zero = CapacityDelta::AddUnits {
            grade: Grade::new("A").unwrap(),
            units: 0,
        };
        assert!(zero.validate().is_err());
    }
}
