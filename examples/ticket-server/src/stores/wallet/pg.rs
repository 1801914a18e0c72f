//! The PostgreSQL wallet: a ledger table and a balance row per user, changed in one
//! transaction.
//!
//! Tables (in the app's schema, from `migrations/0002_wallet.sql`):
//!
//! - `wallet_accounts (user_id PK, currency, balance_minor CHECK >= 0)`;
//! - `wallet_ledger (seq, id, user_id, kind, amount_minor, currency, reference,
//!   idempotency_key, fingerprint, at_ms)` with `UNIQUE (user_id, idempotency_key)`, a
//!   foreign key `(user_id, currency)` to the account (one currency per wallet), a sign check
//!   per kind, a `CHECK` that keys are server-made (`sys:…`), and triggers refusing `UPDATE`,
//!   `DELETE` and `TRUNCATE` (append-only);
//! - `wallet_topups`, the top-ups (see `topup_pg.rs`).
//!
//! Every change runs in one transaction that first locks the user's account row
//! (`SELECT … FOR UPDATE`), so changes to one wallet are serialised: the idempotency lookup,
//! the checks, the ledger insert and the balance update see no concurrent change, and the
//! balance row always equals the sum of the user's ledger rows.

use std::time::Duration;

use async_trait::async_trait;
use sqlx::Row;
use sqlx::postgres::{PgConnectOptions, PgPool};
use ticket_core::Timestamp;
use ticket_core::model::money::{Currency, Money};
use uuid::Uuid;

use super::{
    Entry, EntryKind, LedgerKey, Request, Result, Snapshot, Stored, WalletError, WalletStore,
    check_user, replay,
};

/// How to reach PostgreSQL and where to keep the wallet's tables.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PgWalletConfig {
    /// Connection URL, e.g. `postgres://postgres@127.0.0.1:5432/test`.
    pub url: String,
    /// Schema of the wallet's tables, set as `search_path` on every connection of the pool;
    /// 1..=63 lower-case letters, digits or `_`, not starting with a digit.
    pub schema: String,
    /// Connections in the pool.
    pub max_connections: u32,
    /// Waiting longer than this for a pooled connection fails with `Unavailable`.
    pub acquire_timeout: Duration,
}

impl PgWalletConfig {
    /// Defaults for `url`: schema `ticketrush_wallet`, 10 connections, 5 s acquire timeout.
    pub fn new(url: impl Into<String>) -> Self {
        Self {
            url: url.into(),
            schema: "ticketrush_wallet".into(),
            max_connections: 10,
            acquire_timeout: Duration::from_secs(5),
        }
    }

    /// The same settings under another schema.
    pub fn with_schema(mut self, schema: impl Into<String>) -> Self {
        self.schema = schema.into();
        self
    }

    fn options(&self) -> Result<PgConnectOptions> {
        crate::stores::support::pg::options(&self.url, &self.schema)
            .map_err(WalletError::InvalidRequest)
    }
}

/// The wallet in PostgreSQL. Cheap to clone (a pool). Every process using the same database
/// and schema sees the same wallets.
#[derive(Debug, Clone)]
pub struct PgWallet {
    pool: PgPool,
    config: PgWalletConfig,
}

const ENTRY_COLUMNS: &str = "id::text AS id, user_id, kind, amount_minor, currency, reference, idempotency_key, fingerprint, at_ms";

impl PgWallet {
    /// Connects a pool with `search_path` set to `config.schema` and checks the server
    /// answers. Creates nothing: call [`PgWallet::migrate`] (idempotent) before use.
    pub async fn connect(config: PgWalletConfig) -> Result<Self> {
        let options = config.options()?;
        let pool = crate::stores::support::pg::pool(
            options,
            config.max_connections,
            config.acquire_timeout,
        )
        .await
        .map_err(db_error)?;
        Ok(Self { pool, config })
    }

    /// The settings this wallet was connected with.
    pub fn config(&self) -> &PgWalletConfig {
        &self.config
    }

    /// Creates the schema if needed and applies the app's migrations not applied yet
    /// ([`crate::stores::migrate`]; the wallet's tables are `migrations/0002_wallet.sql`).
    /// Safe to run at every start and from several processes at once.
    pub async fn migrate(&self) -> Result<()> {
        crate::stores::migrate(&self.pool, &self.config.schema)
            .await
            .map_err(db_error)
    }

    /// Closes the pool (waits for connections in use to come back).
    pub async fn close(&self) {
        self.pool.close().await;
    }

    /// The pool.
    pub(super) fn pool(&self) -> &PgPool {
        &self.pool
    }

    /// One attempt of [`WalletStore::post`] in one transaction.
    async fn post_once(&self, req: &Request<'_>, now: Timestamp) -> Result<Entry, PostError> {
        let mut tx = self.pool.begin().await?;
        let entry = self.post_in(&mut tx, req, now).await?;
        tx.commit().await?;
        Ok(entry)
    }

    /// [`WalletStore::post`] inside the caller's transaction `tx` (which it leaves open: a
    /// refusal is an `Err`, and the caller rolls back).
    pub(super) async fn post_in(
        &self,
        tx: &mut sqlx::Transaction<'_, sqlx::Postgres>,
        req: &Request<'_>,
        now: Timestamp,
    ) -> Result<Entry, PostError> {
        let s = &self.config.schema;
        if !req.kind.is_debit() {
            // A credit may open the wallet; an existing row keeps its currency.
            sqlx::query(&format!(
                "INSERT INTO \"{s}\".wallet_accounts (user_id, currency, balance_minor) \
                 VALUES ($1, $2, 0) ON CONFLICT (user_id) DO NOTHING"
            ))
            .bind(req.user)
            .bind(req.amount.currency.as_str())
            .execute(&mut **tx)
            .await?;
        }
        let account = sqlx::query(&format!(
            "SELECT currency, balance_minor FROM \"{s}\".wallet_accounts \
             WHERE user_id = $1 FOR UPDATE"
        ))
        .bind(req.user)
        .fetch_optional(&mut **tx)
        .await?;
        let Some(account) = account else {
            // Only a payment gets here: no wallet, so no entry and no funds.
            let refusal = req
                .short(0, req.amount.currency)
                .unwrap_or_else(|| WalletError::Unavailable("wallet row missing".into()));
            return Err(PostError::Wallet(refusal));
        };
        let currency: String = account.try_get("currency")?;
        let currency = Currency::new(&currency).map_err(|_| corrupt("currency"))?;
        let balance: i64 = account.try_get("balance_minor")?;

        let previous = sqlx::query(&format!(
            "SELECT {ENTRY_COLUMNS} FROM \"{s}\".wallet_ledger \
             WHERE user_id = $1 AND idempotency_key = $2"
        ))
        .bind(req.user)
        .bind(req.key.as_str())
        .fetch_optional(&mut **tx)
        .await?;
        if let Some(row) = previous {
            return Ok(replay(stored_from_row(&row)?, req)?);
        }
        if let Some(refusal) = req
            .mismatch(currency)
            .or_else(|| req.short(balance, currency))
            .or_else(|| req.over_limit(balance, currency))
        {
            return Err(PostError::Wallet(refusal));
        }
        let entry = req.entry(now);
        sqlx::query(&format!(
            "INSERT INTO \"{s}\".wallet_ledger (id, user_id, kind, amount_minor, currency, \
             reference, idempotency_key, fingerprint, at_ms) \
             VALUES ($1::uuid, $2, $3, $4, $5, $6, $7, $8, $9)"
        ))
        .bind(entry.id.to_string())
        .bind(&entry.user)
        .bind(entry.kind.as_str())
        .bind(entry.amount_minor)
        .bind(entry.currency.as_str())
        .bind(&entry.reference)
        .bind(&entry.idempotency_key)
        .bind(req.fingerprint())
        .bind(entry.at.as_millis())
        .execute(&mut **tx)
        .await?;
        sqlx::query(&format!(
            "UPDATE \"{s}\".wallet_accounts SET balance_minor = balance_minor + $2 \
             WHERE user_id = $1"
        ))
        .bind(req.user)
        .bind(entry.amount_minor)
        .execute(&mut **tx)
        .await?;
        Ok(entry)
    }
}

/// A refusal, or a database error that may deserve a retry.
pub(super) enum PostError {
    Wallet(WalletError),
    Db(sqlx::Error),
}

impl From<sqlx::Error> for PostError {
    fn from(e: sqlx::Error) -> Self {
        Self::Db(e)
    }
}

impl From<WalletError> for PostError {
    fn from(e: WalletError) -> Self {
        Self::Wallet(e)
    }
}

pub(super) fn db_error(e: sqlx::Error) -> WalletError {
    WalletError::Unavailable(format!("postgres: {e}"))
}

pub(super) fn corrupt(what: &str) -> WalletError {
    WalletError::Unavailable(format!("postgres: unreadable wallet data ({what})"))
}

fn stored_from_row(row: &sqlx::postgres::PgRow) -> Result<Stored> {
    let get_text = |name: &str| -> Result<String> { row.try_get(name).map_err(db_error) };
    let id = Uuid::parse_str(&get_text("id")?).map_err(|_| corrupt("id"))?;
    let kind = EntryKind::parse(&get_text("kind")?).ok_or_else(|| corrupt("kind"))?;
    let currency = Currency::new(&get_text("currency")?).map_err(|_| corrupt("currency"))?;
    let amount_minor: i64 = row.try_get("amount_minor").map_err(db_error)?;
    let at_ms: i64 = row.try_get("at_ms").map_err(db_error)?;
    Ok(Stored {
        e: Entry {
            id,
            user: get_text("user_id")?,
            kind,
            amount_minor,
            currency,
            reference: get_text("reference")?,
            idempotency_key: get_text("idempotency_key")?,
            at: Timestamp::from_millis(at_ms),
        },
        fp: get_text("fingerprint")?,
    })
}

#[async_trait]
impl WalletStore for PgWallet {
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
        let mut attempts = 0;
        loop {
            attempts += 1;
            match self.post_once(&req, now).await {
                Ok(entry) => return Ok(entry),
                Err(PostError::Wallet(e)) => return Err(e),
                // A unique violation means a racing twin committed first (the row lock makes
                // this all but impossible); run again to answer from its entry.
                Err(PostError::Db(e))
                    if attempts < 3 && crate::stores::support::pg::is_code(&e, &["23505"]) =>
                {
                    continue;
                }
                Err(PostError::Db(e)) => return Err(db_error(e)),
            }
        }
    }

    async fn entry_by_key(&self, user: &str, key: &LedgerKey) -> Result<Option<Entry>> {
        check_user(user)?;
        let s = &self.config.schema;
        let row = sqlx::query(&format!(
            "SELECT {ENTRY_COLUMNS} FROM \"{s}\".wallet_ledger \
             WHERE user_id = $1 AND idempotency_key = $2"
        ))
        .bind(user)
        .bind(key.as_str())
        .fetch_optional(&self.pool)
        .await
        .map_err(db_error)?;
        row.map(|r| stored_from_row(&r).map(|s| s.e)).transpose()
    }

    async fn snapshot(&self, user: &str, limit: usize) -> Result<Snapshot> {
        check_user(user)?;
        let s = &self.config.schema;
        let limit = i64::try_from(limit).unwrap_or(i64::MAX);
        // One REPEATABLE READ transaction: the balance and the entries are one snapshot.
        let mut tx = self.pool.begin().await.map_err(db_error)?;
        sqlx::query("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ READ ONLY")
            .execute(&mut *tx)
            .await
            .map_err(db_error)?;
        let account = sqlx::query(&format!(
            "SELECT currency, balance_minor, \
             (SELECT count(*) FROM \"{s}\".wallet_ledger l WHERE l.user_id = a.user_id) AS n \
             FROM \"{s}\".wallet_accounts a WHERE user_id = $1"
        ))
        .bind(user)
        .fetch_optional(&mut *tx)
        .await
        .map_err(db_error)?;
        let Some(account) = account else {
            tx.commit().await.map_err(db_error)?;
            return Ok(Snapshot {
                balance: None,
                entries: Vec::new(),
                entry_count: 0,
            });
        };
        let currency: String = account.try_get("currency").map_err(db_error)?;
        let balance: i64 = account.try_get("balance_minor").map_err(db_error)?;
        let count: i64 = account.try_get("n").map_err(db_error)?;
        let rows = sqlx::query(&format!(
            "SELECT {ENTRY_COLUMNS} FROM \"{s}\".wallet_ledger WHERE user_id = $1 \
             ORDER BY seq DESC LIMIT $2"
        ))
        .bind(user)
        .bind(limit)
        .fetch_all(&mut *tx)
        .await
        .map_err(db_error)?;
        tx.commit().await.map_err(db_error)?;
        let entries = rows
            .iter()
            .map(|r| stored_from_row(r).map(|s| s.e))
            .collect::<Result<Vec<_>>>()?;
        Ok(Snapshot {
            balance: Some(Money {
                amount_minor: balance,
                currency: Currency::new(&currency).map_err(|_| corrupt("currency"))?,
            }),
            entries,
            entry_count: u64::try_from(count).unwrap_or(0),
        })
    }
}
