//! Identifiers of the accounts store: user ids, refresh-token family ids (UUIDv7s minted
//! from the server's clock) and refresh-token hashes.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use ticket_core::Timestamp;
use uuid::Uuid;

use super::{AccountError, Result, truncated};

/// A user's id: a UUIDv7 minted from the server's clock when the account is created, so ids
/// sort by creation time. Shown and parsed in the hyphenated form.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct UserId(Uuid);

impl UserId {
    /// A new time-ordered id minted at `at`.
    pub fn new_at(at: Timestamp) -> Self {
        Self(uuid_v7_at(at))
    }

    /// Wraps an existing UUID (e.g. read from a token claim).
    pub const fn from_uuid(id: Uuid) -> Self {
        Self(id)
    }

    /// The underlying UUID.
    pub const fn as_uuid(&self) -> Uuid {
        self.0
    }
}

impl fmt::Display for UserId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(&self.0, f)
    }
}

impl fmt::Debug for UserId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "UserId({})", self.0)
    }
}

impl FromStr for UserId {
    type Err = AccountError;
    /// Parses a UUID; anything else is [`AccountError::Invalid`].
    fn from_str(s: &str) -> Result<Self> {
        Uuid::parse_str(s)
            .map(Self)
            .map_err(|_| AccountError::Invalid(format!("not a user id: {:?}", truncated(s))))
    }
}

/// A refresh-token family: every token obtained from one login by rotation. A UUIDv7.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct FamilyId(Uuid);

impl FamilyId {
    /// A new time-ordered family id minted at `at` (one per login).
    pub fn new_at(at: Timestamp) -> Self {
        Self(uuid_v7_at(at))
    }

    /// Wraps an existing UUID.
    pub const fn from_uuid(id: Uuid) -> Self {
        Self(id)
    }

    /// The underlying UUID.
    pub const fn as_uuid(&self) -> Uuid {
        self.0
    }
}

impl fmt::Display for FamilyId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(&self.0, f)
    }
}

impl fmt::Debug for FamilyId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "FamilyId({})", self.0)
    }
}

impl FromStr for FamilyId {
    type Err = AccountError;
    /// Parses a UUID; anything else is [`AccountError::Invalid`].
    fn from_str(s: &str) -> Result<Self> {
        Uuid::parse_str(s)
            .map(Self)
            .map_err(|_| AccountError::Invalid(format!("not a family id: {:?}", truncated(s))))
    }
}

/// The SHA-256 of a refresh token: what the stores keep instead of the token.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct TokenHash([u8; 32]);

impl TokenHash {
    /// The SHA-256 of `token` (its UTF-8 bytes).
    pub fn of(token: &str) -> Self {
        Self(Sha256::digest(token.as_bytes()).into())
    }

    /// Wraps 32 raw hash bytes.
    pub const fn from_bytes(bytes: [u8; 32]) -> Self {
        Self(bytes)
    }

    /// Parses 64 hex digits; anything else is [`AccountError::Invalid`].
    pub fn from_hex(s: &str) -> Result<Self> {
        let mut bytes = [0u8; 32];
        hex::decode_to_slice(s, &mut bytes)
            .map_err(|_| AccountError::Invalid("a token hash is 64 hex digits".into()))?;
        Ok(Self(bytes))
    }

    /// The 32 hash bytes.
    pub const fn as_bytes(&self) -> &[u8; 32] {
        &self.0
    }

    /// The hash as 64 lower-case hex digits.
    pub fn to_hex(&self) -> String {
        hex::encode(self.0)
    }
}

impl fmt::Debug for TokenHash {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "TokenHash({})", self.to_hex())
    }
}

/// A UUIDv7 for the instant `at` (random low bits keep ids of one millisecond distinct).
pub(super) fn uuid_v7_at(at: Timestamp) -> Uuid {
    let ms = at.as_millis().max(0);
    let secs = u64::try_from(ms / 1000).unwrap_or(0);
    let nanos = u32::try_from((ms % 1000) * 1_000_000).unwrap_or(0);
    Uuid::new_v7(uuid::Timestamp::from_unix_time(secs, nanos, 0, 0))
}
