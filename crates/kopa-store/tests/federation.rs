//! The store's federation records on SQLite and PostgreSQL: directory organisations hosted on peers,
//! collections created with a given id, provenance of received objects (origin and via), routes for
//! sightings, counting what a reader has yet to read, and the upgrade of a database made before
//! federation sync.

mod common;

use common::*;
use kopa_core::{PeerAudience, Reader, Role, Stewardship, Tlp};
use kopa_store::{
    Access, NewCollection, ObjectFilter, ObjectRoute, PutOutcome, StoreError, VersionMatch,
};
use std::sync::Arc;

on_both_backends!(
    remote_orgs_and_users,
    collections_with_given_ids,
    provenance_and_routes,
    count_objects_matches_pages,
);

fn room(id: Option<&str>, title: &str, alias: Option<&str>) -> NewCollection {
    NewCollection {
        id: id.map(str::to_string),
        title: title.into(),
        description: None,
        alias: alias.map(str::to_string),
        read: Access::All,
        write: Access::All,
    }
}

fn all(limit: usize) -> ObjectFilter {
    object_filter(
        limit,
        VersionMatch {
            all: true,
            ..Default::default()
        },
    )
}

const NODE_B: &str = "node--0000000000000000000000000000000b";
const NODE_C: &str = "node--0000000000000000000000000000000c";

async fn remote_orgs_and_users(h: Arc<Harness>) {
    let s = &h.store;
    let local = s.add_org("National CSIRT").await.unwrap();
    assert_eq!(local.node, None);
    let remote = s.add_remote_org("Bank B", NODE_B).await.unwrap();
    assert_eq!(remote.node.as_deref(), Some(NODE_B));
    assert_ne!(remote.id, local.id);
    // Names are one namespace, local or remote.
    for r in [
        s.add_remote_org("National CSIRT", NODE_C).await,
        s.add_org("Bank B").await,
    ] {
        assert!(matches!(r, Err(StoreError::Conflict(_))), "{r:?}");
    }
    assert_eq!(s.org_by_name("Bank B").await.unwrap(), remote);
    let listed: Vec<(String, Option<String>)> = s
        .orgs()
        .await
        .unwrap()
        .into_iter()
        .map(|o| (o.name, o.node))
        .collect();
    assert_eq!(
        listed,
        [
            ("Bank B".to_string(), Some(NODE_B.to_string())),
            ("National CSIRT".to_string(), None)
        ]
    );
    // A user of a directory organisation is recorded like any other (the CLI gives it no token).
    let u = s.add_user("bob", &remote.id, Role::Analyst).await.unwrap();
    assert_eq!(u.org_name, "Bank B");
    assert_eq!(s.user_by_name("bob").await.unwrap().org, remote.id);
}

async fn collections_with_given_ids(h: Arc<Harness>) {
    let s = &h.store;
    let id = "6F1C2B8A-1D2E-4F30-9A4B-5C6D7E8F9A0B";
    let c = s
        .add_collection(&room(Some(id), "Shared room", Some("shared")))
        .await
        .unwrap();
    assert_eq!(c.id, id.to_lowercase(), "kept in canonical form");
    let who: Reader = kopa_core::Audience {
        org: s.add_org("Org").await.unwrap().id,
        user: kopa_core::UserId::new(),
    }
    .into();
    assert_eq!(
        s.collection(&who, &id.to_lowercase())
            .await
            .unwrap()
            .collection,
        c
    );
    let taken = s
        .add_collection(&room(Some(&id.to_lowercase()), "Again", None))
        .await;
    assert!(
        matches!(&taken, Err(StoreError::Conflict(m)) if m.contains(&c.id)),
        "{taken:?}"
    );
    let bad = s
        .add_collection(&room(Some("not-a-uuid"), "Bad", None))
        .await;
    assert!(
        matches!(&bad, Err(StoreError::Invalid(m)) if m.contains("not-a-uuid")),
        "{bad:?}"
    );
    // Neither failure left a collection behind; a drawn id still works.
    let drawn = s.add_collection(&room(None, "Drawn", None)).await.unwrap();
    assert!(uuid::Uuid::parse_str(&drawn.id).is_ok());
    assert_eq!(s.collections(&who).await.unwrap().len(), 2);
}

async fn provenance_and_routes(h: Arc<Harness>) {
    let s = &h.store;
    let org = s.add_org("Org").await.unwrap();
    let user = s.add_user("ana", &org.id, Role::Analyst).await.unwrap();
    let c1 = s.add_collection(&room(None, "One", None)).await.unwrap();
    let c2 = s.add_collection(&room(None, "Two", None)).await.unwrap();
    let st = steward(&org.id, &user.id, Tlp::Green);
    let local = indicator(&sid("indicator", 1), "2021-01-01T00:00:00Z", "l", &st);
    let mut received = indicator(&sid("indicator", 2), "2021-01-01T00:00:00Z", "r", &st);
    received.origin = Some(NODE_C.into());
    received.via = Some(NODE_B.into());
    let mut direct = indicator(&sid("indicator", 3), "2021-01-01T00:00:00Z", "d", &st);
    direct.origin = Some(NODE_B.into());
    direct.via = Some(NODE_B.into());
    let out = s
        .put_objects(&c1.id, vec![local, received.clone(), direct])
        .await
        .unwrap();
    assert!(out.iter().all(|o| matches!(o, PutOutcome::Stored { .. })));
    // The same received object delivered into another collection by another peer.
    let mut again = received.clone();
    again.via = Some(NODE_C.into());
    s.put_objects(&c2.id, vec![again]).await.unwrap();

    let who: Reader = audience(&org.id, &user.id).into();
    let page = s.objects(&who, &c1.id, &all(10)).await.unwrap();
    let origins: Vec<(String, Option<String>)> =
        page.objects.into_iter().map(|o| (o.id, o.origin)).collect();
    assert_eq!(
        origins,
        [
            (sid("indicator", 1), None),
            (sid("indicator", 2), Some(NODE_C.to_string())),
            (sid("indicator", 3), Some(NODE_B.to_string())),
        ]
    );

    let route = |n: u64, origin: Option<&str>, via: Option<&str>| ObjectRoute {
        id: sid("indicator", n),
        origin: origin.map(str::to_string),
        via: via.map(str::to_string),
    };
    let ids: Vec<String> = [1, 2, 9].into_iter().map(|n| sid("indicator", n)).collect();
    assert_eq!(
        s.object_routes(&ids).await.unwrap(),
        [
            route(1, None, None),
            route(2, Some(NODE_C), Some(NODE_B)),
            route(2, Some(NODE_C), Some(NODE_C)),
        ]
    );
    assert_eq!(
        s.object_routes(&[sid("indicator", 3)]).await.unwrap(),
        [route(3, Some(NODE_B), Some(NODE_B))]
    );
    assert!(s.object_routes(&[]).await.unwrap().is_empty());
}

async fn count_objects_matches_pages(h: Arc<Harness>) {
    let s = &h.store;
    let org = s.add_org("Org").await.unwrap();
    let other = s.add_org("Other").await.unwrap();
    let user = s.add_user("ana", &org.id, Role::Analyst).await.unwrap();
    let c = s.add_collection(&room(None, "Room", None)).await.unwrap();
    let closed = s
        .add_collection(&NewCollection {
            read: Access::Orgs(vec![other.id.clone()]),
            ..room(None, "Closed", None)
        })
        .await
        .unwrap();
    let mut batch = Vec::new();
    for n in 0..25u64 {
        let tlp = [Tlp::Clear, Tlp::Green, Tlp::Amber][(n % 3) as usize];
        let st = Stewardship {
            defaulted: n % 5 == 0,
            ..steward(&org.id, &user.id, tlp)
        };
        batch.push(indicator(
            &sid("indicator", n),
            "2021-01-01T00:00:00Z",
            "v1",
            &st,
        ));
        if n % 4 == 0 {
            batch.push(indicator(
                &sid("indicator", n),
                "2021-02-01T00:00:00Z",
                "v2",
                &st,
            ));
        }
    }
    s.put_objects(&c.id, batch.clone()).await.unwrap();
    s.put_objects(&closed.id, batch).await.unwrap();
    let person: Reader = audience(&org.id, &user.id).into();
    let peer: Reader = PeerAudience {
        node: NODE_B.into(),
        collections: vec![c.id.clone()],
        max_tlp: Tlp::Green,
        object_types: Vec::new(),
    }
    .into();
    for who in [&person, &peer] {
        for versions in [VersionMatch::last(), all(1).versions] {
            let mut f = ObjectFilter { versions, ..all(4) };
            // Read page by page; before each page the count is what remains.
            let mut total = 0u64;
            loop {
                let remaining = s.count_objects(who, &c.id, &f).await.unwrap();
                let page = s.objects(who, &c.id, &f).await.unwrap();
                if total == 0 {
                    total = remaining;
                    assert!(total > 0, "{who:?} reads something");
                }
                let rest = remaining - page.objects.len() as u64;
                assert_eq!(page.more, rest > 0, "{who:?}: more iff something remains");
                let Some(last) = page.objects.last() else {
                    assert_eq!(remaining, 0);
                    break;
                };
                f.after_seq = Some(last.seq);
                if !page.more {
                    assert_eq!(s.count_objects(who, &c.id, &f).await.unwrap(), 0);
                    break;
                }
            }
        }
    }
    // The peer reads less than the person (no AMBER above its cap, no defaulted objects).
    let f = all(1000);
    let n_person = s.count_objects(&person, &c.id, &f).await.unwrap();
    let n_peer = s.count_objects(&peer, &c.id, &f).await.unwrap();
    assert_eq!(
        n_person,
        s.objects(&person, &c.id, &f).await.unwrap().objects.len() as u64
    );
    assert_eq!(
        n_peer,
        s.objects(&peer, &c.id, &f).await.unwrap().objects.len() as u64
    );
    assert!(n_peer < n_person, "{n_peer} < {n_person}");
    // Collections the reader may not read count nothing; unknown ones are not found.
    assert_eq!(s.count_objects(&person, &closed.id, &f).await.unwrap(), 0);
    assert_eq!(s.count_objects(&peer, &closed.id, &f).await.unwrap(), 0);
    assert!(matches!(
        s.count_objects(&person, "no-such", &f).await,
        Err(StoreError::NotFound(_))
    ));
}

/// A database at schema version 2 (before federation sync) with one organisation, collection and
/// object, made with the shipped migration files.
fn schema_2_script(migrations: &[kopa_store::migrations::Migration], int: &str) -> String {
    let mut sql = kopa_store::testing::schema_script(migrations, 2, int);
    sql.push_str(&format!(
        "INSERT INTO orgs (id, name) VALUES ('org-1', 'Old Org');
         INSERT INTO users (id, name, org_id, role) VALUES ('user-1', 'old', 'org-1', 'analyst');
         INSERT INTO collections (id, title, read_all, write_all) VALUES ('{COLL}', 'Old', 1, 1);
         INSERT INTO objects (seq, collection, stix_id, type, spec_version, version, date_added,
             owner_org, author, tlp, narrowed, json)
           SELECT 1, cid, 'indicator--1', 'indicator', '2.1', 5, 5, 'org-1', 'user-1', 1, 0, '{{}}'
           FROM collections;
         UPDATE clock SET last_seq = 1, last_added = 5;
         INSERT INTO peers (name, node_id, url, public_key, policy, added_at)
           VALUES ('b', '{NODE_B}', 'https://b.example', 'k', '{{}}', 0);"
    ));
    sql
}

const COLL: &str = "2b7f4c1e-3a5d-4e6f-8a9b-0c1d2e3f4a5b";

/// The old data reads as before, with no provenance, no directory entries and push off.
async fn check_upgraded(location: &str) {
    let s = kopa_store::open(location, false).await.unwrap();
    let org = s.org_by_name("Old Org").await.unwrap();
    assert_eq!(org.node, None);
    let who: Reader = audience(&org.id, &kopa_core::UserId("user-1".into())).into();
    let page = s.objects(&who, COLL, &all(10)).await.unwrap();
    assert_eq!(page.objects.len(), 1);
    assert_eq!(page.objects[0].origin, None);
    assert_eq!(
        s.object_routes(&["indicator--1".into()]).await.unwrap(),
        [ObjectRoute {
            id: "indicator--1".into(),
            origin: None,
            via: None
        }]
    );
    let b = s.peer("b").await.unwrap();
    assert!(!b.push);
    assert_eq!(b.status, None);
    // And it takes new writes with provenance.
    s.add_remote_org("Bank B", NODE_B).await.unwrap();
    s.set_peer_push("b", true).await.unwrap();
}

#[tokio::test]
async fn sqlite_upgrades_from_schema_2() {
    let dir = sqlite_from_script(&schema_2_script(kopa_store::migrations::SQLITE, "INTEGER"));
    check_upgraded(dir.path().to_str().unwrap()).await;
}

#[tokio::test]
async fn postgres_upgrades_from_schema_2() {
    let script = schema_2_script(kopa_store::migrations::POSTGRES, "BIGINT");
    on_postgres_from_script(&script, |url| async move { check_upgraded(&url).await }).await;
}
