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

// The examples' CPU clock, kept once in kopa-pattern's examples.
#[path = "../../kopa-pattern/examples/common/clock.rs"]
mod clock;
use clock::Clock;

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
    let validate = start.secs();

    let start = Clock::start();
    for v in corpus.iter().cloned() {
        ok += usize::from(kopa_stix::parse_object_owned(v).is_ok());
    }
    let parse_owned = start.secs();

    let start = Clock::start();
    for v in &corpus {
        ok += usize::from(kopa_stix::parse_object(v).is_ok());
    }
    let parse = start.secs();

    let rate = |secs: f64| n as f64 / secs;
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
