//! `GET /api/sessions/{id}/queue/events`: my place in the queue as Server-Sent Events.
//!
//! Events: `position` (place, waiting count, ETA changed), `admitted` (my admission is
//! active: hold now, before `admission_expires_at`), `expired` (the admission ran out, or the
//! ticket ended), `sold_out` (nothing left to wait for), and the organiser's switch:
//! `paused` (nobody is admitted until the sale resumes; then `position` again), `closed`
//! and `cancelled` (both end the stream). The switch comes from the session's follower,
//! which keeps it from the change feed (no read per watcher). Each carries the same JSON as
//! `GET /api/sessions/{id}/queue` and an increasing `id`; a client that reconnects with
//! `Last-Event-ID` continues the numbering and gets the current state at once. The stream
//! reads the store twice when it opens (my place, the feed's head) and once more when my
//! ticket leaves the line; in between, my place comes from this process's live copy of the
//! line ([`crate::live`]: one change-feed follower per session, whatever the number of
//! watchers), so it works on any server process and follows admissions made by any of
//! them. Admissions run on a timer ([`crate::runtime::background`]), not in the stream. A
//! keep-alive comment goes out every 15 s. `admitted`, `expired` and `sold_out` end the stream. Described for
//! `GET /openapi.json` by its `#[utoipa::path]` (tag `queue_events`).

use std::convert::Infallible;

use axum::extract::{Path, State};
use axum::http::HeaderMap;
use axum::response::sse::{Event, Sse};
use axum::routing::get;
use axum::{Extension, Router};
use futures_util::Stream;
use ticket_core::model::queue::{Outlook, QueueTicket, QueueView, TicketState};
use ticket_core::model::sale::SaleState;
use ticket_core::{SessionId, UserId};

use crate::http::draining::Draining;
use crate::http::error::{ApiError, ErrorBody};
use crate::http::extract::AuthUser;
use crate::http::params::{path_id, user_of};
use crate::http::routes::queue::queue_answer;
use crate::live::QueueWatch;
use crate::live::session::Derived;
use crate::runtime::state::AppState;

/// The largest `Last-Event-ID` a client may resume from: 2^53 − 1, the largest integer a
/// JavaScript client holds exactly. The numbering continues from it without overflow (a
/// stream sends a handful of events); anything else is refused with 400 up front.
pub const MAX_LAST_EVENT_ID: u64 = (1 << 53) - 1;

/// The route.
pub fn router() -> Router<AppState> {
    Router::new().route("/api/sessions/{id}/queue/events", get(queue_events))
}

/// The event a view is under the sale switch `sale`, and whether it ends the stream.
fn classify(view: &QueueView, sale: SaleState) -> (&'static str, bool) {
    match sale {
        SaleState::Cancelled => return ("cancelled", true),
        SaleState::Closed => return ("closed", true),
        SaleState::Paused if view.ticket.state == TicketState::Waiting => {
            return ("paused", false);
        }
        _ => {}
    }
    match view.ticket.state {
        TicketState::Active => ("admitted", true),
        TicketState::Expired | TicketState::Used | TicketState::Left => ("expired", true),
        TicketState::Waiting if view.outlook == Outlook::SoldOut => ("sold_out", true),
        TicketState::Waiting => ("position", false),
    }
}

struct Watch {
    state: AppState,
    session: SessionId,
    user: UserId,
    /// The ticket as last read from the store.
    ticket: QueueTicket,
    /// A feed sequence the last store read reflects.
    known: u64,
    /// The follower's cursor at the last store read for this watcher (so one missing
    /// ticket costs one read per change of the session, not one per wake-up).
    read_at: Option<u64>,
    live: QueueWatch,
    /// The switch read when the stream opened, until the follower has its own copy.
    sale: SaleState,
    /// The shared state was read since its last change: wait for the next one first.
    stale: bool,
    next: Option<QueueView>,
    last: Option<String>,
    id: u64,
    done: bool,
}

impl Watch {
    /// The next view to consider: a pending store read, or one derived from the shared
    /// live state (waiting for it to change when there is nothing new).
    async fn next_view(&mut self) -> Result<QueueView, ticket_core::Error> {
        loop {
            if let Some(v) = self.next.take() {
                return Ok(v);
            }
            if self.stale {
                self.stale = false;
                if self.live.changed.changed().await.is_err() {
                    // The follower is gone (cannot happen while we hold it): read.
                    return self
                        .state
                        .rush
                        .admission
                        .view(self.session, &self.user)
                        .await;
                }
            }
            let now = self.state.clock.now();
            // Whatever this derives, the next look waits for a change of the shared state.
            self.stale = true;
            match self.live.live.derive(&self.ticket, self.known, now) {
                Derived::View(v) => return Ok(v),
                Derived::ReadStore if self.read_at != Some(self.live.live.cursor()) => {
                    // The ticket left the line (admitted, left, …): read it once.
                    self.read_at = Some(self.live.live.cursor());
                    let v = self
                        .state
                        .rush
                        .admission
                        .view(self.session, &self.user)
                        .await?;
                    self.ticket = v.ticket.clone();
                    return Ok(v);
                }
                Derived::ReadStore | Derived::NotYet => {
                    if self.live.changed.changed().await.is_err() {
                        // The follower is gone (cannot happen while we hold it): read.
                        self.next = Some(
                            self.state
                                .rush
                                .admission
                                .view(self.session, &self.user)
                                .await?,
                        );
                    }
                }
            }
        }
    }
}

/// The `Last-Event-ID` a client resumes from: 0 without the header; 400 `VALIDATION` unless
/// it is decimal digits from 0 to [`MAX_LAST_EVENT_ID`] (so the numbering never wraps).
fn last_event_id(headers: &HeaderMap) -> Result<u64, ApiError> {
    let Some(raw) = headers.get("last-event-id") else {
        return Ok(0);
    };
    let refuse = || {
        ApiError::validation(format!(
            "Last-Event-ID must be decimal digits from 0 to {MAX_LAST_EVENT_ID}"
        ))
    };
    let text = raw.to_str().map_err(|_| refuse())?.trim();
    if text.is_empty() || !text.bytes().all(|b| b.is_ascii_digit()) {
        return Err(refuse());
    }
    match text.parse::<u64>() {
        Ok(id) if id <= MAX_LAST_EVENT_ID => Ok(id),
        _ => Err(refuse()),
    }
}

/// One Server-Sent Event of `GET /api/sessions/{id}/queue/events`, field by field as the
/// stream frames it (`id: …`, `event: …`, `data: …`, a blank line). Documentation only.
#[derive(utoipa::ToSchema)]
#[allow(dead_code)]
struct QueueEventFrame {
    /// The event's number, in decimal: one more than the previous event's (or than
    /// `Last-Event-ID`).
    #[schema(pattern = "^[1-9][0-9]{0,15}$")]
    id: String,
    /// `position`, `admitted`, `expired`, `sold_out`, `paused`, `closed`, `cancelled` or
    /// `error`.
    #[schema(schema_with = event_name_schema)]
    event: String,
    /// A `QueueAnswer` as JSON (plain text for `error`).
    #[schema(content_media_type = "application/json")]
    data: String,
}

/// The schema of [`QueueEventFrame::event`].
fn event_name_schema() -> utoipa::openapi::Object {
    crate::http::openapi::text_enum(
        [
            "position",
            "admitted",
            "expired",
            "sold_out",
            "paused",
            "closed",
            "cancelled",
            "error",
        ],
        "The event's name",
    )
}

/// Streams my place in the session's queue as Server-Sent Events until a final event.
#[utoipa::path(
    get,
    path = "/api/sessions/{id}/queue/events",
    tag = "queue_events",
    summary = "My place in the queue, live (Server-Sent Events)",
    params(
        ("id" = String, Path, format = "uuid", description = "The session's id"),
        ("Last-Event-ID" = Option<u64>, Header, nullable = false, minimum = 0, maximum = 9_007_199_254_740_991.0, description = "The last event id seen, to resume the numbering: decimal digits, 0 to 2^53 − 1 (anything else: 400)"),
    ),
    security(("bearer" = [])),
    responses(
        (status = 200, description = "A `text/event-stream` of Server-Sent Events: `position`, `paused` (the organiser paused the sale: I keep my place), `admitted`, `expired`, `sold_out`, `closed` (the organiser closed the sale) and `cancelled` (the show was cancelled) (all but `position` and `paused` end the stream), each with an increasing decimal `id` and a `QueueAnswer` as JSON `data`; `error` (plain-text `data`, ends the stream) if reading the queue fails; a `: keep-alive` comment every 15 s. The body schema is one event's fields as `text/event-stream` frames them", body = QueueEventFrame, content_type = "text/event-stream"),
        (status = 400, description = "A malformed id, or a `Last-Event-ID` that is not decimal digits from 0 to 2^53 − 1: `VALIDATION`", body = ErrorBody),
        (status = 401, description = "No valid access token: `UNAUTHORIZED`, `TOKEN_EXPIRED`", body = ErrorBody),
        (status = 403, description = "I am not in this session's queue: `NOT_IN_QUEUE`", body = ErrorBody),
        (status = 404, description = "No such session (`NOT_FOUND`), or I left this queue (`LEFT_QUEUE`)", body = ErrorBody),
        (status = 429, description = "Over the per-user or per-IP rate limit: `RATE_LIMITED` (with `Retry-After`)", body = ErrorBody),
        (status = 503, description = "Storage unavailable: `UNAVAILABLE` (with `Retry-After`)", body = ErrorBody),
    )
)]
async fn queue_events(
    State(state): State<AppState>,
    me: AuthUser,
    Path(id): Path<String>,
    draining: Option<Extension<Draining>>,
    headers: HeaderMap,
) -> Result<Sse<impl Stream<Item = Result<Event, Infallible>>>, ApiError> {
    let session: SessionId = path_id(&id)?;
    let user = user_of(&me)?;
    // Refuse up front (404 / 403 …) when there is nothing to watch.
    let first = state.rush.admission.view(session, &user).await?;
    if first.ticket.state == TicketState::Left {
        return Err(crate::http::routes::queue::left_queue());
    }
    let resumed = last_event_id(&headers)?;
    // Everything the view reflects is at or before the feed's head read after it.
    let known = state.live.head(session).await?;
    let live = state.live.watch_queue(session);
    let sale = state.live.sale_switch(session).await?.state;
    let watch = Watch {
        sale,
        ticket: first.ticket.clone(),
        state,
        session,
        user,
        known,
        read_at: None,
        live,
        stale: false,
        next: Some(first),
        last: None,
        id: resumed,
        done: false,
    };
    let stream = futures_util::stream::unfold(watch, |mut w| async move {
        if w.done {
            return None;
        }
        loop {
            let view = match w.next_view().await {
                Ok(v) => v,
                Err(e) => {
                    w.done = true;
                    let event = Event::default().event("error").data(e.to_string());
                    return Some((Ok(event), w));
                }
            };
            let sale = w.live.live.sale().map_or(w.sale, |s| s.state);
            let (name, terminal) = classify(&view, sale);
            // A plain struct of strings and numbers: serialising it cannot fail.
            let data = serde_json::to_string(&queue_answer(&view, sale)).unwrap_or_default();
            let key = format!("{name}:{data}");
            if w.last.as_deref() != Some(key.as_str()) {
                w.last = Some(key);
                w.id = w.id.saturating_add(1);
                w.done = terminal;
                let event = Event::default().id(w.id.to_string()).event(name).data(data);
                return Some((Ok(event), w));
            }
        }
    });
    // A stopping server ends the stream; the client resumes on another with Last-Event-ID.
    Ok(crate::http::draining::event_stream(stream, draining))
}
