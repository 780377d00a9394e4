//! The node reads the time of day in one place, `kopa_core::clock`: every other part is given a
//! `Clock` (the store at open, the server and the sync loop through it), so that deadlines and
//! expiries can be tested with a clock that is set and advanced. This test fails when any other
//! Rust file of the workspace reads the system time.

use std::path::{Path, PathBuf};

/// Ways Rust code reads the time of day.
const READS: &[&str] = &[
    "SystemTime::now(",
    "Utc::now(",
    "Local::now(",
    "OffsetDateTime::now",
    "UNIX_EPOCH.elapsed(",
];

/// The one file allowed to read it, and this test, which names the ways.
const ALLOWED: &[&str] = &[
    "crates/kopa-core/src/clock.rs",
    "crates/kopa-core/tests/one_clock.rs",
];

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for e in entries.flatten() {
        let path = e.path();
        let name = e.file_name();
        if name == "target" || name.to_string_lossy().starts_with('.') {
            continue;
        }
        if path.is_dir() {
            rust_files(&path, out);
        } else if path.extension().is_some_and(|x| x == "rs") {
            out.push(path);
        }
    }
}

/// The lines of `text` that read the time: (line number, line).
fn time_reads(text: &str) -> Vec<(usize, String)> {
    text.lines()
        .enumerate()
        .filter(|(_, l)| !l.trim_start().starts_with("//"))
        .filter(|(_, l)| READS.iter().any(|r| l.contains(r)))
        .map(|(i, l)| (i + 1, l.trim().to_string()))
        .collect()
}

#[test]
fn the_scan_finds_a_read_of_the_time() {
    let code = "let a = 1;\n    let t = chrono::Utc::now();\n// SystemTime::now() in a comment\n";
    assert_eq!(
        time_reads(code),
        [(2, "let t = chrono::Utc::now();".to_string())]
    );
}

#[test]
fn only_the_clock_reads_the_time() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    let mut files = Vec::new();
    for dir in ["crates", "fuzz", "bench"] {
        rust_files(&root.join(dir), &mut files);
    }
    assert!(
        files.len() > 50,
        "the workspace's sources are found: {}",
        files.len()
    );
    let mut found = Vec::new();
    for f in files {
        let shown = f
            .strip_prefix(&root)
            .unwrap_or(&f)
            .to_string_lossy()
            .replace('\\', "/");
        if ALLOWED.contains(&shown.as_str()) {
            continue;
        }
        let text = std::fs::read_to_string(&f).unwrap_or_default();
        for (n, line) in time_reads(&text) {
            found.push(format!("{shown}:{n}: {line}"));
        }
    }
    assert!(
        found.is_empty(),
        "read the time through a kopa_core::Clock (the node's, or a test clock), not directly:\n{}",
        found.join("\n")
    );
}
