//! `GET /api/sessions/{id}/queue/events`: my place in the queue as Server-Sent Events.
//!
//! Events: `position` (place, waiting count, ETA changed), `admitted` (my admission is
//! active: hold now, before `admission_expires_at`), `expired` (the admission ran out, or the
//! ticket ended), `sold_out` (nothing left to wait for). Each carries the same JSON as
//! `GET /api/sessions/{id}/queue` and an increasing `id`; a client that reconnects with
//! `Last-Event-ID` continues the numbering and gets the current state at once. The stream is
//! read from the shared store, so it works on any server process; a keep-alive comment goes
//! out every 15 s. `admitted`, `expired` and `sold_out` end the stream. Described for
//! `GET /openapi.json` by its `#[utoipa::path]` (tag `queue_events`).

use std::convert::Infallible;
use std::time::Duration;

use axum::Router;
use axum::extract::{Path, State};
use axum::http::HeaderMap;
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::routing::get;
use futures_util::Stream;
use ticket_core::model::queue::{Outlook, QueueView, TicketState};
use ticket_core::{SessionId, UserId};

use crate::error::{ApiError, ErrorBody};
use crate::extract::AuthUser;
use crate::routes::params::{path_id, user_of};
use crate::routes::queue::queue_answer;
use crate::state::AppState;

/// How often a stream reads the queue.
pub const POLL_EVERY: Duration = Duration::from_millis(500);

/// The route.
pub fn router() -> Router<AppState> {
    Router::new().route("/api/sessions/{id}/queue/events", get(queue_events))
}

/// The event a view is, and whether it ends the stream.
fn classify(view: &QueueView) -> (&'static str, bool) {
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
    next: Option<QueueView>,
    last: Option<String>,
    id: u64,
    done: bool,
}

/// Streams my place in the session's queue as Server-Sent Events until a final event.
#[utoipa::path(
    get,
    path = "/api/sessions/{id}/queue/events",
    tag = "queue_events",
    summary = "My place in the queue, live (Server-Sent Events)",
    params(
        ("id" = String, Path, format = "uuid", description = "The session's id"),
        ("Last-Event-ID" = Option<u64>, Header, description = "The last event id seen, to resume the numbering"),
    ),
    security(("bearer" = [])),
    responses(
        (status = 200, description = "A `text/event-stream`: events `position`, `admitted`, `expired`, `sold_out` (the last three end the stream), each with an increasing `id` and a `QueueAnswer` as JSON `data`; `error` if reading the queue fails", body = String, content_type = "text/event-stream"),
        (status = 400, description = "A malformed id: `VALIDATION`", body = ErrorBody),
        (status = 401, description = "No valid access token: `UNAUTHORIZED`, `TOKEN_EXPIRED`", body = ErrorBody),
        (status = 403, description = "I am not in this session's queue: `NOT_IN_QUEUE`", body = ErrorBody),
        (status = 404, description = "No such session: `NOT_FOUND`", body = ErrorBody),
        (status = 429, description = "Over the per-user or per-IP rate limit: `RATE_LIMITED` (with `Retry-After`)", body = ErrorBody),
        (status = 503, description = "Storage unavailable: `UNAVAILABLE` (with `Retry-After`)", body = ErrorBody),
    )
)]
async fn queue_events(
    State(state): State<AppState>,
    me: AuthUser,
    Path(id): Path<String>,
    headers: HeaderMap,
) -> Result<Sse<impl Stream<Item = Result<Event, Infallible>>>, ApiError> {
    let session: SessionId = path_id(&id)?;
    let user = user_of(&me)?;
    // Refuse up front (404 / 403 …) when there is nothing to watch.
    let first = state.rush.admission.view(session, &user).await?;
    let resumed = headers
        .get("last-event-id")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse::<u64>().ok())
        .unwrap_or(0);
    let watch = Watch {
        state,
        session,
        user,
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
            let view = match w.next.take() {
                Some(v) => v,
                None => {
                    tokio::time::sleep(POLL_EVERY).await;
                    // A round of admissions, so a lone waiting user moves even without a
                    // timer (rounds are atomic and paced by the session's policy).
                    match w
                        .state
                        .admission_rounds
                        .run(&w.state.rush.admission, w.session)
                        .await
                    {
                        Ok(admitted) => w.state.metrics.admitted(admitted),
                        Err(e) => tracing::warn!("admission round failed: {e}"),
                    }
                    match w.state.rush.admission.view(w.session, &w.user).await {
                        Ok(v) => v,
                        Err(e) => {
                            w.done = true;
                            let event = Event::default().event("error").data(e.to_string());
                            return Some((Ok(event), w));
                        }
                    }
                }
            };
            let (name, terminal) = classify(&view);
            // A plain struct of strings and numbers: serialising it cannot fail.
            let data = serde_json::to_string(&queue_answer(&view)).unwrap_or_default();
            let key = format!("{name}:{data}");
            if w.last.as_deref() != Some(key.as_str()) {
                w.last = Some(key);
                w.id += 1;
                w.done = terminal;
                let event = Event::default().id(w.id.to_string()).event(name).data(data);
                return Some((Ok(event), w));
            }
        }
    });
    Ok(Sse::new(stream).keep_alive(
        KeepAlive::new()
            .interval(Duration::from_secs(15))
            .text("keep-alive"),
    ))
}
