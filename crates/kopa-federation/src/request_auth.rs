//! Node-to-node authentication of HTTP requests.
//!
//! A Kopa node calling a peer sends
//!
//! ```text
//! Authorization: Kopa-Node <caller-node-id> <unix-seconds> <nonce> <body-sha256-b64url> <signature-b64url>
//! ```
//!
//! where the signature is Ed25519, by the caller's node key, over the bytes
//!
//! ```text
//! "kopa-node-auth-v2\n" + <target-node-id> + "\n" + <METHOD> + "\n" + <path-and-query> + "\n"
//!     + <unix-seconds> + "\n" + <nonce> + "\n" + <body-sha256-b64url>
//! ```
//!
//! The target accepts the request when the caller's key is known to it (a declared peer), the target
//! node id is its own (a signature made for one node cannot be replayed to another), the method and
//! path-and-query are the request's own, the time is within ±[`MAX_SKEW_SECONDS`] of its clock, the
//! body's SHA-256 is the one signed (checked where the body is read), and the nonce (16 random
//! bytes, hex) has not been seen from that node within the window ([`NonceCache`]): a captured
//! request can be replayed neither as it is nor with another body.

use std::collections::{HashMap, VecDeque};

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use ed25519_dalek::Signature;
use rand::RngCore;
use sha2::{Digest, Sha256};

use crate::identity::{NodeId, NodeKey};
use crate::provenance::KnownKeys;

/// The authorization scheme name.
pub const SCHEME: &str = "Kopa-Node";

/// Largest accepted difference between the caller's clock and ours, in seconds.
pub const MAX_SKEW_SECONDS: i64 = 300;

const CONTEXT: &str = "kopa-node-auth-v2";

/// Why a `Kopa-Node` authorization was refused. Messages never contain the signature.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RequestAuthError {
    #[error("malformed Kopa-Node authorization: expected 'Kopa-Node <node-id> <unix-seconds> <nonce> <body-sha256> <signature>' ({0})")]
    Malformed(&'static str),
    #[error("Kopa-Node authorization by {0}, which is not a declared peer of this node")]
    UnknownNode(String),
    #[error("Kopa-Node authorization time {time} is more than {MAX_SKEW_SECONDS} s away from this node's clock ({now})")]
    Stale { time: i64, now: i64 },
    #[error(
        "Kopa-Node authorization by {0}: the signature does not match this request for this node"
    )]
    BadSignature(String),
    #[error("Kopa-Node authorization by {0}: this request was already received (a replay)")]
    Replayed(String),
    #[error("Kopa-Node authorization by {0}: the body is not the one signed")]
    BodyMismatch(String),
}

/// The bytes a caller signs.
fn message(
    target: &NodeId,
    method: &str,
    path_and_query: &str,
    unix_seconds: i64,
    nonce: &str,
    digest: &str,
) -> Vec<u8> {
    format!(
        "{CONTEXT}\n{target}\n{}\n{path_and_query}\n{unix_seconds}\n{nonce}\n{digest}",
        method.to_ascii_uppercase()
    )
    .into_bytes()
}

/// A fresh nonce: 16 random bytes, hex.
pub fn new_nonce() -> String {
    let mut b = [0u8; 16];
    rand::thread_rng().fill_bytes(&mut b);
    hex::encode(b)
}

/// The SHA-256 of a request body, base64url without padding, as signed.
pub fn body_digest(body: &[u8]) -> String {
    URL_SAFE_NO_PAD.encode(Sha256::digest(body))
}

/// The value of the `Authorization` header with which node `key` calls node `target` with `method` on
/// `path_and_query` (the request target as sent, e.g. `/kopa/collections/…/objects/?limit=10`) at time
/// `unix_seconds`, with a fresh `nonce` ([`new_nonce`]) and the request's `body` (empty for a GET).
pub fn sign_request(
    key: &NodeKey,
    target: &NodeId,
    method: &str,
    path_and_query: &str,
    unix_seconds: i64,
    nonce: &str,
    body: &[u8],
) -> String {
    let digest = body_digest(body);
    let sig = key.sign_bytes(&message(
        target,
        method,
        path_and_query,
        unix_seconds,
        nonce,
        &digest,
    ));
    format!(
        "{SCHEME} {} {unix_seconds} {nonce} {digest} {}",
        key.node_id(),
        URL_SAFE_NO_PAD.encode(sig.to_bytes())
    )
}

/// The caller node named by a `Kopa-Node` header value, before any check (to decide whether the keys
/// need reloading). `None` when the value is not of this scheme or the id is malformed.
pub fn claimed_node(header: &str) -> Option<NodeId> {
    let (scheme, rest) = header.trim().split_once(' ')?;
    if !scheme.eq_ignore_ascii_case(SCHEME) {
        return None;
    }
    NodeId::parse(rest.split_whitespace().next()?).ok()
}

/// Whether an `Authorization` header value uses the `Kopa-Node` scheme.
pub fn is_node_auth(header: &str) -> bool {
    header
        .trim()
        .split_once(' ')
        .is_some_and(|(s, _)| s.eq_ignore_ascii_case(SCHEME))
}

/// A verified `Kopa-Node` authorization: who called, when, with which nonce, and the SHA-256 of the
/// body it signed (to compare with the body received: [`Signed::check_body`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Signed {
    pub node: NodeId,
    pub time: i64,
    pub nonce: String,
    pub body_digest: String,
}

impl Signed {
    /// Whether `body` is the body that was signed.
    pub fn check_body(&self, body: &[u8]) -> Result<(), RequestAuthError> {
        if body_digest(body) == self.body_digest {
            Ok(())
        } else {
            Err(RequestAuthError::BodyMismatch(self.node.to_string()))
        }
    }
}

/// Check a `Kopa-Node` header value received by node `this_node` for a request with `method` and
/// `path_and_query`, at time `now` (unix seconds). Returns the verified authorization; the caller
/// then checks its nonce ([`NonceCache`]) and its body ([`Signed::check_body`]).
pub fn verify_request(
    header: &str,
    this_node: &NodeId,
    method: &str,
    path_and_query: &str,
    known: &KnownKeys,
    now: i64,
) -> Result<Signed, RequestAuthError> {
    let (scheme, rest) = header
        .trim()
        .split_once(' ')
        .ok_or(RequestAuthError::Malformed("no credentials"))?;
    if !scheme.eq_ignore_ascii_case(SCHEME) {
        return Err(RequestAuthError::Malformed("not the Kopa-Node scheme"));
    }
    let mut parts = rest.split_whitespace();
    let (Some(node), Some(time), Some(nonce), Some(digest), Some(sig), None) = (
        parts.next(),
        parts.next(),
        parts.next(),
        parts.next(),
        parts.next(),
        parts.next(),
    ) else {
        return Err(RequestAuthError::Malformed("five fields expected"));
    };
    let node = NodeId::parse(node).map_err(|_| RequestAuthError::Malformed("bad node id"))?;
    let time: i64 = time
        .parse()
        .map_err(|_| RequestAuthError::Malformed("time is not an integer"))?;
    if nonce.len() != 32 || !nonce.bytes().all(|b| b.is_ascii_hexdigit()) {
        return Err(RequestAuthError::Malformed("nonce is not 32 hex digits"));
    }
    if URL_SAFE_NO_PAD
        .decode(digest)
        .map_or(true, |d| d.len() != 32)
    {
        return Err(RequestAuthError::Malformed(
            "body digest is not a base64url SHA-256",
        ));
    }
    let sig: [u8; 64] = URL_SAFE_NO_PAD
        .decode(sig)
        .ok()
        .and_then(|b| b.try_into().ok())
        .ok_or(RequestAuthError::Malformed(
            "signature is not 64 bytes base64url",
        ))?;
    let key = known
        .get(&node)
        .ok_or_else(|| RequestAuthError::UnknownNode(node.to_string()))?;
    if (now - time).abs() > MAX_SKEW_SECONDS {
        return Err(RequestAuthError::Stale { time, now });
    }
    let signature = Signature::from_bytes(&sig);
    if !key.verify_strict(
        &message(this_node, method, path_and_query, time, nonce, digest),
        &signature,
    ) {
        return Err(RequestAuthError::BadSignature(node.to_string()));
    }
    Ok(Signed {
        node,
        time,
        nonce: nonce.to_string(),
        body_digest: digest.to_string(),
    })
}

/// The nonces of the verified requests of the last `2 × MAX_SKEW_SECONDS` (the window in which a
/// signature's time is accepted), so that each request is accepted once. Bounded: at most
/// `capacity` nonces are kept; when full, a new request is refused until old ones expire (a flood
/// of signed requests cannot push out what it would replay).
#[derive(Debug)]
pub struct NonceCache {
    seen: HashMap<(NodeId, String), i64>,
    order: VecDeque<(i64, NodeId, String)>,
    capacity: usize,
}

impl NonceCache {
    pub fn new(capacity: usize) -> NonceCache {
        NonceCache {
            seen: HashMap::new(),
            order: VecDeque::new(),
            capacity: capacity.max(1),
        }
    }

    /// Record the nonce of verified request `s` at time `now`: `Ok` the first time, `Replayed` when
    /// it was seen within the window (or when the cache is full of live nonces).
    pub fn first_use(&mut self, s: &Signed, now: i64) -> Result<(), RequestAuthError> {
        let expiry = s.time + 2 * MAX_SKEW_SECONDS;
        while let Some((t, _, _)) = self.order.front() {
            if *t > now {
                break;
            }
            if let Some((_, node, nonce)) = self.order.pop_front() {
                self.seen.remove(&(node, nonce));
            }
        }
        let key = (s.node.clone(), s.nonce.clone());
        if self.seen.contains_key(&key) || self.seen.len() >= self.capacity {
            return Err(RequestAuthError::Replayed(s.node.to_string()));
        }
        self.seen.insert(key, expiry);
        // Keep `order` sorted by expiry (times arrive nearly in order; insert from the back).
        let at = self
            .order
            .iter()
            .rposition(|(t, _, _)| *t <= expiry)
            .map_or(0, |i| i + 1);
        self.order
            .insert(at, (expiry, s.node.clone(), s.nonce.clone()));
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const PATH: &str = "/kopa/collections/91a7b528-80eb-42ed-a74d-c6fbd5a26116/objects/?limit=10";
    const NONCE: &str = "00112233445566778899aabbccddeeff";

    fn setup() -> (NodeKey, NodeKey, KnownKeys) {
        let caller = NodeKey::from_seed([1; 32]);
        let target = NodeKey::from_seed([2; 32]);
        let known: KnownKeys = [caller.public_key()].into_iter().collect();
        (caller, target, known)
    }

    #[test]
    fn a_signed_request_verifies_and_names_the_caller() {
        let (caller, target, known) = setup();
        let h = sign_request(
            &caller,
            &target.node_id(),
            "GET",
            PATH,
            1_000_000,
            NONCE,
            b"",
        );
        assert!(h.starts_with(&format!("Kopa-Node {} 1000000 {NONCE} ", caller.node_id())));
        assert!(is_node_auth(&h));
        assert_eq!(claimed_node(&h), Some(caller.node_id()));
        let who = verify_request(&h, &target.node_id(), "get", PATH, &known, 1_000_299).unwrap();
        assert_eq!(who.node, caller.node_id());
        assert_eq!(who.nonce, NONCE);
        assert_eq!(who.check_body(b""), Ok(()));
        // Also within the window in the other direction.
        assert!(verify_request(&h, &target.node_id(), "GET", PATH, &known, 999_701).is_ok());
    }

    #[test]
    fn a_signature_for_another_target_is_refused() {
        let (caller, target, known) = setup();
        let other = NodeKey::from_seed([3; 32]);
        let h = sign_request(&caller, &other.node_id(), "GET", PATH, 50, NONCE, b"");
        assert_eq!(
            verify_request(&h, &target.node_id(), "GET", PATH, &known, 50),
            Err(RequestAuthError::BadSignature(caller.node_id().to_string()))
        );
    }

    #[test]
    fn a_stale_or_future_time_is_refused() {
        let (caller, target, known) = setup();
        let h = sign_request(&caller, &target.node_id(), "GET", PATH, 10_000, NONCE, b"");
        for now in [10_301, 9_699, 100_000] {
            assert_eq!(
                verify_request(&h, &target.node_id(), "GET", PATH, &known, now),
                Err(RequestAuthError::Stale { time: 10_000, now })
            );
        }
    }

    #[test]
    fn a_tampered_path_method_time_nonce_or_digest_is_refused() {
        let (caller, target, known) = setup();
        let h = sign_request(&caller, &target.node_id(), "POST", PATH, 77, NONCE, b"{}");
        let t = target.node_id();
        let bad = Err(RequestAuthError::BadSignature(caller.node_id().to_string()));
        let other_path = PATH.replace("limit=10", "limit=11");
        assert_eq!(verify_request(&h, &t, "POST", &other_path, &known, 77), bad);
        assert_eq!(verify_request(&h, &t, "GET", PATH, &known, 77), bad);
        let moved = h.replace(" 77 ", " 78 ");
        assert_eq!(verify_request(&moved, &t, "POST", PATH, &known, 77), bad);
        let renonced = h.replace(NONCE, "ffeeddccbbaa99887766554433221100");
        assert_eq!(verify_request(&renonced, &t, "POST", PATH, &known, 77), bad);
        let redigested = h.replace(&body_digest(b"{}"), &body_digest(b"{\"objects\":[]}"));
        assert_eq!(
            verify_request(&redigested, &t, "POST", PATH, &known, 77),
            bad
        );
        // A signature of another node presented under the caller's id.
        let forged = sign_request(
            &NodeKey::from_seed([9; 32]),
            &t,
            "POST",
            PATH,
            77,
            NONCE,
            b"{}",
        );
        let sig = forged.rsplit(' ').next().unwrap();
        let digest = body_digest(b"{}");
        let claimed = format!("Kopa-Node {} 77 {NONCE} {digest} {sig}", caller.node_id());
        assert_eq!(verify_request(&claimed, &t, "POST", PATH, &known, 77), bad);
    }

    #[test]
    fn another_body_or_a_replay_is_refused() {
        let (caller, target, known) = setup();
        let t = target.node_id();
        let h = sign_request(&caller, &t, "POST", PATH, 1_000, NONCE, b"{\"objects\":[]}");
        let signed = verify_request(&h, &t, "POST", PATH, &known, 1_000).unwrap();
        assert_eq!(signed.check_body(b"{\"objects\":[]}"), Ok(()));
        assert_eq!(
            signed.check_body(b"{\"objects\":[{}]}"),
            Err(RequestAuthError::BodyMismatch(caller.node_id().to_string()))
        );
        let mut cache = NonceCache::new(10);
        assert_eq!(cache.first_use(&signed, 1_000), Ok(()));
        // The same request again, at any time its signature is still accepted: refused.
        for now in [1_000, 1_299] {
            let again = verify_request(&h, &t, "POST", PATH, &known, now).unwrap();
            assert_eq!(
                cache.first_use(&again, now),
                Err(RequestAuthError::Replayed(caller.node_id().to_string()))
            );
        }
        // Another nonce is another request.
        let other = "ffeeddccbbaa99887766554433221100";
        let h2 = sign_request(&caller, &t, "POST", PATH, 1_000, other, b"{}");
        let s2 = verify_request(&h2, &t, "POST", PATH, &known, 1_000).unwrap();
        assert_eq!(cache.first_use(&s2, 1_000), Ok(()));
        // Once the window has passed, the signature is stale anyway and the nonce is forgotten.
        assert!(verify_request(&h, &t, "POST", PATH, &known, 1_601).is_err());
        let mut later = signed.clone();
        later.time = 1_700;
        assert_eq!(cache.first_use(&later, 1_700), Ok(()));
    }

    #[test]
    fn a_full_nonce_cache_refuses_rather_than_forgets() {
        let (caller, target, known) = setup();
        let t = target.node_id();
        let mut cache = NonceCache::new(2);
        for (i, nonce) in ["0", "1", "2"].iter().enumerate() {
            let nonce = nonce.repeat(32);
            let h = sign_request(&caller, &t, "GET", PATH, 5, &nonce, b"");
            let s = verify_request(&h, &t, "GET", PATH, &known, 5).unwrap();
            assert_eq!(cache.first_use(&s, 5).is_ok(), i < 2, "nonce {i}");
        }
    }

    #[test]
    fn an_unknown_node_is_refused() {
        let (_, target, known) = setup();
        let stranger = NodeKey::from_seed([5; 32]);
        let h = sign_request(&stranger, &target.node_id(), "GET", PATH, 5, NONCE, b"");
        assert_eq!(
            verify_request(&h, &target.node_id(), "GET", PATH, &known, 5),
            Err(RequestAuthError::UnknownNode(
                stranger.node_id().to_string()
            ))
        );
    }

    #[test]
    fn malformed_headers_are_refused_without_panicking() {
        let (caller, target, known) = setup();
        let t = target.node_id();
        let good = sign_request(&caller, &t, "GET", PATH, 5, NONCE, b"");
        let sig = good.rsplit(' ').next().unwrap().to_string();
        let id = caller.node_id().to_string();
        let d = body_digest(b"");
        for bad in [
            String::new(),
            "Kopa-Node".into(),
            format!("Bearer {id} 5 {NONCE} {d} {sig}"),
            format!("Kopa-Node {id} 5 {NONCE} {d}"),
            format!("Kopa-Node {id} 5 {sig}"),
            format!("Kopa-Node {id} 5 {NONCE} {d} {sig} extra"),
            format!("Kopa-Node node--xyz 5 {NONCE} {d} {sig}"),
            format!("Kopa-Node {id} five {NONCE} {d} {sig}"),
            format!("Kopa-Node {id} 5 short {d} {sig}"),
            format!("Kopa-Node {id} 5 {NONCE} AAAA {sig}"),
            format!("Kopa-Node {id} 5 {NONCE} {d} AAAA"),
            format!("Kopa-Node {id} 5 {NONCE} {d} {sig}!"),
        ] {
            assert!(
                matches!(
                    verify_request(&bad, &t, "GET", PATH, &known, 5),
                    Err(RequestAuthError::Malformed(_))
                ),
                "{bad:?}"
            );
        }
        assert!(!is_node_auth("Bearer abc"));
        assert_eq!(claimed_node("Bearer abc"), None);
    }
}
