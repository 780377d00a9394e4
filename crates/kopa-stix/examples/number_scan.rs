//! What the scan for numbers that would not be kept exactly costs per object, beside a full parse
//! of the same text: `cargo run --release -p kopa-stix --example number_scan -- [N]`.

use std::time::Instant;

fn main() {
    let n: usize = std::env::args()
        .nth(1)
        .and_then(|a| a.parse().ok())
        .unwrap_or(100_000);
    let objects: Vec<String> = (0..n)
        .map(|i| {
            serde_json::json!({
                "type": "indicator", "spec_version": "2.1",
                "id": format!("indicator--00000000-0000-4000-8000-{i:012}"),
                "created": "2024-01-01T00:00:00.000Z", "modified": "2024-01-01T00:00:00.000Z",
                "name": format!("indicator {i}"),
                "description": "A C2 server seen in this week's phishing wave",
                "pattern": format!("[ipv4-addr:value = '198.51.{}.{}']", i / 250 % 250, i % 250),
                "pattern_type": "stix", "valid_from": "2024-01-01T00:00:00Z", "confidence": 80,
                "labels": ["malicious-activity"],
                "object_marking_refs": ["marking-definition--bab4a63c-aed9-4cf5-a766-dfca5abac2bb"],
            })
            .to_string()
        })
        .collect();
    let bytes = objects.iter().map(String::len).sum::<usize>() / n.max(1);
    for _ in 0..3 {
        let t = Instant::now();
        let exact = objects
            .iter()
            .filter(|o| kopa_stix::numbers_exact(o))
            .count();
        let scan = t.elapsed().as_nanos() as f64 / n as f64;
        let t = Instant::now();
        let parsed = objects
            .iter()
            .filter(|o| serde_json::from_str::<serde_json::Value>(o).is_ok())
            .count();
        let parse = t.elapsed().as_nanos() as f64 / n as f64;
        println!(
            "{n} objects of {bytes} bytes: scan {scan:.0} ns per object ({exact} exact), \
             serde_json parse {parse:.0} ns per object ({parsed} parsed)"
        );
    }
}
