//! Events and their sessions (dated performances) with sales windows.

use serde::{Deserialize, Serialize};

use super::inventory::InventoryPlan;
use super::money::Currency;
use crate::clock::Timestamp;
use crate::error::InvalidInput;
use crate::ids::{EventId, SessionId};

/// When a session sells: `[open_at, close_at)`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct SalesWindow {
    /// Public sales open (inclusive). Presales by tier may open earlier (see the policy).
    pub open_at: Timestamp,
    /// Sales close (exclusive).
    pub close_at: Timestamp,
}

/// Where a session stands in its sales window.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum SessionStatus {
    /// Before public sales open.
    Scheduled,
    /// Inside the sales window.
    OnSale,
    /// The organiser paused the sale (see [`crate::model::sale::SaleState::Paused`]).
    Paused,
    /// After the window closed, or closed early by the organiser.
    Closed,
    /// The organiser cancelled the show.
    Cancelled,
}

/// One dated performance: its own sales window, stock and queue.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Session {
    /// Id.
    pub id: SessionId,
    /// The event it belongs to.
    pub event_id: EventId,
    /// When the performance starts.
    pub starts_at: Timestamp,
    /// Public sales window.
    pub sales: SalesWindow,
    /// What it sells.
    pub inventory: InventoryPlan,
}

impl Session {
    /// Status at `now`, from the sales window alone; the organiser's switch comes on top
    /// ([`crate::model::sale::SaleSwitch::status`]).
    pub fn status_at(&self, now: Timestamp) -> SessionStatus {
        if now < self.sales.open_at {
            SessionStatus::Scheduled
        } else if now < self.sales.close_at {
            SessionStatus::OnSale
        } else {
            SessionStatus::Closed
        }
    }

    /// Validates the session and returns its currency.
    pub fn validate(&self) -> Result<Currency, InvalidInput> {
        if self.sales.open_at >= self.sales.close_at {
            return Err(InvalidInput::Definition(format!(
                "session {}: sales window must open before it closes",
                self.id
            )));
        }
        if self.sales.close_at > self.starts_at {
            return Err(InvalidInput::Definition(format!(
                "session {}: sales must close by the performance start",
                self.id
            )));
        }
        self.inventory.validate()
    }
}

/// A show with one or more sessions.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Event {
    /// Id.
    pub id: EventId,
    /// Display name.
    pub name: String,
    /// Its sessions.
    pub sessions: Vec<Session>,
}

impl Event {
    /// Validates the event and every session (ids unique, sessions point to this event).
    pub fn validate(&self) -> Result<(), InvalidInput> {
        if self.name.trim().is_empty() || self.name.len() > 200 {
            return Err(InvalidInput::Definition(
                "event name must be 1..=200 characters".into(),
            ));
        }
        if self.sessions.is_empty() {
            return Err(InvalidInput::Definition(
                "an event needs at least one session".into(),
            ));
        }
        let mut ids = std::collections::HashSet::new();
        for s in &self.sessions {
            if s.event_id != self.id {
                return Err(InvalidInput::Definition(format!(
                    "session {} belongs to event {}, not {}",
                    s.id, s.event_id, self.id
                )));
            }
            if !ids.insert(s.id) {
                return Err(InvalidInput::Definition(format!(
                    "session {} listed twice",
                    s.id
                )));
            }
            s.validate()?;
        }
        Ok(())
    }
}
