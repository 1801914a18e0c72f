//! Notification deliveries: one record per (change, recipient), so a notification is sent
//! once however many dispatchers run.

use serde::{Deserialize, Serialize};

use crate::clock::Timestamp;
use crate::ids::{SessionId, UserId};

/// Which delivery: the change `(session, seq)` to `recipient`.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct DeliveryKey {
    /// The change's session.
    pub session: SessionId,
    /// The change's sequence number in the session's feed.
    pub seq: u64,
    /// Who is told.
    pub recipient: UserId,
}

/// How a delivery ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum DeliveryStatus {
    /// The notifier accepted it.
    Sent,
    /// Every attempt failed; nobody will try again.
    GaveUp,
}

impl DeliveryStatus {
    /// Stable upper-case name, as stored.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Sent => "SENT",
            Self::GaveUp => "GAVE_UP",
        }
    }

    /// The status named `s`.
    pub fn parse(s: &str) -> Option<Self> {
        [Self::Sent, Self::GaveUp]
            .into_iter()
            .find(|d| d.as_str() == s)
    }
}

/// The record of a finished delivery. Written once, never changed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DeliveryRecord {
    /// Which delivery.
    pub key: DeliveryKey,
    /// How it ended.
    pub status: DeliveryStatus,
    /// Attempts made (1 when the first one succeeded).
    pub attempts: u32,
    /// The last attempt's error, when one failed.
    pub last_error: Option<String>,
    /// When it ended.
    pub at: Timestamp,
    /// The dispatcher that made it.
    pub by: String,
}

/// The answer to a claim.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "claim", rename_all = "snake_case")]
pub enum DeliveryClaim {
    /// The caller holds the delivery until its lease ends: it sends, then records.
    Claimed,
    /// Another dispatcher holds a live claim: leave it (it is sent or given up there, or
    /// the lease ends and it can be claimed again).
    Busy,
    /// Already finished.
    Done(DeliveryRecord),
}
