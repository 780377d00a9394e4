//! Property test over random worlds, end to end through the HTTP write and read paths: random objects
//! (any TLP label or none, random named organisations and recipients, random authors and
//! collections) are POSTed by their authors; every user's TAXII read of every collection and REST
//! search returns exactly what the visibility rule (`Audience::reference_visible`) allows.

mod common;

use std::collections::BTreeSet;

use common::{id_set, indicator, Node};
use kopa_core::{Audience, OrgId, Role, Stewardship, Tlp, UserId, AUDIENCE_EXTENSION_ID};
use kopa_store::Access;
use proptest::prelude::*;
use proptest::test_runner::{Config, TestRunner};
use serde_json::{json, Value};

const ORGS: [&str; 3] = ["Org A", "Org B", "Org C"];
/// (user, organisation index)
const USERS: [(&str, usize); 4] = [("a1", 0), ("a2", 0), ("b1", 1), ("c1", 2)];

#[derive(Debug, Clone)]
struct Obj {
    label: Option<Tlp>,
    orgs: Vec<usize>,
    recipients: Vec<usize>,
    author: usize,
    collection: usize,
}

fn obj() -> impl Strategy<Value = Obj> {
    (
        proptest::option::of(proptest::sample::select(Tlp::ALL.to_vec())),
        proptest::sample::subsequence(vec![0usize, 1, 2], 0..=2),
        proptest::sample::subsequence(vec![0usize, 1, 2, 3], 0..=2),
        0usize..4,
        0usize..2,
    )
        .prop_map(|(label, orgs, recipients, author, collection)| Obj {
            label,
            orgs,
            recipients,
            author,
            collection,
        })
}

/// Collection 0: all read and write. Collection 1: orgs A and B read, everyone writes.
fn readable(collection: usize, org: usize) -> bool {
    collection == 0 || org != 2
}

async fn check(objs: Vec<Obj>) {
    let node = Node::sqlite().await;
    let mut orgs = Vec::new();
    for name in ORGS {
        orgs.push(node.org(name).await);
    }
    let mut tokens = Vec::new();
    for (name, org) in USERS {
        tokens.push(node.user(name, &orgs[org], Role::Analyst).await);
    }
    let collections = [
        node.collection("Open", Access::All, Access::All).await,
        node.collection(
            "A+B read",
            Access::Orgs(vec![orgs[0].id.clone(), orgs[1].id.clone()]),
            Access::All,
        )
        .await,
    ];
    let mut written = Vec::new();
    for (n, o) in objs.iter().enumerate() {
        let mut extra = serde_json::Map::new();
        extra.insert(
            "pattern".into(),
            json!(format!(
                "[ipv4-addr:value = '192.0.2.1'] AND [ipv4-addr:value = '10.9.9.{n}']"
            )),
        );
        if let Some(t) = o.label {
            extra.insert("object_marking_refs".into(), json!([t.marking_id()]));
        }
        if !o.orgs.is_empty() || !o.recipients.is_empty() {
            extra.insert(
                "extensions".into(),
                json!({AUDIENCE_EXTENSION_ID: {
                    "extension_type": "property-extension",
                    "organisations": o.orgs.iter().map(|&i| ORGS[i]).collect::<Vec<_>>(),
                    "recipients": o.recipients.iter().map(|&i| USERS[i].0).collect::<Vec<_>>(),
                }}),
            );
        }
        let object = indicator(n, Value::Object(extra));
        let r = node
            .post_envelope(
                &collections[o.collection],
                &tokens[o.author],
                std::slice::from_ref(&object),
            )
            .await;
        assert_eq!(r.json()["success_count"], 1, "{}", r.text());
        written.push((
            object["id"].as_str().unwrap().to_string(),
            o.collection,
            Stewardship {
                owner_org: OrgId(ORGS[USERS[o.author].1].into()),
                author: UserId(USERS[o.author].0.into()),
                tlp: o.label.unwrap_or(Tlp::Amber),
                orgs: o.orgs.iter().map(|&i| OrgId(ORGS[i].into())).collect(),
                users: o
                    .recipients
                    .iter()
                    .map(|&i| UserId(USERS[i].0.into()))
                    .collect(),
                defaulted: o.label.is_none(),
            },
        ));
    }
    for (u, (name, org)) in USERS.iter().enumerate() {
        let who = Audience {
            org: OrgId(ORGS[*org].into()),
            user: UserId(name.to_string()),
        };
        let want = |coll: Option<usize>| -> BTreeSet<String> {
            written
                .iter()
                .filter(|(_, c, _)| coll.is_none_or(|x| x == *c))
                .filter(|(_, c, s)| who.reference_visible(readable(*c, *org), s))
                .map(|(id, _, _)| id.clone())
                .collect()
        };
        for (c, coll) in collections.iter().enumerate() {
            let r = node
                .get(
                    &format!("/kopa/collections/{coll}/objects/?match[version]=all"),
                    &tokens[u],
                )
                .await;
            if !readable(c, *org) {
                // Everyone may write collection 1, so it exists for C, but C may not read it.
                assert_eq!(r.status, 403);
                continue;
            }
            assert_eq!(id_set(&r.json()), want(Some(c)), "{name}: collection {c}");
        }
        let r = node
            .api("GET", "/api/search?value=192.0.2.1", &tokens[u], None)
            .await;
        assert_eq!(id_set(&r.json()), want(None), "{name}: search");
    }
}

#[test]
fn random_worlds_see_exactly_what_the_rule_allows() {
    let rt = tokio::runtime::Runtime::new().unwrap();
    let mut runner = TestRunner::new_with_rng(
        Config {
            cases: 12,
            failure_persistence: None,
            ..Config::default()
        },
        proptest::test_runner::TestRng::deterministic_rng(
            proptest::test_runner::RngAlgorithm::ChaCha,
        ),
    );
    runner
        .run(&proptest::collection::vec(obj(), 1..12), |objs| {
            rt.block_on(check(objs));
            Ok(())
        })
        .unwrap();
}
