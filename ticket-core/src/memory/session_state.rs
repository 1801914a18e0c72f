//! Everything the in-memory backend keeps for one session, behind one mutex: stock, holds,
//! queue, policy and audit log. One lock per session (never a global one) makes every
//! operation on a session atomic, as one Lua script or one transaction would be.

use std::collections::BTreeSet;

use super::FastMap as HashMap;

use super::audit_log::AuditLog;
use super::queue_state::QueueState;
use super::stock::Stock;
use crate::clock::Timestamp;
use crate::ids::{AuditId, HoldId, UserId};
use crate::model::audit::{Actor, AuditRecord, Subject};
use crate::model::hold::Hold;
use crate::model::policy::SalesPolicy;
use crate::model::session::Session;

#[derive(Debug)]
pub(super) struct SessionState {
    pub(super) session: Session,
    pub(super) stock: Stock,
    pub(super) holds: HashMap<HoldId, Hold>,
    /// Holds of each user, in creation order.
    pub(super) holds_by_user: HashMap<UserId, Vec<HoldId>>,
    /// Live holds by expiry, for the sweeper.
    pub(super) expiry: BTreeSet<(Timestamp, HoldId)>,
    pub(super) queue: QueueState,
    pub(super) policy: Option<SalesPolicy>,
    pub(super) audit: AuditLog,
    /// Check-in marks of the holds that have any.
    pub(super) check_ins: HashMap<HoldId, super::check_in::Marks>,
}

/// The fields of an audit record that vary per call.
pub(super) struct Audit<'a> {
    pub(super) at: Timestamp,
    pub(super) subject: Subject,
    pub(super) owner: &'a UserId,
    pub(super) actor: &'a Actor,
    pub(super) from: Option<&'a str>,
    pub(super) to: &'a str,
    pub(super) reason: &'a str,
    pub(super) correlation_id: Option<&'a str>,
}

impl SessionState {
    pub(super) fn new(session: Session) -> Self {
        Self {
            stock: Stock::new(&session.inventory),
            session,
            holds: HashMap::default(),
            holds_by_user: HashMap::default(),
            expiry: BTreeSet::new(),
            queue: QueueState::default(),
            policy: None,
            audit: AuditLog::default(),
            check_ins: HashMap::default(),
        }
    }

    pub(super) fn record(&mut self, a: Audit<'_>) {
        self.audit.append(AuditRecord {
            id: AuditId::new_at(a.at),
            at: a.at,
            session: self.session.id,
            subject: a.subject,
            owner: a.owner.clone(),
            actor: a.actor.clone(),
            from: a.from.map(str::to_owned),
            to: a.to.to_owned(),
            reason: a.reason.to_owned(),
            correlation_id: a.correlation_id.map(str::to_owned),
        });
    }
}
