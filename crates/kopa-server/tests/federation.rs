//! Federation on the node side, end to end over the SQLite store: objects posted by users are signed
//! at the origin; objects of other origins are kept only when they verify; peers call with
//! `Kopa-Node` authorization, read as their export policy and push through `federation::receive`.

mod common;

use std::collections::BTreeSet;

use common::{id_set, indicator, unsigned, unsigned_all, uuid_n, Auth, Node, PgDb};
use kopa_core::{OrgId, PeerAudience, Role, Stewardship, Tlp, UserId, AUDIENCE_EXTENSION_ID};
use kopa_federation::request_auth::new_nonce;
use kopa_federation::{sign, sign_request, verify, KnownKeys, NodeKey, PROVENANCE_EXTENSION_ID};
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

/// `Authorization` value with which `caller` calls `node` with an empty body (now, unless `at` is
/// given), with a fresh nonce.
fn node_auth(caller: &NodeKey, node: &Node, method: &str, path: &str, at: Option<i64>) -> String {
    node_auth_body(caller, node, method, path, at, b"")
}

/// The same for a request with `body`.
fn node_auth_body(
    caller: &NodeKey,
    node: &Node,
    method: &str,
    path: &str,
    at: Option<i64>,
    body: &[u8],
) -> String {
    sign_request(
        caller,
        node.identity.id(),
        method,
        path,
        at.unwrap_or_else(now_unix),
        &new_nonce(),
        body,
    )
}

/// A GET by peer `caller`.
async fn peer_get(node: &Node, caller: &NodeKey, path: &str) -> common::Resp {
    let h = node_auth(caller, node, "GET", path, None);
    node.call("GET", path, Auth::None, &[("authorization", &h)], None)
        .await
}

/// A TAXII POST of an envelope by peer `caller`.
async fn peer_post(node: &Node, caller: &NodeKey, coll: &str, objects: &[Value]) -> common::Resp {
    let path = objects_path(coll);
    let body = serde_json::to_vec(&json!({ "objects": objects })).unwrap();
    let h = node_auth_body(caller, node, "POST", &path, None, &body);
    node.call(
        "POST",
        &path,
        Auth::None,
        &[("authorization", &h), ("content-type", common::TAXII)],
        Some(body),
    )
    .await
}

fn malware(n: usize, extra: Value) -> Value {
    let mut v = json!({
        "type": "malware", "spec_version": "2.1",
        "id": format!("malware--{}", uuid_n(n)),
        "created": "2024-01-01T00:00:00.000Z", "modified": "2024-01-01T00:00:00.000Z",
        "name": format!("malware {n}"), "is_family": false
    });
    if let (Value::Object(m), Value::Object(e)) = (&mut v, extra) {
        m.extend(e);
    }
    v
}

fn big() -> ServerConfig {
    ServerConfig {
        max_content_length: 4 << 20,
        ..common::config()
    }
}

#[tokio::test]
async fn a_peer_reads_exactly_what_its_policy_and_the_markings_allow_on_sqlite() {
    peer_reads(Node::sqlite_with(big()).await).await;
}

#[tokio::test]
async fn a_peer_reads_exactly_what_its_policy_and_the_markings_allow_on_postgres() {
    let Some(db) = PgDb::create("kopa_server_test").await else {
        return;
    };
    let url = db.url.clone();
    let result = common::CatchUnwind(Box::pin(async move {
        let store = kopa_store::open(&url, true).await.unwrap();
        assert_eq!(store.backend(), "postgres");
        peer_reads(Node::over(store, None, big())).await;
    }))
    .await;
    db.drop_db().await;
    if let Err(e) = result {
        std::panic::resume_unwind(e);
    }
}

/// Objects of every label and audience in three collections; three peers with different policies
/// (and the organisations and users they host) read each collection over HTTP: exactly what the
/// peer rule (`PeerAudience::reference_visible`) allows.
async fn peer_reads(node: Node) {
    let (p_key, x_key, q_key) = (
        NodeKey::from_seed([11; 32]),
        NodeKey::from_seed([12; 32]),
        NodeKey::from_seed([13; 32]),
    );
    let a = node.org("Org A").await;
    node.org("Org B").await;
    let org_p = node
        .store
        .add_remote_org("Org P", p_key.node_id().as_str())
        .await
        .unwrap();
    let org_x = node
        .store
        .add_remote_org("Org X", x_key.node_id().as_str())
        .await
        .unwrap();
    node.store
        .add_user("pat", &org_p.id, Role::Reader)
        .await
        .unwrap();
    node.store
        .add_user("xena", &org_x.id, Role::Reader)
        .await
        .unwrap();
    let alice = node.user("alice", &a, Role::Analyst).await;
    let colls = [
        node.collection("c0", Access::All, Access::All).await,
        node.collection("c1", Access::All, Access::All).await,
        node.collection("c2", Access::All, Access::All).await,
    ];
    // P: c0 and c1, everything up to RED. X: c0, indicators up to AMBER. Q: nothing.
    let policies = [
        (
            "p",
            &p_key,
            PeerAudience {
                node: p_key.node_id().to_string(),
                collections: vec![colls[0].clone(), colls[1].clone()],
                max_tlp: Tlp::Red,
                object_types: vec![],
            },
            vec!["Org P"],
            vec!["pat"],
        ),
        (
            "x",
            &x_key,
            PeerAudience {
                node: x_key.node_id().to_string(),
                collections: vec![colls[0].clone()],
                max_tlp: Tlp::Amber,
                object_types: vec!["indicator".into()],
            },
            vec!["Org X"],
            vec!["xena"],
        ),
        (
            "q",
            &q_key,
            PeerAudience {
                node: q_key.node_id().to_string(),
                collections: vec![],
                max_tlp: Tlp::Red,
                object_types: vec![],
            },
            vec![],
            vec![],
        ),
    ];
    for (name, key, pol, _, _) in &policies {
        declare_peer(
            &node,
            name,
            key,
            json!({"collections": pol.collections, "max_tlp": pol.max_tlp,
                   "object_types": pol.object_types}),
        )
        .await;
    }

    // Every label (and none) crossed with audiences naming local, P's and X's organisations and
    // users, as indicators and malware, in every collection.
    let labels = [
        None,
        Some(Tlp::Clear),
        Some(Tlp::Green),
        Some(Tlp::Amber),
        Some(Tlp::AmberStrict),
        Some(Tlp::Red),
    ];
    let audiences: [(&[&str], &[&str]); 6] = [
        (&[], &[]),
        (&["Org B"], &[]),
        (&["Org P"], &[]),
        (&["Org X"], &["pat"]),
        (&[], &["xena"]),
        (&["Org B", "Org P"], &["xena"]),
    ];
    // (collection, id, type, stewardship, origin)
    let mut written: Vec<(usize, String, &str, Stewardship, Option<String>)> = Vec::new();
    let mut n = 0;
    for (ci, coll) in colls.iter().enumerate() {
        let mut envelope = Vec::new();
        for label in labels {
            for (orgs, users) in audiences {
                n += 1;
                let mut extra = serde_json::Map::new();
                if let Some(t) = label {
                    extra.insert("object_marking_refs".into(), json!([t.marking_id()]));
                }
                if !orgs.is_empty() || !users.is_empty() {
                    extra.insert(
                        "extensions".into(),
                        json!({AUDIENCE_EXTENSION_ID: {"extension_type": "property-extension",
                               "organisations": orgs, "recipients": users}}),
                    );
                }
                let (obj, ty) = if n % 3 == 0 {
                    (malware(n, Value::Object(extra)), "malware")
                } else {
                    (indicator(n, Value::Object(extra)), "indicator")
                };
                written.push((
                    ci,
                    obj["id"].as_str().unwrap().to_string(),
                    ty,
                    Stewardship {
                        owner_org: OrgId("Org A".into()),
                        author: UserId("alice".into()),
                        tlp: label.unwrap_or(Tlp::Amber),
                        orgs: orgs.iter().map(|o| OrgId(o.to_string())).collect(),
                        users: users.iter().map(|u| UserId(u.to_string())).collect(),
                        defaulted: label.is_none(),
                    },
                    None,
                ));
                envelope.push(obj);
            }
        }
        let r = node.post_envelope(coll, &alice, &envelope).await;
        assert_eq!(r.json()["failure_count"], 0, "{}", r.text());
    }
    // An object P originated and pushed here: it never goes back to P, and X may read it.
    let from_p = sign(
        &indicator(9000, json!({"object_marking_refs": [GREEN]})),
        &p_key,
        "org-of-p",
    )
    .unwrap();
    let r = peer_post(&node, &p_key, &colls[0], std::slice::from_ref(&from_p)).await;
    assert_eq!(r.status, 202, "{}", r.text());
    assert_eq!(r.json()["success_count"], 1, "{}", r.text());
    written.push((
        0,
        from_p["id"].as_str().unwrap().to_string(),
        "indicator",
        Stewardship {
            owner_org: OrgId("org-of-p".into()),
            author: UserId(p_key.node_id().to_string()),
            tlp: Tlp::Green,
            orgs: vec![],
            users: vec![],
            defaulted: false,
        },
        Some(p_key.node_id().to_string()),
    ));

    for (name, key, pol, host_orgs, host_users) in &policies {
        let hosts_orgs: Vec<OrgId> = host_orgs.iter().map(|o| OrgId(o.to_string())).collect();
        let hosts_users: Vec<UserId> = host_users.iter().map(|u| UserId(u.to_string())).collect();
        // The collections list: exactly the policy's collections, each readable and writable.
        let r = peer_get(&node, key, "/kopa/collections/").await;
        assert_eq!(r.status, 200, "{name}: {}", r.text());
        let listed: BTreeSet<String> = r.json()["collections"]
            .as_array()
            .into_iter()
            .flatten()
            .map(|c| {
                assert_eq!(c["can_read"], true, "{name}");
                assert_eq!(c["can_write"], true, "{name}");
                c["id"].as_str().unwrap().to_string()
            })
            .collect();
        let want: BTreeSet<String> = colls
            .iter()
            .filter(|c| pol.collections.contains(c))
            .cloned()
            .collect();
        assert_eq!(listed, want, "{name}");
        for (ci, coll) in colls.iter().enumerate() {
            let r = peer_get(&node, key, &format!("{}?limit=1000", objects_path(coll))).await;
            let want: BTreeSet<String> = written
                .iter()
                .filter(|(c, id, ty, s, origin)| {
                    *c == ci
                        && pol.reference_visible(
                            coll,
                            ty,
                            s,
                            origin.as_deref(),
                            &hosts_orgs,
                            &hosts_users,
                        )
                        && !id.is_empty()
                })
                .map(|w| w.1.clone())
                .collect();
            if pol.collections.contains(coll) {
                assert_eq!(r.status, 200, "{name} c{ci}: {}", r.text());
                assert_eq!(id_set(&r.json()), want, "{name} reads c{ci}");
            } else {
                // Outside its policy a collection does not exist for the peer.
                assert_eq!(r.status, 404, "{name} c{ci}: {}", r.text());
                assert!(want.is_empty());
            }
        }
    }
    // The rule is not vacuous here: P reads AMBER+STRICT and RED addressed to its org and user,
    // X reads the object P originated, and nobody reads everything.
    let p_reads = peer_get(
        &node,
        &p_key,
        &format!("{}?limit=1000", objects_path(&colls[0])),
    )
    .await
    .json();
    let tlps: BTreeSet<String> = p_reads["objects"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|o| o["object_marking_refs"][0].as_str().map(str::to_string))
        .collect();
    assert!(tlps.contains(Tlp::Red.marking_id()) && tlps.contains(Tlp::AmberStrict.marking_id()));
    let x_reads = peer_get(
        &node,
        &x_key,
        &format!("{}?limit=1000", objects_path(&colls[0])),
    )
    .await
    .json();
    assert!(id_set(&x_reads).contains(from_p["id"].as_str().unwrap()));
    assert!(!id_set(&p_reads).contains(from_p["id"].as_str().unwrap()));
}

#[tokio::test]
async fn a_peers_post_stores_what_verifies_and_rejects_the_rest_by_reason() {
    let node = Node::sqlite().await;
    let a = node.org("Org A").await;
    let b = node.org("Org B").await;
    let alice = node.user("alice", &a, Role::Analyst).await;
    let bob = node.user("bob", &b, Role::Analyst).await;
    let coll = node.collection("Room", Access::All, Access::All).await;
    let (p_key, origin_key, stranger) = (
        NodeKey::from_seed([21; 32]),
        NodeKey::from_seed([22; 32]),
        NodeKey::from_seed([23; 32]),
    );
    declare_peer(&node, "p", &p_key, json!({"collections": [coll]})).await;
    // A second declared node, the origin of objects P relays.
    declare_peer(&node, "origin", &origin_key, json!({})).await;

    let green = |n| indicator(n, json!({"object_marking_refs": [GREEN]}));
    let relayed = sign(&green(1), &origin_key, "org-o").unwrap();
    let by_p = sign(&green(2), &p_key, "org-p").unwrap();
    let mut tampered = sign(&green(3), &origin_key, "org-o").unwrap();
    tampered["pattern"] = json!("[ipv4-addr:value = '198.51.100.99']");
    let unsigned_obj = green(4);
    let unknown = sign(&green(5), &stranger, "org-s").unwrap();
    // This node's own object, come back.
    let r = node
        .post_envelope(&coll, &alice, std::slice::from_ref(&green(6)))
        .await;
    assert_eq!(r.json()["success_count"], 1);
    let own = node.get(&objects_path(&coll), &alice).await.json()["objects"][0].clone();
    let invalid = sign(
        &json!({"type": "indicator", "spec_version": "2.1", "id": format!("indicator--{}", uuid_n(7))}),
        &origin_key,
        "org-o",
    )
    .unwrap();
    // Received objects never widen: unmarked, addressed to Org B, addressed to nobody known here.
    let unmarked = sign(&indicator(8, json!({})), &origin_key, "org-o").unwrap();
    let aud = |orgs: &[&str]| {
        json!({"object_marking_refs": [Tlp::Amber.marking_id()],
               "extensions": {AUDIENCE_EXTENSION_ID: {"extension_type": "property-extension",
                              "organisations": orgs}}})
    };
    // The origin qualifies the names it resolved: this node's Org B is named by this node's id.
    let qualified = |n: usize, node: &str| {
        let mut o = indicator(n, aud(&["Org B"]));
        o["extensions"][AUDIENCE_EXTENSION_ID]["organisation_refs"] =
            json!([{"node": node, "name": "Org B"}]);
        sign(&o, &origin_key, "org-o").unwrap()
    };
    let this_node = node.identity.id().to_string();
    let to_b = qualified(9, &this_node);
    // The origin's own "Org B" (same name, another node): never this node's Org B.
    let to_origins_b = qualified(11, origin_key.node_id().as_str());
    // Names without references are the origin's names: not this node's Org B either.
    let to_b_bare = sign(&indicator(12, aud(&["Org B"])), &origin_key, "org-o").unwrap();
    let to_nowhere = sign(&indicator(10, aud(&["Nowhere"])), &origin_key, "org-o").unwrap();

    let r = peer_post(
        &node,
        &p_key,
        &coll,
        &[
            relayed.clone(),
            by_p.clone(),
            tampered,
            unsigned_obj,
            unknown,
            own,
            invalid,
            unmarked.clone(),
            to_b.clone(),
            to_nowhere.clone(),
            to_origins_b.clone(),
            to_b_bare.clone(),
        ],
    )
    .await;
    assert_eq!(r.status, 202, "{}", r.text());
    let s = r.json();
    assert_eq!(s["success_count"], 8, "{s}");
    assert_eq!(s["failure_count"], 4, "{s}");
    let failed: BTreeSet<String> = s["failures"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["id"].as_str().unwrap().to_string())
        .collect();
    let want_failed: BTreeSet<String> = [3, 4, 5, 7]
        .iter()
        .map(|n| format!("indicator--{}", uuid_n(*n)))
        .collect();
    assert_eq!(failed, want_failed);

    // The status is readable by the peer that posted, not by another peer or the node's users.
    let status_path = format!("/kopa/status/{}/", s["id"].as_str().unwrap());
    assert_eq!(peer_get(&node, &p_key, &status_path).await.json(), s);
    assert_eq!(peer_get(&node, &origin_key, &status_path).await.status, 404);
    assert_eq!(node.get(&status_path, &alice).await.status, 404);

    // Origin and the delivering peer are recorded.
    let routes = node
        .store
        .object_routes(&[
            relayed["id"].as_str().unwrap().to_string(),
            by_p["id"].as_str().unwrap().to_string(),
            format!("indicator--{}", uuid_n(6)),
        ])
        .await
        .unwrap();
    let p_id = Some(p_key.node_id().to_string());
    let route = |n: usize| {
        routes
            .iter()
            .find(|r| r.id == format!("indicator--{}", uuid_n(n)))
            .map(|r| (r.origin.clone(), r.via.clone()))
            .unwrap()
    };
    assert_eq!(
        route(1),
        (Some(origin_key.node_id().to_string()), p_id.clone())
    );
    assert_eq!(route(2), (p_id.clone(), p_id));
    assert_eq!(route(6), (None, None));

    // Local readers: green ones for everyone; the unmarked one for nobody here (narrowed to its
    // remote owner); the one addressed to Org B for B only; the one addressed to an unknown
    // organisation for nobody.
    let alice_sees = id_set(&node.get(&objects_path(&coll), &alice).await.json());
    let bob_sees = id_set(&node.get(&objects_path(&coll), &bob).await.json());
    let idn = |v: &Value| v["id"].as_str().unwrap().to_string();
    for o in [&relayed, &by_p] {
        assert!(alice_sees.contains(&idn(o)) && bob_sees.contains(&idn(o)));
    }
    assert!(!alice_sees.contains(&idn(&unmarked)) && !bob_sees.contains(&idn(&unmarked)));
    assert!(bob_sees.contains(&idn(&to_b)) && !alice_sees.contains(&idn(&to_b)));
    assert!(!alice_sees.contains(&idn(&to_nowhere)) && !bob_sees.contains(&idn(&to_nowhere)));
    for o in [&to_origins_b, &to_b_bare] {
        assert!(!alice_sees.contains(&idn(o)) && !bob_sees.contains(&idn(o)));
    }
    // Served exactly as signed at the origin.
    let served = node
        .get(
            &format!("{}{}/", objects_path(&coll), idn(&relayed)),
            &alice,
        )
        .await
        .json();
    assert_eq!(served["objects"][0], relayed);

    // Metrics count by peer and reason.
    let m = node.state.metrics().render();
    for line in [
        "kopa_peer_objects_received_total{peer=\"p\"} 7",
        "kopa_peer_objects_rejected_total{peer=\"p\",reason=\"tampered\"} 1",
        "kopa_peer_objects_rejected_total{peer=\"p\",reason=\"unsigned\"} 1",
        "kopa_peer_objects_rejected_total{peer=\"p\",reason=\"unknown_node\"} 1",
        "kopa_peer_objects_rejected_total{peer=\"p\",reason=\"invalid\"} 1",
        "kopa_signatures_verified_total 11",
    ] {
        assert!(m.contains(line), "{line} not in:\n{m}");
    }
    // A repeated push is all duplicates: nothing new stored.
    let r = peer_post(&node, &p_key, &coll, std::slice::from_ref(&relayed)).await;
    assert_eq!(r.json()["success_count"], 1);
    let m = node.state.metrics().render();
    assert!(
        m.contains("kopa_peer_objects_received_total{peer=\"p\"} 7"),
        "{m}"
    );
    // And it was audited as the peer's act.
    let entries = node.store.audit_entries(0, 1000).await.unwrap();
    assert!(entries
        .iter()
        .any(|e| e.actor == "peer:p" && e.action == "objects.receive"));
}

/// Objects received from a peer are labelled by the rule of objects posted here: the narrowest of
/// all their TLP signs, the custom marking definitions they name resolved against the envelope and
/// against the definitions this node already holds.
#[tokio::test]
async fn received_objects_take_the_narrowest_of_their_tlp_signs() {
    let node = Node::sqlite().await;
    let a = node.org("Org A").await;
    let alice = node.user("alice", &a, Role::Analyst).await;
    let coll = node.collection("Room", Access::All, Access::All).await;
    let p_key = NodeKey::from_seed([31; 32]);
    declare_peer(&node, "p", &p_key, json!({"collections": [coll]})).await;
    let custom = "marking-definition--2b3c4d5e-6f70-4a1b-8c2d-3e4f5a6b7c8d";
    let definition = json!({
        "type": "marking-definition", "spec_version": "2.1", "id": custom,
        "created": "2024-01-01T00:00:00.000Z",
        "extensions": {kopa_stix::TLP2_EXTENSION_ID: {
            "extension_type": "property-extension", "tlp_2_0": "red"}}
    });
    let red_upper = "marking-definition--E828B379-4E03-4974-9AC4-E53A884C97C1";
    let signed = |v: Value| sign(&v, &p_key, "org-p").unwrap();
    let red_signs = [
        json!({"object_marking_refs": [GREEN, custom]}),
        json!({"object_marking_refs": [GREEN], "labels": ["tlp:red"]}),
        json!({"object_marking_refs": [GREEN],
               "granular_markings": [{"marking_ref": red_upper, "selectors": ["name"]}]}),
    ];
    let mut objects: Vec<Value> = red_signs
        .iter()
        .enumerate()
        .map(|(n, extra)| signed(indicator(n + 1, extra.clone())))
        .collect();
    objects.push(signed(definition));
    let control = signed(indicator(9, json!({"object_marking_refs": [GREEN]})));
    objects.push(control.clone());
    let r = peer_post(&node, &p_key, &coll, &objects).await;
    assert_eq!(r.json()["success_count"], 5, "{}", r.text());
    // A later push names the definition stored by the first.
    let later = signed(indicator(
        4,
        json!({"object_marking_refs": [GREEN, custom]}),
    ));
    let r = peer_post(&node, &p_key, &coll, std::slice::from_ref(&later)).await;
    assert_eq!(r.json()["success_count"], 1, "{}", r.text());

    let alice_sees = id_set(&node.get(&objects_path(&coll), &alice).await.json());
    assert_eq!(
        alice_sees,
        BTreeSet::from([control["id"].as_str().unwrap().to_string()]),
        "only the GREEN control reaches local readers: the rest, and the definition, are TLP:RED"
    );
}

#[tokio::test]
async fn kopa_node_authorization_is_refused_unless_a_declared_peer_signed_this_request_now() {
    let node = Node::sqlite().await;
    let a = node.org("Org A").await;
    let alice = node.user("alice", &a, Role::Analyst).await;
    let admin = node.user("root", &a, Role::Admin).await;
    let coll = node.collection("Room", Access::All, Access::All).await;
    let peer = NodeKey::from_seed([31; 32]);
    let stranger = NodeKey::from_seed([32; 32]);
    declare_peer(&node, "p", &peer, json!({"collections": [coll]})).await;
    let path = objects_path(&coll);
    let call = |h: String, method: &'static str, path: String| {
        let node = &node;
        async move {
            node.call(method, &path, Auth::None, &[("authorization", &h)], None)
                .await
        }
    };
    // The declared peer, now: accepted.
    assert_eq!(peer_get(&node, &peer, &path).await.status, 200);
    // An undeclared node (a user cannot become a peer by signing with a key of its own).
    let r = call(
        node_auth(&stranger, &node, "GET", &path, None),
        "GET",
        path.clone(),
    )
    .await;
    assert_eq!(r.status, 401, "{}", r.text());
    assert!(r.text().contains("not a declared peer"), "{}", r.text());
    // Stale, and from the future.
    for skew in [-301, 301] {
        let h = node_auth(&peer, &node, "GET", &path, Some(now_unix() + skew));
        assert_eq!(
            call(h, "GET", path.clone()).await.status,
            401,
            "skew {skew}"
        );
    }
    // Signed for another node, another path, another method.
    let other_target = sign_request(
        &peer,
        &NodeKey::from_seed([33; 32]).node_id(),
        "GET",
        &path,
        now_unix(),
        &new_nonce(),
        b"",
    );
    assert_eq!(call(other_target, "GET", path.clone()).await.status, 401);
    let h = node_auth(&peer, &node, "GET", &path, None);
    assert_eq!(call(h, "GET", format!("{path}?limit=1")).await.status, 401);
    let h = node_auth(&peer, &node, "GET", "/kopa/collections/", None);
    assert_eq!(call(h, "GET", path.clone()).await.status, 401);
    // A captured request replayed as it is: refused (each nonce is accepted once).
    let h = node_auth(&peer, &node, "GET", &path, None);
    assert_eq!(call(h.clone(), "GET", path.clone()).await.status, 200);
    let r = call(h, "GET", path.clone()).await;
    assert_eq!(r.status, 401, "{}", r.text());
    assert!(r.text().contains("replay"), "{}", r.text());
    // A captured POST sent with another body: refused, nothing stored.
    let signed_body = serde_json::to_vec(&json!({"objects": []})).unwrap();
    let h = node_auth_body(&peer, &node, "POST", &path, None, &signed_body);
    let other_body = serde_json::to_vec(&json!({"objects": [indicator(77, json!({}))]})).unwrap();
    let r = node
        .call(
            "POST",
            &path,
            Auth::None,
            &[("authorization", &h), ("content-type", common::TAXII)],
            Some(other_body),
        )
        .await;
    assert_eq!(r.status, 401, "{}", r.text());
    assert!(r.text().contains("not the one signed"), "{}", r.text());
    // A GET whose signature claims a body: refused.
    let h = node_auth_body(&peer, &node, "GET", &path, None, b"x");
    assert_eq!(call(h, "GET", path.clone()).await.status, 401);
    // A peer may not delete, nor use the REST API.
    let one = format!("{path}indicator--{}/", uuid_n(1));
    let h = node_auth(&peer, &node, "DELETE", &one, None);
    assert_eq!(call(h, "DELETE", one).await.status, 403);
    let h = node_auth(&peer, &node, "GET", "/api/peers", None);
    let r = node
        .call(
            "GET",
            "/api/peers",
            Auth::None,
            &[("authorization", &h), ("accept", "application/json")],
            None,
        )
        .await;
    assert_eq!(r.status, 403, "{}", r.text());
    // Users are unaffected.
    assert_eq!(node.get(&path, &alice).await.status, 200);
    assert_eq!(
        node.api("GET", "/api/peers", &admin, None).await.status,
        200
    );

    // A server without a node identity accepts no Kopa-Node call at all.
    let plain = kopa_server::app(kopa_server::AppState::new(
        node.store.clone(),
        common::config(),
    ));
    let req = axum::http::Request::get(&path)
        .header("accept", common::TAXII)
        .header("authorization", node_auth(&peer, &node, "GET", &path, None))
        .body(axum::body::Body::empty())
        .unwrap();
    let resp = tower::ServiceExt::oneshot(plain, req).await.unwrap();
    assert_eq!(resp.status(), 401);
}

#[tokio::test]
async fn objects_pages_say_how_many_remain_when_asked() {
    let node = Node::sqlite().await;
    let a = node.org("Org A").await;
    let alice = node.user("alice", &a, Role::Analyst).await;
    let coll = node.collection("Room", Access::All, Access::All).await;
    let peer = NodeKey::from_seed([41; 32]);
    declare_peer(&node, "p", &peer, json!({"collections": [coll]})).await;
    let objs: Vec<Value> = (0..5)
        .map(|n| {
            indicator(
                n,
                json!({"object_marking_refs": [if n < 3 { GREEN } else { Tlp::Red.marking_id() }]}),
            )
        })
        .collect();
    node.post_envelope(&coll, &alice, &objs).await;
    let ask = [("x-kopa-count-remaining", "1")];
    let page = |path: String, token: String| {
        let node = &node;
        async move {
            node.call("GET", &path, Auth::Bearer(&token), &ask, None)
                .await
        }
    };
    let base = objects_path(&coll);
    let r = page(format!("{base}?limit=2"), alice.clone()).await;
    assert_eq!(r.header("x-kopa-remaining"), Some("3"));
    let next = r.json()["next"].as_str().unwrap().to_string();
    let r = page(format!("{base}?limit=2&next={next}"), alice.clone()).await;
    assert_eq!(r.header("x-kopa-remaining"), Some("1"));
    let r = page(format!("{base}?limit=10"), alice.clone()).await;
    assert_eq!(r.header("x-kopa-remaining"), Some("0"));
    // Only when asked.
    assert_eq!(
        node.get(&format!("{base}?limit=2"), &alice)
            .await
            .header("x-kopa-remaining"),
        None
    );
    // For a peer, what its policy lets it read (the RED ones are not for it).
    let path = format!("{base}?limit=1");
    let h = node_auth(&peer, &node, "GET", &path, None);
    let r = node
        .call(
            "GET",
            &path,
            Auth::None,
            &[("authorization", &h), ("x-kopa-count-remaining", "1")],
            None,
        )
        .await;
    assert_eq!(r.header("x-kopa-remaining"), Some("2"), "{}", r.text());
}

#[tokio::test]
async fn administrators_list_peers_with_their_sync_status() {
    let node = Node::sqlite().await;
    let a = node.org("Org A").await;
    let admin = node.user("root", &a, Role::Admin).await;
    let alice = node.user("alice", &a, Role::Analyst).await;
    let peer = NodeKey::from_seed([51; 32]);
    node.store
        .add_peer(&NewPeer {
            name: "p".into(),
            node_id: peer.node_id().to_string(),
            url: "https://p.example".into(),
            public_key: peer.public_key().encode(),
            token: Some("secret-token-of-p".into()),
            policy: json!({"collections": [], "max_tlp": "TLP:GREEN"}).to_string(),
        })
        .await
        .unwrap();
    let quiet = NodeKey::from_seed([52; 32]);
    declare_peer(&node, "quiet", &quiet, json!({})).await;
    node.store
        .set_peer_status(
            "p",
            &json!({"lag_objects": 7, "lag_seconds": 12, "received": 40,
                    "rejected": {"tampered": 2}, "pushed": 3}),
        )
        .await
        .unwrap();
    node.store
        .record_peer_sync("p", node.state.now(), Some("connection refused"))
        .await
        .unwrap();

    let r = node.api("GET", "/api/peers", &admin, None).await;
    assert_eq!(r.status, 200, "{}", r.text());
    assert!(!r.text().contains("secret-token-of-p"));
    let peers = r.json()["peers"].as_array().unwrap().clone();
    assert_eq!(peers.len(), 2);
    let p = peers.iter().find(|p| p["name"] == "p").unwrap();
    assert_eq!(p["node_id"], peer.node_id().as_str());
    assert_eq!(p["url"], "https://p.example");
    assert_eq!(p["token_set"], true);
    assert_eq!(p["push"], false);
    assert_eq!(p["policy"]["max_tlp"], "TLP:GREEN");
    assert_eq!(
        (p["lag_objects"].clone(), p["lag_seconds"].clone()),
        (json!(7), json!(12))
    );
    assert_eq!(p["received"], 40);
    assert_eq!(p["rejected"], json!({"tampered": 2}));
    assert_eq!(p["last_error"], "connection refused");
    assert_eq!(p["error_count"], 1);
    assert!(p["last_error_at"].is_string() && p["last_sync_at"].is_null());
    // A peer that never synced shows zeros, not missing fields.
    let q = peers.iter().find(|p| p["name"] == "quiet").unwrap();
    assert_eq!(
        (q["lag_objects"].clone(), q["received"].clone()),
        (json!(0), json!(0))
    );
    assert_eq!(q["rejected"], json!({}));
    assert!(q["status"].is_null());
    // Administrators only.
    assert_eq!(
        node.api("GET", "/api/peers", &alice, None).await.status,
        403
    );
}

#[tokio::test]
async fn the_sync_loops_figures_show_in_metrics() {
    let node = Node::sqlite().await;
    let m = node.state.metrics();
    m.peer_synced("p", 1_700_000_000.0);
    m.peer_lag("p", 12, 3.5);
    m.peer_sync_error("p");
    m.peer_sync_error("p");
    let report = kopa_ingest::ReceiveReport {
        stored: 4,
        duplicates: 1,
        own: 0,
        rejected: vec![kopa_ingest::Rejected {
            id: "indicator--x".into(),
            reason: "tampered",
            message: "changed".into(),
        }],
        verified: 5,
    };
    m.clone().peer_received("p", &report);
    let r = node
        .call(
            "GET",
            "/metrics",
            Auth::None,
            &[("accept", "text/plain")],
            None,
        )
        .await;
    let text = r.text();
    for line in [
        "kopa_peer_last_sync_timestamp_seconds{peer=\"p\"} 1700000000",
        "kopa_peer_lag_objects{peer=\"p\"} 12",
        "kopa_peer_lag_seconds{peer=\"p\"} 3.5",
        "kopa_peer_sync_errors_total{peer=\"p\"} 2",
        "kopa_peer_objects_received_total{peer=\"p\"} 4",
        "kopa_peer_objects_rejected_total{peer=\"p\",reason=\"tampered\"} 1",
        "kopa_signatures_verified_total 5",
    ] {
        assert!(text.contains(line), "{line} not in:\n{text}");
    }
}

#[tokio::test]
async fn a_peer_declared_while_the_server_runs_is_accepted_without_a_restart() {
    let node = Node::sqlite().await;
    let coll = node.collection("Room", Access::All, Access::All).await;
    let first = NodeKey::from_seed([61; 32]);
    let later = NodeKey::from_seed([62; 32]);
    declare_peer(&node, "first", &first, json!({"collections": [coll]})).await;
    let path = objects_path(&coll);
    // The peers are now cached, without `later`.
    assert_eq!(peer_get(&node, &first, &path).await.status, 200);
    assert_eq!(peer_get(&node, &later, &path).await.status, 401);
    declare_peer(&node, "later", &later, json!({"collections": [coll]})).await;
    // An unknown caller reloads the peers, at most once a second.
    tokio::time::sleep(std::time::Duration::from_millis(1100)).await;
    assert_eq!(peer_get(&node, &later, &path).await.status, 200);
}

/// Indicator `n`, TLP:GREEN, signed by `key` as originated by its organisation `org`.
fn green_signed(n: usize, key: &NodeKey, org: &str) -> Value {
    sign(
        &indicator(n, json!({"object_marking_refs": [GREEN]})),
        key,
        org,
    )
    .unwrap()
}

/// The status `s` refuses one object, and that for an origin node this node does not know.
fn assert_one_unknown_origin(s: &Value) {
    assert_eq!(s["failure_count"], 1, "{s}");
    let message = s["failures"][0]["message"].as_str().unwrap_or_default();
    assert!(message.contains("does not know"), "{s}");
}

#[tokio::test]
async fn an_object_of_a_peer_declared_a_moment_ago_is_accepted_on_the_first_post() {
    let node = Node::sqlite().await;
    let a = node.org("Org A").await;
    let alice = node.user("alice", &a, Role::Analyst).await;
    let coll = node.collection("Room", Access::All, Access::All).await;
    let first = NodeKey::from_seed([63; 32]);
    let later = NodeKey::from_seed([64; 32]);
    declare_peer(&node, "first", &first, json!({"collections": [coll]})).await;
    let by_later = |n| green_signed(n, &later, "org-later");
    // The peers are now cached, without `later`: its object is refused.
    let r = peer_post(&node, &first, &coll, &[by_later(1)]).await;
    assert_one_unknown_origin(&r.json());
    declare_peer(&node, "later", &later, json!({})).await;
    // No waiting for the cache: relayed by a peer, posted by a user, or pulled, `later`'s objects
    // verify at once.
    let r = peer_post(&node, &first, &coll, &[by_later(1)]).await;
    assert_eq!(r.json()["success_count"], 1, "{}", r.text());
    assert_eq!(r.json()["failure_count"], 0, "{}", r.text());
    let r = node.post_envelope(&coll, &alice, &[by_later(2)]).await;
    assert_eq!(r.json()["success_count"], 1, "{}", r.text());
    assert_eq!(r.json()["failure_count"], 0, "{}", r.text());
    let receiver = node.state.receiver().unwrap();
    let got = kopa_ingest::receive(
        &receiver,
        &coll,
        vec![by_later(3)],
        first.node_id().as_str(),
    )
    .await
    .unwrap();
    assert_eq!((got.stored, got.rejected.len()), (1, 0), "{got:?}");
    let served = node.get(&objects_path(&coll), &alice).await.json()["objects"].clone();
    let known: KnownKeys = [later.public_key()].into_iter().collect();
    assert_eq!(served.as_array().unwrap().len(), 3, "{served}");
    for o in served.as_array().unwrap() {
        assert_eq!(verify(o, &known).unwrap().origin_node, later.node_id());
    }
}

#[tokio::test]
async fn objects_are_verified_with_the_cached_keys_until_the_cache_reloads() {
    let node = Node::sqlite().await;
    let a = node.org("Org A").await;
    let alice = node.user("alice", &a, Role::Analyst).await;
    let coll = node.collection("Room", Access::All, Access::All).await;
    let remote = NodeKey::from_seed([65; 32]);
    declare_peer(&node, "remote", &remote, json!({})).await;
    let theirs = |n| green_signed(n, &remote, "org-r");
    let r = node.post_envelope(&coll, &alice, &[theirs(1)]).await;
    assert_eq!(r.json()["success_count"], 1, "{}", r.text());
    // A POST does not read the peers from the store: removed a moment ago, the peer's key is
    // still trusted from the cache...
    node.store.remove_peer("remote").await.unwrap();
    let r = node.post_envelope(&coll, &alice, &[theirs(2)]).await;
    assert_eq!(r.json()["success_count"], 1, "{}", r.text());
    // ... until the cache is older than 5 s and reloaded: then the removal counts.
    tokio::time::sleep(std::time::Duration::from_millis(5200)).await;
    let r = node.post_envelope(&coll, &alice, &[theirs(3)]).await;
    assert_one_unknown_origin(&r.json());
}

#[tokio::test]
async fn a_peer_writes_only_where_its_policy_says_and_cannot_version_others_objects() {
    let node = Node::sqlite().await;
    let a = node.org("Org A").await;
    let alice = node.user("alice", &a, Role::Analyst).await;
    let admin = node.user("root", &a, Role::Admin).await;
    let exported = node.collection("Exported", Access::All, Access::All).await;
    let private = node.collection("Private", Access::All, Access::All).await;
    let p_key = NodeKey::from_seed([31; 32]);
    declare_peer(&node, "p", &p_key, json!({"collections": [exported]})).await;

    // The collection list shows only the policy's collections.
    let r = peer_get(&node, &p_key, "/kopa/collections/").await;
    let ids: Vec<String> = r.json()["collections"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["id"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(ids, vec![exported.clone()]);

    // A post outside the policy: refused whole, nothing stored, counted.
    let by_p = sign(
        &indicator(1, json!({"object_marking_refs": [GREEN]})),
        &p_key,
        "org-p",
    )
    .unwrap();
    for _ in 0..2 {
        let r = peer_post(&node, &p_key, &private, std::slice::from_ref(&by_p)).await;
        assert!(r.status == 403 || r.status == 404, "{}", r.text());
    }
    assert_eq!(
        node.get(&objects_path(&private), &alice).await.json()["objects"],
        Value::Null,
        "nothing stored outside the policy"
    );
    let metrics = node
        .call("GET", "/metrics", Auth::None, &[], None)
        .await
        .text();
    assert!(
        metrics.contains("kopa_peer_posts_refused_total{peer=\"p\"} 2"),
        "{metrics}"
    );
    let peers = node.api("GET", "/api/peers", &admin, None).await.json();
    assert_eq!(peers["peers"][0]["posts_refused"], 2, "{peers}");

    // Inside the policy it is stored; but P cannot publish a version of Alice's indicator (signed
    // by P, it is P's object, not hers).
    let r = node
        .post_envelope(
            &exported,
            &alice,
            &[indicator(2, json!({"object_marking_refs": [GREEN]}))],
        )
        .await;
    assert_eq!(r.json()["success_count"], 1);
    let hijack = sign(
        &indicator(
            2,
            json!({"object_marking_refs": [GREEN], "revoked": true,
                   "modified": "2024-06-01T00:00:00.000Z"}),
        ),
        &p_key,
        "org-p",
    )
    .unwrap();
    let r = peer_post(&node, &p_key, &exported, &[by_p.clone(), hijack]).await;
    let status = r.json();
    assert_eq!(status["success_count"], 1, "{status}");
    assert_eq!(status["failure_count"], 1, "{status}");
    assert!(status["failures"][0]["message"]
        .as_str()
        .unwrap()
        .contains("belongs to another producer"));
    let served = node.get(&objects_path(&exported), &alice).await.json();
    assert!(served["objects"]
        .as_array()
        .unwrap()
        .iter()
        .all(|o| o.get("revoked").is_none()));

    // P signs an object as if Org A, an organisation of this node, had written it on P: forged.
    let forged = sign(
        &indicator(3, json!({"object_marking_refs": [GREEN]})),
        &p_key,
        &a.id.0,
    )
    .unwrap();
    let r = peer_post(&node, &p_key, &exported, &[forged]).await;
    let status = r.json();
    assert_eq!(status["failure_count"], 1, "{status}");
    assert!(status["failures"][0]["message"]
        .as_str()
        .unwrap()
        .contains("forged origin"));
    let metrics = node.state.metrics().render();
    assert!(
        metrics.contains("kopa_peer_objects_rejected_total{peer=\"p\",reason=\"forged_origin\"} 1"),
        "{metrics}"
    );
    // The peer's status counts them as /metrics does.
    let peers = node.api("GET", "/api/peers", &admin, None).await.json();
    assert_eq!(
        peers["peers"][0]["objects_refused"]["forged_origin"], 1,
        "{peers}"
    );
    assert_eq!(
        peers["peers"][0]["objects_refused"]["invalid"], 1,
        "{peers}"
    );
}

/// `GET /api/checkpoint` gives a checkpoint of the audit log's last entry, signed now with the node
/// key, to declared peers (whatever their policy) and to the administrator; to no one else.
#[tokio::test]
async fn the_audit_checkpoint_is_signed_for_peers_and_the_administrator_only() {
    let node = Node::sqlite().await;
    let a = node.org("Org A").await;
    let admin = node.user("root", &a, Role::Admin).await;
    let alice = node.user("alice", &a, Role::Analyst).await;
    let oa = node.user("oa", &a, Role::OrgAdmin).await;
    let peer = NodeKey::from_seed([61; 32]);
    let stranger = NodeKey::from_seed([62; 32]);
    declare_peer(&node, "p", &peer, json!({})).await;
    // Something in the log: an act of the administrator.
    let r = node
        .api("POST", "/api/orgs", &admin, Some(json!({"name": "Org B"})))
        .await;
    assert_eq!(r.status, 201, "{}", r.text());
    let (seq, hash) = node.store.audit_head().await.unwrap().unwrap();
    let key = node.identity.public_key();
    for r in [
        node.api("GET", "/api/checkpoint", &admin, None).await,
        peer_get(&node, &peer, "/api/checkpoint").await,
    ] {
        assert_eq!(r.status, 200, "{}", r.text());
        let c: kopa_federation::Checkpoint =
            serde_json::from_value(r.json()["checkpoint"].clone()).unwrap();
        assert_eq!((c.seq, c.hash.as_str()), (seq, hash.as_str()));
        assert!(c.verifies(&key), "signed with the node key: {c:?}");
    }
    for who in [&alice, &oa] {
        let r = node.api("GET", "/api/checkpoint", who, None).await;
        assert_eq!(r.status, 403, "{}", r.text());
        assert!(
            r.text().contains("peers and its administrator"),
            "{}",
            r.text()
        );
    }
    assert_eq!(
        peer_get(&node, &stranger, "/api/checkpoint").await.status,
        401
    );
    assert_eq!(
        node.call("GET", "/api/checkpoint", Auth::None, &[], None)
            .await
            .status,
        401
    );
}

/// The current time in unix seconds, by the clock the test nodes run on.
fn now_unix() -> i64 {
    use kopa_core::Clock as _;
    kopa_core::SystemClock.unix_seconds()
}
