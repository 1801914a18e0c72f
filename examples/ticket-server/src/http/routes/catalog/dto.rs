//! The catalogue's request and answer bodies, and how they convert to and from the
//! library's types. The handlers are in [`super`] (public reads) and
//! [`crate::http::routes::admin::catalog`] (creating events).

use serde::{Deserialize, Serialize};
use ticket_core::Timestamp;
use ticket_core::ids::{EventId, SessionId};
use ticket_core::model::inventory::{Grade, GradeStock, InventoryPlan, Seat, SeatId, SeatState};
use ticket_core::model::money::{Currency, Money};
use ticket_core::model::session::{Event, SalesWindow, Session, SessionStatus};

use crate::http::error::ApiError;

/// The latest instant a request may name, epoch ms: 9999-12-31T23:59:59.999Z (instants in
/// requests are 0 to this; the document says so).
pub const MAX_INSTANT_MS: i64 = 253_402_300_799_999;
/// Largest price of one unit or seat, minor units.
pub const MAX_PRICE_MINOR: i64 = 1_000_000_000_000;
/// Largest capacity of one grade.
pub const MAX_GRADE_CAPACITY: u32 = 10_000_000;
/// Longest accepted seat section label, in bytes.
pub const MAX_SECTION_LEN: usize = 100;
/// Default page size of `GET /api/events`.
pub const DEFAULT_PER_PAGE: u32 = 20;
/// Largest page size of `GET /api/events`.
pub const MAX_PER_PAGE: u32 = 100;
/// Longest accepted search text `q`, in characters.
pub const MAX_QUERY_LEN: usize = 200;
/// Largest page number of `GET /api/events`.
pub const MAX_PAGE: u32 = 1_000_000;

// ---------------------------------------------------------------------------------------
// Requests

/// `POST /api/admin/events`: an event and its sessions.
#[derive(Debug, Clone, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateEventRequest {
    /// Display name: at most 200 bytes of UTF-8, not only whitespace (trimmed).
    #[schema(min_length = 1, max_length = 200, pattern = r"\S")]
    pub name: String,
    /// At least one session.
    #[schema(min_items = 1)]
    pub sessions: Vec<CreateSessionRequest>,
}

/// One session of [`CreateEventRequest`]: exactly one of `grades` (general admission) or
/// `seats` (a seat map).
#[derive(Debug, Clone, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateSessionRequest {
    /// Performance start, epoch milliseconds (1970 to 9999).
    #[schema(minimum = 0, maximum = 253_402_300_799_999_i64)]
    pub starts_at: i64,
    /// Public sales open (inclusive), epoch milliseconds (1970 to 9999).
    #[schema(minimum = 0, maximum = 253_402_300_799_999_i64)]
    pub sales_open_at: i64,
    /// Sales close (exclusive), epoch milliseconds; at most `starts_at`.
    #[schema(minimum = 0, maximum = 253_402_300_799_999_i64)]
    pub sales_close_at: i64,
    /// General-admission stock per grade.
    #[serde(default)]
    pub grades: Option<Vec<GradeRequest>>,
    /// Individual seats.
    #[serde(default)]
    pub seats: Option<Vec<SeatRequest>>,
}

/// General-admission stock of one grade.
#[derive(Debug, Clone, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct GradeRequest {
    /// Grade name (`GA`, `VIP`): 1 to 32 letters, digits, `-`, `_`, `.`.
    #[schema(pattern = r"^[A-Za-z0-9._-]{1,32}$")]
    pub grade: String,
    /// Units for sale, 1 to 10 000 000 (`MAX_GRADE_CAPACITY`).
    #[schema(minimum = 1, maximum = 10_000_000)]
    pub capacity: u32,
    /// Price of one unit in minor units, 0 to 10^12.
    #[schema(minimum = 0, maximum = 1_000_000_000_000_i64)]
    pub price_minor: i64,
    /// Three upper-case letters.
    #[schema(pattern = "^[A-Z]{3}$")]
    pub currency: String,
}

/// One seat.
#[derive(Debug, Clone, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SeatRequest {
    /// Seat id, unique in the session (`A-12`): 1 to 32 letters, digits, `-`, `_`, `.`.
    #[schema(pattern = r"^[A-Za-z0-9._-]{1,32}$")]
    pub id: String,
    /// Section label for display: at most 100 bytes of UTF-8, not only whitespace.
    #[schema(min_length = 1, max_length = 100, pattern = r"\S")]
    pub section: String,
    /// Price grade: 1 to 32 letters, digits, `-`, `_`, `.`.
    #[schema(pattern = r"^[A-Za-z0-9._-]{1,32}$")]
    pub grade: String,
    /// Price in minor units, 0 to 10^12.
    #[schema(minimum = 0, maximum = 1_000_000_000_000_i64)]
    pub price_minor: i64,
    /// Three upper-case letters.
    #[schema(pattern = "^[A-Z]{3}$")]
    pub currency: String,
}

/// Query of `GET /api/events`.
#[derive(Debug, Clone, Default, Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct ListQuery {
    /// Case-insensitive text searched in the event name, at most 200 characters.
    #[param(max_length = 200)]
    pub q: Option<String>,
    /// `upcoming`, `on_sale` or `closed`: the event's status (see [`EventView::status`]).
    pub status: Option<StatusView>,
    /// Only events with a session starting at or after this instant (epoch ms).
    pub from: Option<i64>,
    /// Only events with a session starting before this instant (epoch ms); at or before
    /// `from`, nothing matches.
    pub to: Option<i64>,
    /// 1-based page number, at most 1 000 000 (default 1).
    #[param(minimum = 1, maximum = 1_000_000)]
    pub page: Option<u32>,
    /// Page size, 1 to 100 (default 20).
    #[param(minimum = 1, maximum = 100)]
    pub per_page: Option<u32>,
}

// ---------------------------------------------------------------------------------------
// Answers

/// A session's status as the API spells it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum StatusView {
    /// Before public sales open.
    Upcoming,
    /// Inside the sales window.
    OnSale,
    /// The organiser paused the sale (inside the window).
    Paused,
    /// After the sales window, or closed early by the organiser.
    Closed,
    /// The organiser cancelled the show.
    Cancelled,
}

impl From<SessionStatus> for StatusView {
    fn from(s: SessionStatus) -> Self {
        match s {
            SessionStatus::Scheduled => Self::Upcoming,
            SessionStatus::OnSale => Self::OnSale,
            SessionStatus::Paused => Self::Paused,
            SessionStatus::Closed => Self::Closed,
            SessionStatus::Cancelled => Self::Cancelled,
        }
    }
}

/// What a session sells.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum KindView {
    /// Interchangeable units per grade.
    General,
    /// Individual seats.
    Seated,
}

/// A grade of a session's plan (no live counts; see [`SessionStock`]).
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct GradePlanView {
    /// The grade.
    pub grade: String,
    /// Units (or seats) of this grade.
    pub capacity: u32,
    /// Price of one unit; for seats, the lowest seat price of the grade.
    pub price_minor: i64,
    /// Currency.
    pub currency: String,
}

/// A session as listed with its event.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct SessionView {
    /// Id.
    #[schema(value_type = String, format = "uuid")]
    pub id: SessionId,
    /// Performance start, epoch ms.
    pub starts_at: i64,
    /// Public sales open, epoch ms.
    pub sales_open_at: i64,
    /// Sales close, epoch ms.
    pub sales_close_at: i64,
    /// Status now.
    pub status: StatusView,
    /// `general` or `seated`.
    pub kind: KindView,
    /// Grades, in plan order.
    pub grades: Vec<GradePlanView>,
}

/// An event with its sessions.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct EventView {
    /// Id.
    #[schema(value_type = String, format = "uuid")]
    pub id: EventId,
    /// Display name.
    pub name: String,
    /// `on_sale` when a session is on sale, else `upcoming` when one has yet to open, else
    /// `closed`.
    pub status: StatusView,
    /// Sessions, in definition order.
    pub sessions: Vec<SessionView>,
}

/// One page of `GET /api/events`.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct EventPage {
    /// The events of this page, by earliest session start, then id.
    pub items: Vec<EventView>,
    /// This page (1-based).
    pub page: u32,
    /// Page size.
    pub per_page: u32,
    /// Matching events over all pages.
    pub total: usize,
}

/// Live counters of one grade.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct GradeStockView {
    /// The grade.
    pub grade: String,
    /// Units in the plan.
    pub capacity: u32,
    /// On sale now.
    pub available: u32,
    /// In live holds.
    pub held: u32,
    /// Sold.
    pub sold: u32,
    /// Price of one unit; for seats, the lowest seat price of the grade.
    pub price_minor: i64,
    /// Currency.
    pub currency: String,
}

/// `GET /api/sessions/{id}`: a session and what is left of it, per grade.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct SessionStock {
    /// Id.
    #[schema(value_type = String, format = "uuid")]
    pub id: SessionId,
    /// Its event.
    #[schema(value_type = String, format = "uuid")]
    pub event_id: EventId,
    /// Performance start, epoch ms.
    pub starts_at: i64,
    /// Public sales open, epoch ms.
    pub sales_open_at: i64,
    /// Sales close, epoch ms.
    pub sales_close_at: i64,
    /// Status now.
    pub status: StatusView,
    /// `general` or `seated`.
    pub kind: KindView,
    /// Counters per grade, read at one instant.
    pub grades: Vec<GradeStockView>,
}

/// A seat's state as the API spells it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum SeatStateView {
    /// On sale.
    Available,
    /// In a live hold.
    Held,
    /// Sold.
    Sold,
}

impl From<SeatState> for SeatStateView {
    fn from(s: SeatState) -> Self {
        match s {
            SeatState::Available => Self::Available,
            SeatState::Held => Self::Held,
            SeatState::Sold => Self::Sold,
        }
    }
}

/// One seat of `GET /api/sessions/{id}/seats`.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct SeatView {
    /// Seat id.
    pub id: String,
    /// Section label.
    pub section: String,
    /// Price grade.
    pub grade: String,
    /// Price in minor units.
    pub price_minor: i64,
    /// Currency.
    pub currency: String,
    /// `available`, `held` or `sold`.
    pub status: SeatStateView,
}

impl From<StatusView> for SessionStatus {
    fn from(s: StatusView) -> Self {
        match s {
            StatusView::Upcoming => Self::Scheduled,
            StatusView::OnSale => Self::OnSale,
            StatusView::Paused => Self::Paused,
            StatusView::Closed => Self::Closed,
            StatusView::Cancelled => Self::Cancelled,
        }
    }
}

// ---------------------------------------------------------------------------------------
// Conversions

fn money(price_minor: i64, currency: &str) -> Result<Money, ApiError> {
    if price_minor > MAX_PRICE_MINOR {
        return Err(invalid(format!(
            "price_minor must be at most {MAX_PRICE_MINOR}, not {price_minor}"
        )));
    }
    let currency = Currency::new(currency).map_err(ticket_core::Error::from)?;
    Ok(Money::new(price_minor, currency).map_err(ticket_core::Error::from)?)
}

fn invalid(message: String) -> ApiError {
    ApiError::from(ticket_core::Error::from(
        ticket_core::error::InvalidInput::Definition(message),
    ))
}

/// The library's seat from a request's (422 `VALIDATION` when the library refuses it).
pub(crate) fn build_seat(s: &SeatRequest) -> Result<Seat, ApiError> {
    if s.section.trim().is_empty() || s.section.len() > MAX_SECTION_LEN {
        return Err(invalid(format!(
            "seat {:?}: section must be 1..={MAX_SECTION_LEN} bytes",
            s.id
        )));
    }
    Ok(Seat {
        id: SeatId::new(s.id.clone()).map_err(ticket_core::Error::from)?,
        section: s.section.clone(),
        grade: Grade::new(s.grade.clone()).map_err(ticket_core::Error::from)?,
        price: money(s.price_minor, &s.currency)?,
    })
}

fn plan(index: usize, s: &CreateSessionRequest) -> Result<InventoryPlan, ApiError> {
    match (&s.grades, &s.seats) {
        (Some(grades), None) => {
            let grades = grades
                .iter()
                .map(|g| {
                    if g.capacity > MAX_GRADE_CAPACITY {
                        return Err(invalid(format!(
                            "grade {:?}: capacity must be at most {MAX_GRADE_CAPACITY}",
                            g.grade
                        )));
                    }
                    Ok(GradeStock {
                        grade: Grade::new(g.grade.clone()).map_err(ticket_core::Error::from)?,
                        capacity: g.capacity,
                        price: money(g.price_minor, &g.currency)?,
                    })
                })
                .collect::<Result<Vec<_>, ApiError>>()?;
            Ok(InventoryPlan::General { grades })
        }
        (None, Some(seats)) => {
            let seats = seats
                .iter()
                .map(build_seat)
                .collect::<Result<Vec<_>, ApiError>>()?;
            Ok(InventoryPlan::Seated { seats })
        }
        _ => Err(invalid(format!(
            "session {index}: give exactly one of `grades` (general admission) or `seats`"
        ))),
    }
}

pub(crate) fn build_event(req: &CreateEventRequest, now: Timestamp) -> Result<Event, ApiError> {
    let id = EventId::new_at(now);
    let sessions = req
        .sessions
        .iter()
        .enumerate()
        .map(|(i, s)| {
            if [s.starts_at, s.sales_open_at, s.sales_close_at]
                .iter()
                .any(|t| !(0..=MAX_INSTANT_MS).contains(t))
            {
                return Err(invalid(format!(
                    "session {i}: instants are epoch ms from 0 to {MAX_INSTANT_MS}"
                )));
            }
            Ok(Session {
                id: SessionId::new_at(now),
                event_id: id,
                starts_at: Timestamp::from_millis(s.starts_at),
                sales: SalesWindow {
                    open_at: Timestamp::from_millis(s.sales_open_at),
                    close_at: Timestamp::from_millis(s.sales_close_at),
                },
                inventory: plan(i, s)?,
            })
        })
        .collect::<Result<Vec<_>, ApiError>>()?;
    Ok(Event {
        id,
        name: req.name.trim().to_owned(),
        sessions,
    })
}

pub(crate) fn kind(plan: &InventoryPlan) -> KindView {
    if plan.is_seated() {
        KindView::Seated
    } else {
        KindView::General
    }
}

/// Capacity, lowest price and currency per grade, in plan order.
pub(crate) fn grade_plan(plan: &InventoryPlan) -> Vec<GradePlanView> {
    let mut out: Vec<GradePlanView> = Vec::new();
    let mut add = |grade: &Grade, capacity: u32, price: &Money| {
        if let Some(g) = out.iter_mut().find(|g| g.grade == grade.as_str()) {
            g.capacity = g.capacity.saturating_add(capacity);
            g.price_minor = g.price_minor.min(price.amount_minor);
        } else {
            out.push(GradePlanView {
                grade: grade.as_str().to_owned(),
                capacity,
                price_minor: price.amount_minor,
                currency: price.currency.as_str().to_owned(),
            });
        }
    };
    match plan {
        InventoryPlan::General { grades } => {
            for g in grades {
                add(&g.grade, g.capacity, &g.price);
            }
        }
        InventoryPlan::Seated { seats } => {
            for s in seats {
                add(&s.grade, 1, &s.price);
            }
        }
    }
    out
}

/// The organiser's sale switches of the sessions shown, by session (a session missing is
/// OPEN: the switch every session starts with).
pub(crate) type Switches =
    std::collections::HashMap<ticket_core::SessionId, ticket_core::model::sale::SaleSwitch>;

/// A session's status at `now`: its sale switch over its sales window.
pub(crate) fn status_of(s: &Session, now: Timestamp, switches: &Switches) -> SessionStatus {
    switches
        .get(&s.id)
        .map_or_else(|| s.status_at(now), |sw| sw.status(s, now))
}

pub(crate) fn session_view(s: &Session, now: Timestamp, switches: &Switches) -> SessionView {
    SessionView {
        id: s.id,
        starts_at: s.starts_at.as_millis(),
        sales_open_at: s.sales.open_at.as_millis(),
        sales_close_at: s.sales.close_at.as_millis(),
        status: status_of(s, now, switches).into(),
        kind: kind(&s.inventory),
        grades: grade_plan(&s.inventory),
    }
}

pub(crate) fn event_view(e: &Event, now: Timestamp, switches: &Switches) -> EventView {
    EventView {
        id: e.id,
        name: e.name.clone(),
        status: crate::services::catalog::event_status_of(
            e.sessions.iter().map(|s| status_of(s, now, switches)),
        )
        .into(),
        sessions: e
            .sessions
            .iter()
            .map(|s| session_view(s, now, switches))
            .collect(),
    }
}
