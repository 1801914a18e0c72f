use async_trait::async_trait;

use crate::clock::Timestamp;
use crate::error::Result;
use crate::model::idempotency::{Claim, Fingerprint, IdempotencyKey, StoredOutcome};

/// Idempotency records: the first request under a key runs, every repeat replays its outcome.
///
/// Guarantees, for every backend:
/// * [`claim`](IdempotencyStore::claim) is atomic: of any number of concurrent claims of one
///   key, exactly one gets [`Claim::Started`]; the others get `InFlight` (same payload) or
///   `KeyReused` (other payload).
/// * A completed key replays the stored outcome to claims with the same fingerprint until it
///   expires, and answers `KeyReused` to any other fingerprint.
/// * An in-flight marker lapses at its `in_flight_until`, so a request that crashed mid-way
///   can be retried; a completed record is forgotten at its `expires_at`.
#[async_trait]
pub trait IdempotencyStore: Send + Sync {
    /// Claims `key` for a request with `fingerprint` at `now`; see the trait docs.
    async fn claim(
        &self,
        key: &IdempotencyKey,
        fingerprint: Fingerprint,
        now: Timestamp,
        in_flight_until: Timestamp,
    ) -> Result<Claim>;

    /// Stores the outcome of the request that claimed `key`, kept until `expires_at`.
    /// Does nothing unless the key is in flight under `fingerprint` (if the marker lapsed and
    /// a repeat of the same payload took it over, whichever completes first is stored).
    async fn complete(
        &self,
        key: &IdempotencyKey,
        fingerprint: Fingerprint,
        outcome: &StoredOutcome,
        expires_at: Timestamp,
    ) -> Result<()>;

    /// Drops the in-flight marker of `key` (the request stored nothing: its input was
    /// rejected or the backend failed), so a retry runs again. Completed records stay.
    async fn release(&self, key: &IdempotencyKey, fingerprint: Fingerprint) -> Result<()>;
}
