//! Notification deliveries, dispatcher checkpoints and leases: each operation is one
//! statement (or one function call) on its row, atomic through `INSERT … ON CONFLICT`.

use std::time::Duration;

use async_trait::async_trait;
use serde::Deserialize;
use ticket_core::ids::SessionId;
use ticket_core::model::delivery::{DeliveryClaim, DeliveryKey, DeliveryRecord, DeliveryStatus};
use ticket_core::store::{DeliveryLog, Leases};
use ticket_core::{Error, Result, Timestamp};

use crate::store::{PgStore, db_error, decode};

fn seq_i64(seq: u64) -> i64 {
    i64::try_from(seq).unwrap_or(i64::MAX)
}

/// How a finished delivery is stored (the key comes from the caller).
#[derive(Deserialize)]
struct Finished {
    status: String,
    attempts: i32,
    last_error: Option<String>,
    at: i64,
    by: String,
}

impl Finished {
    fn record(self, key: &DeliveryKey) -> Result<DeliveryRecord> {
        Ok(DeliveryRecord {
            key: key.clone(),
            status: DeliveryStatus::parse(&self.status)
                .ok_or_else(|| Error::Corrupt(format!("delivery status {:?}", self.status)))?,
            attempts: u32::try_from(self.attempts)
                .map_err(|_| Error::Corrupt(format!("attempts {}", self.attempts)))?,
            last_error: self.last_error,
            at: Timestamp::from_millis(self.at),
            by: self.by,
        })
    }
}

#[async_trait]
impl DeliveryLog for PgStore {
    /// One `tr_claim_delivery` call (`sql/deliveries.sql`).
    async fn claim_delivery(
        &self,
        key: &DeliveryKey,
        holder: &str,
        now: Timestamp,
        lease: Duration,
    ) -> Result<DeliveryClaim> {
        let answer: serde_json::Value =
            sqlx::query_scalar("SELECT tr_claim_delivery($1, $2, $3, $4, $5, $6)")
                .bind(key.session.as_uuid())
                .bind(seq_i64(key.seq))
                .bind(key.recipient.as_str())
                .bind(holder)
                .bind(now.as_millis())
                .bind(now.plus(lease).as_millis())
                .fetch_one(&self.inner.pool)
                .await
                .map_err(db_error)?;
        if answer.get("claimed").is_some() {
            return Ok(DeliveryClaim::Claimed);
        }
        if answer.get("busy").is_some() {
            return Ok(DeliveryClaim::Busy);
        }
        let done: Finished = decode(
            answer.get("done").cloned().unwrap_or_default(),
            "finished delivery",
        )?;
        Ok(DeliveryClaim::Done(done.record(key)?))
    }

    /// One `INSERT … ON CONFLICT DO UPDATE … WHERE status IS NULL`: the first finish writes
    /// the record (over a claim, or where none was made), later ones find it and change
    /// nothing.
    async fn finish_delivery(&self, record: &DeliveryRecord) -> Result<bool> {
        let attempts = i32::try_from(record.attempts).unwrap_or(i32::MAX);
        let written = sqlx::query(
            "INSERT INTO deliveries AS d (session_id, seq, recipient, status, attempts, last_error,
                                          at, finished_by)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8)
             ON CONFLICT (session_id, seq, recipient) DO UPDATE
                SET status = EXCLUDED.status, attempts = EXCLUDED.attempts,
                    last_error = EXCLUDED.last_error, at = EXCLUDED.at,
                    finished_by = EXCLUDED.finished_by,
                    holder = NULL, lease_until = NULL
              WHERE d.status IS NULL",
        )
        .bind(record.key.session.as_uuid())
        .bind(seq_i64(record.key.seq))
        .bind(record.key.recipient.as_str())
        .bind(record.status.as_str())
        .bind(attempts)
        .bind(record.last_error.as_deref())
        .bind(record.at.as_millis())
        .bind(&record.by)
        .execute(&self.inner.pool)
        .await
        .map_err(db_error)?;
        Ok(written.rows_affected() == 1)
    }

    async fn delivery(&self, key: &DeliveryKey) -> Result<Option<DeliveryRecord>> {
        let row: Option<serde_json::Value> = sqlx::query_scalar(
            "SELECT jsonb_build_object('status', status, 'attempts', attempts,
                                       'last_error', last_error, 'at', at, 'by', finished_by)
               FROM deliveries
              WHERE session_id = $1 AND seq = $2 AND recipient = $3 AND status IS NOT NULL",
        )
        .bind(key.session.as_uuid())
        .bind(seq_i64(key.seq))
        .bind(key.recipient.as_str())
        .fetch_optional(&self.inner.pool)
        .await
        .map_err(db_error)?;
        row.map(|r| decode::<Finished>(r, "finished delivery")?.record(key))
            .transpose()
    }

    async fn checkpoint(&self, consumer: &str, session: SessionId) -> Result<u64> {
        let seq: Option<i64> = sqlx::query_scalar(
            "SELECT seq FROM checkpoints WHERE consumer = $1 AND session_id = $2",
        )
        .bind(consumer)
        .bind(session.as_uuid())
        .fetch_optional(&self.inner.pool)
        .await
        .map_err(db_error)?;
        Ok(seq.map_or(0, |s| u64::try_from(s).unwrap_or(0)))
    }

    /// `INSERT … ON CONFLICT DO UPDATE SET seq = greatest(…)`: only forward.
    async fn advance_checkpoint(&self, consumer: &str, session: SessionId, seq: u64) -> Result<()> {
        sqlx::query(
            "INSERT INTO checkpoints AS c (consumer, session_id, seq) VALUES ($1, $2, $3)
             ON CONFLICT (consumer, session_id) DO UPDATE SET seq = greatest(c.seq, EXCLUDED.seq)
              WHERE c.seq < EXCLUDED.seq",
        )
        .bind(consumer)
        .bind(session.as_uuid())
        .bind(seq_i64(seq))
        .execute(&self.inner.pool)
        .await
        .map_err(db_error)?;
        Ok(())
    }
}

#[async_trait]
impl Leases for PgStore {
    /// One `INSERT … ON CONFLICT DO UPDATE … WHERE` (the holder renews, or the lease ran out):
    /// racing callers for a free lease are serialised on its row, and exactly one inserts or
    /// updates it.
    async fn try_lease(
        &self,
        name: &str,
        holder: &str,
        now: Timestamp,
        ttl: Duration,
    ) -> Result<bool> {
        let granted = sqlx::query(
            "INSERT INTO leases AS l (name, holder, until) VALUES ($1, $2, $3)
             ON CONFLICT (name) DO UPDATE SET holder = EXCLUDED.holder, until = EXCLUDED.until
              WHERE l.holder = EXCLUDED.holder OR l.until <= $4",
        )
        .bind(name)
        .bind(holder)
        .bind(now.plus(ttl).as_millis())
        .bind(now.as_millis())
        .execute(&self.inner.pool)
        .await
        .map_err(db_error)?;
        Ok(granted.rows_affected() == 1)
    }
}
