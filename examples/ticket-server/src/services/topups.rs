//! The top-up service: money enters a wallet only through a card payment that succeeded.
//!
//! [`TopUps::start`] opens a `pending` [`TopUp`] under the client's `Idempotency-Key` (a
//! repeat answers the same top-up and pays nothing more), creates the provider's payment
//! intent under a key derived from the top-up id (so a repeat, or two processes, never make
//! a second one), tagged with [`TOPUP_METADATA_KEY`] and [`TOPUP_USER_METADATA_KEY`], and
//! confirms it. Three paths then report the intent, in any order and as often as they like:
//! the confirmation's answer, the provider's signed webhook ([`TopUps::apply_event`]) and the
//! reconciler ([`TopUps::reconcile`], which polls pending top-ups). Each goes through
//! [`TopUps::apply`], which decides from the top-up and the intent alone:
//!
//! | top-up | intent | does |
//! |---|---|---|
//! | pending | succeeded (same amount) | `succeeded` + ledger credit, one atomic step |
//! | pending | failed / canceled | `failed`, nothing credited |
//! | pending | requires confirmation / processing | records the intent; waits |
//! | failed | succeeded | refunds the payment at the provider (a late success) |
//! | succeeded | anything | nothing |
//!
//! The credit's ledger key is [`LedgerPurpose::TopUpCredit`] of the intent id, and the move
//! out of `pending` is a compare-and-set, so a payment is credited **exactly once** however
//! many reports arrive. A top-up still pending at [`TopUp::expires_at`] is given up by the
//! reconciler: its intent canceled where the provider allows, the top-up failed; should the
//! payment succeed later after all, it is refunded, never credited.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use serde::Serialize;
use ticket_core::gateway::{
    GatewayError, IntentId, IntentStatus, NewIntent, PaymentEvent, PaymentGateway, PaymentIntent,
    RefundRequest,
};
use ticket_core::model::money::{Currency, Money};
use ticket_core::{Clock, Timestamp};
use uuid::Uuid;

use crate::stores::wallet::{
    LedgerKey, LedgerPurpose, MAX_AMOUNT_MINOR, Replaced, TopUp, TopUpStatus, TopUpStore,
    WalletError,
};

/// The intent metadata naming the top-up an intent pays for.
pub const TOPUP_METADATA_KEY: &str = "ticketrush_wallet_topup";
/// The intent metadata naming the wallet's owner.
pub const TOPUP_USER_METADATA_KEY: &str = "ticketrush_wallet_user";

/// How long a top-up request waits for the provider's confirmation before answering
/// `pending` (the confirmation goes on in the background).
pub const CONFIRM_WAIT: Duration = Duration::from_secs(1);

/// What a top-up call can fail with.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum TopUpError {
    /// The wallet refused or could not be reached.
    #[error(transparent)]
    Wallet(#[from] WalletError),
    /// The payment provider refused or could not be reached; the top-up is unchanged.
    #[error(transparent)]
    Payment(#[from] GatewayError),
    /// The client's key already opened a top-up of another amount or card.
    #[error("idempotency key reused for a different top-up")]
    KeyReused,
}

/// What one report of an intent did to its top-up.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "outcome", rename_all = "snake_case")]
pub enum TopUpOutcome {
    /// The top-up succeeded and the wallet was credited (now).
    Credited {
        /// The top-up.
        topup: Uuid,
    },
    /// The top-up failed; nothing was credited.
    Failed {
        /// The top-up.
        topup: Uuid,
    },
    /// A payment that succeeded after its top-up was given up was refunded.
    Refunded {
        /// The top-up.
        topup: Uuid,
    },
    /// Nothing to do (a repeat, a stale or intermediate report).
    Unchanged {
        /// The top-up.
        topup: Uuid,
    },
    /// Not about a known top-up.
    Ignored {
        /// Why.
        reason: String,
    },
}

/// The top-up service; see the module docs. Cheap to clone.
#[derive(Clone)]
pub struct TopUps {
    store: Arc<dyn TopUpStore>,
    gateway: Arc<dyn PaymentGateway>,
    clock: Arc<dyn Clock>,
    currency: Currency,
    timeout: Duration,
}

impl std::fmt::Debug for TopUps {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TopUps")
            .field("timeout", &self.timeout)
            .finish_non_exhaustive()
    }
}

/// The decision of [`TopUps::apply`] for one top-up and one report of its intent.
enum Step {
    /// Replace the top-up by this one (crediting under the key, if any).
    Replace(Box<TopUp>, Option<LedgerKey>),
    /// Refund the (late) payment at the provider.
    RefundLate,
    /// Nothing.
    Nothing,
}

fn decide(t: &TopUp, intent: &PaymentIntent, now: Timestamp) -> Step {
    let id = intent.id.as_str();
    if t.intent.as_deref().is_some_and(|mine| mine != id) {
        return Step::Nothing;
    }
    let with_intent = |status: TopUpStatus, failure: Option<String>| {
        let mut next = t.next(now);
        next.intent = Some(id.to_owned());
        next.status = status;
        next.failure = failure;
        next
    };
    let same_amount = intent.amount == t.amount;
    match (t.status, intent.status) {
        (TopUpStatus::Pending, IntentStatus::Succeeded) if same_amount => Step::Replace(
            Box::new(with_intent(TopUpStatus::Succeeded, None)),
            Some(LedgerKey::new(LedgerPurpose::TopUpCredit, id)),
        ),
        (TopUpStatus::Pending, IntentStatus::Succeeded) => Step::Replace(
            Box::new(with_intent(
                TopUpStatus::Failed,
                Some("amount_mismatch".into()),
            )),
            None,
        ),
        (TopUpStatus::Pending, IntentStatus::Failed) => {
            let code = intent
                .failure
                .as_ref()
                .map_or("payment_failed", |f| f.code.as_str());
            Step::Replace(
                Box::new(with_intent(TopUpStatus::Failed, Some(code.into()))),
                None,
            )
        }
        (TopUpStatus::Pending, IntentStatus::Canceled) => Step::Replace(
            Box::new(with_intent(TopUpStatus::Failed, Some("canceled".into()))),
            None,
        ),
        (TopUpStatus::Pending, _) if t.intent.is_none() => {
            Step::Replace(Box::new(with_intent(TopUpStatus::Pending, None)), None)
        }
        (TopUpStatus::Failed, IntentStatus::Succeeded) if !intent.fully_refunded() => {
            Step::RefundLate
        }
        _ => Step::Nothing,
    }
}

impl TopUps {
    /// Top-ups kept in `store` (the wallet's backend), paid through the card provider
    /// `gateway`, in `currency`, given up `timeout` after they open.
    pub fn new(
        store: Arc<dyn TopUpStore>,
        gateway: Arc<dyn PaymentGateway>,
        clock: Arc<dyn Clock>,
        currency: Currency,
        timeout: Duration,
    ) -> Self {
        Self {
            store,
            gateway,
            clock,
            currency,
            timeout,
        }
    }

    /// Opens (or, for a repeated `client_key`, finds) `user`'s top-up of `amount_minor` paid
    /// with `card`, and drives it as far as the provider answers within [`CONFIRM_WAIT`].
    /// The wallet is credited only once the payment succeeded; see the module docs.
    pub async fn start(
        &self,
        user: &str,
        client_key: &str,
        amount_minor: i64,
        card: &str,
    ) -> Result<TopUp, TopUpError> {
        if !(1..=MAX_AMOUNT_MINOR).contains(&amount_minor) {
            return Err(WalletError::InvalidAmount {
                amount_minor,
                max: MAX_AMOUNT_MINOR,
            }
            .into());
        }
        let amount = Money {
            amount_minor,
            currency: self.currency,
        };
        let now = self.clock.now();
        let last4 = card.get(card.len().saturating_sub(4)..).unwrap_or_default();
        let fresh = TopUp {
            id: Uuid::now_v7(),
            user: user.to_owned(),
            client_key: client_key.to_owned(),
            amount,
            card_last4: last4.to_owned(),
            status: TopUpStatus::Pending,
            intent: None,
            failure: None,
            created_at: now,
            updated_at: now,
            expires_at: now.plus(self.timeout),
            version: 0,
        };
        let (topup, created) = self.store.open_topup(&fresh).await?;
        if !created && (topup.amount != amount || topup.card_last4 != last4) {
            return Err(TopUpError::KeyReused);
        }
        if topup.status != TopUpStatus::Pending {
            return Ok(topup);
        }
        let Some(intent) = &topup.intent else {
            return self.create_and_confirm(topup, card).await;
        };
        // A repeat of a started top-up: poll, and confirm one whose confirmation was lost.
        let intent = self
            .gateway
            .get_intent(&IntentId::new(intent.clone())?)
            .await?;
        let topup = self.apply(topup, &intent).await?.0;
        if intent.status == IntentStatus::RequiresConfirmation && now < topup.expires_at {
            return self.confirm(topup, intent.id).await;
        }
        Ok(topup)
    }

    async fn create_and_confirm(&self, topup: TopUp, card: &str) -> Result<TopUp, TopUpError> {
        let created = self
            .gateway
            .create_intent(NewIntent {
                amount: topup.amount,
                payment_method: card.to_owned(),
                // a top-up credits the wallet once paid: nothing to confirm before capture
                capture_method: ticket_core::gateway::CaptureMethod::Automatic,
                metadata: BTreeMap::from([
                    (TOPUP_METADATA_KEY.to_owned(), topup.id.to_string()),
                    (TOPUP_USER_METADATA_KEY.to_owned(), topup.user.clone()),
                ]),
                idempotency_key: format!("topup_{}", topup.id),
            })
            .await;
        let intent = match created {
            Ok(intent) => intent,
            // The provider refused the card before any charge: the top-up fails.
            Err(GatewayError::Invalid(_)) => {
                return self.give_up(topup, "invalid_card").await;
            }
            // Unknown: the top-up stays pending (a repeat or the reconciler settles it).
            Err(e) if e.is_transient() => return Ok(topup),
            Err(e) => return Err(e.into()),
        };
        let topup = self.apply(topup, &intent).await?.0;
        self.confirm(topup, intent.id).await
    }

    /// Confirms `intent` in a task of its own, reports its answer, and waits for it at most
    /// [`CONFIRM_WAIT`]; answers the top-up as it then stands.
    async fn confirm(&self, topup: TopUp, intent: IntentId) -> Result<TopUp, TopUpError> {
        let this = self.clone();
        let (user, id) = (topup.user.clone(), topup.id);
        let task = tokio::spawn(async move {
            match this.gateway.confirm_intent(&intent).await {
                Ok(answer) => {
                    if let Some(t) = this.store.topup(&user, id).await? {
                        this.apply(t, &answer).await?;
                    }
                }
                // No answer (a timeout): the webhook or the reconciler settles it.
                Err(e) => tracing::info!(%intent, "top-up confirmation: {e}"),
            }
            Ok::<_, TopUpError>(())
        });
        match tokio::time::timeout(CONFIRM_WAIT, task).await {
            Ok(Ok(Err(e))) => tracing::warn!(topup = %topup.id, "top-up settlement: {e}"),
            Ok(Err(e)) => tracing::warn!(topup = %topup.id, "top-up confirmation task: {e}"),
            Ok(Ok(Ok(()))) | Err(_) => {}
        }
        Ok(self
            .store
            .topup(&topup.user, topup.id)
            .await?
            .unwrap_or(topup))
    }

    /// `user`'s top-up `id`; a pending one is first brought up to date with its intent.
    pub async fn get(&self, user: &str, id: Uuid) -> Result<Option<TopUp>, TopUpError> {
        let Some(topup) = self.store.topup(user, id).await? else {
            return Ok(None);
        };
        match (&topup.status, &topup.intent) {
            (TopUpStatus::Pending, Some(intent)) => {
                let polled = match self
                    .gateway
                    .get_intent(&IntentId::new(intent.clone())?)
                    .await
                {
                    Ok(intent) => self.apply(topup.clone(), &intent).await.map(|(t, _)| t),
                    Err(e) => Err(e.into()),
                };
                // A failed poll answers the top-up as stored; the reconciler goes on.
                Ok(Some(polled.unwrap_or_else(|e| {
                    tracing::info!(topup = %id, "top-up poll: {e}");
                    topup
                })))
            }
            _ => Ok(Some(topup)),
        }
    }

    /// Applies a verified provider event (the webhook) to the top-up its intent names.
    pub async fn apply_event(&self, event: &PaymentEvent) -> Result<TopUpOutcome, TopUpError> {
        let meta = &event.intent.metadata;
        let (Some(id), Some(user)) = (
            meta.get(TOPUP_METADATA_KEY).and_then(|i| i.parse().ok()),
            meta.get(TOPUP_USER_METADATA_KEY),
        ) else {
            return Ok(TopUpOutcome::Ignored {
                reason: "not a top-up".into(),
            });
        };
        match self.store.topup(user, id).await? {
            Some(topup) => Ok(self.apply(topup, &event.intent).await?.1),
            None => Ok(TopUpOutcome::Ignored {
                reason: "unknown top-up".into(),
            }),
        }
    }

    /// Applies one report of `intent` to `topup` (see the module's table); answers the
    /// top-up as stored after it, and what it did. Safe to repeat and to race.
    pub async fn apply(
        &self,
        mut topup: TopUp,
        intent: &PaymentIntent,
    ) -> Result<(TopUp, TopUpOutcome), TopUpError> {
        for _ in 0..8 {
            let (next, credit) = match decide(&topup, intent, self.clock.now()) {
                Step::Nothing => {
                    let id = topup.id;
                    return Ok((topup, TopUpOutcome::Unchanged { topup: id }));
                }
                Step::RefundLate => {
                    self.refund_late(&topup, &intent.id).await?;
                    let id = topup.id;
                    return Ok((topup, TopUpOutcome::Refunded { topup: id }));
                }
                Step::Replace(next, credit) => (*next, credit),
            };
            match self
                .store
                .replace_topup(&topup, &next, credit.as_ref())
                .await
            {
                Ok(Replaced::Done(t, _)) => {
                    let outcome = match t.status {
                        TopUpStatus::Succeeded => TopUpOutcome::Credited { topup: t.id },
                        TopUpStatus::Failed => TopUpOutcome::Failed { topup: t.id },
                        TopUpStatus::Pending => TopUpOutcome::Unchanged { topup: t.id },
                    };
                    if t.status == TopUpStatus::Failed && intent.status == IntentStatus::Succeeded {
                        self.refund_late(&t, &intent.id).await?;
                    }
                    return Ok((t, outcome));
                }
                Ok(Replaced::Changed(current)) => topup = current,
                // The ledger refused the credit (balance limit, currency): nothing was
                // credited; the top-up fails and the payment goes back.
                Err(
                    e @ (WalletError::BalanceLimit { .. } | WalletError::CurrencyMismatch { .. }),
                ) => {
                    tracing::warn!(topup = %topup.id, "top-up not credited: {e}");
                    let failed = self.give_up(topup, "not_credited").await?;
                    self.refund_late(&failed, &intent.id).await?;
                    let id = failed.id;
                    return Ok((failed, TopUpOutcome::Refunded { topup: id }));
                }
                Err(e) => return Err(e.into()),
            }
        }
        Err(WalletError::Unavailable("top-up kept changing".into()).into())
    }

    /// Moves a pending top-up to `failed` with `code` (whatever its intent says); answers it
    /// as stored after (it may have settled otherwise meanwhile).
    async fn give_up(&self, mut topup: TopUp, code: &str) -> Result<TopUp, TopUpError> {
        for _ in 0..8 {
            if topup.status != TopUpStatus::Pending {
                return Ok(topup);
            }
            let mut next = topup.next(self.clock.now());
            next.status = TopUpStatus::Failed;
            next.failure = Some(code.to_owned());
            match self.store.replace_topup(&topup, &next, None).await? {
                Replaced::Done(t, _) => return Ok(t),
                Replaced::Changed(current) => topup = current,
            }
        }
        Err(WalletError::Unavailable("top-up kept changing".into()).into())
    }

    /// Returns a payment whose top-up failed (once: the refund's key is the intent's).
    async fn refund_late(&self, topup: &TopUp, intent: &IntentId) -> Result<(), TopUpError> {
        tracing::warn!(topup = %topup.id, %intent, "refunding a payment of a failed top-up");
        self.gateway
            .refund(RefundRequest {
                intent: intent.clone(),
                amount_minor: None,
                reason: format!("wallet top-up {} failed", topup.id),
                idempotency_key: format!("topup_refund_{intent}"),
            })
            .await?;
        Ok(())
    }

    /// One round of the reconciler: up to `limit` pending top-ups, oldest first, are polled
    /// at the provider and settled; those past [`TopUp::expires_at`] are given up (intent
    /// canceled where possible, top-up failed). Answers how many left `pending`.
    pub async fn reconcile(&self, limit: usize) -> Result<usize, TopUpError> {
        let now = self.clock.now();
        let mut settled = 0;
        for topup in self.store.pending_topups(limit, now).await? {
            let (id, expired) = (topup.id, now >= topup.expires_at);
            match self.reconcile_one(topup, expired).await {
                Ok(t) if t.status != TopUpStatus::Pending => settled += 1,
                Ok(_) => {}
                Err(e) => tracing::warn!(topup = %id, "top-up reconciliation: {e}"),
            }
        }
        Ok(settled)
    }

    async fn reconcile_one(&self, topup: TopUp, expired: bool) -> Result<TopUp, TopUpError> {
        let Some(intent) = topup.intent.clone() else {
            // No intent recorded: nothing can have been charged that is not refunded later.
            return if expired {
                self.give_up(topup, "abandoned").await
            } else {
                Ok(topup)
            };
        };
        let intent = IntentId::new(intent)?;
        let current = match self.gateway.get_intent(&intent).await {
            Ok(current) => current,
            Err(GatewayError::NotFound(_)) if expired => {
                return self.give_up(topup, "payment_not_found").await;
            }
            Err(e) => return Err(e.into()),
        };
        let topup = self.apply(topup, &current).await?.0;
        if topup.status != TopUpStatus::Pending || !expired {
            return Ok(topup);
        }
        // Given up: cancel what the provider lets us; a charge landing later is refunded.
        match self.gateway.cancel_intent(&intent).await {
            Ok(canceled) => Ok(self.apply(topup, &canceled).await?.0),
            Err(e) => {
                tracing::info!(%intent, "top-up timed out, cancel refused: {e}");
                self.give_up(topup, "timeout").await
            }
        }
    }
}
