//! A PostgreSQL store in a schema of its own (see `ticketrush-test-support`), which the store
//! drops when its last handle drops (also when the test panicked).

use ticket_store_pg::{PgConfig, PgStore};
use ticketrush_test_support::{Service, unique_name};

/// The configuration of a fresh schema `tr_test_pg_<uuid>` (also its connections'
/// application name, so `pg_terminate_backend` can pick out its backends), dropped with the
/// last store handle made from it. Nothing is created until a store connects and migrates.
#[allow(dead_code)] // used by some test binaries only
pub fn isolated_config() -> PgConfig {
    let name = unique_name("pg");
    let mut config = PgConfig::new(ticketrush_test_support::database_url()).with_schema(&name);
    config.application_name = name;
    config.drop_schema_on_drop = true;
    config
}

/// A migrated store in a fresh schema (see [`isolated_config`]) that is dropped with the
/// store. Fails loudly, never skips, when PostgreSQL cannot be reached.
#[allow(dead_code)] // used by some test binaries only
pub async fn isolated_store(max_batch: usize) -> PgStore {
    // The store's own clean-up, not a guard: conformance factories return only its stores.
    let mut config = isolated_config();
    config.max_batch = max_batch;
    let url = config.url.clone();
    let store = Service::Postgres.connected(&url, PgStore::connect(config).await);
    store.migrate().await.expect("migrations apply");
    store
}

/// Another handle on `store`'s schema, with its own pool and batches, as a second app server
/// would have. It leaves the schema to `store`'s clean-up.
#[allow(dead_code)] // used by some test binaries only
pub async fn another_server(store: &PgStore) -> PgStore {
    let mut config = store.config().clone();
    config.drop_schema_on_drop = false;
    PgStore::connect(config).await.expect("second pool")
}

/// A connection of its own (not the store's pool) on the store's schema, for statements the
/// library never runs (locking rows, breaking rules, killing backends).
#[allow(dead_code)] // used by some test binaries only
pub async fn side_connection(store: &PgStore) -> sqlx::PgConnection {
    let config = store.config();
    ticketrush_test_support::postgres::connect_in(&config.url, &config.schema)
        .await
        .expect("side connection")
}
