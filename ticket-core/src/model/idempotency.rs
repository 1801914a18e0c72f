//! Idempotency keys, request fingerprints and stored outcomes.

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::clock::Timestamp;
use crate::error::InvalidInput;

/// Longest accepted idempotency key, in characters.
pub const MAX_KEY_LEN: usize = 255;

/// A client-chosen key, scoped per user and operation: the same key string used by two
/// users, or for two operations, names two different records.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct IdempotencyKey {
    /// `"<len(operation)>:<operation>:<user>"`: the length prefix keeps scopes distinct even
    /// when operation names or user ids contain `:`.
    pub scope: String,
    /// The client's key (1..=255 characters).
    pub key: String,
}

impl IdempotencyKey {
    /// Validates the key and scopes it to `user` and `operation`.
    pub fn new(user: &str, operation: &str, key: &str) -> Result<Self, InvalidInput> {
        let len = key.chars().count();
        if len == 0 || len > MAX_KEY_LEN || key.chars().any(char::is_control) {
            return Err(InvalidInput::IdempotencyKey { len });
        }
        Ok(Self {
            scope: format!("{}:{operation}:{user}", operation.len()),
            key: key.to_owned(),
        })
    }
}

/// SHA-256 of a request's canonical JSON payload.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Fingerprint(pub [u8; 32]);

impl Fingerprint {
    /// Fingerprint of `payload` (its `serde_json` serialisation; struct fields serialise in
    /// declaration order, so equal payloads give equal fingerprints).
    pub fn of<T: Serialize + ?Sized>(payload: &T) -> Result<Self, InvalidInput> {
        let bytes = serde_json::to_vec(payload)
            .map_err(|e| InvalidInput::Definition(format!("payload not serialisable: {e}")))?;
        Ok(Self(Sha256::digest(&bytes).into()))
    }

    /// Lower-case hex.
    pub fn to_hex(&self) -> String {
        hex::encode(self.0)
    }
}

impl std::fmt::Debug for Fingerprint {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Fingerprint({})", &self.to_hex()[..12])
    }
}

/// The first request's outcome, as stored and replayed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "outcome", content = "body", rename_all = "snake_case")]
pub enum StoredOutcome {
    /// The operation succeeded with this (serialised) response.
    Ok(serde_json::Value),
    /// The operation was refused with this (serialised) error.
    Err(serde_json::Value),
}

/// What [`crate::store::IdempotencyStore::claim`] found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Claim {
    /// No record: the caller now owns the key (in flight) and must run the operation, then
    /// `complete` or `release` it.
    Started,
    /// The operation already ran with the same payload: replay this outcome.
    Completed(StoredOutcome),
}

/// One stored idempotency record (as a backend keeps it).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct IdempotencyRecord {
    /// Fingerprint of the first payload.
    pub fingerprint: Fingerprint,
    /// `None` while in flight.
    pub outcome: Option<StoredOutcome>,
    /// In flight: when the marker lapses. Completed: when the record is forgotten.
    pub expires_at: Timestamp,
}
