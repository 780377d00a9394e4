//! `kopa match` on small committed fixtures (tests/fixtures/match): the output lines, `--sightings`,
//! each input format, and the closing summary with bad records by line number.

use serde_json::Value;
use std::path::PathBuf;
use std::process::Command;

const KOPA: &str = env!("CARGO_BIN_EXE_kopa");

fn fixtures() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/match")
}

/// Runs `kopa match` in the fixtures directory; returns (stdout lines as JSON, stderr).
fn run(args: &[&str]) -> (Vec<Value>, String) {
    let out = Command::new(KOPA)
        .current_dir(fixtures())
        .arg("match")
        .args(["--indicators", "indicators.json", "--observations"])
        .args(args)
        .output()
        .expect("kopa runs");
    let stderr = String::from_utf8(out.stderr).unwrap();
    assert!(out.status.success(), "{stderr}");
    let lines = String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).expect("one JSON object per line"))
        .collect();
    (lines, stderr)
}

fn ind(n: u32) -> String {
    format!("indicator--a0000000-0000-4000-8000-00000000000{n}")
}

fn line(n: u32, obs: &[&str], count: u64) -> Value {
    serde_json::json!({"indicator": ind(n), "observed_data": obs, "count": count})
}

#[test]
fn ecs_json_lines() {
    let (out, err) = run(&["logs.jsonl", "--format", "ecs"]);
    assert_eq!(
        out,
        vec![
            line(1, &["logs.jsonl:1", "logs.jsonl:6"], 2),
            line(2, &["logs.jsonl:2"], 1),
            line(3, &["logs.jsonl:4"], 1),
            line(4, &["logs.jsonl:4"], 1),
            line(6, &["logs.jsonl:2", "logs.jsonl:6"], 2),
        ]
    );
    assert!(err.contains("4 records read, 2 bad"), "{err}");
    assert!(err.contains("bad record logs.jsonl:3:"), "{err}");
    assert!(err.contains("bad record logs.jsonl:5:"), "{err}");
    assert!(err.contains("1 revoked"), "{err}");
    assert!(err.contains("1 not STIX patterns"), "{err}");
}

#[test]
fn format_is_detected() {
    let (detected, _) = run(&["logs.jsonl"]);
    let (explicit, _) = run(&["logs.jsonl", "--format", "ecs"]);
    assert_eq!(detected, explicit);
    let (zeek, _) = run(&["conn.log"]);
    assert_eq!(zeek.len(), 2);
}

#[test]
fn zeek_conn_log() {
    let (out, err) = run(&["conn.log", "--format", "zeek"]);
    assert_eq!(
        out,
        vec![line(1, &["conn.log:8"], 1), line(4, &["conn.log:10"], 1)]
    );
    assert!(err.contains("bad record conn.log:9:"), "{err}");
}

#[test]
fn csv_with_header() {
    let (out, err) = run(&["logs.csv", "--format", "csv"]);
    assert_eq!(
        out,
        vec![line(1, &["logs.csv:2"], 1), line(2, &["logs.csv:3"], 1)]
    );
    assert!(err.contains("bad record logs.csv:4:"), "{err}");
}

#[test]
fn stix_observed_data_and_sightings() {
    let od1 = "observed-data--b0000000-0000-4000-8000-000000000001";
    let od2 = "observed-data--b0000000-0000-4000-8000-000000000002";
    let (out, _) = run(&["observed.json"]);
    assert_eq!(
        out,
        vec![
            line(1, &[od2], 4),
            line(2, &[od1], 1),
            line(6, &[od1, od2], 5)
        ]
    );
    let (sightings, _) = run(&["observed.json", "--sightings"]);
    assert_eq!(sightings.len(), 3);
    let s = &sightings[2];
    assert_eq!(s["type"], "sighting");
    assert_eq!(s["spec_version"], "2.1");
    assert!(s["id"].as_str().unwrap().starts_with("sighting--"));
    assert_eq!(s["sighting_of_ref"], ind(6));
    assert_eq!(s["count"], 5);
    assert_eq!(s["observed_data_refs"], serde_json::json!([od1, od2]));
    assert_eq!(s["first_seen"], "2024-03-01T10:00:00.000Z");
    assert_eq!(s["last_seen"], "2024-03-01T10:05:00.000Z");
    assert_ne!(sightings[0]["id"], sightings[1]["id"]);
    // Log records are not observed-data: their sightings carry no observed_data_refs.
    let (from_logs, _) = run(&["logs.jsonl", "--sightings"]);
    assert!(from_logs
        .iter()
        .all(|s| s.get("observed_data_refs").is_none()));
    assert_eq!(from_logs[0]["count"], 2);
}

#[test]
fn bad_mapping_is_a_clear_error() {
    let dir = std::env::temp_dir().join(format!("kopa-match-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let m = dir.join("bad.toml");
    std::fs::write(&m, "[fields]\n\"a\" = \"ip:value\"\n\"b\" = \"novalue\"\n").unwrap();
    let out = Command::new(KOPA)
        .current_dir(fixtures())
        .args([
            "match",
            "--indicators",
            "indicators.json",
            "--observations",
            "logs.jsonl",
        ])
        .arg("--mapping")
        .arg(&m)
        .output()
        .unwrap();
    let err = String::from_utf8(out.stderr).unwrap();
    assert!(!out.status.success());
    assert!(err.contains("mapping line 3"), "{err}");
    std::fs::remove_dir_all(&dir).ok();
}
