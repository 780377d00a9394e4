//! The Kopa provenance extension: who originated an object, signed by that node.
//!
//! Every object a node originates carries, under `extensions`, the property extension
//! [`PROVENANCE_EXTENSION_ID`]:
//!
//! ```json
//! "extensions": {
//!   "extension-definition--880ae703-a3d7-4595-8ad7-ca36997d911f": {
//!     "extension_type": "property-extension",
//!     "origin_node": "node--<32 hex digits>",
//!     "origin_org": "<organisation id on the origin node>",
//!     "signature": "<Ed25519 signature, base64url without padding>"
//!   }
//! }
//! ```
//!
//! The signature is over the RFC 8785 canonical JSON ([`kopa_stix::canonical_json`]) of the whole object
//! with only the `signature` property of this extension removed: every other property, including
//! `origin_node` and `origin_org`, is covered. Property order and whitespace therefore do not matter;
//! any change of a value does. The extension-definition object itself is
//! [`PROVENANCE_EXTENSION_DEFINITION`] (shipped as `extension-definition.json` in this crate).

use std::collections::HashMap;

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use ed25519_dalek::Signature;
use serde_json::{Map, Value};

use crate::identity::{NodeId, NodeKey, PublicKey};

/// Id of the Kopa provenance extension definition.
pub const PROVENANCE_EXTENSION_ID: &str =
    "extension-definition--880ae703-a3d7-4595-8ad7-ca36997d911f";

/// The STIX 2.1 extension-definition object of the provenance extension, as JSON text.
pub const PROVENANCE_EXTENSION_DEFINITION: &str = include_str!("../extension-definition.json");

/// What a verified object says about its origin.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Provenance {
    pub origin_node: NodeId,
    pub origin_org: String,
}

/// Why an object could not be signed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SignError {
    #[error("only a JSON object can be signed")]
    NotAnObject,
    #[error("object {id}: 'extensions' must be a JSON object")]
    BadExtensions { id: String },
    #[error(
        "object {id} was originated by {origin}, not by this node: it keeps its origin's signature"
    )]
    ForeignOrigin { id: String, origin: String },
    #[error("object {id}: {path} is an integer beyond ±(2^53 − 1), which canonical JSON (RFC 8785) cannot represent exactly, so a signature could not protect it")]
    InexactNumber { id: String, path: String },
}

/// Why an object's provenance was rejected. Each case is a distinct reason, for counting and logging.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum VerifyError {
    #[error("not a JSON object")]
    NotAnObject,
    #[error(
        "object {id} is unsigned: it has no Kopa provenance extension ({PROVENANCE_EXTENSION_ID})"
    )]
    Unsigned { id: String },
    #[error("object {id}: provenance extension property '{property}' {problem}")]
    Malformed {
        id: String,
        property: &'static str,
        problem: &'static str,
    },
    #[error("object {id} names origin node {node}, whose key this node does not know")]
    UnknownNode { id: String, node: String },
    #[error("object {id}: signature is not a base64url Ed25519 signature (64 bytes)")]
    BadSignature { id: String },
    #[error("object {id}: signature by {node} does not match the content: the object was changed after signing")]
    Tampered { id: String, node: String },
    #[error("object {id}: {path} is an integer beyond ±(2^53 − 1), which canonical JSON (RFC 8785) cannot represent exactly: its signature cannot protect it")]
    InexactNumber { id: String, path: String },
}

/// Largest integer magnitude that RFC 8785 (numbers as IEEE 754 doubles) represents exactly.
const MAX_SAFE_INTEGER: u64 = (1 << 53) - 1;

/// The path of the first integer in `v` that canonical JSON would round to a double, if any. Two
/// objects differing only in such an integer have the same canonical form, so the signature would not
/// tell them apart: such objects are neither signed nor accepted.
fn inexact_number(v: &Value, path: &mut String) -> Option<String> {
    match v {
        Value::Number(n) => {
            let unsafe_int = n
                .as_i64()
                .map(|i| i.unsigned_abs() > MAX_SAFE_INTEGER)
                .or_else(|| n.as_u64().map(|u| u > MAX_SAFE_INTEGER))
                .unwrap_or(false);
            unsafe_int.then(|| path.clone())
        }
        Value::Array(items) => items.iter().enumerate().find_map(|(i, item)| {
            let len = path.len();
            path.push_str(&format!("[{i}]"));
            let found = inexact_number(item, path);
            path.truncate(len);
            found
        }),
        Value::Object(m) => m.iter().find_map(|(k, item)| {
            let len = path.len();
            if !path.is_empty() {
                path.push('.');
            }
            path.push_str(k);
            let found = inexact_number(item, path);
            path.truncate(len);
            found
        }),
        _ => None,
    }
}

/// Public keys of the nodes this node trusts as origins (its own and its peers'), by node id.
#[derive(Debug, Clone, Default)]
pub struct KnownKeys {
    keys: HashMap<NodeId, PublicKey>,
}

impl KnownKeys {
    pub fn new() -> Self {
        Self::default()
    }

    /// Trust `key`; its node id is derived from it, so an entry can never name the wrong node.
    pub fn insert(&mut self, key: PublicKey) -> NodeId {
        let id = key.node_id();
        self.keys.insert(id.clone(), key);
        id
    }

    pub fn get(&self, node: &NodeId) -> Option<&PublicKey> {
        self.keys.get(node)
    }

    pub fn len(&self) -> usize {
        self.keys.len()
    }

    pub fn is_empty(&self) -> bool {
        self.keys.is_empty()
    }
}

impl FromIterator<PublicKey> for KnownKeys {
    fn from_iter<I: IntoIterator<Item = PublicKey>>(iter: I) -> Self {
        let mut k = KnownKeys::new();
        for key in iter {
            k.insert(key);
        }
        k
    }
}

fn object_id(map: &Map<String, Value>) -> String {
    map.get("id")
        .and_then(Value::as_str)
        .unwrap_or("<no id>")
        .to_string()
}

/// Sign `object` as originated by this node (`key`) and organisation `origin_org`: returns the object
/// with the provenance extension added (or, for a new version of an object this node originated,
/// replaced). An object that names another node as its origin is refused: it keeps its origin's
/// signature.
pub fn sign(object: &Value, key: &NodeKey, origin_org: &str) -> Result<Value, SignError> {
    let mut map = object.as_object().ok_or(SignError::NotAnObject)?.clone();
    let id = object_id(&map);
    if let Some(path) = inexact_number(object, &mut String::new()) {
        return Err(SignError::InexactNumber { id, path });
    }
    let node = key.node_id();
    let exts = map
        .entry("extensions")
        .or_insert_with(|| Value::Object(Map::new()))
        .as_object_mut()
        .ok_or_else(|| SignError::BadExtensions { id: id.clone() })?;
    if let Some(origin) = exts
        .get(PROVENANCE_EXTENSION_ID)
        .and_then(|e| e.get("origin_node"))
        .and_then(Value::as_str)
    {
        if origin != node.as_str() {
            return Err(SignError::ForeignOrigin {
                id,
                origin: origin.to_string(),
            });
        }
    }
    let mut ext = Map::new();
    ext.insert(
        "extension_type".into(),
        Value::String("property-extension".into()),
    );
    ext.insert("origin_node".into(), Value::String(node.to_string()));
    ext.insert("origin_org".into(), Value::String(origin_org.to_string()));
    exts.insert(PROVENANCE_EXTENSION_ID.into(), Value::Object(ext));
    let unsigned = Value::Object(map);
    let sig = key.sign_bytes(kopa_stix::canonical_json(&unsigned).as_bytes());
    let Value::Object(mut map) = unsigned else {
        return Err(SignError::NotAnObject);
    };
    if let Some(Value::Object(exts)) = map.get_mut("extensions") {
        if let Some(Value::Object(ext)) = exts.get_mut(PROVENANCE_EXTENSION_ID) {
            ext.insert(
                "signature".into(),
                Value::String(URL_SAFE_NO_PAD.encode(sig.to_bytes())),
            );
        }
    }
    Ok(Value::Object(map))
}

/// Verify the provenance of `object`: it must carry the extension, name an origin node whose key is in
/// `known`, and carry that node's valid signature over its canonical JSON.
pub fn verify(object: &Value, known: &KnownKeys) -> Result<Provenance, VerifyError> {
    let map = object.as_object().ok_or(VerifyError::NotAnObject)?;
    let id = object_id(map);
    let ext = map
        .get("extensions")
        .and_then(|e| e.get(PROVENANCE_EXTENSION_ID))
        .ok_or_else(|| VerifyError::Unsigned { id: id.clone() })?;
    let ext = ext.as_object().ok_or_else(|| VerifyError::Malformed {
        id: id.clone(),
        property: "(extension)",
        problem: "must be a JSON object",
    })?;
    let text = |property: &'static str| -> Result<&str, VerifyError> {
        match ext.get(property) {
            Some(Value::String(s)) => Ok(s),
            Some(_) => Err(VerifyError::Malformed {
                id: id.clone(),
                property,
                problem: "must be a string",
            }),
            None => Err(VerifyError::Malformed {
                id: id.clone(),
                property,
                problem: "is missing",
            }),
        }
    };
    let node_text = text("origin_node")?;
    let origin_org = text("origin_org")?.to_string();
    let sig_text = match ext.get("signature") {
        None => return Err(VerifyError::Unsigned { id }),
        Some(_) => text("signature")?,
    };
    let node = NodeId::parse(node_text).map_err(|_| VerifyError::Malformed {
        id: id.clone(),
        property: "origin_node",
        problem: "is not node-- followed by 32 lowercase hex digits",
    })?;
    let key = known.get(&node).ok_or_else(|| VerifyError::UnknownNode {
        id: id.clone(),
        node: node.to_string(),
    })?;
    let sig_bytes: [u8; 64] = URL_SAFE_NO_PAD
        .decode(sig_text)
        .ok()
        .and_then(|b| b.try_into().ok())
        .ok_or_else(|| VerifyError::BadSignature { id: id.clone() })?;
    let sig = Signature::from_bytes(&sig_bytes);

    let mut unsigned = map.clone();
    if let Some(Value::Object(exts)) = unsigned.get_mut("extensions") {
        if let Some(Value::Object(e)) = exts.get_mut(PROVENANCE_EXTENSION_ID) {
            e.remove("signature");
        }
    }
    if let Some(path) = inexact_number(object, &mut String::new()) {
        return Err(VerifyError::InexactNumber { id, path });
    }
    let msg = kopa_stix::canonical_json(&Value::Object(unsigned));
    if key.verify_strict(msg.as_bytes(), &sig) {
        Ok(Provenance {
            origin_node: node,
            origin_org,
        })
    } else {
        Err(VerifyError::Tampered {
            id,
            node: node.to_string(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn indicator() -> Value {
        json!({
            "type": "indicator", "spec_version": "2.1",
            "id": "indicator--8e2e2d2b-17d4-4cbf-938f-98ee46b3cd3f",
            "created": "2016-04-06T20:03:48.000Z", "modified": "2016-04-06T20:03:48.000Z",
            "name": "évil — résumé",
            "pattern": "[ipv4-addr:value = '203.0.113.7']", "pattern_type": "stix",
            "valid_from": "2016-01-01T00:00:00Z",
            "confidence": 85,
            "object_marking_refs": ["marking-definition--bab4a63c-aed9-4cf5-a766-dfca5abac2bb"],
        })
    }

    fn node(seed: u8) -> NodeKey {
        NodeKey::from_seed([seed; 32])
    }

    fn known(keys: &[&NodeKey]) -> KnownKeys {
        keys.iter().map(|k| k.public_key()).collect()
    }

    #[test]
    fn sign_then_verify_names_the_origin() {
        let a = node(1);
        let signed = sign(&indicator(), &a, "org-a").unwrap();
        let p = verify(&signed, &known(&[&a, &node(2)])).unwrap();
        assert_eq!(p.origin_node, a.node_id());
        assert_eq!(p.origin_org, "org-a");
        // Everything else of the object is unchanged.
        let mut stripped = signed.as_object().unwrap().clone();
        stripped.remove("extensions");
        assert_eq!(Value::Object(stripped), indicator());
    }

    #[test]
    fn existing_extensions_are_kept_and_covered() {
        let a = node(1);
        let mut obj = indicator();
        obj["extensions"] = json!({"extension-definition--5c2b9a4e-7d1f-4a63-9e0b-8f3c1d2a6b75": {
            "extension_type": "property-extension", "organisations": ["org-b"]}});
        let signed = sign(&obj, &a, "org-a").unwrap();
        assert!(verify(&signed, &known(&[&a])).is_ok());
        let mut widened = signed.clone();
        widened["extensions"]["extension-definition--5c2b9a4e-7d1f-4a63-9e0b-8f3c1d2a6b75"]
            ["organisations"] = json!(["org-b", "org-c"]);
        assert!(matches!(
            verify(&widened, &known(&[&a])),
            Err(VerifyError::Tampered { .. })
        ));
    }

    #[test]
    fn any_single_byte_change_is_rejected() {
        let a = node(1);
        let k = known(&[&a]);
        let signed = sign(&indicator(), &a, "org-a").unwrap();
        let text = serde_json::to_string(&signed).unwrap();
        let sig_start = text.find("\"signature\"").unwrap();
        let mut tried = 0;
        for (i, b) in text.bytes().enumerate() {
            // Change each letter or digit of the object outside the signature property itself.
            if !b.is_ascii_alphanumeric() || i >= sig_start {
                continue;
            }
            let mut bytes = text.clone().into_bytes();
            bytes[i] = if b == b'1' { b'2' } else { b'1' };
            let Ok(v) = serde_json::from_slice::<Value>(&bytes) else {
                continue;
            };
            tried += 1;
            let r = verify(&v, &k);
            assert!(r.is_err(), "byte {i} changed and still verified");
        }
        assert!(tried > 100, "{tried}");
        // The plain tamper case gives the tamper error.
        let mut v = signed.clone();
        v["confidence"] = json!(86);
        assert!(matches!(verify(&v, &k), Err(VerifyError::Tampered { .. })));
    }

    #[test]
    fn unknown_origin_is_rejected() {
        let a = node(1);
        let signed = sign(&indicator(), &a, "org-a").unwrap();
        let err = verify(&signed, &known(&[&node(2)])).unwrap_err();
        assert_eq!(
            err,
            VerifyError::UnknownNode {
                id: "indicator--8e2e2d2b-17d4-4cbf-938f-98ee46b3cd3f".into(),
                node: a.node_id().to_string()
            }
        );
    }

    #[test]
    fn claiming_another_origin_is_rejected() {
        // Node B signs, then rewrites origin_node to A's id: A's key does not verify B's signature.
        let (a, b) = (node(1), node(2));
        let mut signed = sign(&indicator(), &b, "org-b").unwrap();
        signed["extensions"][PROVENANCE_EXTENSION_ID]["origin_node"] = json!(a.node_id());
        assert!(matches!(
            verify(&signed, &known(&[&a, &b])),
            Err(VerifyError::Tampered { .. })
        ));
    }

    #[test]
    fn unsigned_and_malformed_are_distinct_errors() {
        let a = node(1);
        let k = known(&[&a]);
        assert!(matches!(
            verify(&indicator(), &k),
            Err(VerifyError::Unsigned { .. })
        ));
        assert_eq!(verify(&json!([1]), &k), Err(VerifyError::NotAnObject));
        let signed = sign(&indicator(), &a, "org-a").unwrap();
        let mut no_sig = signed.clone();
        no_sig["extensions"][PROVENANCE_EXTENSION_ID]
            .as_object_mut()
            .unwrap()
            .remove("signature");
        assert!(matches!(
            verify(&no_sig, &k),
            Err(VerifyError::Unsigned { .. })
        ));
        let mut bad_sig = signed.clone();
        bad_sig["extensions"][PROVENANCE_EXTENSION_ID]["signature"] = json!("!!not base64!!");
        assert!(matches!(
            verify(&bad_sig, &k),
            Err(VerifyError::BadSignature { .. })
        ));
        let mut bad_node = signed.clone();
        bad_node["extensions"][PROVENANCE_EXTENSION_ID]["origin_node"] = json!(42);
        assert!(matches!(
            verify(&bad_node, &k),
            Err(VerifyError::Malformed {
                property: "origin_node",
                ..
            })
        ));
    }

    #[test]
    fn property_order_and_whitespace_do_not_matter() {
        let a = node(1);
        let signed = sign(&indicator(), &a, "org-a").unwrap();
        // Reverse the order of every object's properties and pretty-print it.
        fn reversed(v: &Value) -> Value {
            match v {
                Value::Object(m) => Value::Object(
                    m.iter()
                        .rev()
                        .map(|(k, v)| (k.clone(), reversed(v)))
                        .collect(),
                ),
                Value::Array(a) => Value::Array(a.iter().map(reversed).collect()),
                other => other.clone(),
            }
        }
        let text = serde_json::to_string_pretty(&reversed(&signed)).unwrap();
        assert_ne!(text, serde_json::to_string(&signed).unwrap());
        let back: Value = serde_json::from_str(&text).unwrap();
        assert!(verify(&back, &known(&[&a])).is_ok());
    }

    #[test]
    fn signed_objects_are_still_valid_stix() {
        let a = node(1);
        let signed = sign(&indicator(), &a, "org-a").unwrap();
        let parsed = kopa_stix::parse_object(&signed).unwrap();
        assert_eq!(Value::Object(parsed.raw), signed);
        let sco = json!({"type": "ipv4-addr", "spec_version": "2.1",
            "id": "ipv4-addr--ff26c055-6336-5bc5-b98d-13d6226742dd", "value": "198.51.100.3"});
        let signed = sign(&sco, &a, "org-a").unwrap();
        assert!(kopa_stix::parse_object(&signed).is_ok());
        assert!(verify(&signed, &known(&[&a])).is_ok());
    }

    #[test]
    fn resigning_replaces_own_provenance_but_not_a_foreign_one() {
        let (a, b) = (node(1), node(2));
        let signed = sign(&indicator(), &a, "org-a").unwrap();
        let mut next = signed.clone();
        next["modified"] = json!("2017-01-01T00:00:00.000Z");
        let resigned = sign(&next, &a, "org-a2").unwrap();
        assert_eq!(
            verify(&resigned, &known(&[&a])).unwrap().origin_org,
            "org-a2"
        );
        assert!(matches!(
            sign(&signed, &b, "org-b"),
            Err(SignError::ForeignOrigin { .. })
        ));
    }

    #[test]
    fn integers_that_canonical_json_cannot_hold_are_refused() {
        let a = node(1);
        let mut big = indicator();
        big["x_counts"] = json!([1, {"n": 9_007_199_254_740_993_i64}]);
        assert_eq!(
            sign(&big, &a, "org-a"),
            Err(SignError::InexactNumber {
                id: "indicator--8e2e2d2b-17d4-4cbf-938f-98ee46b3cd3f".into(),
                path: "x_counts[1].n".into()
            })
        );
        // 2^53 − 1 is still exact.
        big["x_counts"] = json!([1, {"n": 9_007_199_254_740_991_i64}]);
        let signed = sign(&big, &a, "org-a").unwrap();
        assert!(verify(&signed, &known(&[&a])).is_ok());
        // A signed object whose integer was pushed beyond the range afterwards is refused, not
        // accepted because the rounded canonical form happens to match.
        let mut bad = signed.clone();
        bad["x_counts"][1]["n"] = json!(9_007_199_254_740_993_i64);
        assert!(matches!(
            verify(&bad, &known(&[&a])),
            Err(VerifyError::InexactNumber { .. })
        ));
    }

    #[test]
    fn the_shipped_extension_definition_is_valid_stix() {
        let v: Value = serde_json::from_str(PROVENANCE_EXTENSION_DEFINITION).unwrap();
        assert_eq!(v["id"], PROVENANCE_EXTENSION_ID);
        assert!(
            kopa_stix::parse_object(&v).is_ok(),
            "{:?}",
            kopa_stix::validate(&v)
        );
    }
}
