//! The in-memory wallet: for tests and the single-process demo.

use std::collections::HashMap;

use async_trait::async_trait;
use parking_lot::Mutex;
use ticket_core::Timestamp;
use ticket_core::model::money::{Currency, Money};
use uuid::Uuid;

use super::{
    Entry, EntryKind, LedgerKey, Replaced, Request, Result, Snapshot, Stored, TopUp, TopUpStatus,
    TopUpStore, WalletError, WalletStore, check_user, replay,
};

/// Wallets and top-ups in this process's memory, behind one mutex: every change
/// (idempotency lookup, checks, ledger append and balance update, a top-up's move with its
/// credit) happens under the lock, so it is atomic and racing calls see each other.
/// Nothing survives the process, and other processes do not see it: use
/// [`super::RedisWallet`] or [`super::PgWallet`] for several servers.
#[derive(Debug, Default)]
pub struct MemoryWallet {
    book: Mutex<Book>,
}

#[derive(Debug, Default)]
struct Book {
    wallets: HashMap<String, Wallet>,
    topups: HashMap<Uuid, TopUp>,
    /// (user, client key) → top-up id.
    topup_keys: HashMap<(String, String), Uuid>,
}

#[derive(Debug)]
struct Wallet {
    currency: Currency,
    balance: i64,
    /// Oldest first.
    entries: Vec<Entry>,
    /// Idempotency key → (index in `entries`, fingerprint).
    keys: HashMap<String, (usize, String)>,
}

impl MemoryWallet {
    /// An empty set of wallets.
    pub fn new() -> Self {
        Self::default()
    }
}

impl Book {
    /// [`WalletStore::post`] under the lock.
    fn post(&mut self, req: &Request<'_>, now: Timestamp) -> Result<Entry> {
        let (user, key) = (req.user, req.key.as_str());
        if let Some(w) = self.wallets.get(user) {
            if let Some((i, fp)) = w.keys.get(key) {
                let first = w.entries.get(*i).cloned().ok_or_else(|| {
                    WalletError::Unavailable("idempotency index out of range".into())
                })?;
                return replay(
                    Stored {
                        e: first,
                        fp: fp.clone(),
                    },
                    req,
                );
            }
            if let Some(e) = req.mismatch(w.currency) {
                return Err(e);
            }
        }
        let (balance, currency) = self
            .wallets
            .get(user)
            .map_or((0, req.amount.currency), |w| (w.balance, w.currency));
        if let Some(e) = req
            .short(balance, currency)
            .or_else(|| req.over_limit(balance, currency))
        {
            return Err(e);
        }
        let entry = req.entry(now);
        let w = self
            .wallets
            .entry(user.to_owned())
            .or_insert_with(|| Wallet {
                currency,
                balance: 0,
                entries: Vec::new(),
                keys: HashMap::new(),
            });
        w.balance += req.delta();
        w.keys
            .insert(key.to_owned(), (w.entries.len(), req.fingerprint()));
        w.entries.push(entry.clone());
        Ok(entry)
    }
}

#[async_trait]
impl WalletStore for MemoryWallet {
    async fn post(
        &self,
        kind: EntryKind,
        user: &str,
        key: &LedgerKey,
        amount: Money,
        reference: &str,
        now: Timestamp,
    ) -> Result<Entry> {
        let req = Request::new(kind, user, key, amount, reference)?;
        self.book.lock().post(&req, now)
    }

    async fn entry_by_key(&self, user: &str, key: &LedgerKey) -> Result<Option<Entry>> {
        check_user(user)?;
        let book = self.book.lock();
        Ok(book.wallets.get(user).and_then(|w| {
            w.keys
                .get(key.as_str())
                .and_then(|(i, _)| w.entries.get(*i).cloned())
        }))
    }

    async fn snapshot(&self, user: &str, limit: usize) -> Result<Snapshot> {
        check_user(user)?;
        let book = self.book.lock();
        Ok(match book.wallets.get(user) {
            None => Snapshot {
                balance: None,
                entries: Vec::new(),
                entry_count: 0,
            },
            Some(w) => Snapshot {
                balance: Some(Money {
                    amount_minor: w.balance,
                    currency: w.currency,
                }),
                entries: w.entries.iter().rev().take(limit).cloned().collect(),
                entry_count: w.entries.len() as u64,
            },
        })
    }
}

#[async_trait]
impl TopUpStore for MemoryWallet {
    async fn open_topup(&self, new: &TopUp) -> Result<(TopUp, bool)> {
        check_user(&new.user)?;
        let mut book = self.book.lock();
        let key = (new.user.clone(), new.client_key.clone());
        if let Some(existing) = book.topup_keys.get(&key).and_then(|id| book.topups.get(id)) {
            return Ok((existing.clone(), false));
        }
        book.topup_keys.insert(key, new.id);
        book.topups.insert(new.id, new.clone());
        Ok((new.clone(), true))
    }

    async fn topup(&self, user: &str, id: Uuid) -> Result<Option<TopUp>> {
        check_user(user)?;
        let book = self.book.lock();
        Ok(book.topups.get(&id).filter(|t| t.user == user).cloned())
    }

    async fn replace_topup(
        &self,
        expected: &TopUp,
        next: &TopUp,
        credit: Option<&LedgerKey>,
    ) -> Result<Replaced> {
        let mut book = self.book.lock();
        let current = book
            .topups
            .get(&expected.id)
            .filter(|t| t.user == expected.user)
            .cloned()
            .ok_or_else(|| WalletError::InvalidRequest("no such top-up".into()))?;
        if current.version != expected.version {
            return Ok(Replaced::Changed(current));
        }
        let entry = match credit {
            Some(key) => {
                let reference = next.id.to_string();
                let req =
                    Request::new(EntryKind::Charge, &next.user, key, next.amount, &reference)?;
                Some(book.post(&req, next.updated_at)?)
            }
            None => None,
        };
        book.topups.insert(next.id, next.clone());
        Ok(Replaced::Done(next.clone(), entry))
    }

    async fn pending_topups(&self, limit: usize, _now: Timestamp) -> Result<Vec<TopUp>> {
        let book = self.book.lock();
        let mut pending: Vec<TopUp> = book
            .topups
            .values()
            .filter(|t| t.status == TopUpStatus::Pending)
            .cloned()
            .collect();
        pending.sort_by_key(|t| (t.created_at, t.id));
        pending.truncate(limit);
        Ok(pending)
    }
}
