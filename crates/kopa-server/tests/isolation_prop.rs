//! Property test over random worlds, end to end through the HTTP write and read paths: random objects
//! (any TLP label or none, random named organisations and recipients, random authors and
//! collections) are POSTed by their authors; every user's TAXII read of every collection and REST
//! search returns exactly what the visibility rule (`Audience::reference_visible`) allows.
//!
//! Names collide across nodes: some posts also carry `organisation_refs` and `recipient_refs`
//! written by the client, naming this node's organisations and users (under another node's id, or
//! under this node's for someone the names do not name). The node resolves the names itself and
//! replaces the references, so they never widen what anyone sees.

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
/// Another node, whose organisations and users have the same names as this node's.
const OTHER_NODE: &str = "node--00000000000000000000000000000099";

#[derive(Debug, Clone)]
struct Obj {
    label: Option<Tlp>,
    orgs: Vec<usize>,
    recipients: Vec<usize>,
    author: usize,
    collection: usize,
    /// Users and organisations named by client-written references: (index, under this node's id).
    smuggled_users: Vec<(usize, bool)>,
    smuggled_orgs: Vec<(usize, bool)>,
}

fn obj() -> impl Strategy<Value = Obj> {
    (
        proptest::option::of(proptest::sample::select(Tlp::ALL.to_vec())),
        proptest::sample::subsequence(vec![0usize, 1, 2], 0..=2),
        proptest::sample::subsequence(vec![0usize, 1, 2, 3], 0..=2),
        0usize..4,
        0usize..2,
        proptest::collection::vec((0usize..4, any::<bool>()), 0..=2),
        proptest::collection::vec((0usize..3, any::<bool>()), 0..=2),
    )
        .prop_map(
            |(label, orgs, recipients, author, collection, smuggled_users, smuggled_orgs)| Obj {
                label,
                orgs,
                recipients,
                author,
                collection,
                smuggled_users,
                smuggled_orgs,
            },
        )
}

/// Collection 0: all read and write. Collection 1: orgs A and B read, everyone writes.
fn readable(collection: usize, org: usize) -> bool {
    collection == 0 || org != 2
}

async fn check(node: Node, objs: Vec<Obj>) {
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
    let this_node = node.identity.id().to_string();
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
        let refs = |names: Vec<&str>, here: &[bool]| -> Vec<Value> {
            names
                .iter()
                .zip(here)
                .map(|(name, &here)| {
                    let node_id = if here { this_node.as_str() } else { OTHER_NODE };
                    json!({"node": node_id, "name": name})
                })
                .collect()
        };
        let smuggled = !o.smuggled_users.is_empty() || !o.smuggled_orgs.is_empty();
        if !o.orgs.is_empty() || !o.recipients.is_empty() || smuggled {
            let (users, users_here): (Vec<_>, Vec<_>) = o
                .smuggled_users
                .iter()
                .map(|&(i, here)| (USERS[i].0, here))
                .unzip();
            let (orgs, orgs_here): (Vec<_>, Vec<_>) = o
                .smuggled_orgs
                .iter()
                .map(|&(i, here)| (ORGS[i], here))
                .unzip();
            extra.insert(
                "extensions".into(),
                json!({AUDIENCE_EXTENSION_ID: {
                    "extension_type": "property-extension",
                    "organisations": o.orgs.iter().map(|&i| ORGS[i]).collect::<Vec<_>>(),
                    "recipients": o.recipients.iter().map(|&i| USERS[i].0).collect::<Vec<_>>(),
                    "organisation_refs": refs(orgs, &orgs_here),
                    "recipient_refs": refs(users, &users_here),
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

/// The same world on a PostgreSQL node of its own (none when PostgreSQL does not answer).
async fn check_on_postgres(objs: Vec<Obj>) {
    let Some(db) = common::PgDb::create("kopa_isolation_prop").await else {
        return;
    };
    let store = kopa_store::open(&db.url, true).await.unwrap();
    let node = Node::over(store, None, common::config());
    let result = common::CatchUnwind(Box::pin(check(node, objs))).await;
    db.drop_db().await;
    if let Err(e) = result {
        std::panic::resume_unwind(e);
    }
}

fn random_worlds(cases: u32, postgres: bool) {
    let rt = tokio::runtime::Runtime::new().unwrap();
    let mut runner = TestRunner::new_with_rng(
        Config {
            cases,
            failure_persistence: None,
            ..Config::default()
        },
        proptest::test_runner::TestRng::deterministic_rng(
            proptest::test_runner::RngAlgorithm::ChaCha,
        ),
    );
    runner
        .run(&proptest::collection::vec(obj(), 1..12), |objs| {
            rt.block_on(async {
                if postgres {
                    check_on_postgres(objs).await;
                } else {
                    check(Node::sqlite().await, objs).await;
                }
            });
            Ok(())
        })
        .unwrap();
}

#[test]
fn random_worlds_see_exactly_what_the_rule_allows_on_sqlite() {
    random_worlds(12, false);
}

/// Fewer cases: each makes a database of its own.
#[test]
fn random_worlds_see_exactly_what_the_rule_allows_on_postgres() {
    random_worlds(6, true);
}
