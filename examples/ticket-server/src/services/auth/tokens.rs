//! JWT access tokens (HS256, short-lived) and opaque refresh tokens.

use std::fmt;
use std::time::Duration;

use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use serde::{Deserialize, Serialize};
use ticket_core::Timestamp;

use super::AuthError;
use crate::stores::accounts::TokenHash;

/// The shortest accepted signing secret, in bytes.
pub const MIN_SECRET_LEN: usize = 32;

const ISSUER: &str = "ticketrush-example-server";

/// What an access token says.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AccessClaims {
    /// The user id.
    pub sub: String,
    /// `USER`, `ADMIN` or `GATE`.
    pub role: String,
    /// The user's access-token version when the token was issued: the token is accepted
    /// only while it equals the stored one (logout, role changes, blocking and password
    /// changes bump it). Absent reads as 0.
    #[serde(default)]
    pub ver: u64,
    /// Issued at, seconds since the epoch.
    pub iat: i64,
    /// Expires at, seconds since the epoch.
    pub exp: i64,
    /// Issuer.
    pub iss: String,
    /// Token id.
    pub jti: String,
}

/// The keys that sign and check access tokens. Every server process of one deployment must
/// share the secret, so a token issued by one is accepted by all.
#[derive(Clone)]
pub struct TokenKeys {
    encoding: EncodingKey,
    decoding: DecodingKey,
}

impl fmt::Debug for TokenKeys {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("TokenKeys(<redacted>)")
    }
}

impl TokenKeys {
    /// Keys from a shared secret of at least [`MIN_SECRET_LEN`] bytes.
    pub fn from_secret(secret: &[u8]) -> Result<Self, AuthError> {
        if secret.len() < MIN_SECRET_LEN {
            return Err(AuthError::SecretTooShort {
                min: MIN_SECRET_LEN,
            });
        }
        Ok(Self {
            encoding: EncodingKey::from_secret(secret),
            decoding: DecodingKey::from_secret(secret),
        })
    }

    /// Signs an access token for `user` with `role` and token version 0, valid for `ttl`
    /// from `now`; returns the token and its claims. See [`TokenKeys::issue_versioned`].
    pub fn issue(
        &self,
        user: &str,
        role: &str,
        now: Timestamp,
        ttl: Duration,
    ) -> Result<(String, AccessClaims), AuthError> {
        self.issue_versioned(user, role, 0, now, ttl)
    }

    /// Signs an access token for `user` with `role` and the user's current token `version`
    /// (the `ver` claim), valid for `ttl` from `now`; returns the token and its claims.
    pub fn issue_versioned(
        &self,
        user: &str,
        role: &str,
        version: u64,
        now: Timestamp,
        ttl: Duration,
    ) -> Result<(String, AccessClaims), AuthError> {
        let iat = now.as_millis().div_euclid(1000);
        // JWT times are whole seconds: round the expiry up, so a token lives at least `ttl`
        // (at most a second more), never less.
        let ttl_ms = i64::try_from(ttl.as_millis()).unwrap_or(i64::MAX);
        let exp_ms = now.as_millis().saturating_add(ttl_ms);
        let claims = AccessClaims {
            sub: user.to_owned(),
            role: role.to_owned(),
            ver: version,
            iat,
            exp: exp_ms.div_euclid(1000) + i64::from(exp_ms.rem_euclid(1000) != 0),
            iss: ISSUER.to_owned(),
            jti: uuid::Uuid::now_v7().simple().to_string(),
        };
        let token = jsonwebtoken::encode(&Header::new(Algorithm::HS256), &claims, &self.encoding)
            .map_err(|e| AuthError::Crypto(e.to_string()))?;
        Ok((token, claims))
    }

    /// Checks signature, algorithm, issuer and expiry against `now` (the server's clock, not
    /// the library's wall clock, so tests can move time): [`AuthError::TokenExpired`] once
    /// `now >= exp`, [`AuthError::TokenInvalid`] for anything malformed or forged.
    pub fn verify(&self, token: &str, now: Timestamp) -> Result<AccessClaims, AuthError> {
        let mut validation = Validation::new(Algorithm::HS256);
        validation.validate_exp = false;
        validation.set_issuer(&[ISSUER]);
        validation.set_required_spec_claims(&["exp", "iss", "sub"]);
        let data = jsonwebtoken::decode::<AccessClaims>(token, &self.decoding, &validation)
            .map_err(|_| AuthError::TokenInvalid)?;
        if now.as_millis().div_euclid(1000) >= data.claims.exp {
            return Err(AuthError::TokenExpired);
        }
        Ok(data.claims)
    }
}

/// A new refresh token (256 random bits, hex) and the hash to store for it
/// ([`TokenHash`]: a leaked table of hashes cannot be replayed as tokens).
pub fn new_refresh_token() -> Result<(String, TokenHash), AuthError> {
    let mut bytes = [0u8; 32];
    rand_core::TryRngCore::try_fill_bytes(&mut rand_core::OsRng, &mut bytes)
        .map_err(|e| AuthError::Crypto(format!("randomness: {e}")))?;
    let token = hex::encode(bytes);
    let hash = TokenHash::of(&token);
    Ok((token, hash))
}

#[cfg(test)]
mod tests {
    use super::*;

    const SECRET: &[u8] = b"0123456789abcdef0123456789abcdef";

    #[test]
    fn tokens_verify_until_they_expire() {
        let keys = TokenKeys::from_secret(SECRET).unwrap();
        let t0 = Timestamp::from_millis(1_900_000_000_000);
        let (token, claims) = keys
            .issue("u1", "USER", t0, Duration::from_secs(900))
            .unwrap();
        assert_eq!(keys.verify(&token, t0).unwrap(), claims);
        assert_eq!(
            keys.verify(&token, t0.plus(Duration::from_secs(899)))
                .unwrap()
                .sub,
            "u1"
        );
        assert_eq!(
            keys.verify(&token, t0.plus(Duration::from_secs(900))),
            Err(AuthError::TokenExpired)
        );
    }

    #[test]
    fn a_token_issued_late_in_a_second_lives_its_whole_ttl() {
        let keys = TokenKeys::from_secret(SECRET).unwrap();
        let t0 = Timestamp::from_millis(1_900_000_000_999);
        let (token, claims) = keys
            .issue("u1", "USER", t0, Duration::from_secs(1))
            .unwrap();
        assert_eq!(claims.exp, 1_900_000_002);
        let almost = t0.plus(Duration::from_millis(999));
        assert_eq!(keys.verify(&token, almost).unwrap().sub, "u1");
        assert_eq!(
            keys.verify(&token, t0.plus(Duration::from_millis(1_001))),
            Err(AuthError::TokenExpired)
        );
    }

    #[test]
    fn forged_and_malformed_tokens_are_invalid() {
        let keys = TokenKeys::from_secret(SECRET).unwrap();
        let other = TokenKeys::from_secret(b"another secret of thirty-two bytes!!").unwrap();
        let t0 = Timestamp::from_millis(1_900_000_000_000);
        let (token, _) = other
            .issue("u1", "ADMIN", t0, Duration::from_secs(900))
            .unwrap();
        assert_eq!(keys.verify(&token, t0), Err(AuthError::TokenInvalid));
        assert_eq!(keys.verify("not.a.jwt", t0), Err(AuthError::TokenInvalid));
        assert_eq!(keys.verify("", t0), Err(AuthError::TokenInvalid));
        // An unsigned token claiming admin.
        let (good, _) = keys
            .issue("u1", "USER", t0, Duration::from_secs(900))
            .unwrap();
        let mut parts: Vec<&str> = good.split('.').collect();
        parts[2] = "";
        assert_eq!(
            keys.verify(&parts.join("."), t0),
            Err(AuthError::TokenInvalid)
        );
        assert!(matches!(
            TokenKeys::from_secret(b"short"),
            Err(AuthError::SecretTooShort { .. })
        ));
    }

    #[test]
    fn refresh_tokens_are_random_and_stored_hashed() {
        let (a, ha) = new_refresh_token().unwrap();
        let (b, _) = new_refresh_token().unwrap();
        assert_ne!(a, b);
        assert_eq!(a.len(), 64);
        assert_eq!(TokenHash::of(&a), ha);
        assert_ne!(ha.to_hex(), a);
    }
}
