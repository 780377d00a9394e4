//! The store reads the time from the clock it is opened with: `date_added` of stored versions,
//! the times of audit entries and peers'. Run on both backends with a test clock.

mod common;

use std::time::Duration;

use common::*;
use kopa_core::{Role, TestClock, Tlp};
use kopa_stix::Timestamp;
use kopa_store::{Access, NewCollection, NewPeer, OpenOptions, Store, VersionMatch};

fn at(s: &str) -> Timestamp {
    Timestamp::parse(s).unwrap()
}

async fn follows_its_clock(store: std::sync::Arc<dyn Store>, clock: TestClock) {
    let org = store.add_org("Org").await.unwrap();
    let user = store.add_user("ana", &org.id, Role::Analyst).await.unwrap();
    let c = store
        .add_collection(&NewCollection {
            id: None,
            title: "Room".into(),
            description: None,
            alias: None,
            read: Access::All,
            write: Access::All,
        })
        .await
        .unwrap();
    let s = steward(&org.id, &user.id, Tlp::Green);
    let first = "indicator--00000000-0000-4000-8000-000000000001";
    store
        .put_objects(
            &c.id,
            vec![indicator(first, "2026-01-01T00:00:00.000Z", "a", &s)],
        )
        .await
        .unwrap();
    clock.advance(Duration::from_secs(72 * 3600));
    let second = "indicator--00000000-0000-4000-8000-000000000002";
    store
        .put_objects(
            &c.id,
            vec![indicator(second, "2026-01-01T00:00:00.000Z", "b", &s)],
        )
        .await
        .unwrap();
    let page = store
        .objects(
            &audience(&org.id, &user.id).into(),
            &c.id,
            &object_filter(10, VersionMatch::last()),
        )
        .await
        .unwrap();
    let added: Vec<Timestamp> = page.objects.iter().map(|o| o.date_added).collect();
    assert_eq!(
        added,
        [at("2026-12-08T00:00:00Z"), at("2026-12-11T00:00:00Z")],
        "date_added is the store's clock"
    );
    // Audit entries are stamped by the clock too.
    store
        .audit(kopa_core::audit::NewAuditEntry {
            actor: "ana".into(),
            action: "test".into(),
            target: "x".into(),
            origin: "local".into(),
            detail: "{}".into(),
        })
        .await
        .unwrap();
    let log = store.audit_entries(0, 10).await.unwrap();
    assert_eq!(log.last().unwrap().at, "2026-12-11T00:00:00.000000Z");
    clock.advance(Duration::from_secs(3600));
    let peer = store
        .add_peer(&NewPeer {
            name: "p".into(),
            node_id: "node--00000000000000000000000000000001".into(),
            url: "https://p.example".into(),
            public_key: "k".into(),
            token: None,
            policy: "{}".into(),
        })
        .await
        .unwrap();
    assert_eq!(peer.added_at, at("2026-12-11T01:00:00Z"));
    assert_eq!(store.clock().now(), at("2026-12-11T01:00:00Z"));
}

fn options(clock: &TestClock) -> OpenOptions {
    OpenOptions {
        clock: clock.shared(),
        ..OpenOptions::default()
    }
}

#[tokio::test]
async fn sqlite_follows_its_clock() {
    let dir = tempfile::tempdir().unwrap();
    let clock = TestClock::at(at("2026-12-08T00:00:00Z"));
    let location = kopa_store::Location::parse(dir.path().join("data").to_str().unwrap());
    let store = kopa_store::open_with(&location, true, &options(&clock))
        .await
        .unwrap();
    follows_its_clock(store, clock).await;
}

#[tokio::test]
async fn postgres_follows_its_clock() {
    let Some(db) = PgDb::create("kopa_clock").await else {
        return;
    };
    let clock = TestClock::at(at("2026-12-08T00:00:00Z"));
    let location = kopa_store::Location::parse(&db.url);
    let result = catch_panic(async {
        let store = kopa_store::open_with(&location, true, &options(&clock))
            .await
            .unwrap();
        follows_its_clock(store, clock.clone()).await;
    })
    .await;
    db.drop_db().await;
    if let Err(e) = result {
        std::panic::resume_unwind(e);
    }
}
