//! The organiser's controls: the sale switch (pause, resume, close, cancel the show) and
//! capacity changes while selling.

use crate::error::Result;
use crate::ids::SessionId;
use crate::model::audit::Actor;
use crate::model::sale::{
    CapacityChange, CapacityDelta, CapacityOutcome, SaleState, SaleStateChange, SaleStateOutcome,
    SaleSwitch,
};
use crate::model::session::SessionStatus;

use super::{AdmissionService, Context};

/// Pauses, resumes, closes and cancels sales, and changes capacity. Each call is one atomic
/// store step with its audit record and change-feed event (see
/// [`crate::store::SaleControl`]); repeats are harmless (`changed: false`).
#[derive(Clone, Debug)]
pub struct SaleService {
    ctx: Context,
    admission: AdmissionService,
}

impl SaleService {
    pub(crate) fn new(ctx: Context, admission: AdmissionService) -> Self {
        Self { ctx, admission }
    }

    /// The session's switch as stored now.
    pub async fn switch(&self, session: SessionId) -> Result<SaleSwitch> {
        self.ctx.stores.sales.sale_switch(session).await
    }

    /// The session's status now: the switch over the sales window.
    pub async fn status(&self, session: SessionId) -> Result<SessionStatus> {
        let s = self.ctx.session(session).await?;
        let switch = self.switch(session).await?;
        Ok(switch.status(&s, self.ctx.clock.now()))
    }

    /// Pauses the sale: no admissions and no new holds (`SalesPaused`) until
    /// [`SaleService::resume`]; holds made before may still be paid within their TTL;
    /// waiting users keep their place.
    pub async fn pause(
        &self,
        session: SessionId,
        actor: Actor,
        reason: &str,
    ) -> Result<SaleStateOutcome> {
        self.set(session, SaleState::Paused, actor, reason).await
    }

    /// Resumes a paused sale and runs an admission round at once.
    pub async fn resume(
        &self,
        session: SessionId,
        actor: Actor,
        reason: &str,
    ) -> Result<SaleStateOutcome> {
        let out = self.set(session, SaleState::Open, actor, reason).await?;
        if out.changed {
            self.admission.admit_next(session).await?;
        }
        Ok(out)
    }

    /// Closes the sale for good: the queue admits nobody and nothing new is sold (holds made
    /// before may still be paid). Only [`SaleService::cancel_show`] follows.
    pub async fn close(
        &self,
        session: SessionId,
        actor: Actor,
        reason: &str,
    ) -> Result<SaleStateOutcome> {
        self.set(session, SaleState::Closed, actor, reason).await
    }

    /// Cancels the show: nothing more is sold. Refund every confirmed reservation with
    /// [`crate::service::RefundService::refund_cancelled_show`].
    pub async fn cancel_show(
        &self,
        session: SessionId,
        actor: Actor,
        reason: &str,
    ) -> Result<SaleStateOutcome> {
        self.set(session, SaleState::Cancelled, actor, reason).await
    }

    async fn set(
        &self,
        session: SessionId,
        to: SaleState,
        actor: Actor,
        reason: &str,
    ) -> Result<SaleStateOutcome> {
        let out = self
            .ctx
            .stores
            .sales
            .set_sale_state(SaleStateChange {
                session,
                to,
                actor,
                reason: reason.to_owned(),
                now: self.ctx.clock.now(),
            })
            .await?;
        self.ctx.forget_session(session);
        Ok(out)
    }

    /// Changes what the session sells (see [`CapacityDelta`]), atomically with the stock;
    /// units or seats added are on sale at once and an admission round runs, so waiting
    /// users are admitted into them.
    pub async fn change_capacity(
        &self,
        session: SessionId,
        delta: CapacityDelta,
        actor: Actor,
        reason: &str,
    ) -> Result<CapacityOutcome> {
        let adds = matches!(
            delta,
            CapacityDelta::AddUnits { .. } | CapacityDelta::AddSeats { .. }
        );
        let out = self
            .ctx
            .stores
            .sales
            .change_capacity(CapacityChange {
                session,
                delta,
                actor,
                reason: reason.to_owned(),
                now: self.ctx.clock.now(),
            })
            .await;
        self.ctx.forget_session(session);
        let out = out?;
        if adds {
            self.admission.admit_next(session).await?;
        }
        Ok(out)
    }
}
