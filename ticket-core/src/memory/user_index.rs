//! Indexes across sessions by user, written under the lock of the session that changes.

use std::collections::BTreeSet;

use dashmap::DashMap;

use super::Hasher;
use crate::clock::Timestamp;
use crate::ids::{HoldId, SessionId, UserId};

/// Each user's holds by `(created_at, id)` and the sessions the user has audit records in.
#[derive(Debug, Default)]
pub(super) struct UserIndex {
    pub(super) holds: DashMap<UserId, BTreeSet<(Timestamp, HoldId)>, Hasher>,
    /// Sorted, without repeats. A `Vec` (one 16-byte allocation for the usual one session)
    /// rather than a `BTreeSet` (a ~200-byte node per user): a million users in one rush.
    pub(super) sessions: DashMap<UserId, Vec<SessionId>, Hasher>,
}

impl UserIndex {
    pub(super) fn add_hold(&self, user: &UserId, created_at: Timestamp, id: HoldId) {
        self.holds
            .entry(user.clone())
            .or_default()
            .insert((created_at, id));
    }

    pub(super) fn add_session(&self, user: &UserId, session: SessionId) {
        if let Some(s) = self.sessions.get(user)
            && s.contains(&session)
        {
            return;
        }
        let mut sessions = self.sessions.entry(user.clone()).or_default();
        if let Err(at) = sessions.binary_search(&session) {
            sessions.insert(at, session);
        }
    }
}
