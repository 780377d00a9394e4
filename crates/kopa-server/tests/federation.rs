//! Federation on the node side, end to end over the SQLite store: objects posted by users are signed
//! at the origin; objects of other origins are kept only when they verify; peers call with
//! `Kopa-Node` authorization, read as their export policy and push through `federation::receive`.

mod common;

use common::{indicator, unsigned, unsigned_all, uuid_n, Node};
use kopa_core::Role;
use kopa_federation::{sign, verify, KnownKeys, NodeKey, PROVENANCE_EXTENSION_ID};
use kopa_server::ServerConfig;
use kopa_store::{Access, NewPeer};
use serde_json::{json, Value};

const GREEN: &str = "marking-definition--bab4a63c-aed9-4cf5-a766-dfca5abac2bb";

fn objects_path(c: &str) -> String {
    format!("/kopa/collections/{c}/objects/")
}

/// Declare a peer holding `key` on `node`, exporting `policy`.
async fn declare_peer(node: &Node, name: &str, key: &NodeKey, policy: Value) {
    node.store
        .add_peer(&NewPeer {
            name: name.into(),
            node_id: key.node_id().to_string(),
            url: format!("https://{name}.example"),
            public_key: key.public_key().encode(),
            token: None,
            policy: policy.to_string(),
        })
        .await
        .unwrap();
}

fn own_keys(node: &Node) -> KnownKeys {
    [node.identity.public_key()].into_iter().collect()
}

#[tokio::test]
async fn posted_objects_are_signed_at_the_origin_and_verify() {
    let node = Node::sqlite_with(ServerConfig {
        max_content_length: 4 << 20,
        ..common::config()
    })
    .await;
    let a = node.org("Org A").await;
    let alice = node.user("alice", &a, Role::Analyst).await;
    let coll = node.collection("Shared", Access::All, Access::All).await;
    // Enough objects for the parallel path, one with other extensions to keep.
    let mut posted: Vec<Value> = (0..300).map(|n| indicator(n, json!({}))).collect();
    posted[7] = indicator(
        7,
        json!({"extensions": {"extension-definition--11111111-1111-4111-8111-111111111111": {
            "extension_type": "property-extension", "rank": 3}}}),
    );
    let r = node.post_envelope(&coll, &alice, &posted).await;
    assert_eq!(r.json()["success_count"], 300, "{}", r.text());

    let r = node
        .get(&format!("{}?limit=1000", objects_path(&coll)), &alice)
        .await;
    let served = r.json()["objects"].clone();
    assert_eq!(unsigned_all(&served), json!(posted));
    let known = own_keys(&node);
    for o in served.as_array().unwrap() {
        let p = verify(o, &known).unwrap_or_else(|e| panic!("{e}: {o}"));
        assert_eq!(&p.origin_node, node.identity.id());
        assert_eq!(p.origin_org, a.id.0);
    }
    // Another node's keys do not verify them.
    let other: KnownKeys = [NodeKey::from_seed([9; 32]).public_key()]
        .into_iter()
        .collect();
    assert!(verify(&served[0], &other).is_err());
    // Other extensions are kept beside the provenance.
    assert_eq!(
        served[7]["extensions"]["extension-definition--11111111-1111-4111-8111-111111111111"]
            ["rank"],
        3
    );
}

#[tokio::test]
async fn an_exact_repost_stays_one_version() {
    let node = Node::sqlite().await;
    let a = node.org("Org A").await;
    let alice = node.user("alice", &a, Role::Analyst).await;
    let alice2 = node.user("alice2", &a, Role::Analyst).await;
    let coll = node.collection("Shared", Access::All, Access::All).await;
    let obj = indicator(1, json!({}));
    for token in [&alice, &alice, &alice2] {
        let r = node
            .post_envelope(&coll, token, std::slice::from_ref(&obj))
            .await;
        assert_eq!(r.json()["success_count"], 1, "{}", r.text());
    }
    // Posting what was served (already signed by this node) is a duplicate too.
    let served = node.get(&objects_path(&coll), &alice).await.json()["objects"][0].clone();
    let r = node
        .post_envelope(&coll, &alice, std::slice::from_ref(&served))
        .await;
    assert_eq!(r.json()["success_count"], 1, "{}", r.text());
    let r = node
        .get(
            &format!(
                "{}{}/versions/",
                objects_path(&coll),
                obj["id"].as_str().unwrap()
            ),
            &alice,
        )
        .await;
    assert_eq!(
        r.json()["versions"].as_array().unwrap().len(),
        1,
        "{}",
        r.text()
    );
}

#[tokio::test]
async fn a_posted_object_of_another_origin_is_kept_only_when_it_verifies() {
    let node = Node::sqlite().await;
    let a = node.org("Org A").await;
    let alice = node.user("alice", &a, Role::Analyst).await;
    let coll = node.collection("Shared", Access::All, Access::All).await;
    let remote = NodeKey::from_seed([5; 32]);
    // Received objects keep their markings; unmarked ones would be narrowed to their (remote) owner.
    let green = || indicator(1, json!({"object_marking_refs": [GREEN]}));
    let theirs = sign(&green(), &remote, "remote-org").unwrap();
    let mut tampered = sign(&indicator(2, json!({})), &remote, "remote-org").unwrap();
    tampered["name"] = json!("changed after signing");

    // The remote node is not known here: refused, naming why.
    let r = node
        .post_envelope(&coll, &alice, std::slice::from_ref(&theirs))
        .await;
    let s = r.json();
    assert_eq!(s["failure_count"], 1, "{s}");
    let msg = s["failures"][0]["message"].as_str().unwrap();
    assert!(msg.contains("does not know"), "{msg}");

    // Once its key is declared, the object is stored as received: its origin's signature kept.
    declare_peer(&node, "remote", &remote, json!({})).await;
    let r = node
        .post_envelope(&coll, &alice, &[theirs.clone(), tampered])
        .await;
    let s = r.json();
    assert_eq!(s["success_count"], 1, "{s}");
    assert_eq!(s["failure_count"], 1, "{s}");
    assert_eq!(s["failures"][0]["id"], format!("indicator--{}", uuid_n(2)));
    assert!(
        s["failures"][0]["message"]
            .as_str()
            .unwrap()
            .contains("changed after signing"),
        "{s}"
    );
    let served = node.get(&objects_path(&coll), &alice).await.json()["objects"].clone();
    assert_eq!(served, json!([theirs]));
    let known: KnownKeys = [remote.public_key()].into_iter().collect();
    let p = verify(&served[0], &known).unwrap();
    assert_eq!(p.origin_node, remote.node_id());
    assert_eq!(p.origin_org, "remote-org");
    assert!(served[0]["extensions"][PROVENANCE_EXTENSION_ID]["signature"].is_string());
    assert_eq!(unsigned(&served[0]), green());
}
