//! The server under load and abuse, on a real port: connections beyond the cap wait in the listen
//! queue until a slot frees; idle and trickling ("slowloris") connections are closed after the
//! request-header timeout, so that a real request is still answered; shutdown stops accepting,
//! lets a request in flight finish, and returns within its deadline even with a half-open
//! connection left.
//!
//! No assertion depends on how fast the machine is: each waits for an event (a response, a closed
//! connection, `serve` returning) under a generous guard that only turns a hang into a failure.
//! The one negative check ("no answer yet while the cap is full") cannot fail on a correct server.

mod common;

use std::net::SocketAddr;
use std::time::Duration;

use common::{indicator, Node, TAXII};
use kopa_core::Role;
use kopa_server::ServerConfig;
use kopa_store::Access;
use serde_json::json;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;
use tokio::time::timeout;

/// Turns a hang into a failure; never reached by a working server.
const GUARD: Duration = Duration::from_secs(30);

const HEALTHZ: &str = "GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n";

struct Running {
    addr: SocketAddr,
    stop: Option<oneshot::Sender<()>>,
    server: JoinHandle<Result<(), kopa_server::ServerError>>,
}

async fn start(node: &Node) -> Running {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let (tx, rx) = oneshot::channel::<()>();
    let server = tokio::spawn(kopa_server::serve_app(
        listener,
        node.state.clone(),
        async move {
            let _ = rx.await;
        },
    ));
    Running {
        addr,
        stop: Some(tx),
        server,
    }
}

impl Running {
    /// Signal shutdown and wait (under the guard) for `serve_app` to return.
    async fn stop(mut self) {
        self.stop.take().unwrap().send(()).unwrap();
        timeout(GUARD, self.server)
            .await
            .expect("the server returns after shutdown")
            .unwrap()
            .unwrap();
    }
}

/// Read a whole response (the server closes after `Connection: close`).
async fn read_all(stream: &mut TcpStream) -> String {
    let mut out = Vec::new();
    timeout(GUARD, stream.read_to_end(&mut out))
        .await
        .expect("a response")
        .unwrap();
    String::from_utf8_lossy(&out).into_owned()
}

/// Wait until the server closes `stream` (end of file, or a reset).
async fn closed_by_server(stream: &mut TcpStream) -> bool {
    let mut buf = [0u8; 1024];
    timeout(GUARD, async {
        loop {
            match stream.read(&mut buf).await {
                Ok(0) | Err(_) => return true,
                Ok(_) => {}
            }
        }
    })
    .await
    .unwrap_or(false)
}

fn config(max_connections: usize, header_read_timeout: Duration) -> ServerConfig {
    ServerConfig {
        max_connections,
        header_read_timeout,
        ..common::config()
    }
}

#[tokio::test]
async fn connections_beyond_the_cap_wait_until_a_slot_frees() {
    let node = Node::sqlite_with(config(2, Duration::from_secs(3600))).await;
    let running = start(&node).await;
    // Two connections that send nothing fill the cap (accepted in the order they connected).
    let first = TcpStream::connect(running.addr).await.unwrap();
    let _second = TcpStream::connect(running.addr).await.unwrap();
    // A third sends a whole request: it waits in the listen queue, unanswered.
    let mut third = TcpStream::connect(running.addr).await.unwrap();
    third.write_all(HEALTHZ.as_bytes()).await.unwrap();
    let mut byte = [0u8; 1];
    let early = timeout(Duration::from_millis(500), third.read(&mut byte)).await;
    assert!(early.is_err(), "answered while the cap was full: {early:?}");
    // A slot frees when a client leaves; the waiting request is then served.
    drop(first);
    let resp = read_all(&mut third).await;
    assert!(resp.starts_with("HTTP/1.1 200"), "{resp}");
    drop(_second);
    running.stop().await;
}

#[tokio::test]
async fn slowloris_connections_are_closed_and_a_real_request_is_answered() {
    let cap = 3;
    let node = Node::sqlite_with(config(cap, Duration::from_millis(300))).await;
    let running = start(&node).await;
    // Twice the cap: half never send a byte, half trickle the start of a request and stop.
    let mut idle = Vec::new();
    for i in 0..2 * cap {
        let mut s = TcpStream::connect(running.addr).await.unwrap();
        if i % 2 == 1 {
            s.write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\n")
                .await
                .unwrap();
        }
        idle.push(s);
    }
    let mut real = TcpStream::connect(running.addr).await.unwrap();
    real.write_all(HEALTHZ.as_bytes()).await.unwrap();
    let resp = read_all(&mut real).await;
    assert!(resp.starts_with("HTTP/1.1 200"), "{resp}");
    for (i, s) in idle.iter_mut().enumerate() {
        assert!(
            closed_by_server(s).await,
            "idle connection {i} was not closed by the server"
        );
    }
    running.stop().await;
}

#[tokio::test]
async fn shutdown_returns_within_its_deadline_despite_a_half_open_connection() {
    let node = Node::sqlite_with(ServerConfig {
        shutdown_deadline: Duration::from_millis(300),
        header_read_timeout: Duration::from_secs(3600),
        ..common::config()
    })
    .await;
    let running = start(&node).await;
    let mut half_open = TcpStream::connect(running.addr).await.unwrap();
    half_open
        .write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\n")
        .await
        .unwrap();
    // The server has the connection once it answers a request made after it.
    let mut probe = TcpStream::connect(running.addr).await.unwrap();
    probe.write_all(HEALTHZ.as_bytes()).await.unwrap();
    assert!(read_all(&mut probe).await.starts_with("HTTP/1.1 200"));
    running.stop().await;
    assert!(
        closed_by_server(&mut half_open).await,
        "the half-open connection is closed at the deadline"
    );
}

#[tokio::test]
async fn shutdown_lets_a_request_in_flight_finish_and_refuses_new_connections() {
    let node = Node::sqlite().await;
    let a = node.org("Org A").await;
    let alice = node.user("alice", &a, Role::Analyst).await;
    let coll = node.collection("Shared", Access::All, Access::All).await;
    let mut running = start(&node).await;
    let addr = running.addr;
    // A POST whose body is half sent when the shutdown signal comes.
    let body = serde_json::to_string(&json!({"objects": [indicator(1, json!({}))]})).unwrap();
    let head = format!(
        "POST /kopa/collections/{coll}/objects/ HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {alice}\r\nAccept: {TAXII}\r\nContent-Type: {TAXII}\r\nContent-Length: {}\r\n\r\n",
        body.len()
    );
    let (part1, part2) = body.split_at(body.len() / 2);
    let mut posting = TcpStream::connect(addr).await.unwrap();
    posting.write_all(head.as_bytes()).await.unwrap();
    posting.write_all(part1.as_bytes()).await.unwrap();
    // Make sure the server is serving this connection before the signal.
    let mut probe = TcpStream::connect(addr).await.unwrap();
    probe.write_all(HEALTHZ.as_bytes()).await.unwrap();
    assert!(read_all(&mut probe).await.starts_with("HTTP/1.1 200"));

    running.stop.take().unwrap().send(()).unwrap();
    // New connections are refused once the listener is closed.
    timeout(GUARD, async {
        while TcpStream::connect(addr).await.is_ok() {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    })
    .await
    .expect("the listener closes on shutdown");
    // The request in flight is completed and answered, then the server returns.
    posting.write_all(part2.as_bytes()).await.unwrap();
    let resp = read_all(&mut posting).await;
    assert!(resp.starts_with("HTTP/1.1 202"), "{resp}");
    timeout(GUARD, running.server)
        .await
        .expect("the server returns once the request is answered")
        .unwrap()
        .unwrap();
    assert_eq!(node.store.audit_entries(0, 10).await.unwrap().len(), 1);
}
