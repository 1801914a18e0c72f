//! The live sessions: every session from its sales' opening (presale queues included, as
//! they open earlier) until a day after its performance, read from the shared catalogue
//! every few seconds. Each gets a follower, so users' streams see their changes; a session
//! that appears after the first read (a new one) is followed from its first change.

use std::collections::HashSet;
use std::sync::Arc;
use std::time::Duration;

use parking_lot::RwLock;
use ticket_core::model::session::Session;
use ticket_core::{SessionId, Timestamp};
use tokio::sync::Notify;

use super::Live;
use super::session::StartAt;

/// How long after its performance a session stays live (refunds, late payments).
pub const AFTER_PERFORMANCE: Duration = Duration::from_secs(24 * 3_600);

/// Whether `session` is live at `now`: not before its sales' queue could open (a day
/// ahead, for presales) and not more than [`AFTER_PERFORMANCE`] after its performance.
pub fn is_live(session: &Session, now: Timestamp) -> bool {
    let day = 24 * 3_600 * 1_000;
    let after = i64::try_from(AFTER_PERFORMANCE.as_millis()).unwrap_or(i64::MAX);
    now.as_millis() >= session.sales.open_at.as_millis().saturating_sub(7 * day)
        && now.as_millis() < session.starts_at.as_millis().saturating_add(after)
}

/// The live sessions as of the last read.
#[derive(Debug, Default)]
pub struct Catalogue {
    sessions: RwLock<HashSet<SessionId>>,
    poke: Notify,
}

impl Catalogue {
    /// The live sessions.
    pub fn sessions(&self) -> Vec<SessionId> {
        self.sessions.read().iter().copied().collect()
    }

    /// Whether `session` is live.
    pub fn contains(&self, session: SessionId) -> bool {
        self.sessions.read().contains(&session)
    }

    /// Asks for a read now.
    pub fn poke(&self) {
        self.poke.notify_one();
    }
}

/// Reads the catalogue now and every `catalogue_every`, starting followers for new live
/// sessions.
pub(super) async fn run(hub: Arc<Live>) {
    let mut first = true;
    loop {
        match crate::services::catalog::all_events_of(&hub.stores.inventory).await {
            Ok(events) => {
                let now = hub.clock.now();
                let live: HashSet<SessionId> = events
                    .iter()
                    .flat_map(|e| e.sessions.iter())
                    .filter(|s| is_live(s, now))
                    .map(|s| s.id)
                    .collect();
                let known: HashSet<SessionId> = hub.catalogue.sessions.read().clone();
                let start = if first {
                    StartAt::Head
                } else {
                    StartAt::Beginning
                };
                *hub.catalogue.sessions.write() = live.clone();
                for session in &live {
                    if !known.contains(session) {
                        hub.follower(*session, start);
                    }
                }
                if first {
                    first = false;
                    hub.set_ready();
                }
            }
            Err(e) => tracing::warn!("live: cannot read the catalogue: {e}"),
        }
        tokio::select! {
            () = tokio::time::sleep(hub.config.catalogue_every) => {}
            () = hub.catalogue.poke.notified() => {}
        }
    }
}
