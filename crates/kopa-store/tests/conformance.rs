//! The store conformance suite: every test body is generic over `Arc<dyn Store>` and runs against
//! SQLite and PostgreSQL (see `common`).

mod common;

use common::*;
use kopa_core::audit::{verify, NewAuditEntry};
use kopa_core::{Role, Tlp, UserId};
use kopa_store::prelude::NodeStore;
use kopa_store::{
    Access, AdminAct, Administered, AuditBy, NameIds, NewCollection, NewObject, NewPeer, NodeInfo,
    ObjectFilter, PutOutcome, StatusRecord, StoreError, TokenRecord, VersionMatch,
};
use std::collections::HashSet;
use std::sync::Arc;

// Each capability of `Store` (see `kopa_store::prelude`) and the tests that cover it; tests of
// other files are named with their file.
//
// - NodeStore: node_identity, node_secrets_are_drawn_once, node_store_backend_and_clock; clock.rs
// - Directory: orgs_users_tokens, ids_by_name; federation.rs remote_orgs_and_users
// - Credentials: orgs_users_tokens, enrolment_codes, credential_changes_are_audited_with_the_change
// - Administration: administration_is_audited_with_the_act
// - Collections: collections_and_rights, aliases_never_pass_for_ids; federation.rs
//   collections_with_given_ids
// - Objects: put_outcomes, versions_belong_to_their_producer, unversioned_objects, batch_is_atomic,
//   filters, cursor_paging_has_no_gaps, added_after_paging, delete_semantics, search_by_value,
//   marking_labels, nul_characters_are_bad_input; federation.rs provenance_and_routes,
//   count_objects_matches_pages; isolation.rs; superseded.rs
// - Statuses: statuses
// - Audit: audit_chain, audit_head_follows_the_chain
// - PeerStore: peers.rs
// - The store as a whole: concurrent_writers, reopen_keeps_data, two_handles_write_at_once,
//   newer_schema_is_refused, backend_errors_keep_their_source
on_both_backends!(
    // NodeStore
    node_identity,
    node_secrets_are_drawn_once,
    node_store_backend_and_clock,
    // Directory
    orgs_users_tokens,
    users_of_one_organisation,
    ids_by_name,
    // Credentials
    enrolment_codes,
    credential_changes_are_audited_with_the_change,
    // Administration
    administration_is_audited_with_the_act,
    // Collections
    collections_and_rights,
    aliases_never_pass_for_ids,
    // Objects
    put_outcomes,
    versions_belong_to_their_producer,
    unversioned_objects,
    batch_is_atomic,
    filters,
    cursor_paging_has_no_gaps,
    added_after_paging,
    delete_semantics,
    search_by_value,
    marking_labels,
    nul_characters_are_bad_input,
    // Statuses
    statuses,
    // Audit
    audit_chain,
    audit_head_follows_the_chain,
    // The store as a whole
    concurrent_writers,
    reopen_keeps_data,
    two_handles_write_at_once,
    newer_schema_is_refused,
    backend_errors_keep_their_source,
);

fn all_versions() -> VersionMatch {
    VersionMatch {
        all: true,
        ..Default::default()
    }
}

fn filter(limit: usize) -> ObjectFilter {
    object_filter(limit, VersionMatch::last())
}

fn collection(title: &str, read: Access, write: Access) -> NewCollection {
    NewCollection {
        id: None,
        title: title.into(),
        description: Some(format!("{title} room")),
        alias: None,
        read,
        write,
    }
}

/// One organisation with one analyst, and a collection everyone reads and writes.
struct Simple {
    org: kopa_core::OrgId,
    user: UserId,
    coll: String,
}

async fn simple(h: &Harness) -> Simple {
    let org = h.store.add_org("Org").await.unwrap();
    let user = h
        .store
        .add_user("analyst", &org.id, Role::Analyst)
        .await
        .unwrap();
    let c = h
        .store
        .add_collection(&collection("Room", Access::All, Access::All))
        .await
        .unwrap();
    Simple {
        org: org.id,
        user: user.id,
        coll: c.id,
    }
}

async fn node_identity(h: Arc<Harness>) {
    assert_eq!(h.store.node().await.unwrap(), None);
    let n = NodeInfo {
        id: "node-1".into(),
        name: "CSIRT node".into(),
    };
    h.store.init_node(&n).await.unwrap();
    assert_eq!(h.store.node().await.unwrap(), Some(n.clone()));
    let again = h.store.init_node(&n).await;
    assert!(matches!(again, Err(StoreError::Conflict(_))), "{again:?}");
}

/// The backend's name, read through the `NodeStore` capability alone, and the clock the store
/// keeps time by: an audit entry appended now is not later than the clock's next reading.
async fn node_store_backend_and_clock(h: Arc<Harness>) {
    fn backend_name<S: NodeStore + ?Sized>(s: &S) -> &'static str {
        s.backend()
    }
    let s = &h.store;
    let expected = if h.is_postgres() {
        "postgres"
    } else {
        "sqlite"
    };
    assert_eq!(backend_name(&**s), expected);
    assert_eq!(s.backend(), expected);
    let e = s.audit(entry(1)).await.unwrap();
    let at = kopa_stix::Timestamp::parse(&e.at).unwrap();
    assert!(at <= s.clock().now(), "{} is after the clock", e.at);
}

async fn orgs_users_tokens(h: Arc<Harness>) {
    let s = &h.store;
    let a = s.add_org("Bank A").await.unwrap();
    let b = s.add_org("CERT B").await.unwrap();
    assert_ne!(a.id, b.id);
    assert!(matches!(
        s.add_org("Bank A").await,
        Err(StoreError::Conflict(_))
    ));
    assert_eq!(s.org_by_name("CERT B").await.unwrap(), b);
    assert!(matches!(
        s.org_by_name("nobody").await,
        Err(StoreError::NotFound(_))
    ));
    let names: Vec<String> = s
        .orgs()
        .await
        .unwrap()
        .into_iter()
        .map(|o| o.name)
        .collect();
    assert_eq!(names, vec!["Bank A", "CERT B"]);

    let alice = s.add_user("alice", &a.id, Role::OrgAdmin).await.unwrap();
    assert_eq!(alice.org_name, "Bank A");
    assert_eq!(alice.role, Role::OrgAdmin);
    let bob = s.add_user("bob", &b.id, Role::Reader).await.unwrap();
    assert!(matches!(
        s.add_user("alice", &b.id, Role::Reader).await,
        Err(StoreError::Conflict(_))
    ));
    assert!(matches!(
        s.add_user("carol", &kopa_core::OrgId::new(), Role::Reader)
            .await,
        Err(StoreError::NotFound(_))
    ));
    assert_eq!(s.user_by_name("bob").await.unwrap(), bob);
    assert_eq!(s.user_by_id(&alice.id).await.unwrap(), alice);
    assert!(matches!(
        s.user_by_name("carol").await,
        Err(StoreError::NotFound(_))
    ));
    assert!(matches!(
        s.user_by_id(&UserId::new()).await,
        Err(StoreError::NotFound(_))
    ));
    assert_eq!(s.users().await.unwrap(), vec![alice.clone(), bob.clone()]);

    let t = TokenRecord {
        id: "tok1".into(),
        user: alice.id.clone(),
        secret_hash: "ab".repeat(32),
        revoked: false,
    };
    s.add_token(&t).await.unwrap();
    assert_eq!(s.token("tok1").await.unwrap(), t);
    assert_eq!(
        s.token_with_user("tok1").await.unwrap(),
        (t.clone(), alice.clone())
    );
    assert!(matches!(
        s.add_token(&t).await,
        Err(StoreError::Conflict(_))
    ));
    let orphan = TokenRecord {
        id: "tok2".into(),
        user: UserId::new(),
        ..t.clone()
    };
    assert!(matches!(
        s.add_token(&orphan).await,
        Err(StoreError::NotFound(_))
    ));
    // A stronger hash of the same secret replaces the old one (under a new id) only while the old
    // one is stored.
    let stronger = "$argon2id$v=19$m=19456,t=2,p=1$c2FsdHNhbHQ$aGFzaGhhc2hoYXNo";
    assert!(s
        .replace_token("tok1", &t.secret_hash, "ptok1", stronger)
        .await
        .unwrap());
    assert!(matches!(
        s.token("tok1").await,
        Err(StoreError::NotFound(_))
    ));
    let moved = s.token("ptok1").await.unwrap();
    assert_eq!(
        (moved.secret_hash.as_str(), &moved.user),
        (stronger, &alice.id)
    );
    assert!(!s
        .replace_token("ptok1", &t.secret_hash, "ptok1", "other")
        .await
        .unwrap());
    assert_eq!(s.token("ptok1").await.unwrap().secret_hash, stronger);
    assert!(matches!(
        s.replace_token("nope", "a", "b", "c").await,
        Err(StoreError::NotFound(_))
    ));
    s.add_token(&t).await.unwrap();
    assert!(matches!(
        s.replace_token("tok1", &t.secret_hash, "ptok1", "c").await,
        Err(StoreError::Conflict(_))
    ));
    assert_eq!(
        s.tokens_with_id_prefix("p").await.unwrap(),
        vec![s.token("ptok1").await.unwrap()]
    );
    assert_eq!(
        s.tokens_with_id_prefix("tok").await.unwrap(),
        vec![t.clone()]
    );
    assert!(s.tokens_with_id_prefix("q").await.unwrap().is_empty());
    s.revoke_token("tok1").await.unwrap();
    assert!(s.token("tok1").await.unwrap().revoked);
    assert!(s.token_with_user("tok1").await.unwrap().0.revoked);
    assert!(matches!(
        s.token_with_user("nope").await,
        Err(StoreError::NotFound(_))
    ));
    assert!(matches!(
        s.revoke_token("nope").await,
        Err(StoreError::NotFound(_))
    ));
    assert!(matches!(
        s.token("nope").await,
        Err(StoreError::NotFound(_))
    ));
}

async fn ids_by_name(h: Arc<Harness>) {
    let s = &h.store;
    let names = |v: &[&str]| v.iter().map(|n| n.to_string()).collect::<Vec<_>>();
    assert_eq!(s.ids_by_name(&[], &[]).await.unwrap(), NameIds::default());
    let a = s.add_org("Bank A").await.unwrap();
    let remote = s.add_remote_org("CERT R", "node--0123").await.unwrap();
    let alice = s.add_user("alice", &a.id, Role::Analyst).await.unwrap();
    let rob = s.add_user("rob", &remote.id, Role::Reader).await.unwrap();
    // Local and directory entries alike; unknown names are absent; an organisation's name does
    // not resolve as a user's, nor the other way round.
    let got = s
        .ids_by_name(
            &names(&["Bank A", "CERT R", "nowhere", "alice"]),
            &names(&["alice", "rob", "nobody", "Bank A", "it's"]),
        )
        .await
        .unwrap();
    assert_eq!(
        got.orgs,
        [
            ("Bank A".to_string(), a.id.clone()),
            ("CERT R".to_string(), remote.id)
        ]
        .into_iter()
        .collect()
    );
    assert_eq!(
        got.users,
        [
            ("alice".to_string(), alice.id.clone()),
            ("rob".to_string(), rob.id)
        ]
        .into_iter()
        .collect()
    );
    // Only one kind asked.
    let got = s.ids_by_name(&[], &names(&["alice"])).await.unwrap();
    assert!(got.orgs.is_empty());
    assert_eq!(got.users.get("alice"), Some(&alice.id));
    let got = s.ids_by_name(&names(&["Bank A"]), &[]).await.unwrap();
    assert_eq!(got.orgs.get("Bank A"), Some(&a.id));
    assert!(got.users.is_empty());
}

/// A marking-definition version carrying `definition` (its `definition_type`, `definition` or
/// `extensions`), stored with stewardship `s`.
fn marking(id: &str, definition: serde_json::Value, s: &kopa_core::Stewardship) -> NewObject {
    let mut json = serde_json::json!({
        "type": "marking-definition",
        "spec_version": "2.1",
        "id": id,
        "created": "2022-10-01T00:00:00.000Z",
    });
    if let (Some(m), serde_json::Value::Object(d)) = (json.as_object_mut(), definition) {
        m.extend(d);
    }
    NewObject {
        id: id.to_string(),
        type_: "marking-definition".to_string(),
        spec_version: "2.1".to_string(),
        version: Some(ts("2022-10-01T00:00:00.000Z")),
        json: json.to_string(),
        steward: s.clone(),
        values: Vec::new(),
        origin: None,
        via: None,
    }
}

async fn marking_labels(h: Arc<Harness>) {
    let s = &h.store;
    assert!(s.marking_labels(&[]).await.unwrap().is_empty());
    let Simple { org, user, coll } = simple(&h).await;
    let other = s
        .add_collection(&collection("Other", Access::All, Access::All))
        .await
        .unwrap()
        .id;
    let tlp2 = |colour: &str| {
        serde_json::json!({"extensions": {kopa_stix::TLP2_EXTENSION_ID: {
            "extension_type": "property-extension", "tlp_2_0": colour}}})
    };
    // A RED definition stored with an upper-case UUID; a TLP 1.0 definition; a statement; one id
    // defined GREEN in one collection and AMBER+STRICT in another; an indicator with a look-alike id.
    let red = "marking-definition--0F5A5A3E-2B8E-4C7D-9A43-6B1D2C3E4F50";
    let amber1 = sid("marking-definition", 1);
    let statement = sid("marking-definition", 2);
    let twice = sid("marking-definition", 3);
    let unknown = sid("marking-definition", 4);
    // The stewardship of a definition does not matter: its label only ever narrows.
    let private = steward(&org, &user, Tlp::Red);
    let outcomes = s
        .put_objects(
            &coll,
            vec![
                marking(red, tlp2("red"), &private),
                marking(
                    &amber1,
                    serde_json::json!({"definition_type": "tlp", "definition": {"tlp": "amber"}}),
                    &private,
                ),
                marking(
                    &statement,
                    serde_json::json!({"definition_type": "statement",
                                       "definition": {"statement": "Copyright"}}),
                    &private,
                ),
                marking(&twice, tlp2("green"), &private),
                indicator(
                    &sid("indicator", 5),
                    "2024-01-01T00:00:00.000Z",
                    "",
                    &private,
                ),
            ],
        )
        .await
        .unwrap();
    assert!(outcomes
        .iter()
        .all(|o| matches!(o, PutOutcome::Stored { .. })));
    s.put_objects(
        &other,
        vec![marking(&twice, tlp2("amber+strict"), &private)],
    )
    .await
    .unwrap();
    let ids = vec![
        red.to_ascii_lowercase(),
        amber1.clone(),
        statement,
        twice.clone(),
        unknown,
        sid("indicator", 5),
    ];
    let got = s.marking_labels(&ids).await.unwrap();
    let want: std::collections::HashMap<String, Tlp> = [
        (red.to_ascii_lowercase(), Tlp::Red),
        (amber1, Tlp::Amber),
        (twice, Tlp::AmberStrict),
    ]
    .into_iter()
    .collect();
    assert_eq!(got, want);
}

/// A path names a collection by its id or its alias, so an alias may be neither a UUID nor any
/// collection's id or alias (regression: a UUID alias, or another collection's id as alias, made
/// one path name two collections).
async fn aliases_never_pass_for_ids(h: Arc<Harness>) {
    let s = &h.store;
    let first = s
        .add_collection(&collection("First", Access::All, Access::All))
        .await
        .unwrap();
    let mut named = collection("Named", Access::All, Access::All);
    named.alias = Some("named-room".into());
    s.add_collection(&named).await.unwrap();
    let with_alias = |alias: &str| {
        let mut nc = collection("Try", Access::All, Access::All);
        nc.alias = Some(alias.to_string());
        nc
    };
    let fresh = uuid::Uuid::new_v4();
    let cases: &[(&str, String, &str)] = &[
        ("a UUID", fresh.to_string(), "is a UUID"),
        (
            "a UUID in capitals",
            fresh.to_string().to_uppercase(),
            "is a UUID",
        ),
        (
            "a UUID without hyphens",
            fresh.simple().to_string(),
            "is a UUID",
        ),
        ("a braced UUID", format!("{{{fresh}}}"), "is a UUID"),
        ("a URN", fresh.urn().to_string(), "is a UUID"),
        ("another collection's id", first.id.clone(), "is a UUID"),
        (
            "another collection's alias",
            "named-room".into(),
            "already the id or the alias",
        ),
        ("empty", String::new(), "must not be empty"),
    ];
    for (name, alias, needle) in cases {
        let refused = s.add_collection(&with_alias(alias)).await;
        let message = match refused {
            Err(StoreError::Invalid(m)) | Err(StoreError::Conflict(m)) => m,
            other => panic!("{name}: alias {alias:?} was not refused: {other:?}"),
        };
        assert!(message.contains(needle), "{name}: {message}");
    }
    let mut same_id = collection("Same id", Access::All, Access::All);
    same_id.id = Some(first.id.clone());
    assert!(matches!(
        s.add_collection(&same_id).await,
        Err(StoreError::Conflict(m)) if m.contains("already exists")
    ));
    // A database from before this rule may hold a UUID alias: no new collection takes it as its id.
    let legacy = uuid::Uuid::new_v4().to_string();
    h.exec(&format!(
        "UPDATE collections SET alias = '{legacy}' WHERE id = '{}'",
        first.id
    ))
    .await;
    let mut shadow = collection("Shadow", Access::All, Access::All);
    shadow.id = Some(legacy.clone());
    assert!(matches!(
        s.add_collection(&shadow).await,
        Err(StoreError::Conflict(m)) if m.contains("already the id or the alias") && m.contains(&first.id)
    ));
    // Nothing refused was written; a plain alias still works.
    let all = s
        .collections(&audience(&kopa_core::OrgId::new(), &UserId::new()).into())
        .await
        .unwrap();
    assert_eq!(all.len(), 2);
    s.add_collection(&with_alias("feeds-2026")).await.unwrap();
}

/// A node secret is drawn once and kept: the same for every later call and for a second handle
/// on the same database; each purpose has its own.
async fn node_secrets_are_drawn_once(h: Arc<Harness>) {
    let first = h.store.node_secret("taxii-cursor").await.unwrap();
    assert_ne!(first, [0u8; 32]);
    assert_eq!(h.store.node_secret("taxii-cursor").await.unwrap(), first);
    let other = kopa_store::open(&h.location(), false).await.unwrap();
    assert_eq!(other.node_secret("taxii-cursor").await.unwrap(), first);
    let second = other.node_secret("another-purpose").await.unwrap();
    assert_ne!(second, first);
    assert_eq!(
        h.store.node_secret("another-purpose").await.unwrap(),
        second
    );
}

async fn collections_and_rights(h: Arc<Harness>) {
    let s = &h.store;
    let a = s.add_org("A").await.unwrap();
    let b = s.add_org("B").await.unwrap();
    let c = s.add_org("C").await.unwrap();
    let ua = s.add_user("ua", &a.id, Role::Analyst).await.unwrap();
    let ub = s.add_user("ub", &b.id, Role::Analyst).await.unwrap();
    let uc = s.add_user("uc", &c.id, Role::Analyst).await.unwrap();
    let everyone = s
        .add_collection(&collection("Everyone", Access::All, Access::All))
        .await
        .unwrap();
    let mut nc = collection(
        "AB",
        Access::Orgs(vec![b.id.clone(), a.id.clone()]),
        Access::Orgs(vec![a.id.clone()]),
    );
    nc.alias = Some("ab-room".into());
    let ab = s.add_collection(&nc).await.unwrap();
    assert_eq!(ab.alias.as_deref(), Some("ab-room"));
    let write_only = s
        .add_collection(&collection(
            "Drop box",
            Access::Orgs(vec![a.id.clone()]),
            Access::All,
        ))
        .await
        .unwrap();
    // Alias unique, orgs must exist.
    assert!(matches!(
        s.add_collection(&nc).await,
        Err(StoreError::Conflict(_))
    ));
    assert!(matches!(
        s.add_collection(&collection(
            "X",
            Access::Orgs(vec![kopa_core::OrgId::new()]),
            Access::All
        ))
        .await,
        Err(StoreError::NotFound(_))
    ));

    let rights = |views: Vec<kopa_store::CollectionView>| -> Vec<(String, bool, bool)> {
        views
            .into_iter()
            .map(|v| (v.collection.title, v.can_read, v.can_write))
            .collect()
    };
    let t = |s: &str, r, w| (s.to_string(), r, w);
    assert_eq!(
        rights(
            s.collections(&audience(&a.id, &ua.id).into())
                .await
                .unwrap()
        ),
        vec![
            t("Everyone", true, true),
            t("AB", true, true),
            t("Drop box", true, true)
        ]
    );
    assert_eq!(
        rights(
            s.collections(&audience(&b.id, &ub.id).into())
                .await
                .unwrap()
        ),
        vec![
            t("Everyone", true, true),
            t("AB", true, false),
            t("Drop box", false, true)
        ]
    );
    assert_eq!(
        rights(
            s.collections(&audience(&c.id, &uc.id).into())
                .await
                .unwrap()
        ),
        vec![t("Everyone", true, true), t("Drop box", false, true)]
    );
    // One collection: by id or alias; NotFound when neither right.
    let v = s
        .collection(&audience(&b.id, &ub.id).into(), &ab.id)
        .await
        .unwrap();
    assert_eq!((v.can_read, v.can_write), (true, false));
    assert_eq!(v.collection, ab);
    let v = s
        .collection(&audience(&a.id, &ua.id).into(), "ab-room")
        .await
        .unwrap();
    assert_eq!(v.collection.id, ab.id);
    assert!(matches!(
        s.collection(&audience(&c.id, &uc.id).into(), &ab.id).await,
        Err(StoreError::NotFound(_))
    ));
    assert!(matches!(
        s.collection(&audience(&a.id, &ua.id).into(), "no-such")
            .await,
        Err(StoreError::NotFound(_))
    ));
    assert_eq!(
        s.collection(&audience(&c.id, &uc.id).into(), &everyone.id)
            .await
            .unwrap()
            .collection
            .read,
        Access::All
    );
    // A write-only reader gets an empty page, never objects.
    let st = steward(&a.id, &ua.id, Tlp::Clear);
    s.put_objects(
        &write_only.id,
        vec![indicator(
            &sid("indicator", 1),
            "2021-01-01T00:00:00Z",
            "x",
            &st,
        )],
    )
    .await
    .unwrap();
    let page = s
        .objects(&audience(&b.id, &ub.id).into(), &write_only.id, &filter(10))
        .await
        .unwrap();
    assert!(page.objects.is_empty() && !page.more);
    let page = s
        .objects(&audience(&a.id, &ua.id).into(), &write_only.id, &filter(10))
        .await
        .unwrap();
    assert_eq!(page.objects.len(), 1);
    assert!(matches!(
        s.objects(&audience(&a.id, &ua.id).into(), "no-such", &filter(10))
            .await,
        Err(StoreError::NotFound(_))
    ));
}

async fn put_outcomes(h: Arc<Harness>) {
    let w = simple(&h).await;
    let s = &h.store;
    let st = steward(&w.org, &w.user, Tlp::Green);
    let id = sid("indicator", 7);
    let v1 = indicator(&id, "2021-01-01T00:00:00Z", "one", &st);
    let v2 = indicator(&id, "2021-02-01T00:00:00Z", "two", &st);
    let out = s
        .put_objects(&w.coll, vec![v1.clone(), v2.clone()])
        .await
        .unwrap();
    assert_eq!(
        out,
        vec![
            PutOutcome::Stored {
                version: ts("2021-01-01T00:00:00Z")
            },
            PutOutcome::Stored {
                version: ts("2021-02-01T00:00:00Z")
            }
        ]
    );
    // Re-posting the same bytes is a duplicate; different bytes under the same version fail.
    let clash = indicator(&id, "2021-01-01T00:00:00Z", "changed", &st);
    let v3 = indicator(&id, "2021-03-01T00:00:00Z", "three", &st);
    let out = s
        .put_objects(
            &w.coll,
            vec![v1.clone(), clash.clone(), v3.clone(), v3.clone()],
        )
        .await
        .unwrap();
    assert_eq!(
        out[0],
        PutOutcome::Duplicate {
            version: ts("2021-01-01T00:00:00Z")
        }
    );
    match &out[1] {
        PutOutcome::Failed { message } => assert!(
            message.contains("a different object") && message.contains(&id),
            "{message}"
        ),
        other => panic!("expected a failure, got {other:?}"),
    }
    assert_eq!(
        out[2],
        PutOutcome::Stored {
            version: ts("2021-03-01T00:00:00Z")
        }
    );
    assert_eq!(
        out[3],
        PutOutcome::Duplicate {
            version: ts("2021-03-01T00:00:00Z")
        }
    );
    let mut f = filter(100);
    f.versions = all_versions();
    let page = s
        .objects(&audience(&w.org, &w.user).into(), &w.coll, &f)
        .await
        .unwrap();
    assert_eq!(page.objects.len(), 3);
    assert_eq!(page.objects[0].json, v1.json, "stored byte for byte");
    // The same version in another collection is independent.
    let other = s
        .add_collection(&collection("Other", Access::All, Access::All))
        .await
        .unwrap();
    let out = s.put_objects(&other.id, vec![clash]).await.unwrap();
    assert!(matches!(out[0], PutOutcome::Stored { .. }));
    // Unknown collection: an error, nothing written.
    assert!(matches!(
        s.put_objects("no-such", vec![v1]).await,
        Err(StoreError::NotFound(_))
    ));
    assert_eq!(s.put_objects(&w.coll, Vec::new()).await.unwrap(), vec![]);
}

/// A new version of an object is stored only for its producer: the owner organisation of the
/// versions held anywhere on the node and, for a received object, its origin node. Another
/// organisation's version, or a peer's version of an object originated elsewhere, fails alone,
/// with a message that says only that the id belongs to another producer.
async fn versions_belong_to_their_producer(h: Arc<Harness>) {
    let w = simple(&h).await;
    let s = &h.store;
    let b = s.add_org("B").await.unwrap();
    let ub = s.add_user("ub", &b.id, Role::Analyst).await.unwrap();
    let id = sid("indicator", 41);
    let mine = steward(&w.org, &w.user, Tlp::Red);
    let v1 = indicator(&id, "2021-01-01T00:00:00Z", "one", &mine);
    assert!(matches!(
        s.put_objects(&w.coll, vec![v1.clone()]).await.unwrap()[0],
        PutOutcome::Stored { .. }
    ));
    // B revokes A's indicator, in the same collection and in another one; a colleague of the
    // author (same organisation) may version it.
    let theirs = steward(&b.id, &ub.id, Tlp::Green);
    let hijack = indicator(&id, "2021-02-01T00:00:00Z", "revoked", &theirs);
    let same_version = indicator(&id, "2021-01-01T00:00:00Z", "one", &theirs);
    let other = s
        .add_collection(&collection("B's room", Access::All, Access::All))
        .await
        .unwrap();
    let colleague = s.add_user("ua2", &w.org, Role::Analyst).await.unwrap();
    let v2 = indicator(
        &id,
        "2021-03-01T00:00:00Z",
        "two",
        &steward(&w.org, &colleague.id, Tlp::Green),
    );
    let fresh = indicator(
        &sid("indicator", 42),
        "2021-01-01T00:00:00Z",
        "b's",
        &theirs,
    );
    let out = s
        .put_objects(
            &w.coll,
            vec![hijack.clone(), same_version, fresh, v2.clone()],
        )
        .await
        .unwrap();
    for refused in &out[..2] {
        match refused {
            PutOutcome::Failed { message } => {
                assert!(message.contains("belongs to another producer"), "{message}");
                assert!(
                    !message.contains("one"),
                    "says nothing of the content: {message}"
                );
            }
            o => panic!("expected a refusal, got {o:?}"),
        }
    }
    assert!(matches!(out[2], PutOutcome::Stored { .. }));
    assert!(matches!(out[3], PutOutcome::Stored { .. }));
    assert!(matches!(
        s.put_objects(&other.id, vec![hijack]).await.unwrap()[0],
        PutOutcome::Failed { .. }
    ));
    // A received object: a version from another origin node, or from the same node but another
    // organisation, is refused; the origin's own next version is stored.
    let rid = sid("indicator", 43);
    let origin_org = kopa_core::OrgId("org-on-node-a".into());
    let received = |version: &str, org: &kopa_core::OrgId, node: &str| {
        let mut o = indicator(
            &rid,
            version,
            version,
            &steward(org, &UserId(node.into()), Tlp::Green),
        );
        o.origin = Some(node.to_string());
        o.via = Some(node.to_string());
        o
    };
    let a = "node--000000000000000000000000000000aa";
    let c = "node--000000000000000000000000000000cc";
    let out = s
        .put_objects(
            &w.coll,
            vec![
                received("2021-01-01T00:00:00Z", &origin_org, a),
                received("2021-02-01T00:00:00Z", &origin_org, c),
                received("2021-03-01T00:00:00Z", &kopa_core::OrgId("other".into()), a),
                received("2021-04-01T00:00:00Z", &origin_org, a),
            ],
        )
        .await
        .unwrap();
    assert!(matches!(out[0], PutOutcome::Stored { .. }));
    assert!(matches!(out[1], PutOutcome::Failed { .. }));
    assert!(matches!(out[2], PutOutcome::Failed { .. }));
    assert!(matches!(out[3], PutOutcome::Stored { .. }));
    // A local post of the received object's id is another producer too.
    let local = indicator(&rid, "2021-05-01T00:00:00Z", "x", &mine);
    assert!(matches!(
        s.put_objects(&w.coll, vec![local]).await.unwrap()[0],
        PutOutcome::Failed { .. }
    ));
    let mut f = filter(100);
    f.versions = all_versions();
    f.ids = vec![id.clone(), rid.clone()];
    let page = s
        .objects(&audience(&w.org, &w.user).into(), &w.coll, &f)
        .await
        .unwrap();
    assert_eq!(
        page.objects.len(),
        4,
        "v1, v2 and the origin's two versions"
    );
}

/// Enrolment codes: issuing one revokes the user's tokens; redeeming it stores a token once.
async fn enrolment_codes(h: Arc<Harness>) {
    let w = simple(&h).await;
    let s = &h.store;
    let token = |id: &str| kopa_store::TokenRecord {
        id: id.into(),
        user: w.user.clone(),
        secret_hash: "00".repeat(32),
        revoked: false,
    };
    s.add_token(&token("t1")).await.unwrap();
    s.add_token(&token("t2")).await.unwrap();
    s.revoke_token("t2").await.unwrap();
    let e = kopa_store::EnrolmentRecord {
        id: "e1".into(),
        user: w.user.clone(),
        secret_hash: "11".repeat(32),
        issued_by: "admin".into(),
        issued_at: ts("2026-01-01T00:00:00Z"),
        expires_at: ts("2026-01-02T00:00:00Z"),
        redeemed_at: None,
        redeemed_from: None,
    };
    assert_eq!(s.add_enrolment(&e).await.unwrap(), 1, "t1 revoked");
    assert!(s.token("t1").await.unwrap().revoked);
    assert_eq!(s.enrolment("e1").await.unwrap(), e);
    let at = ts("2026-01-01T01:00:00Z");
    s.redeem_enrolment("e1", &token("t3"), at, "192.0.2.1")
        .await
        .unwrap();
    assert!(!s.token("t3").await.unwrap().revoked);
    assert!(matches!(
        s.redeem_enrolment("e1", &token("t4"), at, "192.0.2.1")
            .await,
        Err(StoreError::Conflict(_))
    ));
    assert!(matches!(s.token("t4").await, Err(StoreError::NotFound(_))));
    let listed = s.enrolments(&w.user).await.unwrap();
    assert_eq!(listed.len(), 1);
    assert_eq!(listed[0].redeemed_at, Some(at));
    assert_eq!(listed[0].redeemed_from.as_deref(), Some("192.0.2.1"));
    assert!(matches!(
        s.enrolment("nope").await,
        Err(StoreError::NotFound(_))
    ));
    let mut ghost = e.clone();
    ghost.id = "e2".into();
    ghost.user = UserId("ghost".into());
    assert!(matches!(
        s.add_enrolment(&ghost).await,
        Err(StoreError::NotFound(_))
    ));
}

async fn unversioned_objects(h: Arc<Harness>) {
    let w = simple(&h).await;
    let s = &h.store;
    let st = steward(&w.org, &w.user, Tlp::Clear);
    let ip = typed("ipv4-addr", &sid("ipv4-addr", 1), None, "203.0.113.7", &st);
    let out = s
        .put_objects(&w.coll, vec![ip.clone(), ip.clone()])
        .await
        .unwrap();
    let PutOutcome::Stored { version } = out[0] else {
        panic!("{out:?}")
    };
    assert_eq!(out[1], PutOutcome::Duplicate { version });
    let page = s
        .objects(&audience(&w.org, &w.user).into(), &w.coll, &filter(10))
        .await
        .unwrap();
    assert_eq!(page.objects.len(), 1);
    // Its version is its date_added.
    assert_eq!(page.objects[0].version, page.objects[0].date_added);
    assert_eq!(page.objects[0].version, version);
    // Posted again later: still a duplicate of the stored one.
    let out = s.put_objects(&w.coll, vec![ip.clone()]).await.unwrap();
    assert_eq!(out, vec![PutOutcome::Duplicate { version }]);
    // Different content under the same id: a new version.
    let other = typed("ipv4-addr", &sid("ipv4-addr", 1), None, "changed", &st);
    let out = s.put_objects(&w.coll, vec![other]).await.unwrap();
    assert!(matches!(out[0], PutOutcome::Stored { version: v } if v > version));
}

async fn batch_is_atomic(h: Arc<Harness>) {
    let w = simple(&h).await;
    let s = &h.store;
    let st = steward(&w.org, &w.user, Tlp::Clear);
    let poison = sid("indicator", 666);
    // A trigger that makes the database refuse one row, in the middle of a batch.
    if h.is_postgres() {
        h.exec(&format!(
            "CREATE FUNCTION refuse() RETURNS trigger AS $$ BEGIN IF NEW.stix_id = '{poison}' \
             THEN RAISE EXCEPTION 'refused'; END IF; RETURN NEW; END $$ LANGUAGE plpgsql; \
             CREATE TRIGGER refuse BEFORE INSERT ON objects FOR EACH ROW EXECUTE FUNCTION \
             refuse();"
        ))
        .await;
    } else {
        h.exec(&format!(
            "CREATE TRIGGER refuse BEFORE INSERT ON objects WHEN NEW.stix_id = '{poison}' BEGIN \
             SELECT RAISE(ABORT, 'refused'); END;"
        ))
        .await;
    }
    let mut batch: Vec<_> = (1..=5)
        .map(|i| indicator(&sid("indicator", i), "2021-01-01T00:00:00Z", "ok", &st))
        .collect();
    batch.insert(3, indicator(&poison, "2021-01-01T00:00:00Z", "poison", &st));
    batch[0].values = vec!["198.51.100.1".into()];
    assert!(s.put_objects(&w.coll, batch).await.is_err());
    let page = s
        .objects(&audience(&w.org, &w.user).into(), &w.coll, &filter(10))
        .await
        .unwrap();
    assert!(page.objects.is_empty(), "nothing of a failed batch is kept");
    assert!(s
        .search(&audience(&w.org, &w.user), "198.51.100.1", 10)
        .await
        .unwrap()
        .is_empty());
    // The store still works, and sequence numbers keep increasing.
    let out = s
        .put_objects(
            &w.coll,
            vec![indicator(
                &sid("indicator", 1),
                "2021-01-01T00:00:00Z",
                "ok",
                &st,
            )],
        )
        .await
        .unwrap();
    assert!(matches!(out[0], PutOutcome::Stored { .. }));
}

/// Three objects of two types with versions, for the filter tests.
async fn filters(h: Arc<Harness>) {
    let w = simple(&h).await;
    let s = &h.store;
    let who = audience(&w.org, &w.user);
    let st = steward(&w.org, &w.user, Tlp::Clear);
    let ind = sid("indicator", 1);
    let mal = sid("malware", 2);
    let old = sid("indicator", 3);
    // Added in this order: ind v1, mal v1, ind v2, old (2.0), ind v3.
    for o in [
        indicator(&ind, "2021-01-01T00:00:00Z", "v1", &st),
        typed("malware", &mal, Some("2021-01-05T00:00:00Z"), "m", &st),
        indicator(&ind, "2021-02-01T00:00:00Z", "v2", &st),
        {
            let mut o = indicator(&old, "2019-01-01T00:00:00Z", "old", &st);
            o.spec_version = "2.0".into();
            o
        },
        indicator(&ind, "2021-03-01T00:00:00Z", "v3", &st),
    ] {
        s.put_objects(&w.coll, vec![o]).await.unwrap();
    }
    let get = |f: ObjectFilter| {
        let s = s.clone();
        let who = who.clone();
        let coll = w.coll.clone();
        async move {
            s.objects(&who.clone().into(), &coll, &f)
                .await
                .unwrap()
                .objects
                .into_iter()
                .map(|o| (o.id, o.version.to_taxii()))
                .collect::<Vec<_>>()
        }
    };
    let v = |id: &str, t: &str| (id.to_string(), Timestamp_(t));
    #[allow(non_snake_case)]
    fn Timestamp_(t: &str) -> String {
        ts(t).to_taxii()
    }
    // Default: last version of each object, in date_added order.
    assert_eq!(
        get(filter(100)).await,
        vec![
            v(&mal, "2021-01-05T00:00:00Z"),
            v(&old, "2019-01-01T00:00:00Z"),
            v(&ind, "2021-03-01T00:00:00Z")
        ]
    );
    let mut f = filter(100);
    f.versions = all_versions();
    assert_eq!(get(f.clone()).await.len(), 5);
    f.versions = VersionMatch {
        first: true,
        ..Default::default()
    };
    assert_eq!(
        get(f.clone()).await,
        vec![
            v(&ind, "2021-01-01T00:00:00Z"),
            v(&mal, "2021-01-05T00:00:00Z"),
            v(&old, "2019-01-01T00:00:00Z")
        ]
    );
    f.versions = VersionMatch {
        first: true,
        last: true,
        ..Default::default()
    };
    assert_eq!(get(f.clone()).await.len(), 4);
    f.versions = VersionMatch {
        at: vec![ts("2021-02-01T00:00:00Z"), ts("2021-01-05T00:00:00Z")],
        ..Default::default()
    };
    assert_eq!(
        get(f.clone()).await,
        vec![
            v(&mal, "2021-01-05T00:00:00Z"),
            v(&ind, "2021-02-01T00:00:00Z")
        ]
    );
    f.versions = VersionMatch {
        at: vec![ts("2021-02-01T00:00:00Z")],
        last: true,
        ..Default::default()
    };
    assert_eq!(get(f.clone()).await.len(), 4);
    // ids, types (OR within a field, AND across fields).
    let mut f = filter(100);
    f.ids = vec![ind.clone(), old.clone()];
    assert_eq!(
        get(f.clone()).await,
        vec![
            v(&old, "2019-01-01T00:00:00Z"),
            v(&ind, "2021-03-01T00:00:00Z")
        ]
    );
    f.types = vec!["malware".into()];
    assert!(get(f.clone()).await.is_empty());
    let mut f = filter(100);
    f.types = vec!["malware".into(), "indicator".into()];
    assert_eq!(get(f.clone()).await.len(), 3);
    f.types = vec!["report".into()];
    assert!(get(f).await.is_empty());
    // spec_version.
    let mut f = filter(100);
    f.spec_versions = vec!["2.0".into()];
    assert_eq!(get(f.clone()).await, vec![v(&old, "2019-01-01T00:00:00Z")]);
    f.spec_versions = vec!["2.1".into()];
    assert_eq!(get(f).await.len(), 2);
    // added_after is strict, against date_added.
    let mut f = filter(100);
    f.versions = all_versions();
    let all = s
        .objects(&who.clone().into(), &w.coll, &f)
        .await
        .unwrap()
        .objects;
    for pair in all.windows(2) {
        assert!(pair[0].seq < pair[1].seq);
        assert!(pair[0].date_added < pair[1].date_added);
    }
    f.added_after = Some(all[1].date_added);
    let after: Vec<i64> = s
        .objects(&who.clone().into(), &w.coll, &f)
        .await
        .unwrap()
        .objects
        .iter()
        .map(|o| o.seq)
        .collect();
    assert_eq!(after, vec![all[2].seq, all[3].seq, all[4].seq]);
    // Last version is the last of all versions, whatever added_after cuts.
    let mut f = filter(100);
    f.added_after = Some(all[1].date_added);
    f.ids = vec![ind.clone()];
    assert_eq!(get(f).await, vec![v(&ind, "2021-03-01T00:00:00Z")]);
    // limit and more.
    let mut f = filter(2);
    f.versions = all_versions();
    let p = s.objects(&who.clone().into(), &w.coll, &f).await.unwrap();
    assert_eq!(p.objects.len(), 2);
    assert!(p.more);
    f.limit = 5;
    let p = s.objects(&who.clone().into(), &w.coll, &f).await.unwrap();
    assert_eq!(p.objects.len(), 5);
    assert!(!p.more, "exactly limit left: no more");
    f.after_seq = Some(p.objects[4].seq);
    let p = s.objects(&who.clone().into(), &w.coll, &f).await.unwrap();
    assert!(p.objects.is_empty() && !p.more);
}

async fn cursor_paging_has_no_gaps(h: Arc<Harness>) {
    let w = simple(&h).await;
    let s = &h.store;
    let who = audience(&w.org, &w.user);
    let st = steward(&w.org, &w.user, Tlp::Clear);
    let mut expected = Vec::new();
    for batch in 0..5u64 {
        let objs: Vec<_> = (0..60u64)
            .map(|i| {
                let n = batch * 1000 + i;
                // Some objects get a second version in a later batch.
                let id = sid("indicator", if batch > 0 && i < 10 { i } else { n });
                indicator(&id, &format!("2021-01-01T00:00:{:02}Z", batch), "p", &st)
            })
            .collect();
        for o in &objs {
            expected.push((o.id.clone(), o.version.unwrap()));
        }
        s.put_objects(&w.coll, objs).await.unwrap();
    }
    for limit in [1usize, 7, 60, 299, 300, 1000] {
        let mut f = filter(limit);
        f.versions = all_versions();
        let mut got = Vec::new();
        let mut pages = 0;
        loop {
            let p = s.objects(&who.clone().into(), &w.coll, &f).await.unwrap();
            assert!(p.objects.len() <= limit);
            pages += 1;
            got.extend(p.objects.iter().map(|o| (o.id.clone(), o.version)));
            if !p.more {
                break;
            }
            f.after_seq = Some(p.objects.last().unwrap().seq);
        }
        assert_eq!(got, expected, "limit {limit}");
        assert_eq!(
            pages,
            expected.len().div_ceil(limit).max(1),
            "limit {limit}"
        );
    }
    // With the default (last version), the versioned-twice objects appear once.
    let mut f = filter(13);
    let mut ids = Vec::new();
    loop {
        let p = s.objects(&who.clone().into(), &w.coll, &f).await.unwrap();
        ids.extend(p.objects.iter().map(|o| o.id.clone()));
        if !p.more {
            break;
        }
        f.after_seq = Some(p.objects.last().unwrap().seq);
    }
    let unique: HashSet<_> = ids.iter().cloned().collect();
    assert_eq!(unique.len(), ids.len());
    assert_eq!(ids.len(), 300 - 40);
}

/// A client without `next` pages with added_after = the last date_added it saw.
async fn added_after_paging(h: Arc<Harness>) {
    let w = simple(&h).await;
    let s = &h.store;
    let who = audience(&w.org, &w.user);
    let st = steward(&w.org, &w.user, Tlp::Clear);
    // One big batch: every object gets its own date_added even though written at once.
    let objs: Vec<_> = (0..250u64)
        .map(|i| indicator(&sid("indicator", i), "2021-01-01T00:00:00Z", "a", &st))
        .collect();
    s.put_objects(&w.coll, objs).await.unwrap();
    let mut f = filter(40);
    let mut seen = Vec::new();
    loop {
        let p = s.objects(&who.clone().into(), &w.coll, &f).await.unwrap();
        if p.objects.is_empty() {
            break;
        }
        seen.extend(p.objects.iter().map(|o| o.id.clone()));
        f.added_after = Some(p.objects.last().unwrap().date_added);
    }
    let want: Vec<String> = (0..250u64).map(|i| sid("indicator", i)).collect();
    assert_eq!(seen, want);
}

async fn delete_semantics(h: Arc<Harness>) {
    let s = &h.store;
    let a = s.add_org("A").await.unwrap();
    let b = s.add_org("B").await.unwrap();
    let ua = s.add_user("ua", &a.id, Role::Analyst).await.unwrap();
    let ub = s.add_user("ub", &b.id, Role::Analyst).await.unwrap();
    let c = s
        .add_collection(&collection("Room", Access::All, Access::All))
        .await
        .unwrap();
    let wa = audience(&a.id, &ua.id);
    let pa = principal(&a.id, &ua.id, Role::Analyst);
    let pb = principal(&b.id, &ub.id, Role::Analyst);
    let st = steward(&a.id, &ua.id, Tlp::Green);
    let id = sid("indicator", 1);
    let times = [
        "2021-01-01T00:00:00Z",
        "2021-02-01T00:00:00Z",
        "2021-03-01T00:00:00Z",
        "2021-04-01T00:00:00Z",
    ];
    let objs: Vec<_> = times
        .iter()
        .map(|t| {
            let mut o = indicator(&id, t, t, &st);
            o.values = vec!["evil.example".into()];
            o
        })
        .collect();
    s.put_objects(&c.id, objs).await.unwrap();
    // RED object of A: B cannot see it, so cannot delete it.
    let red_id = sid("indicator", 2);
    s.put_objects(
        &c.id,
        vec![indicator(
            &red_id,
            times[0],
            "red",
            &steward(&a.id, &ua.id, Tlp::Red),
        )],
    )
    .await
    .unwrap();
    assert_eq!(
        s.delete_object(&pb, RW, &c.id, &red_id, &all_versions(), &[])
            .await
            .unwrap(),
        0
    );
    let versions_of = |who: kopa_core::Audience, id: String| {
        let s = s.clone();
        let coll = c.id.clone();
        async move {
            let mut f = filter(100);
            f.versions = all_versions();
            f.ids = vec![id];
            s.objects(&who.clone().into(), &coll, &f)
                .await
                .unwrap()
                .objects
                .into_iter()
                .map(|o| o.version)
                .collect::<Vec<_>>()
        }
    };
    assert_eq!(versions_of(wa.clone(), red_id.clone()).await.len(), 1);
    // One specific version: B sees it but only A's organisation owns it, so B's delete is refused
    // and deletes nothing; A's deletes it.
    let one = VersionMatch {
        at: vec![ts(times[1])],
        ..Default::default()
    };
    assert!(matches!(
        s.delete_object(&pb, RW, &c.id, &id, &one, &[]).await,
        Err(StoreError::Refused(_))
    ));
    assert_eq!(versions_of(wa.clone(), id.clone()).await.len(), 4);
    // Another analyst of A (not the author) deletes as the owner organisation.
    let ua2 = s.add_user("ua2", &a.id, Role::Analyst).await.unwrap();
    let pa2 = principal(&a.id, &ua2.id, Role::Analyst);
    let n = s
        .delete_object(&pa2, RW, &c.id, &id, &one, &[])
        .await
        .unwrap();
    assert_eq!(n, 1);
    assert_eq!(
        versions_of(wa.clone(), id.clone()).await,
        vec![ts(times[0]), ts(times[2]), ts(times[3])]
    );
    // The last, then the first.
    assert_eq!(
        s.delete_object(&pa, RW, &c.id, &id, &VersionMatch::last(), &[])
            .await
            .unwrap(),
        1
    );
    let first = VersionMatch {
        first: true,
        ..Default::default()
    };
    assert_eq!(
        s.delete_object(&pa, RW, &c.id, &id, &first, &[])
            .await
            .unwrap(),
        1
    );
    assert_eq!(
        versions_of(wa.clone(), id.clone()).await,
        vec![ts(times[2])]
    );
    // A spec_version that does not match deletes nothing.
    assert_eq!(
        s.delete_object(&pa, RW, &c.id, &id, &all_versions(), &["2.0".to_string()])
            .await
            .unwrap(),
        0
    );
    // All: gone from reads and search.
    assert_eq!(
        s.delete_object(&pa, RW, &c.id, &id, &all_versions(), &[])
            .await
            .unwrap(),
        1
    );
    assert!(versions_of(wa.clone(), id.clone()).await.is_empty());
    assert!(s.search(&wa, "evil.example", 10).await.unwrap().is_empty());
    assert_eq!(
        s.delete_object(&pa, RW, &c.id, &id, &all_versions(), &[])
            .await
            .unwrap(),
        0
    );
    assert!(matches!(
        s.delete_object(&pa, RW, "no-such", &id, &all_versions(), &[])
            .await,
        Err(StoreError::NotFound(_))
    ));
    // The author can still delete its RED object.
    assert_eq!(
        s.delete_object(&pa, RW, &c.id, &red_id, &all_versions(), &[])
            .await
            .unwrap(),
        1
    );
}

async fn search_by_value(h: Arc<Harness>) {
    let s = &h.store;
    let a = s.add_org("A").await.unwrap();
    let b = s.add_org("B").await.unwrap();
    let ua = s.add_user("ua", &a.id, Role::Analyst).await.unwrap();
    let ub = s.add_user("ub", &b.id, Role::Analyst).await.unwrap();
    let open = s
        .add_collection(&collection("Open", Access::All, Access::All))
        .await
        .unwrap();
    let a_only = s
        .add_collection(&collection(
            "A only",
            Access::Orgs(vec![a.id.clone()]),
            Access::All,
        ))
        .await
        .unwrap();
    let green = steward(&a.id, &ua.id, Tlp::Green);
    let mk = |n: u64, t: &str, vals: &[&str], st: &kopa_core::Stewardship| {
        let mut o = indicator(&sid("indicator", n), t, "s", st);
        o.values = vals.iter().map(|v| v.to_string()).collect();
        o
    };
    s.put_objects(
        &open.id,
        vec![
            mk(
                1,
                "2021-01-01T00:00:00Z",
                &["203.0.113.7", "Evil.Example"],
                &green,
            ),
            mk(1, "2021-02-01T00:00:00Z", &["203.0.113.7"], &green),
            mk(
                2,
                "2021-01-01T00:00:00Z",
                &["203.0.113.7"],
                &steward(&a.id, &ua.id, Tlp::Red),
            ),
            mk(3, "2021-01-01T00:00:00Z", &["evil.example"], &green),
        ],
    )
    .await
    .unwrap();
    s.put_objects(
        &a_only.id,
        vec![mk(4, "2021-01-01T00:00:00Z", &["203.0.113.7"], &green)],
    )
    .await
    .unwrap();
    let ids = |v: Vec<kopa_store::StoredObject>| -> Vec<(String, String)> {
        v.into_iter()
            .map(|o| (o.id, o.version.to_taxii()))
            .collect()
    };
    let wa = audience(&a.id, &ua.id);
    let wb = audience(&b.id, &ub.id);
    // Latest version only; RED only for its author; collections by read list.
    assert_eq!(
        ids(s.search(&wa, "203.0.113.7", 100).await.unwrap()),
        vec![
            (sid("indicator", 1), ts("2021-02-01T00:00:00Z").to_taxii()),
            (sid("indicator", 2), ts("2021-01-01T00:00:00Z").to_taxii()),
            (sid("indicator", 4), ts("2021-01-01T00:00:00Z").to_taxii()),
        ]
    );
    assert_eq!(
        ids(s.search(&wb, "203.0.113.7", 100).await.unwrap()),
        vec![(sid("indicator", 1), ts("2021-02-01T00:00:00Z").to_taxii())]
    );
    // Case-insensitive; an older version mentioning the value does not count.
    assert_eq!(
        ids(s.search(&wb, " EVIL.example ", 100).await.unwrap()),
        vec![(sid("indicator", 3), ts("2021-01-01T00:00:00Z").to_taxii())]
    );
    assert_eq!(s.search(&wa, "203.0.113.7", 2).await.unwrap().len(), 2);
    assert!(s.search(&wa, "nothing", 10).await.unwrap().is_empty());
}

/// A status is read by its poster's organisation (a peer's by that peer), decided in the query;
/// anyone else gets `NotFound`, as for a status that does not exist.
async fn statuses(h: Arc<Harness>) {
    let s = &h.store;
    let w = simple(&h).await;
    let poster = w.user.clone();
    let colleague = s
        .add_user("colleague", &w.org, kopa_core::Role::Reader)
        .await
        .unwrap();
    let other_org = s.add_org("Elsewhere").await.unwrap();
    let stranger = s
        .add_user("stranger", &other_org.id, kopa_core::Role::Admin)
        .await
        .unwrap();
    let person =
        |org: &kopa_core::OrgId, user: &UserId| -> kopa_core::Reader { audience(org, user).into() };
    let (me, mine, theirs) = (
        person(&w.org, &poster),
        person(&w.org, &colleague.id),
        person(&other_org.id, &stranger.id),
    );
    let st = StatusRecord {
        id: "status-1".into(),
        owner: poster.clone(),
        request_timestamp: ts("2021-01-01T00:00:00Z"),
        json: r#"{"status":"pending"}"#.into(),
    };
    s.put_status(&st).await.unwrap();
    assert_eq!(s.status(&me, "status-1").await.unwrap(), st);
    assert_eq!(
        s.status(&mine, "status-1").await.unwrap(),
        st,
        "same organisation"
    );
    for who in [
        &theirs,
        &peer_reader("node--00000000000000000000000000000009"),
    ] {
        assert!(
            matches!(
                s.status(who, "status-1").await,
                Err(StoreError::NotFound(_))
            ),
            "another organisation or a peer does not see it"
        );
    }
    // A peer's own status, by node id.
    let peer_node = "node--0000000000000000000000000000000a";
    let pst = StatusRecord {
        id: "status-peer".into(),
        owner: UserId(peer_node.into()),
        ..st.clone()
    };
    s.put_status(&pst).await.unwrap();
    assert_eq!(
        s.status(&peer_reader(peer_node), "status-peer")
            .await
            .unwrap(),
        pst
    );
    assert!(matches!(
        s.status(&me, "status-peer").await,
        Err(StoreError::NotFound(_))
    ));
    let done = StatusRecord {
        json: r#"{"status":"complete"}"#.into(),
        ..st.clone()
    };
    s.put_status(&done).await.unwrap();
    assert_eq!(s.status(&me, "status-1").await.unwrap(), done);
    let newer = StatusRecord {
        id: "status-2".into(),
        request_timestamp: ts("2021-01-03T00:00:00Z"),
        ..st.clone()
    };
    s.put_status(&newer).await.unwrap();
    assert_eq!(
        s.purge_statuses(ts("2021-01-02T00:00:00Z")).await.unwrap(),
        2
    );
    assert!(matches!(
        s.status(&me, "status-1").await,
        Err(StoreError::NotFound(_))
    ));
    assert_eq!(s.status(&me, "status-2").await.unwrap(), newer);
}

fn peer_reader(node: &str) -> kopa_core::Reader {
    kopa_core::Reader::Peer(kopa_core::PeerAudience {
        node: node.into(),
        collections: Vec::new(),
        max_tlp: Tlp::Red,
        object_types: Vec::new(),
    })
}

fn entry(n: usize) -> NewAuditEntry {
    NewAuditEntry {
        actor: "admin".into(),
        action: "user.add".into(),
        target: format!("user{n}"),
        origin: "127.0.0.1".into(),
        detail: format!("{{\"n\":{n}}}"),
    }
}

async fn audit_chain(h: Arc<Harness>) {
    let s = &h.store;
    assert!(s.audit_entries(0, 100).await.unwrap().is_empty());
    let first = s.audit(entry(1)).await.unwrap();
    assert_eq!(first.seq, 1);
    assert_eq!(first.prev_hash, kopa_core::audit::GENESIS);
    assert!(kopa_stix::Timestamp::parse(&first.at).is_ok());
    // Concurrent appenders cannot fork the chain.
    let mut tasks = Vec::new();
    for n in 2..=20 {
        let s = s.clone();
        tasks.push(tokio::spawn(
            async move { s.audit(entry(n)).await.unwrap() },
        ));
    }
    for t in tasks {
        t.await.unwrap();
    }
    let all = s.audit_entries(0, 1000).await.unwrap();
    assert_eq!(all.len(), 20);
    assert_eq!(all[0], first);
    assert_eq!(verify(&all), Ok(20));
    assert_eq!(s.audit_entries(18, 1000).await.unwrap().len(), 2);
    assert_eq!(s.audit_entries(0, 5).await.unwrap().len(), 5);
    // Tampering with a stored row is found, and the broken entry named.
    let original = all[6].target.clone();
    h.exec("UPDATE audit SET target = 'mallory' WHERE seq = 7")
        .await;
    let all = s.audit_entries(0, 1000).await.unwrap();
    let broken = verify(&all).unwrap_err();
    assert_eq!(broken.seq, 7);
    // Removing a row is found too.
    h.exec(&format!(
        "UPDATE audit SET target = '{original}' WHERE seq = 7; DELETE FROM audit WHERE seq = 12"
    ))
    .await;
    let all = s.audit_entries(0, 1000).await.unwrap();
    assert_eq!(verify(&all).unwrap_err().seq, 13);
}

/// The head of the audit log is its last entry, as (seq, hash); `None` while the log is empty.
async fn audit_head_follows_the_chain(h: Arc<Harness>) {
    let s = &h.store;
    assert_eq!(s.audit_head().await.unwrap(), None);
    let first = s.audit(entry(1)).await.unwrap();
    assert_eq!(
        s.audit_head().await.unwrap(),
        Some((first.seq, first.hash.clone()))
    );
    let second = s.audit(entry(2)).await.unwrap();
    assert_eq!(second.prev_hash, first.hash);
    assert_eq!(
        s.audit_head().await.unwrap(),
        Some((second.seq, second.hash))
    );
}

/// A failure of the database is `Backend`: its text is the database's, after "database error: ",
/// and the database's own error is kept (`cause`), without its text printed twice in a chain.
async fn backend_errors_keep_their_source(h: Arc<Harness>) {
    let s = &h.store;
    h.exec("DROP TABLE statuses").await;
    let e = s
        .status(
            &peer_reader("node--00000000000000000000000000000009"),
            "status-1",
        )
        .await
        .unwrap_err();
    let StoreError::Backend { message, source } = &e else {
        panic!("not a backend error: {e:?}");
    };
    let source = source.as_ref().expect("the database's error is kept");
    assert_eq!(e.to_string(), format!("database error: {message}"));
    assert_eq!(message, &source.to_string());
    if h.is_postgres() {
        assert!(source.is::<sqlx::Error>(), "{source:?}");
    } else {
        assert!(source.is::<rusqlite::Error>(), "{source:?}");
    }
    assert!(e
        .cause()
        .is_some_and(|c| c.to_string() == source.to_string()));
    // The chain does not repeat the database's text: it goes on with that error's own cause.
    let chained = std::error::Error::source(&e).map(ToString::to_string);
    assert_ne!(chained.as_deref(), Some(message.as_str()));
}

async fn concurrent_writers(h: Arc<Harness>) {
    let w = simple(&h).await;
    let s = &h.store;
    let st = steward(&w.org, &w.user, Tlp::Clear);
    let mut tasks = Vec::new();
    for t in 0..6u64 {
        let s = s.clone();
        let coll = w.coll.clone();
        let st = st.clone();
        tasks.push(tokio::spawn(async move {
            for b in 0..5u64 {
                let objs: Vec<_> = (0..20u64)
                    .map(|i| {
                        indicator(
                            &sid("indicator", t * 10_000 + b * 100 + i),
                            "2021-01-01T00:00:00Z",
                            "c",
                            &st,
                        )
                    })
                    .collect();
                let out = s.put_objects(&coll, objs).await.unwrap();
                assert!(out.iter().all(|o| matches!(o, PutOutcome::Stored { .. })));
            }
        }));
    }
    for t in tasks {
        t.await.unwrap();
    }
    let mut f = filter(10_000);
    f.versions = all_versions();
    let all = s
        .objects(&audience(&w.org, &w.user).into(), &w.coll, &f)
        .await
        .unwrap()
        .objects;
    assert_eq!(all.len(), 600);
    for pair in all.windows(2) {
        assert!(pair[0].seq < pair[1].seq);
        assert!(pair[0].date_added < pair[1].date_added);
    }
}

async fn reopen_keeps_data(h: Arc<Harness>) {
    let w = simple(&h).await;
    let st = steward(&w.org, &w.user, Tlp::Clear);
    h.store
        .put_objects(
            &w.coll,
            vec![indicator(
                &sid("indicator", 1),
                "2021-01-01T00:00:00Z",
                "k",
                &st,
            )],
        )
        .await
        .unwrap();
    // A second handle (as the CLI opens while the server runs) sees and writes the same data.
    let other = kopa_store::open(&h.location(), false).await.unwrap();
    let page = other
        .objects(&audience(&w.org, &w.user).into(), &w.coll, &filter(10))
        .await
        .unwrap();
    assert_eq!(page.objects.len(), 1);
    other.add_org("From the CLI").await.unwrap();
    assert!(h.store.org_by_name("From the CLI").await.is_ok());
    let out = other
        .put_objects(
            &w.coll,
            vec![indicator(
                &sid("indicator", 2),
                "2021-01-01T00:00:00Z",
                "k",
                &st,
            )],
        )
        .await
        .unwrap();
    assert!(matches!(out[0], PutOutcome::Stored { .. }));
    let mut f = filter(10);
    f.versions = all_versions();
    let all = h
        .store
        .objects(&audience(&w.org, &w.user).into(), &w.coll, &f)
        .await
        .unwrap()
        .objects;
    assert_eq!(all.len(), 2);
    assert!(all[0].seq < all[1].seq && all[0].date_added < all[1].date_added);
}

/// Two handles on one database (the server and the CLI) writing at the same time: nothing lost,
/// sequence numbers and date_added still strictly increasing.
async fn two_handles_write_at_once(h: Arc<Harness>) {
    let w = simple(&h).await;
    let st = steward(&w.org, &w.user, Tlp::Clear);
    let second = kopa_store::open(&h.location(), false).await.unwrap();
    let mut tasks = Vec::new();
    for (k, store) in [h.store.clone(), second].into_iter().enumerate() {
        let coll = w.coll.clone();
        let st = st.clone();
        tasks.push(tokio::spawn(async move {
            for b in 0..10u64 {
                let objs: Vec<_> = (0..25u64)
                    .map(|i| {
                        let n = k as u64 * 100_000 + b * 100 + i;
                        indicator(&sid("indicator", n), "2021-01-01T00:00:00Z", "t", &st)
                    })
                    .collect();
                store.put_objects(&coll, objs).await.unwrap();
                store.audit(entry(k)).await.unwrap();
            }
        }));
    }
    for t in tasks {
        t.await.unwrap();
    }
    let mut f = filter(10_000);
    f.versions = all_versions();
    let all = h
        .store
        .objects(&audience(&w.org, &w.user).into(), &w.coll, &f)
        .await
        .unwrap()
        .objects;
    assert_eq!(all.len(), 500);
    for pair in all.windows(2) {
        assert!(pair[0].seq < pair[1].seq);
        assert!(pair[0].date_added < pair[1].date_added);
    }
    let log = h.store.audit_entries(0, 1000).await.unwrap();
    assert_eq!(verify(&log), Ok(20));
}

async fn newer_schema_is_refused(h: Arc<Harness>) {
    h.exec("INSERT INTO kopa_schema_migrations (version, name, applied_at) VALUES (999, '0999_future', 0)")
        .await;
    for create in [false, true] {
        let err = kopa_store::open(&h.location(), create)
            .await
            .err()
            .expect("a newer database must be refused");
        assert!(err.to_string().contains("newer"), "{err}");
    }
}

// --- opening: backend-specific ---

#[tokio::test]
async fn sqlite_refuses_to_create_without_leave() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("mistyped");
    let err = kopa_store::open(data.to_str().unwrap(), false)
        .await
        .err()
        .unwrap();
    let msg = err.to_string();
    assert!(msg.contains("no Kopa database at"), "{msg}");
    assert!(msg.contains("mistyped"), "{msg}");
    assert!(!data.exists(), "nothing created");
    // An existing empty directory: still no database made.
    std::fs::create_dir(&data).unwrap();
    assert!(kopa_store::open(data.to_str().unwrap(), false)
        .await
        .is_err());
    assert!(!data.join(kopa_store::DB_FILE).exists());
    // Created when asked, then opened without create.
    kopa_store::open(data.to_str().unwrap(), true)
        .await
        .unwrap();
    kopa_store::open(data.to_str().unwrap(), false)
        .await
        .unwrap();
}

#[tokio::test]
async fn sqlite_rejects_unusable_directory() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("a-file");
    std::fs::write(&file, "not a directory").unwrap();
    let err = kopa_store::open(file.to_str().unwrap(), true)
        .await
        .err()
        .unwrap();
    assert!(err.to_string().contains("not a directory"), "{err}");
    // A file where the database should be that is not a database.
    let data = dir.path().join("data");
    std::fs::create_dir(&data).unwrap();
    std::fs::write(data.join(kopa_store::DB_FILE), "garbage that is not SQLite").unwrap();
    let err = kopa_store::open(data.to_str().unwrap(), true)
        .await
        .err()
        .unwrap();
    assert!(err.to_string().contains("kopa.db"), "{err}");
}

#[tokio::test]
async fn postgres_names_a_missing_database() {
    let Some(admin) = pg_admin_url() else { return };
    let url = with_database(&admin, "kopa_test_does_not_exist_42");
    let err = kopa_store::open(&url, true).await.err().unwrap();
    let msg = err.to_string();
    assert!(msg.contains("kopa_test_does_not_exist_42"), "{msg}");
    assert!(msg.contains("does not exist"), "{msg}");
    // An existing database without Kopa's tables is not silently initialised without leave.
    let Some(db) = PgDb::create("kopa_test").await else {
        return;
    };
    let url = &db.url;
    let res = kopa_store::open(url, false).await;
    let second = kopa_store::open(url, true).await.map(|_| ());
    db.drop_db().await;
    let msg = res.err().unwrap().to_string();
    assert!(msg.contains("no Kopa database at"), "{msg}");
    second.unwrap();
}

#[tokio::test]
async fn postgres_url_password_is_not_shown() {
    let err = kopa_store::open("postgres://kopa:s3cret@127.0.0.1:1/kopa", true)
        .await
        .err()
        .unwrap();
    let msg = err.to_string();
    assert!(!msg.contains("s3cret"), "{msg}");
    assert!(msg.contains("127.0.0.1:1"), "{msg}");
}

#[test]
fn migration_trees_have_the_same_names() {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("migrations");
    let names = |dir: &str| -> Vec<String> {
        let mut v: Vec<String> = std::fs::read_dir(root.join(dir))
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        v.sort();
        v
    };
    let sqlite = names("sqlite");
    let postgres = names("postgres");
    assert!(!sqlite.is_empty());
    assert_eq!(
        sqlite, postgres,
        "migrations/sqlite and migrations/postgres differ"
    );
    // And every file is embedded, in order, with consecutive versions.
    for list in [
        kopa_store::migrations::SQLITE,
        kopa_store::migrations::POSTGRES,
    ] {
        let embedded: Vec<String> = list.iter().map(|m| format!("{}.sql", m.name)).collect();
        assert_eq!(embedded, sqlite);
        for (i, m) in list.iter().enumerate() {
            assert_eq!(m.version, i as i64 + 1);
            assert!(m.name.starts_with(&format!("{:04}_", m.version)));
        }
    }
}

/// Text with a NUL character is refused as bad input on both backends (PostgreSQL text cannot hold
/// one), never a database error.
async fn nul_characters_are_bad_input(h: Arc<Harness>) {
    let s = &h.store;
    match s.add_org("Bank\0A").await {
        // SQLite stores it; PostgreSQL refuses it as bad input.
        Ok(_) => assert_eq!(s.backend(), "sqlite"),
        Err(StoreError::Invalid(m)) => assert!(m.contains("NUL"), "{m}"),
        Err(e) => panic!("a NUL character must be bad input, not {e:?}"),
    }
}

/// Credential changes are audited in their own transaction: an entry when the change is made,
/// none when it is refused.
async fn credential_changes_are_audited_with_the_change(h: Arc<Harness>) {
    let w = simple(&h).await;
    let s = &h.store;
    let entry = |action: &str| NewAuditEntry {
        actor: "admin".into(),
        action: action.into(),
        target: "x".into(),
        origin: "local".into(),
        detail: "{}".into(),
    };
    let token = |id: &str, user: &UserId| kopa_store::TokenRecord {
        id: id.into(),
        user: user.clone(),
        secret_hash: "00".repeat(32),
        revoked: false,
    };
    let count = || async { s.audit_entries(0, 1000).await.unwrap().len() };
    let before = count().await;
    s.add_token_audited(&token("t1", &w.user), Some(entry("token.add")))
        .await
        .unwrap();
    assert!(s
        .add_token_audited(
            &token("t2", &UserId("ghost".into())),
            Some(entry("token.add"))
        )
        .await
        .is_err());
    s.revoke_token_audited("t1", Some(entry("token.revoke")))
        .await
        .unwrap();
    assert!(s
        .revoke_token_audited("nope", Some(entry("token.revoke")))
        .await
        .is_err());
    let entries = s.audit_entries(0, 1000).await.unwrap();
    assert_eq!(entries.len(), before + 2, "one entry per change made");
    let actions: Vec<&str> = entries[before..]
        .iter()
        .map(|e| e.action.as_str())
        .collect();
    assert_eq!(actions, ["token.add", "token.revoke"]);
    assert_eq!(verify(&entries), Ok(entries.len() as u64));
}

/// Every act of administration is written with its audit entry in one transaction: each act made
/// leaves exactly its entry (action and target from the act, the id of what it made in the
/// detail), and an act refused leaves neither its change nor an entry, including a user whose
/// first token cannot be stored.
async fn administration_is_audited_with_the_act(h: Arc<Harness>) {
    let s = &h.store;
    let by = || {
        Some(AuditBy {
            actor: "root".into(),
            origin: "192.0.2.7".into(),
            detail: serde_json::json!({"why": "test"}),
        })
    };
    let count = || async { s.audit_entries(0, 1000).await.unwrap().len() };
    let before = count().await;
    let org = s
        .administer(
            AdminAct::AddOrg {
                name: "CERT.LV".into(),
                node: None,
            },
            by(),
        )
        .await
        .and_then(Administered::org)
        .unwrap();
    let taken = s
        .administer(
            AdminAct::AddOrg {
                name: "CERT.LV".into(),
                node: None,
            },
            by(),
        )
        .await;
    assert!(matches!(taken, Err(StoreError::Conflict(_))), "{taken:?}");
    let id = UserId::new();
    let user = s
        .administer(
            AdminAct::AddUser {
                id: id.clone(),
                name: "anna".into(),
                org: org.id.clone(),
                role: Role::Analyst,
                token: Some(TokenRecord {
                    id: "tk-anna".into(),
                    user: id.clone(),
                    secret_hash: "00".repeat(32),
                    revoked: false,
                }),
            },
            by(),
        )
        .await
        .and_then(Administered::user)
        .unwrap();
    assert_eq!(user.id, id);
    assert_eq!(
        s.token("tk-anna").await.unwrap().user,
        id,
        "the first token is stored"
    );
    // A first token whose id is taken: neither the user nor an entry is kept.
    let id2 = UserId::new();
    let clash = s
        .administer(
            AdminAct::AddUser {
                id: id2.clone(),
                name: "boris".into(),
                org: org.id.clone(),
                role: Role::Reader,
                token: Some(TokenRecord {
                    id: "tk-anna".into(),
                    user: id2,
                    secret_hash: "11".repeat(32),
                    revoked: false,
                }),
            },
            by(),
        )
        .await;
    assert!(matches!(clash, Err(StoreError::Conflict(_))), "{clash:?}");
    assert!(matches!(
        s.user_by_name("boris").await,
        Err(StoreError::NotFound(_))
    ));
    let c = s
        .administer(
            AdminAct::AddCollection(collection("Shared", Access::All, Access::All)),
            by(),
        )
        .await
        .and_then(Administered::collection)
        .unwrap();
    let unknown_org = s
        .administer(
            AdminAct::AddCollection(collection(
                "Nobody's",
                Access::Orgs(vec![kopa_core::OrgId("no-such-org".into())]),
                Access::All,
            )),
            by(),
        )
        .await;
    assert!(
        matches!(unknown_org, Err(StoreError::NotFound(_))),
        "{unknown_org:?}"
    );
    let peer = NewPeer {
        name: "ee".into(),
        node_id: "node-ee".into(),
        url: "https://ee.example".into(),
        public_key: "key".into(),
        token: None,
        policy: "{}".into(),
    };
    let record = s
        .administer(
            AdminAct::AddPeer {
                peer: peer.clone(),
                push: true,
            },
            by(),
        )
        .await
        .and_then(Administered::peer)
        .unwrap();
    assert!(record.push, "push is set in the same act");
    assert!(s.peer("ee").await.unwrap().push);
    s.administer(AdminAct::RemovePeer { name: "ee".into() }, by())
        .await
        .unwrap();
    let gone = s
        .administer(AdminAct::RemovePeer { name: "ee".into() }, by())
        .await;
    assert!(matches!(gone, Err(StoreError::NotFound(_))), "{gone:?}");

    let entries = s.audit_entries(0, 1000).await.unwrap();
    let made: Vec<(&str, &str)> = entries[before..]
        .iter()
        .map(|e| (e.action.as_str(), e.target.as_str()))
        .collect();
    assert_eq!(
        made,
        [
            ("org.add", "CERT.LV"),
            ("user.add", "anna"),
            ("collection.add", c.id.as_str()),
            ("peer.add", "ee"),
            ("peer.remove", "ee"),
        ],
        "one entry per act made, none for an act refused"
    );
    let detail = |i: usize| -> serde_json::Value {
        serde_json::from_str(&entries[before + i].detail).unwrap()
    };
    assert_eq!(detail(0)["id"], org.id.0.as_str());
    assert_eq!(detail(0)["why"], "test");
    assert_eq!(detail(1)["id"], user.id.0.as_str());
    assert_eq!(detail(3)["id"], "node-ee");
    assert!(entries[before..]
        .iter()
        .all(|e| e.actor == "root" && e.origin == "192.0.2.7"));
    assert_eq!(verify(&entries), Ok(entries.len() as u64));
}

/// `users_of` lists exactly one organisation's accounts, by name (an org-admin's list, filtered in
/// the query).
async fn users_of_one_organisation(h: Arc<Harness>) {
    let s = &h.store;
    let a = s.add_org("Org A").await.unwrap();
    let b = s.add_org("Org B").await.unwrap();
    for (name, org) in [("zoe", &a), ("adam", &a), ("bea", &b)] {
        s.add_user(name, &org.id, Role::Analyst).await.unwrap();
    }
    let names = |v: Vec<kopa_store::User>| v.into_iter().map(|u| u.name).collect::<Vec<_>>();
    assert_eq!(names(s.users_of(&a.id).await.unwrap()), ["adam", "zoe"]);
    assert_eq!(names(s.users_of(&b.id).await.unwrap()), ["bea"]);
    let none = s
        .users_of(&kopa_core::OrgId("no-such-org".into()))
        .await
        .unwrap();
    assert!(none.is_empty());
}
