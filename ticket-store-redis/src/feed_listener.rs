//! One blocked connection per store that wakes every `wait_for_change` caller.
//!
//! Waiters register the session they wait for with the head they read. A task of the store
//! keeps a **dedicated** connection (never the shared multiplexed one) blocked in one
//! `XREAD COUNT 1 BLOCK <ms> STREAMS <feed of each waited-for session> <0-head of each>`; when
//! a stream grows, the entry id (`0-<last seq>`) becomes that session's known head and its
//! waiters, who watch it through a tokio `watch` channel, wake. So a thousand waiters on a
//! hundred sessions cost one blocked connection and one `XREAD` per wake-up.
//!
//! A session newly waited for must join the `XREAD`: registering it unblocks the listener
//! (`CLIENT UNBLOCK` from the shared connection), which then reads again with the new set.
//! Should the unblock cross the listener's next `XREAD` on the wire, the block ends by itself
//! after [`BLOCK`] at the latest, and no write is missed: every stream is read from the head
//! its waiters saw, so a write made meanwhile is returned at once. If the connection fails,
//! the listener reconnects and reads again from the known heads; waiters only see a delay
//! (they return at their timeout at the latest, as the trait allows).

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicI64, Ordering};
use std::sync::{Arc, Weak};
use std::time::Duration;

use parking_lot::Mutex;
use redis::aio::{ConnectionManager, MultiplexedConnection};
use redis::{AsyncConnectionConfig, Value};
use ticket_core::ids::SessionId;
use tokio::sync::{Notify, watch};

use crate::config::RedisConfig;
use crate::keys::Keys;

/// The longest one `XREAD` blocks before the listener looks at its set of sessions again.
pub(crate) const BLOCK: Duration = Duration::from_millis(500);

/// Pause before reconnecting after a failure.
const RETRY: Duration = Duration::from_millis(200);

/// The store's listener (see the module docs).
pub(crate) struct FeedListener {
    client: redis::Client,
    keys: Keys,
    /// The listener connection's name (`CLIENT SETNAME`), `<prefix>:feed-listener`.
    name: String,
    connection_timeout: Duration,
    response_timeout: Duration,
    sessions: Mutex<HashMap<SessionId, Watched>>,
    /// Wakes the idle listener when a session is registered.
    wake: Arc<Notify>,
    /// `CLIENT ID` of the listener's connection; 0 while it has none.
    client_id: AtomicI64,
    started: AtomicBool,
    /// Dropped with the listener: its task sees the channel close and stops.
    alive: watch::Sender<()>,
}

/// A waited-for session: its known head and how many wait for it.
struct Watched {
    head: watch::Sender<u64>,
    waiters: usize,
}

/// A registered waiter; deregisters when dropped.
pub(crate) struct Waiter {
    listener: Arc<FeedListener>,
    session: SessionId,
    head: watch::Receiver<u64>,
}

impl Waiter {
    /// Returns once the session's head passes `after`, or at `deadline`.
    pub(crate) async fn wait_past(mut self, after: u64, deadline: tokio::time::Instant) {
        let _ = tokio::time::timeout_at(deadline, self.head.wait_for(|h| *h > after)).await;
    }
}

impl Drop for Waiter {
    fn drop(&mut self) {
        let mut sessions = self.listener.sessions.lock();
        if let Some(w) = sessions.get_mut(&self.session) {
            w.waiters = w.waiters.saturating_sub(1);
            if w.waiters == 0 {
                sessions.remove(&self.session);
            }
        }
    }
}

impl FeedListener {
    pub(crate) fn new(client: redis::Client, keys: Keys, config: &RedisConfig) -> Arc<Self> {
        Arc::new(Self {
            client,
            name: format!("{}:feed-listener", keys.prefix()),
            keys,
            connection_timeout: config.connection_timeout,
            response_timeout: config.response_timeout,
            sessions: Mutex::new(HashMap::new()),
            wake: Arc::new(Notify::new()),
            client_id: AtomicI64::new(0),
            started: AtomicBool::new(false),
            alive: watch::Sender::new(()),
        })
    }

    /// The name of the listener's connection in `CLIENT LIST`.
    pub(crate) fn connection_name(&self) -> &str {
        &self.name
    }

    /// Registers a waiter on `session`, whose head was `head` when read.
    pub(crate) async fn watch(
        self: &Arc<Self>,
        session: SessionId,
        head: u64,
        shared: &mut ConnectionManager,
    ) -> Waiter {
        let (rx, new) = {
            let mut sessions = self.sessions.lock();
            let new = !sessions.contains_key(&session);
            let w = sessions.entry(session).or_insert_with(|| Watched {
                head: watch::Sender::new(head),
                waiters: 0,
            });
            w.waiters += 1;
            w.head.send_if_modified(|h| raise(h, head));
            (w.head.subscribe(), new)
        };
        let waiter = Waiter {
            listener: self.clone(),
            session,
            head: rx,
        };
        if !self.started.swap(true, Ordering::AcqRel) {
            tokio::spawn(run(
                Arc::downgrade(self),
                self.wake.clone(),
                self.alive.subscribe(),
            ));
        }
        if new {
            self.wake.notify_one();
            let id = self.client_id.load(Ordering::Acquire);
            if id != 0 {
                let unblocked: redis::RedisResult<Value> = redis::cmd("CLIENT")
                    .arg("UNBLOCK")
                    .arg(id)
                    .query_async(shared)
                    .await;
                if let Err(e) = unblocked {
                    // The listener then sees the session after its current block at most.
                    tracing::debug!(error = %e, "could not unblock the feed listener");
                }
            }
        }
        waiter
    }

    /// Every waited-for session's stream key and known head.
    fn targets(&self) -> Vec<(SessionId, String, u64)> {
        self.sessions
            .lock()
            .iter()
            .map(|(s, w)| (*s, self.keys.session_key(*s, "feed"), *w.head.borrow()))
            .collect()
    }

    /// Raises the known heads and wakes the sessions' waiters.
    fn advance(&self, heads: &[(SessionId, u64)]) {
        let sessions = self.sessions.lock();
        for (s, seq) in heads {
            if let Some(w) = sessions.get(s) {
                w.head.send_if_modified(|h| raise(h, *seq));
            }
        }
    }

    async fn connect(&self) -> redis::RedisResult<MultiplexedConnection> {
        let config = AsyncConnectionConfig::new()
            .set_connection_timeout(self.connection_timeout)
            .set_response_timeout(BLOCK + self.response_timeout);
        let mut conn = self
            .client
            .get_multiplexed_async_connection_with_config(&config)
            .await?;
        let id: i64 = redis::cmd("CLIENT")
            .arg("ID")
            .query_async(&mut conn)
            .await?;
        redis::cmd("CLIENT")
            .arg("SETNAME")
            .arg(&self.name)
            .exec_async(&mut conn)
            .await?;
        self.client_id.store(id, Ordering::Release);
        Ok(conn)
    }
}

fn raise(h: &mut u64, seen: u64) -> bool {
    if seen > *h {
        *h = seen;
        true
    } else {
        false
    }
}

/// The listener's task: holds only a weak reference between reads, so dropping the store
/// stops it.
async fn run(weak: Weak<FeedListener>, wake: Arc<Notify>, mut alive: watch::Receiver<()>) {
    let mut conn: Option<MultiplexedConnection> = None;
    loop {
        let targets = match weak.upgrade() {
            Some(l) => l.targets(),
            None => return,
        };
        if targets.is_empty() {
            tokio::select! {
                _ = wake.notified() => continue,
                _ = alive.changed() => return,
            }
        }
        let Some(listener) = weak.upgrade() else {
            return;
        };
        let c = match conn.as_mut() {
            Some(c) => c,
            None => match listener.connect().await {
                Ok(c) => conn.insert(c),
                Err(e) => {
                    tracing::warn!(error = %e, "feed listener cannot connect; retrying");
                    drop(listener);
                    tokio::time::sleep(RETRY).await;
                    continue;
                }
            },
        };
        match xread(c, &targets).await {
            Ok(heads) => listener.advance(&heads),
            Err(e) => {
                tracing::debug!(error = %e, "feed listener read failed; reconnecting");
                conn = None;
                listener.client_id.store(0, Ordering::Release);
                drop(listener);
                tokio::time::sleep(RETRY).await;
            }
        }
    }
}

/// One blocked `XREAD` over every target: the first new entry of each stream that grew, as
/// (session, last seq of the entry).
async fn xread(
    conn: &mut MultiplexedConnection,
    targets: &[(SessionId, String, u64)],
) -> redis::RedisResult<Vec<(SessionId, u64)>> {
    let mut cmd = redis::cmd("XREAD");
    cmd.arg("COUNT")
        .arg(1)
        .arg("BLOCK")
        .arg(BLOCK.as_millis() as u64)
        .arg("STREAMS");
    for (_, key, _) in targets {
        cmd.arg(key);
    }
    for (_, _, head) in targets {
        cmd.arg(format!("0-{head}"));
    }
    let reply: Value = cmd.query_async(conn).await?;
    let by_key: HashMap<&str, SessionId> =
        targets.iter().map(|(s, k, _)| (k.as_str(), *s)).collect();
    let streams: Vec<(Value, Value)> = match reply {
        Value::Array(a) => a
            .into_iter()
            .filter_map(|s| match s {
                Value::Array(mut kv) if kv.len() == 2 => {
                    let entries = kv.pop()?;
                    let key = kv.pop()?;
                    Some((key, entries))
                }
                _ => None,
            })
            .collect(),
        Value::Map(m) => m,
        _ => Vec::new(),
    };
    let mut heads = Vec::new();
    for (key, entries) in streams {
        let Some(session) = as_text(&key).and_then(|k| by_key.get(k.as_str()).copied()) else {
            continue;
        };
        let Value::Array(entries) = entries else {
            continue;
        };
        for e in entries {
            let Value::Array(parts) = e else { continue };
            let seq = parts
                .first()
                .and_then(as_text)
                .and_then(|id| id.split_once('-').and_then(|(_, s)| s.parse::<u64>().ok()));
            if let Some(seq) = seq {
                heads.push((session, seq));
            }
        }
    }
    Ok(heads)
}

fn as_text(v: &Value) -> Option<String> {
    match v {
        Value::BulkString(b) => String::from_utf8(b.clone()).ok(),
        Value::SimpleString(s) => Some(s.clone()),
        _ => None,
    }
}
