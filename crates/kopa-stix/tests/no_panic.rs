//! Property tests: no JSON input makes the validator panic, whatever its shape; whatever is accepted comes
//! back unchanged; and `validate` agrees with `parse_object`.

mod common;

use common::gen;
use proptest::prelude::*;
use proptest::test_runner::{Config, RngSeed};
use serde_json::{Map, Value};

const KEYS: &[&str] = &[
    "type",
    "id",
    "spec_version",
    "created",
    "modified",
    "created_by_ref",
    "object_marking_refs",
    "granular_markings",
    "extensions",
    "external_references",
    "kill_chain_phases",
    "hashes",
    "labels",
    "confidence",
    "pattern",
    "valid_from",
    "valid_until",
    "first_seen",
    "last_seen",
    "objects",
    "object_refs",
    "number_observed",
    "first_observed",
    "last_observed",
    "sighting_of_ref",
    "source_ref",
    "target_ref",
    "selectors",
    "marking_ref",
    "lang",
    "definition",
    "definition_type",
    "extension_type",
    "tlp_2_0",
    "source_name",
    "external_id",
    "url",
    "payload_bin",
    "is_multipart",
    "body_multipart",
    "latitude",
    "longitude",
    "precision",
    "contents",
    "values",
    "sections",
    "x_acme_ref",
    "x_acme_refs",
    "x_hex",
    "MD5",
    "SHA-256",
    "archive-ext",
    "contains_refs",
    "extension-definition--60a3c5c5-0d10-413e-aab3-9e08dde9e88d",
];

const STRINGS: &[&str] = &[
    "indicator",
    "file",
    "marking-definition",
    "relationship",
    "sighting",
    "bundle",
    "x-acme",
    "2.1",
    "2.0",
    "indicator--8e2e2d2b-17d4-4cbf-938f-98ee46b3cd3f",
    "identity--8e2e2d2b-17d4-4cbf-938f-98ee46b3cd3f",
    "marking-definition--94868c89-83c2-464b-929b-a1a8aa3c8487",
    "file--",
    "--",
    "2016-04-06T20:03:48.000Z",
    "2016-04-06T20:03:48Z",
    "9999-12-31T23:59:59.999999999Z",
    "0000-01-01T00:00:00Z",
    "2016-02-30T00:00:00Z",
    "labels.[0]",
    "labels.[99999999999999999999]",
    "[0]",
    "a..b",
    ".",
    "",
    "property-extension",
    "tlp",
    "statement",
    "cve",
    "capec",
    "CVE-2016-1234",
    "d41d8cd98f00b204e9800998ecf8427e",
    "é",
    "\u{0}",
    "extension-definition--60a3c5c5-0d10-413e-aab3-9e08dde9e88d",
];

fn config() -> Config {
    Config {
        cases: 2000,
        rng_seed: RngSeed::Fixed(0x00C0_FFEE),
        failure_persistence: None,
        ..Config::default()
    }
}

fn leaf() -> impl Strategy<Value = Value> {
    prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(Value::from),
        any::<u64>().prop_map(Value::from),
        any::<f64>()
            .prop_map(|f| serde_json::Number::from_f64(f).map_or(Value::Null, Value::Number)),
        prop::sample::select(STRINGS).prop_map(|s| Value::String(s.to_string())),
        ".{0,40}".prop_map(Value::String),
    ]
}

fn key() -> impl Strategy<Value = String> {
    prop_oneof![
        3 => prop::sample::select(KEYS).prop_map(str::to_string),
        1 => ".{0,12}",
    ]
}

fn json() -> impl Strategy<Value = Value> {
    leaf().prop_recursive(5, 64, 8, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..6).prop_map(Value::Array),
            prop::collection::vec((key(), inner), 0..8)
                .prop_map(|kv| Value::Object(kv.into_iter().collect::<Map<String, Value>>())),
        ]
    })
}

fn check(v: &Value) {
    let parsed = kopa_stix::parse_object(v);
    let errors = kopa_stix::validate(v);
    assert_eq!(parsed.is_ok(), errors.is_empty());
    match parsed {
        Ok(obj) => assert_eq!(&Value::Object(obj.raw), v),
        Err(errors) => {
            assert!(!errors.is_empty());
            for e in &errors {
                assert!(!e.message.is_empty());
                assert!(!e.object_id.is_empty());
            }
        }
    }
}

proptest! {
    #![proptest_config(config())]

    #[test]
    fn arbitrary_json_never_panics(v in json()) {
        check(&v);
    }

    /// Start from a valid object and damage it: change, remove or add properties with arbitrary values.
    #[test]
    fn damaged_valid_objects_never_panic(
        seed in any::<u64>(),
        type_index in 0usize..64,
        edits in prop::collection::vec((0usize..64, key(), json(), 0u8..3), 1..4),
    ) {
        let types = gen::all_types();
        let mut rng = gen::Rng::new(seed);
        let mut v = gen::object(&mut rng, types[type_index % types.len()]);
        if let Value::Object(m) = &mut v {
            for (pos, k, val, op) in edits {
                let existing: Vec<String> = m.keys().cloned().collect();
                let target = existing.get(pos % existing.len().max(1)).cloned().unwrap_or(k.clone());
                match op {
                    0 => { m.insert(target, val); }
                    1 => { m.shift_remove(&target); }
                    _ => { m.insert(k, val); }
                }
            }
        }
        check(&v);
    }
}
