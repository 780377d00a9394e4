//! Fuzz the STIX pattern lexer, parser and validator, and evaluate what parses over a small fixed
//! set of observations with a small step budget. Checks: no panic, no hang, error columns inside
//! the input, and `validate` accepting only what `parse` accepts.
#![no_main]

use kopa_pattern::{parse, validate, Observation};
use libfuzzer_sys::fuzz_target;
use std::sync::OnceLock;

fn observations() -> &'static [Observation] {
    static OBS: OnceLock<Vec<Observation>> = OnceLock::new();
    OBS.get_or_init(|| {
        let v = serde_json::json!([
            {"type": "observed-data", "id": "observed-data--1", "first_observed": "2024-01-01T00:00:00Z",
             "last_observed": "2024-01-01T00:00:05Z", "number_observed": 2,
             "object_refs": ["file--1", "ipv4-addr--1", "email-message--1"]},
            {"type": "observed-data", "id": "observed-data--2", "first_observed": "2024-01-01T00:00:10Z",
             "last_observed": "2024-01-01T00:00:10Z", "number_observed": 1, "object_refs": ["email-addr--1"]},
            {"type": "file", "id": "file--1", "name": "a.exe", "size": 10, "hashes": {"MD5": "00"},
             "payload_bin": "AAEC", "tags": ["x", "y"], "parent_directory_ref": "file--1"},
            {"type": "ipv4-addr", "id": "ipv4-addr--1", "value": "10.0.0.1"},
            {"type": "email-addr", "id": "email-addr--1", "value": "a@example.com"},
            {"type": "email-message", "id": "email-message--1", "to_refs": ["email-addr--1"], "subject": "x\ny"}
        ]);
        Observation::from_json(&v).expect("fixed observations are valid")
    })
}

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    let chars = text.chars().count();
    let parsed = parse(&text);
    match validate(&text) {
        Ok(_) => assert!(parsed.is_ok(), "validate accepted what parse rejected"),
        Err(e) => assert!(
            e.column() >= 1 && e.column() <= chars + 1,
            "column {} outside input",
            e.column()
        ),
    }
    if let Ok(p) = parsed {
        let _ = p.matches_with_budget(observations(), 20_000);
        for o in observations() {
            let _ = p.matches_one(o);
        }
    }
});
