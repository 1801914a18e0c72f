//! The three backends, each isolated (own key prefix or schema, removed when dropped), and
//! failing loudly, never skipping, when their server is missing (names, URLs and the
//! missing-service rule from `ticketrush-test-support`).

use ticket_core::Stores;
use ticket_core::memory::MemoryStore;
use ticket_store_pg::{PgConfig, PgStore};
use ticket_store_redis::{RedisConfig, RedisStore};
use ticketrush_test_support::{Service, unique_name};

/// A backend under test; dropping it removes its keys or schema.
pub enum Backend {
    /// The in-memory stores.
    Memory(MemoryStore),
    /// Redis, under a fresh key prefix.
    Redis(RedisStore),
    /// PostgreSQL, in a fresh schema.
    Pg(PgStore),
}

impl Backend {
    /// The in-memory backend.
    pub fn memory() -> Self {
        Self::Memory(MemoryStore::new())
    }

    /// Redis at `REDIS_URL` (default `redis://127.0.0.1:6379`), under a unique prefix
    /// (`tr_test_e2e_<uuid>`).
    pub async fn redis() -> Self {
        let url = Service::Redis.url();
        let mut config = RedisConfig::new(&url).with_prefix(unique_name("e2e"));
        config.delete_keys_on_drop = true;
        Self::Redis(Service::Redis.connected(&url, RedisStore::connect(config).await))
    }

    /// PostgreSQL at `DATABASE_URL` (default `postgres://postgres@127.0.0.1:5432/test`), in a
    /// fresh schema (`tr_test_e2e_<uuid>`).
    pub async fn pg() -> Self {
        let (url, name) = (Service::Postgres.url(), unique_name("e2e"));
        let mut config = PgConfig::new(&url).with_schema(&name);
        config.application_name = name;
        config.drop_schema_on_drop = true;
        let store = Service::Postgres.connected(&url, PgStore::connect(config).await);
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
