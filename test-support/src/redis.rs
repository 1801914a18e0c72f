//! Redis: reaching the server, and counting or deleting the keys under a prefix.
//!
//! Deleting is `SCAN MATCH <prefix>*` + `UNLINK`, 1 000 keys a step. It is not atomic with
//! writers still running: stop them first (a key written after its step of the scan
//! survives; a [`Namespace`](crate::Namespace) that is dropped after the test's servers
//! stopped finds it).

use redis::aio::MultiplexedConnection;

/// A connection to `url`, checked with `PING`.
pub async fn connect(url: &str) -> redis::RedisResult<MultiplexedConnection> {
    let mut conn = redis::Client::open(url)?
        .get_multiplexed_async_connection()
        .await?;
    redis::cmd("PING").exec_async(&mut conn).await?;
    Ok(conn)
}

/// `prefix` with Redis's glob characters escaped, followed by `*`: the pattern of exactly
/// the keys that start with `prefix`.
fn pattern(prefix: &str) -> String {
    let mut p = String::with_capacity(prefix.len() + 1);
    for c in prefix.chars() {
        if matches!(c, '*' | '?' | '[' | ']' | '\\') {
            p.push('\\');
        }
        p.push(c);
    }
    p.push('*');
    p
}

/// Visits every key that starts with `prefix`, a `SCAN` step at a time, and calls `each`
/// with the step's keys (never empty); returns what the calls returned, summed.
async fn scan<F>(url: &str, prefix: &str, mut each: F) -> redis::RedisResult<u64>
where
    F: AsyncFnMut(&mut MultiplexedConnection, Vec<String>) -> redis::RedisResult<u64>,
{
    let mut conn = connect(url).await?;
    let pattern = pattern(prefix);
    let (mut cursor, mut total) = (0u64, 0u64);
    loop {
        let (next, keys): (u64, Vec<String>) = redis::cmd("SCAN")
            .arg(cursor)
            .arg("MATCH")
            .arg(&pattern)
            .arg("COUNT")
            .arg(1000)
            .query_async(&mut conn)
            .await?;
        if !keys.is_empty() {
            total += each(&mut conn, keys).await?;
        }
        if next == 0 {
            return Ok(total);
        }
        cursor = next;
    }
}

/// Deletes every key of the Redis at `url` that starts with `prefix`; how many went.
pub async fn delete_prefix(url: &str, prefix: &str) -> redis::RedisResult<u64> {
    scan(url, prefix, async |conn, keys| {
        redis::cmd("UNLINK").arg(&keys).query_async(conn).await
    })
    .await
}

/// How many keys of the Redis at `url` start with `prefix`.
pub async fn count_prefix(url: &str, prefix: &str) -> redis::RedisResult<u64> {
    scan(url, prefix, async |_, keys| Ok(keys.len() as u64)).await
}

#[cfg(test)]
mod tests {
    use super::pattern;

    #[test]
    fn a_prefix_matches_itself_only() {
        assert_eq!(pattern("tr_test_a_01"), "tr_test_a_01*");
        assert_eq!(pattern(r"a*b?[c]\"), r"a\*b\?\[c\]\\*");
    }
}
