//! Top-ups: money put into a wallet by a card payment.
//!
//! A [`TopUp`] is opened `pending` under the client's `Idempotency-Key`, paid through the
//! card provider, and leaves `pending` exactly once: to `succeeded`, in the same atomic step
//! as the ledger credit (key [`LedgerPurpose::TopUpCredit`] of the provider's intent), or to
//! `failed`, crediting nothing. The service that drives it is [`crate::services::topups::TopUps`]; a
//! [`TopUpStore`] only keeps documents and swaps them atomically (compare-and-set on
//! [`TopUp::version`]), so the rules live in one place.

use async_trait::async_trait;
use serde::{Deserialize, Serialize};
use ticket_core::Timestamp;
use ticket_core::model::money::Money;
use uuid::Uuid;

use super::{Entry, LedgerKey, Result};

#[allow(unused_imports)] // for the docs
use super::LedgerPurpose;

/// Where a top-up stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TopUpStatus {
    /// Paid for or not yet: nothing credited.
    Pending,
    /// The card payment succeeded and the wallet was credited (once). Final.
    Succeeded,
    /// The card payment failed, was canceled or never answered: nothing credited. Final.
    Failed,
}

impl TopUpStatus {
    /// `PENDING`, `SUCCEEDED` or `FAILED`, as PostgreSQL stores it.
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Pending => "PENDING",
            Self::Succeeded => "SUCCEEDED",
            Self::Failed => "FAILED",
        }
    }
}

/// One top-up.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TopUp {
    /// Unique id (UUIDv7).
    pub id: Uuid,
    /// The wallet's owner.
    pub user: String,
    /// The client's `Idempotency-Key` (unique per user): a repeat answers this top-up.
    pub client_key: String,
    /// What is paid and credited.
    pub amount: Money,
    /// The last four digits of the card (the number itself is never stored).
    pub card_last4: String,
    /// Where it stands.
    pub status: TopUpStatus,
    /// The provider's payment intent, once created.
    pub intent: Option<String>,
    /// Why it failed (`card_declined`, `timeout`, …), when `failed`.
    pub failure: Option<String>,
    /// When it was opened.
    pub created_at: Timestamp,
    /// When it last changed.
    pub updated_at: Timestamp,
    /// Past this instant a top-up still pending is given up (its intent canceled if the
    /// provider allows, the top-up failed); a payment succeeding later is refunded.
    pub expires_at: Timestamp,
    /// Bumped by every change; the store's compare-and-set token.
    pub version: u64,
}

impl TopUp {
    /// The same top-up, one version later, at `now`.
    pub fn next(&self, now: Timestamp) -> Self {
        Self {
            updated_at: now,
            version: self.version + 1,
            ..self.clone()
        }
    }

    /// The ledger key of its credit, once it has an intent.
    pub fn credit_key(&self) -> Option<LedgerKey> {
        self.intent
            .as_deref()
            .map(|i| LedgerKey::new(LedgerPurpose::TopUpCredit, i))
    }
}

/// What [`TopUpStore::replace_topup`] did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Replaced {
    /// The new version is stored; with the credit entry when one was asked for (the first
    /// one written under its key, should it already exist).
    Done(TopUp, Option<Entry>),
    /// The stored version is not the expected one: nothing changed; here is the current.
    Changed(TopUp),
}

/// Storage of top-ups, next to the ledger they credit (the same backend: a credit and the
/// top-up's move to `succeeded` are one atomic step). Object-safe.
#[async_trait]
pub trait TopUpStore: Send + Sync {
    /// Stores `new` (version 0, `pending`) unless `new.user` already opened a top-up under
    /// `new.client_key`; answers the stored one and whether it is `new`. Atomic per (user,
    /// key): racing opens store one.
    async fn open_topup(&self, new: &TopUp) -> Result<(TopUp, bool)>;

    /// The top-up `id` of `user`, if any.
    async fn topup(&self, user: &str, id: Uuid) -> Result<Option<TopUp>>;

    /// Replaces `expected` by `next` if the stored version is still `expected.version`;
    /// with `credit`, appends that ledger credit (kind `Charge`, `next.amount`, reference
    /// the top-up id) in the same atomic step. A ledger refusal (balance limit, currency)
    /// changes nothing and is the error.
    async fn replace_topup(
        &self,
        expected: &TopUp,
        next: &TopUp,
        credit: Option<&LedgerKey>,
    ) -> Result<Replaced>;

    /// Up to `limit` top-ups still `pending`, of every user, oldest first (for the
    /// reconciler), `now` being the caller's clock. May include a few that just settled; the
    /// caller re-reads.
    async fn pending_topups(&self, limit: usize, now: Timestamp) -> Result<Vec<TopUp>>;
}
