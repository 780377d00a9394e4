//! Property test of the permission rule through the REST API, on SQLite and PostgreSQL: random
//! worlds of users (random roles and organisations, some of them directory entries of another node)
//! attempt random acts on random targets — make a token for someone, enrol someone, revoke someone's
//! token, add a user with some role to some organisation — and every answer is what the rules say in
//! plain words (stated again here, apart from `kopa_core::permission`). After each accepted
//! enrolment, the target's earlier tokens no longer work.

mod common;

use common::{Node, PgDb};
use kopa_core::Role;
use proptest::prelude::*;
use proptest::test_runner::{Config, TestRunner};
use serde_json::json;

const NODE_Z: &str = "node--000000000000000000000000000000ee";
/// Organisations: two hosted here, one a directory entry of node Z.
const ORGS: [(&str, bool); 3] = [("Org A", false), ("Org B", false), ("Org Z", true)];

#[derive(Debug, Clone)]
struct World {
    /// (role, organisation index) of each user.
    users: Vec<(Role, usize)>,
    /// (actor, act, target user, new role, new organisation)
    acts: Vec<(usize, u8, usize, Role, usize)>,
}

fn role() -> impl Strategy<Value = Role> {
    prop_oneof![
        Just(Role::Reader),
        Just(Role::Analyst),
        Just(Role::OrgAdmin),
        Just(Role::Admin)
    ]
}

fn world() -> impl Strategy<Value = World> {
    (
        proptest::collection::vec((role(), 0usize..3), 3..7),
        proptest::collection::vec((0usize..7, 0u8..4, 0usize..7, role(), 0usize..3), 1..16),
    )
        .prop_map(|(users, acts)| {
            let n = users.len();
            World {
                acts: acts
                    .into_iter()
                    .map(|(a, k, t, r, o)| (a % n, k, t % n, r, o))
                    .collect(),
                users,
            }
        })
}

/// The rules in plain words: may user `a` manage the account of user `t` (enrol it, revoke its
/// tokens)? The administrator manages every account of this node; an org-admin the readers and
/// analysts of its own organisation; no one a directory entry.
fn manages(w: &World, a: usize, t: usize) -> bool {
    let ((ar, ao), (tr, to)) = (w.users[a], w.users[t]);
    !ORGS[to].1 && (ar == Role::Admin || (ar == Role::OrgAdmin && ao == to && tr < Role::OrgAdmin))
}

async fn check(node: Node, case: usize, w: World) {
    let mut orgs = Vec::new();
    for (name, remote) in ORGS {
        let name = format!("{name} {case}");
        orgs.push(if remote {
            node.store.add_remote_org(&name, NODE_Z).await.unwrap()
        } else {
            node.org(&name).await
        });
    }
    let mut names = Vec::new();
    let mut tokens: Vec<Option<String>> = Vec::new();
    for (i, (role, org)) in w.users.iter().enumerate() {
        let name = format!("u{case}-{i}");
        if ORGS[*org].1 {
            // A directory entry: no token.
            node.store
                .add_user(&name, &orgs[*org].id, *role)
                .await
                .unwrap();
            tokens.push(None);
        } else {
            tokens.push(Some(node.user(&name, &orgs[*org], *role).await));
        }
        names.push(name);
    }
    let mut added = 0;
    for (step, &(a, act, t, new_role, new_org)) in w.acts.iter().enumerate() {
        // Directory entries never act here; an actor whose token was revoked by an enrolment has
        // none left to act with.
        let Some(token) = tokens[a].clone() else {
            continue;
        };
        let target = &names[t];
        let what = format!(
            "step {step}: u{a} {:?} act {act} on u{t} {:?}",
            w.users[a], w.users[t]
        );
        match act {
            0 => {
                let r = node
                    .api("POST", &format!("/api/users/{target}/tokens"), &token, None)
                    .await;
                let allowed = a == t && !ORGS[w.users[t].1].1;
                assert_eq!(
                    r.status,
                    if allowed { 201 } else { 403 },
                    "{what}: {}",
                    r.text()
                );
            }
            1 => {
                let r = node
                    .api(
                        "POST",
                        &format!("/api/users/{target}/enrolment"),
                        &token,
                        None,
                    )
                    .await;
                let allowed = manages(&w, a, t);
                assert_eq!(
                    r.status,
                    if allowed { 201 } else { 403 },
                    "{what}: {}",
                    r.text()
                );
                if allowed {
                    // The target's tokens were revoked: it can no longer act.
                    let old = tokens[t].take().unwrap();
                    assert_eq!(node.api("GET", "/api/me", &old, None).await.status, 401);
                }
            }
            2 => {
                let Some(their) = tokens[t].clone() else {
                    continue;
                };
                let id = their.split('_').nth(1).unwrap();
                let r = node
                    .api("DELETE", &format!("/api/tokens/{id}"), &token, None)
                    .await;
                let allowed = a == t || manages(&w, a, t);
                assert_eq!(
                    r.status,
                    if allowed { 200 } else { 404 },
                    "{what}: {}",
                    r.text()
                );
                if allowed {
                    tokens[t] = None;
                }
            }
            _ => {
                added += 1;
                let name = format!("new{case}-{step}-{added}");
                let org = format!("{} {case}", ORGS[new_org].0);
                let r = node
                    .api(
                        "POST",
                        "/api/users",
                        &token,
                        Some(json!({"name": name, "org": org, "role": new_role.as_str()})),
                    )
                    .await;
                let (ar, ao) = w.users[a];
                let allowed = ar == Role::Admin
                    || (ar == Role::OrgAdmin
                        && ao == new_org
                        && !ORGS[new_org].1
                        && new_role < Role::OrgAdmin);
                assert_eq!(
                    r.status,
                    if allowed { 201 } else { 403 },
                    "{what}: {}",
                    r.text()
                );
                if allowed {
                    // A directory entry gets no token; anyone else exactly one.
                    assert_eq!(r.json()["token"].is_null(), ORGS[new_org].1, "{what}");
                }
            }
        }
    }
}

fn run(rt: &tokio::runtime::Runtime, make: impl Fn() -> Node) {
    let mut runner = TestRunner::new_with_rng(
        Config {
            cases: 24,
            failure_persistence: None,
            ..Config::default()
        },
        proptest::test_runner::TestRng::deterministic_rng(
            proptest::test_runner::RngAlgorithm::ChaCha,
        ),
    );
    let case = std::sync::atomic::AtomicUsize::new(0);
    runner
        .run(&world(), |w| {
            let case = case.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            let node = rt.block_on(async { make() });
            rt.block_on(check(node, case, w));
            Ok(())
        })
        .unwrap();
}

#[test]
fn random_worlds_act_exactly_as_the_rules_say_on_sqlite() {
    let rt = tokio::runtime::Runtime::new().unwrap();
    let node = rt.block_on(Node::sqlite());
    let store = node.store.clone();
    // One store for every case (names are unique per case), as an operator's node lives on.
    run(&rt, || Node::over(store.clone(), None, common::config()));
    drop(node);
}

#[test]
fn random_worlds_act_exactly_as_the_rules_say_on_postgres() {
    let rt = tokio::runtime::Runtime::new().unwrap();
    let Some(db) = rt.block_on(PgDb::create("kopa_perm_test")) else {
        return;
    };
    let url = db.url.clone();
    let result = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        // The pool's connections are given back on drop, which needs the runtime's context.
        let _context = rt.enter();
        let store = rt.block_on(kopa_store::open(&url, true)).unwrap();
        run(&rt, || Node::over(store.clone(), None, common::config()));
    }));
    rt.block_on(db.drop_db());
    if let Err(e) = result {
        std::panic::resume_unwind(e);
    }
}
