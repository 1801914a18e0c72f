//! Throttle state in this process's memory: one mutex over the rates and the failures, the
//! rules of [`super::policy`] run under it. Limits hold for one process only.
//!
//! Bounded: every [`SWEEP_EVERY`] (of the clock the calls pass) keys whose bucket is full
//! again or whose failures are forgotten are dropped, so the maps hold only keys active in
//! the last window of their rule.

use std::collections::HashMap;

use async_trait::async_trait;
use parking_lot::Mutex;
use ticket_core::Timestamp;

use super::policy::{Failures, attempt_step, gcra_step};
use super::{Backoff, Rate, Result, ThrottleStore, Verdict, check_key};

/// How often (clock milliseconds) spent keys are dropped.
pub const SWEEP_EVERY: i64 = 10_000;

#[derive(Debug, Default)]
struct Inner {
    /// TAT per key.
    rates: HashMap<String, i64>,
    /// Failures per key, with the instant the key may be forgotten.
    failures: HashMap<String, (Failures, i64)>,
    last_sweep_ms: i64,
}

impl Inner {
    fn sweep_if_due(&mut self, now_ms: i64) {
        if now_ms - self.last_sweep_ms < SWEEP_EVERY {
            return;
        }
        self.last_sweep_ms = now_ms;
        self.rates.retain(|_, tat| *tat > now_ms);
        self.failures.retain(|_, (_, expires)| *expires > now_ms);
    }
}

/// Throttle state of one process. Cheap to share behind an `Arc`.
#[derive(Debug, Default)]
pub struct MemoryThrottle {
    inner: Mutex<Inner>,
}

impl MemoryThrottle {
    /// Empty state.
    pub fn new() -> Self {
        Self::default()
    }

    /// How many rate keys and failure keys are held now.
    pub fn tracked_keys(&self) -> (usize, usize) {
        let inner = self.inner.lock();
        (inner.rates.len(), inner.failures.len())
    }
}

#[async_trait]
impl ThrottleStore for MemoryThrottle {
    async fn acquire(&self, key: &str, rate: Rate, now: Timestamp) -> Result<Verdict> {
        check_key(key)?;
        let now_ms = now.as_millis();
        let mut inner = self.inner.lock();
        inner.sweep_if_due(now_ms);
        let (verdict, tat) = gcra_step(inner.rates.get(key).copied(), rate, now_ms);
        if let Some(tat) = tat {
            inner.rates.insert(key.to_owned(), tat);
        }
        Ok(verdict)
    }

    async fn attempt(&self, key: &str, backoff: Backoff, now: Timestamp) -> Result<Verdict> {
        check_key(key)?;
        let now_ms = now.as_millis();
        let mut inner = self.inner.lock();
        inner.sweep_if_due(now_ms);
        let stored = inner.failures.get(key).map(|(f, _)| *f);
        let (verdict, next) = attempt_step(stored, backoff, now_ms);
        if let Some(next) = next {
            let expires = next.expires_ms(&backoff);
            inner.failures.insert(key.to_owned(), (next, expires));
        }
        Ok(verdict)
    }

    async fn clear(&self, key: &str) -> Result<()> {
        check_key(key)?;
        self.inner.lock().failures.remove(key);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[tokio::test]
    async fn spent_keys_are_swept() {
        let t = MemoryThrottle::new();
        let rate = Rate::new(10, Duration::from_secs(1)).unwrap();
        for i in 0..50 {
            let now = Timestamp::from_millis(1_000);
            t.acquire(&format!("k{i}"), rate, now).await.unwrap();
        }
        assert_eq!(t.tracked_keys().0, 50);
        t.acquire("k0", rate, Timestamp::from_millis(1_000 + SWEEP_EVERY))
            .await
            .unwrap();
        assert_eq!(t.tracked_keys().0, 1, "only the key just used");
        assert!(
            t.acquire("", rate, Timestamp::from_millis(0))
                .await
                .is_err()
        );
    }
}
