//! Idempotency records: one hash per key, claimed atomically by a script (the `SET NX` of an
//! in-flight marker, plus the fingerprint comparison and the lapse of expired records).

use async_trait::async_trait;
use redis::Value;
use ticket_core::model::idempotency::{Claim, Fingerprint, IdempotencyKey, StoredOutcome};
use ticket_core::store::IdempotencyStore;
use ticket_core::{Error, Result, Timestamp};

use crate::reply::{at, json, tagged, text, to_json};
use crate::scripts::Call;
use crate::store::RedisStore;

#[async_trait]
impl IdempotencyStore for RedisStore {
    async fn claim(
        &self,
        key: &IdempotencyKey,
        fingerprint: Fingerprint,
        now: Timestamp,
        in_flight_until: Timestamp,
    ) -> Result<Claim> {
        let mut inv = Call::new(
            &self.inner.scripts.idempotency,
            self.inner.keys.idempotency(key),
        );
        inv.arg("claim")
            .arg(fingerprint.to_hex())
            .arg(now.as_millis())
            .arg(in_flight_until.as_millis());
        let reply = self.run(&inv).await?;
        let (tag, rest) = tagged(&reply, "claim")?;
        match tag {
            "started" => Ok(Claim::Started),
            "done" => Ok(Claim::Completed(json::<StoredOutcome>(
                text(at(rest, 0, "claim")?, "outcome")?,
                "outcome",
            )?)),
            "inflight" => Err(Error::InFlight),
            "reused" => Err(Error::KeyReused),
            other => Err(Error::Corrupt(format!("claim reply tag {other:?}"))),
        }
    }

    async fn complete(
        &self,
        key: &IdempotencyKey,
        fingerprint: Fingerprint,
        outcome: &StoredOutcome,
        expires_at: Timestamp,
    ) -> Result<()> {
        let mut inv = Call::new(
            &self.inner.scripts.idempotency,
            self.inner.keys.idempotency(key),
        );
        inv.arg("complete")
            .arg(fingerprint.to_hex())
            .arg(to_json(outcome)?)
            .arg(expires_at.as_millis());
        let _: Value = self.run(&inv).await?;
        Ok(())
    }

    async fn release(&self, key: &IdempotencyKey, fingerprint: Fingerprint) -> Result<()> {
        let mut inv = Call::new(
            &self.inner.scripts.idempotency,
            self.inner.keys.idempotency(key),
        );
        inv.arg("release").arg(fingerprint.to_hex());
        let _: Value = self.run(&inv).await?;
        Ok(())
    }
}
