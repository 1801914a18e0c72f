//! The PostgreSQL backend: tables in their own schema (the app's migrations, `migrations/`), a unique
//! index on the email, `INSERT … ON CONFLICT` for signups, one transaction holding row locks
//! for each rotation and for the admin bootstrap, and admin changes serialised by a
//! transaction-scoped advisory lock (the "last admin" rule and the audit order).

use std::str::FromStr;
use std::time::Duration;

use async_trait::async_trait;
use sqlx::postgres::{PgConnectOptions, PgPool, PgPoolOptions};
use ticket_core::Timestamp;

use super::changes::tiers_text;
use super::pg_changes::{AUDIT_COLUMNS, AuditRow, Update, audit_from_row, log_out_everywhere};
use super::{
    AccountAuditRecord, AccountChange, AccountError, AccountStore, FamilyId, RefreshToken, Result,
    Role, Rotation, TokenHash, TokenState, User, UserId, check_password_hash, check_tiers,
    normalize_email,
};

/// How to reach PostgreSQL and where to keep the account tables.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PgAccountsConfig {
    /// Connection URL, e.g. `postgres://postgres@127.0.0.1:5432/test`.
    pub url: String,
    /// Schema holding the account tables (created by [`PgAccounts::migrate`]); 1..=63
    /// lower-case ASCII letters, digits or `_`, not starting with a digit. Server processes
    /// that must agree use the same schema.
    pub schema: String,
    /// `application_name` of every connection, as `pg_stat_activity` shows it.
    pub application_name: String,
    /// Connections in the pool.
    pub max_connections: u32,
    /// Waiting longer than this for a pooled connection fails with `Unavailable`.
    pub acquire_timeout: Duration,
}

impl PgAccountsConfig {
    /// Defaults for `url`: schema `ticketrush_accounts`, application name `ticket-server`,
    /// 8 connections, 5 s acquire timeout.
    pub fn new(url: impl Into<String>) -> Self {
        Self {
            url: url.into(),
            schema: "ticketrush_accounts".into(),
            application_name: "ticket-server".into(),
            max_connections: 8,
            acquire_timeout: Duration::from_secs(5),
        }
    }

    /// The same settings under another schema.
    pub fn with_schema(mut self, schema: impl Into<String>) -> Self {
        self.schema = schema.into();
        self
    }

    /// Checks the settings; [`AccountError::Invalid`] names what is wrong.
    pub fn validate(&self) -> Result<()> {
        crate::stores::support::pg::check_schema(&self.schema).map_err(AccountError::Invalid)?;
        if self.max_connections == 0 || self.acquire_timeout.is_zero() {
            return Err(AccountError::Invalid(
                "max_connections and acquire_timeout must be positive".into(),
            ));
        }
        Ok(())
    }
}

/// Accounts on PostgreSQL, in one schema. Atomicity comes from the database: a unique index
/// on the email with `INSERT … ON CONFLICT`, and one transaction per rotation that locks the
/// token's row and its family's row (`SELECT … FOR UPDATE`) before deciding. Several server
/// processes on one database and schema agree. Cheap to clone (clones share the pool).
#[derive(Debug, Clone)]
pub struct PgAccounts {
    pub(super) pool: PgPool,
    config: PgAccountsConfig,
}

pub(super) fn db(e: sqlx::Error) -> AccountError {
    AccountError::Unavailable(format!("postgres: {e}"))
}

/// [`USER_COLUMNS`] of `users`.
pub(super) type UserRow = (String, String, String, String, i64, i64, bool, Vec<String>);

pub(super) const USER_COLUMNS: &str =
    "id::text, email, password_hash, role, created_at, token_version, blocked, tiers";

pub(super) fn user_from_row(
    (id, email, password_hash, role, created_at, token_version, blocked, tiers): UserRow,
) -> Result<User> {
    Ok(User {
        id: id
            .parse()
            .map_err(|_| AccountError::Corrupt(format!("bad user id {id:?}")))?,
        role: role
            .parse()
            .map_err(|_| AccountError::Corrupt(format!("user {id}: bad role {role:?}")))?,
        email,
        password_hash,
        created_at: Timestamp::from_millis(created_at),
        token_version: u64::try_from(token_version)
            .map_err(|_| AccountError::Corrupt(format!("user {id}: bad token version")))?,
        blocked,
        tiers,
    })
}

pub(super) fn parse_id<T: FromStr>(s: &str, what: &str) -> Result<T> {
    s.parse()
        .map_err(|_| AccountError::Corrupt(format!("bad {what} {s:?}")))
}

impl PgAccounts {
    /// Connects a pool to `config.url` with `search_path` set to `config.schema` on every
    /// connection, and checks the server answers. Creates nothing: call
    /// [`PgAccounts::migrate`] (idempotent) before use.
    pub async fn connect(config: PgAccountsConfig) -> Result<Self> {
        config.validate()?;
        let options = PgConnectOptions::from_str(&config.url)
            .map_err(|e| AccountError::Invalid(format!("database url: {e}")))?
            .application_name(&config.application_name)
            .options([("search_path", config.schema.as_str())]);
        let pool = PgPoolOptions::new()
            .max_connections(config.max_connections)
            .acquire_timeout(config.acquire_timeout)
            .connect_with(options)
            .await
            .map_err(db)?;
        Ok(Self { pool, config })
    }

    /// Creates the schema if needed and applies the app's migrations not applied yet
    /// ([`crate::stores::migrate`]: every app table, not only the accounts'). Idempotent,
    /// and safe from several processes at once.
    pub async fn migrate(&self) -> Result<()> {
        crate::stores::migrate(&self.pool, &self.config.schema)
            .await
            .map_err(|e| AccountError::Unavailable(format!("migrating accounts: {e}")))
    }

    /// The settings this store was connected with.
    pub fn config(&self) -> &PgAccountsConfig {
        &self.config
    }

    /// The pool (its connections' `search_path` is the accounts schema).
    pub fn pool(&self) -> &PgPool {
        &self.pool
    }

    /// Closes the pool's connections; later calls fail with `Unavailable`.
    pub async fn close(&self) {
        self.pool.close().await;
    }

    async fn user_where(&self, condition: &str, value: &str) -> Result<Option<User>> {
        let sql = format!("SELECT {USER_COLUMNS} FROM users WHERE {condition}");
        sqlx::query_as::<_, UserRow>(&sql)
            .bind(value)
            .fetch_optional(&self.pool)
            .await
            .map_err(db)?
            .map(user_from_row)
            .transpose()
    }
}

#[async_trait]
impl AccountStore for PgAccounts {
    async fn create_user(
        &self,
        email: &str,
        password_hash: &str,
        role: Role,
        now: Timestamp,
    ) -> Result<User> {
        let user = User::new(email, password_hash, role, now)?;
        // the unique index on email decides between racing signups
        let inserted = sqlx::query(
            "INSERT INTO users (id, email, password_hash, role, created_at) \
             VALUES ($1::uuid, $2, $3, $4, $5) ON CONFLICT (email) DO NOTHING",
        )
        .bind(user.id.to_string())
        .bind(&user.email)
        .bind(&user.password_hash)
        .bind(role.as_str())
        .bind(now.as_millis())
        .execute(&self.pool)
        .await
        .map_err(db)?
        .rows_affected();
        if inserted == 1 {
            Ok(user)
        } else {
            Err(AccountError::EmailTaken)
        }
    }

    async fn user_by_email(&self, email: &str) -> Result<User> {
        let email = normalize_email(email).map_err(|_| AccountError::NotFound)?;
        self.user_where("email = $1", &email)
            .await?
            .ok_or(AccountError::NotFound)
    }

    async fn user(&self, id: UserId) -> Result<User> {
        self.user_where("id = $1::uuid", &id.to_string())
            .await?
            .ok_or(AccountError::NotFound)
    }

    async fn ensure_admin(&self, email: &str, password_hash: &str, now: Timestamp) -> Result<User> {
        let email = normalize_email(email)?;
        check_password_hash(password_hash)?;
        let mut tx = self.pool.begin().await.map_err(db)?;
        // Of racing callers one inserts; the others find the row (locked) and update it.
        let inserted = sqlx::query(
            "INSERT INTO users (id, email, password_hash, role, created_at) \
             VALUES ($1::uuid, $2, $3, 'ADMIN', $4) ON CONFLICT (email) DO NOTHING",
        )
        .bind(UserId::new_at(now).to_string())
        .bind(&email)
        .bind(password_hash)
        .bind(now.as_millis())
        .execute(&mut *tx)
        .await
        .map_err(db)?
        .rows_affected();
        if inserted == 0 {
            let sql = format!("SELECT {USER_COLUMNS} FROM users WHERE email = $1 FOR UPDATE");
            let existing = sqlx::query_as::<_, UserRow>(&sql)
                .bind(&email)
                .fetch_one(&mut *tx)
                .await
                .map_err(db)?;
            let existing = user_from_row(existing)?;
            if existing.role != Role::Admin {
                return Err(AccountError::NotAnAdmin { email });
            }
            sqlx::query("UPDATE users SET password_hash = $2 WHERE id = $1::uuid")
                .bind(existing.id.to_string())
                .bind(password_hash)
                .execute(&mut *tx)
                .await
                .map_err(db)?;
            log_out_everywhere(&mut tx, &existing.id.to_string()).await?;
        }
        let sql = format!("SELECT {USER_COLUMNS} FROM users WHERE email = $1");
        let row = sqlx::query_as::<_, UserRow>(&sql)
            .bind(&email)
            .fetch_one(&mut *tx)
            .await
            .map_err(db)?;
        tx.commit().await.map_err(db)?;
        user_from_row(row)
    }

    async fn token_state(&self, user: UserId) -> Result<TokenState> {
        let row: Option<(i64, bool, Vec<String>)> =
            sqlx::query_as("SELECT token_version, blocked, tiers FROM users WHERE id = $1::uuid")
                .bind(user.to_string())
                .fetch_optional(&self.pool)
                .await
                .map_err(db)?;
        let Some((version, blocked, tiers)) = row else {
            return Ok(TokenState::default());
        };
        Ok(TokenState {
            version: u64::try_from(version)
                .map_err(|_| AccountError::Corrupt(format!("user {user}: bad token version")))?,
            blocked,
            tiers,
        })
    }

    async fn issue_refresh(
        &self,
        user: UserId,
        token: &TokenHash,
        family: FamilyId,
        expires_at: Timestamp,
        family_ends_at: Timestamp,
        _now: Timestamp,
    ) -> Result<()> {
        let mut tx = self.pool.begin().await.map_err(db)?;
        // creates the family if the user exists; a family already there is kept
        sqlx::query(
            "INSERT INTO refresh_families (id, user_id, ends_at) \
             SELECT $1::uuid, id, $3 FROM users WHERE id = $2::uuid \
             ON CONFLICT (id) DO NOTHING",
        )
        .bind(family.to_string())
        .bind(user.to_string())
        .bind(family_ends_at.as_millis())
        .execute(&mut *tx)
        .await
        .map_err(db)?;
        let owner: Option<(String, Option<i64>)> = sqlx::query_as(
            "SELECT user_id::text, ends_at FROM refresh_families WHERE id = $1::uuid",
        )
        .bind(family.to_string())
        .fetch_optional(&mut *tx)
        .await
        .map_err(db)?;
        let expires_at = match owner {
            None => return Err(AccountError::NotFound),
            Some((owner, _)) if owner != user.to_string() => {
                return Err(AccountError::Invalid(
                    "the token family belongs to another user".into(),
                ));
            }
            // a token never outlives its family's absolute end
            Some((_, ends_at)) => {
                ends_at.map_or(expires_at.as_millis(), |e| e.min(expires_at.as_millis()))
            }
        };
        let inserted = sqlx::query(
            "INSERT INTO refresh_tokens (hash, family, user_id, expires_at) \
             VALUES ($1, $2::uuid, $3::uuid, $4) ON CONFLICT (hash) DO NOTHING",
        )
        .bind(token.as_bytes().as_slice())
        .bind(family.to_string())
        .bind(user.to_string())
        .bind(expires_at)
        .execute(&mut *tx)
        .await
        .map_err(db)?
        .rows_affected();
        if inserted != 1 {
            return Err(AccountError::Invalid(
                "this token hash is already stored".into(),
            ));
        }
        tx.commit().await.map_err(db)
    }

    async fn rotate_refresh(
        &self,
        old: &TokenHash,
        new: &TokenHash,
        now: Timestamp,
        new_expires_at: Timestamp,
    ) -> Result<Rotation> {
        let mut tx = self.pool.begin().await.map_err(db)?;
        // Locks the token's row and its family's row: racing rotations of one token, and
        // revocations of its family, wait here and then see what the winner wrote.
        type Row = (String, String, i64, bool, bool, Option<i64>, String, i64);
        let row: Option<Row> = sqlx::query_as(
            "SELECT t.family::text, t.user_id::text, t.expires_at, t.used, f.revoked, \
                    f.ends_at, u.role, u.token_version \
             FROM refresh_tokens t \
             JOIN refresh_families f ON f.id = t.family \
             JOIN users u ON u.id = t.user_id \
             WHERE t.hash = $1 \
             FOR UPDATE OF t, f",
        )
        .bind(old.as_bytes().as_slice())
        .fetch_optional(&mut *tx)
        .await
        .map_err(db)?;
        let Some((family, user, expires_at, used, revoked, ends_at, role, version)) = row else {
            return Err(AccountError::TokenUnknown);
        };
        if used {
            sqlx::query("UPDATE refresh_families SET revoked = true WHERE id = $1::uuid")
                .bind(&family)
                .execute(&mut *tx)
                .await
                .map_err(db)?;
            tx.commit().await.map_err(db)?;
            return Err(AccountError::TokenReused);
        }
        if revoked {
            return Err(AccountError::TokenRevoked);
        }
        if now.as_millis() >= expires_at || ends_at.is_some_and(|e| now.as_millis() >= e) {
            return Err(AccountError::TokenExpired);
        }
        let user_id: UserId = parse_id(&user, "user id")?;
        let role: Role = parse_id(&role, "role")?;
        let token_version = u64::try_from(version)
            .map_err(|_| AccountError::Corrupt(format!("user {user}: bad token version")))?;
        let new_expires_at = ends_at.map_or(new_expires_at.as_millis(), |e| {
            e.min(new_expires_at.as_millis())
        });
        sqlx::query("UPDATE refresh_tokens SET used = true WHERE hash = $1")
            .bind(old.as_bytes().as_slice())
            .execute(&mut *tx)
            .await
            .map_err(db)?;
        let inserted = sqlx::query(
            "INSERT INTO refresh_tokens (hash, family, user_id, expires_at) \
             VALUES ($1, $2::uuid, $3::uuid, $4) ON CONFLICT (hash) DO NOTHING",
        )
        .bind(new.as_bytes().as_slice())
        .bind(&family)
        .bind(&user)
        .bind(new_expires_at)
        .execute(&mut *tx)
        .await
        .map_err(db)?
        .rows_affected();
        if inserted != 1 {
            // dropping the transaction rolls back the `used` mark
            return Err(AccountError::Invalid(
                "this token hash is already stored".into(),
            ));
        }
        tx.commit().await.map_err(db)?;
        Ok(Rotation {
            user: user_id,
            role,
            token_version,
            expires_at: Timestamp::from_millis(new_expires_at),
        })
    }

    async fn refresh_token(&self, token: &TokenHash) -> Result<Option<RefreshToken>> {
        let row: Option<(String, String, i64, bool, bool)> = sqlx::query_as(
            "SELECT t.family::text, t.user_id::text, t.expires_at, t.used, f.revoked \
             FROM refresh_tokens t JOIN refresh_families f ON f.id = t.family \
             WHERE t.hash = $1",
        )
        .bind(token.as_bytes().as_slice())
        .fetch_optional(&self.pool)
        .await
        .map_err(db)?;
        let Some((family, user, expires_at, used, revoked)) = row else {
            return Ok(None);
        };
        Ok(Some(RefreshToken {
            hash: *token,
            family: parse_id(&family, "family id")?,
            user: parse_id(&user, "user id")?,
            expires_at: Timestamp::from_millis(expires_at),
            used,
            revoked,
        }))
    }

    async fn revoke_family(&self, family: FamilyId) -> Result<()> {
        sqlx::query("UPDATE refresh_families SET revoked = true WHERE id = $1::uuid")
            .bind(family.to_string())
            .execute(&self.pool)
            .await
            .map_err(db)?;
        Ok(())
    }

    async fn revoke_user_tokens(&self, user: UserId) -> Result<()> {
        let mut conn = self.pool.acquire().await.map_err(db)?;
        log_out_everywhere(&mut conn, &user.to_string()).await
    }

    async fn set_role(
        &self,
        actor: UserId,
        target: UserId,
        role: Role,
        now: Timestamp,
    ) -> Result<Option<AccountAuditRecord>> {
        self.change(actor, target, AccountChange::Role, now, |user| {
            if actor == target {
                return Err(AccountError::OwnAccount);
            }
            Ok((user.role != role).then(|| {
                let to = role.as_str().to_owned();
                (user.role.as_str().to_owned(), to, Update::Role(role))
            }))
        })
        .await
    }

    async fn set_tiers(
        &self,
        actor: UserId,
        target: UserId,
        tiers: &[String],
        now: Timestamp,
    ) -> Result<Option<AccountAuditRecord>> {
        check_tiers(tiers)?;
        self.change(actor, target, AccountChange::Tiers, now, |user| {
            Ok((user.tiers != tiers).then(|| {
                let update = Update::Tiers(tiers.to_vec());
                (tiers_text(&user.tiers), tiers_text(tiers), update)
            }))
        })
        .await
    }

    async fn set_blocked(
        &self,
        actor: UserId,
        target: UserId,
        blocked: bool,
        now: Timestamp,
    ) -> Result<Option<AccountAuditRecord>> {
        self.change(actor, target, AccountChange::Blocked, now, |user| {
            if actor == target {
                return Err(AccountError::OwnAccount);
            }
            if user.blocked == blocked {
                return Ok(None);
            }
            if blocked && user.role == Role::Admin {
                return Err(AccountError::AdminNotBlockable);
            }
            let (from, to) = (user.blocked.to_string(), blocked.to_string());
            Ok(Some((from, to, Update::Blocked(blocked))))
        })
        .await
    }

    async fn account_audit(
        &self,
        after: Option<u64>,
        limit: usize,
    ) -> Result<Vec<AccountAuditRecord>> {
        let after = i64::try_from(after.unwrap_or(0)).unwrap_or(i64::MAX);
        let limit = i64::try_from(limit).unwrap_or(i64::MAX);
        let sql = format!(
            "SELECT {AUDIT_COLUMNS} FROM account_audit WHERE seq > $1 ORDER BY seq LIMIT $2"
        );
        sqlx::query_as::<_, AuditRow>(&sql)
            .bind(after)
            .bind(limit)
            .fetch_all(&self.pool)
            .await
            .map_err(db)?
            .into_iter()
            .map(audit_from_row)
            .collect()
    }

    async fn purge_expired(&self, before: Timestamp) -> Result<u64> {
        let mut tx = self.pool.begin().await.map_err(db)?;
        let removed = sqlx::query("DELETE FROM refresh_tokens WHERE expires_at < $1")
            .bind(before.as_millis())
            .execute(&mut *tx)
            .await
            .map_err(db)?
            .rows_affected();
        sqlx::query(
            "DELETE FROM refresh_families f \
             WHERE NOT EXISTS (SELECT 1 FROM refresh_tokens t WHERE t.family = f.id)",
        )
        .execute(&mut *tx)
        .await
        .map_err(db)?;
        tx.commit().await.map_err(db)?;
        Ok(removed)
    }
}
