//! TEMP (drop before merge): stand-ins for the issue-17 traits so dependants compile on
//! this branch; every method answers `Unavailable`. The real implementation lands on main.

use std::time::Duration;

use async_trait::async_trait;
use ticket_core::Result;
use ticket_core::clock::Timestamp;
use ticket_core::ids::SessionId;
use ticket_core::model::change::ChangePage;
use ticket_core::model::delivery::{DeliveryClaim, DeliveryKey, DeliveryRecord};
use ticket_core::store::{ChangeFeed, DeliveryLog, Leases};

use crate::RedisStore;

fn not_yet<T>() -> Result<T> {
    Err(ticket_core::Error::Unavailable(
        "not implemented on this branch yet".into(),
    ))
}

#[async_trait]
impl ChangeFeed for RedisStore {
    async fn changes(&self, _session: SessionId, _after: u64, _limit: usize) -> Result<ChangePage> {
        not_yet()
    }
}

#[async_trait]
impl DeliveryLog for RedisStore {
    async fn claim_delivery(
        &self,
        _key: &DeliveryKey,
        _holder: &str,
        _now: Timestamp,
        _lease: Duration,
    ) -> Result<DeliveryClaim> {
        not_yet()
    }

    async fn finish_delivery(&self, _record: &DeliveryRecord) -> Result<bool> {
        not_yet()
    }

    async fn delivery(&self, _key: &DeliveryKey) -> Result<Option<DeliveryRecord>> {
        not_yet()
    }

    async fn checkpoint(&self, _consumer: &str, _session: SessionId) -> Result<u64> {
        not_yet()
    }

    async fn advance_checkpoint(
        &self,
        _consumer: &str,
        _session: SessionId,
        _seq: u64,
    ) -> Result<()> {
        not_yet()
    }
}

#[async_trait]
impl Leases for RedisStore {
    async fn try_lease(
        &self,
        _name: &str,
        _holder: &str,
        _now: Timestamp,
        _ttl: Duration,
    ) -> Result<bool> {
        not_yet()
    }
}
