//! What admins change on accounts (role, tiers, blocked) and its audit record; the
//! per-request token state; the outcome of a refresh-token rotation.

use std::fmt;

use serde::{Deserialize, Serialize};
use ticket_core::Timestamp;

use super::{AccountError, Result, Role, UserId};

/// Most tiers one account may carry.
pub const MAX_TIERS: usize = 16;
/// Longest tier name, in characters.
pub const MAX_TIER_LEN: usize = 32;

/// Checks tier names an admin gives an account: at most [`MAX_TIERS`], each 1 to
/// [`MAX_TIER_LEN`] of `A-Z`, `0-9`, `_` and `-`, none twice. [`AccountError::Invalid`]
/// names the problem.
pub fn check_tiers(tiers: &[String]) -> Result<()> {
    if tiers.len() > MAX_TIERS {
        return Err(AccountError::Invalid(format!("at most {MAX_TIERS} tiers")));
    }
    for (i, t) in tiers.iter().enumerate() {
        let ok = !t.is_empty()
            && t.len() <= MAX_TIER_LEN
            && t.chars()
                .all(|c| c.is_ascii_uppercase() || c.is_ascii_digit() || c == '_' || c == '-');
        if !ok {
            return Err(AccountError::Invalid(format!(
                "tier {:?}: 1 to {MAX_TIER_LEN} of A-Z, 0-9, _ and -",
                super::truncated(t)
            )));
        }
        if tiers[..i].contains(t) {
            return Err(AccountError::Invalid(format!("tier {t:?} is listed twice")));
        }
    }
    Ok(())
}

/// What an authenticated request checks about its caller, read once per request
/// ([`super::AccountStore::token_state`]).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TokenState {
    /// The current access-token version; a token with another `ver` claim is revoked.
    pub version: u64,
    /// The user is blocked.
    pub blocked: bool,
    /// The account's tiers (set only by admins), read in the same step so a hold or a queue
    /// join needs no second account read.
    pub tiers: Vec<String>,
}

/// The outcome of a successful refresh-token rotation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Rotation {
    /// The token's user.
    pub user: UserId,
    /// Their current role.
    pub role: Role,
    /// Their current token version (for the new access token's `ver` claim).
    pub token_version: u64,
    /// When the new refresh token expires (capped at its family's absolute end).
    pub expires_at: Timestamp,
}

/// Which setting of an account an admin changed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum AccountChange {
    /// The role (`from`/`to`: `USER`, `ADMIN`, `GATE`).
    Role,
    /// The tiers (`from`/`to`: the tiers joined by `,`; empty for none).
    Tiers,
    /// Blocked or not (`from`/`to`: `true`, `false`).
    Blocked,
}

impl AccountChange {
    /// Every kind of change.
    pub const ALL: [AccountChange; 3] = [
        AccountChange::Role,
        AccountChange::Tiers,
        AccountChange::Blocked,
    ];

    /// `ROLE`, `TIERS` or `BLOCKED`: the stored and serialised form.
    pub const fn as_str(self) -> &'static str {
        match self {
            AccountChange::Role => "ROLE",
            AccountChange::Tiers => "TIERS",
            AccountChange::Blocked => "BLOCKED",
        }
    }

    /// Parses the stored form; anything else is [`AccountError::Corrupt`].
    pub fn parse(s: &str) -> Result<Self> {
        Self::ALL
            .into_iter()
            .find(|c| c.as_str() == s)
            .ok_or_else(|| AccountError::Corrupt(format!("unknown account change {s:?}")))
    }
}

impl fmt::Display for AccountChange {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One admin change of an account: who changed what of whom, from what to what, when.
/// Written in the same atomic step as the change itself.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AccountAuditRecord {
    /// Position in the trail (1, 2, …; the paging cursor).
    pub seq: u64,
    /// When (the server's clock).
    pub at: Timestamp,
    /// The admin who made the change.
    pub actor: UserId,
    /// The account changed.
    pub target: UserId,
    /// What changed.
    pub change: AccountChange,
    /// The value before.
    pub from: String,
    /// The value after.
    pub to: String,
}

/// The stored form of a tier list in an audit record: joined by `,`.
pub(crate) fn tiers_text(tiers: &[String]) -> String {
    tiers.join(",")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tier_names_are_checked() {
        assert!(check_tiers(&["GOLD".into(), "VIP-2".into(), "A_B".into()]).is_ok());
        assert!(check_tiers(&[]).is_ok());
        for bad in ["", "gold", "GO LD", "G\u{0}", &"A".repeat(33)] {
            assert!(check_tiers(&[bad.to_owned()]).is_err(), "{bad:?}");
        }
        assert!(check_tiers(&["GOLD".into(), "GOLD".into()]).is_err());
        let many: Vec<String> = (0..17).map(|i| format!("T{i}")).collect();
        assert!(check_tiers(&many).is_err());
    }

    #[test]
    fn changes_round_trip() {
        for c in AccountChange::ALL {
            assert_eq!(AccountChange::parse(c.as_str()), Ok(c));
        }
        assert!(AccountChange::parse("NOPE").is_err());
    }
}
