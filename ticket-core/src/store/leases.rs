use std::time::Duration;

use async_trait::async_trait;

use crate::clock::Timestamp;
use crate::error::Result;

/// Named leases, so a periodic job runs once per tick across several processes (e.g. one
/// admission round per session per tick).
///
/// Guarantee, for every backend: [`try_lease`](Leases::try_lease) is atomic. It grants
/// `name` to `holder` until `now + ttl` when the lease is free, ran out by `now`, or is
/// already `holder`'s (a renewal); otherwise it answers `false` and changes nothing. Of any
/// number of racing callers for a free lease exactly one gets it.
#[async_trait]
pub trait Leases: Send + Sync {
    /// Takes or renews the lease; see the trait docs.
    async fn try_lease(
        &self,
        name: &str,
        holder: &str,
        now: Timestamp,
        ttl: Duration,
    ) -> Result<bool>;
}
