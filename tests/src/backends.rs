//! The three backends, each isolated (own key prefix or schema, removed when dropped), and
//! failing loudly, never skipping, when their server is missing.

use ticket_core::Stores;
use ticket_core::memory::MemoryStore;
use ticket_store_pg::{PgConfig, PgStore};
use ticket_store_redis::{RedisConfig, RedisStore};

/// A backend under test; dropping it removes its keys or schema.
pub enum Backend {
    /// The in-memory stores.
    Memory(MemoryStore),
    /// Redis, under a fresh key prefix.
    Redis(RedisStore),
    /// PostgreSQL, in a fresh schema.
    Pg(PgStore),
}

fn unreachable_help(what: &str, url: &str, err: &dyn std::fmt::Debug, start: &str) -> String {
    format!(
        "{what} is not reachable at {url} ({err:?}). Start it with `{start}`. {}",
        if std::env::var("CI").as_deref() == Ok("true") {
            "CI=true: this is a failure, not a skip."
        } else {
            "These tests are never skipped silently."
        }
    )
}

impl Backend {
    /// The in-memory backend.
    pub fn memory() -> Self {
        Self::Memory(MemoryStore::new())
    }

    /// Redis at `REDIS_URL` (default `redis://127.0.0.1:6379`), under a unique prefix.
    pub async fn redis() -> Self {
        let url = std::env::var("REDIS_URL").unwrap_or_else(|_| "redis://127.0.0.1:6379".into());
        let mut config =
            RedisConfig::new(&url).with_prefix(format!("tr-e2e:{}", uuid::Uuid::now_v7().simple()));
        config.delete_keys_on_drop = true;
        match RedisStore::connect(config).await {
            Ok(s) => Self::Redis(s),
            Err(e) => panic!(
                "{}",
                unreachable_help(
                    "Redis",
                    &url,
                    &e,
                    "redis-server --daemonize yes --port 6379 --save '' --appendonly no"
                )
            ),
        }
    }

    /// PostgreSQL at `DATABASE_URL` (default `postgres://postgres@127.0.0.1:5432/test`), in a
    /// fresh schema.
    pub async fn pg() -> Self {
        let url = std::env::var("DATABASE_URL")
            .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/test".into());
        let name = format!("tr_e2e_{}", uuid::Uuid::now_v7().simple());
        let mut config = PgConfig::new(&url).with_schema(&name);
        config.application_name = name;
        config.drop_schema_on_drop = true;
        let store = match PgStore::connect(config).await {
            Ok(s) => s,
            Err(e) => panic!(
                "{}",
                unreachable_help(
                    "PostgreSQL",
                    &url,
                    &e,
                    "pg_ctlcluster --skip-systemctl-redirect $(ls /etc/postgresql) main start"
                )
            ),
        };
        store.migrate().await.expect("migrations apply");
        Self::Pg(store)
    }

    /// The stores.
    pub fn stores(&self) -> Stores {
        match self {
            Self::Memory(s) => s.stores(),
            Self::Redis(s) => s.stores(),
            Self::Pg(s) => s.stores(),
        }
    }

    /// Removes the backend's keys or schema now (dropping it does the same, but only once
    /// every clone of its stores is gone; a test calls this when it is done).
    pub async fn cleanup(self) {
        match &self {
            Self::Memory(_) => {}
            Self::Redis(s) => {
                s.delete_all_keys().await.expect("delete the test keys");
            }
            Self::Pg(s) => s.drop_schema().await.expect("drop the test schema"),
        }
    }

    /// A short name for reports.
    pub fn name(&self) -> &'static str {
        match self {
            Self::Memory(_) => "memory",
            Self::Redis(_) => "redis",
            Self::Pg(_) => "postgres",
        }
    }
}
