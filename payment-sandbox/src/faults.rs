//! Fault injection for webhook delivery, seeded and reproducible.
//!
//! Each endpoint has its own [`Faults`] and its own random stream seeded from
//! [`Faults::seed`]: the same events emitted in the same order get the same faults, run
//! after run.

use std::time::Duration;

use rand_chacha::ChaCha8Rng;
use rand_core::{RngCore, SeedableRng};
use serde::{Deserialize, Serialize};

use crate::error::SandboxError;

/// How long each delivery waits before its first attempt.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
#[non_exhaustive]
pub enum Delay {
    /// Deliver at once.
    #[default]
    None,
    /// Always wait this long.
    Fixed {
        /// Milliseconds (real time: fault delays are not scaled).
        ms: u64,
    },
    /// Wait a uniformly random time in `min_ms..=max_ms`.
    Range {
        /// Shortest wait, milliseconds (real time).
        min_ms: u64,
        /// Longest wait, milliseconds (real time).
        max_ms: u64,
    },
}

/// The faults one endpoint suffers. Probabilities are in `0.0..=1.0`.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(default)]
#[serde(deny_unknown_fields)]
pub struct Faults {
    /// Seed of the endpoint's random stream.
    pub seed: u64,
    /// Delay before each delivery (each copy draws its own).
    pub delay: Delay,
    /// Probability that an event is delivered more than once.
    pub duplicate_probability: f64,
    /// Extra copies of a duplicated event (1..=10).
    pub duplicate_copies: u32,
    /// Probability that an event is held back and released only after a later event to the
    /// same endpoint was attempted (or after `reorder_max_hold_ms`).
    pub reorder_probability: f64,
    /// The longest an event is held back, milliseconds (real time; at least 1 when
    /// `reorder_probability` is above 0).
    pub reorder_max_hold_ms: u64,
    /// Probability that an event's first `fail_first_attempts` attempts fail (as if the
    /// receiver were unreachable), so the retry schedule takes over.
    pub fail_first_probability: f64,
    /// How many first attempts fail when that happens.
    pub fail_first_attempts: u32,
    /// Probability that a delivery carries a corrupted signature (for negative tests).
    pub corrupt_signature_probability: f64,
}

impl Faults {
    /// No faults at all.
    pub fn none() -> Self {
        Self::default()
    }

    /// Checks probabilities and ranges; an invalid configuration is refused whole.
    pub fn validate(&self) -> Result<(), SandboxError> {
        let bad = |m: String| Err(SandboxError::InvalidFaults(m));
        for (name, p) in [
            ("duplicate_probability", self.duplicate_probability),
            ("reorder_probability", self.reorder_probability),
            ("fail_first_probability", self.fail_first_probability),
            (
                "corrupt_signature_probability",
                self.corrupt_signature_probability,
            ),
        ] {
            if !(0.0..=1.0).contains(&p) {
                return bad(format!("{name} must be within 0..=1, got {p}"));
            }
        }
        if self.duplicate_probability > 0.0 && !(1..=10).contains(&self.duplicate_copies) {
            return bad(format!(
                "duplicate_copies must be within 1..=10, got {}",
                self.duplicate_copies
            ));
        }
        if self.reorder_probability > 0.0 && self.reorder_max_hold_ms == 0 {
            return bad("reorder_max_hold_ms must be at least 1 when events are reordered".into());
        }
        if self.fail_first_attempts > 20 {
            return bad(format!(
                "fail_first_attempts must be at most 20, got {}",
                self.fail_first_attempts
            ));
        }
        if let Delay::Range { min_ms, max_ms } = self.delay
            && min_ms > max_ms
        {
            return bad(format!("delay range {min_ms}..={max_ms} is empty"));
        }
        Ok(())
    }
}

/// The faults drawn for one copy of one event.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CopyPlan {
    /// Wait before the first attempt (real time).
    pub delay: Duration,
    /// Hold back until a later event was attempted.
    pub held_back: bool,
    /// Attempts to fail before really sending.
    pub fail_first: u32,
    /// Send a corrupted signature.
    pub corrupt_signature: bool,
}

/// An endpoint's random stream.
#[derive(Debug)]
pub struct Dice {
    rng: ChaCha8Rng,
}

impl Dice {
    /// A stream seeded with `seed`.
    pub fn new(seed: u64) -> Self {
        Self {
            rng: ChaCha8Rng::seed_from_u64(seed),
        }
    }

    fn chance(&mut self, p: f64) -> bool {
        // 53 random bits as a float in [0, 1).
        let x = (self.rng.next_u64() >> 11) as f64 / (1u64 << 53) as f64;
        x < p
    }

    fn between(&mut self, min: u64, max: u64) -> u64 {
        let span = max.saturating_sub(min).saturating_add(1);
        min + self.rng.next_u64() % span
    }

    /// The copies of one event to deliver and the faults of each (at least one copy).
    pub fn plan(&mut self, faults: &Faults) -> Vec<CopyPlan> {
        let copies = if self.chance(faults.duplicate_probability) {
            1 + faults.duplicate_copies
        } else {
            1
        };
        let held_back = self.chance(faults.reorder_probability);
        let fail_first = if self.chance(faults.fail_first_probability) {
            faults.fail_first_attempts
        } else {
            0
        };
        (0..copies)
            .map(|copy| CopyPlan {
                delay: Duration::from_millis(match faults.delay {
                    Delay::None => 0,
                    Delay::Fixed { ms } => ms,
                    Delay::Range { min_ms, max_ms } => self.between(min_ms, max_ms),
                }),
                // Only the original is held back or failed: copies model a sender that
                // delivered more than once, each on its own path.
                held_back: held_back && copy == 0,
                fail_first: if copy == 0 { fail_first } else { 0 },
                corrupt_signature: self.chance(faults.corrupt_signature_probability),
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn heavy() -> Faults {
        Faults {
            seed: 7,
            delay: Delay::Range {
                min_ms: 0,
                max_ms: 100,
            },
            duplicate_probability: 0.3,
            duplicate_copies: 2,
            reorder_probability: 0.3,
            reorder_max_hold_ms: 50,
            fail_first_probability: 0.1,
            fail_first_attempts: 1,
            corrupt_signature_probability: 0.0,
        }
    }

    #[test]
    fn the_same_seed_draws_the_same_faults() {
        let f = heavy();
        let (mut a, mut b) = (Dice::new(f.seed), Dice::new(f.seed));
        let (pa, pb): (Vec<_>, Vec<_>) = (0..200).map(|_| (a.plan(&f), b.plan(&f))).unzip();
        assert_eq!(pa, pb);
        let mut c = Dice::new(8);
        let pc: Vec<_> = (0..200).map(|_| c.plan(&f)).collect();
        assert_ne!(pa, pc, "another seed, other faults");
    }

    #[test]
    fn rates_are_close_to_the_configured_probabilities() {
        let f = heavy();
        let mut d = Dice::new(1);
        let plans: Vec<_> = (0..10_000).map(|_| d.plan(&f)).collect();
        let dup = plans.iter().filter(|p| p.len() > 1).count();
        let held = plans.iter().filter(|p| p[0].held_back).count();
        let failed = plans.iter().filter(|p| p[0].fail_first > 0).count();
        assert!((2_700..3_300).contains(&dup), "{dup}");
        assert!((2_700..3_300).contains(&held), "{held}");
        assert!((800..1_200).contains(&failed), "{failed}");
        assert!(plans.iter().all(|p| p.len() == 1 || p.len() == 3));
        assert!(
            plans
                .iter()
                .flatten()
                .all(|c| c.delay <= Duration::from_millis(100))
        );
    }

    #[test]
    fn invalid_faults_are_refused() {
        let mut f = heavy();
        assert!(f.validate().is_ok());
        f.duplicate_probability = 1.5;
        assert!(f.validate().is_err());
        let mut f = heavy();
        f.duplicate_copies = 0;
        assert!(f.validate().is_err());
        let mut f = heavy();
        f.delay = Delay::Range {
            min_ms: 5,
            max_ms: 1,
        };
        assert!(f.validate().is_err());
        let mut f = heavy();
        f.reorder_max_hold_ms = 0;
        assert!(f.validate().is_err(), "reordering needs a hold time");
        let mut f = heavy();
        f.fail_first_probability = f64::NAN;
        assert!(f.validate().is_err(), "NaN is not a probability");
    }
}
