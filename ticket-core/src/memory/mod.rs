//! The in-memory backend: every storage trait, concurrent, in one process.
//!
//! The embedded default, used by the example server and the simulator when no service is
//! configured, and held to the same `crate::testkit` conformance suite as every backend.
//!
//! # Concurrency
//! Each session's state (stock, holds, queue, policy, audit) sits behind its own mutex, so
//! every operation on a session is atomic and operations on different sessions run in
//! parallel. No lock is held across an `.await`. Hold lookups by id go through a sharded map.
//! Idempotency records live in their own sharded map.
//!
//! # Durability
//! None: everything is lost when the process exits. Use a Redis or PostgreSQL backend to
//! share a session between processes or to survive restarts.

mod audit_log;
mod check_in;
mod deliveries;
mod feed;
mod holds;
mod idempotency;
mod queue_state;
mod sale_control;
mod session_state;
mod sharded;
mod stock;
mod user_index;

use std::collections::BTreeMap;
use std::ops::Bound;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use dashmap::DashMap;
use parking_lot::{Mutex, RwLock};

use crate::clock::Timestamp;
use crate::error::{Error, InvalidInput, Result};
use crate::ids::{EventId, HoldId, SessionId, UserId};
use crate::model::audit::{Actor, AuditRecord, AuditScope, Subject};
use crate::model::change::{ChangeKind, ChangePage, FeedRetention};
use crate::model::check_in::{CheckInOutcome, CheckInRequest, TicketUse};
use crate::model::counts::SessionCounts;
use crate::model::delivery::{DeliveryClaim, DeliveryKey, DeliveryRecord};
use crate::model::hold::{Hold, NewHold, RebookRequest, TransitionOutcome, TransitionRequest};
use crate::model::idempotency::IdempotencyKey;
use crate::model::inventory::InventorySnapshot;
use crate::model::page::{AuditPage, AuditQuery, HoldCursor, HoldPage, PageOrder, check_limit};
use crate::model::policy::SalesPolicy;
use crate::model::queue::{
    AdmissionPacing, AdmissionRound, InLine, JoinRequest, PreQueueDraw, QueueStats, QueueTicket,
    QueueView,
};
use crate::model::sale::{
    CapacityChange, CapacityOutcome, SaleStateChange, SaleStateOutcome, SaleSwitch,
};
use crate::model::session::{Event, Session};
use crate::store::{
    ChangeFeed, DeliveryLog, Inventory, Leases, Reservations, SaleControl, SalesPolicyStore,
    Stores, WaitingQueue,
};

use queue_state::TicketChange;
use session_state::{Audit, SessionState};

/// Randomly seeded fast hashing (foldhash) for every map of the backend: SipHash was a tenth
/// of the hold path's time.
type Hasher = foldhash::fast::RandomState;

/// A `HashMap` with [`Hasher`].
type FastMap<K, V> = std::collections::HashMap<K, V, Hasher>;

/// The in-memory backend. Cheap to clone (clones share state).
#[derive(Clone, Default)]
pub struct MemoryStore {
    inner: Arc<Inner>,
}

#[derive(Default)]
struct Inner {
    /// Serialises event creation (rare) so its checks and inserts are one atomic step.
    catalogue: Mutex<()>,
    /// Events by id (UUIDv7, so in creation order), for keyset listing.
    events: RwLock<BTreeMap<EventId, Event>>,
    sessions: DashMap<SessionId, Arc<Mutex<SessionState>>, Hasher>,
    hold_sessions: DashMap<HoldId, SessionId, Hasher>,
    idempotency: DashMap<IdempotencyKey, crate::model::idempotency::IdempotencyRecord, Hasher>,
    idempotency_claims: std::sync::atomic::AtomicU64,
    /// Holds and audited sessions by user, across sessions.
    users: Arc<user_index::UserIndex>,
    deliveries: deliveries::Deliveries,
    retention: FeedRetention,
}

impl std::fmt::Debug for MemoryStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MemoryStore")
            .field("sessions", &self.inner.sessions.len())
            .finish()
    }
}

impl MemoryStore {
    /// The event with each session's current plan (capacity changes apply after creation;
    /// the catalogue keeps the definition as created, for `create_event`'s comparison).
    fn with_current_plans(&self, mut event: Event) -> Event {
        for s in &mut event.sessions {
            if let Ok(state) = self.session_state(s.id) {
                s.inventory = state.lock().session.inventory.clone();
            }
        }
        event
    }

    /// An empty store.
    pub fn new() -> Self {
        Self::default()
    }

    /// An empty store whose change feed keeps `retention` (the default keeps 1 000 000
    /// changes per session).
    pub fn with_feed_retention(retention: FeedRetention) -> Self {
        Self {
            inner: Arc::new(Inner {
                retention,
                ..Inner::default()
            }),
        }
    }

    /// Every [`Stores`] trait backed by this one store.
    pub fn stores(&self) -> Stores {
        Stores::from_backend(Arc::new(self.clone()))
    }

    fn session_state(&self, id: SessionId) -> Result<Arc<Mutex<SessionState>>> {
        self.inner
            .sessions
            .get(&id)
            .map(|s| s.value().clone())
            .ok_or_else(|| Error::not_found("session", id))
    }

    fn with_session<T>(
        &self,
        id: SessionId,
        f: impl FnOnce(&mut SessionState) -> Result<T>,
    ) -> Result<T> {
        let state = self.session_state(id)?;
        let mut guard = state.lock();
        f(&mut guard)
    }

    /// Every session's state, collected so no map shard stays locked while one is locked.
    fn all_sessions(&self) -> Vec<Arc<Mutex<SessionState>>> {
        self.inner
            .sessions
            .iter()
            .map(|e| e.value().clone())
            .collect()
    }

    /// Claims a fresh hold id atomically, so two requests can never create the same hold.
    fn reserve_hold_id(&self, id: HoldId, session: SessionId) -> Result<()> {
        match self.inner.hold_sessions.entry(id) {
            dashmap::Entry::Occupied(_) => {
                Err(InvalidInput::Definition(format!("hold id {id} already used")).into())
            }
            dashmap::Entry::Vacant(v) => {
                v.insert(session);
                Ok(())
            }
        }
    }

    fn hold_session(&self, id: HoldId) -> Result<SessionId> {
        self.inner
            .hold_sessions
            .get(&id)
            .map(|s| *s.value())
            .ok_or_else(|| Error::not_found("hold", id))
    }
}

impl SessionState {
    /// Announces the draw when this operation made it.
    fn note_draw(&mut self, drawn_before: bool, at: Timestamp) {
        if !drawn_before && self.queue.has_draw() {
            self.emit(ChangeKind::QueueDrawn, at, None, None, None);
        }
    }

    /// Audits queue ticket changes with the library as actor.
    fn record_ticket_changes(&mut self, changes: Vec<TicketChange>, at: Timestamp, actor: &Actor) {
        for c in changes {
            self.record(Audit {
                at,
                subject: Subject::Ticket(c.ticket),
                owner: &c.user,
                actor,
                from: c.from.map(ticket_state_name),
                to: ticket_state_name(c.to),
                reason: c.reason,
                correlation_id: None,
            });
        }
    }
}

fn ticket_state_name(s: crate::model::queue::TicketState) -> &'static str {
    use crate::model::queue::TicketState::*;
    match s {
        Waiting => "WAITING",
        Active => "ACTIVE",
        Used => "USED",
        Expired => "EXPIRED",
        Left => "LEFT",
    }
}

#[async_trait]
impl Inventory for MemoryStore {
    async fn create_event(&self, event: &Event) -> Result<()> {
        event.validate()?;
        // Catalogue writes are rare: one lock makes check-then-insert atomic, so a conflicting
        // definition (or a concurrent one sharing a session id) changes nothing.
        let _catalogue = self.inner.catalogue.lock();
        if let Some(existing) = self.inner.events.read().get(&event.id) {
            return if *existing == *event {
                Ok(())
            } else {
                Err(InvalidInput::Definition(format!(
                    "event {} exists with another definition",
                    event.id
                ))
                .into())
            };
        }
        if let Some(s) = event
            .sessions
            .iter()
            .find(|s| self.inner.sessions.contains_key(&s.id))
        {
            return Err(
                InvalidInput::Definition(format!("session {} already exists", s.id)).into(),
            );
        }
        for s in &event.sessions {
            let state = Arc::new(Mutex::new(SessionState::new(
                s.clone(),
                self.inner.retention,
                self.inner.users.clone(),
            )));
            self.inner.sessions.insert(s.id, state);
        }
        self.inner.events.write().insert(event.id, event.clone());
        Ok(())
    }

    async fn event(&self, id: EventId) -> Result<Event> {
        let event = self
            .inner
            .events
            .read()
            .get(&id)
            .cloned()
            .ok_or_else(|| Error::not_found("event", id))?;
        Ok(self.with_current_plans(event))
    }

    /// A range read of the id-ordered map under its read lock: one consistent view.
    async fn events(&self, after: Option<EventId>, limit: usize) -> Result<Vec<Event>> {
        let start = after.map_or(Bound::Unbounded, Bound::Excluded);
        Ok(self
            .inner
            .events
            .read()
            .range((start, Bound::Unbounded))
            .take(limit)
            .map(|(_, e)| e.clone())
            .collect::<Vec<_>>()
            .into_iter()
            .map(|e| self.with_current_plans(e))
            .collect())
    }

    async fn session(&self, id: SessionId) -> Result<Session> {
        self.with_session(id, |s| Ok(s.session.clone()))
    }

    async fn snapshot(&self, id: SessionId) -> Result<InventorySnapshot> {
        self.with_session(id, |s| Ok(s.stock.snapshot()))
    }

    async fn counts(&self, id: SessionId) -> Result<SessionCounts> {
        self.with_session(id, |s| Ok(s.counts()))
    }
}

#[async_trait]
impl SalesPolicyStore for MemoryStore {
    async fn policy(&self, session: SessionId) -> Result<SalesPolicy> {
        self.with_session(session, |s| Ok(s.policy.clone().unwrap_or_default()))
    }

    async fn set_policy(&self, session: SessionId, policy: &SalesPolicy) -> Result<()> {
        self.with_session(session, |s| {
            s.policy = Some(policy.clone());
            Ok(())
        })
    }
}

#[async_trait]
impl WaitingQueue for MemoryStore {
    async fn join(&self, req: JoinRequest) -> Result<QueueTicket> {
        self.with_session(req.session, |s| {
            let drawn = s.queue.has_draw();
            let mut changes = Vec::new();
            let out = s.queue.join(&req, &mut changes);
            s.note_draw(drawn, req.now);
            let actor = Actor::User(req.user.clone());
            s.record_ticket_changes(changes, req.now, &actor);
            out
        })
    }

    async fn view(&self, session: SessionId, user: &UserId, now: Timestamp) -> Result<QueueView> {
        self.with_session(session, |s| {
            let mut changes = Vec::new();
            let stock = s.stock.available_and_held();
            let out = s.queue.view(user, now, stock, &mut changes);
            s.record_ticket_changes(changes, now, &Actor::system("queue"));
            out
        })
    }

    async fn admit(
        &self,
        session: SessionId,
        pacing: AdmissionPacing,
        now: Timestamp,
    ) -> Result<AdmissionRound> {
        self.with_session(session, |s| {
            let drawn = s.queue.has_draw();
            let mut changes = Vec::new();
            let (available, _) = s.stock.available_and_held();
            let (admitted, limit) = s.queue.admit(session, pacing, now, available, &mut changes);
            s.note_draw(drawn, now);
            s.record_ticket_changes(changes, now, &Actor::system("admission"));
            Ok(AdmissionRound { admitted, limit })
        })
    }

    async fn leave(
        &self,
        session: SessionId,
        user: &UserId,
        now: Timestamp,
    ) -> Result<QueueTicket> {
        self.with_session(session, |s| {
            let mut changes = Vec::new();
            let out = s.queue.leave(user, now, &mut changes);
            s.record_ticket_changes(changes, now, &Actor::User(user.clone()));
            out
        })
    }

    async fn draw(&self, session: SessionId, seed: u64, now: Timestamp) -> Result<PreQueueDraw> {
        self.with_session(session, |s| {
            let drawn = s.queue.has_draw();
            let out = s.queue.draw(session, seed, now);
            s.note_draw(drawn, now);
            Ok(out)
        })
    }

    async fn recorded_draw(&self, session: SessionId) -> Result<Option<PreQueueDraw>> {
        self.with_session(session, |s| Ok(s.queue.recorded_draw()))
    }

    async fn stats(&self, session: SessionId, now: Timestamp) -> Result<QueueStats> {
        self.with_session(session, |s| {
            let mut changes = Vec::new();
            let out = s.queue.stats(now, &mut changes);
            s.record_ticket_changes(changes, now, &Actor::system("queue"));
            Ok(out)
        })
    }

    async fn waiting_line(
        &self,
        session: SessionId,
        after: Option<u64>,
        limit: usize,
    ) -> Result<Vec<InLine>> {
        check_limit(limit)?;
        self.with_session(session, |s| Ok(s.queue.waiting_line(after, limit)))
    }
}

#[async_trait]
impl Reservations for MemoryStore {
    async fn hold(&self, req: NewHold) -> Result<Hold> {
        let id = req.id;
        self.reserve_hold_id(id, req.session)?;
        let out = self.with_session(req.session, |s| s.hold(req));
        if out.is_err() {
            self.inner.hold_sessions.remove(&id);
        }
        out
    }

    async fn get(&self, id: HoldId) -> Result<Hold> {
        let session = self.hold_session(id)?;
        self.with_session(session, |s| {
            s.holds
                .get(&id)
                .cloned()
                .ok_or_else(|| Error::not_found("hold", id))
        })
    }

    async fn transition(&self, req: TransitionRequest) -> Result<TransitionOutcome> {
        let session = self.hold_session(req.hold)?;
        self.with_session(session, |s| s.transition(req))
    }

    async fn check_in(&self, req: CheckInRequest) -> Result<CheckInOutcome> {
        req.validate()?;
        let session = self.hold_session(req.hold)?;
        self.with_session(session, |s| s.check_in(req))
    }

    async fn check_ins(&self, id: HoldId) -> Result<Vec<TicketUse>> {
        let session = self.hold_session(id)?;
        self.with_session(session, |s| {
            s.holds
                .get(&id)
                .ok_or_else(|| Error::not_found("hold", id))?;
            Ok(s.checked_in(id))
        })
    }

    async fn rebook(&self, req: RebookRequest) -> Result<Hold> {
        let new_id = req.new_id;
        let session = self.hold_session(req.hold)?;
        self.reserve_hold_id(new_id, session)?;
        let out = self.with_session(session, |s| s.rebook(req));
        // An idempotent repeat returns the earlier new hold: free the id reserved now.
        if out.as_ref().map_or(true, |h| h.id != new_id) {
            self.inner.hold_sessions.remove(&new_id);
        }
        out
    }

    async fn expire_due(&self, now: Timestamp, limit: usize) -> Result<Vec<Hold>> {
        let sessions = self.all_sessions();
        let mut out = Vec::new();
        for s in sessions {
            if out.len() >= limit {
                break;
            }
            let mut guard = s.lock();
            out.extend(guard.expire_due(now, limit - out.len())?);
        }
        Ok(out)
    }

    async fn paying_due(&self, before: Timestamp, limit: usize) -> Result<Vec<Hold>> {
        let mut out = Vec::new();
        for s in self.all_sessions() {
            out.extend(s.lock().paying_due(before, limit));
        }
        out.sort_by_key(|h| (h.expires_at, h.id));
        out.truncate(limit);
        Ok(out)
    }

    async fn holds_of(&self, session: SessionId, user: &UserId) -> Result<Vec<Hold>> {
        self.with_session(session, |s| {
            Ok(s.holds_by_user
                .get(user)
                .into_iter()
                .flatten()
                .filter_map(|id| s.holds.get(id).cloned())
                .collect())
        })
    }

    async fn audit(&self, scope: &AuditScope, limit: usize) -> Result<Vec<AuditRecord>> {
        match scope {
            AuditScope::Hold(id) => {
                let session = self.hold_session(*id)?;
                self.with_session(session, |s| Ok(s.audit.of_hold(*id, limit)))
            }
            AuditScope::Session(id) => self.with_session(*id, |s| Ok(s.audit.all(limit))),
            AuditScope::User(user) => {
                let mut all: Vec<AuditRecord> = self
                    .user_sessions(user)
                    .into_iter()
                    .filter_map(|id| self.session_state(id).ok())
                    .flat_map(|s| s.lock().audit.of_user(user, limit))
                    .collect();
                all.sort_by_key(|r| (r.at, r.id));
                all.truncate(limit);
                Ok(all)
            }
        }
    }

    /// Reads the user's index, then each hold under its session's lock (one lock per hold,
    /// in process: no round trips).
    async fn holds_of_user(
        &self,
        user: &UserId,
        after: Option<HoldCursor>,
        limit: usize,
    ) -> Result<HoldPage> {
        check_limit(limit)?;
        let ids: Vec<HoldId> = match self.inner.users.holds.get(user) {
            None => Vec::new(),
            Some(set) => {
                let end = after.map_or(Bound::Unbounded, |c| Bound::Excluded((c.at, c.id)));
                set.range((Bound::Unbounded, end))
                    .rev()
                    .take(limit)
                    .map(|(_, id)| *id)
                    .collect()
            }
        };
        let mut holds = Vec::with_capacity(ids.len());
        for id in ids {
            holds.push(self.get(id).await?);
        }
        Ok(HoldPage::of(holds, limit, HoldCursor::of))
    }

    /// Session and hold scopes read one session's index; the user scope merges the pages of
    /// the sessions the user has records in.
    async fn audit_page(&self, query: &AuditQuery) -> Result<AuditPage> {
        check_limit(query.limit)?;
        let records = match &query.scope {
            AuditScope::Session(id) => match self.session_state(*id) {
                Ok(s) => s.lock().audit.page(query),
                Err(_) => Vec::new(),
            },
            AuditScope::Hold(id) => match self.hold_session(*id) {
                Ok(session) => self.with_session(session, |s| Ok(s.audit.page(query)))?,
                Err(_) => Vec::new(),
            },
            AuditScope::User(user) => {
                let mut all: Vec<AuditRecord> = self
                    .user_sessions(user)
                    .into_iter()
                    .filter_map(|id| self.session_state(id).ok())
                    .flat_map(|s| s.lock().audit.page(query))
                    .collect();
                all.sort_by_key(|r| (r.at, r.id));
                if query.order == PageOrder::NewestFirst {
                    all.reverse();
                }
                all.truncate(query.limit);
                all
            }
        };
        Ok(AuditPage::of(
            records,
            query.limit,
            crate::model::page::AuditCursor::of,
        ))
    }
}

impl MemoryStore {
    /// The sessions the user has audit records in.
    fn user_sessions(&self, user: &UserId) -> Vec<SessionId> {
        self.inner
            .users
            .sessions
            .get(user)
            .map(|s| s.iter().copied().collect())
            .unwrap_or_default()
    }
}

#[async_trait]
impl SaleControl for MemoryStore {
    async fn sale_switch(&self, session: SessionId) -> Result<SaleSwitch> {
        self.with_session(session, |s| Ok(s.switch.clone()))
    }

    async fn set_sale_state(&self, req: SaleStateChange) -> Result<SaleStateOutcome> {
        req.validate()?;
        self.with_session(req.session, |s| s.set_sale_state(&req))
    }

    async fn change_capacity(&self, req: CapacityChange) -> Result<CapacityOutcome> {
        req.validate()?;
        self.with_session(req.session, |s| s.change_capacity(&req))
    }
}

#[async_trait]
impl ChangeFeed for MemoryStore {
    async fn changes(&self, session: SessionId, after: u64, limit: usize) -> Result<ChangePage> {
        check_limit(limit)?;
        self.with_session(session, |s| s.feed.read(after, limit))
    }

    /// Waits on the session's head watch: woken by the write itself, no polling.
    async fn wait_for_change(
        &self,
        session: SessionId,
        after: u64,
        timeout: Duration,
    ) -> Result<()> {
        let mut rx = self.with_session(session, |s| Ok(s.feed.watch()))?;
        let _ = tokio::time::timeout(timeout, rx.wait_for(|head| *head > after)).await;
        Ok(())
    }
}

#[async_trait]
impl DeliveryLog for MemoryStore {
    async fn claim_delivery(
        &self,
        key: &DeliveryKey,
        holder: &str,
        now: Timestamp,
        lease: Duration,
    ) -> Result<DeliveryClaim> {
        Ok(self.inner.deliveries.claim(key, holder, now, lease))
    }

    async fn finish_delivery(&self, record: &DeliveryRecord) -> Result<bool> {
        Ok(self.inner.deliveries.finish(record))
    }

    async fn delivery(&self, key: &DeliveryKey) -> Result<Option<DeliveryRecord>> {
        Ok(self.inner.deliveries.get(key))
    }

    async fn checkpoint(&self, consumer: &str, session: SessionId) -> Result<u64> {
        Ok(self.inner.deliveries.checkpoint(consumer, session))
    }

    async fn advance_checkpoint(&self, consumer: &str, session: SessionId, seq: u64) -> Result<()> {
        self.inner.deliveries.advance(consumer, session, seq);
        Ok(())
    }
}

#[async_trait]
impl Leases for MemoryStore {
    async fn try_lease(
        &self,
        name: &str,
        holder: &str,
        now: Timestamp,
        ttl: Duration,
    ) -> Result<bool> {
        Ok(self.inner.deliveries.try_lease(name, holder, now, ttl))
    }
}
