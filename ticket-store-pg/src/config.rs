//! Connection, schema and coalescing settings.

use std::time::Duration;

use ticket_core::InvalidInput;
use ticket_core::model::change::FeedRetention;

/// How to reach PostgreSQL and where to keep the tables.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PgConfig {
    /// Connection URL, e.g. `postgres://postgres@127.0.0.1:5432/test`.
    pub url: String,
    /// Schema holding every table and function of this store (created by
    /// [`PgStore::migrate`](crate::PgStore::migrate)); lower-case letters, digits and `_`.
    /// Several independent deployments (or tests) can share one database under different
    /// schemas.
    pub schema: String,
    /// `application_name` of every connection, as `pg_stat_activity` shows it.
    pub application_name: String,
    /// Connections in the pool.
    pub max_connections: u32,
    /// Waiting longer than this for a pooled connection fails with `Unavailable`.
    pub acquire_timeout: Duration,
    /// Hold requests that arrive while a hold batch is in flight are sent together as one
    /// `tr_hold_batch` call, one transaction (group commit), up to this many per call; joins
    /// and leaves of a session likewise as one `tr_join_batch` or `tr_leave_batch` call. `1`
    /// disables coalescing.
    pub max_batch: usize,
    /// Hold batches that may be in flight at once (each on its own pooled connection).
    pub max_in_flight: usize,
    /// How many changes each session's feed keeps (the default: 1 000 000). Older ones are
    /// deleted by the sweeper ([`Reservations::expire_due`](ticket_core::store::Reservations::expire_due))
    /// and by [`PgStore::prune_changes`](crate::PgStore::prune_changes) once a feed is about
    /// 1 % longer; a reader resuming before the oldest kept change is refused with
    /// `Refusal::ChangesPruned`.
    pub feed_retention: FeedRetention,
    /// Drop the whole schema when the last handle to the store is dropped. For tests only:
    /// it makes a test leave nothing behind.
    pub drop_schema_on_drop: bool,
}

impl PgConfig {
    /// Defaults for `url`: schema and application name `ticketrush`, 16 connections, 5 s acquire timeout, batches
    /// of up to 64 holds, 4 batches in flight, the default feed retention.
    pub fn new(url: impl Into<String>) -> Self {
        Self {
            url: url.into(),
            schema: "ticketrush".into(),
            application_name: "ticketrush".into(),
            max_connections: 16,
            acquire_timeout: Duration::from_secs(5),
            max_batch: 64,
            max_in_flight: 4,
            feed_retention: FeedRetention::default(),
            drop_schema_on_drop: false,
        }
    }

    /// The same settings under another schema.
    pub fn with_schema(mut self, schema: impl Into<String>) -> Self {
        self.schema = schema.into();
        self
    }

    /// Checks the settings as a whole.
    pub fn validate(&self) -> Result<(), InvalidInput> {
        let bad = |m: &str| Err(InvalidInput::Config(m.to_owned()));
        let schema_ok = !self.schema.is_empty()
            && self.schema.len() <= 63
            && self
                .schema
                .starts_with(|c: char| c.is_ascii_lowercase() || c == '_')
            && self
                .schema
                .chars()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_');
        if !schema_ok {
            return bad(
                "schema must be 1..=63 lower-case letters, digits or '_', not starting with a digit",
            );
        }
        if self.max_connections == 0 || self.max_batch == 0 || self.max_in_flight == 0 {
            return bad("max_connections, max_batch and max_in_flight must be at least 1");
        }
        if self.feed_retention.max_changes_per_session == 0
            || i64::try_from(self.feed_retention.max_changes_per_session).is_err()
        {
            return bad("feed_retention must keep between 1 and i64::MAX changes");
        }
        if self.acquire_timeout.is_zero() {
            return bad("acquire_timeout must be positive");
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn schema_names_are_checked() {
        let ok = PgConfig::new("postgres://x").with_schema("tr_test_01");
        assert!(ok.validate().is_ok());
        for bad in ["", "Upper", "1abc", "a-b", "a;drop", &"x".repeat(64)] {
            assert!(
                PgConfig::new("postgres://x")
                    .with_schema(bad)
                    .validate()
                    .is_err(),
                "{bad}"
            );
        }
        let mut c = PgConfig::new("postgres://x");
        c.max_batch = 0;
        assert!(c.validate().is_err());
    }
}
