//! Sales policies: one JSON document per session.

use async_trait::async_trait;
use redis::Value;
use ticket_core::Result;
use ticket_core::backend::coalesce::BatchKind;
use ticket_core::ids::SessionId;
use ticket_core::model::policy::SalesPolicy;
use ticket_core::store::SalesPolicyStore;

use crate::reply::{json, opt_text, to_json, unavailable};
use crate::store::{RedisStore, batch_session};

/// Reads of one session's policy, coalesced (see [`ticket_core::backend::coalesce`]): one
/// `GET` answers every read of the session that arrived while earlier `GET`s of it were in
/// flight. A read never joins a `GET` already sent, so it sees every `set_policy` that
/// returned before it started, as a `GET` of its own would: nothing is cached.
pub(crate) struct PolicyRead;

impl BatchKind for PolicyRead {
    type Key = SessionId;
    type Request = ();
    type Answer = SalesPolicy;
    type Context = RedisStore;

    async fn run(
        store: &RedisStore,
        sessions: &[SessionId],
        reqs: Vec<()>,
    ) -> Result<Vec<SalesPolicy>> {
        let session = batch_session(sessions)?;
        let raw: Value = redis::cmd("GET")
            .arg(store.inner.keys.session_key(session, "policy"))
            .query_async(&mut store.conn())
            .await
            .map_err(unavailable)?;
        let policy = match opt_text(&raw, "policy")? {
            Some(doc) => json(doc, "policy")?,
            None => SalesPolicy::default(),
        };
        Ok(vec![policy; reqs.len()])
    }
}

#[async_trait]
impl SalesPolicyStore for RedisStore {
    /// The policy as stored when the read started (or later): concurrent reads of one
    /// session share one `GET` (see `PolicyRead`).
    async fn policy(&self, session: SessionId) -> Result<SalesPolicy> {
        self.session_def(session).await?;
        self.inner.batches.policies.submit(self, session, ()).await
    }

    /// One `SET`: last writer wins, and every later read sees it.
    async fn set_policy(&self, session: SessionId, policy: &SalesPolicy) -> Result<()> {
        self.session_def(session).await?;
        redis::cmd("SET")
            .arg(self.inner.keys.session_key(session, "policy"))
            .arg(to_json(policy)?)
            .exec_async(&mut self.conn())
            .await
            .map_err(unavailable)
    }
}
