//! Sales policy: data (serde) checked before any stock is touched.

use std::time::Duration;

use serde::{Deserialize, Serialize};

use super::inventory::Grade;
use super::queue::AdmissionPacing;
use super::session::Session;
use crate::clock::Timestamp;
use crate::error::{InvalidInput, Refusal};

/// A presale: users of `min_tier` or above may buy from `opens_at`, before public sales.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Presale {
    /// Lowest tier admitted to the presale.
    pub min_tier: String,
    /// When the presale opens (before the public open).
    pub opens_at: Timestamp,
}

/// A grade reserved to a tier and above.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct GradeRule {
    /// The grade.
    pub grade: Grade,
    /// Lowest tier allowed to buy it.
    pub min_tier: String,
}

/// Queue settings of a session.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct QueueRules {
    /// Holds need an ACTIVE queue admission: during public sales, and during presales too
    /// unless `presale_skips_queue`.
    pub require_admission: bool,
    /// Concurrent ACTIVE users.
    pub max_active: u32,
    /// New admissions per minute.
    pub max_admissions_per_minute: u32,
    /// Longest line; joins beyond it get `QueueFull`. `None`: unbounded.
    pub max_waiting: Option<u32>,
    /// Presale buyers hold without an admission (the queue opens at the public open). Off by
    /// default: presale buyers go through the queue like everyone else, and the queue opens
    /// with the earliest presale. Absent from stored or sent policies means `false`.
    #[serde(default)]
    pub presale_skips_queue: bool,
}

impl Default for QueueRules {
    fn default() -> Self {
        Self {
            require_admission: true,
            max_active: 500,
            max_admissions_per_minute: 1_000,
            max_waiting: Some(1_000_000),
            presale_skips_queue: false,
        }
    }
}

/// The sales policy of one session. Plain data: store it, change it at run time, and the
/// next request follows it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct SalesPolicy {
    /// User tiers from lowest to highest (`["BASIC", "SILVER", "GOLD"]`). A user without a
    /// tier ranks below all of them.
    pub tiers: Vec<String>,
    /// Most units one user may hold or have bought in the session (HELD + PAYING +
    /// CONFIRMED), enforced atomically with the hold.
    pub max_units_per_user: Option<u32>,
    /// Presale windows by tier.
    pub presales: Vec<Presale>,
    /// Grades reserved to tiers.
    pub grade_rules: Vec<GradeRule>,
    /// Queue settings.
    pub queue: QueueRules,
    /// Until when buyers may cancel and at what fee (the default: free until the start).
    pub refund: crate::model::refund_policy::RefundPolicy,
}

impl Default for SalesPolicy {
    fn default() -> Self {
        Self {
            tiers: Vec::new(),
            max_units_per_user: Some(4),
            presales: Vec::new(),
            grade_rules: Vec::new(),
            queue: QueueRules::default(),
            refund: crate::model::refund_policy::RefundPolicy::default(),
        }
    }
}

impl SalesPolicy {
    /// Checks that every tier named exists, limits are positive and presales open before
    /// `public_open` when one is given.
    pub fn validate(&self, public_open: Option<Timestamp>) -> Result<(), InvalidInput> {
        let bad = |m: String| InvalidInput::Policy(m);
        for (i, t) in self.tiers.iter().enumerate() {
            if t.is_empty() || self.tiers[..i].contains(t) {
                return Err(bad(format!("tier {t:?} is empty or listed twice")));
            }
        }
        let known = |t: &str| -> Result<(), InvalidInput> {
            if self.tiers.iter().any(|x| x == t) {
                Ok(())
            } else {
                Err(bad(format!("unknown tier {t:?}")))
            }
        };
        for p in &self.presales {
            known(&p.min_tier)?;
            if let Some(open) = public_open
                && p.opens_at >= open
            {
                return Err(bad(format!(
                    "presale for {} must open before public sales",
                    p.min_tier
                )));
            }
        }
        for r in &self.grade_rules {
            known(&r.min_tier)?;
        }
        if self.max_units_per_user == Some(0) {
            return Err(bad("max_units_per_user must be at least 1".into()));
        }
        let q = &self.queue;
        if q.max_active == 0 || q.max_admissions_per_minute == 0 || q.max_waiting == Some(0) {
            return Err(bad("queue limits must be at least 1".into()));
        }
        self.refund.validate()
    }

    /// Rank of `tier` (0 = lowest listed); `None` for a user without a tier.
    fn rank(&self, tier: Option<&str>) -> Result<Option<usize>, Refusal> {
        match tier {
            None => Ok(None),
            Some(t) => self
                .tiers
                .iter()
                .position(|x| x == t)
                .map(Some)
                .ok_or_else(|| Refusal::UnknownTier { tier: t.to_owned() }),
        }
    }

    fn at_least(&self, rank: Option<usize>, min_tier: &str) -> bool {
        match (rank, self.tiers.iter().position(|x| x == min_tier)) {
            (Some(r), Some(m)) => r >= m,
            _ => false,
        }
    }

    /// When a user of `tier` may start buying in `session`: the earliest presale their tier
    /// reaches, or the public open.
    pub fn opens_for(&self, session: &Session, tier: Option<&str>) -> Result<Timestamp, Refusal> {
        let rank = self.rank(tier)?;
        Ok(self
            .presales
            .iter()
            .filter(|p| self.at_least(rank, &p.min_tier))
            .map(|p| p.opens_at)
            .fold(session.sales.open_at, Timestamp::min))
    }

    /// Everything but the per-user limit (which needs the store, atomically): the sales
    /// window, presales by tier, and grades by tier. Pure; touches no stock.
    pub fn check_purchase(
        &self,
        session: &Session,
        tier: Option<&str>,
        grades: &[Grade],
        now: Timestamp,
    ) -> Result<(), Refusal> {
        if now >= session.sales.close_at {
            return Err(Refusal::SalesClosed {
                closed_at: session.sales.close_at,
            });
        }
        let opens_at = self.opens_for(session, tier)?;
        if now < opens_at {
            return Err(Refusal::SalesNotOpen { opens_at });
        }
        let rank = self.rank(tier)?;
        for g in grades {
            if let Some(rule) = self.grade_rules.iter().find(|r| &r.grade == g)
                && !self.at_least(rank, &rule.min_tier)
            {
                return Err(Refusal::GradeNotAllowed {
                    grade: g.clone(),
                    tier: tier.unwrap_or("none").to_owned(),
                });
            }
        }
        Ok(())
    }

    /// Whether a hold at `now` must come with a queue admission: the session requires it,
    /// during public sales and, unless [`QueueRules::presale_skips_queue`], during presales
    /// too.
    pub fn admission_required(&self, session: &Session, now: Timestamp) -> bool {
        self.queue.require_admission
            && (now >= session.sales.open_at || !self.queue.presale_skips_queue)
    }

    /// When the session's waiting queue opens (admission rounds start; the pre-queue is
    /// drawn): the earliest presale when presale buyers queue (admission required and not
    /// [`QueueRules::presale_skips_queue`]), the public open otherwise.
    pub fn queue_opens_at(&self, session: &Session) -> Timestamp {
        if !self.queue.require_admission || self.queue.presale_skips_queue {
            return session.sales.open_at;
        }
        self.presales
            .iter()
            .map(|p| p.opens_at)
            .fold(session.sales.open_at, Timestamp::min)
    }

    /// The admission pacing for this session.
    pub fn pacing(&self, admission_ttl: Duration) -> AdmissionPacing {
        AdmissionPacing {
            max_active: self.queue.max_active,
            max_per_minute: self.queue.max_admissions_per_minute,
            admission_ttl,
            units_per_user: 1,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ids::{EventId, SessionId};
    use crate::model::inventory::InventoryPlan;
    use crate::model::session::SalesWindow;

    const OPEN: Timestamp = Timestamp::from_millis(1_700_000_000_000);
    const HOUR: Duration = Duration::from_secs(3_600);

    fn session() -> Session {
        Session {
            id: SessionId::new_at(OPEN),
            event_id: EventId::new_at(OPEN),
            starts_at: OPEN.plus(HOUR * 48),
            sales: SalesWindow {
                open_at: OPEN,
                close_at: OPEN.plus(HOUR * 24),
            },
            inventory: InventoryPlan::General { grades: Vec::new() },
        }
    }

    fn with_gold_presale(skips: bool) -> SalesPolicy {
        let mut p = SalesPolicy {
            tiers: vec!["SILVER".into(), "GOLD".into()],
            presales: vec![Presale {
                min_tier: "GOLD".into(),
                opens_at: OPEN.minus(HOUR),
            }],
            ..SalesPolicy::default()
        };
        p.queue.presale_skips_queue = skips;
        p
    }

    #[test]
    fn presale_buyers_queue_unless_the_policy_says_they_skip_it() {
        let s = session();
        let during_presale = OPEN.minus(HOUR / 2);
        let queued = with_gold_presale(false);
        assert!(queued.admission_required(&s, during_presale));
        assert!(queued.admission_required(&s, OPEN));
        assert_eq!(queued.queue_opens_at(&s), OPEN.minus(HOUR));

        let skipping = with_gold_presale(true);
        assert!(!skipping.admission_required(&s, during_presale));
        assert!(skipping.admission_required(&s, OPEN));
        assert_eq!(skipping.queue_opens_at(&s), OPEN);
    }

    #[test]
    fn without_presales_or_admission_the_queue_opens_with_public_sales() {
        let s = session();
        assert_eq!(SalesPolicy::default().queue_opens_at(&s), OPEN);
        let mut no_queue = with_gold_presale(false);
        no_queue.queue.require_admission = false;
        assert_eq!(no_queue.queue_opens_at(&s), OPEN);
        assert!(!no_queue.admission_required(&s, OPEN));
    }

    #[test]
    fn presale_skips_queue_defaults_to_false_when_absent() {
        let p: SalesPolicy = serde_json::from_str(
            r#"{"queue": {"require_admission": true, "max_active": 5,
                "max_admissions_per_minute": 5, "max_waiting": null}}"#,
        )
        .expect("a policy without the flag");
        assert!(!p.queue.presale_skips_queue);
        let round_trip: SalesPolicy =
            serde_json::from_value(serde_json::to_value(with_gold_presale(true)).expect("json"))
                .expect("parse");
        assert!(round_trip.queue.presale_skips_queue);
    }
}
