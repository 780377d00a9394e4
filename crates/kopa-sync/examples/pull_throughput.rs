//! Throughput of one pull: N indicators posted on node A (envelopes of 1,000, signed on ingest),
//! then node B pulls them all in one round (pages of 1,000: fetch, verify every signature, store).
//! Both nodes run in this process on loopback, with SQLite stores in temporary directories.
//!
//! `cargo run --release -p kopa-sync --example pull_throughput [N] [PAGE]` (defaults 20,000 and
//! 1,000 objects a page).

#[path = "../tests/common/mod.rs"]
mod common;

use std::time::Instant;

use common::{indicator, pair, T0};

#[tokio::main(flavor = "multi_thread")]
async fn main() {
    let n: usize = std::env::args()
        .nth(1)
        .map(|a| a.parse().expect("N must be a number"))
        .unwrap_or(20_000);
    let page: usize = std::env::args()
        .nth(2)
        .map(|a| a.parse().expect("PAGE must be a number"))
        .unwrap_or(1000);
    let (a, b, cid) = pair().await;
    let objects: Vec<_> = (0..n).map(|i| indicator(i, T0)).collect();
    let t = Instant::now();
    for chunk in objects.chunks(1000) {
        a.post(&cid, chunk).await;
    }
    let ingest = t.elapsed().as_secs_f64();
    let t = Instant::now();
    let report = b.syncer(page).sync_once(None).await.unwrap();
    let pull = t.elapsed().as_secs_f64();
    assert_eq!(report[0].error, None);
    assert_eq!(report[0].received, n as u64, "every object arrives");
    println!(
        "{n} objects, pages of {page}: ingest on A {ingest:.2} s ({:.0} objects/s); pull by B {pull:.2} s \
         ({:.0} objects/s); pull / ingest = {:.2}",
        n as f64 / ingest,
        n as f64 / pull,
        pull / ingest
    );
}
