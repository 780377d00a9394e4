//! Nothing leaks through side doors, on both backends: TAXII `next` cursors are sealed (they show
//! no sequence number and open only for the caller and collection they were issued to, after a
//! restart too), a collection alias can never pass for an id, and an export by alias is the export
//! by id, whose failure midway is never taken for a complete bundle.

#[macro_use]
mod common;

use axum::body::Body;
use common::{indicator, Node};
use http_body_util::BodyExt;
use kopa_core::Role;
use kopa_store::{Access, NewCollection};
use serde_json::{json, Value};
use tower::ServiceExt;

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

async fn export_by_alias(node: Node) {
    let a = node.org("Org A").await;
    let alice = node.user("alice", &a, Role::Analyst).await;
    let room = add_collection(&node, "Room", Some("room")).await;
    let objs: Vec<Value> = (0..3).map(|n| indicator(n, json!({}))).collect();
    node.post_envelope(&room, &alice, &objs).await;
    let by_id = node
        .api("GET", &format!("/api/export/{room}"), &alice, None)
        .await;
    assert_eq!(by_id.status, 200);
    let by_alias = node.api("GET", "/api/export/room", &alice, None).await;
    assert_eq!(by_alias.status, 200);
    let (i, a) = (by_id.json(), by_alias.json());
    assert_eq!(a["type"], "bundle");
    assert_eq!(ids(&a).len(), 3);
    assert_eq!(a["objects"], i["objects"]);
}

on_both_backends!(cursors_are_sealed, aliases_are_never_ids, export_by_alias);

/// An export whose store fails after the first page was sent: the body ends with an error, and
/// what came before it is no complete bundle (regression: nothing told a cut export from a whole).
#[tokio::test]
async fn an_export_failing_midway_ends_in_an_error() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let store = kopa_store::open(data.to_str().unwrap(), true)
        .await
        .unwrap();
    let cfg = kopa_server::ServerConfig {
        max_page_size: 1,
        ..common::config()
    };
    let node = Node::over(store, Some(dir), cfg);
    let a = node.org("Org A").await;
    let alice = node.user("alice", &a, Role::Analyst).await;
    let room = add_collection(&node, "Room", Some("room")).await;
    let objs: Vec<Value> = (0..3).map(|n| indicator(n, json!({}))).collect();
    node.post_envelope(&room, &alice, &objs).await;

    let req = axum::http::Request::get("/api/export/room")
        .header("authorization", format!("Bearer {alice}"))
        .body(Body::empty())
        .unwrap();
    let resp = node.app.clone().oneshot(req).await.unwrap();
    assert_eq!(resp.status(), 200);
    let mut body = resp.into_body();
    let first = body.frame().await.unwrap().unwrap().into_data().unwrap();
    let first = String::from_utf8(first.to_vec()).unwrap();
    assert!(first.starts_with("{\"type\":\"bundle\""), "{first}");
    // The store breaks between two pages.
    let conn = rusqlite::Connection::open(data.join("kopa.db")).unwrap();
    conn.execute_batch("ALTER TABLE objects RENAME TO objects_gone")
        .unwrap();
    let mut sent = first;
    loop {
        match body.frame().await {
            Some(Ok(f)) => sent.push_str(std::str::from_utf8(&f.into_data().unwrap()).unwrap()),
            Some(Err(_)) => break,
            None => panic!("the export ended as if complete: {sent}"),
        }
    }
    assert!(
        serde_json::from_str::<Value>(&sent).is_err(),
        "what was sent must not be a bundle: {sent}"
    );
}
