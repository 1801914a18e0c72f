//! Test support: a store on its own key prefix that deletes its keys when dropped.

use ticket_store_redis::{RedisConfig, RedisStore};

/// `REDIS_URL`, or the local default.
pub fn redis_url() -> String {
    std::env::var("REDIS_URL").unwrap_or_else(|_| "redis://127.0.0.1:6379".into())
}

/// A fresh store under a unique prefix (`tr-test:<uuid>`). Fails loudly, never skips, when
/// Redis cannot be reached.
#[allow(dead_code)] // used by some test binaries only
pub async fn isolated_store(max_batch: usize) -> RedisStore {
    isolated_store_at(&redis_url(), max_batch).await
}

/// [`isolated_store`] on another URL (e.g. another logical database).
#[allow(dead_code)] // used by some test binaries only
pub async fn isolated_store_at(url: &str, max_batch: usize) -> RedisStore {
    let url = url.to_owned();
    let mut config =
        RedisConfig::new(&url).with_prefix(format!("tr-test:{}", uuid::Uuid::now_v7().simple()));
    config.delete_keys_on_drop = true;
    config.max_batch = max_batch;
    match RedisStore::connect(config).await {
        Ok(store) => store,
        Err(e) => panic!(
            "Redis is not reachable at {url} ({e:?}). The Redis backend tests need a real Redis: \
             start one with `redis-server --daemonize yes --port 6379 --save '' --appendonly no` \
             (or `docker compose up -d redis`), or point REDIS_URL at one. {}",
            if std::env::var("CI").as_deref() == Ok("true") {
                "CI=true: this is a failure, not a skip."
            } else {
                "These tests are never skipped silently."
            }
        ),
    }
}

/// Another handle on `store`'s keys (same prefix), with its own connection and batches, as
/// a second app server would have. It leaves the keys to `store`'s clean-up.
#[allow(dead_code)] // used by some test binaries only
pub async fn another_server(store: &RedisStore) -> RedisStore {
    let mut config = store.config().clone();
    config.delete_keys_on_drop = false;
    RedisStore::connect(config)
        .await
        .expect("second connection")
}
