//! Idempotency records on the in-memory backend: a sharded map whose entry lock makes each
//! claim atomic.

use std::sync::atomic::Ordering;

use async_trait::async_trait;
use dashmap::Entry;

use super::MemoryStore;
use crate::clock::Timestamp;
use crate::error::{Error, Result};
use crate::model::idempotency::{
    Claim, Fingerprint, IdempotencyKey, IdempotencyRecord, StoredOutcome,
};
use crate::store::IdempotencyStore;

/// Expired records are dropped once every this many claims (amortised clean-up).
const PURGE_EVERY: u64 = 4_096;

#[async_trait]
impl IdempotencyStore for MemoryStore {
    async fn claim(
        &self,
        key: &IdempotencyKey,
        fingerprint: Fingerprint,
        now: Timestamp,
        in_flight_until: Timestamp,
    ) -> Result<Claim> {
        let n = self
            .inner
            .idempotency_claims
            .fetch_add(1, Ordering::Relaxed);
        if n % PURGE_EVERY == PURGE_EVERY - 1 {
            self.inner.idempotency.retain(|_, r| r.expires_at > now);
        }
        let in_flight = IdempotencyRecord {
            fingerprint,
            outcome: None,
            expires_at: in_flight_until,
        };
        match self.inner.idempotency.entry(key.clone()) {
            Entry::Vacant(v) => {
                v.insert(in_flight);
                Ok(Claim::Started)
            }
            Entry::Occupied(mut o) => {
                let r = o.get();
                if r.expires_at <= now {
                    o.insert(in_flight);
                    Ok(Claim::Started)
                } else if r.fingerprint != fingerprint {
                    Err(Error::KeyReused)
                } else {
                    match &r.outcome {
                        None => Err(Error::InFlight),
                        Some(out) => Ok(Claim::Completed(out.clone())),
                    }
                }
            }
        }
    }

    async fn complete(
        &self,
        key: &IdempotencyKey,
        fingerprint: Fingerprint,
        outcome: &StoredOutcome,
        expires_at: Timestamp,
    ) -> Result<()> {
        if let Some(mut r) = self.inner.idempotency.get_mut(key)
            && r.fingerprint == fingerprint
            && r.outcome.is_none()
        {
            r.outcome = Some(outcome.clone());
            r.expires_at = expires_at;
        }
        Ok(())
    }

    async fn release(&self, key: &IdempotencyKey, fingerprint: Fingerprint) -> Result<()> {
        self.inner.idempotency.remove_if(key, |_, r| {
            r.fingerprint == fingerprint && r.outcome.is_none()
        });
        Ok(())
    }
}
