//! The Redis backend: every write one Lua script (atomic on the server), reads plain commands
//! or a read-only script.
//!
//! Key layout (all in one cluster slot through the hash tag `{accounts}`):
//!
//! | key | type | contents |
//! |---|---|---|
//! | `<prefix>:{accounts}:user:<id>` | hash | `id`, `email`, `password_hash`, `role`, `created_at`, `tv` (token version), `blocked` (`0`/`1`), `tiers` (joined by `,`) |
//! | `<prefix>:{accounts}:email:<email>` | string | the id of the account with that email |
//! | `<prefix>:{accounts}:rt:<sha256 hex>` | hash | `user`, `family`, `expires_at`, `used` (`0`/`1`) |
//! | `<prefix>:{accounts}:fam:<family>` | hash | `user`, `revoked` (`0`/`1`), `ends` (absolute end, ms) |
//! | `<prefix>:{accounts}:ufam:<user>` | set | the user's families |
//! | `<prefix>:{accounts}:admins` | set | the ids of the admins (the "last admin" rule) |
//! | `<prefix>:{accounts}:audit` | sorted set | account audit records (JSON) scored by `seq` |
//! | `<prefix>:{accounts}:audit_seq` | string | the last audit `seq` |
//!
//! Fields missing from records written by older versions read as their defaults (token
//! version 0, not blocked, no tiers, no absolute end).
//!
//! Accounts never expire. A token record lives until its expiry plus
//! [`RedisAccountsConfig::token_retention`] (a key TTL), so reuse is still detected for that
//! long; family records and a user's family set live at least as long as their longest
//! token.

use std::collections::HashMap;
use std::time::Duration;

use async_trait::async_trait;
use redis::aio::ConnectionManager;
use redis::{Script, Value};
use ticket_core::Timestamp;

use super::{
    AccountAuditRecord, AccountChange, AccountError, AccountStore, FamilyId, RefreshToken, Result,
    Role, Rotation, TokenHash, TokenState, User, UserId, check_password_hash, check_tiers,
    normalize_email,
};

/// How to reach Redis and where to keep the account keys.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RedisAccountsConfig {
    /// Connection URL, e.g. `redis://127.0.0.1:6379`.
    pub url: String,
    /// Every key starts with `<prefix>:{accounts}:`. 1..=128 ASCII letters, digits, `-`, `_`,
    /// `.` or `:`. Server processes that must agree use the same prefix.
    pub prefix: String,
    /// How long a refresh-token record is kept after its expiry (reuse of a rotated token is
    /// detected while its record exists).
    pub token_retention: Duration,
    /// A call waiting longer than this for Redis fails with `Unavailable`.
    pub response_timeout: Duration,
    /// Connecting longer than this fails with `Unavailable`.
    pub connection_timeout: Duration,
}

impl RedisAccountsConfig {
    /// Defaults for `url`: prefix `ticketrush`, tokens kept 1 day after expiry, 5 s response
    /// and 2 s connection timeouts.
    pub fn new(url: impl Into<String>) -> Self {
        Self {
            url: url.into(),
            prefix: "ticketrush".into(),
            token_retention: Duration::from_secs(24 * 3600),
            response_timeout: Duration::from_secs(5),
            connection_timeout: Duration::from_secs(2),
        }
    }

    /// The same settings with another key prefix.
    pub fn with_prefix(mut self, prefix: impl Into<String>) -> Self {
        self.prefix = prefix.into();
        self
    }

    /// Checks the settings; [`AccountError::Invalid`] names what is wrong.
    pub fn validate(&self) -> Result<()> {
        validate_prefix(&self.prefix)?;
        if self.response_timeout.is_zero() || self.connection_timeout.is_zero() {
            return Err(AccountError::Invalid(
                "redis timeouts must be positive".into(),
            ));
        }
        Ok(())
    }
}

fn validate_prefix(prefix: &str) -> Result<()> {
    crate::stores::support::redis::check_prefix(prefix).map_err(AccountError::Invalid)
}

struct Scripts {
    create_user: Script,
    ensure_admin: Script,
    issue: Script,
    rotate: Script,
    token: Script,
    revoke: Script,
    change_user: Script,
}

impl Scripts {
    fn new() -> Self {
        Self {
            create_user: Script::new(include_str!("lua/create_user.lua")),
            ensure_admin: Script::new(include_str!("lua/ensure_admin.lua")),
            issue: Script::new(include_str!("lua/issue.lua")),
            rotate: Script::new(include_str!("lua/rotate.lua")),
            token: Script::new(include_str!("lua/token.lua")),
            revoke: Script::new(include_str!("lua/revoke.lua")),
            change_user: Script::new(include_str!("lua/change_user.lua")),
        }
    }
}

/// Accounts on Redis. Every write is one Lua script, so it is atomic against every other
/// call from any process using the same Redis and prefix. Cheap to clone (clones share the
/// multiplexed, self-reconnecting connection).
#[derive(Clone)]
pub struct RedisAccounts {
    pub(super) conn: ConnectionManager,
    pub(super) base: String,
    prefix: String,
    retention_ms: i64,
    scripts: std::sync::Arc<Scripts>,
}

impl std::fmt::Debug for RedisAccounts {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RedisAccounts")
            .field("prefix", &self.prefix)
            .finish()
    }
}

pub(super) fn unavailable(e: redis::RedisError) -> AccountError {
    AccountError::Unavailable(format!("redis: {e}"))
}

fn corrupt(what: &str, v: &Value) -> AccountError {
    AccountError::Corrupt(format!("unexpected redis reply for {what}: {v:?}"))
}

fn text(v: &Value, what: &str) -> Result<String> {
    match v {
        Value::BulkString(b) => String::from_utf8(b.clone()).map_err(|_| corrupt(what, v)),
        Value::SimpleString(s) => Ok(s.clone()),
        Value::Int(n) => Ok(n.to_string()),
        _ => Err(corrupt(what, v)),
    }
}

fn millis(s: &str, what: &str) -> Result<Timestamp> {
    s.parse::<i64>()
        .map(Timestamp::from_millis)
        .map_err(|_| AccountError::Corrupt(format!("{what}: not an instant: {s:?}")))
}

impl RedisAccounts {
    /// Connects to `config.url` and checks Redis answers (`PING`). The connection is
    /// multiplexed and reconnects by itself; calls made while Redis is down fail with
    /// [`AccountError::Unavailable`].
    pub async fn connect(config: RedisAccountsConfig) -> Result<Self> {
        config.validate()?;
        let conn = crate::stores::support::redis::connect(
            &config.url,
            config.response_timeout,
            config.connection_timeout,
        )
        .await
        .map_err(|e| match e {
            crate::stores::support::redis::ConnectError::Url(m) => AccountError::Invalid(m),
            crate::stores::support::redis::ConnectError::Redis(e) => unavailable(e),
        })?;
        Self::with_connection(conn, &config.prefix, config.token_retention)
    }

    /// Uses an existing connection (e.g. the one the rest of the server shares) under
    /// `prefix`, keeping token records `token_retention` after their expiry.
    pub fn with_connection(
        conn: ConnectionManager,
        prefix: &str,
        token_retention: Duration,
    ) -> Result<Self> {
        validate_prefix(prefix)?;
        Ok(Self {
            conn,
            base: format!("{prefix}:{{accounts}}:"),
            prefix: prefix.to_owned(),
            retention_ms: i64::try_from(token_retention.as_millis()).unwrap_or(i64::MAX),
            scripts: std::sync::Arc::new(Scripts::new()),
        })
    }

    /// The key prefix.
    pub fn prefix(&self) -> &str {
        &self.prefix
    }

    /// Milliseconds a record valid until `expires_at` is kept, seen from `now`: the time
    /// left plus the retention, at least 1 ms, at most about 285 000 years.
    fn ttl_ms(&self, expires_at: Timestamp, now: Timestamp) -> i64 {
        const MAX: i64 = 1 << 53;
        let left = expires_at
            .as_millis()
            .saturating_sub(now.as_millis())
            .max(0);
        left.saturating_add(self.retention_ms).clamp(1, MAX)
    }

    async fn load_user(&self, id: &str) -> Result<Option<User>> {
        let fields: HashMap<String, String> = redis::cmd("HGETALL")
            .arg(format!("{}user:{id}", self.base))
            .query_async(&mut self.conn.clone())
            .await
            .map_err(unavailable)?;
        if fields.is_empty() {
            return Ok(None);
        }
        let get = |name: &str| {
            fields
                .get(name)
                .ok_or_else(|| AccountError::Corrupt(format!("user {id}: no {name}")))
        };
        Ok(Some(User {
            id: get("id")?
                .parse()
                .map_err(|_| AccountError::Corrupt(format!("user {id}: bad id")))?,
            email: get("email")?.clone(),
            password_hash: get("password_hash")?.clone(),
            role: get("role")?
                .parse()
                .map_err(|_| AccountError::Corrupt(format!("user {id}: bad role")))?,
            created_at: millis(get("created_at")?, "user created_at")?,
            tiers: tiers_of(fields.get("tiers").map(String::as_str)),
            blocked: fields.get("blocked").is_some_and(|b| b == "1"),
            token_version: fields
                .get("tv")
                .map(|v| v.parse())
                .transpose()
                .map_err(|_| AccountError::Corrupt(format!("user {id}: bad token version")))?
                .unwrap_or(0),
        }))
    }

    /// Runs `change_user.lua` and reads its answer.
    async fn change(
        &self,
        what: &str,
        actor: UserId,
        target: UserId,
        value: &str,
        now: Timestamp,
    ) -> Result<Option<AccountAuditRecord>> {
        let reply: Vec<String> = self
            .scripts
            .change_user
            .key(&self.base)
            .arg(what)
            .arg(actor.to_string())
            .arg(target.to_string())
            .arg(value)
            .arg(now.as_millis())
            .invoke_async(&mut self.conn.clone())
            .await
            .map_err(unavailable)?;
        match reply.first().map(String::as_str) {
            Some("ok") => match reply.get(1) {
                Some(json) => audit_record(json).map(Some),
                None => Err(AccountError::Corrupt(
                    "short answer of change_user.lua".into(),
                )),
            },
            Some("same") => Ok(None),
            Some("not_found") => Err(AccountError::NotFound),
            Some("own") => Err(AccountError::OwnAccount),
            Some("last_admin") => Err(AccountError::LastAdmin),
            Some("admin") => Err(AccountError::AdminNotBlockable),
            _ => Err(AccountError::Corrupt(format!(
                "unexpected answer of change_user.lua: {reply:?}"
            ))),
        }
    }
}

/// An audit record as `change_user.lua` stores it (every value a string).
#[derive(serde::Deserialize)]
struct StoredRecord {
    seq: String,
    at: String,
    actor: String,
    target: String,
    change: String,
    from: String,
    to: String,
}

fn audit_record(json: &str) -> Result<AccountAuditRecord> {
    let bad = |what: &str| AccountError::Corrupt(format!("audit record: bad {what}: {json:?}"));
    let r: StoredRecord = serde_json::from_str(json).map_err(|_| bad("json"))?;
    Ok(AccountAuditRecord {
        seq: r.seq.parse().map_err(|_| bad("seq"))?,
        at: millis(&r.at, "audit at")?,
        actor: r.actor.parse().map_err(|_| bad("actor"))?,
        target: r.target.parse().map_err(|_| bad("target"))?,
        change: AccountChange::parse(&r.change)?,
        from: r.from,
        to: r.to,
    })
}

#[async_trait]
impl AccountStore for RedisAccounts {
    async fn create_user(
        &self,
        email: &str,
        password_hash: &str,
        role: Role,
        now: Timestamp,
    ) -> Result<User> {
        let user = User::new(email, password_hash, role, now)?;
        let created: i64 = self
            .scripts
            .create_user
            .key(&self.base)
            .arg(user.id.to_string())
            .arg(&user.email)
            .arg(&user.password_hash)
            .arg(role.as_str())
            .arg(now.as_millis())
            .invoke_async(&mut self.conn.clone())
            .await
            .map_err(unavailable)?;
        if created == 1 {
            Ok(user)
        } else {
            Err(AccountError::EmailTaken)
        }
    }

    async fn user_by_email(&self, email: &str) -> Result<User> {
        let email = normalize_email(email).map_err(|_| AccountError::NotFound)?;
        // accounts are never deleted and an email never changes owner: two reads suffice
        let id: Option<String> = redis::cmd("GET")
            .arg(format!("{}email:{email}", self.base))
            .query_async(&mut self.conn.clone())
            .await
            .map_err(unavailable)?;
        let Some(id) = id else {
            return Err(AccountError::NotFound);
        };
        self.load_user(&id)
            .await?
            .ok_or_else(|| AccountError::Corrupt(format!("email index names missing user {id}")))
    }

    async fn user(&self, id: UserId) -> Result<User> {
        self.load_user(&id.to_string())
            .await?
            .ok_or(AccountError::NotFound)
    }

    async fn ensure_admin(&self, email: &str, password_hash: &str, now: Timestamp) -> Result<User> {
        let email = normalize_email(email)?;
        check_password_hash(password_hash)?;
        let reply: Vec<String> = self
            .scripts
            .ensure_admin
            .key(&self.base)
            .arg(UserId::new_at(now).to_string())
            .arg(&email)
            .arg(password_hash)
            .arg(now.as_millis())
            .invoke_async(&mut self.conn.clone())
            .await
            .map_err(unavailable)?;
        let id = match reply.as_slice() {
            [ok, id] if ok == "ok" => id,
            [no] if no == "not_admin" => return Err(AccountError::NotAnAdmin { email }),
            _ => {
                return Err(AccountError::Corrupt(format!(
                    "unexpected answer of ensure_admin.lua: {reply:?}"
                )));
            }
        };
        self.load_user(id)
            .await?
            .ok_or_else(|| AccountError::Corrupt(format!("admin {id} missing after upsert")))
    }

    async fn token_state(&self, user: UserId) -> Result<TokenState> {
        let (version, blocked, tiers): (Option<String>, Option<String>, Option<String>) =
            redis::cmd("HMGET")
                .arg(format!("{}user:{user}", self.base))
                .arg("tv")
                .arg("blocked")
                .arg("tiers")
                .query_async(&mut self.conn.clone())
                .await
                .map_err(unavailable)?;
        Ok(TokenState {
            version: version
                .map(|v| v.parse())
                .transpose()
                .map_err(|_| AccountError::Corrupt(format!("user {user}: bad token version")))?
                .unwrap_or(0),
            blocked: blocked.is_some_and(|b| b == "1"),
            tiers: tiers_of(tiers.as_deref()),
        })
    }

    async fn issue_refresh(
        &self,
        user: UserId,
        token: &TokenHash,
        family: FamilyId,
        expires_at: Timestamp,
        family_ends_at: Timestamp,
        now: Timestamp,
    ) -> Result<()> {
        let answer: String = self
            .scripts
            .issue
            .key(&self.base)
            .arg(user.to_string())
            .arg(token.to_hex())
            .arg(family.to_string())
            .arg(expires_at.as_millis())
            .arg(self.ttl_ms(expires_at, now))
            .arg(family_ends_at.as_millis())
            .invoke_async(&mut self.conn.clone())
            .await
            .map_err(unavailable)?;
        match answer.as_str() {
            "ok" => Ok(()),
            "no_user" => Err(AccountError::NotFound),
            "foreign_family" => Err(AccountError::Invalid(
                "the token family belongs to another user".into(),
            )),
            "exists" => Err(AccountError::Invalid(
                "this token hash is already stored".into(),
            )),
            other => Err(AccountError::Corrupt(format!(
                "unexpected answer of issue.lua: {other:?}"
            ))),
        }
    }

    async fn rotate_refresh(
        &self,
        old: &TokenHash,
        new: &TokenHash,
        now: Timestamp,
        new_expires_at: Timestamp,
    ) -> Result<Rotation> {
        let reply: Vec<Value> = self
            .scripts
            .rotate
            .key(&self.base)
            .arg(old.to_hex())
            .arg(new.to_hex())
            .arg(now.as_millis())
            .arg(new_expires_at.as_millis())
            .arg(self.ttl_ms(new_expires_at, now))
            .invoke_async(&mut self.conn.clone())
            .await
            .map_err(unavailable)?;
        let Some(status) = reply.first() else {
            return Err(AccountError::Corrupt("empty answer of rotate.lua".into()));
        };
        match text(status, "rotate status")?.as_str() {
            "ok" => match (reply.get(1), reply.get(2), reply.get(3), reply.get(4)) {
                (Some(user), Some(role), Some(version), Some(expires)) => {
                    let user = text(user, "rotate user")?;
                    let user = user.parse().map_err(|_| {
                        AccountError::Corrupt(format!("token names bad user {user:?}"))
                    })?;
                    let role = text(role, "rotate role")?.parse().map_err(|_| {
                        AccountError::Corrupt(format!("user {user} has a bad role"))
                    })?;
                    let token_version = text(version, "rotate version")?.parse().map_err(|_| {
                        AccountError::Corrupt(format!("user {user} has a bad token version"))
                    })?;
                    let expires_at = millis(&text(expires, "rotate expiry")?, "rotate expiry")?;
                    Ok(Rotation {
                        user,
                        role,
                        token_version,
                        expires_at,
                    })
                }
                _ => Err(AccountError::Corrupt("short answer of rotate.lua".into())),
            },
            "unknown" => Err(AccountError::TokenUnknown),
            "reused" => Err(AccountError::TokenReused),
            "revoked" => Err(AccountError::TokenRevoked),
            "expired" => Err(AccountError::TokenExpired),
            "exists" => Err(AccountError::Invalid(
                "this token hash is already stored".into(),
            )),
            other => Err(AccountError::Corrupt(format!(
                "unexpected answer of rotate.lua: {other:?}"
            ))),
        }
    }

    async fn refresh_token(&self, token: &TokenHash) -> Result<Option<RefreshToken>> {
        let reply: Vec<String> = self
            .scripts
            .token
            .key(&self.base)
            .arg(token.to_hex())
            .invoke_async(&mut self.conn.clone())
            .await
            .map_err(unavailable)?;
        let [user, family, expires_at, used, revoked] = reply.as_slice() else {
            return if reply.is_empty() {
                Ok(None)
            } else {
                Err(AccountError::Corrupt(format!(
                    "unexpected answer of token.lua: {reply:?}"
                )))
            };
        };
        let bad =
            |what: &str| AccountError::Corrupt(format!("token {}: bad {what}", token.to_hex()));
        Ok(Some(RefreshToken {
            hash: *token,
            family: family.parse().map_err(|_| bad("family"))?,
            user: user.parse().map_err(|_| bad("user"))?,
            expires_at: millis(expires_at, "token expires_at")?,
            used: used == "1",
            revoked: revoked == "1",
        }))
    }

    async fn revoke_family(&self, family: FamilyId) -> Result<()> {
        let _: i64 = self
            .scripts
            .revoke
            .key(&self.base)
            .arg("family")
            .arg(family.to_string())
            .invoke_async(&mut self.conn.clone())
            .await
            .map_err(unavailable)?;
        Ok(())
    }

    async fn revoke_user_tokens(&self, user: UserId) -> Result<()> {
        let _: i64 = self
            .scripts
            .revoke
            .key(&self.base)
            .arg("user")
            .arg(user.to_string())
            .invoke_async(&mut self.conn.clone())
            .await
            .map_err(unavailable)?;
        Ok(())
    }

    async fn set_role(
        &self,
        actor: UserId,
        target: UserId,
        role: Role,
        now: Timestamp,
    ) -> Result<Option<AccountAuditRecord>> {
        self.change("role", actor, target, role.as_str(), now).await
    }

    async fn set_tiers(
        &self,
        actor: UserId,
        target: UserId,
        tiers: &[String],
        now: Timestamp,
    ) -> Result<Option<AccountAuditRecord>> {
        check_tiers(tiers)?;
        self.change("tiers", actor, target, &tiers.join(","), now)
            .await
    }

    async fn set_blocked(
        &self,
        actor: UserId,
        target: UserId,
        blocked: bool,
        now: Timestamp,
    ) -> Result<Option<AccountAuditRecord>> {
        let value = if blocked { "1" } else { "0" };
        self.change("blocked", actor, target, value, now).await
    }

    async fn account_audit(
        &self,
        after: Option<u64>,
        limit: usize,
    ) -> Result<Vec<AccountAuditRecord>> {
        if limit == 0 {
            return Ok(Vec::new());
        }
        let records: Vec<String> = redis::cmd("ZRANGEBYSCORE")
            .arg(format!("{}audit", self.base))
            .arg(format!("({}", after.unwrap_or(0)))
            .arg("+inf")
            .arg("LIMIT")
            .arg(0)
            .arg(limit)
            .query_async(&mut self.conn.clone())
            .await
            .map_err(unavailable)?;
        records.iter().map(|r| audit_record(r)).collect()
    }

    async fn purge_expired(&self, _before: Timestamp) -> Result<u64> {
        // token records carry a TTL (expiry + retention): Redis forgets them by itself
        Ok(0)
    }
}

/// The tiers stored in a user hash's `tiers` field (joined by `,`; absent or empty: none).
fn tiers_of(field: Option<&str>) -> Vec<String> {
    field
        .filter(|t| !t.is_empty())
        .map(|t| t.split(',').map(str::to_owned).collect())
        .unwrap_or_default()
}
