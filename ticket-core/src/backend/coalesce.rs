//! Coalescing (group commit): requests of one kind that arrive while a batch of their kind
//! is in flight wait, then go to the store together as one call (one script run, one
//! transaction, one commit), which answers each of them on its own.
//!
//! One round trip and one commit then serve many requests, which is what lets a hot session
//! go past one-call-per-operation rates. The backend says what a request, a key and an
//! answer are and how one batch runs ([`BatchKind`]); a [`Coalescer`] decides which
//! requests go together and when, and hands every caller its own answer.
//!
//! ```
//! use std::sync::Arc;
//! use ticket_core::backend::coalesce::{BatchKind, Coalescer, Limits, Scope};
//!
//! /// Doubles numbers, many per call.
//! struct Double;
//!
//! impl BatchKind for Double {
//!     type Key = u32;
//!     type Request = u64;
//!     type Answer = u64;
//!     type Context = Arc<()>; // a store handle in a real backend
//!     async fn run(_: &Arc<()>, _keys: &[u32], requests: Vec<u64>) -> ticket_core::Result<Vec<u64>> {
//!         Ok(requests.into_iter().map(|r| r * 2).collect())
//!     }
//! }
//!
//! # #[tokio::main(flavor = "current_thread")] async fn main() -> ticket_core::Result<()> {
//! let limits = Limits { max_batch: 64, max_in_flight: 2 };
//! let doubles = Coalescer::<Double>::new(Scope::PerKey, limits, |task| {
//!     tokio::spawn(task);
//! });
//! assert_eq!(doubles.submit(&Arc::new(()), 7, 21).await?, 42);
//! # Ok(()) }
//! ```
//!
//! # Guarantees
//! With `max_batch` ≥ 2:
//! * **Batch size**: every batch carries 1 to [`Limits::max_batch`] requests, never none.
//! * **Order**: a batch carries its requests in arrival order (the order in which
//!   [`Coalescer::submit`] queued them), and the answers it returns are matched to them in
//!   that order.
//! * **Batches in flight and exclusivity per key**, by [`Scope`]:
//!   * [`Scope::PerKey`]: a batch carries requests of one key only. At most
//!     [`Limits::max_in_flight`] batches of one key run at once; keys never wait for each
//!     other. With `max_in_flight = 1`, requests of a key reach the store in arrival order,
//!     batch after batch; with more, batches of one key overlap and their relative order is
//!     not promised.
//!   * [`Scope::Shared`]: a batch carries requests of any keys, taken in arrival order, but a
//!     key is in at most one batch in flight: a request whose key is in a running batch waits
//!     for a later one, so requests of a key reach the store in arrival order. At most
//!     [`Limits::max_in_flight`] batches run at once in all.
//! * **Failures**: one rule for every backend. A batch whose call fails gives each of its
//!   waiters an error of the same kind: [`Error::Unavailable`] stays `Unavailable`, with a
//!   [`BatchFailed`] source that names the cause and keeps it as its own source; every other
//!   kind (a `Corrupt` in particular) is repeated as it is. A call that returns a different
//!   number of answers than it was given requests is [`Error::Corrupt`] for all of them. A
//!   waiter whose batch was dropped before answering (the call panicked, or the task running
//!   it was stopped) gets [`Error::Unavailable`] with a [`BatchDropped`] source. In each case
//!   the outcome of the request is unknown: retry it with the same idempotency key.
//! * **Cancellation**: batches run on tasks of their own (started with the `spawn` function
//!   given to [`Coalescer::new`]), never on a caller's task, so a caller that gives up (a
//!   timeout, a dropped future) never strands or fails the requests batched with its own.
//!   Its request stays queued and is sent anyway, as a call cut off mid-flight may have been.
//!
//! With `max_batch` ≤ 1 nothing is coalesced: each request runs at once as a batch of one
//! on the caller's task, with no bound on calls in flight and no exclusivity, and the call's
//! error reaches the caller unchanged.
//!
//! # Cost
//! [`Scope::PerKey`] keeps one small queue per key in a sharded map (read-locked on the
//! common path, the key's queue locked only to push a request); the queues of keys are kept
//! for the coalescer's lifetime. [`Scope::Shared`] keeps one queue behind one lock, scanned
//! once per batch. No lock is held while a batch runs.

use std::collections::{HashMap, VecDeque};
use std::future::Future;
use std::hash::Hash;
use std::pin::Pin;
use std::sync::Arc;

use dashmap::DashMap;
use parking_lot::Mutex;
use tokio::sync::oneshot;

use crate::error::{Error, Result};

mod drain;
mod failure;
#[cfg(test)]
mod tests;

pub use failure::{BatchDropped, BatchFailed};

/// A kind of request that can be sent many at a time: what its key, request and answer are,
/// and how one batch of them runs.
pub trait BatchKind: 'static {
    /// What requests are grouped and kept exclusive by (a session id, say).
    type Key: Eq + Hash + Clone + Send + Sync + 'static;
    /// One request, as the batch call needs it.
    type Request: Send + 'static;
    /// One request's answer.
    type Answer: Send + 'static;
    /// What a batch runs with (a store handle); cloned for each task that runs batches.
    type Context: Clone + Send + Sync + 'static;

    /// Runs `requests` as one call and returns one answer per request, in the same order;
    /// an error fails the whole batch (see the module docs for what the waiters get).
    ///
    /// `keys` are the keys the batch carries, each once, in order of first arrival: one key
    /// under [`Scope::PerKey`], one or more under [`Scope::Shared`]. Each request must be
    /// applied as it would be alone (checked and applied all-or-nothing, one after another in
    /// the order given), so that batching changes throughput, never outcomes.
    fn run(
        ctx: &Self::Context,
        keys: &[Self::Key],
        requests: Vec<Self::Request>,
    ) -> impl Future<Output = Result<Vec<Self::Answer>>> + Send;
}

/// Which requests may share a batch, and what the in-flight bound counts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scope {
    /// A batch carries requests of one key; at most [`Limits::max_in_flight`] batches per key
    /// run at once, and keys do not wait for each other.
    PerKey,
    /// A batch carries requests of any keys; at most [`Limits::max_in_flight`] batches run at
    /// once in all, and a key is in at most one of them.
    Shared,
}

/// How big batches get and how many run at once.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Requests per batch at most; `1` (or `0`) turns coalescing off.
    pub max_batch: usize,
    /// Batches in flight at once: per key under [`Scope::PerKey`], in all under
    /// [`Scope::Shared`]; `0` counts as `1`.
    pub max_in_flight: usize,
}

/// A task that runs batches until none is left to run, handed to the `spawn` function of
/// [`Coalescer::new`].
pub type Task = Pin<Box<dyn Future<Output = ()> + Send + 'static>>;

/// Coalesces requests of kind `B` into batches; see the module docs for its guarantees.
pub struct Coalescer<B: BatchKind> {
    scope: Scope,
    limits: Limits,
    spawn: Box<dyn Fn(Task) + Send + Sync>,
    queues: Queues<B>,
}

impl<B: BatchKind> std::fmt::Debug for Coalescer<B> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Coalescer")
            .field("scope", &self.scope)
            .field("limits", &self.limits)
            .finish_non_exhaustive()
    }
}

/// Where one request's answer goes.
type Waiter<A> = oneshot::Sender<Result<A>>;

enum Queues<B: BatchKind> {
    PerKey(DashMap<B::Key, Arc<Lane<B>>>),
    Shared(Arc<Mutex<SharedQueue<B>>>),
}

/// The requests of one key waiting to be sent, under [`Scope::PerKey`].
struct Lane<B: BatchKind> {
    state: Mutex<LaneState<B>>,
}

struct LaneState<B: BatchKind> {
    pending: VecDeque<(B::Request, Waiter<B::Answer>)>,
    /// Tasks running batches of this key (each has at most one batch in flight).
    running: usize,
}

/// Every waiting request, under [`Scope::Shared`].
struct SharedQueue<B: BatchKind> {
    pending: Vec<Pending<B>>,
    /// Tasks running batches (each has at most one batch in flight).
    running: usize,
    /// Keys with a batch in flight, each with the number of that batch.
    busy: HashMap<B::Key, u64>,
    /// The number of the next batch.
    next_batch: u64,
}

struct Pending<B: BatchKind> {
    key: B::Key,
    request: B::Request,
    waiter: Waiter<B::Answer>,
}

impl<B: BatchKind> Coalescer<B> {
    /// A coalescer of `scope` within `limits`. `spawn` starts a [`Task`] that runs batches
    /// (with tokio: `|task| { tokio::spawn(task); }`); it is called from
    /// [`Coalescer::submit`], at most once per request, and never while a lock is held.
    pub fn new(scope: Scope, limits: Limits, spawn: impl Fn(Task) + Send + Sync + 'static) -> Self {
        let limits = Limits {
            max_batch: limits.max_batch,
            max_in_flight: limits.max_in_flight.max(1),
        };
        let queues = match scope {
            Scope::PerKey => Queues::PerKey(DashMap::new()),
            Scope::Shared => Queues::Shared(Arc::new(Mutex::new(SharedQueue {
                pending: Vec::new(),
                running: 0,
                busy: HashMap::new(),
                next_batch: 0,
            }))),
        };
        Self {
            scope,
            limits,
            spawn: Box::new(spawn),
            queues,
        }
    }

    /// Which requests share a batch.
    pub fn scope(&self) -> Scope {
        self.scope
    }

    /// The limits this coalescer runs with (`max_in_flight` at least 1).
    pub fn limits(&self) -> Limits {
        self.limits
    }

    /// Sends `request` of `key`, alone or in a batch with concurrent requests, and returns
    /// its answer. Batches run with a clone of `ctx`. See the module docs for the errors.
    pub async fn submit(
        &self,
        ctx: &B::Context,
        key: B::Key,
        request: B::Request,
    ) -> Result<B::Answer> {
        if self.limits.max_batch <= 1 {
            let answers = B::run(ctx, std::slice::from_ref(&key), vec![request]).await?;
            return only_answer(answers);
        }
        let (waiter, answer) = oneshot::channel();
        let task = match &self.queues {
            Queues::PerKey(lanes) => self.enqueue_per_key(lanes, ctx, key, request, waiter),
            Queues::Shared(queue) => self.enqueue_shared(queue, ctx, key, request, waiter),
        };
        if let Some(task) = task {
            (self.spawn)(task);
        }
        answer
            .await
            .unwrap_or_else(|_| Err(Error::Unavailable(Box::new(BatchDropped))))
    }

    /// Queues the request on its key's lane; returns a task to start when the lane may run
    /// another batch.
    fn enqueue_per_key(
        &self,
        lanes: &DashMap<B::Key, Arc<Lane<B>>>,
        ctx: &B::Context,
        key: B::Key,
        request: B::Request,
        waiter: Waiter<B::Answer>,
    ) -> Option<Task> {
        // A shard read lock on the common path; the entry (a write lock) only for a new key.
        let found = lanes.get(&key).map(|lane| Arc::clone(lane.value()));
        let lane = match found {
            Some(lane) => lane,
            None => Arc::clone(
                lanes
                    .entry(key.clone())
                    .or_insert_with(|| {
                        Arc::new(Lane {
                            state: Mutex::new(LaneState {
                                pending: VecDeque::new(),
                                running: 0,
                            }),
                        })
                    })
                    .value(),
            ),
        };
        let lead = {
            let mut st = lane.state.lock();
            st.pending.push_back((request, waiter));
            let lead = st.running < self.limits.max_in_flight;
            if lead {
                st.running += 1;
            }
            lead
        };
        lead.then(|| -> Task {
            Box::pin(drain::drain_lane::<B>(
                ctx.clone(),
                key,
                lane,
                self.limits.max_batch,
            ))
        })
    }

    /// Queues the request in the shared queue; returns a task to start when another batch
    /// may run.
    fn enqueue_shared(
        &self,
        queue: &Arc<Mutex<SharedQueue<B>>>,
        ctx: &B::Context,
        key: B::Key,
        request: B::Request,
        waiter: Waiter<B::Answer>,
    ) -> Option<Task> {
        let lead = {
            let mut st = queue.lock();
            st.pending.push(Pending {
                key,
                request,
                waiter,
            });
            let lead = st.running < self.limits.max_in_flight;
            if lead {
                st.running += 1;
            }
            lead
        };
        lead.then(|| -> Task {
            Box::pin(drain::drain_shared::<B>(
                ctx.clone(),
                Arc::clone(queue),
                self.limits.max_batch,
            ))
        })
    }
}

/// The one answer of a batch of one.
fn only_answer<A>(answers: Vec<A>) -> Result<A> {
    let n = answers.len();
    match (answers.into_iter().next(), n) {
        (Some(answer), 1) => Ok(answer),
        _ => Err(Error::Corrupt(format!(
            "a batch of 1 request got {n} answers"
        ))),
    }
}
