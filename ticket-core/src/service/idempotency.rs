//! The idempotency layer: run an operation at most once per key, replay its outcome after.
//!
//! Reusable by the host application for its own operations: any `Result<T, E>` where `T`
//! serialises and `E` says which of its values are final ([`Replayable`]).

use std::future::Future;

use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::error::{Error, Refusal};
use crate::model::idempotency::{Claim, Fingerprint, IdempotencyKey, StoredOutcome};

use super::Context;

/// An error type that can be stored and replayed by [`Idempotency::run`].
pub trait Replayable: Sized {
    /// The stored form of this error when it is a final outcome (a domain refusal) that a
    /// repeat must get again; `None` for errors that must not be stored (invalid input,
    /// backend faults), after which a repeat runs the operation again.
    fn to_stored(&self) -> Option<serde_json::Value>;

    /// Rebuilds a stored error.
    fn from_stored(value: serde_json::Value) -> Result<Self, Error>;
}

impl Replayable for Error {
    fn to_stored(&self) -> Option<serde_json::Value> {
        match self {
            Error::Refused(r) => serde_json::to_value(r).ok(),
            _ => None,
        }
    }

    fn from_stored(value: serde_json::Value) -> Result<Self, Error> {
        serde_json::from_value::<Refusal>(value)
            .map(Error::Refused)
            .map_err(|e| Error::Corrupt(format!("stored refusal unreadable: {e}")))
    }
}

/// Runs operations once per [`IdempotencyKey`].
#[derive(Clone, Debug)]
pub struct Idempotency {
    ctx: Context,
}

impl Idempotency {
    pub(crate) fn new(ctx: Context) -> Self {
        Self { ctx }
    }

    /// Runs `op` once for `key` and `payload`:
    ///
    /// * first call: runs `op`; stores its success or final error for the retention period;
    /// * repeat with the same payload: returns the stored outcome without running `op`;
    /// * repeat with another payload: `KeyReused`; while the first still runs: `InFlight`;
    /// * errors that are not final (invalid input, backend faults) are not stored: the key is
    ///   released and a repeat runs `op` again.
    pub async fn run<T, E, F, Fut, P>(
        &self,
        key: &IdempotencyKey,
        payload: &P,
        op: F,
    ) -> Result<T, E>
    where
        T: Serialize + DeserializeOwned,
        E: Replayable + From<Error>,
        P: Serialize + ?Sized,
        F: FnOnce() -> Fut,
        Fut: Future<Output = Result<T, E>>,
    {
        let store = &self.ctx.stores.idempotency;
        let limits = &self.ctx.limits;
        let fingerprint = Fingerprint::of(payload).map_err(Error::from)?;
        let now = self.ctx.clock.now();
        let in_flight_until = now.plus(limits.idempotency_in_flight_ttl);
        match store.claim(key, fingerprint, now, in_flight_until).await? {
            Claim::Completed(outcome) => replay(outcome),
            Claim::Started => {
                let result = op().await;
                let stored = match &result {
                    Ok(v) => serde_json::to_value(v).ok().map(StoredOutcome::Ok),
                    Err(e) => e.to_stored().map(StoredOutcome::Err),
                };
                match stored {
                    Some(outcome) => {
                        let expires_at = self.ctx.clock.now().plus(limits.idempotency_retention);
                        store
                            .complete(key, fingerprint, &outcome, expires_at)
                            .await?;
                    }
                    None => store.release(key, fingerprint).await?,
                }
                result
            }
        }
    }
}

fn replay<T: DeserializeOwned, E: Replayable + From<Error>>(
    outcome: StoredOutcome,
) -> Result<T, E> {
    match outcome {
        StoredOutcome::Ok(v) => serde_json::from_value(v)
            .map_err(|e| Error::Corrupt(format!("stored response unreadable: {e}")).into()),
        StoredOutcome::Err(v) => Err(E::from_stored(v)?),
    }
}
