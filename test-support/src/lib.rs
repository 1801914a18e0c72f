//! Test support for ticketrush: every crate's tests get an isolated backend from here, fail
//! loudly when a service is missing, and leave nothing behind.
//!
//! # How a new test gets an isolated backend
//!
//! 1. Add the crate as a dev-dependency with the backends the tests use:
//!    `ticketrush-test-support = { path = "../test-support", features = ["redis"] }`
//!    (`"postgres"` for PostgreSQL; both for tests that run on either).
//! 2. Take a [`Namespace`]: `Namespace::redis("label")` is a fresh key prefix on the Redis
//!    at `REDIS_URL`, `Namespace::postgres("label")` a fresh schema name on the PostgreSQL at
//!    `DATABASE_URL` ([`unique_name`]: `tr_test_<label>_<uuid>`, so parallel tests and test
//!    processes never meet).
//! 3. Build what is under test on [`Namespace::url`] and [`Namespace::name`], and pass the
//!    connection result through [`Namespace::connected`]: a missing server fails the test
//!    with the command that starts it.
//! 4. Keep the namespace alive for the test; dropping it deletes the prefix's keys
//!    (`SCAN` + `UNLINK`) or drops the schemas (`DROP SCHEMA … CASCADE`), also when the test
//!    panicked. [`Namespace::remove`] does it explicitly (async, with its error).
//!
//! A store that cleans up itself when its last handle drops (ticket-store-redis's
//! `delete_keys_on_drop`, ticket-store-pg's `drop_schema_on_drop`), as a conformance
//! factory returning only the stores needs, takes just the name: [`unique_name`] with
//! [`Service::url`], and [`Service::connected`] for the loud failure:
//!
//! ```no_run
//! use ticketrush_test_support::{Service, unique_name};
//! # struct Store;
//! # impl Store {
//! #     async fn connect(_url: &str, _prefix: &str) -> Result<Self, std::io::Error> { Ok(Store) }
//! # }
//! # async fn demo() {
//! let url = Service::Redis.url(); // REDIS_URL, or redis://127.0.0.1:6379
//! let prefix = unique_name("orders"); // tr_test_orders_<uuid>
//! let store: Store = Service::Redis.connected(&url, Store::connect(&url, &prefix).await);
//! # }
//! ```
//!
//! # When something is missing
//!
//! A missing service (Redis, PostgreSQL) fails the test, in CI (`CI=true`) and elsewhere:
//! these tests are never skipped, silently or not. The message names the URL tried, the
//! cause, the environment variable, and the command that starts the service
//! ([`Service::how_to_start`]); under CI it adds that this is a failure, not a skip. A
//! missing tool (a browser) is different: it fails under CI, which installs it, and is
//! skipped with a note elsewhere ([`MissingTool`]). Both rules are values ([`Verdict`]),
//! tested without stopping any service.
//!
//! # Guarantees and limits
//!
//! * Names are unique (a UUIDv7 each) and safe as Redis prefixes (no glob characters) and
//!   as PostgreSQL schema names (no quoting needed).
//! * Clean-up removes what exists under the name when it runs; writers still running may
//!   add keys afterwards. Drop the namespace after the servers of the test stopped.
//! * Clean-up is idempotent (`UNLINK` of what a scan finds, `DROP SCHEMA IF EXISTS`):
//!   clearing early and again on drop, or a store dropping its own schema first, is fine.
//! * The crate knows no ticketrush type, so every crate can depend on it without a cycle;
//!   crate-specific fixtures (a store on the namespace) stay in each crate's
//!   `tests/common`.
//!
//! This crate's own tests prove both rules against a port nothing listens on (no service is
//! stopped) and the clean-up after a panic against the real services:
//! `cargo test -p ticketrush-test-support --all-features`.
#![warn(missing_docs)]

mod missing;
#[cfg(any(feature = "redis", feature = "postgres"))]
mod namespace;
#[cfg(feature = "postgres")]
pub mod postgres;
#[cfg(feature = "redis")]
pub mod redis;
mod service;

pub use missing::{MissingTool, Unreachable, Verdict};
#[cfg(any(feature = "redis", feature = "postgres"))]
pub use namespace::{CleanupError, Namespace};
pub use service::{
    MAX_LABEL_LEN, NAME_PREFIX, Service, database_url, is_ci, redis_url, unique_name,
};
