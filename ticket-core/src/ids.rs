//! Typed identifiers.
//!
//! Library-minted ids are UUIDv7: time-ordered, so ids sort by creation time and index well.
//! They are minted from the injected clock's [`Timestamp`], never from the wall clock.
//! [`UserId`] is the host application's own user id, carried as an opaque string.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::clock::Timestamp;
use crate::error::InvalidInput;

/// A UUIDv7 for the instant `at` (random low bits keep ids minted in the same
/// millisecond distinct).
pub(crate) fn uuid_v7_at(at: Timestamp) -> Uuid {
    let ms = at.as_millis().max(0);
    let secs = u64::try_from(ms / 1000).unwrap_or(0);
    let nanos = u32::try_from((ms % 1000) * 1_000_000).unwrap_or(0);
    Uuid::new_v7(uuid::Timestamp::from_unix_time(secs, nanos, 0, 0))
}

macro_rules! uuid_id {
    ($(#[$doc:meta])* $name:ident) => {
        $(#[$doc])*
        #[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
        #[serde(transparent)]
        pub struct $name(Uuid);

        impl $name {
            /// A new time-ordered (UUIDv7) id minted at `at`.
            pub fn new_at(at: Timestamp) -> Self {
                Self(uuid_v7_at(at))
            }

            /// Wraps an existing UUID (e.g. read back from a store).
            pub const fn from_uuid(id: Uuid) -> Self {
                Self(id)
            }

            /// The underlying UUID.
            pub const fn as_uuid(&self) -> Uuid {
                self.0
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                fmt::Display::fmt(&self.0, f)
            }
        }

        impl fmt::Debug for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                write!(f, "{}({})", stringify!($name), self.0)
            }
        }

        impl FromStr for $name {
            type Err = InvalidInput;
            fn from_str(s: &str) -> Result<Self, Self::Err> {
                Uuid::parse_str(s).map(Self).map_err(|_| InvalidInput::MalformedId {
                    kind: stringify!($name),
                    value: s.chars().take(64).collect(),
                })
            }
        }
    };
}

uuid_id!(
    /// An event: a show with one or more dated sessions.
    EventId
);
uuid_id!(
    /// A session: one dated performance of an event, with its own stock and queue.
    SessionId
);
uuid_id!(
    /// A hold (reservation) of units or seats.
    HoldId
);
uuid_id!(
    /// A waiting-queue ticket.
    TicketId
);
uuid_id!(
    /// An audit record.
    AuditId
);

impl AuditId {
    /// The audit id of the `n`-th record of `session`, written at `at`: a UUIDv7 whose
    /// 48-bit millisecond timestamp is `at`, whose next 42 bits (around the version and
    /// variant) hold `n`, and whose last 32 bits are the last 32 bits of the session id. Ids
    /// of one session increase with `n` within a millisecond, so a session's records sort
    /// by `(at, id)` in the order they were written; records of two sessions differ by the
    /// session bits.
    ///
    /// Layout: the UUID's high 64 bits are `at_ms << 16 | 0x7000 | (n >> 30) & 0xFFF`, its
    /// low 64 bits `0x8000_0000_0000_0000 | (n & 0x3FFF_FFFF) << 32 | session_low32`; in
    /// hex `tttttttt-tttt-7hhh-LLLL-LLLLssssssss` where `LLLLLLLL` is
    /// `0x80000000 + (n mod 2^30)` and `ssssssss` the session id's last 8 hex digits.
    /// Backends that build ids in scripts follow the same layout.
    pub fn sequenced(at: Timestamp, n: u64, session: SessionId) -> Self {
        let ms = u64::try_from(at.as_millis().max(0)).unwrap_or(0) & 0xFFFF_FFFF_FFFF;
        let high = (ms << 16) | 0x7000 | ((n >> 30) & 0xFFF);
        let salt = session.as_uuid().as_u64_pair().1 & 0xFFFF_FFFF;
        let low = 0x8000_0000_0000_0000 | ((n & 0x3FFF_FFFF) << 32) | salt;
        Self(Uuid::from_u64_pair(high, low))
    }
}

/// The host application's id for a user: any non-empty string of at most
/// [`UserId::MAX_LEN`] bytes without control characters.
///
/// Cheap to clone: the text is shared (one allocation per id however many records, tickets
/// and index entries name the user), and compares, orders and hashes as the string does.
#[derive(Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct UserId(std::sync::Arc<str>);

impl UserId {
    /// Longest accepted user id, in bytes.
    pub const MAX_LEN: usize = 128;

    /// Validates and wraps a user id.
    pub fn new(id: impl Into<String>) -> Result<Self, InvalidInput> {
        let id = id.into();
        if id.is_empty() || id.len() > Self::MAX_LEN || id.chars().any(char::is_control) {
            return Err(InvalidInput::MalformedId {
                kind: "UserId",
                value: id.chars().take(64).collect(),
            });
        }
        Ok(Self(id.into()))
    }

    /// The id as a string.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl TryFrom<String> for UserId {
    type Error = InvalidInput;
    fn try_from(s: String) -> Result<Self, Self::Error> {
        Self::new(s)
    }
}

impl From<UserId> for String {
    fn from(id: UserId) -> Self {
        id.0.as_ref().to_owned()
    }
}

impl fmt::Display for UserId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl fmt::Debug for UserId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "UserId({:?})", self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_are_time_ordered() {
        let at = Timestamp::from_millis(1_700_000_000_000);
        let session: SessionId = "0190a000-0000-7000-8000-0000cafe0042".parse().expect("id");
        let s1 = AuditId::sequenced(at, 1, session);
        let s2 = AuditId::sequenced(at, 2, session);
        assert!(s1 < s2);
        assert!(AuditId::sequenced(Timestamp::from_millis(1_700_000_000_001), 0, session) > s2);
        assert_eq!(s1.as_uuid().get_version_num(), 7);
        assert_eq!(s1.to_string(), "018bcfe5-6800-7000-8000-0001cafe0042");
        let big = AuditId::sequenced(at, (5 << 30) + 7, session);
        assert_eq!(big.to_string(), "018bcfe5-6800-7005-8000-0007cafe0042");
        let a = HoldId::new_at(Timestamp::from_millis(1_700_000_000_000));
        let b = HoldId::new_at(Timestamp::from_millis(1_700_000_000_001));
        assert!(a < b);
        assert_eq!(a.as_uuid().get_version_num(), 7);
        assert_eq!(a.to_string().parse::<HoldId>().ok(), Some(a));
    }

    #[test]
    fn user_ids_are_validated() {
        assert!(UserId::new("alice").is_ok());
        assert!(UserId::new("").is_err());
        assert!(UserId::new("a\nb").is_err());
        assert!(UserId::new("x".repeat(UserId::MAX_LEN + 1)).is_err());
        assert!("not-a-uuid".parse::<SessionId>().is_err());
    }
}
