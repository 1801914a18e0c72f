//! A session's sales policy over HTTP, for admins.
//!
//! | route | who | answer |
//! |---|---|---|
//! | `PUT /api/admin/sessions/{id}/policy` | admin | 200 the stored [`SalesPolicy`] |
//!
//! The body and the answer are [`SalesPolicyDoc`], a checked, documented mirror of the
//! library's type (which this crate cannot annotate): it refuses unknown fields and bounds
//! every list and number. The handler is described for `GET /openapi.json` by its
//! `#[utoipa::path]` (tag `catalog`). The catalogue's conventions hold here too (instants are
//! epoch milliseconds; a refused request changes nothing): see [`crate::http::routes::catalog`].

use axum::extract::{Path, State};
use axum::routing::put;
use axum::{Json, Router};
use serde::{Deserialize, Serialize};
use ticket_core::Timestamp;
use ticket_core::ids::SessionId;
use ticket_core::model::inventory::Grade;
use ticket_core::model::policy::SalesPolicy;
use ticket_core::model::refund_policy::{FeeTier, RefundPolicy};

use crate::http::error::{ApiError, ErrorBody};
use crate::http::extract::{AdminUser, JsonBody};
use crate::http::params::path_id;
use crate::http::routes::catalog::MAX_INSTANT_MS;
use crate::runtime::state::AppState;

/// The route of this group.
pub fn router() -> Router<AppState> {
    Router::new().route("/api/admin/sessions/{id}/policy", put(set_policy))
}

/// The sales policy of a session as `PUT /api/admin/sessions/{id}/policy` takes and answers
/// it: a documented mirror of the library's [`SalesPolicy`] (which this crate cannot annotate),
/// kept equal to its serde shape by its `From<&SalesPolicy>` (a field added to the library's type
/// fails to compile there) and a unit test. The handler reads and writes the library's type
/// itself. Its `Default` is the library's, so the schema shows the library's defaults.
///
/// It is also the request body of that route: it refuses unknown fields (the library's type
/// would ignore them) and bounds every list and number; [`SalesPolicyDoc::into_policy`]
/// checks the bounds the schema states and builds the library's type.
#[derive(Debug, Clone, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(default, deny_unknown_fields)]
#[schema(
    as = SalesPolicy,
    description = "A session's sales policy. Fields left out of a request take their defaults."
)]
pub struct SalesPolicyDoc {
    /// User tiers from lowest to highest (`["BASIC", "SILVER", "GOLD"]`), each listed once.
    /// A user without a tier ranks below all of them.
    #[schema(schema_with = tiers_schema)]
    pub tiers: Vec<String>,
    /// Most units one user may hold or have bought in the session, enforced atomically with
    /// the hold; `null`: no limit.
    #[schema(minimum = 1, maximum = 10_000)]
    pub max_units_per_user: Option<u32>,
    /// Presale windows by tier.
    #[schema(max_items = 32)]
    pub presales: Vec<PresaleDoc>,
    /// Grades reserved to tiers.
    #[schema(max_items = 64)]
    pub grade_rules: Vec<GradeRuleDoc>,
    /// Queue settings.
    pub queue: QueueRulesDoc,
    /// Until when buyers may cancel a confirmed reservation and at what fee (the default:
    /// free until the start).
    pub refund: RefundPolicyDoc,
}

/// A session's refund policy: a cancellation deadline relative to the performance start and
/// a fee schedule. Every instant a cancellation is accepted must fall in a tier (the smallest
/// `before_start_secs` is at most `cancel_until_before_start_secs`, else 422).
#[derive(Debug, Clone, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(as = RefundPolicy)]
pub struct RefundPolicyDoc {
    /// No cancellation once the start is nearer than this many seconds (`0`: cancellations
    /// close at the start); at most ten years.
    #[schema(minimum = 0, maximum = 316_224_000)]
    pub cancel_until_before_start_secs: u64,
    /// The fee schedule: 1 to 32 tiers with distinct `before_start_secs`.
    #[schema(min_items = 1, max_items = 32)]
    pub tiers: Vec<FeeTierDoc>,
}

/// One step of a refund policy's fee schedule.
#[derive(Debug, Clone, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(as = FeeTier)]
pub struct FeeTierDoc {
    /// Applies to cancellations made at least this many seconds before the start (and
    /// before the next larger tier applies); at most ten years.
    #[schema(minimum = 0, maximum = 316_224_000)]
    pub before_start_secs: u64,
    /// The fee in basis points of what was paid: `1000` = 10 %, `0` to `10000`.
    #[schema(minimum = 0, maximum = 10_000)]
    pub fee_bps: u32,
}

impl From<&RefundPolicy> for RefundPolicyDoc {
    fn from(p: &RefundPolicy) -> Self {
        let RefundPolicy {
            cancel_until_before_start_secs,
            tiers,
        } = p;
        Self {
            cancel_until_before_start_secs: *cancel_until_before_start_secs,
            tiers: tiers
                .iter()
                .map(
                    |FeeTier {
                         before_start_secs,
                         fee_bps,
                     }| FeeTierDoc {
                        before_start_secs: *before_start_secs,
                        fee_bps: *fee_bps,
                    },
                )
                .collect(),
        }
    }
}

impl RefundPolicyDoc {
    /// The library's refund policy (its own checks run with the whole policy's: 422).
    fn into_policy(self) -> RefundPolicy {
        RefundPolicy {
            cancel_until_before_start_secs: self.cancel_until_before_start_secs,
            tiers: self
                .tiers
                .into_iter()
                .map(
                    |FeeTierDoc {
                         before_start_secs,
                         fee_bps,
                     }| FeeTier {
                        before_start_secs,
                        fee_bps,
                    },
                )
                .collect(),
        }
    }
}

/// A presale: users of `min_tier` or above may buy from `opens_at`, before public sales.
#[derive(Debug, Clone, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(as = Presale)]
pub struct PresaleDoc {
    /// Lowest tier admitted to the presale (one of `tiers`, else 422).
    #[schema(min_length = 1, max_length = 64)]
    pub min_tier: String,
    /// When the presale opens, epoch ms (before the public open; 1970 to 9999).
    #[schema(minimum = 0, maximum = 253_402_300_799_999_i64)]
    pub opens_at: i64,
}

/// A grade reserved to a tier and above.
#[derive(Debug, Clone, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(as = GradeRule)]
pub struct GradeRuleDoc {
    /// The grade: 1 to 32 letters, digits, `-`, `_` or `.`.
    #[schema(pattern = r"^[A-Za-z0-9._-]{1,32}$")]
    pub grade: String,
    /// Lowest tier allowed to buy it (one of `tiers`, else 422).
    #[schema(min_length = 1, max_length = 64)]
    pub min_tier: String,
}

/// Queue settings of a session.
#[derive(Debug, Clone, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(as = QueueRules)]
pub struct QueueRulesDoc {
    /// Holds need an active queue admission (during public sales, and during presales unless
    /// `presale_skips_queue`).
    pub require_admission: bool,
    /// Concurrent active (admitted) users.
    #[schema(minimum = 1, maximum = 1_000_000)]
    pub max_active: u32,
    /// New admissions per minute.
    #[schema(minimum = 1, maximum = 10_000_000)]
    pub max_admissions_per_minute: u32,
    /// Longest line; joins beyond it answer 503 `QUEUE_FULL`. `null`: unbounded.
    #[schema(minimum = 1, maximum = 100_000_000)]
    pub max_waiting: Option<u32>,
    /// `true`: presale buyers hold without an admission and the queue opens with public
    /// sales. `false` (the default): presale buyers queue like everyone else and the queue
    /// opens with the earliest presale.
    #[serde(default)]
    pub presale_skips_queue: bool,
}

/// The schema of [`SalesPolicyDoc::tiers`]: at most 32 distinct names of 1 to 64 characters.
fn tiers_schema() -> utoipa::openapi::Array {
    use utoipa::openapi::{ArrayBuilder, ObjectBuilder, Type};
    ArrayBuilder::new()
        .items(
            ObjectBuilder::new()
                .schema_type(Type::String)
                .min_length(Some(1))
                .max_length(Some(policy_bounds::TIER_LEN)),
        )
        .max_items(Some(policy_bounds::TIERS))
        .unique_items(true)
        .default(Some(serde_json::json!([])))
        .description(Some(
            "User tiers from lowest to highest, each listed once. A user without a tier ranks below all of them.",
        ))
        .build()
}

/// The bounds of a policy body, as its schema states them (checked by
/// [`SalesPolicyDoc::into_policy`]; the library checks the rest).
mod policy_bounds {
    /// Most tiers.
    pub const TIERS: usize = 32;
    /// Longest tier name, characters.
    pub const TIER_LEN: usize = 64;
    /// Most presales.
    pub const PRESALES: usize = 32;
    /// Most grade rules.
    pub const GRADE_RULES: usize = 64;
    /// Largest `max_units_per_user`.
    pub const UNITS_PER_USER: u32 = 10_000;
    /// Largest `queue.max_active`.
    pub const ACTIVE: u32 = 1_000_000;
    /// Largest `queue.max_admissions_per_minute`.
    pub const ADMISSIONS_PER_MINUTE: u32 = 10_000_000;
    /// Largest `queue.max_waiting`.
    pub const WAITING: u32 = 100_000_000;
}

impl SalesPolicyDoc {
    /// The library's policy from this body, or 422 `VALIDATION` naming the first field
    /// outside the bounds the schema states (a number out of range, a list too long, a tier
    /// name empty or too long, a malformed grade). Cross-field rules (a tier named by a
    /// presale must be listed, a presale opens before the public open, …) are the
    /// library's, checked when the policy is set. Built field by field, so a field added to
    /// the library's type fails to compile here until the body has it.
    pub fn into_policy(self) -> Result<SalesPolicy, ApiError> {
        use policy_bounds as max;
        let bad = |m: String| {
            ApiError::from(ticket_core::Error::from(
                ticket_core::error::InvalidInput::Policy(m),
            ))
        };
        let tier_ok = |t: &str| (1..=max::TIER_LEN).contains(&t.chars().count());
        let in_range = |name: &str, v: u32, most: u32| {
            if (1..=most).contains(&v) {
                Ok(())
            } else {
                Err(bad(format!("{name} must be from 1 to {most}, not {v}")))
            }
        };
        if self.tiers.len() > max::TIERS
            || self.presales.len() > max::PRESALES
            || self.grade_rules.len() > max::GRADE_RULES
        {
            return Err(bad(format!(
                "at most {} tiers, {} presales and {} grade rules",
                max::TIERS,
                max::PRESALES,
                max::GRADE_RULES
            )));
        }
        let named = self
            .tiers
            .iter()
            .chain(self.presales.iter().map(|p| &p.min_tier))
            .chain(self.grade_rules.iter().map(|r| &r.min_tier));
        for tier in named {
            if !tier_ok(tier) {
                return Err(bad(format!(
                    "tier names are 1 to {} characters, not {tier:?}",
                    max::TIER_LEN
                )));
            }
        }
        if let Some(p) = self
            .presales
            .iter()
            .find(|p| !(0..=MAX_INSTANT_MS).contains(&p.opens_at))
        {
            return Err(bad(format!(
                "presale opens_at must be from 0 to {MAX_INSTANT_MS}, not {}",
                p.opens_at
            )));
        }
        if let Some(units) = self.max_units_per_user {
            in_range("max_units_per_user", units, max::UNITS_PER_USER)?;
        }
        let q = &self.queue;
        in_range("queue.max_active", q.max_active, max::ACTIVE)?;
        in_range(
            "queue.max_admissions_per_minute",
            q.max_admissions_per_minute,
            max::ADMISSIONS_PER_MINUTE,
        )?;
        if let Some(waiting) = q.max_waiting {
            in_range("queue.max_waiting", waiting, max::WAITING)?;
        }
        let grade_rules = self
            .grade_rules
            .into_iter()
            .map(|GradeRuleDoc { grade, min_tier }| {
                Ok(ticket_core::model::policy::GradeRule {
                    grade: Grade::new(grade).map_err(ticket_core::Error::from)?,
                    min_tier,
                })
            })
            .collect::<Result<Vec<_>, ApiError>>()?;
        let QueueRulesDoc {
            require_admission,
            max_active,
            max_admissions_per_minute,
            max_waiting,
            presale_skips_queue,
        } = self.queue;
        let refund = self.refund.into_policy();
        refund.validate().map_err(ticket_core::Error::from)?;
        Ok(SalesPolicy {
            refund,
            tiers: self.tiers,
            max_units_per_user: self.max_units_per_user,
            presales: self
                .presales
                .into_iter()
                .map(
                    |PresaleDoc { min_tier, opens_at }| ticket_core::model::policy::Presale {
                        min_tier,
                        opens_at: Timestamp::from_millis(opens_at),
                    },
                )
                .collect(),
            grade_rules,
            queue: ticket_core::model::policy::QueueRules {
                require_admission,
                max_active,
                max_admissions_per_minute,
                max_waiting,
                presale_skips_queue,
            },
        })
    }
}

impl From<&SalesPolicy> for SalesPolicyDoc {
    /// Field by field, destructured so that a field added to the library's type fails to
    /// compile here until the mirror has it too.
    fn from(p: &SalesPolicy) -> Self {
        let SalesPolicy {
            tiers,
            max_units_per_user,
            presales,
            grade_rules,
            queue,
            refund,
        } = p;
        let ticket_core::model::policy::QueueRules {
            require_admission,
            max_active,
            max_admissions_per_minute,
            max_waiting,
            presale_skips_queue,
        } = *queue;
        Self {
            tiers: tiers.clone(),
            max_units_per_user: *max_units_per_user,
            presales: presales
                .iter()
                .map(
                    |ticket_core::model::policy::Presale { min_tier, opens_at }| PresaleDoc {
                        min_tier: min_tier.clone(),
                        opens_at: opens_at.as_millis(),
                    },
                )
                .collect(),
            grade_rules: grade_rules
                .iter()
                .map(
                    |ticket_core::model::policy::GradeRule { grade, min_tier }| GradeRuleDoc {
                        grade: grade.as_str().to_owned(),
                        min_tier: min_tier.clone(),
                    },
                )
                .collect(),
            queue: QueueRulesDoc {
                require_admission,
                max_active,
                max_admissions_per_minute,
                max_waiting,
                presale_skips_queue,
            },
            refund: RefundPolicyDoc::from(refund),
        }
    }
}

impl Default for SalesPolicyDoc {
    /// The library's default policy.
    fn default() -> Self {
        Self::from(&SalesPolicy::default())
    }
}

/// `PUT /api/admin/sessions/{id}/policy` (admin): validates and stores the session's sales
/// policy (fields left out take their defaults) → 200 the policy now in force.
#[utoipa::path(
    put,
    path = "/api/admin/sessions/{id}/policy",
    tag = "catalog",
    summary = "Set a session's sales policy (admin)",
    params(("id" = String, Path, format = "uuid", description = "The session's id")),
    request_body(content = SalesPolicyDoc, description = "The policy; fields left out take their defaults"),
    security(("bearer" = [])),
    responses(
        (status = 200, description = "The policy now in force", body = SalesPolicyDoc),
        (status = 400, description = "Malformed JSON, wrong types, unknown fields or a malformed id: `VALIDATION`", body = ErrorBody),
        (status = 401, description = "No valid access token: `UNAUTHORIZED`, `TOKEN_EXPIRED`", body = ErrorBody),
        (status = 403, description = "Not an admin: `FORBIDDEN`", body = ErrorBody),
        (status = 404, description = "No such session: `NOT_FOUND`", body = ErrorBody),
        (status = 422, description = "A policy the library refuses (unknown tier, zero limit, presale after the public open, a refund policy without a tier for every accepted instant, a fee over 100 %, two tiers at one threshold, …): `VALIDATION`", body = ErrorBody),
        (status = 503, description = "Storage unavailable: `UNAVAILABLE` (with `Retry-After`)", body = ErrorBody),
    )
)]
async fn set_policy(
    State(state): State<AppState>,
    _admin: AdminUser,
    Path(id): Path<String>,
    JsonBody(body): JsonBody<SalesPolicyDoc>,
) -> Result<Json<SalesPolicy>, ApiError> {
    let id: SessionId = path_id(&id)?;
    let policy = body.into_policy()?;
    state.rush.set_policy(id, &policy).await?;
    let stored = state.rush.stores().policies.policy(id).await?;
    Ok(Json(stored))
}

#[cfg(test)]
mod tests {
    use super::*;
    use ticket_core::model::policy::{GradeRule, Presale};

    /// The documented mirror has exactly the library policy's serde shape and defaults.
    #[test]
    fn the_policy_schema_mirrors_the_library_type() {
        let policy = SalesPolicy {
            tiers: vec!["BASIC".into(), "GOLD".into()],
            max_units_per_user: None,
            presales: vec![Presale {
                min_tier: "GOLD".into(),
                opens_at: Timestamp::from_millis(1_000),
            }],
            grade_rules: vec![GradeRule {
                grade: Grade::new("VIP").expect("grade"),
                min_tier: "GOLD".into(),
            }],
            refund: RefundPolicy {
                cancel_until_before_start_secs: 3_600,
                tiers: vec![
                    FeeTier {
                        before_start_secs: 864_000,
                        fee_bps: 0,
                    },
                    FeeTier {
                        before_start_secs: 0,
                        fee_bps: 1_000,
                    },
                ],
            },
            ..SalesPolicy::default()
        };
        let library = serde_json::to_value(&policy).expect("policy json");
        let json = |doc: &SalesPolicyDoc| serde_json::to_value(doc).expect("mirror json");
        assert_eq!(json(&SalesPolicyDoc::from(&policy)), library);
        let read: SalesPolicyDoc =
            serde_json::from_value(library.clone()).expect("the mirror reads the library's JSON");
        assert_eq!(json(&read), library);
        // A partial body takes the same defaults through either type.
        for partial in [
            serde_json::json!({}),
            serde_json::json!({ "tiers": ["A"], "max_units_per_user": 9 }),
        ] {
            let lib: SalesPolicy = serde_json::from_value(partial.clone()).expect("library");
            let doc: SalesPolicyDoc = serde_json::from_value(partial).expect("mirror");
            assert_eq!(
                json(&doc),
                serde_json::to_value(&lib).expect("library json")
            );
        }
    }
}
