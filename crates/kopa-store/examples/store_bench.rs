//! Store benchmark (not a test): bulk insert in batches of 1,000, then a full read in pages of
//! 1,000 (first and last page timed) as a person and as a peer node, the count of a peer's lag, a
//! search, and single-object reads by id (what TAXII's object and versions endpoints ask), on SQLite
//! or PostgreSQL.
//!
//! `cargo run --release -p kopa-store --example store_bench -- [N] [LOCATION]`
//! N defaults to 100000; LOCATION to a temporary directory (SQLite); a `postgres://` URL must name
//! an existing, empty database.

use kopa_core::{Audience, OrgId, PeerAudience, Reader, Role, Stewardship, Tlp};
use kopa_stix::Timestamp;
use kopa_store::{Access, NewCollection, NewObject, ObjectFilter, Store, VersionMatch};
use std::time::Instant;

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let n: usize = args.next().map_or(Ok(100_000), |s| s.parse())?;
    let tmp = std::env::temp_dir().join(format!("kopa-store-bench-{}", std::process::id()));
    let location = args.next().unwrap_or_else(|| tmp.display().to_string());
    let store = kopa_store::open(&location, true).await?;
    println!("backend {} at {location}, {n} objects", store.backend());

    let org = store
        .add_org(&format!("Bench org {}", std::process::id()))
        .await?;
    let user = store
        .add_user(
            &format!("bench {}", std::process::id()),
            &org.id,
            Role::Analyst,
        )
        .await?;
    let coll = store
        .add_collection(&NewCollection {
            id: None,
            title: "Bench".into(),
            description: None,
            alias: None,
            read: Access::All,
            write: Access::All,
        })
        .await?;
    let who = Audience {
        org: org.id.clone(),
        user: user.id.clone(),
    };
    let tlps = [Tlp::Clear, Tlp::Green, Tlp::Amber, Tlp::Red];
    let make = |i: usize| {
        let id = format!("indicator--{}", uuid::Uuid::new_v4());
        let ip = format!("10.{}.{}.{}", (i >> 16) & 255, (i >> 8) & 255, i & 255);
        let json = serde_json::json!({
            "type": "indicator", "spec_version": "2.1", "id": id,
            "created": "2024-01-01T00:00:00.000Z", "modified": "2024-01-01T00:00:00.000Z",
            "name": format!("Bench indicator {i}"), "indicator_types": ["malicious-activity"],
            "pattern": format!("[ipv4-addr:value = '{ip}']"), "pattern_type": "stix",
            "valid_from": "2024-01-01T00:00:00Z"
        })
        .to_string();
        NewObject {
            id,
            type_: "indicator".into(),
            spec_version: "2.1".into(),
            version: Some(Timestamp::from_micros(1_704_067_200_000_000)),
            json,
            steward: Stewardship {
                owner_org: org.id.clone(),
                author: user.id.clone(),
                tlp: tlps[i % tlps.len()],
                orgs: if i.is_multiple_of(7) {
                    vec![OrgId::new()]
                } else {
                    Vec::new()
                },
                users: Vec::new(),
                defaulted: false,
            },
            values: vec![ip],
            origin: None,
            via: None,
        }
    };

    // Objects are made before the clock starts: only the store is measured.
    let mut batches: Vec<Vec<NewObject>> = Vec::new();
    let mut i = 0;
    while i < n {
        let batch: Vec<NewObject> = (i..(i + 1000).min(n)).map(make).collect();
        i += batch.len();
        batches.push(batch);
    }
    // 100 ids spread over the whole collection, for the single-object reads.
    let step = (n / 100).max(1);
    let sample: Vec<String> = batches
        .iter()
        .flatten()
        .step_by(step)
        .map(|o| o.id.clone())
        .collect();
    let start = Instant::now();
    let cpu0 = cpu_seconds();
    for batch in batches {
        store.put_objects(&coll.id, batch).await?;
    }
    let secs = start.elapsed().as_secs_f64();
    let cpu = cpu_seconds() - cpu0;
    println!(
        "insert: {:.0} objects/s ({secs:.2} s wall); {:.0} objects per CPU second ({cpu:.2} s CPU)",
        n as f64 / secs,
        n as f64 / cpu.max(1e-9)
    );

    // `KOPA_STORE_BENCH_INSERT_ONLY=1` stops here (for profiling the write path alone).
    if std::env::var_os("KOPA_STORE_BENCH_INSERT_ONLY").is_some() {
        return Ok(());
    }
    let person: Reader = who.clone().into();
    full_read(&*store, "full read", &person, &coll.id).await?;
    // A peer node reading the same collection under an export policy up to TLP:AMBER (what a pull
    // of federation reads), and the count of what it has left (its lag) from the start.
    let peer: Reader = PeerAudience {
        node: "node--00000000000000000000000000000bee".into(),
        collections: vec![coll.id.clone()],
        max_tlp: Tlp::Amber,
        object_types: Vec::new(),
    }
    .into();
    full_read(&*store, "peer read", &peer, &coll.id).await?;
    for (label, versions) in [
        ("latest versions", VersionMatch::last()),
        (
            "all versions, as a pull asks",
            VersionMatch {
                all: true,
                ..Default::default()
            },
        ),
    ] {
        let f = ObjectFilter {
            versions,
            ..page_filter(None)
        };
        let t = Instant::now();
        let lag = store.count_objects(&peer, &coll.id, &f).await?;
        println!(
            "peer count ({label}): {lag} objects in {:.1} ms",
            t.elapsed().as_secs_f64() * 1000.0
        );
    }
    let t = Instant::now();
    let hits = store.search(&who, "10.0.1.1", 10).await?;
    println!(
        "search: {} hit(s) in {:.2} ms",
        hits.len(),
        t.elapsed().as_secs_f64() * 1000.0
    );
    for (label, versions) in [
        ("object", VersionMatch::last()),
        (
            "versions",
            VersionMatch {
                all: true,
                ..Default::default()
            },
        ),
    ] {
        let (mut total, mut worst, mut found) = (0.0f64, 0.0f64, 0usize);
        for id in &sample {
            let f = ObjectFilter {
                ids: vec![id.clone()],
                versions: versions.clone(),
                ..page_filter(None)
            };
            let t = Instant::now();
            let page = store.objects(&person, &coll.id, &f).await?;
            let ms = t.elapsed().as_secs_f64() * 1000.0;
            found += usize::from(!page.objects.is_empty());
            total += ms;
            worst = worst.max(ms);
        }
        println!(
            "single-object read ({label}, by id): {} ids ({found} visible), mean {:.3} ms, worst {worst:.3} ms",
            sample.len(),
            total / sample.len().max(1) as f64
        );
    }
    if location == tmp.display().to_string() {
        drop(store);
        let _ = std::fs::remove_dir_all(&tmp);
    }
    Ok(())
}

fn page_filter(after_seq: Option<i64>) -> ObjectFilter {
    ObjectFilter {
        added_after: None,
        after_seq,
        limit: 1000,
        ids: Vec::new(),
        types: Vec::new(),
        versions: VersionMatch::last(),
        spec_versions: Vec::new(),
    }
}

/// Read a whole collection as `who` in pages of 1,000 and print the rate and first/last page times.
async fn full_read(
    store: &dyn Store,
    label: &str,
    who: &Reader,
    coll: &str,
) -> Result<(), Box<dyn std::error::Error>> {
    let mut f = page_filter(None);
    let start = Instant::now();
    let (mut read, mut pages, mut first_ms) = (0usize, 0usize, 0.0);
    let mut last_ms: f64;
    loop {
        let t = Instant::now();
        let page = store.objects(who, coll, &f).await?;
        let ms = t.elapsed().as_secs_f64() * 1000.0;
        if pages == 0 {
            first_ms = ms;
        }
        last_ms = ms;
        pages += 1;
        read += page.objects.len();
        if !page.more {
            break;
        }
        f.after_seq = page.objects.last().map(|o| o.seq);
    }
    let secs = start.elapsed().as_secs_f64();
    println!(
        "{label}: {read} visible objects in {pages} pages, {:.0} objects/s; first page {first_ms:.1} ms, last page {last_ms:.1} ms",
        read as f64 / secs
    );
    Ok(())
}

/// User + system CPU time of this process so far (Linux `/proc/self/stat`, 100 ticks per second), so
/// that a figure taken on a busy machine still says what the work costs.
fn cpu_seconds() -> f64 {
    let stat = std::fs::read_to_string("/proc/self/stat").unwrap_or_default();
    let after = stat.rsplit_once(')').map_or("", |(_, rest)| rest);
    let fields: Vec<&str> = after.split_whitespace().collect();
    let ticks = |i: usize| {
        fields
            .get(i)
            .and_then(|f| f.parse::<f64>().ok())
            .unwrap_or(0.0)
    };
    // Fields 14 and 15 of the file (utime, stime) are 12 and 13 after the command name.
    (ticks(11) + ticks(12)) / 100.0
}
