//! Errors. One enum, [`Error`], for every trait and service, split by what the caller can do:
//!
//! * [`Error::Invalid`]: the input was rejected before anything ran; fix the request.
//! * [`Error::Refused`]: a domain rule said no ([`Refusal`]); the answer is final for this
//!   request and is serialisable, so idempotent replays return it unchanged.
//! * [`Error::NotFound`]: the subject does not exist.
//! * [`Error::KeyReused`] / [`Error::InFlight`]: idempotency-key misuse or a concurrent repeat.
//! * [`Error::Unavailable`]: the backend failed; the outcome is unknown, retry with the same
//!   idempotency key.
//! * [`Error::Corrupt`]: a store returned data that breaks an invariant; a bug, not the caller's.
//! * [`Error::Payment`]: the payment provider refused the request or could not be reached.

use serde::{Deserialize, Serialize};

use crate::clock::Timestamp;
use crate::gateway::GatewayError;
use crate::ids::SessionId;
use crate::model::hold::HoldState;
use crate::model::inventory::{Grade, SeatId};

/// A boxed error from a storage driver, kept as the source of [`Error::Unavailable`].
pub type BoxError = Box<dyn std::error::Error + Send + Sync + 'static>;

/// Input rejected before any state was read or changed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum InvalidInput {
    /// An id could not be parsed.
    #[error("malformed {kind}: {value:?}")]
    MalformedId {
        /// Which kind of id.
        kind: &'static str,
        /// The offending value (truncated).
        value: String,
    },
    /// A quantity outside the accepted range.
    #[error("quantity must be between 1 and {max}, got {got}")]
    Quantity {
        /// Largest accepted quantity.
        max: u32,
        /// What was asked.
        got: u32,
    },
    /// A money amount or currency is malformed.
    #[error("invalid money: {0}")]
    Money(String),
    /// A session or event definition is inconsistent.
    #[error("invalid definition: {0}")]
    Definition(String),
    /// A seat selection is empty, repeats a seat or names a seat twice.
    #[error("invalid seat selection: {0}")]
    Seats(String),
    /// The selection kind does not match the session (units for a seated session or
    /// seats for a general-admission one).
    #[error("selection does not match the session's inventory kind")]
    SelectionKind,
    /// An idempotency key is empty or longer than 255 characters.
    #[error("idempotency key must be 1..=255 characters, got {len}")]
    IdempotencyKey {
        /// Length of the rejected key.
        len: usize,
    },
    /// A sales policy is inconsistent (unknown tier, empty window, …).
    #[error("invalid sales policy: {0}")]
    Policy(String),
    /// A configuration value is inconsistent.
    #[error("invalid configuration: {0}")]
    Config(String),
    /// A check-in request is malformed (ticket number out of 1..=100, empty, too long or
    /// unprintable gate name).
    #[error("invalid check-in: {0}")]
    CheckIn(String),
    /// A page size outside `1..=max`.
    #[error("page size must be between 1 and {max}, got {got}")]
    PageLimit {
        /// Largest accepted page.
        max: usize,
        /// What was asked.
        got: usize,
    },
}

/// A domain refusal: the request was well-formed, a rule said no, and nothing changed, with
/// one documented exception: [`Refusal::HoldExpired`] is answered after the store expired
/// the hold on the spot (its units are back on sale).
///
/// Refusals are final for the request that got them and serialisable, so an idempotent
/// repeat replays exactly the same refusal.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, thiserror::Error)]
#[serde(tag = "code", rename_all = "SCREAMING_SNAKE_CASE")]
#[non_exhaustive]
pub enum Refusal {
    /// Not enough units of the grade are left.
    #[error("sold out: {requested} unit(s) of {grade} asked, {available} available")]
    SoldOut {
        /// The grade asked for.
        grade: Grade,
        /// Units asked for.
        requested: u32,
        /// Units available at that instant.
        available: u32,
    },
    /// One or more of the seats is held or sold; no seat was taken.
    #[error("seats unavailable: {seats:?}")]
    SeatsUnavailable {
        /// The seats that were not free.
        seats: Vec<SeatId>,
    },
    /// The seat or grade does not exist in the session.
    #[error("unknown {what}: {name}")]
    UnknownItem {
        /// `"seat"` or `"grade"`.
        what: String,
        /// The name asked for.
        name: String,
    },
    /// The waiting queue is at its length cap; try again later.
    #[error("queue is full ({cap} waiting)")]
    QueueFull {
        /// The configured cap.
        cap: u32,
    },
    /// The queue for this session does not accept joins yet.
    #[error("queue opens at {opens_at}")]
    QueueNotOpen {
        /// When joins open.
        opens_at: Timestamp,
    },
    /// The user holds no active admission for the session.
    #[error("not admitted: wait for your turn in the queue")]
    NotAdmitted,
    /// The user's admission ran out before it was used.
    #[error("admission expired at {expired_at}")]
    AdmissionExpired {
        /// When the admission expired.
        expired_at: Timestamp,
    },
    /// The user has no live queue ticket for the session.
    #[error("not in the queue")]
    NotInQueue,
    /// The hold is past its TTL and can no longer be paid.
    #[error("hold expired at {expired_at}")]
    HoldExpired {
        /// When the hold expired.
        expired_at: Timestamp,
    },
    /// The hold is not past its TTL yet, so it cannot be expired.
    #[error("hold is not due: it expires at {expires_at}")]
    NotDue {
        /// When it will expire.
        expires_at: Timestamp,
    },
    /// The state machine does not allow this transition.
    #[error("illegal transition {from:?} -> {to:?}")]
    IllegalTransition {
        /// Current state.
        from: HoldState,
        /// Requested state.
        to: HoldState,
    },
    /// The hold belongs to someone else.
    #[error("hold belongs to another user")]
    NotOwner,
    /// The per-user limit (held + confirmed units) would be exceeded.
    #[error("per-user limit {limit}: {current} held or bought, {requested} more asked")]
    LimitExceeded {
        /// The limit per user per session.
        limit: u32,
        /// Units the user already holds or bought.
        current: u32,
        /// Units asked for.
        requested: u32,
    },
    /// Sales have not opened for this user yet.
    #[error("sales open at {opens_at}")]
    SalesNotOpen {
        /// When this user may buy.
        opens_at: Timestamp,
    },
    /// Sales are over for this session.
    #[error("sales closed at {closed_at}")]
    SalesClosed {
        /// When sales closed.
        closed_at: Timestamp,
    },
    /// The user's tier may not buy this grade.
    #[error("grade {grade} is not sold to tier {tier}")]
    GradeNotAllowed {
        /// The grade asked for.
        grade: Grade,
        /// The user's tier.
        tier: String,
    },
    /// The user's tier is not known to the session's policy.
    #[error("unknown tier {tier}")]
    UnknownTier {
        /// The tier given.
        tier: String,
    },
    /// Check-in: the ticket is for another session than the one being checked in.
    #[error("the ticket is for another session ({session})")]
    WrongSession {
        /// The ticket's own session.
        session: SessionId,
    },
    /// Check-in: the reservation has no ticket with this number.
    #[error("ticket {ticket} does not exist: the reservation has {tickets} ticket(s)")]
    TicketOutOfRange {
        /// The number asked for.
        ticket: u32,
        /// How many tickets the reservation has.
        tickets: u32,
    },
    /// Check-in: the reservation is not CONFIRMED (unpaid, cancelled, refunded, …), so its
    /// tickets let nobody in.
    #[error("the reservation is {state:?}, not confirmed")]
    NotConfirmed {
        /// Its state.
        state: HoldState,
    },
    /// A ticket of the reservation was checked in at the gate, so it can no longer be
    /// cancelled (the holder went in).
    #[error("a ticket of this reservation was checked in at {first_used_at}")]
    TicketUsed {
        /// When its first ticket was checked in.
        first_used_at: Timestamp,
    },
    /// The organiser paused the sale: no new holds or admissions until it resumes (holds
    /// made before may still be paid).
    #[error("sales are paused")]
    SalesPaused,
    /// The organiser cancelled the show: nothing is sold, confirmed reservations are
    /// refunded in full.
    #[error("the session was cancelled at {cancelled_at}")]
    SessionCancelled {
        /// When it was cancelled.
        cancelled_at: Timestamp,
    },
    /// The sale switch cannot move this way (a closed sale does not reopen; a cancelled
    /// show stays cancelled).
    #[error("illegal sale transition {from:?} -> {to:?}")]
    IllegalSaleTransition {
        /// Where the switch stands.
        from: crate::model::sale::SaleState,
        /// Where it was asked to go.
        to: crate::model::sale::SaleState,
    },
    /// Removing units would take capacity below what is held and sold: only units on sale
    /// can be removed.
    #[error("cannot remove {requested} unit(s) of {grade}: only {removable} on sale")]
    CapacityInUse {
        /// The grade.
        grade: Grade,
        /// Units asked to remove.
        requested: u32,
        /// Units that could be removed now.
        removable: u32,
    },
    /// Seats to add already exist in the session.
    #[error("seats already exist: {seats:?}")]
    SeatsExist {
        /// The seats that exist.
        seats: Vec<SeatId>,
    },
    /// The refund policy allows no cancellation any more (its deadline before the start
    /// passed).
    #[error("cancellations closed at {deadline}")]
    CancellationClosed {
        /// The last instant a cancellation was accepted.
        deadline: Timestamp,
    },
    /// A change-feed read resumed after a cursor older than the feed keeps: the changes in
    /// between were dropped by retention. Resynchronise from the reads, then follow the feed
    /// from `first_kept - 1`.
    #[error("changes before {first_kept} were pruned")]
    ChangesPruned {
        /// The oldest sequence number still kept.
        first_kept: u64,
    },
}

/// Every error a ticketrush trait or service returns.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// Rejected before anything ran; nothing was stored, not even an idempotency record.
    #[error("invalid input: {0}")]
    Invalid(#[from] InvalidInput),
    /// A domain rule refused the request; nothing changed.
    #[error("refused: {0}")]
    Refused(#[from] Refusal),
    /// The subject does not exist.
    #[error("{kind} {id} not found")]
    NotFound {
        /// What was looked up (`"session"`, `"hold"`, …).
        kind: &'static str,
        /// Its id.
        id: String,
    },
    /// The idempotency key was used before with a different payload.
    #[error("idempotency key reused with a different payload")]
    KeyReused,
    /// The first request with this idempotency key is still running; retry later.
    #[error("a request with this idempotency key is still in flight")]
    InFlight,
    /// The backend could not be reached or failed; the outcome is unknown.
    #[error("storage unavailable")]
    Unavailable(#[source] BoxError),
    /// The store returned data that breaks an invariant.
    #[error("store returned inconsistent data: {0}")]
    Corrupt(String),
    /// The payment provider refused the request or failed ([`GatewayError::is_transient`]
    /// says whether the outcome is unknown and a retry may succeed).
    #[error("payment provider: {0}")]
    Payment(#[from] GatewayError),
}

impl Error {
    /// Shorthand for [`Error::NotFound`].
    pub fn not_found(kind: &'static str, id: impl ToString) -> Self {
        Self::NotFound {
            kind,
            id: id.to_string(),
        }
    }

    /// The refusal, when this error is one.
    pub fn refusal(&self) -> Option<&Refusal> {
        match self {
            Self::Refused(r) => Some(r),
            _ => None,
        }
    }
}

/// Result with [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;
