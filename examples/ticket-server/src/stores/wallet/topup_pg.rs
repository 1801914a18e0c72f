//! Top-ups in PostgreSQL, next to the ledger they credit.
//!
//! `wallet_topups` keeps each top-up as a document (`doc`) with the columns the rules need:
//! `UNIQUE (user_id, client_key)` (one top-up per client key), `status` (a partial index
//! finds the pending ones for the reconciler) and `version` (the compare-and-set token). A
//! replacement is one transaction: `UPDATE … WHERE version = $expected` (which locks the
//! row) and, for a credit, the ledger's own insert and balance update ([`PgWallet::post_in`]),
//! so a top-up is `SUCCEEDED` exactly when its credit is in the ledger.

use async_trait::async_trait;
use sqlx::Row;
use ticket_core::Timestamp;
use uuid::Uuid;

use super::pg::{PostError, corrupt, db_error};
use super::{
    EntryKind, LedgerKey, PgWallet, Replaced, Request, Result, TopUp, TopUpStore, WalletError,
    check_user,
};

fn parse_topup(text: &str) -> Result<TopUp> {
    serde_json::from_str(text).map_err(|e| corrupt(&format!("top-up: {e}")))
}

fn encode(t: &TopUp) -> Result<String> {
    serde_json::to_string(t).map_err(|e| WalletError::Unavailable(format!("encoding: {e}")))
}

fn version(t: &TopUp) -> Result<i64> {
    i64::try_from(t.version).map_err(|_| WalletError::InvalidRequest("version overflow".into()))
}

impl PgWallet {
    fn schema(&self) -> &str {
        &self.config().schema
    }

    async fn read_topup<'e, E>(&self, exec: E, user: &str, id: Uuid) -> Result<Option<TopUp>>
    where
        E: sqlx::PgExecutor<'e>,
    {
        let s = self.schema();
        let row = sqlx::query(&format!(
            "SELECT doc::text AS doc FROM \"{s}\".wallet_topups WHERE id = $1::uuid AND user_id = $2"
        ))
        .bind(id.to_string())
        .bind(user)
        .fetch_optional(exec)
        .await
        .map_err(db_error)?;
        row.map(|r| parse_topup(&r.try_get::<String, _>("doc").map_err(db_error)?))
            .transpose()
    }
}

#[async_trait]
impl TopUpStore for PgWallet {
    async fn open_topup(&self, new: &TopUp) -> Result<(TopUp, bool)> {
        check_user(&new.user)?;
        let s = self.schema();
        let inserted = sqlx::query(&format!(
            "INSERT INTO \"{s}\".wallet_topups \
             (id, user_id, client_key, status, version, created_ms, doc) \
             VALUES ($1::uuid, $2, $3, $4, $5, $6, $7::jsonb) \
             ON CONFLICT (user_id, client_key) DO NOTHING"
        ))
        .bind(new.id.to_string())
        .bind(&new.user)
        .bind(&new.client_key)
        .bind(new.status.as_str())
        .bind(version(new)?)
        .bind(new.created_at.as_millis())
        .bind(encode(new)?)
        .execute(self.pool())
        .await
        .map_err(db_error)?;
        if inserted.rows_affected() == 1 {
            return Ok((new.clone(), true));
        }
        let row = sqlx::query(&format!(
            "SELECT doc::text AS doc FROM \"{s}\".wallet_topups \
             WHERE user_id = $1 AND client_key = $2"
        ))
        .bind(&new.user)
        .bind(&new.client_key)
        .fetch_one(self.pool())
        .await
        .map_err(db_error)?;
        let doc: String = row.try_get("doc").map_err(db_error)?;
        Ok((parse_topup(&doc)?, false))
    }

    async fn topup(&self, user: &str, id: Uuid) -> Result<Option<TopUp>> {
        check_user(user)?;
        self.read_topup(self.pool(), user, id).await
    }

    async fn replace_topup(
        &self,
        expected: &TopUp,
        next: &TopUp,
        credit: Option<&LedgerKey>,
    ) -> Result<Replaced> {
        let user = expected.user.as_str();
        check_user(user)?;
        let s = self.schema();
        let mut tx = self.pool().begin().await.map_err(db_error)?;
        let updated = sqlx::query(&format!(
            "UPDATE \"{s}\".wallet_topups SET status = $3, version = $4, doc = $5::jsonb \
             WHERE id = $1::uuid AND user_id = $2 AND version = $6"
        ))
        .bind(expected.id.to_string())
        .bind(user)
        .bind(next.status.as_str())
        .bind(version(next)?)
        .bind(encode(next)?)
        .bind(version(expected)?)
        .execute(&mut *tx)
        .await
        .map_err(db_error)?;
        if updated.rows_affected() == 0 {
            let current = self.read_topup(&mut *tx, user, expected.id).await?;
            tx.rollback().await.map_err(db_error)?;
            return match current {
                Some(t) => Ok(Replaced::Changed(t)),
                None => Err(WalletError::InvalidRequest("no such top-up".into())),
            };
        }
        let entry = match credit {
            Some(key) => {
                let reference = next.id.to_string();
                let req = Request::new(EntryKind::Charge, user, key, next.amount, &reference)?;
                match self.post_in(&mut tx, &req, next.updated_at).await {
                    Ok(entry) => Some(entry),
                    // Dropping `tx` rolls back: the top-up stays as it was.
                    Err(PostError::Wallet(e)) => return Err(e),
                    Err(PostError::Db(e)) => return Err(db_error(e)),
                }
            }
            None => None,
        };
        tx.commit().await.map_err(db_error)?;
        Ok(Replaced::Done(next.clone(), entry))
    }

    async fn pending_topups(&self, limit: usize, _now: Timestamp) -> Result<Vec<TopUp>> {
        let s = self.schema();
        let rows = sqlx::query(&format!(
            "SELECT doc::text AS doc FROM \"{s}\".wallet_topups WHERE status = 'PENDING' \
             ORDER BY created_ms, id LIMIT $1"
        ))
        .bind(i64::try_from(limit).unwrap_or(i64::MAX))
        .fetch_all(self.pool())
        .await
        .map_err(db_error)?;
        rows.iter()
            .map(|r| parse_topup(&r.try_get::<String, _>("doc").map_err(db_error)?))
            .collect()
    }
}
