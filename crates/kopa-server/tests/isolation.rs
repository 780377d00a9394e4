//! Isolation across three organisations: objects of every TLP label, with and without named
//! organisations and recipients, in collections with different readers — every read path (TAXII
//! objects, object, versions, manifest; REST search and export) returns exactly what the rule allows.
//! Runs on SQLite, and on PostgreSQL when `KOPA_TEST_PG_URL` is set.

mod common;

use std::collections::BTreeSet;

use common::{id_set, indicator, uuid_n, Node, PgDb};
use kopa_core::{Audience, OrgId, Role, Stewardship, Tlp, UserId, AUDIENCE_EXTENSION_ID};
use kopa_stix::TLP2_EXTENSION_ID;
use kopa_store::Access;
use serde_json::{json, Value};

/// One object written by a1 and the facts the expected visibility follows from.
struct Written {
    id: String,
    collection: usize,
    steward: Stewardship,
}

struct Reader {
    name: &'static str,
    org: &'static str,
    token: String,
}

const SHARED_VALUE: &str = "203.0.113.7";

async fn isolation(node: Node) {
    let orgs = [
        node.org("Org A").await,
        node.org("Org B").await,
        node.org("Org C").await,
    ];
    let org_id = |name: &str| OrgId(name.to_string());
    let a1 = node.user("a1", &orgs[0], Role::Analyst).await;
    let mut readers = vec![
        Reader {
            name: "a1",
            org: "Org A",
            token: a1.clone(),
        },
        Reader {
            name: "a2",
            org: "Org A",
            token: node.user("a2", &orgs[0], Role::Reader).await,
        },
        Reader {
            name: "b1",
            org: "Org B",
            token: node.user("b1", &orgs[1], Role::Analyst).await,
        },
        Reader {
            name: "b2",
            org: "Org B",
            token: node.user("b2", &orgs[1], Role::Reader).await,
        },
        Reader {
            name: "c1",
            org: "Org C",
            token: node.user("c1", &orgs[2], Role::Analyst).await,
        },
    ];
    // No role reads past the rule: make c1's organisation's admin a reader too.
    readers.push(Reader {
        name: "cadmin",
        org: "Org C",
        token: node.user("cadmin", &orgs[2], Role::Admin).await,
    });

    // Collection 0: everyone reads and writes. Collection 1: A and B read, A writes.
    let collections = [
        node.collection("Open", Access::All, Access::All).await,
        node.collection(
            "A+B",
            Access::Orgs(vec![orgs[0].id.clone(), orgs[1].id.clone()]),
            Access::Orgs(vec![orgs[0].id.clone()]),
        )
        .await,
    ];
    let readable = |coll: usize, org: &str| coll == 0 || org != "Org C";

    // Every label (and no label), with no audience, named organisations, named recipients, both.
    let labels: [Option<Tlp>; 6] = [
        None,
        Some(Tlp::Clear),
        Some(Tlp::Green),
        Some(Tlp::Amber),
        Some(Tlp::AmberStrict),
        Some(Tlp::Red),
    ];
    let audiences: [(&[&str], &[&str]); 4] = [
        (&[], &[]),
        (&["Org B"], &[]),
        (&[], &["b1"]),
        (&["Org C"], &["b2"]),
    ];
    let mut written = Vec::new();
    let mut n = 0;
    for (ci, coll) in collections.iter().enumerate() {
        let mut envelope = Vec::new();
        for label in labels {
            for (aud_orgs, aud_users) in audiences {
                n += 1;
                let mut extra = serde_json::Map::new();
                extra.insert(
                    "pattern".into(),
                    json!(format!(
                        "[ipv4-addr:value = '{SHARED_VALUE}'] OR [ipv4-addr:value = '10.0.0.{n}']"
                    )),
                );
                if let Some(t) = label {
                    extra.insert("object_marking_refs".into(), json!([t.marking_id()]));
                }
                if !aud_orgs.is_empty() || !aud_users.is_empty() {
                    extra.insert(
                        "extensions".into(),
                        json!({AUDIENCE_EXTENSION_ID: {
                            "extension_type": "property-extension",
                            "organisations": aud_orgs, "recipients": aud_users}}),
                    );
                }
                let obj = indicator(n, Value::Object(extra));
                written.push(Written {
                    id: obj["id"].as_str().unwrap().to_string(),
                    collection: ci,
                    steward: Stewardship {
                        owner_org: org_id("Org A"),
                        author: UserId("a1".into()),
                        tlp: label.unwrap_or(Tlp::Amber),
                        orgs: aud_orgs.iter().map(|o| org_id(o)).collect(),
                        users: aud_users.iter().map(|u| UserId(u.to_string())).collect(),
                        defaulted: label.is_none(),
                    },
                });
                envelope.push(obj);
            }
        }
        let r = node.post_envelope(coll, &a1, &envelope).await;
        assert_eq!(r.status, 202, "{}", r.text());
        assert_eq!(r.json()["failure_count"], 0, "{}", r.text());
    }
    assert_eq!(written.len(), 48);

    for reader in &readers {
        let who = Audience {
            org: org_id(reader.org),
            user: UserId(reader.name.into()),
        };
        let expected = |ci: Option<usize>| -> BTreeSet<String> {
            written
                .iter()
                .filter(|w| ci.is_none_or(|c| c == w.collection))
                .filter(|w| who.reference_visible(readable(w.collection, reader.org), &w.steward))
                .map(|w| w.id.clone())
                .collect()
        };
        let ctx = format!("reader {} ({})", reader.name, reader.org);

        // REST search across collections.
        let r = node
            .api(
                "GET",
                &format!("/api/search?value={SHARED_VALUE}"),
                &reader.token,
                None,
            )
            .await;
        assert_eq!(r.status, 200, "{ctx}");
        let found: BTreeSet<String> = id_set(&r.json());
        assert_eq!(found, expected(None), "{ctx}: search");

        for (ci, coll) in collections.iter().enumerate() {
            let ctx = format!("{ctx}, collection {ci}");
            let want = expected(Some(ci));
            let base = format!("/kopa/collections/{coll}/objects/");
            if !readable(ci, reader.org) {
                assert_eq!(node.get(&base, &reader.token).await.status, 404, "{ctx}");
                assert_eq!(
                    node.api("GET", &format!("/api/export/{coll}"), &reader.token, None)
                        .await
                        .status,
                    404,
                    "{ctx}"
                );
                continue;
            }
            // TAXII objects, in small pages.
            let mut got = BTreeSet::new();
            let mut next: Option<String> = None;
            loop {
                let url = match &next {
                    Some(c) => format!("{base}?limit=5&match[version]=all&next={c}"),
                    None => format!("{base}?limit=5&match[version]=all"),
                };
                let env = node.get(&url, &reader.token).await.json();
                got.extend(id_set(&env));
                match env["next"].as_str() {
                    Some(c) if env["more"] == true => next = Some(c.to_string()),
                    _ => break,
                }
            }
            assert_eq!(got, want, "{ctx}: objects");
            // Manifest.
            let m = node
                .get(
                    &format!("/kopa/collections/{coll}/manifest/?limit=1000"),
                    &reader.token,
                )
                .await
                .json();
            assert_eq!(id_set(&m), want, "{ctx}: manifest");
            // Export.
            let r = node
                .api("GET", &format!("/api/export/{coll}"), &reader.token, None)
                .await;
            assert_eq!(r.status, 200, "{ctx}");
            let bundle = r.json();
            assert_eq!(bundle["type"], "bundle");
            assert_eq!(id_set(&bundle), want, "{ctx}: export");
            // One object and its versions, for every object of the collection.
            for w in written.iter().filter(|w| w.collection == ci) {
                let visible = want.contains(&w.id);
                let code = if visible { 200 } else { 404 };
                let r = node.get(&format!("{base}{}/", w.id), &reader.token).await;
                assert_eq!(r.status, code, "{ctx}: object {}", w.id);
                if visible {
                    assert_eq!(id_set(&r.json()), BTreeSet::from([w.id.clone()]));
                }
                let r = node
                    .get(&format!("{base}{}/versions/", w.id), &reader.token)
                    .await;
                assert_eq!(r.status, code, "{ctx}: versions {}", w.id);
            }
        }
    }

    // Spot checks of the rule in plain words (collection 0, first 24 objects).
    let idx = |label: usize, aud: usize| 1 + label * 4 + aud; // object number
    let seen_by = |token: &str, n: usize| {
        let node = &node;
        let token = token.to_string();
        let base = format!(
            "/kopa/collections/{}/objects/indicator--{}/",
            collections[0],
            uuid_n(n)
        );
        async move { node.get(&base, &token).await.status == 200 }
    };
    let [_, a2, b1, b2, c1, cadmin] = [0, 1, 2, 3, 4, 5].map(|i| readers[i].token.clone());
    assert!(seen_by(&c1, idx(1, 0)).await, "CLEAR reaches every reader");
    assert!(
        !seen_by(&c1, idx(0, 0)).await,
        "unmarked stays with the owner organisation"
    );
    assert!(
        seen_by(&a2, idx(0, 0)).await,
        "unmarked stays with the owner organisation"
    );
    assert!(
        seen_by(&b1, idx(3, 1)).await,
        "AMBER named to Org B reaches B"
    );
    assert!(
        !seen_by(&c1, idx(3, 1)).await,
        "AMBER named to Org B does not reach C"
    );
    assert!(
        !seen_by(&cadmin, idx(4, 1)).await,
        "no administrator bypass"
    );
    assert!(
        seen_by(&b1, idx(5, 2)).await,
        "RED reaches its named recipient"
    );
    assert!(
        !seen_by(&b2, idx(5, 2)).await,
        "RED does not reach the recipient's colleague"
    );
    assert!(
        !seen_by(&a2, idx(5, 0)).await,
        "RED does not reach the author's colleague"
    );
    assert!(
        seen_by(&readers[0].token, idx(5, 0)).await,
        "RED reaches its author"
    );
}

#[tokio::test]
async fn isolation_on_sqlite() {
    isolation(Node::sqlite().await).await;
}

#[tokio::test]
async fn isolation_on_postgres() {
    let Some(db) = PgDb::create("kopa_server_test").await else {
        return;
    };
    let url = db.url.clone();
    let result = common::CatchUnwind(Box::pin(async move {
        let store = kopa_store::open(&url, true).await.unwrap();
        assert_eq!(store.backend(), "postgres");
        isolation(Node::over(store, None, common::config())).await;
    }))
    .await;
    db.drop_db().await;
    if let Err(e) = result {
        std::panic::resume_unwind(e);
    }
}

/// A custom marking definition that carries the OASIS TLP 2.0 extension with `colour`.
fn tlp2_marking(id: &str, colour: &str) -> Value {
    json!({
        "type": "marking-definition", "spec_version": "2.1", "id": id,
        "created": "2024-01-01T00:00:00.000Z", "name": format!("Our TLP:{colour}"),
        "extensions": {TLP2_EXTENSION_ID: {"extension_type": "property-extension", "tlp_2_0": colour}}
    })
}

/// `id` with its UUID in upper case (the type part stays lower case, as STIX requires).
fn upper_uuid(id: &str) -> String {
    let (type_, uuid) = id.split_once("--").unwrap();
    format!("{type_}--{}", uuid.to_ascii_uppercase())
}

/// `extra` with a TLP:GREEN object marking added: a wider sign beside the narrower one.
fn beside_green(extra: &Value) -> Value {
    let mut v = extra.clone();
    let refs = v["object_marking_refs"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    v["object_marking_refs"] = Value::Array(
        std::iter::once(json!(Tlp::Green.marking_id()))
            .chain(refs)
            .collect(),
    );
    v
}

/// TLP fails closed: an object's label is the narrowest of all its TLP signs. a1 (Org A) posts into
/// a collection Org B reads objects whose TLP:RED sign is one that a first-found or case-sensitive
/// reading misses, each alone and beside a TLP:GREEN marking. Only their author sees them: neither
/// a colleague in Org A (an object read as unmarked would reach them) nor Org B (an object read as
/// GREEN would reach it).
async fn tlp_fails_closed(node: Node) {
    let a = node.org("Org A").await;
    let b = node.org("Org B").await;
    let a1 = node.user("a1", &a, Role::Analyst).await;
    let a2 = node.user("a2", &a, Role::Reader).await;
    let b1 = node.user("b1", &b, Role::Analyst).await;
    let coll = node
        .collection("A writes, all read", Access::All, Access::Orgs(vec![a.id]))
        .await;
    let red = Tlp::Red.marking_id();
    let ours_earlier = "marking-definition--7d3c2b1a-0f9e-4d8c-b7a6-5e4d3c2b1a09";
    let ours_here = "marking-definition--1a2b3c4d-5e6f-4a7b-8c9d-0e1f2a3b4c5d";

    // An earlier envelope: a custom RED marking definition alone.
    let r = node
        .post_envelope(&coll, &a1, &[tlp2_marking(ours_earlier, "red")])
        .await;
    assert_eq!(r.json()["success_count"], 1, "{}", r.text());

    let signs: Vec<(&str, Value)> = vec![
        (
            "(a) the OASIS RED id with an upper-case UUID",
            json!({"object_marking_refs": [upper_uuid(red)]}),
        ),
        (
            "(b) a RED granular marking on description",
            json!({"description": "the C2 of a named victim",
                   "granular_markings": [{"marking_ref": red, "selectors": ["description"]}]}),
        ),
        (
            "(c) a custom RED marking definition posted in the same envelope",
            json!({"object_marking_refs": [ours_here]}),
        ),
        (
            "(d) a custom RED marking definition posted in an earlier envelope",
            json!({"object_marking_refs": [upper_uuid(ours_earlier)]}),
        ),
        ("(e) a tlp:red label", json!({"labels": ["tlp:red"]})),
        (
            "a custom RED granular marking beside an AMBER marking",
            json!({"object_marking_refs": [Tlp::Amber.marking_id()],
                   "granular_markings": [{"marking_ref": ours_earlier, "selectors": ["pattern"]}]}),
        ),
    ];
    let cases: Vec<(String, Value)> = signs
        .iter()
        .flat_map(|(name, extra)| {
            [
                (format!("{name}, alone"), extra.clone()),
                (format!("{name}, beside GREEN"), beside_green(extra)),
            ]
        })
        .collect();
    let mut envelope: Vec<Value> = cases
        .iter()
        .enumerate()
        .map(|(i, (_, extra))| indicator(901 + i, extra.clone()))
        .collect();
    // The definition comes after the objects that name it; a GREEN control everyone must see.
    envelope.push(tlp2_marking(ours_here, "red"));
    let control = indicator(
        999,
        json!({"object_marking_refs": [Tlp::Green.marking_id()]}),
    );
    envelope.push(control.clone());
    let r = node.post_envelope(&coll, &a1, &envelope).await;
    assert_eq!(r.status, 202, "{}", r.text());
    assert_eq!(r.json()["failure_count"], 0, "{}", r.text());

    let base = format!("/kopa/collections/{coll}/objects/");
    let seen_by = |token: &str| {
        let node = &node;
        let url = format!("{base}?limit=1000&match[version]=all");
        let token = token.to_string();
        async move { id_set(&node.get(&url, &token).await.json()) }
    };
    let by_author = seen_by(&a1).await;
    let others = [
        ("a2 (the author's colleague)", a2.as_str()),
        ("b1 (Org B)", b1.as_str()),
    ];
    let id = |v: &Value| v["id"].as_str().unwrap().to_string();
    // Every case is checked before failing, so that a failure names all the leaks.
    let mut leaks = Vec::new();
    for (who, token) in others {
        let seen = seen_by(token).await;
        assert!(
            seen.contains(&id(&control)),
            "the GREEN control reaches {who}"
        );
        for (i, ((name, _), obj)) in cases.iter().zip(&envelope).enumerate() {
            let oid = id(obj);
            assert!(by_author.contains(&oid), "{name}: its author sees it");
            if seen.contains(&oid) {
                leaks.push(format!("{name}: in the objects {who} reads"));
            }
            if node.get(&format!("{base}{oid}/"), token).await.status != 404 {
                leaks.push(format!("{name}: read by id by {who}"));
            }
            // The address its pattern names (see `indicator`).
            let value = format!("198.51.100.{}", (901 + i) % 250);
            let search = node
                .api("GET", &format!("/api/search?value={value}"), token, None)
                .await;
            assert_eq!(search.status, 200, "{name}: search");
            if id_set(&search.json()).contains(&oid) {
                leaks.push(format!("{name}: found by {who}'s search"));
            }
        }
        // A custom RED marking definition is itself TLP:RED.
        for md in [ours_here, ours_earlier] {
            assert!(by_author.contains(md), "{md}: its author sees it");
            if seen.contains(md) {
                leaks.push(format!("the RED marking definition {md}: seen by {who}"));
            }
        }
    }
    assert!(leaks.is_empty(), "{leaks:#?}");
}

#[tokio::test]
async fn tlp_fails_closed_on_sqlite() {
    tlp_fails_closed(Node::sqlite().await).await;
}

#[tokio::test]
async fn tlp_fails_closed_on_postgres() {
    let Some(db) = PgDb::create("kopa_server_test").await else {
        return;
    };
    let url = db.url.clone();
    let result = common::CatchUnwind(Box::pin(async move {
        let store = kopa_store::open(&url, true).await.unwrap();
        assert_eq!(store.backend(), "postgres");
        tlp_fails_closed(Node::over(store, None, common::config())).await;
    }))
    .await;
    db.drop_db().await;
    if let Err(e) = result {
        std::panic::resume_unwind(e);
    }
}
