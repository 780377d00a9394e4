//! HTTPS served by the node itself, on a real port: with a certificate and key the listener speaks
//! TLS only (a plain-HTTP request is not answered); the client address still reaches the handlers
//! (failed authentication is throttled per address); a silent client that never starts its
//! handshake is closed after the header read timeout, so it cannot hold a slot; a reload makes new
//! connections use the new certificate, and a reload that fails keeps the old one.
//!
//! Certificates are made for 127.0.0.1 in the test; a client trusts exactly one of them as its
//! root, so which certificate the server presented is seen by which client succeeds. No assertion
//! depends on timing: each waits for an event under a generous guard.

mod common;

use std::net::{IpAddr, SocketAddr};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use common::{Node, TAXII};
use kopa_server::{ServerConfig, TlsError, TlsFiles};
use tokio::sync::oneshot;

/// Turns a hang into a failure; never reached by a working server.
const GUARD: Duration = Duration::from_secs(30);

/// A self-signed certificate for 127.0.0.1: (certificate PEM, key PEM).
fn certificate() -> (String, String) {
    let made = rcgen::generate_simple_self_signed(vec!["127.0.0.1".to_string()]).unwrap();
    (made.cert.pem(), made.key_pair.serialize_pem())
}

/// Write a certificate and key into `dir`, returning their paths.
fn write_pair(dir: &Path, pair: &(String, String)) -> (PathBuf, PathBuf) {
    let (cert, key) = (dir.join("cert.pem"), dir.join("key.pem"));
    std::fs::write(&cert, &pair.0).unwrap();
    std::fs::write(&key, &pair.1).unwrap();
    (cert, key)
}

struct Server {
    addr: SocketAddr,
    _stop: oneshot::Sender<()>,
}

async fn start(node: &Node, tls: Arc<TlsFiles>) -> Server {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let (tx, rx) = oneshot::channel::<()>();
    tokio::spawn(kopa_server::serve_app_tls(
        listener,
        node.state.clone(),
        Some(tls),
        async move {
            let _ = rx.await;
        },
    ));
    Server { addr, _stop: tx }
}

/// A client that trusts only `cert_pem`, connecting from `from`.
fn client(cert_pem: &str, from: &str) -> reqwest::Client {
    reqwest::Client::builder()
        .tls_built_in_root_certs(false)
        .add_root_certificate(reqwest::Certificate::from_pem(cert_pem.as_bytes()).unwrap())
        .local_address(from.parse::<IpAddr>().unwrap())
        .timeout(GUARD)
        .build()
        .unwrap()
}

async fn status(
    client: &reqwest::Client,
    url: String,
    token: Option<&str>,
) -> reqwest::Result<u16> {
    let mut req = client.get(url).header("Accept", TAXII);
    if let Some(t) = token {
        req = req.bearer_auth(t);
    }
    Ok(req.send().await?.status().as_u16())
}

#[tokio::test]
async fn https_is_served_and_plain_http_is_not() {
    let node = Node::sqlite_with(ServerConfig {
        auth_failures: 2,
        auth_failure_window: Duration::from_secs(3600),
        ..common::config()
    })
    .await;
    let dir = tempfile::tempdir().unwrap();
    let pair = certificate();
    let (cert, key) = write_pair(dir.path(), &pair);
    let server = start(&node, TlsFiles::load(&cert, &key).unwrap()).await;
    let https = |path: &str| format!("https://{}{path}", server.addr);

    let honest = client(&pair.0, "127.0.0.1");
    assert_eq!(status(&honest, https("/healthz"), None).await.unwrap(), 200);

    // Plain HTTP to the TLS port gets no answer.
    let plain = reqwest::Client::builder().timeout(GUARD).build().unwrap();
    let refused = status(&plain, format!("http://{}/healthz", server.addr), None).await;
    assert!(refused.is_err(), "plain HTTP answered: {refused:?}");

    // The client address still reaches authentication: failures from 127.0.0.2 are throttled
    // there, and 127.0.0.1 is not affected.
    let guesser = client(&pair.0, "127.0.0.2");
    for _ in 0..2 {
        let s = status(&guesser, https("/taxii2/"), Some("a guess")).await;
        assert_eq!(s.unwrap(), 401);
    }
    let s = status(&guesser, https("/taxii2/"), Some("a guess")).await;
    assert_eq!(s.unwrap(), 429);
    let s = status(&honest, https("/taxii2/"), Some("an honest mistake")).await;
    assert_eq!(s.unwrap(), 401);
}

#[tokio::test]
async fn a_silent_handshake_does_not_hold_the_only_slot() {
    let node = Node::sqlite_with(ServerConfig {
        max_connections: 1,
        header_read_timeout: Duration::from_millis(500),
        ..common::config()
    })
    .await;
    let dir = tempfile::tempdir().unwrap();
    let pair = certificate();
    let (cert, key) = write_pair(dir.path(), &pair);
    let server = start(&node, TlsFiles::load(&cert, &key).unwrap()).await;
    // Connects and never says a word: it takes the one slot until the handshake times out.
    let silent = tokio::net::TcpStream::connect(server.addr).await.unwrap();
    let answer = status(
        &client(&pair.0, "127.0.0.1"),
        format!("https://{}/healthz", server.addr),
        None,
    )
    .await;
    assert_eq!(answer.unwrap(), 200);
    drop(silent);
}

#[tokio::test]
async fn reload_serves_the_new_certificate_and_a_failed_reload_keeps_the_old() {
    let node = Node::sqlite().await;
    let dir = tempfile::tempdir().unwrap();
    let first = certificate();
    let (cert, key) = write_pair(dir.path(), &first);
    let tls = TlsFiles::load(&cert, &key).unwrap();
    let server = start(&node, tls.clone()).await;
    let url = format!("https://{}/healthz", server.addr);

    // A fresh client for each check, so each makes a new connection.
    let trusts_first = || client(&first.0, "127.0.0.1");
    assert_eq!(
        status(&trusts_first(), url.clone(), None).await.unwrap(),
        200
    );

    // A reload that fails (a key that does not match) keeps the first certificate.
    let second = certificate();
    std::fs::write(&cert, &second.0).unwrap();
    let err = tls.reload().unwrap_err();
    assert!(matches!(err, TlsError::KeyMismatch { .. }), "{err}");
    assert!(err.to_string().contains("key.pem"), "{err}");
    assert_eq!(
        status(&trusts_first(), url.clone(), None).await.unwrap(),
        200
    );

    // With both files replaced, the reload succeeds and new connections get the second one.
    write_pair(dir.path(), &second);
    tls.reload().unwrap();
    let trusts_second = client(&second.0, "127.0.0.1");
    assert_eq!(
        status(&trusts_second, url.clone(), None).await.unwrap(),
        200
    );
    assert!(status(&trusts_first(), url.clone(), None).await.is_err());

    // A missing file: the error names it, and the second certificate stays.
    std::fs::remove_file(&key).unwrap();
    let err = tls.reload().unwrap_err();
    assert!(matches!(err, TlsError::Missing(_)), "{err}");
    assert!(err.to_string().contains("key.pem"), "{err}");
    let trusts_second = client(&second.0, "127.0.0.1");
    assert_eq!(status(&trusts_second, url, None).await.unwrap(), 200);
}

#[test]
fn bad_files_are_named() {
    let dir = tempfile::tempdir().unwrap();
    let pair = certificate();
    let (cert, key) = write_pair(dir.path(), &pair);
    let missing = dir.path().join("nowhere.pem");
    let err = TlsFiles::load(&missing, &key).unwrap_err().to_string();
    assert!(
        err.contains("nowhere.pem") && err.contains("does not exist"),
        "{err}"
    );
    // The key given as the certificate: no certificate in it.
    let err = TlsFiles::load(&key, &key).unwrap_err().to_string();
    assert!(
        err.contains("key.pem") && err.contains("no certificate"),
        "{err}"
    );
    // The certificate given as the key: no private key in it.
    let err = TlsFiles::load(&cert, &cert).unwrap_err().to_string();
    assert!(
        err.contains("cert.pem") && err.contains("no private key"),
        "{err}"
    );
}
