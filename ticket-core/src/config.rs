//! Time limits, in one place, validated as a whole.

use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::error::InvalidInput;

/// Every time limit of the library. Build one, call [`TimeLimits::validate`] (the services
/// refuse an invalid one), and share it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct TimeLimits {
    /// How long an admission from the queue lasts (default 2 min).
    pub admission_ttl: Duration,
    /// How long a hold lasts before it expires (default 5 min).
    pub hold_ttl: Duration,
    /// The longest a payment provider may take to answer a checkout (default 2 min). A hold
    /// (which expires `hold_ttl` after it is created) must outlive it, so a checkout started
    /// right after the hold can finish before it expires; a checkout started later that gets
    /// no answer is resolved by polling the provider before the hold expires, and a payment
    /// that still lands late follows the late-payment policy.
    pub payment_timeout: Duration,
    /// How long before public sales open the pre-queue accepts joins (default 30 min).
    pub pre_queue_opens_before: Duration,
    /// How long idempotency records are kept (default 24 h).
    pub idempotency_retention: Duration,
    /// How long an in-flight idempotency marker protects a running request; after it a crashed
    /// request's key may run again (default 60 s).
    pub idempotency_in_flight_ttl: Duration,
}

impl Default for TimeLimits {
    fn default() -> Self {
        Self {
            admission_ttl: Duration::from_secs(120),
            hold_ttl: Duration::from_secs(300),
            payment_timeout: Duration::from_secs(120),
            pre_queue_opens_before: Duration::from_secs(1_800),
            idempotency_retention: Duration::from_secs(24 * 3_600),
            idempotency_in_flight_ttl: Duration::from_secs(60),
        }
    }
}

impl TimeLimits {
    /// Checks the limits against each other: every limit is at least one second, a hold
    /// outlives the payment timeout, an in-flight marker is shorter than the retention.
    pub fn validate(&self) -> Result<(), InvalidInput> {
        let bad = |m: &str| Err(InvalidInput::Config(m.to_owned()));
        let second = Duration::from_secs(1);
        for (name, d) in [
            ("admission_ttl", self.admission_ttl),
            ("hold_ttl", self.hold_ttl),
            ("payment_timeout", self.payment_timeout),
            ("idempotency_retention", self.idempotency_retention),
            ("idempotency_in_flight_ttl", self.idempotency_in_flight_ttl),
        ] {
            if d < second {
                return Err(InvalidInput::Config(format!(
                    "{name} must be at least one second"
                )));
            }
        }
        if self.hold_ttl <= self.payment_timeout {
            return bad("hold_ttl must be longer than payment_timeout");
        }
        if self.idempotency_in_flight_ttl >= self.idempotency_retention {
            return bad("idempotency_in_flight_ttl must be shorter than idempotency_retention");
        }
        if self.idempotency_retention < self.hold_ttl {
            return bad("idempotency_retention must outlive a hold");
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_are_valid_and_bad_combinations_are_not() {
        assert!(TimeLimits::default().validate().is_ok());
        let short_hold = TimeLimits {
            hold_ttl: Duration::from_secs(60),
            ..TimeLimits::default()
        };
        assert!(short_hold.validate().is_err());
        let zero = TimeLimits {
            admission_ttl: Duration::ZERO,
            ..TimeLimits::default()
        };
        assert!(zero.validate().is_err());
    }
}
