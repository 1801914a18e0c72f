//! Refund policy as data: until when a buyer may cancel a confirmed reservation and what the
//! cancellation costs, per session. Pure rules; the flow is [`crate::service::RefundService`].
//!
//! A policy is a cancellation deadline relative to the performance start and a fee schedule
//! of tiers, each applying to cancellations made at least some time before the start. For
//! "free until 10 days before, 10 % until 3 days before, 30 % after, no cancellation after the
//! start":
//!
//! ```
//! use ticket_core::model::refund_policy::{FeeTier, RefundPolicy};
//! const DAY: u64 = 86_400;
//! let policy = RefundPolicy {
//!     cancel_until_before_start_secs: 0,
//!     tiers: vec![
//!         FeeTier { before_start_secs: 10 * DAY, fee_bps: 0 },
//!         FeeTier { before_start_secs: 3 * DAY, fee_bps: 1_000 },
//!         FeeTier { before_start_secs: 0, fee_bps: 3_000 },
//!     ],
//! };
//! assert!(policy.validate().is_ok());
//! ```
//!
//! An organiser who cancels the show refunds in full whatever the policy
//! ([`RefundBasis::Full`]).

use serde::{Deserialize, Serialize};

use crate::clock::Timestamp;
use crate::error::{InvalidInput, Refusal};
use crate::ids::HoldId;
use crate::model::money::Money;

/// 100 % in basis points.
pub const FULL_FEE_BPS: u32 = 10_000;

/// Most tiers a policy may have.
pub const MAX_FEE_TIERS: usize = 32;

/// One step of the fee schedule.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FeeTier {
    /// Applies to cancellations made at least this many seconds before the start (and
    /// before the next larger tier applies).
    pub before_start_secs: u64,
    /// The fee, in basis points of what was paid (`1000` = 10 %, `0..=10000`).
    pub fee_bps: u32,
}

/// When a confirmed reservation may be cancelled and at what fee.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RefundPolicy {
    /// No cancellation once the start is nearer than this many seconds (`0`: cancellations
    /// close at the start).
    pub cancel_until_before_start_secs: u64,
    /// The fee schedule; every instant a cancellation is accepted falls in exactly one tier.
    pub tiers: Vec<FeeTier>,
}

impl Default for RefundPolicy {
    /// Free cancellation until the start; none after it.
    fn default() -> Self {
        Self {
            cancel_until_before_start_secs: 0,
            tiers: vec![FeeTier {
                before_start_secs: 0,
                fee_bps: 0,
            }],
        }
    }
}

/// How much of a payment a cancellation returns.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RefundBasis {
    /// The session's refund policy decides the fee.
    Policy,
    /// Everything paid comes back (the organiser cancelled the show, or an operator chose
    /// to refund in full).
    Full,
}

/// What a cancellation of one reservation returns, decided once and kept with the
/// cancellation so that finishing the refund later returns exactly this.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RefundDecision {
    /// Policy or full.
    pub basis: RefundBasis,
    /// What was paid.
    pub paid: Money,
    /// What the cancellation costs (kept by the organiser).
    pub fee: Money,
    /// What goes back: `paid - fee`.
    pub refund: Money,
    /// The fee rate applied, in basis points.
    pub fee_bps: u32,
    /// The rule applied, in words (`"10 % fee: cancelled at least 3 days before the
    /// start"`); kept in the audit trail.
    pub rule: String,
}

const DECISION_PREFIX: &str = "refund-decision:";

impl RefundDecision {
    /// The decision as kept in the CANCELLED audit record's correlation id.
    pub fn encode(&self) -> String {
        // Serialising plain data into a string cannot fail.
        format!(
            "{DECISION_PREFIX}{}",
            serde_json::to_string(self).unwrap_or_default()
        )
    }

    /// The decision kept in a correlation id, if it holds one.
    pub fn decode(s: &str) -> Option<Self> {
        serde_json::from_str(s.strip_prefix(DECISION_PREFIX)?).ok()
    }
}

/// What cancelling a reservation now would cost, before the buyer confirms.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CancellationQuote {
    /// The reservation.
    pub hold: HoldId,
    /// The decision a cancellation at `quoted_at` makes.
    pub decision: RefundDecision,
    /// When the quote was made.
    pub quoted_at: Timestamp,
    /// The fee holds until this instant (exclusive); then the next tier applies, or
    /// cancellations close.
    pub valid_until: Timestamp,
    /// The last instant (exclusive) a cancellation is accepted.
    pub cancellable_until: Timestamp,
}

fn secs(s: u64) -> i64 {
    i64::try_from(s.saturating_mul(1000)).unwrap_or(i64::MAX)
}

fn before(start: Timestamp, secs_before: u64) -> Timestamp {
    Timestamp::from_millis(start.as_millis().saturating_sub(secs(secs_before)))
}

fn describe_duration(s: u64) -> String {
    const DAY: u64 = 86_400;
    const HOUR: u64 = 3_600;
    if s.is_multiple_of(DAY) {
        format!("{} day(s) before the start", s / DAY)
    } else if s.is_multiple_of(HOUR) {
        format!("{} hour(s) before the start", s / HOUR)
    } else {
        format!("{s} second(s) before the start")
    }
}

fn describe_bps(bps: u32) -> String {
    if bps.is_multiple_of(100) {
        format!("{} %", bps / 100)
    } else {
        format!("{}.{:02} %", bps / 100, bps % 100)
    }
}

impl RefundPolicy {
    /// Checks the policy: 1..=32 tiers with distinct thresholds, fees within 0..=100 %, and a
    /// tier for every instant a cancellation is accepted (the smallest threshold is at most
    /// the deadline).
    pub fn validate(&self) -> Result<(), InvalidInput> {
        let bad = |m: String| Err(InvalidInput::Policy(m));
        if self.tiers.is_empty() || self.tiers.len() > MAX_FEE_TIERS {
            return bad(format!(
                "a refund policy needs 1..={MAX_FEE_TIERS} fee tiers"
            ));
        }
        let mut seen = std::collections::HashSet::new();
        for t in &self.tiers {
            if t.fee_bps > FULL_FEE_BPS {
                return bad(format!("fee {} bps is over 100 %", t.fee_bps));
            }
            if !seen.insert(t.before_start_secs) {
                return bad(format!(
                    "two fee tiers start {} seconds before the start",
                    t.before_start_secs
                ));
            }
            if t.before_start_secs > 10 * 366 * 86_400 {
                return bad("a fee tier starts more than ten years before the start".into());
            }
        }
        if self.cancel_until_before_start_secs > 10 * 366 * 86_400 {
            return bad("the cancellation deadline is more than ten years before the start".into());
        }
        let smallest = self
            .tiers
            .iter()
            .map(|t| t.before_start_secs)
            .min()
            .unwrap_or(0);
        if smallest > self.cancel_until_before_start_secs {
            return bad(format!(
                "no fee tier covers cancellations between {} and {} seconds before the start",
                self.cancel_until_before_start_secs, smallest
            ));
        }
        Ok(())
    }

    /// The last instant (exclusive) a cancellation is accepted for a performance starting
    /// at `starts_at`.
    pub fn deadline(&self, starts_at: Timestamp) -> Timestamp {
        before(starts_at, self.cancel_until_before_start_secs)
    }

    /// What cancelling a reservation that paid `paid` at `now` costs, for a performance
    /// starting at `starts_at`, with `basis`. A full refund is always allowed (the
    /// organiser's decision); under the policy, `CancellationClosed` past the deadline.
    ///
    /// The fee is rounded down to the minor unit (in the buyer's favour).
    pub fn decide(
        &self,
        hold: HoldId,
        paid: Money,
        starts_at: Timestamp,
        now: Timestamp,
        basis: RefundBasis,
    ) -> Result<CancellationQuote, Refusal> {
        let deadline = self.deadline(starts_at);
        if basis == RefundBasis::Full {
            return Ok(CancellationQuote {
                hold,
                decision: RefundDecision {
                    basis,
                    paid,
                    fee: Money {
                        amount_minor: 0,
                        currency: paid.currency,
                    },
                    refund: paid,
                    fee_bps: 0,
                    rule: "full refund".to_owned(),
                },
                quoted_at: now,
                valid_until: Timestamp::from_millis(i64::MAX),
                cancellable_until: Timestamp::from_millis(i64::MAX),
            });
        }
        if now >= deadline {
            return Err(Refusal::CancellationClosed { deadline });
        }
        let remaining_ms = starts_at.as_millis().saturating_sub(now.as_millis());
        let mut tiers = self.tiers.clone();
        tiers.sort_by_key(|t| std::cmp::Reverse(t.before_start_secs));
        let idx = tiers
            .iter()
            .position(|t| secs(t.before_start_secs) <= remaining_ms)
            .ok_or(Refusal::CancellationClosed { deadline })?;
        let tier = tiers[idx];
        let fee_minor = i64::try_from(
            i128::from(paid.amount_minor) * i128::from(tier.fee_bps) / i128::from(FULL_FEE_BPS),
        )
        .unwrap_or(paid.amount_minor)
        .clamp(0, paid.amount_minor);
        let valid_until = before(starts_at, tier.before_start_secs).min(deadline);
        let rule = if tier.before_start_secs == 0 {
            format!(
                "{} fee: cancelled before the start",
                describe_bps(tier.fee_bps)
            )
        } else {
            format!(
                "{} fee: cancelled at least {}",
                describe_bps(tier.fee_bps),
                describe_duration(tier.before_start_secs)
            )
        };
        Ok(CancellationQuote {
            hold,
            decision: RefundDecision {
                basis,
                paid,
                fee: Money {
                    amount_minor: fee_minor,
                    currency: paid.currency,
                },
                refund: Money {
                    amount_minor: paid.amount_minor - fee_minor,
                    currency: paid.currency,
                },
                fee_bps: tier.fee_bps,
                rule,
            },
            quoted_at: now,
            valid_until,
            cancellable_until: deadline,
        })
    }
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;
    use crate::model::money::Currency;

    const DAY: u64 = 86_400;

    fn schedule() -> RefundPolicy {
        RefundPolicy {
            cancel_until_before_start_secs: 0,
            tiers: vec![
                FeeTier {
                    before_start_secs: 10 * DAY,
                    fee_bps: 0,
                },
                FeeTier {
                    before_start_secs: 3 * DAY,
                    fee_bps: 1_000,
                },
                FeeTier {
                    before_start_secs: 0,
                    fee_bps: 3_000,
                },
            ],
        }
    }

    fn krw(n: i64) -> Money {
        Money::new(n, Currency::new("KRW").unwrap()).unwrap()
    }

    fn at_days_before(start: Timestamp, days: f64) -> Timestamp {
        Timestamp::from_millis(start.as_millis() - (days * 86_400_000.0) as i64)
    }

    #[test]
    fn the_schedule_charges_by_how_long_before_the_start() {
        let p = schedule();
        p.validate().unwrap();
        let start = Timestamp::from_millis(1_000 * 86_400_000);
        let hold = HoldId::new_at(start);
        let fee = |days: f64| {
            p.decide(
                hold,
                krw(10_001),
                start,
                at_days_before(start, days),
                RefundBasis::Policy,
            )
            .map(|q| (q.decision.fee.amount_minor, q.decision.refund.amount_minor))
        };
        assert_eq!(fee(11.0), Ok((0, 10_001)));
        assert_eq!(fee(10.0), Ok((0, 10_001)));
        assert_eq!(fee(9.99), Ok((1_000, 9_001)), "10 % rounded down");
        assert_eq!(fee(3.0), Ok((1_000, 9_001)));
        assert_eq!(fee(2.0), Ok((3_000, 7_001)));
        assert_eq!(
            fee(0.0),
            Err(Refusal::CancellationClosed { deadline: start }),
            "no cancellation after the start"
        );
        assert_eq!(
            fee(-1.0),
            Err(Refusal::CancellationClosed { deadline: start })
        );
        let q = p
            .decide(
                hold,
                krw(10_000),
                start,
                at_days_before(start, 5.0),
                RefundBasis::Policy,
            )
            .unwrap();
        assert_eq!(q.valid_until, at_days_before(start, 3.0));
        assert_eq!(q.cancellable_until, start);
        assert!(q.decision.rule.contains("10 %"), "{}", q.decision.rule);
        let full = p
            .decide(
                hold,
                krw(10_000),
                start,
                at_days_before(start, -3.0),
                RefundBasis::Full,
            )
            .unwrap();
        assert_eq!(
            full.decision.refund,
            krw(10_000),
            "the organiser refunds in full"
        );
    }

    #[test]
    fn inconsistent_policies_are_refused() {
        let mut p = schedule();
        p.tiers[0].fee_bps = 10_001;
        assert!(p.validate().is_err());
        let mut p = schedule();
        p.tiers[2].before_start_secs = DAY;
        assert!(
            p.validate().is_err(),
            "a gap between the deadline and the last tier"
        );
        p.cancel_until_before_start_secs = DAY;
        assert!(p.validate().is_ok());
        let mut p = schedule();
        p.tiers[1].before_start_secs = 10 * DAY;
        assert!(p.validate().is_err(), "two tiers at one threshold");
        assert!(
            RefundPolicy {
                cancel_until_before_start_secs: 0,
                tiers: vec![]
            }
            .validate()
            .is_err()
        );
        RefundPolicy::default().validate().unwrap();
    }

    #[test]
    fn a_decision_survives_its_encoding() {
        let start = Timestamp::from_millis(1_000 * 86_400_000);
        let q = schedule()
            .decide(
                HoldId::new_at(start),
                krw(777),
                start,
                at_days_before(start, 4.0),
                RefundBasis::Policy,
            )
            .unwrap();
        assert_eq!(
            RefundDecision::decode(&q.decision.encode()),
            Some(q.decision)
        );
        assert_eq!(RefundDecision::decode("webhook-123"), None);
    }

    proptest! {
        #[test]
        fn refund_plus_fee_is_what_was_paid_and_fees_never_fall_as_the_start_nears(
            paid in 0i64..1_000_000_000_000,
            a in 0u64..(20 * DAY),
            b in 0u64..(20 * DAY),
        ) {
            let p = schedule();
            let start = Timestamp::from_millis(10_000 * 86_400_000);
            let hold = HoldId::new_at(start);
            let (early, late) = (a.max(b), a.min(b));
            let q = |s: u64| p.decide(
                hold,
                krw(paid),
                start,
                Timestamp::from_millis(start.as_millis() - (s as i64) * 1000),
                RefundBasis::Policy,
            );
            match (q(early), q(late)) {
                (Ok(e), Ok(l)) => {
                    prop_assert_eq!(e.decision.fee.amount_minor + e.decision.refund.amount_minor, paid);
                    prop_assert!(e.decision.fee.amount_minor >= 0 && e.decision.refund.amount_minor >= 0);
                    prop_assert!(e.decision.fee.amount_minor <= l.decision.fee.amount_minor);
                }
                (_, Err(Refusal::CancellationClosed { .. })) => prop_assert_eq!(late, 0),
                other => prop_assert!(false, "{:?}", other),
            }
        }
    }
}
