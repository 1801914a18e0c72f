//! Services: the flows of a ticket rush, on any backend.
//!
//! [`TicketRush`] bundles them over one set of [`Stores`], one [`Clock`] and one validated
//! [`TimeLimits`]. Each service is a thin orchestration of atomic store operations: the
//! rules themselves live in [`crate::model`], the atomicity in the stores.
//!
//! | flow | service |
//! |---|---|
//! | join → (draw) → admit, position, leave | [`AdmissionService`] |
//! | hold (policy, limit, admission), release | [`HoldService`] |
//! | start payment → confirm / fail, late payment | [`PaymentService`] |
//! | checkout with a payment provider: begin, webhooks, polling | [`CheckoutService`] |
//! | sweep expired holds, wake the queue | [`ExpiryService`] |
//! | cancel (resale) → refund | [`CancelService`] |
//! | cancel by the refund policy, quote the fee, refund a cancelled show | [`RefundService`] |
//! | pause, resume, close, cancel a sale; change capacity | [`SaleService`] |
//! | check tickets in at the gate | [`GateService`] |
//! | run any operation once per key | [`Idempotency`] |
//! | tell users about their reservations | [`NotificationDispatcher`] |

mod admission;
mod cancel;
pub mod capture;
mod checkout;
mod expiry;
mod gate;
mod hold;
mod hosted_checkout;
mod idempotency;
mod notify;
mod payment;
mod refund;
mod return_money;
mod sale;

use std::sync::Arc;

pub use admission::AdmissionService;
pub use cancel::CancelService;
pub use capture::CAPTURE_CONSUMER;
pub use checkout::{CapturePreference, Checkout, CheckoutService, PaymentResult, ReconcileReport};
pub use expiry::{ExpiryService, SweepReport};
pub use gate::GateService;
pub use hold::{HoldCommand, HoldService};
pub use idempotency::{Idempotency, Replayable};
pub use notify::{
    DispatchConfig, DispatchReport, Notification, NotificationDispatcher, Notifier, NotifyError,
};
pub use payment::{FailureOutcome, LatePaymentPolicy, PaymentService, RefundReason, Settlement};
pub use refund::{CancellationOutcome, RefundRunReport, RefundService};
pub use sale::SaleService;

use crate::clock::Clock;
use crate::config::TimeLimits;
use crate::error::Result;
use crate::gateway::PaymentGateway;
use crate::ids::{HoldId, SessionId};
use crate::model::audit::{Actor, AuditRecord, AuditScope};
use crate::model::hold::{HoldState, TransitionRequest};
use crate::model::page::{AuditQuery, MAX_PAGE_LIMIT, PageOrder};
use crate::model::policy::SalesPolicy;
use crate::model::sale::{SaleState, SaleSwitch};
use crate::model::session::{Event, Session};
use crate::store::Stores;
use dashmap::DashMap;

/// What every service shares.
#[derive(Clone, Debug)]
pub(crate) struct Context {
    pub(crate) stores: Stores,
    pub(crate) clock: Arc<dyn Clock>,
    pub(crate) limits: TimeLimits,
    /// Sessions' definitions, read once per process. Only a capacity change alters one (its
    /// plan): this process drops its copy when it makes one, and a hold that names a seat
    /// the copy does not know reads the session again ([`Context::fresh_session`]).
    sessions: Arc<DashMap<SessionId, Arc<Session>>>,
    /// Sale switches for the queue's joins (see [`Context::switch_for_join`]).
    switches: Arc<DashMap<SessionId, (SaleSwitch, std::time::Instant)>>,
}

impl Context {
    /// A request to move hold `id` to `to` now.
    pub(crate) fn request(
        &self,
        id: HoldId,
        to: HoldState,
        actor: Actor,
        reason: &str,
    ) -> TransitionRequest {
        TransitionRequest {
            hold: id,
            to,
            now: self.clock.now(),
            actor,
            reason: reason.to_owned(),
            correlation_id: None,
            payment_ref: None,
        }
    }

    /// The newest audit record of hold `id` reaching `state` (a hold has a handful of
    /// records, so one page holds them all).
    pub(crate) async fn last_record(
        &self,
        id: HoldId,
        state: HoldState,
    ) -> Result<Option<AuditRecord>> {
        let page = self
            .stores
            .reservations
            .audit_page(&AuditQuery {
                scope: AuditScope::Hold(id),
                order: PageOrder::NewestFirst,
                after: None,
                limit: MAX_PAGE_LIMIT,
            })
            .await?;
        Ok(page.items.into_iter().find(|r| r.to == state.as_str()))
    }

    /// The session, from the process-local cache or the store.
    pub(crate) async fn session(&self, id: SessionId) -> Result<Arc<Session>> {
        if let Some(s) = self.sessions.get(&id) {
            return Ok(s.value().clone());
        }
        self.fresh_session(id).await
    }

    /// The session read from the store, replacing this process's copy.
    pub(crate) async fn fresh_session(&self, id: SessionId) -> Result<Arc<Session>> {
        let s = Arc::new(self.stores.inventory.session(id).await?);
        self.sessions.insert(id, s.clone());
        Ok(s)
    }

    /// The session's sale switch as the queue's joins see it: CLOSED and CANCELLED are
    /// final, so once seen they are remembered; OPEN and PAUSED are read again after
    /// [`SWITCH_FOR_JOINS_MAX_AGE`]. Joins need no more: a join accepted just after a close
    /// waits in a queue that admits nobody (admission rounds and holds read the switch
    /// atomically) and is told by the `SaleClosed` change.
    pub(crate) async fn switch_for_join(&self, id: SessionId) -> Result<SaleSwitch> {
        if let Some(entry) = self.switches.get(&id) {
            let (switch, read_at) = entry.value();
            let terminal = matches!(switch.state, SaleState::Closed | SaleState::Cancelled);
            if terminal || read_at.elapsed() < SWITCH_FOR_JOINS_MAX_AGE {
                return Ok(switch.clone());
            }
        }
        let switch = self.stores.sales.sale_switch(id).await?;
        self.switches
            .insert(id, (switch.clone(), std::time::Instant::now()));
        Ok(switch)
    }
}

/// How long the queue's joins trust a sale switch read earlier (see
/// [`Context::switch_for_join`]).
pub const SWITCH_FOR_JOINS_MAX_AGE: std::time::Duration = std::time::Duration::from_secs(1);

impl Context {
    /// Forgets this process's copies of the session (after it changed them).
    pub(crate) fn forget_session(&self, id: SessionId) {
        self.sessions.remove(&id);
        self.switches.remove(&id);
    }
}

/// Every service over one backend, clock and configuration. Cheap to clone.
#[derive(Clone, Debug)]
pub struct TicketRush {
    ctx: Context,
    /// Queue: join, position, leave, admission rounds.
    pub admission: AdmissionService,
    /// Holds: create with every check, release.
    pub holds: HoldService,
    /// Checkout: start, confirm, fail, late payments.
    pub payments: PaymentService,
    /// The sweeper.
    pub expiry: ExpiryService,
    /// Cancellation and refunds.
    pub cancellations: CancelService,
    /// Check-in at the gate.
    pub gate: GateService,
    /// The organiser's controls: pause, resume, close, cancel, capacity.
    pub sales: SaleService,
    /// The idempotency layer, for the library's operations and the host's own.
    pub idempotency: Idempotency,
}

impl TicketRush {
    /// Builds the services; refuses an inconsistent [`TimeLimits`].
    pub fn new(stores: Stores, clock: Arc<dyn Clock>, limits: TimeLimits) -> Result<Self> {
        limits.validate()?;
        let ctx = Context {
            stores,
            clock,
            limits,
            sessions: Arc::default(),
            switches: Arc::default(),
        };
        let admission = AdmissionService::new(ctx.clone());
        let idempotency = Idempotency::new(ctx.clone());
        Ok(Self {
            holds: HoldService::new(ctx.clone(), idempotency.clone(), admission.clone()),
            payments: PaymentService::new(
                ctx.clone(),
                admission.clone(),
                LatePaymentPolicy::RebookOrRefund,
            ),
            expiry: ExpiryService::new(ctx.clone(), admission.clone()),
            cancellations: CancelService::new(ctx.clone(), admission.clone()),
            gate: GateService::new(ctx.clone()),
            sales: SaleService::new(ctx.clone(), admission.clone()),
            admission,
            idempotency,
            ctx,
        })
    }

    /// The checkout over a payment provider: begins payments, applies the provider's
    /// events, polls it for lost results. See [`CheckoutService`].
    pub fn checkout(&self, gateway: Arc<dyn PaymentGateway>) -> CheckoutService {
        CheckoutService::new(
            self.ctx.clone(),
            self.payments.clone(),
            self.idempotency.clone(),
            gateway,
        )
    }

    /// Cancellations with refunds through a payment provider: quotes by the session's
    /// refund policy, a buyer's or an operator's cancellation, and the refund of every
    /// reservation of a cancelled show. See [`RefundService`].
    pub fn refunds(&self, gateway: Arc<dyn PaymentGateway>) -> RefundService {
        RefundService::new(self.ctx.clone(), self.admission.clone(), gateway)
    }

    /// The stores the services run on.
    pub fn stores(&self) -> &Stores {
        &self.ctx.stores
    }

    /// The configuration in force.
    pub fn limits(&self) -> &TimeLimits {
        &self.ctx.limits
    }

    /// Registers an event with its sessions (validated; idempotent for an identical event).
    pub async fn create_event(&self, event: &Event) -> Result<()> {
        self.ctx.stores.inventory.create_event(event).await
    }

    /// Validates and stores a session's sales policy; it applies from the next request on.
    pub async fn set_policy(&self, session: SessionId, policy: &SalesPolicy) -> Result<()> {
        let s = self.ctx.session(session).await?;
        policy.validate(Some(s.sales.open_at))?;
        self.ctx.stores.policies.set_policy(session, policy).await
    }
}
