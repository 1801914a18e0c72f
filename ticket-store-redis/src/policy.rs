//! Sales policies: one JSON document per session.

use async_trait::async_trait;
use redis::Value;
use ticket_core::Result;
use ticket_core::ids::SessionId;
use ticket_core::model::policy::SalesPolicy;
use ticket_core::store::SalesPolicyStore;

use crate::reply::{json, opt_text, to_json, unavailable};
use crate::store::RedisStore;

#[async_trait]
impl SalesPolicyStore for RedisStore {
    async fn policy(&self, session: SessionId) -> Result<SalesPolicy> {
        self.session_def(session).await?;
        let raw: Value = redis::cmd("GET")
            .arg(self.inner.keys.session_key(session, "policy"))
            .query_async(&mut self.conn())
            .await
            .map_err(unavailable)?;
        match opt_text(&raw, "policy")? {
            Some(doc) => json(doc, "policy"),
            None => Ok(SalesPolicy::default()),
        }
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
