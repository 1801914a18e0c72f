//! Stock counters and seat states of one session. Every method is all-or-nothing: it checks
//! everything first and changes nothing on refusal.

use super::FastMap as HashMap;

use crate::error::Refusal;
use crate::model::hold::{HoldItems, StockEffect};
use crate::model::inventory::{
    Grade, GradeCounts, InventoryPlan, InventorySnapshot, SeatId, SeatState, SeatStatus,
};
use crate::model::sale::CapacityDelta;

#[derive(Debug)]
pub(super) struct Stock {
    grades: Vec<GradeCounts>,
    seats: HashMap<SeatId, SeatStatus>,
    seat_order: Vec<SeatId>,
}

impl Stock {
    pub(super) fn new(plan: &InventoryPlan) -> Self {
        let mut grades: Vec<GradeCounts> = Vec::new();
        let mut add = |grade: &crate::model::inventory::Grade, n: u32| match grades
            .iter_mut()
            .find(|g| &g.grade == grade)
        {
            Some(g) => {
                g.capacity += n;
                g.available += n;
            }
            None => grades.push(GradeCounts {
                grade: grade.clone(),
                capacity: n,
                available: n,
                held: 0,
                sold: 0,
            }),
        };
        let mut seats = HashMap::default();
        let mut seat_order = Vec::new();
        match plan {
            InventoryPlan::General { grades: g } => {
                g.iter().for_each(|g| add(&g.grade, g.capacity))
            }
            InventoryPlan::Seated { seats: s } => {
                for seat in s {
                    add(&seat.grade, 1);
                    seat_order.push(seat.id.clone());
                    seats.insert(
                        seat.id.clone(),
                        SeatStatus {
                            seat: seat.clone(),
                            state: SeatState::Available,
                        },
                    );
                }
            }
        }
        Self {
            grades,
            seats,
            seat_order,
        }
    }

    pub(super) fn snapshot(&self) -> InventorySnapshot {
        InventorySnapshot {
            grades: self.grades.clone(),
            seats: self
                .seat_order
                .iter()
                .filter_map(|id| self.seats.get(id).cloned())
                .collect(),
        }
    }

    /// The counters of every grade, in plan order.
    pub(super) fn grade_counts(&self) -> Vec<GradeCounts> {
        self.grades.clone()
    }

    /// Units available and held over all grades.
    pub(super) fn available_and_held(&self) -> (u64, u64) {
        self.grades.iter().fold((0, 0), |(a, h), g| {
            (a + u64::from(g.available), h + u64::from(g.held))
        })
    }

    fn counts(&mut self, grade: &Grade) -> Option<&mut GradeCounts> {
        self.grades.iter_mut().find(|g| &g.grade == grade)
    }

    /// Takes `items` out of sale into `to` (HELD for a new hold, SOLD for a re-booking),
    /// all or nothing.
    pub(super) fn take(&mut self, items: &HoldItems, to: SeatState) -> Result<(), Refusal> {
        match items {
            HoldItems::Units {
                grade, quantity, ..
            } => {
                let available = self.counts(grade).map(|g| g.available).unwrap_or(0);
                if available < *quantity {
                    return Err(Refusal::SoldOut {
                        grade: grade.clone(),
                        requested: *quantity,
                        available,
                    });
                }
            }
            HoldItems::Seats { seats } => {
                let taken: Vec<SeatId> = seats
                    .iter()
                    .filter(|s| {
                        self.seats.get(&s.id).map(|x| x.state) != Some(SeatState::Available)
                    })
                    .map(|s| s.id.clone())
                    .collect();
                if !taken.is_empty() {
                    return Err(Refusal::SeatsUnavailable { seats: taken });
                }
            }
        }
        self.set_seats(items, to);
        for (grade, n) in items.per_grade() {
            if let Some(g) = self.counts(&grade) {
                g.available -= n;
                match to {
                    SeatState::Sold => g.sold += n,
                    _ => g.held += n,
                }
            }
        }
        Ok(())
    }

    /// Applies a transition's stock effect to the units of a hold.
    pub(super) fn apply(&mut self, items: &HoldItems, effect: StockEffect) {
        let seat_state = match effect {
            StockEffect::None => return,
            StockEffect::HeldToSold => SeatState::Sold,
            StockEffect::HeldToAvailable | StockEffect::SoldToAvailable => SeatState::Available,
        };
        self.set_seats(items, seat_state);
        for (grade, n) in items.per_grade() {
            if let Some(g) = self.counts(&grade) {
                match effect {
                    StockEffect::HeldToSold => {
                        g.held -= n;
                        g.sold += n;
                    }
                    StockEffect::HeldToAvailable => {
                        g.held -= n;
                        g.available += n;
                    }
                    StockEffect::SoldToAvailable => {
                        g.sold -= n;
                        g.available += n;
                    }
                    StockEffect::None => {}
                }
            }
        }
    }

    /// Applies a capacity change to the counters and seats: units and seats that go must be
    /// on sale (`CapacityInUse`, `SeatsUnavailable`), all or nothing.
    pub(super) fn change_capacity(&mut self, delta: &CapacityDelta) -> Result<(), Refusal> {
        match delta {
            CapacityDelta::AddUnits { grade, units } => {
                let g = self.grade_entry(grade);
                g.capacity += units;
                g.available += units;
            }
            CapacityDelta::RemoveUnits { grade, units } => {
                let g = self.grade_entry(grade);
                if g.available < *units {
                    return Err(Refusal::CapacityInUse {
                        grade: grade.clone(),
                        requested: *units,
                        removable: g.available,
                    });
                }
                g.capacity -= units;
                g.available -= units;
            }
            CapacityDelta::AddSeats { seats } => {
                for seat in seats {
                    let g = self.grade_entry(&seat.grade);
                    g.capacity += 1;
                    g.available += 1;
                    self.seat_order.push(seat.id.clone());
                    self.seats.insert(
                        seat.id.clone(),
                        SeatStatus {
                            seat: seat.clone(),
                            state: SeatState::Available,
                        },
                    );
                }
            }
            CapacityDelta::RemoveSeats { seats } => {
                let taken: Vec<SeatId> = seats
                    .iter()
                    .filter(|id| self.seats.get(*id).map(|s| s.state) != Some(SeatState::Available))
                    .cloned()
                    .collect();
                if !taken.is_empty() {
                    return Err(Refusal::SeatsUnavailable { seats: taken });
                }
                for id in seats {
                    if let Some(status) = self.seats.remove(id) {
                        let g = self.grade_entry(&status.seat.grade);
                        g.capacity -= 1;
                        g.available -= 1;
                    }
                }
                self.seat_order.retain(|id| !seats.contains(id));
            }
        }
        Ok(())
    }

    /// The counters of `grade`, created empty for a grade the stock has not seen.
    fn grade_entry(&mut self, grade: &Grade) -> &mut GradeCounts {
        let idx = match self.grades.iter().position(|g| &g.grade == grade) {
            Some(i) => i,
            None => {
                self.grades.push(GradeCounts {
                    grade: grade.clone(),
                    capacity: 0,
                    available: 0,
                    held: 0,
                    sold: 0,
                });
                self.grades.len() - 1
            }
        };
        &mut self.grades[idx]
    }

    fn set_seats(&mut self, items: &HoldItems, state: SeatState) {
        for id in items.seat_ids() {
            if let Some(s) = self.seats.get_mut(&id) {
                s.state = state;
            }
        }
    }
}
