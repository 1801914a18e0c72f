//! Who the simulated users buy from: the library in this process ([`Library`]), or the
//! example server over HTTP ([`crate::http::HttpSeller`]). Both answer the same few questions
//! a buyer asks (join, look at my place, leave, hold, pay, cancel) in the same terms, so one
//! user state machine ([`crate::users`]) drives either.

use std::sync::Arc;

use payment_sandbox::Sandbox;
use ticket_core::gateway::{IntentId, RefundRequest};
use ticket_core::model::audit::Actor;
use ticket_core::model::hold::Selection;
use ticket_core::model::inventory::Grade;
use ticket_core::model::queue::{Outlook, TicketState};
use ticket_core::service::{CheckoutService, HoldCommand, PaymentResult};
use ticket_core::{Error, HoldId, Refusal, SessionId, TicketRush, UserId};

use crate::http::HttpSeller;
use crate::metrics::{Classify, Op, Outcome, Samples, refusal_code};

/// The seller of a run.
#[derive(Debug)]
pub enum Seller {
    /// The library, called in this process.
    Library(Box<Library>),
    /// A running `ticket-server`, over HTTP.
    Http(HttpSeller),
}

/// The library's services for one session, with an in-process payment sandbox.
#[derive(Debug)]
pub struct Library {
    /// The services.
    pub rush: TicketRush,
    /// Checkout over `sandbox`.
    pub checkout: CheckoutService,
    /// The payment sandbox (read back by the checks).
    pub sandbox: Sandbox,
    /// The session on sale.
    pub session: SessionId,
    /// Its only grade.
    pub grade: Grade,
}

/// A user's ticket in the queue, as the seller shows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Place {
    /// The ticket's state.
    pub state: TicketState,
    /// Whether stock is likely to reach the user.
    pub outlook: Outlook,
    /// The ticket's id (a client's idempotency keys are made from it).
    pub ticket: String,
    /// Its number in the line (join order); `None` if the seller gave none.
    pub number: Option<u64>,
}

/// A hold the user made.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Held {
    /// Its id.
    pub id: HoldId,
    /// Units held.
    pub units: u32,
}

/// How a checkout ended at once.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Payment {
    /// Paid; the hold is confirmed.
    Confirmed,
    /// The payment failed; the hold's units went back on sale.
    Failed,
    /// Anything else (e.g. still processing), described.
    Other(String),
}

/// Why a seller's call did not give its answer.
#[derive(Debug, thiserror::Error)]
pub enum SellError {
    /// The library refused or failed.
    #[error(transparent)]
    Library(#[from] Error),
    /// The server answered with an error (`{"error": {"code", "message"}}`).
    #[error("HTTP {status} {code}: {message}")]
    Api {
        /// HTTP status.
        status: u16,
        /// The error's stable code (`SOLD_OUT`, …).
        code: String,
        /// Its message.
        message: String,
    },
    /// No usable answer: the server could not be reached, timed out, or answered something
    /// the simulator cannot read.
    #[error("HTTP: {0}")]
    Transport(String),
}

/// The refusal codes the library and the server share: answers with these codes are
/// refusals (rules doing their job), every other error a failure.
const REFUSALS: [&str; 17] = [
    "SOLD_OUT",
    "SEATS_UNAVAILABLE",
    "UNKNOWN_ITEM",
    "QUEUE_FULL",
    "QUEUE_NOT_OPEN",
    "NOT_ADMITTED",
    "ADMISSION_EXPIRED",
    "NOT_IN_QUEUE",
    "HOLD_EXPIRED",
    "NOT_DUE",
    "ILLEGAL_TRANSITION",
    "NOT_OWNER",
    "LIMIT_EXCEEDED",
    "SALES_NOT_OPEN",
    "SALES_CLOSED",
    "GRADE_NOT_ALLOWED",
    "UNKNOWN_TIER",
];

impl SellError {
    /// The refusal's code when this is a refusal of the rules (not a failure).
    pub fn refusal(&self) -> Option<&'static str> {
        match self {
            Self::Library(Error::Refused(r)) => Some(refusal_code(r)),
            Self::Api { code, .. } => REFUSALS.iter().copied().find(|c| c == code),
            _ => None,
        }
    }

    /// `Some(available)` when this is a sold-out refusal; `available` is what was left when
    /// the seller says (the library does, the HTTP answer does not).
    pub fn sold_out(&self) -> Option<Option<u32>> {
        match self {
            Self::Library(Error::Refused(Refusal::SoldOut { available, .. })) => {
                Some(Some(*available))
            }
            _ if self.refusal() == Some("SOLD_OUT") => Some(None),
            _ => None,
        }
    }
}

impl Classify for SellError {
    fn outcome(&self) -> Outcome {
        match self.refusal() {
            Some(code) => Outcome::Refused(code),
            None => Outcome::Failed,
        }
    }
}

/// Why a buyer cancels (recorded in the audit trail and at the provider).
pub const CANCEL_REASON: &str = "changed their mind (rush simulator)";

/// The id of simulated user `user` (`rush-<n>`).
pub fn user_id(user: u32) -> Result<UserId, SellError> {
    UserId::new(format!("rush-{user}")).map_err(|e| SellError::Library(e.into()))
}

impl Seller {
    /// The session on sale.
    pub fn session(&self) -> SessionId {
        match self {
            Self::Library(l) => l.session,
            Self::Http(h) => h.session(),
        }
    }

    /// The time limits the sale runs under: the library's; over HTTP the library's
    /// defaults (the server's own are not published).
    pub fn limits(&self) -> ticket_core::TimeLimits {
        match self {
            Self::Library(l) => *l.rush.limits(),
            Self::Http(_) => ticket_core::TimeLimits::default(),
        }
    }

    /// Joins the session's queue (idempotent per user).
    pub async fn join(&self, user: u32) -> Result<Place, SellError> {
        match self {
            Self::Library(l) => {
                let t = l.rush.admission.join(l.session, &user_id(user)?).await?;
                Ok(Place {
                    state: t.state,
                    outlook: Outlook::Likely,
                    ticket: t.id.to_string(),
                    number: t.seq,
                })
            }
            Self::Http(h) => h.join(user).await,
        }
    }

    /// The user's place in line (on HTTP this also runs an admission round, as every
    /// client's poll does).
    pub async fn view(&self, user: u32) -> Result<Place, SellError> {
        match self {
            Self::Library(l) => {
                let v = l.rush.admission.view(l.session, &user_id(user)?).await?;
                Ok(Place {
                    state: v.ticket.state,
                    outlook: v.outlook,
                    ticket: v.ticket.id.to_string(),
                    number: v.ticket.seq,
                })
            }
            Self::Http(h) => h.view(user).await,
        }
    }

    /// Leaves the queue.
    pub async fn leave(&self, user: u32) -> Result<(), SellError> {
        match self {
            Self::Library(l) => {
                l.rush.admission.leave(l.session, &user_id(user)?).await?;
                Ok(())
            }
            Self::Http(h) => h.leave(user).await,
        }
    }

    /// Holds `quantity` units under the client's idempotency `key`.
    pub async fn hold(&self, user: u32, quantity: u32, key: &str) -> Result<Held, SellError> {
        match self {
            Self::Library(l) => {
                let cmd = HoldCommand {
                    session: l.session,
                    user: user_id(user)?,
                    tier: None,
                    selection: Selection::Units {
                        grade: l.grade.clone(),
                        quantity,
                    },
                };
                let h = l.rush.holds.hold(cmd, Some(key)).await?;
                Ok(Held {
                    id: h.id,
                    units: h.units(),
                })
            }
            Self::Http(h) => h.hold(user, quantity, key).await,
        }
    }

    /// Pays `hold` with the sandbox card `card`; the sandbox's test cards answer at once,
    /// so the hold is settled by the checkout itself.
    pub async fn pay(&self, user: u32, hold: HoldId, card: &str) -> Result<Payment, SellError> {
        match self {
            Self::Library(l) => {
                let c = l.checkout.begin(hold, &user_id(user)?, card).await?;
                Ok(match c.result {
                    Some(PaymentResult::Confirmed { .. }) => Payment::Confirmed,
                    Some(PaymentResult::Failed { .. }) => Payment::Failed,
                    other => Payment::Other(format!("{other:?}")),
                })
            }
            Self::Http(h) => h.pay(user, hold, card).await,
        }
    }

    /// Cancels a confirmed purchase and refunds it in full (one provider key per hold, so
    /// a retry never refunds twice), timing each step into `s`. In-process that is the
    /// library's cancel, the gateway's refund and the refund's record on the hold, as the
    /// example server's cancel route does; over HTTP it is that route.
    pub async fn cancel(&self, user: u32, hold: HoldId, s: &mut Samples) -> Result<(), SellError> {
        let l = match self {
            Self::Http(h) => return s.time(Op::Cancel, h.cancel(user, hold)).await,
            Self::Library(l) => l,
        };
        let who = user_id(user)?;
        let cancelled = s
            .time(
                Op::Cancel,
                l.rush.cancellations.cancel(hold, &who, CANCEL_REASON),
            )
            .await?;
        let Some(payment) = cancelled.payment_ref.clone() else {
            let why = format!("hold {hold} was confirmed without a payment");
            s.unexpected(Op::Cancel, why.clone());
            return Err(SellError::Transport(why));
        };
        let gateway: Arc<dyn ticket_core::gateway::PaymentGateway> = l.checkout.gateway().clone();
        let refund = s
            .time(Op::Refund, async move {
                let intent = IntentId::new(payment).map_err(Error::Payment)?;
                gateway
                    .refund(RefundRequest {
                        intent,
                        amount_minor: None,
                        reason: CANCEL_REASON.to_owned(),
                        idempotency_key: format!("rush-cancel-{hold}"),
                    })
                    .await
                    .map_err(Error::Payment)
            })
            .await?;
        s.time(
            Op::RecordRefund,
            l.rush
                .cancellations
                .record_refund(hold, &refund.id, Actor::User(who)),
        )
        .await?;
        Ok(())
    }
}
