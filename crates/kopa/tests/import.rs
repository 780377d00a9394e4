//! `kopa import`: STIX bundles (streamed), arrays and JSON lines loaded into a collection as one of
//! the node's users, through the TAXII write pipeline: the same per-object failures, signed as
//! originated here, audited per transaction, refused for whoever may not write there.

use serde_json::{json, Value};
use std::path::Path;
use std::process::{Command, Stdio};

const KOPA: &str = env!("CARGO_BIN_EXE_kopa");

fn kopa(data: &Path, args: &[&str]) -> (bool, Value) {
    let mut c = Command::new(KOPA);
    c.args(args)
        .args(["--data", data.to_str().unwrap(), "--json"]);
    for (k, _) in std::env::vars() {
        if k.starts_with("KOPA_") || k == "RUST_LOG" {
            c.env_remove(k);
        }
    }
    let out = c.stderr(Stdio::null()).output().unwrap();
    let stdout = String::from_utf8(out.stdout).unwrap();
    let v: Value = serde_json::from_str(stdout.trim())
        .unwrap_or_else(|e| panic!("{args:?}: one JSON object expected ({e}): {stdout:?}"));
    (out.status.success(), v)
}

fn ok(data: &Path, args: &[&str]) -> Value {
    let (success, v) = kopa(data, args);
    assert!(success, "{args:?} failed: {v}");
    v
}

fn indicator(n: u32) -> Value {
    json!({"type": "indicator", "spec_version": "2.1",
           "id": format!("indicator--00000000-0000-4000-8000-{n:012}"),
           "created": "2026-01-01T00:00:00.000Z", "modified": "2026-01-01T00:00:00.000Z",
           "pattern": format!("[ipv4-addr:value = '10.0.{}.{}']", n / 256, n % 256),
           "pattern_type": "stix", "valid_from": "2026-01-01T00:00:00Z"})
}

/// A node with a key (started once), organisation Bank with analyst `ana` and reader `rita`,
/// organisation Other, and collection `room` that all read and only Bank writes.
fn node(dir: &Path) -> std::path::PathBuf {
    let data = dir.join("node");
    // The node's key is made at its first start: serve until the node is initialised.
    let mut serve = Command::new(KOPA)
        .args([
            "serve",
            "--data",
            data.to_str().unwrap(),
            "--listen",
            "127.0.0.1:0",
        ])
        .env_remove("KOPA_ADMIN_TOKEN")
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut line = String::new();
    std::io::BufRead::read_line(
        &mut std::io::BufReader::new(serve.stdout.take().unwrap()),
        &mut line,
    )
    .unwrap();
    Command::new("kill")
        .args(["-TERM", &serve.id().to_string()])
        .status()
        .unwrap();
    serve.wait().unwrap();
    ok(&data, &["org", "add", "Bank"]);
    ok(&data, &["org", "add", "Other"]);
    ok(
        &data,
        &["user", "add", "ana", "--org", "Bank", "--role", "analyst"],
    );
    ok(
        &data,
        &["user", "add", "rita", "--org", "Bank", "--role", "reader"],
    );
    ok(
        &data,
        &[
            "user", "add", "oscar", "--org", "Other", "--role", "analyst",
        ],
    );
    ok(
        &data,
        &[
            "collection",
            "add",
            "Room",
            "--alias",
            "room",
            "--read",
            "all",
            "--write",
            "Bank",
        ],
    );
    data
}

/// Object rows of the node's database, by collection alias: (id, json).
fn stored(data: &Path) -> Vec<(String, String)> {
    let db = rusqlite::Connection::open(data.join("kopa.db")).unwrap();
    let mut st = db
        .prepare(
            "SELECT o.stix_id, o.json FROM objects o JOIN collections c ON c.cid = o.collection \
             WHERE c.alias = 'room' ORDER BY o.stix_id",
        )
        .unwrap();
    st.query_map([], |r| Ok((r.get(0)?, r.get(1)?)))
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap()
}

#[test]
fn a_bundle_is_streamed_in_transactions_with_the_same_failures_as_taxii() {
    let dir = tempfile::tempdir().unwrap();
    let data = node(dir.path());
    let mut objects: Vec<Value> = (1..=2500).map(indicator).collect();
    objects[7]["big"] = json!("BIG");
    objects[9] = json!({"type": "indicator", "id": "indicator--not-a-uuid"});
    let bundle = json!({"type": "bundle", "id": "bundle--00000000-0000-4000-8000-000000000001",
                        "objects": objects});
    let file = dir.path().join("bundle.json");
    // Pretty-printed: the first line is not an object, the file is streamed. The big integer is
    // written as text: a JSON value in this test could not hold it.
    let text = serde_json::to_string_pretty(&bundle)
        .unwrap()
        .replace("\"BIG\"", "123456789012345678901234567890");
    std::fs::write(&file, text).unwrap();
    let args = [
        "import",
        file.to_str().unwrap(),
        "--collection",
        "room",
        "--as",
        "ana",
        "--batch",
        "1000",
    ];
    let (success, v) = kopa(&data, &args);
    assert!(!success, "refused objects make the exit non-zero: {v}");
    assert_eq!(v["total"], 2500, "{v}");
    assert_eq!(v["stored"], 2498, "{v}");
    assert_eq!(v["failed"], 2, "{v}");
    assert_eq!(v["transactions"], 3, "{v}");
    let failures = v["failures"].as_array().unwrap();
    assert_eq!(
        failures[0]["id"],
        "indicator--00000000-0000-4000-8000-000000000008"
    );
    assert!(
        failures[0]["message"].as_str().unwrap().contains("big"),
        "{v}"
    );
    assert_eq!(failures[1]["id"], "indicator--not-a-uuid");
    // Signed as originated here by the user's organisation, as a TAXII post of ana's would be.
    let rows = stored(&data);
    assert_eq!(rows.len(), 2498);
    let one: Value = serde_json::from_str(&rows[0].1).unwrap();
    let provenance = one["extensions"]
        .as_object()
        .unwrap()
        .values()
        .find(|e| e.get("origin_node").is_some())
        .expect("a provenance extension");
    assert!(provenance["signature"].is_string(), "{one}");
    // One audit entry per transaction, in it; the log verifies.
    let audit = ok(&data, &["audit", "verify"]);
    assert_eq!(audit["ok"], true, "{audit}");
    let db = rusqlite::Connection::open(data.join("kopa.db")).unwrap();
    let imports: i64 = db
        .query_row(
            "SELECT count(*) FROM audit WHERE action = 'objects.import'",
            [],
            |r| r.get(0),
        )
        .unwrap();
    assert_eq!(imports, 3);
    // A second run finds everything held: duplicates, nothing new.
    let (_, again) = kopa(&data, &args);
    assert_eq!(
        (again["stored"].clone(), again["duplicates"].clone()),
        (json!(0), json!(2498))
    );
}

#[test]
fn json_lines_and_arrays_report_each_bad_line_and_keep_the_rest() {
    let dir = tempfile::tempdir().unwrap();
    let data = node(dir.path());
    let lines = dir.path().join("objects.jsonl");
    let mut text = String::new();
    for n in 1..=5 {
        text.push_str(&indicator(n).to_string());
        text.push('\n');
    }
    text.push_str("{this is not json\n\n");
    text.push_str(&indicator(6).to_string());
    text.push('\n');
    std::fs::write(&lines, text).unwrap();
    let array = dir.path().join("array.json");
    std::fs::write(&array, json!([indicator(7), indicator(8)]).to_string()).unwrap();
    let (success, v) = kopa(
        &data,
        &[
            "import",
            lines.to_str().unwrap(),
            array.to_str().unwrap(),
            "--collection",
            "room",
            "--as",
            "ana",
        ],
    );
    assert!(!success);
    assert_eq!(v["stored"], 8, "{v}");
    assert_eq!(v["failed"], 1, "{v}");
    assert_eq!(v["failures"][0]["line"], 6, "{v}");
    assert!(
        v["failures"][0]["message"]
            .as_str()
            .unwrap()
            .starts_with("not JSON"),
        "{v}"
    );
    assert_eq!(stored(&data).len(), 8);
}

#[test]
fn only_who_may_write_there_imports() {
    let dir = tempfile::tempdir().unwrap();
    let data = node(dir.path());
    let file = dir.path().join("one.jsonl");
    std::fs::write(&file, format!("{}\n", indicator(1))).unwrap();
    let path = file.to_str().unwrap();
    for (user, collection, needle) in [
        ("rita", "room", "may not write"),
        ("oscar", "room", "may not write"),
        ("nobody", "room", "no user named"),
        ("ana", "no-such-room", "sees no collection"),
    ] {
        let (success, v) = kopa(
            &data,
            &["import", path, "--collection", collection, "--as", user],
        );
        assert!(!success, "{user} into {collection}: {v}");
        let e = v["error"].as_str().unwrap_or_default();
        assert!(e.contains(needle), "{user}: {e:?} should say {needle:?}");
    }
    assert!(stored(&data).is_empty(), "nothing was written");
    // A batch too large to hold is refused, not attempted.
    let (success, v) = kopa(
        &data,
        &[
            "import",
            path,
            "--collection",
            "room",
            "--as",
            "ana",
            "--batch",
            "1000000000",
        ],
    );
    assert!(!success);
    assert!(
        v["error"]
            .as_str()
            .unwrap()
            .contains("--batch must be from 1 to"),
        "{v}"
    );
    // Not a STIX file.
    std::fs::write(dir.path().join("x.txt"), "hello").unwrap();
    let (success, v) = kopa(
        &data,
        &[
            "import",
            dir.path().join("x.txt").to_str().unwrap(),
            "--collection",
            "room",
            "--as",
            "ana",
        ],
    );
    assert!(!success);
    assert!(
        v["error"].as_str().unwrap().contains("not a STIX bundle"),
        "{v}"
    );
}
