//! The audit trail: one append-only record per state transition.

use serde::{Deserialize, Serialize};

use crate::clock::Timestamp;
use crate::ids::{AuditId, HoldId, SessionId, TicketId, UserId};

/// Who caused a transition.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(tag = "kind", content = "id", rename_all = "snake_case")]
pub enum Actor {
    /// The buyer.
    User(UserId),
    /// An operator acting for the business (admin tools, support).
    Operator(String),
    /// The library itself (sweeper, admission ticker, payment handler).
    System(String),
}

impl Actor {
    /// The id that owns a record this actor writes about the session itself (session
    /// records have no buyer): the user's id, the operator's name or the component's name.
    pub fn owner(&self) -> Result<UserId, crate::error::InvalidInput> {
        match self {
            Self::User(u) => Ok(u.clone()),
            Self::Operator(name) | Self::System(name) => UserId::new(name.clone()),
        }
    }

    /// A system actor named after its component (`"sweeper"`, `"admission"`).
    pub fn system(component: &str) -> Self {
        Self::System(component.to_owned())
    }
}

/// What a record is about.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(tag = "kind", content = "id", rename_all = "snake_case")]
pub enum Subject {
    /// A hold.
    Hold(HoldId),
    /// A queue ticket.
    Ticket(TicketId),
    /// The session itself: the organiser's sale switch and capacity changes. The record's
    /// owner is the actor's id ([`Actor::owner`]).
    Session(SessionId),
}

/// One transition, as recorded. Records are written in the same atomic step as the
/// transition they describe and never change afterwards.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AuditRecord {
    /// Id (UUIDv7, so records sort by time).
    pub id: AuditId,
    /// When.
    pub at: Timestamp,
    /// Session.
    pub session: SessionId,
    /// What changed.
    pub subject: Subject,
    /// The user the subject belongs to.
    pub owner: UserId,
    /// Who caused it.
    pub actor: Actor,
    /// State before (`None` on creation).
    pub from: Option<String>,
    /// State after.
    pub to: String,
    /// Why.
    pub reason: String,
    /// The caller's correlation id (request id, webhook id, …).
    pub correlation_id: Option<String>,
}

/// Which records to list.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", content = "id", rename_all = "snake_case")]
pub enum AuditScope {
    /// Every record of one hold.
    Hold(HoldId),
    /// Every record of one user, across sessions.
    User(UserId),
    /// Every record of one session.
    Session(SessionId),
}
