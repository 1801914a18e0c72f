//! Fan-out of each user's own changes to their `GET /api/me/events` streams.
//!
//! Session followers ([`super::session`]) hand every batch of changes they read to
//! [`UserHub::dispatch`], which forwards the changes a user cares about ([`USER_KINDS`]) to
//! that user's channel, if any stream of theirs is open, and records how far each session
//! has been dispatched. Dispatch and [`UserHub::subscribe`] take the same lock, so a stream
//! that subscribes and reads the positions gets every later change through its channel and
//! every earlier one (up to the positions) from the store: nothing falls in between.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

use parking_lot::Mutex;
use ticket_core::model::change::{Change, ChangeKind};
use ticket_core::{SessionId, UserId};
use tokio::sync::broadcast;

/// The changes a user's stream carries: every change of their holds, and their admission
/// and its end.
pub const USER_KINDS: [ChangeKind; 10] = [
    ChangeKind::HoldCreated,
    ChangeKind::HoldPaying,
    ChangeKind::HoldConfirmed,
    ChangeKind::HoldExpired,
    ChangeKind::HoldReleased,
    ChangeKind::HoldPaymentFailed,
    ChangeKind::HoldCancelled,
    ChangeKind::HoldRefunded,
    ChangeKind::Admitted,
    ChangeKind::AdmissionExpired,
];

/// The organiser's moves of a session's sale switch: session-wide, so they go to every
/// user's stream (a buyer waiting, holding or watching learns that the sale paused, closed
/// or the show was cancelled).
pub const SALE_KINDS: [ChangeKind; 4] = [
    ChangeKind::SalePaused,
    ChangeKind::SaleResumed,
    ChangeKind::SaleClosed,
    ChangeKind::SaleCancelled,
];

/// Whether `change` goes to `user`'s stream: their own changes, and every sale switch move.
pub fn for_user(change: &Change, user: &UserId) -> bool {
    SALE_KINDS.contains(&change.kind)
        || (change.owner.as_ref() == Some(user) && USER_KINDS.contains(&change.kind))
}

/// What a user's channel carries.
#[derive(Debug, Clone)]
pub enum UserEvent {
    /// One of the user's changes.
    Change(Arc<Change>),
    /// The follower of `session` lost changes (feed retention): reload, then continue after
    /// `through`.
    Resync {
        /// The session.
        session: SessionId,
        /// Where the follower continues.
        through: u64,
    },
}

/// How many events a user's channel buffers; a stream that falls further behind catches up
/// from the store.
const CHANNEL: usize = 1024;

#[derive(Debug, Default)]
struct Inner {
    users: HashMap<UserId, broadcast::Sender<UserEvent>>,
    /// Per followed session: the last sequence dispatched.
    positions: BTreeMap<SessionId, u64>,
    /// Per followed session: the sequence its follower started after.
    starts: BTreeMap<SessionId, u64>,
}

/// Where the followed sessions stand, read under the dispatch lock.
#[derive(Debug, Clone, Default)]
pub struct Positions {
    /// Per followed session: the last sequence dispatched.
    pub through: BTreeMap<SessionId, u64>,
    /// Per followed session: the sequence its follower started after (changes up to it
    /// were never dispatched by this process).
    pub starts: BTreeMap<SessionId, u64>,
}

/// Per-user channels and the followed sessions' positions.
#[derive(Debug, Default)]
pub struct UserHub {
    inner: Mutex<Inner>,
}

impl UserHub {
    /// A follower of `session` starts after sequence `at`.
    pub fn started(&self, session: SessionId, at: u64) {
        let mut inner = self.inner.lock();
        inner.positions.insert(session, at);
        inner.starts.insert(session, at);
    }

    /// The follower of `session` stopped.
    pub fn stopped(&self, session: SessionId) {
        let mut inner = self.inner.lock();
        inner.positions.remove(&session);
        inner.starts.remove(&session);
    }

    /// Forwards the users' changes of `changes` (a batch of `session`, in order) and records
    /// that `session` is dispatched through `through`.
    pub fn dispatch(&self, session: SessionId, changes: &[Change], through: u64) {
        let mut inner = self.inner.lock();
        for change in changes {
            if SALE_KINDS.contains(&change.kind) {
                let event = UserEvent::Change(Arc::new(change.clone()));
                inner.users.retain(|_, tx| tx.send(event.clone()).is_ok());
                continue;
            }
            let Some(owner) = &change.owner else { continue };
            if !USER_KINDS.contains(&change.kind) {
                continue;
            }
            let Some(tx) = inner.users.get(owner) else {
                continue;
            };
            if tx
                .send(UserEvent::Change(Arc::new(change.clone())))
                .is_err()
            {
                // Nobody listens any more.
                inner.users.remove(owner);
            }
        }
        inner.positions.insert(session, through);
    }

    /// `session`'s follower skipped changes (retention) and continues after `through`: every
    /// open stream is told to resynchronise.
    pub fn resync(&self, session: SessionId, through: u64) {
        let mut inner = self.inner.lock();
        inner.positions.insert(session, through);
        inner
            .users
            .retain(|_, tx| tx.send(UserEvent::Resync { session, through }).is_ok());
    }

    /// A channel of `user`'s changes from now on, and the positions every change up to which
    /// was dispatched before the channel existed.
    pub fn subscribe(&self, user: &UserId) -> (broadcast::Receiver<UserEvent>, Positions) {
        let mut inner = self.inner.lock();
        let rx = match inner.users.get(user) {
            Some(tx) => tx.subscribe(),
            None => {
                let (tx, rx) = broadcast::channel(CHANNEL);
                inner.users.insert(user.clone(), tx);
                rx
            }
        };
        let positions = Positions {
            through: inner.positions.clone(),
            starts: inner.starts.clone(),
        };
        (rx, positions)
    }

    /// The positions now.
    pub fn positions(&self) -> Positions {
        let inner = self.inner.lock();
        Positions {
            through: inner.positions.clone(),
            starts: inner.starts.clone(),
        }
    }

    /// Users with an open channel (for tests and metrics).
    pub fn listening_users(&self) -> usize {
        self.inner.lock().users.len()
    }
}
