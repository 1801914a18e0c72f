//! The tasks that run batches: take requests, run them as one call, hand out the answers.

use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::Arc;
use std::task::Poll;

use parking_lot::Mutex;

use super::failure::deliver;
use super::{BatchKind, Lane, SharedQueue};
use crate::error::Result;

/// Runs the lane's batches until nobody waits.
pub(super) async fn drain_lane<B: BatchKind>(
    ctx: B::Context,
    key: B::Key,
    lane: Arc<Lane<B>>,
    max_batch: usize,
) {
    let mut slot = LaneSlot {
        lane: &lane,
        held: true,
    };
    loop {
        let taken: Vec<_> = {
            let mut st = lane.state.lock();
            if st.pending.is_empty() {
                // Under the lock that pushes: a request queued after this sees a free slot.
                st.running -= 1;
                slot.held = false;
                return;
            }
            let n = st.pending.len().min(max_batch);
            st.pending.drain(..n).collect()
        };
        let (requests, waiters): (Vec<_>, Vec<_>) = taken.into_iter().unzip();
        let outcome = run_caught::<B>(&ctx, std::slice::from_ref(&key), requests).await;
        deliver(waiters, outcome);
    }
}

/// Gives a lane's running slot back if its task is dropped mid-batch.
struct LaneSlot<'a, B: BatchKind> {
    lane: &'a Lane<B>,
    held: bool,
}

impl<B: BatchKind> Drop for LaneSlot<'_, B> {
    fn drop(&mut self) {
        if self.held {
            let mut st = self.lane.state.lock();
            st.running = st.running.saturating_sub(1);
        }
    }
}

/// Runs batches from the shared queue until no waiting request may go: each batch takes, in
/// arrival order, up to `max_batch` requests whose keys have no batch in flight.
pub(super) async fn drain_shared<B: BatchKind>(
    ctx: B::Context,
    queue: Arc<Mutex<SharedQueue<B>>>,
    max_batch: usize,
) {
    let mut slot = SharedSlot {
        queue: &queue,
        held: true,
        keys: Vec::new(),
    };
    loop {
        let (requests, waiters) = {
            let mut st = queue.lock();
            let batch = st.next_batch;
            st.next_batch = st.next_batch.wrapping_add(1);
            let SharedQueue { pending, busy, .. } = &mut *st;
            let mut requests = Vec::new();
            let mut waiters = Vec::new();
            let mut left = Vec::with_capacity(pending.len());
            for p in pending.drain(..) {
                // A key busy in another batch waits; one taken by this batch may come again.
                let free = busy.get(&p.key).is_none_or(|b| *b == batch);
                if requests.len() < max_batch && free {
                    if busy.insert(p.key.clone(), batch).is_none() {
                        slot.keys.push(p.key);
                    }
                    requests.push(p.request);
                    waiters.push(p.waiter);
                } else {
                    left.push(p);
                }
            }
            *pending = left;
            if requests.is_empty() {
                st.running -= 1;
                slot.held = false;
                return;
            }
            (requests, waiters)
        };
        let outcome = run_caught::<B>(&ctx, &slot.keys, requests).await;
        slot.release_keys();
        deliver(waiters, outcome);
    }
}

/// The shared queue's running slot and the keys of the batch in flight, given back if the
/// task is dropped mid-batch.
struct SharedSlot<'a, B: BatchKind> {
    queue: &'a Mutex<SharedQueue<B>>,
    held: bool,
    keys: Vec<B::Key>,
}

impl<B: BatchKind> SharedSlot<'_, B> {
    fn release_keys(&mut self) {
        if self.keys.is_empty() {
            return;
        }
        let mut st = self.queue.lock();
        for k in self.keys.drain(..) {
            st.busy.remove(&k);
        }
    }
}

impl<B: BatchKind> Drop for SharedSlot<'_, B> {
    fn drop(&mut self) {
        self.release_keys();
        if self.held {
            let mut st = self.queue.lock();
            st.running = st.running.saturating_sub(1);
        }
    }
}

/// Runs one batch; `None` if the call panicked (its waiters then get
/// [`BatchDropped`](super::BatchDropped), and the task goes on with the next batch).
async fn run_caught<B: BatchKind>(
    ctx: &B::Context,
    keys: &[B::Key],
    requests: Vec<B::Request>,
) -> Option<Result<Vec<B::Answer>>> {
    let call = catch_unwind(AssertUnwindSafe(|| B::run(ctx, keys, requests))).ok()?;
    let mut call = std::pin::pin!(call);
    std::future::poll_fn(
        |cx| match catch_unwind(AssertUnwindSafe(|| call.as_mut().poll(cx))) {
            Ok(Poll::Ready(outcome)) => Poll::Ready(Some(outcome)),
            Ok(Poll::Pending) => Poll::Pending,
            Err(_) => Poll::Ready(None),
        },
    )
    .await
}
