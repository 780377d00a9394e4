//! The sync loop against real Kopa servers in this process: two (or three) nodes, each a store and a
//! `kopa_server` listening on a loopback port, peered both ways. Objects posted on one node reach
//! the other through `Syncer::sync_once`; restarts resume from the saved cursors; a refused port is
//! recorded as the peer's error and heals; push and sightings home deliver without a pull.

mod common;

use common::{failing_proxy, indicator, pair, put_raw, uuid_n, Node, PgDb, T0};
use kopa_core::Role;
use kopa_federation::{NodeKey, PROVENANCE_EXTENSION_ID};
use kopa_store::{ObjectFilter, VersionMatch};
use serde_json::{json, Value};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn objects_posted_on_a_reach_b_in_one_round_with_their_provenance() {
    let (a, b, cid) = pair().await;
    let objects: Vec<Value> = (0..25).map(|n| indicator(n, T0)).collect();
    a.post(&cid, &objects).await;
    // Page size 10: three pages, each stored before its cursor is saved.
    let reports = b.syncer(10).sync_once(None).await.unwrap();
    assert_eq!(reports.len(), 1);
    let r = &reports[0];
    assert_eq!(r.error, None);
    assert_eq!((r.received, r.duplicates, r.rejected), (25, 0, 0));
    assert_eq!(b.held(&cid).await, a.held(&cid).await);
    assert_eq!(b.held(&cid).await.len(), 25);
    // Stored as received: the origin's signature kept, origin and via recorded.
    let one = &b
        .store
        .objects(
            &b.me().into(),
            &cid,
            &ObjectFilter {
                added_after: None,
                after_seq: None,
                limit: 1,
                ids: vec![format!("indicator--{}", uuid_n(3))],
                types: Vec::new(),
                versions: VersionMatch::last(),
                spec_versions: Vec::new(),
            },
        )
        .await
        .unwrap()
        .objects[0];
    let v: Value = serde_json::from_str(&one.json).unwrap();
    assert_eq!(
        v["extensions"][PROVENANCE_EXTENSION_ID]["origin_node"],
        a.key.node_id().as_str()
    );
    assert_eq!(one.origin.as_deref(), Some(a.key.node_id().as_str()));
    let routes = b
        .store
        .object_routes(&[format!("indicator--{}", uuid_n(3))])
        .await
        .unwrap();
    assert_eq!(routes[0].via.as_deref(), Some(a.key.node_id().as_str()));
    // Status: last sync recorded, counters written, nothing left.
    let peer = b.store.peer("a").await.unwrap();
    assert!(peer.last_sync_at.is_some());
    assert_eq!(peer.last_error, None);
    let st = kopa_sync::PeerStatus::from_stored(peer.status.as_ref());
    assert_eq!((st.received, st.lag_objects), (25, 0));
    // A round with nothing new reads nothing and stores nothing.
    let again = b.syncer(10).sync_once(Some("a")).await.unwrap();
    assert_eq!((again[0].received, again[0].duplicates), (0, 0));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_restarted_loop_resumes_from_the_saved_cursor_without_duplicates() {
    let (a, b, cid) = pair().await;
    a.post(&cid, &(0..12).map(|n| indicator(n, T0)).collect::<Vec<_>>())
        .await;
    let first = b.syncer(5).sync_once(None).await.unwrap();
    assert_eq!(first[0].received, 12);
    let cursors = b.store.peer_cursors("a").await.unwrap();
    assert_eq!(cursors.len(), 1);
    assert_eq!(cursors[0].0, cid);
    // New objects and a new version of an old one, then a new loop over the same store (a restart).
    let mut more: Vec<Value> = (12..20).map(|n| indicator(n, T0)).collect();
    more.push(indicator(0, "2024-02-01T00:00:00.000Z"));
    a.post(&cid, &more).await;
    let second = b.syncer(5).sync_once(None).await.unwrap();
    assert_eq!(second[0].error, None);
    assert_eq!((second[0].received, second[0].duplicates), (9, 0));
    assert_eq!(b.held(&cid).await, a.held(&cid).await);
    assert_eq!(b.held(&cid).await.len(), 21);
    // A lost cursor (say a crash before it was written) costs a re-read, not duplicates.
    b.store.remove_peer("a").await.unwrap();
    b.peer("a", &a, &[&cid], false).await;
    let reread = b.syncer(5).sync_once(None).await.unwrap();
    assert_eq!((reread[0].received, reread[0].duplicates), (0, 21));
    assert_eq!(b.held(&cid).await.len(), 21);
}

/// A saved `next` the peer refuses (it was upgraded and seals its cursors differently, or its
/// cursor key changed) costs a re-read from `added_after`, not a pull stuck on a 400 every round.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_next_cursor_the_peer_refuses_falls_back_to_added_after() {
    let (a, b, cid) = pair().await;
    a.post(&cid, &(0..6).map(|n| indicator(n, T0)).collect::<Vec<_>>())
        .await;
    let first = b.syncer(5).sync_once(None).await.unwrap();
    assert_eq!(first[0].received, 6);
    let saved = b.store.peer_cursors("a").await.unwrap()[0].1.clone();
    let mut cursor: Value = serde_json::from_str(&saved).unwrap();
    cursor["next"] = Value::from("MTIzNC5kZWFkYmVlZmRlYWRiZWVm");
    b.store
        .set_peer_cursor("a", &cid, &cursor.to_string())
        .await
        .unwrap();
    a.post(&cid, &(6..9).map(|n| indicator(n, T0)).collect::<Vec<_>>())
        .await;
    let second = b.syncer(5).sync_once(None).await.unwrap();
    assert_eq!(second[0].error, None);
    assert_eq!(second[0].received, 3);
    assert_eq!(b.held(&cid).await, a.held(&cid).await);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_refused_port_is_recorded_as_the_peers_error_and_heals() {
    let (mut a, b, cid) = pair().await;
    a.post(&cid, &[indicator(1, T0)]).await;
    a.stop().await;
    let syncer = b.syncer(10);
    let down = syncer.sync_once(None).await.unwrap();
    let err = down[0].error.clone().expect("an error while A is down");
    assert!(err.contains("cannot connect"), "{err}");
    let peer = b.store.peer("a").await.unwrap();
    assert_eq!(peer.error_count, 1);
    assert_eq!(peer.last_error.as_deref(), Some(err.as_str()));
    assert!(peer.last_sync_at.is_none());
    assert!(b.held(&cid).await.is_empty());

    a.restart().await;
    let up = syncer.sync_once(None).await.unwrap();
    assert_eq!(up[0].error, None);
    assert_eq!(up[0].received, 1);
    let peer = b.store.peer("a").await.unwrap();
    assert_eq!((peer.last_error, peer.error_count), (None, 1));
    assert!(peer.last_sync_at.is_some());
    assert_eq!(b.held(&cid).await, a.held(&cid).await);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn collections_match_by_alias_and_unmatched_ones_are_reported() {
    let (a, b) = (Node::new(1).await, Node::new(2).await);
    let on_a = a.collection(None, Some("cti-room")).await;
    let lonely = a.collection(None, None).await;
    let on_b = b.collection(None, Some("cti-room")).await;
    assert_ne!(on_a, on_b);
    a.peer("b", &b, &[&on_a, &lonely], false).await;
    b.peer("a", &a, &[&on_b], false).await;
    a.post(&on_a, &[indicator(1, T0), indicator(2, T0)]).await;
    a.post(&lonely, &[indicator(3, T0)]).await;
    let r = b.syncer(10).sync_once(None).await.unwrap();
    assert_eq!(r[0].error, None);
    assert_eq!(r[0].received, 2);
    assert_eq!(b.held(&on_b).await, a.held(&on_a).await);
    let expected = format!("no local collection for remote {lonely}");
    assert_eq!(r[0].skipped, vec![expected.clone()]);
    let st = kopa_sync::PeerStatus::from_stored(b.store.peer("a").await.unwrap().status.as_ref());
    assert_eq!(st.skipped, vec![expected]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_peer_declared_with_a_token_is_read_as_that_user() {
    let (a, b) = (Node::new(1).await, Node::new(2).await);
    let cid = a.collection(None, None).await;
    b.collection(Some(&cid), None).await;
    a.peer("b", &b, &[&cid], false).await;
    b.peer_with("a", &a, &[&cid], false, Some(a.token.clone()))
        .await;
    a.post(&cid, &[indicator(1, T0)]).await;
    let r = b.syncer(10).sync_once(None).await.unwrap();
    assert_eq!((r[0].error.as_deref(), r[0].received), (None, 1));
    // A wrong token is refused by A, and the refusal is the peer's error.
    b.store.remove_peer("a").await.unwrap();
    b.peer_with("a", &a, &[&cid], false, Some("kopa_nope.nope".into()))
        .await;
    let r = b.syncer(10).sync_once(None).await.unwrap();
    let err = r[0].error.clone().unwrap();
    assert!(err.contains("HTTP 401"), "{err}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn push_delivers_without_a_pull_and_only_what_the_policy_allows() {
    let (a, b) = (Node::new(1).await, Node::new(2).await);
    let shared = a.collection(None, None).await;
    let private = a.collection(None, None).await;
    b.collection(Some(&shared), None).await;
    b.collection(Some(&private), None).await;
    a.peer("b", &b, &[&shared], true).await;
    // B takes A's pushes only into the collections its policy for A names.
    b.peer("a", &a, &[&shared], false).await;
    let mut amber = indicator(50, T0);
    amber["object_marking_refs"] =
        json!(["marking-definition--55d920b0-5e8b-4f79-9ee9-91f868d9b421"]);
    a.post(&shared, &[indicator(1, T0), indicator(2, T0), amber])
        .await;
    a.post(&private, &[indicator(3, T0)]).await;
    let r = a.syncer(10).sync_once(None).await.unwrap();
    assert_eq!(r[0].error, None);
    // Two CLEAR indicators of the shared collection; AMBER is above the policy's GREEN.
    assert_eq!(r[0].pushed, 2);
    let on_b: Vec<String> = b
        .held(&shared)
        .await
        .into_iter()
        .map(|(id, _)| id)
        .collect();
    assert_eq!(
        on_b,
        vec![
            format!("indicator--{}", uuid_n(1)),
            format!("indicator--{}", uuid_n(2))
        ]
    );
    assert!(b.held(&private).await.is_empty());
    // The push cursor moved: a second round sends nothing.
    let again = a.syncer(10).sync_once(None).await.unwrap();
    assert_eq!(again[0].pushed, 0);
    a.post(&shared, &[indicator(4, T0)]).await;
    let third = a.syncer(10).sync_once(None).await.unwrap();
    assert_eq!(third[0].pushed, 1);
    assert_eq!(b.held(&shared).await.len(), 3);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn push_sets_apart_an_object_larger_than_the_peer_accepts_and_moves_on() {
    let a = Node::new(1).await;
    let b = Node::configured(
        2,
        None,
        kopa_server::ServerConfig {
            max_content_length: 4096,
            ..Default::default()
        },
    )
    .await;
    let cid = a.collection(None, None).await;
    b.collection(Some(&cid), None).await;
    a.peer("b", &b, &[&cid], true).await;
    b.peer("a", &a, &[&cid], false).await;
    let mut big = indicator(2, T0);
    big["description"] = json!("x".repeat(8000));
    a.post(&cid, &[indicator(1, T0), big, indicator(3, T0)])
        .await;
    let r = a.syncer(10).sync_once(None).await.unwrap();
    // The round succeeds: the two that fit are delivered, the large one is counted as refused.
    assert_eq!(r[0].error, None);
    assert_eq!(r[0].pushed, 2);
    let on_b: Vec<String> = b.held(&cid).await.into_iter().map(|(id, _)| id).collect();
    assert_eq!(
        on_b,
        vec![
            format!("indicator--{}", uuid_n(1)),
            format!("indicator--{}", uuid_n(3))
        ]
    );
    let status = a.store.peer("b").await.unwrap().status.unwrap();
    assert_eq!(status["refused_by_peer"], 1, "{status}");
    // The cursor moved past it: the next round sends nothing again.
    let again = a.syncer(10).sync_once(None).await.unwrap();
    assert_eq!((again[0].pushed, again[0].error.clone()), (0, None));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_sighting_of_a_pulled_indicator_goes_home_to_its_origin() {
    let (a, b, cid) = pair().await;
    a.post(&cid, &[indicator(1, T0)]).await;
    assert_eq!(b.syncer(10).sync_once(None).await.unwrap()[0].received, 1);
    let sighting = json!({
        "type": "sighting", "spec_version": "2.1",
        "id": "sighting--ee60c3d8-4ae5-4f4e-9a5e-000000000001",
        "created": "2024-03-01T00:00:00.000Z", "modified": "2024-03-01T00:00:00.000Z",
        "sighting_of_ref": format!("indicator--{}", uuid_n(1)),
        "count": 3,
        "object_marking_refs": ["marking-definition--94868c89-83c2-464b-929b-a1a8aa3c8487"],
    });
    // A sighting of B's own indicator does not travel home anywhere.
    let own = json!({
        "type": "sighting", "spec_version": "2.1",
        "id": "sighting--ee60c3d8-4ae5-4f4e-9a5e-000000000002",
        "created": "2024-03-01T00:00:00.000Z", "modified": "2024-03-01T00:00:00.000Z",
        "sighting_of_ref": format!("indicator--{}", uuid_n(99)),
        "object_marking_refs": ["marking-definition--94868c89-83c2-464b-929b-a1a8aa3c8487"],
    });
    b.post(&cid, &[indicator(99, T0), sighting, own]).await;
    // B's round with A: nothing new to pull; the sighting is posted home. A does not pull.
    let r = b.syncer(10).sync_once(Some("a")).await.unwrap();
    assert_eq!(r[0].error, None);
    assert_eq!(r[0].sightings_sent, 1);
    let at_a: Vec<String> = a.held(&cid).await.into_iter().map(|(id, _)| id).collect();
    assert!(at_a.contains(&"sighting--ee60c3d8-4ae5-4f4e-9a5e-000000000001".to_string()));
    assert!(!at_a.contains(&"sighting--ee60c3d8-4ae5-4f4e-9a5e-000000000002".to_string()));
    assert!(!at_a.contains(&format!("indicator--{}", uuid_n(99))));
    // Sent once.
    let r = b.syncer(10).sync_once(Some("a")).await.unwrap();
    assert_eq!(r[0].sightings_sent, 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tampered_unsigned_and_unknown_objects_are_rejected_and_counted_by_reason() {
    let (a, b, cid) = pair().await;
    let stranger = NodeKey::from_seed([77; 32]);
    let mut tampered = kopa_federation::sign(&indicator(1, T0), &a.key, "org").unwrap();
    tampered["name"] = json!("indicator l");
    let by_stranger = kopa_federation::sign(&indicator(2, T0), &stranger, "org").unwrap();
    let unsigned = indicator(3, T0);
    let good = kopa_federation::sign(&indicator(4, T0), &a.key, "org").unwrap();
    put_raw(&a, &cid, &[tampered, by_stranger, unsigned, good]).await;
    let r = b.syncer(10).sync_once(None).await.unwrap();
    assert_eq!(r[0].error, None);
    assert_eq!((r[0].received, r[0].rejected), (1, 3));
    let held: Vec<String> = b.held(&cid).await.into_iter().map(|(id, _)| id).collect();
    assert_eq!(held, vec![format!("indicator--{}", uuid_n(4))]);
    let st = kopa_sync::PeerStatus::from_stored(b.store.peer("a").await.unwrap().status.as_ref());
    let by_reason: Vec<(&str, u64)> = st.rejected.iter().map(|(k, v)| (k.as_str(), *v)).collect();
    assert_eq!(
        by_reason,
        [("tampered", 1), ("unknown_node", 1), ("unsigned", 1)]
    );
    // Rejections are final: the cursor moved past them, the next round reads nothing.
    let again = b.syncer(10).sync_once(None).await.unwrap();
    assert_eq!((again[0].received, again[0].rejected), (0, 0));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_chain_a_b_c_carries_a_objects_to_c_with_their_origin() {
    let (a, b, c) = (Node::new(1).await, Node::new(2).await, Node::new(3).await);
    let cid = a.collection(None, None).await;
    b.collection(Some(&cid), None).await;
    c.collection(Some(&cid), None).await;
    a.peer("b", &b, &[&cid], false).await;
    b.peer("a", &a, &[&cid], false).await;
    b.peer("c", &c, &[&cid], false).await;
    c.peer("b", &b, &[&cid], false).await;
    // C knows A's key (to verify A's signatures) without pulling from A: A exports nothing to C.
    c.peer("a", &a, &[], false).await;
    a.post(&cid, &(0..5).map(|n| indicator(n, T0)).collect::<Vec<_>>())
        .await;
    b.syncer(2).sync_once(Some("a")).await.unwrap();
    let r = c.syncer(2).sync_once(Some("b")).await.unwrap();
    assert_eq!(r[0].error, None);
    assert_eq!(c.held(&cid).await, a.held(&cid).await);
    let routes = c
        .store
        .object_routes(&[format!("indicator--{}", uuid_n(0))])
        .await
        .unwrap();
    assert_eq!(routes[0].origin.as_deref(), Some(a.key.node_id().as_str()));
    assert_eq!(routes[0].via.as_deref(), Some(b.key.node_id().as_str()));
    // Nothing goes back to its origin: B's reader for A never returns A's objects.
    let back = a.syncer(2).sync_once(Some("b")).await.unwrap();
    assert_eq!(back[0].error, None);
    assert_eq!(
        (back[0].received, back[0].duplicates, back[0].own),
        (0, 0, 0)
    );
    assert_eq!(a.held(&cid).await.len(), 5);
}

/// Wait (at most 30 s, polling) until `node` holds `n` object versions in `collection`.
async fn until_held(node: &Node, collection: &str, n: usize) -> usize {
    for _ in 0..300 {
        let held = node.held(collection).await.len();
        if held >= n {
            return held;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    node.held(collection).await.len()
}

type Running = tokio::task::JoinHandle<Result<(), kopa_sync::SyncError>>;

/// `kopa_sync::run` of `node` in a task, pulling and pushing every `pull_ms` and `push_ms`
/// milliseconds; a send on the channel stops it.
fn start_loop(
    node: &Node,
    pull_ms: u64,
    push_ms: u64,
) -> (tokio::sync::oneshot::Sender<()>, Running) {
    let config = kopa_sync::SyncConfig {
        pull_interval: std::time::Duration::from_millis(pull_ms),
        push_interval: std::time::Duration::from_millis(push_ms),
        ..kopa_sync::SyncConfig::default()
    };
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let run = tokio::spawn(kopa_sync::run(node.context(), config, async {
        let _ = stopped.await;
    }));
    (stop, run)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_running_loop_pulls_and_pushes_until_it_is_stopped() {
    let (a, b, cid) = pair().await;
    // A pushes to B; B pulls from A.
    a.store.set_peer_push("b", true).await.unwrap();
    let (stop_a, run_a) = start_loop(&a, 200, 100);
    let (stop_b, run_b) = start_loop(&b, 200, 100);
    a.post(&cid, &(0..3).map(|n| indicator(n, T0)).collect::<Vec<_>>())
        .await;
    assert_eq!(until_held(&b, &cid, 3).await, 3);
    // Written on B: A's loop pulls it.
    b.post(&cid, &[indicator(10, T0)]).await;
    assert_eq!(until_held(&a, &cid, 4).await, 4);
    stop_a.send(()).unwrap();
    stop_b.send(()).unwrap();
    run_a.await.unwrap().unwrap();
    run_b.await.unwrap().unwrap();
    assert_eq!(a.held(&cid).await, b.held(&cid).await);
    let status = b.store.peer("a").await.unwrap();
    assert!(status.last_sync_at.is_some());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn between_pulls_the_running_loop_pushes_what_is_new_to_a_push_peer() {
    // Only A runs its loop, and its next pull is an hour away after the first round: what reaches
    // B afterwards comes by push rounds, planned from the push flag the rounds read.
    let (a, b, cid) = pair().await;
    a.store.set_peer_push("b", true).await.unwrap();
    let (stop, run) = start_loop(&a, 3_600_000, 100);
    a.post(&cid, &[indicator(0, T0)]).await;
    assert_eq!(until_held(&b, &cid, 1).await, 1);
    for n in 1..3 {
        a.post(&cid, &[indicator(n, T0)]).await;
        assert_eq!(until_held(&b, &cid, n + 1).await, n + 1);
    }
    stop.send(()).unwrap();
    run.await.unwrap().unwrap();
    assert_eq!(a.held(&cid).await, b.held(&cid).await);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_sighting_travels_home_through_the_node_that_delivered_the_indicator() {
    // A → B → C. A and C know each other's key (to verify each other's signatures) but export
    // nothing to each other: the sighting goes home the way its indicator came.
    let (a, b, c) = (Node::new(1).await, Node::new(2).await, Node::new(3).await);
    let cid = a.collection(None, None).await;
    b.collection(Some(&cid), None).await;
    c.collection(Some(&cid), None).await;
    a.peer("b", &b, &[&cid], false).await;
    a.peer("c", &c, &[], false).await;
    c.peer("a", &a, &[], false).await;
    b.peer("a", &a, &[&cid], false).await;
    b.peer("c", &c, &[&cid], false).await;
    c.peer("b", &b, &[&cid], false).await;
    a.post(&cid, &[indicator(1, T0)]).await;
    b.syncer(10).sync_once(Some("a")).await.unwrap();
    c.syncer(10).sync_once(Some("b")).await.unwrap();
    let id = "sighting--ee60c3d8-4ae5-4f4e-9a5e-000000000003";
    c.post(
        &cid,
        &[json!({
            "type": "sighting", "spec_version": "2.1", "id": id,
            "created": "2024-03-01T00:00:00.000Z", "modified": "2024-03-01T00:00:00.000Z",
            "sighting_of_ref": format!("indicator--{}", uuid_n(1)),
            "object_marking_refs": ["marking-definition--94868c89-83c2-464b-929b-a1a8aa3c8487"],
        })],
    )
    .await;
    // C sends it to B, the node its indicator came through ...
    let r = c.syncer(10).sync_once(Some("b")).await.unwrap();
    assert_eq!((r[0].error.as_deref(), r[0].sightings_sent), (None, 1));
    // ... and B, which is not the indicator's origin either, forwards it to A, the origin.
    let r = b.syncer(10).sync_once(Some("a")).await.unwrap();
    assert_eq!((r[0].error.as_deref(), r[0].sightings_sent), (None, 1));
    let at_a: Vec<String> = a.held(&cid).await.into_iter().map(|(id, _)| id).collect();
    assert!(at_a.contains(&id.to_string()), "{at_a:?}");
    let route = &a.store.object_routes(&[id.to_string()]).await.unwrap()[0];
    assert_eq!(route.origin.as_deref(), Some(c.key.node_id().as_str()));
    assert_eq!(route.via.as_deref(), Some(b.key.node_id().as_str()));
    // B does not send it back to C, where it came from.
    let r = b.syncer(10).sync_once(Some("c")).await.unwrap();
    assert_eq!((r[0].error.as_deref(), r[0].sightings_sent), (None, 0));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_postgresql_node_and_a_sqlite_node_sync_both_ways() {
    let Some(db) = PgDb::create("kopa_sync_test").await else {
        return;
    };
    let a = Node::new(1).await;
    let b = Node::over(2, Some(&db.url)).await;
    let cid = a.collection(None, None).await;
    b.collection(Some(&cid), None).await;
    a.peer("b", &b, &[&cid], false).await;
    b.peer("a", &a, &[&cid], true).await;
    a.post(&cid, &(0..15).map(|n| indicator(n, T0)).collect::<Vec<_>>())
        .await;
    b.post(&cid, &[indicator(100, T0), indicator(101, T0)])
        .await;
    // B (PostgreSQL) pulls A's fifteen and pushes its own two.
    let r = b.syncer(4).sync_once(None).await.unwrap();
    assert_eq!(r[0].error, None);
    assert_eq!((r[0].received, r[0].pushed), (15, 2));
    assert_eq!(a.held(&cid).await, b.held(&cid).await);
    assert_eq!(a.held(&cid).await.len(), 17);
    // A pulling from B then finds nothing it lacks; B's status is kept in PostgreSQL.
    let r = a.syncer(4).sync_once(None).await.unwrap();
    assert_eq!((r[0].error.as_deref(), r[0].received), (None, 0));
    let st = kopa_sync::PeerStatus::from_stored(b.store.peer("a").await.unwrap().status.as_ref());
    assert_eq!((st.received, st.pushed), (15, 2));
    drop(b);
    db.drop_db().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_peer_failing_mid_pull_leaves_the_stored_pages_the_lag_and_the_error() {
    let (a, b) = (Node::new(1).await, Node::new(2).await);
    let cid = a.collection(None, None).await;
    b.collection(Some(&cid), None).await;
    a.peer("b", &b, &[&cid], false).await;
    a.post(&cid, &(0..25).map(|n| indicator(n, T0)).collect::<Vec<_>>())
        .await;
    // Through the proxy: the collections list and the first page pass, the second page gets 503.
    let budget = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(2));
    let proxy = failing_proxy(a.url(), budget.clone()).await;
    b.declare("a", &a, &proxy, &[&cid], false, None).await;
    let r = b.syncer(10).sync_once(None).await.unwrap();
    let err = r[0].error.clone().expect("the round fails");
    assert!(err.contains("HTTP 503"), "{err}");
    assert_eq!(r[0].received, 10);
    assert_eq!(b.held(&cid).await.len(), 10);
    let peer = b.store.peer("a").await.unwrap();
    assert_eq!((peer.error_count, peer.last_sync_at), (1, None));
    let st = kopa_sync::PeerStatus::from_stored(peer.status.as_ref());
    // A said 15 objects remained after the first page.
    assert_eq!((st.received, st.lag_objects), (10, 15));
    assert!(st
        .last_pull_error
        .as_deref()
        .is_some_and(|e| e.contains("HTTP 503")));
    // The peer is reachable again: the pull resumes after the stored page, nothing twice.
    budget.store(1000, std::sync::atomic::Ordering::SeqCst);
    let r = b.syncer(10).sync_once(None).await.unwrap();
    assert_eq!(r[0].error, None);
    assert_eq!((r[0].received, r[0].duplicates), (15, 0));
    assert_eq!(b.held(&cid).await, a.held(&cid).await);
    let peer = b.store.peer("a").await.unwrap();
    assert!(peer.last_sync_at.is_some() && peer.last_error.is_none());
    let st = kopa_sync::PeerStatus::from_stored(peer.status.as_ref());
    assert_eq!((st.received, st.lag_objects, st.lag_seconds), (25, 0, 0));
}

/// Names collide across nodes: node A's `bob` and `admin` are not node B's. A addresses a RED
/// indicator to its own bob and admin and to B's bea (a directory entry on A), and an AMBER+STRICT
/// one to its own "Org Shared" and to B's "Org 2": after B pulls, only bea and Org 2's people see
/// them on B, never B's own bob, admin or "Org Shared" that merely share a name.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn same_names_on_two_nodes_never_grant_each_other() {
    let (a, b) = (Node::new(1).await, Node::new(2).await);
    let cid = a.collection(None, None).await;
    b.collection(Some(&cid), None).await;
    // A exports the collection to B up to RED; B pulls.
    let policy = kopa_federation::ExportPolicy {
        collections: vec![cid.clone()],
        max_tlp: kopa_core::Tlp::Red,
        ..kopa_federation::ExportPolicy::default()
    };
    a.store
        .add_peer(&kopa_store::NewPeer {
            name: "b".into(),
            node_id: b.key.node_id().to_string(),
            url: b.url(),
            public_key: b.key.public_key().encode(),
            token: None,
            policy: serde_json::to_string(&policy).unwrap(),
        })
        .await
        .unwrap();
    b.peer("a", &a, &[], false).await;
    // On A: its own bob and admin and "Org Shared"; directory entries for B's bea and Org 2.
    let a_shared = a.store.add_org("Org Shared").await.unwrap();
    for (name, role) in [("bob", Role::Reader), ("admin", Role::Admin)] {
        a.store.add_user(name, &a_shared.id, role).await.unwrap();
    }
    let b_home = b.key.node_id().to_string();
    let dir_b = a.store.add_remote_org("Org 2", &b_home).await.unwrap();
    a.store
        .add_user("bea", &dir_b.id, Role::Reader)
        .await
        .unwrap();
    // On B: its own bob, admin, bea, and an unrelated "Org Shared".
    let b_shared = b.store.add_org("Org Shared").await.unwrap();
    let mut b_people = Vec::new();
    for (name, org) in [
        ("bob", &b_shared.id),
        ("admin", &b_shared.id),
        ("bea", &b.org),
    ] {
        let u = b.store.add_user(name, org, Role::Reader).await.unwrap();
        b_people.push((name, u.id, org.clone()));
    }
    let audience = |tlp: kopa_core::Tlp, orgs: &[&str], users: &[&str]| {
        json!({"object_marking_refs": [tlp.marking_id()],
               "extensions": {kopa_core::AUDIENCE_EXTENSION_ID: {
                   "extension_type": "property-extension",
                   "organisations": orgs, "recipients": users}}})
    };
    let mut red = indicator(1, T0);
    red.as_object_mut().unwrap().extend(
        audience(kopa_core::Tlp::Red, &[], &["bob", "admin", "bea"])
            .as_object()
            .unwrap()
            .clone(),
    );
    let mut strict = indicator(2, T0);
    strict.as_object_mut().unwrap().extend(
        audience(kopa_core::Tlp::AmberStrict, &["Org Shared", "Org 2"], &[])
            .as_object()
            .unwrap()
            .clone(),
    );
    a.post(&cid, &[red.clone(), strict.clone()]).await;
    let r = b.syncer(10).sync_once(Some("a")).await.unwrap();
    assert_eq!(r[0].error, None);
    assert_eq!(r[0].received, 2, "{:?}", r[0]);
    let sees = |user: &kopa_core::UserId, org: &kopa_core::OrgId| {
        let store = b.store.clone();
        let (user, org, cid) = (user.clone(), org.clone(), cid.clone());
        async move {
            let page = store
                .objects(
                    &kopa_core::Audience { org, user }.into(),
                    &cid,
                    &kopa_store::ObjectFilter {
                        added_after: None,
                        after_seq: None,
                        limit: 100,
                        ids: Vec::new(),
                        types: Vec::new(),
                        versions: VersionMatch::last(),
                        spec_versions: Vec::new(),
                    },
                )
                .await
                .unwrap();
            page.objects.into_iter().map(|o| o.id).collect::<Vec<_>>()
        }
    };
    let (red_id, strict_id) = (
        red["id"].as_str().unwrap().to_string(),
        strict["id"].as_str().unwrap().to_string(),
    );
    for (name, user, org) in &b_people {
        let seen = sees(user, org).await;
        match *name {
            "bea" => assert_eq!(seen, vec![red_id.clone(), strict_id.clone()], "bea"),
            _ => assert!(seen.is_empty(), "B's {name} sees {seen:?}"),
        }
    }
}

/// A push into a collection the receiver's policy for this node does not name is skipped and
/// reported, not an error of the link (its cursor stays, so what waits is sent once the receiver
/// names the collection).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_push_the_receiver_does_not_take_waits_without_failing_the_round() {
    let (a, b) = (Node::new(1).await, Node::new(2).await);
    let shared = a.collection(None, None).await;
    b.collection(Some(&shared), None).await;
    a.peer("b", &b, &[&shared], true).await;
    b.peer("a", &a, &[], false).await;
    a.post(&shared, &[indicator(1, T0)]).await;
    let r = a.syncer(10).sync_once(None).await.unwrap();
    assert_eq!(r[0].error, None, "{:?}", r[0]);
    assert_eq!(r[0].pushed, 0);
    assert!(
        r[0].skipped.iter().any(|s| s.contains("not sent")),
        "{:?}",
        r[0].skipped
    );
    assert!(b.held(&shared).await.is_empty());
}

/// Each pull round obtains the peer's signed audit checkpoint and keeps the latest as a witness;
/// when the peer's log is later cut short, the next checkpoint does not follow the kept one: the
/// alarm is raised and the evidence kept.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_peer_keeps_the_audit_checkpoint_and_sees_the_log_cut_short() {
    let (a, b, cid) = pair().await;
    a.post(&cid, &[indicator(1, T0)]).await;
    a.post(&cid, &[indicator(2, T0)]).await;
    let status = |node: &Node| {
        let store = node.store.clone();
        async move {
            let peer = store.peer("a").await.unwrap();
            kopa_sync::PeerStatus::from_stored(peer.status.as_ref())
        }
    };
    b.syncer(10).sync_once(Some("a")).await.unwrap();
    let st = status(&b).await;
    let (seq, hash) = a.store.audit_head().await.unwrap().unwrap();
    assert!(seq >= 2, "two posts, two entries at least");
    let kept = st.audit_checkpoint.clone().expect("a checkpoint is kept");
    assert_eq!((kept.seq, kept.hash.as_str()), (seq, hash.as_str()));
    assert!(kept.verifies(&a.key.public_key()));
    assert_eq!(st.audit_alarm, None);

    // A's operator cuts its audit log short behind Kopa's back.
    let db = kopa_store::testing::open_sqlite_for_tampering(&a._dir.path().join("data"));
    db.execute("DELETE FROM audit WHERE seq > 1", []).unwrap();
    drop(db);

    let report = b.syncer(10).sync_once(Some("a")).await.unwrap();
    assert_eq!(report[0].error, None, "the round itself goes on");
    let st = status(&b).await;
    let alarm = st.audit_alarm.expect("the alarm is raised");
    assert!(alarm.contains("entries were removed"), "{alarm}");
    assert!(alarm.contains(a.key.node_id().as_str()), "{alarm}");
    assert_eq!(
        st.audit_checkpoint.map(|c| c.seq),
        Some(seq),
        "the longer log's checkpoint is kept as evidence"
    );
}
