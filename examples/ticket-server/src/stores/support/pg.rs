//! What the app's PostgreSQL stores (accounts, wallet, throttle, security audit) share:
//! schema names and connection pools with `search_path` set to the app's schema. The tables
//! come from the app's migrations ([`crate::stores::migrate`]).

use std::str::FromStr;
use std::time::Duration;

use sqlx::postgres::{PgConnectOptions, PgPool, PgPoolOptions};

/// Checks a schema name: 1..=63 lower-case ASCII letters, digits or `_`, not starting with a
/// digit (so it needs no escaping beyond double quotes).
pub(crate) fn check_schema(schema: &str) -> Result<(), String> {
    let ok = !schema.is_empty()
        && schema.len() <= 63
        && schema.starts_with(|c: char| c.is_ascii_lowercase() || c == '_')
        && schema
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_');
    if ok {
        Ok(())
    } else {
        Err(
            "schema must be 1..=63 lower-case letters, digits or '_', not starting with a digit"
                .into(),
        )
    }
}

/// Connection options for `url` with `search_path` set to `schema` (checked).
pub(crate) fn options(url: &str, schema: &str) -> Result<PgConnectOptions, String> {
    check_schema(schema)?;
    let options = PgConnectOptions::from_str(url).map_err(|e| format!("database url: {e}"))?;
    Ok(options.options([("search_path", schema)]))
}

/// A pool of at least one connection, failing when none comes within `acquire_timeout`.
pub(crate) async fn pool(
    options: PgConnectOptions,
    max_connections: u32,
    acquire_timeout: Duration,
) -> sqlx::Result<PgPool> {
    PgPoolOptions::new()
        .max_connections(max_connections.max(1))
        .acquire_timeout(acquire_timeout)
        .connect_with(options)
        .await
}

/// Whether `e` is a database error with one of the SQLSTATE `codes`.
pub(crate) fn is_code(e: &sqlx::Error, codes: &[&str]) -> bool {
    e.as_database_error()
        .and_then(|d| d.code())
        .is_some_and(|c| codes.contains(&c.as_ref()))
}
