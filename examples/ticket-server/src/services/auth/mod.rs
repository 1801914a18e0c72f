//! Authentication primitives: the password policy, argon2id password hashes, JWT access
//! tokens and opaque refresh tokens (stored only as SHA-256 hashes, see
//! [`crate::stores::accounts`]).

mod password;
mod tokens;

pub use password::{MAX_PASSWORD_LEN, MIN_PASSWORD_LEN, hash_password, verify_password};
pub use tokens::{AccessClaims, MIN_SECRET_LEN, TokenKeys, new_refresh_token};

/// Why an authentication step failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum AuthError {
    /// The password breaks the policy (length, letters and digits).
    #[error("weak password: {0}")]
    WeakPassword(String),
    /// Unknown email or wrong password (deliberately not saying which).
    #[error("invalid email or password")]
    InvalidCredentials,
    /// The access token's lifetime is over.
    #[error("token expired")]
    TokenExpired,
    /// The token is malformed, forged or signed with another key.
    #[error("invalid token")]
    TokenInvalid,
    /// The signing secret is too short to be safe.
    #[error("token secret must be at least {min} bytes")]
    SecretTooShort {
        /// The minimum length.
        min: usize,
    },
    /// Hashing or randomness failed (a server fault, not the caller's).
    #[error("crypto failure: {0}")]
    Crypto(String),
}
