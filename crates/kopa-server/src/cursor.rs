//! TAXII `next` cursors: opaque tokens sealed with the node's cursor key.
//!
//! A cursor carries the sequence number to resume after and the fingerprint of the request's
//! filters. It is encrypted and authenticated with XChaCha20-Poly1305 (an AEAD) under a 32-byte key
//! the node draws once and keeps in its store (`node_secret("taxii-cursor")`), with the caller (a
//! user id, or a peer's node id) and the collection id as associated data. So a cursor:
//!
//! - reveals nothing: not the sequence number (which counts every write on the node, in every
//!   collection), not even whether two cursors point at the same place (each has a fresh random
//!   nonce);
//! - cannot be forged or altered: without the key no token opens;
//! - works only for the caller it was issued to, in the collection it was issued for: another
//!   caller's or another collection's cursor does not open.
//!
//! Why encryption and not a MAC alone: a MAC over the plain sequence number would stop forgery but
//! still show the number, and so how much the node stores and how fast it grows. An AEAD gives
//! both properties with one well-reviewed construction instead of one composed here; the extended
//! 24-byte nonce makes random nonces safe for any number of cursors.
//!
//! Token: base64url (no padding) of `version (1) ‖ nonce (24) ‖ ciphertext of seq (8, big-endian)
//! ‖ filter fingerprint (8) ‖ tag (16)`, 76 characters.

use base64::Engine;
use chacha20poly1305::aead::{Aead, AeadCore, KeyInit, OsRng, Payload};
use chacha20poly1305::{XChaCha20Poly1305, XNonce};
use kopa_core::Reader;

/// The store purpose of the cursor key.
pub const PURPOSE: &str = "taxii-cursor";

const VERSION: u8 = 1;
const NONCE: usize = 24;
const PLAIN: usize = 16;
const TAG: usize = 16;
const SEALED: usize = 1 + NONCE + PLAIN + TAG;

/// The key cursors are sealed with.
pub struct CursorKey(XChaCha20Poly1305);

impl std::fmt::Debug for CursorKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("CursorKey(…)")
    }
}

/// What a cursor is bound to: who reads, and which collection.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Binding(String);

impl Binding {
    /// The binding of a read by `who` of the collection with id `collection` (its id, never its
    /// alias, so that a cursor works whichever of the two the path uses).
    pub fn new(who: &Reader, collection: &str) -> Binding {
        let caller = match who {
            Reader::Person(a) => format!("user {}", a.user.0),
            Reader::Peer(p) => format!("node {}", p.node),
        };
        Binding(format!("kopa taxii cursor\n{caller}\n{collection}"))
    }
}

/// Why a cursor was not accepted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refusal {
    /// Not a token this node sealed for this caller and collection (forged, altered, another
    /// caller's or another collection's, or from another node).
    NotIssued,
    /// A genuine cursor of this caller and collection, resent with different filters.
    OtherFilters,
}

impl CursorKey {
    pub fn new(secret: &[u8; 32]) -> CursorKey {
        CursorKey(XChaCha20Poly1305::new(secret.into()))
    }

    /// The cursor that resumes after `seq` for `binding` and the filters of `fingerprint`.
    pub fn seal(&self, seq: i64, fingerprint: [u8; 8], binding: &Binding) -> String {
        let nonce = XChaCha20Poly1305::generate_nonce(&mut OsRng);
        let mut plain = [0u8; PLAIN];
        plain[..8].copy_from_slice(&seq.to_be_bytes());
        plain[8..].copy_from_slice(&fingerprint);
        let sealed = self
            .0
            .encrypt(
                &nonce,
                Payload {
                    msg: &plain,
                    aad: binding.0.as_bytes(),
                },
            )
            .unwrap_or_default();
        let mut out = Vec::with_capacity(SEALED);
        out.push(VERSION);
        out.extend_from_slice(&nonce);
        out.extend_from_slice(&sealed);
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(out)
    }

    /// The sequence number a cursor resumes after, when it was sealed by this key for `binding`
    /// and the filters of `fingerprint`.
    pub fn open(
        &self,
        token: &str,
        fingerprint: [u8; 8],
        binding: &Binding,
    ) -> Result<i64, Refusal> {
        if token.len() > 2 * SEALED {
            return Err(Refusal::NotIssued);
        }
        let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
            .decode(token)
            .map_err(|_| Refusal::NotIssued)?;
        if bytes.len() != SEALED || bytes[0] != VERSION {
            return Err(Refusal::NotIssued);
        }
        let nonce = XNonce::from_slice(&bytes[1..1 + NONCE]);
        let plain = self
            .0
            .decrypt(
                nonce,
                Payload {
                    msg: &bytes[1 + NONCE..],
                    aad: binding.0.as_bytes(),
                },
            )
            .map_err(|_| Refusal::NotIssued)?;
        let (seq, fp) = plain.split_at(8);
        if fp != fingerprint {
            return Err(Refusal::OtherFilters);
        }
        let seq: [u8; 8] = seq.try_into().map_err(|_| Refusal::NotIssued)?;
        Ok(i64::from_be_bytes(seq))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use kopa_core::{Audience, OrgId, PeerAudience, Tlp, UserId};

    fn person(user: &str) -> Reader {
        Reader::Person(Audience {
            org: OrgId("org".into()),
            user: UserId(user.into()),
        })
    }

    fn peer(node: &str) -> Reader {
        Reader::Peer(PeerAudience {
            node: node.into(),
            collections: vec!["c1".into()],
            max_tlp: Tlp::Amber,
            object_types: Vec::new(),
        })
    }

    #[test]
    fn a_cursor_opens_only_for_its_caller_collection_and_filters() {
        let key = CursorKey::new(&[7; 32]);
        let fp = [1, 2, 3, 4, 5, 6, 7, 8];
        let alice = Binding::new(&person("alice-id"), "c1");
        let token = key.seal(42, fp, &alice);
        assert_eq!(token.len(), 76);
        assert_eq!(key.open(&token, fp, &alice), Ok(42));
        // Sealed afresh each time: two cursors to one place do not even look alike.
        assert_ne!(key.seal(42, fp, &alice), token);

        let raw = base64::engine::general_purpose::URL_SAFE_NO_PAD
            .decode(&token)
            .unwrap();
        let altered = |i: usize| {
            let mut b = raw.clone();
            b[i] ^= 1;
            base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(b)
        };
        let cases: Vec<(&str, String, [u8; 8], Binding, Refusal)> = vec![
            (
                "another user",
                token.clone(),
                fp,
                Binding::new(&person("bob-id"), "c1"),
                Refusal::NotIssued,
            ),
            (
                "a peer node",
                token.clone(),
                fp,
                Binding::new(&peer("alice-id"), "c1"),
                Refusal::NotIssued,
            ),
            (
                "another collection",
                token.clone(),
                fp,
                Binding::new(&person("alice-id"), "c2"),
                Refusal::NotIssued,
            ),
            (
                "other filters",
                token.clone(),
                [0; 8],
                alice.clone(),
                Refusal::OtherFilters,
            ),
            (
                "altered version",
                altered(0),
                fp,
                alice.clone(),
                Refusal::NotIssued,
            ),
            (
                "altered nonce",
                altered(5),
                fp,
                alice.clone(),
                Refusal::NotIssued,
            ),
            (
                "altered sequence",
                altered(26),
                fp,
                alice.clone(),
                Refusal::NotIssued,
            ),
            (
                "altered tag",
                altered(SEALED - 1),
                fp,
                alice.clone(),
                Refusal::NotIssued,
            ),
            (
                "truncated",
                token[..60].to_string(),
                fp,
                alice.clone(),
                Refusal::NotIssued,
            ),
            (
                "empty",
                String::new(),
                fp,
                alice.clone(),
                Refusal::NotIssued,
            ),
            (
                "the old plain form",
                base64::engine::general_purpose::URL_SAFE_NO_PAD.encode("0.0102030405060708"),
                fp,
                alice.clone(),
                Refusal::NotIssued,
            ),
            (
                "not base64",
                "a cursor!".into(),
                fp,
                alice.clone(),
                Refusal::NotIssued,
            ),
        ];
        for (name, token, fp, binding, want) in cases {
            assert_eq!(key.open(&token, fp, &binding), Err(want), "{name}");
        }
        // Another node's key (or this node's before its secret changed) opens nothing.
        let other = CursorKey::new(&[8; 32]);
        assert_eq!(other.open(&token, fp, &alice), Err(Refusal::NotIssued));
    }

    #[test]
    fn the_sequence_number_is_not_in_the_token() {
        let key = CursorKey::new(&[9; 32]);
        let b = Binding::new(&person("u"), "c");
        let seq: i64 = 0x0102_0304_0506_0708;
        let raw = base64::engine::general_purpose::URL_SAFE_NO_PAD
            .decode(key.seal(seq, [0; 8], &b))
            .unwrap();
        assert!(!raw.windows(8).any(|w| w == seq.to_be_bytes()));
        assert!(!raw.windows(8).any(|w| w == seq.to_le_bytes()));
    }
}
