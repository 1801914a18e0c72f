//! The two throttle rules as pure functions. [`super::MemoryThrottle`] runs them under its
//! mutex; `lua/*.lua` and `sql/*.sql` repeat them (atomicity demands it there), each naming
//! the function it mirrors.

use std::time::Duration;

use super::{Backoff, Rate, Verdict};

fn millis(d: Duration) -> i64 {
    i64::try_from(d.as_millis()).unwrap_or(i64::MAX)
}

fn refused(wait_ms: i64) -> Verdict {
    Verdict::Refused {
        retry_after: Duration::from_millis(u64::try_from(wait_ms.max(1)).unwrap_or(1)),
    }
}

/// One GCRA step: with `tat` the key's stored TAT (`None`: a full bucket), at `now_ms`.
/// Answers the verdict and the TAT to store when allowed (`None` when refused: nothing
/// changes). The key may be dropped once `now ≥ TAT`.
pub fn gcra_step(tat: Option<i64>, rate: Rate, now_ms: i64) -> (Verdict, Option<i64>) {
    let tat = tat.map_or(now_ms, |t| t.max(now_ms));
    let allow_at = tat.saturating_sub(rate.tolerance_ms);
    if now_ms < allow_at {
        return (refused(allow_at - now_ms), None);
    }
    (Verdict::Allowed, Some(tat.saturating_add(rate.interval_ms)))
}

/// The failure state of one key.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Failures {
    /// Attempts counted since the key was last cleared or forgotten.
    pub count: u32,
    /// Attempts are refused until then (epoch ms; 0 when never locked).
    pub locked_until_ms: i64,
    /// The last counted attempt (epoch ms).
    pub last_ms: i64,
}

impl Failures {
    /// When the key may be forgotten.
    pub fn expires_ms(&self, backoff: &Backoff) -> i64 {
        self.locked_until_ms
            .max(self.last_ms)
            .saturating_add(millis(backoff.forget_after))
    }
}

/// The lock that the `count`-th counted attempt sets (0 ms below the threshold):
/// `first × 2^(count − threshold)`, at most `max`.
pub fn lock_ms(count: u32, backoff: &Backoff) -> i64 {
    if count < backoff.threshold {
        return 0;
    }
    let doublings = (count - backoff.threshold).min(40);
    millis(backoff.first)
        .saturating_mul(1i64 << doublings)
        .min(millis(backoff.max))
}

/// One login attempt: with `state` the key's stored failures (`None`: none), at `now_ms`.
/// Answers the verdict and the state to store (`None` when refused: nothing changes).
pub fn attempt_step(
    state: Option<Failures>,
    backoff: Backoff,
    now_ms: i64,
) -> (Verdict, Option<Failures>) {
    let state = state.filter(|s| s.expires_ms(&backoff) > now_ms);
    if let Some(s) = state
        && now_ms < s.locked_until_ms
    {
        return (refused(s.locked_until_ms - now_ms), None);
    }
    let count = state.map_or(0, |s| s.count).saturating_add(1);
    let lock = lock_ms(count, &backoff);
    let next = Failures {
        count,
        locked_until_ms: if lock > 0 { now_ms + lock } else { 0 },
        last_ms: now_ms,
    };
    (Verdict::Allowed, Some(next))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn backoff() -> Backoff {
        Backoff {
            threshold: 3,
            first: Duration::from_secs(1),
            max: Duration::from_secs(10),
            forget_after: Duration::from_secs(60),
        }
    }

    #[test]
    fn gcra_allows_a_burst_then_one_per_interval() {
        let rate = Rate::new(3, Duration::from_secs(60)).unwrap();
        assert_eq!((rate.interval_ms, rate.tolerance_ms), (20_000, 40_000));
        let mut tat = None;
        for _ in 0..3 {
            let (v, t) = gcra_step(tat, rate, 1_000);
            assert_eq!(v, Verdict::Allowed);
            tat = t;
        }
        assert_eq!(tat, Some(61_000));
        let (v, t) = gcra_step(tat, rate, 1_000);
        assert_eq!(
            v,
            Verdict::Refused {
                retry_after: Duration::from_secs(20)
            }
        );
        assert_eq!(t, None, "a refusal changes nothing");
        assert_eq!(gcra_step(tat, rate, 21_000).0, Verdict::Allowed);
        assert!(Rate::new(0, Duration::from_secs(1)).is_none());
    }

    #[test]
    fn the_backoff_starts_at_the_threshold_and_doubles_up_to_the_cap() {
        let b = backoff();
        assert_eq!(
            (1..=9).map(|n| lock_ms(n, &b)).collect::<Vec<_>>(),
            [0, 0, 1_000, 2_000, 4_000, 8_000, 10_000, 10_000, 10_000]
        );
        assert_eq!(lock_ms(u32::MAX, &b), 10_000, "no overflow");
    }

    #[test]
    fn attempts_lock_the_key_and_locked_attempts_are_not_counted() {
        let b = backoff();
        let mut s = None;
        for now in [0, 1, 2] {
            let (v, next) = attempt_step(s, b, now);
            assert_eq!(v, Verdict::Allowed);
            s = next;
        }
        assert_eq!(s.unwrap().locked_until_ms, 1_002);
        let (v, next) = attempt_step(s, b, 500);
        assert_eq!(
            v,
            Verdict::Refused {
                retry_after: Duration::from_millis(502)
            }
        );
        assert!(next.is_none());
        let (v, next) = attempt_step(s, b, 1_002);
        assert_eq!(v, Verdict::Allowed);
        assert_eq!(next.unwrap().count, 4);
        assert_eq!(next.unwrap().locked_until_ms, 3_002);
        // Forgotten a minute after the lock ends: counting starts again.
        let (v, fresh) = attempt_step(next, b, 3_002 + 60_000);
        assert_eq!(v, Verdict::Allowed);
        assert_eq!(fresh.unwrap().count, 1);
    }
}
