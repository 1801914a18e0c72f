//! The buyers' wallet: an append-only ledger of charges, payments and refunds per user.
//!
//! A user's balance is the sum of their ledger and nothing else: every change is one new
//! [`Entry`], written in the same atomic step as the balance counter the backend keeps next
//! to it, and entries are never edited or deleted. Three backends implement [`WalletStore`]:
//!
//! | backend | atomicity |
//! |---|---|
//! | [`MemoryWallet`] | one mutex over all wallets (one process only: for tests and the demo) |
//! | [`RedisWallet`] | one Lua script per change: idempotency lookup, currency and funds checks, ledger `LPUSH` and balance `HINCRBY` run as one atomic step on the server |
//! | [`PgWallet`] | one transaction per change holding the user's account row lock (`SELECT … FOR UPDATE`); `CHECK (balance_minor >= 0)`, `UNIQUE (user_id, idempotency_key)`, a foreign key pinning each entry's currency to its wallet's, and triggers that refuse `UPDATE`/`DELETE`/`TRUNCATE` on the ledger |
//!
//! With Redis or PostgreSQL, everything lives in the shared service, so several server
//! processes agree on every balance.
//!
//! Money enters a wallet only as the credit of a [`TopUp`] whose card payment succeeded
//! ([`crate::services::topups::TopUps`] drives it; each backend also implements [`TopUpStore`], so a top-up's move to
//! `succeeded` and its credit are one atomic step).
//!
//! Rules every backend follows (the shared tests in `tests/wallet.rs` check them):
//!
//! - **Amounts**: every entry moves between 1 and [`MAX_AMOUNT_MINOR`] minor units;
//!   anything else is [`WalletError::InvalidAmount`] and changes nothing. A credit that would
//!   take the balance above [`MAX_BALANCE_MINOR`] is [`WalletError::BalanceLimit`].
//! - **One currency per wallet**: the first entry fixes it; another currency is
//!   [`WalletError::CurrencyMismatch`] and changes nothing.
//! - **Idempotency per (user, key)**: one key namespace per user, shared by charges,
//!   payments and refunds. Keys are [`LedgerKey`]s, `sys:<purpose>:<id>`, made by the
//!   server only: no client-sent text can name a ledger entry (see [`ledger_key`]).
//!   Repeating a request with the same key returns the entry the first
//!   one wrote (no second credit or debit), even when racing; the same key with another
//!   request (kind, amount, currency or reference) is [`WalletError::KeyReused`]. A refused
//!   request writes nothing, so its key stays free for a retry.
//! - **No overdraft**: a payment larger than the balance is
//!   [`WalletError::InsufficientFunds`] and writes nothing; racing payments can never take
//!   the balance below zero.
//! - **Unknown outcomes**: [`WalletError::Unavailable`] means the backend could not be
//!   reached or did not answer; the change may or may not have happened. Retrying with the
//!   same idempotency key is always safe.

pub mod ledger_key;
mod memory;
mod pg;
mod redis;
mod topup;
mod topup_pg;
mod topup_redis;

use std::fmt;

use async_trait::async_trait;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use ticket_core::Timestamp;
use ticket_core::model::money::{Currency, Money};
use uuid::Uuid;

pub use self::redis::{RedisWallet, RedisWalletConfig};
pub use ledger_key::{LedgerKey, LedgerPurpose};
pub use memory::MemoryWallet;
pub use pg::{PgWallet, PgWalletConfig};
pub use topup::{Replaced, TopUp, TopUpStatus, TopUpStore};

/// The largest amount one entry (charge, payment or refund) may move, in minor units:
/// 10 000 000 (100 000.00 in a two-decimal currency, 10 000 000 KRW).
pub const MAX_AMOUNT_MINOR: i64 = 10_000_000;

/// The largest balance a wallet may hold, in minor units (10^15). Kept well below 2^53 so
/// every backend computes with it exactly (Redis Lua numbers are doubles).
pub const MAX_BALANCE_MINOR: i64 = 1_000_000_000_000_000;

/// The longest user id, idempotency key and reference accepted, in bytes.
pub const MAX_TEXT_LEN: usize = 256;

/// What a [`WalletStore`] call can fail with. Every refusal except `Unavailable` leaves the
/// wallet exactly as it was.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum WalletError {
    /// The payment needs more than the wallet holds; nothing was written.
    #[error("insufficient funds: balance {balance:?}, needed {needed:?}")]
    InsufficientFunds {
        /// The balance when the payment was refused.
        balance: Money,
        /// The payment's amount.
        needed: Money,
    },
    /// The amount is not between 1 and `max` minor units; nothing was written.
    #[error("invalid amount {amount_minor}: must be between 1 and {max} minor units")]
    InvalidAmount {
        /// The amount refused.
        amount_minor: i64,
        /// The cap, [`MAX_AMOUNT_MINOR`].
        max: i64,
    },
    /// The wallet already holds another currency; nothing was written.
    #[error("currency mismatch: the wallet holds {wallet}, the request is in {requested}")]
    CurrencyMismatch {
        /// The wallet's currency (fixed by its first entry).
        wallet: Currency,
        /// The request's currency.
        requested: Currency,
    },
    /// The idempotency key was already used by this user for a different request; nothing
    /// was written.
    #[error("idempotency key reused for a different request")]
    KeyReused,
    /// The credit would take the balance above `max` minor units; nothing was written.
    #[error("balance limit: balance {balance:?} cannot grow above {max} minor units")]
    BalanceLimit {
        /// The balance when the credit was refused.
        balance: Money,
        /// The cap, [`MAX_BALANCE_MINOR`].
        max: i64,
    },
    /// The user id, idempotency key or reference is empty or too long (user and key must be
    /// 1..=[`MAX_TEXT_LEN`] bytes, the reference at most that); nothing was written.
    #[error("invalid request: {0}")]
    InvalidRequest(String),
    /// The backend failed or did not answer (or holds data this code cannot read); the
    /// outcome of a change is unknown. Retrying with the same idempotency key is safe.
    #[error("wallet storage unavailable: {0}")]
    Unavailable(String),
}

/// Result of every wallet operation.
pub type Result<T, E = WalletError> = std::result::Result<T, E>;

/// What an entry records.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum EntryKind {
    /// Money put into the wallet (positive amount).
    Charge,
    /// Money spent from the wallet at checkout (negative amount).
    Payment,
    /// Money given back to the wallet, e.g. for a cancelled reservation (positive amount).
    Refund,
}

impl EntryKind {
    /// The name stored by the backends: `CHARGE`, `PAYMENT` or `REFUND`.
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Charge => "CHARGE",
            Self::Payment => "PAYMENT",
            Self::Refund => "REFUND",
        }
    }

    /// Parses [`EntryKind::as_str`].
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "CHARGE" => Some(Self::Charge),
            "PAYMENT" => Some(Self::Payment),
            "REFUND" => Some(Self::Refund),
            _ => None,
        }
    }

    /// `true` for payments, the only kind that takes money out.
    pub const fn is_debit(self) -> bool {
        matches!(self, Self::Payment)
    }
}

impl fmt::Display for EntryKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One ledger line. Written once, never changed or removed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Entry {
    /// Unique id (UUIDv7 minted at `at`).
    pub id: Uuid,
    /// The wallet's owner.
    pub user: String,
    /// Charge, payment or refund.
    pub kind: EntryKind,
    /// Signed change of the balance in minor units: positive for charges and refunds,
    /// negative for payments; never zero, and its absolute value is at most
    /// [`MAX_AMOUNT_MINOR`].
    pub amount_minor: i64,
    /// The wallet's currency.
    pub currency: Currency,
    /// What the entry is for (a payment or hold id, a charge receipt; may be empty).
    pub reference: String,
    /// The [`LedgerKey`] the entry was written under (unique per user).
    pub idempotency_key: String,
    /// When it was written (the `now` of the call).
    pub at: Timestamp,
}

impl Entry {
    /// The entry's absolute amount as money.
    pub fn money(&self) -> Money {
        Money {
            amount_minor: self.amount_minor.saturating_abs(),
            currency: self.currency,
        }
    }
}

/// A consistent view of one wallet: the balance and the newest entries, read at one instant.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Snapshot {
    /// The balance (the sum of every entry), or `None` while the wallet has no entry (and
    /// so no currency yet).
    pub balance: Option<Money>,
    /// The newest entries, newest first, at most the `limit` asked for.
    pub entries: Vec<Entry>,
    /// How many entries the wallet has in all.
    pub entry_count: u64,
}

/// A wallet backend: an append-only ledger per user and its balance, shared by every process
/// that uses the same backing service. Object-safe (`Arc<dyn WalletStore>`).
///
/// The guarantees of every method are the module's rules (see [`crate::stores::wallet`]).
#[async_trait]
pub trait WalletStore: Send + Sync {
    /// Appends one entry of `kind` for `amount` (its sign is set by `kind`) under the
    /// idempotency key `key`, atomically with the balance; see [`WalletStore::charge`],
    /// [`WalletStore::pay`] and [`WalletStore::refund`] for what each kind guarantees.
    async fn post(
        &self,
        kind: EntryKind,
        user: &str,
        key: &LedgerKey,
        amount: Money,
        reference: &str,
        now: Timestamp,
    ) -> Result<Entry>;

    /// The balance and the `limit` newest entries (newest first), read atomically: the
    /// balance always equals the sum of all the wallet's entries.
    async fn snapshot(&self, user: &str, limit: usize) -> Result<Snapshot>;

    /// The entry `user` wrote under idempotency key `key`, if any (a refused request wrote
    /// none). Lets a caller learn whether a payment whose answer it never got went through.
    async fn entry_by_key(&self, user: &str, key: &LedgerKey) -> Result<Option<Entry>>;

    /// Credits `amount` to `user`'s wallet. Idempotent per (user, key): a repeat returns the
    /// first entry and credits nothing.
    async fn charge(
        &self,
        user: &str,
        key: &LedgerKey,
        amount: Money,
        reference: &str,
        now: Timestamp,
    ) -> Result<Entry> {
        self.post(EntryKind::Charge, user, key, amount, reference, now)
            .await
    }

    /// Debits `amount` atomically: refused with [`WalletError::InsufficientFunds`], writing
    /// nothing, when the balance is short, so racing payments never take the balance below
    /// zero. Idempotent per (user, key): a repeat returns the first entry and debits nothing.
    async fn pay(
        &self,
        user: &str,
        key: &LedgerKey,
        amount: Money,
        reference: &str,
        now: Timestamp,
    ) -> Result<Entry> {
        self.post(EntryKind::Payment, user, key, amount, reference, now)
            .await
    }

    /// Credits `amount` back (a refund). Idempotent per (user, key). Whether a refund is
    /// owed is the caller's decision (e.g. a cancelled reservation's payment id as key).
    async fn refund(
        &self,
        user: &str,
        key: &LedgerKey,
        amount: Money,
        reference: &str,
        now: Timestamp,
    ) -> Result<Entry> {
        self.post(EntryKind::Refund, user, key, amount, reference, now)
            .await
    }

    /// The balance, or `None` while the wallet has no entry (zero, in no currency yet).
    async fn balance(&self, user: &str) -> Result<Option<Money>> {
        Ok(self.snapshot(user, 0).await?.balance)
    }

    /// The `limit` newest entries, newest first.
    async fn ledger(&self, user: &str, limit: usize) -> Result<Vec<Entry>> {
        Ok(self.snapshot(user, limit).await?.entries)
    }
}

/// A checked request, shared by the backends.
#[derive(Debug, Clone)]
pub(crate) struct Request<'a> {
    pub kind: EntryKind,
    pub user: &'a str,
    pub key: &'a LedgerKey,
    pub amount: Money,
    pub reference: &'a str,
}

impl<'a> Request<'a> {
    /// Validates the inputs every backend refuses the same way.
    pub(crate) fn new(
        kind: EntryKind,
        user: &'a str,
        key: &'a LedgerKey,
        amount: Money,
        reference: &'a str,
    ) -> Result<Self> {
        check_user(user)?;
        if key.as_str().len() > MAX_TEXT_LEN {
            return Err(WalletError::InvalidRequest(format!(
                "idempotency key must be at most {MAX_TEXT_LEN} bytes"
            )));
        }
        if reference.len() > MAX_TEXT_LEN {
            return Err(WalletError::InvalidRequest(format!(
                "reference must be at most {MAX_TEXT_LEN} bytes"
            )));
        }
        if amount.amount_minor <= 0 || amount.amount_minor > MAX_AMOUNT_MINOR {
            return Err(WalletError::InvalidAmount {
                amount_minor: amount.amount_minor,
                max: MAX_AMOUNT_MINOR,
            });
        }
        Ok(Self {
            kind,
            user,
            key,
            amount,
            reference,
        })
    }

    /// The signed change of the balance.
    pub(crate) fn delta(&self) -> i64 {
        if self.kind.is_debit() {
            -self.amount.amount_minor
        } else {
            self.amount.amount_minor
        }
    }

    /// A digest of everything that makes two requests "the same" for idempotency: kind,
    /// amount, currency and reference (user and key are the lookup itself).
    pub(crate) fn fingerprint(&self) -> String {
        let mut h = Sha256::new();
        for part in [
            self.kind.as_str(),
            &self.amount.amount_minor.to_string(),
            self.amount.currency.as_str(),
            self.reference,
        ] {
            h.update((part.len() as u64).to_be_bytes());
            h.update(part.as_bytes());
        }
        hex::encode(h.finalize())
    }

    /// The entry this request writes at `now`.
    pub(crate) fn entry(&self, now: Timestamp) -> Entry {
        Entry {
            id: uuid_v7_at(now),
            user: self.user.to_owned(),
            kind: self.kind,
            amount_minor: self.delta(),
            currency: self.amount.currency,
            reference: self.reference.to_owned(),
            idempotency_key: self.key.as_str().to_owned(),
            at: now,
        }
    }

    /// The refusal for a payment against `balance`, if it is short.
    pub(crate) fn short(&self, balance: i64, currency: Currency) -> Option<WalletError> {
        (self.kind.is_debit() && balance < self.amount.amount_minor).then_some(
            WalletError::InsufficientFunds {
                balance: Money {
                    amount_minor: balance,
                    currency,
                },
                needed: self.amount,
            },
        )
    }

    /// The refusal for a credit that would take `balance` above [`MAX_BALANCE_MINOR`].
    pub(crate) fn over_limit(&self, balance: i64, currency: Currency) -> Option<WalletError> {
        let over = balance
            .checked_add(self.delta())
            .is_none_or(|b| b > MAX_BALANCE_MINOR);
        (!self.kind.is_debit() && over).then_some(WalletError::BalanceLimit {
            balance: Money {
                amount_minor: balance,
                currency,
            },
            max: MAX_BALANCE_MINOR,
        })
    }

    /// The refusal for a request in another currency than the wallet's.
    pub(crate) fn mismatch(&self, wallet: Currency) -> Option<WalletError> {
        (wallet != self.amount.currency).then_some(WalletError::CurrencyMismatch {
            wallet,
            requested: self.amount.currency,
        })
    }
}

/// Validates a user id (1..=[`MAX_TEXT_LEN`] bytes).
pub(crate) fn check_user(user: &str) -> Result<()> {
    if user.is_empty() || user.len() > MAX_TEXT_LEN {
        return Err(WalletError::InvalidRequest(format!(
            "user id must be 1..={MAX_TEXT_LEN} bytes"
        )));
    }
    Ok(())
}

/// An entry as the backends that store documents keep it: the entry and its request's
/// fingerprint.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct Stored {
    /// The entry.
    pub e: Entry,
    /// [`Request::fingerprint`] of the request that wrote it.
    pub fp: String,
}

/// The answer to a repeated key: the first entry when the request is the same, else
/// [`WalletError::KeyReused`].
pub(crate) fn replay(stored: Stored, req: &Request<'_>) -> Result<Entry> {
    if stored.fp == req.fingerprint() {
        Ok(stored.e)
    } else {
        Err(WalletError::KeyReused)
    }
}

fn uuid_v7_at(at: Timestamp) -> Uuid {
    let ms = at.as_millis().max(0);
    let secs = u64::try_from(ms / 1000).unwrap_or(0);
    let nanos = u32::try_from((ms % 1000) * 1_000_000).unwrap_or(0);
    Uuid::new_v7(uuid::Timestamp::from_unix_time(secs, nanos, 0, 0))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn krw(n: i64) -> Money {
        Money {
            amount_minor: n,
            currency: Currency::new("KRW").unwrap(),
        }
    }

    #[test]
    fn requests_are_checked() {
        let k = LedgerKey::new(LedgerPurpose::CheckoutDebit, "k");
        let ok = Request::new(EntryKind::Payment, "u", &k, krw(5), "r").unwrap();
        assert_eq!(ok.delta(), -5);
        for bad in [0, -1, MAX_AMOUNT_MINOR + 1, i64::MIN] {
            assert!(matches!(
                Request::new(EntryKind::Charge, "u", &k, krw(bad), ""),
                Err(WalletError::InvalidAmount { .. })
            ));
        }
        let long = "x".repeat(MAX_TEXT_LEN + 1);
        let long_key = LedgerKey::new(LedgerPurpose::TopUpCredit, &long);
        assert!(Request::new(EntryKind::Charge, "", &k, krw(1), "").is_err());
        assert!(Request::new(EntryKind::Charge, "u", &long_key, krw(1), "").is_err());
        assert!(Request::new(EntryKind::Charge, &long, &k, krw(1), "").is_err());
        assert!(Request::new(EntryKind::Charge, "u", &k, krw(1), &long).is_err());
    }

    #[test]
    fn fingerprints_separate_requests() {
        let k = LedgerKey::new(LedgerPurpose::TopUpCredit, "k");
        let a = Request::new(EntryKind::Charge, "u", &k, krw(5), "ab").unwrap();
        let b = Request::new(EntryKind::Refund, "u", &k, krw(5), "ab").unwrap();
        let c = Request::new(EntryKind::Charge, "u", &k, krw(5), "a").unwrap();
        assert_ne!(a.fingerprint(), b.fingerprint());
        assert_ne!(a.fingerprint(), c.fingerprint());
        assert_eq!(a.fingerprint(), a.clone().fingerprint());
        assert!(a.over_limit(MAX_BALANCE_MINOR, krw(0).currency).is_some());
        assert!(a.over_limit(i64::MAX, krw(0).currency).is_some());
    }
}
