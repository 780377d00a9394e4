//! Measures the plain evaluator: single-observation checks per second for a few pattern shapes,
//! and full binding searches per second. Run with
//! `cargo run --release -p kopa-pattern --example eval_speed`. Rates are per second of CPU time.

use kopa_pattern::{parse, Observation};

#[path = "common/clock.rs"]
mod clock;
use clock::Clock;

fn main() {
    let bundle = serde_json::json!([
        {"type": "observed-data", "id": "observed-data--1", "first_observed": "2024-01-01T00:00:00Z",
         "last_observed": "2024-01-01T00:00:00Z", "number_observed": 1,
         "object_refs": ["ipv4-addr--1", "domain-name--1", "file--1"]},
        {"type": "ipv4-addr", "id": "ipv4-addr--1", "value": "198.51.100.7"},
        {"type": "domain-name", "id": "domain-name--1", "value": "www.evil.example"},
        {"type": "file", "id": "file--1", "name": "report.exe",
         "hashes": {"SHA-256": "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"}},
        {"type": "observed-data", "id": "observed-data--2", "first_observed": "2024-01-01T00:00:03Z",
         "last_observed": "2024-01-01T00:00:03Z", "number_observed": 1, "object_refs": ["ipv4-addr--2"]},
        {"type": "ipv4-addr", "id": "ipv4-addr--2", "value": "203.0.113.9"}
    ]);
    let obs = Observation::from_json(&bundle).expect("valid bundle");
    let single = [
        ("equality (miss)", "[ipv4-addr:value = '203.0.113.1']"),
        ("equality (hit)", "[ipv4-addr:value = '198.51.100.7']"),
        ("hash equality", "[file:hashes.'SHA-256' = 'e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855']"),
        ("IN list", "[domain-name:value IN ('a.example', 'b.example', 'www.evil.example')]"),
        ("ISSUBSET", "[ipv4-addr:value ISSUBSET '198.51.100.0/24']"),
        ("LIKE", "[domain-name:value LIKE '%.evil.example']"),
        ("MATCHES", "[domain-name:value MATCHES '^www\\\\.evil\\\\.']"),
    ];
    let n = 2_000_000u32;
    for (name, p) in single {
        let p = parse(p).expect("valid pattern");
        let t = Clock::start();
        let mut hits = 0u32;
        for _ in 0..n {
            hits += u32::from(p.matches_one(&obs[0]) == Some(true));
        }
        let secs = t.secs();
        println!(
            "{name:<16} {:>12.0} evaluations/s (hits {hits})",
            f64::from(n) / secs
        );
    }
    let seq = parse("([ipv4-addr:value = '198.51.100.7'] FOLLOWEDBY [ipv4-addr:value ISSUBSET '203.0.113.0/24']) WITHIN 5 SECONDS")
        .expect("valid pattern");
    let m = 500_000u32;
    let t = Clock::start();
    let mut hits = 0u32;
    for _ in 0..m {
        hits += u32::from(seq.matches(&obs).is_match());
    }
    let secs = t.secs();
    println!(
        "{:<16} {:>12.0} searches/s over 2 observations (hits {hits})",
        "FOLLOWEDBY+WITHIN",
        f64::from(m) / secs
    );
}
