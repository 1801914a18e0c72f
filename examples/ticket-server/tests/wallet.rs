//! The wallet's guarantees, one shared test body per property, run on every backend: memory,
//! Redis (`REDIS_URL`, default redis://127.0.0.1:6379) and PostgreSQL (`DATABASE_URL`,
//! default postgres://postgres@127.0.0.1:5432/test). Each test works under its own key
//! prefix or schema, removed at the end (also when the test fails). A backend that cannot be
//! reached fails the test: these tests never skip.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use ticket_core::Timestamp;
use ticket_core::model::money::{Currency, Money};
use ticket_server::stores::wallet::{
    Entry, EntryKind, LedgerKey, LedgerPurpose, MAX_AMOUNT_MINOR, MemoryWallet, PgWallet,
    PgWalletConfig, RedisWallet, RedisWalletConfig, Snapshot, WalletError, WalletStore,
};
use ticketrush_test_support::Namespace;

// ---------------------------------------------------------------------------------------------
// backends

/// Two handles on one isolated wallet (for Redis and PostgreSQL: separate connections, as two
/// server processes would have), and the namespace removed when it is dropped.
struct Backend {
    a: Arc<dyn WalletStore>,
    b: Arc<dyn WalletStore>,
    guard: Option<Namespace>,
}

async fn memory() -> Backend {
    let w: Arc<dyn WalletStore> = Arc::new(MemoryWallet::new());
    Backend {
        a: w.clone(),
        b: w,
        guard: None,
    }
}

async fn redis() -> Backend {
    let ns = Namespace::redis("wallet");
    let config = RedisWalletConfig::new(ns.url()).with_prefix(ns.name());
    let a = ns.connected(RedisWallet::connect(config.clone()).await);
    let b = ns.connected(RedisWallet::connect(config).await);
    Backend {
        a: Arc::new(a),
        b: Arc::new(b),
        guard: Some(ns),
    }
}

async fn pg() -> Backend {
    let ns = Namespace::postgres("wallet");
    let config = PgWalletConfig::new(ns.url()).with_schema(ns.name());
    let a = ns.connected(PgWallet::connect(config.clone()).await);
    let b = ns.connected(PgWallet::connect(config).await);
    // both "processes" migrate at once: idempotent and race-free
    let (ra, rb) = tokio::join!(a.migrate(), b.migrate());
    ra.expect("migrate");
    rb.expect("migrate");
    a.migrate().await.expect("migrate again");
    Backend {
        a: Arc::new(a),
        b: Arc::new(b),
        guard: Some(ns),
    }
}

// ---------------------------------------------------------------------------------------------
// helpers

/// A ledger key (the store takes server-made keys only).
fn k(id: &str) -> LedgerKey {
    LedgerKey::new(LedgerPurpose::TopUpCredit, id)
}

fn krw(n: i64) -> Money {
    Money {
        amount_minor: n,
        currency: Currency::new("KRW").unwrap(),
    }
}

fn usd(n: i64) -> Money {
    Money {
        amount_minor: n,
        currency: Currency::new("USD").unwrap(),
    }
}

fn at(offset_ms: i64) -> Timestamp {
    Timestamp::from_millis(1_750_000_000_000 + offset_ms)
}

/// The whole wallet, checking balance == sum(ledger) and the entry count on the way.
async fn full(w: &dyn WalletStore, user: &str) -> Snapshot {
    let s = w.snapshot(user, usize::MAX).await.expect("snapshot");
    assert_consistent(&s);
    s
}

fn assert_consistent(s: &Snapshot) {
    let sum: i64 = s.entries.iter().map(|e| e.amount_minor).sum();
    assert_eq!(s.entries.len() as u64, s.entry_count, "{s:?}");
    match s.balance {
        None => assert!(s.entries.is_empty(), "{s:?}"),
        Some(b) => {
            assert_eq!(
                b.amount_minor, sum,
                "balance must equal the ledger's sum: {s:?}"
            );
            assert!(b.amount_minor >= 0, "negative balance: {s:?}");
            assert!(s.entries.iter().all(|e| e.currency == b.currency), "{s:?}");
        }
    }
}

// ---------------------------------------------------------------------------------------------
// shared test bodies

async fn charge_pay_refund(bk: Backend) {
    let (w, other) = (&*bk.a, &*bk.b);
    assert_eq!(w.balance("alice").await.unwrap(), None);
    assert!(full(w, "alice").await.entries.is_empty());
    // a payment from an empty wallet
    assert_eq!(
        w.pay("alice", &k("p0"), krw(1), "hold-0", at(0)).await,
        Err(WalletError::InsufficientFunds {
            balance: krw(0),
            needed: krw(1)
        })
    );
    assert_eq!(w.balance("alice").await.unwrap(), None);

    let c = w
        .charge("alice", &k("c1"), krw(5_000), "", at(1))
        .await
        .unwrap();
    assert_eq!(
        (c.kind, c.amount_minor, c.currency, c.user.as_str()),
        (EntryKind::Charge, 5_000, krw(0).currency, "alice")
    );
    assert_eq!((c.idempotency_key.as_str(), c.at), ("sys:topup:c1", at(1)));
    let p = w
        .pay("alice", &k("p1"), krw(1_200), "pay-1", at(2))
        .await
        .unwrap();
    assert_eq!(
        (p.kind, p.amount_minor, p.reference.as_str()),
        (EntryKind::Payment, -1_200, "pay-1")
    );
    let r = other
        .refund("alice", &k("r1"), krw(1_200), "pay-1", at(3))
        .await
        .unwrap();
    assert_eq!((r.kind, r.amount_minor), (EntryKind::Refund, 1_200));
    let p2 = other
        .pay("alice", &k("p2"), krw(300), "pay-2", at(4))
        .await
        .unwrap();

    // every handle sees the same wallet, newest first
    for h in [w, other] {
        let s = full(h, "alice").await;
        assert_eq!(s.balance, Some(krw(4_700)));
        assert_eq!(s.entries, vec![p2.clone(), r.clone(), p.clone(), c.clone()]);
        assert_eq!(h.balance("alice").await.unwrap(), Some(krw(4_700)));
        assert_eq!(
            h.ledger("alice", 2).await.unwrap(),
            vec![p2.clone(), r.clone()]
        );
        assert_eq!(h.ledger("alice", 0).await.unwrap(), Vec::<Entry>::new());
    }
    // a payment above the balance writes nothing; the exact balance can be spent
    assert_eq!(
        w.pay("alice", &k("p3"), krw(4_701), "", at(5)).await,
        Err(WalletError::InsufficientFunds {
            balance: krw(4_700),
            needed: krw(4_701)
        })
    );
    assert_eq!(full(w, "alice").await.entry_count, 4);
    w.pay("alice", &k("p4"), krw(4_700), "", at(6))
        .await
        .unwrap();
    assert_eq!(full(other, "alice").await.balance, Some(krw(0)));
    // wallets are per user
    assert_eq!(w.balance("bob").await.unwrap(), None);
    w.charge("bob", &k("c1"), krw(10), "", at(7)).await.unwrap();
    assert_eq!(w.balance("bob").await.unwrap(), Some(krw(10)));
    assert_eq!(full(w, "alice").await.entry_count, 5);
}

async fn idempotent_repeats(bk: Backend) {
    let (w, other) = (&*bk.a, &*bk.b);
    let first = w
        .charge("u", &k("k1"), krw(1_000), "top-up", at(0))
        .await
        .unwrap();
    // the same request again, later, through the other handle: the first entry, no credit
    let again = other
        .charge("u", &k("k1"), krw(1_000), "top-up", at(9))
        .await
        .unwrap();
    assert_eq!(again, first);
    assert_eq!(full(w, "u").await.balance, Some(krw(1_000)));
    // the same key with another request
    for refused in [
        w.charge("u", &k("k1"), krw(999), "top-up", at(1)).await,
        w.charge("u", &k("k1"), krw(1_000), "other", at(1)).await,
        w.refund("u", &k("k1"), krw(1_000), "top-up", at(1)).await,
        w.pay("u", &k("k1"), krw(1_000), "top-up", at(1)).await,
        w.charge("u", &k("k1"), usd(1_000), "top-up", at(1)).await,
    ] {
        assert_eq!(refused, Err(WalletError::KeyReused));
    }
    // a payment repeated after the balance changed still answers its first entry
    let pay = w.pay("u", &k("p1"), krw(600), "h1", at(2)).await.unwrap();
    assert_eq!(
        w.pay("u", &k("p1"), krw(600), "h1", at(3)).await.unwrap(),
        pay
    );
    assert_eq!(
        other
            .pay("u", &k("p1"), krw(600), "h1", at(3))
            .await
            .unwrap(),
        pay
    );
    assert_eq!(w.balance("u").await.unwrap(), Some(krw(400)));
    let refund = w
        .refund("u", &k("r1"), krw(600), "p1", at(4))
        .await
        .unwrap();
    assert_eq!(
        other
            .refund("u", &k("r1"), krw(600), "p1", at(5))
            .await
            .unwrap(),
        refund
    );
    // keys are per user
    let bob = w.charge("bob", &k("k1"), krw(5), "", at(6)).await.unwrap();
    assert_ne!(bob.id, first.id);
    // an entry is found by its key, on either handle, only in its own wallet
    assert_eq!(other.entry_by_key("u", &k("p1")).await.unwrap(), Some(pay));
    assert_eq!(w.entry_by_key("bob", &k("k1")).await.unwrap(), Some(bob));
    assert_eq!(w.entry_by_key("bob", &k("p1")).await.unwrap(), None);
    assert_eq!(w.entry_by_key("nobody", &k("p1")).await.unwrap(), None);
    // a refused payment leaves its key free for a retry
    assert!(matches!(
        w.pay("u", &k("p2"), krw(5_000), "h2", at(7)).await,
        Err(WalletError::InsufficientFunds { .. })
    ));
    assert_eq!(other.entry_by_key("u", &k("p2")).await.unwrap(), None);
    w.charge("u", &k("k2"), krw(4_000), "", at(8))
        .await
        .unwrap();
    let retried = w.pay("u", &k("p2"), krw(5_000), "h2", at(9)).await.unwrap();
    assert_eq!(retried.amount_minor, -5_000);
    let s = full(w, "u").await;
    assert_eq!(s.balance, Some(krw(0)));
    assert_eq!(s.entry_count, 5);
}

async fn refusals_change_nothing(bk: Backend) {
    let (w, other) = (&*bk.a, &*bk.b);
    // invalid amounts on an empty wallet open nothing
    for bad in [0, -5, MAX_AMOUNT_MINOR + 1, i64::MIN, i64::MAX] {
        let want = Err(WalletError::InvalidAmount {
            amount_minor: bad,
            max: MAX_AMOUNT_MINOR,
        });
        assert_eq!(w.charge("u", &k("k"), krw(bad), "", at(0)).await, want);
        assert_eq!(w.pay("u", &k("k"), krw(bad), "", at(0)).await, want);
        assert_eq!(w.refund("u", &k("k"), krw(bad), "", at(0)).await, want);
    }
    assert_eq!(w.balance("u").await.unwrap(), None);
    // the refused key was not consumed; the cap itself is allowed
    let e = w
        .charge("u", &k("k"), krw(MAX_AMOUNT_MINOR), "", at(1))
        .await
        .unwrap();
    assert_eq!(e.amount_minor, MAX_AMOUNT_MINOR);
    let before = full(w, "u").await;

    for bad in [0, -1, MAX_AMOUNT_MINOR + 1] {
        assert!(matches!(
            other.pay("u", &k("x"), krw(bad), "", at(2)).await,
            Err(WalletError::InvalidAmount { .. })
        ));
    }
    // another currency, whatever the kind
    let mismatch = Err(WalletError::CurrencyMismatch {
        wallet: krw(0).currency,
        requested: usd(0).currency,
    });
    assert_eq!(w.charge("u", &k("usd"), usd(10), "", at(3)).await, mismatch);
    assert_eq!(
        other.pay("u", &k("usd"), usd(10), "", at(3)).await,
        mismatch
    );
    assert_eq!(w.refund("u", &k("usd"), usd(10), "", at(3)).await, mismatch);
    // malformed user, key or reference
    let long = "x".repeat(257);
    for (user, key, reference) in [
        ("", "k9", ""),
        (long.as_str(), "k9", ""),
        ("u", long.as_str(), ""),
        ("u", "k9", long.as_str()),
    ] {
        assert!(matches!(
            w.charge(user, &k(key), krw(1), reference, at(4)).await,
            Err(WalletError::InvalidRequest(_))
        ));
    }
    assert!(matches!(
        w.snapshot("", 10).await,
        Err(WalletError::InvalidRequest(_))
    ));
    assert_eq!(full(other, "u").await, before);
    // another user's first entry fixes their own currency
    w.charge("v", &k("k"), usd(10), "", at(5)).await.unwrap();
    assert_eq!(w.balance("v").await.unwrap(), Some(usd(10)));
    assert_eq!(full(w, "u").await, before);
}

async fn racing_payments(bk: Backend) {
    let user = "racer";
    bk.a.charge(user, &k("seed"), krw(1_000), "", at(0))
        .await
        .unwrap();
    let done = Arc::new(AtomicBool::new(false));
    // a reader checks every snapshot while the payments race
    let watcher = {
        let (w, done) = (bk.b.clone(), done.clone());
        tokio::spawn(async move {
            let mut looks = 0u32;
            while !done.load(Ordering::SeqCst) || looks == 0 {
                let s = w.snapshot(user, usize::MAX).await.expect("snapshot");
                assert_consistent(&s);
                looks += 1;
                tokio::task::yield_now().await;
            }
            looks
        })
    };
    let tasks: Vec<_> = (0..50)
        .map(|i| {
            let w = if i % 2 == 0 {
                bk.a.clone()
            } else {
                bk.b.clone()
            };
            tokio::spawn(async move {
                w.pay(
                    user,
                    &k(&format!("pay-{i}")),
                    krw(100),
                    &format!("hold-{i}"),
                    at(i),
                )
                .await
            })
        })
        .collect();
    let mut paid = 0;
    for t in tasks {
        match t.await.expect("task") {
            Ok(e) => {
                assert_eq!(e.amount_minor, -100);
                paid += 1;
            }
            Err(WalletError::InsufficientFunds { balance, needed }) => {
                assert_eq!(needed, krw(100));
                assert!(balance.amount_minor < 100 && balance.amount_minor >= 0);
            }
            Err(e) => panic!("unexpected refusal: {e}"),
        }
    }
    done.store(true, Ordering::SeqCst);
    assert!(watcher.await.expect("watcher") > 0);
    assert_eq!(paid, 10, "exactly 1 000 / 100 payments succeed");
    let s = full(&*bk.a, user).await;
    assert_eq!(s.balance, Some(krw(0)));
    assert_eq!(s.entry_count, 11);
    assert_eq!(
        s.entries
            .iter()
            .filter(|e| e.kind == EntryKind::Payment)
            .count(),
        10
    );
}

async fn racing_repeats(bk: Backend) {
    let user = "twin";
    let tasks: Vec<_> = (0..20)
        .map(|i| {
            let w = if i % 2 == 0 {
                bk.a.clone()
            } else {
                bk.b.clone()
            };
            tokio::spawn(async move { w.charge(user, &k("same-key"), krw(700), "r", at(i)).await })
        })
        .collect();
    let mut ids = Vec::new();
    for t in tasks {
        ids.push(t.await.expect("task").expect("charge").id);
    }
    ids.dedup();
    assert_eq!(ids.len(), 1, "every repeat answers the one entry");
    let s = full(&*bk.a, user).await;
    assert_eq!(s.balance, Some(krw(700)));
    assert_eq!(s.entry_count, 1);
    // the same for a racing payment key: one debit
    let tasks: Vec<_> = (0..20)
        .map(|i| {
            let w = if i % 2 == 0 {
                bk.a.clone()
            } else {
                bk.b.clone()
            };
            tokio::spawn(async move { w.pay(user, &k("pay-key"), krw(500), "h", at(i)).await })
        })
        .collect();
    let mut ids = Vec::new();
    for t in tasks {
        ids.push(t.await.expect("task").expect("pay").id);
    }
    ids.dedup();
    assert_eq!(ids.len(), 1);
    let s = full(&*bk.b, user).await;
    assert_eq!(s.balance, Some(krw(200)));
    assert_eq!(s.entry_count, 2);
}

// ---------------------------------------------------------------------------------------------
// every body on every backend

macro_rules! on_backend {
    ($backend:ident: $($test:ident),* $(,)?) => {
        mod $backend {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
                async fn $test() {
                    super::$test(super::$backend().await).await;
                }
            )*
        }
    };
}

macro_rules! on_all_backends {
    ($($test:ident),* $(,)?) => {
        on_backend!(memory: $($test),*);
        on_backend!(redis: $($test),*);
        on_backend!(pg: $($test),*);
    };
}

on_all_backends!(
    charge_pay_refund,
    idempotent_repeats,
    refusals_change_nothing,
    racing_payments,
    racing_repeats,
);

/// The PostgreSQL ledger refuses edits even from code that bypasses the wallet.
#[tokio::test]
async fn pg_ledger_is_append_only() {
    let bk = pg().await;
    bk.a.charge("u", &k("k"), krw(100), "", at(0))
        .await
        .unwrap();
    let ns = bk.guard.as_ref().expect("a PostgreSQL namespace");
    let pool = sqlx::PgPool::connect(ns.url()).await.expect("pool");
    let table = format!("\"{}\".wallet_ledger", ns.name());
    for sql in [
        format!("UPDATE {table} SET amount_minor = 1000"),
        format!("DELETE FROM {table}"),
        format!("TRUNCATE {table}"),
    ] {
        let err = sqlx::query(&sql).execute(&pool).await.unwrap_err();
        assert!(err.to_string().contains("append-only"), "{sql}: {err}");
    }
    // Only server-made keys name entries, even for SQL that bypasses the wallet.
    let err = sqlx::query(&format!(
        "INSERT INTO {table} (id, user_id, kind, amount_minor, currency, reference, \
         idempotency_key, fingerprint, at_ms) \
         VALUES (gen_random_uuid(), 'u', 'CHARGE', 5, 'KRW', '', 'client-key', '', 0)"
    ))
    .execute(&pool)
    .await
    .unwrap_err();
    assert!(
        err.to_string().contains("wallet_ledger_server_keys"),
        "{err}"
    );
    let accounts = format!("\"{}\".wallet_accounts", ns.name());
    let err = sqlx::query(&format!("UPDATE {accounts} SET balance_minor = -1"))
        .execute(&pool)
        .await
        .unwrap_err();
    assert!(err.to_string().contains("check"), "{err}");
    pool.close().await;
    assert_eq!(full(&*bk.a, "u").await.balance, Some(krw(100)));
}
