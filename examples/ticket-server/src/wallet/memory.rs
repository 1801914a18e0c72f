//! The in-memory wallet: for tests and the single-process demo.

use std::collections::HashMap;

use async_trait::async_trait;
use parking_lot::Mutex;
use ticket_core::Timestamp;
use ticket_core::model::money::{Currency, Money};

use super::{Entry, EntryKind, Request, Result, Snapshot, Stored, WalletStore, check_user, replay};

/// Wallets in this process's memory, behind one mutex: every change (idempotency lookup,
/// checks, ledger append and balance update) happens under the lock, so it is atomic and
/// racing calls see each other. Nothing survives the process, and other processes do not
/// see it: use [`super::RedisWallet`] or [`super::PgWallet`] for several servers.
#[derive(Debug, Default)]
pub struct MemoryWallet {
    wallets: Mutex<HashMap<String, Wallet>>,
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

#[async_trait]
impl WalletStore for MemoryWallet {
    async fn post(
        &self,
        kind: EntryKind,
        user: &str,
        key: &str,
        amount: Money,
        reference: &str,
        now: Timestamp,
    ) -> Result<Entry> {
        let req = Request::new(kind, user, key, amount, reference)?;
        let mut wallets = self.wallets.lock();
        if let Some(w) = wallets.get(user) {
            if let Some((i, fp)) = w.keys.get(key) {
                let first = w.entries.get(*i).cloned().ok_or_else(|| {
                    super::WalletError::Unavailable("idempotency index out of range".into())
                })?;
                return replay(
                    Stored {
                        e: first,
                        fp: fp.clone(),
                    },
                    &req,
                );
            }
            if let Some(e) = req.mismatch(w.currency) {
                return Err(e);
            }
        }
        let (balance, currency) = wallets
            .get(user)
            .map_or((0, amount.currency), |w| (w.balance, w.currency));
        if let Some(e) = req
            .short(balance, currency)
            .or_else(|| req.over_limit(balance, currency))
        {
            return Err(e);
        }
        let entry = req.entry(now);
        let w = wallets.entry(user.to_owned()).or_insert_with(|| Wallet {
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

    async fn entry_by_key(&self, user: &str, key: &str) -> Result<Option<Entry>> {
        check_user(user)?;
        let wallets = self.wallets.lock();
        Ok(wallets.get(user).and_then(|w| {
            w.keys
                .get(key)
                .and_then(|(i, _)| w.entries.get(*i).cloned())
        }))
    }

    async fn snapshot(&self, user: &str, limit: usize) -> Result<Snapshot> {
        check_user(user)?;
        let wallets = self.wallets.lock();
        Ok(match wallets.get(user) {
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
