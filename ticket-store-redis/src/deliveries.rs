//! Notification deliveries, dispatcher checkpoints and leases: each operation is one small
//! script on one key, so it is atomic.
//!
//! * Deliveries of a session: the hash `P:{s:ID}:dlv`, field `<seq>:<recipient>`, value a
//!   claim (`C`, holder, end of the lease) or the finished record (`D`, JSON) — the record
//!   replaces the claim and is never changed (`lua/delivery_claim.lua`,
//!   `lua/delivery_finish.lua`).
//! * Checkpoints of a session: the hash `P:{s:ID}:ckpt`, consumer → sequence, only raised
//!   (`lua/checkpoint.lua`).
//! * Leases: `P:lease:<name>`, holder and end (`lua/lease.lua`). Time is the caller's clock
//!   (as for every time-dependent operation), so no Redis TTL is set.

use std::time::Duration;

use async_trait::async_trait;
use redis::Value;
use ticket_core::ids::SessionId;
use ticket_core::model::delivery::{DeliveryClaim, DeliveryKey, DeliveryRecord};
use ticket_core::store::{DeliveryLog, Leases};
use ticket_core::{Error, Result, Timestamp};

use crate::codec::{SEP, check_text};
use crate::reply::{at, int, json, opt_text, tagged, text, to_json, unavailable};
use crate::scripts::Call;
use crate::store::RedisStore;

fn field(key: &DeliveryKey) -> String {
    format!("{}:{}", key.seq, key.recipient.as_str())
}

impl RedisStore {
    fn deliveries_key(&self, session: SessionId) -> String {
        self.inner.keys.session_key(session, "dlv")
    }
}

/// A finished delivery's record from its stored value (`D` + SEP + JSON).
fn finished(v: &str) -> Result<Option<DeliveryRecord>> {
    match v.strip_prefix('D').and_then(|r| r.strip_prefix(SEP)) {
        Some(doc) => json(doc, "delivery record").map(Some),
        None => Ok(None),
    }
}

#[async_trait]
impl DeliveryLog for RedisStore {
    async fn claim_delivery(
        &self,
        key: &DeliveryKey,
        holder: &str,
        now: Timestamp,
        lease: Duration,
    ) -> Result<DeliveryClaim> {
        check_text("delivery holder", holder)?;
        let mut inv = Call::new(
            &self.inner.scripts.delivery_claim,
            self.deliveries_key(key.session),
        );
        inv.arg(field(key))
            .arg(holder)
            .arg(now.as_millis())
            .arg(now.plus(lease).as_millis());
        let reply = self.run(&inv).await?;
        let (tag, rest) = tagged(&reply, "claim_delivery")?;
        match tag {
            "claimed" => Ok(DeliveryClaim::Claimed),
            "busy" => Ok(DeliveryClaim::Busy),
            "done" => Ok(DeliveryClaim::Done(json(
                text(at(rest, 0, "claim_delivery")?, "delivery record")?,
                "delivery record",
            )?)),
            other => Err(Error::Corrupt(format!(
                "claim_delivery reply tag {other:?}"
            ))),
        }
    }

    async fn finish_delivery(&self, record: &DeliveryRecord) -> Result<bool> {
        let mut inv = Call::new(
            &self.inner.scripts.delivery_finish,
            self.deliveries_key(record.key.session),
        );
        inv.arg(field(&record.key)).arg(to_json(record)?);
        let reply = self.run(&inv).await?;
        Ok(int(&reply, "finish_delivery")? == 1)
    }

    async fn delivery(&self, key: &DeliveryKey) -> Result<Option<DeliveryRecord>> {
        let raw: Value = redis::cmd("HGET")
            .arg(self.deliveries_key(key.session))
            .arg(field(key))
            .query_async(&mut self.conn())
            .await
            .map_err(unavailable)?;
        match opt_text(&raw, "delivery")? {
            Some(v) => finished(v),
            None => Ok(None),
        }
    }

    async fn checkpoint(&self, consumer: &str, session: SessionId) -> Result<u64> {
        let seq: Option<u64> = redis::cmd("HGET")
            .arg(self.inner.keys.session_key(session, "ckpt"))
            .arg(consumer)
            .query_async(&mut self.conn())
            .await
            .map_err(unavailable)?;
        Ok(seq.unwrap_or(0))
    }

    async fn advance_checkpoint(&self, consumer: &str, session: SessionId, seq: u64) -> Result<()> {
        let mut inv = Call::new(
            &self.inner.scripts.checkpoint,
            self.inner.keys.session_key(session, "ckpt"),
        );
        inv.arg(consumer).arg(seq);
        self.run(&inv).await.map(drop)
    }
}

#[async_trait]
impl Leases for RedisStore {
    async fn try_lease(
        &self,
        name: &str,
        holder: &str,
        now: Timestamp,
        ttl: Duration,
    ) -> Result<bool> {
        check_text("lease holder", holder)?;
        let mut inv = Call::new(&self.inner.scripts.lease, self.inner.keys.lease(name));
        inv.arg(holder)
            .arg(now.as_millis())
            .arg(now.plus(ttl).as_millis());
        let reply = self.run(&inv).await?;
        Ok(int(&reply, "try_lease")? == 1)
    }
}
