//! Hosted checkout sessions: the buyer pays on the sandbox's own page
//! ([`crate::http::hosted_page_router`]), never showing the card to the app.
//!
//! ```text
//! open ──payment attempt──► complete      (succeeded, authorized, or processing: a slow card)
//!  │ ▲          │
//!  │ └─declined─┘ (stays open with the failed attempt as `intent`; another card may follow)
//!  └──expire / expires_at──► expired      (a pending attempt is canceled)
//! ```
//!
//! Each attempt is an intent of the session's amount, capture method and metadata, with
//! `checkout_session` = the session; its webhooks are those of any intent. Everything an
//! attempt changes (the intent, its confirmation, the session) changes under the book's
//! lock, so two attempts at once never both pay: the second finds the session complete.

use serde::Serialize;
use ticket_core::Timestamp;
use ticket_core::gateway::{
    CaptureMethod, CheckoutSession, CheckoutSessionId, CheckoutSessionStatus, EventKind,
    GatewayError, IntentId, IntentStatus, NewCheckoutSession, PaymentFailure, PaymentIntent,
};
use ticket_core::model::money::Money;

use super::{CreateFingerprint, Sandbox, fingerprint, key_ok};
use crate::book::{Book, Entry, SessionEntry};
use crate::cards;
use crate::error::SandboxError;
use crate::intent;
use crate::webhook_url;

/// The longest description a session may carry, in characters.
pub const MAX_DESCRIPTION_CHARS: usize = 500;

/// A checkout session as its payment page shows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HostedSession {
    /// The session as the API reports it.
    pub session: CheckoutSession,
    /// What the page shows as the purchase (the show and the seats).
    pub description: String,
    /// The latest payment attempt's intent, when the buyer made one and it is still kept.
    pub attempt: Option<PaymentIntent>,
}

/// What one payment attempt on the page did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PayOutcome {
    /// The payment succeeded (or was authorized, or is processing with a slow card): the
    /// session is complete; send the buyer to `return_to` (the session's `return_url` with
    /// `session_id` added).
    Completed {
        /// Where the buyer goes back.
        return_to: String,
    },
    /// The card was declined (or its challenge failed): the session stays open for another
    /// card.
    Declined(PaymentFailure),
    /// The card asks for a challenge: the page asks for the one-time code.
    ChallengeRequired,
}

/// Why the page took no payment (nothing changed).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum PayError {
    /// No such session (never created, or evicted).
    #[error("checkout session {0} not found")]
    NotFound(String),
    /// The session expired: it takes no payment any more.
    #[error("this payment page has expired")]
    Expired,
    /// The session was already paid.
    #[error("this order is already paid")]
    Complete,
    /// The card details are malformed (the message says what, never repeats the number).
    #[error("{0}")]
    InvalidCard(String),
    /// There is no challenge to answer (none was asked, or it was answered already).
    #[error("no verification is pending for this payment")]
    NoChallenge,
    /// The sandbox is full of unsettled intents; try again later.
    #[error("{0}")]
    Unavailable(String),
}

/// Checks and normalizes [`crate::SandboxConfig::public_url`]: an absolute `http(s)` URL
/// with a host, no credentials, query or fragment; returned without a trailing `/`.
pub(super) fn public_base(raw: &str) -> Result<String, SandboxError> {
    let bad = |why: &str| {
        Err(SandboxError::InvalidConfig(format!(
            "public_url {raw:?}: {why}"
        )))
    };
    let url = match webhook_url::validate_return_url(raw) {
        Ok(url) => url,
        Err(e) => return bad(&e.to_string()),
    };
    if url.query().is_some() {
        return bad("a query (?…) is not allowed");
    }
    Ok(raw.trim_end_matches('/').to_owned())
}

/// `return_url` with `session_id=<id>` (and `canceled=1` when the buyer gave up) added to
/// its query, the parameters it had kept.
fn return_to(return_url: &str, id: &CheckoutSessionId, canceled: bool) -> String {
    match reqwest::Url::parse(return_url) {
        Ok(mut url) => {
            {
                let mut query = url.query_pairs_mut();
                query.append_pair("session_id", id.as_str());
                if canceled {
                    query.append_pair("canceled", "1");
                }
            }
            url.into()
        }
        // Checked when the session was created: cannot happen; send the buyer back anyway.
        Err(_) => return_url.to_owned(),
    }
}

#[derive(Serialize)]
struct SessionFingerprint<'a> {
    amount: &'a Money,
    capture_method: CaptureMethod,
    return_url: &'a str,
    description: &'a str,
    metadata: &'a std::collections::BTreeMap<String, String>,
    expires_at: Timestamp,
}

fn not_found(id: &CheckoutSessionId) -> GatewayError {
    GatewayError::NotFound(format!("checkout session {id}"))
}

impl Sandbox {
    /// Under the book's lock: an open session whose `expires_at` has passed expires now.
    fn expire_session_if_due(&self, book: &mut Book, id: &CheckoutSessionId) {
        let due = book.session(id).is_some_and(|e| {
            e.session.status == CheckoutSessionStatus::Open
                && e.session.expires_at <= self.inner.clock.now()
        });
        if due {
            self.close_session(book, id);
        }
    }

    /// Under the book's lock: open → expired; the latest attempt, when it was left waiting
    /// (not confirmed, or at its challenge), is canceled so it can never charge.
    fn close_session(&self, book: &mut Book, id: &CheckoutSessionId) {
        let Some(entry) = book.session_mut(id) else {
            return;
        };
        if entry.session.status != CheckoutSessionStatus::Open {
            return;
        }
        entry.session.status = CheckoutSessionStatus::Expired;
        let attempt = entry.session.intent.clone();
        if let Some(attempt) = attempt {
            self.cancel_waiting_attempt(book, &attempt);
        }
    }

    /// Under the book's lock: cancels an attempt that waits (for confirmation or for its
    /// challenge), emitting `payment_intent.canceled`; any other attempt is left alone.
    fn cancel_waiting_attempt(&self, book: &mut Book, attempt: &IntentId) {
        if let Some(entry) = book.entry_mut(attempt)
            && matches!(
                entry.intent.status,
                IntentStatus::RequiresConfirmation | IntentStatus::RequiresAction
            )
            && matches!(intent::cancel(&mut entry.intent), Ok(true))
        {
            self.emit(entry, EventKind::Canceled);
        }
    }

    /// Under the book's lock: makes room for one more intent (see
    /// [`crate::SandboxConfig::max_intents`]). When no intent can go, the sessions whose
    /// time is up are expired first (their waiting attempts canceled, so that those can go
    /// once their webhooks are delivered) and room is looked for again.
    pub(super) fn make_room_for_intent(&self, book: &mut Book) -> Result<(), GatewayError> {
        let dispatcher = &self.inner.dispatcher;
        let max = self.inner.config.max_intents;
        if book
            .make_room_for_intent(max, |i| dispatcher.has_pending(i))
            .is_ok()
        {
            return Ok(());
        }
        for id in book.session_ids() {
            self.expire_session_if_due(book, &id);
        }
        book.make_room_for_intent(max, |i| dispatcher.has_pending(i))
    }

    /// The session, expired first if its time is up.
    fn session_now(
        &self,
        book: &mut Book,
        id: &CheckoutSessionId,
    ) -> Result<CheckoutSession, GatewayError> {
        self.expire_session_if_due(book, id);
        book.session(id)
            .map(|e| e.session.clone())
            .ok_or_else(|| not_found(id))
    }

    /// [`PaymentGateway::create_checkout_session`](ticket_core::gateway::PaymentGateway::create_checkout_session).
    pub(super) fn create_session(
        &self,
        req: NewCheckoutSession,
    ) -> Result<CheckoutSession, GatewayError> {
        key_ok(&req.idempotency_key)?;
        intent::validate_amount(&req.amount)?;
        webhook_url::validate_return_url(&req.return_url)?;
        if req.description.chars().count() > MAX_DESCRIPTION_CHARS {
            return Err(GatewayError::Invalid(format!(
                "description must be at most {MAX_DESCRIPTION_CHARS} characters"
            )));
        }
        if req.description.chars().any(char::is_control) {
            return Err(GatewayError::Invalid(
                "description must not contain control characters".into(),
            ));
        }
        let fp = fingerprint(&SessionFingerprint {
            amount: &req.amount,
            capture_method: req.capture_method,
            return_url: &req.return_url,
            description: &req.description,
            metadata: &req.metadata,
            expires_at: req.expires_at,
        })?;
        let mut book = self.inner.book.lock();
        if let Some((seen, id)) = book.session_created_by(&req.idempotency_key) {
            if *seen != fp {
                return Err(GatewayError::KeyReused);
            }
            let id = id.clone();
            return self.session_now(&mut book, &id);
        }
        let id = CheckoutSessionId::new(format!("cs_{}", uuid::Uuid::now_v7().simple()))?;
        let session = CheckoutSession {
            url: format!("{}/pay/{id}", self.inner.config.public_url),
            id,
            status: CheckoutSessionStatus::Open,
            amount: req.amount,
            capture_method: req.capture_method,
            intent: None,
            metadata: req.metadata,
            return_url: req.return_url,
            expires_at: req.expires_at,
        };
        book.make_room_for_session(self.inner.config.max_sessions, self.inner.clock.now())?;
        let id = session.id.clone();
        book.insert_session(
            fp,
            SessionEntry::new(session, req.description, req.idempotency_key),
        );
        // A session created already past its expiry is expired from the start.
        self.session_now(&mut book, &id)
    }

    /// [`PaymentGateway::get_checkout_session`](ticket_core::gateway::PaymentGateway::get_checkout_session).
    pub(super) fn read_session(
        &self,
        id: &CheckoutSessionId,
    ) -> Result<CheckoutSession, GatewayError> {
        self.session_now(&mut self.inner.book.lock(), id)
    }

    /// [`PaymentGateway::expire_checkout_session`](ticket_core::gateway::PaymentGateway::expire_checkout_session):
    /// open → expired (its waiting attempt canceled), idempotent on an expired session,
    /// `Conflict` with the paying intent's status on a complete one.
    pub(super) fn expire_session(
        &self,
        id: &CheckoutSessionId,
    ) -> Result<CheckoutSession, GatewayError> {
        let mut book = self.inner.book.lock();
        let session = self.session_now(&mut book, id)?;
        match session.status {
            CheckoutSessionStatus::Open => {
                self.close_session(&mut book, id);
                self.session_now(&mut book, id)
            }
            CheckoutSessionStatus::Expired => Ok(session),
            CheckoutSessionStatus::Complete => {
                // The paying intent is kept while it may change (processing, requires_capture);
                // one evicted since was settled, almost surely succeeded.
                let status = session
                    .intent
                    .as_ref()
                    .and_then(|i| book.entry_mut(i))
                    .map_or(IntentStatus::Succeeded, |e| {
                        self.expire_if_due(e);
                        e.intent.status
                    });
                Err(GatewayError::Conflict {
                    action: format!("expire checkout session {id} (it is complete)"),
                    status,
                })
            }
        }
    }

    /// Every checkout session kept (see [`crate::SandboxConfig::max_sessions`]), oldest
    /// first, each as it stands now (expired if its time is up).
    pub fn checkout_sessions(&self) -> Vec<CheckoutSession> {
        let mut book = self.inner.book.lock();
        book.session_ids()
            .iter()
            .filter_map(|id| self.session_now(&mut book, id).ok())
            .collect()
    }

    /// The session `id` as its payment page shows it (expired first if its time is up).
    pub fn hosted_session(&self, id: &CheckoutSessionId) -> Result<HostedSession, PayError> {
        let mut book = self.inner.book.lock();
        let session = self
            .session_now(&mut book, id)
            .map_err(|_| PayError::NotFound(id.to_string()))?;
        let attempt = session.intent.as_ref().and_then(|i| {
            book.entry_mut(i).map(|e| {
                self.expire_if_due(e);
                e.intent.clone()
            })
        });
        let description = book
            .session(id)
            .map(|e| e.description.clone())
            .unwrap_or_default();
        Ok(HostedSession {
            session,
            description,
            attempt,
        })
    }

    /// Where the page's "Cancel and return" link sends the buyer: the session's
    /// `return_url` with `session_id=<id>&canceled=1`. The session stays as it is.
    pub fn checkout_cancel_url(&self, id: &CheckoutSessionId) -> Result<String, PayError> {
        let mut book = self.inner.book.lock();
        let session = self
            .session_now(&mut book, id)
            .map_err(|_| PayError::NotFound(id.to_string()))?;
        Ok(return_to(&session.return_url, id, true))
    }

    /// Under the book's lock: the open session `id` (`Expired`, `Complete` or `NotFound`
    /// otherwise).
    fn open_session(
        &self,
        book: &mut Book,
        id: &CheckoutSessionId,
    ) -> Result<CheckoutSession, PayError> {
        let session = self
            .session_now(book, id)
            .map_err(|_| PayError::NotFound(id.to_string()))?;
        match session.status {
            CheckoutSessionStatus::Open => Ok(session),
            CheckoutSessionStatus::Expired => Err(PayError::Expired),
            CheckoutSessionStatus::Complete => Err(PayError::Complete),
        }
    }

    /// One payment attempt on the page of session `id` with the card `card_number` (the
    /// test cards of [`crate::cards`]; spaces and dashes are ignored): an intent of the
    /// session's amount, capture method and metadata, with `checkout_session` = `id`, is
    /// created and confirmed. The session becomes complete when it succeeds, is authorized
    /// or stays processing (a slow card); a decline leaves it open with the attempt as its
    /// `intent`; a card that asks for a challenge waits for
    /// [`Sandbox::answer_checkout_challenge`]. An attempt still waiting for its challenge is
    /// canceled by a new one. An expired or complete session takes no payment (nothing
    /// changes), nor does a malformed card number (nothing is created).
    pub fn pay_checkout_session(
        &self,
        id: &CheckoutSessionId,
        card_number: &str,
    ) -> Result<PayOutcome, PayError> {
        let number: String = card_number
            .chars()
            .filter(|c| *c != ' ' && *c != '-')
            .collect();
        let card = cards::outcome(&number).map_err(|e| match e {
            GatewayError::Invalid(m) => PayError::InvalidCard(m),
            other => PayError::InvalidCard(other.to_string()),
        })?;
        let mut guard = self.inner.book.lock();
        let book: &mut Book = &mut guard;
        let session = self.open_session(book, id)?;
        let now = self.inner.clock.now();
        let attempt = IntentId::new(format!("pi_{}", uuid::Uuid::now_v7().simple()))
            .map_err(|e| PayError::Unavailable(e.to_string()))?;
        let mut created = intent::open(
            attempt.clone(),
            session.amount,
            session.capture_method,
            session.metadata.clone(),
            now,
        )
        .map_err(|e| PayError::Unavailable(e.to_string()))?;
        created.checkout_session = Some(id.clone());
        let fp = fingerprint(&CreateFingerprint {
            amount: &session.amount,
            payment_method: &number,
            capture_method: session.capture_method,
            metadata: &session.metadata,
        })
        .map_err(|e| PayError::Unavailable(e.to_string()))?;
        self.make_room_for_intent(book)
            .map_err(|e| PayError::Unavailable(e.to_string()))?;
        // From here on the attempt applies whole.
        if let Some(previous) = &session.intent {
            self.cancel_waiting_attempt(book, previous);
        }
        let key = format!("checkout-attempt-{}", uuid::Uuid::now_v7().simple());
        book.insert_intent(fp, Entry::new(created, card, key));
        self.settle_attempt(book, id, &attempt, |this, entry| {
            this.confirm_locked(entry).map(|_| ())
        })
    }

    /// Answers the challenge of the session's pending attempt, as the buyer does on the
    /// page: [`cards::CHALLENGE_CODE`] completes the payment (as a success in
    /// [`Sandbox::pay_checkout_session`]); any other code fails the attempt
    /// (`authentication_failed`) and the session stays open. `NoChallenge` when none is
    /// pending; an expired or complete session takes no answer.
    pub fn answer_checkout_challenge(
        &self,
        id: &CheckoutSessionId,
        code: &str,
    ) -> Result<PayOutcome, PayError> {
        let mut guard = self.inner.book.lock();
        let book: &mut Book = &mut guard;
        let session = self.open_session(book, id)?;
        let Some(attempt) = session.intent else {
            return Err(PayError::NoChallenge);
        };
        let waiting = book
            .entry_mut(&attempt)
            .is_some_and(|e| e.intent.status == IntentStatus::RequiresAction);
        if !waiting {
            return Err(PayError::NoChallenge);
        }
        self.settle_attempt(book, id, &attempt, |this, entry| {
            this.answer_challenge_locked(entry, code)
        })
    }

    /// Under the book's lock: runs `step` on the attempt `attempt` of session `id`, records
    /// it as the session's `intent` and completes the session when it paid.
    fn settle_attempt(
        &self,
        book: &mut Book,
        id: &CheckoutSessionId,
        attempt: &IntentId,
        step: impl FnOnce(&Self, &mut Entry) -> Result<(), GatewayError>,
    ) -> Result<PayOutcome, PayError> {
        let entry = book
            .entry_mut(attempt)
            .ok_or_else(|| PayError::Unavailable(format!("attempt {attempt} vanished")))?;
        step(self, entry).map_err(|e| match e {
            GatewayError::Conflict { .. } => PayError::NoChallenge,
            other => PayError::Unavailable(other.to_string()),
        })?;
        let intent = entry.intent.clone();
        let session = book
            .session_mut(id)
            .ok_or_else(|| PayError::NotFound(id.to_string()))?;
        session.session.intent = Some(attempt.clone());
        match intent.status {
            IntentStatus::Succeeded | IntentStatus::RequiresCapture | IntentStatus::Processing => {
                session.session.status = CheckoutSessionStatus::Complete;
                tracing::info!(session = %id, intent = %attempt, status = intent.status.as_str(), "checkout session complete");
                Ok(PayOutcome::Completed {
                    return_to: return_to(&session.session.return_url, id, false),
                })
            }
            IntentStatus::RequiresAction => Ok(PayOutcome::ChallengeRequired),
            IntentStatus::Failed | IntentStatus::Canceled | IntentStatus::RequiresConfirmation => {
                Ok(PayOutcome::Declined(intent.failure.unwrap_or_else(|| {
                    PaymentFailure {
                        code: "processing_error".into(),
                        message: "The payment could not be completed.".into(),
                    }
                })))
            }
        }
    }
}
