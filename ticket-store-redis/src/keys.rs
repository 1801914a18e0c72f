//! The key layout. Everything about one session lives under a prefix carrying the Redis
//! Cluster hash tag `{s:<session id>}`, so one script can touch all of it in one slot.

use ticket_core::ids::{EventId, SessionId, UserId};
use ticket_core::model::idempotency::IdempotencyKey;

/// Builds key names under a configured prefix.
#[derive(Debug, Clone)]
pub(crate) struct Keys {
    prefix: String,
}

impl Keys {
    pub(crate) fn new(prefix: &str) -> Self {
        Self {
            prefix: prefix.to_owned(),
        }
    }

    pub(crate) fn prefix(&self) -> &str {
        &self.prefix
    }

    /// `<prefix>:{s:<id>}:` — the base every session script builds its keys from.
    pub(crate) fn session(&self, id: SessionId) -> String {
        format!("{}:{{s:{id}}}:", self.prefix)
    }

    /// A key inside the session's slot, e.g. `session_key(id, "def")`.
    pub(crate) fn session_key(&self, id: SessionId, name: &str) -> String {
        format!("{}{name}", self.session(id))
    }

    /// The event definition.
    pub(crate) fn event(&self, id: EventId) -> String {
        format!("{}:ev:{id}", self.prefix)
    }

    /// The event index: a sorted set of every event id, all with score 0, so members sort
    /// by their bytes (lower-case hyphenated UUIDv7: id order, creation order) for
    /// `ZRANGEBYLEX` paging.
    pub(crate) fn events(&self) -> String {
        format!("{}:events", self.prefix)
    }

    /// `<prefix>:ev:*`, the pattern matching every event definition (for re-indexing).
    pub(crate) fn event_pattern(&self) -> String {
        format!("{}:ev:*", self.prefix)
    }

    /// The set of every session id (for the sweeper and cross-session audit queries).
    pub(crate) fn sessions(&self) -> String {
        format!("{}:sessions", self.prefix)
    }

    /// The global hold index: a hash from hold id to session id (ids are claimed in it).
    pub(crate) fn hold_index(&self) -> String {
        format!("{}:hs", self.prefix)
    }

    /// The user's index across sessions (`<prefix>:{u:<user>}`, a sorted set, score 0): the
    /// user's holds as `h:<created-at key>:<hold id>:<session>` and audit records as
    /// `a:<record id>:<session>`, written by the session scripts (`lua/lib/base.lua`).
    pub(crate) fn user(&self, user: &UserId) -> String {
        format!("{}:{{u:{}}}", self.prefix, user.as_str())
    }

    /// A named lease (`Leases`).
    pub(crate) fn lease(&self, name: &str) -> String {
        format!("{}:lease:{name}", self.prefix)
    }

    /// One idempotency record.
    pub(crate) fn idempotency(&self, key: &IdempotencyKey) -> String {
        format!("{}:idem:{}:{}", self.prefix, key.scope, key.key)
    }
}
