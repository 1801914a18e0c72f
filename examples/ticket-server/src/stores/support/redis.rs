//! What the app's Redis stores (accounts, wallet, throttle, security audit) share: key
//! prefixes and a checked self-reconnecting connection.

use std::time::Duration;

use redis::aio::{ConnectionManager, ConnectionManagerConfig};

/// Checks a key prefix: 1..=128 ASCII letters, digits, `-`, `_`, `.` or `:` (safe in keys and
/// in a `SCAN MATCH` pattern: no glob characters).
pub(crate) fn check_prefix(prefix: &str) -> Result<(), String> {
    let ok = !prefix.is_empty()
        && prefix.len() <= 128
        && prefix
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.' | ':'));
    if ok {
        Ok(())
    } else {
        Err("redis key prefix must be 1..=128 ASCII letters, digits, '-', '_', '.' or ':'".into())
    }
}

/// Why [`connect`] failed.
#[derive(Debug)]
pub(crate) enum ConnectError {
    /// The URL is malformed.
    Url(String),
    /// Redis could not be reached or did not answer `PING`.
    Redis(redis::RedisError),
}

/// A multiplexed connection to `url` that reconnects by itself (two retries, at most 500 ms
/// apart), checked with `PING`.
pub(crate) async fn connect(
    url: &str,
    response_timeout: Duration,
    connection_timeout: Duration,
) -> Result<ConnectionManager, ConnectError> {
    let client =
        redis::Client::open(url).map_err(|e| ConnectError::Url(format!("redis url: {e}")))?;
    let config = ConnectionManagerConfig::new()
        .set_response_timeout(response_timeout)
        .set_connection_timeout(connection_timeout)
        .set_number_of_retries(2)
        .set_max_delay(500);
    let mut conn = ConnectionManager::new_with_config(client, config)
        .await
        .map_err(ConnectError::Redis)?;
    let _: String = redis::cmd("PING")
        .query_async(&mut conn)
        .await
        .map_err(ConnectError::Redis)?;
    Ok(conn)
}
