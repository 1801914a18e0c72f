//! A bound on concurrent password hashing (argon2id: ~19 MiB and one blocking thread per
//! hash), so a flood of signups or logins cannot exhaust memory or the blocking pool.
//!
//! At most `permits` hashes run at once (`--hash-concurrency`, default twice the cores). A
//! request waits for a permit at most `wait` (`--hash-wait-ms`), and at most
//! `4 × permits` requests wait at once; past either, [`Overloaded`] (503 `OVERLOADED` with
//! `Retry-After`). The permit moves into the blocking task and is released when the hash is
//! done, also when the request was cancelled meanwhile, so the bound counts running hashes,
//! not live requests.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use tokio::sync::Semaphore;

/// How many requests may wait for a permit, per permit.
pub const WAITERS_PER_PERMIT: usize = 4;

/// Why a hash was not run.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Overloaded {
    /// Every permit is taken and the wait budget (or the waiting room) is spent.
    #[error("password hashing is at capacity")]
    Busy,
    /// The blocking task panicked or was cancelled.
    #[error("hashing task failed")]
    Failed(#[source] tokio::task::JoinError),
}

/// The bound. Share it behind an `Arc`.
#[derive(Debug)]
pub struct HashingPool {
    permits: Arc<Semaphore>,
    size: usize,
    wait: Duration,
    max_waiting: usize,
    waiting: AtomicUsize,
    running: Arc<AtomicUsize>,
    peak_running: Arc<AtomicUsize>,
    peak_waiting: AtomicUsize,
}

/// Takes one waiter off the count when dropped (also on cancellation).
struct Waiting<'a>(&'a AtomicUsize);

impl Drop for Waiting<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::AcqRel);
    }
}

impl HashingPool {
    /// `permits` hashes at once (at least 1), waiting at most `wait` for one.
    pub fn new(permits: usize, wait: Duration) -> Self {
        let size = permits.max(1);
        Self {
            permits: Arc::new(Semaphore::new(size)),
            size,
            wait,
            max_waiting: size.saturating_mul(WAITERS_PER_PERMIT),
            waiting: AtomicUsize::new(0),
            running: Arc::new(AtomicUsize::new(0)),
            peak_running: Arc::new(AtomicUsize::new(0)),
            peak_waiting: AtomicUsize::new(0),
        }
    }

    /// The number of permits.
    pub fn size(&self) -> usize {
        self.size
    }

    /// The most hashes that ever ran at once (never more than [`HashingPool::size`]).
    pub fn peak_running(&self) -> usize {
        self.peak_running.load(Ordering::Acquire)
    }

    /// The most requests that ever waited at once (never more than `4 × size`).
    pub fn peak_waiting(&self) -> usize {
        self.peak_waiting.load(Ordering::Acquire)
    }

    /// Runs `hash` on the blocking pool under a permit, or answers [`Overloaded::Busy`].
    pub async fn run<T, F>(&self, hash: F) -> Result<T, Overloaded>
    where
        F: FnOnce() -> T + Send + 'static,
        T: Send + 'static,
    {
        let permit = match Arc::clone(&self.permits).try_acquire_owned() {
            Ok(p) => p,
            Err(_) => {
                let now_waiting = self.waiting.fetch_add(1, Ordering::AcqRel) + 1;
                let _waiting = Waiting(&self.waiting);
                if now_waiting > self.max_waiting {
                    return Err(Overloaded::Busy);
                }
                self.peak_waiting.fetch_max(now_waiting, Ordering::AcqRel);
                let acquire = Arc::clone(&self.permits).acquire_owned();
                match tokio::time::timeout(self.wait, acquire).await {
                    Ok(Ok(p)) => p,
                    // Timed out, or the semaphore closed (never: it is not closed).
                    _ => return Err(Overloaded::Busy),
                }
            }
        };
        let running = Arc::clone(&self.running);
        let peak = Arc::clone(&self.peak_running);
        tokio::task::spawn_blocking(move || {
            let _permit = permit;
            let now_running = running.fetch_add(1, Ordering::AcqRel) + 1;
            peak.fetch_max(now_running, Ordering::AcqRel);
            let out = hash();
            running.fetch_sub(1, Ordering::AcqRel);
            out
        })
        .await
        .map_err(Overloaded::Failed)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn past_the_permits_and_the_wait_requests_are_refused() {
        let pool = Arc::new(HashingPool::new(2, Duration::from_millis(20)));
        let mut tasks = Vec::new();
        for _ in 0..40 {
            let pool = Arc::clone(&pool);
            tasks.push(tokio::spawn(async move {
                pool.run(|| std::thread::sleep(Duration::from_millis(50)))
                    .await
                    .is_ok()
            }));
        }
        let mut ok = 0;
        for t in tasks {
            ok += usize::from(t.await.unwrap());
        }
        assert!((2..40).contains(&ok), "{ok} ran");
        assert!(pool.peak_running() <= 2, "{}", pool.peak_running());
        assert!(pool.peak_waiting() <= 8, "{}", pool.peak_waiting());
        assert!(pool.run(|| 7).await.is_ok_and(|v| v == 7), "free again");
    }
}
