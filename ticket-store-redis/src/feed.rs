//! The change feed on Redis.
//!
//! # Writing
//! Every session script that changes something numbers its changes from the `fseq` counter
//! of the session's `stock` hash and writes them with one `XADD` to the session's `feed`
//! stream, in the same script as the change (`lua/lib/feed.lua`): an entry per call (up to
//! 500 changes), its id `0-<last seq of the entry>`, its fields `<seq> <packed change>`. A
//! batch of 64 holds thus costs one `XADD`, yet every change keeps its own sequence number.
//! The same `XADD` trims the stream to [`RedisConfig::feed_retention`] (`MINID`, exactly,
//! by entry: an entry goes once its last change is older than the newest `N`).
//!
//! # Reading
//! [`ChangeFeed::changes`] is one script (`lua/feed_read.lua`): the head, the first kept
//! sequence (`ChangesPruned` when the cursor is older), then `XRANGE` from the entry that
//! holds `after + 1` (the first entry whose id is at least `0-<after + 1>`).
//!
//! # Waiting
//! [`ChangeFeed::wait_for_change`] reads the head; if nothing is new it registers with the
//! store's [`FeedListener`](crate::feed_listener::FeedListener), which keeps **one
//! dedicated connection** blocked in a single `XREAD BLOCK` over the streams of every
//! session somebody waits for, and wakes the waiters of a session (tokio `watch`) when its
//! stream grows. However many callers wait, on however many sessions, the store holds one
//! blocked connection; the shared multiplexed connection is never blocked.
//!
//! [`RedisConfig::feed_retention`]: crate::RedisConfig::feed_retention

use std::time::Duration;

use async_trait::async_trait;
use ticket_core::ids::{SessionId, UserId};
use ticket_core::model::audit::Subject;
use ticket_core::model::change::{Change, ChangeKind, ChangePage};
use ticket_core::model::page::check_limit;
use ticket_core::store::ChangeFeed;
use ticket_core::{Error, Refusal, Result, Timestamp};

use crate::codec::SEP;
use crate::reply::{array, at, count, tagged, text, unavailable};
use crate::store::RedisStore;

/// A change from its packed form (`lua/lib/feed.lua`): kind, at, subject kind (`h`, `t`, `s`
/// or empty), subject, owner, line, joined by [`SEP`].
fn change(session: SessionId, seq: &str, packed: &str) -> Result<Change> {
    let bad = |what: &str| Error::Corrupt(format!("change {seq} of session {session}: {what}"));
    let f: Vec<&str> = packed.splitn(6, SEP).collect();
    let [kind, at_ms, subject_kind, subject, owner, line] = f.as_slice() else {
        return Err(bad("wrong number of fields"));
    };
    let uuid = |s: &str| s.parse::<uuid::Uuid>().map_err(|_| bad("subject"));
    use ticket_core::ids::{HoldId, TicketId};
    Ok(Change {
        session,
        seq: seq.parse().map_err(|_| bad("sequence number"))?,
        at: Timestamp::from_millis(at_ms.parse().map_err(|_| bad("time"))?),
        kind: ChangeKind::parse(kind).ok_or_else(|| bad("kind"))?,
        subject: match *subject_kind {
            "h" => Some(Subject::Hold(HoldId::from_uuid(uuid(subject)?))),
            "t" => Some(Subject::Ticket(TicketId::from_uuid(uuid(subject)?))),
            "s" => Some(Subject::Session(SessionId::from_uuid(uuid(subject)?))),
            _ => None,
        },
        owner: match *owner {
            "" => None,
            o => Some(UserId::new(o).map_err(|_| bad("owner"))?),
        },
        line: match *line {
            "" => None,
            l => Some(l.parse().map_err(|_| bad("line"))?),
        },
    })
}

impl RedisStore {
    /// The session's feed head (`fseq` of its `stock` hash).
    async fn feed_head(&self, session: SessionId) -> Result<u64> {
        let head: Option<u64> = redis::cmd("HGET")
            .arg(self.inner.keys.session_key(session, "stock"))
            .arg("fseq")
            .query_async(&mut self.conn())
            .await
            .map_err(unavailable)?;
        Ok(head.unwrap_or(0))
    }
}

#[async_trait]
impl ChangeFeed for RedisStore {
    async fn changes(&self, session: SessionId, after: u64, limit: usize) -> Result<ChangePage> {
        check_limit(limit)?;
        let mut inv = self.session_call(&self.inner.scripts.feed_read, session);
        inv.arg(after).arg(limit);
        let reply = self.run(&inv).await?;
        let (tag, rest) = tagged(&reply, "changes")?;
        match tag {
            "ok" => {}
            "pruned" => {
                let first_kept = count(at(rest, 0, "changes")?, "first kept")?;
                return Err(Refusal::ChangesPruned { first_kept }.into());
            }
            "nf" => return Err(Error::not_found("session", session)),
            other => return Err(Error::Corrupt(format!("changes reply tag {other:?}"))),
        }
        let head = count(at(rest, 0, "changes")?, "head")?;
        let changes = array(at(rest, 1, "changes")?, "changes")?
            .chunks(2)
            .map(|pair| match pair {
                [seq, packed] => change(session, text(seq, "seq")?, text(packed, "change")?),
                _ => Err(Error::Corrupt("odd change list".into())),
            })
            .collect::<Result<Vec<_>>>()?;
        Ok(ChangePage { changes, head })
    }

    /// Reads the head; if nothing after `after` is there yet, waits on the store's one
    /// blocked `XREAD` (see the module docs).
    async fn wait_for_change(
        &self,
        session: SessionId,
        after: u64,
        timeout: Duration,
    ) -> Result<()> {
        let deadline = tokio::time::Instant::now() + timeout;
        self.session_def(session).await?;
        let head = self.feed_head(session).await?;
        if head > after {
            return Ok(());
        }
        let waiter = self
            .inner
            .listener
            .watch(session, head, &mut self.conn())
            .await;
        waiter.wait_past(after, deadline).await;
        Ok(())
    }
}
