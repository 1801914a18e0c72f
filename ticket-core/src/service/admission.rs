//! The waiting queue flow: join (pre-queue before the open), position, leave, admission.

use crate::error::{Refusal, Result};
use crate::ids::{SessionId, UserId};
use crate::model::queue::{AdmissionRound, JoinRequest, PreQueueDraw, QueueTicket, QueueView};
use crate::model::sale::SaleState;
use crate::model::session::SessionStatus;

use super::Context;

/// Queue operations for buyers and the admission ticker.
#[derive(Clone, Debug)]
pub struct AdmissionService {
    ctx: Context,
}

impl AdmissionService {
    pub(crate) fn new(ctx: Context) -> Self {
        Self { ctx }
    }

    /// Joins the session's queue as a buyer without a tier; see
    /// [`AdmissionService::join_with_tier`].
    pub async fn join(&self, session: SessionId, user: &UserId) -> Result<QueueTicket> {
        self.join_with_tier(session, user, None).await
    }

    /// Joins the session's queue as a buyer of `tier`.
    ///
    /// The queue opens at [`SalesPolicy::queue_opens_at`](crate::model::policy::SalesPolicy::queue_opens_at)
    /// (the earliest presale when presale buyers queue, else the public open). Before
    /// `opens - pre_queue_opens_before`: `QueueNotOpen`. Until the opening: the pre-queue
    /// (shuffled at the opening). After: FIFO. A buyer whose own sales open later than the
    /// queue (a public buyer during a presale) gets `QueueNotOpen` until their sales open, so
    /// they never spend an admission on a hold the presale refuses. After close:
    /// `SalesClosed`, and after the organiser closed the sale or cancelled the show
    /// `SalesClosed` / `SessionCancelled` (a paused sale keeps taking joins: they wait for
    /// the resume); a tier the policy does not list: `UnknownTier`. Joining again while
    /// the ticket is live returns the same ticket.
    pub async fn join_with_tier(
        &self,
        session: SessionId,
        user: &UserId,
        tier: Option<&str>,
    ) -> Result<QueueTicket> {
        let now = self.ctx.clock.now();
        let s = self.ctx.session(session).await?;
        let policy = self.ctx.stores.policies.policy(session).await?;
        let queue_opens = policy.queue_opens_at(&s);
        let opens_at = queue_opens.minus(self.ctx.limits.pre_queue_opens_before);
        if now < opens_at {
            return Err(Refusal::QueueNotOpen { opens_at }.into());
        }
        let mine = policy.opens_for(&s, tier)?;
        if mine > queue_opens && now < mine {
            return Err(Refusal::QueueNotOpen { opens_at: mine }.into());
        }
        if s.status_at(now) == SessionStatus::Closed {
            return Err(Refusal::SalesClosed {
                closed_at: s.sales.close_at,
            }
            .into());
        }
        // A paused sale keeps its queue (joins wait for the resume); a closed or cancelled
        // one has none.
        let switch = self.ctx.switch_for_join(session).await?;
        if matches!(switch.state, SaleState::Closed | SaleState::Cancelled)
            && let Some(refusal) = switch.refusal()
        {
            return Err(refusal.into());
        }
        self.ctx
            .stores
            .queue
            .join(JoinRequest {
                session,
                user: user.clone(),
                now,
                pre_queue: now < queue_opens,
                max_waiting: policy.queue.max_waiting,
            })
            .await
    }

    /// The user's ticket, position, ETA and stock outlook.
    pub async fn view(&self, session: SessionId, user: &UserId) -> Result<QueueView> {
        let now = self.ctx.clock.now();
        self.ctx.stores.queue.view(session, user, now).await
    }

    /// Leaves the queue (idempotent).
    pub async fn leave(&self, session: SessionId, user: &UserId) -> Result<QueueTicket> {
        let now = self.ctx.clock.now();
        self.ctx.stores.queue.leave(session, user, now).await
    }

    /// Performs the pre-queue draw now with `seed` (normally the first admission round does
    /// it with a fresh seed). Refused before the open.
    pub async fn draw(&self, session: SessionId, seed: u64) -> Result<PreQueueDraw> {
        let now = self.ctx.clock.now();
        let s = self.ctx.session(session).await?;
        let opens_at = self
            .ctx
            .stores
            .policies
            .policy(session)
            .await?
            .queue_opens_at(&s);
        if now < opens_at {
            return Err(Refusal::SalesNotOpen { opens_at }.into());
        }
        self.ctx.stores.queue.draw(session, seed, now).await
    }

    /// One admission round: admits the next users in line as the session's pacing and stock
    /// allow. Call it on a timer (every second or so) and after units come back; it does
    /// nothing before the queue opens (the public open, or the earliest presale when presale
    /// buyers queue), after sales close, and while the organiser's switch is not OPEN
    /// (paused, closed, cancelled).
    pub async fn admit_next(&self, session: SessionId) -> Result<AdmissionRound> {
        let now = self.ctx.clock.now();
        let s = self.ctx.session(session).await?;
        let policy = self.ctx.stores.policies.policy(session).await?;
        if now < policy.queue_opens_at(&s)
            || s.status_at(now) == SessionStatus::Closed
            || !self
                .ctx
                .stores
                .sales
                .sale_switch(session)
                .await?
                .state
                .sells()
        {
            return Ok(AdmissionRound {
                admitted: Vec::new(),
                limit: crate::model::queue::AdmissionLimit::Empty,
            });
        }
        let pacing = policy.pacing(self.ctx.limits.admission_ttl);
        self.ctx.stores.queue.admit(session, pacing, now).await
    }
}
