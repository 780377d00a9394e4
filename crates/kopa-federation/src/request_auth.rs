//! Node-to-node authentication of HTTP requests.
//!
//! A Kopa node calling a peer sends
//!
//! ```text
//! Authorization: Kopa-Node <caller-node-id> <unix-seconds> <signature-b64url>
//! ```
//!
//! where the signature is Ed25519, by the caller's node key, over the bytes
//!
//! ```text
//! "kopa-node-auth-v1\n" + <target-node-id> + "\n" + <METHOD> + "\n" + <path-and-query> + "\n" + <unix-seconds>
//! ```
//!
//! The target accepts the request when the caller's key is known to it (a declared peer), the target
//! node id is its own (a signature made for one node cannot be replayed to another), the method and
//! path-and-query are the request's own, and the time is within ±[`MAX_SKEW_SECONDS`] of its clock.
//! The body is not covered: TLS protects it in transit and every object carries its own signature.

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use ed25519_dalek::Signature;

use crate::identity::{NodeId, NodeKey};
use crate::provenance::KnownKeys;

/// The authorization scheme name.
pub const SCHEME: &str = "Kopa-Node";

/// Largest accepted difference between the caller's clock and ours, in seconds.
pub const MAX_SKEW_SECONDS: i64 = 300;

const CONTEXT: &str = "kopa-node-auth-v1";

/// Why a `Kopa-Node` authorization was refused. Messages never contain the signature.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RequestAuthError {
    #[error("malformed Kopa-Node authorization: expected 'Kopa-Node <node-id> <unix-seconds> <signature>' ({0})")]
    Malformed(&'static str),
    #[error("Kopa-Node authorization by {0}, which is not a declared peer of this node")]
    UnknownNode(String),
    #[error("Kopa-Node authorization time {time} is more than {MAX_SKEW_SECONDS} s away from this node's clock ({now})")]
    Stale { time: i64, now: i64 },
    #[error(
        "Kopa-Node authorization by {0}: the signature does not match this request for this node"
    )]
    BadSignature(String),
}

/// The bytes a caller signs.
fn message(target: &NodeId, method: &str, path_and_query: &str, unix_seconds: i64) -> Vec<u8> {
    format!(
        "{CONTEXT}\n{target}\n{}\n{path_and_query}\n{unix_seconds}",
        method.to_ascii_uppercase()
    )
    .into_bytes()
}

/// The current time in unix seconds.
pub fn now_unix() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() as i64)
}

/// The value of the `Authorization` header with which node `key` calls node `target` with `method` on
/// `path_and_query` (the request target as sent, e.g. `/kopa/collections/…/objects/?limit=10`) at time
/// `unix_seconds`.
pub fn sign_request(
    key: &NodeKey,
    target: &NodeId,
    method: &str,
    path_and_query: &str,
    unix_seconds: i64,
) -> String {
    let sig = key.sign_bytes(&message(target, method, path_and_query, unix_seconds));
    format!(
        "{SCHEME} {} {unix_seconds} {}",
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

/// Check a `Kopa-Node` header value received by node `this_node` for a request with `method` and
/// `path_and_query`, at time `now` (unix seconds). Returns the calling node's id.
pub fn verify_request(
    header: &str,
    this_node: &NodeId,
    method: &str,
    path_and_query: &str,
    known: &KnownKeys,
    now: i64,
) -> Result<NodeId, RequestAuthError> {
    let (scheme, rest) = header
        .trim()
        .split_once(' ')
        .ok_or(RequestAuthError::Malformed("no credentials"))?;
    if !scheme.eq_ignore_ascii_case(SCHEME) {
        return Err(RequestAuthError::Malformed("not the Kopa-Node scheme"));
    }
    let mut parts = rest.split_whitespace();
    let (Some(node), Some(time), Some(sig), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err(RequestAuthError::Malformed("three fields expected"));
    };
    let node = NodeId::parse(node).map_err(|_| RequestAuthError::Malformed("bad node id"))?;
    let time: i64 = time
        .parse()
        .map_err(|_| RequestAuthError::Malformed("time is not an integer"))?;
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
        &message(this_node, method, path_and_query, time),
        &signature,
    ) {
        return Err(RequestAuthError::BadSignature(node.to_string()));
    }
    Ok(node)
}

#[cfg(test)]
mod tests {
    use super::*;

    const PATH: &str = "/kopa/collections/91a7b528-80eb-42ed-a74d-c6fbd5a26116/objects/?limit=10";

    fn setup() -> (NodeKey, NodeKey, KnownKeys) {
        let caller = NodeKey::from_seed([1; 32]);
        let target = NodeKey::from_seed([2; 32]);
        let known: KnownKeys = [caller.public_key()].into_iter().collect();
        (caller, target, known)
    }

    #[test]
    fn a_signed_request_verifies_and_names_the_caller() {
        let (caller, target, known) = setup();
        let h = sign_request(&caller, &target.node_id(), "GET", PATH, 1_000_000);
        assert!(h.starts_with(&format!("Kopa-Node {} 1000000 ", caller.node_id())));
        assert!(is_node_auth(&h));
        assert_eq!(claimed_node(&h), Some(caller.node_id()));
        let who = verify_request(&h, &target.node_id(), "get", PATH, &known, 1_000_299).unwrap();
        assert_eq!(who, caller.node_id());
        // Also within the window in the other direction.
        assert!(verify_request(&h, &target.node_id(), "GET", PATH, &known, 999_701).is_ok());
    }

    #[test]
    fn a_signature_for_another_target_is_refused() {
        let (caller, target, known) = setup();
        let other = NodeKey::from_seed([3; 32]);
        let h = sign_request(&caller, &other.node_id(), "GET", PATH, 50);
        assert_eq!(
            verify_request(&h, &target.node_id(), "GET", PATH, &known, 50),
            Err(RequestAuthError::BadSignature(caller.node_id().to_string()))
        );
    }

    #[test]
    fn a_stale_or_future_time_is_refused() {
        let (caller, target, known) = setup();
        let h = sign_request(&caller, &target.node_id(), "GET", PATH, 10_000);
        for now in [10_301, 9_699, 100_000] {
            assert_eq!(
                verify_request(&h, &target.node_id(), "GET", PATH, &known, now),
                Err(RequestAuthError::Stale { time: 10_000, now })
            );
        }
    }

    #[test]
    fn a_tampered_path_method_or_time_is_refused() {
        let (caller, target, known) = setup();
        let h = sign_request(&caller, &target.node_id(), "GET", PATH, 77);
        let t = target.node_id();
        let bad = Err(RequestAuthError::BadSignature(caller.node_id().to_string()));
        let other_path = PATH.replace("limit=10", "limit=11");
        assert_eq!(verify_request(&h, &t, "GET", &other_path, &known, 77), bad);
        assert_eq!(verify_request(&h, &t, "POST", PATH, &known, 77), bad);
        let moved = h.replace(" 77 ", " 78 ");
        assert_eq!(verify_request(&moved, &t, "GET", PATH, &known, 77), bad);
        // A signature of another node presented under the caller's id.
        let forged = sign_request(&NodeKey::from_seed([9; 32]), &t, "GET", PATH, 77);
        let sig = forged.rsplit(' ').next().unwrap();
        let claimed = format!("Kopa-Node {} 77 {sig}", caller.node_id());
        assert_eq!(verify_request(&claimed, &t, "GET", PATH, &known, 77), bad);
    }

    #[test]
    fn an_unknown_node_is_refused() {
        let (_, target, known) = setup();
        let stranger = NodeKey::from_seed([5; 32]);
        let h = sign_request(&stranger, &target.node_id(), "GET", PATH, 5);
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
        let good = sign_request(&caller, &t, "GET", PATH, 5);
        let sig = good.rsplit(' ').next().unwrap().to_string();
        let id = caller.node_id().to_string();
        for bad in [
            String::new(),
            "Kopa-Node".into(),
            format!("Bearer {id} 5 {sig}"),
            format!("Kopa-Node {id} 5"),
            format!("Kopa-Node {id} 5 {sig} extra"),
            format!("Kopa-Node node--xyz 5 {sig}"),
            format!("Kopa-Node {id} five {sig}"),
            format!("Kopa-Node {id} 5 AAAA"),
            format!("Kopa-Node {id} 5 {sig}!"),
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
