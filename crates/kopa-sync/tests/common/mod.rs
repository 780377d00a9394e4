//! Kopa nodes inside a test process: each a store (SQLite in a temporary directory) and a
//! `kopa_server` on a loopback port, with helpers to declare peers, post and list objects.

#![allow(dead_code)]

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use kopa_core::{Audience, Role, UserId};
use kopa_federation::{ExportPolicy, NodeIdentity, NodeKey};
use kopa_server::{AppState, ServerConfig};
use kopa_store::{Access, NewCollection, NewPeer, ObjectFilter, Store, VersionMatch};
use kopa_sync::{SyncConfig, Syncer};
use serde_json::{json, Value};
use tokio::sync::oneshot;

pub const TAXII: &str = "application/taxii+json;version=2.1";

/// One node: store, key, a user who may write, and (while running) its server.
pub struct Node {
    pub state: AppState,
    pub store: Arc<dyn Store>,
    pub key: NodeKey,
    pub token: String,
    pub user: UserId,
    pub org: kopa_core::OrgId,
    pub addr: SocketAddr,
    pub stop: Option<oneshot::Sender<()>>,
    pub server: Option<tokio::task::JoinHandle<()>>,
    pub _dir: tempfile::TempDir,
}

impl Node {
    /// A node over SQLite in a temporary directory.
    pub async fn new(seed: u8) -> Node {
        Self::over(seed, None).await
    }

    /// A node over the PostgreSQL database at `url` (SQLite when `None`).
    pub async fn over(seed: u8, url: Option<&str>) -> Node {
        Self::configured(seed, url, ServerConfig::default()).await
    }

    /// A node with its own server configuration (SQLite when `url` is `None`).
    pub async fn configured(seed: u8, url: Option<&str>, config: ServerConfig) -> Node {
        let dir = tempfile::tempdir().unwrap();
        let sqlite = dir.path().join("data");
        let location = url.unwrap_or(sqlite.to_str().unwrap());
        let store = kopa_store::open(location, true).await.unwrap();
        let key = NodeKey::from_seed([seed; 32]);
        store
            .init_node(&kopa_store::NodeInfo {
                id: key.node_id().to_string(),
                name: format!("node-{seed}"),
            })
            .await
            .unwrap();
        let org = store.add_org(&format!("Org {seed}")).await.unwrap();
        let user = store
            .add_user(&format!("analyst{seed}"), &org.id, Role::Analyst)
            .await
            .unwrap();
        let (record, token) = kopa_server::new_token(&user.id);
        store.add_token(&record).await.unwrap();
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let identity = Arc::new(NodeIdentity::new(NodeKey::from_seed([seed; 32])));
        let state = AppState::with_node(store.clone(), config, Some(identity));
        let mut node = Node {
            state,
            store,
            key,
            token,
            user: user.id,
            org: org.id,
            addr,
            stop: None,
            server: None,
            _dir: dir,
        };
        node.serve(listener);
        node
    }

    pub fn serve(&mut self, listener: tokio::net::TcpListener) {
        let (tx, rx) = oneshot::channel::<()>();
        let state = self.state.clone();
        self.server = Some(tokio::spawn(async move {
            kopa_server::serve_app(listener, state, async {
                let _ = rx.await;
            })
            .await
            .unwrap();
        }));
        self.stop = Some(tx);
    }

    /// Stop the server (the port is then refused) and wait until it is down.
    pub async fn stop(&mut self) {
        if let Some(tx) = self.stop.take() {
            let _ = tx.send(());
        }
        if let Some(s) = self.server.take() {
            s.await.unwrap();
        }
    }

    /// Serve again on the same port.
    pub async fn restart(&mut self) {
        let listener = tokio::net::TcpListener::bind(self.addr).await.unwrap();
        self.serve(listener);
    }

    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    pub fn me(&self) -> Audience {
        Audience {
            org: self.org.clone(),
            user: self.user.clone(),
        }
    }

    /// A collection readable and writable by everyone here, with this id (or a new one) and alias.
    pub async fn collection(&self, id: Option<&str>, alias: Option<&str>) -> String {
        self.store
            .add_collection(&NewCollection {
                id: id.map(str::to_string),
                title: "shared".into(),
                description: None,
                alias: alias.map(str::to_string),
                read: Access::All,
                write: Access::All,
            })
            .await
            .unwrap()
            .id
    }

    /// Declare `other` as a peer that may read `collections` (CLEAR/GREEN), called as this node
    /// (`Kopa-Node`).
    pub async fn peer(&self, name: &str, other: &Node, collections: &[&str], push: bool) {
        self.peer_with(name, other, collections, push, None).await
    }

    pub async fn peer_with(
        &self,
        name: &str,
        other: &Node,
        collections: &[&str],
        push: bool,
        token: Option<String>,
    ) {
        self.declare(name, other, &other.url(), collections, push, token)
            .await
    }

    /// Declare `other` as a peer reached at `url` (e.g. through a proxy).
    pub async fn declare(
        &self,
        name: &str,
        other: &Node,
        url: &str,
        collections: &[&str],
        push: bool,
        token: Option<String>,
    ) {
        let policy = ExportPolicy {
            collections: collections.iter().map(|c| c.to_string()).collect(),
            ..ExportPolicy::default()
        };
        self.store
            .add_peer(&NewPeer {
                name: name.into(),
                node_id: other.key.node_id().to_string(),
                url: url.to_string(),
                public_key: other.key.public_key().encode(),
                token,
                policy: serde_json::to_string(&policy).unwrap(),
            })
            .await
            .unwrap();
        if push {
            self.store.set_peer_push(name, true).await.unwrap();
        }
    }

    pub async fn post(&self, collection: &str, objects: &[Value]) {
        let resp = reqwest::Client::new()
            .post(format!(
                "{}/kopa/collections/{collection}/objects/",
                self.url()
            ))
            .header("authorization", format!("Bearer {}", self.token))
            .header("accept", TAXII)
            .header("content-type", TAXII)
            .body(serde_json::to_vec(&json!({ "objects": objects })).unwrap())
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status().as_u16(), 202);
        let status: Value = serde_json::from_slice(&resp.bytes().await.unwrap()).unwrap();
        assert_eq!(status["failure_count"], 0, "{status}");
    }

    /// Every object version held in `collection` as this node's analyst sees them: (id, modified).
    pub async fn held(&self, collection: &str) -> Vec<(String, String)> {
        let mut out = Vec::new();
        let mut after = 0;
        loop {
            let page = self
                .store
                .objects(
                    &self.me().into(),
                    collection,
                    &ObjectFilter {
                        added_after: None,
                        after_seq: Some(after),
                        limit: 1000,
                        ids: Vec::new(),
                        types: Vec::new(),
                        versions: VersionMatch {
                            all: true,
                            ..Default::default()
                        },
                        spec_versions: Vec::new(),
                    },
                )
                .await
                .unwrap();
            for o in &page.objects {
                out.push((o.id.clone(), o.version.to_taxii()));
                after = o.seq;
            }
            if !page.more {
                break;
            }
        }
        out.sort();
        out
    }

    /// What the sync loop of this node works with, from its server state.
    pub fn context(&self) -> kopa_sync::SyncContext {
        kopa_sync::SyncContext {
            store: self.store.clone(),
            identity: self.state.node().unwrap().clone(),
            receiver: self.state.receiver().unwrap(),
            metrics: Arc::new(self.state.metrics().clone()),
        }
    }

    pub fn syncer(&self, page_size: usize) -> Arc<Syncer> {
        Arc::new(
            Syncer::new(
                self.context(),
                SyncConfig {
                    pull_interval: Duration::from_millis(200),
                    page_size,
                    ..SyncConfig::default()
                },
            )
            .unwrap(),
        )
    }
}

pub fn uuid_n(n: usize) -> String {
    format!("8e2e2d2b-17d4-4cbf-938f-{n:012}")
}

/// A TLP:CLEAR indicator (shareable with any peer whose policy names the collection).
pub fn indicator(n: usize, modified: &str) -> Value {
    json!({
        "type": "indicator", "spec_version": "2.1",
        "id": format!("indicator--{}", uuid_n(n)),
        "created": "2024-01-01T00:00:00.000Z", "modified": modified,
        "name": format!("indicator {n}"),
        "pattern": format!("[ipv4-addr:value = '198.51.100.{}']", n % 250),
        "pattern_type": "stix", "valid_from": "2024-01-01T00:00:00Z",
        "object_marking_refs": ["marking-definition--94868c89-83c2-464b-929b-a1a8aa3c8487"],
    })
}

pub const T0: &str = "2024-01-01T00:00:00.000Z";

/// A and B peered both ways over one collection with the same id; B pulls from A.
pub async fn pair() -> (Node, Node, String) {
    let (a, b) = (Node::new(1).await, Node::new(2).await);
    let cid = a.collection(None, None).await;
    b.collection(Some(&cid), None).await;
    a.peer("b", &b, &[&cid], false).await;
    b.peer("a", &a, &[&cid], false).await;
    (a, b, cid)
}

/// Write objects into a node's store as they are, bypassing signing on ingest (what a broken or
/// hostile node could serve).
pub async fn put_raw(node: &Node, collection: &str, objects: &[Value]) {
    let news = objects
        .iter()
        .map(|o| kopa_store::NewObject {
            id: o["id"].as_str().unwrap().into(),
            type_: o["type"].as_str().unwrap().into(),
            spec_version: "2.1".into(),
            version: Some(kopa_stix::Timestamp::parse(o["modified"].as_str().unwrap()).unwrap()),
            json: o.to_string(),
            steward: kopa_core::Stewardship {
                owner_org: node.org.clone(),
                author: node.user.clone(),
                tlp: kopa_core::Tlp::Clear,
                orgs: Vec::new(),
                users: Vec::new(),
                defaulted: false,
            },
            values: Vec::new(),
            origin: None,
            via: None,
        })
        .collect();
    node.store.put_objects(collection, news).await.unwrap();
}

#[allow(unused_imports)]
pub use kopa_store::testing::PgDb;

/// An HTTP proxy in front of `target` that forwards requests while `budget` lasts (one per request)
/// and answers the others with 503 — a peer failing in the middle of a pull, healed by raising the
/// budget. Returns its base URL.
pub async fn failing_proxy(target: String, budget: Arc<std::sync::atomic::AtomicUsize>) -> String {
    use axum::body::{to_bytes, Body};
    use axum::extract::Request;
    use axum::response::Response;
    use std::sync::atomic::Ordering;
    let client = reqwest::Client::new();
    let app = axum::Router::new().fallback(move |req: Request| {
        let (budget, client, target) = (budget.clone(), client.clone(), target.clone());
        async move {
            let spent =
                budget.fetch_update(Ordering::SeqCst, Ordering::SeqCst, |b| b.checked_sub(1));
            if spent.is_err() {
                let mut r = Response::new(Body::from("unavailable"));
                *r.status_mut() = axum::http::StatusCode::SERVICE_UNAVAILABLE;
                return r;
            }
            let url = format!("{target}{}", req.uri());
            let mut out = client.request(req.method().clone(), url);
            for (k, v) in req.headers() {
                if k != axum::http::header::HOST {
                    out = out.header(k, v);
                }
            }
            let body = to_bytes(req.into_body(), usize::MAX).await.unwrap();
            let resp = out.body(body).send().await.unwrap();
            let mut r = Response::builder().status(resp.status());
            for (k, v) in resp.headers() {
                r = r.header(k, v);
            }
            r.body(Body::from(resp.bytes().await.unwrap())).unwrap()
        }
    });
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    format!("http://{addr}")
}
