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
//! //! | [`users`] | per-user channels for `GET /api/me/events` |
//! | [`cursor`] | the resume cursor (event id) of `GET /api/me/events` |
//! | [`catalogue`] | the sessions followed for users' streams, read every few seconds |
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
use self::session::{SessionLive, StartAt};
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
}

impl Default for LiveConfig {
    /// Figures every 500 ms, watchers woken at most every 100 ms, the catalogue every 5 s.
    fn default() -> Self {
        Self {
            tick: Duration::from_millis(500),
            publish_gap: Duration::from_millis(100),
            catalogue_every: Duration::from_secs(5),
        }
    }
}

/// Store calls made by the live state (for tests and `GET /metrics`-style checks).
#[derive(Debug, Default)]
pub struct Counters {
    feed_reads: AtomicU64,
    store_reads: AtomicU64,
    publishes: AtomicU64,
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
        })
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
