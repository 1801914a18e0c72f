//! Checkouts to poll: PAYING holds due by an instant, read from each session's expiry index
//! by `lua/paying_read.lua`, which changes nothing.

use ticket_core::ids::{HoldId, SessionId};
use ticket_core::model::hold::Hold;
use ticket_core::{Error, Result, Timestamp};

use crate::codec::hold;
use crate::reply::{array, at, text};
use crate::store::RedisStore;

impl RedisStore {
    /// Up to `limit` PAYING holds of every session whose TTL ends at or before `before`,
    /// ordered by (expiry, id): the sessions whose expiry index reaches `before` are read
    /// one script call each (at most `limit` holds per session, already in that order), then
    /// merged and cut to `limit`.
    pub(crate) async fn paying_due_all(
        &self,
        before: Timestamp,
        limit: usize,
    ) -> Result<Vec<Hold>> {
        if limit == 0 {
            return Ok(Vec::new());
        }
        let mut out = Vec::new();
        for session in self.sessions_expiring_by(before).await? {
            out.extend(self.paying_due_in(session, before, limit).await?);
        }
        out.sort_by_key(|h| (h.expires_at, h.id));
        out.truncate(limit);
        Ok(out)
    }

    /// One session's PAYING holds due by `before`, at most `limit`, ordered by (expiry, id).
    async fn paying_due_in(
        &self,
        session: SessionId,
        before: Timestamp,
        limit: usize,
    ) -> Result<Vec<Hold>> {
        let mut inv = self.session_call(&self.inner.scripts.paying_read, session);
        inv.arg(before.as_millis()).arg(limit);
        let reply = self.run(&inv).await?;
        array(&reply, "paying_due")?
            .iter()
            .map(|pair| {
                let p = array(pair, "paying hold")?;
                let id: HoldId = text(at(p, 0, "paying hold")?, "hold id")?
                    .parse()
                    .map_err(|_| Error::Corrupt("paying hold id".into()))?;
                hold(session, id, at(p, 1, "paying hold")?)
            })
            .collect()
    }
}
