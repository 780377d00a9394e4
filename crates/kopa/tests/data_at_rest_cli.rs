//! The node's data at rest, through the real binary: the data directory is made private (0700) and
//! the database files owner-only (0600) at first start, and older ones are tightened; a data
//! directory others may read is refused with the fix named; one `kopa serve` per data directory
//! (a second is refused while the first runs; the admin commands keep working beside it); and an
//! administrator token chosen by the operator is stored as argon2id (an older SHA-256 record is
//! upgraded the first time the token is used) and still accepted.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

const KOPA: &str = env!("CARGO_BIN_EXE_kopa");

/// Turns a hang into a failure; never reached by a working node.
const GUARD: Duration = Duration::from_secs(60);

const ADMIN_TOKEN: &str = "correct horse battery staple 42";

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

fn mode(path: &Path) -> u32 {
    std::fs::metadata(path)
        .unwrap_or_else(|e| panic!("{}: {e}", path.display()))
        .permissions()
        .mode()
        & 0o777
}

fn chmod(path: &Path, mode: u32) {
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode)).unwrap();
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// One HTTP/1.1 request; returns (status, body).
fn http(addr: SocketAddr, path: &str, authorization: Option<&str>) -> (u16, String) {
    let mut s = TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(GUARD)).unwrap();
    let auth = authorization
        .map(|a| format!("Authorization: {a}\r\n"))
        .unwrap_or_default();
    write!(
        s,
        "GET {path} HTTP/1.1\r\nHost: x\r\nAccept: application/json\r\n{auth}Connection: close\r\n\r\n"
    )
    .unwrap();
    let mut out = String::new();
    s.read_to_string(&mut out).unwrap();
    let status = out
        .split(' ')
        .nth(1)
        .and_then(|c| c.parse().ok())
        .unwrap_or(0);
    let body = out
        .split_once("\r\n\r\n")
        .map_or("", |(_, b)| b)
        .to_string();
    (status, body)
}

fn basic(user: &str, password: &str) -> String {
    use base64::Engine;
    let creds = base64::engine::general_purpose::STANDARD.encode(format!("{user}:{password}"));
    format!("Basic {creds}")
}

/// Wait (under the guard) for a child to exit; kill it and fail if it does not.
fn wait_exit(mut child: Child, what: &str) -> Output {
    let deadline = Instant::now() + GUARD;
    while child.try_wait().unwrap().is_none() {
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            panic!("{what}: still running");
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    child.wait_with_output().unwrap()
}

/// `kopa serve` that is expected to refuse to start: its output.
fn serve_refused(data: &Path, envs: &[(&str, &str)]) -> Output {
    let child = kopa(&["serve", "--data", data.to_str().unwrap()])
        .args(["--listen", &format!("127.0.0.1:{}", free_port())])
        .envs(envs.iter().copied())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let out = wait_exit(child, "kopa serve should have refused to start");
    assert!(!out.status.success(), "kopa serve should fail");
    out
}

/// A running `kopa serve` on a free port, ready (its /healthz answered).
struct Node {
    child: Option<Child>,
    addr: SocketAddr,
    /// The administrator token printed at first start, when one was generated.
    printed_token: Option<String>,
}

impl Node {
    fn start(data: &Path, envs: &[(&str, &str)]) -> Node {
        // A token line is printed at first start only, and only without KOPA_ADMIN_TOKEN.
        let prints_token =
            !data.join("kopa.db").exists() && envs.iter().all(|(k, _)| *k != "KOPA_ADMIN_TOKEN");
        let addr: SocketAddr = format!("127.0.0.1:{}", free_port()).parse().unwrap();
        let mut child = kopa(&["serve", "--data", data.to_str().unwrap()])
            .args(["--listen", &addr.to_string()])
            .envs(envs.iter().copied())
            .env("KOPA_LOG", "warn")
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let stdout = child.stdout.take().unwrap();
        let deadline = Instant::now() + GUARD;
        loop {
            if let Some(status) = child.try_wait().unwrap() {
                panic!("kopa serve exited with {status}");
            }
            if TcpStream::connect(addr).is_ok() && http(addr, "/healthz", None).0 == 200 {
                break;
            }
            assert!(Instant::now() < deadline, "kopa serve did not become ready");
            std::thread::sleep(Duration::from_millis(50));
        }
        // The token line was written before the server answered.
        let printed_token = prints_token
            .then(|| {
                let mut line = String::new();
                BufReader::new(stdout).read_line(&mut line).unwrap();
                line.rsplit(' ')
                    .next()
                    .unwrap_or_default()
                    .trim()
                    .to_string()
            })
            .filter(|t| t.starts_with("kopa_"));
        Node {
            child: Some(child),
            addr,
            printed_token,
        }
    }

    /// SIGTERM, then wait; the node must exit cleanly.
    fn stop(mut self) {
        let child = self.child.take().unwrap();
        let status = Command::new("kill")
            .args(["-TERM", &child.id().to_string()])
            .status()
            .unwrap();
        assert!(status.success());
        let out = wait_exit(child, "kopa serve after SIGTERM");
        assert!(out.status.success(), "kopa serve exits cleanly");
    }
}

impl Drop for Node {
    fn drop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

/// Run an admin command with `--json`; returns (success, stdout JSON, stderr).
fn admin(data: &Path, args: &[&str]) -> (bool, serde_json::Value, String) {
    let out = kopa(args)
        .args(["--data", data.to_str().unwrap(), "--json"])
        .output()
        .unwrap();
    let v = serde_json::from_slice(&out.stdout).unwrap_or(serde_json::Value::Null);
    (
        out.status.success(),
        v,
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// (id, secret_hash) of the administrator's tokens.
fn admin_tokens(data: &Path) -> Vec<(String, String)> {
    let db = rusqlite::Connection::open(data.join("kopa.db")).unwrap();
    let mut stmt = db
        .prepare(
            "SELECT t.id, t.secret_hash FROM tokens t JOIN users u ON u.id = t.user_id WHERE \
             u.name = 'admin' ORDER BY t.id",
        )
        .unwrap();
    stmt.query_map([], |r| Ok((r.get(0)?, r.get(1)?)))
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap()
}

#[test]
fn first_start_makes_the_data_directory_and_database_files_private() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("node");
    let node = Node::start(&data, &[]);
    assert_eq!(mode(&data), 0o700, "data directory");
    for file in [
        "kopa.db",
        "kopa.db-wal",
        "kopa.db-shm",
        "node.key",
        "kopa.lock",
    ] {
        assert_eq!(mode(&data.join(file)), 0o600, "{file}");
    }
    node.stop();

    // Database files left readable by an older Kopa are made private at the next start.
    chmod(&data.join("kopa.db"), 0o644);
    let node = Node::start(&data, &[]);
    assert_eq!(mode(&data.join("kopa.db")), 0o600);
    assert_eq!(mode(&data.join("kopa.db-wal")), 0o600);
    node.stop();
}

#[test]
fn serve_refuses_a_data_directory_others_can_read() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("open");
    std::fs::create_dir(&data).unwrap();
    chmod(&data, 0o755);
    let out = serve_refused(&data, &[]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains(&format!("chmod 700 {}", data.display())),
        "the message says how to fix it: {err}"
    );
    assert!(err.contains("mode 755"), "{err}");
    assert!(out.stdout.is_empty(), "no token printed");
    assert!(!data.join("kopa.db").exists(), "nothing created");
    assert!(!data.join("node.key").exists(), "nothing created");

    // An existing node whose directory was opened up: the admin commands warn, serve refuses,
    // and chmod 700 fixes it.
    let data = dir.path().join("node");
    Node::start(&data, &[]).stop();
    chmod(&data, 0o750);
    let (ok, v, err) = admin(&data, &["node", "show"]);
    assert!(ok, "{v}");
    assert!(
        err.contains("warning") && err.contains("chmod 700"),
        "{err}"
    );
    let out = serve_refused(&data, &[]);
    assert!(String::from_utf8_lossy(&out.stderr).contains("chmod 700"));
    chmod(&data, 0o700);
    Node::start(&data, &[]).stop();
}

#[test]
fn a_second_server_on_the_same_data_directory_is_refused_while_admin_commands_work() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("node");
    let first = Node::start(&data, &[]);

    let out = serve_refused(&data, &[]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("another `kopa serve`") && err.contains(&data.display().to_string()),
        "the refusal names the data directory: {err}"
    );
    assert!(
        out.stdout.is_empty(),
        "{:?}",
        String::from_utf8_lossy(&out.stdout)
    );
    assert_eq!(
        http(first.addr, "/healthz", None).0,
        200,
        "the first runs on"
    );

    // The admin commands open the same database beside the running server.
    let (ok, v, _) = admin(&data, &["org", "add", "Bank A"]);
    assert!(ok, "{v}");
    let (ok, v, _) = admin(&data, &["user", "add", "alice", "--org", "Bank A"]);
    assert!(ok, "{v}");
    let token = v["token"].as_str().unwrap();
    let (status, body) = http(first.addr, "/api/me", Some(&format!("Bearer {token}")));
    assert_eq!(status, 200, "{body}");

    // Once the first has stopped, the lock is free again.
    first.stop();
    Node::start(&data, &[]).stop();
}

#[test]
fn an_operator_chosen_admin_token_is_stored_as_argon2id_and_accepted() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("node");
    let env = [("KOPA_ADMIN_TOKEN", ADMIN_TOKEN)];
    let node = Node::start(&data, &env);
    assert_eq!(node.printed_token, None);
    let bearer = format!("Bearer {ADMIN_TOKEN}");
    let (status, body) = http(node.addr, "/api/me", Some(&bearer));
    assert_eq!(status, 200, "{body}");
    assert!(body.contains("\"admin\""), "{body}");
    let (status, _) = http(node.addr, "/api/me", Some(&basic("admin", ADMIN_TOKEN)));
    assert_eq!(status, 200);
    let (status, _) = http(
        node.addr,
        "/api/me",
        Some("Bearer correct horse battery staple 43"),
    );
    assert_eq!(status, 401);

    let tokens = admin_tokens(&data);
    assert_eq!(tokens.len(), 1, "{tokens:?}");
    let (id, hash) = &tokens[0];
    assert!(hash.starts_with("$argon2id$v=19$"), "{hash}");
    // Nothing quickly derived from the token is stored: not its SHA-256, not an id made from it.
    let (derived_id, _) = kopa_server::token::token_parts(ADMIN_TOKEN);
    let sha = kopa_server::token::hash_secret(ADMIN_TOKEN);
    assert!(id.starts_with('p') && id != &derived_id, "{id}");
    assert!(!hash.contains(&sha[..16]) && !hash.contains(ADMIN_TOKEN));
    node.stop();

    // Later starts with the same KOPA_ADMIN_TOKEN add nothing, and the token still works.
    let node = Node::start(&data, &env);
    assert_eq!(admin_tokens(&data), tokens);
    assert_eq!(http(node.addr, "/api/me", Some(&bearer)).0, 200);
    node.stop();
}

#[test]
fn an_admin_token_an_older_kopa_stored_as_sha256_is_upgraded_when_used() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("node");
    Node::start(&data, &[("KOPA_ADMIN_TOKEN", ADMIN_TOKEN)]).stop();
    // The record as Kopa stored it before: an id and a hash both from the token's SHA-256.
    let (legacy_id, _) = kopa_server::token::token_parts(ADMIN_TOKEN);
    let legacy_hash = kopa_server::token::hash_secret(ADMIN_TOKEN);
    let (id, _) = admin_tokens(&data).remove(0);
    let db = rusqlite::Connection::open(data.join("kopa.db")).unwrap();
    db.execute(
        "UPDATE tokens SET id = ?1, secret_hash = ?2 WHERE id = ?3",
        [&legacy_id, &legacy_hash, &id],
    )
    .unwrap();
    drop(db);

    let node = Node::start(&data, &[]);
    let bearer = format!("Bearer {ADMIN_TOKEN}");
    let (status, body) = http(node.addr, "/api/me", Some(&bearer));
    assert_eq!(status, 200, "{body}");
    let tokens = admin_tokens(&data);
    assert_eq!(tokens.len(), 1, "{tokens:?}");
    let (id, hash) = &tokens[0];
    assert!(id.starts_with('p'), "stored under a new random id: {id}");
    assert!(hash.starts_with("$argon2id$"), "{hash}");
    // And the upgraded record is accepted.
    assert_eq!(http(node.addr, "/api/me", Some(&bearer)).0, 200);
    assert_eq!(
        http(node.addr, "/api/me", Some(&basic("admin", ADMIN_TOKEN))).0,
        200
    );
    node.stop();
}
