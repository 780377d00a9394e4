//! Rough validation throughput over the generated corpus (all object types, optional and custom
//! properties). Not a benchmark with statistics, just a quick figure:
//!
//! Times are CPU time of the measuring thread where Linux provides it, so a busy machine does not skew them.
//!
//! ```text
//! cargo run --release -p kopa-stix --example validate_throughput [N]
//! ```

#[path = "../tests/common/gen.rs"]
mod gen;

use std::time::{Duration, Instant};

/// Time this thread spent on a CPU (Linux `schedstat`), so that the figure holds on a busy machine;
/// falls back to wall-clock time elsewhere.
struct Clock(Instant, Option<u64>);

fn on_cpu_ns() -> Option<u64> {
    std::fs::read_to_string("/proc/thread-self/schedstat")
        .ok()?
        .split_whitespace()
        .next()?
        .parse()
        .ok()
}

impl Clock {
    fn start() -> Self {
        Clock(Instant::now(), on_cpu_ns())
    }
    fn elapsed(&self) -> Duration {
        match (self.1, on_cpu_ns()) {
            (Some(a), Some(b)) => Duration::from_nanos(b - a),
            _ => self.0.elapsed(),
        }
    }
}

fn main() {
    let n: usize = std::env::args()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(200_000);
    let corpus = gen::corpus(7, n);
    let bytes: usize = corpus.iter().map(|v| v.to_string().len()).sum();

    let start = Clock::start();
    let mut ok = 0usize;
    for v in &corpus {
        ok += usize::from(kopa_stix::validate(v).is_empty());
    }
    let validate = start.elapsed();

    let start = Clock::start();
    for v in corpus.iter().cloned() {
        ok += usize::from(kopa_stix::parse_object_owned(v).is_ok());
    }
    let parse_owned = start.elapsed();

    let start = Clock::start();
    for v in &corpus {
        ok += usize::from(kopa_stix::parse_object(v).is_ok());
    }
    let parse = start.elapsed();

    let rate = |d: Duration| n as f64 / d.as_secs_f64();
    println!(
        "{n} objects ({:.0} bytes each on average), {ok} accepted over three passes",
        bytes as f64 / n as f64
    );
    println!("validate:            {:>10.0} objects/s", rate(validate));
    println!(
        "parse_object_owned:  {:>10.0} objects/s (includes cloning the input)",
        rate(parse_owned)
    );
    println!("parse_object:        {:>10.0} objects/s", rate(parse));
}
