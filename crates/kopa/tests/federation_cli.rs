//! Federation from the command line. Node identity: the first `kopa serve` makes the node's Ed25519
//! key (mode 0600, in the data directory), the node id is derived from it, `kopa node show --json`
//! prints id, name, public key and URL, and a node whose key file is lost or swapped refuses to
//! start. Peers: `kopa peer add|list|remove` with `--json`, their checks and export policy.

use serde_json::Value;
use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, Stdio};

const KOPA: &str = env!("CARGO_BIN_EXE_kopa");

fn kopa(args: &[&str]) -> Command {
    let mut c = Command::new(KOPA);
    c.args(args);
    for (k, _) in std::env::vars() {
        if k.starts_with("KOPA_") || k == "RUST_LOG" {
            c.env_remove(k);
        }
    }
    c
}

/// `kopa serve` on an ephemeral port until its first-start token line is printed, then SIGTERM.
fn serve_once(data: &Path) {
    let mut child: Child = kopa(&["serve", "--data", data.to_str().unwrap()])
        .args(["--listen", "127.0.0.1:0"])
        .env("KOPA_LOG", "warn")
        .env("KOPA_NODE__URL", "https://kopa.example")
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut line = String::new();
    BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    assert!(line.contains("administrator token"), "{line:?}");
    Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(child.wait().unwrap().success());
}

fn node_show(data: &Path) -> Value {
    let out = kopa(&["node", "show", "--json", "--data", data.to_str().unwrap()])
        .env("KOPA_NODE__URL", "https://kopa.example")
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).unwrap()
}

#[test]
fn first_serve_makes_the_key_and_node_show_prints_the_identity() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("node");
    serve_once(&data);

    let key_file = data.join(kopa_federation::KEY_FILE_NAME);
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&key_file).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600);
    }
    let key = kopa_federation::NodeKey::load(&data).unwrap().unwrap();

    let node = node_show(&data);
    let keys: Vec<&str> = node
        .as_object()
        .unwrap()
        .keys()
        .map(|k| k.as_str())
        .collect();
    assert_eq!(keys, ["id", "name", "public_key", "url"]);
    assert_eq!(node["id"], key.node_id().as_str());
    assert_eq!(node["public_key"], key.public_key().encode());
    assert_eq!(node["url"], "https://kopa.example");
    let pk = kopa_federation::PublicKey::parse(node["public_key"].as_str().unwrap()).unwrap();
    assert_eq!(pk.node_id().as_str(), node["id"]);

    // A second start keeps the same key and id.
    serve_once_again(&data);
    assert_eq!(node_show(&data)["id"], key.node_id().as_str());
}

/// Restart an existing node (no token line then): run until it listens, then stop.
fn serve_once_again(data: &Path) {
    // Without a token line to wait for, `kopa node show` while it runs proves it started; a start
    // that failed exits on its own with a failure status.
    let mut child = kopa(&["serve", "--data", data.to_str().unwrap()])
        .args(["--listen", "127.0.0.1:0"])
        .env("KOPA_LOG", "info")
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut err = BufReader::new(child.stderr.take().unwrap());
    let mut line = String::new();
    loop {
        line.clear();
        let n = err.read_line(&mut line).unwrap();
        assert!(n > 0, "serve exited before serving");
        if line.contains("kopa serving") {
            break;
        }
    }
    Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(child.wait().unwrap().success());
}

fn serve_fails(data: &Path) -> String {
    let out = kopa(&["serve", "--data", data.to_str().unwrap()])
        .args(["--listen", "127.0.0.1:0"])
        .env("KOPA_LOG", "warn")
        .output()
        .unwrap();
    assert!(!out.status.success());
    String::from_utf8_lossy(&out.stderr).into_owned()
}

#[test]
fn a_node_without_its_key_or_with_another_key_refuses_to_start() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("node");
    serve_once(&data);
    let key_file = data.join(kopa_federation::KEY_FILE_NAME);
    let original = std::fs::read(&key_file).unwrap();

    std::fs::remove_file(&key_file).unwrap();
    let err = serve_fails(&data);
    assert!(err.contains("has no key file"), "{err}");
    assert!(
        !key_file.exists(),
        "no new key may be made for an existing node"
    );
    // node show says there is no key.
    let node = node_show(&data);
    assert_eq!(node["public_key"], Value::Null);

    // Another node's key.
    let other = dir.path().join("other");
    serve_once(&other);
    std::fs::copy(other.join(kopa_federation::KEY_FILE_NAME), &key_file).unwrap();
    let err = serve_fails(&data);
    assert!(err.contains("belongs to"), "{err}");

    // A key file others can read.
    std::fs::write(&key_file, &original).unwrap();
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&key_file, std::fs::Permissions::from_mode(0o644)).unwrap();
        let err = serve_fails(&data);
        assert!(err.contains("chmod 600"), "{err}");
        std::fs::set_permissions(&key_file, std::fs::Permissions::from_mode(0o600)).unwrap();
    }
    serve_once_again(&data);
}

/// Run `kopa ARGS --data DATA --json`: (success, the one JSON object printed).
fn json_cmd(data: &Path, args: &[&str]) -> (bool, Value) {
    let out = kopa(args)
        .args(["--data", data.to_str().unwrap(), "--json"])
        .output()
        .unwrap();
    let stdout = String::from_utf8(out.stdout).unwrap();
    let lines: Vec<&str> = stdout.lines().collect();
    assert_eq!(
        lines.len(),
        1,
        "{args:?}: one line expected, got {stdout:?}"
    );
    (
        out.status.success(),
        serde_json::from_str(lines[0]).unwrap(),
    )
}

/// A node started once (in a temporary directory kept alive by the first value), its data
/// directory, and the public keys of two would-be peers.
fn started_node_and_two_peer_keys() -> (
    tempfile::TempDir,
    std::path::PathBuf,
    kopa_federation::PublicKey,
    kopa_federation::PublicKey,
) {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("node");
    serve_once(&data);
    let b_key = kopa_federation::NodeKey::from_seed([2; 32]).public_key();
    let c_key = kopa_federation::NodeKey::from_seed([3; 32]).public_key();
    (dir, data, b_key, c_key)
}

/// The command fails with one JSON error object whose message contains `needle`.
fn assert_refused(data: &Path, args: &[&str], needle: &str) {
    let (ok, v) = json_cmd(data, args);
    assert!(!ok, "{args:?} should fail: {v}");
    let msg = v["error"].as_str().unwrap_or_default();
    assert!(
        msg.contains(needle),
        "{args:?}: {msg:?} should mention {needle:?}"
    );
}

/// Every change is in the audit log, whose chain verifies.
fn audit_verifies(data: &Path) {
    let out = kopa(&["audit", "verify", "--data", data.to_str().unwrap()])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn peers_add_list_remove() {
    let (_dir, data, b_key, c_key) = started_node_and_two_peer_keys();

    let (ok, b) = json_cmd(
        &data,
        &[
            "peer",
            "add",
            "node-b",
            "--url",
            "https://b.example/",
            "--key",
            &b_key.encode(),
            "--token",
            "s3cret-token",
            "--max-tlp",
            "amber",
            "--collections",
            "c1,c2",
            "--types",
            "indicator",
        ],
    );
    assert!(ok, "{b}");
    assert_eq!(b["name"], "node-b");
    assert_eq!(b["node_id"], b_key.node_id().as_str());
    assert_eq!(b["url"], "https://b.example");
    assert_eq!(b["public_key"], b_key.encode());
    assert_eq!(b["token_set"], true);
    assert_eq!(b["policy"]["max_tlp"], "TLP:AMBER");
    assert_eq!(b["policy"]["collections"], serde_json::json!(["c1", "c2"]));
    assert_eq!(
        b["policy"]["object_types"],
        serde_json::json!(["indicator"])
    );
    assert!(!b.to_string().contains("s3cret-token"));

    // Defaults: TLP:GREEN, no collections; a key given in hex is the same key.
    let hex_key: String = {
        let bytes = c_key.to_bytes();
        bytes.iter().map(|b| format!("{b:02x}")).collect()
    };
    let (ok, c) = json_cmd(
        &data,
        &[
            "peer",
            "add",
            "node-c",
            "--url",
            "http://127.0.0.1:7471",
            "--key",
            &hex_key,
        ],
    );
    assert!(ok, "{c}");
    assert_eq!(c["policy"]["max_tlp"], "TLP:GREEN");
    assert_eq!(c["public_key"], c_key.encode());
    assert_eq!(c["token_set"], false);

    // Refusals, each with a clear message.
    for (args, needle) in [
        (
            vec![
                "peer",
                "add",
                "node-b",
                "--url",
                "https://x.example",
                "--key",
                &b_key.encode(),
            ],
            "already declared",
        ),
        (
            vec![
                "peer",
                "add",
                "again",
                "--url",
                "https://x.example",
                "--key",
                &b_key.encode(),
            ],
            "already declared",
        ),
        (
            vec![
                "peer",
                "add",
                "bad name",
                "--url",
                "https://x.example",
                "--key",
                &b_key.encode(),
            ],
            "peer name",
        ),
        (
            vec![
                "peer",
                "add",
                "d",
                "--url",
                "ftp://x.example",
                "--key",
                &b_key.encode(),
            ],
            "http:// or https://",
        ),
        (
            vec![
                "peer",
                "add",
                "d",
                "--url",
                "https://x.example",
                "--key",
                "abc",
            ],
            "public key",
        ),
        (
            vec![
                "peer",
                "add",
                "d",
                "--url",
                "https://x.example",
                "--key",
                &b_key.encode(),
                "--max-tlp",
                "purple",
            ],
            "--max-tlp",
        ),
        (vec!["peer", "remove", "nobody"], "no peer named"),
    ] {
        assert_refused(&data, &args, needle);
    }

    let (ok, list) = json_cmd(&data, &["peer", "list"]);
    assert!(ok, "{list}");
    let peers = list["peers"].as_array().unwrap();
    let names: Vec<&str> = peers.iter().map(|p| p["name"].as_str().unwrap()).collect();
    assert_eq!(names, ["node-b", "node-c"]);
    assert_eq!(peers[0]["last_sync_at"], Value::Null);
    assert_eq!(peers[0]["error_count"], 0);
    assert!(!list.to_string().contains("s3cret-token"));

    let (ok, r) = json_cmd(&data, &["peer", "remove", "node-b"]);
    assert!(ok, "{r}");
    assert_eq!(r["removed"], "node-b");
    let (_, list) = json_cmd(&data, &["peer", "list"]);
    assert_eq!(list["peers"].as_array().unwrap().len(), 1);

    audit_verifies(&data);
}

#[test]
fn directory_organisations_collection_ids_and_push() {
    let (_dir, data, b_key, c_key) = started_node_and_two_peer_keys();
    let b_node = b_key.node_id().as_str().to_string();

    // A peer declared with --push; another without.
    let (ok, b) = json_cmd(
        &data,
        &[
            "peer",
            "add",
            "node-b",
            "--url",
            "https://b.example",
            "--key",
            &b_key.encode(),
            "--push",
        ],
    );
    assert!(ok, "{b}");
    assert_eq!(b["push"], true);
    assert_eq!(b["status"], Value::Null);
    let (ok, c) = json_cmd(
        &data,
        &[
            "peer",
            "add",
            "node-c",
            "--url",
            "https://c.example",
            "--key",
            &c_key.encode(),
        ],
    );
    assert!(ok, "{c}");
    assert_eq!(c["push"], false);
    let (_, list) = json_cmd(&data, &["peer", "list"]);
    let push: Vec<(&str, bool)> = list["peers"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| (p["name"].as_str().unwrap(), p["push"].as_bool().unwrap()))
        .collect();
    assert_eq!(push, [("node-b", true), ("node-c", false)]);

    // Organisations: one hosted here, one hosted on node-b (a directory entry).
    let (ok, local) = json_cmd(&data, &["org", "add", "National CSIRT"]);
    assert!(ok, "{local}");
    assert_eq!(local["node"], Value::Null);
    let (ok, remote) = json_cmd(&data, &["org", "add", "Bank B", "--peer", "node-b"]);
    assert!(ok, "{remote}");
    assert_eq!(remote["name"], "Bank B");
    assert_eq!(remote["node"], b_node.as_str());
    let (_, orgs) = json_cmd(&data, &["org", "list"]);
    let homes: Vec<(&str, &Value)> = orgs["organisations"]
        .as_array()
        .unwrap()
        .iter()
        .map(|o| (o["name"].as_str().unwrap(), &o["node"]))
        .collect();
    assert!(homes.contains(&("Bank B", &Value::String(b_node.clone()))));
    assert!(homes.contains(&("National CSIRT", &Value::Null)));

    // A user of a directory organisation gets no token; a local user does.
    let (ok, bob) = json_cmd(
        &data,
        &["user", "add", "bob", "--org", "Bank B", "--role", "analyst"],
    );
    assert!(ok, "{bob}");
    assert_eq!(bob["token"], Value::Null);
    assert_eq!(bob["org"], "Bank B");
    assert_eq!(bob["node"], b_node.as_str());
    let (ok, nina) = json_cmd(&data, &["user", "add", "nina", "--org", "National CSIRT"]);
    assert!(ok, "{nina}");
    assert!(nina["token"].as_str().unwrap().starts_with("kopa_"));

    // A collection with a given id (the same sharing room on several nodes).
    let id = "6F1C2B8A-1D2E-4F30-9A4B-5C6D7E8F9A0B";
    let (ok, coll) = json_cmd(
        &data,
        &[
            "collection",
            "add",
            "Shared",
            "--id",
            id,
            "--read",
            "all",
            "--write",
            "all",
        ],
    );
    assert!(ok, "{coll}");
    assert_eq!(coll["id"], id.to_lowercase());

    // Refusals, each with a clear message.
    for (args, needle) in [
        (
            vec!["org", "add", "Bank Q", "--peer", "nobody"],
            "no peer named \"nobody\"",
        ),
        (
            vec!["org", "add", "Bank B", "--peer", "node-c"],
            "already exists",
        ),
        (
            vec![
                "collection",
                "add",
                "Again",
                "--id",
                id,
                "--read",
                "all",
                "--write",
                "all",
            ],
            "already exists",
        ),
        (
            vec![
                "collection",
                "add",
                "Bad",
                "--id",
                "room-1",
                "--read",
                "all",
                "--write",
                "all",
            ],
            "not a UUID",
        ),
    ] {
        assert_refused(&data, &args, needle);
    }
    let (_, colls) = json_cmd(&data, &["collection", "list"]);
    assert_eq!(colls["collections"].as_array().unwrap().len(), 1, "{colls}");

    audit_verifies(&data);
}

/// One key in 64 begins with '-' (base64url): `--key` takes it as the value it is, and `--json`
/// prints the peer as for any other key.
#[test]
fn a_key_beginning_with_a_hyphen_is_accepted() {
    let (_dir, data, _, _) = started_node_and_two_peer_keys();
    let key = (0u8..=255)
        .map(|seed| kopa_federation::NodeKey::from_seed([seed; 32]).public_key())
        .find(|k| k.encode().starts_with('-'))
        .expect("a seed whose public key begins with '-'");
    let encoded = key.encode();
    let (ok, p) = json_cmd(
        &data,
        &[
            "peer",
            "add",
            "dash",
            "--url",
            "https://d.example",
            "--key",
            &encoded,
        ],
    );
    assert!(ok, "{p}");
    assert_eq!(p["public_key"], encoded);
    assert_eq!(p["node_id"], key.node_id().as_str());
}
