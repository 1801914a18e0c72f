//! Coalescing (group commit) of queue joins and leaves per session: joins (leaves) of a
//! session that arrive while a join (leave) batch of that session is in flight wait, then go
//! together as one `tr_join_batch` (`tr_leave_batch`) call, one transaction and one commit.
//!
//! Every join and leave locks its session's queue row until its commit is flushed, so one
//! per transaction queues a burst of users behind one WAL flush each. A batch takes the row
//! once and commits once for many requests, applying them in arrival order, each exactly as
//! `tr_join` or `tr_leave` applies one alone. One batch per session and kind is in flight at
//! a time (a second one would only wait for the row lock), so joins (leaves) of a session
//! reach the database in arrival order; sessions do not wait for each other. A leave batch
//! takes the session's advisory lock first, as a hold batch does (see
//! `migrations/0004_leave_batch.sql`).

use std::sync::Arc;

use dashmap::DashMap;
use parking_lot::Mutex;
use ticket_core::ids::SessionId;
use ticket_core::{Error, Result};
use tokio::sync::oneshot;

use crate::batch_reply::{self, Waiter};
use crate::store::{PgStore, db_error};

/// What a batch does.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub(crate) enum Kind {
    /// `tr_join_batch`: each request `{user, now, pre, max, id, actor}`.
    Join,
    /// `tr_leave_batch`: each request `{user, now, actor}`.
    Leave,
}

impl Kind {
    fn call(self) -> &'static str {
        match self {
            Kind::Join => "SELECT tr_join_batch($1, $2)",
            Kind::Leave => "SELECT tr_leave_batch($1, $2)",
        }
    }
}

/// Queue requests waiting per session and kind.
#[derive(Default)]
pub(crate) struct QueueBatcher {
    sessions: DashMap<(Kind, SessionId), Arc<Mutex<State>>>,
}

#[derive(Default)]
struct State {
    pending: Vec<(serde_json::Value, Waiter)>,
    /// A drain task runs for the session (it has at most one batch in flight).
    running: bool,
}

impl PgStore {
    /// Sends one queue request of `kind` (see [`Kind`]), alone or with concurrent ones of the
    /// session; returns its `tr_join` or `tr_leave` answer.
    pub(crate) async fn submit_queue(
        &self,
        kind: Kind,
        session: SessionId,
        req: serde_json::Value,
    ) -> Result<serde_json::Value> {
        if self.inner.config.max_batch <= 1 {
            let mut out = self.run_queue(kind, session, vec![req]).await?;
            return out
                .pop()
                .ok_or_else(|| Error::Corrupt("empty queue batch answer".into()));
        }
        let state = self
            .inner
            .queue_batches
            .sessions
            .entry((kind, session))
            .or_default()
            .clone();
        let (tx, rx) = oneshot::channel();
        let lead = {
            let mut st = state.lock();
            st.pending.push((req, tx));
            !std::mem::replace(&mut st.running, true)
        };
        if lead {
            // The call runs on its own task, so a caller that gives up (timeout, dropped
            // future) never strands the requests that joined its batch.
            let store = self.clone();
            tokio::spawn(async move { store.drain_queue(kind, session, state).await });
        }
        batch_reply::answer("queue", rx).await
    }

    /// Runs the session's batches until nobody waits.
    async fn drain_queue(self, kind: Kind, session: SessionId, state: Arc<Mutex<State>>) {
        let max = self.inner.config.max_batch;
        loop {
            let taken: Vec<(serde_json::Value, Waiter)> = {
                let mut st = state.lock();
                if st.pending.is_empty() {
                    st.running = false;
                    return;
                }
                let n = st.pending.len().min(max);
                st.pending.drain(..n).collect()
            };
            let (reqs, waiters): (Vec<_>, Vec<_>) = taken.into_iter().unzip();
            let outcome = self.run_queue(kind, session, reqs).await;
            batch_reply::reply("queue", waiters, outcome);
        }
    }

    /// One batch call: one answer per request, in order.
    async fn run_queue(
        &self,
        kind: Kind,
        session: SessionId,
        reqs: Vec<serde_json::Value>,
    ) -> Result<Vec<serde_json::Value>> {
        let answer: serde_json::Value = sqlx::query_scalar(kind.call())
            .bind(session.as_uuid())
            .bind(serde_json::Value::Array(reqs))
            .fetch_one(&self.inner.pool)
            .await
            .map_err(db_error)?;
        match answer {
            serde_json::Value::Array(answers) => Ok(answers),
            other => Err(Error::Corrupt(format!("{kind:?} batch answer: {other}"))),
        }
    }
}
