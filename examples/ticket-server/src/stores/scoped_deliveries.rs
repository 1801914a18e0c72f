//! One consumer's view of the library's delivery log.
//!
//! The library's `DeliveryLog` claims a delivery by (session, change, recipient) whatever
//! the consumer: two dispatchers that follow the same change kinds for different purposes
//! would share their claims, and whichever finished a delivery first would make the other
//! skip it. The server runs two over `HoldConfirmed`: the in-app notifications (consumer
//! `inbox`) and the checkout's capture follower (consumer `captures`); sharing claims would
//! lose either a buyer's notification or a capture's retry. [`ScopedDeliveries`] gives a
//! dispatcher claims and records of its own by naming the recipient `<scope>:<user>` in the
//! log (or `<scope>:#<sha-256 of the user>` when that would be longer than a user id may
//! be). Checkpoints are already per consumer and pass through unchanged.

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use sha2::{Digest, Sha256};
use ticket_core::model::delivery::{DeliveryClaim, DeliveryKey, DeliveryRecord};
use ticket_core::store::DeliveryLog;
use ticket_core::{Error, Result, SessionId, Timestamp, UserId};

/// A [`DeliveryLog`] whose claims and records are apart from every other scope's.
pub struct ScopedDeliveries {
    inner: Arc<dyn DeliveryLog>,
    scope: String,
}

impl std::fmt::Debug for ScopedDeliveries {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ScopedDeliveries")
            .field("scope", &self.scope)
            .finish_non_exhaustive()
    }
}

impl ScopedDeliveries {
    /// `inner`'s deliveries as scope `scope` (1 to 32 letters, digits, `_` or `-`) sees them.
    pub fn new(inner: Arc<dyn DeliveryLog>, scope: &str) -> Result<Self> {
        let ok = (1..=32).contains(&scope.len())
            && scope
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-');
        if !ok {
            return Err(Error::Corrupt(format!("bad delivery scope {scope:?}")));
        }
        Ok(Self {
            inner,
            scope: scope.to_owned(),
        })
    }

    /// The key as the log keeps it for this scope.
    fn scoped(&self, key: &DeliveryKey) -> Result<DeliveryKey> {
        let user = key.recipient.as_str();
        let readable = format!("{}:{user}", self.scope);
        let recipient = if readable.len() <= UserId::MAX_LEN {
            readable
        } else {
            format!("{}:#{}", self.scope, hex::encode(Sha256::digest(user)))
        };
        Ok(DeliveryKey {
            session: key.session,
            seq: key.seq,
            recipient: UserId::new(recipient).map_err(Error::Invalid)?,
        })
    }
}

#[async_trait]
impl DeliveryLog for ScopedDeliveries {
    async fn claim_delivery(
        &self,
        key: &DeliveryKey,
        holder: &str,
        now: Timestamp,
        lease: Duration,
    ) -> Result<DeliveryClaim> {
        let claim = self
            .inner
            .claim_delivery(&self.scoped(key)?, holder, now, lease)
            .await?;
        Ok(match claim {
            DeliveryClaim::Done(mut record) => {
                record.key = key.clone();
                DeliveryClaim::Done(record)
            }
            other => other,
        })
    }

    async fn finish_delivery(&self, record: &DeliveryRecord) -> Result<bool> {
        let scoped = DeliveryRecord {
            key: self.scoped(&record.key)?,
            ..record.clone()
        };
        self.inner.finish_delivery(&scoped).await
    }

    async fn delivery(&self, key: &DeliveryKey) -> Result<Option<DeliveryRecord>> {
        Ok(self
            .inner
            .delivery(&self.scoped(key)?)
            .await?
            .map(|mut record| {
                record.key = key.clone();
                record
            }))
    }

    async fn checkpoint(&self, consumer: &str, session: SessionId) -> Result<u64> {
        self.inner.checkpoint(consumer, session).await
    }

    async fn advance_checkpoint(&self, consumer: &str, session: SessionId, seq: u64) -> Result<()> {
        self.inner.advance_checkpoint(consumer, session, seq).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ticket_core::memory::MemoryStore;
    use ticket_core::model::delivery::DeliveryStatus;

    #[tokio::test]
    async fn scopes_keep_their_claims_and_records_apart() {
        let log = MemoryStore::new().stores().deliveries;
        let (inbox, captures) = (
            ScopedDeliveries::new(log.clone(), "inbox").unwrap(),
            ScopedDeliveries::new(log.clone(), "captures").unwrap(),
        );
        let now = Timestamp::from_millis(1_000);
        let key = DeliveryKey {
            session: SessionId::new_at(now),
            seq: 7,
            recipient: UserId::new("0192f0c6-0000-7000-8000-000000000001").unwrap(),
        };
        let lease = Duration::from_secs(30);
        assert_eq!(
            inbox.claim_delivery(&key, "p1", now, lease).await.unwrap(),
            DeliveryClaim::Claimed
        );
        // Another scope claims the same change for itself; the unscoped log too.
        assert_eq!(
            captures
                .claim_delivery(&key, "p1", now, lease)
                .await
                .unwrap(),
            DeliveryClaim::Claimed
        );
        assert_eq!(
            log.claim_delivery(&key, "p1", now, lease).await.unwrap(),
            DeliveryClaim::Claimed
        );
        let record = DeliveryRecord {
            key: key.clone(),
            status: DeliveryStatus::Sent,
            attempts: 1,
            last_error: None,
            at: now,
            by: "p1".into(),
        };
        assert!(inbox.finish_delivery(&record).await.unwrap());
        // Finished in its scope only, and read back under the caller's key.
        assert_eq!(inbox.delivery(&key).await.unwrap(), Some(record.clone()));
        assert_eq!(captures.delivery(&key).await.unwrap(), None);
        assert_eq!(log.delivery(&key).await.unwrap(), None);
        match inbox.claim_delivery(&key, "p2", now, lease).await.unwrap() {
            DeliveryClaim::Done(r) => assert_eq!(r, record),
            other => panic!("{other:?}"),
        }
        // A recipient too long to prefix is hashed, still apart per scope.
        let long = DeliveryKey {
            recipient: UserId::new("u".repeat(UserId::MAX_LEN)).unwrap(),
            ..key.clone()
        };
        assert_eq!(
            inbox.claim_delivery(&long, "p1", now, lease).await.unwrap(),
            DeliveryClaim::Claimed
        );
        assert_eq!(
            captures
                .claim_delivery(&long, "p1", now, lease)
                .await
                .unwrap(),
            DeliveryClaim::Claimed
        );
        assert!(ScopedDeliveries::new(log, "no spaces").is_err());
    }
}
