//! The Redis wallet: one Lua script per change.
//!
//! Keys per user (`<tag>` is the first 32 hex digits of SHA-256 of the user id, so any user
//! id makes a safe key and a cluster hash tag):
//!
//! - `<prefix>:wallet:{<tag>}:acct`, a hash: `user`, `currency`, `balance` (minor units) and
//!   one field `k:<idempotency key>` per entry holding the entry and its request fingerprint;
//! - `<prefix>:wallet:{<tag>}:ledger`, a list of the entries, newest first (`LPUSH`).
//!
//! - `<prefix>:wallet:{<tag>}:topups`, a hash of the user's top-ups (see `topup_redis.rs`);
//! - `<prefix>:wallet:topups:pending`, a sorted set of every pending top-up (the
//!   reconciler's index; kept outside the scripts, so a cluster needs no cross-slot step).
//!
//! The script `lua/post.lua` (after `lua/ledger_post.lua`) does the idempotency lookup, the currency, funds and limit checks,
//! the ledger `LPUSH` and the balance `HINCRBY` in one atomic step, so the balance always
//! equals the sum of the list and racing payments cannot overdraw.

use std::time::Duration;

use async_trait::async_trait;
use redis::aio::ConnectionManager;
use redis::{Script, Value};
use sha2::{Digest, Sha256};
use ticket_core::Timestamp;
use ticket_core::model::money::{Currency, Money};

use super::{
    Entry, EntryKind, LedgerKey, MAX_BALANCE_MINOR, Request, Result, Snapshot, Stored, WalletError,
    WalletStore, check_user, replay,
};

/// How to reach Redis and where to keep the wallet's keys.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RedisWalletConfig {
    /// Connection URL, e.g. `redis://127.0.0.1:6379`.
    pub url: String,
    /// Prefix of every key (`<prefix>:wallet:…`); several deployments or tests can share one
    /// Redis under different prefixes. Must be 1..=128 bytes of letters, digits and `-_:.`.
    pub prefix: String,
    /// A call waiting longer than this for Redis fails with `Unavailable`.
    pub response_timeout: Duration,
    /// Connecting longer than this fails with `Unavailable`.
    pub connection_timeout: Duration,
}

impl RedisWalletConfig {
    /// Defaults for `url`: prefix `ticketrush`, 5 s timeouts.
    pub fn new(url: impl Into<String>) -> Self {
        Self {
            url: url.into(),
            prefix: "ticketrush".into(),
            response_timeout: Duration::from_secs(5),
            connection_timeout: Duration::from_secs(5),
        }
    }

    /// The same settings under another key prefix.
    pub fn with_prefix(mut self, prefix: impl Into<String>) -> Self {
        self.prefix = prefix.into();
        self
    }
}

fn check_prefix(prefix: &str) -> Result<()> {
    crate::stores::support::redis::check_prefix(prefix).map_err(WalletError::InvalidRequest)
}

/// The wallet in Redis. Cheap to clone (one multiplexed, self-reconnecting connection).
/// Every process using the same Redis and prefix sees the same wallets.
#[derive(Clone)]
pub struct RedisWallet {
    pub(super) conn: ConnectionManager,
    prefix: String,
    post: Script,
    pub(super) topup_open: Script,
    pub(super) topup_replace: Script,
}

impl std::fmt::Debug for RedisWallet {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RedisWallet")
            .field("prefix", &self.prefix)
            .finish_non_exhaustive()
    }
}

/// The ledger change every appending script starts with.
const LEDGER_POST_LUA: &str = include_str!("lua/ledger_post.lua");

/// A script made of [`LEDGER_POST_LUA`] and `body`.
pub(super) fn ledger_script(body: &str) -> Script {
    Script::new(&format!("{LEDGER_POST_LUA}\n{body}"))
}

impl RedisWallet {
    /// Connects to `config.url` and checks Redis answers (`PING`).
    pub async fn connect(config: RedisWalletConfig) -> Result<Self> {
        check_prefix(&config.prefix)?;
        let conn = crate::stores::support::redis::connect(
            &config.url,
            config.response_timeout,
            config.connection_timeout,
        )
        .await
        .map_err(|e| match e {
            crate::stores::support::redis::ConnectError::Url(m) => WalletError::InvalidRequest(m),
            crate::stores::support::redis::ConnectError::Redis(e) => unavailable(e),
        })?;
        Self::with_connection(conn, config.prefix)
    }

    /// A wallet on an existing connection (e.g. shared with the rest of the server), under
    /// `prefix` (checked as [`RedisWalletConfig::prefix`]).
    pub fn with_connection(conn: ConnectionManager, prefix: impl Into<String>) -> Result<Self> {
        let prefix = prefix.into();
        check_prefix(&prefix)?;
        Ok(Self {
            conn,
            prefix,
            post: ledger_script(include_str!("lua/post.lua")),
            topup_open: Script::new(include_str!("lua/topup_open.lua")),
            topup_replace: ledger_script(include_str!("lua/topup_replace.lua")),
        })
    }

    /// The key prefix.
    pub fn prefix(&self) -> &str {
        &self.prefix
    }

    /// `<prefix>:wallet:{<tag>}`: the start of every key of `user` (one hash slot).
    pub(super) fn user_base(&self, user: &str) -> String {
        let digest = hex::encode(Sha256::digest(user.as_bytes()));
        let tag = digest.get(..32).unwrap_or(&digest);
        format!("{}:wallet:{{{tag}}}", self.prefix)
    }

    /// The account hash and the ledger list of `user`.
    pub(super) fn keys(&self, user: &str) -> (String, String) {
        let base = self.user_base(user);
        (format!("{base}:acct"), format!("{base}:ledger"))
    }

    /// The sorted set of pending top-ups of every user (the reconciler's index).
    pub(super) fn pending_key(&self) -> String {
        format!("{}:wallet:topups:pending", self.prefix)
    }
}

pub(super) fn unavailable(e: redis::RedisError) -> WalletError {
    WalletError::Unavailable(format!("redis: {e}"))
}

pub(super) fn corrupt(what: &str) -> WalletError {
    WalletError::Unavailable(format!("redis: unreadable wallet data ({what})"))
}

fn parse_stored(text: &str) -> Result<Stored> {
    serde_json::from_str(text).map_err(|e| corrupt(&format!("entry: {e}")))
}

fn parse_balance(raw: &str) -> Result<i64> {
    raw.parse().map_err(|_| corrupt("balance"))
}

fn parse_currency(raw: &str) -> Result<Currency> {
    Currency::new(raw).map_err(|_| corrupt("currency"))
}

/// The entry `req` wrote (`written`) or the refusal, from `ledger_post`'s answer.
pub(super) fn ledger_reply(
    status: &str,
    value: &str,
    req: &Request<'_>,
    written: Entry,
) -> Result<Entry> {
    let currency = req.amount.currency;
    match status {
        "ok" => Ok(written),
        "dup" => replay(parse_stored(value)?, req),
        "currency" => Err(req
            .mismatch(parse_currency(value)?)
            .unwrap_or_else(|| corrupt("currency check"))),
        "short" => Err(req
            .short(parse_balance(value)?, currency)
            .unwrap_or_else(|| corrupt("funds check"))),
        "limit" => Err(req
            .over_limit(parse_balance(value)?, currency)
            .unwrap_or_else(|| corrupt("limit check"))),
        "badkey" => Err(WalletError::InvalidRequest(
            "only server-made ledger keys may name an entry".into(),
        )),
        _ => Err(corrupt("script status")),
    }
}

/// The JSON an entry is stored as, with its request's fingerprint.
pub(super) fn stored_json(req: &Request<'_>, now: Timestamp) -> Result<(Entry, String)> {
    let stored = Stored {
        e: req.entry(now),
        fp: req.fingerprint(),
    };
    let json = serde_json::to_string(&stored)
        .map_err(|e| WalletError::Unavailable(format!("encoding an entry: {e}")))?;
    Ok((stored.e, json))
}

#[async_trait]
impl WalletStore for RedisWallet {
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
        let (entry, json) = stored_json(&req, now)?;
        let (acct, ledger) = self.keys(user);
        let reply: Vec<String> = self
            .post
            .key(acct)
            .key(ledger)
            .arg(format!("k:{key}"))
            .arg(amount.currency.as_str())
            .arg(req.delta())
            .arg(&json)
            .arg(MAX_BALANCE_MINOR)
            .arg(user)
            .invoke_async(&mut self.conn.clone())
            .await
            .map_err(unavailable)?;
        let (Some(status), Some(value)) = (reply.first(), reply.get(1)) else {
            return Err(corrupt("script reply"));
        };
        ledger_reply(status, value, &req, entry)
    }

    async fn entry_by_key(&self, user: &str, key: &LedgerKey) -> Result<Option<Entry>> {
        check_user(user)?;
        let (acct, _) = self.keys(user);
        let text: Option<String> = redis::cmd("HGET")
            .arg(acct)
            .arg(format!("k:{key}"))
            .query_async(&mut self.conn.clone())
            .await
            .map_err(unavailable)?;
        text.map(|t| parse_stored(&t).map(|s| s.e)).transpose()
    }

    async fn snapshot(&self, user: &str, limit: usize) -> Result<Snapshot> {
        check_user(user)?;
        let (acct, ledger) = self.keys(user);
        let stop = i64::try_from(limit).unwrap_or(i64::MAX).saturating_sub(1);
        let mut pipe = redis::pipe();
        pipe.atomic()
            .cmd("HMGET")
            .arg(&acct)
            .arg("currency")
            .arg("balance")
            .cmd("LLEN")
            .arg(&ledger);
        if limit > 0 {
            pipe.cmd("LRANGE").arg(&ledger).arg(0).arg(stop);
        }
        let reply: Vec<Value> = pipe
            .query_async(&mut self.conn.clone())
            .await
            .map_err(unavailable)?;
        let mut reply = reply.into_iter();
        let (currency, balance): (Option<String>, Option<String>) =
            redis::from_redis_value(&reply.next().ok_or_else(|| corrupt("snapshot reply"))?)
                .map_err(|_| corrupt("account"))?;
        let entry_count: u64 =
            redis::from_redis_value(&reply.next().ok_or_else(|| corrupt("snapshot reply"))?)
                .map_err(|_| corrupt("ledger length"))?;
        let texts: Vec<String> = match reply.next() {
            Some(v) => redis::from_redis_value(&v).map_err(|_| corrupt("ledger"))?,
            None => Vec::new(),
        };
        let balance = match (currency, balance) {
            (Some(c), Some(b)) => Some(Money {
                amount_minor: parse_balance(&b)?,
                currency: parse_currency(&c)?,
            }),
            (None, None) => None,
            _ => return Err(corrupt("account half written")),
        };
        let entries = texts
            .iter()
            .map(|t| parse_stored(t).map(|s| s.e))
            .collect::<Result<Vec<_>>>()?;
        Ok(Snapshot {
            balance,
            entries,
            entry_count,
        })
    }
}
