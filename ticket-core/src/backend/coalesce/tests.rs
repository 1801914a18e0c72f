//! The coalescer's guarantees, one test each, against a fake store that records what it ran.

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use parking_lot::Mutex;

use super::*;
use crate::error::Error;

/// What a fake call does.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Mode {
    /// Answers `request * 2` for each request.
    Answer,
    /// Fails the batch with `Unavailable` (an I/O error as the cause).
    Unavailable,
    /// Fails the batch with `Corrupt`.
    Corrupt,
    /// Answers one answer too few.
    ShortAnswer,
    /// Panics.
    Panic,
}

/// One batch as the fake saw it: its keys and its requests.
type Seen = (Vec<u32>, Vec<(u32, u64)>);

/// A fake store: records every batch, and how many batches run at once (per key and in all).
#[derive(Default)]
struct Fake {
    batches: Mutex<Vec<Seen>>,
    running: AtomicUsize,
    max_running: AtomicUsize,
    running_per_key: Mutex<HashMap<u32, usize>>,
    max_running_per_key: AtomicUsize,
    /// A key found in two batches in flight at once.
    overlap: AtomicUsize,
    mode: Mutex<HashMap<u32, Mode>>,
}

impl Fake {
    fn mode(&self, key: u32) -> Mode {
        self.mode.lock().get(&key).copied().unwrap_or(Mode::Answer)
    }

    fn batch_sizes(&self) -> Vec<usize> {
        self.batches.lock().iter().map(|(_, r)| r.len()).collect()
    }
}

type Ctx = Arc<Fake>;

/// A request: its key (repeated, so the fake can check it against the batch's keys) and a
/// number.
struct Numbers;

impl BatchKind for Numbers {
    type Key = u32;
    type Request = (u32, u64);
    type Answer = u64;
    type Context = Ctx;

    async fn run(ctx: &Ctx, keys: &[u32], requests: Vec<(u32, u64)>) -> Result<Vec<u64>> {
        let now = ctx.running.fetch_add(1, Ordering::SeqCst) + 1;
        ctx.max_running.fetch_max(now, Ordering::SeqCst);
        {
            let mut per_key = ctx.running_per_key.lock();
            for k in keys {
                let n = per_key.entry(*k).or_default();
                *n += 1;
                if *n > 1 {
                    ctx.overlap.fetch_add(1, Ordering::SeqCst);
                }
                ctx.max_running_per_key.fetch_max(*n, Ordering::SeqCst);
            }
        }
        ctx.batches.lock().push((keys.to_vec(), requests.clone()));
        tokio::time::sleep(Duration::from_millis(5)).await;
        {
            let mut per_key = ctx.running_per_key.lock();
            for k in keys {
                *per_key.entry(*k).or_default() -= 1;
            }
        }
        ctx.running.fetch_sub(1, Ordering::SeqCst);
        let mode = keys.first().map_or(Mode::Answer, |k| ctx.mode(*k));
        match mode {
            Mode::Answer => Ok(requests.iter().map(|(_, n)| n * 2).collect()),
            Mode::Unavailable => Err(Error::Unavailable(Box::new(std::io::Error::other(
                "connection reset",
            )))),
            Mode::Corrupt => Err(Error::Corrupt("bad reply".into())),
            Mode::ShortAnswer => Ok(requests.iter().skip(1).map(|(_, n)| *n).collect()),
            Mode::Panic => panic!("the fake store panicked"),
        }
    }
}

fn coalescer(scope: Scope, max_batch: usize, max_in_flight: usize) -> Arc<Coalescer<Numbers>> {
    Arc::new(Coalescer::new(
        scope,
        Limits {
            max_batch,
            max_in_flight,
        },
        |task| {
            tokio::spawn(task);
        },
    ))
}

/// Submits `(key, n)` for every pair at once, each on its own task; returns the results in
/// the same order.
async fn submit_all(
    c: &Arc<Coalescer<Numbers>>,
    ctx: &Ctx,
    reqs: impl IntoIterator<Item = (u32, u64)>,
) -> Vec<Result<u64>> {
    let tasks: Vec<_> = reqs
        .into_iter()
        .map(|(k, n)| {
            let (c, ctx) = (c.clone(), ctx.clone());
            tokio::spawn(async move { c.submit(&ctx, k, (k, n)).await })
        })
        .collect();
    let mut out = Vec::new();
    for t in tasks {
        out.push(t.await.expect("task"));
    }
    out
}

fn unavailable_source(e: &Error) -> &(dyn std::error::Error + Send + Sync + 'static) {
    match e {
        Error::Unavailable(source) => &**source,
        other => panic!("expected Unavailable, got {other:?}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_requests_share_batches_and_get_their_own_answers() {
    for scope in [Scope::PerKey, Scope::Shared] {
        let (c, ctx) = (coalescer(scope, 64, 1), Ctx::default());
        let results = submit_all(&c, &ctx, (0..200).map(|n| (7, n))).await;
        for (n, r) in results.into_iter().enumerate() {
            assert_eq!(r.expect("answer"), n as u64 * 2);
        }
        let sizes = ctx.batch_sizes();
        assert_eq!(sizes.iter().sum::<usize>(), 200);
        assert!(
            sizes.len() < 200,
            "{scope:?}: no two requests shared a batch: {sizes:?}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_batch_never_exceeds_max_batch() {
    for scope in [Scope::PerKey, Scope::Shared] {
        let (c, ctx) = (coalescer(scope, 5, 2), Ctx::default());
        let results = submit_all(&c, &ctx, (0..300).map(|n| ((n % 3) as u32, n))).await;
        assert!(results.iter().all(Result::is_ok));
        let sizes = ctx.batch_sizes();
        assert_eq!(sizes.iter().sum::<usize>(), 300);
        assert!(sizes.iter().all(|s| (1..=5).contains(s)), "{sizes:?}");
        assert!(
            sizes.contains(&5),
            "{scope:?}: batches never filled: {sizes:?}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn per_key_batches_in_flight_are_bounded_per_key() {
    let (c, ctx) = (coalescer(Scope::PerKey, 4, 2), Ctx::default());
    let results = submit_all(&c, &ctx, (0..400).map(|n| ((n % 4) as u32, n))).await;
    assert!(results.iter().all(Result::is_ok));
    assert_eq!(ctx.max_running_per_key.load(Ordering::SeqCst), 2);
    // Keys do not wait for each other: batches of different keys ran together.
    assert!(ctx.max_running.load(Ordering::SeqCst) > 2);
    for (keys, reqs) in ctx.batches.lock().iter() {
        assert_eq!(keys.len(), 1, "a per-key batch carries one key");
        assert!(reqs.iter().all(|(k, _)| *k == keys[0]));
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn one_batch_per_key_in_flight_keeps_arrival_order() {
    let (c, ctx) = (coalescer(Scope::PerKey, 8, 1), Ctx::default());
    // One task submits in order, never waiting for an answer before the next submit.
    let mut pending = Vec::new();
    for n in 0..100u64 {
        let (c2, ctx2) = (c.clone(), ctx.clone());
        pending.push(tokio::spawn(
            async move { c2.submit(&ctx2, 1, (1, n)).await },
        ));
        tokio::task::yield_now().await;
    }
    for p in pending {
        p.await.expect("task").expect("answer");
    }
    assert_eq!(ctx.max_running_per_key.load(Ordering::SeqCst), 1);
    assert_eq!(ctx.overlap.load(Ordering::SeqCst), 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn shared_batches_mix_keys_bound_the_total_and_keep_keys_exclusive() {
    let (c, ctx) = (coalescer(Scope::Shared, 16, 3), Ctx::default());
    let results = submit_all(&c, &ctx, (0..600).map(|n| ((n % 20) as u32, n))).await;
    assert!(results.iter().all(Result::is_ok));
    assert!(ctx.max_running.load(Ordering::SeqCst) <= 3);
    assert_eq!(
        ctx.overlap.load(Ordering::SeqCst),
        0,
        "a key in two batches at once"
    );
    assert_eq!(ctx.max_running_per_key.load(Ordering::SeqCst), 1);
    let batches = ctx.batches.lock();
    assert!(
        batches.iter().any(|(keys, _)| keys.len() > 1),
        "no batch mixed keys"
    );
    for (keys, reqs) in batches.iter() {
        // `keys` lists each key of the batch once, in order of first arrival.
        let mut seen = Vec::new();
        for (k, _) in reqs {
            if !seen.contains(k) {
                seen.push(*k);
            }
        }
        assert_eq!(keys, &seen);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_failed_batch_gives_every_waiter_the_same_kind_with_its_cause() {
    for scope in [Scope::PerKey, Scope::Shared] {
        let (c, ctx) = (coalescer(scope, 64, 1), Ctx::default());
        ctx.mode.lock().insert(1, Mode::Unavailable);
        ctx.mode.lock().insert(2, Mode::Corrupt);
        let down = submit_all(&c, &ctx, (0..50).map(|n| (1, n))).await;
        for r in &down {
            let e = r.as_ref().expect_err("failed batch");
            let source = unavailable_source(e);
            let failed = source
                .downcast_ref::<BatchFailed>()
                .expect("a BatchFailed source");
            assert!(failed.requests() >= 1);
            assert!(failed.to_string().contains("connection reset"), "{failed}");
            let cause = std::error::Error::source(failed).expect("the cause");
            assert!(cause.downcast_ref::<std::io::Error>().is_some());
        }
        let corrupt = submit_all(&c, &ctx, (0..50).map(|n| (2, n))).await;
        for r in &corrupt {
            match r {
                Err(Error::Corrupt(m)) => assert_eq!(m, "bad reply"),
                other => panic!("expected Corrupt, got {other:?}"),
            }
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_wrong_number_of_answers_is_corrupt_for_all() {
    let (c, ctx) = (coalescer(Scope::PerKey, 64, 1), Ctx::default());
    ctx.mode.lock().insert(3, Mode::ShortAnswer);
    for r in submit_all(&c, &ctx, (0..20).map(|n| (3, n))).await {
        assert!(matches!(r, Err(Error::Corrupt(_))), "{r:?}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_dropped_batch_is_a_typed_error_and_the_key_keeps_working() {
    for scope in [Scope::PerKey, Scope::Shared] {
        let (c, ctx) = (coalescer(scope, 64, 1), Ctx::default());
        ctx.mode.lock().insert(4, Mode::Panic);
        for r in submit_all(&c, &ctx, (0..10).map(|n| (4, n))).await {
            let e = r.expect_err("dropped batch");
            assert!(
                unavailable_source(&e)
                    .downcast_ref::<BatchDropped>()
                    .is_some()
            );
        }
        ctx.mode.lock().insert(4, Mode::Answer);
        for (n, r) in submit_all(&c, &ctx, (0..10).map(|n| (4, n)))
            .await
            .into_iter()
            .enumerate()
        {
            assert_eq!(r.expect("answer after a panic"), n as u64 * 2);
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_waiter_that_gives_up_does_not_disturb_the_others() {
    for scope in [Scope::PerKey, Scope::Shared] {
        let (c, ctx) = (coalescer(scope, 64, 1), Ctx::default());
        let tasks: Vec<_> = (0..100u64)
            .map(|n| {
                let (c, ctx) = (c.clone(), ctx.clone());
                tokio::spawn(async move { c.submit(&ctx, 5, (5, n)).await })
            })
            .collect();
        // Every other caller gives up before its answer comes.
        tokio::time::sleep(Duration::from_millis(1)).await;
        let mut kept = Vec::new();
        for (n, t) in tasks.into_iter().enumerate() {
            if n % 2 == 0 {
                t.abort();
            } else {
                kept.push((n, t));
            }
        }
        for (n, t) in kept {
            assert_eq!(t.await.expect("task").expect("answer"), n as u64 * 2);
        }
        // The requests of those who gave up were sent anyway.
        let sent: usize = ctx.batch_sizes().iter().sum();
        assert!(sent >= 50, "{sent}");
    }
}

#[tokio::test]
async fn max_batch_one_runs_each_request_alone_and_returns_the_error_unchanged() {
    let (c, ctx) = (coalescer(Scope::PerKey, 1, 1), Ctx::default());
    assert_eq!(c.submit(&ctx, 6, (6, 21)).await.expect("answer"), 42);
    ctx.mode.lock().insert(6, Mode::Unavailable);
    let e = c.submit(&ctx, 6, (6, 1)).await.expect_err("fails");
    assert!(
        unavailable_source(&e)
            .downcast_ref::<std::io::Error>()
            .is_some(),
        "the cause itself, not wrapped: {e:?}"
    );
    assert_eq!(ctx.batch_sizes(), vec![1, 1]);
}
