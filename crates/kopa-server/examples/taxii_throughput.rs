//! Quick in-process throughput check of the TAXII write and read paths (the whole HTTP stack, no
//! network): POST N indicators in envelopes of 1,000, then read them all back in pages of 1,000.
//!
//! `cargo run --release -p kopa-server --example taxii_throughput -- [N] [--unsigned] [--database postgres://…]`
//!
//! Without `--database` the node stores into SQLite in a temporary directory. With a PostgreSQL URL
//! (an account that may create databases, e.g. `postgres://postgres@127.0.0.1:5432/test`) each run
//! creates its own database with a random name on that server and drops it afterwards.
//!
//! The node has an identity, as `kopa serve` does, so every posted object is signed (provenance);
//! `--unsigned` runs without one, to see what signing costs.
//! (The side-by-side benchmark against other TAXII servers lives in `bench/`.)

use std::time::Instant;

use axum::body::Body;
use axum::http::Request;
use kopa_core::Role;
use kopa_server::{app, new_token, AppState, ServerConfig, TAXII_MEDIA_TYPE};
use kopa_store::{Access, NewCollection};
use serde_json::json;
use tower::ServiceExt;

// The same allocator as the `kopa` binary, so the figures match what a node does.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[tokio::main]
async fn main() {
    let n: usize = std::env::args()
        .nth(1)
        .and_then(|a| a.parse().ok())
        .unwrap_or(100_000);
    let signed = !std::env::args().any(|a| a == "--unsigned");
    let database = std::env::args().skip_while(|a| a != "--database").nth(1);
    let dir = tempfile::tempdir().expect("temporary directory");
    let pg = match &database {
        Some(url) => Some(kopa_store::testing::PgDb::create_on(url, "kopa_bench").await),
        None => None,
    };
    let location = match &pg {
        Some(db) => db.url.clone(),
        None => dir
            .path()
            .join("data")
            .to_str()
            .expect("utf-8 path")
            .to_string(),
    };
    let store = kopa_store::open(&location, true).await.expect("open store");
    println!("backend: {}", store.backend());
    let org = store.add_org("Org A").await.expect("org");
    let user = store
        .add_user("alice", &org.id, Role::Analyst)
        .await
        .expect("user");
    let (record, token) = new_token(&user.id);
    store.add_token(&record).await.expect("token");
    let coll = store
        .add_collection(&NewCollection {
            id: None,
            title: "bench".into(),
            description: None,
            alias: None,
            read: Access::All,
            write: Access::All,
        })
        .await
        .expect("collection")
        .id;
    let identity = signed.then(|| {
        std::sync::Arc::new(kopa_federation::NodeIdentity::new(
            kopa_federation::NodeKey::generate(),
        ))
    });
    let app = app(AppState::with_node(
        store,
        ServerConfig::default(),
        identity,
    ));
    let auth = format!("Bearer {token}");

    let envelopes: Vec<Vec<u8>> = (0..n)
        .collect::<Vec<_>>()
        .chunks(1000)
        .map(|chunk| {
            let objects: Vec<_> = chunk
                .iter()
                .map(|&i| {
                    json!({
                        "type": "indicator", "spec_version": "2.1",
                        "id": format!("indicator--00000000-0000-4000-8000-{i:012}"),
                        "created": "2024-01-01T00:00:00.000Z", "modified": "2024-01-01T00:00:00.000Z",
                        "name": format!("bad address {i}"),
                        "pattern": format!("[ipv4-addr:value = '10.{}.{}.{}']", i >> 16 & 255, i >> 8 & 255, i & 255),
                        "pattern_type": "stix", "valid_from": "2024-01-01T00:00:00Z",
                        "object_marking_refs": ["marking-definition--bab4a63c-aed9-4cf5-a766-dfca5abac2bb"]
                    })
                })
                .collect();
            serde_json::to_vec(&json!({ "objects": objects })).expect("json")
        })
        .collect();

    let (start, cpu0) = (Instant::now(), cpu_seconds());
    for body in envelopes {
        let req = Request::post(format!("/kopa/collections/{coll}/objects/"))
            .header("authorization", &auth)
            .header("accept", TAXII_MEDIA_TYPE)
            .header("content-type", TAXII_MEDIA_TYPE)
            .body(Body::from(body))
            .expect("request");
        let resp = app.clone().oneshot(req).await.expect("response");
        assert_eq!(resp.status(), 202);
    }
    let post = start.elapsed().as_secs_f64();
    let cpu = cpu_seconds() - cpu0;
    println!(
        "POST {n} objects ({}): {post:.2} s, {:.0} objects/s ({cpu:.2} s of CPU, {:.0} objects per CPU-second)",
        if signed { "signed" } else { "unsigned" },
        n as f64 / post,
        n as f64 / cpu
    );

    let (start, cpu0) = (Instant::now(), cpu_seconds());
    let mut read = 0usize;
    let mut next: Option<String> = None;
    loop {
        let uri = match &next {
            Some(c) => format!("/kopa/collections/{coll}/objects/?limit=1000&next={c}"),
            None => format!("/kopa/collections/{coll}/objects/?limit=1000"),
        };
        let req = Request::get(uri)
            .header("authorization", &auth)
            .header("accept", TAXII_MEDIA_TYPE)
            .body(Body::empty())
            .expect("request");
        let resp = app.clone().oneshot(req).await.expect("response");
        let body = axum::body::to_bytes(resp.into_body(), usize::MAX)
            .await
            .expect("body");
        let env: serde_json::Value = serde_json::from_slice(&body).expect("json");
        read += env["objects"].as_array().map_or(0, Vec::len);
        match env["next"].as_str() {
            Some(c) if env["more"] == true => next = Some(c.to_string()),
            _ => break,
        }
    }
    let get = start.elapsed().as_secs_f64();
    let cpu = cpu_seconds() - cpu0;
    assert_eq!(read, n);
    println!(
        "GET all {read} objects in pages of 1000: {get:.2} s, {:.0} objects/s ({cpu:.2} s of CPU incl. the client's JSON parse)",
        read as f64 / get
    );
    drop(app);
    if let Some(db) = pg {
        db.drop_db().await;
    }
}

/// CPU time (user + system) this process has used, from /proc (0 where unavailable).
fn cpu_seconds() -> f64 {
    let Ok(stat) = std::fs::read_to_string("/proc/self/stat") else {
        return 0.0;
    };
    // Fields after the command name (which is in parentheses): utime is the 12th, stime the 13th.
    let rest = stat.rsplit_once(')').map_or("", |(_, r)| r);
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let ticks = |i: usize| {
        fields
            .get(i)
            .and_then(|f| f.parse::<f64>().ok())
            .unwrap_or(0.0)
    };
    (ticks(11) + ticks(12)) / 100.0
}
