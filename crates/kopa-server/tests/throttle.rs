//! Failed authentication is throttled per client address and per token id, on a real port (the
//! client address comes from the connection): past the allowance a caller gets 429 with
//! `Retry-After`, in the TAXII error shape on TAXII routes and `{"error": …}` on the REST API, and
//! nothing is checked for it; other addresses and tokens are not affected, successful requests are
//! never counted, and a peer node's signed calls are neither counted nor throttled. Clients bind to different loopback addresses (127.0.0.2, …: Linux routes all
//! of 127/8 to the loopback interface).

mod common;

use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

use common::{Node, TAXII};
use kopa_core::Role;
use kopa_server::ServerConfig;
use tokio::sync::oneshot;

const FAILURES: u32 = 3;

struct Server {
    addr: SocketAddr,
    _stop: oneshot::Sender<()>,
}

async fn start(node: &Node) -> Server {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let (tx, rx) = oneshot::channel::<()>();
    tokio::spawn(kopa_server::serve_app(
        listener,
        node.state.clone(),
        async move {
            let _ = rx.await;
        },
    ));
    Server { addr, _stop: tx }
}

async fn node() -> Node {
    Node::sqlite_with(ServerConfig {
        auth_failures: FAILURES,
        // Long enough that no failure is forgotten during the test.
        auth_failure_window: Duration::from_secs(3600),
        ..common::config()
    })
    .await
}

/// A client whose connections come from `ip`.
fn client(ip: &str) -> reqwest::Client {
    reqwest::Client::builder()
        .local_address(ip.parse::<IpAddr>().unwrap())
        .build()
        .unwrap()
}

struct Answer {
    status: u16,
    retry_after: Option<String>,
    content_type: String,
    body: serde_json::Value,
}

async fn get(client: &reqwest::Client, server: &Server, path: &str, token: &str) -> Answer {
    get_with(client, server, path, &format!("Bearer {token}")).await
}

async fn get_with(
    client: &reqwest::Client,
    server: &Server,
    path: &str,
    authorization: &str,
) -> Answer {
    let resp = client
        .get(format!("http://{}{path}", server.addr))
        .header("Accept", TAXII)
        .header("Authorization", authorization)
        .timeout(Duration::from_secs(30))
        .send()
        .await
        .unwrap();
    let header = |name: &str| {
        resp.headers()
            .get(name)
            .map(|v| v.to_str().unwrap().to_string())
    };
    let retry_after = header("retry-after");
    let content_type = header("content-type").unwrap_or_default();
    let status = resp.status().as_u16();
    let body = resp.json().await.unwrap_or(serde_json::Value::Null);
    Answer {
        status,
        retry_after,
        content_type,
        body,
    }
}

#[tokio::test]
async fn failures_from_one_address_are_throttled_and_other_addresses_are_not() {
    let node = node().await;
    let org = node.org("Org A").await;
    let alice = node.user("alice", &org, Role::Analyst).await;
    let bob = node.user("bob", &org, Role::Analyst).await;
    let server = start(&node).await;
    let guesser = client("127.0.0.2");
    let honest = client("127.0.0.1");

    // Successful requests are never counted.
    for _ in 0..2 * FAILURES {
        assert_eq!(get(&guesser, &server, "/taxii2/", &alice).await.status, 200);
    }
    // Free-form guesses (no token id): counted against the address only.
    for i in 0..FAILURES {
        let a = get(&guesser, &server, "/taxii2/", &format!("guess number {i}")).await;
        assert_eq!(a.status, 401, "failure {i} is refused as usual");
        assert_eq!(a.retry_after, None);
    }
    // Then 429 with Retry-After, in the TAXII error shape on TAXII routes…
    let a = get(&guesser, &server, "/taxii2/", "another guess").await;
    assert_eq!(a.status, 429, "{:?}", a.body);
    let secs: u64 = a.retry_after.as_deref().unwrap().parse().unwrap();
    assert!((1..=3600).contains(&secs), "Retry-After {secs}");
    assert_eq!(a.content_type, TAXII);
    assert_eq!(a.body["http_status"], "429");
    assert_eq!(a.body["title"], "Too many requests");
    assert!(
        a.body["description"]
            .as_str()
            .unwrap()
            .contains("too many failed authentications"),
        "{}",
        a.body
    );
    // …and `{"error": …}` on the REST API; a good token from that address is refused too (it is
    // not even checked, so a guesser cannot tell a right guess).
    let a = get(&guesser, &server, "/api/me", &bob).await;
    assert_eq!(a.status, 429);
    assert!(a.retry_after.is_some());
    assert!(a.body["error"].as_str().is_some(), "{}", a.body);
    // Another address is not affected.
    let a = get(&honest, &server, "/api/me", &bob).await;
    assert_eq!(a.status, 200, "{:?}", a.body);
    assert_eq!(a.body["name"], "bob");
    assert_eq!(get(&honest, &server, "/taxii2/", "wrong").await.status, 401);
}

#[tokio::test]
async fn wrong_secrets_for_one_token_are_throttled_from_any_address() {
    let node = node().await;
    let org = node.org("Org A").await;
    let alice = node.user("alice", &org, Role::Analyst).await;
    let bob = node.user("bob", &org, Role::Analyst).await;
    let server = start(&node).await;
    // alice's token id with wrong secrets, each from another address.
    let id = alice.split('_').nth(1).unwrap();
    let wrong = format!("kopa_{id}_{}", "0".repeat(64));
    for i in 0..FAILURES {
        let c = client(&format!("127.0.0.{}", 10 + i));
        assert_eq!(get(&c, &server, "/taxii2/", &wrong).await.status, 401);
    }
    // The token is now throttled, from a fresh address too, even with its right secret.
    let fresh = client("127.0.0.20");
    let a = get(&fresh, &server, "/taxii2/", &alice).await;
    assert_eq!(a.status, 429, "{:?}", a.body);
    assert!(a.retry_after.is_some());
    // Other tokens are not.
    assert_eq!(get(&fresh, &server, "/taxii2/", &bob).await.status, 200);
}

#[tokio::test]
async fn a_peer_at_a_throttled_address_is_still_served_and_its_failures_not_counted() {
    use kopa_federation::request_auth::new_nonce;
    use kopa_federation::{sign_request, NodeKey};
    let node = node().await;
    let org = node.org("Org A").await;
    let alice = node.user("alice", &org, Role::Analyst).await;
    let peer_key = NodeKey::generate();
    node.store
        .add_peer(&kopa_store::NewPeer {
            name: "peer".into(),
            node_id: peer_key.node_id().to_string(),
            url: "https://peer.example".into(),
            public_key: peer_key.public_key().encode(),
            token: None,
            policy: "{}".into(),
        })
        .await
        .unwrap();
    let server = start(&node).await;
    let shared = client("127.0.0.3");
    let path = "/kopa/collections/";
    let signed = || {
        sign_request(
            &peer_key,
            node.identity.id(),
            "GET",
            path,
            now_unix(),
            &new_nonce(),
            b"",
        )
    };
    // Signatures that fail (made for another method) are not counted against the address…
    for _ in 0..2 * FAILURES {
        let bad = sign_request(
            &peer_key,
            node.identity.id(),
            "POST",
            path,
            now_unix(),
            &new_nonce(),
            b"",
        );
        assert_eq!(get_with(&shared, &server, path, &bad).await.status, 401);
    }
    assert_eq!(get(&shared, &server, "/taxii2/", &alice).await.status, 200);
    // …and once users at that address have used up their allowance, the peer is still served.
    for _ in 0..FAILURES {
        assert_eq!(
            get(&shared, &server, "/taxii2/", "a guess").await.status,
            401
        );
    }
    assert_eq!(get(&shared, &server, "/taxii2/", &alice).await.status, 429);
    let a = get_with(&shared, &server, path, &signed()).await;
    assert_eq!(a.status, 200, "{:?}", a.body);
}

/// The current time in unix seconds, by the clock the test nodes run on.
fn now_unix() -> i64 {
    use kopa_core::Clock as _;
    kopa_core::SystemClock.unix_seconds()
}
