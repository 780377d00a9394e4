//! Conformance of the federation peer store ([`kopa_store::PeerStore`]) on SQLite and PostgreSQL:
//! declare, list, conflicts, cursors, sync status, push, status reports, removal, and survival across
//! a reopen.

mod common;

use common::*;
use kopa_store::{NewPeer, StoreError};
use std::sync::Arc;

on_both_backends!(
    peers_declare_list_remove,
    peer_cursors_and_status,
    peer_push_and_status_report,
    peers_survive_reopen
);

fn peer(name: &str, node: &str) -> NewPeer {
    NewPeer {
        name: name.into(),
        node_id: format!("node--{node:0>32}"),
        url: format!("https://{name}.example"),
        public_key: format!("key-of-{name}"),
        token: Some(format!("token-for-{name}")),
        policy: r#"{"collections":["c1"],"max_tlp":"TLP:GREEN"}"#.into(),
    }
}

async fn peers_declare_list_remove(h: Arc<Harness>) {
    let s = &h.store;
    assert!(s.peers().await.unwrap().is_empty());
    let b = s.add_peer(&peer("node-b", "b")).await.unwrap();
    assert_eq!(b.peer, peer("node-b", "b"));
    assert_eq!(b.last_sync_at, None);
    assert_eq!(b.error_count, 0);
    let mut no_token = peer("node-a", "a");
    no_token.token = None;
    s.add_peer(&no_token).await.unwrap();

    let names: Vec<String> = s
        .peers()
        .await
        .unwrap()
        .into_iter()
        .map(|p| p.peer.name)
        .collect();
    assert_eq!(names, ["node-a", "node-b"]);
    assert_eq!(s.peer("node-a").await.unwrap().peer.token, None);
    assert!(!format!("{b:?}").contains("token-for-node-b"));

    // The same name, or the same node under another name, is a conflict.
    let dup = s.add_peer(&peer("node-b", "c")).await;
    assert!(matches!(dup, Err(StoreError::Conflict(_))), "{dup:?}");
    let dup = s.add_peer(&peer("other-name", "b")).await;
    assert!(matches!(dup, Err(StoreError::Conflict(_))), "{dup:?}");

    s.remove_peer("node-b").await.unwrap();
    assert!(matches!(
        s.peer("node-b").await,
        Err(StoreError::NotFound(_))
    ));
    assert!(matches!(
        s.remove_peer("node-b").await,
        Err(StoreError::NotFound(_))
    ));
    assert_eq!(s.peers().await.unwrap().len(), 1);
    // The name is free again.
    s.add_peer(&peer("node-b", "b")).await.unwrap();
}

async fn peer_cursors_and_status(h: Arc<Harness>) {
    let s = &h.store;
    s.add_peer(&peer("node-b", "b")).await.unwrap();
    s.add_peer(&peer("node-c", "c")).await.unwrap();
    assert!(s.peer_cursors("node-b").await.unwrap().is_empty());
    s.set_peer_cursor("node-b", "col-2", "cur-1").await.unwrap();
    s.set_peer_cursor("node-b", "col-1", "cur-a").await.unwrap();
    s.set_peer_cursor("node-b", "col-2", "cur-2").await.unwrap();
    s.set_peer_cursor("node-c", "col-1", "other").await.unwrap();
    assert_eq!(
        s.peer_cursors("node-b").await.unwrap(),
        [
            ("col-1".to_string(), "cur-a".to_string()),
            ("col-2".to_string(), "cur-2".to_string())
        ]
    );
    assert!(matches!(
        s.set_peer_cursor("nobody", "col-1", "x").await,
        Err(StoreError::NotFound(_))
    ));

    let t1 = ts("2026-01-01T00:00:00Z");
    let t2 = ts("2026-01-01T00:01:00Z");
    let t3 = ts("2026-01-01T00:02:00Z");
    s.record_peer_sync("node-b", t1, None).await.unwrap();
    s.record_peer_sync("node-b", t2, Some("connection refused"))
        .await
        .unwrap();
    let b = s.peer("node-b").await.unwrap();
    assert_eq!(b.last_sync_at, Some(t1));
    assert_eq!(b.last_error.as_deref(), Some("connection refused"));
    assert_eq!(b.last_error_at, Some(t2));
    assert_eq!(b.error_count, 1);
    s.record_peer_sync("node-b", t3, None).await.unwrap();
    let b = s.peer("node-b").await.unwrap();
    assert_eq!(b.last_sync_at, Some(t3));
    assert_eq!(b.last_error, None);
    assert_eq!(b.error_count, 1, "the count of errors is kept");
    assert!(matches!(
        s.record_peer_sync("nobody", t3, None).await,
        Err(StoreError::NotFound(_))
    ));

    // Removing a peer removes its cursors; a new peer of the same name starts from nothing.
    s.remove_peer("node-b").await.unwrap();
    s.add_peer(&peer("node-b", "b")).await.unwrap();
    assert!(s.peer_cursors("node-b").await.unwrap().is_empty());
    assert_eq!(s.peer_cursors("node-c").await.unwrap().len(), 1);
}

async fn peer_push_and_status_report(h: Arc<Harness>) {
    let s = &h.store;
    let b = s.add_peer(&peer("node-b", "b")).await.unwrap();
    assert!(!b.push, "a new peer is pulled from, not pushed to");
    assert_eq!(b.status, None);
    s.add_peer(&peer("node-c", "c")).await.unwrap();

    s.set_peer_push("node-b", true).await.unwrap();
    let report = serde_json::json!({
        "lag_objects": 12,
        "received": 340,
        "rejected": {"tampered": 1},
        "note": "second round"
    });
    s.set_peer_status("node-b", &report).await.unwrap();
    let b = s.peer("node-b").await.unwrap();
    assert!(b.push);
    assert_eq!(b.status.as_ref(), Some(&report));
    // The other peer is untouched.
    let c = s.peer("node-c").await.unwrap();
    assert!(!c.push);
    assert_eq!(c.status, None);
    // A new report replaces the old one; push can be turned off again.
    let later = serde_json::json!({"lag_objects": 0});
    s.set_peer_status("node-b", &later).await.unwrap();
    s.set_peer_push("node-b", false).await.unwrap();
    let b = s.peer("node-b").await.unwrap();
    assert!(!b.push);
    assert_eq!(b.status, Some(later));
    for r in [
        s.set_peer_push("nobody", true).await,
        s.set_peer_status("nobody", &serde_json::json!({})).await,
    ] {
        assert!(matches!(r, Err(StoreError::NotFound(_))), "{r:?}");
    }
    // Kept across a reopen, listed by `peers`.
    s.set_peer_push("node-c", true).await.unwrap();
    let again = kopa_store::open(&h.location(), false).await.unwrap();
    let listed: Vec<(String, bool, bool)> = again
        .peers()
        .await
        .unwrap()
        .into_iter()
        .map(|p| (p.peer.name, p.push, p.status.is_some()))
        .collect();
    assert_eq!(
        listed,
        [
            ("node-b".to_string(), false, true),
            ("node-c".to_string(), true, false)
        ]
    );
}

async fn peers_survive_reopen(h: Arc<Harness>) {
    h.store.add_peer(&peer("node-b", "b")).await.unwrap();
    h.store
        .set_peer_cursor("node-b", "col-1", "cur")
        .await
        .unwrap();
    let again = kopa_store::open(&h.location(), false).await.unwrap();
    assert_eq!(
        again.peer("node-b").await.unwrap().peer,
        peer("node-b", "b")
    );
    assert_eq!(again.peer_cursors("node-b").await.unwrap().len(), 1);
}
