//! Cost of provenance: signs and verifies N indicators (default 20,000) and prints objects per second
//! for each, canonical JSON included. `cargo run --release -p kopa-federation --example sign_verify [N]`

use kopa_federation::{sign, verify, KnownKeys, NodeKey};
use serde_json::json;
use std::time::Instant;

fn main() {
    let n: u32 = std::env::args()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(20_000);
    let key = NodeKey::from_seed([1; 32]);
    let known: KnownKeys = [key.public_key()].into_iter().collect();
    let objects: Vec<_> = (0..n)
        .map(|i| {
            json!({
                "type": "indicator", "spec_version": "2.1",
                "id": format!("indicator--8e2e2d2b-17d4-4cbf-938f-{i:012}"),
                "created": "2016-04-06T20:03:48.000Z", "modified": "2016-04-06T20:03:48.000Z",
                "name": format!("indicator {i}"),
                "pattern": format!("[ipv4-addr:value = '10.{}.{}.{}']", i >> 16 & 255, i >> 8 & 255, i & 255),
                "pattern_type": "stix", "valid_from": "2016-01-01T00:00:00Z",
                "labels": ["malicious-activity"],
                "object_marking_refs": ["marking-definition--bab4a63c-aed9-4cf5-a766-dfca5abac2bb"],
            })
        })
        .collect();
    let t = Instant::now();
    let signed: Vec<_> = objects
        .iter()
        .map(|o| sign(o, &key, "org-a").expect("sign"))
        .collect();
    let sign_s = t.elapsed().as_secs_f64();
    let t = Instant::now();
    let ok = signed.iter().filter(|o| verify(o, &known).is_ok()).count();
    let verify_s = t.elapsed().as_secs_f64();
    assert_eq!(ok, signed.len());
    println!(
        "{n} objects: sign {:.0} objects/s, verify {:.0} objects/s (one core)",
        f64::from(n) / sign_s,
        f64::from(n) / verify_s
    );
}
