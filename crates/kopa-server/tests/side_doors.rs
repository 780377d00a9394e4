//! Nothing leaks through side doors, on both backends: TAXII `next` cursors are sealed (they show
//! no sequence number and open only for the caller and collection they were issued to, after a
//! restart too), and a collection alias can never pass for an id.

mod common;

use common::{indicator, Node, PgDb};
use kopa_core::Role;
use kopa_store::{Access, NewCollection};
use serde_json::{json, Value};

fn ids(env: &Value) -> Vec<String> {
    env["objects"]
        .as_array()
        .map(|a| {
            a.iter()
                .map(|o| o["id"].as_str().unwrap().to_string())
                .collect()
        })
        .unwrap_or_default()
}

/// A TAXII 400 error resource whose description mentions `needle`.
fn assert_taxii_400(r: &common::Resp, needle: &str, what: &str) {
    assert_eq!(r.status, 400, "{what}: {}", r.text());
    assert_eq!(r.header("content-type"), Some(common::TAXII), "{what}");
    let e = r.json();
    assert_eq!(e["http_status"], "400", "{what}");
    assert!(e["title"].is_string(), "{what}");
    assert!(
        e["description"].as_str().unwrap().contains(needle),
        "{what}: {e}"
    );
}

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

async fn cursors_are_sealed(node: Node) {
    let a = node.org("Org A").await;
    let alice = node.user("alice", &a, Role::Analyst).await;
    let bob = node.user("bob", &a, Role::Analyst).await;
    let room = add_collection(&node, "Room", Some("room")).await;
    let other = add_collection(&node, "Other", None).await;
    let objs: Vec<Value> = (0..4).map(|n| indicator(n, json!({}))).collect();
    for coll in [&room, &other] {
        let r = node.post_envelope(coll, &alice, &objs).await;
        assert_eq!(r.json()["success_count"], 4, "{}", r.text());
    }
    let base = format!("/kopa/collections/{room}/objects/");
    let first = node.get(&format!("{base}?limit=1"), &alice).await.json();
    let next = first["next"].as_str().unwrap().to_string();
    let second = node
        .get(&format!("{base}?limit=1&next={next}"), &alice)
        .await;
    assert_eq!(second.status, 200, "{}", second.text());
    assert_eq!(
        ids(&second.json()),
        [format!("indicator--{}", common::uuid_n(1))]
    );
    // Another caller's cursor is refused with 400: bob reads the same collection, but not with
    // alice's cursor.
    let r = node.get(&format!("{base}?limit=1&next={next}"), &bob).await;
    assert_taxii_400(&r, "next", "bob replays alice's cursor");
    // Named by its alias, the collection is the same: the cursor works there too.
    let r = node
        .get(
            &format!("/kopa/collections/room/objects/?limit=1&next={next}"),
            &alice,
        )
        .await;
    assert_eq!(ids(&r.json()), ids(&second.json()));

    // Opaque: the same page asked again gets another token (it was the sequence number before,
    // the same each time), and each opens.
    let again = node.get(&format!("{base}?limit=1"), &alice).await.json();
    let next2 = again["next"].as_str().unwrap().to_string();
    assert_ne!(next2, next);
    let r = node
        .get(&format!("{base}?limit=1&next={next2}"), &alice)
        .await;
    assert_eq!(ids(&r.json()), ids(&second.json()));

    // Another collection's cursor, and a forged one are refused with 400.
    let r = node
        .get(
            &format!("/kopa/collections/{other}/objects/?limit=1&next={next}"),
            &alice,
        )
        .await;
    assert_taxii_400(&r, "next", "a cursor of another collection");
    // The old form was base64url("<seq>.<filters>"): the same with the sequence number set back
    // to 0 is what a forger would send.
    use base64::Engine;
    let b64 = base64::engine::general_purpose::URL_SAFE_NO_PAD;
    let decoded = String::from_utf8_lossy(&b64.decode(&next).unwrap()).into_owned();
    let tail = decoded.split_once('.').map_or(decoded.as_str(), |(_, t)| t);
    let forged = b64.encode(format!("0.{tail}"));
    let r = node
        .get(&format!("{base}?limit=1&next={forged}"), &alice)
        .await;
    assert_taxii_400(&r, "next", "a forged cursor");
    let mut altered = b64.decode(&next).unwrap();
    let last = altered.len() - 1;
    altered[last] ^= 0x40;
    let r = node
        .get(
            &format!("{base}?limit=1&next={}", b64.encode(&altered)),
            &alice,
        )
        .await;
    assert_taxii_400(&r, "next", "an altered cursor");

    // The manifest's and the versions' cursors are bound alike.
    let m = node
        .get(
            &format!("/kopa/collections/{room}/manifest/?limit=1"),
            &alice,
        )
        .await
        .json();
    let mnext = m["next"].as_str().unwrap().to_string();
    let r = node
        .get(
            &format!("/kopa/collections/{room}/manifest/?limit=1&next={mnext}"),
            &bob,
        )
        .await;
    assert_taxii_400(&r, "next", "bob replays alice's manifest cursor");

    // The key is the node's and kept in its store: a restarted server opens its cursors.
    let restarted = Node::over(node.store.clone(), None, common::config());
    let r = restarted
        .get(&format!("{base}?limit=1&next={next}"), &alice)
        .await;
    assert_eq!(ids(&r.json()), ids(&second.json()), "{}", r.text());
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

on_both_backends!(cursors_are_sealed, aliases_are_never_ids);
