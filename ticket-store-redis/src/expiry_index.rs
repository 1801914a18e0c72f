//! The per-session expiry index seen from Rust: which sessions list holds expiring by an
//! instant. The index itself (`expb`, `exp:<second>`) is written and read by the scripts
//! (`lua/lib/commit.lua`, `lua/expire.lua`, `lua/paying_read.lua`).

use ticket_core::ids::SessionId;
use ticket_core::{Result, Timestamp};

use crate::reply::unavailable;
use crate::store::RedisStore;

impl RedisStore {
    /// The sessions whose expiry index has a second at or before the second of `at` (the
    /// second of `at` itself may list nothing due by `at` yet), in the order of
    /// [`RedisStore::all_sessions`]: one pipelined `ZCOUNT` over every session.
    pub(crate) async fn sessions_expiring_by(&self, at: Timestamp) -> Result<Vec<SessionId>> {
        let sessions = self.all_sessions().await?;
        if sessions.is_empty() {
            return Ok(sessions);
        }
        let second = at.as_millis().div_euclid(1000);
        let mut pipe = redis::pipe();
        for s in &sessions {
            pipe.cmd("ZCOUNT")
                .arg(self.inner.keys.session_key(*s, "expb"))
                .arg("-inf")
                .arg(second);
        }
        let counts: Vec<u64> = pipe
            .query_async(&mut self.conn())
            .await
            .map_err(unavailable)?;
        Ok(sessions
            .into_iter()
            .zip(counts)
            .filter_map(|(s, n)| (n > 0).then_some(s))
            .collect())
    }
}
