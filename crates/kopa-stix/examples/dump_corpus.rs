//! Print the generated corpus of valid objects (every type, optional, custom and extension properties) as
//! JSON lines, e.g. to compare Kopa's verdicts with stix2-validator's:
//!
//! ```text
//! cargo run -p kopa-stix --example dump_corpus [N] [SEED] > corpus.jsonl
//! ```

#[path = "../tests/common/gen.rs"]
mod gen;

use std::io::Write;

fn main() {
    let mut args = std::env::args().skip(1);
    let n: usize = args.next().and_then(|s| s.parse().ok()).unwrap_or(4400);
    let seed: u64 = args.next().and_then(|s| s.parse().ok()).unwrap_or(11);
    let stdout = std::io::stdout();
    let mut out = stdout.lock();
    for v in gen::corpus(seed, n) {
        if writeln!(out, "{v}").is_err() {
            return; // closed pipe
        }
    }
}
