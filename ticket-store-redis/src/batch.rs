//! Coalescing (group commit): requests for one session that arrive while a script call for
//! that session is in flight wait, then go together as one call of the same script, which
//! applies them one after another in arrival order, each all-or-nothing.
//!
//! One round trip and one script invocation then serve many requests, which is what lets a
//! hot session go past one-round-trip-per-operation rates. Up to
//! [`RedisConfig::max_in_flight`](crate::RedisConfig::max_in_flight) calls per session are in
//! flight at once, so Redis works on one batch while the next is on its way; requests in
//! different batches are concurrent, so their relative order is not promised. Atomicity per request is
//! unchanged: a script runs alone on the server, and each request inside it is checked and
//! applied as if it had been sent on its own.

use std::future::Future;
use std::sync::Arc;

use dashmap::DashMap;
use parking_lot::Mutex;
use redis::Value;
use ticket_core::ids::SessionId;
use ticket_core::{Error, Result};
use tokio::sync::oneshot;

use crate::store::RedisStore;

/// A kind of request that can be sent many at a time.
pub(crate) trait Batched: Send + Sized + 'static {
    /// Runs `reqs` as one script call; returns one reply per request, in order.
    fn run(
        store: &RedisStore,
        session: SessionId,
        reqs: &[Self],
    ) -> impl Future<Output = Result<Vec<Value>>> + Send;

    /// The batchers of this kind.
    fn batchers(store: &RedisStore) -> &DashMap<SessionId, Arc<Batch<Self>>>;
}

/// Per-session batches of each kind.
#[derive(Default)]
pub(crate) struct Batchers {
    pub(crate) holds: DashMap<SessionId, Arc<Batch<crate::hold_batch::HoldArgs>>>,
    pub(crate) joins: DashMap<SessionId, Arc<Batch<crate::queue::JoinArgs>>>,
    pub(crate) views: DashMap<SessionId, Arc<Batch<crate::queue_batch::ViewArgs>>>,
    pub(crate) leaves: DashMap<SessionId, Arc<Batch<crate::queue_batch::LeaveArgs>>>,
}

type Waiter = oneshot::Sender<Result<Value>>;

/// The requests waiting for one session, and whether a call is in flight.
pub(crate) struct Batch<R> {
    state: Mutex<State<R>>,
}

struct State<R> {
    pending: Vec<(R, Waiter)>,
    /// Drain tasks running (each has at most one call in flight).
    running: usize,
}

/// The whole call failed: every request in it gets this (the outcome is unknown).
#[derive(Debug, thiserror::Error)]
#[error("batched call failed: {0}")]
struct BatchFailed(String);

impl RedisStore {
    /// Sends `req` for `session`, alone or together with concurrent requests.
    pub(crate) async fn submit<R: Batched>(&self, session: SessionId, req: R) -> Result<Value> {
        if self.inner.config.max_batch <= 1 {
            let mut out = R::run(self, session, std::slice::from_ref(&req)).await?;
            return out
                .pop()
                .ok_or_else(|| Error::Corrupt("empty batch reply".into()));
        }
        let batch = R::batchers(self)
            .entry(session)
            .or_insert_with(|| {
                Arc::new(Batch {
                    state: Mutex::new(State {
                        pending: Vec::new(),
                        running: 0,
                    }),
                })
            })
            .clone();
        let (tx, rx) = oneshot::channel();
        let lead = {
            let mut st = batch.state.lock();
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
            tokio::spawn(async move { store.drain(session, batch).await });
        }
        rx.await.map_err(|_| {
            Error::Unavailable(Box::new(BatchFailed("the batch was dropped".into())))
        })?
    }

    /// Runs batches for `session` until nobody waits.
    async fn drain<R: Batched>(self, session: SessionId, batch: Arc<Batch<R>>) {
        let max = self.inner.config.max_batch;
        loop {
            let taken: Vec<(R, Waiter)> = {
                let mut st = batch.state.lock();
                if st.pending.is_empty() {
                    st.running -= 1;
                    return;
                }
                let n = st.pending.len().min(max);
                st.pending.drain(..n).collect()
            };
            let (reqs, waiters): (Vec<R>, Vec<Waiter>) = taken.into_iter().unzip();
            match R::run(&self, session, &reqs).await {
                Ok(replies) if replies.len() == waiters.len() => {
                    for (w, r) in waiters.into_iter().zip(replies) {
                        let _ = w.send(Ok(r));
                    }
                }
                Ok(replies) => {
                    let msg = format!("{} replies for {} requests", replies.len(), waiters.len());
                    for w in waiters {
                        let _ = w.send(Err(Error::Corrupt(msg.clone())));
                    }
                }
                Err(e) => {
                    let msg = e.to_string();
                    let source = match &e {
                        Error::Unavailable(s) => format!("{msg}: {s}"),
                        _ => msg,
                    };
                    for w in waiters {
                        let _ = w.send(Err(Error::Unavailable(Box::new(BatchFailed(
                            source.clone(),
                        )))));
                    }
                }
            }
        }
    }
}
