//! Round trip over a large generated corpus: every valid object of every type parses, and what comes
//! back is exactly what went in (same properties, same values, same order).

mod common;

use common::gen;
use kopa_stix::{parse_object, parse_object_owned};

#[test]
fn generated_corpus_parses_and_round_trips() {
    let types = gen::all_types();
    let corpus = gen::corpus(0x5EED_2026, 12 * types.len() * 10);
    let mut failures = Vec::new();
    for input in &corpus {
        match parse_object(input) {
            Ok(obj) => {
                let back = serde_json::to_value(&obj.raw).unwrap();
                assert_eq!(&back, input, "value changed");
                // Same text, so the same property order too.
                assert_eq!(
                    serde_json::to_string(&obj.raw).unwrap(),
                    serde_json::to_string(input).unwrap()
                );
                assert_eq!(obj.id, input["id"].as_str().unwrap());
                assert_eq!(obj.type_, input["type"].as_str().unwrap());
                assert_eq!(obj.spec_version, "2.1");
                let owned = parse_object_owned(input.clone()).unwrap();
                assert_eq!(owned, obj);
            }
            Err(errors) => failures.push((input.clone(), errors)),
        }
    }
    assert!(
        failures.is_empty(),
        "{} of {} valid objects rejected ({:?}); first: {:#}\n{:#?}",
        failures.len(),
        corpus.len(),
        failures
            .iter()
            .map(|f| f.1[0].message.clone())
            .collect::<std::collections::BTreeSet<_>>(),
        failures[0].0,
        failures[0].1
    );
}

#[test]
fn corpus_covers_every_predefined_type() {
    let types = gen::all_types();
    for t in kopa_stix::PREDEFINED_TYPES {
        assert!(types.contains(t), "generator misses {t}");
    }
}
