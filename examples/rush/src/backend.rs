//! The backend a run sells on: each in-process run gets its own Redis key prefix or
//! PostgreSQL schema, removed at the end unless the run was asked to keep it. In HTTP mode
//! the backend is the server's, opened under its namespace only to check the run, and
//! never removed.

use ticket_core::Stores;
use ticket_core::memory::MemoryStore;
use ticket_store_pg::{PgConfig, PgStore};
use ticket_store_redis::{RedisConfig, RedisStore};

use crate::config::{Config, StoreKind};
use crate::error::{RushError, chain};

/// A connected backend, isolated for one run.
pub enum Backend {
    /// In this process.
    Memory(MemoryStore),
    /// Redis under the key prefix `rush:<uuid>`.
    Redis(RedisStore),
    /// PostgreSQL in the schema `rush_<uuid>`.
    Pg(PgStore),
}

impl std::fmt::Debug for Backend {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Backend({})", self.location())
    }
}

/// How to start Redis on this machine (said when it is not reachable).
pub const START_REDIS: &str = "redis-server --daemonize yes --port 6379 --save '' --appendonly no";
/// How to start PostgreSQL on this machine (said when it is not reachable).
pub const START_PG: &str =
    "pg_ctlcluster --skip-systemctl-redirect $(ls /etc/postgresql) main start";

impl Backend {
    /// Connects to the configured backend under a fresh prefix or schema (created and
    /// migrated for PostgreSQL), or in HTTP mode under the server's namespace (as it is,
    /// never deleted). An unreachable server is [`RushError::Unreachable`], whose message
    /// says how to start it.
    pub async fn connect(config: &Config) -> Result<Self, RushError> {
        let run = uuid::Uuid::now_v7().simple().to_string();
        let server = config.remote.as_ref().map(|r| r.namespace.clone());
        match config.store {
            StoreKind::Memory => Ok(Self::Memory(MemoryStore::new())),
            StoreKind::Redis => {
                let prefix = server.clone().unwrap_or_else(|| format!("rush:{run}"));
                // The audit trail is complete on Redis (no trim since issue 17), so the FIFO
                // check can read all of it.
                let mut c = RedisConfig::new(&config.redis_url).with_prefix(prefix);
                // A safety net behind `cleanup`: a run that panics still removes its keys
                // (never the server's).
                c.delete_keys_on_drop = !config.keep && server.is_none();
                match RedisStore::connect(c).await {
                    Ok(s) => Ok(Self::Redis(s)),
                    Err(source) => Err(RushError::Unreachable {
                        what: "Redis",
                        url: config.redis_url.clone(),
                        start: START_REDIS,
                        detail: chain(&source),
                        source: Box::new(source),
                    }),
                }
            }
            StoreKind::Pg => {
                let schema = server.clone().unwrap_or_else(|| format!("rush_{run}"));
                let mut c = PgConfig::new(&config.database_url).with_schema(&schema);
                c.application_name = format!("rush_{run}");
                // A safety net behind `cleanup`: a run that panics still drops its schema
                // (never the server's).
                c.drop_schema_on_drop = !config.keep && server.is_none();
                let store = match PgStore::connect(c).await {
                    Ok(s) => s,
                    Err(source) => {
                        return Err(RushError::Unreachable {
                            what: "PostgreSQL",
                            url: config.database_url.clone(),
                            start: START_PG,
                            detail: chain(&source),
                            source: Box::new(source),
                        });
                    }
                };
                if server.is_none() {
                    store
                        .migrate()
                        .await
                        .map_err(RushError::library("migrating the run's schema"))?;
                }
                Ok(Self::Pg(store))
            }
        }
    }

    /// The library's stores on this backend.
    pub fn stores(&self) -> Stores {
        match self {
            Self::Memory(s) => s.stores(),
            Self::Redis(s) => s.stores(),
            Self::Pg(s) => s.stores(),
        }
    }

    /// Where the run's data lives: `memory`, `redis prefix rush:<uuid>` or
    /// `pg schema rush_<uuid>`.
    pub fn location(&self) -> String {
        match self {
            Self::Memory(_) => "memory".to_owned(),
            Self::Redis(s) => format!("redis prefix {}", s.config().prefix),
            Self::Pg(s) => format!("pg schema {}", s.config().schema),
        }
    }

    /// Removes the run's keys or schema (nothing to do in memory).
    pub async fn cleanup(&self) -> Result<(), RushError> {
        match self {
            Self::Memory(_) => Ok(()),
            Self::Redis(s) => s
                .delete_all_keys()
                .await
                .map(drop)
                .map_err(RushError::library("deleting the run's Redis keys")),
            Self::Pg(s) => s
                .drop_schema()
                .await
                .map_err(RushError::library("dropping the run's schema")),
        }
    }
}
