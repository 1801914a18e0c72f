//! The in-memory backend: one mutex around every map, so each method is one critical
//! section.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;

use async_trait::async_trait;
use parking_lot::Mutex;
use ticket_core::Timestamp;

use super::changes::tiers_text;
use super::{
    AccountAuditRecord, AccountChange, AccountError, AccountStore, FamilyId, RefreshToken, Result,
    Role, Rotation, TokenHash, TokenState, User, UserId, check_password_hash, check_tiers,
    normalize_email,
};

/// Accounts in this process's memory, for a single server process and tests. Every method
/// runs under one mutex (never held across an `.await`), so each is atomic. Cheap to clone:
/// clones share the data.
#[derive(Debug, Clone, Default)]
pub struct MemoryAccounts {
    pub(super) state: Arc<Mutex<State>>,
}

#[derive(Debug, Default)]
pub(super) struct State {
    pub(super) users: HashMap<UserId, User>,
    pub(super) by_email: HashMap<String, UserId>,
    tokens: HashMap<TokenHash, Token>,
    families: HashMap<FamilyId, Family>,
    user_families: HashMap<UserId, HashSet<FamilyId>>,
    audit: Vec<AccountAuditRecord>,
    /// Social-login links and one-time records ([`super::identities`]).
    pub(super) social: super::identities::MemorySocial,
}

#[derive(Debug, Clone)]
struct Token {
    family: FamilyId,
    user: UserId,
    expires_at: Timestamp,
    used: bool,
}

#[derive(Debug, Clone)]
struct Family {
    user: UserId,
    revoked: bool,
    ends_at: Timestamp,
}

impl MemoryAccounts {
    /// An empty store.
    pub fn new() -> Self {
        Self::default()
    }
}

impl State {
    pub(super) fn insert_user(&mut self, user: User) {
        self.by_email.insert(user.email.clone(), user.id);
        self.users.insert(user.id, user);
    }

    /// Revokes every family of `user` and bumps their token version.
    fn log_out_everywhere(&mut self, user: UserId) {
        let families: Vec<FamilyId> = self
            .user_families
            .get(&user)
            .map(|s| s.iter().copied().collect())
            .unwrap_or_default();
        for family in families {
            if let Some(f) = self.families.get_mut(&family) {
                f.revoked = true;
            }
        }
        if let Some(u) = self.users.get_mut(&user) {
            u.token_version += 1;
        }
    }

    /// Appends an audit record and returns it.
    fn record(
        &mut self,
        actor: UserId,
        target: UserId,
        change: AccountChange,
        from: String,
        to: String,
        at: Timestamp,
    ) -> AccountAuditRecord {
        let record = AccountAuditRecord {
            seq: u64::try_from(self.audit.len()).unwrap_or(u64::MAX) + 1,
            at,
            actor,
            target,
            change,
            from,
            to,
        };
        self.audit.push(record.clone());
        record
    }

    fn target(&mut self, target: UserId) -> Result<&mut User> {
        self.users.get_mut(&target).ok_or(AccountError::NotFound)
    }
}

#[async_trait]
impl AccountStore for MemoryAccounts {
    async fn create_user(
        &self,
        email: &str,
        password_hash: &str,
        role: Role,
        now: Timestamp,
    ) -> Result<User> {
        let user = User::new(email, password_hash, role, now)?;
        let mut state = self.state.lock();
        if state.by_email.contains_key(&user.email) {
            return Err(AccountError::EmailTaken);
        }
        state.insert_user(user.clone());
        Ok(user)
    }

    async fn user_by_email(&self, email: &str) -> Result<User> {
        let email = normalize_email(email).map_err(|_| AccountError::NotFound)?;
        let state = self.state.lock();
        state
            .by_email
            .get(&email)
            .and_then(|id| state.users.get(id))
            .cloned()
            .ok_or(AccountError::NotFound)
    }

    async fn user(&self, id: UserId) -> Result<User> {
        self.state
            .lock()
            .users
            .get(&id)
            .cloned()
            .ok_or(AccountError::NotFound)
    }

    async fn ensure_admin(&self, email: &str, password_hash: &str, now: Timestamp) -> Result<User> {
        let email = normalize_email(email)?;
        check_password_hash(password_hash)?;
        let mut state = self.state.lock();
        let existing = state.by_email.get(&email).copied();
        if let Some(id) = existing {
            let user = state
                .users
                .get_mut(&id)
                .ok_or_else(|| AccountError::Corrupt(format!("email index names {id}")))?;
            if user.role != Role::Admin {
                return Err(AccountError::NotAnAdmin { email });
            }
            user.password_hash = password_hash.to_owned();
            state.log_out_everywhere(id);
            return state.users.get(&id).cloned().ok_or(AccountError::NotFound);
        }
        let user = User {
            id: UserId::new_at(now),
            email,
            password_hash: password_hash.to_owned(),
            role: Role::Admin,
            created_at: now,
            tiers: Vec::new(),
            blocked: false,
            token_version: 0,
        };
        state.insert_user(user.clone());
        Ok(user)
    }

    async fn token_state(&self, user: UserId) -> Result<TokenState> {
        Ok(self
            .state
            .lock()
            .users
            .get(&user)
            .map(|u| TokenState {
                version: u.token_version,
                blocked: u.blocked,
                tiers: u.tiers.clone(),
            })
            .unwrap_or_default())
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
        let mut state = self.state.lock();
        if !state.users.contains_key(&user) {
            return Err(AccountError::NotFound);
        }
        if let Some(f) = state.families.get(&family)
            && f.user != user
        {
            return Err(AccountError::Invalid(
                "the token family belongs to another user".into(),
            ));
        }
        if state.tokens.contains_key(token) {
            return Err(AccountError::Invalid(
                "this token hash is already stored".into(),
            ));
        }
        let ends_at = state
            .families
            .entry(family)
            .or_insert(Family {
                user,
                revoked: false,
                ends_at: family_ends_at,
            })
            .ends_at;
        state.user_families.entry(user).or_default().insert(family);
        state.tokens.insert(
            *token,
            Token {
                family,
                user,
                expires_at: expires_at.min(ends_at),
                used: false,
            },
        );
        Ok(())
    }

    async fn rotate_refresh(
        &self,
        old: &TokenHash,
        new: &TokenHash,
        now: Timestamp,
        new_expires_at: Timestamp,
    ) -> Result<Rotation> {
        let mut state = self.state.lock();
        let Some(token) = state.tokens.get(old).cloned() else {
            return Err(AccountError::TokenUnknown);
        };
        if token.used {
            if let Some(f) = state.families.get_mut(&token.family) {
                f.revoked = true;
            }
            return Err(AccountError::TokenReused);
        }
        // a token whose family record is gone is treated as revoked
        let ends_at = match state.families.get(&token.family) {
            Some(f) if !f.revoked => f.ends_at,
            _ => return Err(AccountError::TokenRevoked),
        };
        if now >= token.expires_at || now >= ends_at {
            return Err(AccountError::TokenExpired);
        }
        let (role, token_version) = state
            .users
            .get(&token.user)
            .map(|u| (u.role, u.token_version))
            .ok_or(AccountError::TokenUnknown)?;
        let new_expires_at = new_expires_at.min(ends_at);
        if state.tokens.contains_key(new) {
            return Err(AccountError::Invalid(
                "this token hash is already stored".into(),
            ));
        }
        if let Some(t) = state.tokens.get_mut(old) {
            t.used = true;
        }
        state.tokens.insert(
            *new,
            Token {
                family: token.family,
                user: token.user,
                expires_at: new_expires_at,
                used: false,
            },
        );
        Ok(Rotation {
            user: token.user,
            role,
            token_version,
            expires_at: new_expires_at,
        })
    }

    async fn refresh_token(&self, token: &TokenHash) -> Result<Option<RefreshToken>> {
        let state = self.state.lock();
        Ok(state.tokens.get(token).map(|t| RefreshToken {
            hash: *token,
            family: t.family,
            user: t.user,
            expires_at: t.expires_at,
            used: t.used,
            revoked: state.families.get(&t.family).is_none_or(|f| f.revoked),
        }))
    }

    async fn revoke_family(&self, family: FamilyId) -> Result<()> {
        if let Some(f) = self.state.lock().families.get_mut(&family) {
            f.revoked = true;
        }
        Ok(())
    }

    async fn revoke_user_tokens(&self, user: UserId) -> Result<()> {
        self.state.lock().log_out_everywhere(user);
        Ok(())
    }

    async fn set_role(
        &self,
        actor: UserId,
        target: UserId,
        role: Role,
        now: Timestamp,
    ) -> Result<Option<AccountAuditRecord>> {
        let mut state = self.state.lock();
        let from = state.target(target)?.role;
        if actor == target {
            return Err(AccountError::OwnAccount);
        }
        if from == role {
            return Ok(None);
        }
        if from == Role::Admin
            && state
                .users
                .values()
                .filter(|u| u.role == Role::Admin)
                .count()
                <= 1
        {
            return Err(AccountError::LastAdmin);
        }
        let user = state.target(target)?;
        user.role = role;
        user.token_version += 1;
        let (from, to) = (from.as_str().to_owned(), role.as_str().to_owned());
        Ok(Some(state.record(
            actor,
            target,
            AccountChange::Role,
            from,
            to,
            now,
        )))
    }

    async fn set_tiers(
        &self,
        actor: UserId,
        target: UserId,
        tiers: &[String],
        now: Timestamp,
    ) -> Result<Option<AccountAuditRecord>> {
        check_tiers(tiers)?;
        let mut state = self.state.lock();
        let user = state.target(target)?;
        if user.tiers == tiers {
            return Ok(None);
        }
        let from = tiers_text(&user.tiers);
        user.tiers = tiers.to_vec();
        let to = tiers_text(tiers);
        Ok(Some(state.record(
            actor,
            target,
            AccountChange::Tiers,
            from,
            to,
            now,
        )))
    }

    async fn set_blocked(
        &self,
        actor: UserId,
        target: UserId,
        blocked: bool,
        now: Timestamp,
    ) -> Result<Option<AccountAuditRecord>> {
        let mut state = self.state.lock();
        let user = state.target(target)?;
        let (from, role) = (user.blocked, user.role);
        if actor == target {
            return Err(AccountError::OwnAccount);
        }
        if from == blocked {
            return Ok(None);
        }
        if blocked && role == Role::Admin {
            return Err(AccountError::AdminNotBlockable);
        }
        state.target(target)?.blocked = blocked;
        if blocked {
            state.log_out_everywhere(target);
        }
        let (from, to) = (from.to_string(), blocked.to_string());
        Ok(Some(state.record(
            actor,
            target,
            AccountChange::Blocked,
            from,
            to,
            now,
        )))
    }

    async fn account_audit(
        &self,
        after: Option<u64>,
        limit: usize,
    ) -> Result<Vec<AccountAuditRecord>> {
        let after = after.unwrap_or(0);
        Ok(self
            .state
            .lock()
            .audit
            .iter()
            .filter(|r| r.seq > after)
            .take(limit)
            .cloned()
            .collect())
    }

    async fn purge_expired(&self, before: Timestamp) -> Result<u64> {
        let mut state = self.state.lock();
        let count = state.tokens.len();
        state.tokens.retain(|_, t| t.expires_at >= before);
        let removed = count - state.tokens.len();
        let alive: HashSet<FamilyId> = state.tokens.values().map(|t| t.family).collect();
        state.families.retain(|id, _| alive.contains(id));
        for families in state.user_families.values_mut() {
            families.retain(|id| alive.contains(id));
        }
        state
            .user_families
            .retain(|_, families| !families.is_empty());
        Ok(u64::try_from(removed).unwrap_or(u64::MAX))
    }
}
