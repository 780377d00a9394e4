//! The house's arrows, read from `cargo metadata`: which crate may depend on which (see
//! `docs/architecture.md`). The domain, the STIX model, the patterning engine and federation's
//! signatures know no HTTP, no async runtime and no database; the write pipeline knows no HTTP; the
//! sync loop does not depend on the HTTP server. Normal dependencies only, followed transitively.

use std::collections::{BTreeSet, HashMap};
use std::process::Command;

use serde_json::Value;

const HTTP: &[&str] = &[
    "axum",
    "axum-core",
    "hyper",
    "hyper-util",
    "http",
    "http-body",
    "http-body-util",
    "h2",
    "reqwest",
    "tower",
    "tower-http",
];
const RUNTIME: &[&str] = &["tokio", "async-std", "smol", "mio"];
const DATABASE: &[&str] = &[
    "rusqlite",
    "libsqlite3-sys",
    "sqlx",
    "sqlx-core",
    "postgres",
];

/// Each package's normal dependencies (by name), transitively.
fn closure() -> HashMap<String, BTreeSet<String>> {
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let out = Command::new(cargo)
        .args(["metadata", "--format-version", "1", "--locked", "--offline"])
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .output()
        .expect("cargo metadata runs");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let meta: Value = serde_json::from_slice(&out.stdout).unwrap();
    let names: HashMap<&str, &str> = meta["packages"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| (p["id"].as_str().unwrap(), p["name"].as_str().unwrap()))
        .collect();
    let mut direct: HashMap<&str, Vec<&str>> = HashMap::new();
    for node in meta["resolve"]["nodes"].as_array().unwrap() {
        let deps = node["deps"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|d| {
                d["dep_kinds"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .any(|k| k["kind"].is_null())
            })
            .map(|d| d["pkg"].as_str().unwrap())
            .collect();
        direct.insert(node["id"].as_str().unwrap(), deps);
    }
    let mut out = HashMap::new();
    for (&id, &name) in &names {
        let mut seen = BTreeSet::new();
        let mut todo = vec![id];
        while let Some(p) = todo.pop() {
            for &d in direct.get(p).map(Vec::as_slice).unwrap_or_default() {
                if seen.insert(names[d].to_string()) {
                    todo.push(d);
                }
            }
        }
        out.insert(name.to_string(), seen);
    }
    out
}

fn forbidden<'a>(deps: &BTreeSet<String>, lists: &[&'a [&'a str]]) -> Vec<&'a str> {
    lists
        .iter()
        .flat_map(|l| l.iter())
        .filter(|n| deps.contains(**n))
        .copied()
        .collect()
}

#[test]
fn the_crates_depend_only_along_the_allowed_arrows() {
    let deps = closure();
    for pure in ["kopa-core", "kopa-stix", "kopa-pattern", "kopa-federation"] {
        let bad = forbidden(&deps[pure], &[HTTP, RUNTIME, DATABASE]);
        assert!(bad.is_empty(), "{pure} depends on {bad:?}");
    }
    let bad = forbidden(&deps["kopa-ingest"], &[HTTP]);
    assert!(bad.is_empty(), "kopa-ingest depends on {bad:?}");
    assert!(
        !deps["kopa-sync"].contains("kopa-server"),
        "kopa-sync depends on kopa-server"
    );
    assert!(
        !deps["kopa-store"].contains("kopa-ingest") && !deps["kopa-store"].contains("kopa-server"),
        "the store depends on what is built on it"
    );
    // The test sees what it claims to: the server does use HTTP and the store a database.
    assert!(deps["kopa-server"].contains("axum"));
    assert!(deps["kopa-store"].contains("rusqlite"));
}
