//! Holding stock: every check, then one atomic store operation.

use serde::{Deserialize, Serialize};

use crate::error::{Refusal, Result};
use crate::ids::{HoldId, SessionId, UserId};
use crate::model::audit::Actor;
use crate::model::hold::{AdmissionCheck, Hold, HoldState, NewHold, Selection, price_selection};
use crate::model::idempotency::IdempotencyKey;

use super::{AdmissionService, Context, Idempotency};

/// A buyer's request to hold stock.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct HoldCommand {
    /// Session.
    pub session: SessionId,
    /// Buyer.
    pub user: UserId,
    /// Buyer's tier (for presales and grade rules); `None` for none.
    pub tier: Option<String>,
    /// What to hold.
    pub selection: Selection,
}

/// Creates and releases holds.
#[derive(Clone, Debug)]
pub struct HoldService {
    ctx: Context,
    idempotency: Idempotency,
    admission: AdmissionService,
}

impl HoldService {
    pub(crate) fn new(ctx: Context, idempotency: Idempotency, admission: AdmissionService) -> Self {
        Self {
            ctx,
            idempotency,
            admission,
        }
    }

    /// Holds stock for the buyer.
    ///
    /// Order of checks, none of which touches stock: the selection is valid for the session
    /// (`Invalid`, `UnknownItem`); the sales policy allows it now (`SalesNotOpen`,
    /// `SalesClosed`, `GradeNotAllowed`, `UnknownTier`). Then one atomic store operation
    /// checks the admission (`NotAdmitted`, `AdmissionExpired`), the per-user limit
    /// (`LimitExceeded`), the organiser's switch (`SalesPaused`, `SalesClosed`,
    /// `SessionCancelled`) and the stock (`SoldOut`, `SeatsUnavailable`), and takes it.
    ///
    /// With an `idempotency_key`, a repeat of the same command returns the first outcome
    /// (the same hold, or the same refusal) and never holds twice.
    pub async fn hold(&self, cmd: HoldCommand, idempotency_key: Option<&str>) -> Result<Hold> {
        match idempotency_key {
            None => self.hold_once(&cmd).await,
            Some(k) => {
                let key = IdempotencyKey::new(cmd.user.as_str(), "hold", k)?;
                self.idempotency
                    .run(&key, &cmd, || self.hold_once(&cmd))
                    .await
            }
        }
    }

    async fn hold_once(&self, cmd: &HoldCommand) -> Result<Hold> {
        let now = self.ctx.clock.now();
        let mut session = self.ctx.session(cmd.session).await?;
        let policy = self.ctx.stores.policies.policy(cmd.session).await?;
        let items = match price_selection(&session.inventory, &cmd.selection) {
            Ok((items, _)) => items,
            // Seats added since this process read the session: read it again, once.
            Err(crate::Error::Refused(Refusal::UnknownItem { .. })) => {
                session = self.ctx.fresh_session(cmd.session).await?;
                price_selection(&session.inventory, &cmd.selection)?.0
            }
            Err(e) => return Err(e),
        };
        let grades: Vec<_> = items.per_grade().into_iter().map(|(g, _)| g).collect();
        policy.check_purchase(&session, cmd.tier.as_deref(), &grades, now)?;
        let admission = if policy.admission_required(&session, now) {
            AdmissionCheck::Required
        } else {
            AdmissionCheck::NotRequired
        };
        self.ctx
            .stores
            .reservations
            .hold(NewHold {
                id: HoldId::new_at(now),
                session: cmd.session,
                user: cmd.user.clone(),
                selection: cmd.selection.clone(),
                now,
                expires_at: now.plus(self.ctx.limits.hold_ttl),
                per_user_limit: policy.max_units_per_user,
                admission,
                actor: Actor::User(cmd.user.clone()),
                correlation_id: None,
            })
            .await
    }

    /// The buyer lets their hold go: HELD or PAYING → RELEASED, units back on sale, and the
    /// queue is woken. Idempotent; `NotOwner` for someone else's hold.
    pub async fn release(&self, id: HoldId, user: &UserId) -> Result<Hold> {
        let hold = owned(&self.ctx, id, user).await?;
        let out = self
            .ctx
            .stores
            .reservations
            .transition(self.ctx.request(
                id,
                HoldState::Released,
                Actor::User(user.clone()),
                "released by the buyer",
            ))
            .await?;
        if out.changed {
            self.admission.admit_next(hold.session).await?;
        }
        Ok(out.hold)
    }

    /// The hold, if it belongs to `user`.
    pub async fn get(&self, id: HoldId, user: &UserId) -> Result<Hold> {
        owned(&self.ctx, id, user).await
    }
}

/// Reads a hold and checks its owner.
pub(crate) async fn owned(ctx: &Context, id: HoldId, user: &UserId) -> Result<Hold> {
    let hold = ctx.stores.reservations.get(id).await?;
    if &hold.user != user {
        return Err(Refusal::NotOwner.into());
    }
    Ok(hold)
}
