//! `GET /api/me/events`: my reservations and admissions, live, as Server-Sent Events, for
//! every session at once.
//!
//! Events are named after the change: `hold_created`, `hold_paying`, `hold_confirmed`
//! (paid), `hold_expired`, `hold_released`, `hold_payment_failed`, `hold_cancelled`,
//! `hold_refunded`, `admitted`, `admission_expired`; each carries a [`MyChange`] as JSON.
//! The organiser's moves of a followed session's sale go to every stream: `sale_paused`,
//! `sale_resumed`, `sale_closed`, `sale_cancelled` (a [`MyChange`] without hold or ticket).
//! `ready` follows the catch-up of a resumed stream (and opens a new one); `resync` says
//! the changes of a session could not all be replayed (the feed no longer keeps them, a
//! resume from too far back, or a `Last-Event-ID` that is no id of this stream: then for
//! every session, `session_id` `null`): reload my reservations, tickets and queue places.
//!
//! Every event's `id` is a cursor ([`crate::live::cursor`]) holding, per session, how far
//! the stream has read its change feed. A client that reconnects with `Last-Event-ID` (on
//! any server process) gets every change it missed exactly once, in feed order per session,
//! then the live ones. The live part costs no store read: this process follows each live
//! session's feed once ([`crate::live`]) and hands every user their own changes; only a
//! resume reads the feed (from the cursor to where the followers stand, at most
//! [`CATCHUP_MAX`] changes per session before a `resync`). A stopping server ends the
//! stream; a keep-alive comment goes out every 15 s.

use std::convert::Infallible;
use std::time::Duration;

use axum::extract::State;
use axum::http::HeaderMap;
use axum::response::sse::{Event, Sse};
use axum::routing::get;
use axum::{Extension, Router};
use futures_util::{Stream, StreamExt};
use serde::Serialize;
use ticket_core::model::change::Change;
use ticket_core::model::page::MAX_PAGE_LIMIT;
use ticket_core::{Error, Refusal, SessionId, UserId};
use tokio::sync::{broadcast, mpsc};

use crate::http::draining::Draining;
use crate::http::error::{ApiError, ErrorBody};
use crate::http::extract::AuthUser;
use crate::http::params::user_of;
use crate::live::cursor::UserCursor;

use crate::live::users::{Positions, SALE_KINDS, USER_KINDS, UserEvent, for_user};
use crate::runtime::state::AppState;

/// The most changes of one session a resume replays from the store; further behind, the
/// stream sends `resync` for that session and continues from where the followers stand.
pub const CATCHUP_MAX: u64 = 50_000;

/// How long a new stream waits for this process to follow the live sessions (only the
/// first streams after a start wait at all) before answering 503.
const READY_WAIT: Duration = Duration::from_secs(10);

/// The route.
pub fn router() -> Router<AppState> {
    Router::new().route("/api/me/events", get(my_events))
}

/// One of my changes, the `data` of every change event.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct MyChange {
    /// The session.
    #[schema(format = "uuid")]
    pub session_id: String,
    /// The change's place in the session's feed (1, 2, 3, … per session).
    #[schema(minimum = 1)]
    pub seq: u64,
    /// When, epoch ms.
    pub at: i64,
    /// What happened (the event's name).
    #[schema(schema_with = kind_schema)]
    pub kind: String,
    /// The reservation (hold) it is about, for `hold_*` events.
    #[schema(format = "uuid")]
    pub hold_id: Option<String>,
    /// The queue ticket it is about, for `admitted` and `admission_expired`.
    #[schema(format = "uuid")]
    pub ticket_id: Option<String>,
}

impl From<&Change> for MyChange {
    fn from(c: &Change) -> Self {
        Self {
            session_id: c.session.to_string(),
            seq: c.seq,
            at: c.at.as_millis(),
            kind: c.kind.as_str().to_owned(),
            hold_id: c.hold().map(|h| h.to_string()),
            ticket_id: c.ticket().map(|t| t.to_string()),
        }
    }
}

/// The event names of my changes.
fn kind_schema() -> utoipa::openapi::Object {
    let names: Vec<&str> = USER_KINDS
        .iter()
        .chain(SALE_KINDS.iter())
        .map(|k| k.as_str())
        .collect();
    crate::http::openapi::text_enum(names, "What happened")
}

/// Every event name of the stream.
fn event_name_schema() -> utoipa::openapi::Object {
    let mut names: Vec<&str> = USER_KINDS
        .iter()
        .chain(SALE_KINDS.iter())
        .map(|k| k.as_str())
        .collect();
    names.extend(["ready", "resync", "error"]);
    crate::http::openapi::text_enum(names, "The event's name")
}

/// One Server-Sent Event of `GET /api/me/events`, field by field as the stream frames it.
/// Documentation only.
#[derive(utoipa::ToSchema)]
#[allow(dead_code)]
struct MyEventFrame {
    /// The resume cursor after this event: pass it back as `Last-Event-ID`.
    #[schema(pattern = "^1\\.[A-Za-z0-9_-]*$", max_length = 16384)]
    id: String,
    /// A change's name (see `MyChange.kind`), `ready`, `resync` or `error`.
    #[schema(schema_with = event_name_schema)]
    event: String,
    /// A `MyChange` as JSON; for `ready` `{"sessions": n}`, for `resync`
    /// `{"session_id": "…"}` (`null`: every session), for `error` plain text.
    #[schema(content_media_type = "application/json")]
    data: String,
}

/// Where a stream starts.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Resume {
    /// No `Last-Event-ID`: from now on.
    Fresh,
    /// After this cursor.
    From(UserCursor),
    /// A `Last-Event-ID` that is no id of this stream (hand-made, cut, or longer than
    /// [`crate::live::cursor::MAX_CURSOR_LEN`]): from now on, after a `resync` for every session.
    Unreadable,
}

/// The `Last-Event-ID` a client resumes from.
fn resume_from(headers: &HeaderMap) -> Resume {
    let Some(raw) = headers.get("last-event-id") else {
        return Resume::Fresh;
    };
    match raw.to_str().map(|t| t.trim().parse::<UserCursor>()) {
        Ok(Ok(cursor)) => Resume::From(cursor),
        _ => Resume::Unreadable,
    }
}

/// Streams my reservation and admission changes, in every session, as Server-Sent Events.
#[utoipa::path(
    get,
    path = "/api/me/events",
    tag = "my_events",
    summary = "My reservations and admissions, live (Server-Sent Events)",
    params(
        ("Last-Event-ID" = Option<String>, Header, nullable = false, description = "The last event id seen: the stream replays every change missed since, then goes on live. A value that is no id of this stream starts from now with a `resync` (reload my lists)"),
    ),
    security(("bearer" = [])),
    responses(
        (status = 200, description = "A `text/event-stream`: my changes (`hold_created`, `hold_paying`, `hold_confirmed`, `hold_expired`, `hold_released`, `hold_payment_failed`, `hold_cancelled`, `hold_refunded`, `admitted`, `admission_expired`; `data` a `MyChange`; and every followed session's `sale_paused`, `sale_resumed`, `sale_closed`, `sale_cancelled`), `ready` once caught up, `resync` when a session's missed changes cannot be replayed (reload my lists), `error` (plain text, ends the stream) when the store fails; every event but `error` has an `id` to resume from; a `: keep-alive` comment every 15 s. The body schema is one event's fields as `text/event-stream` frames them", body = MyEventFrame, content_type = "text/event-stream"),
        (status = 401, description = "No valid access token: `UNAUTHORIZED`, `TOKEN_EXPIRED`", body = ErrorBody),
        (status = 429, description = "Over the per-user or per-IP rate limit: `RATE_LIMITED` (with `Retry-After`)", body = ErrorBody),
        (status = 503, description = "Storage unavailable: `UNAVAILABLE` (with `Retry-After`)", body = ErrorBody),
    )
)]
async fn my_events(
    State(state): State<AppState>,
    me: AuthUser,
    draining: Option<Extension<Draining>>,
    headers: HeaderMap,
) -> Result<Sse<impl Stream<Item = Result<Event, Infallible>>>, ApiError> {
    let user = user_of(&me)?;
    let resume = resume_from(&headers);
    // The live sessions are followed once the catalogue was read (at start).
    if tokio::time::timeout(READY_WAIT, state.live.ready())
        .await
        .is_err()
    {
        return Err(ApiError::new(
            axum::http::StatusCode::SERVICE_UNAVAILABLE,
            "UNAVAILABLE",
            "the catalogue could not be read yet, retry",
        )
        .retry_after(Duration::from_secs(1)));
    }
    let (tx, mut rx) = mpsc::channel::<Event>(64);
    tokio::spawn(async move {
        let mut stream = UserStream {
            state,
            user,
            cursors: UserCursor::default(),
            tx,
        };
        stream.run(resume).await;
    });
    let stream = futures_util::stream::poll_fn(move |cx| rx.poll_recv(cx)).map(Ok);
    // A stopping server ends the stream; the client resumes on another with Last-Event-ID.
    Ok(crate::http::draining::event_stream(stream, draining))
}

/// The producer of one stream: catch-up from the store, then the live channel.
struct UserStream {
    state: AppState,
    user: UserId,
    cursors: UserCursor,
    tx: mpsc::Sender<Event>,
}

/// The client went away.
struct Gone;

impl UserStream {
    async fn run(&mut self, resume: Resume) {
        let (mut live, positions) = self.state.live.users.subscribe(&self.user);
        let caught_up = match resume {
            Resume::Fresh => {
                self.cursors = UserCursor(positions.through.clone());
                Ok(())
            }
            Resume::Unreadable => {
                self.cursors = UserCursor(positions.through.clone());
                let all = serde_json::json!({ "session_id": null }).to_string();
                self.send("resync", all).await.map_err(|Gone| None)
            }
            Resume::From(from) => {
                self.cursors = from;
                self.catch_up(&positions).await
            }
        };
        match caught_up {
            Ok(()) => {}
            Err(Some(e)) => return self.fail(e).await,
            Err(None) => return,
        }
        let ready = serde_json::json!({ "sessions": self.cursors.0.len() }).to_string();
        if self.send("ready", ready).await.is_err() {
            return;
        }
        loop {
            let next = tokio::select! {
                () = self.tx.closed() => return,
                next = live.recv() => next,
            };
            let sent = match next {
                Ok(UserEvent::Change(c)) => self.change(&c).await,
                Ok(UserEvent::Resync { session, through }) => {
                    self.cursors.0.insert(session, through);
                    self.resync(session).await
                }
                Err(broadcast::error::RecvError::Lagged(_)) => {
                    // Fell behind the channel: replay from the store up to where the
                    // followers stand now (the channel continues after that, and anything
                    // already handed out is skipped by sequence).
                    let positions = self.state.live.users.positions();
                    match self.catch_up(&positions).await {
                        Ok(()) => Ok(()),
                        Err(Some(e)) => return self.fail(e).await,
                        Err(None) => return,
                    }
                }
                Err(broadcast::error::RecvError::Closed) => return,
            };
            if sent.is_err() {
                return;
            }
        }
    }

    /// Hands out `c` unless it was handed out already.
    async fn change(&mut self, c: &Change) -> Result<(), Gone> {
        if !for_user(c, &self.user) {
            return Ok(());
        }
        if self
            .cursors
            .0
            .get(&c.session)
            .is_some_and(|at| c.seq <= *at)
        {
            return Ok(());
        }
        self.cursors.0.insert(c.session, c.seq);
        let data = serde_json::to_string(&MyChange::from(c)).unwrap_or_default();
        self.send(c.kind.as_str(), data).await
    }

    async fn resync(&mut self, session: SessionId) -> Result<(), Gone> {
        let data = serde_json::json!({ "session_id": session.to_string() }).to_string();
        self.send("resync", data).await
    }

    /// Replays, per session, what this stream missed up to `positions` from the store.
    /// `Err(None)`: the client left; `Err(Some(e))`: the store failed.
    async fn catch_up(&mut self, positions: &Positions) -> Result<(), Option<Error>> {
        let mut sessions: Vec<SessionId> = self.cursors.0.keys().copied().collect();
        sessions.extend(positions.through.keys().copied());
        sessions.sort();
        sessions.dedup();
        for session in sessions {
            let from = match self.cursors.0.get(&session) {
                Some(at) => *at,
                // Never seen by this stream: from where this process started following.
                None => positions.starts.get(&session).copied().unwrap_or(0),
            };
            let to = positions.through.get(&session).copied();
            self.cursors.0.insert(session, from);
            if let Some(to) = to
                && to.saturating_sub(from) > CATCHUP_MAX
            {
                self.cursors.0.insert(session, to);
                self.resync(session).await.map_err(|Gone| None)?;
                continue;
            }
            self.replay(session, from, to).await?;
            if to.is_none() {
                // Not followed here any more (long past its performance): forget it.
                self.cursors.0.remove(&session);
            }
        }
        Ok(())
    }

    /// Hands out `session`'s changes of mine after `from` up to `to` (`None`: to the end).
    async fn replay(
        &mut self,
        session: SessionId,
        from: u64,
        to: Option<u64>,
    ) -> Result<(), Option<Error>> {
        let feed = self.state.rush.stores().feed.clone();
        let mut after = from;
        let mut read = 0u64;
        loop {
            if to.is_some_and(|to| after >= to) {
                return Ok(());
            }
            let page = match feed.changes(session, after, MAX_PAGE_LIMIT).await {
                Ok(page) => page,
                Err(Error::Refused(Refusal::ChangesPruned { .. })) => {
                    let through = match to {
                        Some(to) => to,
                        None => self.state.live.head(session).await.map_err(Some)?,
                    };
                    self.cursors.0.insert(session, through);
                    return self.resync(session).await.map_err(|Gone| None);
                }
                Err(Error::NotFound { .. }) => {
                    self.cursors.0.remove(&session);
                    return Ok(());
                }
                Err(e) => return Err(Some(e)),
            };
            let Some(last) = page.changes.last().map(|c| c.seq) else {
                return Ok(());
            };
            for c in &page.changes {
                if to.is_some_and(|to| c.seq > to) {
                    return Ok(());
                }
                if for_user(c, &self.user) {
                    self.change(c).await.map_err(|Gone| None)?;
                } else {
                    self.cursors.0.insert(session, c.seq);
                }
            }
            after = last;
            read += page.changes.len() as u64;
            if to.is_none() && read > CATCHUP_MAX {
                let head = page.head;
                self.cursors.0.insert(session, head);
                return self.resync(session).await.map_err(|Gone| None);
            }
        }
    }

    async fn send(&mut self, name: &str, data: String) -> Result<(), Gone> {
        let event = Event::default()
            .id(self.cursors.to_string())
            .event(name)
            .data(data);
        self.tx.send(event).await.map_err(|_| Gone)
    }

    async fn fail(&mut self, e: Error) {
        let _ = self
            .tx
            .send(Event::default().event("error").data(e.to_string()))
            .await;
    }
}
