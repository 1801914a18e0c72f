//! The catalogue: events, their sessions, the stock left and the seat maps; and, for admins,
//! creating events (a session's sales policy is set in [`crate::http::routes::admin::policy`]).
//!
//! | route | who | answer |
//! |---|---|---|
//! | `POST /api/admin/events` | admin | 201 [`EventView`] |
//! | `GET /api/events` | anyone | 200 [`EventPage`] |
//! | `GET /api/events/{id}` | anyone | 200 [`EventView`] |
//! | `GET /api/sessions/{id}` | anyone | 200 [`SessionStock`] |
//! | `GET /api/sessions/{id}/seats` | anyone | 200 `[`[`SeatView`]`]` |
//!
//! Every handler is described for `GET /openapi.json` by its `#[utoipa::path]` (tag
//! `catalog`).
//!
//! Conventions:
//! * Every instant, in requests and answers, is an integer: **milliseconds since the Unix
//!   epoch** (UTC), the library's [`Timestamp`].
//! * Prices are integer minor units (`price_minor`) with a three-letter upper-case
//!   `currency`; one currency per session.
//! * A session's `status` is `upcoming` (before public sales open), `on_sale` (inside its
//!   sales window) or `closed` (after it), from the sales window and the server's clock.
//! * Errors have the API's shape `{"error": {"code", "message"}}`: malformed JSON, wrong
//!   types, missing fields, a malformed id or a bad query → 400 `VALIDATION`; a definition
//!   or policy the library refuses (empty name, no sessions, zero capacity, negative price,
//!   bad currency, seat listed twice, sales window after the start, …) → 422 `VALIDATION`;
//!   an unknown id → 404 `NOT_FOUND`; no or a bad token on an admin route → 401, a
//!   non-admin → 403. A refused request changes nothing.
//!
//! **Listing.** `GET /api/events` pages through every event of the shared backend
//! ([`ticket_core::store::Inventory::events`], [`LOAD_PAGE`] at a time, in id order), then
//! filters, sorts and pages them as the query asks. So every server process on one Redis or
//! PostgreSQL lists the same events, whichever process created them. An event created while
//! a listing runs may or may not be in it. The cost is one read of the whole catalogue per
//! request: fine for a catalogue of thousands of events, not for millions.

use std::collections::BTreeMap;

use axum::extract::rejection::QueryRejection;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::routing::{get, post};
use axum::{Json, Router};
use serde::{Deserialize, Serialize};
use ticket_core::Timestamp;
use ticket_core::ids::{EventId, SessionId};
use ticket_core::model::inventory::{Grade, GradeStock, InventoryPlan, Seat, SeatId, SeatState};
use ticket_core::model::money::{Currency, Money};
use ticket_core::model::session::{Event, SalesWindow, Session, SessionStatus};

use crate::http::error::{ApiError, ErrorBody};
use crate::http::extract::{AdminUser, JsonBody};
use crate::http::params::path_id;
use crate::runtime::state::AppState;

/// The routes of this group.
pub fn router() -> Router<AppState> {
    Router::new()
        .route("/api/admin/events", post(create_event))
        .route("/api/events", get(list_events))
        .route("/api/events/{id}", get(get_event))
        .route("/api/sessions/{id}", get(get_session))
        .route("/api/sessions/{id}/seats", get(get_seats))
}

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
    /// After the sales window.
    Closed,
}

impl From<SessionStatus> for StatusView {
    fn from(s: SessionStatus) -> Self {
        match s {
            SessionStatus::Scheduled => Self::Upcoming,
            SessionStatus::OnSale => Self::OnSale,
            SessionStatus::Closed => Self::Closed,
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

// ---------------------------------------------------------------------------------------
// Publishing and loading

/// How many events `GET /api/events` reads from the backend per call while it loads them.
pub const LOAD_PAGE: usize = 200;

/// Creates `event` in the library (validated, idempotent for an identical event); it is
/// listed by `GET /api/events` from every server sharing the backend. For events made
/// outside the HTTP API, such as the demo event at start.
pub async fn publish_event(state: &AppState, event: &Event) -> Result<(), ApiError> {
    state.rush.create_event(event).await?;
    Ok(())
}

/// Every event of the backend, in id order, read [`LOAD_PAGE`] at a time.
async fn all_events(state: &AppState) -> Result<Vec<Event>, ApiError> {
    let inventory = &state.rush.stores().inventory;
    let mut events: Vec<Event> = Vec::new();
    loop {
        let after = events.last().map(|e| e.id);
        let page = inventory.events(after, LOAD_PAGE).await?;
        let full = page.len() == LOAD_PAGE;
        events.extend(page);
        if !full {
            return Ok(events);
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
                .map(|s| {
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
                })
                .collect::<Result<Vec<_>, ApiError>>()?;
            Ok(InventoryPlan::Seated { seats })
        }
        _ => Err(invalid(format!(
            "session {index}: give exactly one of `grades` (general admission) or `seats`"
        ))),
    }
}

fn build_event(req: &CreateEventRequest, now: Timestamp) -> Result<Event, ApiError> {
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

fn kind(plan: &InventoryPlan) -> KindView {
    if plan.is_seated() {
        KindView::Seated
    } else {
        KindView::General
    }
}

/// Capacity, lowest price and currency per grade, in plan order.
fn grade_plan(plan: &InventoryPlan) -> Vec<GradePlanView> {
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

fn session_view(s: &Session, now: Timestamp) -> SessionView {
    SessionView {
        id: s.id,
        starts_at: s.starts_at.as_millis(),
        sales_open_at: s.sales.open_at.as_millis(),
        sales_close_at: s.sales.close_at.as_millis(),
        status: s.status_at(now).into(),
        kind: kind(&s.inventory),
        grades: grade_plan(&s.inventory),
    }
}

fn event_status(e: &Event, now: Timestamp) -> StatusView {
    let statuses: Vec<SessionStatus> = e.sessions.iter().map(|s| s.status_at(now)).collect();
    if statuses.contains(&SessionStatus::OnSale) {
        StatusView::OnSale
    } else if statuses.contains(&SessionStatus::Scheduled) {
        StatusView::Upcoming
    } else {
        StatusView::Closed
    }
}

fn event_view(e: &Event, now: Timestamp) -> EventView {
    EventView {
        id: e.id,
        name: e.name.clone(),
        status: event_status(e, now),
        sessions: e.sessions.iter().map(|s| session_view(s, now)).collect(),
    }
}

// ---------------------------------------------------------------------------------------
// Handlers

/// `POST /api/admin/events` (admin): creates an event with fresh ids → 201 [`EventView`].
#[utoipa::path(
    post,
    path = "/api/admin/events",
    tag = "catalog",
    summary = "Create an event and its sessions (admin)",
    request_body = CreateEventRequest,
    security(("bearer" = [])),
    responses(
        (status = 201, description = "The event as stored, with fresh ids", body = EventView, links(
            ("GetEvent" = (operation_id = "get_event", parameters(("id" = "$response.body#/id")), description = "The event just created")),
            ("GetSession" = (operation_id = "get_session", parameters(("id" = "$response.body#/sessions/0/id")), description = "Its first session's stock")),
            ("GetSeats" = (operation_id = "get_seats", parameters(("id" = "$response.body#/sessions/0/id")), description = "Its first session's seat map")),
            ("SetPolicy" = (operation_id = "set_policy", parameters(("id" = "$response.body#/sessions/0/id")), description = "Its first session's policy")),
            ("SessionStats" = (operation_id = "session_stats", parameters(("id" = "$response.body#/sessions/0/id")), description = "Its first session's figures")),
            ("JoinQueue" = (operation_id = "join_queue", parameters(("id" = "$response.body#/sessions/0/id")), description = "Join its first session's queue")),
            ("HoldUnits" = (operation_id = "create_hold", request_body = json!({"session_id": "$response.body#/sessions/0/id", "grade": "$response.body#/sessions/0/grades/0/grade", "quantity": 1}), description = "Hold a unit of its first session's first grade")),
        )),
        (status = 400, description = "Malformed JSON, wrong types, missing or unknown fields: `VALIDATION`", body = ErrorBody),
        (status = 401, description = "No valid access token: `UNAUTHORIZED`, `TOKEN_EXPIRED`", body = ErrorBody),
        (status = 403, description = "Not an admin: `FORBIDDEN`", body = ErrorBody),
        (status = 422, description = "A definition the library refuses (empty name, no sessions, zero capacity, bad currency, seat listed twice, …): `VALIDATION`", body = ErrorBody),
        (status = 503, description = "Storage unavailable: `UNAVAILABLE` (with `Retry-After`)", body = ErrorBody),
    )
)]
async fn create_event(
    State(state): State<AppState>,
    _admin: AdminUser,
    JsonBody(req): JsonBody<CreateEventRequest>,
) -> Result<(StatusCode, Json<EventView>), ApiError> {
    let now = state.clock.now();
    let event = build_event(&req, now)?;
    publish_event(&state, &event).await?;
    Ok((StatusCode::CREATED, Json(event_view(&event, now))))
}

/// `GET /api/events`: every event of the backend (see the module documentation) filtered
/// by `q`, `status`, `from` and `to`, one page of them.
#[utoipa::path(
    get,
    path = "/api/events",
    tag = "catalog",
    summary = "List events",
    params(ListQuery),
    responses(
        (status = 200, description = "One page of the matching events, by earliest session start", body = EventPage),
        (status = 400, description = "A query outside what the parameters state (unknown parameter, a wrong type, page or per_page out of range, q too long): `VALIDATION`", body = ErrorBody),
        (status = 503, description = "Storage unavailable: `UNAVAILABLE` (with `Retry-After`)", body = ErrorBody),
    )
)]
async fn list_events(
    State(state): State<AppState>,
    query: Result<Query<ListQuery>, QueryRejection>,
) -> Result<Json<EventPage>, ApiError> {
    let Query(query) = query.map_err(|e| ApiError::validation(e.body_text()))?;
    let page = query.page.unwrap_or(1);
    if !(1..=MAX_PAGE).contains(&page) {
        return Err(ApiError::validation(format!(
            "page must be between 1 and {MAX_PAGE}"
        )));
    }
    let per_page = query.per_page.unwrap_or(DEFAULT_PER_PAGE);
    if !(1..=MAX_PER_PAGE).contains(&per_page) {
        return Err(ApiError::validation(format!(
            "per_page must be between 1 and {MAX_PER_PAGE}"
        )));
    }
    // `from` after `to` is an empty range: nothing matches (the filter below says so).
    let raw = query.q.as_deref().unwrap_or("");
    if raw.chars().count() > MAX_QUERY_LEN {
        return Err(ApiError::validation(format!(
            "q must be at most {MAX_QUERY_LEN} characters"
        )));
    }
    let needle = raw.trim().to_lowercase();

    let events = all_events(&state).await?;
    let now = state.clock.now();
    // Sorted by earliest session start, then id (UUIDv7: creation order).
    let mut matching: BTreeMap<(i64, EventId), EventView> = BTreeMap::new();
    for event in events {
        if !needle.is_empty() && !event.name.to_lowercase().contains(&needle) {
            continue;
        }
        let in_range = event.sessions.iter().any(|s| {
            let t = s.starts_at.as_millis();
            query.from.is_none_or(|f| t >= f) && query.to.is_none_or(|to| t < to)
        });
        if !in_range {
            continue;
        }
        let view = event_view(&event, now);
        if query.status.is_some_and(|s| s != view.status) {
            continue;
        }
        let first = event
            .sessions
            .iter()
            .map(|s| s.starts_at.as_millis())
            .min()
            .unwrap_or(i64::MAX);
        matching.insert((first, event.id), view);
    }
    let total = matching.len();
    let skip = usize::try_from(u64::from(page - 1) * u64::from(per_page)).unwrap_or(usize::MAX);
    let items = matching
        .into_values()
        .skip(skip)
        .take(per_page as usize)
        .collect();
    Ok(Json(EventPage {
        items,
        page,
        per_page,
        total,
    }))
}

/// `GET /api/events/{id}`: the event and its sessions.
#[utoipa::path(
    get,
    path = "/api/events/{id}",
    tag = "catalog",
    summary = "An event and its sessions",
    params(("id" = String, Path, format = "uuid", description = "The event's id")),
    responses(
        (status = 200, description = "The event", body = EventView),
        (status = 400, description = "A malformed id: `VALIDATION`", body = ErrorBody),
        (status = 404, description = "No such event: `NOT_FOUND`", body = ErrorBody),
        (status = 503, description = "Storage unavailable: `UNAVAILABLE` (with `Retry-After`)", body = ErrorBody),
    )
)]
async fn get_event(
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> Result<Json<EventView>, ApiError> {
    let id: EventId = path_id(&id)?;
    let event = state.rush.stores().inventory.event(id).await?;
    Ok(Json(event_view(&event, state.clock.now())))
}

/// `GET /api/sessions/{id}`: the session and its live counters per grade (one consistent
/// snapshot).
#[utoipa::path(
    get,
    path = "/api/sessions/{id}",
    tag = "catalog",
    summary = "A session and its live stock per grade",
    params(("id" = String, Path, format = "uuid", description = "The session's id")),
    responses(
        (status = 200, description = "The session and its counters, read at one instant", body = SessionStock),
        (status = 400, description = "A malformed id: `VALIDATION`", body = ErrorBody),
        (status = 404, description = "No such session: `NOT_FOUND`", body = ErrorBody),
        (status = 503, description = "Storage unavailable: `UNAVAILABLE` (with `Retry-After`)", body = ErrorBody),
    )
)]
async fn get_session(
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> Result<Json<SessionStock>, ApiError> {
    let id: SessionId = path_id(&id)?;
    let inventory = &state.rush.stores().inventory;
    let session = inventory.session(id).await?;
    let snapshot = inventory.snapshot(id).await?;
    let plan = grade_plan(&session.inventory);
    let grades = snapshot
        .grades
        .iter()
        .map(|c| {
            let priced = plan.iter().find(|p| p.grade == c.grade.as_str());
            GradeStockView {
                grade: c.grade.as_str().to_owned(),
                capacity: c.capacity,
                available: c.available,
                held: c.held,
                sold: c.sold,
                price_minor: priced.map_or(0, |p| p.price_minor),
                currency: priced.map(|p| p.currency.clone()).unwrap_or_default(),
            }
        })
        .collect();
    Ok(Json(SessionStock {
        id: session.id,
        event_id: session.event_id,
        starts_at: session.starts_at.as_millis(),
        sales_open_at: session.sales.open_at.as_millis(),
        sales_close_at: session.sales.close_at.as_millis(),
        status: session.status_at(state.clock.now()).into(),
        kind: kind(&session.inventory),
        grades,
    }))
}

/// `GET /api/sessions/{id}/seats`: every seat with its state, in plan order. A
/// general-admission session has no seat map: 404 `NOT_SEATED`.
#[utoipa::path(
    get,
    path = "/api/sessions/{id}/seats",
    tag = "catalog",
    summary = "A seated session's seat map",
    params(("id" = String, Path, format = "uuid", description = "The session's id")),
    responses(
        (status = 200, description = "Every seat with its state, in plan order", body = [SeatView]),
        (status = 400, description = "A malformed id: `VALIDATION`", body = ErrorBody),
        (status = 404, description = "No such session (`NOT_FOUND`), or a general-admission one (`NOT_SEATED`)", body = ErrorBody),
        (status = 503, description = "Storage unavailable: `UNAVAILABLE` (with `Retry-After`)", body = ErrorBody),
    )
)]
async fn get_seats(
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> Result<Json<Vec<SeatView>>, ApiError> {
    let id: SessionId = path_id(&id)?;
    let inventory = &state.rush.stores().inventory;
    let session = inventory.session(id).await?;
    if !session.inventory.is_seated() {
        return Err(ApiError::new(
            StatusCode::NOT_FOUND,
            "NOT_SEATED",
            format!("session {id} is general admission: it has no seat map"),
        ));
    }
    let snapshot = inventory.snapshot(id).await?;
    Ok(Json(
        snapshot
            .seats
            .into_iter()
            .map(|s| SeatView {
                id: s.seat.id.as_str().to_owned(),
                section: s.seat.section,
                grade: s.seat.grade.as_str().to_owned(),
                price_minor: s.seat.price.amount_minor,
                currency: s.seat.price.currency.as_str().to_owned(),
                status: s.state.into(),
            })
            .collect(),
    ))
}
