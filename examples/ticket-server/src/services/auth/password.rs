//! The password policy and argon2id hashes (emails are normalised by
//! [`crate::stores::accounts::normalize_email`]).

use argon2::Argon2;
use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};

use super::AuthError;

/// Shortest accepted password, in characters.
pub const MIN_PASSWORD_LEN: usize = 8;
/// Longest accepted password, in characters (bounds the hashing cost of a request).
pub const MAX_PASSWORD_LEN: usize = 128;

fn check_policy(password: &str) -> Result<(), AuthError> {
    let len = password.chars().count();
    if !(MIN_PASSWORD_LEN..=MAX_PASSWORD_LEN).contains(&len) {
        return Err(AuthError::WeakPassword(format!(
            "must be {MIN_PASSWORD_LEN} to {MAX_PASSWORD_LEN} characters"
        )));
    }
    // ASCII letters, as the API document's pattern states (one rule in every validator).
    if !password.chars().any(|c| c.is_ascii_alphabetic())
        || !password.chars().any(|c| c.is_ascii_digit())
    {
        return Err(AuthError::WeakPassword(
            "must contain an ASCII letter and a digit".into(),
        ));
    }
    Ok(())
}

/// Checks the policy (8 to 128 characters, an ASCII letter and a digit) and hashes the password with
/// argon2id and a fresh random salt, as a PHC string. CPU-heavy by design: call it from
/// `spawn_blocking` in a server.
pub fn hash_password(password: &str) -> Result<String, AuthError> {
    check_policy(password)?;
    let mut salt = [0u8; 16];
    rand_core::TryRngCore::try_fill_bytes(&mut rand_core::OsRng, &mut salt)
        .map_err(|e| AuthError::Crypto(format!("randomness: {e}")))?;
    let salt = SaltString::encode_b64(&salt).map_err(|e| AuthError::Crypto(e.to_string()))?;
    Argon2::default()
        .hash_password(password.as_bytes(), &salt)
        .map(|h| h.to_string())
        .map_err(|e| AuthError::Crypto(e.to_string()))
}

/// Whether `password` matches the PHC `hash` (constant-time comparison inside argon2). A
/// malformed stored hash is a server fault ([`AuthError::Crypto`]), never a match.
pub fn verify_password(password: &str, hash: &str) -> Result<bool, AuthError> {
    if password.chars().count() > MAX_PASSWORD_LEN {
        return Ok(false);
    }
    let parsed = PasswordHash::new(hash).map_err(|e| AuthError::Crypto(e.to_string()))?;
    Ok(Argon2::default()
        .verify_password(password.as_bytes(), &parsed)
        .is_ok())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_policy_needs_length_letters_and_digits() {
        for weak in ["short1", "lettersonly", "1234567890", &"a1".repeat(65)] {
            assert!(
                matches!(hash_password(weak), Err(AuthError::WeakPassword(_))),
                "{weak:?}"
            );
        }
    }

    #[test]
    fn hashes_verify_only_their_password() {
        let h = hash_password("correct horse 1").unwrap();
        assert!(h.starts_with("$argon2id$"));
        assert!(verify_password("correct horse 1", &h).unwrap());
        assert!(!verify_password("correct horse 2", &h).unwrap());
        assert_ne!(h, hash_password("correct horse 1").unwrap(), "salted");
        assert!(verify_password("x", "not a hash").is_err());
    }
}
