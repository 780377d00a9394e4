//! The node's data at rest, through the real binary: an administrator token chosen by the operator
//! is stored as argon2id (an older SHA-256 record is upgraded the first time the token is used) and
//! still accepted.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream};
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
