use std::time::Duration;

use async_trait::async_trait;

use crate::clock::Timestamp;
use crate::error::Result;
use crate::ids::SessionId;
use crate::model::delivery::{DeliveryClaim, DeliveryKey, DeliveryRecord};

/// Notification deliveries and the dispatchers' checkpoints.
///
/// Guarantees, for every backend:
/// * [`claim_delivery`](DeliveryLog::claim_delivery) is atomic: of any number of racing
///   claims of one delivery, one gets `Claimed` while its lease lasts; the others see `Busy`
///   (or `Done` once it finished). A lease that ran out can be claimed again (its holder
///   died mid-send), so a delivery is retried but never finished twice.
/// * [`finish_delivery`](DeliveryLog::finish_delivery) writes the record once: the first
///   finish wins, later ones change nothing and answer `false`.
/// * Checkpoints only move forward.
#[async_trait]
pub trait DeliveryLog: Send + Sync {
    /// Claims `key` for `holder` until `now + lease`; see the trait docs.
    async fn claim_delivery(
        &self,
        key: &DeliveryKey,
        holder: &str,
        now: Timestamp,
        lease: Duration,
    ) -> Result<DeliveryClaim>;

    /// Records how the delivery ended; `true` when this call wrote it.
    async fn finish_delivery(&self, record: &DeliveryRecord) -> Result<bool>;

    /// The finished delivery, if it finished.
    async fn delivery(&self, key: &DeliveryKey) -> Result<Option<DeliveryRecord>>;

    /// The last sequence of `session` that `consumer` processed (0 before any).
    async fn checkpoint(&self, consumer: &str, session: SessionId) -> Result<u64>;

    /// Moves `consumer`'s checkpoint of `session` to `seq` unless it is already further.
    async fn advance_checkpoint(&self, consumer: &str, session: SessionId, seq: u64) -> Result<()>;
}
