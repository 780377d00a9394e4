//! Input kept exactly or refused: names of organisations and users that hide characters or pass
//! for an existing name are refused.

mod common;

use common::{Node, PgDb};
use kopa_core::Role;
use serde_json::{json, Value};

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

macro_rules! on_both_backends {
    ($($name:ident),* $(,)?) => {$(
        mod $name {
            use super::*;

            #[tokio::test]
            async fn sqlite() {
                super::$name(Node::sqlite().await).await;
            }

            #[tokio::test]
            async fn postgres() {
                let Some(db) = PgDb::create("kopa_server_test").await else {
                    return;
                };
                let url = db.url.clone();
                let result = common::CatchUnwind(Box::pin(async move {
                    let store = kopa_store::open(&url, true).await.unwrap();
                    super::$name(Node::over(store, None, common::config())).await;
                }))
                .await;
                db.drop_db().await;
                if let Err(e) = result {
                    std::panic::resume_unwind(e);
                }
            }
        }
    )*};
}

on_both_backends!(names_that_pass_for_others_are_refused);
