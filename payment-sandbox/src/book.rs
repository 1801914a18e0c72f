//! The sandbox's books: intents, refunds, checkout sessions and their idempotency keys,
//! kept within the retention bounds of [`crate::SandboxConfig`] (`max_intents`,
//! `max_refunds`, `max_sessions`).
//!
//! Past a bound, the oldest *settled* item is evicted to make room: an intent that is
//! succeeded, failed or canceled and has no webhook copy still being delivered; a refund
//! whose intent has none either. An intent still `requires_confirmation`,
//! `requires_action`, `processing` or `requires_capture` is never evicted. When nothing can go, the new item is refused (the caller answers
//! `503`, retry later) and nothing changes. An evicted item is forgotten whole, its
//! idempotency key included: reading it is `NotFound`, like an unknown one.
//!
//! A checkout session is settled once it is complete or expired (also when its expiry has
//! passed and nobody read it since); an open one is never evicted.

use std::collections::{HashMap, VecDeque};

use ticket_core::Timestamp;
use ticket_core::gateway::{
    CheckoutSession, CheckoutSessionId, CheckoutSessionStatus, GatewayError, IntentId,
    IntentStatus, PaymentIntent, Refund,
};
use ticket_core::model::idempotency::Fingerprint;

use crate::cards::CardOutcome;

/// One intent and what the sandbox knows about it.
#[derive(Debug)]
pub(crate) struct Entry {
    pub(crate) intent: PaymentIntent,
    pub(crate) card: CardOutcome,
    /// The sequence of its latest event.
    pub(crate) sequence: u64,
    /// The idempotency key that created it (forgotten with it).
    key: String,
    /// The idempotency key that captured it, once it was captured (forgotten with it).
    capture_key: Option<String>,
}

impl Entry {
    pub(crate) fn new(intent: PaymentIntent, card: CardOutcome, key: String) -> Self {
        Self {
            intent,
            card,
            sequence: 0,
            key,
            capture_key: None,
        }
    }
}

/// One checkout session and what its payment page shows.
#[derive(Debug)]
pub(crate) struct SessionEntry {
    pub(crate) session: CheckoutSession,
    /// Shown on the page (the session type does not carry it).
    pub(crate) description: String,
    /// The idempotency key that created it (forgotten with it).
    key: String,
}

impl SessionEntry {
    pub(crate) fn new(session: CheckoutSession, description: String, key: String) -> Self {
        Self {
            session,
            description,
            key,
        }
    }
}

#[derive(Debug, Default)]
pub(crate) struct Book {
    sessions: HashMap<CheckoutSessionId, SessionEntry>,
    /// Session ids in creation order, oldest first: where eviction looks.
    session_order: VecDeque<CheckoutSessionId>,
    session_keys: HashMap<String, (Fingerprint, CheckoutSessionId)>,
    intents: HashMap<IntentId, Entry>,
    /// Intent ids in creation order, oldest first: where eviction looks.
    order: VecDeque<IntentId>,
    create_keys: HashMap<String, (Fingerprint, IntentId)>,
    /// Capture keys: at most one per intent (only one capture can succeed).
    capture_keys: HashMap<String, (Fingerprint, IntentId)>,
    refund_keys: HashMap<String, (Fingerprint, Refund)>,
    /// Refunds in the order they were made, with the key that made each.
    refunds: VecDeque<(String, Refund)>,
}

/// Whether an intent's status can no longer change by itself (a succeeded one can still be
/// refunded, which the caller asks for).
fn settled(status: IntentStatus) -> bool {
    matches!(
        status,
        IntentStatus::Succeeded | IntentStatus::Failed | IntentStatus::Canceled
    )
}

impl Book {
    pub(crate) fn entry_mut(&mut self, id: &IntentId) -> Option<&mut Entry> {
        self.intents.get_mut(id)
    }

    /// Every entry, in no order, to change.
    pub(crate) fn entries_mut(&mut self) -> impl Iterator<Item = &mut Entry> {
        self.intents.values_mut()
    }

    /// Every intent, in no order.
    pub(crate) fn intents(&self) -> impl Iterator<Item = &PaymentIntent> {
        self.intents.values().map(|e| &e.intent)
    }

    /// Every refund kept, in the order they were made.
    pub(crate) fn refunds(&self) -> Vec<Refund> {
        self.refunds.iter().map(|(_, r)| r.clone()).collect()
    }

    /// What the creation key `key` made, when it is known.
    pub(crate) fn created_by(&self, key: &str) -> Option<&(Fingerprint, IntentId)> {
        self.create_keys.get(key)
    }

    /// What the capture key `key` captured, when it is known.
    pub(crate) fn captured_by(&self, key: &str) -> Option<&(Fingerprint, IntentId)> {
        self.capture_keys.get(key)
    }

    /// Records that capture key `key` of fingerprint `fp` captured intent `id` (which
    /// exists); forgotten when the intent is evicted.
    pub(crate) fn record_capture(&mut self, key: String, fp: Fingerprint, id: &IntentId) {
        if let Some(entry) = self.intents.get_mut(id) {
            entry.capture_key = Some(key.clone());
            self.capture_keys.insert(key, (fp, id.clone()));
        }
    }

    /// What the refund key `key` made, when it is known.
    pub(crate) fn refunded_by(&self, key: &str) -> Option<&(Fingerprint, Refund)> {
        self.refund_keys.get(key)
    }

    /// Makes room for one more intent under `max`: evicts the oldest settled intent whose
    /// deliveries are over (`pending` says which are not), or refuses when none is.
    pub(crate) fn make_room_for_intent(
        &mut self,
        max: usize,
        pending: impl Fn(&IntentId) -> bool,
    ) -> Result<(), GatewayError> {
        while self.intents.len() >= max {
            let oldest_settled = self.order.iter().position(|id| {
                self.intents
                    .get(id)
                    .is_some_and(|e| settled(e.intent.status))
                    && !pending(id)
            });
            let Some(id) = oldest_settled.and_then(|at| self.order.remove(at)) else {
                return Err(GatewayError::Unavailable(format!(
                    "the sandbox holds its maximum of {max} intents and none is settled \
                     (succeeded, failed or canceled, every webhook delivered): retry later, \
                     or raise max_intents"
                )));
            };
            if let Some(gone) = self.intents.remove(&id) {
                self.create_keys.remove(&gone.key);
                if let Some(key) = &gone.capture_key {
                    self.capture_keys.remove(key);
                }
            }
        }
        Ok(())
    }

    /// Adds a new intent, made by idempotency key `key` of fingerprint `fp` (call
    /// [`Self::make_room_for_intent`] first).
    pub(crate) fn insert_intent(&mut self, fp: Fingerprint, entry: Entry) {
        let id = entry.intent.id.clone();
        self.create_keys.insert(entry.key.clone(), (fp, id.clone()));
        self.order.push_back(id.clone());
        self.intents.insert(id, entry);
    }

    /// Every session id, oldest first.
    pub(crate) fn session_ids(&self) -> Vec<CheckoutSessionId> {
        self.session_order.iter().cloned().collect()
    }

    pub(crate) fn session(&self, id: &CheckoutSessionId) -> Option<&SessionEntry> {
        self.sessions.get(id)
    }

    pub(crate) fn session_mut(&mut self, id: &CheckoutSessionId) -> Option<&mut SessionEntry> {
        self.sessions.get_mut(id)
    }

    /// What the session-creation key `key` made, when it is known.
    pub(crate) fn session_created_by(
        &self,
        key: &str,
    ) -> Option<&(Fingerprint, CheckoutSessionId)> {
        self.session_keys.get(key)
    }

    /// Makes room for one more session under `max`: evicts the oldest session that is
    /// complete or expired (or open past its expiry at `now`), or refuses when none is.
    pub(crate) fn make_room_for_session(
        &mut self,
        max: usize,
        now: Timestamp,
    ) -> Result<(), GatewayError> {
        while self.sessions.len() >= max {
            let oldest_settled = self.session_order.iter().position(|id| {
                self.sessions.get(id).is_some_and(|e| {
                    e.session.status != CheckoutSessionStatus::Open || e.session.expires_at <= now
                })
            });
            let Some(id) = oldest_settled.and_then(|at| self.session_order.remove(at)) else {
                return Err(GatewayError::Unavailable(format!(
                    "the sandbox holds its maximum of {max} checkout sessions and every one is \
                     still open: retry later, or raise max_sessions"
                )));
            };
            if let Some(gone) = self.sessions.remove(&id) {
                self.session_keys.remove(&gone.key);
            }
        }
        Ok(())
    }

    /// Adds a new session, made by idempotency key `entry.key` of fingerprint `fp` (call
    /// [`Self::make_room_for_session`] first).
    pub(crate) fn insert_session(&mut self, fp: Fingerprint, entry: SessionEntry) {
        let id = entry.session.id.clone();
        self.session_keys
            .insert(entry.key.clone(), (fp, id.clone()));
        self.session_order.push_back(id.clone());
        self.sessions.insert(id, entry);
    }

    /// Makes room for one more refund under `max`: evicts the oldest refund whose intent's
    /// deliveries are over, or refuses when none is.
    pub(crate) fn make_room_for_refund(
        &mut self,
        max: usize,
        pending: impl Fn(&IntentId) -> bool,
    ) -> Result<(), GatewayError> {
        while self.refunds.len() >= max {
            let oldest_settled = self.refunds.iter().position(|(_, r)| !pending(&r.intent));
            let Some((key, _)) = oldest_settled.and_then(|at| self.refunds.remove(at)) else {
                return Err(GatewayError::Unavailable(format!(
                    "the sandbox holds its maximum of {max} refunds and every one still has \
                     webhooks on their way: retry later, or raise max_refunds"
                )));
            };
            self.refund_keys.remove(&key);
        }
        Ok(())
    }

    /// Records a refund made by idempotency key `key` of fingerprint `fp` (call
    /// [`Self::make_room_for_refund`] first).
    pub(crate) fn insert_refund(&mut self, key: String, fp: Fingerprint, refund: Refund) {
        self.refund_keys.insert(key.clone(), (fp, refund.clone()));
        self.refunds.push_back((key, refund));
    }
}
