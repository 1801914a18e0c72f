//! The store handle: a connection pool on one schema, shared by every call.

use std::str::FromStr;
use std::sync::Arc;

use dashmap::DashMap;
use serde::de::DeserializeOwned;
use sqlx::postgres::{PgConnectOptions, PgPool, PgPoolOptions};
use sqlx::{Connection, PgConnection};
use ticket_core::backend::coalesce::{Coalescer, Limits, Scope, Task};
use ticket_core::ids::SessionId;
use ticket_core::model::session::Session;
use ticket_core::store::Stores;
use ticket_core::{Error, InvalidInput, Result};

use crate::config::PgConfig;
use crate::functions;
use crate::hold_batch::HoldBatch;
use crate::queue_batch::{JoinBatch, LeaveBatch};

/// The PostgreSQL backend: implements every `ticket-core` storage trait. Cheap to clone
/// (clones share the pool and caches).
#[derive(Clone)]
pub struct PgStore {
    pub(crate) inner: Arc<Inner>,
}

pub(crate) struct Inner {
    pub(crate) pool: PgPool,
    pub(crate) config: PgConfig,
    /// Sessions as last read, for pricing holds (see `PgStore::session_def`): only their plan
    /// changes after creation, by capacity changes.
    pub(crate) sessions: DashMap<SessionId, Arc<Session>>,
    /// Hold batches: mixed sessions, `max_in_flight` at once, a session in one at a time.
    pub(crate) holds: Coalescer<HoldBatch>,
    /// Join batches: per session, one in flight per session.
    pub(crate) joins: Coalescer<JoinBatch>,
    /// Leave batches: per session, one in flight per session.
    pub(crate) leaves: Coalescer<LeaveBatch>,
    /// Idempotency claims made, to purge expired records now and then.
    pub(crate) claims: std::sync::atomic::AtomicU64,
    /// The change feed's `LISTEN` task and its fan-out (see `feed.rs`).
    pub(crate) feed: crate::feed::Listener,
}

impl std::fmt::Debug for PgStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PgStore")
            .field("schema", &self.inner.config.schema)
            .finish()
    }
}

/// Batch limits of a kind with one batch per session in flight (a second would only wait
/// for the session's row lock).
fn one_per_session(config: &PgConfig) -> Limits {
    Limits {
        max_batch: config.max_batch,
        max_in_flight: 1,
    }
}

/// Batches run on tasks of their own, so a caller that gives up never strands the requests
/// batched with its own.
fn spawn(task: Task) {
    tokio::spawn(task);
}

/// The embedded schema migrations (`migrations/`: tables, indexes, types, constraint
/// triggers), applied by [`PgStore::migrate`] before the functions of `sql/`.
static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("./migrations");

impl PgStore {
    /// Connects a pool to `config.url` with `search_path` set to `config.schema` on every
    /// connection, and checks the server answers. Does not create or change any table: call
    /// [`PgStore::migrate`] once per deployment (or at every start of the newest build; it is
    /// idempotent).
    pub async fn connect(config: PgConfig) -> Result<Self> {
        config.validate()?;
        let options = connect_options(&config)?;
        // sqlx checks an idle connection before handing it out, so connections the server
        // dropped (restart, failover, `pg_terminate_backend`) are replaced instead of failing
        // the next call; turning it off measured no clear gain on one client.
        let pool = PgPoolOptions::new()
            .max_connections(config.max_connections)
            .acquire_timeout(config.acquire_timeout)
            .connect_with(options)
            .await
            .map_err(db_error)?;
        Ok(Self {
            inner: Arc::new(Inner {
                pool,
                sessions: DashMap::new(),
                holds: Coalescer::new(
                    Scope::Shared,
                    Limits {
                        max_batch: config.max_batch,
                        max_in_flight: config.max_in_flight,
                    },
                    spawn,
                ),
                joins: Coalescer::new(Scope::PerKey, one_per_session(&config), spawn),
                leaves: Coalescer::new(Scope::PerKey, one_per_session(&config), spawn),
                claims: Default::default(),
                feed: Default::default(),
                config,
            }),
        })
    }

    /// Creates the schema if needed, applies the embedded schema migrations that are not
    /// applied yet (`migrations/`, recorded in the schema's `_sqlx_migrations` table), then
    /// installs the operations' functions (`sql/`, one file per operation) whose file changed
    /// since it was last applied (recorded with its SHA-256 in `_ticketrush_functions`),
    /// dropping the functions of files this build no longer has. Calling it again with the
    /// same build changes nothing.
    ///
    /// Safe to call from several processes at once: sqlx serialises migrators with an
    /// advisory lock, and the functions are installed in one transaction under an advisory
    /// lock of the schema, so callers see the old functions or the new ones, never a mix.
    ///
    /// It installs *this build's* functions: during a rolling upgrade, run it from the new
    /// build only (an older build calling it would put its own functions back). A schema made
    /// by a pre-release build is refused (its migrations differ): see `MIGRATING.md`.
    pub async fn migrate(&self) -> Result<()> {
        let create = format!(
            "CREATE SCHEMA IF NOT EXISTS \"{}\"",
            self.inner.config.schema
        );
        if let Err(e) = sqlx::query(&create).execute(&self.inner.pool).await {
            // two processes creating the schema at once: the loser sees a unique violation
            let raced = e
                .as_database_error()
                .and_then(|d| d.code())
                .is_some_and(|c| c == "23505" || c == "42P06");
            if !raced {
                return Err(db_error(e));
            }
        }
        MIGRATOR
            .run(&self.inner.pool)
            .await
            .map_err(|e| Error::Unavailable(Box::new(e)))?;
        functions::install(&self.inner.pool, &self.inner.config.schema)
            .await
            .map_err(|e| Error::Unavailable(Box::new(e)))?;
        Ok(())
    }

    /// Every [`Stores`] trait backed by this store.
    pub fn stores(&self) -> Stores {
        Stores::from_backend(Arc::new(self.clone()))
    }

    /// The settings this store was connected with.
    pub fn config(&self) -> &PgConfig {
        &self.inner.config
    }

    /// The connection pool, for callers that want to run their own queries in the schema.
    pub fn pool(&self) -> &PgPool {
        &self.inner.pool
    }

    /// Drops the schema and everything in it. Irreversible: for tests and teardown.
    pub async fn drop_schema(&self) -> Result<()> {
        drop_schema(&self.inner.config).await
    }
}

fn connect_options(config: &PgConfig) -> Result<PgConnectOptions> {
    let options = PgConnectOptions::from_str(&config.url)
        .map_err(|e| InvalidInput::Config(format!("database url: {e}")))?;
    Ok(options
        .application_name(&config.application_name)
        .options([("search_path", config.schema.as_str())]))
}

async fn drop_schema(config: &PgConfig) -> Result<()> {
    let mut conn = PgConnection::connect_with(&connect_options(config)?)
        .await
        .map_err(db_error)?;
    let sql = format!("DROP SCHEMA IF EXISTS \"{}\" CASCADE", config.schema);
    sqlx::query(&sql)
        .execute(&mut conn)
        .await
        .map_err(db_error)?;
    conn.close().await.map_err(db_error)
}

impl Drop for Inner {
    fn drop(&mut self) {
        self.feed.stop();
        if !self.config.drop_schema_on_drop {
            return;
        }
        // Drop cannot await: clean up on a plain thread with its own runtime, and wait for it
        // so a test process never exits before its schema is gone.
        let config = self.config.clone();
        let cleanup = std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build();
            match runtime {
                Ok(rt) => rt.block_on(drop_schema(&config)),
                Err(e) => Err(Error::Unavailable(Box::new(e))),
            }
        });
        match cleanup.join() {
            Ok(Ok(())) => {}
            Ok(Err(e)) => tracing::warn!(error = %e, "could not drop the store's schema"),
            Err(_) => tracing::warn!("schema clean-up thread panicked"),
        }
    }
}

/// Maps a driver error: data the schema refuses as corrupt is [`Error::Corrupt`]; anything
/// else leaves the outcome unknown ([`Error::Unavailable`]).
pub(crate) fn db_error(e: sqlx::Error) -> Error {
    if let Some(code) = e.as_database_error().and_then(|d| d.code())
        && (code == "XX001" || code == "23514")
    {
        return Error::Corrupt(e.to_string());
    }
    Error::Unavailable(Box::new(e))
}

/// Decodes a `jsonb` value a function returned.
pub(crate) fn decode<T: DeserializeOwned>(value: serde_json::Value, what: &str) -> Result<T> {
    serde_json::from_value(value).map_err(|e| Error::Corrupt(format!("{what}: {e}")))
}
