//! Idempotency records: one row per (scope, key), claimed with `INSERT … ON CONFLICT`.

use std::sync::atomic::Ordering;

use async_trait::async_trait;
use ticket_core::model::idempotency::{Claim, Fingerprint, IdempotencyKey, StoredOutcome};
use ticket_core::store::IdempotencyStore;
use ticket_core::{Error, Result, Timestamp};

use crate::store::{PgStore, db_error, decode};

/// Expired records are deleted (at most this many) once every this many claims.
const PURGE_EVERY: u64 = 4_096;

#[async_trait]
impl IdempotencyStore for PgStore {
    /// One `tr_idem_claim` call: the insert either creates the in-flight record, takes over
    /// a lapsed one, or locks the live one, which is then read back. Of concurrent claims
    /// exactly one inserts; the others wait on the row and see it.
    async fn claim(
        &self,
        key: &IdempotencyKey,
        fingerprint: Fingerprint,
        now: Timestamp,
        in_flight_until: Timestamp,
    ) -> Result<Claim> {
        if self.inner.claims.fetch_add(1, Ordering::Relaxed) % PURGE_EVERY == PURGE_EVERY - 1 {
            sqlx::query(
                "DELETE FROM idempotency WHERE ctid = ANY (ARRAY(
                     SELECT ctid FROM idempotency WHERE expires_at <= $1 LIMIT $2))",
            )
            .bind(now.as_millis())
            .bind(PURGE_EVERY as i64)
            .execute(&self.inner.pool)
            .await
            .map_err(db_error)?;
        }
        let answer: serde_json::Value =
            sqlx::query_scalar("SELECT tr_idem_claim($1, $2, $3, $4, $5)")
                .bind(&key.scope)
                .bind(&key.key)
                .bind(&fingerprint.0[..])
                .bind(now.as_millis())
                .bind(in_flight_until.as_millis())
                .fetch_one(&self.inner.pool)
                .await
                .map_err(db_error)?;
        if answer.get("started").is_some() {
            return Ok(Claim::Started);
        }
        if answer.get("same").and_then(serde_json::Value::as_bool) != Some(true) {
            return Err(Error::KeyReused);
        }
        match answer.get("outcome") {
            None | Some(serde_json::Value::Null) => Err(Error::InFlight),
            Some(o) => Ok(Claim::Completed(decode::<StoredOutcome>(
                o.clone(),
                "stored outcome",
            )?)),
        }
    }

    async fn complete(
        &self,
        key: &IdempotencyKey,
        fingerprint: Fingerprint,
        outcome: &StoredOutcome,
        expires_at: Timestamp,
    ) -> Result<()> {
        let outcome = serde_json::to_value(outcome)
            .map_err(|e| Error::Corrupt(format!("outcome not serialisable: {e}")))?;
        sqlx::query(
            "UPDATE idempotency SET outcome = $4, expires_at = $5
              WHERE scope = $1 AND key = $2 AND fingerprint = $3 AND outcome IS NULL",
        )
        .bind(&key.scope)
        .bind(&key.key)
        .bind(&fingerprint.0[..])
        .bind(outcome)
        .bind(expires_at.as_millis())
        .execute(&self.inner.pool)
        .await
        .map_err(db_error)?;
        Ok(())
    }

    async fn release(&self, key: &IdempotencyKey, fingerprint: Fingerprint) -> Result<()> {
        sqlx::query(
            "DELETE FROM idempotency
              WHERE scope = $1 AND key = $2 AND fingerprint = $3 AND outcome IS NULL",
        )
        .bind(&key.scope)
        .bind(&key.key)
        .bind(&fingerprint.0[..])
        .execute(&self.inner.pool)
        .await
        .map_err(db_error)?;
        Ok(())
    }
}
