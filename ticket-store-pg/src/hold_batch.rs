//! Coalescing (group commit) of holds: requests that arrive while hold batches are in flight
//! wait, then go together as one `tr_hold_batch` call, one transaction and one commit.
//!
//! On a hot session the stock row is the bottleneck: each transaction keeps it locked until
//! its commit is flushed, so one hold per transaction queues every buyer on that lock. A batch
//! takes the lock once and commits once for many holds. Spread over many sessions, a batch
//! still saves a round trip and a commit per hold. Atomicity per request is unchanged: the
//! function checks each request completely before its first write, so a refusal changes
//! nothing and does not affect the others in the batch. Requests in different batches are
//! concurrent, so their relative order is not promised.

use parking_lot::Mutex;
use ticket_core::{Error, Result};
use tokio::sync::oneshot;

use crate::store::{PgStore, db_error};

type Waiter = oneshot::Sender<Result<serde_json::Value>>;

/// Hold requests waiting to be sent, and how many batches are running.
#[derive(Default)]
pub(crate) struct HoldBatcher {
    state: Mutex<State>,
}

#[derive(Default)]
struct State {
    pending: Vec<(serde_json::Value, Waiter)>,
    running: usize,
}

/// The whole call failed: every request in it gets this (the outcome is unknown, since the
/// commit may or may not have happened).
#[derive(Debug, thiserror::Error)]
#[error("batched hold call failed: {0}")]
struct BatchFailed(String);

impl PgStore {
    /// Sends one hold request (as `tr_hold_one` reads it), alone or with concurrent ones;
    /// returns its answer.
    pub(crate) async fn submit_hold(&self, req: serde_json::Value) -> Result<serde_json::Value> {
        if self.inner.config.max_batch <= 1 {
            let mut out = self.run_holds(vec![req]).await?;
            return out
                .pop()
                .ok_or_else(|| Error::Corrupt("empty batch answer".into()));
        }
        let (tx, rx) = oneshot::channel();
        let lead = {
            let mut st = self.inner.holds.state.lock();
            st.pending.push((req, tx));
            let lead = st.running < self.inner.config.max_in_flight;
            if lead {
                st.running += 1;
            }
            lead
        };
        if lead {
            // The call runs on its own task, so a caller that gives up (timeout, dropped
            // future) never strands the requests that joined its batch.
            let store = self.clone();
            tokio::spawn(async move { store.drain_holds().await });
        }
        rx.await.map_err(|_| {
            Error::Unavailable(Box::new(BatchFailed("the batch was dropped".into())))
        })?
    }

    /// Runs batches until nobody waits.
    async fn drain_holds(self) {
        let max = self.inner.config.max_batch;
        loop {
            let taken: Vec<(serde_json::Value, Waiter)> = {
                let mut st = self.inner.holds.state.lock();
                if st.pending.is_empty() {
                    st.running -= 1;
                    return;
                }
                let n = st.pending.len().min(max);
                st.pending.drain(..n).collect()
            };
            let (reqs, waiters): (Vec<_>, Vec<_>) = taken.into_iter().unzip();
            match self.run_holds(reqs).await {
                Ok(answers) if answers.len() == waiters.len() => {
                    for (w, a) in waiters.into_iter().zip(answers) {
                        let _ = w.send(Ok(a));
                    }
                }
                Ok(answers) => {
                    let msg = format!("{} answers for {} requests", answers.len(), waiters.len());
                    for w in waiters {
                        let _ = w.send(Err(Error::Corrupt(msg.clone())));
                    }
                }
                Err(e) => {
                    let msg = match &e {
                        Error::Unavailable(s) => format!("{e}: {s}"),
                        _ => e.to_string(),
                    };
                    for w in waiters {
                        let err = match &e {
                            Error::Corrupt(m) => Error::Corrupt(m.clone()),
                            _ => Error::Unavailable(Box::new(BatchFailed(msg.clone()))),
                        };
                        let _ = w.send(Err(err));
                    }
                }
            }
        }
    }

    /// One `tr_hold_batch` call: one round trip, one transaction.
    async fn run_holds(&self, reqs: Vec<serde_json::Value>) -> Result<Vec<serde_json::Value>> {
        let answers: serde_json::Value = sqlx::query_scalar("SELECT tr_hold_batch($1)")
            .bind(serde_json::Value::Array(reqs))
            .fetch_one(&self.inner.pool)
            .await
            .map_err(db_error)?;
        match answers {
            serde_json::Value::Array(a) => Ok(a),
            other => Err(Error::Corrupt(format!("hold batch answered {other}"))),
        }
    }
}
