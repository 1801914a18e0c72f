//! The store handle: one multiplexed, self-reconnecting connection shared by every call.

use std::sync::Arc;

use dashmap::DashMap;
use redis::Value;
use redis::aio::{ConnectionManager, ConnectionManagerConfig};
use ticket_core::backend::coalesce::{Coalescer, Limits, Scope, Task};
use ticket_core::ids::SessionId;
use ticket_core::model::audit::Actor;
use ticket_core::model::inventory::InventoryPlan;
use ticket_core::model::session::Session;
use ticket_core::store::Stores;
use ticket_core::{Error, InvalidInput, Result};

use crate::config::RedisConfig;
use crate::feed_listener::FeedListener;
use crate::hold_batch::HoldArgs;
use crate::keys::Keys;
use crate::policy::PolicyRead;
use crate::queue_batch::{JoinArgs, LeaveArgs, ViewArgs};
use crate::reply::{json, opt_text, to_json, unavailable};
use crate::scripts::{Call, Function, Scripts, function_missing, load_library};

/// The Redis backend: implements every `ticket-core` storage trait. Cheap to clone (clones
/// share the connection and caches).
#[derive(Clone)]
pub struct RedisStore {
    pub(crate) inner: Arc<Inner>,
}

pub(crate) struct Inner {
    pub(crate) conn: ConnectionManager,
    pub(crate) keys: Keys,
    pub(crate) scripts: Scripts,
    pub(crate) config: RedisConfig,
    /// Session definitions as created never change: cached after the first read.
    pub(crate) sessions: DashMap<SessionId, Arc<Session>>,
    /// Each session's current plan (capacity changes replace it) as this process last read
    /// it: prices and grades never change, so a stale copy only misses seats added since,
    /// which the hold path reads again (see [`RedisStore::fresh_plan`]).
    pub(crate) plans: DashMap<SessionId, Arc<InventoryPlan>>,
    pub(crate) batches: Batches,
    /// The system actor of queue reads (JSON), serialised once.
    pub(crate) queue_actor: String,
    /// Wakes `wait_for_change` callers from one blocked `XREAD` (see `feed_listener`).
    pub(crate) listener: Arc<FeedListener>,
}

/// Coalescing of each batched kind of request, per session (see `RedisConfig::max_batch`):
/// up to `max_in_flight` script calls of a kind per session at once, so Redis works on one
/// batch while the next is on its way.
pub(crate) struct Batches {
    pub(crate) holds: Coalescer<HoldArgs>,
    pub(crate) joins: Coalescer<JoinArgs>,
    pub(crate) views: Coalescer<ViewArgs>,
    pub(crate) leaves: Coalescer<LeaveArgs>,
    pub(crate) policies: Coalescer<PolicyRead>,
}

impl Batches {
    fn new(config: &RedisConfig) -> Self {
        let limits = Limits {
            max_batch: config.max_batch,
            max_in_flight: config.max_in_flight,
        };
        Self {
            holds: Coalescer::new(Scope::PerKey, limits, spawn),
            joins: Coalescer::new(Scope::PerKey, limits, spawn),
            views: Coalescer::new(Scope::PerKey, limits, spawn),
            leaves: Coalescer::new(Scope::PerKey, limits, spawn),
            policies: Coalescer::new(Scope::PerKey, limits, spawn),
        }
    }
}

/// Batches run on tasks of their own, so a caller that gives up never strands the requests
/// batched with its own.
fn spawn(task: Task) {
    tokio::spawn(task);
}

/// The session of a per-session batch.
pub(crate) fn batch_session(sessions: &[SessionId]) -> Result<SessionId> {
    sessions
        .first()
        .copied()
        .ok_or_else(|| Error::Corrupt("a batch without a session".into()))
}

impl std::fmt::Debug for RedisStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RedisStore")
            .field("prefix", &self.inner.keys.prefix())
            .finish()
    }
}

impl RedisStore {
    /// Connects to Redis, checks it answers (`PING`) and loads this crate's Lua function
    /// library there unless that version is loaded already (`FUNCTION LOAD`, see the
    /// `scripts` module).
    ///
    /// The connection is multiplexed: concurrent calls share it and are pipelined. It
    /// reconnects by itself after a failure; calls made while it is down fail with
    /// `Unavailable`.
    pub async fn connect(config: RedisConfig) -> Result<Self> {
        config.validate()?;
        let client = redis::Client::open(config.url.as_str())
            .map_err(|e| InvalidInput::Config(format!("redis url {:?}: {e}", config.url)))?;
        let manager_config = ConnectionManagerConfig::new()
            .set_response_timeout(config.response_timeout)
            .set_connection_timeout(config.connection_timeout)
            .set_number_of_retries(2)
            .set_max_delay(500);
        let client_for_listener = client.clone();
        let mut conn = ConnectionManager::new_with_config(client, manager_config)
            .await
            .map_err(unavailable)?;
        let _: String = redis::cmd("PING")
            .query_async(&mut conn)
            .await
            .map_err(unavailable)?;
        let scripts = Scripts::new();
        load_library(&mut conn, &scripts)
            .await
            .map_err(|e| Error::Unavailable(Box::new(e)))?;
        Ok(Self {
            inner: Arc::new(Inner {
                conn,
                keys: Keys::new(&config.prefix),
                scripts,
                sessions: DashMap::new(),
                plans: DashMap::new(),
                batches: Batches::new(&config),
                queue_actor: to_json(&Actor::system("queue"))?,
                listener: FeedListener::new(
                    client_for_listener,
                    Keys::new(&config.prefix),
                    &config,
                ),
                config,
            }),
        })
    }

    /// Every [`Stores`] trait backed by this store.
    pub fn stores(&self) -> Stores {
        Stores::from_backend(Arc::new(self.clone()))
    }

    /// The settings this store runs with.
    pub fn config(&self) -> &RedisConfig {
        &self.inner.config
    }

    /// The name (`CLIENT SETNAME`) of the one dedicated connection on which this store
    /// blocks in `XREAD` for every `wait_for_change` caller, as `CLIENT LIST` shows it.
    pub fn feed_listener_name(&self) -> &str {
        self.inner.listener.connection_name()
    }

    pub(crate) fn conn(&self) -> ConnectionManager {
        self.inner.conn.clone()
    }

    /// Runs a function and returns its raw reply; Redis failures are `Unavailable`. A server
    /// without the function (flushed or restarted) gets the library loaded again and the call
    /// runs once more: the first attempt did not run at all, so nothing is applied twice.
    pub(crate) async fn run(&self, call: &Call) -> Result<Value> {
        let mut conn = self.conn();
        match call.cmd().query_async(&mut conn).await {
            Err(e) if function_missing(&e) => {
                self.reload_library(&mut conn).await?;
                call.cmd().query_async(&mut conn).await.map_err(unavailable)
            }
            reply => reply.map_err(unavailable),
        }
    }

    /// Loads the function library again (after "Function not found").
    pub(crate) async fn reload_library(&self, conn: &mut ConnectionManager) -> Result<()> {
        tracing::info!(
            library = self.inner.scripts.library,
            "Redis lost the function library: loading it again"
        );
        load_library(conn, &self.inner.scripts)
            .await
            .map_err(|e| Error::Unavailable(Box::new(e)))
    }

    /// Starts a call of a session function: KEYS[1] is the session's key base, ARGV[1] the
    /// change feed's retention and ARGV[2] the key prefix (see `lua/lib/base.lua`).
    pub(crate) fn session_call(&self, function: &Function, session: SessionId) -> Call {
        let mut call = Call::new(function, self.inner.keys.session(session));
        call.arg(self.feed_keep()).arg(self.inner.keys.prefix());
        call
    }

    /// The change feed's retention, as the scripts take it.
    pub(crate) fn feed_keep(&self) -> u64 {
        self.inner.config.feed_retention.max_changes_per_session
    }

    /// The session's current plan as this process last read it (see `Inner::plans`).
    pub(crate) async fn current_plan(&self, id: SessionId) -> Result<Arc<InventoryPlan>> {
        if let Some(p) = self.inner.plans.get(&id) {
            return Ok(p.clone());
        }
        self.fresh_plan(id).await
    }

    /// The session's current plan read from Redis (the `def` hash's `plan`, written by
    /// capacity changes; the plan as created when absent), replacing this process's copy.
    pub(crate) async fn fresh_plan(&self, id: SessionId) -> Result<Arc<InventoryPlan>> {
        let session = self.session_def(id).await?;
        let raw: Value = redis::cmd("HGET")
            .arg(self.inner.keys.session_key(id, "def"))
            .arg("plan")
            .query_async(&mut self.conn())
            .await
            .map_err(unavailable)?;
        let plan = self.remember_plan(id, &session, opt_text(&raw, "plan")?)?;
        Ok(plan)
    }

    /// The current plan from the stored `plan` field (`None`: the plan as created), cached.
    pub(crate) fn remember_plan(
        &self,
        id: SessionId,
        created: &Session,
        stored: Option<&str>,
    ) -> Result<Arc<InventoryPlan>> {
        let plan = Arc::new(match stored {
            Some(doc) => json::<InventoryPlan>(doc, "plan")?,
            None => created.inventory.clone(),
        });
        self.inner.plans.insert(id, plan.clone());
        Ok(plan)
    }

    /// The session definition as created (cached: it never changes; capacity changes
    /// replace the plan, see [`RedisStore::current_plan`]), or `NotFound`.
    pub(crate) async fn session_def(&self, id: SessionId) -> Result<Arc<Session>> {
        if let Some(s) = self.inner.sessions.get(&id) {
            return Ok(s.clone());
        }
        let raw: Value = redis::cmd("HGET")
            .arg(self.inner.keys.session_key(id, "def"))
            .arg("json")
            .query_async(&mut self.conn())
            .await
            .map_err(unavailable)?;
        let Some(text) = opt_text(&raw, "session")? else {
            return Err(Error::not_found("session", id));
        };
        let session: Arc<Session> = Arc::new(json(text, "session")?);
        self.inner.sessions.insert(id, session.clone());
        Ok(session)
    }

    /// Every session id known to this store.
    pub(crate) async fn all_sessions(&self) -> Result<Vec<SessionId>> {
        let ids: Vec<String> = redis::cmd("SMEMBERS")
            .arg(self.inner.keys.sessions())
            .query_async(&mut self.conn())
            .await
            .map_err(unavailable)?;
        ids.iter()
            .map(|s| {
                s.parse()
                    .map_err(|_| Error::Corrupt(format!("bad session id {s:?}")))
            })
            .collect()
    }

    /// Deletes every key under this store's prefix (`SCAN` + `UNLINK`). Destroys all data
    /// of this deployment: for tests and for tearing down a demo.
    pub async fn delete_all_keys(&self) -> Result<u64> {
        let mut conn = self.conn();
        delete_prefix(&mut conn, self.inner.keys.prefix()).await
    }
}

async fn delete_prefix(conn: &mut ConnectionManager, prefix: &str) -> Result<u64> {
    let pattern = format!("{prefix}:*");
    let mut cursor: u64 = 0;
    let mut deleted = 0u64;
    loop {
        let (next, keys): (u64, Vec<String>) = redis::cmd("SCAN")
            .arg(cursor)
            .arg("MATCH")
            .arg(&pattern)
            .arg("COUNT")
            .arg(1000)
            .query_async(conn)
            .await
            .map_err(unavailable)?;
        if !keys.is_empty() {
            let n: u64 = redis::cmd("UNLINK")
                .arg(&keys)
                .query_async(conn)
                .await
                .map_err(unavailable)?;
            deleted += n;
        }
        if next == 0 {
            return Ok(deleted);
        }
        cursor = next;
    }
}

impl Drop for Inner {
    fn drop(&mut self) {
        if !self.config.delete_keys_on_drop {
            return;
        }
        // Drop cannot await: clean up on a plain thread with a blocking connection.
        let url = self.config.url.clone();
        let pattern = format!("{}:*", self.keys.prefix());
        let cleanup = std::thread::spawn(move || -> redis::RedisResult<()> {
            let mut conn = redis::Client::open(url)?.get_connection()?;
            let keys: Vec<String> = redis::Commands::scan_match(&mut conn, &pattern)?.collect();
            for chunk in keys.chunks(1000) {
                redis::cmd("UNLINK").arg(chunk).exec(&mut conn)?;
            }
            Ok(())
        });
        if let Ok(Err(e)) = cleanup.join() {
            tracing::warn!(error = %e, "could not delete the store's keys on drop");
        }
    }
}
