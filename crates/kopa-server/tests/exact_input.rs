//! Input kept exactly or refused: numbers that parsing would round are refused with the object id
//! and the property path; names of organisations and users that hide characters or pass for an
//! existing name are refused; and every error of the HTTP layer that reaches the application is
//! in the documented shape (`{"error": …}` on the REST API, the TAXII error resource on TAXII
//! routes), checked in process and on a real port.

#[macro_use]
mod common;

use common::{Auth, Node, TAXII};
use kopa_core::Role;
use kopa_store::Access;
use serde_json::{json, Value};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

const ID_BIG: &str = "indicator--00000000-0000-4000-8000-000000000001";
const ID_PRECISE: &str = "indicator--00000000-0000-4000-8000-000000000002";
const ID_FINE: &str = "indicator--00000000-0000-4000-8000-000000000003";

/// An indicator with `extra` (JSON members, as text) written into its text.
fn indicator_text(id: &str, extra: &str) -> String {
    format!(
        r#"{{"type": "indicator", "spec_version": "2.1", "id": "{id}",
            "created": "2024-01-01T00:00:00.000Z", "modified": "2024-01-01T00:00:00.000Z",
            "pattern": "[ipv4-addr:value = '198.51.100.1']", "pattern_type": "stix",
            "valid_from": "2024-01-01T00:00:00Z", {extra}}}"#
    )
}

async fn numbers_are_kept_exactly_or_refused(node: Node) {
    let a = node.org("Org A").await;
    let alice = node.user("alice", &a, Role::Analyst).await;
    let coll = node.collection("Room", Access::All, Access::All).await;
    // Sent as text: a JSON library on the client side would round these before they left.
    let body = format!(
        r#"{{"objects": [{}, {}, {}]}}"#,
        indicator_text(ID_BIG, r#""x_counts": [1, 12345678901234567890123]"#),
        indicator_text(
            ID_PRECISE,
            r#""x_score": {"value": 0.10000000000000000001, "of": 1}"#
        ),
        indicator_text(
            ID_FINE,
            r#""x_max": 9007199254740991, "x_min": -9007199254740991, "x_ratio": 0.1, "x_half": 0.50"#
        ),
    );
    let r = node
        .call(
            "POST",
            &format!("/kopa/collections/{coll}/objects/"),
            Auth::Bearer(&alice),
            &[("content-type", TAXII)],
            Some(body.into_bytes()),
        )
        .await;
    assert_eq!(r.status, 202, "{}", r.text());
    let status = r.json();
    assert_eq!(status["success_count"], 1, "{status}");
    assert_eq!(status["failure_count"], 2, "{status}");
    let failure = |id: &str| -> String {
        status["failures"]
            .as_array()
            .unwrap()
            .iter()
            .find(|f| f["id"] == id)
            .and_then(|f| f["message"].as_str())
            .unwrap_or_else(|| panic!("no failure for {id}: {status}"))
            .to_string()
    };
    let big = failure(ID_BIG);
    assert!(
        big.contains(&format!("{ID_BIG}: x_counts[1]: 12345678901234567890123")),
        "{big}"
    );
    assert!(big.contains("beyond 64 bits"), "{big}");
    let precise = failure(ID_PRECISE);
    assert!(
        precise.contains(&format!(
            "{ID_PRECISE}: x_score.value: 0.10000000000000000001"
        )),
        "{precise}"
    );
    // What was stored is served with the same numbers.
    let r = node
        .get(&format!("/kopa/collections/{coll}/objects/"), &alice)
        .await;
    let text = r.text();
    // (A signed object's integers stay within ±(2^53 − 1): canonical JSON cannot sign larger.)
    assert!(text.contains("\"x_max\":9007199254740991"), "{text}");
    assert!(text.contains("\"x_min\":-9007199254740991"), "{text}");
    assert!(text.contains("\"x_ratio\":0.1,"), "{text}");
    assert_eq!(r.json()["objects"][0]["x_half"], json!(0.5));
    assert_eq!(r.json()["objects"].as_array().unwrap().len(), 1);
}

async fn names_that_pass_for_others_are_refused(node: Node) {
    let home = node.org("Home").await;
    let admin = node.user("root", &home, Role::Admin).await;
    let add_org = |name: &str| json!({ "name": name });
    let r = node
        .api("POST", "/api/orgs", &admin, Some(add_org("Bank A")))
        .await;
    assert_eq!(r.status, 201, "{}", r.text());
    let r = node
        .api(
            "POST",
            "/api/users",
            &admin,
            Some(json!({"name": "alice", "org": "Bank A"})),
        )
        .await;
    assert_eq!(r.status, 201, "{}", r.text());
    let long = "n".repeat(201);
    let rows: &[(&str, &str, Value, u16, &str)] = &[
        (
            "Cyrillic А",
            "/api/orgs",
            add_org("Bank \u{0410}"),
            400,
            "too like the existing organisation \"Bank A\"",
        ),
        ("case only", "/api/orgs", add_org("BANK A"), 400, "too like"),
        (
            "RLO in an organisation",
            "/api/orgs",
            add_org("Bank\u{202E}B"),
            400,
            "U+202E",
        ),
        (
            "201 characters",
            "/api/orgs",
            add_org(&long),
            400,
            "at most 200",
        ),
        (
            "same name",
            "/api/orgs",
            add_org("Bank A"),
            409,
            "already exists",
        ),
        (
            "capital I for l",
            "/api/users",
            json!({"name": "aIice", "org": "Bank A"}),
            400,
            "too like the existing user \"alice\"",
        ),
        (
            "zero-width space",
            "/api/users",
            json!({"name": "al\u{200B}ice", "org": "Bank A"}),
            400,
            "U+200B",
        ),
        (
            "not NFC",
            "/api/users",
            json!({"name": "Jose\u{0301}", "org": "Bank A"}),
            400,
            "NFC",
        ),
        (
            "same user",
            "/api/users",
            json!({"name": "alice", "org": "Bank A"}),
            409,
            "already exists",
        ),
    ];
    for (row, path, body, status, needle) in rows {
        let r = node.api("POST", path, &admin, Some(body.clone())).await;
        assert_eq!(r.status, *status, "{row}: {}", r.text());
        let msg = r.json()["error"].as_str().unwrap_or_default().to_string();
        assert!(msg.contains(needle), "{row}: {msg}");
    }
    let orgs = node.api("GET", "/api/orgs", &admin, None).await.json();
    assert_eq!(orgs["orgs"].as_array().unwrap().len(), 2, "{orgs}");
}

on_both_backends!(
    numbers_are_kept_exactly_or_refused,
    names_that_pass_for_others_are_refused
);

/// `r` is a TAXII error resource with `status`.
fn taxii_error(r: &common::Resp, status: u16, what: &str) {
    assert_eq!(r.status, status, "{what}: {}", r.text());
    assert_eq!(
        r.header("content-type"),
        Some(TAXII),
        "{what}: {}",
        r.text()
    );
    let e = r.json();
    assert_eq!(e["http_status"], status.to_string(), "{what}");
    assert!(
        e["title"].is_string() && e["description"].is_string(),
        "{what}: {e}"
    );
}

/// `r` is a REST error `{"error": …}` with `status`.
fn api_error(r: &common::Resp, status: u16, what: &str) {
    assert_eq!(r.status, status, "{what}: {}", r.text());
    assert!(
        r.header("content-type")
            .is_some_and(|c| c.starts_with("application/json")),
        "{what}: {:?}",
        r.header("content-type")
    );
    assert!(r.json()["error"].is_string(), "{what}: {}", r.text());
}

#[tokio::test]
async fn errors_of_the_http_layer_are_in_the_documented_shape() {
    let node = Node::sqlite().await;
    let home = node.org("Home").await;
    let admin = node.user("root", &home, Role::Admin).await;
    let coll = node.collection("Room", Access::All, Access::All).await;

    // 413 from the REST body limit (axum's own rejection, text before).
    let big = vec![b' '; 3 * 1024 * 1024];
    let r = node
        .call(
            "POST",
            "/api/orgs",
            Auth::Bearer(&admin),
            &[
                ("content-type", "application/json"),
                ("accept", "application/json"),
            ],
            Some(big),
        )
        .await;
    api_error(&r, 413, "REST body too large");
    // 413 on TAXII (Kopa's own limit, max_content_length).
    let r = node
        .call(
            "POST",
            &format!("/kopa/collections/{coll}/objects/"),
            Auth::Bearer(&admin),
            &[("content-type", TAXII)],
            Some(vec![b' '; 65 * 1024]),
        )
        .await;
    taxii_error(&r, 413, "TAXII body too large");

    // A path segment whose percent-encoding is not UTF-8.
    let r = node.get("/kopa/collections/%FF%FE/", &admin).await;
    taxii_error(&r, 400, "bad percent-encoding in a TAXII path");
    let r = node.api("GET", "/api/export/%C3%28", &admin, None).await;
    api_error(&r, 400, "bad percent-encoding in a REST path");
    // ... and in query strings (decoded leniently, then refused by the parameter's own check).
    let r = node
        .get(
            &format!("/kopa/collections/{coll}/objects/?match%5Btype%5D=%FF%FE"),
            &admin,
        )
        .await;
    taxii_error(&r, 400, "bad percent-encoding in a TAXII query");
    let r = node.api("GET", "/api/audit?after=%FF", &admin, None).await;
    api_error(&r, 400, "bad percent-encoding in a REST query");

    // 414: a request target over Kopa's limit.
    let ids: Vec<String> = (0..200)
        .map(|n| format!("indicator--{}", common::uuid_n(n)))
        .collect();
    let r = node
        .get(
            &format!(
                "/kopa/collections/{coll}/objects/?match[id]={}",
                ids.join(",")
            ),
            &admin,
        )
        .await;
    taxii_error(&r, 414, "TAXII URI too long");
    let r = node
        .api(
            "GET",
            &format!("/api/search?value={}", "x".repeat(9000)),
            &admin,
            None,
        )
        .await;
    api_error(&r, 414, "REST URI too long");

    // 431: headers over Kopa's limit.
    let huge = "h".repeat(40 * 1024);
    let r = node
        .call(
            "GET",
            "/kopa/collections/",
            Auth::Bearer(&admin),
            &[("x-padding", huge.as_str())],
            None,
        )
        .await;
    taxii_error(&r, 431, "TAXII headers too large");
    let r = node
        .call(
            "GET",
            "/api/me",
            Auth::Bearer(&admin),
            &[("accept", "application/json"), ("x-padding", huge.as_str())],
            None,
        )
        .await;
    api_error(&r, 431, "REST headers too large");
}

/// The head and body of an HTTP/1.1 answer read to the end of the connection.
async fn raw_http(addr: std::net::SocketAddr, request: &[u8]) -> (u16, String, String) {
    let mut s = tokio::net::TcpStream::connect(addr).await.unwrap();
    s.write_all(request).await.unwrap();
    let mut out = Vec::new();
    let _ = s.read_to_end(&mut out).await;
    let text = String::from_utf8_lossy(&out).into_owned();
    let (head, body) = text.split_once("\r\n\r\n").unwrap_or((&text, ""));
    let status = head
        .split(' ')
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    (status, head.to_string(), body.to_string())
}

/// The body of a chunked answer, decoded (the test answers are small and well-formed).
fn dechunk(head: &str, body: &str) -> String {
    if !head
        .to_ascii_lowercase()
        .contains("transfer-encoding: chunked")
    {
        return body.to_string();
    }
    let mut out = String::new();
    let mut rest = body;
    while let Some((size, tail)) = rest.split_once("\r\n") {
        let n = usize::from_str_radix(size.trim(), 16).unwrap_or(0);
        if n == 0 {
            break;
        }
        out.push_str(&tail[..n]);
        rest = &tail[n + 2..];
    }
    out
}

#[tokio::test]
async fn malformed_chunked_bodies_are_400_in_the_route_shape_on_a_real_port() {
    let node = Node::sqlite().await;
    let home = node.org("Home").await;
    let admin = node.user("root", &home, Role::Admin).await;
    let coll = node.collection("Room", Access::All, Access::All).await;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let (tx, rx) = tokio::sync::oneshot::channel::<()>();
    let server = tokio::spawn(kopa_server::serve_app(
        listener,
        node.state.clone(),
        async move {
            let _ = rx.await;
        },
    ));

    // A chunk size that is not hexadecimal.
    let bad_chunks = "zz\r\n{\"objects\": []}\r\n0\r\n\r\n";
    let req = format!(
        "POST /kopa/collections/{coll}/objects/ HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\
         Authorization: Bearer {admin}\r\nAccept: {TAXII}\r\nContent-Type: {TAXII}\r\n\
         Transfer-Encoding: chunked\r\n\r\n{bad_chunks}"
    );
    let (status, head, body) = raw_http(addr, req.as_bytes()).await;
    assert_eq!(status, 400, "{head}\n{body}");
    let e: Value =
        serde_json::from_str(&dechunk(&head, &body)).unwrap_or_else(|e| panic!("{e}: {body}"));
    assert_eq!(e["http_status"], "400", "{e}");
    assert!(
        e["description"]
            .as_str()
            .unwrap()
            .contains("could not be read"),
        "{e}"
    );

    let req = format!(
        "POST /api/orgs HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\
         Authorization: Bearer {admin}\r\nContent-Type: application/json\r\n\
         Transfer-Encoding: chunked\r\n\r\n{bad_chunks}"
    );
    let (status, head, body) = raw_http(addr, req.as_bytes()).await;
    assert_eq!(status, 400, "{head}\n{body}");
    let e: Value =
        serde_json::from_str(&dechunk(&head, &body)).unwrap_or_else(|e| panic!("{e}: {body}"));
    assert!(e["error"].is_string(), "{e}");

    // What hyper answers itself, before Kopa sees the request, has no body: a request target over
    // 65,534 bytes (414) and a request line it cannot parse (400). Kept here so that a change of
    // that is noticed.
    let req = format!(
        "GET /api/search?value={} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
        "x".repeat(70_000)
    );
    let (status, _, body) = raw_http(addr, req.as_bytes()).await;
    assert_eq!((status, body.as_str()), (414, ""));
    let (status, _, body) = raw_http(addr, b"GET /a b c HTTP/1.1\r\nHost: x\r\n\r\n").await;
    assert_eq!((status, body.as_str()), (400, ""));

    tx.send(()).unwrap();
    server.await.unwrap().unwrap();
}
