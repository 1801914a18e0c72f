//! Everything the in-memory backend keeps for one session, behind one mutex: stock, holds,
//! queue, policy and audit log. One lock per session (never a global one) makes every
//! operation on a session atomic, as one Lua script or one transaction would be.

use std::collections::BTreeSet;
use std::sync::Arc;

use super::FastMap as HashMap;

use super::audit_log::AuditLog;
use super::feed::{Counts, Feed};
use super::queue_state::QueueState;
use super::stock::Stock;
use super::user_index::UserIndex;
use crate::clock::Timestamp;
use crate::ids::{HoldId, UserId};
use crate::model::audit::{Actor, Subject};
use crate::model::change::{Change, ChangeKind, FeedRetention};
use crate::model::counts::{GradeStateCounts, SessionCounts};
use crate::model::hold::{Hold, HoldState};
use crate::model::policy::SalesPolicy;
use crate::model::sale::SaleSwitch;
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
    /// PAYING holds by expiry, for the checkout's polling (no scan of HELD holds).
    pub(super) paying: BTreeSet<(Timestamp, HoldId)>,
    pub(super) queue: QueueState,
    pub(super) policy: Option<SalesPolicy>,
    pub(super) audit: AuditLog,
    /// Check-in marks of the holds that have any.
    pub(super) check_ins: HashMap<HoldId, super::check_in::Marks>,
    /// The latest record's instant: records never go back in time.
    last_at: Timestamp,
    pub(super) feed: Feed,
    pub(super) counts: Counts,
    /// `SoldOut` was announced and no unit came back since.
    sold_out: bool,
    pub(super) users: Arc<UserIndex>,
    /// The organiser's sale switch.
    pub(super) switch: SaleSwitch,
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
    pub(super) fn new(session: Session, retention: FeedRetention, users: Arc<UserIndex>) -> Self {
        Self {
            last_at: Timestamp::from_millis(i64::MIN),
            feed: Feed::new(retention),
            counts: Counts::default(),
            sold_out: false,
            users,
            switch: SaleSwitch::default(),
            stock: Stock::new(&session.inventory),
            audit: AuditLog::new(session.id),
            queue: QueueState::new(session.id),
            session,
            holds: HashMap::default(),
            holds_by_user: HashMap::default(),
            expiry: BTreeSet::new(),
            paying: BTreeSet::new(),
            policy: None,
            check_ins: HashMap::default(),
        }
    }

    /// Appends an audit record and, in the same step, the change it describes, the counts
    /// it moves, the user's session index, and `SoldOut` when the session's last unit went.
    ///
    /// A record whose caller's clock is behind the previous record's instant takes that
    /// instant, so a session's trail never goes back in time and `(at, id)` is write order.
    /// Answers the instant the record took.
    pub(super) fn record(&mut self, mut a: Audit<'_>) -> Timestamp {
        a.at = a.at.max(self.last_at);
        self.last_at = a.at;
        self.users.add_session(a.owner, self.session.id);
        if let Subject::Hold(id) = a.subject {
            self.count_hold_change(id, a.from, a.to);
        }
        if let Some(kind) = ChangeKind::of_transition(&a.subject, a.to) {
            let line = match a.subject {
                Subject::Ticket(_) => self.queue.line_of(a.owner),
                Subject::Hold(_) | Subject::Session(_) => None,
            };
            self.emit(kind, a.at, Some(a.subject), Some(a.owner.clone()), line);
            if matches!(a.subject, Subject::Hold(_) | Subject::Session(_)) {
                self.note_stock(a.at);
            }
        }
        self.audit.append(&a);
        a.at
    }
}

impl SessionState {
    /// Appends a change with the next sequence number.
    pub(super) fn emit(
        &mut self,
        kind: ChangeKind,
        at: Timestamp,
        subject: Option<Subject>,
        owner: Option<UserId>,
        line: Option<u64>,
    ) {
        let change = Change {
            session: self.session.id,
            seq: self.feed.next_seq(),
            at,
            kind,
            subject,
            owner,
            line,
        };
        self.feed.push(change);
    }

    /// Announces `SoldOut` when no unit is left (once, until units come back).
    fn note_stock(&mut self, at: Timestamp) {
        let (available, _) = self.stock.available_and_held();
        if available == 0 && !self.sold_out {
            self.sold_out = true;
            self.emit(ChangeKind::SoldOut, at, None, None, None);
        } else if available > 0 {
            self.sold_out = false;
        }
    }

    /// Moves the hold-state counters and PAYING units for hold `id` going `from` → `to`
    /// (records that are not hold-state changes, like gate scans, move nothing).
    fn count_hold_change(&mut self, id: HoldId, from: Option<&str>, to: &str) {
        let parse = |s: &str| HoldState::ALL.into_iter().find(|h| h.as_str() == s);
        let Some(to) = parse(to) else { return };
        let from = match from {
            Some(f) => match parse(f) {
                Some(f) => Some(f),
                None => return,
            },
            None => None,
        };
        if let Some(f) = from {
            let c = self.counts.holds.get_mut(f);
            *c = c.saturating_sub(1);
        }
        *self.counts.holds.get_mut(to) += 1;
        let paying_delta: i64 = match (from == Some(HoldState::Paying), to == HoldState::Paying) {
            (false, true) => 1,
            (true, false) => -1,
            _ => 0,
        };
        if paying_delta == 0 {
            return;
        }
        let Some(per_grade) = self.holds.get(&id).map(|h| h.items.per_grade()) else {
            return;
        };
        for (grade, n) in per_grade {
            let c = self.counts.paying.entry(grade).or_default();
            *c = if paying_delta > 0 {
                c.saturating_add(n)
            } else {
                c.saturating_sub(n)
            };
        }
    }

    /// The session's counts, from counters kept with every change.
    pub(super) fn counts(&self) -> SessionCounts {
        let snapshot = self.stock.grade_counts();
        SessionCounts {
            session: self.session.id,
            grades: snapshot
                .into_iter()
                .map(|g| GradeStateCounts {
                    paying: self.counts.paying.get(&g.grade).copied().unwrap_or(0),
                    grade: g.grade,
                    capacity: g.capacity,
                    available: g.available,
                    held: g.held,
                    sold: g.sold,
                })
                .collect(),
            holds: self.counts.holds,
        }
    }
}
