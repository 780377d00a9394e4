//! API tokens: how they are made, stored and checked.
//!
//! A token reads `kopa_<id>_<secret>`: a random public id (16 hex digits) used to look the token up,
//! and a 32-byte random secret (64 hex digits). Only the SHA-256 of the secret is stored; it is compared
//! in constant time. A token string in any other form (e.g. an operator-chosen `KOPA_ADMIN_TOKEN`) is
//! accepted too: its id is then derived from its hash and the whole string is the secret.
//!
//! Token strings never appear in logs or `Debug` output of this crate.

use kopa_core::{Principal, UserId};
use kopa_store::{Store, StoreError, TokenRecord};
use rand::RngCore;
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

/// Why a token was not accepted. The messages never contain the token.
#[derive(Debug, thiserror::Error)]
pub enum AuthError {
    #[error("unknown token")]
    Unknown,
    #[error("wrong token")]
    Wrong,
    #[error("token revoked")]
    Revoked,
    #[error("the user name does not match the token's user")]
    UserMismatch,
    #[error("store error: {0}")]
    Store(StoreError),
}

impl AuthError {
    /// Whether the token id named an existing token (a wrong secret, a revoked token, another
    /// user's name): such failures also count against that token.
    pub fn token_exists(&self) -> bool {
        matches!(
            self,
            AuthError::Wrong | AuthError::Revoked | AuthError::UserMismatch
        )
    }
}

/// A new random token for `user`: the record to store and the token string to hand out once.
pub fn new_token(user: &UserId) -> (TokenRecord, String) {
    let mut rng = rand::thread_rng();
    let mut id = [0u8; 8];
    let mut secret = [0u8; 32];
    rng.fill_bytes(&mut id);
    rng.fill_bytes(&mut secret);
    let id = hex::encode(id);
    let secret = hex::encode(secret);
    let token = format!("kopa_{id}_{secret}");
    (
        TokenRecord {
            id,
            user: user.clone(),
            secret_hash: hash_secret(&secret),
            revoked: false,
        },
        token,
    )
}

/// The record under which an existing token string (any form) is stored for `user`.
pub fn token_record(user: &UserId, token: &str) -> TokenRecord {
    let (id, secret) = token_parts(token);
    TokenRecord {
        id,
        user: user.clone(),
        secret_hash: hash_secret(secret),
        revoked: false,
    }
}

/// Split a token string into its lookup id and its secret.
pub fn token_parts(token: &str) -> (String, &str) {
    if let Some((id, secret)) = token
        .strip_prefix("kopa_")
        .and_then(|rest| rest.split_once('_'))
    {
        if !id.is_empty() && !secret.is_empty() && id.bytes().all(|b| b.is_ascii_hexdigit()) {
            return (id.to_string(), secret);
        }
    }
    let digest = hex::encode(Sha256::digest(token.as_bytes()));
    (format!("x{}", &digest[..15]), token)
}

/// Hex SHA-256 of a token secret, as stored.
pub fn hash_secret(secret: &str) -> String {
    hex::encode(Sha256::digest(secret.as_bytes()))
}

/// Whether `secret` is the one `record` was made for (constant-time comparison).
pub fn secret_matches(record: &TokenRecord, secret: &str) -> bool {
    let want = record.secret_hash.as_bytes();
    let got = hash_secret(secret);
    bool::from(got.as_bytes().ct_eq(want))
}

/// The public id a token string names (Kopa's form), for throttling and logs; `None` for a
/// free-form token, whose id is derived from its secret.
pub fn token_id(token: &str) -> Option<&str> {
    let (id, secret) = token.strip_prefix("kopa_")?.split_once('_')?;
    (!id.is_empty() && !secret.is_empty() && id.bytes().all(|b| b.is_ascii_hexdigit()))
        .then_some(id)
}

/// Look a token up and return the principal it stands for. With `user_name` (HTTP Basic), the
/// name must be the token's user.
pub async fn authenticate(
    store: &dyn Store,
    token: &str,
    user_name: Option<&str>,
) -> Result<Principal, AuthError> {
    let (id, secret) = token_parts(token);
    // The token and its user in one read: every request comes through here.
    let (record, user) = match store.token_with_user(&id).await {
        Ok(r) => r,
        Err(StoreError::NotFound(_)) => return Err(AuthError::Unknown),
        Err(e) => return Err(AuthError::Store(e)),
    };
    if !secret_matches(&record, secret) {
        return Err(AuthError::Wrong);
    }
    if record.revoked {
        return Err(AuthError::Revoked);
    }
    if let Some(name) = user_name {
        if name != user.name {
            return Err(AuthError::UserMismatch);
        }
    }
    Ok(Principal {
        user: user.id,
        user_name: user.name,
        org: user.org,
        org_name: user.org_name,
        role: user.role,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn new_tokens_verify_against_their_record() {
        let user = UserId("u1".into());
        let (record, token) = new_token(&user);
        assert!(token.starts_with("kopa_"));
        let (id, secret) = token_parts(&token);
        assert_eq!(id, record.id);
        assert_eq!(secret.len(), 64);
        assert!(secret_matches(&record, secret));
        assert!(!secret_matches(&record, "0".repeat(64).as_str()));
        assert_ne!(
            record.secret_hash, secret,
            "the secret itself is not stored"
        );
        let (other, _) = new_token(&user);
        assert_ne!(other.id, record.id);
    }

    #[test]
    fn free_form_tokens_get_a_derived_id() {
        let user = UserId("u1".into());
        let record = token_record(&user, "my admin secret");
        let (id, secret) = token_parts("my admin secret");
        assert_eq!(id, record.id);
        assert_eq!(secret, "my admin secret");
        assert!(secret_matches(&record, secret));
        // A kopa_-prefixed string with a non-hex id is also free-form.
        assert_eq!(token_parts("kopa_zz_secret").1, "kopa_zz_secret");
        // Only Kopa's form names a public id.
        assert_eq!(token_id("my admin secret"), None);
        assert_eq!(token_id("kopa_zz_secret"), None);
        assert_eq!(token_id("kopa_00ff_secret"), Some("00ff"));
    }
}
