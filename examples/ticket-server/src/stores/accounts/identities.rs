//! Social login's storage, on every backend: links between accounts and identities at
//! external providers (`(provider, subject)` → account), and short-lived one-time records
//! (pending authorisations, one-time login codes) that can be taken exactly once.
//!
//! | backend | identity links | one-time records |
//! |---|---|---|
//! | memory | a map under the accounts' mutex | a map under the same mutex |
//! | Redis | `<prefix>:{accounts}:ident:<provider>:<subject>` → user id (Lua scripts, with the user) | `<prefix>:{accounts}:once:<sha256 hex>` → `<expires ms>:<value>`, key TTL |
//! | PostgreSQL | table `user_identities`, primary key `(provider, subject)` | table `one_time_records`, taken by `DELETE … RETURNING` |
//!
//! An account found through a link is found by `(provider, subject)` only, never by its
//! e-mail: a provider account whose e-mail changes keeps reaching the same account.

use std::collections::HashMap;

use async_trait::async_trait;
use redis::Script;
use ticket_core::Timestamp;

use super::pg::{USER_COLUMNS, UserRow, db, user_from_row};
use super::{
    AccountError, MemoryAccounts, PgAccounts, RedisAccounts, Result, Role, TokenHash, User, UserId,
};

/// The password hash of an account made by social login: no password matches it (it is no
/// PHC string; the login flow treats it as "no password" and spends the time of a check).
pub const NO_PASSWORD: &str = "!no-password";

/// Longest accepted provider subject (`sub`, Naver's `id`), in bytes.
pub const MAX_SUBJECT_LEN: usize = 255;

/// Checks a provider name (1..=32 of `a-z`, `0-9`, `_`, `-`) and a subject (1..=255 bytes,
/// no control characters); [`AccountError::Invalid`] otherwise.
pub fn check_identity(provider: &str, subject: &str) -> Result<()> {
    let provider_ok = !provider.is_empty()
        && provider.len() <= 32
        && provider
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_' || c == '-');
    if !provider_ok {
        return Err(AccountError::Invalid(format!(
            "bad provider name {:?}",
            super::truncated(provider)
        )));
    }
    if subject.is_empty()
        || subject.len() > MAX_SUBJECT_LEN
        || subject.chars().any(char::is_control)
    {
        return Err(AccountError::Invalid(
            "provider subject must be 1..=255 bytes without control characters".into(),
        ));
    }
    Ok(())
}

/// Links between accounts and external identities, and one-time records. Every method is
/// atomic, across processes on a shared backend too.
#[async_trait]
pub trait IdentityStore: Send + Sync {
    /// The account linked to `(provider, subject)`, or [`AccountError::NotFound`].
    async fn user_by_identity(&self, provider: &str, subject: &str) -> Result<User>;

    /// Links `(provider, subject)` to the existing account `user`. Linking it again to the
    /// same account is no error; [`AccountError::IdentityTaken`] if it is linked to another
    /// account, [`AccountError::NotFound`] if `user` does not exist. Nothing written then.
    async fn link_identity(
        &self,
        user: UserId,
        provider: &str,
        subject: &str,
        now: Timestamp,
    ) -> Result<()>;

    /// Creates an account with the `USER` role, no password ([`NO_PASSWORD`]) and `email`
    /// (normalised), linked to `(provider, subject)`, in one step:
    /// [`AccountError::EmailTaken`] or [`AccountError::IdentityTaken`] and nothing written if
    /// either is taken.
    async fn create_identity_user(
        &self,
        email: &str,
        provider: &str,
        subject: &str,
        now: Timestamp,
    ) -> Result<User>;

    /// Stores `value` under `key` until `expires_at` (a new record replaces nothing: a key
    /// stored twice is [`AccountError::Invalid`]).
    async fn put_once(
        &self,
        key: &TokenHash,
        value: &str,
        expires_at: Timestamp,
        now: Timestamp,
    ) -> Result<()>;

    /// Takes the record under `key`: its value if it exists and has not expired at `now`,
    /// else `None`. The record is gone afterwards either way: of racing takes, one at most
    /// gets the value.
    async fn take_once(&self, key: &TokenHash, now: Timestamp) -> Result<Option<String>>;
}

/// The memory backend's share: links and one-time records, under the accounts' mutex.
#[derive(Debug, Default)]
pub(super) struct MemorySocial {
    links: HashMap<(String, String), UserId>,
    once: HashMap<TokenHash, (String, Timestamp)>,
}

#[async_trait]
impl IdentityStore for MemoryAccounts {
    async fn user_by_identity(&self, provider: &str, subject: &str) -> Result<User> {
        let state = self.state.lock();
        state
            .social
            .links
            .get(&(provider.to_owned(), subject.to_owned()))
            .and_then(|id| state.users.get(id))
            .cloned()
            .ok_or(AccountError::NotFound)
    }

    async fn link_identity(
        &self,
        user: UserId,
        provider: &str,
        subject: &str,
        _now: Timestamp,
    ) -> Result<()> {
        check_identity(provider, subject)?;
        let mut state = self.state.lock();
        if !state.users.contains_key(&user) {
            return Err(AccountError::NotFound);
        }
        let key = (provider.to_owned(), subject.to_owned());
        match state.social.links.get(&key) {
            Some(linked) if *linked == user => Ok(()),
            Some(_) => Err(AccountError::IdentityTaken),
            None => {
                state.social.links.insert(key, user);
                Ok(())
            }
        }
    }

    async fn create_identity_user(
        &self,
        email: &str,
        provider: &str,
        subject: &str,
        now: Timestamp,
    ) -> Result<User> {
        check_identity(provider, subject)?;
        let user = User::new(email, NO_PASSWORD, Role::User, now)?;
        let key = (provider.to_owned(), subject.to_owned());
        let mut state = self.state.lock();
        if state.by_email.contains_key(&user.email) {
            return Err(AccountError::EmailTaken);
        }
        if state.social.links.contains_key(&key) {
            return Err(AccountError::IdentityTaken);
        }
        state.insert_user(user.clone());
        state.social.links.insert(key, user.id);
        Ok(user)
    }

    async fn put_once(
        &self,
        key: &TokenHash,
        value: &str,
        expires_at: Timestamp,
        now: Timestamp,
    ) -> Result<()> {
        let mut state = self.state.lock();
        // housekeeping: forget what expired
        state.social.once.retain(|_, (_, at)| *at > now);
        if state.social.once.contains_key(key) {
            return Err(AccountError::Invalid("one-time record stored twice".into()));
        }
        state
            .social
            .once
            .insert(*key, (value.to_owned(), expires_at));
        Ok(())
    }

    async fn take_once(&self, key: &TokenHash, now: Timestamp) -> Result<Option<String>> {
        let taken = self.state.lock().social.once.remove(key);
        Ok(taken.and_then(|(value, at)| (now < at).then_some(value)))
    }
}

const REDIS_CREATE: &str = r"
-- KEYS[1]: key base; ARGV: id, email, password hash, created_at, identity key suffix
local base = KEYS[1]
local email_key = base .. 'email:' .. ARGV[2]
local ident_key = base .. 'ident:' .. ARGV[5]
if redis.call('EXISTS', email_key) == 1 then return 'email_taken' end
if redis.call('EXISTS', ident_key) == 1 then return 'identity_taken' end
redis.call('SET', email_key, ARGV[1])
redis.call('HSET', base .. 'user:' .. ARGV[1],
  'id', ARGV[1], 'email', ARGV[2], 'password_hash', ARGV[3], 'role', 'USER',
  'created_at', ARGV[4], 'tv', '0', 'blocked', '0', 'tiers', '')
redis.call('SET', ident_key, ARGV[1])
return 'ok'
";

const REDIS_LINK: &str = r"
-- KEYS[1]: key base; ARGV: user id, identity key suffix
local base = KEYS[1]
if redis.call('EXISTS', base .. 'user:' .. ARGV[1]) == 0 then return 'not_found' end
local ident_key = base .. 'ident:' .. ARGV[2]
local linked = redis.call('GET', ident_key)
if linked then
  if linked == ARGV[1] then return 'ok' end
  return 'identity_taken'
end
redis.call('SET', ident_key, ARGV[1])
return 'ok'
";

const REDIS_TAKE: &str = r"
-- KEYS[1]: the record's key. Returns its value (and deletes it) or false.
local v = redis.call('GET', KEYS[1])
if v then redis.call('DEL', KEYS[1]) end
return v
";

impl RedisAccounts {
    fn ident_suffix(provider: &str, subject: &str) -> String {
        // the provider name has no `:`; the subject is hex-encoded (any bytes, bounded key)
        format!("{provider}:{}", hex::encode(subject))
    }

    fn once_key(&self, key: &TokenHash) -> String {
        format!("{}once:{}", self.base, key.to_hex())
    }

    async fn script_answer(&self, script: &str, args: &[String]) -> Result<String> {
        let script = Script::new(script);
        let mut invocation = script.key(&self.base);
        for arg in args {
            invocation.arg(arg);
        }
        invocation
            .invoke_async(&mut self.conn.clone())
            .await
            .map_err(super::redis::unavailable)
    }
}

#[async_trait]
impl IdentityStore for RedisAccounts {
    async fn user_by_identity(&self, provider: &str, subject: &str) -> Result<User> {
        check_identity(provider, subject).map_err(|_| AccountError::NotFound)?;
        let id: Option<String> = redis::cmd("GET")
            .arg(format!(
                "{}ident:{}",
                self.base,
                Self::ident_suffix(provider, subject)
            ))
            .query_async(&mut self.conn.clone())
            .await
            .map_err(super::redis::unavailable)?;
        let Some(id) = id else {
            return Err(AccountError::NotFound);
        };
        let id: UserId = id
            .parse()
            .map_err(|_| AccountError::Corrupt(format!("identity link names {id:?}")))?;
        super::AccountStore::user(self, id).await
    }

    async fn link_identity(
        &self,
        user: UserId,
        provider: &str,
        subject: &str,
        _now: Timestamp,
    ) -> Result<()> {
        check_identity(provider, subject)?;
        let answer = self
            .script_answer(
                REDIS_LINK,
                &[user.to_string(), Self::ident_suffix(provider, subject)],
            )
            .await?;
        match answer.as_str() {
            "ok" => Ok(()),
            "not_found" => Err(AccountError::NotFound),
            "identity_taken" => Err(AccountError::IdentityTaken),
            other => Err(AccountError::Corrupt(format!(
                "unexpected answer of the link script: {other:?}"
            ))),
        }
    }

    async fn create_identity_user(
        &self,
        email: &str,
        provider: &str,
        subject: &str,
        now: Timestamp,
    ) -> Result<User> {
        check_identity(provider, subject)?;
        let user = User::new(email, NO_PASSWORD, Role::User, now)?;
        let answer = self
            .script_answer(
                REDIS_CREATE,
                &[
                    user.id.to_string(),
                    user.email.clone(),
                    user.password_hash.clone(),
                    now.as_millis().to_string(),
                    Self::ident_suffix(provider, subject),
                ],
            )
            .await?;
        match answer.as_str() {
            "ok" => Ok(user),
            "email_taken" => Err(AccountError::EmailTaken),
            "identity_taken" => Err(AccountError::IdentityTaken),
            other => Err(AccountError::Corrupt(format!(
                "unexpected answer of the create script: {other:?}"
            ))),
        }
    }

    async fn put_once(
        &self,
        key: &TokenHash,
        value: &str,
        expires_at: Timestamp,
        now: Timestamp,
    ) -> Result<()> {
        let ttl = expires_at
            .as_millis()
            .saturating_sub(now.as_millis())
            .max(1);
        let stored: Option<String> = redis::cmd("SET")
            .arg(self.once_key(key))
            .arg(format!("{}:{value}", expires_at.as_millis()))
            .arg("PX")
            .arg(ttl)
            .arg("NX")
            .query_async(&mut self.conn.clone())
            .await
            .map_err(super::redis::unavailable)?;
        match stored {
            Some(_) => Ok(()),
            None => Err(AccountError::Invalid("one-time record stored twice".into())),
        }
    }

    async fn take_once(&self, key: &TokenHash, now: Timestamp) -> Result<Option<String>> {
        let script = Script::new(REDIS_TAKE);
        let raw: Option<String> = script
            .key(self.once_key(key))
            .invoke_async(&mut self.conn.clone())
            .await
            .map_err(super::redis::unavailable)?;
        let Some(raw) = raw else {
            return Ok(None);
        };
        let (at, value) = raw
            .split_once(':')
            .ok_or_else(|| AccountError::Corrupt("one-time record without expiry".into()))?;
        let at: i64 = at
            .parse()
            .map_err(|_| AccountError::Corrupt("one-time record: bad expiry".into()))?;
        Ok((now.as_millis() < at).then(|| value.to_owned()))
    }
}

#[async_trait]
impl IdentityStore for PgAccounts {
    async fn user_by_identity(&self, provider: &str, subject: &str) -> Result<User> {
        let sql = format!(
            "SELECT {} FROM users u JOIN user_identities i ON i.user_id = u.id \
             WHERE i.provider = $1 AND i.subject = $2",
            USER_COLUMNS
                .split(", ")
                .map(|c| format!("u.{c}"))
                .collect::<Vec<_>>()
                .join(", ")
        );
        sqlx::query_as::<_, UserRow>(&sql)
            .bind(provider)
            .bind(subject)
            .fetch_optional(&self.pool)
            .await
            .map_err(db)?
            .map(user_from_row)
            .transpose()?
            .ok_or(AccountError::NotFound)
    }

    async fn link_identity(
        &self,
        user: UserId,
        provider: &str,
        subject: &str,
        now: Timestamp,
    ) -> Result<()> {
        check_identity(provider, subject)?;
        let mut tx = self.pool.begin().await.map_err(db)?;
        let exists: Option<(i32,)> = sqlx::query_as("SELECT 1 FROM users WHERE id = $1::uuid")
            .bind(user.to_string())
            .fetch_optional(&mut *tx)
            .await
            .map_err(db)?;
        if exists.is_none() {
            return Err(AccountError::NotFound);
        }
        sqlx::query(
            "INSERT INTO user_identities (provider, subject, user_id, created_at) \
             VALUES ($1, $2, $3::uuid, $4) ON CONFLICT (provider, subject) DO NOTHING",
        )
        .bind(provider)
        .bind(subject)
        .bind(user.to_string())
        .bind(now.as_millis())
        .execute(&mut *tx)
        .await
        .map_err(db)?;
        let (linked,): (String,) = sqlx::query_as(
            "SELECT user_id::text FROM user_identities WHERE provider = $1 AND subject = $2",
        )
        .bind(provider)
        .bind(subject)
        .fetch_one(&mut *tx)
        .await
        .map_err(db)?;
        if linked != user.to_string() {
            return Err(AccountError::IdentityTaken);
        }
        tx.commit().await.map_err(db)
    }

    async fn create_identity_user(
        &self,
        email: &str,
        provider: &str,
        subject: &str,
        now: Timestamp,
    ) -> Result<User> {
        check_identity(provider, subject)?;
        let user = User::new(email, NO_PASSWORD, Role::User, now)?;
        let mut tx = self.pool.begin().await.map_err(db)?;
        let inserted = sqlx::query(
            "INSERT INTO users (id, email, password_hash, role, created_at) \
             VALUES ($1::uuid, $2, $3, 'USER', $4) ON CONFLICT (email) DO NOTHING",
        )
        .bind(user.id.to_string())
        .bind(&user.email)
        .bind(&user.password_hash)
        .bind(now.as_millis())
        .execute(&mut *tx)
        .await
        .map_err(db)?
        .rows_affected();
        if inserted != 1 {
            return Err(AccountError::EmailTaken);
        }
        let linked = sqlx::query(
            "INSERT INTO user_identities (provider, subject, user_id, created_at) \
             VALUES ($1, $2, $3::uuid, $4) ON CONFLICT (provider, subject) DO NOTHING",
        )
        .bind(provider)
        .bind(subject)
        .bind(user.id.to_string())
        .bind(now.as_millis())
        .execute(&mut *tx)
        .await
        .map_err(db)?
        .rows_affected();
        if linked != 1 {
            // the transaction rolls back when dropped: no account is left behind
            return Err(AccountError::IdentityTaken);
        }
        tx.commit().await.map_err(db)?;
        Ok(user)
    }

    async fn put_once(
        &self,
        key: &TokenHash,
        value: &str,
        expires_at: Timestamp,
        now: Timestamp,
    ) -> Result<()> {
        // housekeeping: forget what expired (indexed)
        sqlx::query("DELETE FROM one_time_records WHERE expires_at <= $1")
            .bind(now.as_millis())
            .execute(&self.pool)
            .await
            .map_err(db)?;
        let inserted = sqlx::query(
            "INSERT INTO one_time_records (key_hash, value, expires_at) VALUES ($1, $2, $3) \
             ON CONFLICT (key_hash) DO NOTHING",
        )
        .bind(key.to_hex())
        .bind(value)
        .bind(expires_at.as_millis())
        .execute(&self.pool)
        .await
        .map_err(db)?
        .rows_affected();
        if inserted == 1 {
            Ok(())
        } else {
            Err(AccountError::Invalid("one-time record stored twice".into()))
        }
    }

    async fn take_once(&self, key: &TokenHash, now: Timestamp) -> Result<Option<String>> {
        let row: Option<(String, i64)> = sqlx::query_as(
            "DELETE FROM one_time_records WHERE key_hash = $1 RETURNING value, expires_at",
        )
        .bind(key.to_hex())
        .fetch_optional(&self.pool)
        .await
        .map_err(db)?;
        Ok(row.and_then(|(value, at)| (now.as_millis() < at).then_some(value)))
    }
}
