//! Holds (reservations) and their state machine.
//!
//! ```text
//! HELD ──► PAYING ──► CONFIRMED ──► CANCELLED ──► REFUNDED
//!  │          │
//!  └────┬─────┘
//!       ▼
//!  EXPIRED | RELEASED | PAYMENT_FAILED ──(late payment refunded)──► REFUNDED
//! ```
//!
//! The rules live here as pure functions ([`decide`]); backends apply the decision
//! atomically together with its [`StockEffect`].

use serde::{Deserialize, Serialize};

use super::money::Money;
pub use super::selection::{HeldSeat, HoldItems, MAX_UNITS_PER_HOLD, Selection, price_selection};
use crate::clock::Timestamp;
use crate::error::Refusal;
use crate::ids::{HoldId, SessionId, TicketId, UserId};
use crate::model::audit::Actor;

/// The state of a hold.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
#[non_exhaustive]
pub enum HoldState {
    /// Stock taken, waiting for checkout; expires at `expires_at`.
    Held,
    /// Checkout started with the payment provider; still expires at `expires_at`.
    Paying,
    /// Paid: the units are sold.
    Confirmed,
    /// The TTL ran out before payment; units went back on sale.
    Expired,
    /// The buyer (or an operator) let the hold go; units went back on sale.
    Released,
    /// The payment failed; units went back on sale.
    PaymentFailed,
    /// A confirmed reservation was cancelled; units went back on sale (resale).
    Cancelled,
    /// The money was returned: after a cancellation, or for a payment that arrived after
    /// the hold had ended and could not be re-booked.
    Refunded,
}

impl HoldState {
    /// Every state, for exhaustive tests.
    pub const ALL: [HoldState; 8] = [
        Self::Held,
        Self::Paying,
        Self::Confirmed,
        Self::Expired,
        Self::Released,
        Self::PaymentFailed,
        Self::Cancelled,
        Self::Refunded,
    ];

    /// HELD or PAYING: the hold keeps units out of sale.
    pub fn is_live(self) -> bool {
        matches!(self, Self::Held | Self::Paying)
    }

    /// States whose units count toward the per-user limit (live or confirmed).
    pub fn counts_toward_limit(self) -> bool {
        matches!(self, Self::Held | Self::Paying | Self::Confirmed)
    }

    /// Stable upper-case name, as stored and serialised.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Held => "HELD",
            Self::Paying => "PAYING",
            Self::Confirmed => "CONFIRMED",
            Self::Expired => "EXPIRED",
            Self::Released => "RELEASED",
            Self::PaymentFailed => "PAYMENT_FAILED",
            Self::Cancelled => "CANCELLED",
            Self::Refunded => "REFUNDED",
        }
    }
}

/// How a transition moves stock. Backends apply it in the same atomic step as the state
/// change, so `available + held + sold == capacity` holds at every instant.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StockEffect {
    /// No stock moves.
    None,
    /// held → sold (payment confirmed).
    HeldToSold,
    /// held → available (expired, released, payment failed).
    HeldToAvailable,
    /// sold → available (cancellation; the units are resold).
    SoldToAvailable,
}

/// What a backend must do with a transition request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Decision {
    /// The hold is already in the requested state: return it unchanged (idempotent repeat).
    AlreadyThere,
    /// Apply the transition with this stock effect.
    Apply(StockEffect),
    /// The hold is past its TTL: move it to EXPIRED (units back on sale) instead, and
    /// answer [`Refusal::HoldExpired`].
    ExpireInstead,
}

/// The state machine: may a hold in `from` (expiring at `expires_at`) move to `to` at `now`?
///
/// * Repeating a transition that already happened is [`Decision::AlreadyThere`].
/// * Moving a live hold toward payment (PAYING, CONFIRMED) at or after its expiry is
///   [`Decision::ExpireInstead`]: an expired hold is unusable even before a sweeper runs.
/// * EXPIRED is only reachable once the TTL has passed ([`Refusal::NotDue`] before).
/// * Anything else not in the diagram is [`Refusal::IllegalTransition`].
/// * A hold whose late payment was re-booked is never refunded (the money bought the new
///   hold).
pub fn decide(hold: &Hold, to: HoldState, now: Timestamp) -> Result<Decision, Refusal> {
    decide_parts(
        hold.state,
        hold.expires_at,
        hold.rebooked_as.is_some(),
        to,
        now,
    )
}

/// [`decide`] on the parts of a hold it reads. Backends that evaluate the rule where the
/// hold is stored get it as a table from
/// [`crate::backend::encoding::decision_codes`].
pub(crate) fn decide_parts(
    from: HoldState,
    expires_at: Timestamp,
    rebooked: bool,
    to: HoldState,
    now: Timestamp,
) -> Result<Decision, Refusal> {
    if to == HoldState::Refunded && rebooked && from != to {
        return Err(Refusal::IllegalTransition { from, to });
    }
    decide_state(from, expires_at, to, now)
}

/// Late payment: may `hold` be re-booked? `Ok(Some(id))` when it already was (idempotent
/// repeat: return hold `id`), `Ok(None)` when the units should be taken again, and
/// `IllegalTransition` unless the hold ended without a sale (EXPIRED, RELEASED,
/// PAYMENT_FAILED).
pub fn decide_rebook(hold: &Hold) -> Result<Option<HoldId>, Refusal> {
    rebook_allowed_from(hold.state)?;
    Ok(hold.rebooked_as)
}

/// Whether a hold in `from` may be re-booked after a late payment (EXPIRED, RELEASED or
/// PAYMENT_FAILED); the rule of [`decide_rebook`] on a bare state.
pub fn rebook_allowed_from(from: HoldState) -> Result<(), Refusal> {
    match from {
        HoldState::Expired | HoldState::Released | HoldState::PaymentFailed => Ok(()),
        from => Err(Refusal::IllegalTransition {
            from,
            to: HoldState::Confirmed,
        }),
    }
}

/// [`decide`] on a bare state and expiry.
pub fn decide_state(
    from: HoldState,
    expires_at: Timestamp,
    to: HoldState,
    now: Timestamp,
) -> Result<Decision, Refusal> {
    use HoldState::*;
    if from == to {
        return Ok(Decision::AlreadyThere);
    }
    let due = now >= expires_at;
    let effect = match (from, to) {
        (Held, Paying) | (Paying, Confirmed) if due => return Ok(Decision::ExpireInstead),
        (Held, Paying) => StockEffect::None,
        (Paying, Confirmed) => StockEffect::HeldToSold,
        (Held | Paying, Expired) if !due => return Err(Refusal::NotDue { expires_at }),
        (Held | Paying, Expired | Released | PaymentFailed) => StockEffect::HeldToAvailable,
        (Confirmed, Cancelled) => StockEffect::SoldToAvailable,
        (Cancelled | Expired | Released | PaymentFailed, Refunded) => StockEffect::None,
        _ => return Err(Refusal::IllegalTransition { from, to }),
    };
    Ok(Decision::Apply(effect))
}

/// A hold (reservation): units or seats kept out of sale for one user until it is paid,
/// expires or is released.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Hold {
    /// Id (UUIDv7).
    pub id: HoldId,
    /// Session.
    pub session: SessionId,
    /// Owner.
    pub user: UserId,
    /// What it covers.
    pub items: HoldItems,
    /// Total price.
    pub amount: Money,
    /// Current state.
    pub state: HoldState,
    /// When it was created.
    pub created_at: Timestamp,
    /// When a HELD or PAYING hold stops being payable.
    pub expires_at: Timestamp,
    /// Last state change.
    pub updated_at: Timestamp,
    /// The payment provider's reference, set when checkout starts.
    pub payment_ref: Option<String>,
    /// The queue ticket that was used to make it, when admission was required.
    pub admission: Option<TicketId>,
    /// For a hold re-booked after a late payment: the expired hold it replaces.
    pub rebooked_from: Option<HoldId>,
    /// For an ended hold whose late payment was re-booked: the new hold.
    pub rebooked_as: Option<HoldId>,
}

impl Hold {
    /// Number of units covered.
    pub fn units(&self) -> u32 {
        self.items.units()
    }

    /// Whether the hold is live but past its TTL at `now` (unusable, awaiting the sweeper).
    pub fn is_due(&self, now: Timestamp) -> bool {
        self.state.is_live() && now >= self.expires_at
    }
}

/// Whether the hold must come with an active queue admission.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum AdmissionCheck {
    /// The user must hold an ACTIVE, unexpired queue ticket for the session; the hold marks
    /// it USED in the same atomic step.
    Required,
    /// No queue for this session (or a presale that bypasses it).
    NotRequired,
}

/// A request to create a hold, as passed to [`crate::store::Reservations::hold`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewHold {
    /// Id for the new hold (minted by the caller so retries can be recognised).
    pub id: HoldId,
    /// Session.
    pub session: SessionId,
    /// Buyer.
    pub user: UserId,
    /// What to take.
    pub selection: Selection,
    /// The instant of the request.
    pub now: Timestamp,
    /// When the hold expires.
    pub expires_at: Timestamp,
    /// Per-user limit (held + confirmed units in the session), checked atomically.
    pub per_user_limit: Option<u32>,
    /// Whether an active admission is needed (and consumed).
    pub admission: AdmissionCheck,
    /// Who asks.
    pub actor: Actor,
    /// Correlation id for the audit trail.
    pub correlation_id: Option<String>,
}

impl NewHold {
    /// The hold this request creates once the backend has taken `items` (priced at `amount`)
    /// and, when required, used admission `ticket`: HELD, created and updated now.
    pub fn held(&self, items: HoldItems, amount: Money, ticket: Option<TicketId>) -> Hold {
        Hold {
            id: self.id,
            session: self.session,
            user: self.user.clone(),
            items,
            amount,
            state: HoldState::Held,
            created_at: self.now,
            expires_at: self.expires_at,
            updated_at: self.now,
            payment_ref: None,
            admission: ticket,
            rebooked_from: None,
            rebooked_as: None,
        }
    }
}

/// A request to move a hold to another state.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TransitionRequest {
    /// The hold.
    pub hold: HoldId,
    /// Target state.
    pub to: HoldState,
    /// The instant of the request.
    pub now: Timestamp,
    /// Who asks.
    pub actor: Actor,
    /// Why (kept in the audit record).
    pub reason: String,
    /// Correlation id for the audit trail.
    pub correlation_id: Option<String>,
    /// Payment reference to record (on PAYING / CONFIRMED).
    pub payment_ref: Option<String>,
}

/// Late payment: take an ended hold's units again for the payment that arrived late.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RebookRequest {
    /// The ended hold (EXPIRED, RELEASED or PAYMENT_FAILED).
    pub hold: HoldId,
    /// Id for the new, confirmed hold.
    pub new_id: HoldId,
    /// The payment that arrived late.
    pub payment_ref: String,
    /// Per-user limit, checked atomically like a new hold's: the buyer may have bought more
    /// since the hold ended.
    pub per_user_limit: Option<u32>,
    /// Who asks.
    pub actor: Actor,
    /// The instant of the request.
    pub now: Timestamp,
}

/// Result of a transition.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TransitionOutcome {
    /// The hold after the request.
    pub hold: Hold,
    /// False when the hold was already in the target state (idempotent repeat).
    pub changed: bool,
}

#[cfg(test)]
mod tests {
    use super::*;
    use HoldState::*;

    const T: Timestamp = Timestamp::from_millis(1_000);
    const BEFORE: Timestamp = Timestamp::from_millis(999);

    #[test]
    fn legal_transitions_and_their_stock_effects() {
        let ok = |f, t| decide_state(f, T, t, BEFORE);
        assert_eq!(ok(Held, Paying), Ok(Decision::Apply(StockEffect::None)));
        assert_eq!(
            ok(Paying, Confirmed),
            Ok(Decision::Apply(StockEffect::HeldToSold))
        );
        for end in [Released, PaymentFailed] {
            assert_eq!(
                ok(Held, end),
                Ok(Decision::Apply(StockEffect::HeldToAvailable))
            );
            assert_eq!(
                ok(Paying, end),
                Ok(Decision::Apply(StockEffect::HeldToAvailable))
            );
        }
        assert_eq!(
            ok(Confirmed, Cancelled),
            Ok(Decision::Apply(StockEffect::SoldToAvailable))
        );
        assert_eq!(
            ok(Cancelled, Refunded),
            Ok(Decision::Apply(StockEffect::None))
        );
        assert_eq!(
            decide_state(Held, T, Expired, T),
            Ok(Decision::Apply(StockEffect::HeldToAvailable))
        );
    }

    #[test]
    fn every_other_pair_is_illegal_or_idempotent() {
        let legal = [
            (Held, Paying),
            (Paying, Confirmed),
            (Held, Expired),
            (Held, Released),
            (Held, PaymentFailed),
            (Paying, Expired),
            (Paying, Released),
            (Paying, PaymentFailed),
            (Confirmed, Cancelled),
            (Cancelled, Refunded),
            (Expired, Refunded),
            (Released, Refunded),
            (PaymentFailed, Refunded),
        ];
        for from in HoldState::ALL {
            for to in HoldState::ALL {
                let d = decide_state(from, T, to, T);
                if from == to {
                    assert_eq!(d, Ok(Decision::AlreadyThere));
                } else if legal.contains(&(from, to)) {
                    assert!(d.is_ok(), "{from:?}->{to:?} should be legal: {d:?}");
                } else {
                    assert_eq!(d, Err(Refusal::IllegalTransition { from, to }));
                }
            }
        }
    }

    #[test]
    fn expired_holds_cannot_move_toward_payment() {
        assert_eq!(
            decide_state(Held, T, Paying, T),
            Ok(Decision::ExpireInstead)
        );
        assert_eq!(
            decide_state(Paying, T, Confirmed, T),
            Ok(Decision::ExpireInstead)
        );
        assert_eq!(
            decide_state(Held, T, Expired, BEFORE),
            Err(Refusal::NotDue { expires_at: T })
        );
    }
}
