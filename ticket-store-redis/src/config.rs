//! Connection and key-space settings.

use std::time::Duration;

use ticket_core::InvalidInput;
use ticket_core::model::change::FeedRetention;

/// How to reach Redis and where to keep the keys.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RedisConfig {
    /// Connection URL, e.g. `redis://127.0.0.1:6379` (`rediss://` is not compiled in).
    pub url: String,
    /// Prefix of every key this store writes (no `{`, `}` or whitespace). Several
    /// independent deployments (or tests) can share one Redis under different prefixes.
    pub prefix: String,
    /// How many changes each session's change feed keeps (the newest; a reader resuming from
    /// an older cursor gets `Refusal::ChangesPruned`). The audit trail is never trimmed.
    pub feed_retention: FeedRetention,
    /// A command without an answer after this long fails with `Unavailable`.
    pub response_timeout: Duration,
    /// A connection attempt fails after this long.
    pub connection_timeout: Duration,
    /// Hold, join, queue-view and leave requests arriving for one session while a call of
    /// their kind for it is in flight are sent together as one script call (group commit),
    /// up to this many per call; `1` disables coalescing.
    pub max_batch: usize,
    /// Batched calls per session that may be in flight at once (pipelined on the
    /// connection), so Redis never waits for the client between batches.
    pub max_in_flight: usize,
    /// Delete every key under `prefix` when the last handle to the store is dropped. For
    /// tests only: it makes a test leave nothing behind.
    pub delete_keys_on_drop: bool,
}

impl RedisConfig {
    /// Defaults for `url`: prefix `ticketrush`, 1 000 000 changes kept per session, 5 s
    /// response timeout, 2 s connection timeout, batches of up to 64 requests, 2 in flight.
    pub fn new(url: impl Into<String>) -> Self {
        Self {
            url: url.into(),
            prefix: "ticketrush".into(),
            feed_retention: FeedRetention::default(),
            response_timeout: Duration::from_secs(5),
            connection_timeout: Duration::from_secs(2),
            max_batch: 64,
            max_in_flight: 2,
            delete_keys_on_drop: false,
        }
    }

    /// The same settings under another key prefix.
    pub fn with_prefix(mut self, prefix: impl Into<String>) -> Self {
        self.prefix = prefix.into();
        self
    }

    /// The same settings with another change feed retention.
    pub fn with_feed_retention(mut self, retention: FeedRetention) -> Self {
        self.feed_retention = retention;
        self
    }

    /// Checks the settings as a whole.
    pub fn validate(&self) -> Result<(), InvalidInput> {
        let bad = |m: &str| Err(InvalidInput::Config(m.to_owned()));
        if self.prefix.is_empty()
            || self
                .prefix
                .chars()
                .any(|c| c == '{' || c == '}' || c.is_whitespace() || c.is_control())
        {
            return bad("prefix must be non-empty, without braces or whitespace");
        }
        if self.feed_retention.max_changes_per_session == 0 {
            return bad("feed_retention must keep at least one change");
        }
        if self.max_batch == 0 || self.max_in_flight == 0 {
            return bad("max_batch and max_in_flight must be at least 1");
        }
        if self.response_timeout.is_zero() || self.connection_timeout.is_zero() {
            return bad("timeouts must be positive");
        }
        Ok(())
    }
}
