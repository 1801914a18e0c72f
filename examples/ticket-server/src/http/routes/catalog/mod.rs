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
//!   epoch** (UTC), the library's [`ticket_core::Timestamp`].
//! * Prices are integer minor units (`price_minor`) with a three-letter upper-case
//!   `currency`; one currency per session.
//! * A session's `status` is `upcoming` (before public sales open), `on_sale` (inside its
//!   sales window) or `closed` (after it), from the sales window and the server's clock, with
//!   the organiser's sale switch on top: `paused`, `closed` (early) or `cancelled`. The
//!   listing's `status` filter goes by the sales windows only.
//! * Errors have the API's shape `{"error": {"code", "message"}}`: malformed JSON, wrong
//!   types, missing fields, a malformed id or a bad query → 400 `VALIDATION`; a definition
//!   or policy the library refuses (empty name, no sessions, zero capacity, negative price,
//!   bad currency, seat listed twice, sales window after the start, …) → 422 `VALIDATION`;
//!   an unknown id → 404 `NOT_FOUND`; no or a bad token on an admin route → 401, a
//!   non-admin → 403. A refused request changes nothing.
//!
//! **Listing.** `GET /api/events` pages through every event of the shared backend
//! ([`ticket_core::store::Inventory::events`], [`crate::services::catalog::LOAD_PAGE`] at a
//! time, in id order), then filters, sorts and pages them as the query asks
//! ([`crate::services::catalog::list_events`]). So every server process on one Redis or
//! PostgreSQL lists the same events, whichever process created them. An event created while
//! a listing runs may or may not be in it. The cost is one read of the whole catalogue per
//! request: fine for a catalogue of thousands of events, not for millions.

use axum::extract::rejection::QueryRejection;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::routing::get;
use axum::{Json, Router};
use ticket_core::ids::{EventId, SessionId};

use crate::http::error::{ApiError, ErrorBody};
use crate::http::params::path_id;
use crate::runtime::state::AppState;
use crate::services::catalog;

pub mod dto;

pub use dto::{
    DEFAULT_PER_PAGE, EventPage, EventView, GradeStockView, ListQuery, MAX_INSTANT_MS, MAX_PAGE,
    MAX_PER_PAGE, MAX_QUERY_LEN, SeatView, SessionStock,
};
use dto::{event_view, grade_plan, kind};

/// The routes of this group.
pub fn router() -> Router<AppState> {
    Router::new()
        .route("/api/events", get(list_events))
        .route("/api/events/{id}", get(get_event))
        .route("/api/sessions/{id}", get(get_session))
        .route("/api/sessions/{id}/seats", get(get_seats))
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
pub(crate) async fn list_events(
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
    let filter = catalog::EventFilter {
        text: raw.trim().to_lowercase(),
        status: query.status.map(Into::into),
        from: query.from,
        to: query.to,
    };
    let now = state.clock.now();
    let listed = catalog::list_events(&state.rush, &filter, page, per_page, now).await?;
    let switches = switches_of(&state, &listed.events).await?;
    let items = listed
        .events
        .iter()
        .map(|e| event_view(e, now, &switches))
        .collect();
    let total = listed.total;
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
pub(crate) async fn get_event(
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> Result<Json<EventView>, ApiError> {
    let id: EventId = path_id(&id)?;
    let event = state.rush.stores().inventory.event(id).await?;
    let switches = switches_of(&state, std::slice::from_ref(&event)).await?;
    Ok(Json(event_view(&event, state.clock.now(), &switches)))
}

/// The sale switches of the sessions of `events`: from this process's live copy (kept from
/// the change feed, [`crate::live::Live::sale_switch`]), read from the store at most once
/// per session otherwise.
pub(crate) async fn switches_of(
    state: &AppState,
    events: &[ticket_core::model::session::Event],
) -> Result<dto::Switches, ApiError> {
    let mut out = dto::Switches::new();
    for s in events.iter().flat_map(|e| &e.sessions) {
        out.insert(s.id, state.live.sale_switch(s.id).await?);
    }
    Ok(out)
}

/// `GET /api/sessions/{id}`: the session and its live counters per grade (one consistent
/// snapshot).
///
/// For a session this server process follows (every session from a week before its sales
/// open until a day after its performance), the snapshot comes from memory, kept by the
/// session's change feed: no store call until the stock or the sale switch moves.
/// **Freshness:** the answer reflects every change the feed has delivered to this process
/// (typically a few milliseconds after it was made, on any process), every hold, release,
/// checkout, sale switch or capacity change made through this process before the request,
/// and in any case every change made more than 2 seconds before it: a process whose feed
/// follower has not completed a read for that long, or has stopped, reads the store.
/// Other sessions are read from the store.
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
pub(crate) async fn get_session(
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> Result<Json<SessionStock>, ApiError> {
    let id: SessionId = path_id(&id)?;
    // From this process's snapshot when it is valid (see above), else from the store.
    let stock = state.live.session_stock(id).await?;
    let (session, snapshot) = (&stock.session, &stock.snapshot);
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
        status: state
            .live
            .sale_switch(session.id)
            .await?
            .status(session, state.clock.now())
            .into(),
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
pub(crate) async fn get_seats(
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
