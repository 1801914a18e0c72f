//! Test support: a store in its own schema, dropped when the store is dropped.

use ticket_store_pg::{PgConfig, PgStore};

/// `DATABASE_URL`, or the local default.
pub fn database_url() -> String {
    std::env::var("DATABASE_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/test".into())
}

/// A migrated store in a fresh schema (`tr_test_<uuid>`) that is dropped with the store.
/// Fails loudly, never skips, when PostgreSQL cannot be reached.
#[allow(dead_code)] // used by some test binaries only
pub async fn isolated_store(max_batch: usize) -> PgStore {
    let mut config = isolated_config();
    config.max_batch = max_batch;
    connect_isolated(config).await
}

/// Settings for a fresh schema `tr_test_<uuid>` (also the connections' application name),
/// dropped with the store.
#[allow(dead_code)] // used by some test binaries only
pub fn isolated_config() -> PgConfig {
    let name = format!("tr_test_{}", uuid::Uuid::now_v7().simple());
    let mut config = PgConfig::new(database_url()).with_schema(&name);
    config.application_name = name;
    config.drop_schema_on_drop = true;
    config
}

/// Connects and migrates `config`; see [`isolated_store`].
#[allow(dead_code)] // used by some test binaries only
pub async fn connect_isolated(config: PgConfig) -> PgStore {
    let url = config.url.clone();
    let store = match PgStore::connect(config).await {
        Ok(store) => store,
        Err(e) => panic!(
            "PostgreSQL is not reachable at {url} ({e:?}). The PostgreSQL backend tests need a \
             real server: start one with `pg_ctlcluster --skip-systemctl-redirect \
             $(ls /etc/postgresql) main start` (or `docker compose up -d postgres`), or point \
             DATABASE_URL at one. {}",
            if std::env::var("CI").as_deref() == Ok("true") {
                "CI=true: this is a failure, not a skip."
            } else {
                "These tests are never skipped silently."
            }
        ),
    };
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
    use sqlx::Connection;
    let options =
        <sqlx::postgres::PgConnectOptions as std::str::FromStr>::from_str(&store.config().url)
            .expect("url")
            .options([("search_path", store.config().schema.as_str())]);
    sqlx::PgConnection::connect_with(&options)
        .await
        .expect("side connection")
}
