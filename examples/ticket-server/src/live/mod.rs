//! This process's live view of the sales, shared by every open event stream: per session,
//! **one** follower of the change feed ([`session`]), fanned out in memory to every watcher
//! of the queue and to every user's own stream ([`users`]). A watcher's place in line comes
//! from the shared copy of the line ([`line`], over `ticket_core::backend::fenwick`), not from a store
//! read, so the store reads per second depend on the number of sessions followed, never on
//! the number of watchers.
//!
//! | module | concept |
//! |---|---|
//! | [`session`] | a session's follower task and the state it shares with watchers |
//! | [`line`] | the exact in-memory copy of a waiting line |
//! | [`users`] | per-user channels for `GET /api/me/events` |
//! | [`cursor`] | the resume cursor (event id) of `GET /api/me/events` |
//! | [`catalogue`] | the sessions followed for users' streams, read every few seconds |
//!
//! **Stock reads.** The follower of a session also keeps the last stock snapshot read for
//! `GET /api/sessions/{id}` ([`Live::session_stock`]): served from memory until a change that
//! moves stock (a hold's change, the sale switch, a capacity change) is applied or this
//! process writes the session's stock itself ([`Live::stock_moved`]), and only while the
//! follower completed a feed read that started at most [`session::STOCK_MAX_LAG`] ago.
//!
//! Sessions followed: every *live* session (from its sales' opening until a day after its
//! performance, see [`catalogue::is_live`]) for the users' streams, and any other session
//! while its queue has a watcher.

pub mod catalogue;
pub mod cursor;
pub mod line;
pub mod session;
pub mod users;

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;

use parking_lot::Mutex;
use ticket_core::model::sale::SaleSwitch;
use ticket_core::{Clock, SessionId, Stores};
use tokio::sync::watch;

use self::catalogue::Catalogue;
use self::session::{SessionLive, StartAt, StockSnapshot};
use self::users::UserHub;

/// How the live state is kept.
#[derive(Debug, Clone)]
pub struct LiveConfig {
    /// How often a watched session's figures (stock, queue statistics) are read: at most
    /// once per tick per session.
    pub tick: Duration,
    /// The shortest time between two wake-ups of a session's watchers.
    pub publish_gap: Duration,
    /// How often the catalogue of live sessions is read.
    pub catalogue_every: Duration,
    /// Whether stock snapshots are kept for followed sessions ([`Live::session_stock`]);
    /// off, every stock read goes to the store.
    pub stock_cache: bool,
}

impl Default for LiveConfig {
    /// Figures every 500 ms, watchers woken at most every 100 ms, the catalogue every 5 s,
    /// stock snapshots kept.
    fn default() -> Self {
        Self {
            tick: Duration::from_millis(500),
            publish_gap: Duration::from_millis(100),
            catalogue_every: Duration::from_secs(5),
            stock_cache: true,
        }
    }
}

/// Store calls made by the live state (for tests and `GET /metrics`-style checks).
#[derive(Debug, Default)]
pub struct Counters {
    feed_reads: AtomicU64,
    store_reads: AtomicU64,
    publishes: AtomicU64,
    stock_hits: AtomicU64,
    stock_reads: AtomicU64,
}

impl Counters {
    fn feed_read(&self) {
        self.feed_reads.fetch_add(1, Ordering::Relaxed);
    }
    fn store_read(&self) {
        self.store_reads.fetch_add(1, Ordering::Relaxed);
    }
    fn publish(&self) {
        self.publishes.fetch_add(1, Ordering::Relaxed);
    }
    /// Change-feed pages read by followers (waits not counted).
    pub fn feed_reads(&self) -> u64 {
        self.feed_reads.load(Ordering::Relaxed)
    }
    /// Other store reads by followers (line pages, figures).
    pub fn store_reads(&self) -> u64 {
        self.store_reads.load(Ordering::Relaxed)
    }
    /// Wake-ups of watchers (one per session per publish, whatever the number of watchers).
    pub fn publishes(&self) -> u64 {
        self.publishes.load(Ordering::Relaxed)
    }
    /// Stock reads ([`Live::session_stock`]) answered from the cached snapshot.
    pub fn stock_hits(&self) -> u64 {
        self.stock_hits.load(Ordering::Relaxed)
    }
    /// Stock reads ([`Live::session_stock`]) that read the store (two calls each).
    pub fn stock_reads(&self) -> u64 {
        self.stock_reads.load(Ordering::Relaxed)
    }
}

/// The live state of this process. Cheap to share (`Arc`).
pub struct Live {
    stores: Stores,
    clock: Arc<dyn Clock>,
    config: LiveConfig,
    sessions: Mutex<HashMap<SessionId, Arc<SessionLive>>>,
    /// Per-user channels of `GET /api/me/events`.
    pub users: UserHub,
    catalogue: Catalogue,
    started: AtomicBool,
    ready: watch::Sender<bool>,
    /// Store calls made so far.
    pub counters: Counters,
    /// Sale switches of sessions without a follower here, read at most once per
    /// [`SWITCH_MAX_AGE`] (see [`Live::sale_switch`]).
    switches: Mutex<HashMap<SessionId, (SaleSwitch, std::time::Instant)>>,
    /// The origin of the followers' freshness instants ([`Live::micros`]).
    epoch: std::time::Instant,
}

/// How long a sale switch read for a session nobody follows here is trusted.
pub const SWITCH_MAX_AGE: Duration = Duration::from_secs(1);

impl std::fmt::Debug for Live {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Live")
            .field("config", &self.config)
            .finish_non_exhaustive()
    }
}

/// A queue watcher's subscription: the session's live state and its wake-ups.
#[derive(Debug)]
pub struct QueueWatch {
    /// The session's live state.
    pub live: Arc<SessionLive>,
    /// Changes whenever the state does.
    pub changed: watch::Receiver<u64>,
}

impl Live {
    /// Nothing followed yet; followers start on demand.
    pub fn new(stores: Stores, clock: Arc<dyn Clock>, config: LiveConfig) -> Arc<Self> {
        Arc::new(Self {
            stores,
            clock,
            config,
            sessions: Mutex::new(HashMap::new()),
            users: UserHub::default(),
            catalogue: Catalogue::default(),
            started: AtomicBool::new(false),
            ready: watch::Sender::new(false),
            counters: Counters::default(),
            switches: Mutex::new(HashMap::new()),
            epoch: std::time::Instant::now(),
        })
    }

    /// Microseconds since this hub was made (the followers' freshness clock).
    fn micros(&self) -> u64 {
        u64::try_from(self.epoch.elapsed().as_micros()).unwrap_or(u64::MAX)
    }

    /// What `GET /api/sessions/{id}` answers from: `session`'s definition (current plan)
    /// and counters. From this process's cached snapshot when `session` is followed here
    /// and the snapshot is still valid (see [`SessionLive::cached_stock`]); otherwise read
    /// from the store (the session, then its snapshot: two calls) and, when followed, kept
    /// for the next reads.
    ///
    /// Freshness: the answer reflects every change committed before the read minus
    /// [`session::STOCK_MAX_LAG`], every change the follower has been delivered (the feed
    /// wakes it at each change: typically a few milliseconds behind the store), and every
    /// write this process reported through [`Live::stock_moved`] before the read.
    pub async fn session_stock(
        &self,
        session: SessionId,
    ) -> ticket_core::Result<Arc<StockSnapshot>> {
        let followed = if self.config.stock_cache {
            self.sessions.lock().get(&session).cloned()
        } else {
            None
        };
        let now = self.micros();
        if let Some(snap) = followed.as_ref().and_then(|l| l.cached_stock(now)) {
            self.counters.stock_hits.fetch_add(1, Ordering::Relaxed);
            return Ok(snap);
        }
        let ticket = followed
            .as_ref()
            .and_then(|l| l.stock_ticket(now).map(|t| (l, t)));
        self.counters.stock_reads.fetch_add(1, Ordering::Relaxed);
        let inventory = &self.stores.inventory;
        let definition = inventory.session(session).await?;
        let snapshot = inventory.snapshot(session).await?;
        let snap = Arc::new(StockSnapshot {
            session: definition,
            snapshot,
        });
        if let Some((live, ticket)) = ticket {
            live.keep_stock(ticket, Arc::clone(&snap));
        }
        Ok(snap)
    }

    /// This process just wrote `session`'s stock (a hold made, released or paid, the sale
    /// switch moved): its cached snapshot is void at once, before the feed tells.
    pub fn stock_moved(&self, session: SessionId) {
        if let Some(live) = self.sessions.lock().get(&session) {
            live.stock_moved();
        }
    }

    /// Starts following every live session (once; later calls do nothing): the catalogue
    /// is read now and every [`LiveConfig::catalogue_every`].
    pub fn start(self: &Arc<Self>) {
        if self.started.swap(true, Ordering::AcqRel) {
            return;
        }
        let me = Arc::clone(self);
        tokio::spawn(async move { catalogue::run(me).await });
    }

    /// Completes once the live sessions are followed (starting them if need be).
    pub async fn ready(self: &Arc<Self>) {
        self.start();
        let mut rx = self.ready.subscribe();
        let _ = rx.wait_for(|r| *r).await;
    }

    /// Reads the catalogue again soon (after an event was created here).
    pub fn refresh_soon(&self) {
        self.catalogue.poke();
    }

    /// The live sessions, as of the last catalogue read.
    pub fn live_sessions(&self) -> Vec<SessionId> {
        self.catalogue.sessions()
    }

    /// Watches `session`'s queue: starts its follower if none runs.
    pub fn watch_queue(self: &Arc<Self>, session: SessionId) -> QueueWatch {
        let live = self.follower(session, StartAt::Head);
        let changed = live.subscribe();
        QueueWatch { live, changed }
    }

    /// The head of `session`'s change feed (one store read): a watcher's view read before
    /// it reflects every change up to it.
    pub async fn head(&self, session: SessionId) -> ticket_core::Result<u64> {
        session::head(self, session).await
    }

    /// `session`'s sale switch: the copy its follower keeps from the change feed when one
    /// runs here (no store read), else one read per [`SWITCH_MAX_AGE`] per session (CLOSED
    /// is final: kept once seen).
    pub async fn sale_switch(&self, session: SessionId) -> ticket_core::Result<SaleSwitch> {
        let followed = self.sessions.lock().get(&session).cloned();
        if let Some(s) = followed.and_then(|l| l.sale()) {
            return Ok(s);
        }
        if let Some((s, at)) = self.switches.lock().get(&session).cloned() {
            let last = s.state == ticket_core::model::sale::SaleState::Cancelled;
            if last || at.elapsed() < SWITCH_MAX_AGE {
                return Ok(s);
            }
        }
        self.counters.store_read();
        let s = self.stores.sales.sale_switch(session).await?;
        self.switches
            .lock()
            .insert(session, (s.clone(), std::time::Instant::now()));
        Ok(s)
    }

    /// This process just moved `session`'s switch: its copies take it at once (the feed's
    /// change follows and agrees) and its queue watchers are woken.
    pub fn note_sale_switch(&self, session: SessionId, switch: SaleSwitch) {
        if let Some(live) = self.sessions.lock().get(&session) {
            live.note_sale(switch.clone());
            live.stock_moved();
        }
        self.switches
            .lock()
            .insert(session, (switch, std::time::Instant::now()));
    }

    /// Sessions followed now.
    pub fn followed(&self) -> Vec<SessionId> {
        self.sessions.lock().keys().copied().collect()
    }

    /// The follower of `session`, started at `start` if none runs.
    fn follower(self: &Arc<Self>, session: SessionId, start: StartAt) -> Arc<SessionLive> {
        let mut sessions = self.sessions.lock();
        if let Some(live) = sessions.get(&session) {
            return Arc::clone(live);
        }
        let live = Arc::new(SessionLive::new(session));
        sessions.insert(session, Arc::clone(&live));
        tokio::spawn(session::follow(Arc::clone(&live), Arc::clone(self), start));
        live
    }

    /// Whether `me`'s follower should keep running (it is still the registered one).
    fn keep_following(&self, me: &Arc<SessionLive>) -> bool {
        self.sessions
            .lock()
            .get(&me.session)
            .is_some_and(|l| Arc::ptr_eq(l, me))
    }

    /// Removes `me` when nobody watches it and the session is not live; whether it did.
    fn retire(&self, me: &Arc<SessionLive>) -> bool {
        let mut sessions = self.sessions.lock();
        if me.watchers() > 0 || self.catalogue.contains(me.session) {
            return false;
        }
        if sessions
            .get(&me.session)
            .is_some_and(|l| Arc::ptr_eq(l, me))
        {
            sessions.remove(&me.session);
        }
        true
    }

    fn set_ready(&self) {
        self.ready.send_replace(true);
    }
}
