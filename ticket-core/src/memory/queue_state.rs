//! One session's waiting queue on the in-memory backend.

use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::time::Duration;

use super::sharded::ShardedMap;
use crate::backend::fenwick::Fenwick;
use crate::clock::Timestamp;
use crate::error::{Error, Refusal, Result};
use crate::ids::{SessionId, TicketId, UserId};
use crate::model::queue::{
    AdmissionLimit, AdmissionPacing, JoinRequest, PreQueueDraw, QueueFigures, QueueStats,
    QueueTicket, QueueView, TicketState,
};

const MINUTE: Duration = Duration::from_secs(60);

/// A ticket state change, for the caller to audit.
#[derive(Debug)]
pub(super) struct TicketChange {
    pub(super) ticket: TicketId,
    pub(super) user: UserId,
    pub(super) from: Option<TicketState>,
    pub(super) to: TicketState,
    pub(super) reason: &'static str,
}

/// No place in line yet (the pre-queue before the draw).
const NO_SEQ: u64 = u64::MAX;

/// A queue ticket as kept: the session is the queue's and the user the map's key, so each
/// of a million tickets leaves out a session id and a user id (a third of a full
/// [`QueueTicket`]).
#[derive(Debug, Clone, Copy)]
struct Kept {
    id: TicketId,
    /// [`NO_SEQ`] or the place in line.
    seq: u64,
    joined_at: Timestamp,
    admitted_at: Option<Timestamp>,
    expires_at: Option<Timestamp>,
    state: TicketState,
    pre_queue: bool,
}

impl Kept {
    fn seq(&self) -> Option<u64> {
        (self.seq != NO_SEQ).then_some(self.seq)
    }

    /// The state at `now`, as [`QueueTicket::state_at`].
    fn state_at(&self, now: Timestamp) -> TicketState {
        match (self.state, self.expires_at) {
            (TicketState::Active, Some(exp)) if now >= exp => TicketState::Expired,
            (s, _) => s,
        }
    }

    /// The full ticket of `user` in `session`.
    fn ticket(&self, session: SessionId, user: &UserId) -> QueueTicket {
        QueueTicket {
            id: self.id,
            session,
            user: user.clone(),
            state: self.state,
            pre_queue: self.pre_queue,
            seq: self.seq(),
            joined_at: self.joined_at,
            admitted_at: self.admitted_at,
            expires_at: self.expires_at,
        }
    }
}

#[derive(Debug)]
pub(super) struct QueueState {
    session: SessionId,
    /// Each user's latest ticket.
    /// Sharded: grows without a stop-the-world copy at a million users.
    tickets: ShardedMap<UserId, Kept>,
    /// Undrawn pre-queue, in join order.
    pre_queue: Vec<UserId>,
    draw: Option<PreQueueDraw>,
    next_seq: u64,
    /// WAITING, sequenced tickets by sequence: the line, head first.
    line: BTreeMap<u64, UserId>,
    /// 1 at each waiting sequence: positions in O(log n).
    ranks: Fenwick,
    /// ACTIVE tickets by admission expiry.
    active: BTreeSet<(Timestamp, UserId)>,
    /// Admission instants within the last minute.
    admissions: VecDeque<Timestamp>,
}

fn seq_index(seq: u64) -> usize {
    usize::try_from(seq).unwrap_or(usize::MAX)
}

impl QueueState {
    /// An empty queue of `session`.
    pub(super) fn new(session: SessionId) -> Self {
        Self {
            session,
            tickets: ShardedMap::default(),
            pre_queue: Vec::new(),
            draw: None,
            next_seq: 0,
            line: BTreeMap::new(),
            ranks: Fenwick::default(),
            active: BTreeSet::new(),
            admissions: VecDeque::new(),
        }
    }

    /// The place in line of the user's latest ticket, if it has one.
    pub(super) fn line_of(&self, user: &UserId) -> Option<u64> {
        self.tickets.get(user).and_then(Kept::seq)
    }

    /// Whether the pre-queue was drawn.
    pub(super) fn has_draw(&self) -> bool {
        self.draw.is_some()
    }

    /// WAITING tickets with a place after `after`, in line order.
    pub(super) fn waiting_line(
        &self,
        after: Option<u64>,
        limit: usize,
    ) -> Vec<crate::model::queue::InLine> {
        let start = after.map_or(std::ops::Bound::Unbounded, std::ops::Bound::Excluded);
        self.line
            .range((start, std::ops::Bound::Unbounded))
            .take(limit)
            .filter_map(|(seq, user)| {
                self.tickets.get(user).map(|t| crate::model::queue::InLine {
                    line: *seq,
                    ticket: t.id,
                    user: user.clone(),
                })
            })
            .collect()
    }

    fn waiting(&self) -> u64 {
        (self.line.len() + self.pre_queue.len()) as u64
    }

    fn enqueue(&mut self, user: &UserId) -> u64 {
        let seq = self.next_seq;
        self.next_seq += 1;
        self.line.insert(seq, user.clone());
        self.ranks.add(seq_index(seq), 1);
        seq
    }

    /// Removes admissions that left the 60-second window and ACTIVE tickets past their
    /// expiry (recording them EXPIRED).
    fn settle(&mut self, now: Timestamp, changes: &mut Vec<TicketChange>) {
        let horizon = now.minus(MINUTE);
        while self.admissions.front().is_some_and(|t| *t <= horizon) {
            self.admissions.pop_front();
        }
        while let Some((exp, user)) = self.active.first().cloned() {
            if exp > now {
                break;
            }
            self.active.pop_first();
            if let Some(t) = self.tickets.get_mut(&user)
                && t.state == TicketState::Active
            {
                t.state = TicketState::Expired;
                changes.push(TicketChange {
                    ticket: t.id,
                    user: user.clone(),
                    from: Some(TicketState::Active),
                    to: TicketState::Expired,
                    reason: "admission TTL elapsed",
                });
            }
        }
    }

    pub(super) fn draw(
        &mut self,
        req_session: crate::ids::SessionId,
        seed: u64,
        now: Timestamp,
    ) -> PreQueueDraw {
        if let Some(d) = &self.draw {
            return d.clone();
        }
        let joined = std::mem::take(&mut self.pre_queue);
        let d = PreQueueDraw::shuffle(req_session, joined, seed, now);
        for user in &d.order {
            let seq = self.enqueue(user);
            if let Some(t) = self.tickets.get_mut(user) {
                t.seq = seq;
            }
        }
        self.draw = Some(d.clone());
        d
    }

    pub(super) fn recorded_draw(&self) -> Option<PreQueueDraw> {
        self.draw.clone()
    }

    pub(super) fn join(
        &mut self,
        req: &JoinRequest,
        changes: &mut Vec<TicketChange>,
    ) -> Result<QueueTicket> {
        self.settle(req.now, changes);
        if let Some(t) = self.tickets.get(&req.user)
            && t.state_at(req.now).is_live()
        {
            return Ok(t.ticket(self.session, &req.user));
        }
        if let Some(cap) = req.max_waiting
            && self.waiting() >= u64::from(cap)
        {
            return Err(Refusal::QueueFull { cap }.into());
        }
        let pre_queue = req.pre_queue && self.draw.is_none();
        if !pre_queue && self.draw.is_none() {
            self.draw(req.session, crate::model::queue::fresh_draw_seed(), req.now);
        }
        let seq = if pre_queue {
            self.pre_queue.push(req.user.clone());
            None
        } else {
            Some(self.enqueue(&req.user))
        };
        let kept = Kept {
            id: TicketId::new_at(req.now),
            seq: seq.unwrap_or(NO_SEQ),
            joined_at: req.now,
            admitted_at: None,
            expires_at: None,
            state: TicketState::Waiting,
            pre_queue,
        };
        let ticket = kept.ticket(req.session, &req.user);
        changes.push(TicketChange {
            ticket: ticket.id,
            user: req.user.clone(),
            from: None,
            to: TicketState::Waiting,
            reason: if pre_queue {
                "joined pre-queue"
            } else {
                "joined"
            },
        });
        self.tickets.insert(req.user.clone(), kept);
        Ok(ticket)
    }

    pub(super) fn view(
        &mut self,
        user: &UserId,
        now: Timestamp,
        (available, held): (u64, u64),
        changes: &mut Vec<TicketChange>,
    ) -> Result<QueueView> {
        self.settle(now, changes);
        let ticket = self
            .tickets
            .get(user)
            .ok_or_else(|| Error::not_found("queue ticket", user))?
            .ticket(self.session, user);
        let position = match ticket.seq {
            Some(seq) if ticket.state_at(now) == TicketState::Waiting => {
                u64::try_from(self.ranks.prefix(seq_index(seq))).ok()
            }
            _ => None,
        };
        Ok(QueueView::assemble(
            ticket,
            now,
            QueueFigures {
                position,
                waiting: self.waiting(),
                pre_queue: self.pre_queue.len() as u64,
                active: self.active.len() as u64,
                admitted_last_minute: self.admissions.len() as u64,
                available,
                held,
            },
        ))
    }

    pub(super) fn admit(
        &mut self,
        session: crate::ids::SessionId,
        pacing: AdmissionPacing,
        now: Timestamp,
        available: u64,
        changes: &mut Vec<TicketChange>,
    ) -> (Vec<QueueTicket>, AdmissionLimit) {
        self.settle(now, changes);
        if self.draw.is_none() {
            self.draw(session, crate::model::queue::fresh_draw_seed(), now);
        }
        let active = self.active.len() as u64;
        let by_active = u64::from(pacing.max_active).saturating_sub(active);
        let by_rate = u64::from(pacing.max_per_minute).saturating_sub(self.admissions.len() as u64);
        let by_stock = (available / u64::from(pacing.units_per_user.max(1))).saturating_sub(active);
        let waiting = self.line.len() as u64;
        let (n, limit) = [
            (waiting, AdmissionLimit::Empty),
            (by_active, AdmissionLimit::ActiveCap),
            (by_rate, AdmissionLimit::Rate),
            (by_stock, AdmissionLimit::Stock),
        ]
        .into_iter()
        .min_by_key(|(n, _)| *n)
        .unwrap_or((0, AdmissionLimit::Empty));
        let expires_at = now.plus(pacing.admission_ttl);
        let mut admitted = Vec::new();
        for _ in 0..n {
            let Some((seq, user)) = self.line.pop_first() else {
                break;
            };
            self.ranks.add(seq_index(seq), -1);
            let Some(t) = self.tickets.get_mut(&user) else {
                continue;
            };
            t.state = TicketState::Active;
            t.admitted_at = Some(now);
            t.expires_at = Some(expires_at);
            self.active.insert((expires_at, user.clone()));
            self.admissions.push_back(now);
            admitted.push(t.ticket(self.session, &user));
            changes.push(TicketChange {
                ticket: t.id,
                user,
                from: Some(TicketState::Waiting),
                to: TicketState::Active,
                reason: "admitted",
            });
        }
        let limit = if n == waiting && n > 0 {
            AdmissionLimit::Empty
        } else {
            limit
        };
        (admitted, limit)
    }

    pub(super) fn leave(
        &mut self,
        user: &UserId,
        now: Timestamp,
        changes: &mut Vec<TicketChange>,
    ) -> Result<QueueTicket> {
        self.settle(now, changes);
        let t = self
            .tickets
            .get_mut(user)
            .ok_or_else(|| Error::not_found("queue ticket", user))?;
        let from = t.state;
        match from {
            TicketState::Left => return Ok(t.ticket(self.session, user)),
            TicketState::Waiting => match t.seq() {
                Some(seq) => {
                    self.line.remove(&seq);
                    self.ranks.add(seq_index(seq), -1);
                }
                None => self.pre_queue.retain(|u| u != user),
            },
            TicketState::Active => {
                if let Some(exp) = t.expires_at {
                    self.active.remove(&(exp, user.clone()));
                }
            }
            TicketState::Used | TicketState::Expired => return Err(Refusal::NotInQueue.into()),
        }
        t.state = TicketState::Left;
        changes.push(TicketChange {
            ticket: t.id,
            user: user.clone(),
            from: Some(from),
            to: TicketState::Left,
            reason: "left the queue",
        });
        Ok(t.ticket(self.session, user))
    }

    /// The user's ACTIVE, unexpired ticket, or why there is none.
    pub(super) fn check_admission(
        &self,
        user: &UserId,
        now: Timestamp,
    ) -> Result<TicketId, Refusal> {
        let t = self.tickets.get(user).ok_or(Refusal::NotAdmitted)?;
        match (t.state, t.expires_at) {
            (TicketState::Active, Some(exp)) if now >= exp => {
                Err(Refusal::AdmissionExpired { expired_at: exp })
            }
            (TicketState::Active, _) => Ok(t.id),
            _ => Err(Refusal::NotAdmitted),
        }
    }

    /// Marks the user's ACTIVE ticket USED (after [`Self::check_admission`] passed).
    pub(super) fn mark_used(&mut self, user: &UserId) {
        if let Some(t) = self.tickets.get_mut(user)
            && t.state == TicketState::Active
        {
            if let Some(exp) = t.expires_at {
                self.active.remove(&(exp, user.clone()));
            }
            t.state = TicketState::Used;
        }
    }

    pub(super) fn stats(&mut self, now: Timestamp, changes: &mut Vec<TicketChange>) -> QueueStats {
        self.settle(now, changes);
        QueueStats {
            waiting: self.waiting(),
            pre_queue: self.pre_queue.len() as u64,
            active: self.active.len() as u64,
            admitted_last_minute: self.admissions.len() as u64,
            drawn: self.draw.is_some(),
        }
    }
}
