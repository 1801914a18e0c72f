//! A Redis store on a key prefix of its own (see `ticketrush-test-support`), whose keys the
//! store deletes when its last handle drops (also when the test panicked).

use ticket_store_redis::{RedisConfig, RedisStore};
use ticketrush_test_support::{Service, unique_name};

/// A fresh store under a unique prefix (`tr_test_redis_<uuid>`). Fails loudly, never
/// skips, when Redis cannot be reached.
#[allow(dead_code)] // used by some test binaries only
pub async fn isolated_store(max_batch: usize) -> RedisStore {
    isolated_store_at(&ticketrush_test_support::redis_url(), max_batch).await
}

/// [`isolated_store`] with settings changed by `change` (the prefix stays unique).
#[allow(dead_code)] // used by some test binaries only
pub async fn isolated_store_with(change: impl FnOnce(&mut RedisConfig)) -> RedisStore {
    let url = ticketrush_test_support::redis_url();
    let mut config = RedisConfig::new(&url).with_prefix(unique_name("redis"));
    config.delete_keys_on_drop = true;
    change(&mut config);
    Service::Redis.connected(&url, RedisStore::connect(config).await)
}

/// [`isolated_store`] on another URL (e.g. another logical database).
#[allow(dead_code)] // used by some test binaries only
pub async fn isolated_store_at(url: &str, max_batch: usize) -> RedisStore {
    // The store's own clean-up, not a guard: conformance factories return only its stores.
    let mut config = RedisConfig::new(url).with_prefix(unique_name("redis"));
    config.delete_keys_on_drop = true;
    config.max_batch = max_batch;
    Service::Redis.connected(url, RedisStore::connect(config).await)
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
