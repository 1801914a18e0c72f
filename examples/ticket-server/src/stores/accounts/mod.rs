//! User accounts and refresh tokens: the server's [`AccountStore`] and its three backends.
//!
//! * [`MemoryAccounts`]: one process, one mutex; for the default in-memory server and tests.
//! * [`RedisAccounts`]: every write one Lua script, so several server processes on one Redis
//!   agree.
//! * [`PgAccounts`]: tables in their own schema (embedded migrations), unique index on the
//!   email, `INSERT … ON CONFLICT` and row locks, so several server processes on one
//!   PostgreSQL agree.
//!
//! Every backend keeps everything correctness needs in the backend itself: no answer depends
//! on state held only in one process's memory.
//!
//! # Refresh tokens
//!
//! A refresh token is never stored: the store keeps its SHA-256 ([`TokenHash::of`]) with the
//! token's *family* (every token obtained by rotating one login), the user, the expiry and a
//! `used` flag. [`AccountStore::rotate_refresh`] implements refresh-token rotation with reuse
//! detection: the presented token must exist, be unused, unexpired and its family not
//! revoked; it is marked used and its successor is stored in the same family, in one atomic
//! step. Presenting a token that was already rotated is evidence that it was copied: the whole
//! family is revoked (the legitimate successor stops working too) and the answer is
//! [`AccountError::TokenReused`].
//!
//! # Time
//!
//! Methods whose result depends on time receive `now` (a [`Timestamp`] from the server's
//! injected clock): expiry is decided by that clock, never by the clock of Redis or
//! PostgreSQL.

mod changes;
mod identities;
mod ids;
mod memory;
mod pg;
mod pg_changes;
mod redis;

use std::fmt;
use std::str::FromStr;

use async_trait::async_trait;
use serde::{Deserialize, Serialize};
use ticket_core::Timestamp;

pub use self::redis::{RedisAccounts, RedisAccountsConfig};
pub use changes::{
    AccountAuditRecord, AccountChange, MAX_TIER_LEN, MAX_TIERS, Rotation, TokenState, check_tiers,
};
pub use identities::{IdentityStore, MAX_SUBJECT_LEN, NO_PASSWORD, check_identity};
pub use ids::{FamilyId, TokenHash, UserId};
pub use memory::MemoryAccounts;
pub use pg::{PgAccounts, PgAccountsConfig};

/// The result of every account operation.
pub type Result<T, E = AccountError> = std::result::Result<T, E>;

/// What an account operation can answer instead of a result.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AccountError {
    /// Another account already has this (normalised) email. Nothing was written.
    #[error("an account with this email already exists")]
    EmailTaken,
    /// No user with this id or email.
    #[error("no such user")]
    NotFound,
    /// No refresh token with this hash is stored (never issued, or purged long after expiry).
    #[error("unknown refresh token")]
    TokenUnknown,
    /// The refresh token's expiry has passed. Nothing was written.
    #[error("refresh token expired")]
    TokenExpired,
    /// The refresh token was already rotated and is presented again: its whole family has been
    /// revoked, successors included.
    #[error("refresh token already used; every token of its family is revoked")]
    TokenReused,
    /// The token's family was revoked (logout, logout everywhere, or an earlier reuse).
    /// Nothing was written.
    #[error("refresh token revoked")]
    TokenRevoked,
    /// The start-up admin's email belongs to an account that is not an admin (someone signed
    /// up with it). Nothing was written: the account is never promoted at start.
    #[error(
        "the account {email} exists and is not an admin; it is never promoted at start: \
         choose another --admin-email, or have an admin grant it the ADMIN role \
         (PUT /api/admin/users/{{id}}/role)"
    )]
    NotAnAdmin {
        /// The normalised email.
        email: String,
    },
    /// An admin tried to change their own role or block themselves. Nothing was written.
    #[error("an admin cannot change their own role or block themselves")]
    OwnAccount,
    /// The change would leave no admin. Nothing was written.
    #[error("the last admin cannot be demoted")]
    LastAdmin,
    /// Admins cannot be blocked (demote first). Nothing was written.
    #[error("an admin cannot be blocked; change the role first")]
    AdminNotBlockable,
    /// The input is malformed (e.g. not an email address, an empty password hash, a bad
    /// setting, a token hash issued twice). Nothing was written.
    #[error("invalid input: {0}")]
    Invalid(String),
    /// The backend holds data this code cannot read.
    #[error("corrupt account data: {0}")]
    Corrupt(String),
    /// The backend failed or could not be reached; the outcome of a write is unknown.
    #[error("account storage unavailable: {0}")]
    Unavailable(String),
    /// The external identity (provider, subject) is linked to another account already.
    /// Nothing was written.
    #[error("this external identity is linked to another account")]
    IdentityTaken,
}

/// A user's role. Serialised (and stored) as `USER` / `ADMIN` / `GATE`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum Role {
    /// A buyer.
    User,
    /// May use the admin routes (events, policies, stats, audit, users, the gate).
    Admin,
    /// Gate staff: may scan tickets at the gate, nothing else (not even buy).
    Gate,
}

impl Role {
    /// Every role.
    pub const ALL: [Role; 3] = [Role::User, Role::Admin, Role::Gate];

    /// `"USER"`, `"ADMIN"` or `"GATE"`: the stored and serialised form.
    pub const fn as_str(self) -> &'static str {
        match self {
            Role::User => "USER",
            Role::Admin => "ADMIN",
            Role::Gate => "GATE",
        }
    }
}

impl fmt::Display for Role {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Role {
    type Err = AccountError;
    /// Parses `USER`, `ADMIN` or `GATE` exactly; anything else is [`AccountError::Invalid`].
    fn from_str(s: &str) -> Result<Self> {
        match s {
            "USER" => Ok(Role::User),
            "ADMIN" => Ok(Role::Admin),
            "GATE" => Ok(Role::Gate),
            _ => Err(AccountError::Invalid(format!(
                "not a role: {:?}",
                truncated(s)
            ))),
        }
    }
}

/// A user account as stored.
///
/// `Debug` does not print the password hash.
#[derive(Clone, PartialEq, Eq)]
pub struct User {
    /// The account's id, fixed at creation.
    pub id: UserId,
    /// The normalised email ([`normalize_email`]); unique among accounts.
    pub email: String,
    /// The password hash as the caller gave it (a PHC string such as `$argon2id$…`); opaque
    /// to the store.
    pub password_hash: String,
    /// The account's role; changed only by an admin ([`AccountStore::set_role`]).
    pub role: Role,
    /// When the account was created (the `now` given to the creating call).
    pub created_at: Timestamp,
    /// The buyer's tiers (presales, tier-reserved grades); set only by an admin
    /// ([`AccountStore::set_tiers`]). Never taken from a buyer's request.
    pub tiers: Vec<String>,
    /// Blocked by an admin: may not join queues, hold or pay.
    pub blocked: bool,
    /// The access-token version: an access token is accepted only while its `ver` claim
    /// equals it. Bumped by logout, role changes, blocking and password changes.
    pub token_version: u64,
}

impl User {
    /// A new account as every store creates it: the email normalised ([`normalize_email`]),
    /// the hash checked (non-empty, bounded), a fresh id minted from `now`, no tiers, not
    /// blocked, token version 0. Writes nothing: the store then inserts it, refusing a taken
    /// email with [`AccountError::EmailTaken`].
    pub fn new(email: &str, password_hash: &str, role: Role, now: Timestamp) -> Result<Self> {
        let email = normalize_email(email)?;
        check_password_hash(password_hash)?;
        Ok(Self {
            id: UserId::new_at(now),
            email,
            password_hash: password_hash.to_owned(),
            role,
            created_at: now,
            tiers: Vec::new(),
            blocked: false,
            token_version: 0,
        })
    }
}

impl fmt::Debug for User {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("User")
            .field("id", &self.id)
            .field("email", &self.email)
            .field("password_hash", &"<redacted>")
            .field("role", &self.role)
            .field("created_at", &self.created_at)
            .field("tiers", &self.tiers)
            .field("blocked", &self.blocked)
            .field("token_version", &self.token_version)
            .finish()
    }
}

/// A stored refresh token (by hash) and the state of its family.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RefreshToken {
    /// SHA-256 of the token.
    pub hash: TokenHash,
    /// The family the token belongs to.
    pub family: FamilyId,
    /// The user the token was issued to.
    pub user: UserId,
    /// The token cannot be rotated at or after this instant.
    pub expires_at: Timestamp,
    /// The token was rotated (exchanged for its successor) already.
    pub used: bool,
    /// The token's family is revoked: no token of it can be rotated any more.
    pub revoked: bool,
}

/// Longest accepted email, in characters (after normalisation).
pub const MAX_EMAIL_LEN: usize = 254;
/// Longest accepted password hash, in bytes.
pub const MAX_PASSWORD_HASH_LEN: usize = 1024;

/// Normalises an email: surrounding whitespace trimmed, lower-cased. Refuses with
/// [`AccountError::Invalid`] anything that is not `local@domain` with a non-empty name, a
/// dotted domain without empty labels, exactly one `@`, no whitespace or control characters,
/// at most [`MAX_EMAIL_LEN`] characters.
/// Two inputs that normalise to the same string name the same account.
pub fn normalize_email(email: &str) -> Result<String> {
    let email = email.trim().to_lowercase();
    let bad = |why: &str| Err(AccountError::Invalid(format!("email {why}")));
    if email.is_empty() {
        return bad("is empty");
    }
    if email.chars().count() > MAX_EMAIL_LEN {
        return bad("is too long");
    }
    if email.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return bad("contains whitespace or control characters");
    }
    match email.split_once('@') {
        Some((local, domain))
            if !local.is_empty()
                && !domain.contains('@')
                && domain.split('.').count() >= 2
                && domain.split('.').all(|label| !label.is_empty()) =>
        {
            Ok(email)
        }
        _ => bad("must look like name@example.com"),
    }
}

/// Checks a password hash the stores will keep: non-empty, at most
/// [`MAX_PASSWORD_HASH_LEN`] bytes, no control characters.
fn check_password_hash(hash: &str) -> Result<()> {
    if hash.is_empty() || hash.len() > MAX_PASSWORD_HASH_LEN || hash.chars().any(char::is_control) {
        return Err(AccountError::Invalid(
            "password hash must be 1..=1024 bytes without control characters".into(),
        ));
    }
    Ok(())
}

/// The user accounts and refresh tokens of the server, on one backend.
///
/// Every method is atomic: concurrent calls, from this process or from other server
/// processes on the same backend, behave as if run one after the other. Object-safe, so the
/// server holds an `Arc<dyn AccountStore>` chosen at start-up.
#[async_trait]
pub trait AccountStore: IdentityStore + Send + Sync {
    /// Creates an account with a fresh [`UserId`] minted at `now`. The email is normalised
    /// ([`normalize_email`]). If an account with that email exists the answer is
    /// [`AccountError::EmailTaken`] and nothing changes: of any number of racing signups with
    /// one email, exactly one succeeds.
    async fn create_user(
        &self,
        email: &str,
        password_hash: &str,
        role: Role,
        now: Timestamp,
    ) -> Result<User>;

    /// The account with this email (normalised first), or [`AccountError::NotFound`]
    /// (also for input that is no valid email).
    async fn user_by_email(&self, email: &str) -> Result<User>;

    /// The account with this id, or [`AccountError::NotFound`].
    async fn user(&self, id: UserId) -> Result<User>;

    /// Makes sure the start-up admin account with this email exists, atomically:
    ///
    /// * no account has the email: creates it as [`Role::Admin`] with `password_hash`,
    ///   created at `now`;
    /// * the account is an admin: replaces its password hash with `password_hash` (a changed
    ///   `--admin-password` takes effect), bumps its token version and revokes its refresh
    ///   tokens, as any password change does;
    /// * the account is not an admin: [`AccountError::NotAnAdmin`] and nothing changes. A
    ///   stranger who signed up with the admin's email is never promoted.
    ///
    /// Safe when several server processes run it at once: exactly one account results.
    /// Callers that only want the account to exist check the password first and call this
    /// only when it differs, so a restart does not log the admin out.
    async fn ensure_admin(&self, email: &str, password_hash: &str, now: Timestamp) -> Result<User>;

    /// The access-token state of `user`: its token version and whether it is blocked. The
    /// one read made for every authenticated request (memory: a map lookup; Redis: one
    /// `HMGET`; PostgreSQL: one primary-key `SELECT`). An unknown user answers the default
    /// (version 0, not blocked).
    async fn token_state(&self, user: UserId) -> Result<TokenState>;

    /// Stores a new refresh token (by hash) for `user` in `family` (a new family for a
    /// login), unused, valid until `expires_at` but never past the family's absolute end:
    /// `family_ends_at` for a new family (kept with it), the stored end for an existing one.
    /// `now` lets the backend size how long it keeps the record. [`AccountError::NotFound`] if the user does not exist;
    /// [`AccountError::Invalid`] if the family belongs to another user or the hash is
    /// already stored. A token issued into a revoked family can never be rotated.
    async fn issue_refresh(
        &self,
        user: UserId,
        token: &TokenHash,
        family: FamilyId,
        expires_at: Timestamp,
        family_ends_at: Timestamp,
        now: Timestamp,
    ) -> Result<()>;

    /// Rotates a refresh token, atomically: the token `old` must be stored, unused, not
    /// expired at `now` (valid while `now < expires_at`, and `now` before its family's
    /// absolute end) and its family not revoked; it is then marked used and `new` is stored
    /// in the same family, valid until `new_expires_at` capped at the family's end (rotation
    /// never extends a login past its absolute lifetime). Answers the token's user, that
    /// user's current role and token version, and the new token's expiry.
    ///
    /// Checked in this order: unknown hash → [`AccountError::TokenUnknown`]; already used →
    /// the family is revoked and the answer is [`AccountError::TokenReused`]; family revoked
    /// → [`AccountError::TokenRevoked`]; expired or past the family's end →
    /// [`AccountError::TokenExpired`]; `new`
    /// already stored → [`AccountError::Invalid`]. Only the reuse answer writes anything.
    /// Of any number of racing rotations of one token exactly one succeeds (the others see
    /// a used token).
    async fn rotate_refresh(
        &self,
        old: &TokenHash,
        new: &TokenHash,
        now: Timestamp,
        new_expires_at: Timestamp,
    ) -> Result<Rotation>;

    /// The stored record of a refresh token, or `None`. A read, for inspection and tests.
    async fn refresh_token(&self, token: &TokenHash) -> Result<Option<RefreshToken>>;

    /// Revokes a family (logout): no token of it can be rotated afterwards. Idempotent; an
    /// unknown family is no error.
    async fn revoke_family(&self, family: FamilyId) -> Result<()>;

    /// Logs `user` out everywhere, atomically: revokes every family (no refresh token issued
    /// before this call can be rotated afterwards) and bumps the token version (no access
    /// token issued before this call is accepted afterwards). Tokens issued later (a new
    /// login) work. An unknown user is no error and gets no record.
    async fn revoke_user_tokens(&self, user: UserId) -> Result<()>;

    /// An admin (`actor`) changes `target`'s role, atomically with its audit record. Bumps
    /// the target's token version (their access tokens stop at once; a refresh gives one
    /// with the new role). Refused, with nothing written: unknown target →
    /// [`AccountError::NotFound`]; `actor == target` → [`AccountError::OwnAccount`];
    /// demoting the only admin → [`AccountError::LastAdmin`] (decided atomically, so two
    /// admins demoting each other at once leave one). The same role again answers `None`
    /// and writes nothing.
    async fn set_role(
        &self,
        actor: UserId,
        target: UserId,
        role: Role,
        now: Timestamp,
    ) -> Result<Option<AccountAuditRecord>>;

    /// An admin sets `target`'s tiers (checked with [`check_tiers`]), atomically with its
    /// audit record. The same tiers again answer `None` and write nothing;
    /// [`AccountError::NotFound`] for an unknown target.
    async fn set_tiers(
        &self,
        actor: UserId,
        target: UserId,
        tiers: &[String],
        now: Timestamp,
    ) -> Result<Option<AccountAuditRecord>>;

    /// An admin blocks or unblocks `target`, atomically with its audit record. Blocking also
    /// bumps the token version and revokes every refresh family (the user's tokens stop at
    /// once). Refused, with nothing written: unknown target → [`AccountError::NotFound`];
    /// `actor == target` → [`AccountError::OwnAccount`]; blocking an admin →
    /// [`AccountError::AdminNotBlockable`]. The same state again answers `None`.
    async fn set_blocked(
        &self,
        actor: UserId,
        target: UserId,
        blocked: bool,
        now: Timestamp,
    ) -> Result<Option<AccountAuditRecord>>;

    /// The account audit trail, oldest first: up to `limit` records with a sequence number
    /// above `after` (all from the start with `None`). Sequence numbers grow in the order
    /// changes were committed, so paging by the last `seq` seen never skips a record.
    async fn account_audit(
        &self,
        after: Option<u64>,
        limit: usize,
    ) -> Result<Vec<AccountAuditRecord>>;

    /// Forgets refresh tokens that expired before `before`, and families left without any
    /// token; returns how many tokens were removed. Housekeeping only: a forgotten token
    /// answers [`AccountError::TokenUnknown`] instead of `TokenExpired`/`TokenReused`, so
    /// pass an instant well before now. Redis forgets expired records by itself (key TTLs)
    /// and answers 0.
    async fn purge_expired(&self, before: Timestamp) -> Result<u64>;
}

/// The first 64 characters of `s`, for error messages.
fn truncated(s: &str) -> String {
    s.chars().take(64).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn emails_are_trimmed_and_lower_cased() {
        assert_eq!(
            normalize_email("  Ann@Example.ORG \n").as_deref(),
            Ok("ann@example.org")
        );
        for bad in ["", "   ", "ann", "@x", "ann@", "a@b@c", "a b@c", "a\u{0}@c"] {
            assert!(
                matches!(normalize_email(bad), Err(AccountError::Invalid(_))),
                "{bad:?}"
            );
        }
        assert!(normalize_email(&format!("{}@x.org", "a".repeat(300))).is_err());
    }

    #[test]
    fn token_hashes_are_sha256_and_round_trip_through_hex() {
        let h = TokenHash::of("abc");
        assert_eq!(
            h.to_hex(),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
        assert_eq!(TokenHash::from_hex(&h.to_hex()), Ok(h));
        assert!(TokenHash::from_hex("zz").is_err());
    }

    #[test]
    fn roles_and_ids_parse() {
        assert_eq!("ADMIN".parse::<Role>(), Ok(Role::Admin));
        assert!("admin".parse::<Role>().is_err());
        for role in Role::ALL {
            assert_eq!(role.as_str().parse::<Role>(), Ok(role));
        }
        let id = UserId::new_at(Timestamp::from_millis(1_700_000_000_000));
        assert_eq!(id.to_string().parse::<UserId>(), Ok(id));
        assert!("nope".parse::<UserId>().is_err());
    }

    #[test]
    fn user_debug_hides_the_password_hash() {
        let user = User {
            id: UserId::new_at(Timestamp::from_millis(0)),
            email: "a@b".into(),
            password_hash: "$argon2id$secret".into(),
            role: Role::User,
            created_at: Timestamp::from_millis(0),
            tiers: Vec::new(),
            blocked: false,
            token_version: 0,
        };
        assert!(!format!("{user:?}").contains("secret"));
    }
}
