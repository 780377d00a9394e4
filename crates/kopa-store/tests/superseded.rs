//! The `superseded` marker of object versions (migration `0004_superseded`): 1 exactly when a later
//! version of the same object is stored in the same collection. Reads of the latest versions trust
//! a 0 without looking further, so a 0 where a later version exists would serve two "latest"
//! versions of one object. Checked on both backends against the stored rows after every write and
//! delete of a long sequence of out-of-order versions, and after an upgrade from schema 3.

mod common;

use common::*;
use kopa_core::{Role, Tlp};
use kopa_store::{Access, NewCollection, VersionMatch};
use rand::{rngs::StdRng, Rng, SeedableRng};
use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

on_both_backends!(
    marks_follow_out_of_order_versions_and_deletes,
    a_later_version_the_reader_cannot_see,
);

/// A stored row: (collection key, stix_id, version µs, superseded).
type Mark = (i64, String, i64, i64);

/// Every stored row, in order.
async fn marks(h: &Harness) -> Vec<Mark> {
    let q = "SELECT collection, stix_id, version, superseded FROM objects ORDER BY collection, \
             stix_id, version";
    match &h.raw {
        Raw::Sqlite(dir) => {
            let conn = rusqlite::Connection::open(dir.join(kopa_store::DB_FILE)).unwrap();
            let mut stmt = conn.prepare(q).unwrap();
            stmt.query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?)))
                .unwrap()
                .collect::<rusqlite::Result<_>>()
                .unwrap()
        }
        Raw::Postgres(url) => {
            use sqlx::Connection;
            let mut conn = sqlx::PgConnection::connect(url).await.unwrap();
            sqlx::query_as(q).fetch_all(&mut conn).await.unwrap()
        }
    }
}

/// The marks the rows must carry: 1 for every version but the latest of each object (of each
/// STIX id in each collection).
fn expected(rows: &[Mark]) -> Vec<Mark> {
    let mut latest: BTreeMap<(i64, &str), i64> = BTreeMap::new();
    for (c, id, v, _) in rows {
        let l = latest.entry((*c, id)).or_insert(*v);
        *l = (*l).max(*v);
    }
    rows.iter()
        .map(|(c, id, v, _)| {
            let superseded = latest[&(*c, id.as_str())] != *v;
            (*c, id.clone(), *v, i64::from(superseded))
        })
        .collect()
}

fn collection(title: &str) -> NewCollection {
    NewCollection {
        id: None,
        title: title.into(),
        description: None,
        alias: None,
        read: Access::All,
        write: Access::All,
    }
}

const TIMES: [&str; 6] = [
    "2021-01-01T00:00:00Z",
    "2021-02-01T00:00:00Z",
    "2021-03-01T00:00:00Z",
    "2021-04-01T00:00:00Z",
    "2021-05-01T00:00:00Z",
    "2021-06-01T00:00:00Z",
];

async fn marks_follow_out_of_order_versions_and_deletes(h: Arc<Harness>) {
    let s = &h.store;
    let org = s.add_org("Org").await.unwrap();
    let user = s.add_user("analyst", &org.id, Role::Analyst).await.unwrap();
    let c = s.add_collection(&collection("Room")).await.unwrap();
    // A second collection holding versions of the same ids: its versions are another object's.
    let other = s.add_collection(&collection("Other")).await.unwrap();
    let who = audience(&org.id, &user.id);
    let author = principal(&org.id, &user.id, Role::Analyst);
    let st = steward(&org.id, &user.id, Tlp::Green);
    let ids: Vec<String> = (1..=4).map(|n| sid("indicator", n)).collect();
    // The model: the versions stored in `c`, by id.
    let mut stored: BTreeMap<String, BTreeSet<i64>> = BTreeMap::new();
    // Seeded: the sequence is the same on every run and backend.
    let mut rng = StdRng::seed_from_u64(20_261_203);
    // Versions of the same ids in the other collection, newer than any in `c`.
    s.put_objects(
        &other.id,
        ids.iter()
            .map(|id| indicator(id, "2022-01-01T00:00:00Z", "other", &st))
            .collect(),
    )
    .await
    .unwrap();
    for step in 0..60 {
        let what = if rng.gen_range(0..3) < 2 {
            "put"
        } else {
            "delete"
        };
        if what == "put" {
            // One to four versions, in any order, possibly of one object twice and possibly
            // already stored.
            let n = 1 + rng.gen_range(0..4);
            let batch: Vec<_> = (0..n)
                .map(|_| {
                    let id = &ids[rng.gen_range(0..ids.len())];
                    let t = TIMES[rng.gen_range(0..TIMES.len())];
                    indicator(id, t, t, &st)
                })
                .collect();
            for o in &batch {
                let v = o.version.unwrap().micros();
                stored.entry(o.id.clone()).or_default().insert(v);
            }
            s.put_objects(&c.id, batch).await.unwrap();
        } else {
            let id = &ids[rng.gen_range(0..ids.len())];
            let versions = stored.entry(id.clone()).or_default();
            let (vm, gone): (VersionMatch, Vec<i64>) = match rng.gen_range(0..4) {
                0 => (
                    VersionMatch::last(),
                    versions.last().into_iter().copied().collect(),
                ),
                1 => (
                    VersionMatch {
                        first: true,
                        ..Default::default()
                    },
                    versions.first().into_iter().copied().collect(),
                ),
                2 => (
                    VersionMatch {
                        all: true,
                        ..Default::default()
                    },
                    versions.iter().copied().collect(),
                ),
                _ => {
                    let t = ts(TIMES[rng.gen_range(0..TIMES.len())]);
                    let gone = versions
                        .iter()
                        .copied()
                        .filter(|v| *v == t.micros())
                        .collect();
                    (
                        VersionMatch {
                            at: vec![t],
                            ..Default::default()
                        },
                        gone,
                    )
                }
            };
            let n = s
                .delete_object(&author, RW, &c.id, id, &vm, &[])
                .await
                .unwrap();
            assert_eq!(n, gone.len() as u64, "step {step}: delete {vm:?} of {id}");
            for v in gone {
                versions.remove(&v);
            }
        }
        let rows = marks(&h).await;
        assert_eq!(rows, expected(&rows), "step {step} ({what})");
        // The default read (latest versions) gives the newest stored version of each object.
        let page = s
            .objects(
                &who.clone().into(),
                &c.id,
                &object_filter(100, VersionMatch::last()),
            )
            .await
            .unwrap();
        let got: BTreeMap<String, i64> = page
            .objects
            .iter()
            .map(|o| (o.id.clone(), o.version.micros()))
            .collect();
        let want: BTreeMap<String, i64> = stored
            .iter()
            .filter_map(|(id, vs)| vs.last().map(|v| (id.clone(), *v)))
            .collect();
        assert_eq!(got, want, "step {step} ({what})");
        assert_eq!(
            page.objects.len(),
            want.len(),
            "step {step}: one version per object"
        );
    }
}

async fn a_later_version_the_reader_cannot_see(h: Arc<Harness>) {
    let s = &h.store;
    let a = s.add_org("A").await.unwrap();
    let b = s.add_org("B").await.unwrap();
    let ua = s.add_user("ua", &a.id, Role::Analyst).await.unwrap();
    let ub = s.add_user("ub", &b.id, Role::Analyst).await.unwrap();
    let c = s.add_collection(&collection("Room")).await.unwrap();
    let id = sid("indicator", 1);
    // The later version first: the earlier one is marked when it arrives.
    for (time, name, tlp) in [(TIMES[1], "red", Tlp::Red), (TIMES[0], "green", Tlp::Green)] {
        let o = indicator(&id, time, name, &steward(&a.id, &ua.id, tlp));
        s.put_objects(&c.id, vec![o]).await.unwrap();
    }
    let rows = marks(&h).await;
    assert_eq!(rows, expected(&rows));
    assert_eq!(rows.iter().map(|r| r.3).collect::<Vec<_>>(), [1, 0]);
    let latest = |who: kopa_core::Audience| {
        let s = s.clone();
        let coll = c.id.clone();
        async move {
            s.objects(&who.into(), &coll, &object_filter(10, VersionMatch::last()))
                .await
                .unwrap()
                .objects
                .iter()
                .map(|o| o.version)
                .collect::<Vec<_>>()
        }
    };
    // B may not see the RED version: its latest is the GREEN one, marked superseded.
    assert_eq!(latest(audience(&b.id, &ub.id)).await, [ts(TIMES[0])]);
    assert_eq!(latest(audience(&a.id, &ua.id)).await, [ts(TIMES[1])]);
}

/// A database at schema version 3 holding several versions of objects, made with the shipped
/// migration files.
fn schema_3_script(migrations: &[kopa_store::migrations::Migration], int: &str) -> String {
    let mut sql = kopa_store::testing::schema_script(migrations, 3, int);
    sql.push_str(&format!(
        "INSERT INTO orgs (id, name) VALUES ('org-1', 'Old Org');
         INSERT INTO users (id, name, org_id, role) VALUES ('user-1', 'old', 'org-1', 'analyst');
         INSERT INTO collections (id, title, read_all, write_all) VALUES ('{COLL}', 'Old', 1, 1);
         INSERT INTO collections (id, title, read_all, write_all) VALUES ('{OTHER}', 'Other', 1, 1);
         WITH s (seq, id, v, coll) AS (VALUES (1, 'indicator--a', 30, '{COLL}'),
             (2, 'indicator--a', 10, '{COLL}'), (3, 'indicator--a', 20, '{COLL}'),
             (4, 'indicator--b', 5, '{COLL}'), (5, 'indicator--b', 50, '{OTHER}'),
             (6, 'indicator--c', 7, '{OTHER}'))
         INSERT INTO objects (seq, collection, stix_id, type, spec_version, version, date_added,
             owner_org, author, tlp, narrowed, json)
           SELECT s.seq, c.cid, s.id, 'indicator', '2.1', s.v, s.seq, 'org-1', 'user-1', 1, 0, '{{}}'
           FROM s
           JOIN collections c ON c.id = s.coll;
         UPDATE clock SET last_seq = 6, last_added = 6;"
    ));
    sql
}

const COLL: &str = "6f0e2b9a-1c3d-4e5f-8a7b-9c0d1e2f3a4b";
const OTHER: &str = "7a1b2c3d-4e5f-4a6b-8c7d-0e1f2a3b4c5d";

async fn check_upgraded(location: &str, raw: Raw) {
    let s = kopa_store::open(location, false).await.unwrap();
    let h = Harness { store: s, raw };
    let rows = marks(&h).await;
    assert_eq!(
        rows,
        [
            (1, "indicator--a".to_string(), 10, 1),
            (1, "indicator--a".to_string(), 20, 1),
            (1, "indicator--a".to_string(), 30, 0),
            // The versions of indicator--b are in two collections: each is the latest of its own.
            (1, "indicator--b".to_string(), 5, 0),
            (2, "indicator--b".to_string(), 50, 0),
            (2, "indicator--c".to_string(), 7, 0),
        ]
    );
    let org = h.store.org_by_name("Old Org").await.unwrap();
    let who = audience(&org.id, &kopa_core::UserId("user-1".into()));
    let page = h
        .store
        .objects(&who.into(), COLL, &object_filter(10, VersionMatch::last()))
        .await
        .unwrap();
    let got: Vec<(String, i64)> = page
        .objects
        .iter()
        .map(|o| (o.id.clone(), o.version.micros()))
        .collect();
    assert_eq!(
        got,
        [
            ("indicator--a".to_string(), 30),
            ("indicator--b".to_string(), 5)
        ]
    );
}

#[tokio::test]
async fn sqlite_upgrade_marks_superseded_versions() {
    let dir = sqlite_from_script(&schema_3_script(kopa_store::migrations::SQLITE, "INTEGER"));
    check_upgraded(
        dir.path().to_str().unwrap(),
        Raw::Sqlite(dir.path().to_path_buf()),
    )
    .await;
}

#[tokio::test]
async fn postgres_upgrade_marks_superseded_versions() {
    let script = schema_3_script(kopa_store::migrations::POSTGRES, "BIGINT");
    on_postgres_from_script(&script, |url| async move {
        check_upgraded(&url, Raw::Postgres(url.clone())).await
    })
    .await;
}
