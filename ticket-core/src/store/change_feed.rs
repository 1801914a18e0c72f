use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;

use crate::error::Result;
use crate::ids::SessionId;
use crate::model::change::{Change, ChangePage};

/// Poll interval of the default [`ChangeFeed::wait_for_change`].
const POLL_EVERY: Duration = Duration::from_millis(50);

/// A session's change feed.
///
/// Guarantees, for every backend:
/// * Every change ([`crate::model::change::ChangeKind`]) is written **in the same atomic
///   step** as what it describes: a reader never sees a change the store does not show, nor
///   misses one it shows.
/// * Sequence numbers are per session, `1, 2, 3, …`, **without gaps**, in the order the
///   changes were made; reading after `n` returns `n + 1, n + 2, …`.
/// * Retention is the backend's [`crate::model::change::FeedRetention`]: the newest changes
///   are kept; a read after a cursor older than what is kept is refused with
///   `Refusal::ChangesPruned` (the reader resynchronises from the reads), never answered
///   with a silent gap.
#[async_trait]
pub trait ChangeFeed: Send + Sync {
    /// Changes of `session` with sequence numbers after `after`, oldest first, at most
    /// `limit` (`1..=MAX_PAGE_LIMIT`), and the session's head. `NotFound` for an unknown
    /// session. A read that changes nothing.
    async fn changes(&self, session: SessionId, after: u64, limit: usize) -> Result<ChangePage>;

    /// Returns once `session` has a change after `after`, or when `timeout` passed
    /// (whichever comes first; `Ok` either way, so read [`ChangeFeed::changes`] next). Backends
    /// wake on the write (broadcast, blocking stream read, LISTEN/NOTIFY); the default polls
    /// every 50 ms.
    async fn wait_for_change(
        &self,
        session: SessionId,
        after: u64,
        timeout: Duration,
    ) -> Result<()> {
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            if self.changes(session, after, 1).await?.head > after {
                return Ok(());
            }
            let now = tokio::time::Instant::now();
            if now >= deadline {
                return Ok(());
            }
            tokio::time::sleep(POLL_EVERY.min(deadline - now)).await;
        }
    }
}

/// A subscription to one session's feed that resumes from a cursor: every change after it,
/// once, in order, waiting for new ones as they are written.
pub struct ChangeSubscription {
    feed: Arc<dyn ChangeFeed>,
    session: SessionId,
    cursor: u64,
    buffer: std::collections::VecDeque<Change>,
    page: usize,
    wait: Duration,
}

impl std::fmt::Debug for ChangeSubscription {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ChangeSubscription")
            .field("session", &self.session)
            .field("cursor", &self.cursor)
            .finish()
    }
}

impl ChangeSubscription {
    /// Subscribes to `session` after sequence `after` (0 for the whole retained feed).
    pub fn new(feed: Arc<dyn ChangeFeed>, session: SessionId, after: u64) -> Self {
        Self {
            feed,
            session,
            cursor: after,
            buffer: Default::default(),
            page: crate::model::page::MAX_PAGE_LIMIT,
            wait: Duration::from_secs(30),
        }
    }

    /// The sequence number of the last change handed out (resume from it).
    pub fn cursor(&self) -> u64 {
        self.cursor
    }

    /// The next change, waiting for one if none is pending. Errors (an unavailable store,
    /// `ChangesPruned`) leave the cursor where it was, so calling again retries.
    pub async fn next(&mut self) -> Result<Change> {
        loop {
            if let Some(c) = self.buffer.pop_front() {
                self.cursor = c.seq;
                return Ok(c);
            }
            let page = self
                .feed
                .changes(self.session, self.cursor, self.page)
                .await?;
            if page.changes.is_empty() {
                self.feed
                    .wait_for_change(self.session, self.cursor, self.wait)
                    .await?;
            } else {
                self.buffer.extend(page.changes);
            }
        }
    }

    /// Every change already written after the cursor, without waiting (empty when caught
    /// up), at most one page.
    pub async fn pending(&mut self) -> Result<Vec<Change>> {
        let mut out: Vec<Change> = self.buffer.drain(..).collect();
        if out.is_empty() {
            out = self
                .feed
                .changes(self.session, self.cursor, self.page)
                .await?
                .changes;
        }
        if let Some(last) = out.last() {
            self.cursor = last.seq;
        }
        Ok(out)
    }
}
