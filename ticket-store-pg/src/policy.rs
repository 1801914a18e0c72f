//! Sales policies: one `jsonb` column of the session's row.

use async_trait::async_trait;
use ticket_core::ids::SessionId;
use ticket_core::model::policy::SalesPolicy;
use ticket_core::store::SalesPolicyStore;
use ticket_core::{Error, Result};

use crate::store::{PgStore, db_error, decode};

#[async_trait]
impl SalesPolicyStore for PgStore {
    async fn policy(&self, session: SessionId) -> Result<SalesPolicy> {
        let row: Option<Option<serde_json::Value>> =
            sqlx::query_scalar("SELECT policy FROM sessions WHERE id = $1")
                .bind(session.as_uuid())
                .fetch_optional(&self.inner.pool)
                .await
                .map_err(db_error)?;
        match row {
            None => Err(Error::not_found("session", session)),
            Some(None) => Ok(SalesPolicy::default()),
            Some(Some(p)) => decode(p, "stored policy"),
        }
    }

    /// One `UPDATE`: last writer wins, read-your-writes on the same database.
    async fn set_policy(&self, session: SessionId, policy: &SalesPolicy) -> Result<()> {
        let json = serde_json::to_value(policy)
            .map_err(|e| Error::Corrupt(format!("policy not serialisable: {e}")))?;
        let done = sqlx::query("UPDATE sessions SET policy = $2 WHERE id = $1")
            .bind(session.as_uuid())
            .bind(json)
            .execute(&self.inner.pool)
            .await
            .map_err(db_error)?;
        if done.rows_affected() == 0 {
            return Err(Error::not_found("session", session));
        }
        Ok(())
    }
}
