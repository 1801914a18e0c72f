//! Redis housekeeping shared by the app's Redis stores.

use redis::aio::ConnectionManager;

/// Deletes every key matching `pattern` (`SCAN` + `UNLINK`, 1 000 keys a step) and returns
/// how many went. Not atomic with concurrent writers: for tests and tearing down a demo.
pub(crate) async fn unlink_matching(
    conn: &mut ConnectionManager,
    pattern: &str,
) -> redis::RedisResult<u64> {
    let mut cursor: u64 = 0;
    let mut deleted = 0u64;
    loop {
        let (next, keys): (u64, Vec<String>) = redis::cmd("SCAN")
            .arg(cursor)
            .arg("MATCH")
            .arg(pattern)
            .arg("COUNT")
            .arg(1000)
            .query_async(conn)
            .await?;
        if !keys.is_empty() {
            let n: u64 = redis::cmd("UNLINK").arg(&keys).query_async(conn).await?;
            deleted += n;
        }
        if next == 0 {
            return Ok(deleted);
        }
        cursor = next;
    }
}
