//! Test harness: a Kopa app over a real store (SQLite in a temporary directory, or a fresh PostgreSQL
//! database when `KOPA_TEST_PG_URL` is set), driven in-process with `oneshot`.

#![allow(dead_code)]

use std::collections::BTreeSet;
use std::sync::Arc;

use axum::body::Body;
use axum::http::{HeaderMap, Request};
use axum::Router;
use base64::Engine;
use kopa_core::Role;
use kopa_federation::{NodeIdentity, NodeKey, PROVENANCE_EXTENSION_ID};
use kopa_server::{app, AppState, ServerConfig};
use kopa_store::{Access, NewCollection, Store};
use serde_json::{json, Value};
use tower::ServiceExt;

pub const TAXII: &str = "application/taxii+json;version=2.1";

pub struct Node {
    pub app: Router,
    pub store: Arc<dyn Store>,
    /// The node's identity: objects its users post are signed with it.
    pub identity: Arc<NodeIdentity>,
    pub state: AppState,
    _dir: Option<tempfile::TempDir>,
}

pub struct Resp {
    pub status: u16,
    pub headers: HeaderMap,
    pub body: Vec<u8>,
}

impl Resp {
    pub fn json(&self) -> Value {
        serde_json::from_slice(&self.body).unwrap_or_else(|e| {
            panic!(
                "response is not JSON ({e}): {}",
                String::from_utf8_lossy(&self.body)
            )
        })
    }
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }
}

/// How a request authenticates.
#[derive(Clone)]
pub enum Auth<'a> {
    None,
    Bearer(&'a str),
    Basic(&'a str, &'a str),
}

pub fn config() -> ServerConfig {
    ServerConfig {
        max_content_length: 64 * 1024,
        ..ServerConfig::default()
    }
}

impl Node {
    pub async fn sqlite() -> Node {
        Self::sqlite_with(config()).await
    }

    pub async fn sqlite_with(cfg: ServerConfig) -> Node {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("data");
        let store = kopa_store::open(path.to_str().unwrap(), true)
            .await
            .unwrap();
        Self::over(store, Some(dir), cfg)
    }

    pub fn over(store: Arc<dyn Store>, dir: Option<tempfile::TempDir>, cfg: ServerConfig) -> Node {
        let identity = Arc::new(NodeIdentity::new(NodeKey::generate()));
        let state = AppState::with_node(store.clone(), cfg, Some(identity.clone()));
        Node {
            app: app(state.clone()),
            state,
            store,
            identity,
            _dir: dir,
        }
    }

    /// Send a request. `body` is sent as-is; TAXII `Accept` is added unless `headers` set one.
    pub async fn call(
        &self,
        method: &str,
        path: &str,
        auth: Auth<'_>,
        headers: &[(&str, &str)],
        body: Option<Vec<u8>>,
    ) -> Resp {
        let mut req = Request::builder().method(method).uri(path);
        if !headers
            .iter()
            .any(|(k, _)| k.eq_ignore_ascii_case("accept"))
        {
            req = req.header("accept", TAXII);
        }
        for (k, v) in headers {
            req = req.header(*k, *v);
        }
        match auth {
            Auth::None => {}
            Auth::Bearer(t) => req = req.header("authorization", format!("Bearer {t}")),
            Auth::Basic(u, p) => {
                let creds = base64::engine::general_purpose::STANDARD.encode(format!("{u}:{p}"));
                req = req.header("authorization", format!("Basic {creds}"));
            }
        }
        let req = req
            .body(body.map(Body::from).unwrap_or_else(Body::empty))
            .unwrap();
        let resp = self.app.clone().oneshot(req).await.unwrap();
        let status = resp.status().as_u16();
        let headers = resp.headers().clone();
        let body = axum::body::to_bytes(resp.into_body(), usize::MAX)
            .await
            .unwrap()
            .to_vec();
        Resp {
            status,
            headers,
            body,
        }
    }

    pub async fn get(&self, path: &str, token: &str) -> Resp {
        self.call("GET", path, Auth::Bearer(token), &[], None).await
    }

    /// POST a TAXII envelope.
    pub async fn post_envelope(&self, coll: &str, token: &str, objects: &[Value]) -> Resp {
        let body = serde_json::to_vec(&json!({ "objects": objects })).unwrap();
        self.call(
            "POST",
            &format!("/kopa/collections/{coll}/objects/"),
            Auth::Bearer(token),
            &[("content-type", TAXII)],
            Some(body),
        )
        .await
    }

    /// REST call with a JSON body.
    pub async fn api(&self, method: &str, path: &str, token: &str, body: Option<Value>) -> Resp {
        self.call(
            method,
            path,
            Auth::Bearer(token),
            &[
                ("accept", "application/json"),
                ("content-type", "application/json"),
            ],
            body.map(|b| serde_json::to_vec(&b).unwrap()),
        )
        .await
    }

    pub async fn org(&self, name: &str) -> kopa_store::Org {
        self.store.add_org(name).await.unwrap()
    }

    /// A user with a fresh token; returns the token.
    pub async fn user(&self, name: &str, org: &kopa_store::Org, role: Role) -> String {
        let u = self.store.add_user(name, &org.id, role).await.unwrap();
        let (record, token) = kopa_server::new_token(&u.id);
        self.store.add_token(&record).await.unwrap();
        token
    }

    pub async fn collection(&self, title: &str, read: Access, write: Access) -> String {
        self.store
            .add_collection(&NewCollection {
                id: None,
                title: title.into(),
                description: None,
                alias: None,
                read,
                write,
            })
            .await
            .unwrap()
            .id
    }
}

#[allow(unused_imports)]
pub use kopa_store::testing::PgDb;

/// A valid STIX 2.1 indicator.
pub fn indicator(n: usize, extra: Value) -> Value {
    let mut v = json!({
        "type": "indicator",
        "spec_version": "2.1",
        "id": format!("indicator--{}", uuid_n(n)),
        "created": "2024-01-01T00:00:00.000Z",
        "modified": "2024-01-01T00:00:00.000Z",
        "name": format!("indicator {n}"),
        "pattern": format!("[ipv4-addr:value = '198.51.100.{}']", n % 250),
        "pattern_type": "stix",
        "valid_from": "2024-01-01T00:00:00Z"
    });
    if let (Value::Object(m), Value::Object(e)) = (&mut v, extra) {
        m.extend(e);
    }
    v
}

/// A deterministic UUIDv4 for test object number `n`.
pub fn uuid_n(n: usize) -> String {
    format!("00000000-0000-4000-8000-{n:012}")
}

/// Polls a future, turning a panic into an error so that clean-up (dropping a test database) still
/// runs.
pub struct CatchUnwind<F>(pub std::pin::Pin<Box<F>>);

impl<F: std::future::Future> std::future::Future for CatchUnwind<F> {
    type Output = std::thread::Result<F::Output>;
    fn poll(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Self::Output> {
        let f = &mut self.0;
        match std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| f.as_mut().poll(cx))) {
            Ok(std::task::Poll::Pending) => std::task::Poll::Pending,
            Ok(std::task::Poll::Ready(v)) => std::task::Poll::Ready(Ok(v)),
            Err(e) => std::task::Poll::Ready(Err(e)),
        }
    }
}

/// `object` without the Kopa provenance extension (and without `extensions` when nothing else is
/// left in it): what a client posted, before this node signed it.
pub fn unsigned(object: &Value) -> Value {
    let mut v = object.clone();
    if let Some(m) = v.as_object_mut() {
        let empty = match m.get_mut("extensions").and_then(Value::as_object_mut) {
            Some(exts) => {
                exts.remove(PROVENANCE_EXTENSION_ID);
                exts.is_empty()
            }
            None => false,
        };
        if empty {
            m.remove("extensions");
        }
    }
    v
}

/// The objects of a TAXII envelope with their provenance extension removed.
pub fn unsigned_all(objects: &Value) -> Value {
    Value::Array(
        objects
            .as_array()
            .map(|a| a.iter().map(unsigned).collect())
            .unwrap_or_default(),
    )
}

/// The ids of a TAXII envelope's objects.
pub fn id_set(v: &Value) -> BTreeSet<String> {
    v["objects"]
        .as_array()
        .map(|a| {
            a.iter()
                .map(|o| o["id"].as_str().unwrap().to_string())
                .collect()
        })
        .unwrap_or_default()
}

/// Run each named test body (an `async fn(Node)`) on a node over SQLite and one over a fresh
/// PostgreSQL database (skipped when none answers), as `mod NAME { sqlite, postgres }`. Use with
/// `#[macro_use] mod common;`.
#[allow(unused_macros)]
macro_rules! on_both_backends {
    ($($name:ident),* $(,)?) => {$(
        mod $name {
            #[tokio::test]
            async fn sqlite() {
                super::$name($crate::common::Node::sqlite().await).await;
            }

            #[tokio::test]
            async fn postgres() {
                let Some(db) = $crate::common::PgDb::create("kopa_server_test").await else {
                    return;
                };
                let url = db.url.clone();
                let result = $crate::common::CatchUnwind(Box::pin(async move {
                    let store = kopa_store::open(&url, true).await.unwrap();
                    super::$name($crate::common::Node::over(
                        store,
                        None,
                        $crate::common::config(),
                    ))
                    .await;
                }))
                .await;
                db.drop_db().await;
                if let Err(e) = result {
                    std::panic::resume_unwind(e);
                }
            }
        }
    )*};
}
