//! The in-memory backend: one mutex around every map, so each method is one critical
//! section.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;

use async_trait::async_trait;
use parking_lot::Mutex;
use ticket_core::Timestamp;

use super::{
    AccountError, AccountStore, FamilyId, RefreshToken, Result, Role, TokenHash, User, UserId,
    check_password_hash, normalize_email,
};

/// Accounts in this process's memory, for a single server process and tests. Every method
/// runs under one mutex (never held across an `.await`), so each is atomic. Cheap to clone:
/// clones share the data.
#[derive(Debug, Clone, Default)]
pub struct MemoryAccounts {
    state: Arc<Mutex<State>>,
}

#[derive(Debug, Default)]
struct State {
    users: HashMap<UserId, User>,
    by_email: HashMap<String, UserId>,
    tokens: HashMap<TokenHash, Token>,
    families: HashMap<FamilyId, Family>,
    user_families: HashMap<UserId, HashSet<FamilyId>>,
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
}

impl MemoryAccounts {
    /// An empty store.
    pub fn new() -> Self {
        Self::default()
    }
}

impl State {
    fn insert_user(&mut self, user: User) {
        self.by_email.insert(user.email.clone(), user.id);
        self.users.insert(user.id, user);
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
        let email = normalize_email(email)?;
        check_password_hash(password_hash)?;
        let mut state = self.state.lock();
        if state.by_email.contains_key(&email) {
            return Err(AccountError::EmailTaken);
        }
        let user = User {
            id: UserId::new_at(now),
            email,
            password_hash: password_hash.to_owned(),
            role,
            created_at: now,
        };
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
            user.role = Role::Admin;
            return Ok(user.clone());
        }
        let user = User {
            id: UserId::new_at(now),
            email,
            password_hash: password_hash.to_owned(),
            role: Role::Admin,
            created_at: now,
        };
        state.insert_user(user.clone());
        Ok(user)
    }

    async fn issue_refresh(
        &self,
        user: UserId,
        token: &TokenHash,
        family: FamilyId,
        expires_at: Timestamp,
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
        state.families.entry(family).or_insert(Family {
            user,
            revoked: false,
        });
        state.user_families.entry(user).or_default().insert(family);
        state.tokens.insert(
            *token,
            Token {
                family,
                user,
                expires_at,
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
    ) -> Result<(UserId, Role)> {
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
        if state.families.get(&token.family).is_none_or(|f| f.revoked) {
            return Err(AccountError::TokenRevoked);
        }
        if now >= token.expires_at {
            return Err(AccountError::TokenExpired);
        }
        let role = state
            .users
            .get(&token.user)
            .map(|u| u.role)
            .ok_or(AccountError::TokenUnknown)?;
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
        Ok((token.user, role))
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
        let mut state = self.state.lock();
        let families: Vec<FamilyId> = state
            .user_families
            .get(&user)
            .map(|s| s.iter().copied().collect())
            .unwrap_or_default();
        for family in families {
            if let Some(f) = state.families.get_mut(&family) {
                f.revoked = true;
            }
        }
        Ok(())
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
