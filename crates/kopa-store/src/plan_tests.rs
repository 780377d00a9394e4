//! Query plans of reads by object id, on both backends: TAXII's object and versions endpoints (and
//! `match[id]`) must find the object through the `(stix_id, collection, version)` key, never by
//! walking the collection, whatever the reader and the version match. Checked on the plan the
//! database reports (SQLite `EXPLAIN QUERY PLAN`, PostgreSQL `EXPLAIN` after `ANALYZE`), not by a
//! timing.

use crate::sql::{self, Dialect, Sql};
use crate::{Access, NewCollection, NewObject, ObjectFilter, Store, VersionMatch};
use kopa_core::{Audience, PeerAudience, Reader, Role, Stewardship, Tlp};
use kopa_stix::Timestamp;

/// Objects in the collection: enough that PostgreSQL's statistics tell a one-object read from a
/// scan (SQLite plans without statistics).
const OBJECTS: usize = 3000;

struct Fixture {
    coll: String,
    person: Reader,
    peer: Reader,
    id: String,
}

async fn fill(store: &dyn Store) -> Fixture {
    let org = store.add_org("Plan org").await.unwrap();
    let user = store
        .add_user("planner", &org.id, Role::Analyst)
        .await
        .unwrap();
    let coll = store
        .add_collection(&NewCollection {
            id: None,
            title: "Plans".into(),
            description: None,
            alias: None,
            read: Access::All,
            write: Access::All,
        })
        .await
        .unwrap();
    let tlps = [Tlp::Clear, Tlp::Green, Tlp::Amber, Tlp::Red];
    let ids: Vec<String> = (0..OBJECTS)
        .map(|i| format!("indicator--00000000-0000-4000-8000-{i:012}"))
        .collect();
    for chunk in ids.chunks(1000) {
        let batch = chunk
            .iter()
            .enumerate()
            .map(|(i, id)| NewObject {
                id: id.clone(),
                type_: "indicator".into(),
                spec_version: "2.1".into(),
                version: Some(Timestamp::from_micros(1_704_067_200_000_000)),
                json: format!("{{\"id\":\"{id}\"}}"),
                steward: Stewardship {
                    owner_org: org.id.clone(),
                    author: user.id.clone(),
                    tlp: tlps[i % tlps.len()],
                    orgs: Vec::new(),
                    users: Vec::new(),
                    defaulted: false,
                },
                values: Vec::new(),
                origin: None,
                via: None,
            })
            .collect();
        store.put_objects(&coll.id, batch).await.unwrap();
    }
    Fixture {
        person: Audience {
            org: org.id.clone(),
            user: user.id.clone(),
        }
        .into(),
        peer: PeerAudience {
            node: "node--00000000000000000000000000000bee".into(),
            collections: vec![coll.id.clone()],
            max_tlp: Tlp::Amber,
            object_types: Vec::new(),
        }
        .into(),
        coll: coll.id,
        id: ids[OBJECTS / 2].clone(),
    }
}

/// Every read by id the TAXII endpoints make: (name, reader, version match), as a page and as a
/// count.
fn queries(dialect: Dialect, f: &Fixture, cid: i64) -> Vec<(String, Sql)> {
    let version_matches = [
        ("object (latest version)", VersionMatch::last()),
        (
            "versions (all)",
            VersionMatch {
                all: true,
                ..Default::default()
            },
        ),
        (
            "first version",
            VersionMatch {
                first: true,
                ..Default::default()
            },
        ),
    ];
    let mut out = Vec::new();
    for (who_name, who) in [("person", &f.person), ("peer", &f.peer)] {
        for (vm_name, vm) in &version_matches {
            let filter = ObjectFilter {
                added_after: None,
                after_seq: None,
                limit: 1000,
                ids: vec![f.id.clone()],
                types: Vec::new(),
                versions: vm.clone(),
                spec_versions: Vec::new(),
            };
            out.push((
                format!("{vm_name} as a {who_name}"),
                sql::objects_query(dialect, who, cid, &filter),
            ));
            out.push((
                format!("count of {vm_name} as a {who_name}"),
                sql::count_query(dialect, who, cid, &filter),
            ));
        }
    }
    out
}

#[tokio::test]
async fn sqlite_reads_by_id_use_the_object_key() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("data");
    let store = crate::open(path.to_str().unwrap(), true).await.unwrap();
    let f = fill(&*store).await;
    let conn = rusqlite::Connection::open(path.join(crate::DB_FILE)).unwrap();
    let cid: i64 = conn
        .query_row(
            "SELECT cid FROM collections WHERE id = ?1",
            [&f.coll],
            |r| r.get(0),
        )
        .unwrap();
    for (name, q) in queries(Dialect::Sqlite, &f, cid) {
        let mut stmt = conn
            .prepare(&format!("EXPLAIN QUERY PLAN {}", q.text))
            .unwrap();
        let plan: Vec<String> = stmt
            .query_map(rusqlite::params_from_iter(q.args.iter()), |r| r.get(3))
            .unwrap()
            .collect::<rusqlite::Result<_>>()
            .unwrap();
        let text = plan.join("\n");
        // The row `o` itself (the subqueries have other aliases).
        let outer: Vec<&String> = plan
            .iter()
            .filter(|d| *d == "SCAN o" || d.starts_with("SCAN o ") || d.starts_with("SEARCH o "))
            .collect();
        assert!(
            !outer.is_empty()
                && outer
                    .iter()
                    .all(|d| d.contains("INDEX objects_key (stix_id=? AND collection=?")),
            "{name}: the object must be found by its key:\n{text}"
        );
        assert!(
            !text.contains("objects_collection_seq"),
            "{name}: walks the collection:\n{text}"
        );
    }
    // And the reads still find the object.
    let page = store
        .objects(
            &f.person,
            &f.coll,
            &ObjectFilter {
                added_after: None,
                after_seq: None,
                limit: 10,
                ids: vec![f.id.clone()],
                types: Vec::new(),
                versions: VersionMatch::last(),
                spec_versions: Vec::new(),
            },
        )
        .await
        .unwrap();
    assert_eq!(page.objects.len(), 1);
    assert_eq!(page.objects[0].id, f.id);
}

#[tokio::test]
async fn postgres_reads_by_id_use_the_object_key() {
    use sqlx::{Connection, Row};
    let Some(db) = crate::testing::PgDb::create("kopa_plan").await else {
        return;
    };
    let store = crate::open(&db.url, true).await.unwrap();
    let f = fill(&*store).await;
    let mut conn = sqlx::PgConnection::connect(&db.url).await.unwrap();
    // Statistics as the store keeps them after a large write (it runs ANALYZE in the background).
    sqlx::raw_sql("ANALYZE objects")
        .execute(&mut conn)
        .await
        .unwrap();
    let cid: i64 = sqlx::query("SELECT cid FROM collections WHERE id = $1")
        .bind(&f.coll)
        .fetch_one(&mut conn)
        .await
        .unwrap()
        .get(0);
    let mut failures = Vec::new();
    for (name, q) in queries(Dialect::Postgres, &f, cid) {
        let text = format!("EXPLAIN {}", q.text);
        let rows = crate::postgres::bind_all(sqlx::query(&text), &q.args)
            .fetch_all(&mut conn)
            .await
            .unwrap();
        let plan: Vec<String> = rows.iter().map(|r| r.get::<String, _>(0)).collect();
        let plan = plan.join("\n");
        if !plan.contains("objects_key")
            || plan.contains("objects_collection_seq")
            || plan.contains("Seq Scan on objects o")
        {
            failures.push(format!("{name}: not found by its key:\n{plan}"));
        }
    }
    drop(conn);
    drop(store);
    db.drop_db().await;
    assert!(failures.is_empty(), "{}", failures.join("\n\n"));
}
