//! Nothing leaks through side doors, on both backends: a collection alias can never pass for an id.

mod common;

use common::{Node, PgDb};
use kopa_core::Role;
use kopa_store::{Access, NewCollection};
use serde_json::json;

async fn add_collection(node: &Node, title: &str, alias: Option<&str>) -> String {
    node.store
        .add_collection(&NewCollection {
            id: None,
            title: title.into(),
            description: None,
            alias: alias.map(str::to_string),
            read: Access::All,
            write: Access::All,
        })
        .await
        .unwrap()
        .id
}

async fn aliases_are_never_ids(node: Node) {
    let home = node.org("Home").await;
    let admin = node.user("root", &home, Role::Admin).await;
    let first = add_collection(&node, "First", Some("first")).await;
    let body = |alias: &str| json!({"title": "T", "alias": alias, "read": "all", "write": "all"});
    for (alias, status, needle) in [
        ("0b9a5d0e-6a3e-4e59-9d8f-2f4b3c1a7e10", 400, "UUID"),
        (first.as_str(), 400, "UUID"),
        ("first", 409, "already the id or the alias"),
    ] {
        let r = node
            .api("POST", "/api/collections", &admin, Some(body(alias)))
            .await;
        assert_eq!(r.status, status, "{alias}: {}", r.text());
        assert!(
            r.json()["error"].as_str().unwrap().contains(needle),
            "{alias}: {}",
            r.text()
        );
    }
    let r = node
        .api("POST", "/api/collections", &admin, Some(body("second")))
        .await;
    assert_eq!(r.status, 201, "{}", r.text());
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

on_both_backends!(aliases_are_never_ids);
