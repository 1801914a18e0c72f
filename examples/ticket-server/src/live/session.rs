//! One session's live state in this process, kept by one follower task: the change feed
//! read once (one wait loop, one cursor), the waiting line copied in memory while someone
//! watches the queue, and the session-wide figures a queue view needs, refreshed at most
//! once per tick. Watchers are woken through a `tokio::sync::watch` (an idle watcher costs
//! nothing) and derive their own view from the shared state: no store read per watcher.

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use parking_lot::RwLock;
use ticket_core::model::change::{Change, ChangeKind};
use ticket_core::model::inventory::InventorySnapshot;
use ticket_core::model::page::MAX_PAGE_LIMIT;
use ticket_core::model::queue::{QueueFigures, QueueTicket, QueueView, TicketState};
use ticket_core::model::sale::{SaleState, SaleSwitch};
use ticket_core::model::session::Session;
use ticket_core::{Error, Refusal, SessionId, TicketId, Timestamp};
use tokio::sync::{Notify, watch};
use tokio::time::Instant;

use super::Live;
use super::line::Line;

/// The session-wide figures of a queue view, read once per tick.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Figures {
    /// WAITING tickets still in the undrawn pre-queue.
    pub pre_queue: u64,
    /// ACTIVE, unexpired tickets.
    pub active: u64,
    /// Admissions in the last 60 seconds.
    pub admitted_last_minute: u64,
    /// Whether the pre-queue draw has happened.
    pub drawn: bool,
    /// Units on sale.
    pub available: u64,
    /// Units in live holds.
    pub held: u64,
}

/// What the follower shares with the watchers.
#[derive(Debug, Default)]
pub struct Shared {
    /// The waiting line, while someone watches (`None` before the first load).
    pub line: Option<Line>,
    /// Tickets that left the line since it was loaded, and why.
    pub gone: HashMap<TicketId, ChangeKind>,
    /// The last change applied.
    pub cursor: u64,
    /// The figures of the last tick (`None` before the first).
    pub figures: Option<Figures>,
    /// The organiser's sale switch: read once when the follower starts, then kept from the
    /// feed's `SalePaused` / `SaleResumed` / `SaleClosed` / `SaleCancelled` changes (`None`
    /// before the first read).
    pub sale: Option<SaleSwitch>,
}

/// A watcher's view derived from the shared state.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Derived {
    /// The view, computed from memory.
    View(QueueView),
    /// The ticket left the line (admitted, left, …) or is missing from it: read it once
    /// from the store.
    ReadStore,
    /// The follower has not caught up with the watcher's start yet.
    NotYet,
}

/// What `GET /api/sessions/{id}` answers from, as read from the store at one instant: the
/// session (its current plan) and its counters.
#[derive(Debug, Clone)]
pub struct StockSnapshot {
    /// The session, with its current plan.
    pub session: Session,
    /// Its counters (and seats), read by one store call.
    pub snapshot: InventorySnapshot,
}

/// The longest a follower may go without completing a feed read for its cached stock
/// snapshot to be served ([`SessionLive::cached_stock`]): past it (a follower stuck on a slow
/// or failing store, or stopped), reads go to the store. An idle follower reads the feed at
/// least every [`IDLE_WAIT`] (and at once when a change is signalled), so a healthy one
/// always qualifies.
pub const STOCK_MAX_LAG: Duration = Duration::from_secs(2);

/// A session's cached stock snapshot, kept valid by the follower (see
/// [`SessionLive::cached_stock`]).
#[derive(Debug, Default)]
struct StockCache {
    /// Moves with every applied change that can move the snapshot (holds, sale switch,
    /// capacity, a resync after the feed was pruned) and with this process's own writes.
    version: AtomicU64,
    /// When the follower's last completed feed read *started*, in µs after the hub's
    /// epoch (+1, so 0 means: the follower has not read the feed's head yet, or stopped).
    fresh_at: AtomicU64,
    /// The snapshot and the version it was read at.
    entry: RwLock<Option<(u64, Arc<StockSnapshot>)>>,
}

/// One session's live state.
#[derive(Debug)]
pub struct SessionLive {
    /// The session.
    pub session: SessionId,
    shared: RwLock<Shared>,
    version: watch::Sender<u64>,
    wake: Notify,
    stock: StockCache,
}

impl SessionLive {
    pub(super) fn new(session: SessionId) -> Self {
        Self {
            session,
            shared: RwLock::new(Shared::default()),
            version: watch::Sender::new(0),
            wake: Notify::new(),
            stock: StockCache::default(),
        }
    }

    /// The cached stock snapshot, if it may be served at `now` (µs after the hub's epoch):
    /// it was read from the store after the follower had applied every change that moves
    /// stock up to then and none arrived since (`version` unchanged), and the follower
    /// completed a feed read that started at most [`STOCK_MAX_LAG`] ago. So the snapshot
    /// reflects every change committed before `now − STOCK_MAX_LAG`, and every change the
    /// follower has been delivered.
    pub fn cached_stock(&self, now: u64) -> Option<Arc<StockSnapshot>> {
        if !self.stock_fresh(now) {
            return None;
        }
        let version = self.stock.version.load(Ordering::Acquire);
        match &*self.stock.entry.read() {
            Some((v, snap)) if *v == version => Some(Arc::clone(snap)),
            _ => None,
        }
    }

    /// The version a store read starting now would be cached under, if the follower is
    /// fresh enough for it to be (see [`SessionLive::cached_stock`]). Taken *before* the
    /// store read: a change applied during the read moves the version and voids the entry.
    pub fn stock_ticket(&self, now: u64) -> Option<u64> {
        self.stock_fresh(now)
            .then(|| self.stock.version.load(Ordering::Acquire))
    }

    /// Caches `snap`, read from the store after [`SessionLive::stock_ticket`] gave `ticket`.
    pub fn keep_stock(&self, ticket: u64, snap: Arc<StockSnapshot>) {
        let mut entry = self.stock.entry.write();
        // Only if nothing moved since the ticket (a later fill may have come first).
        if self.stock.version.load(Ordering::Acquire) == ticket {
            *entry = Some((ticket, snap));
        }
    }

    /// The stock may have moved (a change applied, or this process wrote): the cached
    /// snapshot is void.
    pub(super) fn stock_moved(&self) {
        self.stock.version.fetch_add(1, Ordering::AcqRel);
    }

    fn stock_fresh(&self, now: u64) -> bool {
        let at = self.stock.fresh_at.load(Ordering::Acquire);
        let max = u64::try_from(STOCK_MAX_LAG.as_micros()).unwrap_or(u64::MAX);
        at != 0 && now.saturating_sub(at - 1) <= max
    }

    /// The follower completed a feed read that started at `started` (µs after the hub's
    /// epoch); `None`: it stopped (nothing cached here is served any more).
    fn set_fresh(&self, started: Option<u64>) {
        self.stock
            .fresh_at
            .store(started.map_or(0, |s| s + 1), Ordering::Release);
    }

    /// A receiver that changes whenever the shared state does (at most once per publish gap).
    pub(super) fn subscribe(&self) -> watch::Receiver<u64> {
        let rx = self.version.subscribe();
        self.wake.notify_one();
        rx
    }

    /// Queue watchers now.
    pub fn watchers(&self) -> usize {
        self.version.receiver_count()
    }

    /// The last change the follower applied.
    pub fn cursor(&self) -> u64 {
        self.shared.read().cursor
    }

    /// The session's sale switch as the follower keeps it (`None` before its first read).
    pub fn sale(&self) -> Option<SaleSwitch> {
        self.shared.read().sale.clone()
    }

    /// Sets the switch this process just moved (the feed's change follows and agrees), and
    /// wakes the watchers.
    pub(super) fn note_sale(&self, switch: SaleSwitch) {
        self.shared.write().sale = Some(switch);
        self.publish();
    }

    /// The view of `ticket` (as the watcher last read it from the store) at `now`, from
    /// the shared line and figures. `known` is a feed sequence the store view was read at
    /// or after: until the follower has applied it, a ticket missing from the line may
    /// just not be applied yet.
    pub fn derive(&self, ticket: &QueueTicket, known: u64, now: Timestamp) -> Derived {
        let shared = self.shared.read();
        let (Some(line), Some(f), Some(_)) = (&shared.line, shared.figures, &shared.sale) else {
            return Derived::NotYet;
        };
        if shared.cursor < known {
            return Derived::NotYet;
        }
        let waiting = line.len() + f.pre_queue;
        let figures = |position| QueueFigures {
            position,
            waiting,
            pre_queue: f.pre_queue,
            active: f.active,
            admitted_last_minute: f.admitted_last_minute,
            available: f.available,
            held: f.held,
        };
        if let Some(position) = line.position(ticket.id) {
            let ticket = QueueTicket {
                state: TicketState::Waiting,
                seq: line.place(ticket.id),
                ..ticket.clone()
            };
            return Derived::View(QueueView::assemble(ticket, now, figures(Some(position))));
        }
        if shared.gone.contains_key(&ticket.id) {
            return Derived::ReadStore;
        }
        match (ticket.state, ticket.seq) {
            // Still in the undrawn pre-queue: no place yet.
            (TicketState::Waiting, None) if !f.drawn => {
                Derived::View(QueueView::assemble(ticket.clone(), now, figures(None)))
            }
            // Waiting with a place (or drawn) but not in line: it left it.
            (TicketState::Waiting, _) => Derived::ReadStore,
            // Not waiting: the state as read, with today's figures (expiry applied).
            _ => Derived::View(QueueView::assemble(ticket.clone(), now, figures(None))),
        }
    }

    fn publish(&self) {
        self.version.send_modify(|v| *v = v.wrapping_add(1));
    }
}

/// Where a new follower starts reading.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StartAt {
    /// After the feed's head when it starts (older changes are history).
    Head,
    /// From the first change (a session new since this process started following).
    Beginning,
}

/// How long a follower without watchers keeps its line before dropping it, and keeps
/// running before it stops (unless the session is live: then it runs on for the users'
/// streams).
const IDLE_GRACE: Duration = Duration::from_secs(30);

/// How long a follower without watchers waits for a change before looking around.
const IDLE_WAIT: Duration = Duration::from_secs(1);

/// Pause after a failed store call.
const RETRY: Duration = Duration::from_secs(1);

/// The follower task of `me`.
pub(super) async fn follow(me: Arc<SessionLive>, hub: Arc<Live>, start: StartAt) {
    let session = me.session;
    // Stock snapshots are cached only while this task runs: whatever way it ends, reads go
    // to the store after.
    let _stopped = Stopped(Arc::clone(&me));
    let head_started = hub.micros();
    let mut cursor = loop {
        match start_cursor(&hub, session, start).await {
            Ok(c) => break c,
            Err(e) => {
                tracing::warn!(%session, "live: cannot read the feed's head: {e}");
                if !hub.keep_following(&me) {
                    return;
                }
                tokio::time::sleep(RETRY).await;
            }
        }
    };
    // The switch is read after the head: every later move comes through the feed.
    let sale = loop {
        hub.counters.store_read();
        match hub.stores.sales.sale_switch(session).await {
            Ok(s) => break s,
            Err(e) => {
                tracing::warn!(%session, "live: cannot read the sale switch: {e}");
                if !hub.keep_following(&me) {
                    return;
                }
                tokio::time::sleep(RETRY).await;
            }
        }
    };
    {
        let mut shared = me.shared.write();
        shared.cursor = cursor;
        shared.sale = Some(sale);
    }
    // From the head on, every change is applied here: a store read after this reflects all
    // changes up to the head (with `StartAt::Beginning` the first read below applies them).
    if start == StartAt::Head {
        me.set_fresh(Some(head_started));
    }
    hub.users.started(session, cursor);
    let tick = hub.config.tick;
    let gap = hub.config.publish_gap;
    let mut last_watched = Instant::now();
    let mut next_figures = Instant::now();
    let mut last_publish = Instant::now().checked_sub(gap).unwrap_or_else(Instant::now);
    let mut dirty = false;
    loop {
        let now = Instant::now();
        let watched = me.watchers() > 0;
        if watched {
            last_watched = now;
        } else if now.duration_since(last_watched) > IDLE_GRACE {
            if me.shared.read().line.is_some() {
                let mut shared = me.shared.write();
                shared.line = None;
                shared.gone.clear();
                shared.figures = None;
            }
            if hub.retire(&me) {
                hub.users.stopped(session);
                return;
            }
        }
        if watched {
            let loaded = me.shared.read().line.is_some();
            if !loaded {
                match load_line(&hub, session).await {
                    Ok(line) => {
                        let mut shared = me.shared.write();
                        shared.line = Some(line);
                        shared.gone.clear();
                        dirty = true;
                    }
                    Err(e) => {
                        tracing::warn!(%session, "live: cannot load the line: {e}");
                        tokio::time::sleep(RETRY).await;
                        continue;
                    }
                }
            }
            if now >= next_figures {
                match read_figures(&hub, session).await {
                    Ok(f) => {
                        let mut shared = me.shared.write();
                        if shared.figures != Some(f) {
                            shared.figures = Some(f);
                            dirty = true;
                        }
                    }
                    Err(e) => tracing::warn!(%session, "live: cannot read the figures: {e}"),
                }
                next_figures = now + tick;
            }
            if dirty && now.duration_since(last_publish) >= gap {
                me.publish();
                hub.counters.publish();
                dirty = false;
                last_publish = now;
            }
        }
        let wait = if !watched {
            IDLE_WAIT
        } else if dirty {
            (last_publish + gap).saturating_duration_since(Instant::now())
        } else {
            next_figures.saturating_duration_since(Instant::now())
        }
        .max(Duration::from_millis(1));
        tokio::select! {
            waited = hub.stores.feed.wait_for_change(session, cursor, wait) => {
                if let Err(e) = waited
                    && !matches!(e, Error::Refused(Refusal::ChangesPruned { .. }))
                {
                    tracing::warn!(%session, "live: waiting for changes failed: {e}");
                    tokio::time::sleep(RETRY).await;
                }
            }
            () = me.wake.notified() => {}
        }
        let read_started = hub.micros();
        match read_changes(&me, &hub, &mut cursor).await {
            Ok(changed) => {
                dirty |= changed;
                me.set_fresh(Some(read_started));
            }
            Err(e) => {
                tracing::warn!(%session, "live: reading changes failed: {e}");
                tokio::time::sleep(RETRY).await;
            }
        }
    }
}

/// The sequence a follower starts after.
async fn start_cursor(hub: &Live, session: SessionId, start: StartAt) -> ticket_core::Result<u64> {
    if start == StartAt::Beginning {
        return Ok(0);
    }
    head(hub, session).await
}

/// The feed's head of `session`.
pub(super) async fn head(hub: &Live, session: SessionId) -> ticket_core::Result<u64> {
    hub.counters.feed_read();
    match hub.stores.feed.changes(session, 0, 1).await {
        Ok(page) => Ok(page.head),
        Err(Error::Refused(Refusal::ChangesPruned { first_kept })) => {
            hub.counters.feed_read();
            Ok(hub
                .stores
                .feed
                .changes(session, first_kept.saturating_sub(1), 1)
                .await?
                .head)
        }
        Err(e) => Err(e),
    }
}

/// The waiting line, read page by page.
async fn load_line(hub: &Live, session: SessionId) -> ticket_core::Result<Line> {
    let mut entries = Vec::new();
    let mut after = None;
    loop {
        hub.counters.store_read();
        let page = hub
            .stores
            .queue
            .waiting_line(session, after, MAX_PAGE_LIMIT)
            .await?;
        let full = page.len() == MAX_PAGE_LIMIT;
        after = page.last().map(|e| e.line);
        entries.extend(page);
        if !full {
            return Ok(Line::from_entries(entries));
        }
    }
}

/// Stock and queue figures at this instant.
async fn read_figures(hub: &Live, session: SessionId) -> ticket_core::Result<Figures> {
    hub.counters.store_read();
    hub.counters.store_read();
    let now = hub.clock.now();
    let (counts, stats) = tokio::try_join!(
        hub.stores.inventory.counts(session),
        hub.stores.queue.stats(session, now)
    )?;
    let (available, held) = counts.grades.iter().fold((0u64, 0u64), |(a, h), g| {
        (a + u64::from(g.available), h + u64::from(g.held))
    });
    Ok(Figures {
        pre_queue: stats.pre_queue,
        active: stats.active,
        admitted_last_minute: stats.admitted_last_minute,
        drawn: stats.drawn,
        available,
        held,
    })
}

/// Reads and applies every change after `cursor`; whether the line changed.
async fn read_changes(me: &SessionLive, hub: &Live, cursor: &mut u64) -> ticket_core::Result<bool> {
    let session = me.session;
    let mut changed = false;
    let mut reload = false;
    loop {
        hub.counters.feed_read();
        let page = match hub
            .stores
            .feed
            .changes(session, *cursor, MAX_PAGE_LIMIT)
            .await
        {
            Ok(page) => page,
            Err(Error::Refused(Refusal::ChangesPruned { first_kept })) => {
                tracing::warn!(%session, first_kept, "live: fell behind the feed's retention; reloading");
                *cursor = first_kept.saturating_sub(1);
                me.shared.write().cursor = *cursor;
                // Changes were missed: whatever was cached may be stale.
                me.stock_moved();
                hub.users.resync(session, *cursor);
                reload = true;
                continue;
            }
            Err(e) => return Err(e),
        };
        let Some(last) = page.changes.last().map(|c| c.seq) else {
            break;
        };
        {
            let mut shared = me.shared.write();
            for c in &page.changes {
                changed |= apply(&mut shared, c);
                reload |= c.kind == ChangeKind::QueueDrawn;
            }
            shared.cursor = last;
        }
        if page.changes.iter().any(|c| moves_stock(c.kind)) {
            me.stock_moved();
        }
        hub.users.dispatch(session, &page.changes, last);
        *cursor = last;
        if page.changes.len() < MAX_PAGE_LIMIT {
            break;
        }
    }
    if reload && me.shared.read().line.is_some() {
        let line = load_line(hub, session).await?;
        let mut shared = me.shared.write();
        shared.line = Some(line);
        shared.gone.clear();
        changed = true;
    }
    Ok(changed)
}

/// Ends the caching of a follower's stock snapshots when its task ends.
struct Stopped(Arc<SessionLive>);

impl Drop for Stopped {
    fn drop(&mut self) {
        self.0.set_fresh(None);
    }
}

/// Whether a change of `kind` can move what `GET /api/sessions/{id}` answers (stock,
/// sale switch, plan): everything but the queue's own changes.
pub fn moves_stock(kind: ChangeKind) -> bool {
    !matches!(
        kind,
        ChangeKind::Joined
            | ChangeKind::Admitted
            | ChangeKind::AdmissionExpired
            | ChangeKind::AdmissionUsed
            | ChangeKind::Left
            | ChangeKind::QueueDrawn
    )
}

/// The switch a sale change moved to, if `kind` is one.
pub fn sale_state_of(kind: ChangeKind) -> Option<SaleState> {
    match kind {
        ChangeKind::SalePaused => Some(SaleState::Paused),
        ChangeKind::SaleResumed => Some(SaleState::Open),
        ChangeKind::SaleClosed => Some(SaleState::Closed),
        ChangeKind::SaleCancelled => Some(SaleState::Cancelled),
        _ => None,
    }
}

/// Applies one change to the line and the switch (idempotent); whether a watcher's view may
/// have changed.
fn apply(shared: &mut Shared, c: &Change) -> bool {
    if let Some(state) = sale_state_of(c.kind) {
        shared.sale = Some(SaleSwitch {
            state,
            since: Some(c.at),
            reason: None,
        });
        return true;
    }
    if c.kind == ChangeKind::CapacityChanged {
        return true;
    }
    let Some(line) = shared.line.as_mut() else {
        return false;
    };
    match c.kind {
        ChangeKind::Joined => match (c.ticket(), c.line) {
            (Some(ticket), Some(place)) => line.insert(ticket, place),
            _ => false,
        },
        ChangeKind::Admitted
        | ChangeKind::Left
        | ChangeKind::AdmissionExpired
        | ChangeKind::AdmissionUsed => match c.ticket() {
            Some(ticket) => {
                let removed = line.remove(ticket).is_some();
                shared.gone.insert(ticket, c.kind);
                removed || c.kind != ChangeKind::AdmissionUsed
            }
            None => false,
        },
        ChangeKind::SoldOut | ChangeKind::QueueDrawn => true,
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use ticket_core::model::inventory::{Grade, GradeStock, InventoryPlan};
    use ticket_core::model::money::{Currency, Money};
    use ticket_core::model::session::SalesWindow;
    use ticket_core::{EventId, Timestamp};

    use super::*;

    fn snap(id: SessionId) -> Arc<StockSnapshot> {
        let at = Timestamp::from_millis(1_700_000_000_000);
        Arc::new(StockSnapshot {
            session: Session {
                id,
                event_id: EventId::new_at(at),
                starts_at: at.plus(Duration::from_secs(3_600)),
                sales: SalesWindow {
                    open_at: at,
                    close_at: at.plus(Duration::from_secs(60)),
                },
                inventory: InventoryPlan::General {
                    grades: vec![GradeStock {
                        grade: Grade::new("GA").expect("grade"),
                        capacity: 1,
                        price: Money::new(1, Currency::new("KRW").expect("currency"))
                            .expect("price"),
                    }],
                },
            },
            snapshot: InventorySnapshot {
                grades: Vec::new(),
                seats: Vec::new(),
            },
        })
    }

    const SEC: u64 = 1_000_000;

    #[test]
    fn a_snapshot_is_served_only_while_nothing_moved_and_the_follower_is_fresh() {
        let id = SessionId::new_at(Timestamp::from_millis(1_700_000_000_000));
        let live = SessionLive::new(id);
        // Before the follower read the feed's head: nothing is cached.
        assert_eq!(live.stock_ticket(0), None);
        live.set_fresh(Some(10 * SEC));
        let ticket = live.stock_ticket(10 * SEC).expect("fresh");
        live.keep_stock(ticket, snap(id));
        assert!(live.cached_stock(11 * SEC).is_some());
        // The follower's last completed read started more than the bound ago: not served.
        assert!(live.cached_stock(13 * SEC).is_none());
        live.set_fresh(Some(13 * SEC));
        assert!(live.cached_stock(13 * SEC).is_some());
        // A change moved the stock: void, and a read that started before it is not kept.
        let stale = live.stock_ticket(13 * SEC).expect("fresh");
        live.stock_moved();
        assert!(live.cached_stock(13 * SEC).is_none());
        live.keep_stock(stale, snap(id));
        assert!(live.cached_stock(13 * SEC).is_none());
        let ticket = live.stock_ticket(13 * SEC).expect("fresh");
        live.keep_stock(ticket, snap(id));
        assert!(live.cached_stock(13 * SEC).is_some());
        // The follower stopped: never served again.
        live.set_fresh(None);
        assert!(live.cached_stock(13 * SEC).is_none());
        assert_eq!(live.stock_ticket(13 * SEC), None);
    }

    #[test]
    fn only_queue_changes_leave_the_stock_alone() {
        assert!(moves_stock(ChangeKind::HoldCreated));
        assert!(moves_stock(ChangeKind::HoldExpired));
        assert!(moves_stock(ChangeKind::SalePaused));
        assert!(moves_stock(ChangeKind::CapacityChanged));
        assert!(!moves_stock(ChangeKind::Joined));
        assert!(!moves_stock(ChangeKind::Admitted));
    }
}
