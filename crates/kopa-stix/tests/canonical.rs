//! RFC 8785 (JCS) canonical JSON: the RFC's own examples, and stability over the generated corpus.

mod common;

use kopa_stix::canonical_json;
use serde_json::Value;

#[test]
fn rfc8785_section_3_2_2_example() {
    let input = r#"{
      "numbers": [333333333.33333329, 1E30, 4.50, 2e-3, 0.000000000000000000000000001],
      "string": "\u20ac$\u000F\u000aA'\u0042\u0022\u005c\\\"\/",
      "literals": [null, true, false]
    }"#;
    let v: Value = serde_json::from_str(input).unwrap();
    assert_eq!(
        canonical_json(&v),
        r#"{"literals":[null,true,false],"numbers":[333333333.3333333,1e+30,4.5,0.002,1e-27],"string":"€$\u000f\nA'B\"\\\\\"/"}"#
    );
}

#[test]
fn rfc8785_section_3_2_3_sorting_by_utf16_code_units() {
    let input = r#"{
      "\u20ac": "Euro Sign",
      "\r": "Carriage Return",
      "\ufb33": "Hebrew Letter Dalet With Dagesh",
      "1": "One",
      "\ud83d\ude00": "Emoji: Grinning Face",
      "\u0080": "Control",
      "\u00f6": "Latin Small Letter O With Diaeresis"
    }"#;
    let v: Value = serde_json::from_str(input).unwrap();
    let out = canonical_json(&v);
    let keys: Vec<String> = {
        let back: serde_json::Map<String, Value> = serde_json::from_str(&out).unwrap();
        back.keys().cloned().collect()
    };
    assert_eq!(keys, ["\r", "1", "\u{80}", "ö", "€", "😀", "\u{fb33}"]);
}

#[test]
fn canonical_form_is_stable_and_order_independent() {
    let corpus = common::gen::corpus(42, 500);
    for v in &corpus {
        let c = canonical_json(v);
        let reparsed: Value = serde_json::from_str(&c).unwrap();
        assert_eq!(canonical_json(&reparsed), c, "not idempotent");
        // Reversing key order changes nothing.
        if let Value::Object(m) = v {
            let reversed: serde_json::Map<String, Value> = m
                .iter()
                .rev()
                .map(|(k, v)| (k.clone(), v.clone()))
                .collect();
            assert_eq!(canonical_json(&Value::Object(reversed)), c);
        }
    }
}
