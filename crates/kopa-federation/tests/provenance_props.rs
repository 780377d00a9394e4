//! Property tests of provenance over random objects: what is signed verifies, whatever the property
//! order or whitespace after a JSON round trip; changing any single value anywhere in the object
//! (outside the signature itself) is detected as tampering.

use kopa_federation::{sign, verify, KnownKeys, NodeKey, VerifyError, PROVENANCE_EXTENSION_ID};
use proptest::prelude::*;
use proptest::test_runner::RngSeed;
use serde_json::{json, Map, Value};

fn leaf() -> impl Strategy<Value = Value> {
    prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        // Integers canonical JSON holds exactly (others are refused: see the unit tests).
        (-(1i64 << 53) + 1..(1i64 << 53)).prop_map(|i| json!(i)),
        (-1.0e12f64..1.0e12).prop_map(|f| json!(f)),
        "\\PC{0,12}".prop_map(Value::String),
    ]
}

fn tree() -> impl Strategy<Value = Value> {
    leaf().prop_recursive(3, 24, 4, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..4).prop_map(Value::Array),
            prop::collection::btree_map("[a-z_]{1,6}", inner, 0..4)
                .prop_map(|m| Value::Object(m.into_iter().collect())),
        ]
    })
}

fn object() -> impl Strategy<Value = Value> {
    prop::collection::btree_map("x_[a-z_]{3,8}", tree(), 0..5).prop_map(|custom| {
        let mut o = json!({
            "type": "indicator", "spec_version": "2.1",
            "id": "indicator--8e2e2d2b-17d4-4cbf-938f-98ee46b3cd3f",
            "created": "2016-04-06T20:03:48.000Z", "modified": "2016-04-06T20:03:48.000Z",
            "pattern": "[ipv4-addr:value = '203.0.113.7']", "pattern_type": "stix",
            "valid_from": "2016-01-01T00:00:00Z",
        });
        let m = o.as_object_mut().unwrap();
        for (k, v) in custom {
            m.insert(k, v);
        }
        o
    })
}

/// Paths (object keys / array indexes) of every leaf, except the signature itself.
fn leaves(v: &Value, path: &mut Vec<Value>, out: &mut Vec<Vec<Value>>) {
    match v {
        Value::Object(m) => {
            for (k, child) in m {
                if k == "signature" {
                    continue;
                }
                path.push(json!(k));
                leaves(child, path, out);
                path.pop();
            }
        }
        Value::Array(a) => {
            for (i, child) in a.iter().enumerate() {
                path.push(json!(i));
                leaves(child, path, out);
                path.pop();
            }
        }
        _ => out.push(path.clone()),
    }
}

fn at<'a>(v: &'a mut Value, path: &[Value]) -> &'a mut Value {
    path.iter().fold(v, |v, p| match p {
        Value::String(k) => &mut v[k.as_str()],
        Value::Number(i) => &mut v[i.as_u64().unwrap() as usize],
        _ => unreachable!(),
    })
}

fn changed(v: &Value) -> Value {
    match v {
        Value::Null => json!(0),
        Value::Bool(b) => json!(!b),
        // Towards zero, so the result stays within ±(2^53 − 1).
        Value::Number(n) if n.is_i64() => {
            let i = n.as_i64().unwrap();
            json!(if i > 0 { i - 1 } else { i + 1 })
        }
        Value::Number(n) if n.is_u64() => json!(n.as_u64().unwrap() - 1),
        Value::Number(n) => json!(n.as_f64().unwrap() + 1.0),
        Value::String(s) => json!(format!("{s}x")),
        other => json!([other]),
    }
}

fn reversed(v: &Value) -> Value {
    match v {
        Value::Object(m) => Value::Object(
            m.iter()
                .rev()
                .map(|(k, v)| (k.clone(), reversed(v)))
                .collect::<Map<_, _>>(),
        ),
        Value::Array(a) => Value::Array(a.iter().map(reversed).collect()),
        other => other.clone(),
    }
}

proptest! {
    #![proptest_config(ProptestConfig {
        cases: 128,
        rng_seed: RngSeed::Fixed(0x4B0F_A5ED),
        failure_persistence: None,
        ..ProptestConfig::default()
    })]

    #[test]
    fn signed_objects_verify_after_reordering_and_reformatting(o in object()) {
        let key = NodeKey::from_seed([5; 32]);
        let known: KnownKeys = [key.public_key()].into_iter().collect();
        let signed = sign(&o, &key, "org-a").unwrap();
        let text = serde_json::to_string_pretty(&reversed(&signed)).unwrap();
        let back: Value = serde_json::from_str(&text).unwrap();
        let p = verify(&back, &known).unwrap();
        prop_assert_eq!(p.origin_node, key.node_id());
        prop_assert!(signed[ "extensions"][PROVENANCE_EXTENSION_ID]["signature"].is_string());
    }

    #[test]
    fn changing_any_value_is_tampering(o in object(), pick in any::<prop::sample::Index>()) {
        let key = NodeKey::from_seed([5; 32]);
        let known: KnownKeys = [key.public_key()].into_iter().collect();
        let signed = sign(&o, &key, "org-a").unwrap();
        let mut paths = Vec::new();
        leaves(&signed, &mut Vec::new(), &mut paths);
        let path = pick.get(&paths).clone();
        let mut bad = signed.clone();
        let slot = at(&mut bad, &path);
        *slot = changed(slot);
        prop_assume!(bad != signed);
        let err = verify(&bad, &known).unwrap_err();
        // Changing origin_node to something that is not a node id is malformed; changing it to
        // another form is an unknown node; anything else is tampering.
        let origin_path = path.last() == Some(&json!("origin_node"));
        prop_assert!(
            matches!(err, VerifyError::Tampered { .. })
                || (origin_path && matches!(err, VerifyError::Malformed { .. } | VerifyError::UnknownNode { .. })),
            "{:?} at {:?}", err, path
        );
    }
}
