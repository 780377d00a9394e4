//! The `kopa` binary's command-line forms, run for real against a node in a temporary directory:
//! first start of `kopa serve`, the admin commands with `--json` (while the server runs), refusals of
//! bad databases, configuration layering and `kopa audit verify` on a tampered log.

use serde_json::Value;
use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, Output, Stdio};

const KOPA: &str = env!("CARGO_BIN_EXE_kopa");

fn kopa(args: &[&str]) -> Command {
    let mut c = Command::new(KOPA);
    c.args(args);
    // The tests choose their own configuration: none leaks in from the environment.
    for (k, _) in std::env::vars() {
        if k.starts_with("KOPA_") || k == "RUST_LOG" {
            c.env_remove(k);
        }
    }
    c
}

/// Run an admin command with `--json`; returns (success, the one JSON object on stdout).
fn json_cmd(data: &Path, args: &[&str]) -> (bool, Value) {
    let out: Output = kopa(args)
        .args(["--data", data.to_str().unwrap(), "--json"])
        .output()
        .unwrap();
    let stdout = String::from_utf8(out.stdout).unwrap();
    let lines: Vec<&str> = stdout.lines().collect();
    assert_eq!(
        lines.len(),
        1,
        "{args:?}: exactly one line expected, got {stdout:?}"
    );
    let v: Value = serde_json::from_str(lines[0]).unwrap();
    assert!(v.is_object(), "{args:?}: {v}");
    (out.status.success(), v)
}

fn ok(data: &Path, args: &[&str]) -> Value {
    let (success, v) = json_cmd(data, args);
    assert!(success, "{args:?} failed: {v}");
    v
}

fn fails(data: &Path, args: &[&str], needle: &str) {
    let (success, v) = json_cmd(data, args);
    assert!(!success, "{args:?} should fail: {v}");
    let msg = v["error"].as_str().unwrap_or_default();
    assert!(
        msg.contains(needle),
        "{args:?}: {msg:?} should mention {needle:?}"
    );
}

/// `chmod 700 dir`: `kopa serve` refuses a data directory that others may read.
fn make_private(dir: &Path) {
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o700)).unwrap();
}

/// A running `kopa serve` on an ephemeral port; SIGTERM on drop.
struct Server {
    child: Child,
    /// The administrator token printed at first start.
    token: String,
}

impl Server {
    fn start(data: &Path, envs: &[(&str, &str)]) -> Server {
        Server::start_with(data, &[], envs)
    }

    fn start_with(data: &Path, args: &[&str], envs: &[(&str, &str)]) -> Server {
        let mut child = kopa(&["serve", "--data", data.to_str().unwrap()])
            .args(["--listen", "127.0.0.1:0"])
            .args(args)
            .envs(envs.iter().copied())
            .env("KOPA_LOG", "warn")
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        // The token line is printed once the node is initialised.
        let mut line = String::new();
        BufReader::new(child.stdout.take().unwrap())
            .read_line(&mut line)
            .unwrap();
        let token = line
            .rsplit(' ')
            .next()
            .unwrap_or_default()
            .trim()
            .to_string();
        Server { child, token }
    }

    /// SIGTERM, then wait; returns whether the server exited successfully.
    fn stop(mut self) -> bool {
        let status = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status()
            .unwrap();
        assert!(status.success());
        let ok = self.child.wait().unwrap().success();
        std::mem::forget(self);
        ok
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[test]
fn admin_forms_with_json_while_the_server_runs() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("node");
    let server = Server::start(&data, &[("KOPA_NODE__NAME", "test-node")]);
    assert!(
        server.token.starts_with("kopa_"),
        "generated admin token printed: {:?}",
        server.token
    );

    let node = ok(&data, &["node", "show"]);
    assert_eq!(node["name"], "test-node");
    // The node id is derived from the node's public key (kopa-federation): node-- and 32 hex digits.
    assert!(node["id"].as_str().unwrap().starts_with("node--"));
    assert_eq!(node["id"].as_str().unwrap().len(), 38);

    let a = ok(&data, &["org", "add", "Bank A"]);
    assert_eq!(a["name"], "Bank A");
    assert!(a["id"].as_str().is_some_and(|s| !s.is_empty()));
    ok(&data, &["org", "add", "CSIRT B"]);
    fails(&data, &["org", "add", "Bank A"], "already exists");
    fails(&data, &["org", "add", "A, B and C"], "must not contain ','");
    fails(&data, &["org", "add", "All"], "must not contain ','");
    // Names that pass for another, or hide characters, are refused (kopa_core::names).
    fails(
        &data,
        &["org", "add", "Bank \u{0410}"],
        "too like the existing organisation \"Bank A\"",
    );
    fails(&data, &["org", "add", "bank a"], "too like");
    fails(
        &data,
        &["org", "add", "Bank\u{202E}C"],
        "bidirectional control U+202E",
    );
    fails(&data, &["org", "add", &"B".repeat(201)], "at most 200");

    let alice = ok(
        &data,
        &[
            "user", "add", "alice", "--org", "Bank A", "--role", "analyst",
        ],
    );
    assert_eq!(alice["name"], "alice");
    assert_eq!(alice["org"], "Bank A");
    assert_eq!(alice["role"], "analyst");
    assert!(alice["token"].as_str().unwrap().starts_with("kopa_"));
    let bob = ok(&data, &["user", "add", "bob", "--org", "CSIRT B"]);
    assert_eq!(bob["role"], "reader", "the default role is reader");
    let carol = ok(
        &data,
        &[
            "user",
            "add",
            "carol",
            "--org",
            "CSIRT B",
            "--role",
            "org-admin",
        ],
    );
    assert_eq!(carol["role"], "org-admin");
    fails(&data, &["user", "add", "dave", "--org", "Nobody"], "Nobody");
    fails(
        &data,
        &["user", "add", "alice", "--org", "Bank A"],
        "already exists",
    );
    fails(
        &data,
        &["user", "add", "eve", "--org", "Bank A", "--role", "boss"],
        "unknown role",
    );
    fails(
        &data,
        &["user", "add", "aIice", "--org", "Bank A"],
        "too like the existing user \"alice\"",
    );
    fails(
        &data,
        &["user", "add", "Jose\u{0301}", "--org", "Bank A"],
        "NFC",
    );

    // No one makes a token for another user, the operator included; an enrolment code instead.
    fails(
        &data,
        &["token", "add", "alice"],
        "a token is made only by its own user",
    );
    fails(&data, &["token", "add", "nobody"], "unknown user");
    let token = alice["token"].as_str().unwrap();
    let id = token.split('_').nth(1).unwrap();
    let e = ok(&data, &["user", "enrol", "alice"]);
    assert_eq!(e["user"], "alice");
    assert_eq!(e["tokens_revoked"], 1, "{e}");
    assert!(e["code"].as_str().unwrap().starts_with("kopa-enrol_"));
    assert!(e["expires_at"].is_string());
    fails(&data, &["user", "enrol", "nobody"], "unknown user");
    // Revoked already by the enrolment; revoking again still answers.
    let r = ok(&data, &["token", "revoke", id]);
    assert_eq!(r, serde_json::json!({"id": id, "revoked": true}));
    fails(
        &data,
        &["token", "revoke", "0000nosuchtoken"],
        "unknown token",
    );

    let c = ok(
        &data,
        &[
            "collection",
            "add",
            "Shared",
            "--alias",
            "shared",
            "--description",
            "A and B",
            "--read",
            "Bank A,CSIRT B",
            "--write",
            "Bank A",
        ],
    );
    assert_eq!(c["title"], "Shared");
    assert!(c["id"].as_str().is_some_and(|s| s.len() == 36));
    let open = ok(
        &data,
        &[
            "collection",
            "add",
            "Open",
            "--read",
            "all",
            "--write",
            "all",
        ],
    );
    assert_eq!(open["title"], "Open");
    fails(
        &data,
        &[
            "collection",
            "add",
            "X",
            "--read",
            "Nowhere",
            "--write",
            "all",
        ],
        "Nowhere",
    );
    // An alias never passes for a collection id: not a UUID, not another collection's id.
    let open_id = open["id"].as_str().unwrap();
    for (alias, needle) in [
        ("7d4bd5d1-0c0e-4d3b-9b0e-5f2f0c1e6a42", "is a UUID"),
        (open_id, "is a UUID"),
        ("shared", "already the id or the alias"),
    ] {
        fails(
            &data,
            &[
                "collection",
                "add",
                "Y",
                "--alias",
                alias,
                "--read",
                "all",
                "--write",
                "all",
            ],
            needle,
        );
    }

    let orgs = ok(&data, &["org", "list"]);
    let names: Vec<&str> = orgs["organisations"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|o| o["name"].as_str())
        .collect();
    assert!(
        names.contains(&"Bank A") && names.contains(&"CSIRT B"),
        "{names:?}"
    );
    let users = ok(&data, &["user", "list"]);
    let users: Vec<&str> = users["users"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|u| u["name"].as_str())
        .collect();
    for u in ["admin", "alice", "bob", "carol"] {
        assert!(users.contains(&u), "{u} in {users:?}");
    }
    let cols = ok(&data, &["collection", "list"]);
    let shared = cols["collections"]
        .as_array()
        .unwrap()
        .iter()
        .find(|x| x["id"] == c["id"])
        .cloned()
        .unwrap();
    assert_eq!(shared["read"], serde_json::json!(["Bank A", "CSIRT B"]));
    assert_eq!(shared["write"], serde_json::json!(["Bank A"]));

    // node.init + 2 orgs + 3 users + enrol + revoke + 2 collections.
    let v = ok(&data, &["audit", "verify"]);
    assert_eq!(v["ok"], true);
    assert_eq!(v["entries"], 10, "{v}");

    // Human output: one short line, no JSON.
    let out = kopa(&["org", "add", "Ministry C", "--data", data.to_str().unwrap()])
        .output()
        .unwrap();
    assert!(out.status.success());
    let text = String::from_utf8(out.stdout).unwrap();
    assert!(
        text.contains("Ministry C") && !text.trim_start().starts_with('{'),
        "{text}"
    );

    assert!(server.stop(), "serve exits cleanly on SIGTERM");
}

#[test]
fn too_short_admin_token_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("node");
    let mut child = kopa(&[
        "serve",
        "--data",
        data.to_str().unwrap(),
        "--listen",
        "127.0.0.1:0",
    ])
    .env("KOPA_ADMIN_TOKEN", "short")
    .stdout(Stdio::piped())
    .stderr(Stdio::piped())
    .spawn()
    .unwrap();
    let out = child.wait().unwrap();
    assert!(!out.success(), "a too short KOPA_ADMIN_TOKEN is refused");
    let mut err = String::new();
    std::io::Read::read_to_string(&mut child.stderr.take().unwrap(), &mut err).unwrap();
    assert!(err.contains("KOPA_ADMIN_TOKEN"), "{err}");
    assert!(
        !data.exists(),
        "nothing created before the token is checked"
    );
}

#[test]
fn port_in_use_stops_first_start_before_the_node_is_made() {
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = taken.local_addr().unwrap().to_string();
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("node");
    let out = kopa(&["serve", "--data", data.to_str().unwrap(), "--listen", &addr])
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(out.stdout.is_empty(), "no token printed");
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains(&format!("cannot listen on {addr}")), "{err}");
    assert!(!data.join("kopa.db").exists(), "no node made");
}

#[test]
fn admin_commands_never_create_a_database() {
    let dir = tempfile::tempdir().unwrap();
    let missing = dir.path().join("typo");
    fails(&missing, &["org", "add", "A"], "no Kopa database");
    assert!(
        !missing.exists(),
        "no directory created by an admin command"
    );
    // An empty existing directory holds no database either.
    fails(dir.path(), &["org", "list"], "no Kopa database");
    assert!(!dir.path().join("kopa.db").exists());
}

#[test]
fn serve_refuses_unusable_database_or_directory() {
    let dir = tempfile::tempdir().unwrap();
    // A data "directory" that is a file.
    let file = dir.path().join("file");
    std::fs::write(&file, "x").unwrap();
    let out = kopa(&[
        "serve",
        "--data",
        file.to_str().unwrap(),
        "--listen",
        "127.0.0.1:0",
    ])
    .output()
    .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("not a directory"), "{err}");

    // Not a PostgreSQL URL.
    let out = kopa(&["serve", "--database", "postgress://localhost/kopa"])
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("not a PostgreSQL URL"), "{err}");

    // A PostgreSQL database that does not exist: named in the error, never created.
    let base = std::env::var("KOPA_TEST_PG_URL").unwrap_or_default();
    let url = if base.is_empty() {
        // No server needed to check the refusal: a closed port fails to connect the same way.
        "postgres://postgres@127.0.0.1:1/kopa_no_such_db".to_string()
    } else {
        let (prefix, _) = base.rsplit_once('/').unwrap();
        format!("{prefix}/kopa_no_such_db")
    };
    let out = kopa(&["serve", "--database", &url, "--listen", "127.0.0.1:0"])
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("kopa_no_such_db"), "{err}");
}

#[test]
fn config_default_is_valid_toml_with_every_key() {
    let out = kopa(&["config", "default"]).output().unwrap();
    assert!(out.status.success());
    let text = String::from_utf8(out.stdout).unwrap();
    let t: toml::Table = toml::from_str(&text).unwrap();
    assert_eq!(t["listen"].as_str(), Some("127.0.0.1:7470"));
    assert_eq!(t["data"].as_str(), Some("./kopa-data"));
    assert_eq!(t["taxii"]["page_size"].as_integer(), Some(1000));
    assert_eq!(t["tlp"]["default"].as_str(), Some("TLP:AMBER"));
    for key in ["node", "database", "log", "status_retention_hours"] {
        assert!(t.contains_key(key), "{key}");
    }
    // Written into a data directory as kopa.toml, it is read back without warnings.
    let dir = tempfile::tempdir().unwrap();
    make_private(dir.path());
    std::fs::write(dir.path().join("kopa.toml"), &text).unwrap();
    let server = Server::start(dir.path(), &[]);
    let node = ok(dir.path(), &["node", "show"]);
    assert!(node["name"].as_str().is_some_and(|n| !n.is_empty()));
    assert!(server.stop());
}

#[test]
fn configuration_layers_file_then_environment() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("node");
    let conf = dir.path().join("kopa.toml");
    std::fs::write(&conf, "[node]\nname = \"from-file\"\n").unwrap();
    let conf_s = conf.to_str().unwrap();

    // File over defaults.
    let server = Server::start_with(&data, &["--config", conf_s], &[]);
    assert_eq!(ok(&data, &["node", "show"])["name"], "from-file");
    assert!(server.stop());

    // Environment over file.
    std::fs::remove_dir_all(&data).unwrap();
    let server = Server::start_with(
        &data,
        &["--config", conf_s],
        &[("KOPA_NODE__NAME", "from-env")],
    );
    assert_eq!(ok(&data, &["node", "show"])["name"], "from-env");
    assert!(server.stop());

    // A flag over environment: --data wins over KOPA_DATA.
    let out = kopa(&["node", "show", "--json", "--data", data.to_str().unwrap()])
        .env("KOPA_DATA", dir.path().join("elsewhere"))
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    // And KOPA_DATA alone is used when no flag is given.
    let out = kopa(&["node", "show", "--json"])
        .env("KOPA_DATA", &data)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );

    // An unknown key in the file is named in a warning.
    std::fs::write(&conf, "[node]\nnmae = \"x\"\n").unwrap();
    let out = kopa(&[
        "node",
        "show",
        "--config",
        conf_s,
        "--data",
        data.to_str().unwrap(),
    ])
    .output()
    .unwrap();
    assert!(out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("node.nmae") && err.contains("node.name"),
        "{err}"
    );
}

#[test]
fn audit_verify_names_the_tampered_entry() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("node");
    let server = Server::start(&data, &[]);
    for name in ["A", "B", "C", "D"] {
        ok(&data, &["org", "add", name]);
    }
    assert!(server.stop());
    assert_eq!(ok(&data, &["audit", "verify"])["entries"], 5);

    // Change entry 3 behind Kopa's back.
    let db = open_for_tampering(&data);
    let n = db
        .execute("UPDATE audit SET target = 'Z' WHERE seq = 3", [])
        .unwrap();
    assert_eq!(n, 1);
    drop(db);

    let (success, v) = json_cmd(&data, &["audit", "verify"]);
    assert!(!success, "a broken log exits non-zero");
    assert_eq!(v["ok"], false);
    assert_eq!(v["broken_at"], 3, "{v}");
    assert_eq!(v["entries"], 2, "{v}");
    let out = kopa(&["audit", "verify", "--data", data.to_str().unwrap()])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stdout).contains("entry 3"));
}

/// A copy of data directory `from` at `to` (every file), to tamper with.
fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for e in std::fs::read_dir(from).unwrap() {
        let e = e.unwrap();
        if e.file_type().unwrap().is_file() {
            std::fs::copy(e.path(), to.join(e.file_name())).unwrap();
        }
    }
}

/// The audit log's triggers dropped, for tampering as an attacker with the database file would.
fn open_for_tampering(data: &Path) -> rusqlite::Connection {
    kopa_store::testing::open_sqlite_for_tampering(data)
}

/// Signed checkpoints anchor the chain: a log cut short, or rewritten whole with every hash
/// recomputed, is found by `kopa audit verify`, which names the last good checkpoint; so is a
/// checkpoint signed with another key.
#[test]
fn signed_checkpoints_reveal_truncation_and_rewriting() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("node");
    let server = Server::start(&data, &[]);
    for name in ["A", "B", "C", "D"] {
        ok(&data, &["org", "add", name]);
    }
    assert!(server.stop());
    let v = ok(&data, &["audit", "verify"]);
    assert_eq!(v["entries"], 5, "{v}");
    // At start (covering node.init) and at the clean stop (covering all five).
    assert_eq!(v["checkpoints"], 2, "{v}");
    assert_eq!(v["last_good_checkpoint"]["seq"], 5, "{v}");

    // Cut short: the last two entries removed. The hash chain alone cannot tell.
    let cut = dir.path().join("cut");
    copy_dir(&data, &cut);
    let db = open_for_tampering(&cut);
    db.execute("DELETE FROM audit WHERE seq > 3", []).unwrap();
    drop(db);
    let (success, v) = json_cmd(&cut, &["audit", "verify"]);
    assert!(!success);
    assert!(v["reason"].as_str().unwrap().contains("cut short"), "{v}");
    assert_eq!(v["broken_at"], 4, "{v}");
    assert_eq!(v["last_good_checkpoint"]["seq"], 1, "{v}");

    // Rewritten: entry 3 changed and every hash from it on recomputed, so the chain holds.
    let rewritten = dir.path().join("rewritten");
    copy_dir(&data, &rewritten);
    let db = open_for_tampering(&rewritten);
    db.execute("UPDATE audit SET target = 'Z' WHERE seq = 3", [])
        .unwrap();
    let rows: Vec<(i64, String, String, String, String, String, String)> = db
        .prepare("SELECT seq, at, actor, action, target, origin, detail FROM audit ORDER BY seq")
        .unwrap()
        .query_map([], |r| {
            Ok((
                r.get(0)?,
                r.get(1)?,
                r.get(2)?,
                r.get(3)?,
                r.get(4)?,
                r.get(5)?,
                r.get(6)?,
            ))
        })
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap();
    let mut prev = kopa_core::audit::GENESIS.to_string();
    for (seq, at, actor, action, target, origin, detail) in rows {
        let e = kopa_core::audit::NewAuditEntry {
            actor,
            action,
            target,
            origin,
            detail,
        };
        let hash = kopa_core::audit::entry_hash(&prev, seq, &at, &e);
        db.execute(
            "UPDATE audit SET prev_hash = ?1, hash = ?2 WHERE seq = ?3",
            rusqlite::params![prev, hash, seq],
        )
        .unwrap();
        prev = hash;
    }
    drop(db);
    let (success, v) = json_cmd(&rewritten, &["audit", "verify"]);
    assert!(!success);
    assert!(v["reason"].as_str().unwrap().contains("rewritten"), "{v}");
    assert_eq!(v["broken_at"], 5, "the checkpointed entry differs: {v}");
    assert_eq!(v["last_good_checkpoint"]["seq"], 1, "{v}");

    // A checkpoint signed with another key (one an attacker could make) is refused.
    let forged = dir.path().join("forged");
    copy_dir(&data, &forged);
    let stranger = kopa_federation::NodeKey::from_seed([5; 32]);
    let c = kopa_federation::Checkpoint::sign(&stranger, 5, "00", "2026-12-07T00:00:00.000Z");
    let path = forged.join(kopa_federation::CHECKPOINT_FILE_NAME);
    let mut text = std::fs::read_to_string(&path).unwrap();
    text.push_str(&serde_json::to_string(&c).unwrap());
    text.push('\n');
    std::fs::write(&path, text).unwrap();
    let (success, v) = json_cmd(&forged, &["audit", "verify"]);
    assert!(!success);
    assert!(
        v["reason"]
            .as_str()
            .unwrap()
            .contains("not signed with this node's key"),
        "{v}"
    );
}

/// A peer keeps this node's latest checkpoint as a witness: a log cut short together with the
/// node's own checkpoint file passes `kopa audit verify` alone, and is caught with the witness the
/// peer shows (its `GET /api/peers` entry, given with `--checkpoint`).
#[test]
fn a_witness_kept_by_a_peer_reveals_a_cut_that_took_the_checkpoints_too() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("node");
    let server = Server::start(&data, &[]);
    for name in ["A", "B", "C"] {
        ok(&data, &["org", "add", name]);
    }
    assert!(server.stop());
    // What the peer obtained in sync: a checkpoint of the last entry, signed with the node key.
    let key = kopa_federation::NodeKey::load(&data).unwrap().unwrap();
    let db = rusqlite::Connection::open(data.join("kopa.db")).unwrap();
    let (seq, hash): (i64, String) = db
        .query_row(
            "SELECT seq, hash FROM audit ORDER BY seq DESC LIMIT 1",
            [],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )
        .unwrap();
    drop(db);
    let witness = kopa_federation::Checkpoint::sign(&key, seq, &hash, "2026-12-08T00:00:00.000Z");
    let file = dir.path().join("witness.json");
    let peer_entry = serde_json::json!({"name": "home", "audit_checkpoint": witness});
    std::fs::write(&file, peer_entry.to_string()).unwrap();
    let v = ok(
        &data,
        &["audit", "verify", "--checkpoint", file.to_str().unwrap()],
    );
    assert_eq!(v["last_good_checkpoint"]["seq"], seq, "{v}");

    // The attacker cuts the log and removes the node's own checkpoints.
    let db = open_for_tampering(&data);
    db.execute("DELETE FROM audit WHERE seq > 2", []).unwrap();
    drop(db);
    std::fs::remove_file(data.join(kopa_federation::CHECKPOINT_FILE_NAME)).unwrap();
    let v = ok(&data, &["audit", "verify"]);
    assert_eq!(v["entries"], 2, "alone, the shorter chain looks whole: {v}");
    let (success, v) = json_cmd(
        &data,
        &["audit", "verify", "--checkpoint", file.to_str().unwrap()],
    );
    assert!(!success);
    assert!(v["reason"].as_str().unwrap().contains("cut short"), "{v}");
    assert_eq!(v["broken_at"], 3, "{v}");

    // A file that holds no checkpoint is refused with its name.
    let junk = dir.path().join("junk.json");
    std::fs::write(&junk, "{\"peers\": []}").unwrap();
    fails(
        &data,
        &["audit", "verify", "--checkpoint", junk.to_str().unwrap()],
        "junk.json: not a checkpoint",
    );
}

/// A self-signed certificate for 127.0.0.1 written into `dir`: (certificate PEM, its path, the
/// key's path).
fn write_certificate(dir: &Path) -> (String, std::path::PathBuf, std::path::PathBuf) {
    let made = rcgen::generate_simple_self_signed(vec!["127.0.0.1".to_string()]).unwrap();
    let (cert, key) = (dir.join("cert.pem"), dir.join("key.pem"));
    std::fs::write(&cert, made.cert.pem()).unwrap();
    std::fs::write(&key, made.key_pair.serialize_pem()).unwrap();
    (made.cert.pem(), cert, key)
}

#[test]
fn plain_http_is_refused_beyond_loopback_unless_allowed() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("node");
    let out = kopa(&["serve", "--data", data.to_str().unwrap()])
        .args(["--listen", "0.0.0.0:0"])
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("0.0.0.0:0")
            && err.contains("tls.certificate")
            && err.contains("http.allow_plain"),
        "{err}"
    );
    assert!(!data.exists(), "a refused start creates nothing");

    // Allowed explicitly (behind a proxy that terminates TLS): it starts.
    let mut child = kopa(&["serve", "--data", data.to_str().unwrap()])
        .args(["--listen", "0.0.0.0:0"])
        .env("KOPA_HTTP__ALLOW_PLAIN", "true")
        .env("KOPA_LOG", "warn")
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut line = String::new();
    BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    let _ = child.kill();
    let _ = child.wait();
    assert!(line.contains("administrator token"), "{line:?}");
}

#[test]
fn bad_tls_files_are_refused_naming_the_file() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("node");
    let (_, cert, key) = write_certificate(dir.path());
    let missing = dir.path().join("missing-cert.pem");
    let refused = |cert: &Path, key: &Path| {
        let out = kopa(&["serve", "--data", data.to_str().unwrap()])
            .args(["--listen", "127.0.0.1:0"])
            .env("KOPA_TLS__CERTIFICATE", cert)
            .env("KOPA_TLS__KEY", key)
            .output()
            .unwrap();
        assert!(!out.status.success());
        assert!(!data.exists(), "a refused start creates nothing");
        String::from_utf8_lossy(&out.stderr).into_owned()
    };
    let err = refused(&missing, &key);
    assert!(
        err.contains("missing-cert.pem") && err.contains("does not exist"),
        "{err}"
    );
    let err = refused(&key, &key);
    assert!(
        err.contains("key.pem") && err.contains("no certificate"),
        "{err}"
    );
    let err = refused(&cert, &cert);
    assert!(
        err.contains("cert.pem") && err.contains("no private key"),
        "{err}"
    );
    let other = tempfile::tempdir().unwrap();
    let (_, _, other_key) = write_certificate(other.path());
    let err = refused(&cert, &other_key);
    assert!(err.contains("does not match"), "{err}");
    // Only one of the two keys set.
    let out = kopa(&["serve", "--data", data.to_str().unwrap()])
        .env("KOPA_TLS__CERTIFICATE", &cert)
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("tls.key"), "{err}");
}

#[test]
fn https_is_served_and_sighup_reloads_the_certificate() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("node");
    let (first, cert, key) = write_certificate(dir.path());
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let listen = format!("127.0.0.1:{port}");
    let mut child = kopa(&["serve", "--data", data.to_str().unwrap()])
        .args(["--listen", &listen])
        .env("KOPA_TLS__CERTIFICATE", &cert)
        .env("KOPA_TLS__KEY", &key)
        .env("KOPA_LOG", "warn")
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut line = String::new();
    BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    let server = Server {
        child,
        token: String::new(),
    };
    let url = format!("https://{listen}/healthz");
    // A fresh client for each request (a new connection), trusting only `pem`.
    let fetch = |pem: &str| {
        let client = reqwest::Client::builder()
            .tls_built_in_root_certs(false)
            .add_root_certificate(reqwest::Certificate::from_pem(pem.as_bytes()).unwrap())
            .timeout(std::time::Duration::from_secs(30))
            .build()
            .unwrap();
        let url = url.clone();
        async move { client.get(url).send().await.map(|r| r.status().as_u16()) }
    };
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        assert_eq!(fetch(&first).await.unwrap(), 200);
        let plain = reqwest::get(format!("http://{listen}/healthz")).await;
        assert!(plain.is_err(), "plain HTTP answered: {plain:?}");

        // New files, then SIGHUP: new connections get the second certificate.
        let (second, _, _) = write_certificate(dir.path());
        let status = Command::new("kill")
            .args(["-HUP", &server.child.id().to_string()])
            .status()
            .unwrap();
        assert!(status.success());
        // The reload happens after the signal is handled: wait for it (the guard turns a hang
        // into a failure).
        let guard = std::time::Instant::now();
        while fetch(&second).await.is_err() {
            assert!(
                guard.elapsed() < std::time::Duration::from_secs(30),
                "the second certificate is never served"
            );
            tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        }
        assert!(fetch(&first).await.is_err());
    });
    assert!(
        server.stop(),
        "the node still runs after SIGHUP and stops cleanly"
    );
}
