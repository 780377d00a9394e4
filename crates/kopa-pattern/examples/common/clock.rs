//! The clock of the examples' rates (kopa-pattern's, and kopa-stix's `validate_throughput`): CPU time
//! of the measuring thread.

use std::time::Instant;

/// Seconds this thread spent on a CPU (Linux `/proc/self/schedstat`), else wall-clock seconds:
/// on a shared machine CPU time is the figure that does not depend on the other load.
pub struct Clock(Instant, Option<u64>);

fn cpu_ns() -> Option<u64> {
    std::fs::read_to_string("/proc/thread-self/schedstat")
        .ok()?
        .split_whitespace()
        .next()?
        .parse()
        .ok()
}

impl Clock {
    pub fn start() -> Self {
        Clock(Instant::now(), cpu_ns())
    }
    pub fn secs(&self) -> f64 {
        match (self.1, cpu_ns()) {
            (Some(a), Some(b)) => (b - a) as f64 / 1e9,
            _ => self.0.elapsed().as_secs_f64(),
        }
    }
}
