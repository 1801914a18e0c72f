//! The global hold index: which session each hold id belongs to (`P:hs`, a hash). Ids are
//! claimed in it with `HSETNX`, so no two holds anywhere share an id.

use redis::Value;
use ticket_core::ids::{HoldId, SessionId};
use ticket_core::{Error, InvalidInput, Result};

use crate::reply::{opt_text, unavailable};
use crate::store::RedisStore;

impl RedisStore {
    /// The session a hold belongs to, from the global hold index.
    pub(crate) async fn session_of(&self, id: HoldId) -> Result<SessionId> {
        let raw: Value = redis::cmd("HGET")
            .arg(self.inner.keys.hold_index())
            .arg(id.to_string())
            .query_async(&mut self.conn())
            .await
            .map_err(unavailable)?;
        match opt_text(&raw, "hold index")? {
            Some(s) => s
                .parse()
                .map_err(|_| Error::Corrupt(format!("hold index holds {s:?}"))),
            None => Err(Error::not_found("hold", id)),
        }
    }

    /// Claims `id` for `session` in the global index (`HSETNX`), so no two holds anywhere
    /// share an id.
    pub(crate) async fn claim_hold_id(&self, id: HoldId, session: SessionId) -> Result<()> {
        let set: i64 = redis::cmd("HSETNX")
            .arg(self.inner.keys.hold_index())
            .arg(id.to_string())
            .arg(session.to_string())
            .query_async(&mut self.conn())
            .await
            .map_err(unavailable)?;
        match set {
            1 => Ok(()),
            _ => Err(InvalidInput::Definition(format!("hold id {id} already used")).into()),
        }
    }

    pub(crate) async fn unclaim_hold_id(&self, id: HoldId) -> Result<()> {
        redis::cmd("HDEL")
            .arg(self.inner.keys.hold_index())
            .arg(id.to_string())
            .exec_async(&mut self.conn())
            .await
            .map_err(unavailable)
    }
}
