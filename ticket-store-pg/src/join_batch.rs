//! Coalescing (group commit) of queue joins per session: joins of a session that arrive while
//! a join batch of that session is in flight wait, then go together as one `tr_join_batch`
//! call, one transaction and one commit.
//!
//! Every join locks its session's queue row until its commit is flushed, so one join per
//! transaction queues a burst of joiners behind one WAL flush each. A batch takes the row
//! once and commits once for many joins, applying them in arrival order, each exactly as
//! `tr_join` applies one alone. One batch per session is in flight at a time (a second one
//! would only wait for the row lock), so joins of a session reach the database in arrival
//! order; sessions do not wait for each other.

use std::sync::Arc;

use dashmap::DashMap;
use parking_lot::Mutex;
use ticket_core::ids::SessionId;
use ticket_core::{Error, Result};
use tokio::sync::oneshot;

use crate::store::{PgStore, db_error};

type Waiter = oneshot::Sender<Result<serde_json::Value>>;

/// Join requests waiting per session.
#[derive(Default)]
pub(crate) struct JoinBatcher {
    sessions: DashMap<SessionId, Arc<Mutex<State>>>,
}

#[derive(Default)]
struct State {
    pending: Vec<(serde_json::Value, Waiter)>,
    /// A drain task runs for the session (it has at most one batch in flight).
    running: bool,
}

/// The whole call failed: every request in it gets this (the outcome is unknown, since the
/// commit may or may not have happened).
#[derive(Debug, thiserror::Error)]
#[error("batched join call failed: {0}")]
struct BatchFailed(String);

impl PgStore {
    /// Sends one join request (as `tr_join_batch` reads it: user, now, pre, max, id, actor),
    /// alone or with concurrent joins of the session; returns its `tr_join` answer.
    pub(crate) async fn submit_join(
        &self,
        session: SessionId,
        req: serde_json::Value,
    ) -> Result<serde_json::Value> {
        if self.inner.config.max_batch <= 1 {
            let mut out = self.run_joins(session, vec![req]).await?;
            return out
                .pop()
                .ok_or_else(|| Error::Corrupt("empty join batch answer".into()));
        }
        let state = self
            .inner
            .joins
            .sessions
            .entry(session)
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
            tokio::spawn(async move { store.drain_joins(session, state).await });
        }
        rx.await.map_err(|_| {
            Error::Unavailable(Box::new(BatchFailed("the batch was dropped".into())))
        })?
    }

    /// Runs the session's batches until nobody waits.
    async fn drain_joins(self, session: SessionId, state: Arc<Mutex<State>>) {
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
            match self.run_joins(session, reqs).await {
                Ok(answers) if answers.len() == waiters.len() => {
                    for (w, a) in waiters.into_iter().zip(answers) {
                        let _ = w.send(Ok(a));
                    }
                }
                Ok(answers) => {
                    let msg = format!("{} answers for {} joins", answers.len(), waiters.len());
                    for w in waiters {
                        let _ = w.send(Err(Error::Corrupt(msg.clone())));
                    }
                }
                Err(e) => {
                    let msg = e.to_string();
                    for w in waiters {
                        let _ = w.send(Err(Error::Unavailable(Box::new(BatchFailed(msg.clone())))));
                    }
                }
            }
        }
    }

    /// One `tr_join_batch` call: one answer per request, in order.
    async fn run_joins(
        &self,
        session: SessionId,
        reqs: Vec<serde_json::Value>,
    ) -> Result<Vec<serde_json::Value>> {
        let answer: serde_json::Value = sqlx::query_scalar("SELECT tr_join_batch($1, $2)")
            .bind(session.as_uuid())
            .bind(serde_json::Value::Array(reqs))
            .fetch_one(&self.inner.pool)
            .await
            .map_err(db_error)?;
        match answer {
            serde_json::Value::Array(answers) => Ok(answers),
            other => Err(Error::Corrupt(format!("join batch answer: {other}"))),
        }
    }
}
