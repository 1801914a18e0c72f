//! Paying from the wallet, as a payment provider.
//!
//! [`WalletGateway`] implements the library's [`PaymentGateway`] over a [`WalletStore`], so
//! a wallet payment goes through the same checkout as a card one: the hold moves HELD →
//! PAYING → CONFIRMED (or PAYMENT_FAILED), the reconciler settles a checkout whose answer was
//! lost, a payment that lands after its hold ended is re-booked or refunded, and cancelling a
//! reservation refunds to the wallet. [`PaymentMethods`] puts it beside the card provider.
//!
//! It keeps no state of its own: an intent is `wallet_<hold id>`, its amount and payer are
//! the hold's, and whether it was paid is whether the payer's ledger holds the debit under
//! the server-made key [`LedgerPurpose::CheckoutDebit`] of the intent id (no client key can
//! name it: see [`crate::stores::wallet::ledger_key`]). So every server process sharing the wallet's backend
//! sees the same intents, and the guarantees are the ledger's:
//!
//! * **Charged at most once, and always charged**: the debit's key is derived from the
//!   intent id, so confirming again (a retried checkout, two servers) returns the first
//!   debit, and only this gateway can write an entry under it.
//! * **Refunded at most once**: a refund is whole or exactly the amount asked, and its key
//!   ([`LedgerPurpose::CheckoutRefund`]) is derived from the intent id, whatever key the
//!   caller gives.
//! * **Confirmation is synchronous**: the answer is `succeeded`, or `failed` with
//!   `insufficient_funds` / `currency_mismatch` (nothing debited); no webhook follows.
//! * **Cancel**: an intent never debited is canceled (nothing can be charged by a later
//!   confirmation, which checks that the hold still waits for this payment). A confirmation
//!   already past that check when the cancel lands still debits; the checkout then sees a
//!   payment for an ended hold and refunds it (the late-payment rule), so no money is kept
//!   for nothing.

use std::collections::BTreeMap;
use std::sync::Arc;

use async_trait::async_trait;
use ticket_core::gateway::{
    Capabilities, CaptureMethod, CaptureRequest, CheckoutSession, CheckoutSessionId, GatewayError,
    HOLD_METADATA_KEY, IntentId, IntentStatus, NewCheckoutSession, NewIntent, PaymentFailure,
    PaymentGateway, PaymentIntent, Refund, RefundRequest,
};
use ticket_core::model::hold::{Hold, HoldState};
use ticket_core::model::money::Money;
use ticket_core::store::Reservations;
use ticket_core::{Clock, Error, HoldId};

use crate::stores::wallet::{Entry, EntryKind, LedgerKey, LedgerPurpose, WalletError, WalletStore};

/// The payment method that selects the wallet in a checkout.
pub const WALLET_METHOD: &str = "wallet";

/// Every wallet intent id starts with this.
pub const WALLET_INTENT_PREFIX: &str = "wallet_";

/// The wallet as a payment provider; see the module docs for its guarantees.
#[derive(Clone)]
pub struct WalletGateway {
    wallet: Arc<dyn WalletStore>,
    reservations: Arc<dyn Reservations>,
    clock: Arc<dyn Clock>,
}

impl std::fmt::Debug for WalletGateway {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WalletGateway").finish_non_exhaustive()
    }
}

/// The wallet intent id of hold `hold`.
fn intent_id_of(hold: HoldId) -> String {
    format!("{WALLET_INTENT_PREFIX}{hold}")
}

/// The ledger key of the debit of intent `intent`.
fn debit_key(intent: &str) -> LedgerKey {
    LedgerKey::new(LedgerPurpose::CheckoutDebit, intent)
}

/// The ledger key of the (one, whole) refund of intent `intent`.
fn refund_key(intent: &str) -> LedgerKey {
    LedgerKey::new(LedgerPurpose::CheckoutRefund, intent)
}

fn unavailable(e: impl std::fmt::Display) -> GatewayError {
    GatewayError::Unavailable(e.to_string())
}

impl WalletGateway {
    /// Wallet payments for the holds in `reservations`, debited from `wallet`.
    pub fn new(
        wallet: Arc<dyn WalletStore>,
        reservations: Arc<dyn Reservations>,
        clock: Arc<dyn Clock>,
    ) -> Self {
        Self {
            wallet,
            reservations,
            clock,
        }
    }

    /// The hold an intent id names.
    async fn hold_of(&self, id: &IntentId) -> Result<Hold, GatewayError> {
        let hold: HoldId = id
            .as_str()
            .strip_prefix(WALLET_INTENT_PREFIX)
            .and_then(|h| h.parse().ok())
            .ok_or_else(|| GatewayError::NotFound(id.to_string()))?;
        match self.reservations.get(hold).await {
            Ok(h) => Ok(h),
            Err(Error::NotFound { .. }) => Err(GatewayError::NotFound(id.to_string())),
            Err(e) => Err(unavailable(e)),
        }
    }

    /// The intent as the ledger and the hold say it stands.
    async fn intent(&self, id: &IntentId, hold: &Hold) -> Result<PaymentIntent, GatewayError> {
        let payer = hold.user.as_str();
        let paid = self
            .wallet
            .entry_by_key(payer, &debit_key(id.as_str()))
            .await
            .map_err(unavailable)?
            .filter(|e| e.kind == EntryKind::Payment);
        let (status, amount_refunded, failure) = match &paid {
            Some(_) => {
                let refunded = self
                    .wallet
                    .entry_by_key(payer, &refund_key(id.as_str()))
                    .await
                    .map_err(unavailable)?;
                (
                    IntentStatus::Succeeded,
                    refunded.map_or(0, |r| r.amount_minor.saturating_abs()),
                    None,
                )
            }
            None if self.awaits(hold, id) => (IntentStatus::RequiresConfirmation, 0, None),
            None if hold.state == HoldState::PaymentFailed
                && hold.payment_ref.as_deref() == Some(id.as_str()) =>
            {
                (
                    IntentStatus::Failed,
                    0,
                    Some(PaymentFailure {
                        code: "not_paid".into(),
                        message: "the wallet payment did not go through".into(),
                    }),
                )
            }
            None => (IntentStatus::Canceled, 0, None),
        };
        Ok(self.shape(id, hold, status, amount_refunded, failure, paid.as_ref()))
    }

    /// Whether `hold` waits for payment `id` (so a confirmation may debit).
    fn awaits(&self, hold: &Hold, id: &IntentId) -> bool {
        hold.state == HoldState::Paying && hold.payment_ref.as_deref() == Some(id.as_str())
    }

    fn shape(
        &self,
        id: &IntentId,
        hold: &Hold,
        status: IntentStatus,
        amount_refunded: i64,
        failure: Option<PaymentFailure>,
        paid: Option<&Entry>,
    ) -> PaymentIntent {
        let amount = paid.map_or(hold.amount, Entry::money);
        PaymentIntent {
            id: id.clone(),
            amount,
            status,
            // the wallet charges at once
            capture_method: CaptureMethod::Automatic,
            amount_capturable: 0,
            amount_received: if status == IntentStatus::Succeeded {
                amount.amount_minor
            } else {
                0
            },
            amount_refunded,
            failure,
            metadata: BTreeMap::from([(HOLD_METADATA_KEY.to_owned(), hold.id.to_string())]),
            created_at: paid.map_or(hold.created_at, |e| e.at),
            authorization_expires_at: None,
            checkout_session: None,
        }
    }
}

#[async_trait]
impl PaymentGateway for WalletGateway {
    /// Names the intent of the hold in `metadata` (nothing is written): the payment method
    /// must be [`WALLET_METHOD`] and the amount the hold's.
    async fn create_intent(&self, req: NewIntent) -> Result<PaymentIntent, GatewayError> {
        if req.payment_method != WALLET_METHOD {
            return Err(GatewayError::Invalid(format!(
                "the wallet takes payment method `{WALLET_METHOD}`"
            )));
        }
        let hold: HoldId = req
            .metadata
            .get(HOLD_METADATA_KEY)
            .and_then(|h| h.parse().ok())
            .ok_or_else(|| GatewayError::Invalid("a wallet payment pays for a hold".into()))?;
        let id = IntentId::new(intent_id_of(hold))?;
        let hold = self.hold_of(&id).await?;
        if hold.amount != req.amount {
            return Err(GatewayError::Invalid(format!(
                "the amount {:?} is not the hold's {:?}",
                req.amount, hold.amount
            )));
        }
        self.intent(&id, &hold).await
    }

    /// Debits the hold's amount from its buyer's wallet (once per intent), if the hold
    /// still waits for this payment; otherwise answers the intent as it stands.
    async fn confirm_intent(&self, id: &IntentId) -> Result<PaymentIntent, GatewayError> {
        let hold = self.hold_of(id).await?;
        let current = self.intent(id, &hold).await?;
        if current.status != IntentStatus::RequiresConfirmation {
            return Ok(current);
        }
        let debit = self
            .wallet
            .pay(
                hold.user.as_str(),
                &debit_key(id.as_str()),
                hold.amount,
                &hold.id.to_string(),
                self.clock.now(),
            )
            .await;
        let failure = |code: &str, message: String| {
            Ok(self.shape(
                id,
                &hold,
                IntentStatus::Failed,
                0,
                Some(PaymentFailure {
                    code: code.to_owned(),
                    message,
                }),
                None,
            ))
        };
        match debit {
            Ok(entry) => Ok(self.shape(id, &hold, IntentStatus::Succeeded, 0, None, Some(&entry))),
            Err(e @ WalletError::InsufficientFunds { .. }) => {
                failure("insufficient_funds", e.to_string())
            }
            Err(e @ WalletError::CurrencyMismatch { .. }) => {
                failure("currency_mismatch", e.to_string())
            }
            Err(e @ WalletError::Unavailable(_)) => Err(unavailable(e)),
            Err(e) => Err(GatewayError::Invalid(e.to_string())),
        }
    }

    async fn get_intent(&self, id: &IntentId) -> Result<PaymentIntent, GatewayError> {
        let hold = self.hold_of(id).await?;
        self.intent(id, &hold).await
    }

    /// Cancels an intent never debited; a paid one is a [`GatewayError::Conflict`].
    async fn cancel_intent(&self, id: &IntentId) -> Result<PaymentIntent, GatewayError> {
        let hold = self.hold_of(id).await?;
        let current = self.intent(id, &hold).await?;
        match current.status {
            IntentStatus::Succeeded => Err(GatewayError::Conflict {
                action: "cancel".into(),
                status: current.status,
            }),
            _ => Ok(self.shape(id, &hold, IntentStatus::Canceled, 0, None, None)),
        }
    }

    /// Returns the payment to the wallet, once per intent (a repeat, under any key, returns
    /// the first refund): all of it, or exactly `amount_minor` (1 to the amount paid) for a
    /// partial refund (a cancellation whose fee is kept). A second refund of another amount
    /// is refused (the intent's one refund key is taken).
    async fn refund(&self, req: RefundRequest) -> Result<Refund, GatewayError> {
        let hold = self.hold_of(&req.intent).await?;
        let payer = hold.user.as_str();
        let Some(paid) = self
            .wallet
            .entry_by_key(payer, &debit_key(req.intent.as_str()))
            .await
            .map_err(unavailable)?
            .filter(|e| e.kind == EntryKind::Payment)
        else {
            let status = self.intent(&req.intent, &hold).await?.status;
            return Err(GatewayError::Conflict {
                action: "refund".into(),
                status,
            });
        };
        let paid_amount = paid.money();
        // A partial refund returns exactly what is asked (a cancellation's fee is kept); the
        // one refund per intent is still the only one (its key is the intent's).
        let amount = match req.amount_minor {
            None => paid_amount,
            Some(a) if a > 0 && a <= paid_amount.amount_minor => Money {
                amount_minor: a,
                currency: paid_amount.currency,
            },
            Some(a) => {
                return Err(GatewayError::Invalid(format!(
                    "a wallet refund is 1 to {} minor units, not {a}",
                    paid_amount.amount_minor
                )));
            }
        };
        let entry = self
            .wallet
            .refund(
                payer,
                &refund_key(req.intent.as_str()),
                amount,
                req.intent.as_str(),
                self.clock.now(),
            )
            .await
            .map_err(|e| match e {
                WalletError::Unavailable(_) => unavailable(e),
                other => GatewayError::Invalid(other.to_string()),
            })?;
        Ok(Refund {
            id: format!("wallet_refund_{}", entry.id),
            intent: req.intent,
            amount,
        })
    }
}

/// The payment methods of the server: the wallet ([`WALLET_METHOD`]) and the card provider
/// for everything else. Each call goes to the provider that owns the intent (wallet intents
/// are `wallet_…`), so the checkout, the reconciler and refunds need not know which it was.
///
/// What it offers beyond immediate charges is the card provider's (manual capture, hosted
/// checkout sessions, which are always the card provider's). The wallet charges at once
/// whatever capture method the checkout asks for: its intents are `succeeded` when
/// confirmed, never `requires_capture`, so nothing of theirs is ever captured or voided
/// (a void of a wallet intent is its cancel: nothing debited, nothing to release).
#[derive(Debug, Clone)]
pub struct PaymentMethods {
    card: Arc<dyn PaymentGateway>,
    wallet: WalletGateway,
}

impl PaymentMethods {
    /// Cards through `card`, and the wallet.
    pub fn new(card: Arc<dyn PaymentGateway>, wallet: WalletGateway) -> Self {
        Self { card, wallet }
    }

    fn by_intent(&self, id: &IntentId) -> &dyn PaymentGateway {
        if id.as_str().starts_with(WALLET_INTENT_PREFIX) {
            &self.wallet
        } else {
            &*self.card
        }
    }
}

#[async_trait]
impl PaymentGateway for PaymentMethods {
    async fn create_intent(&self, req: NewIntent) -> Result<PaymentIntent, GatewayError> {
        if req.payment_method == WALLET_METHOD {
            self.wallet.create_intent(req).await
        } else {
            self.card.create_intent(req).await
        }
    }

    async fn confirm_intent(&self, id: &IntentId) -> Result<PaymentIntent, GatewayError> {
        self.by_intent(id).confirm_intent(id).await
    }

    async fn get_intent(&self, id: &IntentId) -> Result<PaymentIntent, GatewayError> {
        self.by_intent(id).get_intent(id).await
    }

    async fn cancel_intent(&self, id: &IntentId) -> Result<PaymentIntent, GatewayError> {
        self.by_intent(id).cancel_intent(id).await
    }

    async fn refund(&self, req: RefundRequest) -> Result<Refund, GatewayError> {
        self.by_intent(&req.intent).refund(req).await
    }

    fn capabilities(&self) -> Capabilities {
        self.card.capabilities()
    }

    async fn capture(&self, req: CaptureRequest) -> Result<PaymentIntent, GatewayError> {
        self.by_intent(&req.intent).capture(req).await
    }

    async fn void(&self, id: &IntentId) -> Result<PaymentIntent, GatewayError> {
        self.by_intent(id).void(id).await
    }

    async fn create_checkout_session(
        &self,
        req: NewCheckoutSession,
    ) -> Result<CheckoutSession, GatewayError> {
        self.card.create_checkout_session(req).await
    }

    async fn get_checkout_session(
        &self,
        id: &CheckoutSessionId,
    ) -> Result<CheckoutSession, GatewayError> {
        self.card.get_checkout_session(id).await
    }

    async fn expire_checkout_session(
        &self,
        id: &CheckoutSessionId,
    ) -> Result<CheckoutSession, GatewayError> {
        self.card.expire_checkout_session(id).await
    }
}
