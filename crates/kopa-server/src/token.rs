//! API tokens: how they are made, stored and checked.
//!
//! A token reads `kopa_<id>_<secret>`: a random public id (16 hex digits) used to look the token up,
//! and a 32-byte random secret (64 hex digits). A token string in any other form (e.g. an
//! operator-chosen `KOPA_ADMIN_TOKEN`) is accepted too: the whole string is then the secret.
//!
//! How the secret is stored depends on who chose it:
//! - a token the node **generates** ([`new_token`]) has 256 random bits: the hex SHA-256 of its
//!   secret is stored, and checking it costs one SHA-256;
//! - a token an **operator chooses** ([`token_record`]) may be a guessable phrase: it is stored as an
//!   argon2id hash in PHC string form (`$argon2id$v=19$m=19456,t=2,p=1$salt$hash`), so that a copy
//!   of the database does not give it away to a cheap dictionary attack. A free-form one gets a
//!   random id starting with `p` (nothing quickly derived from the secret is stored) and is found
//!   by trying its secret against the `p` tokens, of which a node has one or two. Checking costs an
//!   argon2id computation (tens of milliseconds of CPU, off the async threads, one at a time),
//!   once per token and server: [`VerifiedTokens`] then remembers a keyed SHA-256 of the secret.
//!
//! The stored form says which it is (a PHC string starts with `$`), so only password-hashed tokens
//! pay argon2id. Older Kopa versions stored a free-form token as SHA-256 under an id derived from
//! its SHA-256 (`x` and 15 hex digits); such a token still works, and the first time it is used it
//! is stored again as argon2id under a new `p` id. Every comparison is constant-time.
//!
//! Token strings never appear in logs or `Debug` output of this crate.

use std::collections::HashMap;
use std::sync::Mutex;

use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use argon2::Argon2;
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

/// Id prefix of the free-form tokens an operator chose: random ids, found by their secret.
pub const CHOSEN_ID_PREFIX: &str = "p";

/// The record under which a token string chosen by an operator (any form) is stored for `user`:
/// its secret hashed with argon2id. One in Kopa's `kopa_<hex id>_<secret>` form keeps its id; any
/// other string gets a random id starting with [`CHOSEN_ID_PREFIX`]. Slow by design (tens of
/// milliseconds of CPU).
pub fn token_record(user: &UserId, token: &str) -> TokenRecord {
    let (id, secret) = match kopa_form(token) {
        Some((id, secret)) => (id.to_string(), secret),
        None => (chosen_id(), token),
    };
    TokenRecord {
        id,
        user: user.clone(),
        secret_hash: hash_chosen_secret(secret),
        revoked: false,
    }
}

/// A random id for a free-form token: the prefix and 15 hex digits.
fn chosen_id() -> String {
    let mut bytes = [0u8; 8];
    rand::thread_rng().fill_bytes(&mut bytes);
    format!("{CHOSEN_ID_PREFIX}{}", &hex::encode(bytes)[..15])
}

/// The (id, secret) of a token in Kopa's `kopa_<hex id>_<secret>` form.
fn kopa_form(token: &str) -> Option<(&str, &str)> {
    let (id, secret) = token.strip_prefix("kopa_")?.split_once('_')?;
    (!id.is_empty() && !secret.is_empty() && id.bytes().all(|b| b.is_ascii_hexdigit()))
        .then_some((id, secret))
}

/// The public id a token string names (Kopa's form), for throttling and logs; `None` for a
/// free-form token, whose id is not in the string.
pub fn token_id(token: &str) -> Option<&str> {
    kopa_form(token).map(|(id, _)| id)
}

/// Split a token string into its lookup id and its secret. A free-form token's id is the one
/// older Kopa versions derived from its SHA-256 (`x` and 15 hex digits).
pub fn token_parts(token: &str) -> (String, &str) {
    if let Some((id, secret)) = kopa_form(token) {
        return (id.to_string(), secret);
    }
    let digest = hex::encode(Sha256::digest(token.as_bytes()));
    (format!("x{}", &digest[..15]), token)
}

/// Whether `token` has the form of one [`new_token`] makes (16 hex digits of id, 64 of secret):
/// 256 random bits, for which SHA-256 is enough.
fn is_generated_form(token: &str) -> bool {
    let hex = |s: &str, n: usize| s.len() == n && s.bytes().all(|b| b.is_ascii_hexdigit());
    kopa_form(token).is_some_and(|(id, secret)| hex(id, 16) && hex(secret, 64))
}

/// Hex SHA-256 of a generated token's secret, as stored.
pub fn hash_secret(secret: &str) -> String {
    hex::encode(Sha256::digest(secret.as_bytes()))
}

/// The argon2id hash (PHC string) of an operator-chosen secret, as stored: the `argon2` crate's
/// defaults (19 MiB, 2 passes, 1 lane: the OWASP recommendation) and a random 16-byte salt.
pub fn hash_chosen_secret(secret: &str) -> String {
    let mut salt = [0u8; 16];
    rand::thread_rng().fill_bytes(&mut salt);
    // Neither step can fail: the salt has a valid length and the parameters are the defaults.
    let salt = SaltString::encode_b64(&salt).expect("a 16-byte salt encodes");
    Argon2::default()
        .hash_password(secret.as_bytes(), &salt)
        .expect("argon2id with default parameters")
        .to_string()
}

/// Whether a stored hash is a password hash (PHC string) rather than a hex SHA-256.
pub fn is_password_hash(stored: &str) -> bool {
    stored.starts_with('$')
}

/// Whether `secret` is the one `record` was made for (constant-time comparison). For a
/// password-hashed record this computes argon2id: call it off the async threads.
pub fn secret_matches(record: &TokenRecord, secret: &str) -> bool {
    if is_password_hash(&record.secret_hash) {
        match PasswordHash::new(&record.secret_hash) {
            // The output comparison inside is constant-time.
            Ok(hash) => Argon2::default()
                .verify_password(secret.as_bytes(), &hash)
                .is_ok(),
            Err(_) => false,
        }
    } else {
        let want = record.secret_hash.as_bytes();
        let got = hash_secret(secret);
        bool::from(got.as_bytes().ct_eq(want))
    }
}

/// Password-hashed tokens this server has verified, so that each pays argon2id once: per token id,
/// the stored hash it was verified against and an SHA-256 of the secret keyed with a random key of
/// this process (never stored, never logged). Only successes are remembered, so callers cannot
/// grow it; a token whose stored hash changes is verified again. Also lets one argon2id
/// computation run at a time, so that a flood of guesses cannot take every core.
pub struct VerifiedTokens {
    key: [u8; 32],
    seen: Mutex<HashMap<String, (String, [u8; 32])>>,
    hashing: tokio::sync::Semaphore,
}

impl Default for VerifiedTokens {
    fn default() -> Self {
        let mut key = [0u8; 32];
        rand::thread_rng().fill_bytes(&mut key);
        VerifiedTokens {
            key,
            seen: Mutex::new(HashMap::new()),
            hashing: tokio::sync::Semaphore::new(1),
        }
    }
}

impl VerifiedTokens {
    fn digest(&self, secret: &str) -> [u8; 32] {
        let mut h = Sha256::new();
        h.update(self.key);
        h.update(secret.as_bytes());
        h.finalize().into()
    }

    /// Whether `secret` was verified against `record`'s current hash before.
    fn known(&self, record: &TokenRecord, secret: &str) -> bool {
        let digest = self.digest(secret);
        let seen = self.seen.lock().unwrap_or_else(|p| p.into_inner());
        seen.get(&record.id).is_some_and(|(hash, d)| {
            hash == &record.secret_hash && bool::from(d.as_slice().ct_eq(digest.as_slice()))
        })
    }

    fn remember(&self, record: &TokenRecord, secret: &str) {
        let digest = self.digest(secret);
        self.seen
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .insert(record.id.clone(), (record.secret_hash.clone(), digest));
    }
}

/// Whether `secret` is `record`'s: SHA-256 at once, argon2id remembered in `verified` or computed
/// on a blocking thread.
async fn verify(verified: Option<&VerifiedTokens>, record: &TokenRecord, secret: &str) -> bool {
    if !is_password_hash(&record.secret_hash) {
        return secret_matches(record, secret);
    }
    if verified.is_some_and(|v| v.known(record, secret)) {
        return true;
    }
    let _turn = match verified {
        Some(v) => v.hashing.acquire().await.ok(),
        None => None,
    };
    let (r, s) = (record.clone(), secret.to_string());
    let ok = tokio::task::spawn_blocking(move || secret_matches(&r, &s))
        .await
        .unwrap_or(false);
    if ok {
        if let Some(v) = verified {
            v.remember(record, secret);
        }
    }
    ok
}

/// Look a token up and return the principal it stands for. With `user_name` (HTTP Basic), the
/// name must be the token's user.
pub async fn authenticate(
    store: &dyn Store,
    token: &str,
    user_name: Option<&str>,
) -> Result<Principal, AuthError> {
    authenticate_with(store, None, token, user_name).await
}

/// [`authenticate`], remembering verified password-hashed tokens in `verified`.
pub async fn authenticate_with(
    store: &dyn Store,
    verified: Option<&VerifiedTokens>,
    token: &str,
    user_name: Option<&str>,
) -> Result<Principal, AuthError> {
    let (record, user) = match kopa_form(token) {
        Some((id, secret)) => {
            // The token and its user in one read: every request comes through here.
            let (record, user) = match store.token_with_user(id).await {
                Ok(r) => r,
                Err(StoreError::NotFound(_)) => return Err(AuthError::Unknown),
                Err(e) => return Err(AuthError::Store(e)),
            };
            if !verify(verified, &record, secret).await {
                return Err(AuthError::Wrong);
            }
            if !is_password_hash(&record.secret_hash) && !is_generated_form(token) {
                // An operator-chosen token that an older Kopa stored as SHA-256.
                upgrade(store, &record, &record.id, secret).await;
            }
            (record, user)
        }
        None => {
            let record = free_form(store, verified, token).await?;
            let user = store.user_by_id(&record.user).await.map_err(|e| match e {
                StoreError::NotFound(_) => AuthError::Unknown,
                e => AuthError::Store(e),
            })?;
            (record, user)
        }
    };
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

/// The record of a free-form token: one of the `p` tokens whose argon2id hash the string matches,
/// else one an older Kopa stored under an id derived from the string's SHA-256 (then stored again
/// as argon2id under a new `p` id).
async fn free_form(
    store: &dyn Store,
    verified: Option<&VerifiedTokens>,
    token: &str,
) -> Result<TokenRecord, AuthError> {
    let chosen = store
        .tokens_with_id_prefix(CHOSEN_ID_PREFIX)
        .await
        .map_err(AuthError::Store)?;
    // A revoked token is not tried: it would be refused anyway.
    for record in chosen.iter().filter(|r| !r.revoked) {
        if verify(verified, record, token).await {
            return Ok(record.clone());
        }
    }
    let (legacy_id, _) = token_parts(token);
    let record = match store.token(&legacy_id).await {
        Ok(r) => r,
        Err(StoreError::NotFound(_)) => return Err(AuthError::Unknown),
        Err(e) => return Err(AuthError::Store(e)),
    };
    if is_password_hash(&record.secret_hash) || !secret_matches(&record, token) {
        return Err(AuthError::Wrong);
    }
    if !record.revoked {
        upgrade(store, &record, &chosen_id(), token).await;
    }
    Ok(record)
}

/// Store an operator-chosen token that an older Kopa hashed with SHA-256 as argon2id instead, under
/// `new_id` (its secret is known only now, when it is presented). A failure is logged and the
/// token keeps working.
async fn upgrade(store: &dyn Store, record: &TokenRecord, new_id: &str, secret: &str) {
    let s = secret.to_string();
    let Ok(new_hash) = tokio::task::spawn_blocking(move || hash_chosen_secret(&s)).await else {
        return;
    };
    match store
        .replace_token(&record.id, &record.secret_hash, new_id, &new_hash)
        .await
    {
        Ok(true) if new_id == record.id => tracing::info!(
            token_id = %record.id,
            "an operator-chosen token stored as SHA-256 is now stored as argon2id"
        ),
        Ok(true) => tracing::info!(
            old_token_id = %record.id,
            token_id = %new_id,
            "an operator-chosen token stored as SHA-256 is now stored as argon2id, under a new id"
        ),
        Ok(false) => {}
        Err(e) => tracing::warn!(
            token_id = %record.id,
            error = %e,
            "could not store an operator-chosen token as argon2id"
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn new_tokens_verify_against_their_record() {
        let user = UserId("u1".into());
        let (record, token) = new_token(&user);
        assert!(token.starts_with("kopa_"));
        assert!(is_generated_form(&token));
        let (id, secret) = token_parts(&token);
        assert_eq!(id, record.id);
        assert_eq!(secret.len(), 64);
        assert!(secret_matches(&record, secret));
        assert!(!secret_matches(&record, "0".repeat(64).as_str()));
        assert_ne!(
            record.secret_hash, secret,
            "the secret itself is not stored"
        );
        assert!(
            !is_password_hash(&record.secret_hash),
            "generated tokens are SHA-256"
        );
        let (other, _) = new_token(&user);
        assert_ne!(other.id, record.id);
    }

    #[test]
    fn chosen_tokens_are_stored_as_argon2id() {
        let user = UserId("u1".into());
        let record = token_record(&user, "my admin secret");
        // A random id: nothing derived from the secret.
        assert!(record.id.starts_with(CHOSEN_ID_PREFIX) && record.id.len() == 16);
        assert_ne!(record.id, token_record(&user, "my admin secret").id);
        assert_eq!(token_id("my admin secret"), None);
        let secret = "my admin secret";
        assert!(
            record.secret_hash.starts_with("$argon2id$v=19$"),
            "{}",
            record.secret_hash
        );
        assert!(!record.secret_hash.contains("my admin secret"));
        assert!(secret_matches(&record, secret));
        assert!(!secret_matches(&record, "my admin secreT"));
        // Salted: the same secret hashes differently each time.
        assert_ne!(
            token_record(&user, "my admin secret").secret_hash,
            record.secret_hash
        );
        // A kopa_-prefixed string with a non-hex id is also free-form.
        assert_eq!(token_parts("kopa_zz_secret").1, "kopa_zz_secret");
        // One in Kopa's form keeps its id, and is still hashed with argon2id.
        let r = token_record(&user, "kopa_00ff_short");
        assert_eq!(r.id, "00ff");
        assert_eq!(token_id("kopa_00ff_short"), Some("00ff"));
        assert!(is_password_hash(&r.secret_hash));
        assert!(secret_matches(&r, "short"));
        assert!(!is_generated_form("kopa_00ff_short"));
    }

    #[test]
    fn sha256_records_of_chosen_tokens_still_verify() {
        // What an older Kopa stored for KOPA_ADMIN_TOKEN.
        let user = UserId("u1".into());
        let (id, secret) = token_parts("my admin secret");
        let old = TokenRecord {
            id,
            user,
            secret_hash: hash_secret(secret),
            revoked: false,
        };
        assert!(secret_matches(&old, secret));
        assert!(!secret_matches(&old, "other"));
    }

    #[test]
    fn a_malformed_stored_hash_matches_nothing() {
        let record = TokenRecord {
            id: "x1".into(),
            user: UserId("u1".into()),
            secret_hash: "$argon2id$garbage".into(),
            revoked: false,
        };
        assert!(!secret_matches(&record, "anything"));
    }

    #[test]
    fn verified_tokens_remember_the_secret_for_the_stored_hash_only() {
        let user = UserId("u1".into());
        let record = token_record(&user, "my admin secret");
        let v = VerifiedTokens::default();
        assert!(!v.known(&record, "my admin secret"));
        v.remember(&record, "my admin secret");
        assert!(v.known(&record, "my admin secret"));
        assert!(!v.known(&record, "my admin secreT"));
        let rehashed = TokenRecord {
            secret_hash: hash_chosen_secret("my admin secret"),
            ..record.clone()
        };
        assert!(!v.known(&rehashed, "my admin secret"));
    }
}
