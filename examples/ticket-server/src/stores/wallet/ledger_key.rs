//! The idempotency keys of ledger entries: made by the server only.
//!
//! Every entry of the ledger is written by the server for a reason it names itself: the
//! debit of a wallet checkout, the refund of one, the credit of a paid top-up. Its
//! idempotency key is a [`LedgerKey`], `sys:<purpose>:<id>`, and [`LedgerKey`] is the only
//! way into [`super::WalletStore::post`]: no text a client sends (an `Idempotency-Key`
//! header, a body field) can become a ledger key, so no request can pre-empt or replay the
//! server's own entries. A client's `Idempotency-Key` deduplicates its *request* (a top-up
//! keeps it, see [`super::TopUp::client_key`]), never a ledger entry. The backends check the
//! prefix once more where they store keys (the Redis script refuses another one, PostgreSQL
//! has a `CHECK`).

use std::fmt;

/// What a server-made ledger entry is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum LedgerPurpose {
    /// The debit of a wallet checkout; the id is the wallet intent (`wallet_<hold id>`).
    CheckoutDebit,
    /// The (one, whole) refund of a wallet checkout; the id is the wallet intent.
    CheckoutRefund,
    /// The credit of a top-up paid by card; the id is the provider's payment intent.
    TopUpCredit,
}

impl LedgerPurpose {
    /// The purpose's segment of the key.
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::CheckoutDebit => "payment",
            Self::CheckoutRefund => "refund",
            Self::TopUpCredit => "topup",
        }
    }
}

/// An idempotency key of the ledger, `sys:<purpose>:<id>`; see the module docs.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct LedgerKey(String);

impl LedgerKey {
    /// The prefix of every ledger key (the backends check it where they store keys).
    pub const PREFIX: &'static str = "sys:";

    /// The key of the entry written for `purpose` about `id` (an intent id). Two different
    /// (purpose, id) pairs never make the same key: purposes contain no `:`.
    pub fn new(purpose: LedgerPurpose, id: &str) -> Self {
        Self(format!("{}{}:{id}", Self::PREFIX, purpose.as_str()))
    }

    /// The key as stored.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for LedgerKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_are_namespaced_and_distinct() {
        let purposes = [
            LedgerPurpose::CheckoutDebit,
            LedgerPurpose::CheckoutRefund,
            LedgerPurpose::TopUpCredit,
        ];
        let mut seen = std::collections::HashSet::new();
        for p in purposes {
            for id in ["wallet_x", "pi_1", "x:y"] {
                let k = LedgerKey::new(p, id);
                assert!(k.as_str().starts_with(LedgerKey::PREFIX));
                assert!(seen.insert(k));
            }
        }
    }
}
