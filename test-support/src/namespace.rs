//! [`Namespace`]: a test's own Redis key prefix or PostgreSQL schema, removed when dropped.

use std::sync::atomic::{AtomicBool, Ordering};

use crate::missing::Unreachable;
use crate::service::{Service, unique_name};

/// Why removing or counting a namespace's data failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum CleanupError {
    /// Redis refused or could not be reached.
    #[cfg(feature = "redis")]
    #[error("Redis: {0}")]
    Redis(#[from] redis::RedisError),
    /// PostgreSQL refused or could not be reached.
    #[cfg(feature = "postgres")]
    #[error("PostgreSQL: {0}")]
    Postgres(#[from] sqlx::Error),
    /// No runtime could be built for the clean-up of a dropped namespace.
    #[error("no runtime for the clean-up: {0}")]
    Runtime(#[source] std::io::Error),
}

/// A test's own part of a shared server: a fresh [`unique_name`] used as a Redis key prefix
/// or a PostgreSQL schema name, with the server's URL.
///
/// Dropping it removes everything under the name (Redis: every key starting with the name;
/// PostgreSQL: the schema of that name and every schema starting with `<name>_`), **also
/// when the test panicked**: the clean-up runs on a thread of its own with its own runtime
/// (the test's runtime may be shutting down), and the drop waits for it, so the process never
/// exits first. Drop it after whatever writes under the name has stopped. A clean-up that
/// fails prints a note on standard error (a drop cannot fail the test); call
/// [`remove`](Self::remove) to see the error instead.
///
/// ```no_run
/// # async fn demo() {
/// use ticketrush_test_support::Namespace;
///
/// // A fresh prefix on the Redis at REDIS_URL (default redis://127.0.0.1:6379).
/// let ns = Namespace::redis("orders");
/// // The test's own connection attempt; if it fails, the test fails saying how to start Redis.
/// let client = ns.connected(redis::Client::open(ns.url()));
/// let mut conn = ns.connected(client.get_multiplexed_async_connection().await);
/// let key = format!("{}:order:1", ns.name());
/// redis::cmd("SET").arg(&key).arg("paid").exec_async(&mut conn).await.unwrap();
/// // ... the test ...
/// drop(ns); // every `<name>*` key is gone, also had the test panicked
/// # }
/// ```
#[derive(Debug)]
#[must_use = "dropping the namespace removes its data at once"]
pub struct Namespace {
    service: Service,
    url: String,
    name: String,
    /// Whether dropping removes the data (not after `remove`, `keep`, or a failed `require`).
    armed: AtomicBool,
}

impl Namespace {
    fn new(service: Service, url: &str, label: &str) -> Self {
        Self {
            service,
            url: url.to_owned(),
            name: unique_name(label),
            armed: AtomicBool::new(true),
        }
    }

    /// A fresh key prefix `tr_test_<label>_<uuid>` on the Redis at `REDIS_URL`.
    ///
    /// # Panics
    /// When `label` is not 1 to 12 of `a-z` and `0-9` (see [`unique_name`]).
    #[cfg(feature = "redis")]
    #[track_caller]
    pub fn redis(label: &str) -> Self {
        Self::redis_at(&crate::redis_url(), label)
    }

    /// [`redis`](Self::redis) on the Redis at `url` (another server or logical database).
    ///
    /// # Panics
    /// As [`redis`](Self::redis).
    #[cfg(feature = "redis")]
    #[track_caller]
    pub fn redis_at(url: &str, label: &str) -> Self {
        Self::new(Service::Redis, url, label)
    }

    /// A fresh schema name `tr_test_<label>_<uuid>` on the PostgreSQL at `DATABASE_URL`
    /// (nothing is created: the code under test creates its schemas).
    ///
    /// # Panics
    /// When `label` is not 1 to 12 of `a-z` and `0-9` (see [`unique_name`]).
    #[cfg(feature = "postgres")]
    #[track_caller]
    pub fn postgres(label: &str) -> Self {
        Self::postgres_at(&crate::database_url(), label)
    }

    /// [`postgres`](Self::postgres) on the PostgreSQL at `url`.
    ///
    /// # Panics
    /// As [`postgres`](Self::postgres).
    #[cfg(feature = "postgres")]
    #[track_caller]
    pub fn postgres_at(url: &str, label: &str) -> Self {
        Self::new(Service::Postgres, url, label)
    }

    /// The unique name: the Redis key prefix or the PostgreSQL schema.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The server's URL.
    pub fn url(&self) -> &str {
        &self.url
    }

    /// The service the namespace is on.
    pub fn service(&self) -> Service {
        self.service
    }

    /// Connects once to the server (and closes the connection again).
    pub async fn check(&self) -> Result<(), Unreachable> {
        let reached: Result<(), Box<dyn std::error::Error + Send + Sync>> = match self.service {
            #[cfg(feature = "redis")]
            Service::Redis => crate::redis::connect(&self.url)
                .await
                .map(drop)
                .map_err(Into::into),
            #[cfg(feature = "postgres")]
            Service::Postgres => {
                use sqlx::Connection;
                match crate::postgres::connect(&self.url).await {
                    Ok(conn) => conn.close().await.map_err(Into::into),
                    Err(e) => Err(e.into()),
                }
            }
            #[allow(unreachable_patterns)] // constructors exist for enabled services only
            other => {
                Err(format!("{other} support is not enabled in ticketrush-test-support").into())
            }
        };
        reached.map_err(|cause| self.service.unreachable(&self.url, cause))
    }

    /// [`check`](Self::check), failing the test when the server cannot be reached (with how
    /// to start it; see [`Unreachable::fail`]). Nothing was written then, so the namespace
    /// is not cleaned up.
    ///
    /// # Panics
    /// When the server cannot be reached.
    pub async fn require(&self) {
        if let Err(e) = self.check().await {
            self.armed.store(false, Ordering::SeqCst);
            e.fail();
        }
    }

    /// The value of the test's own connection attempt to the namespace's server, or the
    /// loud failure of [`Unreachable::fail`] (and no clean-up: nothing was written).
    ///
    /// # Panics
    /// When `connected` is an error.
    #[track_caller]
    pub fn connected<T, E>(&self, connected: Result<T, E>) -> T
    where
        E: Into<Box<dyn std::error::Error + Send + Sync>>,
    {
        match connected {
            Ok(value) => value,
            Err(e) => {
                self.armed.store(false, Ordering::SeqCst);
                self.service.unreachable(&self.url, e).fail()
            }
        }
    }

    /// Removes everything under the name now (see [`Namespace`]); how many keys or schemas
    /// went. The namespace stays armed: dropping it removes what was written since.
    pub async fn clear(&self) -> Result<u64, CleanupError> {
        clear(self.service, &self.url, &self.name).await
    }

    /// How many keys (Redis) or schemas (PostgreSQL) exist under the name.
    pub async fn left(&self) -> Result<u64, CleanupError> {
        match self.service {
            #[cfg(feature = "redis")]
            Service::Redis => Ok(crate::redis::count_prefix(&self.url, &self.name).await?),
            #[cfg(feature = "postgres")]
            Service::Postgres => Ok(crate::postgres::count_schemas(&self.url, &self.name).await?),
            #[allow(unreachable_patterns)] // constructors exist for enabled services only
            _ => Ok(0),
        }
    }

    /// Removes everything under the name now, and reports the error a drop could only
    /// print; how many keys or schemas went.
    pub async fn remove(self) -> Result<u64, CleanupError> {
        self.armed.store(false, Ordering::SeqCst);
        self.clear().await
    }

    /// Leaves the data in place (to look at after a run) and returns the name.
    pub fn keep(self) -> String {
        self.armed.store(false, Ordering::SeqCst);
        self.name.clone()
    }
}

/// Removes everything under `name` on `service` at `url`.
async fn clear(service: Service, url: &str, name: &str) -> Result<u64, CleanupError> {
    match service {
        #[cfg(feature = "redis")]
        Service::Redis => Ok(crate::redis::delete_prefix(url, name).await?),
        #[cfg(feature = "postgres")]
        Service::Postgres => Ok(crate::postgres::drop_schemas(url, name).await?),
        #[allow(unreachable_patterns)] // constructors exist for enabled services only
        _ => {
            let _ = (url, name);
            Ok(0)
        }
    }
}

impl Drop for Namespace {
    fn drop(&mut self) {
        if !*self.armed.get_mut() {
            return;
        }
        let (service, url, name) = (self.service, self.url.clone(), self.name.clone());
        let cleaned = std::thread::spawn(move || {
            tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .map_err(CleanupError::Runtime)?
                .block_on(clear(service, &url, &name))
        })
        .join();
        match cleaned {
            Ok(Ok(_)) => {}
            Ok(Err(e)) => eprintln!("could not clean up test namespace {}: {e}", self.name),
            Err(_) => eprintln!("the clean-up of test namespace {} panicked", self.name),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Verdict;

    fn block_on<F: std::future::Future>(f: F) -> F::Output {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("runtime")
            .block_on(f)
    }

    /// The missing-service rule against a port nothing listens on: the check fails, the
    /// verdict is a failure in CI and elsewhere, and the message says how to start it.
    fn assert_unreachable_fails_loudly(ns: &Namespace, start: &str) {
        let e = block_on(ns.check()).expect_err("nothing listens on port 1");
        assert_eq!((e.service, e.url.as_str()), (ns.service(), ns.url()));
        for ci in [true, false] {
            let Verdict::Fail(m) = e.verdict(ci) else {
                panic!("a missing {} must fail the test (ci = {ci})", ns.service());
            };
            assert!(m.contains(start) && m.contains(ns.url()), "{m}");
        }
    }

    #[cfg(feature = "redis")]
    #[test]
    fn an_unreachable_redis_fails_saying_how_to_start_it() {
        let ns = Namespace::redis_at("redis://127.0.0.1:1", "unit");
        assert_unreachable_fails_loudly(&ns, Service::Redis.how_to_start());
        assert!(
            Service::Redis
                .how_to_start()
                .starts_with("redis-server --daemonize yes --bind 127.0.0.1 -::1")
        );
    }

    #[cfg(feature = "redis")]
    #[test]
    #[should_panic(expected = "redis-server --daemonize yes")]
    fn requiring_an_unreachable_redis_panics() {
        let ns = Namespace::redis_at("redis://127.0.0.1:1", "unit");
        block_on(ns.require());
    }

    #[cfg(feature = "postgres")]
    #[test]
    fn an_unreachable_postgres_fails_saying_how_to_start_it() {
        let ns = Namespace::postgres_at("postgres://postgres@127.0.0.1:1/test", "unit");
        assert_unreachable_fails_loudly(&ns, Service::Postgres.how_to_start());
    }

    #[cfg(feature = "postgres")]
    #[test]
    #[should_panic(expected = "pg_ctlcluster --skip-systemctl-redirect")]
    fn a_failed_connection_to_postgres_panics() {
        let ns = Namespace::postgres_at("postgres://postgres@127.0.0.1:1/test", "unit");
        let _: sqlx::PgConnection = ns.connected(block_on(crate::postgres::connect(ns.url())));
    }

    #[test]
    fn names_are_unique_and_safe_everywhere() {
        let (a, b) = (unique_name("unit"), unique_name("unit"));
        assert_ne!(a, b);
        assert!(
            a.starts_with("tr_test_unit_") && a.len() == 8 + 4 + 1 + 32,
            "{a}"
        );
        assert!(unique_name("abcdefg").len() <= 48);
        assert!(unique_name("abcdefghijkl").len() + "_app".len() <= 63);
    }

    #[test]
    #[should_panic(expected = "a test label is")]
    fn a_label_with_glob_characters_is_refused() {
        let _ = unique_name("a*");
    }
}
