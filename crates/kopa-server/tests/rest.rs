//! The REST API, health, metrics and the server loop: administration of organisations, users, tokens
//! and collections with role checks, search and export errors, the audit log, `/healthz`, `/metrics`,
//! `/api/openapi.json`, request ids, and `serve_listener` on a real port with graceful shutdown.

mod common;

use common::{indicator, Auth, Node, TAXII};
use kopa_core::Role;
use kopa_store::Access;
use serde_json::{json, Value};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

#[tokio::test]
async fn openapi_health_and_metrics() {
    let node = Node::sqlite().await;
    let r = node
        .call("GET", "/api/openapi.json", Auth::None, &[], None)
        .await;
    assert_eq!(r.status, 200);
    let doc = r.json();
    for (method, path) in kopa_server::REST_ROUTES {
        assert!(doc["paths"][path][method].is_object(), "{method} {path}");
    }
    let r = node.call("GET", "/healthz", Auth::None, &[], None).await;
    assert_eq!(r.status, 200);
    assert_eq!(r.json(), json!({"status": "ok"}));

    let a = node.org("Org A").await;
    let alice = node.user("alice", &a, Role::Analyst).await;
    let coll = node.collection("Shared", Access::All, Access::All).await;
    let mut bad = indicator(2, json!({}));
    bad.as_object_mut().unwrap().remove("pattern");
    let r = node
        .post_envelope(&coll, &alice, &[indicator(1, json!({})), bad])
        .await;
    assert_eq!(r.status, 202);
    node.get("/kopa/collections/", &alice).await;

    let r = node.call("GET", "/metrics", Auth::None, &[], None).await;
    assert_eq!(r.status, 200);
    let text = r.text();
    assert!(text.contains("kopa_objects_written_total 1"), "{text}");
    assert!(text.contains("kopa_objects_rejected_total 1"), "{text}");
    assert!(
        text.contains("kopa_http_requests_total{route=\"/kopa/collections/{collection}/objects/\",method=\"POST\",status=\"202\"} 1"),
        "{text}"
    );
    assert!(
        text.contains("kopa_http_request_duration_seconds"),
        "{text}"
    );
}

#[tokio::test]
async fn every_response_carries_a_request_id() {
    let node = Node::sqlite().await;
    // Without one from the client, the node draws a new UUID for each request.
    let first = node.call("GET", "/healthz", Auth::None, &[], None).await;
    let second = node.call("GET", "/healthz", Auth::None, &[], None).await;
    let id = first.header("x-request-id").expect("no x-request-id");
    assert!(uuid::Uuid::parse_str(id).is_ok(), "{id}");
    assert_ne!(second.header("x-request-id"), Some(id));
    // The client's own is sent back: on REST, TAXII and error answers alike.
    for path in ["/healthz", "/api/me", "/taxii2/", "/no/such/path"] {
        let r = node
            .call(
                "GET",
                path,
                Auth::None,
                &[("x-request-id", "client-chosen-42")],
                None,
            )
            .await;
        assert_eq!(r.header("x-request-id"), Some("client-chosen-42"), "{path}");
    }
}

#[tokio::test]
async fn administration_with_roles_and_audit() {
    let node = Node::sqlite().await;
    let home = node.org("Home").await;
    let admin = node.user("root", &home, Role::Admin).await;
    let nobody = node.user("someone", &home, Role::Analyst).await;

    // Organisations: admin only; duplicates are a conflict.
    let r = node
        .api("POST", "/api/orgs", &admin, Some(json!({"name": "Org A"})))
        .await;
    assert_eq!(r.status, 201, "{}", r.text());
    assert_eq!(r.json()["name"], "Org A");
    assert!(r.json()["id"].is_string());
    node.api("POST", "/api/orgs", &admin, Some(json!({"name": "Org B"})))
        .await;
    assert_eq!(
        node.api("POST", "/api/orgs", &admin, Some(json!({"name": "Org A"})))
            .await
            .status,
        409
    );
    let r = node
        .api("POST", "/api/orgs", &nobody, Some(json!({"name": "Org X"})))
        .await;
    assert_eq!(r.status, 403);
    assert!(r.json()["error"]
        .as_str()
        .unwrap()
        .contains("administrator"));
    let r = node
        .api("POST", "/api/orgs", &admin, Some(json!({"nom": "typo"})))
        .await;
    assert_eq!(r.status, 400);
    assert!(r.json()["error"].is_string());
    let r = node
        .call(
            "POST",
            "/api/orgs",
            Auth::Bearer(&admin),
            &[("content-type", "application/json")],
            Some(b"{oops".to_vec()),
        )
        .await;
    assert_eq!(r.status, 400);
    let names: Vec<String> = node.api("GET", "/api/orgs", &nobody, None).await.json()["orgs"]
        .as_array()
        .unwrap()
        .iter()
        .map(|o| o["name"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(names.len(), 3);

    // Users: the admin makes an org-admin for Org A, who manages Org A's users only.
    let r = node
        .api(
            "POST",
            "/api/users",
            &admin,
            Some(json!({"name": "anna", "org": "Org A", "role": "org-admin"})),
        )
        .await;
    assert_eq!(r.status, 201, "{}", r.text());
    let u = r.json();
    assert_eq!(
        (u["name"].as_str(), u["org"].as_str(), u["role"].as_str()),
        (Some("anna"), Some("Org A"), Some("org-admin"))
    );
    let anna = u["token"].as_str().unwrap().to_string();
    let me = node.api("GET", "/api/me", &anna, None).await.json();
    assert_eq!(
        me,
        json!({"name": "anna", "org": "Org A", "role": "org-admin", "enrolments": []})
    );
    // Basic works on the REST API too.
    assert_eq!(
        node.call("GET", "/api/me", Auth::Basic("anna", &anna), &[], None)
            .await
            .status,
        200
    );

    let r = node
        .api(
            "POST",
            "/api/users",
            &anna,
            Some(json!({"name": "andy", "org": "Org A", "role": "reader"})),
        )
        .await;
    assert_eq!(r.status, 201);
    let andy = r.json()["token"].as_str().unwrap().to_string();
    assert_eq!(
        node.api(
            "POST",
            "/api/users",
            &anna,
            Some(json!({"name": "bert", "org": "Org B"}))
        )
        .await
        .status,
        403
    );
    assert_eq!(
        node.api(
            "POST",
            "/api/users",
            &anna,
            Some(json!({"name": "boss", "org": "Org A", "role": "admin"}))
        )
        .await
        .status,
        403
    );
    assert_eq!(
        node.api(
            "POST",
            "/api/users",
            &andy,
            Some(json!({"name": "x", "org": "Org A"}))
        )
        .await
        .status,
        403
    );
    let r = node
        .api(
            "POST",
            "/api/users",
            &admin,
            Some(json!({"name": "x", "org": "Org A", "role": "boss"})),
        )
        .await;
    assert_eq!(r.status, 400);
    assert!(r.json()["error"].as_str().unwrap().contains("boss"));
    assert_eq!(
        node.api(
            "POST",
            "/api/users",
            &admin,
            Some(json!({"name": "x", "org": "Nowhere"}))
        )
        .await
        .status,
        404
    );
    assert_eq!(
        node.api(
            "POST",
            "/api/users",
            &admin,
            Some(json!({"name": "anna", "org": "Org A"}))
        )
        .await
        .status,
        409
    );
    let r = node
        .api(
            "POST",
            "/api/users",
            &admin,
            Some(json!({"name": "bert", "org": "Org B"})),
        )
        .await;
    assert_eq!(r.json()["role"], "analyst", "analyst is the default role");

    let users = |token: String| {
        let node = &node;
        async move {
            let r = node.api("GET", "/api/users", &token, None).await;
            (r.status, r.json())
        }
    };
    let (status, all) = users(admin.clone()).await;
    assert_eq!(status, 200);
    assert_eq!(all["users"].as_array().unwrap().len(), 5);
    let (_, own) = users(anna.clone()).await;
    let mut own: Vec<&str> = own["users"]
        .as_array()
        .unwrap()
        .iter()
        .map(|u| u["name"].as_str().unwrap())
        .collect();
    own.sort();
    assert_eq!(own, vec!["andy", "anna"]);
    assert_eq!(users(andy.clone()).await.0, 403);

    // Tokens: no one makes a token for another user (an org-admin for its analyst, the
    // administrator for anyone); a user makes its own; its org-admin may revoke it.
    for (who, whom) in [(&anna, "andy"), (&admin, "andy"), (&admin, "anna")] {
        let r = node
            .api("POST", &format!("/api/users/{whom}/tokens"), who, None)
            .await;
        assert_eq!(r.status, 403, "token for {whom}");
        assert!(r.json()["error"]
            .as_str()
            .unwrap()
            .contains("a token is made only by its own user"));
    }
    let r = node
        .api("POST", "/api/users/andy/tokens", &andy, None)
        .await;
    assert_eq!(r.status, 201);
    let t = r.json();
    let second = t["token"].as_str().unwrap().to_string();
    let token_id = t["id"].as_str().unwrap().to_string();
    assert_eq!(node.api("GET", "/api/me", &second, None).await.status, 200);
    assert_eq!(
        node.api("POST", "/api/users/bert/tokens", &anna, None)
            .await
            .status,
        403
    );
    assert_eq!(
        node.api("POST", "/api/users/ghost/tokens", &admin, None)
            .await
            .status,
        404
    );
    // Someone outside Org A cannot even tell the token exists.
    assert_eq!(
        node.api("DELETE", &format!("/api/tokens/{token_id}"), &nobody, None)
            .await
            .status,
        404
    );
    let r = node
        .api("DELETE", &format!("/api/tokens/{token_id}"), &anna, None)
        .await;
    assert_eq!(r.status, 200);
    let r = node.api("GET", "/api/me", &second, None).await;
    assert_eq!(r.status, 401);
    assert_eq!(
        r.header("www-authenticate"),
        Some("Basic realm=\"kopa\", Bearer")
    );
    assert!(r.json()["error"].is_string());
    assert_eq!(
        node.api("GET", "/api/me", &andy, None).await.status,
        200,
        "the first token still works"
    );
    assert_eq!(
        node.api("DELETE", "/api/tokens/0000000000000000", &admin, None)
            .await
            .status,
        404
    );

    // Collections.
    let r = node
        .api(
            "POST",
            "/api/collections",
            &admin,
            Some(
                json!({"title": "A reads", "alias": "a-reads", "read": ["Org A"], "write": "all"}),
            ),
        )
        .await;
    assert_eq!(r.status, 201, "{}", r.text());
    let coll = r.json()["id"].as_str().unwrap().to_string();
    assert_eq!(r.json()["title"], "A reads");
    for (body, needle) in [
        (
            json!({"title": "x", "read": "everyone", "write": "all"}),
            "read",
        ),
        (
            json!({"title": "x", "read": ["Nowhere"], "write": "all"}),
            "Nowhere",
        ),
        (json!({"title": "", "read": "all", "write": "all"}), "title"),
    ] {
        let r = node
            .api("POST", "/api/collections", &admin, Some(body))
            .await;
        assert_eq!(r.status, 400);
        assert!(
            r.json()["error"].as_str().unwrap().contains(needle),
            "{}",
            r.text()
        );
    }
    assert_eq!(
        node.api(
            "POST",
            "/api/collections",
            &anna,
            Some(json!({"title": "x", "read": "all", "write": "all"}))
        )
        .await
        .status,
        403
    );
    let listed = node
        .api("GET", "/api/collections", &anna, None)
        .await
        .json();
    assert_eq!(listed["collections"][0]["id"], coll.as_str());
    assert_eq!(listed["collections"][0]["can_read"], true);
    let listed = node
        .api("GET", "/api/collections", &nobody, None)
        .await
        .json();
    assert_eq!(listed["collections"][0]["can_read"], false);
    assert_eq!(listed["collections"][0]["can_write"], true);

    // A write and a delete are audited too.
    let r = node
        .post_envelope(&coll, &anna, &[indicator(1, json!({}))])
        .await;
    assert_eq!(r.status, 202);
    let oid = format!("indicator--{}", common::uuid_n(1));
    let r = node
        .call(
            "DELETE",
            &format!("/kopa/collections/{coll}/objects/{oid}/"),
            Auth::Bearer(&anna),
            &[],
            None,
        )
        .await;
    assert_eq!(r.status, 200);

    // Search and export errors.
    assert_eq!(
        node.api("GET", "/api/search", &anna, None).await.status,
        400
    );
    assert_eq!(
        node.api("GET", "/api/search?value=", &anna, None)
            .await
            .status,
        400
    );
    // A NUL character (which PostgreSQL text cannot hold) is bad input, on every backend.
    let r = node
        .api("GET", "/api/search?value=a%00b", &anna, None)
        .await;
    assert_eq!(r.status, 400, "{}", r.text());
    assert_eq!(
        node.api("GET", &format!("/api/export/{coll}"), &nobody, None)
            .await
            .status,
        403
    );
    assert_eq!(
        node.api(
            "GET",
            "/api/export/11111111-1111-4111-8111-111111111111",
            &anna,
            None
        )
        .await
        .status,
        404
    );

    // The audit log: admin only, every act, chained.
    assert_eq!(node.api("GET", "/api/audit", &anna, None).await.status, 403);
    let r = node.api("GET", "/api/audit?after=0", &admin, None).await;
    assert_eq!(r.status, 200);
    let entries: Vec<kopa_core::audit::AuditEntry> =
        serde_json::from_value(r.json()["entries"].clone()).unwrap();
    let acts: Vec<(String, String, String)> = entries
        .iter()
        .map(|e| (e.actor.clone(), e.action.clone(), e.target.clone()))
        .collect();
    let want = [
        ("root", "org.add", "Org A"),
        ("root", "org.add", "Org B"),
        ("root", "user.add", "anna"),
        ("anna", "user.add", "andy"),
        ("root", "user.add", "bert"),
        ("andy", "token.add", "andy"),
        ("anna", "token.revoke", "andy"),
        ("root", "collection.add", coll.as_str()),
        ("anna", "objects.add", coll.as_str()),
        ("anna", "object.delete", &format!("{coll}/{oid}")),
    ];
    let want: Vec<(String, String, String)> = want
        .iter()
        .map(|(a, b, c)| (a.to_string(), b.to_string(), c.to_string()))
        .collect();
    assert_eq!(acts, want);
    let add: Value = serde_json::from_str(&entries[8].detail).unwrap();
    assert_eq!(
        (
            add["total"].as_u64(),
            add["success"].as_u64(),
            add["failure"].as_u64()
        ),
        (Some(1), Some(1), Some(0))
    );
    assert_eq!(kopa_core::audit::verify(&entries), Ok(10));
    let r = node.api("GET", "/api/audit?after=8", &admin, None).await;
    assert_eq!(r.json()["entries"].as_array().unwrap().len(), 2);
    assert_eq!(
        node.api("GET", "/api/audit?after=x", &admin, None)
            .await
            .status,
        400
    );
}

async fn raw_http(addr: std::net::SocketAddr, request: String) -> String {
    let mut s = tokio::net::TcpStream::connect(addr).await.unwrap();
    s.write_all(request.as_bytes()).await.unwrap();
    let mut out = Vec::new();
    s.read_to_end(&mut out).await.unwrap();
    String::from_utf8_lossy(&out).into_owned()
}

#[tokio::test]
async fn serves_on_a_real_port_and_shuts_down_gracefully() {
    let node = Node::sqlite().await;
    let a = node.org("Org A").await;
    let alice = node.user("alice", &a, Role::Analyst).await;
    let coll = node.collection("Shared", Access::All, Access::All).await;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let (tx, rx) = tokio::sync::oneshot::channel::<()>();
    let server = tokio::spawn(kopa_server::serve_listener(
        listener,
        node.store.clone(),
        common::config(),
        async move {
            let _ = rx.await;
        },
    ));

    let resp = raw_http(
        addr,
        "GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n".into(),
    )
    .await;
    assert!(resp.starts_with("HTTP/1.1 200"), "{resp}");
    let body = serde_json::to_string(&json!({"objects": [indicator(1, json!({}))]})).unwrap();
    let req = format!(
        "POST /kopa/collections/{coll}/objects/ HTTP/1.1\r\nHost: x\r\nConnection: close\r\nAuthorization: Bearer {alice}\r\nAccept: {TAXII}\r\nContent-Type: {TAXII}\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    );
    let resp = raw_http(addr, req).await;
    assert!(resp.starts_with("HTTP/1.1 202"), "{resp}");

    tx.send(()).unwrap();
    server.await.unwrap().unwrap();
    assert!(
        tokio::net::TcpStream::connect(addr).await.is_err(),
        "the listener is closed"
    );

    // The write was kept, and its audit entry names the client address.
    let entries = node.store.audit_entries(0, 10).await.unwrap();
    assert_eq!(entries.len(), 1);
    assert_eq!(entries[0].origin, "127.0.0.1");
    let page = node
        .store
        .objects(
            &kopa_core::Audience {
                org: a.id.clone(),
                user: node.store.user_by_name("alice").await.unwrap().id,
            }
            .into(),
            &coll,
            &kopa_store::ObjectFilter {
                added_after: None,
                after_seq: None,
                limit: 10,
                ids: vec![],
                types: vec![],
                versions: kopa_store::VersionMatch::last(),
                spec_versions: vec![],
            },
        )
        .await
        .unwrap();
    assert_eq!(page.objects.len(), 1);
}

#[tokio::test]
async fn config_is_checked() {
    for (cfg, needle) in [
        (
            kopa_server::ServerConfig {
                api_root: "a b".into(),
                ..Default::default()
            },
            "api_root",
        ),
        (
            kopa_server::ServerConfig {
                api_root: "api".into(),
                ..Default::default()
            },
            "collides",
        ),
        (
            kopa_server::ServerConfig {
                max_content_length: 10,
                ..Default::default()
            },
            "max_content_length",
        ),
    ] {
        let e = cfg.check().unwrap_err().to_string();
        assert!(e.contains(needle), "{e}");
    }
    assert!(kopa_server::ServerConfig::default().check().is_ok());
}
