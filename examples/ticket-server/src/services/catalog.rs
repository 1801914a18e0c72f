//! The catalogue's rules beyond the library: publishing an event, reading every event of the
//! backend, an event's status, and the listing's filter, order and pages.
//!
//! The listing reads the whole catalogue from the shared backend ([`LOAD_PAGE`] events per
//! call, in id order), so every server process on one Redis or PostgreSQL lists the same
//! events, whichever process created them; an event created while a listing runs may or may
//! not be in it. One read of the whole catalogue per listing: fine for thousands of events,
//! not for millions.

use std::collections::BTreeMap;

use ticket_core::model::session::{Event, SessionStatus};
use ticket_core::{Error, EventId, TicketRush, Timestamp};

/// How many events a listing reads from the backend per call while it loads them.
pub const LOAD_PAGE: usize = 200;

/// Creates `event` in the library (validated, idempotent for an identical event); from then
/// on it is listed by every server sharing the backend. Used by `POST /api/admin/events` and
/// for events made outside the HTTP API, such as the demo event at start.
pub async fn publish_event(rush: &TicketRush, event: &Event) -> Result<(), Error> {
    rush.create_event(event).await?;
    Ok(())
}

/// Every event of the backend, in id order, read [`LOAD_PAGE`] at a time.
pub async fn all_events(rush: &TicketRush) -> Result<Vec<Event>, Error> {
    all_events_of(&rush.stores().inventory).await
}

/// Every event of `inventory`, in id order, read [`LOAD_PAGE`] at a time.
pub async fn all_events_of(
    inventory: &std::sync::Arc<dyn ticket_core::store::Inventory>,
) -> Result<Vec<Event>, Error> {
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

/// An event's status at `now`: `OnSale` when one of its sessions is on sale, else
/// `Scheduled` when one has yet to open, else `Closed`.
pub fn event_status(e: &Event, now: Timestamp) -> SessionStatus {
    event_status_of(e.sessions.iter().map(|s| s.status_at(now)))
}

/// An event's status from its sessions' statuses: `OnSale` when one is on sale, else
/// `Paused` when one is paused, else `Scheduled` when one has yet to open, else `Cancelled`
/// when every one was cancelled, else `Closed`.
pub fn event_status_of(statuses: impl IntoIterator<Item = SessionStatus>) -> SessionStatus {
    let statuses: Vec<SessionStatus> = statuses.into_iter().collect();
    if statuses.contains(&SessionStatus::OnSale) {
        SessionStatus::OnSale
    } else if statuses.contains(&SessionStatus::Paused) {
        SessionStatus::Paused
    } else if statuses.contains(&SessionStatus::Scheduled) {
        SessionStatus::Scheduled
    } else if !statuses.is_empty() && statuses.iter().all(|s| *s == SessionStatus::Cancelled) {
        SessionStatus::Cancelled
    } else {
        SessionStatus::Closed
    }
}

/// Which events a listing keeps.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct EventFilter {
    /// Lower-case text the event's name must contain (case-insensitively); empty: any name.
    pub text: String,
    /// The event's status ([`event_status`]) must be this one.
    pub status: Option<SessionStatus>,
    /// A session must start at or after this instant (epoch ms)...
    pub from: Option<i64>,
    /// ...and before this one (epoch ms); `to` at or before `from` matches nothing.
    pub to: Option<i64>,
}

impl EventFilter {
    /// Whether `event` passes the filter at `now`.
    pub fn matches(&self, event: &Event, now: Timestamp) -> bool {
        if !self.text.is_empty() && !event.name.to_lowercase().contains(&self.text) {
            return false;
        }
        let in_range = event.sessions.iter().any(|s| {
            let t = s.starts_at.as_millis();
            self.from.is_none_or(|f| t >= f) && self.to.is_none_or(|to| t < to)
        });
        in_range && self.status.is_none_or(|s| s == event_status(event, now))
    }
}

/// One page of a listing.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EventsPage {
    /// The events of the page, by earliest session start, then id (UUIDv7: creation order).
    pub events: Vec<Event>,
    /// Matching events over all pages.
    pub total: usize,
}

/// Page `page` (1-based; `per_page` events each) of the events of the backend that pass
/// `filter` at `now`, ordered by earliest session start, then id. A page past the end is
/// empty; `total` counts every match.
pub async fn list_events(
    rush: &TicketRush,
    filter: &EventFilter,
    page: u32,
    per_page: u32,
    now: Timestamp,
) -> Result<EventsPage, Error> {
    let mut matching: BTreeMap<(i64, EventId), Event> = BTreeMap::new();
    for event in all_events(rush).await? {
        if !filter.matches(&event, now) {
            continue;
        }
        let first = event
            .sessions
            .iter()
            .map(|s| s.starts_at.as_millis())
            .min()
            .unwrap_or(i64::MAX);
        matching.insert((first, event.id), event);
    }
    let total = matching.len();
    let skip = usize::try_from(u64::from(page.saturating_sub(1)) * u64::from(per_page))
        .unwrap_or(usize::MAX);
    let events = matching
        .into_values()
        .skip(skip)
        .take(per_page as usize)
        .collect();
    Ok(EventsPage { events, total })
}
