//! The change feed: reading a session's changes, retention, and waking waiting readers on
//! the write.
//!
//! # Writing
//! Every function that writes audit records hands them, at its end, to `tr_record`
//! (`sql/lib/record.sql`), which numbers the session's changes from the `head` column of its
//! `session_log` row in the same transaction (dense: see the comment on that table in
//! `migrations/0002_read_side.sql`) and, while the session is watched, calls
//! `pg_notify(<schema>, '<session>:<head>')`.
//! PostgreSQL delivers a notification at commit, so a notified head is always readable.
//!
//! # Waking
//! Writers notify only while someone watches the session (`session_log.watched_until`, a
//! lease a waiting store takes with `tr_watch` before it reads, renewed before it runs out):
//! a transaction that sent `NOTIFY` holds a database-wide lock from before its commit until
//! after it, so notifying on every write would serialise the commits of all writers (measured:
//! spread holds fell 2-4x). The lease is read from the `UPDATE` of the log row that the writer
//! makes anyway, so it costs writers nothing.
//!
//! Each store runs (from its first [`ChangeFeed::wait_for_change`]) one background task
//! holding a [`PgListener`] on the schema's channel, a connection of its own. It fans the
//! notifications out to one `tokio::sync::watch` per session that someone waits on, carrying
//! the newest head heard, so a waiter wakes on the commit without a store read, however many
//! waiters a session has. A waiter reads the head once after subscribing (a change committed
//! before it subscribed is seen by that read), then sleeps on the watch.
//!
//! Notifications sent while the listening connection is down are lost. The task publishes
//! its state (connected or not, and an epoch bumped on every loss and every re-connection):
//! while it is down waiters poll every 50 ms, and when it is back every waiter reads the head
//! again, so nothing committed during the gap is missed.
//!
//! # Retention
//! `tr_prune_changes` deletes a session's oldest changes once its feed is more than 1 % longer
//! than [`PgConfig::feed_retention`](crate::PgConfig::feed_retention), down to the retention.
//! It runs after a sweep ([`Reservations::expire_due`](ticket_core::store::Reservations::expire_due),
//! at most once a second per store) and on [`PgStore::prune_changes`]. Readers detect a pruned
//! cursor by the missing row after it and are refused with `Refusal::ChangesPruned`.

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use dashmap::DashMap;
use sqlx::PgPool;
use sqlx::postgres::PgListener;
use ticket_core::ids::SessionId;
use ticket_core::model::change::{ChangePage, FeedRetention};
use ticket_core::model::page::check_limit;
use ticket_core::store::ChangeFeed;
use ticket_core::{Error, Refusal, Result};
use tokio::sync::watch;
use tokio::task::JoinHandle;
use uuid::Uuid;

use crate::rows::change;
use crate::store::{PgStore, db_error, decode};

/// How often waiters re-read while the listening connection is down.
const POLL_WHILE_DOWN: Duration = Duration::from_millis(50);

/// Rows deleted per session and call by retention, so one sweep stays short.
const PRUNE_PER_CALL: i64 = 50_000;

/// The listener task's state as waiters see it.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
struct ListenState {
    /// Bumped on every loss and every re-connection.
    epoch: u64,
    /// Notifications are being received.
    connected: bool,
}

/// What the task and the waiters share.
#[derive(Debug, Default)]
struct Shared {
    /// The newest head heard per session that someone waits on (or waited on recently).
    heads: DashMap<SessionId, watch::Sender<u64>>,
    state: watch::Sender<ListenState>,
}

impl Shared {
    fn set_connected(&self, connected: bool) {
        self.state.send_modify(|s| {
            s.epoch += 1;
            s.connected = connected;
        });
    }

    /// A notification `<session>:<head>`: wakes the session's waiters; forgets a session
    /// nobody waits on any more.
    fn heard(&self, payload: &str) {
        let Some((session, head)) = payload.split_once(':') else {
            return;
        };
        let (Ok(session), Ok(head)) = (session.parse::<Uuid>(), head.parse::<u64>()) else {
            return;
        };
        let session = SessionId::from_uuid(session);
        let unwatched = match self.heads.get(&session) {
            None => return,
            Some(tx) if tx.receiver_count() == 0 => true,
            Some(tx) => {
                tx.send_if_modified(|h| {
                    let newer = head > *h;
                    if newer {
                        *h = head;
                    }
                    newer
                });
                false
            }
        };
        if unwatched {
            self.heads
                .remove_if(&session, |_, tx| tx.receiver_count() == 0);
        }
    }
}

/// One store's listener: started by the first wait, stopped when the store is dropped.
#[derive(Debug, Default)]
pub(crate) struct Listener {
    shared: Arc<Shared>,
    task: parking_lot::Mutex<Option<JoinHandle<()>>>,
    /// When the sweeper last pruned (retention runs at most once a second per store).
    pub(crate) last_prune: parking_lot::Mutex<Option<std::time::Instant>>,
    /// Until when this store's watch of each session (`session_log.watched_until`) lasts.
    watched: DashMap<SessionId, tokio::time::Instant>,
}

impl Listener {
    /// Starts the listening task unless it runs. Must be called inside a tokio runtime.
    fn ensure_started(&self, pool: &PgPool, channel: &str) {
        let mut task = self.task.lock();
        if task.as_ref().is_some_and(|t| !t.is_finished()) {
            return;
        }
        let (pool, channel, shared) = (pool.clone(), channel.to_owned(), self.shared.clone());
        *task = Some(tokio::spawn(listen(pool, channel, shared)));
    }

    /// Stops the task (its connection closes with it).
    pub(crate) fn stop(&self) {
        if let Some(t) = self.task.lock().take() {
            t.abort();
        }
    }
}

/// The task: (re)connects, listens, fans notifications out; on a lost connection it tells
/// the waiters (they poll) and connects again with a growing pause.
async fn listen(pool: PgPool, channel: String, shared: Arc<Shared>) {
    let mut pause = Duration::from_millis(50);
    loop {
        let listener = async {
            let mut l = PgListener::connect_with(&pool).await?;
            l.listen(&channel).await?;
            Ok::<_, sqlx::Error>(l)
        };
        let mut listener = match listener.await {
            Ok(l) => l,
            Err(e) => {
                tracing::warn!(error = %e, "change feed listener: cannot listen, retrying");
                tokio::time::sleep(pause).await;
                pause = (pause * 2).min(Duration::from_secs(2));
                continue;
            }
        };
        pause = Duration::from_millis(50);
        shared.set_connected(true);
        loop {
            match listener.try_recv().await {
                Ok(Some(n)) => shared.heard(n.payload()),
                Ok(None) => break,
                Err(e) => {
                    tracing::warn!(error = %e, "change feed listener lost its connection");
                    break;
                }
            }
        }
        shared.set_connected(false);
    }
}

/// Why a waiter woke.
enum Woken {
    /// A head after the cursor was heard.
    Changed,
    /// The listener connected or lost its connection, or a poll is due: read again.
    ReadAgain,
}

impl PgStore {
    /// The session's head, or `NotFound`.
    async fn head(&self, session: SessionId) -> Result<u64> {
        let head: Option<i64> =
            sqlx::query_scalar("SELECT head FROM session_log WHERE session_id = $1")
                .bind(session.as_uuid())
                .fetch_optional(&self.inner.pool)
                .await
                .map_err(db_error)?;
        let head = head.ok_or_else(|| Error::not_found("session", session))?;
        u64::try_from(head).map_err(|_| Error::Corrupt(format!("negative head {head}")))
    }

    /// Applies [`PgConfig::feed_retention`](crate::PgConfig::feed_retention) now: deletes the
    /// oldest changes of every session whose feed is more than 1 % longer than the retention,
    /// down to the retention (at most 50 000 per session per call). Returns how many were
    /// deleted. The sweeper does this too ([`Reservations::expire_due`](ticket_core::store::Reservations::expire_due),
    /// at most once a second); call it from a periodic job of your own if no sweeper runs.
    pub async fn prune_changes(&self) -> Result<u64> {
        let FeedRetention {
            max_changes_per_session: keep,
        } = self.inner.config.feed_retention;
        let keep = i64::try_from(keep).unwrap_or(i64::MAX);
        let deleted: i64 = sqlx::query_scalar("SELECT tr_prune_changes($1, $2, $3)")
            .bind(keep)
            .bind(keep / 100)
            .bind(PRUNE_PER_CALL)
            .fetch_one(&self.inner.pool)
            .await
            .map_err(db_error)?;
        Ok(u64::try_from(deleted).unwrap_or(0))
    }

    /// Retention after a sweep, at most once a second per store; a failure is logged, not
    /// returned (the sweep itself committed).
    pub(crate) async fn prune_after_sweep(&self) {
        {
            let mut last = self.inner.feed.last_prune.lock();
            let now = std::time::Instant::now();
            if last.is_some_and(|t| now.duration_since(t) < Duration::from_secs(1)) {
                return;
            }
            *last = Some(now);
        }
        if let Err(e) = self.prune_changes().await {
            tracing::warn!(error = %e, "pruning the change feed failed");
        }
    }
}

#[async_trait]
impl ChangeFeed for PgStore {
    /// One statement (one snapshot): the head from the session's log row and the changes
    /// after `after` through the primary key. The change after the cursor missing while the
    /// head is past it means retention deleted it: `ChangesPruned`.
    async fn changes(&self, session: SessionId, after: u64, limit: usize) -> Result<ChangePage> {
        check_limit(limit)?;
        let after_i = i64::try_from(after).unwrap_or(i64::MAX);
        let row: Option<(i64, serde_json::Value)> = sqlx::query_as(
            "SELECT l.head,
                    coalesce((SELECT jsonb_agg(to_jsonb(c) ORDER BY c.seq)
                                FROM (SELECT * FROM changes
                                       WHERE session_id = $1 AND seq > $2
                                       ORDER BY seq LIMIT $3) c), '[]')
               FROM session_log l WHERE l.session_id = $1",
        )
        .bind(session.as_uuid())
        .bind(after_i)
        .bind(i64::try_from(limit).unwrap_or(i64::MAX))
        .fetch_optional(&self.inner.pool)
        .await
        .map_err(db_error)?;
        let (head, rows) = row.ok_or_else(|| Error::not_found("session", session))?;
        let head = u64::try_from(head).map_err(|_| Error::Corrupt(format!("head {head}")))?;
        let rows: Vec<serde_json::Value> = decode(rows, "changes")?;
        let changes = rows.into_iter().map(change).collect::<Result<Vec<_>>>()?;
        if after < head {
            let first = changes.first().map_or(head + 1, |c| c.seq);
            if first != after + 1 {
                return Err(Refusal::ChangesPruned { first_kept: first }.into());
            }
        }
        Ok(ChangePage { changes, head })
    }

    /// Subscribes to the session's watch (fed by the store's `LISTEN` task), reads the head
    /// once, then sleeps until a notified head passes `after`, the timeout, or the listener's
    /// state changes (then reads again; while it is down, every 50 ms). The session's watch is
    /// dropped with its last waiter.
    async fn wait_for_change(
        &self,
        session: SessionId,
        after: u64,
        timeout: std::time::Duration,
    ) -> Result<()> {
        let feed = &self.inner.feed;
        feed.ensure_started(&self.inner.pool, &self.inner.config.schema);
        let heads = feed
            .shared
            .heads
            .entry(session)
            .or_insert_with(|| watch::Sender::new(0))
            .subscribe();
        let out = match self.ensure_watched(session, timeout).await {
            Ok(()) => self.wait_on(session, after, timeout, heads).await,
            Err(e) => Err(e),
        };
        feed.shared
            .heads
            .remove_if(&session, |_, tx| tx.receiver_count() == 0);
        out
    }
}

impl PgStore {
    /// Makes sure writers of `session` notify for at least `wait` more (`tr_watch`): a lease
    /// of `wait` + 60 s taken at most once per lease by this store. `NotFound` for an unknown
    /// session.
    async fn ensure_watched(&self, session: SessionId, wait: Duration) -> Result<()> {
        let now = tokio::time::Instant::now();
        let needed = now + wait + Duration::from_secs(2);
        let watched = &self.inner.feed.watched;
        if watched.get(&session).is_some_and(|until| *until >= needed) {
            return Ok(());
        }
        let lease = wait + Duration::from_secs(60);
        let left: Option<f64> = sqlx::query_scalar("SELECT tr_watch($1, $2)")
            .bind(session.as_uuid())
            .bind(lease.as_secs_f64())
            .fetch_one(&self.inner.pool)
            .await
            .map_err(db_error)?;
        let left = left.ok_or_else(|| Error::not_found("session", session))?;
        // a second of margin against the round trip
        let until = now + Duration::from_secs_f64((left - 1.0).max(0.0));
        watched.insert(session, until);
        Ok(())
    }

    /// [`ChangeFeed::wait_for_change`] once subscribed to the session's watch `heads` and
    /// watching the session.
    async fn wait_on(
        &self,
        session: SessionId,
        after: u64,
        timeout: Duration,
        mut heads: watch::Receiver<u64>,
    ) -> Result<()> {
        let deadline = tokio::time::Instant::now() + timeout;
        let mut state = self.inner.feed.shared.state.subscribe();
        loop {
            let connected = state.borrow_and_update().connected;
            if self.head(session).await? > after {
                return Ok(());
            }
            let woken = async {
                if connected {
                    tokio::select! {
                        r = heads.wait_for(|h| *h > after) => match r {
                            Ok(_) => Woken::Changed,
                            Err(_) => Woken::ReadAgain,
                        },
                        _ = state.changed() => Woken::ReadAgain,
                    }
                } else {
                    tokio::select! {
                        _ = tokio::time::sleep(POLL_WHILE_DOWN) => Woken::ReadAgain,
                        _ = state.changed() => Woken::ReadAgain,
                    }
                }
            };
            match tokio::time::timeout_at(deadline, woken).await {
                Err(_) | Ok(Woken::Changed) => return Ok(()),
                Ok(Woken::ReadAgain) => {
                    if tokio::time::Instant::now() >= deadline {
                        return Ok(());
                    }
                }
            }
        }
    }
}
